//! What `dangjian check` finds in a warehouse, and what `--repair` mends. Reading never needs
//! a repair (a copy made by following links reads as it is, leftovers of a killed write are
//! ignored); a repair does at once, under the writer lock, what the next write would do anyway.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Result;
use polars::prelude::*;

use chrono::Datelike;

use super::{CURRENT, SNAPSHOTS, Warehouse};
use crate::model::kinds::Partitioning;
use crate::model::{Kind, Table};

/// Something `check` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A copy made by a tool that follows links: `current` and the tables are folders.
    Copied,
    /// A write that was killed left this behind (a staging snapshot, a snapshot newer than
    /// `current`, an interrupted restore, or ingest's `spill/`).
    Leftover(PathBuf),
    /// A table file that no Parquet reader can open.
    Unreadable { file: PathBuf, error: String },
    /// A file whose rows do not belong in the partition its folder names.
    Misplaced { file: PathBuf, why: String },
    /// The rows a table holds are not what the ingest ledger says were loaded and superseded
    /// (a partition or a file gone, or one put there by hand).
    Counts { table: Table, stored: u64, ledger: i64 },
    /// An export's quarantined rows in the ledger and in the quarantine table differ.
    Quarantine { ingest: String, file: String, ledger: i64, quarantined: usize },
}

impl Problem {
    /// Whether `--repair` mends it (a damaged file needs the backup or the exports again).
    pub fn repairable(&self) -> bool {
        matches!(self, Problem::Copied | Problem::Leftover(_))
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Copied => write!(
                f,
                "a copy made by a tool that follows links: it reads as it is; the next write, or \
                 check --repair, restores the snapshot layout"
            ),
            Problem::Leftover(p) => write!(f, "left by a write that was killed: {}", p.display()),
            Problem::Unreadable { file, error } => write!(
                f,
                "{} cannot be read ({error}); restore it from a backup, or ingest its exports again",
                file.display()
            ),
            Problem::Misplaced { file, why } => {
                write!(f, "{} holds rows of another partition ({why}); restore it from a backup", file.display())
            }
            Problem::Counts { table, stored, ledger } => write!(
                f,
                "{table} holds {stored} rows, but the ingest ledger accounts for {ledger} (loaded less \
                 superseded): a file or a partition is missing or was added by hand; restore the \
                 warehouse from a backup, or ingest the exports into a new one"
            ),
            Problem::Quarantine { ingest, file, ledger, quarantined } => write!(
                f,
                "ingest {ingest} quarantined {ledger} rows of {file} by its ledger, but the quarantine \
                 table holds {quarantined}: restore the warehouse from a backup"
            ),
        }
    }
}

/// One table as the current snapshot holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableFiles {
    pub table: Table,
    pub files: usize,
    pub rows: u64,
}

/// What `check` saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub snapshot: u64,
    pub tables: Vec<TableFiles>,
    pub problems: Vec<Problem>,
}

/// Look the warehouse at `root` over: its layout, every table file's footer, and leftovers.
pub fn check(root: &Path) -> Result<Health> {
    let wh = Warehouse::open(root)?;
    let snap = wh.snapshot()?;
    let mut problems = Vec::new();
    if fs::symlink_metadata(root.join(CURRENT)).is_ok_and(|m| m.is_dir()) {
        problems.push(Problem::Copied);
    }
    let mut tables = Vec::new();
    for table in Table::ALL {
        let files = snap.files(table)?;
        let mut rows = 0u64;
        for file in &files {
            match rows_of(file) {
                Ok(n) => rows += n as u64,
                Err(error) => problems.push(Problem::Unreadable { file: file.clone(), error }),
            }
        }
        tables.push(TableFiles { table, files: files.len(), rows });
    }
    for kind in [Kind::Attendance, Kind::Points] {
        problems.extend(misplaced(&snap, kind)?);
    }
    problems.extend(misplaced_years(&snap)?);
    let ledger = ledger(&snap)?;
    problems.extend(ledger_disagrees(&ledger, &tables));
    problems.extend(quarantine_disagrees(&snap, &ledger)?);
    problems.extend(leftovers(root, snap.id).into_iter().map(Problem::Leftover));
    Ok(Health { snapshot: snap.id, tables, problems })
}

