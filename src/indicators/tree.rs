//! The unit tree of a period: the units valid on its last day, each with its path from the
//! root on that day (SPEC §2). A unit created inside the period is in it, with all its rows of
//! the period; a unit dissolved inside it is not, and its rows of the period roll up nowhere:
//! the figures describe the grid as it stood when the period closed. What changed between two
//! periods' trees is told to the reader (`changes`).

use std::collections::HashMap;

use anyhow::{Result, bail};
use chrono::NaiveDate;
use polars::prelude::*;

use crate::model::period::Period;
use crate::warehouse::{self, Snapshot};

/// A unit as the indicators see it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UnitInfo {
    pub id: String,
    pub name: String,
    pub level: String,
    pub category: Option<String>,
    /// Ids from the root down to the unit itself.
    pub path: Vec<String>,
    /// The first day of the unit's unbroken existence up to the tree's day; `None` when it has
    /// existed from the start of the records. A branch is not expected to report before it.
    pub since: Option<NaiveDate>,
}

impl UnitInfo {
    /// The township (街道/镇) on the unit's path, the unit itself when it is one, with `unit`
    /// finding a unit by id; `None` for the district and units directly under it.
    pub fn township<'a>(&self, unit: impl Fn(&str) -> Option<&'a UnitInfo>) -> Option<&'a UnitInfo> {
        self.path.iter().filter_map(|id| unit(id)).find(|u| u.level == crate::model::Level::Township.code())
    }

    /// Whether the unit existed on the last day of `month`, so that a branch is expected to
    /// report for it: a branch created inside a period is expected from its first month.
    pub fn exists_in(&self, month: Period) -> bool {
        self.since.is_none_or(|d| d <= month.last_day())
    }

    /// The months of `period` the unit is expected to report for.
    pub fn expected_months(&self, period: Period) -> usize {
        period.months().into_iter().filter(|&(year, month)| self.exists_in(Period::Month { year, month })).count()
    }

    /// The parent's id; none for the root.
    pub fn parent(&self) -> Option<&str> {
        self.path.len().checked_sub(2).map(|i| self.path[i].as_str())
    }
}

/// A stretch's first and last day (open when `None`).
type Span = (Option<NaiveDate>, Option<NaiveDate>);

/// The tree valid on `day`. A warehouse written before the tree had a history has only
/// `units`, valid at all times.
pub fn load(snapshot: &Snapshot, day: NaiveDate) -> Result<Vec<UnitInfo>> {
    let Some(file) = snapshot.units_file()? else {
        bail!("the warehouse has no units yet: ingest the units export (组织架构) first");
    };
    let df = warehouse::read_parquet(&file)?;
    let (from, to) = (warehouse::date_values(&df, "valid_from")?, warehouse::date_values(&df, "valid_to")?);
    let s = |c: &str| -> Result<StringChunked> { Ok(df.column(c)?.str()?.clone()) };
    let (id, name, level, cat, path) = (s("unit_id")?, s("unit_name")?, s("level")?, s("category")?, s("path")?);
    let covers = |i: usize| from[i].is_none_or(|f| f <= day) && to[i].is_none_or(|t| t >= day);
    // Each unit's stretches, to walk back over the unbroken ones.
    let mut spans: HashMap<&str, Vec<Span>> = HashMap::new();
    for i in 0..df.height() {
        spans.entry(id.get(i).unwrap_or_default()).or_default().push((from[i], to[i]));
    }
    let since = |unit: &str, mut first: Option<NaiveDate>| {
        while let Some(f) = first {
            match spans[unit].iter().find(|(_, t)| t.and_then(|t| t.succ_opt()) == Some(f)) {
                Some((earlier, _)) => first = *earlier,
                None => break,
            }
        }
        first
    };
    Ok((0..df.height())
        .filter(|&i| covers(i))
        .map(|i| {
            let unit = id.get(i).unwrap_or_default();
            UnitInfo {
                id: unit.to_string(),
                name: name.get(i).unwrap_or_default().to_string(),
                level: level.get(i).unwrap_or_default().to_string(),
                category: cat.get(i).map(str::to_string),
                path: path.get(i).unwrap_or_default().split('/').map(str::to_string).collect(),
                since: since(unit, from[i]),
            }
        })
        .collect())
}

/// Every unit id the warehouse knows, in any version (what a row's `unit_id` may reference).
pub fn all_unit_ids(snapshot: &Snapshot) -> Result<std::collections::HashSet<String>> {
    let Some(file) = snapshot.units_file()? else { return Ok(Default::default()) };
    let df = warehouse::read_parquet_columns(&file, &["unit_id"])?;
    let ids = df.column("unit_id")?.str()?.clone();
    Ok((0..ids.len()).filter_map(|i| ids.get(i).map(str::to_string)).collect())
}

/// What changed in the tree from one day to another.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Changes {
    /// Units in the later tree only.
    pub added: Vec<UnitInfo>,
    /// Units in the earlier tree only.
    pub dissolved: Vec<UnitInfo>,
    /// Units under another parent: (the unit in the later tree, the earlier one).
    pub moved: Vec<(UnitInfo, UnitInfo)>,
    /// Units of another level or category: (the unit in the later tree, the earlier one).
    pub regraded: Vec<(UnitInfo, UnitInfo)>,
}

/// The changes from the tree `before` to the tree `after`, in the later tree's order.
pub fn changes(before: &[UnitInfo], after: &[UnitInfo]) -> Changes {
    let old: HashMap<&str, &UnitInfo> = before.iter().map(|u| (u.id.as_str(), u)).collect();
    let new: HashMap<&str, &UnitInfo> = after.iter().map(|u| (u.id.as_str(), u)).collect();
    let mut out = Changes::default();
    for u in after {
        match old.get(u.id.as_str()) {
            None => out.added.push(u.clone()),
            Some(o) => {
                if o.parent() != u.parent() {
                    out.moved.push((u.clone(), (*o).clone()));
                }
                if o.level != u.level || o.category != u.category {
                    out.regraded.push((u.clone(), (*o).clone()));
                }
            }
        }
    }
    out.dissolved = before.iter().filter(|u| !new.contains_key(u.id.as_str())).cloned().collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(path: &str, category: &str) -> UnitInfo {
        let path: Vec<String> = path.split('/').map(str::to_string).collect();
        UnitInfo {
            id: path.last().unwrap().clone(),
            name: String::new(),
            level: "branch".into(),
            category: Some(category.into()),
            path,
            since: None,
        }
    }

    #[test]
    fn changes_name_what_was_added_dissolved_moved_and_regraded() {
        let before = vec![unit("D/C1/B1", "community"), unit("D/C1/B2", "community"), unit("D/C1/B3", "rural")];
        let after = vec![unit("D/C5/B1", "community"), unit("D/C1/B3", "community"), unit("D/C1/B4", "community")];
        let c = changes(&before, &after);
        assert_eq!(c.added.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), ["B4"]);
        assert_eq!(c.dissolved.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), ["B2"]);
        assert_eq!(c.moved.iter().map(|(u, o)| (u.id.as_str(), o.parent())).collect::<Vec<_>>(), [("B1", Some("C1"))]);
        assert_eq!(c.regraded.len(), 1);
        assert_eq!(changes(&after, &after), Changes::default());
    }
}
