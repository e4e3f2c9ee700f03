//! Parquet files as other engines expect them: zstd, statistics, flat columns, DATE for dates,
//! microsecond timestamps, and a footer naming the writer. Every file is synced before it is
//! part of a snapshot.
//!
//! Each function comes in two forms. The plain one lets polars spread the work over its
//! threads; the `_serial` one keeps it on the calling thread, for callers that already run one
//! task per core (`crate::workers`), where polars' threads would only compete with them.

use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result};
use polars::prelude::*;

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
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let meta =
        KeyValueMetadata::from_static(vec![("created_by_dangjian".to_string(), env!("CARGO_PKG_VERSION").to_string())]);
    let writer = ParquetWriter::new(&file)
        .with_compression(ParquetCompression::Zstd(None))
        .with_statistics(StatisticsOptions::default())
        .with_key_value_metadata(Some(meta))
        .set_parallel(parallel);
    let written =
        write_row_groups(writer, df).map_err(|e| anyhow::anyhow!(e).context(format!("writing {}", path.display())))?;
    if sync {
        file.sync_all().with_context(|| format!("syncing {}", path.display()))?;
    }
    Ok(written)
}

/// Rows per row group, as polars' writer cuts them.
const ROW_GROUP: usize = 512 * 512;

/// Write `df` one row group at a time, cut as `ParquetWriter::finish` cuts it: into equal parts,
/// as many as [`ROW_GROUP`] goes into the height (so each holds at least that many rows, unless
/// the frame is smaller). `finish` turns every column into full arrays first,
/// including a constant column such as an ingest's `source_file`, which then takes 16 bytes a
/// row for the whole file; a slice of a constant column stays constant until its row group is
/// encoded.
fn write_row_groups(writer: ParquetWriter<&File>, df: &DataFrame) -> PolarsResult<u64> {
    let mut batched = writer.batched(df.schema())?;
    let height = df.height();
    let parts = (height / ROW_GROUP).max(1);
    for i in 0..parts {
        let (start, end) = (i * height / parts, (i + 1) * height / parts);
        let mut part = df.slice(start as i64, end - start);
        part.rechunk_mut();
        batched.write_batch(&part)?;
    }
    batched.finish()
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

fn read(path: &Path, columns: Option<&[&str]>, parallel: bool) -> Result<DataFrame> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let strategy = if parallel { ParallelStrategy::Auto } else { ParallelStrategy::None };
    ParquetReader::new(file)
        .with_columns(columns.map(|c| c.iter().map(|c| c.to_string()).collect()))
        .read_parallel(strategy)
        .finish()
        .map_err(|e| anyhow::anyhow!(e).context(format!("reading {}", path.display())))
}
