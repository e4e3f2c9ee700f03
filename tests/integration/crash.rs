//! Crash safety: `ingest` (also the first one into a new folder, and one large file read in
//! blocks), `compute` and `run` killed with SIGKILL at 20 moments each, spread over an
//! uninterrupted run's duration. After every kill the warehouse is readable (by
//! dangjian and by DuckDB, through DANGJIAN_PYTHON) and equals a committed state (before or
//! after); a rerun then reaches exactly the uninterrupted result.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::*;

const TRIALS: u32 = 20;

/// Counts and sums of every table, as one string, for comparing states.
fn state(wh: &Path) -> String {
    let mut parts: Vec<String> =
        ["units", "attendance", "points", "assessment", "quarantine", "ingests", "draws", "problems"]
            .iter()
            .map(|t| format!("{t}={}", query_number(wh, &format!("SELECT count(*) FROM {t}"))))
            .collect();
    parts.push(query_csv(wh, "SELECT count(*) AS n, round(sum(value), 6) AS s FROM indicators").replace('\n', " "));
    parts.join(" ")
}

/// DuckDB reads every table.
fn duckdb_reads(wh: &Path) {
    let py = super::interop::python();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/read_warehouse.py");
    let out = Command::new(py).arg(script).arg(wh).output().unwrap();
    assert!(out.status.success(), "DuckDB cannot read the warehouse: {}", String::from_utf8_lossy(&out.stderr));
}

/// Kill `cmd` at TRIALS moments spread over `full`; after each, the state must be `before` or
/// `after`. A kill that came after the commit is counted, and the warehouse is put back to the
/// state before (from a copy) for the next trial. Returns (previous state, new state) counts.
fn trials(wh: &Path, cmd: &dyn Fn() -> Command, full: Duration, before: &str, after: &str) -> (u32, u32) {
    let pristine = wh.with_extension("pristine");
    copy_warehouse(wh, &pristine);
    let (mut previous, mut completed) = (0, 0);
    for i in 1..=TRIALS {
        let at = full.mul_f64(i as f64 / (TRIALS + 1) as f64);
        let mut child = cmd().stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
        std::thread::sleep(at);
        let _ = child.kill();
        let _ = child.wait();
        let now = state(wh);
        duckdb_reads(wh);
        if now == before {
            previous += 1;
        } else if now == after {
            completed += 1;
            std::fs::remove_dir_all(wh).unwrap();
            copy_warehouse(&pristine, wh);
        } else {
            panic!(
                "kill {i} at {at:?} left a state that is neither before nor after:\n{now}\nbefore {before}\nafter {after}"
            );
        }
    }
    (previous, completed)
}

fn sample(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    // Large enough that each verb takes a while: about 150k attendance rows.
    run_expect(
        dangjian().args(["sample", "--units", "120", "--members", "4000", "--months", "12", "--out"]).arg(&data),
        0,
    );
    data
}

