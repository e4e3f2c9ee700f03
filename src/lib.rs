//! dangjian: batch analytics for grassroots Party-building work (基层党建).
//!
//! Exports from the district's systems go in (`ingest`), a validated Parquet warehouse comes
//! out (`warehouse`), indicators are computed over the unit tree (`indicators`), and ad hoc
//! SQL runs over it all (`query`). `commands` maps each verb of the command line to these
//! modules; `cli` owns the argument parsing. Only `commands` and `main` print.
//!
//! The layers point one way (README, "Where things are"): `model` and `output` at the bottom,
//! then `warehouse`, then `ingest` and `indicators`, then `review`, `charts` and `report`,
//! then `query`, `pipeline` and `sample`, and `commands` on top. The library exposes what the
//! binary and the integration tests need, nothing more.

pub mod cli;
pub mod commands;

mod charts;
mod configfile;
mod indicators;
mod ingest;
mod model;
mod output;
mod packed;
mod pipeline;
mod query;
mod report;
mod review;
mod rng;
mod sample;
mod warehouse;
mod workers;

/// The warehouse's writer lock, for tests that hold a warehouse as a concurrent run would.
pub use warehouse::WarehouseLock;
