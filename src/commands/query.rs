//! `dangjian query`: SQL over the warehouse, written to stdout or `--output`.

use std::io::{BufWriter, Write};

use anyhow::{Context, Result};

use super::exit::{Outcome, UsageError};
use crate::cli::QueryArgs;
use crate::query::{self, Format};
use crate::warehouse::Warehouse;

pub fn run(a: QueryArgs) -> Result<Outcome> {
    let format = a.format.format();
    if matches!(format, Format::Parquet | Format::Xlsx) && a.output.is_none() {
        return Err(UsageError("--format parquet and xlsx need --output FILE".into()).into());
    }
    // A saved query: `@file.sql`.
    let text = match a.sql.strip_prefix('@') {
        Some(file) => std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?,
        None => a.sql.clone(),
    };
    let sql = query::bind(&text, &a.params)?;
    let wh = Warehouse::open(&a.warehouse)?;
    let mut df = query::run(&wh, &sql)?;
    match (&a.output, format) {
        (Some(path), Format::Parquet | Format::Xlsx) => {
            query::write(&mut df, format, &mut std::io::sink(), Some(path))?
        }
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