#[test]
fn killing_an_ingest_leaves_the_previous_state_and_a_rerun_completes() {
    let t = tempfile::tempdir().unwrap();
    let data = sample(t.path());
    let units_dir = data.join("units");
    let reference = t.path().join("reference");
    run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&reference).arg(&units_dir), 0);
    let started = Instant::now();
    run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&reference).arg(&data), 0);
    let full = started.elapsed();
    let after = state(&reference);

    let wh = t.path().join("wh");
    run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&wh).arg(&units_dir), 0);
    let before = state(&wh);
    let cmd = || {
        let mut c = dangjian();
        c.args(["ingest", "--warehouse"]).arg(&wh).arg(&data);
        c
    };
    let (previous, completed) = trials(&wh, &cmd, full, &before, &after);
    eprintln!("ingest: {TRIALS} kills; {previous} left the previous state, {completed} the new one, 0 anything else");
    assert!(previous >= 1, "no kill landed before the commit (a load takes {full:?})");
    run_expect(&mut cmd(), 0);
    assert_eq!(state(&wh), after);
    let leftovers: Vec<String> = std::fs::read_dir(wh.join(".snapshots"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// The first ingest into a new folder (issue 18), killed at 20 moments: ten in its first 30 ms,
/// where the warehouse is created, and ten spread over the rest. After each kill the folder is
/// missing, an empty warehouse or the whole ingest, every verb reads it, and a rerun completes
/// it without leftovers.
#[test]
fn killing_the_first_ingest_into_a_new_folder_leaves_no_warehouse_an_empty_one_or_the_whole() {
    let t = tempfile::tempdir().unwrap();
    let data = sample(t.path());
    let reference = t.path().join("reference");
    let started = Instant::now();
    run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&reference).arg(&data), 0);
    let full = started.elapsed();
    let after = state(&reference);
    let empty = |wh: &Path| {
        ["units", "attendance", "points", "assessment", "ingests"]
            .iter()
            .all(|table| query_number(wh, &format!("SELECT count(*) FROM {table}")) == 0.0)
    };
    let (mut none, mut empties, mut whole) = (0, 0, 0);
    for i in 1..=TRIALS {
        let wh = t.path().join(format!("wh{i}"));
        let at = if i <= TRIALS / 2 {
            Duration::from_millis(3 * i as u64)
        } else {
            full.mul_f64((i - TRIALS / 2) as f64 / (TRIALS / 2 + 1) as f64)
        };
        let mut child = dangjian()
            .args(["ingest", "--warehouse"])
            .arg(&wh)
            .arg(&data)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(at);
        let _ = child.kill();
        let _ = child.wait();
        if !wh.exists() {
            none += 1;
        } else if empty(&wh) {
            duckdb_reads(&wh);
            empties += 1;
        } else {
            assert_eq!(state(&wh), after, "kill {i} at {at:?} left a state that is neither empty nor whole");
            duckdb_reads(&wh);
            whole += 1;
        }
        run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&wh).arg(&data), 0);
        assert_eq!(state(&wh), after, "the rerun after kill {i} at {at:?}");
    }
    eprintln!(
        "first ingest: {TRIALS} kills; {none} left no warehouse, {empties} an empty one, {whole} the whole ingest"
    );
    assert!(none + empties >= 1, "no kill landed before the commit (a load takes {full:?})");
    let leftovers: Vec<String> = std::fs::read_dir(t.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("dangjian-new"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// One export of a whole year (about 150k rows, 7 MB), read in blocks on every core as a large
/// backfill is (`--blocks-from-mib 0`), killed at 20 moments.
#[test]
fn killing_the_ingest_of_one_large_file_read_in_blocks_leaves_a_committed_state() {
    let t = tempfile::tempdir().unwrap();
    let plain = t.path().join("plain");
    run_expect(
        dangjian()
            .args(["sample", "--plain", "--units", "120", "--members", "4000", "--months", "12", "--out"])
            .arg(&plain),
        0,
    );
    let mut months: Vec<PathBuf> =
        std::fs::read_dir(plain.join("attendance")).unwrap().map(|e| e.unwrap().path()).collect();
    months.sort();
    let mut year = String::new();
    for (i, m) in months.iter().enumerate() {
        let text = std::fs::read_to_string(m).unwrap();
        year.push_str(if i == 0 { &text } else { text.split_once('\n').unwrap().1 });
    }
    let backfill = t.path().join("backfill");
    std::fs::create_dir_all(&backfill).unwrap();
    std::fs::write(backfill.join("attendance_year.csv"), &year).unwrap();
    let ingest = |wh: &Path| {
        let mut c = dangjian();
        c.args(["ingest", "--blocks-from-mib", "0", "--warehouse"]).arg(wh).arg(&backfill);
        c
    };
    let reference = t.path().join("reference");
    run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&reference).arg(plain.join("units")), 0);
    let started = Instant::now();
    run_expect(&mut ingest(&reference), 0);
    let full = started.elapsed();
    let after = state(&reference);
    assert!(after.contains(&format!("attendance={}", year.lines().count() - 1)), "{after}");

    let wh = t.path().join("wh");
    run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&wh).arg(plain.join("units")), 0);
    let before = state(&wh);
    let (previous, completed) = trials(&wh, &|| ingest(&wh), full, &before, &after);
    eprintln!("ingest in blocks: {TRIALS} kills; {previous} left the previous state, {completed} the new one");
    assert!(previous >= 1, "no kill landed before the commit (a load takes {full:?})");
    run_expect(&mut ingest(&wh), 0);
    assert_eq!(state(&wh), after);
}

