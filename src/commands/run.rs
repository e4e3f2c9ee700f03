//! `dangjian run`: a pipeline file, for one period, a range, or `auto`.

use std::io::Write;

use anyhow::Result;

use super::exit::{self, Outcome, UsageError};
use crate::cli::RunArgs;
use crate::ingest::names::NameHasher;
use crate::pipeline::{self, Pipeline, RunOptions, Stage};

pub fn run(a: RunArgs) -> Result<Outcome> {
    // Everything is checked before any work starts.
    let p = Pipeline::load(&a.pipeline)?;
    let names = NameHasher::from_env().map_err(|e| UsageError(e.to_string()))?;
    let opts = RunOptions {
        period: a.period,
        warehouse: a.warehouse.clone(),
        today: a.today.unwrap_or_else(|| chrono::Local::now().date_naive()),
        from: a.from.map(|s| s.stage()),
        wait: a.wait,
        force: a.force,
        exit_code_of: exit::manifest_code,
    };
    let report = pipeline::run(&p, &opts, &names)?;
    let mut out = std::io::stdout().lock();
    for m in &report.manifests {
        if let Some(note) = &m.period_note {
            writeln!(out, "{note}")?;
        }
        writeln!(
            out,
            "{} {}: {} ({} ms)",
            p.name,
            m.period,
            if m.exit_code == 0 { "done" } else { "done, quarantine over the ratio" },
            m.duration_ms
        )?;
        for s in &m.stages {
            writeln!(out, "  {:<8} {:<7} {}", s.stage, s.status, s.detail)?;
        }
        if p.stages.contains(&Stage::Report) {
            let period = m.period.parse().expect("a manifest's period parses");
            writeln!(out, "report: {}", p.out_dir(period).join("report.html").display())?;
        }
    }
    Ok(exit::outcome_of(report.ending))
}
