//! The one integration test binary: runs the real `dangjian` binary on fixture files in a
//! temporary folder, one module per subcommand. Expected numbers are worked out by hand from
//! the fixtures (see the comments beside them), never copied from the program's output.

mod appraisal;
mod browser;
mod chart;
mod compute;
mod corpus;
mod crash;
mod draw;
mod ingest;
mod interop;
mod query;
mod report;
mod run;
mod sample;
mod sql;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The fixture folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A command for the binary under test, with a clean environment for what it reads.
pub fn dangjian() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dangjian"));
    c.env_remove("DANGJIAN_NAME_KEY").env_remove("RUST_LOG");
    c
}

/// Run and return output; panics with stderr shown if the exit code is not `code`.
pub fn run_expect(cmd: &mut Command, code: i32) -> Output {
    let out = cmd.output().expect("the binary runs");
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit code\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("stdout is UTF-8")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The tables an ingest and a compute of a sample fill, which every reader must read.
pub const SAMPLE_TABLES: [&str; 10] = [
    "units",
    "attendance",
    "points",
    "assessment",
    "tasks",
    "findings",
    "quarantine",
    "ingests",
    "indicators",
    "submissions",
];

/// Copy fixture files into a fresh folder, with file times in the order given (the first
/// oldest), since a later export wins.
pub fn stage(dir: &Path, files: &[&str]) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let src = fixtures().join(f);
            let dest = dir.join(Path::new(f).file_name().unwrap());
            std::fs::copy(&src, &dest).unwrap();
            set_mtime(&dest, 1_767_225_600 + i as u64 * 60);
            dest
        })
        .collect()
}

pub fn set_mtime(path: &Path, secs: u64) {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    std::fs::File::options().write(true).open(path).unwrap().set_modified(t).unwrap();
}

/// Run a query and return its CSV output.
pub fn query_csv(wh: &Path, sql: &str) -> String {
    let out = run_expect(dangjian().args(["query", "--warehouse"]).arg(wh).args(["--format", "csv", sql]), 0);
    stdout(&out)
}

/// A single number from a query.
pub fn query_number(wh: &Path, sql: &str) -> f64 {
    let csv = query_csv(wh, sql);
    let v = csv.lines().nth(1).unwrap_or_else(|| panic!("no row for {sql}: {csv}"));
    v.trim().parse().unwrap_or_else(|_| panic!("not a number: {v} ({sql})"))
}

/// A generated district of 1,000 units (20,000 members, 15 months to 2026-03) ingested into
/// `dir/wh`, which is returned.
pub fn district_of_1000(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    let args = ["sample", "--units", "1000", "--members", "20000", "--months", "15", "--seed", "11", "--out"];
    run_expect(dangjian().args(args).arg(&data), 0);
    let wh = dir.join("wh");
    run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&wh).arg(&data), 0);
    wh
}

/// The same district with its second township given its first one's name (as two towns of one
/// county may be named): lists grouped by township must keep them apart. The name they share.
pub fn district_of_1000_sharing_a_name(dir: &Path) -> (PathBuf, String) {
    let data = dir.join("data");
    let args = ["sample", "--units", "1000", "--members", "20000", "--months", "15", "--seed", "11", "--out"];
    run_expect(dangjian().args(args).arg(&data), 0);
    let file = data.join("units").join("组织架构.csv");
    let bytes = std::fs::read(&file).unwrap();
    let (text, _, bad) = encoding_rs::GB18030.decode(&bytes);
    assert!(!bad, "the units export is GB18030");
    let name_of = |id: &str| {
        let line = text.lines().find(|l| l.split(',').nth(1) == Some(id)).unwrap();
        line.split(',').nth(2).unwrap().to_string()
    };
    let (first, second) = (name_of("T01"), name_of("T02"));
    assert_ne!(first, second);
    let renamed = text.replacen(&format!(",T02,{second},"), &format!(",T02,{first},"), 1);
    assert_ne!(renamed, text);
    let (encoded, _, _) = encoding_rs::GB18030.encode(&renamed);
    std::fs::write(&file, encoded).unwrap();
    let wh = dir.join("wh");
    run_expect(dangjian().args(["ingest", "--warehouse"]).arg(&wh).arg(&data), 0);
    (wh, first)
}

/// Parse the JSON summary of `ingest --json`.
pub fn ingest_json(wh: &Path, paths: &[PathBuf], code: i32, extra: &[&str]) -> serde_json::Value {
    let out = run_expect(dangjian().args(["ingest", "--json", "--warehouse"]).arg(wh).args(extra).args(paths), code);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
}

/// The report of one file in an ingest summary.
pub fn file_report<'a>(summary: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    summary["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == name)
        .unwrap_or_else(|| panic!("no {name} in {summary}"))
}
