//! What ingest would do with a file, without writing anything: the encoding, the sheet, the
//! header row and how its cells map to fields, the rows that are not data, the first rows as
//! they would be stored, and what would be quarantined and why. What a clerk or an analyst
//! runs when a file is refused.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use anyhow::Result;
use polars::prelude::*;

use super::files;
use super::names::NameHasher;
use super::parse::{self, ParseOptions, SkippedRow};
use super::schema::map_header_with;
use crate::model::Kind;

/// How many rows are shown as they would be stored, and how many refusals in full.
const SHOWN_ROWS: usize = 5;
const SHOWN_REFUSALS: usize = 10;

/// One file, inspected.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Inspection {
    pub file: PathBuf,
    /// The sheet, when a workbook holds tables on several sheets (or one was named).
    pub sheet: Option<String>,
    /// The file's whole outcome when it would be refused; then the rest is empty.
    pub refused: Option<String>,
    pub refused_at_line: Option<u64>,
    pub kind: Option<Kind>,
    pub encoding: Option<&'static str>,
    pub skipped_sheets: Vec<String>,
    /// The header row's cells, each with the field it maps to (none: ignored).
    pub columns: Vec<(String, Option<&'static str>)>,
    /// Optional fields the header does not have.
    pub absent_fields: Vec<&'static str>,
    pub skipped_rows: Vec<SkippedRow>,
    pub rows_read: u64,
    pub would_load: u64,
    pub duplicates: u64,
    pub quarantined_by_rule: BTreeMap<&'static str, u64>,
    /// The first refusals: (line, column, value, rule, message).
    pub refusals: Vec<(u64, String, String, &'static str, String)>,
    /// The first rows as they would be stored: column names, then rows of cell texts.
    pub stored_columns: Vec<String>,
    pub stored_rows: Vec<Vec<String>>,
    /// Whether references to units were checked (only against a warehouse's units).
    pub references_checked: bool,
}

/// Inspect each file under `paths` (files or folders). `units`, when given, are the unit ids
/// references are checked against.
pub fn inspect(paths: &[PathBuf], opts: &ParseOptions, units: Option<&HashSet<String>>) -> Result<Vec<Inspection>> {
    let names = NameHasher::dropping();
    let mut out = Vec::new();
    for path in files::expand(paths)? {
        // A workbook with a table on each of several sheets is inspected sheet by sheet, as
        // ingest reads it.
        for input in files::sheets(files::stat(&path)?, opts.sheet.as_deref(), &opts.aliases) {
            out.push(inspect_input(&input, opts, units, &names)?);
        }
    }
    Ok(out)
}

fn inspect_input(
    input: &files::InputFile,
    opts: &ParseOptions,
    units: Option<&HashSet<String>>,
    names: &NameHasher,
) -> Result<Inspection> {
    let mut ins = Inspection {
        file: input.path.clone(),
        sheet: input.sheet.clone(),
        refused: None,
        refused_at_line: None,
        kind: None,
        encoding: None,
        skipped_sheets: Vec::new(),
        columns: Vec::new(),
        absent_fields: Vec::new(),
        skipped_rows: Vec::new(),
        rows_read: 0,
        would_load: 0,
        duplicates: 0,
        quarantined_by_rule: BTreeMap::new(),
        refusals: Vec::new(),
        stored_columns: Vec::new(),
        stored_rows: Vec::new(),
        references_checked: units.is_some(),
    };
    let parsed = match parse::parse_file(input, opts, units, names) {
        Ok(p) => p,
        Err(e) => {
            ins.refused = Some(e.message);
            ins.refused_at_line = e.line;
            return Ok(ins);
        }
    };
    ins.kind = Some(parsed.kind);
    ins.encoding = parsed.encoding.map(|e| e.name());
    ins.skipped_sheets = parsed.skipped_sheets.clone();
    let map = map_header_with(&parsed.header, Some(parsed.kind), &opts.aliases)?;
    let fields = parsed.kind.fields();
    ins.columns = parsed
        .header
        .iter()
        .enumerate()
        .map(|(i, h)| (h.clone(), map.columns.iter().position(|c| *c == Some(i)).map(|fi| fields[fi].name)))
        .collect();
    ins.absent_fields = fields.iter().zip(&map.columns).filter(|(_, c)| c.is_none()).map(|(f, _)| f.name).collect();
    let v = &parsed.validated;
    ins.skipped_rows = parsed.skipped.clone();
    ins.rows_read = v.rows_read + parsed.skipped.len() as u64;
    ins.duplicates = v.duplicates;
    ins.would_load = v.frame.height() as u64;
    for r in &v.rejected {
        for reason in &r.reasons {
            *ins.quarantined_by_rule.entry(reason.rule.name()).or_default() += 1;
            if ins.refusals.len() < SHOWN_REFUSALS {
                ins.refusals.push((
                    reason.line,
                    reason.column.clone(),
                    reason.value.clone(),
                    reason.rule.name(),
                    reason.message.clone(),
                ));
            }
        }
    }
    let head = v.frame.head(Some(SHOWN_ROWS));
    ins.stored_columns = head.get_column_names().iter().map(|c| c.to_string()).collect();
    ins.stored_rows = (0..head.height())
        .map(|r| {
            head.columns()
                .iter()
                .map(|c| match c.get(r) {
                    Ok(AnyValue::Null) | Err(_) => String::new(),
                    Ok(AnyValue::String(s)) => s.to_string(),
                    Ok(other) => other.to_string(),
                })
                .collect()
        })
        .collect();
    Ok(ins)
}
