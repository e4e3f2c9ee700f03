//! `dangjian run` and `dangjian runs`: the shipped pipelines end to end, automatic periods,
//! one run at a time, a failed stage that leaves earlier outputs alone, `--from`, manifests.

use std::path::{Path, PathBuf};

use dangjian::WarehouseLock;

use super::*;

/// A copy of pipelines/ and sample-data/ in a temp folder, so runs write nothing in the repo.
fn project(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for sub in ["pipelines", "sample-data"] {
        copy_dir(&root.join(sub), &dir.join(sub));
    }
    dir.join("pipelines")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

fn manifests(wh: &Path) -> Vec<serde_json::Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(wh.join("runs")).unwrap().flatten().map(|e| e.path()).collect();
    files.sort();
    files.iter().map(|f| serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap()).collect()
}

#[test]
fn every_shipped_pipeline_runs_on_the_sample() {
    let t = tempfile::tempdir().unwrap();
    let pipes = project(t.path());
    for (file, period) in [("quarterly-review.toml", "2026Q1"), ("monthly.toml", "2026-03"), ("annual.toml", "2025")] {
        let out = run_expect(dangjian().arg("run").arg(pipes.join(file)), 0);
        let text = stdout(&out);
        let report = t.path().join("out").join(period).join("report.html");
        assert!(text.contains(&format!("report: {}", report.display())), "{text}");
        assert!(report.is_file(), "{file}");
    }
    // Read on a machine without Chinese fonts: the page and every SVG carry theirs.
    let quarter = t.path().join("out/2026Q1");
    super::browser::check_fonts(&quarter.join("report.html"), t.path());
    super::browser::check_fonts(&quarter.join("charts.html"), t.path());
    // The pack opens with its agenda and prints on a few A4 pages; the charts are a second file.
    let pages = super::browser::printed_pages(&quarter.join("report.html"), t.path());
    assert!((3..=12).contains(&pages), "the quarterly report prints on {pages} pages");
    assert!(quarter.join("charts/funnel-attendance_rate-branch.svg").is_file(), "a funnel plot per rate and level");
    // Meeting slides: the agenda first, each a 1080p PNG, all in one offline page.
    let mut slides: Vec<String> = std::fs::read_dir(quarter.join("slides"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    slides.sort();
    assert!(slides.len() >= 4 && slides[0] == "01-agenda.png", "{slides:?}");
    for s in &slides {
        let png = image::open(quarter.join("slides").join(s)).unwrap();
        assert_eq!((png.width(), png.height()), (1920, 1080), "{s}");
    }
    // Uncertainty shown: rates carry their denominators, rankings their intervals, and a weak
    // candidate's card its place on the funnels and its open problems.
    let appendix = std::fs::read_to_string(quarter.join("charts.html")).unwrap();
    assert!(appendix.contains("95% 置信区间（Wilson）"), "rankings show intervals");
    assert!(appendix.contains("· 漏斗图 · 出勤率 ") && appendix.contains("· 本期问题："), "diagnosis cards");
    assert!(std::fs::read_to_string(quarter.join("report.html")).unwrap().contains("<span class=\"small\"> n="));
    let deck = std::fs::read_to_string(quarter.join("slides.html")).unwrap();
    assert_eq!(deck.matches("<img src=\"data:image/png;base64,").count(), slides.len());
    assert!(deck.contains("ArrowRight") && !quarter.join(".slides.tmp").exists());
    for page in ["2026Q1/report.html", "2026Q1/charts.html", "2026-03/report.html", "2025/report.html"] {
        let html = std::fs::read_to_string(t.path().join("out").join(page)).unwrap();
        super::browser::check_cmap_covers(&html, page);
        assert!(html.len() < 1_500_000, "{page} is {} bytes", html.len());
    }
    let mut svgs = 0;
    for e in std::fs::read_dir(quarter.join("charts")).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "svg") {
            super::browser::check_cmap_covers(
                &std::fs::read_to_string(e.path()).unwrap(),
                &e.path().display().to_string(),
            );
            svgs += 1;
        }
    }
    assert!(svgs > 10, "{svgs} SVG charts");
    let wh = t.path().join("warehouse");
    // The quarter and the one before were computed; the quarter was drawn; problems written.
    assert_eq!(
        query_csv(&wh, "SELECT DISTINCT period FROM indicators ORDER BY period"),
        "period\n2025\n2025Q4\n2026-03\n2026Q1\n"
    );
    assert_eq!(query_number(&wh, "SELECT count(*) FROM draws WHERE period = '2026Q1'"), 1.0);
    assert!(query_number(&wh, "SELECT count(*) FROM problems") > 0.0);
    // The sample's large community that falls in the last quarter is caught on its counts.
    let tested = query_csv(
        &wh,
        "SELECT unit_id FROM problems WHERE period = '2026Q1' AND kind = 'drop' \
         AND evidence LIKE '%双比例检验%' AND unit_id = 'C001'",
    );
    assert_eq!(tested, "unit_id\nC001\n");
    // The annual appraisal: every level within its quota, every part of the report with content.
    super::appraisal::assert_quota_holds(&wh, 2025);
    assert!(query_number(&wh, "SELECT count(*) FROM appraisal WHERE NOT eligible AND reasons LIKE '%一票否决%'") > 0.0);
    let annual = std::fs::read_to_string(t.path().join("out/2025/report.html")).unwrap();
    for part in [
        "各层级星级分布与五星限额",
        "评优评先推荐名单",
        "不得评优评先的单位",
        "年度督查发现问题",
        "各街道（镇）评定结果",
    ] {
        assert!(annual.contains(part), "no {part}");
    }
    for empty in ["没有具备资格且评为", "所有参评单位均具备评优评先资格", "没有发现日期在本年的问题"]
    {
        assert!(!annual.contains(empty), "the sample's annual report says: {empty}");
    }
    // The history: three runs, all exit 0, queryable and listed.
    assert_eq!(
        query_csv(&wh, "SELECT pipeline, period, exit_code FROM runs ORDER BY started_at"),
        "pipeline,period,exit_code\nquarterly-review,2026Q1,0\nmonthly,2026-03,0\nannual,2025,0\n"
    );
    let listing = stdout(&run_expect(dangjian().args(["runs", "--last", "2", "--warehouse"]).arg(&wh), 0));
    assert!(
        listing.contains("annual") && listing.contains("monthly") && !listing.contains("quarterly-review"),
        "{listing}"
    );
    // `report --pipeline` judges by that pipeline's rules, as its report stage does: with no
    // rate judged below a million attendances, C001's fall is not listed; by default it is.
    let text = std::fs::read_to_string(pipes.join("quarterly-review.toml")).unwrap();
    let strict = pipes.join("strict.toml");
    std::fs::write(&strict, text.replace("min_denominator = 20", "min_denominator = 1000000")).unwrap();
    let c001 = "SELECT count(*) FROM problems WHERE period = '2026Q1' AND kind = 'drop' \
                AND evidence LIKE '%双比例检验%' AND unit_id = 'C001'";
    let report = |extra: &[&Path]| {
        let mut cmd = dangjian();
        cmd.args(["report", "--period", "2026Q1", "--warehouse"]).arg(&wh).arg("--out").arg(t.path().join("again"));
        for p in extra {
            cmd.arg("--pipeline").arg(p);
        }
        run_expect(&mut cmd, 0);
    };
    report(&[&strict]);
    assert_eq!(query_number(&wh, c001), 0.0);
    report(&[]);
    assert_eq!(query_number(&wh, c001), 1.0);
}

