//! Parquet files as other engines expect them: zstd, statistics, flat columns, DATE for dates,
//! microsecond timestamps, and a footer naming the writer. Every file is synced before it is
//! part of a snapshot.

use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result};
use polars::prelude::*;

/// Write `df` to `path` (creating parent folders) and sync it to disk.
pub fn write_parquet(df: &mut DataFrame, path: &Path) -> Result<u64> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let meta =
        KeyValueMetadata::from_static(vec![("created_by_dangjian".to_string(), env!("CARGO_PKG_VERSION").to_string())]);
    let written = ParquetWriter::new(&file)
        .with_compression(ParquetCompression::Zstd(None))
        .with_statistics(StatisticsOptions::default())
        .with_key_value_metadata(Some(meta))
        .finish(df)
        .map_err(|e| anyhow::anyhow!(e).context(format!("writing {}", path.display())))?;
    file.sync_all().with_context(|| format!("syncing {}", path.display()))?;
    Ok(written)
}

/// Read a whole Parquet file.
pub fn read_parquet(path: &Path) -> Result<DataFrame> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    ParquetReader::new(file).finish().map_err(|e| anyhow::anyhow!(e).context(format!("reading {}", path.display())))
}

/// Read some columns of a Parquet file.
pub fn read_parquet_columns(path: &Path, columns: &[&str]) -> Result<DataFrame> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    ParquetReader::new(file)
        .with_columns(Some(columns.iter().map(|c| c.to_string()).collect()))
        .finish()
        .map_err(|e| anyhow::anyhow!(e).context(format!("reading {}", path.display())))
}
