//! `dangjian compute`: compute a period's indicators and print a short summary.

use std::io::Write;

use anyhow::Result;

use super::exit::Outcome;
use crate::cli::ComputeArgs;
use crate::indicators;
use crate::warehouse::Warehouse;

pub fn run(a: ComputeArgs) -> Result<Outcome> {
    // The catalogue is checked before any work starts.
    let catalogue = super::catalogue(a.indicators.as_deref())?;
    let wh = Warehouse::open(&a.warehouse)?;
    let s = indicators::compute(&wh, &catalogue, a.period)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "indicators for {}: {} units × {} indicators = {} rows (snapshot {})",
        s.period, s.units, s.indicators, s.rows, s.snapshot
    )?;
    writeln!(out, "status: {} red, {} amber, {} green", s.red, s.amber, s.green)?;
    if s.expected > 0 {
        let percent = 100.0 * s.reported as f64 / s.expected as f64;
        writeln!(out, "reporting: {} of {} branch-months with attendance ({percent:.1}%)", s.reported, s.expected)?;
    }
    writeln!(out, "weak-unit candidates: {}", s.weak_candidates.len())?;
    for (id, name, why) in &s.weak_candidates {
        writeln!(out, "  {id} {name}: {why}")?;
    }
    Ok(Outcome::Success)
}
