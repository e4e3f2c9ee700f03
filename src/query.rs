//! Ad hoc SQL over the warehouse: every table registered by name over one snapshot (so a
//! query never sees a write half-way), polars SQL, read-only, and the result written as an
//! aligned table, CSV, NDJSON or Parquet to any writer.
//!
//! This module never prints: the command hands it stdout or a file.

use std::io::Write;
use std::path::Path;

use anyhow::{Result, bail};
use polars::prelude::*;
use polars::sql::SQLContext;

use crate::model::Table;
use crate::output::{neutralise, pad, width};
use crate::warehouse::{Warehouse, history, scan_table};

/// Output formats of `query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
    Parquet,
    Xlsx,
}

/// A query that cannot run as asked: the user's to mend (the command layer makes it exit 2).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueryError {
    #[error("only reading statements are allowed (SELECT, WITH, SHOW TABLES); got '{0}'")]
    NotReadOnly(String),
    #[error("the SQL uses :{0} but no --param {0}=… was given")]
    MissingParam(String),
    #[error("--param {0} is not used in the SQL")]
    UnusedParam(String),
    #[error("no table named '{0}'")]
    NoTable(String),
}

/// A SQL context with every warehouse table registered.
pub fn context(wh: &Warehouse) -> Result<SQLContext> {
    let snapshot = wh.snapshot()?;
    let ctx = SQLContext::new();
    for t in Table::ALL {
        ctx.register(t.name(), scan_table(&snapshot, t)?);
    }
    // The run history lives beside the snapshots (a log, not a table of the warehouse).
    ctx.register("runs", history::runs_frame(&history::load(wh)?)?.lazy());
    Ok(ctx)
}

/// Refuse anything but a reading statement. polars SQL cannot write files, but `CREATE` or
/// `DROP` would suggest it does, and `query` promises to be read-only.
pub fn check_read_only(sql: &str) -> Result<(), QueryError> {
    let first = sql.trim_start().trim_start_matches('(').split_whitespace().next().unwrap_or("").to_ascii_uppercase();
    match first.as_str() {
        "SELECT" | "WITH" | "SHOW" | "FROM" => Ok(()),
        _ => Err(QueryError::NotReadOnly(first)),
    }
}

/// Put parameter values into `:name` placeholders as SQL literals: numbers bare, anything else
/// a quoted string with quotes doubled, so a value can never become SQL. An unknown
/// placeholder, or a parameter never used, is an error.
pub fn bind(sql: &str, params: &[(String, String)]) -> Result<String, QueryError> {
    let mut out = String::with_capacity(sql.len());
    let mut used = vec![false; params.len()];
    let mut chars = sql.char_indices().peekable();
    let mut in_string = false;
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            in_string = !in_string;
        }
        let starts_name =
            c == ':' && !in_string && chars.peek().is_some_and(|(_, n)| n.is_ascii_alphabetic() || *n == '_');
        // `::` is a cast, not a placeholder.
        if !starts_name || sql[..i].ends_with(':') {
            out.push(c);
            continue;
        }
        let mut name = String::new();
        while let Some((_, n)) = chars.peek() {
            if n.is_ascii_alphanumeric() || *n == '_' {
                name.push(*n);
                chars.next();
            } else {
                break;
            }
        }
        let Some(k) = params.iter().position(|(p, _)| *p == name) else {
            return Err(QueryError::MissingParam(name));
        };
        used[k] = true;
        let v = &params[k].1;
        if v.parse::<f64>().is_ok_and(f64::is_finite) && !v.trim().is_empty() && v.trim() == v {
            out.push_str(v);
        } else {
            out.push('\'');
            out.push_str(&v.replace('\'', "''"));
            out.push('\'');
        }
    }
    if let Some(k) = used.iter().position(|u| !u) {
        return Err(QueryError::UnusedParam(params[k].0.clone()));
    }
    Ok(out)
}

