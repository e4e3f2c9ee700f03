//! The columns of every warehouse table, for readers that need a schema before any row
//! exists (an empty table in `query`, the Spark DDL). Each schema comes from the code that
//! writes the table, so the two cannot drift apart.

use anyhow::Result;
use polars::prelude::*;

use crate::ingest::{Kind, exports, merge, validate};
use crate::warehouse::Table;

/// A table's Hive partition columns (in the folder names, not in the files), with fixed types:
/// inference would read `period=2026` as a number.
pub fn partition_columns(table: Table) -> Vec<(&'static str, DataType)> {
    match table {
        Table::Attendance | Table::Points => vec![("year", DataType::Int32), ("month", DataType::Int32)],
        Table::Assessment => vec![("year", DataType::Int32)],
        Table::Indicators | Table::Problems => vec![("period", DataType::String)],
        _ => vec![],
    }
}

/// An empty frame with the table's stored columns (partition columns not included).
pub fn empty_frame(table: Table) -> Result<DataFrame> {
    let kind = |k: Kind| -> Result<DataFrame> {
        let mut cols: Vec<Column> = k
            .fields()
            .iter()
            .map(|f| Column::new_empty(validate::stored_name(f).into(), &validate::stored_dtype(f)))
            .collect();
        cols.push(Column::new_empty("source_file".into(), &DataType::String));
        cols.push(Column::new_empty("source_line".into(), &DataType::Int64));
        cols.push(Column::new_empty("source_mtime".into(), &DataType::Datetime(TimeUnit::Microseconds, None)));
        cols.push(Column::new_empty("ingest_id".into(), &DataType::String));
        debug_assert_eq!(cols.len(), merge::stored_columns(k).len());
        Ok(DataFrame::new(0, cols)?)
    };
    match table {
        Table::Units => crate::ingest::units::units_frame(&[]),
        Table::Attendance => kind(Kind::Attendance),
        Table::Points => kind(Kind::Points),
        Table::Assessment => kind(Kind::Assessment),
        Table::Quarantine => exports::quarantine_frame("", 0, &[]),
        Table::Ingests => crate::ingest::ledger_frame("", 0, &[], &[], &[]),
        Table::Indicators => crate::indicators::empty_frame(),
        Table::Problems => crate::review::problems_frame(&[]),
        Table::Draws => crate::review::draws_frame(&[]),
    }
}
