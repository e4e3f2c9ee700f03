//! The bad-input corpus (tests/corpus, made by tests/corpus/make.py): every file gets the
//! outcome listed in expected.tsv — a quarantined row with its rule, or a file-level error
//! with its exit code — never a panic, never a silent drop; rows read = loaded + quarantined +
//! duplicates whenever the file is read.

use std::path::Path;

use super::*;

#[test]
fn every_corpus_file_gets_its_expected_outcome() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let expected = std::fs::read_to_string(corpus.join("expected.tsv")).unwrap();
    let t = tempfile::tempdir().unwrap();
    let units = stage(&t.path().join("units"), &["ingest/units_gbk.csv"]);
    let mut checked = 0;
    for line in expected.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, exit, outcome) = (cols[0], cols[1].parse::<i32>().unwrap(), cols[2]);
        let wh = t.path().join(format!("wh-{file}"));
        run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&wh).args(&units), 0);
        let out = dangjian()
            .args(["ingest", "--json", "--max-bad-ratio", "1", "--warehouse"])
            .arg(&wh)
            .arg(corpus.join(file))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{file} panicked: {err}");
        assert_eq!(out.status.code(), Some(exit), "{file}: {err}");
        if let Some(piece) = outcome.strip_prefix("error:") {
            assert!(err.contains(piece), "{file}: expected '{piece}' in: {err}");
            assert!(err.contains(file), "{file}: the error names the file: {err}");
            assert_eq!(query_number(&wh, "SELECT count(*) FROM ingests"), 1.0, "{file}: nothing loaded");
            checked += 1;
            continue;
        }
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{file}: {e}"));
        let mut parts = outcome.split(' ');
        let counts: Vec<u64> = parts.next().unwrap().split('/').map(|n| n.parse().unwrap()).collect();
        let got = [&s["rows_read"], &s["loaded"], &s["quarantined"], &s["duplicates"]].map(|v| v.as_u64().unwrap());
        assert_eq!(got.to_vec(), counts, "{file}: read/loaded/quarantined/duplicates");
        assert_eq!(got[0], got[1] + got[2] + got[3], "{file}: the invariant");
        let mut rules = std::collections::BTreeMap::new();
        for p in parts {
            let (rule, n) = p.split_once('=').unwrap();
            rules.insert(rule.to_string(), n.parse::<u64>().unwrap());
        }
        let got_rules: std::collections::BTreeMap<String, u64> = s["quarantined_by_rule"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
            .collect();
        assert_eq!(got_rules, rules, "{file}: rules");
        checked += 1;
    }
    assert!(checked >= 40, "{checked} files");
}
