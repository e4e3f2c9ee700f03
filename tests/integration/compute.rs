//! `dangjian compute` on tests/fixtures/indicators, every figure worked out by hand.
//!
//! The fixture: D → T1 (community) → C1 → B1, B2; D → T2 (rural) → C2 → B3, B4.
//! 2026Q1 attendance rows (present/leave/absent):
//!   B1: 20 rows, 16 present, 2 leave, 2 absent, members M1-M3; activity days in Jan and Feb;
//!       meetings: member 1, committee 4 (capped at 3), group 2, lesson 1 → 7 of 8.
//!   B2: 3 rows, 2 present, 1 absent, members M4, M5; activity day in Jan; no meetings → 0 of 8.
//!   B3: 13 rows, 11 present, 1 leave, 1 absent, members M6, M7; activity days every month;
//!       member 1, committee 3, group 0 (a missed type), lesson 1 → 5 of 8.
//!   B4: no rows at all.
//!   C1 itself: 2 rows (training): M1 present, M4 absent.
//! Months reported in 2026Q1 (any attendance row): B1 Jan–Mar, B2 Jan–Feb (March is missing:
//! not reported, not "held nothing"), B3 Jan–Mar, B4 none.
//! 2025Q4: B1 only, 3 rows, 2 present.
//! Points 2026Q1 (approved unless noted): B1 M1 +2, M1 −3, M2 +5 (not approved); B2 M4 +4;
//!   B3 M6 +2, M6 −2, M7 +6.
//! Assessment 2026Q1 (score/max): B1 18/20 and 16/20, B2 8/20, B3 20/20, C1 14/20;
//!   annual 2026: T1 80/100.

use std::collections::HashMap;
use std::path::Path;

use super::*;

/// (unit, indicator) → (value, status, rank, change).
type Figures = HashMap<(String, String), (Option<f64>, String, String, Option<f64>)>;

fn warehouse(dir: &Path) -> std::path::PathBuf {
    let files = stage(
        &dir.join("inbox"),
        &["indicators/units.csv", "indicators/attendance.csv", "indicators/points.csv", "indicators/assessment.csv"],
    );
    let wh = dir.join("wh");
    run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&wh).args(&files), 0);
    wh
}

/// (unit, indicator) → (value, status, rank, change) of a computed period.
fn figures(wh: &Path, period: &str) -> Figures {
    let csv = query_csv(
        wh,
        &format!("SELECT unit_id, indicator, value, status, rank, change FROM indicators WHERE period = '{period}'"),
    );
    let mut out = HashMap::new();
    for line in csv.lines().skip(1) {
        let c: Vec<&str> = line.split(',').collect();
        let num = |s: &str| if s.is_empty() { None } else { Some(s.parse::<f64>().unwrap()) };
        out.insert((c[0].to_string(), c[1].to_string()), (num(c[2]), c[3].to_string(), c[4].to_string(), num(c[5])));
    }
    out
}

fn check(f: &Figures, unit: &str, ind: &str, want: Option<f64>) {
    let got = f.get(&(unit.to_string(), ind.to_string())).unwrap_or_else(|| panic!("no {unit} {ind}")).0;
    match (got, want) {
        (Some(g), Some(w)) => assert!((g - w).abs() <= 1e-9 * w.abs().max(1.0), "{unit} {ind}: got {g}, want {w}"),
        (g, w) => assert_eq!(g, w, "{unit} {ind}"),
    }
}

