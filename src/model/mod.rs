//! The bottom layer: what the records, tables and periods are. Every other module may use it;
//! it uses none of them, does no I/O and never prints.
//!
//! - `kinds`: the record kinds of the input contract (fields, aliases, types, enumerations,
//!   natural keys, stored columns).
//! - `tables`: the warehouse tables, their columns and partition columns.
//! - `grid`: levels, categories and indicator statuses as closed sets.
//! - `period`: months, quarters and years.

pub mod grid;
pub mod kinds;
pub mod period;
pub mod tables;

pub use grid::{Category, Level, Status};
pub use kinds::Kind;
pub use period::{Period, PeriodError};
pub use tables::Table;
