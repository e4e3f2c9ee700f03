//! Parquet files as other engines expect them: zstd, statistics, flat columns, DATE for dates,
//! microsecond timestamps, and a footer naming the writer. Every file is synced before it is
//! part of a snapshot. The column encodings are chosen here (see [`write_row_groups`]): text
//! dictionaries of our own where values repeat, plain text where they mostly do not, deltas for
//! source lines; polars' writer lays out the file.
//!
//! Each function comes in two forms. The plain one spreads the work over threads (a row
//! group's columns at once when writing, polars' threads when reading); the `_serial` one keeps
//! it on the calling thread, for callers that already run one task per core
//! (`crate::workers`), where more threads would only compete with them.

use std::fs::File;
use std::hash::BuildHasher;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};

use super::io_error;
use crate::packed::pack;
use polars::io::parquet::write::BatchedWriter;
use polars::prelude::*;
use polars_arrow::array::{Array, DictionaryArray, PrimitiveArray, Utf8ViewArray, View};
use polars_arrow::datatypes::{ArrowDataType, IntegerType};
use polars_parquet::write::{
    CompressedPage, CompressionOptions, Encoding, ParquetType, Version, WriteOptions, array_to_columns, compress,
};
use rayon::prelude::*;

/// Write `df` to `path` (creating parent folders) and sync it to disk.
pub fn write_parquet(df: &mut DataFrame, path: &Path) -> Result<u64> {
    write(df, path, true, true)
}

/// [`write_parquet`] on the calling thread only.
pub fn write_parquet_serial(df: &mut DataFrame, path: &Path) -> Result<u64> {
    write(df, path, false, true)
}

/// [`write_parquet_serial`] without the sync: for a file that may be read back and deleted
/// (an ingest's staged rows), synced only if it is kept.
pub fn write_parquet_unsynced(df: &mut DataFrame, path: &Path) -> Result<u64> {
    write(df, path, false, false)
}

fn write(df: &mut DataFrame, path: &Path, parallel: bool, sync: bool) -> Result<u64> {
    let mut out = PartsWriter::create(path, df.schema())?;
    out.write(df, parallel)?;
    out.finish(sync)
}

/// A Parquet file written a few row groups at a time, for a caller that never holds all of
/// its rows at once (an ingest's merge of a large partition, `ingest::merge`). The file is
/// laid out as [`write_parquet`] lays it out when each part is one row group's worth.
pub struct PartsWriter {
    path: std::path::PathBuf,
    file: File,
    error: Arc<Mutex<Option<std::io::Error>>>,
    batched: BatchedWriter<Remembering>,
    fields: Vec<ParquetType>,
}

impl PartsWriter {
    /// Create `path` (and its parent folders) for rows of `schema`.
    pub fn create(path: &Path, schema: &Schema) -> Result<PartsWriter> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let file = File::create(path).map_err(|e| io_error("creating", path, e))?;
        let error = Arc::new(Mutex::new(None));
        let out = Remembering {
            file: file.try_clone().map_err(|e| io_error("opening", path, e))?,
            error: Arc::clone(&error),
        };
        let meta = KeyValueMetadata::from_static(vec![(
            "created_by_dangjian".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        )]);
        let mut batched = ParquetWriter::new(out)
            .with_compression(ParquetCompression::Zstd(None))
            .with_statistics(StatisticsOptions::default())
            .with_key_value_metadata(Some(meta))
            .batched(schema)
            .map_err(|e| anyhow::anyhow!(e).context(format!("writing {}", path.display())))?;
        let fields = batched.parquet_schema().fields().to_vec();
        Ok(PartsWriter { path: path.to_path_buf(), file, error, batched, fields })
    }

    /// Append `df`'s rows, cut into row groups as [`write_row_groups`] cuts a frame.
    pub fn write(&mut self, df: &DataFrame, parallel: bool) -> Result<()> {
        let written = write_row_groups(&mut self.batched, &self.fields, df, parallel);
        self.checked(written)
    }

    /// Write the footer, sync if asked; the file's size.
    pub fn finish(self, sync: bool) -> Result<u64> {
        let written = self.batched.finish();
        let size = self.checked(written)?;
        if sync {
            self.file.sync_all().map_err(|e| io_error("syncing", &self.path, e))?;
        }
        Ok(size)
    }

    /// The system's own error for a failed write, when there was one (see [`Remembering`]).
    fn checked<T>(&self, result: PolarsResult<T>) -> Result<T> {
        if let Some(e) = self.error.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return Err(io_error("writing", &self.path, e));
        }
        result.map_err(|e| anyhow::anyhow!(e).context(format!("writing {}", self.path.display())))
    }
}