#[test]
fn a_quarter_matches_the_hand_computation() {
    let t = tempfile::tempdir().unwrap();
    let wh = warehouse(t.path());
    let out = run_expect(dangjian().args(["compute", "--warehouse"]).arg(&wh).args(["--period", "2026Q1"]), 0);
    // 19 indicators and the weak-unit flag.
    assert!(stdout(&out).contains("9 units × 20 indicators = 180 rows"), "{}", stdout(&out));
    let f = figures(&wh, "2026Q1");
    assert_eq!(f.len(), 9 * 20);
    // The assessment by method: B1's regular rows 18/20 and 16/20; B3's one random row 20/20;
    // C1 has B1's, B2's (8/20) and its own (14/20) regular rows; nobody was reviewed.
    check(&f, "B1", "assessment_regular", Some(85.0));
    check(&f, "B1", "assessment_random", None);
    check(&f, "B3", "assessment_random", Some(100.0));
    check(&f, "C1", "assessment_regular", Some(100.0 * (18.0 + 16.0 + 8.0 + 14.0) / 80.0));
    check(&f, "D", "assessment_review", None);

    // attendance_rate = present / all rows, over the subtree's rows (never a mean of means:
    // C1's mean of B1, B2 and its own rate would be (0.8 + 0.667 + 0.5) / 3 = 0.656).
    check(&f, "B1", "attendance_rate", Some(16.0 / 20.0));
    check(&f, "B2", "attendance_rate", Some(2.0 / 3.0));
    check(&f, "B3", "attendance_rate", Some(11.0 / 13.0));
    check(&f, "B4", "attendance_rate", None); // no rows: 0/0 is null, not 0
    check(&f, "C1", "attendance_rate", Some((16.0 + 2.0 + 1.0) / (20.0 + 3.0 + 2.0)));
    check(&f, "C2", "attendance_rate", Some(11.0 / 13.0));
    check(&f, "T1", "attendance_rate", Some(19.0 / 25.0));
    check(&f, "D", "attendance_rate", Some(30.0 / 38.0));
    // Leave excused: present / (rows − leave).
    check(&f, "B1", "attendance_rate_excused", Some(16.0 / 18.0));
    check(&f, "C1", "attendance_rate_excused", Some(19.0 / 23.0));
    check(&f, "D", "attendance_rate_excused", Some(30.0 / 35.0));
    // Absent / rows.
    check(&f, "B2", "absence_rate", Some(1.0 / 3.0));
    check(&f, "C1", "absence_rate", Some(4.0 / 25.0));
    check(&f, "D", "absence_rate", Some(5.0 / 38.0));
    // Activity day: branch-months held / branch-months reported. B2 held one in January of
    // the two months it reported; B4 reported none: null, not 0.
    check(&f, "B1", "activity_day_coverage", Some(2.0 / 3.0));
    check(&f, "B2", "activity_day_coverage", Some(1.0 / 2.0));
    check(&f, "B4", "activity_day_coverage", None);
    check(&f, "C1", "activity_day_coverage", Some(3.0 / 5.0));
    check(&f, "C2", "activity_day_coverage", Some(3.0 / 3.0));
    check(&f, "D", "activity_day_coverage", Some(6.0 / 8.0));
    // Meetings: Σ min(held, required) / Σ required, where a branch's requirement is the
    // quarter's (8) scaled by its reported months: B2 reported 2 months, so it owes member 2/3,
    // committee 2, group 2, lesson 2/3 = 16/3 meetings, and held none.
    check(&f, "B1", "meeting_completion", Some(7.0 / 8.0));
    check(&f, "B2", "meeting_completion", Some(0.0));
    check(&f, "B3", "meeting_completion", Some(5.0 / 8.0));
    check(&f, "B4", "meeting_completion", None);
    check(&f, "C1", "meeting_completion", Some(7.0 / (8.0 + 16.0 / 3.0))); // 21/40 = 0.525
    check(&f, "C2", "meeting_completion", Some(5.0 / 8.0));
    check(&f, "D", "meeting_completion", Some(12.0 / (8.0 + 16.0 / 3.0 + 8.0))); // 36/64 = 0.5625
    // Counted in thirds of a meeting inside (exact sums), published in meetings.
    let parts = "SELECT numerator, denominator FROM indicators WHERE period = '2026Q1' AND unit_id = 'C1' AND indicator = 'meeting_completion'";
    let csv = query_csv(&wh, parts);
    let row: Vec<f64> = csv.lines().nth(1).unwrap().split(',').map(|x| x.parse().unwrap()).collect();
    assert!(row[0] == 7.0 && (row[1] - 40.0 / 3.0).abs() < 1e-12, "{csv}");
    // Reporting: branch-months with any row / branch-months expected (3 per branch).
    check(&f, "B2", "reporting_rate", Some(2.0 / 3.0));
    check(&f, "B4", "reporting_rate", Some(0.0));
    check(&f, "C1", "reporting_rate", Some(5.0 / 6.0));
    check(&f, "C2", "reporting_rate", Some(3.0 / 6.0));
    check(&f, "D", "reporting_rate", Some(8.0 / 12.0));
    // The submissions name who did not report, and what arrived from whom.
    let missing =
        "SELECT unit_id, month FROM submissions WHERE period = '2026Q1' AND NOT reported ORDER BY unit_id, month";
    assert_eq!(query_csv(&wh, missing), "unit_id,month\nB2,2026-03\nB4,2026-01\nB4,2026-02\nB4,2026-03\n");
    let b2 = "SELECT rows, events, files FROM submissions WHERE period = '2026Q1' AND unit_id = 'B2' ORDER BY month";
    assert_eq!(query_csv(&wh, b2), "rows,events,files\n2,1,attendance.csv\n1,1,attendance.csv\n0,0,\n");
    // Present rows / distinct members: C1 counts M1 and M4 once although they attend twice.
    check(&f, "B1", "participation_per_member", Some(16.0 / 3.0));
    check(&f, "C1", "participation_per_member", Some(19.0 / 5.0));
    check(&f, "D", "participation_per_member", Some(30.0 / 7.0));
    check(&f, "B4", "participation_per_member", None);
    // Approved points / distinct approved members (M2's unapproved +5 is out).
    check(&f, "B1", "points_per_member", Some((2.0 - 3.0) / 1.0));
    check(&f, "B3", "points_per_member", Some((2.0 - 2.0 + 6.0) / 2.0));
    check(&f, "C1", "points_per_member", Some((2.0 - 3.0 + 4.0) / 2.0));
    check(&f, "D", "points_per_member", Some(9.0 / 4.0));
    // Deductions per 100 approved members.
    check(&f, "B1", "deduction_rate", Some(100.0));
    check(&f, "B2", "deduction_rate", Some(0.0));
    check(&f, "D", "deduction_rate", Some(100.0 * 2.0 / 4.0));
    // 100 × Σ score / Σ max; the annual row of T1 is not in a quarter.
    check(&f, "B1", "assessment_score", Some(100.0 * 34.0 / 40.0));
    check(&f, "C1", "assessment_score", Some(100.0 * 56.0 / 80.0));
    check(&f, "T1", "assessment_score", Some(70.0));
    check(&f, "D", "assessment_score", Some(100.0 * 76.0 / 100.0));
    check(&f, "B4", "assessment_score", None);
    // Composite: 0.3·100·attendance + 0.3·100·meetings + 0.4·assessment, null parts dropped.
    check(&f, "B1", "composite_score", Some(0.3 * 80.0 + 0.3 * 87.5 + 0.4 * 85.0)); // 84.25
    check(&f, "B2", "composite_score", Some(0.3 * 200.0 / 3.0 + 0.0 + 0.4 * 40.0)); // 36
    check(&f, "C1", "composite_score", Some(0.3 * 76.0 + 0.3 * 52.5 + 0.4 * 70.0)); // 66.55
    check(&f, "C2", "composite_score", Some(0.3 * 1100.0 / 13.0 + 0.3 * 62.5 + 0.4 * 100.0));
    check(&f, "D", "composite_score", Some(0.3 * 3000.0 / 38.0 + 0.3 * 56.25 + 0.4 * 76.0)); // 70.96
    // B4 reported nothing: no composite (it was 0 when missing months counted as zero).
    check(&f, "B4", "composite_score", None);

    // Status: rural thresholds are lower. B3 0.846 is green for rural (≥ 0.80), would be amber
    // by the default 0.85; B1 0.8 is amber; B2 0.667 red; D (no category) 0.789 amber.
    let status = |u: &str, i: &str| f[&(u.to_string(), i.to_string())].1.clone();
    assert_eq!(status("B3", "attendance_rate"), "green");
    assert_eq!(status("B1", "attendance_rate"), "amber");
    assert_eq!(status("B2", "attendance_rate"), "red");
    assert_eq!(status("D", "attendance_rate"), "amber");
    // B4 reported nothing: what attendance measures is "no data", never red.
    for ind in ["attendance_rate", "activity_day_coverage", "meeting_completion", "composite_score", "weak_candidate"] {
        assert_eq!(status("B4", ind), "no_data", "{ind}");
    }
    assert_eq!(status("B4", "assessment_score"), "", "null value of a source B4 does not report in");
    assert_eq!(status("B4", "reporting_rate"), "red", "not reporting is itself a finding");
    assert_eq!(status("C1", "reporting_rate"), "amber", "5/6 = 0.833: amber from 0.80, green from 0.95");
    // absence is lower-better: B2 0.333 > 0.12 red; B3 0.077 ≤ 0.12 amber.
    assert_eq!(status("B2", "absence_rate"), "red");
    assert_eq!(status("B3", "absence_rate"), "amber");

    // Ranks within level and category: community branches B1 > B2; rural B3 > B4.
    let rank = |u: &str, i: &str| f[&(u.to_string(), i.to_string())].2.clone();
    assert_eq!((rank("B1", "composite_score"), rank("B2", "composite_score")), ("1".into(), "2".into()));
    assert_eq!((rank("B3", "composite_score"), rank("B4", "composite_score")), ("1".into(), "".into()));
    assert_eq!(rank("B1", "absence_rate"), "1", "lower is better: 0.1 beats 0.333");
    assert_eq!(rank("B4", "attendance_rate"), "", "no value, no rank");

    // Weak candidates: B2 alone (all three rules). B4 reported nothing and is not judged; C1
    // and T1 (meetings 0.525), C2 and T2 (0.625) and D (0.5625) were weak only while the
    // months nobody reported counted as meetings not held.
    let weak: Vec<&str> = ["D", "T1", "T2", "C1", "C2", "B1", "B2", "B3", "B4"]
        .into_iter()
        .filter(|u| f[&(u.to_string(), "weak_candidate".to_string())].0 == Some(1.0))
        .collect();
    assert_eq!(weak, vec!["B2"]);
    assert_eq!(f[&("B4".to_string(), "weak_candidate".to_string())].0, None);
    let note = query_csv(&wh, "SELECT note FROM indicators WHERE unit_id = 'B2' AND indicator = 'weak_candidate'");
    assert!(
        note.contains("composite_score 36.0 < 60")
            && note.contains("last of 2 branch units")
            && note.contains("meeting_completion 0.00 < 0.5"),
        "{note}"
    );

    // Change against 2025Q4: B1 had 2 of 3 present.
    let change = |u: &str, i: &str| f[&(u.to_string(), i.to_string())].3;
    assert!((change("B1", "attendance_rate").unwrap() - (0.8 - 2.0 / 3.0)).abs() < 1e-12);
    assert_eq!(change("B2", "attendance_rate"), None, "no rows in 2025Q4: no change");
}