/// `DESCRIBE table`: each column with its type, whether it is a partition column, and the
/// table's row and partition counts.
pub fn describe(wh: &Warehouse, table: &str) -> Result<DataFrame> {
    let snapshot = wh.snapshot()?;
    let (lf, partitions) = match Table::parse(table) {
        Some(t) => {
            let files = snapshot.files(t)?;
            let parts: std::collections::BTreeSet<String> = files.iter().map(|f| snapshot.partition_of(t, f)).collect();
            let n = if files.is_empty() { 0 } else { parts.len().max(1) };
            (scan_table(&snapshot, t)?, n)
        }
        None if table == "runs" => (history::runs_frame(&history::load(wh)?)?.lazy(), 0),
        None => return Err(QueryError::NoTable(table.to_string()).into()),
    };
    let df = lf.collect()?;
    let partition_cols: Vec<&str> =
        Table::parse(table).map(|t| t.partition_columns()).unwrap_or_default().into_iter().map(|(n, _)| n).collect();
    let names: Vec<String> = df.get_column_names().iter().map(|s| s.to_string()).collect();
    let n = names.len();
    Ok(DataFrame::new(
        n,
        vec![
            Column::new("column".into(), names.clone()),
            Column::new("type".into(), df.dtypes().iter().map(|t| t.to_string()).collect::<Vec<_>>()),
            Column::new(
                "partition".into(),
                names.iter().map(|c| partition_cols.contains(&c.as_str())).collect::<Vec<_>>(),
            ),
            Column::new(
                "non_null".into(),
                df.columns().iter().map(|c| (c.len() - c.null_count()) as i64).collect::<Vec<_>>(),
            ),
            Column::new("rows".into(), vec![df.height() as i64; n]),
            Column::new("partitions".into(), vec![partitions as i64; n]),
        ],
    )?)
}

/// Run `sql` over the warehouse.
pub fn run(wh: &Warehouse, sql: &str) -> Result<DataFrame> {
    let words: Vec<&str> = sql.split_whitespace().collect();
    if let [d, table] = words.as_slice()
        && d.eq_ignore_ascii_case("describe")
    {
        return describe(wh, table.trim_end_matches(';'));
    }
    check_read_only(sql)?;
    let mut ctx = context(wh)?;
    let lf = anyhow::Context::context(ctx.execute(sql), "in the SQL")?;
    anyhow::Context::context(lf.collect(), "running the query")
}

/// Each column as display strings (dates ISO, nulls empty).
fn string_columns(df: &DataFrame) -> Result<Vec<Vec<Option<String>>>> {
    df.columns()
        .iter()
        .map(|c| {
            let s = c.cast(&DataType::String)?;
            Ok(s.str()?.iter().map(|v| v.map(str::to_string)).collect())
        })
        .collect()
}

/// Rows of column-major cells.
fn rows_of(cols: &[Vec<Option<String>>]) -> impl Iterator<Item = Vec<&Option<String>>> {
    let height = cols.first().map_or(0, Vec::len);
    (0..height).map(move |i| cols.iter().map(|c| &c[i]).collect())
}

/// Write `df` in `format`. Parquet needs a file path, not a stream.
pub fn write(df: &mut DataFrame, format: Format, out: &mut dyn Write, parquet_path: Option<&Path>) -> Result<()> {
    match format {
        Format::Table => write_table(df, out),
        Format::Csv => {
            let cols = string_columns(df)?;
            let mut w = csv::Writer::from_writer(out);
            w.write_record(df.get_column_names().iter().map(|n| n.as_str()))?;
            for i in 0..df.height() {
                w.write_record(cols.iter().map(|c| neutralise(c[i].as_deref().unwrap_or("")).into_owned()))?;
            }
            w.flush()?;
            Ok(())
        }
        Format::Json => {
            let names: Vec<String> = df.get_column_names().iter().map(|s| s.to_string()).collect();
            let cols = string_columns(df)?;
            let kinds: Vec<DataType> = df.dtypes();
            for row in rows_of(&cols) {
                let mut obj = serde_json::Map::new();
                for (j, name) in names.iter().enumerate() {
                    let v = match (row[j], &kinds[j]) {
                        (None, _) => serde_json::Value::Null,
                        (Some(s), DataType::Boolean) => serde_json::Value::Bool(s == "true"),
                        (Some(s), t) if t.is_integer() => {
                            s.parse::<i64>().map(Into::into).unwrap_or(serde_json::Value::Null)
                        }
                        (Some(s), t) if t.is_float() => s
                            .parse::<f64>()
                            .ok()
                            .and_then(serde_json::Number::from_f64)
                            .map_or(serde_json::Value::Null, Into::into),
                        (Some(s), _) => serde_json::Value::String(s.clone()),
                    };
                    obj.insert(name.clone(), v);
                }
                serde_json::to_writer(&mut *out, &obj)?;
                out.write_all(b"\n")?;
            }
            Ok(())
        }
        Format::Parquet => {
            let Some(path) = parquet_path else { bail!("--format parquet needs --output FILE") };
            crate::warehouse::write_parquet(df, path)?;
            Ok(())
        }
        Format::Xlsx => {
            let Some(path) = parquet_path else { bail!("--format xlsx needs --output FILE") };
            write_xlsx(df, path)
        }
    }
}