/// Files of a month-partitioned table whose dates fall outside their folder's month.
fn misplaced(snap: &super::Snapshot, kind: Kind) -> Result<Vec<Problem>> {
    let table = kind.table();
    let column = kind.month_partition_field().expect("partitioned by month");
    let mut out = Vec::new();
    for file in snap.files(table)? {
        let folder = snap.partition_of(table, &file);
        let Ok(df) = super::read_parquet_columns(&file, &[column]) else { continue };
        let days = df.column(column)?.cast(&DataType::Int32)?;
        let days = days.i32()?;
        let (Some(lo), Some(hi)) = (days.min(), days.max()) else { continue };
        for day in [lo, hi] {
            let date = crate::model::period::date_of_day(day);
            let want = super::month_partition(date.year(), date.month());
            if want != folder {
                out.push(Problem::Misplaced { file: file.clone(), why: format!("{column} {date} in {folder}") });
                break;
            }
        }
    }
    Ok(out)
}

/// Assessment files whose periods fall outside their folder's year.
fn misplaced_years(snap: &super::Snapshot) -> Result<Vec<Problem>> {
    let mut out = Vec::new();
    for kind in Kind::RECORDS {
        let table = kind.table();
        // A period label (`2026Q1`) and a date as text (`2026-03-31`) both start with the year.
        let column = match kind.partitioning() {
            Partitioning::YearOfPeriod(column) | Partitioning::YearOfDate(column) => column,
            Partitioning::Month(_) | Partitioning::Whole => continue,
        };
        let year_of = |v: &str| v.get(..4).and_then(|y| y.parse().ok()).unwrap_or(0);
        for file in snap.files(table)? {
            let folder = snap.partition_of(table, &file);
            let Ok(df) = super::read_parquet_columns(&file, &[column]) else { continue };
            let values = df.column(column)?.cast(&DataType::String)?;
            let wrong = values.str()?.iter().flatten().find(|v| super::year_partition(year_of(v)) != folder);
            if let Some(v) = wrong {
                out.push(Problem::Misplaced { file: file.clone(), why: format!("{column} {v} in {folder}") });
            }
        }
    }
    Ok(out)
}

/// One export's line of the ingest ledger, as far as `check` needs it.
struct LedgerRow {
    ingest: String,
    file: String,
    kind: String,
    /// Rows loaded less rows of earlier exports superseded.
    net: i64,
    quarantined: i64,
}

/// The ingest ledger (a file no reader can open is reported as unreadable already).
fn ledger(snap: &super::Snapshot) -> Result<Vec<LedgerRow>> {
    let columns = ["ingest_id", "source_file", "kind", "loaded", "superseded", "quarantined"];
    let mut rows = Vec::new();
    for file in snap.files(Table::Ingests)? {
        let Ok(df) = super::read_parquet_columns(&file, &columns) else { continue };
        let text = |c: &str| -> Result<StringChunked> { Ok(df.column(c)?.str()?.clone()) };
        let number = |c: &str| -> Result<Int64Chunked> { Ok(df.column(c)?.i64()?.clone()) };
        let (ids, names, kinds) = (text("ingest_id")?, text("source_file")?, text("kind")?);
        let (loaded, superseded, quarantined) = (number("loaded")?, number("superseded")?, number("quarantined")?);
        for i in 0..df.height() {
            rows.push(LedgerRow {
                ingest: ids.get(i).unwrap_or("").to_string(),
                file: names.get(i).unwrap_or("").to_string(),
                kind: kinds.get(i).unwrap_or("").to_string(),
                net: loaded.get(i).unwrap_or(0) - superseded.get(i).unwrap_or(0),
                quarantined: quarantined.get(i).unwrap_or(0),
            });
        }
    }
    Ok(rows)
}

/// Each record table's rows against the ledger: what ingests loaded, less what later ones
/// superseded.
fn ledger_disagrees(ledger: &[LedgerRow], tables: &[TableFiles]) -> Vec<Problem> {
    let mut out = Vec::new();
    for kind in Kind::RECORDS {
        let table = kind.table();
        let stored = tables.iter().find(|t| t.table == table).map_or(0, |t| t.rows);
        let net = ledger.iter().filter(|r| r.kind == kind.name()).map(|r| r.net).sum();
        if stored as i64 != net {
            out.push(Problem::Counts { table, stored, ledger: net });
        }
    }
    out
}

