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
    // → C1 0.76, D 0.789, B1 0.8 all rose; absence 1/3 → lower now. B1 held its 主题党日 in the
    // one month it reported (coverage 1/1) and in two of three now (2/3): B1, C1, T1 and D
    // fell from 1.0 to 0.667, 0.6, 0.6 and 0.75. Their denominators are 1 to 5 branch-months,
    // below the minimum of 20, and one month's meeting is not a fall to list: no drops. (The
    // old rule, a relative fall of 10%, listed all four.)
    assert_eq!(
        query_csv(&wh, "SELECT unit_id, indicator FROM problems WHERE kind = 'drop' ORDER BY unit_id"),
        "unit_id,indicator\n"
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
        vec!["指标", "问题清单", "上期问题整改情况", "逾期未整改", "六大工程推进情况", "报送情况", "巡回观摩"]
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
    // not a request; the font is a data URI in the page).
    let stripped = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "").replace("url(data:font/ttf;base64,", "");
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
    assert!(!html.contains("巡回观摩抽签") && !html.contains("年度目标绩效考核"));
    let y = t.path().join("y");
    run_expect(dangjian().args(["report", "--period", "2026", "--warehouse"]).arg(&wh).arg("--out").arg(&y), 0);
    let html = std::fs::read_to_string(y.join("report.html")).unwrap();
    // The appraisal (its figures are checked in `appraisal`): B4 reported nothing all year and
    // has no assessment: not graded, and said so.
    assert!(html.contains("年度目标绩效考核") && html.contains("各层级星级分布与五星限额"));
    assert!(html.contains("数据不足，不予评定"), "B4 is not graded");
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

/// Attendance for `branch`: three 主题党日 a month over `months`, `members` members, and
/// `absent(event)` of them absent at each event (the first ones).
fn attendance_rows(out: &mut String, branch: &str, members: usize, months: &[&str], absent: &dyn Fn(usize) -> usize) {
    let mut event = 0;
    for month in months {
        for day in ["05", "15", "25"] {
            for m in 0..members {
                let status = if m < absent(event) { "absent" } else { "present" };
                out.push_str(&format!(
                    "{branch}-{month}-{day},{branch},activity_day,{month}-{day},{branch}M{m},{status}\n"
                ));
            }
            event += 1;
        }
    }
}

#[test]
fn a_fall_is_judged_on_its_counts_not_its_percentage() {
    // Two communities of one township, each with one branch: B1 with 400 members, B2 with 4;
    // 9 meetings a quarter each (3 a month), so 3,600 and 36 attendances a quarter.
    let t = tempfile::tempdir().unwrap();
    let inbox = t.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(
        inbox.join("units.csv"),
        "unit_id,unit_name,parent_id,level,category\nD,示范区,,district,\nT1,东城街道,D,township,community\n\
         C1,大社区,T1,community,community\nC2,小社区,T1,community,community\n\
         B1,大社区第一党支部,C1,branch,community\nB2,小社区第一党支部,C2,branch,community\n",
    )
    .unwrap();
    let mut rows = String::from("event_id,unit_id,event_type,event_date,member_id,status\n");
    // B1: 40 absent at each meeting in 2025Q4 (90.0% present, 3,240/3,600), 72 in 2026Q1
    // (82.0%, 2,952/3,600). Pooled 6,192/7,200 = 0.86; se = sqrt(0.86 × 0.14 × 2/3,600) =
    // 0.00818; z = 0.08/0.00818 = 9.78: a fall, listed as one.
    attendance_rows(&mut rows, "B1", 400, &["2025-10", "2025-11", "2025-12"], &|_| 40);
    attendance_rows(&mut rows, "B1", 400, &["2026-01", "2026-02", "2026-03"], &|_| 72);
    // B2: one absence in 2025Q4 (35/36), two in 2026Q1 (34/36): absence 2.8% → 5.6%, which the
    // old rule called 100% worse. Pooled absence 3/72; se = sqrt(0.0417 × 0.9583 × 2/36) =
    // 0.0471; z = 0.0278/0.0471 = 0.59, one-sided p = 0.28: chance, not listed.
    attendance_rows(&mut rows, "B2", 4, &["2025-10", "2025-11", "2025-12"], &|e| usize::from(e == 0));
    attendance_rows(&mut rows, "B2", 4, &["2026-01", "2026-02", "2026-03"], &|e| usize::from(e == 0 || e == 4));
    std::fs::write(inbox.join("attendance.csv"), rows).unwrap();
    let wh = t.path().join("wh");
    run_expect(
        dangjian()
            .args(["ingest", "--warehouse"])
            .arg(&wh)
            .arg(inbox.join("units.csv"))
            .arg(inbox.join("attendance.csv")),
        0,
    );
    for p in ["2025Q4", "2026Q1"] {
        run_expect(dangjian().args(["compute", "--period", p, "--warehouse"]).arg(&wh), 0);
    }
    let out = t.path().join("out");
    run_expect(dangjian().args(["report", "--period", "2026Q1", "--warehouse"]).arg(&wh).arg("--out").arg(&out), 0);
    // B1's fall shows in B1 and in every unit above it (their counts are B1's and B2's).
    assert_eq!(
        query_csv(
            &wh,
            "SELECT unit_id FROM problems WHERE kind = 'drop' AND indicator = 'attendance_rate' ORDER BY unit_id"
        ),
        "unit_id\nB1\nC1\nD\nT1\n"
    );
    let evidence = query_csv(
        &wh,
        "SELECT evidence FROM problems WHERE unit_id = 'B1' AND indicator = 'attendance_rate' AND kind = 'drop'",
    );
    assert!(
        evidence.contains(
            "由 90.0%（3240/3600）变为 82.0%（2952/3600），下降 8.0 个百分点（双比例检验 z = 9.78，单侧 p < 0.001）"
        ),
        "{evidence}"
    );
    // Tested on counts: serious (2), on the agenda, against last quarter's 90%.
    assert_eq!(
        query_csv(
            &wh,
            "SELECT severity, priority IS NOT NULL AS listed, reference, denominator FROM problems WHERE unit_id = 'B1' AND indicator = 'attendance_rate' AND kind = 'drop'"
        ),
        "severity,listed,reference,denominator\n2,true,0.9,3600.0\n"
    );
    // Nothing of B2 or C2 as a drop, for any indicator.
    assert_eq!(
        query_csv(&wh, "SELECT count(*) AS n FROM problems WHERE kind = 'drop' AND unit_id IN ('B2', 'C2')"),
        "n\n0\n"
    );
}