/// A file that keeps the first error the system gave a write: polars' writer turns it into
/// "Invalid thrift: transport error", which hides a full disk.
struct Remembering {
    file: File,
    error: Arc<Mutex<Option<std::io::Error>>>,
}

impl std::io::Write for Remembering {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf).inspect_err(|e| self.remember(e))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush().inspect_err(|e| self.remember(e))
    }
}

impl Remembering {
    fn remember(&mut self, e: &std::io::Error) {
        let mut first = self.error.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(std::io::Error::new(e.kind(), e.to_string()));
        }
    }
}

/// Rows per row group, as polars' writer cuts them.
pub const ROW_GROUP: usize = 512 * 512;

/// Write `df` one row group at a time, cut as `ParquetWriter::finish` cuts it: into equal parts,
/// as many as [`ROW_GROUP`] goes into the height (so each holds at least that many rows, unless
/// the frame is smaller). `finish` turns every column into full arrays first,
/// including a constant column such as an ingest's `source_file`, which then takes 16 bytes a
/// row for the whole file; a slice of a constant column stays constant until its row group is
/// encoded.
///
/// Text columns are dictionary-encoded by [`text_dictionary`] rather than by polars' writer,
/// which estimates each column's cardinality and then hashes every value into its dictionary.
fn write_row_groups<W: std::io::Write>(
    batched: &mut BatchedWriter<W>,
    fields: &[ParquetType],
    df: &DataFrame,
    parallel: bool,
) -> PolarsResult<()> {
    let options = WriteOptions {
        statistics: StatisticsOptions::default(),
        compression: CompressionOptions::Zstd(None),
        version: Version::V1,
        data_page_size: None,
    };
    let height = df.height();
    let parts = (height / ROW_GROUP).max(1);
    for i in 0..parts {
        let (start, end) = (i * height / parts, (i + 1) * height / parts);
        let mut part = df.slice(start as i64, end - start);
        part.rechunk_mut();
        for batch in part.iter_chunks(CompatLevel::newest(), false) {
            let column = |(array, field): (&ArrayRef, &ParquetType)| -> PolarsResult<Vec<CompressedPage>> {
                let (array, encoding) = encoding_for(array);
                let mut pages = Vec::new();
                for leaf in array_to_columns(array, field.clone(), options, &[encoding])? {
                    for page in leaf {
                        pages.push(compress(page?, Vec::new(), options.compression)?);
                    }
                }
                Ok(pages)
            };
            let columns = batch.columns().iter().zip(fields);
            // The columns of a row group at once, on rayon's pool, for the plain form (see the
            // module doc); the `_serial` form keeps them on the calling thread.
            let group: Vec<Vec<CompressedPage>> = if parallel {
                columns.collect::<Vec<_>>().into_par_iter().map(column).collect::<PolarsResult<_>>()?
            } else {
                columns.map(column).collect::<PolarsResult<_>>()?
            };
            batched.write_row_group(batch.len() as u64, &group)?;
        }
    }
    Ok(())
}

/// The array to write for a column and its encoding: text as our own dictionary when that is
/// worth it, else plain; whole numbers spread wide (source lines) as deltas; anything else as
/// polars' writer would.
fn encoding_for(array: &ArrayRef) -> (ArrayRef, Encoding) {
    if let Some(text) = array.as_any().downcast_ref::<Utf8ViewArray>() {
        return match text_dictionary(text) {
            Some(dict) => (dict.boxed(), Encoding::RleDictionary),
            None => (array.clone(), Encoding::Plain),
        };
    }
    if array.dtype() == &ArrowDataType::Int64
        && let Some(ints) = array.as_any().downcast_ref::<PrimitiveArray<i64>>()
        && wide(ints)
    {
        return (array.clone(), Encoding::DeltaBinaryPacked);
    }
    let encoding = polars_parquet::arrow::write::get_dtype_encoding(array.dtype());
    (array.clone(), encoding.first().copied().unwrap_or(Encoding::Plain))
}