#[test]
fn manifests_name_inputs_and_outputs_with_true_hashes() {
    let t = tempfile::tempdir().unwrap();
    let pipes = project(t.path());
    run_expect(dangjian().arg("run").arg(pipes.join("quarterly-review.toml")), 0);
    let m = &manifests(&t.path().join("warehouse"))[0];
    assert_eq!(m["period"], "2026Q1");
    assert_eq!(m["exit_code"], 0);
    let pipeline_hash = blake3::hash(&std::fs::read(pipes.join("quarterly-review.toml")).unwrap()).to_hex().to_string();
    assert_eq!(m["pipeline_blake3"], pipeline_hash.as_str());
    let inputs = m["inputs"].as_array().unwrap();
    // 2 units files (the grid and its 2026 adjustment), 15 months × 2 attendance files, 5
    // quarterly points workbooks, 2 yearly assessment workbooks, 3 monthly correction files,
    // and the two ledgers exported at the end of each of the 5 quarters.
    let files: std::collections::BTreeSet<&str> = inputs.iter().map(|i| i["file"].as_str().unwrap()).collect();
    assert_eq!(files.len(), 2 + 30 + 5 + 2 + 3 + 5 * 2, "every sample file");
    // A points workbook is a record per monthly sheet, each with the workbook's hash.
    let sheets: Vec<&str> = inputs.iter().filter_map(|i| i["sheet"].as_str()).collect();
    assert_eq!(sheets.len(), 15, "{sheets:?}");
    assert_eq!(inputs.len(), files.len() + 15 - 5);
    for i in inputs {
        let bytes = std::fs::read(i["file"].as_str().unwrap()).unwrap();
        assert_eq!(i["blake3"], blake3::hash(&bytes).to_hex().as_str());
    }
    let stages: Vec<&str> = m["stages"].as_array().unwrap().iter().map(|s| s["stage"].as_str().unwrap()).collect();
    assert_eq!(stages, ["ingest", "compute", "draw", "chart", "report"]);
    // The ingest stage balances as the ingest verb does: the units export's title, 填报单位,
    // 合计 and 填表人 rows, and each of the 15 monthly sheets' title, 填报单位 and 合计 in the
    // points workbooks, are read and skipped (issue 17).
    let detail = m["stages"][0]["detail"].as_str().unwrap_or_default();
    assert!(detail.ends_with("skipped 49 (not data)"), "{detail}");
    let mut checked = 0;
    for s in m["stages"].as_array().unwrap() {
        for o in s["outputs"].as_array().unwrap() {
            let bytes = std::fs::read(o["path"].as_str().unwrap()).unwrap();
            assert_eq!(o["blake3"], blake3::hash(&bytes).to_hex().as_str(), "{}", o["path"]);
            checked += 1;
        }
    }
    assert!(checked > 50, "{checked} outputs");
}