/// Mend what can be mended, under the writer lock, and look again.
pub fn repair(root: &Path) -> Result<Health> {
    let wh = Warehouse::open(root)?;
    let lock = wh.lock("check --repair")?;
    // Starting a write restores a copy's links and clears a killed write's leftovers.
    wh.begin(&lock)?.abort();
    let spill = root.join("spill");
    if spill.exists() {
        fs::remove_dir_all(&spill).map_err(|e| super::io_error("removing", &spill, e))?;
    }
    drop(lock);
    check(root)
}

/// A Parquet file's row count, from its footer.
fn rows_of(file: &Path) -> Result<usize, String> {
    let f = fs::File::open(file).map_err(|e| e.to_string())?;
    ParquetReader::new(f).num_rows().map_err(|e| e.to_string())
}

/// Each export's quarantined rows by the ledger against the distinct lines the quarantine
/// table holds for it (one record per problem, a row may have several).
fn quarantine_disagrees(snap: &super::Snapshot, rows: &[LedgerRow]) -> Result<Vec<Problem>> {
    use std::collections::{BTreeMap, HashSet};
    let mut ledger: BTreeMap<(String, String), i64> = BTreeMap::new();
    for r in rows {
        *ledger.entry((r.ingest.clone(), r.file.clone())).or_default() += r.quarantined;
    }
    let mut lines: BTreeMap<(String, String), HashSet<i64>> = BTreeMap::new();
    for file in snap.files(Table::Quarantine)? {
        let Ok(df) = super::read_parquet_columns(&file, &["ingest_id", "source_file", "line"]) else { continue };
        let (ids, names) = (df.column("ingest_id")?.str()?.clone(), df.column("source_file")?.str()?.clone());
        let line = df.column("line")?.i64()?.clone();
        for i in 0..df.height() {
            let key = (ids.get(i).unwrap_or("").to_string(), names.get(i).unwrap_or("").to_string());
            lines.entry(key).or_default().insert(line.get(i).unwrap_or(0));
        }
    }
    let mut out = Vec::new();
    for (key, &n) in &ledger {
        let quarantined = lines.get(key).map_or(0, HashSet::len);
        if n != quarantined as i64 {
            out.push(Problem::Quarantine { ingest: key.0.clone(), file: key.1.clone(), ledger: n, quarantined });
        }
    }
    for (key, l) in &lines {
        if !ledger.contains_key(key) {
            out.push(Problem::Quarantine {
                ingest: key.0.clone(),
                file: key.1.clone(),
                ledger: 0,
                quarantined: l.len(),
            });
        }
    }
    Ok(out)
}

/// What killed writes left: anything in `.snapshots/` but numbered snapshots up to `current`,
/// and ingest's spill folder.
fn leftovers(root: &Path, current: u64) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(root.join(SNAPSHOTS))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_str().and_then(|n| n.parse::<u64>().ok()).is_none_or(|id| id > current))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    if root.join("spill").exists() {
        out.push(root.join("spill"));
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_write_is_found_and_repaired_and_a_damaged_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("wh");
        let wh = Warehouse::open_or_create(&root).unwrap();
        {
            let lock = wh.lock("test").unwrap();
            let mut txn = wh.begin(&lock).unwrap();
            let mut df = df!("unit_id" => ["B1"]).unwrap();
            txn.write_file(Table::Ingests, "part-0.parquet", &mut df).unwrap();
            txn.commit().unwrap();
        }
        let healthy = check(&root).unwrap();
        assert_eq!(healthy.problems, vec![]);
        assert_eq!(healthy.tables.iter().find(|t| t.table == Table::Ingests).unwrap().rows, 1);

        // A write killed before its commit, and an ingest's spill folder.
        fs::create_dir_all(root.join(SNAPSHOTS).join("00000002.tmp/attendance")).unwrap();
        fs::create_dir_all(root.join("spill/x")).unwrap();
        let found = check(&root).unwrap();
        assert_eq!(found.problems.len(), 2, "{:?}", found.problems);
        assert!(found.problems.iter().all(Problem::repairable));
        assert_eq!(repair(&root).unwrap().problems, vec![]);
        assert_eq!(check(&root).unwrap(), healthy);

        // A damaged file is named and not repairable.
        let file = wh.snapshot().unwrap().files(Table::Ingests).unwrap().remove(0);
        let bytes = fs::read(&file).unwrap();
        fs::remove_file(&file).unwrap();
        fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
        let damaged = check(&root).unwrap();
        assert!(
            matches!(&damaged.problems[..], [Problem::Unreadable { file: f, .. }] if *f == file),
            "{:?}",
            damaged.problems
        );
        assert!(!damaged.problems[0].repairable());
    }
}
