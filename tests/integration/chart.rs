//! `dangjian chart`: every chart kind renders to valid PNG and SVG, with Chinese labels.

use super::*;

#[test]
fn every_chart_kind_renders_png_and_svg() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    run_expect(dangjian().args(["sample", "--months", "15", "--seed", "5", "--out"]).arg(&data), 0);
    let wh = t.path().join("wh");
    run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&wh).arg(&data), 0);
    for p in ["2025", "2026Q1"] {
        run_expect(dangjian().args(["compute", "--period", p, "--warehouse"]).arg(&wh), 0);
    }
    for p in ["2025", "2026Q1"] {
        let out = t.path().join(format!("charts-{p}"));
        run_expect(dangjian().args(["chart", "--period", p, "--warehouse"]).arg(&wh).arg("--out").arg(&out), 0);
        let mut kinds = std::collections::BTreeSet::new();
        for e in std::fs::read_dir(&out).unwrap().flatten() {
            let path = e.path();
            let bytes = std::fs::read(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            match path.extension().and_then(|x| x.to_str()) {
                Some("png") => {
                    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}");
                    let img = image::load_from_memory(&bytes).unwrap();
                    assert!(img.width() > 100 && img.height() > 100, "{name}");
                }
                Some("svg") => {
                    let s = String::from_utf8(bytes).unwrap();
                    assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"), "{name}");
                    assert!(s.contains("Microsoft YaHei"), "{name} names a CJK font stack");
                }
                _ => panic!("unexpected file {name}"),
            }
            kinds.insert(name.split('-').next().unwrap().trim_end_matches(".png").trim_end_matches(".svg").to_string());
        }
        let mut want: Vec<&str> = vec!["rank", "trend", "heatmap", "points", "card"];
        if p == "2025" {
            want.push("grades");
        }
        for k in want {
            assert!(kinds.contains(k), "{p}: no {k} chart in {kinds:?}");
        }
    }
}

#[test]
fn same_data_same_chart_bytes() {
    let t = tempfile::tempdir().unwrap();
    let files = stage(
        &t.path().join("inbox"),
        &["indicators/units.csv", "indicators/attendance.csv", "indicators/points.csv", "indicators/assessment.csv"],
    );
    let wh = t.path().join("wh");
    run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&wh).args(&files), 0);
    run_expect(dangjian().args(["compute", "--period", "2026Q1", "--warehouse"]).arg(&wh), 0);
    for d in ["a", "b"] {
        run_expect(
            dangjian().args(["chart", "--period", "2026Q1", "--warehouse"]).arg(&wh).arg("--out").arg(t.path().join(d)),
            0,
        );
    }
    let mut n = 0;
    for e in std::fs::read_dir(t.path().join("a")).unwrap().flatten() {
        let other = t.path().join("b").join(e.file_name());
        assert_eq!(std::fs::read(e.path()).unwrap(), std::fs::read(&other).unwrap(), "{:?}", e.file_name());
        n += 1;
    }
    assert!(n >= 10, "{n} files");
}
