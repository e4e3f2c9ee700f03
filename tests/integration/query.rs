//! `dangjian query`: formats, read-only, empty tables, a closed pipe.

use std::io::Read;
use std::process::Stdio;

use super::*;

fn small_warehouse(dir: &std::path::Path) -> std::path::PathBuf {
    let files = stage(&dir.join("inbox"), &["ingest/units_gbk.csv"]);
    let wh = dir.join("wh");
    run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&wh).args(&files), 0);
    wh
}

#[test]
fn formats_table_csv_json_parquet() {
    let t = tempfile::tempdir().unwrap();
    let wh = small_warehouse(t.path());
    let sql = "SELECT level, count(*) AS n FROM units GROUP BY level ORDER BY level";
    // By hand from units_gbk.csv: 3 branches, 2 communities, 1 district, 2 townships.
    let table = stdout(&run_expect(dangjian().args(["query", "--warehouse"]).arg(&wh).arg(sql), 0));
    assert_eq!(table, "level      n\n─────────  ─\nbranch     3\ncommunity  2\ndistrict   1\ntownship   2\n(4 rows)\n");
    assert_eq!(query_csv(&wh, sql), "level,n\nbranch,3\ncommunity,2\ndistrict,1\ntownship,2\n");
    let json = stdout(&run_expect(dangjian().args(["query", "--format", "json", "--warehouse"]).arg(&wh).arg(sql), 0));
    assert_eq!(json.lines().next(), Some("{\"level\":\"branch\",\"n\":3}"));
    let pq = t.path().join("out.parquet");
    run_expect(
        dangjian().args(["query", "--format", "parquet", "--output"]).arg(&pq).arg("--warehouse").arg(&wh).arg(sql),
        0,
    );
    let back = query_csv(&wh, &format!("SELECT sum(n) AS total FROM read_parquet('{}')", pq.display()));
    assert_eq!(back, "total\n8\n");
    // Parquet to stdout makes no sense: usage error.
    run_expect(dangjian().args(["query", "--format", "parquet", "--warehouse"]).arg(&wh).arg(sql), 2);
}

#[test]
fn query_is_read_only_and_empty_tables_answer() {
    let t = tempfile::tempdir().unwrap();
    let wh = small_warehouse(t.path());
    for sql in ["DROP TABLE units", "CREATE TABLE x AS SELECT 1 AS a", "INSERT INTO units VALUES (1)"] {
        let out = run_expect(dangjian().args(["query", "--warehouse"]).arg(&wh).arg(sql), 2);
        assert!(stderr(&out).contains("only reading statements"), "{}", stderr(&out));
    }
    // No attendance yet: an empty table with its columns, not an error.
    assert_eq!(query_csv(&wh, "SELECT count(*) AS n FROM attendance"), "n\n0\n");
    assert_eq!(query_csv(&wh, "SELECT event_id, member_name_hash FROM attendance"), "event_id,member_name_hash\n");
    // A folder that is not a warehouse is a clear error.
    let out = run_expect(dangjian().args(["query", "--warehouse"]).arg(t.path()).arg("SELECT 1"), 1);
    assert!(stderr(&out).contains("is not a dangjian warehouse"), "{}", stderr(&out));
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let t = tempfile::tempdir().unwrap();
    let wh = small_warehouse(t.path());
    // A result far larger than a pipe buffer: every unit paired 8 × 8 × 8 × 8 × 8 times.
    let sql = "SELECT a.unit_name AS a, b.unit_name AS b, c.unit_name AS c, d.unit_name AS d, e.unit_name AS e \
               FROM units a CROSS JOIN units b CROSS JOIN units c CROSS JOIN units d CROSS JOIN units e";
    let mut child = dangjian()
        .args(["query", "--format", "csv", "--warehouse"])
        .arg(&wh)
        .arg(sql)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 64];
    child.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    drop(child.stdout.take()); // like `| head -c 64`
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "nothing on stderr: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn parameters_saved_queries_describe_and_xlsx() {
    let t = tempfile::tempdir().unwrap();
    let files = stage(&t.path().join("inbox"), &["ingest/units_gbk.csv", "ingest/attendance_bom.csv"]);
    let wh = t.path().join("wh");
    run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&wh).args(&files), 3);
    // A saved query with a parameter; the value is a literal, so an injection finds nothing.
    let saved = t.path().join("by_level.sql");
    std::fs::write(&saved, "SELECT count(*) AS n FROM units WHERE level = :level").unwrap();
    let q = |v: &str| {
        let out = run_expect(
            dangjian()
                .args(["query", "--format", "csv", "--warehouse"])
                .arg(&wh)
                .arg(format!("@{}", saved.display()))
                .args(["--param", &format!("level={v}")]),
            0,
        );
        stdout(&out)
    };
    assert_eq!(q("branch"), "n\n3\n");
    assert_eq!(q("branch' OR '1'='1"), "n\n0\n");
    run_expect(dangjian().args(["query", "--warehouse"]).arg(&wh).arg("SELECT :nope"), 2);
    // DESCRIBE: columns, types, partition columns, rows (5 loaded) and partitions (3 months).
    let d = stdout(&run_expect(
        dangjian().args(["query", "--format", "csv", "--warehouse"]).arg(&wh).arg("DESCRIBE attendance"),
        0,
    ));
    assert!(d.starts_with("column,type,partition,non_null,rows,partitions\n"), "{d}");
    assert!(d.contains("event_date,date,false,5,5,3\n"), "{d}");
    assert!(d.contains("month,i32,true,5,5,3\n"), "{d}");
    // XLSX output opens with calamine and holds the numbers.
    let x = t.path().join("levels.xlsx");
    run_expect(
        dangjian()
            .args(["query", "--format", "xlsx", "--output"])
            .arg(&x)
            .arg("--warehouse")
            .arg(&wh)
            .arg("SELECT level, count(*) AS n FROM units GROUP BY level ORDER BY level"),
        0,
    );
    use calamine::Reader;
    let mut wb: calamine::Xlsx<_> = calamine::open_workbook(&x).unwrap();
    let sheet = wb.worksheet_range_at(0).unwrap().unwrap();
    let rows: Vec<String> =
        sheet.rows().map(|r| r.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",")).collect();
    assert_eq!(rows, vec!["level,n", "branch,3", "community,2", "district,1", "township,2"]);
}

