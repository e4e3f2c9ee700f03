//! Merging validated rows of a partitioned kind (attendance, points, assessment) into the
//! warehouse: the latest export of each natural key wins, across the files of this ingest and
//! against the rows already stored, and only the partitions that change are rewritten.
//!
//! Memory follows the incoming rows, not the history: stored rows are visited one partition
//! file at a time, reading only their key and provenance columns, and a partition is read in
//! full only when it is rewritten. Incoming rows are split by partition as soon as a file is
//! validated ([`Spill::stage`]); past a memory budget the pieces wait on disk and only their
//! key hashes stay in memory, so an ingest of many large files does not hold all of them at
//! once. A piece on disk is already in stored form (sorted by natural key, provenance
//! columns, zstd, synced): when it turns out to be the whole of its partition, as a month's
//! export usually is, the merge moves the file in instead of reading and writing it again.
//!
//! Keys are compared exactly only where they can meet. A validated row keeps only a 64-bit
//! hash of its key until the merge (8 bytes a row; a file read in blocks leaves them on disk,
//! [`super::keyspill`]). A two-bit count per hash slot
//! ([`super::keyfilter`]) of the incoming keys, marked by the stored keys that fall on one,
//! leaves only the keys sharing a slot with another; among those, the rows whose 64-bit hash
//! another row or a stored key has are read back from their staged pieces, and their full
//! keys decide.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use chrono::Datelike;
use polars::prelude::*;
use rayon::prelude::*;

use super::keyfilter;
use super::keyspill::{Keys, RowMap};
use super::validate::{RejectedRow, conflict_rows, fold, key_hash_with, short};
use crate::model::Kind;
use crate::model::kinds::Partitioning;
use crate::packed::TextMap;
use crate::warehouse::{self, Built, Snapshot, Txn};

/// The validated rows of one file, with what orders it against other exports.
pub struct Batch {
    pub file: usize,
    pub mtime_us: i64,
    pub name: String,
    /// The short hash of each validated row's natural key (see `validate::short`).
    pub keys: Keys,
    pub staged: Staged,
}

/// A file's validated rows, split by partition. Their source lines and full keys stay in the
/// pieces: the merge needs them only for the few rows whose key may meet another (see
/// [`read_back`]), so none is kept aside for every row.
pub struct Staged {
    pub pieces: Vec<Piece>,
    /// The file's short key hashes, when they were written beside the pieces (a file read in
    /// blocks); a file read whole has them from its validator.
    pub keys: Option<Keys>,
}

/// The rows of one file that fall in one partition.
pub struct Piece {
    pub partition: String,
    pub data: PieceData,
    /// The validated row behind each row of the piece; `None` when the piece is all of them.
    pub rows: Option<RowMap>,
}

/// Where a piece waits for the merge.
pub enum PieceData {
    Memory(DataFrame),
    Spilled(PathBuf),
}

/// Where validated rows are staged: in memory up to a budget, then on disk.
pub struct Spill {
    dir: PathBuf,
    ingest_id: String,
    budget: usize,
    used: AtomicUsize,
    /// Stagings so far, naming their files apart (a large file is staged block by block).
    stagings: AtomicUsize,
}

/// A file whose validated rows take more than this share of the memory budget (2 MiB of the
/// default 64, about 20,000 attendance rows) is staged on disk straight away (see
/// [`Spill::stage`]): spilling it costs little for its size, and it is likely a partition of
/// its own. At an eighth, a district's monthly export of 190,000 rows stayed in memory.
const LARGE_SHARE: usize = 32;

/// Where a file's rows came from, as the stored provenance columns record it.
pub struct Source<'a> {
    pub name: &'a str,
    pub mtime_us: i64,
}

impl Spill {
    /// The folder of this ingest's staged files (made when first needed).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stage under `root/spill/<ingest id>`, keeping up to `budget` bytes of rows in memory.
    /// Leftovers of an interrupted ingest are removed (the caller holds the ingest lock).
    pub fn new(root: &Path, ingest_id: &str, budget: usize) -> Result<Spill> {
        let parent = root.join("spill");
        if parent.exists() {
            std::fs::remove_dir_all(&parent).map_err(|e| anyhow::anyhow!("removing {}: {e}", parent.display()))?;
        }
        Ok(Spill {
            dir: parent.join(ingest_id),
            ingest_id: ingest_id.to_string(),
            budget,
            used: AtomicUsize::new(0),
            stagings: AtomicUsize::new(0),
        })
    }

    /// Split a file's validated frame by partition, in memory or on disk. The rows are put in
    /// natural-key order first, the order the merge writes a partition in.
    /// `in_key_order` is the validator's word that the rows are sorted already (see
    /// `Validated::in_key_order`); without it they are checked, then sorted if need be.
    pub fn stage(
        &self,
        kind: Kind,
        file: usize,
        source: Source,
        frame: DataFrame,
        in_key_order: bool,
    ) -> Result<Staged> {
        let size = frame.estimated_size();
        // A large file goes to disk at once, in stored form: it is most likely a partition of
        // its own (a month's export), which the merge then moves in as it is. The budget keeps
        // the small files in memory, whose pieces share partitions and are merged anyway.
        let large = size > self.budget / LARGE_SHARE;
        let in_memory = !large
            && self
                .used
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| (u + size <= self.budget).then_some(u + size))
                .is_ok();
        let staging = self.next_staging();
        let mut pieces = Vec::new();
        for (n, (partition, df, rows)) in split(kind, frame, in_key_order)?.into_iter().enumerate() {
            let data = if in_memory {
                PieceData::Memory(df)
            } else {
                PieceData::Spilled(self.write_piece(kind, &format!("{file}-{staging}-{n}"), &source, df)?)
            };
            pieces.push(Piece { partition, data, rows: rows.map(RowMap::Memory) });
        }
        Ok(Staged { pieces, keys: None })
    }

    /// Rows of one partition written in stored form under the staging folder as `name`.
    pub(super) fn write_piece(&self, kind: Kind, name: &str, source: &Source, df: DataFrame) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.dir).map_err(|e| anyhow::anyhow!("creating {}: {e}", self.dir.display()))?;
        let path = self.dir.join(format!("{name}.parquet"));
        let mut df = stored_form(kind, df, source.name, source.mtime_us, &self.ingest_id)?;
        warehouse::write_parquet_unsynced(&mut df, &path)?;
        Ok(path)
    }

    /// A number naming a staging's files apart from the others'.
    pub(super) fn next_staging(&self) -> usize {
        self.stagings.fetch_add(1, Ordering::SeqCst)
    }
}

/// A partition's rows of a frame, with the validated row behind each of them (`None` when they
/// are all the frame's rows, in order).
pub(super) type PartRows = (String, DataFrame, Option<Vec<IdxSize>>);

/// A validated frame in natural-key order, split by partition.
pub(super) fn split(kind: Kind, frame: DataFrame, in_key_order: bool) -> Result<Vec<PartRows>> {
    let (sorted, order) = sort_by_key(kind, frame, in_key_order)?;
    let groups = partition_rows(kind, &sorted)?;
    let whole = groups.len() == 1;
    let mut parts = Vec::with_capacity(groups.len());
    for (partition, at) in groups {
        let df = if whole { sorted.clone() } else { take_serial(&sorted, &at)? };
        let rows: Option<Vec<IdxSize>> = match &order {
            Some(order) => Some(at.iter().map(|&i| order[i as usize]).collect()),
            None => (!whole).then_some(at),
        };
        parts.push((partition, df, rows));
    }
    Ok(parts)
}

impl Drop for Spill {
    fn drop(&mut self) {
        if let Some(parent) = self.dir.parent() {
            let _ = std::fs::remove_dir_all(parent);
        }
    }
}

/// A file's validated rows in natural-key order (stable: the file's order among equals, though
/// a validated file has no repeated key), and the validated row behind each sorted row, or
/// `None` when they were in order already (then nothing is sorted). `known_sorted` skips the
/// check when the validator has already seen the order.
fn sort_by_key(kind: Kind, frame: DataFrame, known_sorted: bool) -> Result<(DataFrame, Option<Vec<IdxSize>>)> {
    // Exports usually come in key order already (by event, then member), and polars sorts
    // sorted rows at full price (the sort and the gather were a twelfth of ingest's time).
    // A file the validator saw out of order may still be sorted once its conflicting rows
    // are gone, so that case is checked here.
    if known_sorted || in_key_order(kind, &frame)? {
        return Ok((frame, None));
    }
    let order = key_order(kind, &frame)?;
    let sorted = take_owned(frame, &order)?;
    Ok((sorted, Some(order)))
}

/// The rows of a frame in natural-key order, as indices. Rows are sorted by fixed-size
/// prefixes of their first two key texts (big-endian integers order as the bytes do) and the
/// texts' lengths; only rows whose texts are longer than their prefixes and tie on them compare
/// their whole keys. polars' multi-column sort, and a sort comparing texts throughout, spent
/// most of an unsorted file's ingest in `memcmp`; so did a 16-byte prefix, which event ids of
/// 17 characters (`EB00001-202511-01`) overflow.
pub(crate) fn key_order(kind: Kind, frame: &DataFrame) -> Result<Vec<IdxSize>> {
    let cols = key_columns(kind, frame)?;
    let arrays: Vec<_> = cols.iter().map(|c| c.downcast_as_array()).collect();
    let n = frame.height();
    if let Some(order) = order_by_ranks(&arrays, n) {
        return Ok(order);
    }
    if let Some(order) = order_by_runs(&arrays, n) {
        return Ok(order);
    }
    Ok(order_by_prefixes(&arrays, n))
}

