//! `dangjian draw`: reproducible, recorded, refused twice without --force, exclusions hold.

use super::*;

fn warehouse(dir: &std::path::Path) -> std::path::PathBuf {
    let files = stage(
        &dir.join("inbox"),
        &["indicators/units.csv", "indicators/attendance.csv", "indicators/points.csv", "indicators/assessment.csv"],
    );
    let wh = dir.join("wh");
    run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&wh).args(&files), 0);
    wh
}

fn chosen(out: &std::process::Output) -> Vec<String> {
    stdout(out).lines().skip(1).map(|l| l.split_whitespace().next().unwrap().to_string()).collect()
}

#[test]
fn a_draw_is_reproducible_recorded_and_not_repeated_without_force() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (warehouse(&t.path().join("a")), warehouse(&t.path().join("b")));
    let draw = |wh: &std::path::Path, extra: &[&str], code| {
        run_expect(
            dangjian().args(["draw", "--period", "2026Q1", "--level", "branch", "--warehouse"]).arg(wh).args(extra),
            code,
        )
    };
    // Two warehouses, same seed and candidates: the same units.
    let first = chosen(&draw(&a, &["--count", "2", "--seed", "20260401"], 0));
    assert_eq!(first.len(), 2);
    assert_eq!(first, chosen(&draw(&b, &["--count", "2", "--seed", "20260401"], 0)));
    // Candidates are the four branches B1-B4, sorted; the record says so.
    assert_eq!(
        query_csv(&a, "SELECT candidates, chosen, forced FROM draws"),
        format!("candidates,chosen,forced\n\"B1:1,B2:1,B3:1,B4:1\",\"{}\",false\n", first.join(","))
    );
    // A second draw of the same quarter is refused, and nothing is recorded.
    let out = draw(&a, &["--seed", "20260401"], 1);
    assert!(stderr(&out).contains("2026Q1 was already drawn"), "{}", stderr(&out));
    assert_eq!(query_number(&a, "SELECT count(*) FROM draws"), 1.0);
    // With --force it is drawn again and recorded as forced.
    draw(&a, &["--force", "--seed", "7"], 0);
    assert_eq!(query_csv(&a, "SELECT forced FROM draws ORDER BY drawn_at"), "forced\nfalse\ntrue\n");
    // A month is not a quarter.
    run_expect(dangjian().args(["draw", "--period", "2026-03", "--seed", "1", "--warehouse"]).arg(&a), 2);
}

#[test]
fn units_drawn_recently_are_left_out() {
    let t = tempfile::tempdir().unwrap();
    let wh = warehouse(t.path());
    let q4 = chosen(&run_expect(
        dangjian()
            .args(["draw", "--period", "2025Q4", "--seed", "1", "--level", "branch", "--count", "3", "--warehouse"])
            .arg(&wh),
        0,
    ));
    // Four branches, three drawn in 2025Q4: excluding the last quarter leaves exactly one.
    let q1 = chosen(&run_expect(
        dangjian()
            .args([
                "draw",
                "--period",
                "2026Q1",
                "--seed",
                "2",
                "--level",
                "branch",
                "--count",
                "2",
                "--exclude-recent",
                "1",
                "--warehouse",
            ])
            .arg(&wh),
        0,
    ));
    assert_eq!(q1.len(), 1);
    assert!(!q4.contains(&q1[0]), "{q1:?} was drawn in 2025Q4: {q4:?}");
}