#[test]
fn auto_and_ranges_pick_the_right_periods() {
    let t = tempfile::tempdir().unwrap();
    let pipes = project(t.path());
    let q = pipes.join("quarterly-review.toml");
    let wh = t.path().join("warehouse");
    // 2026-04-10 → the last complete quarter is 2026Q1.
    run_expect(dangjian().arg("run").arg(&q).args(["--period", "auto", "--today", "2026-04-10"]), 0);
    // 2026-01-02 → 2025Q4, across the year boundary.
    run_expect(
        dangjian().arg("run").arg(&q).args(["--period", "auto", "--today", "2026-01-02", "--from", "compute"]),
        0,
    );
    let periods = query_csv(&wh, "SELECT period FROM runs ORDER BY started_at");
    assert_eq!(periods, "period\n2026Q1\n2025Q4\n");
    // A backfill runs each period in order.
    let m = pipes.join("monthly.toml");
    run_expect(dangjian().arg("run").arg(&m).args(["--period", "2026-01..2026-03"]), 0);
    assert_eq!(
        query_csv(&wh, "SELECT period FROM runs WHERE pipeline = 'monthly' ORDER BY started_at"),
        "period\n2026-01\n2026-02\n2026-03\n"
    );
    // A period of the wrong kind is a usage error.
    run_expect(dangjian().arg("run").arg(&m).args(["--period", "2026Q1"]), 2);
}

