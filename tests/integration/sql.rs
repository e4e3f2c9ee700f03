//! `dangjian sql --dialect spark`: Spark (local mode, pyspark from PyPI) reads every table with
//! the right types and counts, and the generated script computes the same indicators as
//! `dangjian compute` for a month, a quarter and a year, and the appraisal script the same
//! appraisal as `report` for a year. Needs `DANGJIAN_PYTHON` with pyspark
//! (scripts/test) and Java; see interop.rs for when a missing Python fails.

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
fn spark_reads_the_warehouse_and_the_script_matches_compute() {
    let py = super::interop::python();
    let t = tempfile::tempdir().unwrap();
    let wh = t.path().join("wh");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data");
    run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&wh).arg(&sample), 0);
    // 2025-01: two branches sent nothing, so the parity covers "no data" too (issue 26).
    let periods = ["2026Q1", "2026-03", "2025", "2025-01"];
    let mut scripts = Vec::new();
    for p in periods {
        run_expect(dangjian().args(["compute", "--period", p, "--warehouse"]).arg(&wh), 0);
        let sql = run_expect(dangjian().args(["sql", "--dialect", "spark", "--period", p, "--warehouse"]).arg(&wh), 0);
        let file = t.path().join(format!("{p}.sql"));
        std::fs::write(&file, &sql.stdout).unwrap();
        scripts.push(file);
    }
    run_expect(dangjian().args(["draw", "--period", "2026Q1", "--seed", "1", "--warehouse"]).arg(&wh), 0);
    // The appraisal of 2025 (SPEC §6): its script reads the year's and the quarters' indicators.
    for q in ["2025Q1", "2025Q2", "2025Q3", "2025Q4"] {
        run_expect(dangjian().args(["compute", "--period", q, "--warehouse"]).arg(&wh), 0);
    }
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

    // Parity: every row, every column the script computes.
    // One Spark session per script, as on a cluster: each stands alone, and one driver's heap
    // is not asked to hold the plans of all four.
    for (p, file) in periods.iter().zip(&scripts) {
        let results = spark(&py, &["scripts".as_ref(), file.as_os_str()]);
        let rows = results[file.to_str().unwrap()].as_array().unwrap();
        let ours: HashMap<(String, String), serde_json::Value> =
            json_rows(&wh, &format!("SELECT * FROM indicators WHERE period = '{p}'"))
                .into_iter()
                .map(|v| ((text(&v, "unit_id"), text(&v, "indicator")), v))
                .collect();
        assert_eq!(rows.len(), ours.len(), "{p}: row count");
        let mut compared = 0;
        for r in rows {
            let key = (r["unit_id"].as_str().unwrap().to_string(), r["indicator"].as_str().unwrap().to_string());
            let o = ours.get(&key).unwrap_or_else(|| panic!("{p}: Spark has {key:?}, dangjian does not"));
            let terms = ["value", "previous_value"].map(|c| o[c].as_f64().unwrap_or(0.0).abs());
            for col in ["value", "numerator", "denominator", "previous_value", "change"] {
                let scale = if col == "change" { terms[0].max(terms[1]) } else { 0.0 };
                match (r[col].as_f64(), o[col].as_f64()) {
                    (Some(a), Some(b)) => {
                        assert!(close_at(a, b, scale), "{p} {key:?} {col}: spark {a}, dangjian {b}")
                    }
                    (a, b) => assert_eq!(a, b, "{p} {key:?} {col}"),
                }
            }
            assert_eq!(r["status"], o["status"], "{p} {key:?} status");
            assert_eq!(r["rank"].as_i64(), o["rank"].as_i64(), "{p} {key:?} rank");
            compared += 1;
        }
        assert!(compared >= 300, "{p}: {compared}");
    }
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
    // The review loop's indicators were among the rows compared, with values.
    let ledger = query_number(
        &wh,
        "SELECT count(*) FROM indicators WHERE period = '2026Q1' AND value IS NOT NULL AND indicator IN \
         ('task_completion_rate', 'overdue_tasks', 'rectification_rate', 'overdue_findings')",
    );
    assert!(ledger >= 40.0, "{ledger} ledger figures");
    let no_data = query_number(&wh, "SELECT count(*) FROM indicators WHERE period = '2025-01' AND status = 'no_data'");
    assert!(no_data > 0.0, "the branches that did not report in 2025-01 are no_data");
}