#[test]
fn a_year_and_a_month() {
    let t = tempfile::tempdir().unwrap();
    let wh = warehouse(t.path());
    run_expect(dangjian().args(["compute", "--warehouse"]).arg(&wh).args(["--period", "2026"]), 0);
    let y = figures(&wh, "2026");
    // A year takes its quarters and its annual rows: T1 = (34 + 8 + 14 + 80) / (40 + 20 + 20 + 100).
    check(&y, "T1", "assessment_score", Some(100.0 * 136.0 / 180.0));
    check(&y, "C1", "assessment_score", Some(70.0));
    check(&y, "D", "assessment_score", Some(100.0 * 156.0 / 200.0));
    // A year's meetings are required per reported month: B1 reported January to March, so it
    // owes one quarter's 8, and held member 1, committee 3 of 4, group 2, lesson 1 = 7.
    check(&y, "B1", "meeting_completion", Some(7.0 / 8.0));
    check(&y, "B1", "activity_day_coverage", Some(2.0 / 3.0));
    check(&y, "B1", "reporting_rate", Some(3.0 / 12.0));

    run_expect(dangjian().args(["compute", "--warehouse"]).arg(&wh).args(["--period", "2026-03"]), 0);
    let m = figures(&wh, "2026-03");
    // March, B1: E106, E107 (1 row each), E109 (2), E110 (3): 7 rows, 6 present.
    check(&m, "B1", "attendance_rate", Some(6.0 / 7.0));
    // No meeting completion for a month, so the composite is attendance alone.
    assert!(!m.contains_key(&("B1".to_string(), "meeting_completion".to_string())));
    check(&m, "B1", "assessment_score", None);
    check(&m, "B1", "composite_score", Some(600.0 / 7.0));
    // February, B1: E102 (3 present), E103 (2 of 3), E105 (1): 6 of 7 as well → change 0.
    let ch = m[&("B1".to_string(), "attendance_rate".to_string())].3.unwrap();
    assert!(ch.abs() < 1e-12, "{ch}");
}

