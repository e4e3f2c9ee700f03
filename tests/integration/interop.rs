//! Readers that know nothing of dangjian (DuckDB and pyarrow from PyPI) read every table with
//! the same row counts as `dangjian query`, and see dates as DATE and timestamps in
//! microseconds.
//!
//! Needs a Python with duckdb and pyarrow in `DANGJIAN_PYTHON` (scripts/test sets one up).
//! Without it the test says so and passes, unless `DANGJIAN_REQUIRE_INTEROP=1` (set by
//! scripts/test and CI), where a missing Python is a failure.

use std::path::Path;
use std::process::Command;

use super::*;

pub fn python() -> Option<String> {
    match std::env::var("DANGJIAN_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            assert!(
                std::env::var("DANGJIAN_REQUIRE_INTEROP").is_err(),
                "DANGJIAN_REQUIRE_INTEROP is set but DANGJIAN_PYTHON is not: run scripts/test"
            );
            eprintln!("interop: DANGJIAN_PYTHON is not set; run scripts/test to include DuckDB and pyarrow");
            None
        }
    }
}

/// What DuckDB and pyarrow make of the warehouse at `wh` (see tests/interop/read_warehouse.py).
fn read_with_python(py: &str, wh: &Path) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/read_warehouse.py");
    let out = Command::new(py).arg(&script).arg(wh).output().expect("python runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn duckdb_and_pyarrow_read_every_table() {
    let Some(py) = python() else { return };
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    run_expect(
        dangjian()
            .args(["sample", "--units", "30", "--members", "100", "--months", "6", "--dirty", "0.01", "--out"])
            .arg(&data),
        0,
    );
    let wh = t.path().join("wh");
    run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&wh).arg(&data), 0);
    run_expect(dangjian().args(["compute", "--period", "2026Q1", "--warehouse"]).arg(&wh), 0);
    run_expect(dangjian().args(["compute", "--period", "2026-02", "--warehouse"]).arg(&wh), 0);
    let got = read_with_python(&py, &wh);
    for table in ["units", "attendance", "points", "assessment", "quarantine", "ingests", "indicators"] {
        let ours = query_number(&wh, &format!("SELECT count(*) FROM {table}")) as u64;
        assert!(ours > 0, "{table} is empty: the sample should fill it");
        assert_eq!(got[table]["duckdb"].as_u64(), Some(ours), "{table} via DuckDB");
        assert_eq!(got[table]["pyarrow"].as_u64(), Some(ours), "{table} via pyarrow");
    }
    let lines = query_number(&wh, "SELECT sum(source_line) FROM attendance") as u64;
    assert_eq!(got["attendance"]["line_sum_duckdb"].as_u64(), Some(lines));
    assert_eq!(got["attendance"]["line_sum_pyarrow"].as_u64(), Some(lines));
    let types = |t: &str, c: &str| got[t]["types"][c].as_str().unwrap_or("missing").to_string();
    assert_eq!(types("attendance", "event_date"), "date32[day]");
    assert_eq!(types("points", "entry_date"), "date32[day]");
    assert_eq!(types("attendance", "source_mtime"), "timestamp[us]");
    assert_eq!(types("ingests", "ingested_at"), "timestamp[us]");
    assert_eq!(types("attendance", "month"), "int32", "hive partition column");
    assert_eq!(types("indicators", "period"), "string");
}

/// A month's export long enough (over 65,536 lines) that its source lines are stored as deltas
/// (DELTA_BINARY_PACKED) reads back the same in DuckDB and pyarrow as in dangjian.
#[test]
fn long_exports_read_the_same_everywhere() {
    let Some(py) = python() else { return };
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    run_expect(
        dangjian()
            .args(["sample", "--plain", "--units", "30", "--members", "45000", "--months", "1", "--out"])
            .arg(&data),
        0,
    );
    let wh = t.path().join("wh");
    run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&wh).arg(&data), 0);
    let longest = query_number(&wh, "SELECT max(source_line) FROM attendance");
    assert!(longest > 65_536.0, "the export has only {longest} lines");
    let got = read_with_python(&py, &wh);
    let ours = query_number(&wh, "SELECT sum(source_line) FROM attendance") as u64;
    assert_eq!(got["attendance"]["line_sum_duckdb"].as_u64(), Some(ours));
    assert_eq!(got["attendance"]["line_sum_pyarrow"].as_u64(), Some(ours));
}
