//! The annual appraisal (SPEC §6) through the CLI: `report --period 2025` on
//! tests/fixtures/appraisal with the default rules, every score worked out by hand.
//!
//! The tree of tests/fixtures/indicators: D → T1 (community) → C1 → B1, B2;
//! D → T2 (rural) → C2 → B3, B4. Components and weights (the defaults): attendance A 0.15,
//! meeting completion M 0.15, assessment by method — regular R 0.15, random S 0.10,
//! unannounced U 0.10, review V 0.10 — task completion T 0.15, rectification F 0.10. A share
//! counts as 100 × the share; a missing component is left out and the rest rescaled.
//!
//! 2025 rows:
//! - B1: 8 attendance rows, all present, Jan–Mar: member 1, committee 3, group 3, lesson 1
//!   (three reported months require 1 + 3 + 3 + 1 = 8) → A 100, M 100. Assessment (of 20):
//!   R 18 → 90, S 19 → 95, U 20 → 100, V 17 → 85; overall 74/80 = 92.5. No tasks, findings.
//!   Score = (15 + 15 + 13.5 + 9.5 + 10 + 8.5) / 0.75 = 71.5 / 0.75 = 95.33.
//! - B2: the same meetings → A 100, M 100. R 20 → 100, S 17 → 85, U 18 → 90, V 18 → 90;
//!   overall 73/80 = 91.25. Score = (15 + 15 + 15 + 8.5 + 9 + 9) / 0.75 = 95.33: B1's.
//! - B3: 4 rows, 3 present → A 75; member 1, committee 1, group 1, lesson 1 held of 8 → M 50.
//!   R 12 → 60. Task A-1 due 06-30, done 06-20 → T 100. Finding AF-1 (serious) due 09-30,
//!   still open → F 0, and overdue at 12-31.
//!   Score = (11.25 + 7.5 + 9 + 15 + 0) / (0.15 × 4 + 0.10) = 42.75 / 0.70 = 61.07.
//! - B4: no attendance (A, M missing). R 13 → 65, S 14 → 70, U 15 → 75, V 16 → 80. Task A-2
//!   due 09-30, pending → T 0. Score = (9.75 + 7 + 7.5 + 8 + 0) / 0.60 = 53.75.
//! - C1 = T1 (B1 and B2's rows): A 100, M 100, R 38/40 → 95, S 36/40 → 90, U 38/40 → 95,
//!   V 35/40 → 87.5. Score = (15 + 15 + 14.25 + 9 + 9.5 + 8.75) / 0.75 = 95.33.
//! - C2 = T2 (B3 and B4's): A 75 (B4 has none), M 4 of 8 → 50 (B4 reported no month, so
//!   nothing is required of it), R 25/40 → 62.5, S 70, U 75, V 80, T 1 of 2 → 50, F 0 of 1.
//!   Every component present: 11.25 + 7.5 + 9.375 + 7 + 7.5 + 8 + 7.5 + 0 = 58.125.
//!
//! Grades (bands 90/80/70/60): B1, B2, C1, T1 are in the five-star band. Quotas: ⌊0.3 × 2⌋ = 0
//! for the two townships and the two communities, so T1 and C1 get four stars; ⌊0.3 × 4⌋ = 1
//! for the four branches, and B1 and B2 tie on score at the boundary: the tie-break
//! (assessment score, 92.5 against 91.25) keeps B1's five stars, B2 gets four.
//! The veto: AF-1 (serious) is overdue at 12-31, so B3 and every unit above it (C2, T2) may not
//! be honoured (their grades, at most two stars here, are under the cap of three).

use std::collections::HashMap;
use std::path::Path;

use super::*;

/// unit → (score, rank, grade, eligible, reasons).
type Rows = HashMap<String, (Option<f64>, String, String, bool, String)>;

fn appraisal(wh: &Path) -> Rows {
    let csv = query_csv(wh, "SELECT unit_id, score, rank, grade, eligible, reasons FROM appraisal WHERE year = 2025");
    csv.lines()
        .skip(1)
        .map(|line| {
            let c: Vec<&str> = line.splitn(6, ',').collect();
            let score = if c[1].is_empty() { None } else { Some(c[1].parse::<f64>().unwrap()) };
            (c[0].to_string(), (score, c[2].to_string(), c[3].to_string(), c[4] == "true", c[5].to_string()))
        })
        .collect()
}