/// The review loop's ledgers (SPEC §4), two exports each, the later one (Chinese headers and
/// labels) moving tasks and findings on: T-2 is done late (2026-03-10, due 02-28); F-2 is
/// rectified late (03-25, deadline 03-20); T-6 is done on time; F-4 appears, due next period.
///
/// Tasks (due, done): B1 T-1 01-31/01-20, T-2 02-28/03-10; B2 T-3 03-31/never; B3 T-4
/// 06-30/never, T-6 03-15/03-14; C2 itself T-5 2025-12-31/2026-02-15.
/// Findings (deadline, rectified): B1 F-1 02-10/02-01, F-2 03-20/03-25; B3 F-3 03-01/never,
/// F-4 04-10/never; C1 itself F-5 03-31/03-30.
#[test]
fn the_ledger_indicators_match_the_hand_computation() {
    let t = tempfile::tempdir().unwrap();
    let files = stage(
        &t.path().join("inbox"),
        &[
            "indicators/units.csv",
            "indicators/attendance.csv",
            "indicators/tasks_2026-02.csv",
            "indicators/findings_2026-02.csv",
            "indicators/目标任务台账_2026-03.csv",
            "indicators/问题整改台账_2026-03.csv",
        ],
    );
    let wh = t.path().join("wh");
    let out = run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&wh).args(&files), 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("rows read"), "{text}");
    assert_eq!(query_number(&wh, "SELECT count(*) FROM tasks"), 6.0);
    assert_eq!(query_number(&wh, "SELECT count(*) FROM findings"), 5.0);
    for p in ["2026Q1", "2026-03", "2026-02", "2026"] {
        compute(&wh, p);
    }

    // 2026Q1 (last day 03-31). Tasks due in it: T-1, T-2 (B1), T-3 (B2), T-6 (B3).
    let q1 = figures(&wh, "2026Q1");
    let rate = "task_completion_rate";
    for (unit, want) in [("B1", Some(0.5)), ("B2", Some(0.0)), ("B3", Some(1.0)), ("B4", None), ("C1", Some(1.0 / 3.0))]
    {
        check(&q1, unit, rate, want);
    }
    check(&q1, "C2", rate, Some(1.0));
    check(&q1, "D", rate, Some(0.5));
    // Due by 03-31 and not done by then: T-3 only (T-2 and T-5 were done late, but by then).
    for (unit, want) in [("B1", Some(0.0)), ("B2", Some(1.0)), ("B4", None), ("C1", Some(1.0)), ("C2", Some(0.0))] {
        check(&q1, unit, "overdue_tasks", want);
    }
    check(&q1, "D", "overdue_tasks", Some(1.0));
    // Findings due in Q1: F-1, F-2 (B1), F-3 (B3), F-5 (C1); on time: F-1, F-5.
    let rect = "rectification_rate";
    for (unit, want) in [("B1", Some(0.5)), ("B2", None), ("B3", Some(0.0)), ("C1", Some(2.0 / 3.0)), ("C2", Some(0.0))]
    {
        check(&q1, unit, rect, want);
    }
    check(&q1, "D", rect, Some(0.5));
    // Past its deadline and open at 03-31: F-3 (F-4 is due next period).
    for (unit, want) in [("B1", Some(0.0)), ("B3", Some(1.0)), ("C2", Some(1.0)), ("D", Some(1.0))] {
        check(&q1, unit, "overdue_findings", want);
    }
    // One overdue finding is amber (at most 1), none is green.
    assert_eq!(q1[&("B3".to_string(), "overdue_findings".to_string())].1, "amber");
    assert_eq!(q1[&("B1".to_string(), "overdue_findings".to_string())].1, "green");

    // March: T-3 (B2) and T-6 (B3) due; F-2, F-3, F-5 due, only F-5 on time.
    let mar = figures(&wh, "2026-03");
    check(&mar, "B1", rate, None);
    check(&mar, "D", rate, Some(0.5));
    check(&mar, "D", rect, Some(1.0 / 3.0));
    check(&mar, "B1", rect, Some(0.0));
    check(&mar, "D", "overdue_findings", Some(1.0));
    // February (last day 02-28): F-1 due and on time; F-3's deadline (03-01) is still ahead.
    let feb = figures(&wh, "2026-02");
    check(&feb, "B1", rect, Some(1.0));
    check(&feb, "D", "overdue_findings", Some(0.0));
    check(&feb, "B3", "overdue_findings", None);
    // At 02-28, T-2 (due that day, done 03-10) is overdue, and so was T-5 until 02-15.
    check(&feb, "B1", "overdue_tasks", Some(1.0));
    check(&feb, "C2", "overdue_tasks", Some(0.0));

    // 2026 (last day 12-31): five tasks due, T-1 and T-6 on time; T-3 and T-4 never done.
    let year = figures(&wh, "2026");
    check(&year, "D", rate, Some(0.4));
    check(&year, "D", "overdue_tasks", Some(2.0));
    check(&year, "C2", "overdue_tasks", Some(1.0));
    check(&year, "D", rect, Some(0.4));
    check(&year, "D", "overdue_findings", Some(2.0));
}

