//! `dangjian query`: SQL over the warehouse, written to stdout or `--output`.

use std::io::{BufWriter, Write};

use anyhow::{Context, Result};

use crate::cli::QueryArgs;
use crate::exit::{Outcome, UsageError};
use crate::query::{self, Format};
use crate::warehouse::Warehouse;

pub fn run(a: QueryArgs) -> Result<Outcome> {
    let format = a.format.format();
    if format == Format::Parquet && a.output.is_none() {
        return Err(UsageError("--format parquet needs --output FILE".into()).into());
    }
    let wh = Warehouse::open(&a.warehouse)?;
    let mut df = query::run(&wh, &a.sql)?;
    match (&a.output, format) {
        (Some(path), Format::Parquet) => query::write(&mut df, format, &mut std::io::sink(), Some(path))?,
        (Some(path), _) => {
            let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
            let mut w = BufWriter::new(f);
            query::write(&mut df, format, &mut w, None)?;
            w.flush()?;
        }
        (None, _) => {
            let mut w = BufWriter::new(std::io::stdout().lock());
            query::write(&mut df, format, &mut w, None)?;
            w.flush()?;
        }
    }
    Ok(Outcome::Success)
}