/// Any key's order (see [`key_order`]).
fn order_by_prefixes(arrays: &[&polars_arrow::array::Utf8ViewArray], n: usize) -> Vec<IdxSize> {
    let mut rows: Vec<SortKey> = (0..n)
        .map(|i| {
            let (first, first_len) = prefix::<32>(arrays.first().and_then(|a| a.get(i)));
            let (second, second_len) = prefix::<8>(arrays.get(1).and_then(|a| a.get(i)));
            SortKey {
                first: [
                    u128::from_be_bytes(first[..16].try_into().expect("16 bytes")),
                    u128::from_be_bytes(first[16..].try_into().expect("16 bytes")),
                ],
                second: u64::from_be_bytes(second),
                first_len,
                second_len,
                row: i as IdxSize,
            }
        })
        .collect();
    let whole = |i: IdxSize| arrays.iter().map(move |a| a.get(i as usize));
    rows.sort_unstable_by(|a, b| {
        a.first
            .cmp(&b.first)
            .then_with(|| match (a.first_len, b.first_len) {
                // Both texts within their prefixes: equal prefixes and lengths are equal texts
                // (a shorter text, zero-padded, is a prefix of the longer: it sorts first).
                (Some(x), Some(y)) => x.cmp(&y).then_with(|| match (a.second_len, b.second_len) {
                    (Some(x), Some(y)) => a.second.cmp(&b.second).then(x.cmp(&y)),
                    _ => a.second.cmp(&b.second).then_with(|| whole(a.row).cmp(whole(b.row))),
                }),
                _ => whole(a.row).cmp(whole(b.row)),
            })
            .then_with(|| whole(a.row).cmp(whole(b.row)))
            .then(a.row.cmp(&b.row))
    });
    rows.into_iter().map(|r| r.row).collect()
}

/// The same order as one number a row, when the key is two texts, the first of them taking
/// few values (an event's id, repeated on each of its members' rows) and the second at most
/// eight bytes (a member's id): the first text's rank among its distinct values, the second's
/// bytes and length, and the row, packed into 128 bits and sorted as integers, far cheaper
/// than structures of prefixes compared field by field. `None` for any other key.
fn order_by_ranks(arrays: &[&polars_arrow::array::Utf8ViewArray], n: usize) -> Option<Vec<IdxSize>> {
    use polars_arrow::array::Array;
    let [first, second] = arrays else { return None };
    if n >= 1 << 32 || first.null_count() > 0 || second.null_count() > 0 {
        return None;
    }
    // The distinct first texts, each with the rows' index into them. A row with the view of
    // the row before has its text (runs, interned texts); texts of up to 16 bytes are found by
    // their packed form, without comparing texts.
    let mut index: TextMap<&str, u32> = TextMap::default();
    let mut distinct: Vec<&str> = Vec::new();
    let mut of_row: Vec<u32> = Vec::with_capacity(n);
    let mut last: Option<(u128, u32)> = None;
    for (i, view) in first.views().iter().enumerate() {
        let k = match last {
            Some((l, k)) if l == view.as_u128() => k,
            _ => {
                let t = first.value(i);
                let k = *index.get_or_insert_with(t, || {
                    distinct.push(t);
                    (distinct.len() - 1) as u32
                });
                last = Some((view.as_u128(), k));
                k
            }
        };
        of_row.push(k);
        if distinct.len() > RANKS {
            return None;
        }
    }
    let mut by_text: Vec<u32> = (0..distinct.len() as u32).collect();
    by_text.sort_unstable_by_key(|&k| distinct[k as usize]);
    let mut rank = vec![0u32; distinct.len()];
    for (r, &k) in by_text.iter().enumerate() {
        rank[k as usize] = r as u32;
    }
    // The rows are put in their first text's bucket (a counting sort by rank), and each
    // bucket, an event's few dozen members, is sorted alone: fewer comparisons than sorting
    // all the keys at once, on keys that stay in the cache.
    let mut start = vec![0usize; distinct.len() + 1];
    for &k in &of_row {
        start[rank[k as usize] as usize + 1] += 1;
    }
    for r in 1..start.len() {
        start[r] += start[r - 1];
    }
    let mut next = start.clone();
    let mut keys: Vec<u128> = vec![0; n];
    for (i, &k) in of_row.iter().enumerate() {
        let t = second.value(i);
        if t.len() > 8 {
            return None;
        }
        let (p, _) = prefix::<8>(Some(t));
        let r = rank[k as usize];
        let key = (r as u128) << 100 | (u64::from_be_bytes(p) as u128) << 36 | (t.len() as u128) << 32 | i as u128;
        keys[next[r as usize]] = key;
        next[r as usize] += 1;
    }
    for bucket in start.windows(2) {
        keys[bucket[0]..bucket[1]].sort_unstable();
    }
    Some(keys.into_iter().map(|k| k as u32 as IdxSize).collect())
}

/// The most distinct first texts [`order_by_ranks`] ranks (they fit in the 28 bits left).
const RANKS: usize = 1 << 20;

/// The same order for rows whose first key text comes in runs, as exports list an event's
/// members together: the runs are sorted by that text, and the rows of each text by the rest
/// of the key, a few dozen at a time instead of all together. `None` when the runs are short
/// (shuffled rows), where sorting every row at once is cheaper.
fn order_by_runs(arrays: &[&polars_arrow::array::Utf8ViewArray], n: usize) -> Option<Vec<IdxSize>> {
    let (first, rest) = arrays.split_first()?;
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut start = 0;
    for i in 1..=n {
        if i == n || first.get(i) != first.get(start) {
            runs.push((start, i));
            if runs.len() > n / RUN_ROWS {
                return None;
            }
            start = i;
        }
    }
    // Equal texts in file order, so that the sort within them can break ties by row.
    runs.sort_unstable_by(|a, b| first.get(a.0).cmp(&first.get(b.0)).then(a.0.cmp(&b.0)));
    let rest_of = |row: IdxSize| rest.iter().map(move |a| a.get(row as usize));
    let mut order: Vec<IdxSize> = Vec::with_capacity(n);
    // (prefix of the second key text, its length when the prefix holds it all, row).
    let mut group: Vec<(u64, Option<u8>, IdxSize)> = Vec::new();
    for same in runs.chunk_by(|a, b| first.get(a.0) == first.get(b.0)) {
        group.clear();
        for &(s, e) in same {
            group.extend((s..e).map(|i| {
                let (p, len) = prefix::<8>(rest.first().and_then(|a| a.get(i)));
                (u64::from_be_bytes(p), len, i as IdxSize)
            }));
        }
        let whole_rest = rest.len() > 1;
        group.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| match (a.1, b.1) {
                    (Some(x), Some(y)) if !whole_rest => x.cmp(&y),
                    _ => rest_of(a.2).cmp(rest_of(b.2)),
                })
                .then(a.2.cmp(&b.2))
        });
        order.extend(group.iter().map(|g| g.2));
    }
    Some(order)
}

/// The fewest rows a run of one first key text has on average for [`order_by_runs`].
const RUN_ROWS: usize = 8;

/// What a row is sorted by (see [`key_order`]).
struct SortKey {
    first: [u128; 2],
    second: u64,
    /// A text's length when it is all in its prefix (`None`: longer, or missing).
    first_len: Option<u8>,
    second_len: Option<u8>,
    row: IdxSize,
}

/// A text's first `N` bytes, zero-padded, and its length when it fits in them.
fn prefix<const N: usize>(text: Option<&str>) -> ([u8; N], Option<u8>) {
    let mut out = [0u8; N];
    let Some(t) = text else { return (out, None) };
    let n = t.len().min(N);
    out[..n].copy_from_slice(&t.as_bytes()[..n]);
    (out, (t.len() <= N).then_some(t.len() as u8))
}

/// The natural-key columns of a frame as one array each: `ChunkedArray::get` would find the
/// chunk again for every row.
fn key_columns(kind: Kind, df: &DataFrame) -> Result<Vec<StringChunked>> {
    kind.natural_key().iter().map(|k| Ok(df.column(k)?.str()?.rechunk().into_owned())).collect()
}

/// Whether the rows are in natural-key order already (byte order, as polars sorts text).
pub(crate) fn in_key_order(kind: Kind, frame: &DataFrame) -> Result<bool> {
    let cols = key_columns(kind, frame)?;
    let arrays: Vec<_> = cols.iter().map(|c| c.downcast_as_array()).collect();
    let key = |i: usize| arrays.iter().map(move |a| a.get(i));
    Ok((1..frame.height()).all(|i| key(i - 1).cmp(key(i)).is_le()))
}

/// A piece of incoming rows with their provenance columns, in stored column order.
fn stored_form(kind: Kind, mut df: DataFrame, name: &str, mtime_us: i64, ingest_id: &str) -> Result<DataFrame> {
    let n = df.height();
    df.with_column(Column::new_scalar("source_file".into(), Scalar::from(PlSmallStr::from(name)), n))?;
    df.with_column(
        Column::new_scalar("source_mtime".into(), Scalar::from(mtime_us), n)
            .cast(&DataType::Datetime(TimeUnit::Microseconds, None))?,
    )?;
    df.with_column(Column::new_scalar("ingest_id".into(), Scalar::from(PlSmallStr::from(ingest_id)), n))?;
    Ok(df.select(kind.stored_columns())?)
}

/// Rows by index on the calling thread: the caller is already one task per core.
fn take_serial(df: &DataFrame, rows: &[IdxSize]) -> Result<DataFrame> {
    let idx = IdxCa::from_vec("".into(), rows.to_vec());
    let cols = df.columns().iter().map(|c| c.take(&idx)).collect::<PolarsResult<Vec<_>>>()?;
    Ok(DataFrame::new(rows.len(), cols)?)
}

