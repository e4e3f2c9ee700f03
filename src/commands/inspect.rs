//! `dangjian inspect`: what ingest would do with each file, in words or as JSON.

use std::collections::HashSet;
use std::io::Write;

use anyhow::Result;

use super::exit::Outcome;
use crate::cli::InspectArgs;
use crate::ingest::inspect::{self, Inspection};
use crate::warehouse::Warehouse;

pub fn run(a: InspectArgs) -> Result<Outcome> {
    let opts = super::parse_options(&a.read)?;
    let units: Option<HashSet<String>> = match &a.warehouse {
        Some(root) => Some(crate::indicators::tree::all_unit_ids(&Warehouse::open(root)?.snapshot()?)?),
        None => None,
    };
    let found = inspect::inspect(&a.paths, &opts, units.as_ref())?;
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &found)?;
        writeln!(out)?;
    } else {
        for ins in &found {
            write_text(&mut out, ins)?;
        }
    }
    out.flush()?;
    // Inspecting is not ingesting: a file that would be refused is a finding, not a failure.
    Ok(Outcome::Success)
}

fn write_text(out: &mut dyn Write, ins: &Inspection) -> Result<()> {
    match &ins.sheet {
        Some(sheet) => writeln!(out, "== {} [sheet {sheet}]", ins.file.display())?,
        None => writeln!(out, "== {}", ins.file.display())?,
    }
    if let Some(why) = &ins.refused {
        let at = ins.refused_at_line.map(|l| format!(" (line {l})")).unwrap_or_default();
        writeln!(out, "would be refused{at}: {why}")?;
        return Ok(());
    }
    let kind = ins.kind.map_or("-", |k| k.name());
    writeln!(out, "kind {kind}, encoding {}", ins.encoding.unwrap_or("xlsx"))?;
    for s in &ins.skipped_sheets {
        writeln!(out, "sheet '{s}' holds no table: not read")?;
    }
    writeln!(out, "columns:")?;
    for (header, field) in &ins.columns {
        let shown = header.replace("\r\n", "⏎").replace('\n', "⏎");
        match field {
            Some(f) => writeln!(out, "  {shown} → {f}")?,
            None => writeln!(out, "  {shown} → (ignored)")?,
        }
    }
    if !ins.absent_fields.is_empty() {
        writeln!(out, "optional fields not in the file: {}", ins.absent_fields.join(", "))?;
    }
    for s in &ins.skipped_rows {
        writeln!(out, "skipped line {}: {}: {}", s.line, s.why, s.text)?;
    }
    let quarantined: u64 = ins.quarantined_by_rule.values().sum();
    writeln!(
        out,
        "rows read {}: would load {}, quarantine {}, drop {} repeated, skip {} (not data)",
        ins.rows_read,
        ins.would_load,
        quarantined,
        ins.duplicates,
        ins.skipped_rows.len()
    )?;
    if !ins.references_checked {
        writeln!(out, "(unit references not checked: give --warehouse to check them against its units)")?;
    }
    for (line, column, value, rule, message) in &ins.refusals {
        writeln!(out, "  line {line} {column} '{value}': {rule}: {message}")?;
    }
    if !ins.stored_rows.is_empty() {
        writeln!(out, "first rows as they would be stored:")?;
        writeln!(out, "  {}", ins.stored_columns.join(" | "))?;
        for r in &ins.stored_rows {
            writeln!(out, "  {}", r.join(" | "))?;
        }
    }
    writeln!(out)?;
    Ok(())
}