/// Whether whole numbers spread wider than polars' writer keys as a dictionary at once. It would
/// then estimate their cardinality (hashing every value) and mostly write them plain: a
/// row group's source lines took 320 kB of a 17 MB month, where their deltas, one apart, pack
/// into almost nothing.
fn wide(ints: &PrimitiveArray<i64>) -> bool {
    let mut values = ints.non_null_values_iter();
    let Some(first) = values.next() else { return false };
    let (min, max) = values.fold((first, first), |(lo, hi), v| (lo.min(v), hi.max(v)));
    max.abs_diff(min) > 1 << 16
}

/// A text column as a dictionary, or `None` when more than a quarter of its values are
/// distinct or it is all null. Exports repeat a value on consecutive rows (an event's id, unit
/// and type on each of its members' rows), so a value equal to the row before is keyed without
/// hashing.
fn text_dictionary(array: &Utf8ViewArray) -> Option<DictionaryArray<u32>> {
    let n = array.len();
    if n == 0 || array.null_count() == n {
        return None;
    }
    // Past a quarter of the rows a dictionary is not worth it here. polars' writer gives up
    // only at three quarters, but warehouse files are sorted by natural key, and zstd packs a
    // sorted column of ids written plain into a fraction of its dictionary indices (member_id,
    // 43% distinct: 9.2 M attendance rows took 33.5 MB as a dictionary, 17.4 MB plain). The
    // first eighth of the rows is held to the same share, so that a column of ids is given
    // up early.
    let limit = n / 4;
    let early = (n / 8).max(1024);
    let mut distinct: Vec<&str> = Vec::new();
    // Values of up to 16 bytes (codes, dates, short ids) are found by their packed form, the
    // others by their text: a shuffled column's codes change on most rows.
    let mut packed: Vec<Option<(u128, u8)>> = Vec::new();
    // Each entry keeps its value's hash, so that growing the table does not hash again.
    let mut table: hashbrown::HashTable<(u64, u32)> = hashbrown::HashTable::new();
    let short_hash = foldhash::fast::FixedState::default();
    let hash = |s: &str, p: Option<(u128, u8)>| match p {
        Some(p) => short_hash.hash_one(p),
        None => xxhash_rust::xxh3::xxh3_64(s.as_bytes()),
    };
    let mut keys: Vec<u32> = Vec::with_capacity(n);
    let (mut last, mut last_key, mut last_view) = ("", u32::MAX, View::default());
    // A null row's key is never read, but the dictionary must hold only values that occur:
    // the column's statistics (min, max) are taken from it.
    for (row, (value, &view)) in array.iter().zip(array.views().iter()).enumerate() {
        let Some(value) = value else {
            keys.push(0);
            continue;
        };
        // The same view is the same value; a short value is all in its view, so another view
        // is (almost always) another value, and a long one is compared in full only when its
        // length and first bytes agree. Comparing every value was 3% of ingest's CPU in
        // `memcmp`. A repeat this misses is found in the table below.
        if last_key != u32::MAX
            && (view.as_u128() == last_view.as_u128()
                || (!view.is_inline()
                    && view.length == last_view.length
                    && view.prefix == last_view.prefix
                    && value == last))
        {
            keys.push(last_key);
            continue;
        }
        let p = pack(value.as_bytes());
        let h = hash(value, p);
        let same = |k: u32| match p {
            Some(_) => packed[k as usize] == p,
            None => distinct[k as usize] == value,
        };
        let key = match table.find(h, |&(eh, k)| eh == h && same(k)) {
            Some(&(_, k)) => k,
            None => {
                let k = distinct.len() as u32;
                distinct.push(value);
                packed.push(p);
                table.insert_unique(h, (h, k), |&(eh, _)| eh);
                if distinct.len() > limit || (row < early && distinct.len() * 4 > early) {
                    return None;
                }
                k
            }
        };
        (last, last_key, last_view) = (value, key, view);
        keys.push(key);
    }
    let values = Utf8ViewArray::from_slice_values(&distinct);
    let keys = PrimitiveArray::new(ArrowDataType::UInt32, keys.into(), array.validity().cloned());
    let dtype = ArrowDataType::Dictionary(IntegerType::UInt32, Box::new(ArrowDataType::Utf8View), false);
    DictionaryArray::try_new(dtype, keys, values.boxed()).ok()
}

