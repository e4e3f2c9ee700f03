//! A crash at any moment leaves the previous warehouse intact and readable, and the next run
//! completes: `ingest` is killed (SIGKILL) at several moments of a large load.

use std::time::Instant;

use super::*;

/// Counts of every table, as one string, for comparing states.
fn state(wh: &std::path::Path) -> String {
    ["units", "attendance", "points", "assessment", "quarantine", "ingests"]
        .map(|t| format!("{t}={}", query_number(wh, &format!("SELECT count(*) FROM {t}"))))
        .join(" ")
}

#[test]
fn killing_an_ingest_leaves_the_previous_state_and_a_rerun_completes() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    // Large enough that an ingest takes a while: about 150k attendance rows.
    run_expect(
        dangjian().args(["sample", "--units", "120", "--members", "4000", "--months", "12", "--out"]).arg(&data),
        0,
    );
    let units_dir = data.join("units");

    // The reference: an uninterrupted run, timed.
    let reference = t.path().join("reference");
    run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&reference).arg(&units_dir), 0);
    let started = Instant::now();
    run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&reference).arg(&data), 0);
    let full = started.elapsed();
    let want = state(&reference);

    let wh = t.path().join("wh");
    run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&wh).arg(&units_dir), 0);
    let before = state(&wh);
    let mut interrupted = 0;
    for i in 1..=6u32 {
        // Kill at spread-out moments of the load, from the start to near the end.
        let at = full.mul_f64(i as f64 / 7.0);
        let mut child = dangjian().args(["ingest", "--warehouse"]).arg(&wh).arg(&data).spawn().unwrap();
        std::thread::sleep(at);
        let finished = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        let _ = child.wait();
        let now = state(&wh);
        if finished || now == want {
            // It got to commit before the kill; the state is the complete new one.
            assert_eq!(now, want);
            break;
        }
        interrupted += 1;
        assert_eq!(now, before, "kill {i} at {at:?} left a state that is neither before nor after");
    }
    assert!(interrupted >= 1, "no kill landed before the commit (a load takes {full:?})");
    // The rerun completes to exactly the uninterrupted result.
    run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&wh).arg(&data), 0);
    assert_eq!(state(&wh), want);
    // No staging leftovers remain after a successful run.
    let leftovers: Vec<String> = std::fs::read_dir(wh.join(".snapshots"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