#[test]
fn the_appraisal_matches_the_hand_computation() {
    let t = tempfile::tempdir().unwrap();
    let files = stage(
        &t.path().join("inbox"),
        &[
            "appraisal/units.csv",
            "appraisal/attendance_2025.csv",
            "appraisal/assessment_2025.csv",
            "appraisal/tasks_2025.csv",
            "appraisal/findings_2025.csv",
        ],
    );
    let wh = t.path().join("wh");
    run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&wh).args(&files), 0);
    run_expect(dangjian().args(["compute", "--warehouse"]).arg(&wh).args(["--period", "2025"]), 0);
    let out = t.path().join("out");
    run_expect(dangjian().args(["report", "--warehouse"]).arg(&wh).args(["--period", "2025", "--out"]).arg(&out), 0);

    let rows = appraisal(&wh);
    assert_eq!(rows.len(), 8, "two townships, two communities, four branches: {rows:?}");
    let close = |unit: &str, want: f64| {
        let got = rows[unit].0.unwrap_or_else(|| panic!("{unit} has no score"));
        assert!((got - want).abs() < 1e-9, "{unit}: got {got}, want {want}");
    };
    close("B1", 71.5 / 0.75);
    close("B2", 71.5 / 0.75);
    close("B3", 42.75 / 0.70);
    close("B4", 53.75);
    close("C1", 71.5 / 0.75);
    close("T1", 71.5 / 0.75);
    close("C2", 58.125);
    close("T2", 58.125);
    // Every component of C2, on the 0–100 scale.
    let parts = query_csv(
        &wh,
        "SELECT attendance_rate, meeting_completion, assessment_regular, assessment_random, \
         assessment_unannounced, assessment_review, task_completion_rate, rectification_rate \
         FROM appraisal WHERE unit_id = 'C2'",
    );
    let got: Vec<f64> = parts.lines().nth(1).unwrap().split(',').map(|v| v.parse().unwrap()).collect();
    for (g, w) in got.iter().zip([75.0, 50.0, 62.5, 70.0, 75.0, 80.0, 50.0, 0.0]) {
        assert!((g - w).abs() < 1e-9, "C2's components: {got:?}");
    }
    let grade = |u: &str| rows[u].2.clone();
    let graded: Vec<String> = ["T1", "T2", "C1", "C2", "B1", "B2", "B3", "B4"].iter().map(|u| grade(u)).collect();
    assert_eq!(graded, ["4", "1", "4", "1", "5", "4", "2", "1"]);
    // Ranks within level and category: B1 and B2 share first; B3 before B4.
    assert_eq!([&rows["B1"].1, &rows["B2"].1, &rows["B3"].1, &rows["B4"].1], ["1", "1", "1", "2"]);
    // The quota's words, and the tie resolved by the assessment score.
    assert!(rows["T1"].4.contains("同级五星限额 0 个（30% × 2 个参评）"), "{}", rows["T1"].4);
    assert!(rows["B2"].4.contains("按考核得分排序第 2 位"), "{}", rows["B2"].4);
    assert!(rows["B1"].4.contains("得分与幸福社区第二党支部相同、并列于五星限额边界"), "{}", rows["B1"].4);
    // The veto, at the unit and above it; a unit without one stays eligible, whatever its grade.
    for u in ["B3", "C2", "T2"] {
        assert!(!rows[u].3, "{u} is vetoed");
        assert!(rows[u].4.contains("一票否决：严重及以上问题 AF-1"), "{u}: {}", rows[u].4);
    }
    for u in ["B1", "B2", "B4", "C1", "T1"] {
        assert!(rows[u].3, "{u} is eligible: {}", rows[u].4);
    }
    assert!(
        rows["B4"].4.contains("缺出勤率、三会一课完成率、问题按期整改率，按其余 60% 的权重折算"),
        "{}",
        rows["B4"].4
    );

    // The report: the quota table names the tie, the lists and the township sections.
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("幸福社区第一党支部（五星）、幸福社区第二党支部（四星）"), "the tied units are named");
    assert!(html.contains("评优评先推荐名单") && html.contains("不得评优评先的单位"));
    assert!(html.contains("青山镇（4 个单位"), "each township's units");
    // The workbook: a sheet per level.
    let book = calamine::open_workbook_auto(out.join("report.xlsx")).unwrap();
    let sheets = calamine::Reader::sheet_names(&book);
    for s in ["考核-街道镇", "考核-村社区", "考核-支部"] {
        assert!(sheets.iter().any(|x| x == s), "{sheets:?}");
    }
}

