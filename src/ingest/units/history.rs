//! The stored form of the unit history, and reading it back.
//!
//! `units_history` has one row per unit per stretch of days over which the unit's row stays the
//! same, its path from the root included: a unit splits into two rows when it or one of its
//! ancestors changes. Any reader then finds the tree of a day with a filter on `valid_from` and
//! `valid_to`, and rolls up with `path` as before, with no recursion and no knowledge of the
//! versions. `units` is the tree after every recorded change: the rows still open at the end.
//! The versions themselves (what the merge works on) are the adjacent rows of a unit with the
//! same content and provenance, joined again.

use std::collections::HashMap;

use anyhow::Result;
use chrono::NaiveDate;
use polars::prelude::*;

use super::check::{MAX_DEPTH, change_days, tree_on};
use super::{Origin, Timelines, UnitRow, day_before};
use crate::model::period::day_number;
use crate::warehouse;

/// One stored row: a unit's version over a stretch of days, with its path on those days.
#[derive(Debug, Clone, PartialEq)]
pub struct Stretch {
    pub row: UnitRow,
    /// Ids from the root down to the unit.
    pub path: Vec<String>,
}

/// The stretches of every unit, from its versions (sorted by unit and first day).
pub fn stretches(versions: &[UnitRow]) -> Vec<Stretch> {
    let mut lines: Timelines = Timelines::new();
    for v in versions {
        lines.entry(v.unit_id.clone()).or_default().push(v.clone());
    }
    let mut open: HashMap<String, Stretch> = HashMap::new();
    let mut out = Vec::new();
    for day in change_days(&lines) {
        let tree = tree_on(&lines, day);
        let paths = paths_of(&tree);
        // A unit gone from the tree, or in another version or on another path, closes its
        // stretch the day before.
        let ids: Vec<String> = open.keys().cloned().collect();
        for id in ids {
            let continues = tree.get(id.as_str()).is_some_and(|v| {
                let s = &open[&id];
                same_version(&s.row, v) && s.path == paths[id.as_str()]
            });
            if !continues {
                let mut s = open.remove(&id).expect("open");
                s.row.valid_to = day_before(day);
                out.push(s);
            }
        }
        for (id, v) in &tree {
            if !open.contains_key(*id) {
                let mut row = (*v).clone();
                row.valid_from = (day > NaiveDate::MIN).then_some(day);
                open.insert(id.to_string(), Stretch { row, path: paths[*id].clone() });
            }
        }
    }
    // Past the last change day nothing changes: what is open stays open.
    out.extend(open.into_values().map(|mut s| {
        s.row.valid_to = None;
        s
    }));
    out.sort_by(|a, b| a.path.cmp(&b.path).then(a.row.from().cmp(&b.row.from())));
    out
}

/// Whether a stretch's row and a version are the same version of the unit (a stretch's first
/// day may be later than its version's).
fn same_version(stretch: &UnitRow, version: &UnitRow) -> bool {
    stretch.order() == version.order() && stretch.same_unit_as(version) && version.from() <= stretch.from()
}

/// The path of ids from the root to each unit of one day's tree, e.g. `D/T1/C1/B1`.
fn paths_of<'a>(tree: &std::collections::BTreeMap<&'a str, &UnitRow>) -> HashMap<&'a str, Vec<String>> {
    let mut out = HashMap::new();
    for (id, u) in tree {
        let mut path = vec![u.unit_id.clone()];
        let mut cur = *u;
        while let Some(p) = &cur.parent_id {
            path.push(p.clone());
            match tree.get(p.as_str()) {
                Some(next) if path.len() <= MAX_DEPTH + 2 => cur = next,
                _ => break,
            }
        }
        path.reverse();
        out.insert(*id, path);
    }
    out
}

/// The `units_history` table: every stretch.
pub fn history_frame(versions: &[UnitRow]) -> Result<DataFrame> {
    frame(&stretches(versions))
}

/// The `units` table: the stretches open at the end, the tree after every recorded change.
pub fn units_frame(versions: &[UnitRow]) -> Result<DataFrame> {
    let open: Vec<Stretch> = stretches(versions).into_iter().filter(|s| s.row.valid_to.is_none()).collect();
    frame(&open)
}