/// Read a whole Parquet file.
pub fn read_parquet(path: &Path) -> Result<DataFrame> {
    read(path, None, true)
}

/// [`read_parquet`] on the calling thread only.
pub fn read_parquet_serial(path: &Path) -> Result<DataFrame> {
    read(path, None, false)
}

/// Read some columns of a Parquet file.
pub fn read_parquet_columns(path: &Path, columns: &[&str]) -> Result<DataFrame> {
    read(path, Some(columns), true)
}

/// [`read_parquet_columns`] on the calling thread only.
pub fn read_parquet_columns_serial(path: &Path, columns: &[&str]) -> Result<DataFrame> {
    read(path, Some(columns), false)
}

/// `len` rows of a Parquet file from row `offset`, on the calling thread: only the row groups
/// that hold them are read.
pub fn read_parquet_rows_serial(path: &Path, offset: usize, len: usize) -> Result<DataFrame> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    ParquetReader::new(file)
        .with_slice(Some((offset, len)))
        .read_parallel(ParallelStrategy::None)
        .finish()
        .map_err(|e| anyhow::anyhow!(e).context(format!("reading {}", path.display())))
}

/// A DATE column's values as days; all `None` when the frame has no such column (a table
/// written before the column was added).
pub fn date_values(df: &DataFrame, name: &str) -> Result<Vec<Option<chrono::NaiveDate>>> {
    let Ok(c) = df.column(name) else { return Ok(vec![None; df.height()]) };
    let c = c.cast(&DataType::Int32)?;
    let days = c.i32()?;
    Ok((0..days.len()).map(|i| days.get(i).map(crate::model::period::date_of_day)).collect())
}