#[test]
fn recomputing_gives_the_same_bytes() {
    let t = tempfile::tempdir().unwrap();
    let wh = warehouse(t.path());
    let file = wh.join("indicators/period=2026Q1/part-0.parquet");
    run_expect(dangjian().args(["compute", "--warehouse"]).arg(&wh).args(["--period", "2026Q1"]), 0);
    let first = std::fs::read(&file).unwrap();
    run_expect(dangjian().args(["compute", "--warehouse"]).arg(&wh).args(["--period", "2026Q1"]), 0);
    assert_eq!(first, std::fs::read(&file).unwrap());
    // 9 units × (19 indicators + the weak-unit flag).
    assert_eq!(query_number(&wh, "SELECT count(*) FROM indicators"), 180.0, "replaced, not appended");
}

#[test]
fn a_broken_catalogue_exits_2_naming_line_and_key() {
    let t = tempfile::tempdir().unwrap();
    let wh = warehouse(t.path());
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/indicators.toml")).unwrap();
    let bad = text.replacen("direction = \"lower\"", "direction = \"down\"", 1);
    let line = bad.lines().position(|l| l.contains("\"down\"")).unwrap() + 1;
    let path = t.path().join("bad.toml");
    std::fs::write(&path, bad).unwrap();
    let out = run_expect(
        dangjian().args(["compute", "--warehouse"]).arg(&wh).args(["--period", "2026Q1", "--indicators"]).arg(&path),
        2,
    );
    let err = stderr(&out);
    assert!(err.contains(&format!("bad.toml:{line}:")), "{err}");
    assert!(err.contains("unknown variant `down`"), "{err}");
    assert!(!wh.join("indicators/period=2026Q1").exists(), "nothing computed");
}