fn frame(stretches: &[Stretch]) -> Result<DataFrame> {
    let rows: Vec<&UnitRow> = stretches.iter().map(|s| &s.row).collect();
    let text = |name: &str, f: &dyn Fn(&UnitRow) -> Option<String>| -> Column {
        Column::new(name.into(), rows.iter().map(|u| f(u)).collect::<Vec<Option<String>>>())
    };
    let date = |name: &str, f: &dyn Fn(&UnitRow) -> Option<NaiveDate>| -> Result<Column> {
        let days: Vec<Option<i32>> = rows.iter().map(|u| f(u).map(day_number)).collect();
        Ok(Column::new(name.into(), days).cast(&DataType::Date)?)
    };
    let mtimes: Vec<i64> = rows.iter().map(|u| u.source_mtime).collect();
    Ok(DataFrame::new(
        rows.len(),
        vec![
            text("unit_id", &|u| Some(u.unit_id.clone())),
            text("unit_name", &|u| Some(u.unit_name.clone())),
            text("parent_id", &|u| u.parent_id.clone()),
            text("level", &|u| Some(u.level.clone())),
            text("category", &|u| u.category.clone()),
            date("valid_from", &|u| u.valid_from)?,
            date("valid_to", &|u| u.valid_to)?,
            Column::new("depth".into(), stretches.iter().map(|s| s.path.len() as i32 - 1).collect::<Vec<i32>>()),
            Column::new("path".into(), stretches.iter().map(|s| s.path.join("/")).collect::<Vec<String>>()),
            text("source_file", &|u| Some(u.source_file.clone())),
            Column::new("source_line".into(), rows.iter().map(|u| u.source_line).collect::<Vec<i64>>()),
            Column::new("source_mtime".into(), mtimes).cast(&DataType::Datetime(TimeUnit::Microseconds, None))?,
            text("ingest_id", &|u| Some(u.ingest_id.clone())),
        ],
    )?)
}

/// The unit columns of a frame (a units export as validated, or a stored table) as rows with
/// their lines; the caller fills in where they came from.
pub fn rows_of(df: &DataFrame) -> Result<Vec<UnitRow>> {
    let s = |name: &str| -> Result<StringChunked> { Ok(df.column(name)?.str()?.clone()) };
    let (id, name, parent, level, cat) = (s("unit_id")?, s("unit_name")?, s("parent_id")?, s("level")?, s("category")?);
    let (from, to) = (warehouse::date_values(df, "valid_from")?, warehouse::date_values(df, "valid_to")?);
    let line = df.column("source_line")?.i64()?.clone();
    Ok((0..df.height())
        .map(|i| UnitRow {
            unit_id: id.get(i).unwrap_or_default().to_string(),
            unit_name: name.get(i).unwrap_or_default().to_string(),
            parent_id: parent.get(i).map(str::to_string),
            level: level.get(i).unwrap_or_default().to_string(),
            category: cat.get(i).map(str::to_string),
            valid_from: from[i],
            valid_to: to[i],
            source_file: String::new(),
            source_line: line.get(i).unwrap_or_default(),
            source_mtime: 0,
            ingest_id: String::new(),
            origin: Origin::Existing,
        })
        .collect())
}

/// The versions of each unit from a stored `units_history` (or, from a warehouse written before
/// the history, `units`, whose rows are then open at both ends): adjacent rows of a unit with
/// the same content and provenance are one version.
pub fn versions_from_frame(df: &DataFrame) -> Result<Vec<UnitRow>> {
    let s = |name: &str| -> Result<StringChunked> { Ok(df.column(name)?.str()?.clone()) };
    let (file, ingest) = (s("source_file")?, s("ingest_id")?);
    let mtime = df.column("source_mtime")?.cast(&DataType::Int64)?;
    let mtime = mtime.i64()?;
    let mut rows = rows_of(df)?;
    for (i, r) in rows.iter_mut().enumerate() {
        r.source_file = file.get(i).unwrap_or_default().to_string();
        r.source_mtime = mtime.get(i).unwrap_or_default();
        r.ingest_id = ingest.get(i).unwrap_or_default().to_string();
    }
    rows.sort_by(|a, b| a.unit_id.cmp(&b.unit_id).then(a.from().cmp(&b.from())));
    let mut versions: Vec<UnitRow> = Vec::with_capacity(rows.len());
    for r in rows {
        if let Some(last) = versions.last_mut()
            && last.unit_id == r.unit_id
            && last.same_unit_as(&r)
            && last.order() == r.order()
            && last.valid_to.and_then(|t| t.succ_opt()) == r.valid_from
        {
            last.valid_to = r.valid_to;
            continue;
        }
        versions.push(r);
    }
    Ok(versions)
}
