//! `dangjian report`: the HTML pack and its workbook, the problem list on a fixture whose
//! problems are known by hand, escaping, and a real headless browser.

use std::path::{Path, PathBuf};

use calamine::{Reader, Xlsx, open_workbook};

use super::*;

/// The indicators fixture with the name of C1 replaced by a script.
fn warehouse(dir: &Path, hostile: bool) -> PathBuf {
    let inbox = dir.join("inbox");
    let files = stage(
        &inbox,
        &["indicators/units.csv", "indicators/attendance.csv", "indicators/points.csv", "indicators/assessment.csv"],
    );
    if hostile {
        let units = std::fs::read_to_string(&files[0])
            .unwrap()
            .replace("幸福社区,T1", "<script>document.body.className='pwned'</script>幸福社区,T1");
        std::fs::write(&files[0], units).unwrap();
    }
    let wh = dir.join("wh");
    run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&wh).args(&files), 0);
    run_expect(dangjian().args(["compute", "--period", "2026Q1", "--warehouse"]).arg(&wh), 0);
    wh
}

#[test]
fn the_problem_list_matches_the_hand_count() {
    let t = tempfile::tempdir().unwrap();
    let wh = warehouse(t.path(), false);
    run_expect(
        dangjian()
            .args(["report", "--period", "2026Q1", "--warehouse"])
            .arg(&wh)
            .arg("--out")
            .arg(t.path().join("out")),
        0,
    );
    // Weak candidates (worked out in compute.rs): B2 alone; B4 reported nothing.
    assert_eq!(query_csv(&wh, "SELECT unit_id FROM problems WHERE kind = 'weak' ORDER BY unit_id"), "unit_id\nB2\n");
    // Red attendance_rate: only B2 (0.667 < 0.70; B4 has no value). Red meeting completion
    // (< 0.70): B2 0, B3 0.625, C1 0.525, C2 0.625, T1, T2, D 0.5625; B4 has no data, not red.
    assert_eq!(
        query_csv(&wh, "SELECT unit_id FROM problems WHERE kind = 'red' AND indicator = 'attendance_rate'"),
        "unit_id\nB2\n"
    );
    assert_eq!(
        query_csv(
            &wh,
            "SELECT unit_id FROM problems WHERE kind = 'red' AND indicator = 'meeting_completion' ORDER BY unit_id"
        ),
        "unit_id\nB2\nB3\nC1\nC2\nD\nT1\nT2\n"
    );
    // Drops against 2025Q4. Only B1's subtree had rows then, all in November: attendance 2/3
    // → C1 0.76, D 0.789, B1 0.8 all rose; absence 1/3 → lower now. But B1 held its 主题党日 in
    // the one month it reported (coverage 1/1), and in two of three now: B1, C1, T1 and D fell
    // from 1.0 to 0.667, 0.6, 0.6 and 0.75. (Meeting completion was 0 then: no base to fall from.)
    assert_eq!(
        query_csv(&wh, "SELECT unit_id, indicator FROM problems WHERE kind = 'drop' ORDER BY unit_id"),
        "unit_id,indicator\nB1,activity_day_coverage\nC1,activity_day_coverage\nD,activity_day_coverage\nT1,activity_day_coverage\n"
    );
    // No group has five units: no outliers.
    assert_eq!(query_csv(&wh, "SELECT count(*) AS n FROM problems WHERE kind = 'outlier'"), "n\n0\n");
}

#[test]
fn the_workbook_holds_the_indicator_figures() {
    let t = tempfile::tempdir().unwrap();
    let wh = warehouse(t.path(), false);
    let out = t.path().join("out");
    run_expect(dangjian().args(["report", "--period", "2026Q1", "--warehouse"]).arg(&wh).arg("--out").arg(&out), 0);
    let mut wb: Xlsx<_> = open_workbook(out.join("report.xlsx")).unwrap();
    assert_eq!(
        wb.sheet_names(),
        vec!["指标", "问题清单", "上期问题整改情况", "逾期未整改", "六大工程推进情况", "巡回观摩"]
    );
    let sheet = wb.worksheet_range("指标").unwrap();
    let rows: Vec<Vec<String>> = sheet.rows().map(|r| r.iter().map(|c| c.to_string()).collect()).collect();
    let col = rows[0].iter().position(|h| h == "出勤率").unwrap();
    let b1 = rows.iter().find(|r| r[0] == "B1").unwrap();
    assert_eq!(b1[col].parse::<f64>().unwrap(), 0.8);
    // Every value equals the indicators table.
    let csv = query_csv(
        &wh,
        "SELECT unit_id, value FROM indicators WHERE indicator = 'attendance_rate' AND value IS NOT NULL",
    );
    for line in csv.lines().skip(1) {
        let (u, v) = line.split_once(',').unwrap();
        let row = rows.iter().find(|r| r[0] == u).unwrap();
        assert!((row[col].parse::<f64>().unwrap() - v.parse::<f64>().unwrap()).abs() < 1e-12, "{u}");
    }
}

