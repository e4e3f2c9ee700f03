//! `dangjian sql --dialect spark`: the warehouse's tables and, with `--period`, the indicator
//! catalogue as a Spark SQL script on stdout.

use std::io::Write;

use anyhow::{Context, Result};

use super::exit::Outcome;
use crate::cli::SqlArgs;
use crate::indicators::spark;
use crate::warehouse::Warehouse;

pub fn run(a: SqlArgs) -> Result<Outcome> {
    let catalogue = super::catalogue(a.indicators.as_deref())?;
    let wh = Warehouse::open(&a.warehouse)?;
    // Spark resolves paths on its own machines: write them absolute.
    let root = std::fs::canonicalize(wh.root()).with_context(|| format!("resolving {}", wh.root().display()))?;
    let text = match a.period {
        Some(p) => spark::script(&catalogue, &root, p)?,
        None => spark::ddl(&root)?,
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(Outcome::Success)
}
