//! `dangjian ingest`: load exports, then print a one-screen summary (or JSON) on stdout.

use std::io::{IsTerminal, Write};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use super::exit::{Outcome, UsageError};
use crate::cli::IngestArgs;
use crate::ingest::blocks::Sizes;
use crate::ingest::names::NameHasher;
use crate::ingest::{self, Coverage, FileStatus, IngestOptions, IngestReport, Progress, UnitsOptions};

struct Bar(ProgressBar);

impl Progress for Bar {
    fn start(&self, files: u64) {
        self.0.set_length(files);
    }
    fn file_done(&self, name: &str) {
        self.0.set_message(name.to_string());
        self.0.inc(1);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

pub fn run(a: IngestArgs) -> Result<Outcome> {
    let names = NameHasher::from_env().map_err(|e| UsageError(e.to_string()))?;
    let opts = IngestOptions {
        parse: super::parse_options(&a.read)?,
        names,
        units: UnitsOptions {
            effective: a.effective,
            coverage: if a.complete { Coverage::Complete } else { Coverage::Partial },
        },
        memory_budget: a.memory_budget_mib << 20,
        blocks: Sizes { file: a.blocks_from_mib << 20, ..Sizes::default() },
    };
    // A bar only on a terminal: under cron it would be noise in the log.
    let bar = if std::io::stderr().is_terminal() {
        let b = ProgressBar::new(0);
        b.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} files {msg}").expect("valid template"));
        b
    } else {
        ProgressBar::hidden()
    };
    let report = ingest::ingest(&a.warehouse, &a.paths, &opts, &Bar(bar))?;
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        write_summary(&mut out, &report)?;
    }
    out.flush()?;
    let failed = report.failed();
    if !failed.is_empty() {
        let lines: Vec<String> = failed
            .iter()
            .map(|f| match &f.status {
                FileStatus::Failed { line: Some(l), message } => format!("{}:{l}: {message}", f.path.display()),
                FileStatus::Failed { line: None, message } => format!("{}: {message}", f.path.display()),
                _ => unreachable!(),
            })
            .collect();
        return Err(anyhow::anyhow!("{}", lines.join("\n")))
            .context(format!("{} file(s) could not be read; nothing was loaded", failed.len()));
    }
    if !report.names_hashed {
        tracing::info!("personal names were dropped (set {} to keep a keyed hash)", ingest::names::KEY_VAR);
    }
    if report.bad_ratio() > a.max_bad_ratio {
        tracing::warn!(
            "{} of {} rows ({:.1}%) were quarantined, above --max-bad-ratio {:.1}%",
            report.quarantined,
            report.rows_read,
            report.bad_ratio() * 100.0,
            a.max_bad_ratio * 100.0
        );
        return Ok(Outcome::TooManyQuarantined);
    }
    Ok(Outcome::Success)
}

/// The rows and sheets that were not data, so a clerk can see what was left out.
fn write_skipped(out: &mut dyn Write, r: &IngestReport) -> Result<()> {
    const SHOWN: usize = 20;
    let rows: Vec<(&str, &ingest::SkippedRow)> =
        r.files.iter().flat_map(|f| f.skipped_rows.iter().map(move |s| (f.file.as_str(), s))).collect();
    for (file, s) in rows.iter().take(SHOWN) {
        writeln!(out, "  skipped {file}:{} {}: {}", s.line, s.why, s.text)?;
    }
    if rows.len() > SHOWN {
        writeln!(out, "  … and {} more skipped rows (--json lists them all)", rows.len() - SHOWN)?;
    }
    for f in &r.files {
        for sheet in &f.skipped_sheets {
            // Reported with the workbook's first table: name the workbook, not that sheet.
            let workbook = f.file.rsplit_once('[').map_or(f.file.as_str(), |(w, _)| w);
            writeln!(out, "  sheet '{sheet}' of {workbook} holds no table: not read")?;
        }
    }
    Ok(())
}

fn write_summary(out: &mut dyn Write, r: &IngestReport) -> Result<()> {
    writeln!(out, "ingest {}", r.ingest_id)?;
    writeln!(
        out,
        "{:<34} {:<10} {:<9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "file", "kind", "encoding", "read", "loaded", "quarant.", "dupl.", "supersed."
    )?;
    for f in &r.files {
        let kind = f.kind.map_or("-", |k| k.name());
        let enc = f.encoding.unwrap_or(if f.path.extension().is_some_and(|e| e.eq_ignore_ascii_case("xlsx")) {
            "xlsx"
        } else {
            "-"
        });
        let mut name: String = f.file.clone();
        while crate::output::width(&name) > 34 {
            name.pop();
        }
        // Chinese file names take two columns a character: pad by display width.
        let name = crate::output::pad(&name, 34, false);
        match &f.status {
            FileStatus::Loaded => writeln!(
                out,
                "{} {:<10} {:<9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                name, kind, enc, f.rows_read, f.loaded, f.quarantined, f.duplicates, f.superseded
            )?,
            FileStatus::AlreadyIngested { by } => writeln!(out, "{name} {kind:<10} skipped: already ingested ({by})")?,
            FileStatus::Failed { line, message } => {
                let first = message.lines().next().unwrap_or("");
                let at = line.map(|l| format!(" at line {l}")).unwrap_or_default();
                writeln!(out, "{name} FAILED{at}: {first}")?
            }
        }
    }
    writeln!(
        out,
        "{:<34} {:<10} {:<9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "total", "", "", r.rows_read, r.loaded, r.quarantined, r.duplicates, r.superseded
    )?;
    if r.skipped == 0 {
        writeln!(
            out,
            "rows read {} = loaded {} + quarantined {} + duplicates {}",
            r.rows_read, r.loaded, r.quarantined, r.duplicates
        )?;
    } else {
        writeln!(
            out,
            "rows read {} = loaded {} + quarantined {} + duplicates {} + skipped {} (not data)",
            r.rows_read, r.loaded, r.quarantined, r.duplicates, r.skipped
        )?;
    }
    write_skipped(out, r)?;
    if !r.quarantined_by_rule.is_empty() {
        let rules: Vec<String> = r.quarantined_by_rule.iter().map(|(k, v)| format!("{k} {v}")).collect();
        writeln!(out, "quarantined by rule: {}", rules.join(", "))?;
    }
    if let Some(dir) = &r.exports_dir {
        writeln!(out, "for clerks (CSV, opens in Excel: quarantine, skipped rows): {}", dir.display())?;
    }
    match r.snapshot {
        Some(s) => writeln!(out, "warehouse snapshot {s}")?,
        None if r.failed().is_empty() => writeln!(out, "nothing new: the warehouse is unchanged")?,
        None => writeln!(out, "nothing was loaded: the warehouse is unchanged")?,
    }
    for f in r.files.iter().filter(|f| !f.ignored_columns.is_empty()) {
        writeln!(out, "note: {} has columns that were ignored: {}", f.file, f.ignored_columns.join(", "))?;
    }
    Ok(())
}