#[test]
fn a_query_during_an_ingest_sees_the_old_or_the_new_state_never_a_mix() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    run_expect(
        dangjian().args(["sample", "--units", "120", "--members", "4000", "--months", "12", "--out"]).arg(&data),
        0,
    );
    let wh = t.path().join("wh");
    run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&wh).arg(data.join("units")), 0);
    // Two tables in one query: rows and the ledger change in the same commit, so a mix
    // (new rows with the old ledger, or the reverse) would show.
    let sql = "SELECT a.n, i.files FROM (SELECT count(*) AS n FROM attendance) a CROSS JOIN (SELECT count(*) AS files FROM ingests) i";
    let before = query_csv(&wh, sql);
    let mut child =
        dangjian().args(["ingest", "--warehouse"]).arg(&wh).arg(&data).stdout(Stdio::null()).spawn().unwrap();
    let mut seen = std::collections::BTreeSet::new();
    while child.try_wait().unwrap().is_none() {
        seen.insert(query_csv(&wh, sql));
    }
    assert!(child.wait().unwrap().success());
    let after = query_csv(&wh, sql);
    assert_ne!(before, after);
    for s in &seen {
        assert!(*s == before || *s == after, "a query saw {s}, neither {before} nor {after}");
    }
}

/// Copies made by tools that follow links (`cp -rL`, Python's `shutil.copytree`, `tar -h`, and
/// a sync that left the hidden `.snapshots/` behind) turn `current` and the table links into
/// folders. Reads work on them as they are; the first write restores the snapshot layout and
/// gives the same figures as on the original (issue 18).
#[test]
fn issue_18_a_copy_made_by_following_links_reads_and_heals_on_write() {
    let t = tempfile::tempdir().unwrap();
    let wh = small_warehouse(t.path());
    let count = |w: &std::path::Path| query_csv(w, "SELECT count(*) AS n FROM attendance");
    let want = count(&wh);
    run_expect(dangjian().args(["compute", "--period", "2026Q1", "--warehouse"]).arg(&wh), 0);
    let figures = |w: &std::path::Path| query_csv(w, "SELECT unit_id, indicator, value FROM indicators ORDER BY 1, 2");
    let want_figures = figures(&wh);
    let copies = t.path().join("copies");
    std::fs::create_dir_all(&copies).unwrap();
    let run = |c: &mut std::process::Command| assert!(c.status().unwrap().success(), "{c:?}");
    run(std::process::Command::new("cp").arg("-rL").arg(&wh).arg(copies.join("cp")));
    let py = "import shutil, sys; shutil.copytree(sys.argv[1], sys.argv[2])";
    run(std::process::Command::new(super::interop::python()).args(["-c", py]).arg(&wh).arg(copies.join("py")));
    let tar = copies.join("w.tar");
    run(std::process::Command::new("tar").arg("-chf").arg(&tar).arg("-C").arg(t.path()).arg("wh"));
    std::fs::create_dir_all(copies.join("tar")).unwrap();
    run(std::process::Command::new("tar").arg("-xf").arg(&tar).arg("-C").arg(copies.join("tar")));
    run(std::process::Command::new("cp").arg("-rL").arg(&wh).arg(copies.join("synced")));
    std::fs::remove_dir_all(copies.join("synced/.snapshots")).unwrap();
    for copy in [copies.join("cp"), copies.join("py"), copies.join("tar/wh"), copies.join("synced")] {
        assert!(std::fs::symlink_metadata(copy.join("current")).unwrap().is_dir(), "{}", copy.display());
        assert_eq!(count(&copy), want, "{}", copy.display());
        assert_eq!(figures(&copy), want_figures);
        // `check` says what the copy is and that it reads (exit 1: a problem left unmended);
        // one copy is mended by `check --repair`, the others by their first write.
        let out = run_expect(dangjian().args(["check", "--warehouse"]).arg(&copy), 1);
        assert!(stdout(&out).contains("a copy made by a tool that follows links"), "{}", stdout(&out));
        assert!(stderr(&out).contains("check --repair"), "{}", stderr(&out));
        if copy.ends_with("py") {
            let out = run_expect(dangjian().args(["check", "--repair", "--warehouse"]).arg(&copy), 0);
            assert!(stdout(&out).contains("no problems found"), "{}", stdout(&out));
        }
        run_expect(dangjian().args(["compute", "--period", "2026Q1", "--warehouse"]).arg(&copy), 0);
        assert!(std::fs::symlink_metadata(copy.join("current")).unwrap().file_type().is_symlink());
        assert!(std::fs::symlink_metadata(copy.join("attendance")).unwrap().file_type().is_symlink());
        assert_eq!(figures(&copy), want_figures, "{}", copy.display());
        assert_eq!(count(&copy), want);
        let out = run_expect(dangjian().args(["check", "--warehouse"]).arg(&copy), 0);
        assert!(stdout(&out).contains("no problems found"), "{}", stdout(&out));
    }
}