/// The same, each column freed as soon as it is taken, so that the rows are held about once,
/// not twice: a province's month (3 M rows) rewritten on each core took 1 GB a partition.
pub(super) fn take_owned(df: DataFrame, rows: &[IdxSize]) -> Result<DataFrame> {
    let idx = IdxCa::from_vec("".into(), rows.to_vec());
    let mut cols = Vec::with_capacity(df.width());
    for c in df.into_columns() {
        // polars gathers text from several chunks value by value, copying each string; from
        // one chunk it copies the views alone.
        let c = if c.n_chunks() > 1 { c.rechunk() } else { c };
        cols.push(c.take(&idx)?);
    }
    Ok(DataFrame::new(rows.len(), cols)?)
}

/// Incoming rows of one partition from one file, with what the merge decided about them.
struct Incoming {
    data: PieceData,
    /// Which rows stay; `None` when all of them do.
    keep: Option<BooleanChunked>,
    name: String,
    mtime_us: i64,
}

/// The key space of the in-ingest deduplication is cut into 2^SHARD_BITS shards.
const SHARD_BITS: u32 = 3;

/// One shard of the search for shared short hashes: the (short hash, batch, row) of the last
/// candidate with each short hash, and the (batch, row) of every candidate whose short hash
/// another one has.
type Shard = (hashbrown::HashTable<(u64, u32, u32)>, Vec<(u32, u32)>);

/// A stored row whose key comes in again: (stored row, batch, validated row).
type Match = (usize, usize, usize);

/// Per-file figures from the merge.
#[derive(Debug, Default, Clone)]
pub struct MergeCounts {
    pub loaded: u64,
    pub duplicates: u64,
    pub superseded: u64,
    /// A file's own key conflicts found here (a large file read in blocks, see
    /// [`own_repeats`]), in the validator's form; `true` for a row whose cells the clerk's
    /// file should show (they are read again from the export).
    pub conflicts: Vec<(RejectedRow, bool)>,
}

/// The stored column order of a kind's table.
/// The natural key of each row of a stored frame.
pub fn frame_keys(kind: Kind, df: &DataFrame) -> Result<Vec<u128>> {
    let cols = key_columns(kind, df)?;
    let arrays: Vec<_> = cols.iter().map(|c| c.downcast_as_array()).collect();
    let mut buf = Vec::with_capacity(64);
    Ok((0..df.height()).map(|i| key_hash_with(&mut buf, arrays.iter().map(|a| a.get(i).unwrap_or("")))).collect())
}

/// The rows of a stored-columns frame grouped by partition folder, in row order within each.
/// A month or a year is worked out once per distinct day or period, not once per row.
fn partition_rows(kind: Kind, df: &DataFrame) -> Result<BTreeMap<String, Vec<IdxSize>>> {
    let mut groups: BTreeMap<String, Vec<IdxSize>> = BTreeMap::new();
    match kind.partitioning() {
        Partitioning::Month(date_col) => {
            let days = df.column(date_col)?.cast(&DataType::Int32)?;
            // Rows come grouped by day: the rows of a run of one day go to the group found for
            // its first row (a lookup per row was 2% of ingest's CPU).
            let mut runs: Vec<(String, Vec<IdxSize>)> = Vec::new();
            let mut index: HashMap<String, usize> = HashMap::new();
            let mut last: Option<(i32, usize)> = None;
            for (i, d) in days.i32()?.iter().enumerate() {
                let d = d.unwrap_or(0);
                let at = match last {
                    Some((day, at)) if day == d => at,
                    _ => {
                        let date = crate::model::period::date_of_day(d);
                        let part = warehouse::month_partition(date.year(), date.month());
                        let at = *index.entry(part.clone()).or_insert_with(|| {
                            runs.push((part, Vec::new()));
                            runs.len() - 1
                        });
                        last = Some((d, at));
                        at
                    }
                };
                runs[at].1.push(i as IdxSize);
            }
            return Ok(runs.into_iter().collect());
        }
        Partitioning::YearOfPeriod(field) => {
            // A period label: `2026Q1` or `2026`.
            let periods = df.column(field)?.str()?.clone();
            for (i, p) in periods.iter().enumerate() {
                let year = p.and_then(|p| p.get(..4)).and_then(|y| y.parse().ok()).unwrap_or(0);
                groups.entry(warehouse::year_partition(year)).or_default().push(i as IdxSize);
            }
        }
        Partitioning::YearOfDate(field) => {
            let days = df.column(field)?.cast(&DataType::Int32)?;
            for (i, d) in days.i32()?.iter().enumerate() {
                let year = crate::model::period::date_of_day(d.unwrap_or(0)).year();
                groups.entry(warehouse::year_partition(year)).or_default().push(i as IdxSize);
            }
        }
        Partitioning::Whole => {
            groups.insert(String::new(), (0..df.height() as IdxSize).collect());
        }
    }
    Ok(groups)
}

/// Values for the validated rows `wanted` of each batch (sorted, no repeats), in that order.
/// The merge keeps only short key hashes per row; the few rows it must look at more closely are
/// read back from their staged pieces (a piece on disk: `columns` only). Pieces are read on the
/// worker threads, so one large file's months are read in parallel too, and only the wanted rows
/// become values: a file with a few repeats costs a few rows' values, not a value for each row.
fn read_back<T: Copy + Default + Send>(
    batches: &[Batch],
    wanted: &BTreeMap<usize, Vec<u32>>,
    columns: &[&str],
    values: impl Fn(&DataFrame) -> Result<Vec<T>> + Sync,
) -> Result<HashMap<usize, Vec<T>>> {
    let jobs = pieces_holding(batches, wanted)?;
    let read = crate::workers::map(jobs, |(bi, piece, at, to)| -> Result<_> {
        Ok((bi, to, values(&piece_rows(piece, Some(columns), &at)?)?))
    });
    let mut out: HashMap<usize, Vec<T>> =
        wanted.iter().map(|(&bi, rows)| (bi, vec![T::default(); rows.len()])).collect();
    for r in read {
        let (bi, to, got) = r?;
        let slots = out.get_mut(&bi).expect("a read-back job is for a wanted batch");
        for (t, v) in to.into_iter().zip(got) {
            slots[t] = v;
        }
    }
    Ok(out)
}

/// The rows `at` of a piece; of a piece on disk, only `columns` (all when `None`).
fn piece_rows(piece: &Piece, columns: Option<&[&str]>, at: &IdxCa) -> Result<DataFrame> {
    let df = match (&piece.data, columns) {
        (PieceData::Memory(df), _) => df.take(at)?,
        (PieceData::Spilled(path), Some(columns)) => warehouse::read_parquet_columns_serial(path, columns)?.take(at)?,
        (PieceData::Spilled(path), None) => warehouse::read_parquet_serial(path)?.take(at)?,
    };
    Ok(df)
}

/// A piece holding wanted rows of batch `.0`: their positions in the piece, their places in the
/// batch's wanted rows.
type Holding<'b> = (usize, &'b Piece, IdxCa, Vec<usize>);

/// The pieces holding any of the `wanted` rows of their batch, each with those rows' positions
/// in the piece and their places in `wanted`.
fn pieces_holding<'b>(batches: &'b [Batch], wanted: &BTreeMap<usize, Vec<u32>>) -> Result<Vec<Holding<'b>>> {
    let mut jobs = Vec::new();
    for (&bi, rows) in wanted {
        let batch = &batches[bi];
        // One bit per validated row: most rows of a piece are not wanted, and a bit says so
        // without a search.
        let mut bits = vec![0u64; batch.keys.len().div_ceil(64)];
        for &r in rows {
            bits[r as usize / 64] |= 1 << (r % 64);
        }
        let is_wanted = |r: u32| bits[r as usize / 64] >> (r % 64) & 1 == 1;
        let place = |r: u32| rows.binary_search(&r).expect("a wanted row is in `wanted`");
        for piece in &batch.staged.pieces {
            let (at, to): (Vec<IdxSize>, Vec<usize>) = match &piece.rows {
                Some(of_piece) => of_piece
                    .load()?
                    .iter()
                    .enumerate()
                    .filter(|&(_, &r)| is_wanted(r))
                    .map(|(i, &r)| (i as IdxSize, place(r)))
                    .unzip(),
                None => rows.iter().enumerate().map(|(w, &r)| (r as IdxSize, w)).unzip(),
            };
            if !at.is_empty() {
                jobs.push((bi, piece, IdxCa::from_vec(PlSmallStr::EMPTY, at), to));
            }
        }
    }
    Ok(jobs)
}

/// Merge `batches` of `kind` into the transaction; returns figures per input file.
pub fn merge_kind(
    kind: Kind,
    batches: Vec<Batch>,
    ingest_id: &str,
    scratch: &Path,
    base: &Snapshot,
    txn: &mut Txn,
) -> Result<HashMap<usize, MergeCounts>> {
    merge_kind_with(kind, batches, ingest_id, scratch, base, txn, short)
}

/// [`merge_kind`] for batches whose keys were shortened by `short` (tests shorten them to a
/// few values, so that the full keys decide every case).
fn merge_kind_with(
    kind: Kind,
    batches: Vec<Batch>,
    ingest_id: &str,
    scratch: &Path,
    base: &Snapshot,
    txn: &mut Txn,
    short: fn(u128) -> u64,
) -> Result<HashMap<usize, MergeCounts>> {
    let table = kind.table();
    let mut counts: HashMap<usize, MergeCounts> = HashMap::new();
    let clock = std::time::Instant::now();
    let step = |name: &str| tracing::debug!(step = name, ms = clock.elapsed().as_millis() as u64, "merge step done");

    let stored = if batches.iter().any(|b| !b.keys.is_empty()) { base.files(table)? } else { Vec::new() };
    let found = find_candidates(kind, &batches, &stored, short, &step)?;
    let suspects = find_suspects(found.candidates, &found.stored_hits, short);
    step("suspects found");
    let (mut keep, latest) = dedup_within(kind, &batches, &suspects, &mut counts)?;
    step("dedup within the ingest");
    let removals = dedup_against_stored(&batches, &stored, found.stored_hits, latest, &mut keep, &mut counts)?;
    step("dedup against the warehouse");
    let touched = split_by_partition(kind, batches, &keep, &removals, base, &mut counts)?;
    step("split by partition");
    rewrite_partitions(kind, touched, &removals, ingest_id, scratch, base, txn)?;
    step("partitions written");
    Ok(counts)
}

