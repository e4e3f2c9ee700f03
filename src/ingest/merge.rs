//! Merging validated rows of a partitioned kind (attendance, points, assessment) into the
//! warehouse: the latest export of each natural key wins, across the files of this ingest and
//! against the rows already stored, and only the partitions that change are rewritten.
//!
//! Memory follows the incoming rows, not the history: stored rows are visited one partition
//! file at a time, reading only their key and provenance columns, and a partition is read in
//! full only when it is rewritten.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::Result;
use chrono::Datelike;
use polars::prelude::*;

use super::schema::Kind;
use super::validate::{key_hash, stored_name};
use crate::warehouse::{self, Snapshot, Table, Txn};

/// The validated rows of one file, with what orders it against other exports.
pub struct Batch {
    pub file: usize,
    pub mtime_us: i64,
    pub name: String,
    /// Validated columns plus `source_line`.
    pub frame: DataFrame,
    pub keys: Vec<u128>,
}

/// Per-file figures from the merge.
#[derive(Debug, Default, Clone)]
pub struct MergeCounts {
    pub loaded: u64,
    pub duplicates: u64,
    pub superseded: u64,
}

/// The stored column order of a kind's table.
pub fn stored_columns(kind: Kind) -> Vec<String> {
    let mut cols: Vec<String> = kind.fields().iter().map(stored_name).collect();
    cols.extend(["source_file", "source_line", "source_mtime", "ingest_id"].map(String::from));
    cols
}

/// The natural key of each row of a stored frame.
pub fn frame_keys(kind: Kind, df: &DataFrame) -> Result<Vec<u128>> {
    let cols: Vec<StringChunked> =
        kind.natural_key().iter().map(|k| Ok(df.column(k)?.str()?.clone())).collect::<Result<_>>()?;
    Ok((0..df.height()).map(|i| key_hash(cols.iter().map(|c| c.get(i).unwrap_or("")))).collect())
}

/// The partition folder of every row of a validated frame.
fn partitions(kind: Kind, df: &DataFrame) -> Result<Vec<String>> {
    if let Some(date_col) = kind.month_partition_field() {
        let days = df.column(date_col)?.cast(&DataType::Int32)?;
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
        return Ok(days
            .i32()?
            .iter()
            .map(|d| {
                let date = epoch + chrono::Duration::days(d.unwrap_or(0) as i64);
                warehouse::month_partition(date.year(), date.month())
            })
            .collect());
    }
    // Assessment: by the year of its period label (`2026Q1` or `2026`).
    let periods = df.column("period")?.str()?.clone();
    Ok(periods
        .iter()
        .map(|p| warehouse::year_partition(p.and_then(|p| p.get(..4)).and_then(|y| y.parse().ok()).unwrap_or(0)))
        .collect())
}

