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
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/read_warehouse.py");
    let out = Command::new(&py).arg(&script).arg(&wh).output().expect("python runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for table in ["units", "attendance", "points", "assessment", "quarantine", "ingests", "indicators"] {
        let ours = query_number(&wh, &format!("SELECT count(*) FROM {table}")) as u64;
        assert!(ours > 0, "{table} is empty: the sample should fill it");
        assert_eq!(got[table]["duckdb"].as_u64(), Some(ours), "{table} via DuckDB");
        assert_eq!(got[table]["pyarrow"].as_u64(), Some(ours), "{table} via pyarrow");
    }
    let types = |t: &str, c: &str| got[t]["types"][c].as_str().unwrap_or("missing").to_string();
    assert_eq!(types("attendance", "event_date"), "date32[day]");
    assert_eq!(types("points", "entry_date"), "date32[day]");
    assert_eq!(types("attendance", "source_mtime"), "timestamp[us]");
    assert_eq!(types("ingests", "ingested_at"), "timestamp[us]");
    assert_eq!(types("attendance", "month"), "int32", "hive partition column");
    assert_eq!(types("indicators", "period"), "string");
}