/// What the first phase of a merge finds.
struct Candidates {
    /// The stored rows whose key may be an incoming one, per stored file: (row, full key hash),
    /// about one in twenty by chance when nothing matches.
    stored_hits: Vec<(Vec<u32>, Vec<u128>)>,
    /// The incoming rows that may repeat, by batch and by shard of their short hash, each with
    /// its short hash: the shards then read compact lists, not the key arrays at random.
    candidates: Vec<Vec<Vec<(u32, u64)>>>,
}

fn shard_of(h: u64) -> usize {
    (h >> (64 - SHARD_BITS)) as usize
}

/// Which incoming keys can meet another key at all: a key alone in its slot of the filter is
/// unique in this ingest, and the stored keys are checked against the filter before anything
/// exact is built. Stored partition files are read in parallel, key columns only. This reads
/// every stored partition's keys, so it is the part of an ingest that grows with the history.
fn find_candidates(
    kind: Kind,
    batches: &[Batch],
    stored: &[PathBuf],
    short: fn(u128) -> u64,
    step: &dyn Fn(&str),
) -> Result<Candidates> {
    let all_keys: Vec<&Keys> = batches.iter().map(|b| &b.keys).collect();
    let mut filter = keyfilter::KeyFilter::count(&all_keys)?;
    step("filter counted");
    let key_cols: Vec<&str> = kind.natural_key().to_vec();
    // Plain threads, not rayon: reading Parquet calls polars (see `workers`).
    let stored_hits: Vec<(Vec<u32>, Vec<u128>)> = crate::workers::map(stored.iter().collect(), |file| {
        let keys = frame_keys(kind, &warehouse::read_parquet_columns_serial(file, &key_cols)?)?;
        let mut hits = (Vec::new(), Vec::new());
        for (i, &key) in keys.iter().enumerate() {
            if let Some(ahead) = keys.get(i + keyfilter::AHEAD) {
                filter.prefetch(short(*ahead));
            }
            if filter.has_incoming(short(key)) {
                hits.0.push(i as u32);
                hits.1.push(key);
            }
        }
        Ok(hits)
    })
    .into_iter()
    .collect::<Result<_>>()?;
    step("stored keys read");
    for &key in stored_hits.iter().flat_map(|(_, keys)| keys) {
        filter.mark_stored(short(key));
    }
    let candidates: Vec<Vec<Vec<(u32, u64)>>> = batches
        .par_iter()
        .map(|b| {
            let mut by_shard = vec![Vec::new(); 1 << SHARD_BITS];
            b.keys.for_each_slice(|start, keys| {
                for (i, &h) in keys.iter().enumerate() {
                    if let Some(ahead) = keys.get(i + keyfilter::AHEAD) {
                        filter.prefetch(*ahead);
                    }
                    if filter.may_repeat(h) {
                        by_shard[shard_of(h)].push(((start + i) as u32, h));
                    }
                }
            })?;
            Ok(by_shard)
        })
        .collect::<Result<_>>()?;
    step("candidates found");
    Ok(Candidates { stored_hits, candidates })
}

/// The candidates whose short hash is another candidate's or a stored key's, by batch: only
/// these have their full keys read back and compared. The short hashes are cut into shards
/// worked on in parallel.
fn find_suspects(
    candidates: Vec<Vec<Vec<(u32, u64)>>>,
    stored_hits: &[(Vec<u32>, Vec<u128>)],
    short: fn(u128) -> u64,
) -> BTreeMap<usize, Vec<u32>> {
    // hashbrown takes a bucket from the low bits and a tag from the top ones, where all of a
    // shard's hashes agree.
    let bucket = |h: u64| h.rotate_left(32);
    let shards: Vec<Shard> = (0..1usize << SHARD_BITS)
        .into_par_iter()
        .map(|s| {
            let rows: usize = candidates.iter().map(|c| c[s].len()).sum();
            let mut map: hashbrown::HashTable<(u64, u32, u32)> = hashbrown::HashTable::with_capacity(rows);
            let mut suspects = Vec::new();
            for (bi, by_shard) in candidates.iter().enumerate() {
                for &(row, h) in &by_shard[s] {
                    let at = (h, bi as u32, row);
                    match map.entry(bucket(h), |e| e.0 == h, |e| bucket(e.0)) {
                        hashbrown::hash_table::Entry::Occupied(mut o) => {
                            let (_, pb, pr) = std::mem::replace(o.get_mut(), at);
                            suspects.extend([(pb, pr), (bi as u32, row)]);
                        }
                        hashbrown::hash_table::Entry::Vacant(v) => {
                            v.insert(at);
                        }
                    }
                }
            }
            (map, suspects)
        })
        .collect();
    drop(candidates);
    let mut suspects: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
    for &(b, r) in shards.iter().flat_map(|(_, s)| s) {
        suspects.entry(b as usize).or_default().push(r);
    }
    for &key in stored_hits.iter().flat_map(|(_, keys)| keys) {
        let h = short(key);
        if let Some(&(_, b, r)) = shards[shard_of(h)].0.find(bucket(h), |e| e.0 == h) {
            suspects.entry(b as usize).or_default().push(r);
        }
    }
    for rows in suspects.values_mut() {
        rows.sort_unstable();
        rows.dedup();
    }
    suspects
}

/// The latest incoming row of each suspect key: (full key, batch, row).
type Latest = hashbrown::HashTable<(u128, u32, u32)>;

/// Within this ingest the latest export of a key wins. The suspects' full keys come from their
/// staged pieces, and files are taken in export order. Returns which incoming rows stay, and
/// the latest row of each suspect key.
fn dedup_within(
    kind: Kind,
    batches: &[Batch],
    suspects: &BTreeMap<usize, Vec<u32>>,
    counts: &mut HashMap<usize, MergeCounts>,
) -> Result<(Vec<Vec<bool>>, Latest)> {
    let mut order: Vec<usize> = (0..batches.len()).collect();
    order.sort_by(|&a, &b| (batches[a].mtime_us, &batches[a].name).cmp(&(batches[b].mtime_us, &batches[b].name)));
    let key_cols: Vec<&str> = kind.natural_key().to_vec();
    let full = read_back(batches, suspects, &key_cols, |df| frame_keys(kind, df))?;
    let mut latest: Latest = hashbrown::HashTable::with_capacity(suspects.values().map(Vec::len).sum());
    let mut keep: Vec<Vec<bool>> = batches.iter().map(|b| vec![true; b.keys.len()]).collect();
    own_repeats(kind, batches, suspects, &full, &mut keep, counts)?;
    for &bi in &order {
        let Some(rows) = suspects.get(&bi) else { continue };
        for (&row, &key) in rows.iter().zip(&full[&bi]) {
            if !keep[bi][row as usize] {
                continue;
            }
            let at = (key, bi as u32, row);
            match latest.entry(fold(key), |e| e.0 == key, |e| fold(e.0)) {
                hashbrown::hash_table::Entry::Occupied(mut o) => {
                    let (_, pb, pr) = std::mem::replace(o.get_mut(), at);
                    keep[pb as usize][pr as usize] = false;
                    counts.entry(batches[pb as usize].file).or_default().duplicates += 1;
                }
                hashbrown::hash_table::Entry::Vacant(v) => {
                    v.insert(at);
                }
            }
        }
    }
    Ok((keep, latest))
}

/// A file's own repeated keys. A smaller file's validator settles them row by row; a large
/// file read in blocks leaves them here, where every key that repeats anywhere in the ingest
/// is found with 8 bytes a row. They are settled as the validator would: the file's first row
/// of a key stays, the same values again are a duplicate, and other values are a conflict that
/// quarantines every row of the key. Only the rows of a repeated key are read back in full.
fn own_repeats(
    kind: Kind,
    batches: &[Batch],
    suspects: &BTreeMap<usize, Vec<u32>>,
    full: &HashMap<usize, Vec<u128>>,
    keep: &mut [Vec<bool>],
    counts: &mut HashMap<usize, MergeCounts>,
) -> Result<()> {
    let mut repeats: BTreeMap<usize, Vec<Vec<u32>>> = BTreeMap::new();
    for (&bi, rows) in suspects {
        let mut by_key: HashMap<u128, Vec<u32>> = HashMap::new();
        for (&r, &key) in rows.iter().zip(&full[&bi]) {
            by_key.entry(key).or_default().push(r);
        }
        let mut repeated: Vec<Vec<u32>> = by_key.into_values().filter(|rows| rows.len() > 1).collect();
        if repeated.is_empty() {
            continue;
        }
        // Validated rows are in file order: the first of a key is the smallest.
        repeated.iter_mut().for_each(|rows| rows.sort_unstable());
        repeated.sort_unstable();
        repeats.insert(bi, repeated);
    }
    let wanted: BTreeMap<usize, Vec<u32>> = repeats
        .iter()
        .map(|(&bi, repeated)| {
            let mut rows: Vec<u32> = repeated.iter().flatten().copied().collect();
            rows.sort_unstable();
            (bi, rows)
        })
        .collect();
    let back = rows_back(kind, batches, &wanted)?;
    for (bi, repeated) in repeats {
        let c = counts.entry(batches[bi].file).or_default();
        for rows in repeated {
            let first = &back[&(bi, rows[0])];
            let mut conflicted = false;
            for r in &rows[1..] {
                let row = &back[&(bi, *r)];
                if !conflicted && row.values == first.values {
                    keep[bi][*r as usize] = false;
                    c.duplicates += 1;
                    continue;
                }
                let texts: Vec<&str> = first.key.iter().map(String::as_str).collect();
                let (first_row, reasons) = conflict_rows(&texts, first.line, row.line, !conflicted);
                c.conflicts.extend(first_row.map(|f| (f, false)));
                c.conflicts.push((RejectedRow { line: row.line, cells: Vec::new(), reasons }, true));
                keep[bi][rows[0] as usize] = false;
                keep[bi][*r as usize] = false;
                conflicted = true;
            }
        }
    }
    Ok(())
}