#[test]
fn issue_24_an_engine_asked_for_wrongly_exits_2_before_any_work() {
    let t = tempfile::tempdir().unwrap();
    let wh = warehouse(t.path());
    let compute = |args: &[&str]| {
        let out = run_expect(dangjian().args(["compute", "--period", "2026Q1", "--warehouse"]).arg(&wh).args(args), 2);
        stderr(&out)
    };
    let err = compute(&["--engine", "spark"]);
    assert!(err.contains("--engine spark needs --spark-remote"), "{err}");
    let err = compute(&["--engine", "spark", "--spark-remote", "127.0.0.1:15002"]);
    assert!(err.contains("is not a Spark Connect address") && err.contains("sc://HOST:PORT"), "{err}");
    let err = compute(&["--spark-remote", "sc://127.0.0.1:15002"]);
    assert!(err.contains("go with --engine spark"), "{err}");
    // A build without the client says how to get one (CI builds with it: see sql.rs).
    #[cfg(not(feature = "spark"))]
    {
        let err = compute(&["--engine", "spark", "--spark-remote", "sc://127.0.0.1:15002"]);
        assert!(err.contains("built without Spark Connect") && err.contains("--features spark"), "{err}");
    }
    assert!(!wh.join("indicators/period=2026Q1").exists(), "nothing computed");
}

