//! dangjian: batch analytics for grassroots Party-building work (基层党建).
//!
//! Exports from the district's systems go in (`ingest`), a validated Parquet warehouse comes
//! out (`warehouse`), indicators are computed over the unit tree (`indicators`), and ad hoc
//! SQL runs over it all (`query`). `commands` maps each verb of the command line to these
//! modules; `cli` owns the argument parsing. Only `commands` and `main` print.

pub mod charts;
pub mod cli;
pub mod commands;
pub mod configfile;
pub mod exit;
pub mod indicators;
pub mod ingest;
pub mod period;
pub mod pipeline;
pub mod query;
pub mod report;
pub mod review;
pub mod rng;
pub mod sample;
pub mod tables;
pub mod warehouse;
pub mod workers;