/// Merge `batches` of `kind` into the transaction; returns figures per input file.
pub fn merge_kind(
    kind: Kind,
    batches: Vec<Batch>,
    ingest_id: &str,
    base: &Snapshot,
    txn: &mut Txn,
) -> Result<HashMap<usize, MergeCounts>> {
    let table = Table::of_kind(kind);
    let mut counts: HashMap<usize, MergeCounts> = HashMap::new();
    let mut order: Vec<usize> = (0..batches.len()).collect();
    order.sort_by(|&a, &b| (batches[a].mtime_us, &batches[a].name).cmp(&(batches[b].mtime_us, &batches[b].name)));

    // 1. Within this ingest: the latest export of a key wins.
    let mut winners: HashMap<u128, (usize, usize)> = HashMap::new();
    let mut keep: Vec<Vec<bool>> = batches.iter().map(|b| vec![true; b.keys.len()]).collect();
    for &bi in &order {
        for (row, key) in batches[bi].keys.iter().enumerate() {
            if let Some((pb, pr)) = winners.insert(*key, (bi, row)) {
                keep[pb][pr] = false;
                counts.entry(batches[pb].file).or_default().duplicates += 1;
            }
        }
    }
    let lines: Vec<Int64Chunked> =
        batches.iter().map(|b| Ok(b.frame.column("source_line")?.i64()?.clone())).collect::<Result<_>>()?;

    // 2. Against the stored rows, one partition file at a time, key columns only.
    let mut key_cols: Vec<&str> = kind.natural_key().to_vec();
    key_cols.extend(["source_mtime", "source_file", "source_line"]);
    let mut removals: BTreeMap<std::path::PathBuf, Vec<usize>> = BTreeMap::new();
    if !winners.is_empty() {
        for file in base.files(table)? {
            let df = warehouse::read_parquet_columns(&file, &key_cols)?;
            let keys = frame_keys(kind, &df)?;
            let mtime = df.column("source_mtime")?.cast(&DataType::Int64)?;
            let mtime = mtime.i64()?;
            let name = df.column("source_file")?.str()?;
            let line = df.column("source_line")?.i64()?;
            for (i, key) in keys.iter().enumerate() {
                let Some(&(bi, row)) = winners.get(key) else { continue };
                let b = &batches[bi];
                let stored = (mtime.get(i).unwrap_or(0), name.get(i).unwrap_or(""), line.get(i).unwrap_or(0));
                let incoming = (b.mtime_us, b.name.as_str(), lines[bi].get(row).unwrap_or(0));
                if stored > incoming {
                    // The warehouse holds a later export of this key.
                    keep[bi][row] = false;
                    winners.remove(key);
                    counts.entry(b.file).or_default().duplicates += 1;
                } else {
                    removals.entry(file.clone()).or_default().push(i);
                    counts.entry(b.file).or_default().superseded += 1;
                }
            }
        }
    }

    // 3. The incoming rows that stay, with provenance, grouped by partition.
    let cols = stored_columns(kind);
    let mut incoming: BTreeMap<String, Vec<DataFrame>> = BTreeMap::new();
    for (bi, b) in batches.iter().enumerate() {
        let mask: BooleanChunked = keep[bi].iter().copied().collect();
        let mut df = b.frame.filter(&mask)?;
        let n = df.height();
        counts.entry(b.file).or_default().loaded += n as u64;
        if n == 0 {
            continue;
        }
        df.with_column(Column::new("source_file".into(), vec![b.name.as_str(); n]))?;
        df.with_column(
            Column::new("source_mtime".into(), vec![b.mtime_us; n])
                .cast(&DataType::Datetime(TimeUnit::Microseconds, None))?,
        )?;
        df.with_column(Column::new("ingest_id".into(), vec![ingest_id; n]))?;
        let df = df.select(cols.iter().map(String::as_str))?;
        let parts = partitions(kind, &df)?;
        let distinct: BTreeSet<&String> = parts.iter().collect();
        for p in distinct {
            let mask: BooleanChunked = parts.iter().map(|x| x == p).collect();
            incoming.entry(p.clone()).or_default().push(df.filter(&mask)?);
        }
    }

    // 4. Rewrite every partition that gains rows or loses superseded ones.
    let mut touched: BTreeSet<String> = incoming.keys().cloned().collect();
    for f in removals.keys() {
        touched.insert(base.partition_of(table, f));
    }
    let key_sort: Vec<&str> = kind.natural_key().to_vec();
    for part in touched {
        let mut frames: Vec<DataFrame> = Vec::new();
        for f in base.partition_files(table, &part)? {
            let mut df = warehouse::read_parquet(&f)?;
            if let Some(rows) = removals.get(&f) {
                let drop: std::collections::HashSet<usize> = rows.iter().copied().collect();
                let mask: BooleanChunked = (0..df.height()).map(|i| !drop.contains(&i)).collect();
                df = df.filter(&mask)?;
            }
            frames.push(df.select(cols.iter().map(String::as_str))?);
        }
        frames.extend(incoming.remove(&part).unwrap_or_default());
        let mut all = match frames.len() {
            0 => continue,
            _ => {
                let mut it = frames.into_iter();
                let mut acc = it.next().expect("one frame");
                for f in it {
                    anyhow::Context::with_context(acc.vstack_mut_owned(f), || {
                        format!("combining rows of {table}/{part}")
                    })?;
                }
                acc
            }
        };
        all = all.sort(key_sort.clone(), SortMultipleOptions::default().with_maintain_order(true))?;
        txn.replace_partition(table, &part, &mut all)?;
    }
    Ok(counts)
}