/// A validated row read back from its staged piece.
struct RowBack {
    line: u64,
    key: Vec<String>,
    /// Every field's value as text.
    values: Vec<String>,
}

/// The validated rows `wanted` of each batch (sorted, no repeats), read back whole from the
/// pieces that hold them, on the worker threads; by (batch, row).
fn rows_back(
    kind: Kind,
    batches: &[Batch],
    wanted: &BTreeMap<usize, Vec<u32>>,
) -> Result<HashMap<(usize, u32), RowBack>> {
    let fields: Vec<String> = kind.fields().iter().map(|f| f.stored_name()).collect();
    let read = crate::workers::map(pieces_holding(batches, wanted)?, |(bi, piece, at, to)| -> Result<_> {
        let df = piece_rows(piece, None, &at)?;
        // A validated frame names a field by its field name, a stored one by its stored name.
        let column = |name: &str, stored: &str| df.column(stored).or_else(|_| df.column(name)).cloned();
        let cols: Vec<Column> =
            kind.fields().iter().zip(&fields).map(|(f, s)| column(f.name, s)).collect::<PolarsResult<_>>()?;
        let lines = df.column("source_line")?.i64()?.clone();
        let mut out = Vec::with_capacity(to.len());
        for (i, w) in to.into_iter().enumerate() {
            let values: Vec<String> =
                cols.iter().map(|c| c.get(i).map(|x| x.to_string())).collect::<PolarsResult<_>>()?;
            let key = kind
                .natural_key()
                .iter()
                .map(|k| Ok(df.column(k)?.str()?.get(i).unwrap_or("").to_string()))
                .collect::<Result<_>>()?;
            out.push(((bi, wanted[&bi][w]), RowBack { line: lines.get(i).unwrap_or(0) as u64, key, values }));
        }
        Ok(out)
    });
    let mut out = HashMap::new();
    for r in read {
        out.extend(r?);
    }
    Ok(out)
}

/// Against the stored rows that may match: the exact match among the suspects, then the
/// provenance columns of a stored file only when one of its keys comes in again, and the
/// matches settled in file order. Returns the stored rows to remove, by file.
fn dedup_against_stored(
    batches: &[Batch],
    stored: &[PathBuf],
    stored_hits: Vec<(Vec<u32>, Vec<u128>)>,
    latest: Latest,
    keep: &mut [Vec<bool>],
    counts: &mut HashMap<usize, MergeCounts>,
) -> Result<BTreeMap<PathBuf, Vec<usize>>> {
    let provenance = ["source_mtime", "source_file", "source_line"];
    let mut removals: BTreeMap<PathBuf, Vec<usize>> = BTreeMap::new();
    let found: Vec<Vec<Match>> = stored_hits
        .into_iter()
        .map(|(rows, keys)| {
            rows.into_iter()
                .zip(keys)
                .filter_map(|(i, key)| {
                    let &(_, bi, row) = latest.find(fold(key), |e| e.0 == key)?;
                    Some((i as usize, bi as usize, row as usize))
                })
                .collect()
        })
        .collect();
    drop(latest);
    let with_matches: Vec<(&PathBuf, Vec<Match>)> = stored.iter().zip(found).filter(|(_, f)| !f.is_empty()).collect();
    let mut with_lines: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
    for &(_, bi, row) in with_matches.iter().flat_map(|(_, found)| found) {
        with_lines.entry(bi).or_default().push(row as u32);
    }
    for rows in with_lines.values_mut() {
        rows.sort_unstable();
        rows.dedup();
    }
    let line_col = |df: &DataFrame| Ok(df.column("source_line")?.i64()?.iter().map(|l| l.unwrap_or(0)).collect());
    let lines = read_back(batches, &with_lines, &["source_line"], line_col)?;
    let line_of = |bi: usize, row: usize| {
        let place = with_lines[&bi].binary_search(&(row as u32)).expect("a matched row's line was read back");
        lines[&bi][place]
    };
    let matches: Vec<Vec<(usize, usize, usize, bool)>> =
        crate::workers::map(with_matches.iter().collect(), |(file, found)| {
            let df = warehouse::read_parquet_columns_serial(file, &provenance)?;
            let mtime = df.column("source_mtime")?.cast(&DataType::Int64)?;
            let mtime = mtime.i64()?;
            let name = df.column("source_file")?.str()?;
            let line = df.column("source_line")?.i64()?;
            let mut out = Vec::new();
            for &(i, bi, row) in found {
                let b = &batches[bi];
                let stored = (mtime.get(i).unwrap_or(0), name.get(i).unwrap_or(""), line.get(i).unwrap_or(0));
                let incoming = (b.mtime_us, b.name.as_str(), line_of(bi, row));
                out.push((i, bi, row, stored > incoming));
            }
            Ok(out)
        })
        .into_iter()
        .collect::<Result<_>>()?;
    for ((file, _), found) in with_matches.iter().zip(matches) {
        for (i, bi, row, stored_later) in found {
            if !keep[bi][row] {
                continue;
            }
            let b = &batches[bi];
            if stored_later {
                // The warehouse holds a later export of this key.
                keep[bi][row] = false;
                counts.entry(b.file).or_default().duplicates += 1;
            } else {
                removals.entry((*file).clone()).or_default().push(i);
                counts.entry(b.file).or_default().superseded += 1;
            }
        }
    }
    Ok(removals)
}

/// The incoming rows that stay, by partition, with every partition that loses stored rows.
fn split_by_partition(
    kind: Kind,
    batches: Vec<Batch>,
    keep: &[Vec<bool>],
    removals: &BTreeMap<PathBuf, Vec<usize>>,
    base: &Snapshot,
    counts: &mut HashMap<usize, MergeCounts>,
) -> Result<BTreeMap<String, Vec<Incoming>>> {
    let mut touched: BTreeMap<String, Vec<Incoming>> = BTreeMap::new();
    for (bi, b) in batches.into_iter().enumerate() {
        let keep = &keep[bi];
        // A piece's rows are read back only when some of the file's rows go.
        let all = keep.iter().all(|&k| k);
        for piece in b.staged.pieces {
            let mask: Vec<bool> = match &piece.rows {
                None => keep.clone(),
                Some(rows) if all => vec![true; rows.len()],
                Some(rows) => rows.load()?.iter().map(|&r| keep[r as usize]).collect(),
            };
            let n = mask.iter().filter(|k| **k).count();
            counts.entry(b.file).or_default().loaded += n as u64;
            if n == 0 {
                if let PieceData::Spilled(path) = &piece.data {
                    let _ = std::fs::remove_file(path);
                }
                continue;
            }
            let keep = (n < mask.len()).then(|| mask.into_iter().collect::<BooleanChunked>());
            let incoming = Incoming { data: piece.data, keep, name: b.name.clone(), mtime_us: b.mtime_us };
            touched.entry(piece.partition).or_default().push(incoming);
        }
    }
    for f in removals.keys() {
        touched.entry(base.partition_of(kind.table(), f)).or_default();
    }
    Ok(touched)
}

/// Rewrite every partition that gains rows or loses superseded ones, several at once.
///
/// A partition is never held whole: every source of its rows (stored files, staged pieces)
/// is in natural-key order already, so only their keys are read to find the merged order, and
/// the rows are then read, put in order and written a row group at a time. Two months of a
/// province (3 M rows each) merged at once held 0.7 GB each in full.
fn rewrite_partitions(
    kind: Kind,
    touched: BTreeMap<String, Vec<Incoming>>,
    removals: &BTreeMap<PathBuf, Vec<usize>>,
    ingest_id: &str,
    scratch: &Path,
    base: &Snapshot,
    txn: &mut Txn,
) -> Result<()> {
    let table = kind.table();
    let written = AtomicUsize::new(0);
    txn.replace_partitions(table, touched.into_iter().collect(), |part, mut incoming| {
        let stored = base.partition_files(table, part)?;
        // A new partition whose rows all come from one piece on disk: that file is already
        // what would be written.
        if stored.is_empty()
            && let [only] = incoming.as_slice()
            && only.keep.is_none()
            && let PieceData::Spilled(path) = &only.data
        {
            let path = path.clone();
            incoming.clear();
            return Ok(Built::File(path));
        }
        let mut runs: Vec<Run> = stored
            .into_iter()
            .map(|f| {
                let keep = removals.get(&f).map(|rows| {
                    let drop: std::collections::HashSet<usize> = rows.iter().copied().collect();
                    let n = parquet_height(&f)?;
                    Ok::<_, anyhow::Error>((0..n).map(|i| !drop.contains(&i)).collect::<BooleanChunked>())
                });
                Ok(Run { rows: RunRows::File(f), keep: keep.transpose()? })
            })
            .collect::<Result<_>>()?;
        runs.extend(incoming.into_iter().map(Run::incoming));
        let order = merged_order(kind, &runs)?;
        if order.is_empty() {
            return Ok(Built::Frame(DataFrame::empty()));
        }
        let path = scratch.join(format!("merged-{}-{}.parquet", table.name(), written.fetch_add(1, Ordering::SeqCst)));
        write_in_order(kind, &runs, &order, ingest_id, &path, warehouse::ROW_GROUP)
            .with_context(|| format!("combining rows of {table}/{part}"))?;
        for run in runs {
            run.discard();
        }
        Ok(Built::File(path))
    })?;
    Ok(())
}