fn read(path: &Path, columns: Option<&[&str]>, parallel: bool) -> Result<DataFrame> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let strategy = if parallel { ParallelStrategy::Auto } else { ParallelStrategy::None };
    ParquetReader::new(file)
        .with_columns(columns.map(|c| c.iter().map(|c| c.to_string()).collect()))
        .read_parallel(strategy)
        .finish()
        .map_err(|e| anyhow::anyhow!(e).context(format!("reading {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(values: &[Option<&str>]) -> Utf8ViewArray {
        Utf8ViewArray::from_slice(values)
    }

    /// The values a dictionary stands for, row by row.
    fn expand(dict: &DictionaryArray<u32>) -> Vec<Option<String>> {
        let values = dict.values().as_any().downcast_ref::<Utf8ViewArray>().unwrap();
        dict.keys().iter().map(|k| k.map(|k| values.value(*k as usize).to_string())).collect()
    }

    #[test]
    fn a_repeated_text_column_becomes_a_dictionary_of_the_same_values() {
        let rows: Vec<Option<&str>> = (0..5000)
            .map(|i| match i % 7 {
                0 => None,
                1 | 2 => Some("present"),
                3 => Some("a value longer than twelve bytes"),
                _ => Some(["leave", "absent", "present"][i % 3]),
            })
            .collect();
        let dict = text_dictionary(&text(&rows)).expect("few distinct values");
        assert_eq!(dict.values().len(), 4);
        let want: Vec<Option<String>> = rows.iter().map(|v| v.map(String::from)).collect();
        assert_eq!(expand(&dict), want);
    }

    #[test]
    fn ids_and_empty_columns_are_written_plain() {
        let ids: Vec<String> = (0..5000).map(|i| format!("P{i:06}")).collect();
        let ids: Vec<Option<&str>> = ids.iter().map(|s| Some(s.as_str())).collect();
        assert!(text_dictionary(&text(&ids)).is_none());
        assert!(text_dictionary(&text(&[None; 100])).is_none());
        assert!(text_dictionary(&text(&[])).is_none());
        // Half distinct (member ids in attendance): plain; a fifth: a dictionary.
        let half: Vec<String> = (0..5000).map(|i| format!("M{:06}", i / 2)).collect();
        let half: Vec<Option<&str>> = half.iter().map(|s| Some(s.as_str())).collect();
        assert!(text_dictionary(&text(&half)).is_none());
        let fifth: Vec<String> = (0..5000).map(|i| format!("M{:06}", i / 5)).collect();
        let fifth: Vec<Option<&str>> = fifth.iter().map(|s| Some(s.as_str())).collect();
        assert_eq!(text_dictionary(&text(&fifth)).map(|d| d.values().len()), Some(1000));
    }

    #[test]
    fn a_written_frame_reads_back_equal_whatever_the_encodings() {
        let n = 3000;
        let ids: Vec<String> = (0..n).map(|i| format!("E{i:05}")).collect();
        let units: Vec<Option<String>> = (0..n).map(|i| (i % 11 != 0).then(|| format!("B{:03}", i / 40))).collect();
        let days: Vec<i32> = (0..n).map(|i| 20_000 + (i as i32 % 30)).collect();
        let scores: Vec<Option<f64>> = (0..n).map(|i| (i % 5 != 0).then_some((i % 13) as f64 / 2.0)).collect();
        let mut df = DataFrame::new(
            n,
            vec![
                Column::new("id".into(), &ids),
                Column::new("unit".into(), &units),
                Column::new("day".into(), days).cast(&DataType::Date).unwrap(),
                Column::new("score".into(), scores),
                Column::full_null("name_hash".into(), n, &DataType::String),
                Column::new_scalar("source_file".into(), Scalar::from(PlSmallStr::from("a.csv")), n),
                Column::new("line".into(), (0..n as i64).map(|i| i * 40 + 2).collect::<Vec<i64>>()),
            ],
        )
        .unwrap();
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("x.parquet");
        write_parquet_unsynced(&mut df, &path).unwrap();
        let back = read_parquet_serial(&path).unwrap();
        assert!(back.equals_missing(&df), "{back}\n{df}");

        // The statistics readers prune with are the ones polars' own writer gives.
        let theirs = t.path().join("polars.parquet");
        let file = File::create(&theirs).unwrap();
        ParquetWriter::new(&file).with_compression(ParquetCompression::Zstd(None)).finish(&mut df).unwrap();
        let chunks = |p: &Path| {
            let md = polars_parquet::read::read_metadata(&mut File::open(p).unwrap()).unwrap();
            let group = &md.row_groups[0];
            let stats = group.parquet_columns().iter().map(|c| format!("{:?}", c.statistics(&md.footer_buf))).collect();
            let dict = group.parquet_columns().iter().map(|c| c.dictionary_page_offset().is_some()).collect();
            (stats, dict)
        };
        let ((ours, dict), (their_stats, their_dict)): ((Vec<String>, Vec<bool>), _) = (chunks(&path), chunks(&theirs));
        assert_eq!(ours, their_stats);
        // id, unit, day, score, name_hash, source_file, line: the ids and the empty column are plain,
        // and the other types are encoded as polars' writer encodes them.
        assert_eq!(dict, [false, true, true, their_dict[3], false, true, false]);
        assert_eq!(dict[2], their_dict[2]);
        // Lines, 40 apart, as deltas: a tenth of polars' plain column, or less.
        let size = |p: &Path| {
            let md = polars_parquet::read::read_metadata(&mut File::open(p).unwrap()).unwrap();
            md.row_groups[0].parquet_columns()[6].compressed_size()
        };
        assert!(size(&path) * 10 < size(&theirs), "{} vs {}", size(&path), size(&theirs));
    }
}