#[test]
fn one_run_at_a_time_and_a_dead_holder_frees_the_lock() {
    let t = tempfile::tempdir().unwrap();
    let pipes = project(t.path());
    let q = pipes.join("quarterly-review.toml");
    run_expect(dangjian().arg("run").arg(&q), 0);
    let wh = t.path().join("warehouse");
    {
        let _held = WarehouseLock::acquire_named(&wh, ".run.lock", "a test holding the run lock").unwrap();
        let out = run_expect(dangjian().arg("run").arg(&q).args(["--from", "report"]), 1);
        let err = stderr(&out);
        assert!(
            err.contains("another run holds the warehouse") && err.contains("a test holding the run lock"),
            "{err}"
        );
    }
    // A run killed at once leaves no lock behind: the kernel drops it with the process.
    let mut child = dangjian().arg("run").arg(&q).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(150));
    child.kill().unwrap();
    child.wait().unwrap();
    run_expect(dangjian().arg("run").arg(&q).args(["--from", "report"]), 0);
    // --wait waits for the holder instead of giving up.
    let held = WarehouseLock::acquire_named(&wh, ".run.lock", "a short holder").unwrap();
    let waiter = dangjian().arg("run").arg(&q).args(["--from", "report", "--wait"]).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    drop(held);
    assert!(waiter.wait_with_output().unwrap().status.success());
}

