//! `dangjian sample`: generate a sample district and print what was written.

use std::io::Write;

use anyhow::Result;

use super::exit::Outcome;
use crate::cli::SampleArgs;
use crate::sample::{self, SampleOptions};

pub fn run(a: SampleArgs) -> Result<Outcome> {
    let opts = SampleOptions {
        units: a.units,
        members: a.members,
        months: a.months,
        seed: a.seed,
        dirty: a.dirty,
        end: a.end,
        plain: a.plain,
    };
    let s = sample::generate(&a.out, &opts)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "sample district in {}: {} units, {} members", a.out.display(), s.units, s.members)?;
    for (path, rows) in &s.files {
        writeln!(out, "  {:<48} {rows:>9} rows", path.display())?;
    }
    let rows: Vec<String> = s.rows.iter().map(|(k, v)| format!("{k} {v}")).collect();
    writeln!(out, "rows: {}", rows.join(", "))?;
    if !s.spoiled.is_empty() {
        let sp: Vec<String> = s.spoiled.iter().map(|(k, v)| format!("{k} {v}")).collect();
        writeln!(out, "spoiled on purpose: {}", sp.join(", "))?;
    }
    writeln!(
        out,
        "an ingest of all of it in one call should quarantine {} rows and drop {} duplicates",
        s.expect_quarantined, s.expect_duplicates
    )?;
    Ok(Outcome::Success)
}
