//! `dangjian sql --dialect spark`: the warehouse's tables and, with `--period`, the indicator
//! catalogue (or with `--appraisal`, a year's appraisal) as a Spark SQL script on stdout.

use std::io::Write;

use anyhow::{Context, Result};

use super::exit::{Outcome, UsageError};
use crate::cli::SqlArgs;
use crate::indicators::spark;
use crate::model::period::Period;
use crate::pipeline::Pipeline;
use crate::review::appraisal::AppraisalRules;
use crate::review::appraisal_spark;
use crate::warehouse::Warehouse;

pub fn run(a: SqlArgs) -> Result<Outcome> {
    let catalogue = super::catalogue(a.indicators.as_deref())?;
    let wh = Warehouse::open(&a.warehouse)?;
    // Spark resolves paths on its own machines: write them absolute.
    let root = std::fs::canonicalize(wh.root()).with_context(|| format!("resolving {}", wh.root().display()))?;
    let text = match (a.period, a.appraisal) {
        (Some(Period::Year { year }), true) => {
            let rules = match &a.pipeline {
                Some(path) => Pipeline::load(path)?.appraisal,
                None => AppraisalRules::default(),
            };
            appraisal_spark::script(&rules, &catalogue, &root, year)?
        }
        (Some(p), true) => return Err(UsageError(format!("--appraisal is annual: {p} is not a year")).into()),
        (Some(p), false) => spark::script(&catalogue, &root, p)?,
        (None, _) => spark::ddl(&root)?,
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(Outcome::Success)
}