/// One source of a partition's rows, in natural-key order.
struct Run {
    rows: RunRows,
    /// Which rows stay; `None` when all of them do.
    keep: Option<BooleanChunked>,
}

enum RunRows {
    /// A stored partition file.
    File(PathBuf),
    /// A staged piece on disk, already in stored form; deleted once merged.
    Spilled(PathBuf),
    /// A staged piece in memory, with the provenance it is stored with.
    Memory { df: DataFrame, name: String, mtime_us: i64 },
}

impl Run {
    fn incoming(inc: Incoming) -> Run {
        let rows = match inc.data {
            PieceData::Spilled(path) => RunRows::Spilled(path),
            PieceData::Memory(df) => RunRows::Memory { df, name: inc.name, mtime_us: inc.mtime_us },
        };
        Run { rows, keep: inc.keep }
    }

    /// The natural-key columns of every row.
    fn keys(&self, kind: Kind) -> Result<DataFrame> {
        let key = kind.natural_key();
        match &self.rows {
            RunRows::File(path) | RunRows::Spilled(path) => warehouse::read_parquet_columns_serial(path, key),
            RunRows::Memory { df, .. } => Ok(df.select(key.iter().copied())?),
        }
    }

    /// `len` rows from row `offset`, in stored form.
    fn rows(&self, kind: Kind, offset: usize, len: usize, ingest_id: &str) -> Result<DataFrame> {
        match &self.rows {
            RunRows::File(path) | RunRows::Spilled(path) => {
                let df = warehouse::read_parquet_rows_serial(path, offset, len)?;
                Ok(df.select(kind.stored_columns())?)
            }
            RunRows::Memory { df, name, mtime_us } => {
                stored_form(kind, df.slice(offset as i64, len), name, *mtime_us, ingest_id)
            }
        }
    }

