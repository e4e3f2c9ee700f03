//! `dangjian report`: the problem list (also written to the warehouse) and the report.

use std::io::Write;

use anyhow::Result;

use super::exit::Outcome;
use crate::cli::OutArgs;
use crate::report;
use crate::warehouse::Warehouse;

pub fn run(a: OutArgs) -> Result<Outcome> {
    let (catalogue, problems, appraisal) = super::review_rules(&a)?;
    let wh = Warehouse::open(&a.warehouse)?;
    let files = report::build(&wh, &catalogue, a.period, &problems, &appraisal, &a.out, None)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "report for {}: {} ({} charts in {})",
        a.period,
        files.html.display(),
        files.charts,
        files.charts_html.display()
    )?;
    writeln!(out, "workbook: {}", files.xlsx.display())?;
    Ok(Outcome::Success)
}
