//! `dangjian compute`: compute a period's indicators and print a short summary.

use std::io::Write;

use anyhow::Result;

use super::exit::{Outcome, UsageError};
use crate::cli::{ComputeArgs, EngineArg};
use crate::indicators::{self, Engine, SparkRemote};
use crate::warehouse::Warehouse;

pub fn run(a: ComputeArgs) -> Result<Outcome> {
    // The catalogue and the engine are checked before any work starts.
    let catalogue = super::catalogue(a.indicators.as_deref())?;
    let engine = engine(&a)?;
    let wh = Warehouse::open(&a.warehouse)?;
    let s = indicators::compute(&wh, &catalogue, a.period, &engine)?;
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

fn engine(a: &ComputeArgs) -> Result<Engine> {
    match (a.engine, &a.spark_remote) {
        (EngineArg::Local, None) if a.spark_warehouse.is_none() => Ok(Engine::Local),
        (EngineArg::Local, _) => {
            Err(UsageError("--spark-remote and --spark-warehouse go with --engine spark".into()).into())
        }
        (EngineArg::Spark, None) => Err(UsageError("--engine spark needs --spark-remote sc://HOST:PORT".into()).into()),
        (EngineArg::Spark, Some(url)) => Ok(Engine::Spark(SparkRemote::new(url, a.spark_warehouse.clone())?)),
    }
}