/// `check` on a clean warehouse and on deliberately damaged ones (issue 18), each with its
/// exact outcome: a truncated Parquet file, a missing partition, a lost quarantine, an orphan
/// temporary folder.
#[test]
fn issue_18_check_names_each_kind_of_damage_and_repairs_what_it_can() {
    let t = tempfile::tempdir().unwrap();
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data");
    let fresh = |name: &str| {
        let wh = t.path().join(name);
        run_expect(dangjian().args(["ingest", "-q", "--warehouse"]).arg(&wh).arg(&sample), 0);
        wh
    };
    let problems = |wh: &std::path::Path, code: i32| -> Vec<(String, bool)> {
        let out = run_expect(dangjian().args(["check", "--json", "--warehouse"]).arg(wh), code);
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["problem"].as_str().unwrap().to_string(), p["repairable"].as_bool().unwrap()))
            .collect()
    };

    let clean = fresh("clean");
    assert_eq!(problems(&clean, 0), vec![]);

    let truncated = fresh("truncated");
    let file = truncated.join("current/points/year=2026/month=01/part-0.parquet");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let found = problems(&truncated, 1);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].0.contains("points/year=2026/month=01/part-0.parquet cannot be read") && !found[0].1, "{found:?}");
    assert!(found[1].0.starts_with("points holds") && !found[1].1, "{found:?}");

    let missing = fresh("missing");
    std::fs::remove_dir_all(missing.join("current/attendance/year=2026/month=02")).unwrap();
    let found = problems(&missing, 1);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].0.starts_with("attendance holds") && found[0].0.contains("the ingest ledger accounts for"));

    let lost = fresh("lost");
    for f in std::fs::read_dir(lost.join("current/quarantine")).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    let found = problems(&lost, 1);
    assert!(
        !found.is_empty() && found.iter().all(|(p, r)| p.contains("the quarantine table holds 0") && !r),
        "{found:?}"
    );

    let orphan = fresh("orphan");
    std::fs::create_dir_all(orphan.join(".snapshots/00000002.tmp/attendance")).unwrap();
    let found = problems(&orphan, 1);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].0.contains("left by a write that was killed") && found[0].1, "{found:?}");
    run_expect(dangjian().args(["check", "--repair", "--warehouse"]).arg(&orphan), 0);
    assert!(!orphan.join(".snapshots/00000002.tmp").exists());
    assert_eq!(problems(&orphan, 0), vec![]);
    // What cannot be mended stays, and --repair says so by its exit code.
    run_expect(dangjian().args(["check", "--repair", "--warehouse"]).arg(&missing), 1);
}