#[test]
fn names_are_escaped_and_nothing_leaves_the_file() {
    let t = tempfile::tempdir().unwrap();
    let wh = warehouse(t.path(), true);
    let out = t.path().join("out");
    run_expect(dangjian().args(["report", "--period", "2026Q1", "--warehouse"]).arg(&wh).arg("--out").arg(&out), 0);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(!html.contains("<script>document"), "the name must not be markup");
    assert!(html.contains("&lt;script&gt;document"), "the name shows as text");
    // Self-contained: no reference that would fetch anything (the SVG namespace is a name,
    // not a request).
    let stripped = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    for needle in ["http://", "https://", " src=", "<link", "@import", "url("] {
        assert!(!stripped.contains(needle), "found {needle}");
    }
    assert!(html.contains("default-src 'none'"), "a CSP forbids any request");
    super::browser::check_in_chromium(&out.join("report.html"), t.path());
}

#[test]
fn a_month_is_a_bulletin_and_a_year_grades() {
    let t = tempfile::tempdir().unwrap();
    let wh = warehouse(t.path(), false);
    run_expect(dangjian().args(["compute", "--period", "2026-03", "--warehouse"]).arg(&wh), 0);
    run_expect(dangjian().args(["compute", "--period", "2026", "--warehouse"]).arg(&wh), 0);
    let m = t.path().join("m");
    run_expect(dangjian().args(["report", "--period", "2026-03", "--warehouse"]).arg(&wh).arg("--out").arg(&m), 0);
    let html = std::fs::read_to_string(m.join("report.html")).unwrap();
    assert!(html.contains("党建月报"));
    assert!(!html.contains("巡回观摩抽签") && !html.contains("年度星级评定"));
    let y = t.path().join("y");
    run_expect(dangjian().args(["report", "--period", "2026", "--warehouse"]).arg(&wh).arg("--out").arg(&y), 0);
    let html = std::fs::read_to_string(y.join("report.html")).unwrap();
    assert!(html.contains("年度星级评定"));
    // 2026 composites of the graded levels (community and branch) from the year's rows: C1,
    // C2, B1, B2, B3 (B4 reported nothing all year: no composite, not graded); five-star
    // quota ⌊0.3 × 5⌋ = 1.
    assert!(html.contains("参评组织 5 个"), "{}", &html[html.find("参评组织").unwrap_or(0)..][..80]);
    assert!(html.contains("限额 1 个"));
}

/// Problems followed over three quarters (SPEC §5), on findings whose dates make them overdue
/// exactly when wanted: B1's F-A is overdue at the end of 2025Q4 and 2026Q1 and rectified in
/// 2026Q2 (new → persisting → resolved); B3's F-B is overdue at the end of 2025Q4 only and its
/// F-C at the end of 2026Q2 (new → resolved → recurring). The ids stay, and a quarter
/// computed and reported again keeps its states.
#[test]
fn problems_are_followed_from_quarter_to_quarter() {
    let t = tempfile::tempdir().unwrap();
    let files = stage(
        &t.path().join("inbox"),
        &["indicators/units.csv", "indicators/attendance.csv", "indicators/findings_life.csv"],
    );
    let wh = t.path().join("wh");
    run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&wh).args(&files), 0);
    let review = |p: &str| {
        run_expect(dangjian().args(["compute", "--period", p, "--warehouse"]).arg(&wh), 0);
        let out = t.path().join(format!("out-{p}"));
        run_expect(dangjian().args(["report", "--period", p, "--warehouse"]).arg(&wh).arg("--out").arg(&out), 0);
        out
    };
    let states = |p: &str| {
        query_csv(
            &wh,
            &format!(
                "SELECT problem_id, state, first_period, periods_flagged FROM problems WHERE period = '{p}' \
                 AND kind = 'overdue' AND unit_id IN ('B1', 'B3') ORDER BY problem_id"
            ),
        )
    };
    let head = "problem_id,state,first_period,periods_flagged\n";
    review("2025Q4");
    assert_eq!(
        states("2025Q4"),
        format!("{head}B1:overdue:overdue_findings,new,2025Q4,1\nB3:overdue:overdue_findings,new,2025Q4,1\n")
    );
    review("2026Q1");
    let q1 = format!(
        "{head}B1:overdue:overdue_findings,persisting,2025Q4,2\nB3:overdue:overdue_findings,resolved,2025Q4,1\n"
    );
    assert_eq!(states("2026Q1"), q1);
    let out = review("2026Q2");
    assert_eq!(
        states("2026Q2"),
        format!(
            "{head}B1:overdue:overdue_findings,resolved,2025Q4,2\nB3:overdue:overdue_findings,recurring,2026Q2,2\n"
        )
    );
    // The pack says so, and shows the finding that names the problem beside it.
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("已解决 "), "上期问题整改情况");
    assert!(html.contains("反弹复发（2026Q2 起，第 2 期）"), "the recurring problem in the list");
    assert!(html.contains("党建阵地功能未发挥（走访暗查，整改时限 2026-05-15，逾期未整改）"), "the finding beside it");
    // Again, after the later quarters: the same states for 2026Q1.
    review("2026Q1");
    assert_eq!(states("2026Q1"), q1);
}
