//! `dangjian chart`: the review pack's charts as PNG and SVG files.

use std::io::Write;

use anyhow::Result;

use crate::cli::OutArgs;
use crate::exit::Outcome;
use crate::report::{self, grading::GradingRules};
use crate::review;
use crate::warehouse::Warehouse;

pub fn run(a: OutArgs) -> Result<Outcome> {
    let catalogue = super::catalogue(a.indicators.as_deref())?;
    let wh = Warehouse::open(&a.warehouse)?;
    let pack = review::load(&wh, &catalogue, a.period)?;
    let charts = report::all_charts(&pack, &GradingRules::default());
    let rendered = crate::charts::render_all(&charts, &a.out)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{} charts for {} in {} (PNG and SVG)", rendered.len(), a.period, a.out.display())?;
    for r in &rendered {
        writeln!(out, "  {}  {}", r.id, r.title)?;
    }
    Ok(Outcome::Success)
}
