//! `dangjian runs`: the last runs of a warehouse, newest first.

use std::io::Write;

use anyhow::Result;

use super::exit::Outcome;
use crate::cli::RunsArgs;
use crate::warehouse::Warehouse;
use crate::warehouse::history;

pub fn run(a: RunsArgs) -> Result<Outcome> {
    let wh = Warehouse::open(&a.warehouse)?;
    let mut list = history::load(&wh)?;
    list.reverse();
    list.truncate(a.last);
    let mut df = history::runs_frame(&list)?.select([
        "started_at",
        "pipeline",
        "period",
        "exit_code",
        "duration_ms",
        "stages",
        "error",
    ])?;
    let mut out = std::io::stdout().lock();
    crate::query::write(&mut df, crate::query::Format::Table, &mut out, None)?;
    out.flush()?;
    Ok(Outcome::Success)
}
