//! `dangjian sql --dialect spark`: Spark (local mode, pyspark from PyPI) reads every table with
//! the right types and counts, and the appraisal script gives the same appraisal as `report`
//! for a year; `compute --engine spark` runs the indicator script on a Spark Connect server and
//! writes the same indicators as `compute` for a month, a quarter and a year. Needs
//! `DANGJIAN_PYTHON` with pyspark (scripts/test) and Java; see interop.rs for when a missing
//! Python fails.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use super::*;

fn spark(py: &str, args: &[&std::ffi::OsStr]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/spark_run.py");
    let out = Command::new(py).arg(script).args(args).output().expect("python runs");
    assert!(out.status.success(), "spark failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    close_at(a, b, 0.0)
}

/// `close`, with the tolerance at least relative to `scale`: a difference of two figures
/// (`change`) carries their rounding, not its own (a completion of 0.875 in both quarters, its
/// parts summed in different orders, gives a change of ±1.1e-16, not 0).
fn close_at(a: f64, b: f64, scale: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(scale)
}

/// `dangjian query --format json`'s rows.
fn json_rows(wh: &Path, sql: &str) -> Vec<serde_json::Value> {
    let out = run_expect(dangjian().args(["query", "--format", "json", "--warehouse"]).arg(wh).arg(sql), 0);
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn text(v: &serde_json::Value, key: &str) -> String {
    v[key].as_str().unwrap().to_string()
}

#[test]
fn spark_reads_the_warehouse_and_the_appraisal_script_matches_report() {
    let py = super::interop::python();
    let t = tempfile::tempdir().unwrap();
    let wh = t.path().join("wh");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data");
    run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&wh).arg(&sample), 0);
    // The appraisal of 2025 (SPEC §6): its script reads the year's and the quarters' indicators.
    for p in ["2025", "2025Q1", "2025Q2", "2025Q3", "2025Q4", "2026Q1"] {
        run_expect(dangjian().args(["compute", "--period", p, "--warehouse"]).arg(&wh), 0);
    }
    run_expect(dangjian().args(["draw", "--period", "2026Q1", "--seed", "1", "--warehouse"]).arg(&wh), 0);
    run_expect(
        dangjian().args(["report", "--period", "2025", "--warehouse"]).arg(&wh).arg("--out").arg(t.path().join("y")),
        0,
    );
    let appraisal_sql = t.path().join("appraisal-2025.sql");
    let sql = run_expect(
        dangjian().args(["sql", "--dialect", "spark", "--period", "2025", "--appraisal", "--warehouse"]).arg(&wh),
        0,
    );
    std::fs::write(&appraisal_sql, &sql.stdout).unwrap();
    run_expect(
        dangjian()
            .args(["report", "--period", "2026Q1", "--warehouse"])
            .arg(&wh)
            .arg("--out")
            .arg(t.path().join("out")),
        0,
    );

    // Every table, read by Spark with partition discovery: counts and types.
    let tables = spark(&py, &["tables".as_ref(), wh.as_os_str()]);
    // The reports, the draw and the appraisal fill three more.
    for table in SAMPLE_TABLES.into_iter().chain(["problems", "draws", "appraisal"]) {
        let ours = query_number(&wh, &format!("SELECT count(*) FROM {table}")) as u64;
        assert!(ours > 0, "{table} is empty");
        assert_eq!(tables[table]["count"].as_u64(), Some(ours), "{table}");
    }
    let ty = |t: &str, c: &str| tables[t]["types"][c].as_str().unwrap_or("missing").to_string();
    assert_eq!(ty("attendance", "event_date"), "date");
    assert_eq!(ty("attendance", "source_mtime"), "timestamp_ntz");
    assert_eq!(ty("attendance", "month"), "int");
    assert_eq!(ty("points", "points"), "double");
    assert_eq!(ty("ingests", "ingested_at"), "timestamp_ntz");
    assert_eq!(ty("indicators", "period"), "string");
    assert_eq!(ty("submissions", "first_received"), "timestamp_ntz");

    // The indicator scripts of `sql --dialect spark --period` are run statement by statement,
    // as spark-sql runs them, through Spark Connect (issue 24's test, below): the same text.
    // The appraisal: every graded unit's score, rank, grade and eligibility.
    let results = spark(&py, &["scripts".as_ref(), appraisal_sql.as_os_str()]);
    let rows = results[appraisal_sql.to_str().unwrap()].as_array().unwrap();
    let ours: HashMap<String, serde_json::Value> =
        json_rows(&wh, "SELECT unit_id, score, rank, grade, eligible FROM appraisal WHERE year = 2025")
            .into_iter()
            .map(|v| (text(&v, "unit_id"), v))
            .collect();
    assert_eq!(rows.len(), ours.len(), "appraisal: row count");
    assert!(rows.len() >= 25, "{} appraised", rows.len());
    for r in rows {
        let unit = r["unit_id"].as_str().unwrap();
        let o = &ours[unit];
        match (r["score"].as_f64(), o["score"].as_f64()) {
            (Some(a), Some(b)) => assert!(close(a, b), "appraisal {unit}: spark {a}, dangjian {b}"),
            (a, b) => assert_eq!(a, b, "appraisal {unit} score"),
        }
        for col in ["rank", "grade"] {
            assert_eq!(r[col].as_i64(), o[col].as_i64(), "appraisal {unit} {col}");
        }
        assert_eq!(r["eligible"].as_bool(), o["eligible"].as_bool(), "appraisal {unit} eligible");
    }
}