#[test]
fn a_bad_appraisal_section_is_exit_2_with_file_line_and_key() {
    let t = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/annual.toml")).unwrap();
    // Beside the catalogue and the aliases it names.
    let pipes = t.path().join("pipelines");
    std::fs::create_dir_all(&pipes).unwrap();
    for f in ["aliases.toml", "indicators.toml"] {
        std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines").join(f), pipes.join(f)).unwrap();
    }
    let path = pipes.join("annual.toml");
    std::fs::write(&path, text.replace("bands = [90.0, 80.0, 70.0, 60.0]", "bands = [90.0, 95.0, 70.0, 60.0]"))
        .unwrap();
    let out = run_expect(dangjian().arg("run").arg(&path), 2);
    let line = text.lines().position(|l| l.starts_with("bands =")).unwrap() + 1;
    assert!(stderr(&out).contains(&format!("annual.toml:{line}: [appraisal] bands")), "{}", stderr(&out));
    std::fs::write(&path, text.replace("when = \"weak_quarters\"", "when = \"sometimes\"")).unwrap();
    let out = run_expect(dangjian().arg("run").arg(&path), 2);
    assert!(stderr(&out).contains("sometimes"), "{}", stderr(&out));
    std::fs::write(&path, text.replace("indicator = \"rectification_rate\"", "indicator = \"overdue_tasks\"")).unwrap();
    let out = run_expect(dangjian().arg("run").arg(&path), 2);
    assert!(stderr(&out).contains("component 'overdue_tasks' is a count"), "{}", stderr(&out));
    std::fs::write(&path, text.replace("[appraisal]", "[grading]")).unwrap();
    let out = run_expect(dangjian().arg("run").arg(&path), 2);
    assert!(stderr(&out).contains("`[grading]` is now `[appraisal]`"), "{}", stderr(&out));
}

/// Five-star units of each level, and graded units, of a year's appraisal.
pub fn five_and_graded(wh: &Path, year: i32) -> Vec<(String, u32, u32)> {
    let csv = query_csv(
        wh,
        &format!(
            "SELECT level, sum(CASE WHEN grade = 5 THEN 1 ELSE 0 END) AS five, \
             sum(CASE WHEN grade IS NULL THEN 0 ELSE 1 END) AS graded \
             FROM appraisal WHERE year = {year} GROUP BY level ORDER BY level"
        ),
    );
    csv.lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (c[0].to_string(), c[1].parse().unwrap(), c[2].parse().unwrap())
        })
        .collect()
}

/// At most ⌊0.3 × graded⌋ five-star units in each of the three levels.
pub fn assert_quota_holds(wh: &Path, year: i32) {
    let levels = five_and_graded(wh, year);
    assert_eq!(levels.iter().map(|l| l.0.as_str()).collect::<Vec<_>>(), ["branch", "community", "township"]);
    for (level, five, graded) in levels {
        assert!(graded > 0, "{level}: nothing graded");
        assert!(five <= (0.3 * f64::from(graded) + 1e-9).floor() as u32, "{level}: {five} five-star of {graded}");
    }
}

#[test]
fn the_quota_holds_on_a_generated_district_of_1000_units() {
    let t = tempfile::tempdir().unwrap();
    let wh = district_of_1000(t.path());
    run_expect(dangjian().args(["compute", "--warehouse"]).arg(&wh).args(["--period", "2025"]), 0);
    let out = t.path().join("out");
    run_expect(dangjian().args(["report", "--warehouse"]).arg(&wh).args(["--period", "2025", "--out"]).arg(&out), 0);
    assert_quota_holds(&wh, 2025);
    // Every grade is its score's band, or below it with the quota or a veto given as the reason.
    let band = "CASE WHEN round(score, 2) >= 90 THEN 5 WHEN round(score, 2) >= 80 THEN 4 \
                WHEN round(score, 2) >= 70 THEN 3 WHEN round(score, 2) >= 60 THEN 2 ELSE 1 END";
    let unexplained = format!(
        "SELECT count(*) FROM appraisal WHERE grade > {band} OR (grade < {band} \
         AND reasons NOT LIKE '%同级五星限额%' AND reasons NOT LIKE '%否决%')"
    );
    assert_eq!(query_number(&wh, &unexplained), 0.0);
    assert!(query_number(&wh, "SELECT count(*) FROM appraisal WHERE grade IS NOT NULL") > 900.0);
}
