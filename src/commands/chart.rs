//! `dangjian chart`: the review pack's charts as PNG and SVG files.

use std::io::Write;

use anyhow::Result;

use super::exit::Outcome;
use crate::cli::OutArgs;
use crate::report;
use crate::review;
use crate::warehouse::Warehouse;

pub fn run(a: OutArgs) -> Result<Outcome> {
    let (catalogue, problems, appraisal) = super::review_rules(&a)?;
    let wh = Warehouse::open(&a.warehouse)?;
    let started = std::time::Instant::now();
    let pack = review::load(&wh, &catalogue, a.period)?;
    let load_ms = started.elapsed().as_millis() as u64;
    let charts = report::all_charts(&wh, &pack, &appraisal, &problems)?;
    let started = std::time::Instant::now();
    let rendered = crate::charts::write_all(&charts, &a.out)?;
    // The two halves apart: the benchmark times rendering on 1 core and on 2.
    let render_ms = started.elapsed().as_millis() as u64;
    tracing::info!(load_ms, render_ms, charts = rendered.len(), "review pack loaded and rendered");
    let mut out = std::io::stdout().lock();
    writeln!(out, "{} charts for {} in {} (PNG and SVG)", rendered.len(), a.period, a.out.display())?;
    for r in &rendered {
        writeln!(out, "  {}  {}", r.id, r.title)?;
    }
    Ok(Outcome::Success)
}