/// A Spark Connect server started by scripts/spark-connect-server from the test Python's
/// pyspark, on a free loopback port; stopped when dropped.
#[cfg(feature = "spark")]
struct ConnectServer {
    child: std::process::Child,
    url: String,
    _log: tempfile::NamedTempFile,
}

#[cfg(feature = "spark")]
impl ConnectServer {
    fn start(py: &str) -> ConnectServer {
        let port = free_port();
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut child = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/spark-connect-server"))
            .arg(port.to_string())
            .env("DANGJIAN_PYTHON", py)
            // Two cores, and the sample is small: two shuffle partitions, as in spark_run.py.
            .env("SPARK_SHUFFLE_PARTITIONS", "2")
            .env("SPARK_MASTER", "local[2]")
            .stdout(log.reopen().unwrap())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("scripts/spark-connect-server starts");
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let gone = child.try_wait().unwrap();
            if gone.is_some() || started.elapsed().as_secs() > 240 {
                let _ = child.kill();
                let text = std::fs::read_to_string(log.path()).unwrap_or_default();
                panic!("the Spark Connect server did not listen on {port} ({gone:?}):\n{text}");
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        ConnectServer { child, url: format!("sc://127.0.0.1:{port}"), _log: log }
    }
}

#[cfg(feature = "spark")]
impl Drop for ConnectServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on (free when asked).
#[cfg(feature = "spark")]
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Where `current` points: what a write changes.
#[cfg(feature = "spark")]
fn current(wh: &Path) -> std::path::PathBuf {
    std::fs::read_link(wh.join("current")).unwrap()
}

/// Issue 24: `compute --engine spark` through a real Spark Connect server writes, for a
/// quarter, a month, a year and a month with branches that sent nothing, the rows `compute`
/// writes (same order; counts exactly, ratios to 1e-9; status, rank and the weak-unit notes);
/// a pipeline does the same and records the engine; a server that is down, a warehouse path
/// Spark cannot see, and another warehouse are refused with the warehouse left as it was.
#[cfg(feature = "spark")]
#[test]
fn issue_24_compute_on_spark_connect_writes_what_compute_writes() {
    let py = super::interop::python();
    let server = ConnectServer::start(&py);
    let t = tempfile::tempdir().unwrap();
    let wh = t.path().join("wh");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data");
    run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&wh).arg(&sample), 0);
    let rows = |p: &str| json_rows(&wh, &format!("SELECT * FROM indicators WHERE period = '{p}'"));
    // The summary a compute prints, but for the snapshot's number.
    let summary = |out: &std::process::Output| {
        let text = stdout(out);
        text.split_once(" (snapshot").map(|(a, b)| format!("{a}{}", b.split_once(')').unwrap().1)).unwrap()
    };
    let pipeline = t.path().join("spark.toml");
    std::fs::write(
        &pipeline,
        format!(
            "name = \"spark\"\nkind = \"quarter\"\nwarehouse = \"{}\"\nout = \"{}\"\nstages = [\"compute\"]\n[compute]\nengine = \"spark\"\nspark_remote = \"{}\"\n",
            wh.display(),
            t.path().join("out").display(),
            server.url
        ),
    )
    .unwrap();
    for p in ["2026Q1", "2026-03", "2025", "2025-01"] {
        let local = run_expect(dangjian().args(["compute", "--period", p, "--warehouse"]).arg(&wh), 0);
        let ours = rows(p);
        if p == "2026Q1" {
            // The quarter goes through a pipeline, whose manifest names the engine.
            run_expect(dangjian().arg("run").arg(&pipeline).args(["--period", p]), 0);
            let runs = std::fs::read_dir(wh.join("runs")).unwrap().flatten().map(|e| e.path()).collect::<Vec<_>>();
            assert_eq!(runs.len(), 1);
            let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(&runs[0]).unwrap()).unwrap();
            assert_eq!(manifest["compute_engine"]["engine"], "spark");
            assert_eq!(manifest["compute_engine"]["spark_remote"].as_str(), Some(server.url.as_str()));
        } else {
            let remote = run_expect(
                dangjian()
                    .args(["compute", "--engine", "spark", "--spark-remote", &server.url, "--period", p, "--warehouse"])
                    .arg(&wh),
                0,
            );
            assert_eq!(summary(&remote), summary(&local), "{p}: the summary");
        }
        let theirs = rows(p);
        assert_eq!(theirs.len(), ours.len(), "{p}: row count");
        assert!(ours.len() >= 300, "{p}: {} rows", ours.len());
        let mut notes = 0;
        for (a, b) in theirs.iter().zip(&ours) {
            let key = (text(b, "unit_id"), text(b, "indicator"));
            for col in ["unit_id", "indicator", "unit_name", "level", "category", "status", "rank", "note"] {
                assert_eq!(a[col], b[col], "{p} {key:?} {col}");
            }
            notes += usize::from(b["note"].is_string());
            let terms = ["value", "previous_value"].map(|c| b[c].as_f64().unwrap_or(0.0).abs());
            for col in ["value", "numerator", "denominator", "previous_value", "change"] {
                let scale = if col == "change" { terms[0].max(terms[1]) } else { 0.0 };
                match (a[col].as_f64(), b[col].as_f64()) {
                    // A count is a whole number: exactly that.
                    (Some(x), Some(y)) if y.fract() == 0.0 && col != "change" => assert_eq!(x, y, "{p} {key:?} {col}"),
                    (Some(x), Some(y)) => assert!(close_at(x, y, scale), "{p} {key:?} {col}: spark {x}, dangjian {y}"),
                    (x, y) => assert_eq!(x, y, "{p} {key:?} {col}"),
                }
            }
        }
        if p == "2026Q1" {
            assert!(notes > 0, "the quarter has weak-unit candidates, with their notes");
            // The review loop's indicators were among the rows compared, with values.
            let ledger = query_number(
                &wh,
                "SELECT count(*) FROM indicators WHERE period = '2026Q1' AND value IS NOT NULL AND indicator IN \
                 ('task_completion_rate', 'overdue_tasks', 'rectification_rate', 'overdue_findings')",
            );
            assert!(ledger >= 40.0, "{ledger} ledger figures");
        }
        if p == "2025-01" {
            // Two branches sent nothing that month: "no data" is compared too (issue 26).
            let no_data =
                query_number(&wh, "SELECT count(*) FROM indicators WHERE period = '2025-01' AND status = 'no_data'");
            assert!(no_data > 0.0, "the branches that did not report in 2025-01 are no_data");
        }
    }

    // What must fail leaves the warehouse as it was (exit 1, `current` unchanged).
    let before = (current(&wh), rows("2026Q1"));
    let refused = |args: &[&str]| {
        let out = run_expect(
            dangjian().args(["compute", "--engine", "spark", "--period", "2026Q1", "--warehouse"]).arg(&wh).args(args),
            1,
        );
        assert_eq!((current(&wh), rows("2026Q1")), before, "{args:?}: the warehouse is as it was");
        stderr(&out)
    };
    let down = format!("sc://127.0.0.1:{}", free_port());
    let err = refused(&["--spark-remote", &down]);
    assert!(err.contains(&format!("Spark Connect at {down} does not answer")), "{err}");
    let err = refused(&["--spark-remote", &server.url, "--spark-warehouse", "/nowhere/wh"]);
    assert!(
        err.contains("Spark cannot read the warehouse at /nowhere/wh") && err.contains("--spark-warehouse"),
        "{err}"
    );
    // Another warehouse Spark can read: the nine units of the compute fixture.
    let other = t.path().join("other");
    let units = stage(&t.path().join("units"), &["indicators/units.csv"]);
    run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&other).args(&units), 0);
    let err = refused(&["--spark-remote", &server.url, "--spark-warehouse", other.to_str().unwrap()]);
    assert!(err.contains("Spark sees 9 rows of units_history") && err.contains("must name this warehouse"), "{err}");
}
