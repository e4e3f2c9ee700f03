//! `dangjian draw`: the roving-inspection draw of a quarter, recorded in the warehouse.

use std::io::Write;

use anyhow::Result;

use super::exit::Outcome;
use crate::cli::DrawArgs;
use crate::review::{self, DrawOptions};
use crate::warehouse::Warehouse;

pub fn run(a: DrawArgs) -> Result<Outcome> {
    let wh = Warehouse::open(&a.warehouse)?;
    let opts = DrawOptions {
        count: a.count,
        seed: Some(a.seed),
        level: a.level.level(),
        stratify: a.stratify,
        exclude_recent_quarters: a.exclude_recent,
        weak_weight: a.weak_weight,
        force: a.force,
    };
    let d = review::run_draw(&wh, a.period, &opts)?;
    let units = crate::indicators::tree::load(&wh.snapshot()?, a.period.last_day())?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "inspection draw for {} (seed {}, {}, {} candidates){}",
        d.period,
        d.seed,
        d.algorithm,
        d.candidates.len(),
        if d.forced { ", forced" } else { "" }
    )?;
    for id in &d.chosen {
        let name = units.iter().find(|u| &u.id == id).map_or("", |u| u.name.as_str());
        writeln!(out, "  {id}  {name}")?;
    }
    Ok(Outcome::Success)
}