#[test]
fn killing_a_compute_keeps_the_old_indicators_and_a_rerun_matches() {
    let t = tempfile::tempdir().unwrap();
    let data = sample(t.path());
    let wh = t.path().join("wh");
    run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&wh).arg(&data), 0);
    let before = state(&wh);
    let reference = t.path().join("reference");
    copy_warehouse(&wh, &reference);
    let started = Instant::now();
    run_expect(dangjian().args(["compute", "--period", "2026Q1", "--warehouse"]).arg(&reference), 0);
    let full = started.elapsed();
    let after = state(&reference);
    let cmd = || {
        let mut c = dangjian();
        c.args(["compute", "--period", "2026Q1", "--warehouse"]).arg(&wh);
        c
    };
    let (previous, completed) = trials(&wh, &cmd, full, &before, &after);
    eprintln!("compute: {TRIALS} kills; {previous} left the previous state, {completed} the new one, 0 anything else");
    assert!(previous >= 1, "no kill landed before the commit (compute takes {full:?})");
    run_expect(&mut cmd(), 0);
    assert_eq!(state(&wh), after);
    let file = "indicators/period=2026Q1/part-0.parquet";
    assert_eq!(std::fs::read(wh.join(file)).unwrap(), std::fs::read(reference.join(file)).unwrap(), "the same bytes");
}

#[test]
fn killing_a_run_keeps_a_consistent_warehouse_and_a_rerun_completes() {
    let t = tempfile::tempdir().unwrap();
    let data = sample(t.path());
    let pipeline = t.path().join("review.toml");
    std::fs::write(
        &pipeline,
        "name = \"review\"\nkind = \"quarter\"\nperiod = \"2026Q1\"\ninbox = \"data\"\nwarehouse = \"wh\"\nout = \"out/{period}\"\n\
         stages = [\"ingest\", \"compute\", \"draw\", \"report\"]\n[draw]\nseed = 7\n",
    )
    .unwrap();
    let _ = data;
    let started = Instant::now();
    let reference_pipeline = t.path().join("reference.toml");
    std::fs::write(
        &reference_pipeline,
        std::fs::read_to_string(&pipeline)
            .unwrap()
            .replace("\"wh\"", "\"ref\"")
            .replace("out/{period}", "refout/{period}"),
    )
    .unwrap();
    run_expect(dangjian().arg("run").arg(&reference_pipeline), 0);
    let full = started.elapsed();
    let reference = t.path().join("ref");
    // A run commits several times (ingest, compute ×1, draw, problems): every kill must leave
    // one of those committed states, and the rerun must reach the final one.
    let committed = committed_states(t.path(), &pipeline);
    let wh = t.path().join("wh");
    for i in 1..=TRIALS {
        let at = full.mul_f64(i as f64 / (TRIALS + 1) as f64);
        let mut child = dangjian()
            .arg("run")
            .arg(&pipeline)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(at);
        let _ = child.kill();
        let _ = child.wait();
        if wh.join(".dangjian-warehouse").exists() {
            let now = state(&wh);
            assert!(
                committed.contains(&now),
                "kill {i} at {at:?} left a state no commit makes:\n{now}\n{committed:#?}"
            );
            duckdb_reads(&wh);
        }
        let report = t.path().join("out/2026Q1/report.html");
        if report.exists() {
            assert!(
                std::fs::read_to_string(&report).unwrap().trim_end().ends_with("</html>"),
                "a half-written report after kill {i}"
            );
        }
    }
    run_expect(dangjian().arg("run").arg(&pipeline), 0);
    assert_eq!(state(&wh), state(&reference));
}

/// The states a run of `pipeline` commits one after another, from a new warehouse: created and
/// empty, then after each stage that writes to it. Made by running its stages one at a time
/// on a warehouse of their own.
fn committed_states(dir: &Path, pipeline: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(pipeline)
        .unwrap()
        .replace("\"wh\"", "\"steps\"")
        .replace("out/{period}", "stepsout/{period}");
    let wh = dir.join("steps");
    let mut states = Vec::new();
    for (i, stage) in ["ingest", "compute", "draw", "report"].into_iter().enumerate() {
        let one = dir.join(format!("step-{stage}.toml"));
        let stages = format!("stages = [\"{stage}\"]");
        std::fs::write(
            &one,
            text.lines()
                .map(|l| if l.starts_with("stages") { stages.as_str() } else { l })
                .collect::<Vec<_>>()
                .join("\n"),
        )
        .unwrap();
        run_expect(dangjian().arg("run").arg(&one), 0);
        if i == 0 {
            // Created, nothing committed: what an ingest leaves when every file is refused.
            let (empty, refused) = (dir.join("empty"), dir.join("refused.csv"));
            std::fs::write(&refused, "no,kind\n1,2\n").unwrap();
            run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&empty).arg(&refused), 1);
            states.push(state(&empty));
        }
        states.push(state(&wh));
    }
    states
}

fn copy_warehouse(from: &Path, to: &Path) {
    // `cp -a` keeps the symlinks and hard links as they are.
    let ok = Command::new("cp").arg("-a").arg(from).arg(to).status().unwrap().success();
    assert!(ok);
}
