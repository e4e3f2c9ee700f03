//! `dangjian check`: a warehouse's health in words; `--repair` mends what can be mended. A
//! problem left unmended is a failure (exit 1), so a scheduler notices.

use std::io::Write;

use anyhow::{Result, bail};

use super::exit::Outcome;
use crate::cli::CheckArgs;
use crate::warehouse::check::{self, Health};

pub fn run(a: CheckArgs) -> Result<Outcome> {
    let health = if a.repair { check::repair(&a.warehouse)? } else { check::check(&a.warehouse)? };
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &as_json(&a.warehouse, &health))?;
        writeln!(out)?;
    } else {
        write_health(&mut out, &a.warehouse, &health)?;
    }
    out.flush()?;
    let left = health.problems.len();
    if left > 0 {
        let mendable = health.problems.iter().filter(|p| p.repairable()).count();
        let hint = if mendable > 0 && !a.repair { "; `dangjian check --repair` mends" } else { "" };
        bail!("{left} problem(s) in {}{hint}", a.warehouse.display());
    }
    Ok(Outcome::Success)
}

fn as_json(root: &std::path::Path, h: &Health) -> serde_json::Value {
    serde_json::json!({
        "warehouse": root.display().to_string(),
        "snapshot": h.snapshot,
        "tables": h.tables.iter().map(|t| serde_json::json!({
            "table": t.table.name(), "files": t.files, "rows": t.rows,
        })).collect::<Vec<_>>(),
        "problems": h.problems.iter().map(|p| serde_json::json!({
            "problem": p.to_string(), "repairable": p.repairable(),
        })).collect::<Vec<_>>(),
    })
}

fn write_health(out: &mut dyn Write, root: &std::path::Path, h: &Health) -> Result<()> {
    writeln!(out, "warehouse {} at snapshot {}", root.display(), h.snapshot)?;
    writeln!(out, "{:<14} {:>6} {:>12}", "table", "files", "rows")?;
    for t in &h.tables {
        writeln!(out, "{:<14} {:>6} {:>12}", t.table.name(), t.files, t.rows)?;
    }
    if h.problems.is_empty() {
        writeln!(out, "no problems found")?;
    }
    for p in &h.problems {
        writeln!(out, "problem: {p}")?;
    }
    Ok(())
}
