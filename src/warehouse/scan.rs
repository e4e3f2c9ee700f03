//! Reading a table of a snapshot lazily, the way every reader of the warehouse does.

use std::sync::Arc;

use anyhow::Result;
use polars::prelude::*;

use super::Snapshot;
use crate::model::Table;

/// A table scanned lazily from the snapshot, with Hive partition columns; an empty table is
/// an empty frame with the table's columns, so queries over it still run.
pub fn scan_table(snapshot: &Snapshot, table: Table) -> Result<LazyFrame> {
    let files = snapshot.files(table)?;
    if files.is_empty() {
        return Ok(table.empty_frame()?.lazy());
    }
    let dir = snapshot.table_dir(table);
    let hive = table.partition_columns();
    let mut hive_options = HiveOptions::new_enabled();
    if !hive.is_empty() {
        hive_options.schema = Some(Arc::new(Schema::from_iter(hive.into_iter().map(|(n, t)| Field::new(n.into(), t)))));
    } else {
        hive_options.enabled = Some(false);
    }
    // Files written before a column was added lack it: read them with the table's columns,
    // the missing ones null.
    let args = ScanArgsParquet {
        hive_options,
        schema: Some(Arc::new(table.schema())),
        allow_missing_columns: true,
        ..Default::default()
    };
    let path = PlRefPath::try_from_path(&dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    anyhow::Context::with_context(LazyFrame::scan_parquet(path, args), || format!("scanning {}", dir.display()))
}