/// One sheet: a header row, numbers as numbers, text neutralised against formulas.
fn write_xlsx(df: &DataFrame, path: &Path) -> Result<()> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    let bold = rust_xlsxwriter::Format::new().set_bold();
    let cols = string_columns(df)?;
    let numeric: Vec<bool> = df.dtypes().iter().map(|t| t.is_primitive_numeric()).collect();
    for (j, name) in df.get_column_names().iter().enumerate() {
        ws.write_string_with_format(0, j as u16, name.as_str(), &bold)?;
    }
    for (i, row) in rows_of(&cols).enumerate() {
        for (j, v) in row.iter().enumerate() {
            let Some(v) = v else { continue };
            let (r, c) = (i as u32 + 1, j as u16);
            match v.parse::<f64>() {
                Ok(n) if numeric[j] => ws.write_number(r, c, n)?,
                _ => ws.write_string(r, c, neutralise(v))?,
            };
        }
    }
    wb.save(path)?;
    Ok(())
}

fn write_table(df: &DataFrame, out: &mut dyn Write) -> Result<()> {
    const MAX_CELL: usize = 48;
    let names: Vec<String> = df.get_column_names().iter().map(|s| s.to_string()).collect();
    let numeric: Vec<bool> = df.dtypes().iter().map(|t| t.is_primitive_numeric()).collect();
    let cols = string_columns(df)?;
    let cell = |v: &Option<String>| -> String {
        let s = v.as_deref().unwrap_or("null").replace('\n', " ");
        if s.chars().count() > MAX_CELL {
            format!("{}…", s.chars().take(MAX_CELL - 1).collect::<String>())
        } else {
            s
        }
    };
    let widths: Vec<usize> = names
        .iter()
        .enumerate()
        .map(|(j, n)| cols[j].iter().map(|v| width(&cell(v))).chain([width(n)]).max().unwrap_or(0))
        .collect();
    let line: Vec<String> = names.iter().enumerate().map(|(j, n)| pad(n, widths[j], false)).collect();
    writeln!(out, "{}", line.join("  ").trim_end())?;
    let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
    writeln!(out, "{}", rule.join("  "))?;
    for row in rows_of(&cols) {
        let line: Vec<String> = row.iter().enumerate().map(|(j, v)| pad(&cell(v), widths[j], numeric[j])).collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
    }
    writeln!(out, "({} row{})", df.height(), if df.height() == 1 { "" } else { "s" })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_become_literals_never_sql() {
        let p = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(
            bind("SELECT * FROM t WHERE period = :period", &[p("period", "2026Q1")]).unwrap(),
            "SELECT * FROM t WHERE period = '2026Q1'"
        );
        assert_eq!(bind("SELECT :n + 1", &[p("n", "41")]).unwrap(), "SELECT 41 + 1");
        assert_eq!(bind("SELECT :x", &[p("x", "a' OR '1'='1")]).unwrap(), "SELECT 'a'' OR ''1''=''1'");
        assert_eq!(bind("SELECT ':kept', a::int", &[]).unwrap(), "SELECT ':kept', a::int");
        assert!(bind("SELECT :missing", &[]).is_err());
        assert!(bind("SELECT 1", &[p("unused", "1")]).is_err());
    }

    #[test]
    fn only_reading_statements_pass() {
        assert!(check_read_only("select 1").is_ok());
        assert!(check_read_only("  WITH x AS (SELECT 1) SELECT * FROM x").is_ok());
        assert!(check_read_only("SHOW TABLES").is_ok());
        for bad in [
            "DROP TABLE units",
            "CREATE TABLE x AS SELECT 1",
            "COPY x TO 'f'",
            "delete from units",
            "INSERT INTO x VALUES (1)",
        ] {
            assert!(check_read_only(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tables_align_chinese_text() {
        let mut df = df!("名称" => ["党支部", "a"], "n" => [1i64, 20]).unwrap();
        let mut out = Vec::new();
        write(&mut df, Format::Table, &mut out, None).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "名称    n\n──────  ──\n党支部   1\na       20\n(2 rows)\n");
    }

    #[test]
    fn json_keeps_types() {
        let mut df = df!("a" => [Some(1i64), None], "b" => ["x", "y"], "c" => [0.5f64, 2.0]).unwrap();
        let mut out = Vec::new();
        write(&mut df, Format::Json, &mut out, None).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"a\":1,\"b\":\"x\",\"c\":0.5}\n{\"a\":null,\"b\":\"y\",\"c\":2.0}\n"
        );
    }
}