    /// Give a staged piece's disk space back once it is merged.
    fn discard(self) {
        if let RunRows::Spilled(path) = self.rows {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn parquet_height(path: &Path) -> Result<usize> {
    let file = std::fs::File::open(path).map_err(|e| anyhow::anyhow!("opening {}: {e}", path.display()))?;
    Ok(ParquetReader::new(file).num_rows()?)
}

/// The rows that stay, as (run, row in the run), in natural-key order: from the keys alone.
/// Runs are nearly always in key order already (stored files, staged pieces): a few are then
/// merged, not sorted again; otherwise (many runs, or a file an older version stored out of
/// order) all keys are sorted together. Either way equal keys keep run order, then row order.
fn merged_order(kind: Kind, runs: &[Run]) -> Result<Vec<(u32, IdxSize)>> {
    let keys = runs.iter().map(|run| numbered(run.keys(kind)?, run.keep.as_ref())).collect::<Result<_>>()?;
    order_of_keys(kind, keys)
}

/// A run's key columns with each row's number in the run (`__row`), less the rows `keep`
/// drops.
pub(super) fn numbered(mut keys: DataFrame, keep: Option<&BooleanChunked>) -> Result<DataFrame> {
    let n = keys.height();
    keys.with_column(Column::new("__row".into(), (0..n as IdxSize).collect::<Vec<_>>()))?;
    Ok(match keep {
        Some(mask) => keys.filter_seq(mask)?,
        None => keys,
    })
}

/// The rows of runs, from their [`numbered`] keys, as (run, row in the run) in key order:
/// merged when they are few and each in order, else sorted together.
pub(super) fn order_of_keys(kind: Kind, keys: Vec<DataFrame>) -> Result<Vec<(u32, IdxSize)>> {
    let parts: Vec<(u32, DataFrame)> = keys.into_iter().enumerate().map(|(r, k)| (r as u32, k)).collect();
    if parts.len() <= MERGE_WAYS && parts.iter().all(|(_, k)| in_key_order(kind, k).unwrap_or(false)) {
        return merge_sorted(kind, &parts);
    }
    sort_all(kind, parts)
}

/// Runs' keys (with `__row`) stacked and sorted together.
fn sort_all(kind: Kind, parts: Vec<(u32, DataFrame)>) -> Result<Vec<(u32, IdxSize)>> {
    let mut all: Option<DataFrame> = None;
    for (r, mut keys) in parts {
        let n = keys.height();
        keys.with_column(Column::new("__run".into(), vec![r; n]))?;
        match &mut all {
            None => all = Some(keys),
            Some(all) => {
                all.vstack_mut_owned(keys)?;
            }
        }
    }
    let Some(all) = all else { return Ok(Vec::new()) };
    let order = key_order(kind, &all)?;
    let run = all.column("__run")?.u32()?.rechunk();
    let row = all.column("__row")?.idx()?.rechunk();
    let (run, row) = (run.downcast_as_array(), row.downcast_as_array());
    Ok(order.iter().map(|&i| (run.value(i as usize), row.value(i as usize))).collect())
}

/// The most runs merged by looking at each one's next row (past it, a sort is cheaper).
const MERGE_WAYS: usize = 8;

/// Runs' keys, each in key order, merged: at each step the least next key, the earliest run
/// among equals.
fn merge_sorted(kind: Kind, parts: &[(u32, DataFrame)]) -> Result<Vec<(u32, IdxSize)>> {
    let cols: Vec<Vec<StringChunked>> = parts.iter().map(|(_, k)| key_columns(kind, k)).collect::<Result<_>>()?;
    let arrays: Vec<Vec<_>> = cols.iter().map(|c| c.iter().map(|c| c.downcast_as_array()).collect()).collect();
    let rows: Vec<IdxCa> =
        parts.iter().map(|(_, k)| Ok(k.column("__row")?.idx()?.rechunk().into_owned())).collect::<Result<_>>()?;
    let rows: Vec<_> = rows.iter().map(|r| r.downcast_as_array()).collect();
    let heights: Vec<usize> = parts.iter().map(|(_, k)| k.height()).collect();
    let key = |p: usize, i: usize| arrays[p].iter().map(move |a| a.get(i));
    let mut next = vec![0usize; parts.len()];
    let mut out = Vec::with_capacity(heights.iter().sum());
    loop {
        let mut best: Option<usize> = None;
        for p in (0..parts.len()).filter(|&p| next[p] < heights[p]) {
            best = match best {
                Some(b) if key(b, next[b]).cmp(key(p, next[p])).is_le() => Some(b),
                _ => Some(p),
            };
        }
        let Some(b) = best else { break };
        out.push((parts[b].0, rows[b].value(next[b])));
        next[b] += 1;
    }
    Ok(out)
}

/// Write the rows of `order` to `path`, a part of about `part_rows` rows at a time (a row
/// group): for each part, every run's span of rows in it is read (a run in key order gives a
/// span of exactly its rows in that part; a file stored out of order, by an older version,
/// only a longer one), the spans are stacked and put in order.
fn write_in_order(
    kind: Kind,
    runs: &[Run],
    order: &[(u32, IdxSize)],
    ingest_id: &str,
    path: &Path,
    part_rows: usize,
) -> Result<()> {
    let mut out: Option<warehouse::PartsWriter> = None;
    let n = order.len();
    let parts = (n / part_rows).max(1);
    for i in 0..parts {
        let part = &order[i * n / parts..(i + 1) * n / parts];
        let mut span: Vec<Option<(IdxSize, IdxSize)>> = vec![None; runs.len()];
        for &(r, row) in part {
            let s = &mut span[r as usize];
            *s = Some(s.map_or((row, row), |(lo, hi)| (lo.min(row), hi.max(row))));
        }
        // Where each run's span starts in the stacked rows.
        let mut start = vec![0 as IdxSize; runs.len()];
        let mut stacked: Option<DataFrame> = None;
        let mut height = 0 as IdxSize;
        for (r, s) in span.iter().enumerate() {
            let Some((lo, hi)) = *s else { continue };
            let rows = runs[r].rows(kind, lo as usize, (hi - lo + 1) as usize, ingest_id)?;
            start[r] = height;
            height += rows.height() as IdxSize;
            match &mut stacked {
                None => stacked = Some(rows),
                Some(all) => {
                    all.vstack_mut_owned(rows)?;
                }
            }
        }
        let stacked = stacked.expect("a part has rows");
        let at: Vec<IdxSize> =
            part.iter().map(|&(r, row)| start[r as usize] + row - span[r as usize].map_or(0, |s| s.0)).collect();
        let rows = take_owned(stacked, &at)?;
        let out = match &mut out {
            Some(out) => out,
            None => out.insert(warehouse::PartsWriter::create(path, rows.schema())?),
        };
        // Serial: this is already one task of a parallel loop (see `warehouse::parquet_io`).
        out.write(&rows, false)?;
    }
    out.expect("at least one part").finish(false)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::keyspill::KeyFile;
    use crate::model::Table;

    /// The orders by ranks and by runs are the order of whole keys, ties by row: on keys in
    /// runs and shuffled, with repeats, long texts, texts that are prefixes of others, and
    /// texts past the fast forms' limits (they must then decline).
    #[test]
    fn the_fast_orders_are_the_order_of_whole_keys() {
        let mut rng = crate::rng::Rng::new(11);
        let mut next = |n: u64| rng.below(n);
        let events =
            ["E1", "E10", "E2", "EB00001-202511-01-long-event-id-0001", "EB00001-202511-01-long-event-id-0002", ""];
        let members = ["M1", "M10", "M2", "M1\0", "M0000001", "M00000012", ""];
        for shuffled in [false, true] {
            for long_members in [false, true] {
                let n = 3000;
                let mut rows: Vec<(String, String)> = Vec::new();
                while rows.len() < n {
                    let e = events[next(events.len() as u64) as usize];
                    for _ in 0..1 + next(40) {
                        let pool = if long_members { members.len() } else { members.len() - 2 };
                        let m = members[next(pool as u64) as usize];
                        rows.push((e.to_string(), m.to_string()));
                    }
                }
                if shuffled {
                    for i in (1..rows.len()).rev() {
                        rows.swap(i, next(i as u64 + 1) as usize);
                    }
                }
                let e = StringChunked::from_iter_values("e".into(), rows.iter().map(|r| r.0.as_str()));
                let m = StringChunked::from_iter_values("m".into(), rows.iter().map(|r| r.1.as_str()));
                let arrays = [e.downcast_as_array(), m.downcast_as_array()];
                let mut want: Vec<IdxSize> = (0..rows.len() as IdxSize).collect();
                want.sort_by(|&a, &b| rows[a as usize].cmp(&rows[b as usize]).then(a.cmp(&b)));
                assert_eq!(order_by_prefixes(&arrays, rows.len()), want);
                let ranks = order_by_ranks(&arrays, rows.len());
                assert_eq!(ranks.is_none(), long_members, "ranks decline texts past eight bytes only");
                if let Some(order) = ranks {
                    assert_eq!(order, want, "ranks, shuffled {shuffled}");
                }
                match order_by_runs(&arrays, rows.len()) {
                    Some(order) => assert_eq!(order, want, "runs, shuffled {shuffled}"),
                    None => assert!(shuffled, "rows in runs are ordered by runs"),
                }
            }
        }
    }

    /// Attendance rows out of key order over two months, as a validated frame: two in
    /// 2024-10 (day 20,000), one in 2024-11.
    fn frame() -> DataFrame {
        let (oct, nov) = (20_000, 20_040);
        validated(&[
            ("E2", "M1", oct, "present"),
            ("E1", "M2", oct, "present"),
            ("E3", "M1", nov, "present"),
            ("E1", "M1", oct, "present"),
            ("E2", "M0", oct, "present"),
        ])
    }

    fn keys(df: &DataFrame) -> Vec<(String, String)> {
        let (e, m) = (df.column("event_id").unwrap().str().unwrap(), df.column("member_id").unwrap().str().unwrap());
        e.iter().zip(m.iter()).map(|(a, b)| (a.unwrap().to_string(), b.unwrap().to_string())).collect()
    }

    /// An attendance row: event, member, day, status.
    type Row<'a> = (&'a str, &'a str, i32, &'a str);

    /// Attendance rows as a validated frame, lines from 2.
    fn validated(rows: &[Row]) -> DataFrame {
        let n = rows.len();
        let text = |name: &str, v: Vec<&str>| Column::new(name.into(), v);
        let cols = vec![
            text("event_id", rows.iter().map(|r| r.0).collect()),
            text("unit_id", vec!["B1"; n]),
            text("event_type", vec!["activity_day"; n]),
            Column::new("event_date".into(), rows.iter().map(|r| r.2).collect::<Vec<_>>())
                .cast(&DataType::Date)
                .unwrap(),
            text("member_id", rows.iter().map(|r| r.1).collect()),
            text("status", rows.iter().map(|r| r.3).collect()),
            Column::full_null("member_name_hash".into(), n, &DataType::String),
            Column::new("source_line".into(), (2..n as i64 + 2).collect::<Vec<_>>()),
        ];
        DataFrame::new(n, cols).unwrap()
    }

    /// Merge files of (name, mtime, rows) into the warehouse at `root` with the short hash
    /// `short`; the per-file figures (loaded, duplicates, superseded) in file order.
    fn merge_files(
        root: &Path,
        files: &[(&str, i64, Vec<Row>)],
        short: fn(u128) -> u64,
        budget: usize,
    ) -> Vec<(u64, u64, u64)> {
        let wh = crate::warehouse::Warehouse::open_or_create(root).unwrap();
        let lock = wh.lock("test").unwrap();
        let base = wh.snapshot().unwrap();
        let spill = Spill::new(root, "test", budget).unwrap();
        let batches = files
            .iter()
            .enumerate()
            .map(|(file, (name, mtime_us, rows))| {
                let frame = validated(rows);
                let keys: Vec<u64> = frame_keys(Kind::Attendance, &frame).unwrap().into_iter().map(short).collect();
                // Every other file's keys on disk, as a file read in blocks leaves them.
                let keys = if file % 2 == 1 {
                    let mut on_disk = KeyFile::new(&root.join(format!("{file}.keys")));
                    on_disk.push(&keys).unwrap();
                    on_disk.finish()
                } else {
                    Keys::Memory(keys)
                };
                let source = Source { name, mtime_us: *mtime_us };
                let staged = spill.stage(Kind::Attendance, file, source, frame, false).unwrap();
                Batch { file, mtime_us: *mtime_us, name: name.to_string(), keys, staged }
            })
            .collect();
        let mut txn = wh.begin(&lock).unwrap();
        let counts = merge_kind_with(Kind::Attendance, batches, "test", spill.dir(), &base, &mut txn, short).unwrap();
        txn.commit().unwrap();
        (0..files.len()).map(|f| counts.get(&f).map_or((0, 0, 0), |c| (c.loaded, c.duplicates, c.superseded))).collect()
    }

    /// Every stored attendance row as (event, member, status, file, line), in file order.
    fn stored_rows(root: &Path) -> Vec<(String, String, String, String, i64)> {
        let snap = crate::warehouse::Warehouse::open(root).unwrap().snapshot().unwrap();
        let mut out = Vec::new();
        for f in snap.files(Table::Attendance).unwrap() {
            let df = warehouse::read_parquet(&f).unwrap();
            let s = |c: &str| df.column(c).unwrap().str().unwrap().clone();
            let (e, m, st, file) = (s("event_id"), s("member_id"), s("status"), s("source_file"));
            let line = df.column("source_line").unwrap().i64().unwrap().clone();
            for i in 0..df.height() {
                let t = |c: &StringChunked| c.get(i).unwrap().to_string();
                out.push((t(&e), t(&m), t(&st), t(&file), line.get(i).unwrap()));
            }
        }
        out
    }

    /// The merge keeps 8 bytes of a key per row, so two keys may share a short hash. With short
    /// hashes cut to four values, every key shares one with many others: the full keys must
    /// still decide, and the warehouse and the figures must be what the real hash gives.
    #[test]
    fn keys_that_share_a_short_hash_are_told_apart_by_their_full_keys() {
        let (oct, nov) = (20_000, 20_040);
        let first = vec![
            (
                "a.csv",
                10,
                vec![("E1", "M1", oct, "present"), ("E1", "M2", oct, "present"), ("E2", "M1", nov, "present")],
            ),
            ("b.csv", 20, vec![("E3", "M1", oct, "present"), ("E1", "M2", oct, "leave")]),
        ];
        let second = vec![
            // An earlier export than the stored one for E1/M2, a later one for E2/M1.
            ("c.csv", 15, vec![("E1", "M2", oct, "absent"), ("E2", "M1", nov, "leave"), ("E4", "M9", nov, "present")]),
            // A later export of E4/M9 and E3/M1, an earlier one of E1/M1.
            ("d.csv", 30, vec![("E4", "M9", nov, "absent"), ("E3", "M1", oct, "absent"), ("E1", "M1", oct, "late")]),
            ("e.csv", 5, vec![("E1", "M1", oct, "leave"), ("E5", "M5", oct, "present")]),
        ];
        let collide: fn(u128) -> u64 = |k| short(k) & (3 << 62);
        let mut results = Vec::new();
        for (hash, budget) in [(short as fn(u128) -> u64, usize::MAX), (collide, usize::MAX), (collide, 0)] {
            let t = tempfile::tempdir().unwrap();
            let figures = (merge_files(t.path(), &first, hash, budget), merge_files(t.path(), &second, hash, budget));
            results.push((figures, stored_rows(t.path())));
        }
        let ((one, two), rows) = &results[0];
        // b.csv's E1/M2 replaces a.csv's; then c.csv's is older than it, d.csv's E1/M1 is
        // newer than a.csv's, and e.csv's is older than both.
        assert_eq!(one, &vec![(2, 1, 0), (2, 0, 0)]);
        assert_eq!(two, &vec![(1, 2, 1), (3, 0, 2), (1, 1, 0)]);
        let status: Vec<(&str, &str, &str)> = rows.iter().map(|r| (r.0.as_str(), r.1.as_str(), r.2.as_str())).collect();
        let mut sorted = status.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            vec![
                ("E1", "M1", "late"),
                ("E1", "M2", "leave"),
                ("E2", "M1", "leave"),
                ("E3", "M1", "absent"),
                ("E4", "M9", "absent"),
                ("E5", "M5", "present")
            ]
        );
        for other in &results[1..] {
            assert_eq!(other, &results[0]);
        }
    }

    #[test]
    fn a_file_large_for_the_budget_waits_on_disk_even_when_it_would_fit() {
        let t = tempfile::tempdir().unwrap();
        let size = frame().estimated_size();
        for (budget, on_disk) in [(size * LARGE_SHARE / 2, true), (size * LARGE_SHARE * 2, false)] {
            let spill = Spill::new(t.path(), "test", budget).unwrap();
            let source = Source { name: "a.csv", mtime_us: 1 };
            let staged = spill.stage(Kind::Attendance, 0, source, frame(), false).unwrap();
            for piece in &staged.pieces {
                assert_eq!(matches!(piece.data, PieceData::Spilled(_)), on_disk, "budget {budget}");
            }
        }
    }

    #[test]
    fn rows_already_in_key_order_are_not_reordered() {
        let mut df = frame();
        assert!(!in_key_order(Kind::Attendance, &df).unwrap());
        df = df.sort(["event_id", "member_id"], SortMultipleOptions::default()).unwrap();
        assert!(in_key_order(Kind::Attendance, &df).unwrap());
        let (sorted, order) = sort_by_key(Kind::Attendance, df.clone(), false).unwrap();
        assert!(order.is_none());
        assert!(sorted.equals_missing(&df));
        // Equal first parts are ordered by the next one.
        let swapped = df.take(&IdxCa::from_vec("".into(), vec![1, 0, 2, 3, 4])).unwrap();
        assert!(!in_key_order(Kind::Attendance, &swapped).unwrap());
    }

    /// A partition merged part by part from runs of every kind (in memory, staged on disk, a
    /// stored file out of key order with rows removed) holds every kept row once, in key order.
    #[test]
    fn a_partition_merged_part_by_part_holds_every_kept_row_in_key_order() {
        let t = tempfile::tempdir().unwrap();
        let day = 20_000;
        let row = |e: usize, m: usize| (format!("E{e:02}"), format!("M{m:02}"));
        let rows_of = |keys: &[(String, String)]| -> DataFrame {
            let r: Vec<Row> = keys.iter().map(|(e, m)| (e.as_str(), m.as_str(), day, "present")).collect();
            validated(&r)
        };
        let memory: Vec<_> = (0..20).map(|i| row(i, 1)).collect();
        let spilled: Vec<_> = (0..20).map(|i| row(i, 2)).collect();
        let stored: Vec<_> = (0..20).rev().map(|i| row(i, 3)).collect();
        let spilled_path = t.path().join("piece.parquet");
        let mut df = stored_form(Kind::Attendance, rows_of(&spilled), "b.csv", 2, "old").unwrap();
        warehouse::write_parquet(&mut df, &spilled_path).unwrap();
        let stored_path = t.path().join("stored.parquet");
        let mut df = stored_form(Kind::Attendance, rows_of(&stored), "c.csv", 3, "old").unwrap();
        warehouse::write_parquet(&mut df, &stored_path).unwrap();
        let removed: Vec<bool> = (0..20).map(|i| i % 3 != 0).collect();
        let runs = vec![
            Run { rows: RunRows::Memory { df: rows_of(&memory), name: "a.csv".into(), mtime_us: 1 }, keep: None },
            Run { rows: RunRows::Spilled(spilled_path), keep: None },
            Run { rows: RunRows::File(stored_path), keep: Some(removed.iter().copied().collect()) },
        ];
        let mut want: Vec<(String, String)> = memory.iter().chain(&spilled).cloned().collect();
        want.extend(stored.iter().zip(&removed).filter(|(_, k)| **k).map(|(r, _)| r.clone()));
        want.sort();
        for part_rows in [7, 1000] {
            let out = t.path().join(format!("out-{part_rows}.parquet"));
            let order = merged_order(Kind::Attendance, &runs).unwrap();
            write_in_order(Kind::Attendance, &runs, &order, "new", &out, part_rows).unwrap();
            let df = warehouse::read_parquet(&out).unwrap();
            assert_eq!(keys(&df), want, "{part_rows} rows a part");
            let names: Vec<String> = df.get_column_names().iter().map(|c| c.to_string()).collect();
            assert_eq!(names, Kind::Attendance.stored_columns());
            // Each row keeps its own provenance: memory rows get this ingest's.
            let file = df.column("source_file").unwrap().str().unwrap().clone();
            let ingest = df.column("ingest_id").unwrap().str().unwrap().clone();
            for (i, (_, m)) in want.iter().enumerate() {
                let (f, id) = match m.as_str() {
                    "M01" => ("a.csv", "new"),
                    "M02" => ("b.csv", "old"),
                    _ => ("c.csv", "old"),
                };
                assert_eq!((file.get(i), ingest.get(i)), (Some(f), Some(id)), "row {i}");
            }
        }
    }

    /// Key order is the order of the texts, event first, whatever their lengths: an event id
    /// longer than the sort's prefix (17 characters here) once let the member decide first.
    #[test]
    fn key_order_is_the_order_of_the_key_texts() {
        let events = [
            "EB00001-202511-01",
            "EB00001-202511-02",
            "EB00001-202511-1",
            "EB1",
            "E",
            "EB00001-202511-0",
            // Past the 32-byte prefix, and equal up to it.
            "EB00001-202511-01-SUPPLEMENTARY-2",
            "EB00001-202511-01-SUPPLEMENTARY-10",
        ];
        let members = ["M000002", "M000001", "M0000010", "M00000011", "M1"];
        let mut rows = Vec::new();
        let mut state = 7u64;
        for _ in 0..200 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let (e, m) =
                (events[(state >> 33) as usize % events.len()], members[(state >> 13) as usize % members.len()]);
            rows.push((e, m, 20_000, "present"));
        }
        let df = validated(&rows);
        let order = key_order(Kind::Attendance, &df).unwrap();
        let got = keys(&df.take(&IdxCa::from_vec("".into(), order)).unwrap());
        let mut want = keys(&df);
        want.sort();
        assert_eq!(got, want);
    }

