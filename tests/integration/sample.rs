//! `dangjian sample`: deterministic, the mix of encodings and formats districts send, and
//! dirty rows that an ingest accounts for exactly.

use std::collections::BTreeMap;
use std::path::Path;

use super::*;

fn hashes(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
                out.insert(rel, format!("{} {:?}", blake3::hash(&std::fs::read(&p).unwrap()).to_hex(), mtime));
            }
        }
    }
    out
}

#[test]
fn same_seed_same_bytes() {
    let t = tempfile::tempdir().unwrap();
    for d in ["a", "b"] {
        run_expect(
            dangjian()
                .args([
                    "sample",
                    "--units",
                    "20",
                    "--members",
                    "60",
                    "--months",
                    "4",
                    "--seed",
                    "9",
                    "--dirty",
                    "0.05",
                    "--out",
                ])
                .arg(t.path().join(d)),
            0,
        );
    }
    let (a, b) = (hashes(&t.path().join("a")), hashes(&t.path().join("b")));
    assert!(a.len() >= 8, "{a:?}");
    assert_eq!(a, b);
    run_expect(
        dangjian()
            .args(["sample", "--units", "20", "--members", "60", "--months", "4", "--seed", "10", "--out"])
            .arg(t.path().join("c")),
        0,
    );
    assert_ne!(a, hashes(&t.path().join("c")), "another seed, another district");
}

#[test]
fn the_committed_sample_is_what_the_generator_makes() {
    // sample-data/ was made by `dangjian sample --out sample-data --dirty 0.01` (see README).
    let t = tempfile::tempdir().unwrap();
    let fresh = t.path().join("s");
    run_expect(dangjian().args(["sample", "--dirty", "0.01", "--out"]).arg(&fresh), 0);
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data");
    let strip = |m: BTreeMap<String, String>| -> BTreeMap<String, String> {
        // Git does not keep file times: compare contents only.
        m.into_iter().map(|(k, v)| (k, v.split(' ').next().unwrap().to_string())).collect()
    };
    let mut want = strip(hashes(&committed));
    want.remove("README.md");
    assert_eq!(strip(hashes(&fresh)), want);
}

#[test]
fn a_dirty_sample_ingests_with_every_row_accounted_for() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    let out = run_expect(
        dangjian()
            .args([
                "sample",
                "--units",
                "30",
                "--members",
                "120",
                "--months",
                "6",
                "--seed",
                "3",
                "--dirty",
                "0.03",
                "--out",
            ])
            .arg(&data),
        0,
    );
    let text = stdout(&out);
    // "… should quarantine Q rows and drop D duplicates"
    let tail = text.lines().last().unwrap();
    let nums: Vec<u64> = tail.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    let (want_q, want_d) = (nums[0], nums[1]);
    assert!(want_q > 20, "{text}");
    let s = ingest_json(&t.path().join("wh"), &[data], 0, &[]);
    assert_eq!(s["quarantined"].as_u64(), Some(want_q), "{}", s["quarantined_by_rule"]);
    assert_eq!(s["duplicates"].as_u64(), Some(want_d));
    let (r, l, q, d, k) = (
        s["rows_read"].as_u64().unwrap(),
        s["loaded"].as_u64().unwrap(),
        s["quarantined"].as_u64().unwrap(),
        s["duplicates"].as_u64().unwrap(),
        s["skipped"].as_u64().unwrap(),
    );
    assert_eq!(r, l + q + d + k);
    let mut points_sheets = 0;
    for f in s["files"].as_array().unwrap() {
        let (r, l, q, d, k) = (
            f["rows_read"].as_u64().unwrap(),
            f["loaded"].as_u64().unwrap(),
            f["quarantined"].as_u64().unwrap(),
            f["duplicates"].as_u64().unwrap(),
            f["skipped"].as_u64().unwrap(),
        );
        assert_eq!(r, l + q + d + k, "{}", f["file"]);
        // The units export comes as offices make it: a title and a 填报单位 line above, a 合计
        // and a 填表人 line below (issue 17).
        if f["file"] == "组织架构.csv" {
            assert_eq!(k, 4, "{f}");
        }
        // The points workbooks too: an instructions sheet, then a sheet a month, each read as
        // its own source with its title, 填报单位 and 合计 skipped.
        if f["file"].as_str().unwrap().starts_with("积分台账_") {
            let name = f["file"].as_str().unwrap();
            assert!(name.ends_with("月]"), "{name}");
            assert_eq!(k, 3, "{f}");
            points_sheets += 1;
        }
        let name = f["file"].as_str().unwrap();
        let want = if name.contains("街道农村") || name.contains("组织架构") {
            Some("gb18030")
        } else if name.ends_with(".xlsx") || name.contains(".xlsx[") {
            None
        } else {
            Some("utf-8-bom")
        };
        assert_eq!(f["encoding"].as_str(), want, "{name}");
    }
    assert_eq!(points_sheets, 6, "two quarters of monthly sheets");
    // Every rule the sample spoils shows up.
    for rule in ["type", "reference", "enum", "required", "ragged", "excel_error", "range", "key_conflict", "encoding"]
    {
        assert!(s["quarantined_by_rule"][rule].as_u64().unwrap_or(0) > 0, "{rule}: {}", s["quarantined_by_rule"]);
    }
}