#[test]
fn a_failed_stage_keeps_earlier_outputs_and_from_resumes() {
    let t = tempfile::tempdir().unwrap();
    let pipes = project(t.path());
    let q = pipes.join("quarterly-review.toml");
    run_expect(dangjian().arg("run").arg(&q), 0);
    let out = t.path().join("out/2026Q1");
    let wh = t.path().join("warehouse");
    let report_before = std::fs::read(out.join("report.html")).unwrap();
    let indicators = wh.join("indicators/period=2026Q1/part-0.parquet");
    let indicators_before = std::fs::read(&indicators).unwrap();
    // A file where the chart stage stages its work: the chart stage fails.
    std::fs::write(out.join(".charts.tmp"), "in the way").unwrap();
    let failed = run_expect(dangjian().arg("run").arg(&q), 1);
    assert!(
        stderr(&failed).contains("stage chart failed for 2026Q1") && stderr(&failed).contains("--from chart"),
        "{}",
        stderr(&failed)
    );
    assert_eq!(std::fs::read(out.join("report.html")).unwrap(), report_before, "the previous report is untouched");
    assert_eq!(std::fs::read(&indicators).unwrap(), indicators_before, "the indicators are the same");
    let m = manifests(&wh);
    let last = m.last().unwrap();
    assert_eq!(last["exit_code"], 1);
    let status: Vec<&str> = last["stages"].as_array().unwrap().iter().map(|s| s["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["ok", "ok", "ok", "failed"], "the report stage never ran");
    // Clear the cause and resume from the failed stage.
    std::fs::remove_file(out.join(".charts.tmp")).unwrap();
    run_expect(dangjian().arg("run").arg(&q).args(["--from", "chart"]), 0);
    let last = manifests(&wh).pop().unwrap();
    let status: Vec<&str> = last["stages"].as_array().unwrap().iter().map(|s| s["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["skipped", "skipped", "skipped", "ok", "ok"]);
}

#[test]
fn a_bad_pipeline_file_exits_2_before_any_work() {
    let t = tempfile::tempdir().unwrap();
    let pipes = project(t.path());
    let bad = std::fs::read_to_string(pipes.join("monthly.toml"))
        .unwrap()
        .replace("max_bad_ratio = 0.05", "max_bad_ratio = 0.05\nmax_bad_rows = 3");
    let line = bad.lines().position(|l| l.starts_with("max_bad_rows")).unwrap() + 1;
    std::fs::write(pipes.join("bad.toml"), bad).unwrap();
    let out = run_expect(dangjian().arg("run").arg(pipes.join("bad.toml")), 2);
    assert!(stderr(&out).contains(&format!("bad.toml:{line}: unknown field `max_bad_rows`")), "{}", stderr(&out));
    assert!(!t.path().join("warehouse").exists(), "nothing was done");
}

#[test]
fn issue_16_stages_periods_and_levels_are_checked_before_any_work() {
    let t = tempfile::tempdir().unwrap();
    let pipes = project(t.path());
    let quarterly = pipes.join("quarterly-review.toml");
    // An unknown stage was silently dropped, and the run started from the first stage.
    let out = run_expect(dangjian().arg("run").arg(&quarterly).args(["--from", "charts"]), 2);
    let err = stderr(&out);
    assert!(err.contains("'charts'") && err.contains("ingest, compute, draw, chart, report"), "{err}");
    // A period of the wrong kind, a range that mixes kinds, and one that runs backwards.
    for (period, says) in [
        ("2026-03", "2026-03 is not a quarter"),
        ("2026-01..2026Q2", "mixes kinds of period"),
        ("2026Q2..2026Q1", "runs backwards"),
        ("2026Q5", "is not a period"),
    ] {
        let out = run_expect(dangjian().arg("run").arg(&quarterly).args(["--period", period]), 2);
        assert!(stderr(&out).contains(says), "{period}: {}", stderr(&out));
    }
    let out = run_expect(
        dangjian()
            .args(["draw", "--period", "2026Q1", "--seed", "1", "--level", "district"])
            .args(["--warehouse"])
            .arg(t.path().join("wh")),
        2,
    );
    assert!(stderr(&out).contains("township, community, branch"), "{}", stderr(&out));
    assert!(!t.path().join("warehouse").exists(), "nothing was done");
}

#[test]
fn issue_26_a_period_without_exports_is_not_judged() {
    let t = tempfile::tempdir().unwrap();
    let pipes = project(t.path());
    let q = pipes.join("quarterly-review.toml");
    let wh = t.path().join("warehouse");
    // The README's cron line, run today: the calendar says 2026Q3, for which no export exists,
    // nor for 2026Q2. `auto` takes 2026Q1, the last quarter with attendance, and says so.
    let out = run_expect(dangjian().arg("run").arg(&q).args(["--period", "auto", "--today", "2026-11-30"]), 0);
    let said = stdout(&out);
    assert!(said.contains("no attendance rows for 2026Q3, 2026Q2 yet; took 2026Q1"), "{said}");
    assert_eq!(query_csv(&wh, "SELECT period FROM draws"), "period\n2026Q1\n", "no draw spent on an empty quarter");
    assert_eq!(query_number(&wh, "SELECT count(*) FROM indicators WHERE period IN ('2026Q2', '2026Q3')"), 0.0);
    let m = manifests(&wh);
    assert!(m[0]["period_note"].as_str().unwrap().contains("took 2026Q1"));

    // Asked for 2026Q2 by name: the figures are computed (no one reported: every attendance
    // figure is null and "no data", no unit is a weak candidate), then the run stops before it
    // judges anything: exit 1, the months and branches named, no draw, no report.
    let out = run_expect(dangjian().arg("run").arg(&q).args(["--period", "2026Q2"]), 1);
    let err = stderr(&out);
    assert!(
        err.contains("2026Q2: attendance reported for 0 of 45 branch-months (0%), below the minimum of 80%")
            && err.contains("2026-04 (15 branches), 2026-05 (15 branches), 2026-06 (15 branches)")
            && err.contains("--force"),
        "{err}"
    );
    assert_eq!(query_number(&wh, "SELECT count(*) FROM draws WHERE period = '2026Q2'"), 0.0);
    assert!(!t.path().join("out/2026Q2/report.html").exists());
    let weak = "SELECT count(*) FROM indicators WHERE period = '2026Q2' AND indicator = 'weak_candidate' AND value = 1";
    assert_eq!(query_number(&wh, weak), 0.0);
    let judged = "SELECT count(*) FROM indicators WHERE period = '2026Q2' AND indicator IN \
                  ('activity_day_coverage', 'meeting_completion', 'composite_score') AND status <> 'no_data'";
    assert_eq!(query_number(&wh, judged), 0.0, "never red on months nobody reported");
    let last = manifests(&wh).pop().unwrap();
    assert_eq!(last["exit_code"], 1);
    let status: Vec<&str> = last["stages"].as_array().unwrap().iter().map(|s| s["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["ok", "ok", "skipped", "skipped", "skipped"]);
    // Forced, the pack is made and says on its first page how incomplete the data is.
    run_expect(dangjian().arg("run").arg(&q).args(["--period", "2026Q2", "--force"]), 0);
    let html = std::fs::read_to_string(t.path().join("out/2026Q2/report.html")).unwrap();
    let warning = html.find("数据不完整：本期报送率 0.0%（0/45").expect("the warning");
    assert!(warning < html.find("一、总体情况").unwrap(), "before the first section");
}
