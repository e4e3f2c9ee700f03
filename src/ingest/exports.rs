//! What an ingest hands back to people: the quarantine table (Parquet, in the warehouse) and
//! two CSV files with a UTF-8 BOM that Excel opens directly: `quarantine.csv` (one line per
//! problem) and, per input file, `<name>.rejects.csv` holding the refused rows with their
//! original columns and a `问题说明` column, so a clerk can fix them and send the file back.
//!
//! Every cell we write that Excel would read as a formula is neutralised.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use polars::prelude::*;

use super::validate::{RejectedRow, Rule};
use crate::output::neutralise;

/// One quarantine record, as stored.
#[derive(Debug, Clone)]
pub struct QuarantineRecord {
    pub kind: String,
    pub source_file: String,
    pub line: u64,
    pub column: String,
    pub value: String,
    pub rule: Rule,
    pub message: String,
}

/// The quarantine table's rows for one ingest.
pub fn quarantine_frame(ingest_id: &str, at_us: i64, records: &[QuarantineRecord]) -> Result<DataFrame> {
    let n = records.len();
    let s = |f: &dyn Fn(&QuarantineRecord) -> String| records.iter().map(f).collect::<Vec<String>>();
    Ok(DataFrame::new(
        n,
        vec![
            Column::new("ingest_id".into(), vec![ingest_id; n]),
            Column::new("kind".into(), s(&|r| r.kind.clone())),
            Column::new("source_file".into(), s(&|r| r.source_file.clone())),
            Column::new("line".into(), records.iter().map(|r| r.line as i64).collect::<Vec<i64>>()),
            Column::new("column".into(), s(&|r| r.column.clone())),
            Column::new("value".into(), s(&|r| r.value.clone())),
            Column::new("rule".into(), s(&|r| r.rule.name().to_string())),
            Column::new("message".into(), s(&|r| r.message.clone())),
            Column::new("quarantined_at".into(), vec![at_us; n])
                .cast(&DataType::Datetime(TimeUnit::Microseconds, None))?,
        ],
    )?)
}

fn csv_writer(path: &Path) -> Result<csv::Writer<std::fs::File>> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
    }
    let mut f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    std::io::Write::write_all(&mut f, b"\xEF\xBB\xBF").with_context(|| format!("writing {}", path.display()))?;
    Ok(csv::Writer::from_writer(f))
}

/// Write `skipped.csv` into `dir`: the rows that were not data (titles, 合计, 填表人 lines), so
/// a clerk can check that nothing real was left out.
pub fn write_skipped_csv(dir: &Path, rows: &[(&str, &super::parse::SkippedRow)]) -> Result<PathBuf> {
    let path = dir.join("skipped.csv");
    let mut w = csv_writer(&path)?;
    w.write_record(["文件", "行号", "原因", "内容"])?;
    for (file, r) in rows {
        w.write_record([neutralise(file).as_ref(), &r.line.to_string(), r.why, neutralise(&r.text).as_ref()])?;
    }
    w.flush().with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Write `quarantine.csv` (one line per problem) into `dir`.
pub fn write_quarantine_csv(dir: &Path, records: &[QuarantineRecord]) -> Result<PathBuf> {
    let path = dir.join("quarantine.csv");
    let mut w = csv_writer(&path)?;
    w.write_record(["文件 file", "行 line", "列 column", "值 value", "规则 rule", "说明 message", "类型 kind"])?;
    for r in records {
        let line = r.line.to_string();
        let cells = [&r.source_file, &line, &r.column, &r.value, r.rule.name(), &r.message, &r.kind];
        w.write_record(cells.iter().map(|c| neutralise(c)).collect::<Vec<_>>().iter().map(|c| c.as_ref()))?;
    }
    w.flush().with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Write the refused rows of one input file with its original header plus `问题说明`.
/// Columns in `blank` (personal names) are left empty: names never rest in the warehouse.
/// A source's name without its extension; a workbook's sheet keeps its name
/// (`考勤.xlsx[三月]` → `考勤[三月]`), so that two sheets' refusals do not share a file.
fn rejects_stem(source_name: &str) -> String {
    let (file, sheet) = match source_name.rfind('[') {
        Some(i) if source_name.ends_with(']') => source_name.split_at(i),
        _ => (source_name, ""),
    };
    let stem = Path::new(file).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    format!("{stem}{sheet}")
}

pub fn write_rejects_csv(
    dir: &Path,
    source_name: &str,
    header: &[String],
    blank: &[usize],
    rows: &[RejectedRow],
) -> Result<PathBuf> {
    let stem = rejects_stem(source_name);
    let path = dir.join(format!("{stem}.rejects.csv"));
    let mut w = csv_writer(&path)?;
    let mut head: Vec<&str> = header.iter().map(String::as_str).collect();
    head.push("问题说明");
    w.write_record(&head)?;
    for r in rows {
        let mut cells: Vec<String> = (0..header.len())
            .map(|i| {
                if blank.contains(&i) {
                    String::new()
                } else {
                    neutralise(r.cells.get(i).map_or("", String::as_str)).into_owned()
                }
            })
            .collect();
        let why: Vec<String> = r
            .reasons
            .iter()
            .map(|x| format!("第{}行 {}: {} [{}]", x.line, x.column, x.message, x.rule.name()))
            .collect();
        cells.push(neutralise(&why.join("; ")).into_owned());
        w.write_record(&cells)?;
    }
    w.flush().with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quarantine_frame_has_the_columns_of_the_model() {
        assert_eq!(quarantine_frame("", 0, &[]).unwrap().schema().as_ref(), &crate::model::Table::Quarantine.schema());
    }

    #[test]
    fn each_sheet_has_its_own_rejects_file() {
        assert_eq!(rejects_stem("出勤.csv"), "出勤");
        assert_eq!(rejects_stem("考勤.xlsx[三月]"), "考勤[三月]");
        assert_eq!(rejects_stem("考勤.xlsx[三月 (2)]"), "考勤[三月 (2)]");
        assert_eq!(rejects_stem("a[1].csv"), "a[1]");
    }
}