#[test]
fn issue_21_a_district_of_1000_units_prints_its_lists_by_township() {
    let t = tempfile::tempdir().unwrap();
    let (wh, shared) = district_of_1000_sharing_a_name(t.path());
    assert_eq!(
        query_number(&wh, &format!("SELECT count(*) FROM units WHERE level = 'township' AND unit_name = '{shared}'")),
        2.0
    );
    for period in ["2025Q4", "2026Q1"] {
        run_expect(dangjian().args(["compute", "--warehouse"]).arg(&wh).args(["--period", period]), 0);
    }
    let out = t.path().join("out");
    run_expect(dangjian().args(["report", "--warehouse"]).arg(&wh).args(["--period", "2026Q1", "--out"]).arg(&out), 0);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    // The overdue list, the two large projects and the weak candidates are summarised per
    // township, their units folded under the summary.
    let summaries = html.matches("按所属街道（镇）汇总").count();
    assert!(summaries >= 4, "{summaries} lists summarised by township");
    let townships = query_number(&wh, "SELECT count(DISTINCT unit_id) FROM units WHERE level = 'township'");
    assert!(townships > 20.0, "{townships}: more townships than are printed");
    // Outside folded parts no table runs to one row per unit, nor to one per township: the
    // longest printed table has the 20 townships with most to answer for (or the 20 best
    // branches of 星火) and its header.
    let printed = strip_folded(&html);
    let longest = printed.split("<table").skip(1).map(|t| t.split("</table>").next().unwrap().matches("<tr>").count());
    let longest = longest.max().unwrap();
    assert!(longest <= 21, "a printed table of {longest} rows");
    // A township's counts are set right, as numbers are; its names and colours are not.
    let compact = printed.split("<table class=\"compact\">").nth(1).unwrap().split("</table>").next().unwrap();
    let first = compact.split("<tr>").nth(2).unwrap();
    assert!(first.starts_with("<td>") && first.matches("<td class=\"num\">").count() >= 1, "{first}");
    // The problem list: the first 300 by priority on the page, every open one counted per
    // township, and all of them in the workbook.
    let before = html.split_once(" 条，本页按优先级列前 300 条").unwrap().0;
    let open: usize = before.rsplit_once("<p>共 ").unwrap().1.parse().unwrap();
    assert!(open > 300, "{open} open problems");
    let listed = html.split_once("前 300 条，按优先级编号").unwrap().1.split("</table>").next().unwrap();
    assert_eq!(listed.matches("<tr>").count(), 1 + 300);
    let per_township = html.split_once("个街道（镇），问题多的在前").unwrap().1.split("</table>").next().unwrap();
    let counted: usize = per_township
        .split("<tr><td>")
        .skip(1)
        .map(|row| row.split("<td class=\"num\">").nth(1).unwrap().split('<').next().unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(counted, open, "the townships' counts add up to the open problems");
    // Two townships of one name are two rows, not one (they are grouped by id).
    let named = |table: &str| table.matches(&format!("<tr><td>{shared}</td>")).count();
    assert_eq!(named(per_township), 2, "{shared} twice among the townships with problems");
    let mut wb: Xlsx<_> = open_workbook(out.join("report.xlsx")).unwrap();
    let sheet = wb.worksheet_range("问题清单").unwrap();
    assert!(sheet.rows().count() > open, "the workbook lists every problem: {} rows", sheet.rows().count());
    // The last quarter's problems, resolved or not: the first 300 here, all in the workbook.
    let (before, after) = html.split_once(" 条，此处列前 300 条：仍未解决的按优先级在前").unwrap();
    let moved: usize = before.rsplit_once("逐条明细（").unwrap().1.parse().unwrap();
    assert_eq!(after.split("</table>").next().unwrap().matches("<tr>").count(), 1 + 300);
    assert_eq!(wb.worksheet_range("上期问题整改情况").unwrap().rows().count(), 1 + moved);
    // The units behind on a project one per row under the projects' counts (a province's
    // thousands overflowed one cell's 32,767 characters and the report failed).
    let projects: Vec<Vec<String>> = wb
        .worksheet_range("六大工程推进情况")
        .unwrap()
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    let split = projects.iter().position(|r| r.first().is_some_and(|c| c == "工程") && r[2] == "组织编码").unwrap();
    let behind: f64 =
        projects[1..split].iter().filter(|r| !r[0].is_empty()).map(|r| r[4].parse::<f64>().unwrap()).sum();
    assert!(behind > 0.0, "units behind on a project in a district of 1,000");
    assert_eq!(projects[split + 1..].len() as f64, behind, "a row per unit behind");
    assert!(projects[split + 1..].iter().all(|r| !r[1].is_empty() && !r[2].is_empty()), "township and code");
    // A page of a thousand units stays a page: the lists past 300 rows were most of its 3 MB.
    assert!(html.len() < 1_000_000, "report.html is {} bytes", html.len());
    // On paper (A4, headless Chromium) it stays a pack one reads, not a register.
    let pages = super::browser::printed_pages(&out.join("report.html"), t.path());
    assert!(pages <= 15, "{pages} pages");
}

/// Issue 25: a province's report (30,000 units) is written, and is a page one opens: the long
/// lists are township summaries only, the problem list its first 300, and the workbook holds
/// every unit (the units behind on a project no longer in one cell, which failed the report).
#[test]
fn issue_25_a_province_gets_a_report_one_can_open() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    let args = ["sample", "--units", "30000", "--members", "150000", "--months", "6", "--seed", "5", "--out"];
    run_expect(dangjian().args(args).arg(&data), 0);
    let wh = t.path().join("wh");
    run_expect(dangjian().args(["ingest", "-q", "--warehouse"]).arg(&wh).arg(&data), 0);
    for period in ["2025Q4", "2026Q1"] {
        run_expect(dangjian().args(["compute", "--warehouse"]).arg(&wh).args(["--period", period]), 0);
    }
    let out = t.path().join("out");
    run_expect(dangjian().args(["report", "--warehouse"]).arg(&wh).args(["--period", "2026Q1", "--out"]).arg(&out), 0);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.len() < 1_500_000, "report.html is {} bytes", html.len());
    let summaries_only = html.matches("单位太多，本页只列汇总，逐个单位明细见工作簿").count();
    assert!(summaries_only >= 2, "{summaries_only} lists summarised without their units");
    assert!(html.contains(" 条，本页按优先级列前 300 条"));
    let mut wb: Xlsx<_> = open_workbook(out.join("report.xlsx")).unwrap();
    let projects = wb.worksheet_range("六大工程推进情况").unwrap();
    let behind: Vec<String> =
        projects.rows().skip_while(|r| r[2] != "组织编码").skip(1).map(|r| r[3].to_string()).collect();
    // Joined with 、 as the cell had them: more characters than a cell holds.
    let chars: usize = behind.iter().map(|n| n.chars().count() + 1).sum();
    assert!(chars > 32_767, "the {} units behind ({chars} characters) would not fit in one cell", behind.len());
    let units = query_number(&wh, "SELECT count(*) FROM units");
    assert!(units >= 30_000.0, "{units} units");

    // The year's report: the appraisal's lists are their first 300 and the townships' stars
    // (it was 13 MB of every unit), the workbook's sheets grade every unit.
    run_expect(dangjian().args(["compute", "--warehouse"]).arg(&wh).args(["--period", "2025"]), 0);
    let year = t.path().join("year");
    run_expect(dangjian().args(["report", "--warehouse"]).arg(&wh).args(["--period", "2025", "--out"]).arg(&year), 0);
    let html = std::fs::read_to_string(year.join("report.html")).unwrap();
    assert!(html.len() < 1_500_000, "the year's report.html is {} bytes", html.len());
    assert!(html.contains("单位太多，本页只列各街道（镇）的星级分布"));
    assert_eq!(html.matches("，此处列前 300 个").count() + html.matches("此处按层级和得分列前 300 个").count(), 2);
    let mut wb: Xlsx<_> = open_workbook(year.join("report.xlsx")).unwrap();
    let graded: usize = wb
        .sheet_names()
        .iter()
        .filter(|n| n.starts_with("考核-"))
        .map(|n| wb.worksheet_range(n).unwrap().rows().count() - 1)
        .sum();
    let appraised = query_number(&wh, "SELECT count(*) FROM appraisal WHERE year = 2025");
    assert!(appraised > 29_000.0, "{appraised} appraised");
    assert_eq!(graded as f64, appraised, "every appraised unit in the workbook");
}

/// The report without the parts folded away on paper (`<details>`).
fn strip_folded(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(i) = rest.find("<details") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find("</details>").map_or(rest.len(), |j| i + j + "</details>".len());
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}
