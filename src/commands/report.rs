//! `dangjian report`: the problem list (also written to the warehouse) and the report.

use std::io::Write;

use anyhow::Result;

use super::exit::Outcome;
use crate::cli::OutArgs;
use crate::report;
use crate::review::appraisal::AppraisalRules;
use crate::review::problems::ProblemRules;
use crate::warehouse::Warehouse;

pub fn run(a: OutArgs) -> Result<Outcome> {
    let catalogue = super::catalogue(a.indicators.as_deref())?;
    let wh = Warehouse::open(&a.warehouse)?;
    let files =
        report::build(&wh, &catalogue, a.period, &ProblemRules::default(), &AppraisalRules::default(), &a.out, None)?;
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