/// Ingest one more units export, made at `mtime` (seconds), with extra arguments.
fn restructure(wh: &Path, dir: &Path, fixture: &str, args: &[&str]) -> Output {
    let file = stage(&dir.join("restructure"), &[fixture]).remove(0);
    set_mtime(&file, 1_775_000_000); // 2026-03-31: later than the first units export
    run_expect(dangjian().args(["ingest", "--warehouse"]).arg(wh).args(args).arg(&file), 0)
}

fn compute(wh: &Path, period: &str) {
    run_expect(dangjian().args(["compute", "--warehouse"]).arg(wh).args(["--period", period]), 0);
}

#[test]
fn issue_27_a_restructure_does_not_rewrite_a_published_quarter() {
    let t = tempfile::tempdir().unwrap();
    let wh = warehouse(t.path());
    compute(&wh, "2025Q4");
    compute(&wh, "2026Q1");
    let q4_file = wh.join("indicators/period=2025Q4/part-0.parquet");
    let published = std::fs::read(&q4_file).unwrap();
    let before = figures(&wh, "2026Q1");
    // Before: 2026Q1 expects 4 branches × 3 months; B1 3, B2 2, B3 3 reported: 8/12.
    check(&before, "D", "reporting_rate", Some(8.0 / 12.0));

    // A complete 2026 export: B1 moves from C1 (community) to C2 (rural), B4 is dissolved.
    restructure(&wh, t.path(), "indicators/units_2026.csv", &["--complete", "--effective", "2026-01-01"]);
    compute(&wh, "2025Q4");
    assert_eq!(published, std::fs::read(&q4_file).unwrap(), "2025Q4 is reproduced byte for byte");

    compute(&wh, "2026Q1");
    let after = figures(&wh, "2026Q1");
    // C2 = B3 (13 rows, 11 present) + B1 (20 rows, 16 present) = 27/33.
    check(&after, "C2", "attendance_rate", Some(27.0 / 33.0));
    check(&after, "T2", "attendance_rate", Some(27.0 / 33.0));
    // C1 = B2 (3 rows, 2 present) + C1's own (2 rows, 1 present) = 3/5.
    check(&after, "C1", "attendance_rate", Some(3.0 / 5.0));
    check(&after, "T1", "attendance_rate", Some(3.0 / 5.0));
    // The district is the same: 30 of 38 rows present.
    check(&after, "D", "attendance_rate", Some(30.0 / 38.0));
    // B4 is gone from 2026Q1 on: 3 branches × 3 months expected, 8 reported.
    check(&after, "D", "reporting_rate", Some(8.0 / 9.0));
    assert!(!after.keys().any(|(u, _)| u == "B4"), "a dissolved unit has no figures after its closing");
    assert!(figures(&wh, "2025Q4").keys().any(|(u, _)| u == "B4"), "but keeps those of before");
    // B1 is ranked with the rural branches it now belongs to, and was with the street ones.
    let cat = |period: &str| {
        query_csv(&wh, &format!("SELECT category FROM indicators WHERE period = '{period}' AND unit_id = 'B1' LIMIT 1"))
    };
    assert!(cat("2025Q4").contains("community") && cat("2026Q1").contains("rural"));
    // `units` is the tree now; `units_history` keeps every stretch.
    assert_eq!(query_number(&wh, "SELECT count(*) FROM units"), 8.0);
    assert_eq!(query_number(&wh, "SELECT count(*) FROM units_history WHERE unit_id = 'B1'"), 2.0);
    let b4 = query_csv(&wh, "SELECT CAST(valid_to AS VARCHAR) FROM units_history WHERE unit_id = 'B4'");
    assert!(b4.contains("2025-12-31"), "{b4}");
}