    /// Runs in key order merged give what sorting them all together gives, equal keys in run
    /// order.
    #[test]
    fn merging_sorted_runs_is_sorting_them_together() {
        let mut state = 11u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as usize
        };
        let parts: Vec<(u32, DataFrame)> = (0..3u32)
            .map(|r| {
                let mut keys: Vec<(String, String)> =
                    (0..50).map(|_| (format!("E{}", next() % 9), format!("M{}", next() % 4))).collect();
                keys.sort();
                let df = df!(
                    "event_id" => keys.iter().map(|k| k.0.clone()).collect::<Vec<_>>(),
                    "member_id" => keys.iter().map(|k| k.1.clone()).collect::<Vec<_>>(),
                    "__row" => (0..keys.len() as IdxSize).collect::<Vec<_>>(),
                )
                .unwrap();
                (r, df)
            })
            .collect();
        let merged = merge_sorted(Kind::Attendance, &parts).unwrap();
        assert_eq!(merged.len(), 150);
        assert_eq!(merged, sort_all(Kind::Attendance, parts).unwrap());
    }

    /// [`frame`] staged as file "a.csv", in memory or on disk (`budget` 0), with its spill:
    /// dropping it removes the pieces on disk.
    fn staged_frame(root: &Path, budget: usize) -> (Spill, Staged) {
        let spill = Spill::new(root, "test", budget).unwrap();
        let source = Source { name: "a.csv", mtime_us: 1 };
        let staged = spill.stage(Kind::Attendance, 0, source, frame(), false).unwrap();
        (spill, staged)
    }

    #[test]
    fn staged_pieces_are_in_key_order_and_name_their_validated_rows() {
        let original = keys(&frame());
        let t = tempfile::tempdir().unwrap();
        for budget in [usize::MAX, 0] {
            let (_spill, staged) = staged_frame(t.path(), budget);
            let parts: Vec<&str> = staged.pieces.iter().map(|p| p.partition.as_str()).collect();
            assert_eq!(parts.len(), 2, "{parts:?}");
            for piece in staged.pieces {
                let rows = piece.rows.as_ref().expect("rows were reordered").load().unwrap().into_owned();
                let on_disk = matches!(piece.data, PieceData::Spilled(_));
                assert_eq!(on_disk, budget == 0);
                let df = match piece.data {
                    PieceData::Memory(df) => df,
                    PieceData::Spilled(path) => warehouse::read_parquet(&path).unwrap(),
                };
                let got = keys(&df);
                let mut sorted = got.clone();
                sorted.sort();
                assert_eq!(got, sorted, "budget {budget}");
                let behind: Vec<_> = rows.iter().map(|&r| original[r as usize].clone()).collect();
                assert_eq!(got, behind, "budget {budget}");
                if on_disk {
                    // Stored form: the provenance columns are there, in the table's order.
                    let names: Vec<String> = df.get_column_names().iter().map(|c| c.to_string()).collect();
                    assert_eq!(names, Kind::Attendance.stored_columns());
                    assert_eq!(df.column("source_file").unwrap().str().unwrap().get(0), Some("a.csv"));
                }
            }
        }
    }

    #[test]
    fn rows_read_back_are_the_wanted_validated_rows_in_the_order_asked() {
        let original = keys(&frame());
        let t = tempfile::tempdir().unwrap();
        for budget in [usize::MAX, 0] {
            let (_spill, staged) = staged_frame(t.path(), budget);
            assert!(staged.pieces.len() > 1 && staged.pieces.iter().all(|p| p.rows.is_some()));
            let hashes = Keys::Memory(vec![0; original.len()]);
            let batch = Batch { file: 0, mtime_us: 1, name: "a.csv".into(), keys: hashes, staged };
            // Rows of both months (0 and 4 in October, 2 in November), not in a piece's order.
            let rows: Vec<u32> = vec![0, 2, 4];
            let wanted = BTreeMap::from([(0, rows.clone())]);
            let texts = |df: &DataFrame| -> Result<Vec<usize>> {
                let got = keys(df);
                Ok(got.iter().map(|k| original.iter().position(|o| o == k).unwrap()).collect())
            };
            let back = read_back(std::slice::from_ref(&batch), &wanted, &["event_id", "member_id"], texts).unwrap();
            let expected: Vec<usize> = rows.iter().map(|&r| r as usize).collect();
            assert_eq!(back[&0], expected, "budget {budget}");
            let whole = rows_back(Kind::Attendance, std::slice::from_ref(&batch), &wanted).unwrap();
            assert_eq!(whole.len(), rows.len());
            for &r in &rows {
                let key: Vec<String> = whole[&(0, r)].key.clone();
                assert_eq!((key[0].clone(), key[1].clone()), original[r as usize], "budget {budget}");
            }
        }
    }
}