#[test]
fn issue_27_a_community_splits_in_the_middle_of_a_year() {
    let t = tempfile::tempdir().unwrap();
    let wh = warehouse(t.path());
    // From 2026-02-01 B2 belongs to a new community C3 (生效日期 in the file, Chinese headers).
    restructure(&wh, t.path(), "indicators/units_split.csv", &[]);
    for p in ["2026-01", "2026-02", "2026"] {
        compute(&wh, p);
    }
    // January's tree (on Jan 31) has B2 under C1: B1 6 rows, 4 present; B2 2 rows, 1 present.
    let jan = figures(&wh, "2026-01");
    check(&jan, "C1", "attendance_rate", Some(5.0 / 8.0));
    assert!(!jan.keys().any(|(u, _)| u == "C3"), "C3 did not exist in January");
    // February's: C3 = B2 (1 row, present); C1 = B1 (7 rows, 6 present) + its own (2, 1).
    let feb = figures(&wh, "2026-02");
    check(&feb, "C3", "attendance_rate", Some(1.0));
    check(&feb, "C1", "attendance_rate", Some(7.0 / 9.0));
    // The year rolls up with the tree of Dec 31: C3 takes all of B2's 2026 rows (3, 2 present),
    // C1 keeps B1's (20, 16) and its own (2, 1); the township is the sum either way.
    let year = figures(&wh, "2026");
    check(&year, "C3", "attendance_rate", Some(2.0 / 3.0));
    check(&year, "C1", "attendance_rate", Some(17.0 / 22.0));
    check(&year, "T1", "attendance_rate", Some(19.0 / 25.0));
}

#[test]
fn issue_27_impossible_histories_are_quarantined_with_line_and_column() {
    let t = tempfile::tempdir().unwrap();
    let wh = warehouse(t.path());
    restructure(&wh, t.path(), "indicators/units_bad_history.csv", &["--max-bad-ratio", "1"]);
    let q = query_csv(
        &wh,
        "SELECT line, \"column\", rule, message FROM quarantine WHERE source_file = 'units_bad_history.csv' ORDER BY line",
    );
    let lines: Vec<&str> = q.lines().skip(1).collect();
    assert_eq!(lines.len(), 3, "{q}");
    // Line 2: 撤销日期 before 生效日期.
    assert!(lines[0].starts_with("2,valid_to,range,"), "{q}");
    // Line 3: B6 under C9 from January, but C9 is only valid from March.
    assert!(lines[1].starts_with("3,parent_id,reference,") && lines[1].contains("not valid on 2026-01-01"), "{q}");
    // Line 6: B1's second version starts inside the first one's declared span.
    assert!(lines[2].starts_with("6,valid_from,tree,") && lines[2].contains("overlaps"), "{q}");
    // What was valid loaded: C9 from March, B1's first version.
    assert_eq!(query_number(&wh, "SELECT count(*) FROM units_history WHERE unit_id = 'C9'"), 1.0);
    let b1 = query_csv(&wh, "SELECT unit_name FROM units_history WHERE unit_id = 'B1' ORDER BY valid_from NULLS FIRST");
    assert!(b1.contains("改名一") && !b1.contains("改名二"), "{b1}");
}
