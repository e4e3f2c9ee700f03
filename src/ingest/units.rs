//! The unit tree: merging a new units export into the warehouse's units, and checking that the
//! result is one tree (one district root, every parent known, no cycles, not too deep).
//!
//! A unit that would break the tree is quarantined with the rule it breaks; its children then
//! fail the parent check in turn, so nothing dangles. The earlier version of a unit stays when
//! its replacement is refused.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::Result;
use polars::prelude::*;

use super::validate::{Rejection, Rule};
use crate::model::Level;

/// The deepest tree accepted (root at depth 0). The district grid has four levels; a little
/// room is left for sub-branches, and the Spark SQL roll-up unrolls this many levels.
pub const MAX_DEPTH: usize = 7;

/// Where a unit row came from: the warehouse, or row `row` of input file `file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Existing,
    Incoming { file: usize, row: usize },
}

/// One unit with its provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitRow {
    pub unit_id: String,
    pub unit_name: String,
    pub parent_id: Option<String>,
    pub level: String,
    pub category: Option<String>,
    pub source_file: String,
    pub source_line: i64,
    pub source_mtime: i64,
    pub ingest_id: String,
    pub origin: Origin,
}

impl UnitRow {
    fn order(&self) -> (i64, &str, i64) {
        (self.source_mtime, &self.source_file, self.source_line)
    }
}

/// A unit refused by the tree check, with the reason.
#[derive(Debug, Clone)]
pub struct TreeRejection {
    pub file: usize,
    pub reason: Rejection,
}

/// The outcome of merging units.
#[derive(Debug, Default)]
pub struct UnitsMerge {
    pub units: Vec<UnitRow>,
    pub rejections: Vec<TreeRejection>,
    /// Incoming rows dropped because another version of the unit wins, per file.
    pub duplicates: HashMap<usize, u64>,
    /// Warehouse rows replaced, per file that replaced them.
    pub superseded: HashMap<usize, u64>,
    /// Incoming rows that are in the final table, per file.
    pub loaded: HashMap<usize, u64>,
}

/// Merge incoming unit rows (in any order) into the existing ones and check the tree.
pub fn merge_units(existing: Vec<UnitRow>, incoming: Vec<UnitRow>) -> UnitsMerge {
    let mut out = UnitsMerge::default();
    // Latest version per id among the incoming rows.
    let mut winners: BTreeMap<String, UnitRow> = BTreeMap::new();
    let mut sorted = incoming;
    sorted.sort_by(|a, b| a.order().cmp(&b.order()));
    for row in sorted {
        if let Some(prev) = winners.insert(row.unit_id.clone(), row)
            && let Origin::Incoming { file, .. } = prev.origin
        {
            *out.duplicates.entry(file).or_default() += 1;
        }
    }
    let existing: BTreeMap<String, UnitRow> = existing.into_iter().map(|u| (u.unit_id.clone(), u)).collect();
    let mut merged = existing.clone();
    let mut replaced_existing: HashMap<String, usize> = HashMap::new();
    for (id, row) in winners {
        let Origin::Incoming { file, .. } = row.origin else { continue };
        match merged.get(&id) {
            Some(old) if old.order() > row.order() => {
                *out.duplicates.entry(file).or_default() += 1;
            }
            Some(_) => {
                replaced_existing.insert(id.clone(), file);
                merged.insert(id, row);
            }
            None => {
                merged.insert(id, row);
            }
        }
    }
    // Refuse incoming rows until the tree holds; each round can orphan more rows.
    loop {
        let bad = tree_violations(&merged);
        if bad.is_empty() {
            break;
        }
        for (id, rule, column, message) in bad {
            let row = merged.remove(&id).expect("violating unit is present");
            let Origin::Incoming { file, .. } = row.origin else {
                unreachable!("the warehouse's own units always form a valid tree")
            };
            let value = match column {
                "parent_id" => row.parent_id.clone().unwrap_or_default(),
                "category" => row.category.clone().unwrap_or_default(),
                "level" => row.level.clone(),
                _ => row.unit_id.clone(),
            };
            out.rejections.push(TreeRejection {
                file,
                reason: Rejection { line: row.source_line as u64, column: column.to_string(), value, rule, message },
            });
            if replaced_existing.remove(&id).is_some() {
                merged.insert(id.clone(), existing[&id].clone());
            }
        }
    }
    for file in replaced_existing.values() {
        *out.superseded.entry(*file).or_default() += 1;
    }
    for row in merged.values() {
        if let Origin::Incoming { file, .. } = row.origin {
            *out.loaded.entry(file).or_default() += 1;
        }
    }
    out.units = merged.into_values().collect();
    out
}

/// Units that break the tree, as (unit_id, rule, column, message). Only incoming rows are
/// blamed: the warehouse's tree was valid before this merge.
fn tree_violations(units: &BTreeMap<String, UnitRow>) -> Vec<(String, Rule, &'static str, String)> {
    let mut bad = Vec::new();
    let incoming = |u: &UnitRow| matches!(u.origin, Origin::Incoming { .. });
    let roots: Vec<&UnitRow> = units.values().filter(|u| u.parent_id.is_none()).collect();
    let existing_root = roots.iter().find(|u| !incoming(u)).map(|u| u.unit_id.clone());
    for r in &roots {
        if !incoming(r) {
            continue;
        }
        if let Some(er) = &existing_root {
            bad.push((
                r.unit_id.clone(),
                Rule::Tree,
                "parent_id",
                format!("a second root: the tree's root is already '{er}'; give '{}' a parent", r.unit_id),
            ));
        } else if roots.len() > 1 {
            let names: Vec<&str> = roots.iter().map(|u| u.unit_id.as_str()).collect();
            bad.push((
                r.unit_id.clone(),
                Rule::Tree,
                "parent_id",
                format!("{} roots ({}): the tree needs exactly one", roots.len(), names.join(", ")),
            ));
        } else if r.level != Level::District.code() {
            bad.push((
                r.unit_id.clone(),
                Rule::Tree,
                "level",
                format!("the root must be the district, not a {}", r.level),
            ));
        }
    }
    if !bad.is_empty() {
        return bad;
    }
    for u in units.values().filter(|u| incoming(u)) {
        let Some(p) = &u.parent_id else { continue };
        if u.level == Level::District.code() {
            bad.push((u.unit_id.clone(), Rule::Tree, "level", "only the root may be a district".into()));
        } else if u.category.is_none() {
            bad.push((
                u.unit_id.clone(),
                Rule::Required,
                "category",
                "category is required for every unit but the district root".into(),
            ));
        } else if !units.contains_key(p) {
            bad.push((
                u.unit_id.clone(),
                Rule::Reference,
                "parent_id",
                format!("parent '{p}' is not in the units table"),
            ));
        }
    }
    if !bad.is_empty() {
        return bad;
    }
    // Cycles and depth: walk up from every unit.
    let mut blamed: HashSet<String> = HashSet::new();
    for u in units.values() {
        let mut seen: Vec<&str> = vec![&u.unit_id];
        let mut cur = u;
        while let Some(p) = &cur.parent_id {
            if seen.contains(&p.as_str()) {
                // Blame the incoming members of the cycle.
                let start = seen.iter().position(|s| s == p).expect("in path");
                for id in &seen[start..] {
                    if incoming(&units[*id]) && blamed.insert(id.to_string()) {
                        let cycle = seen[start..].join(" → ");
                        bad.push((
                            id.to_string(),
                            Rule::Tree,
                            "parent_id",
                            format!("the parents form a cycle: {cycle} → {p}"),
                        ));
                    }
                }
                break;
            }
            seen.push(p);
            cur = &units[p.as_str()];
        }
        if seen.len() > MAX_DEPTH + 1 && incoming(u) && blamed.insert(u.unit_id.clone()) {
            bad.push((
                u.unit_id.clone(),
                Rule::Tree,
                "parent_id",
                format!("the unit is {} levels below the root; at most {MAX_DEPTH} are allowed", seen.len() - 1),
            ));
        }
    }
    bad
}

/// The path of ids from the root to each unit, e.g. `D/T1/C1/B1`.
pub fn paths(units: &[UnitRow]) -> HashMap<String, Vec<String>> {
    let by_id: HashMap<&str, &UnitRow> = units.iter().map(|u| (u.unit_id.as_str(), u)).collect();
    let mut out = HashMap::new();
    for u in units {
        let mut path = vec![u.unit_id.clone()];
        let mut cur = u;
        while let Some(p) = &cur.parent_id {
            path.push(p.clone());
            match by_id.get(p.as_str()) {
                Some(next) if path.len() <= MAX_DEPTH + 2 => cur = next,
                _ => break,
            }
        }
        path.reverse();
        out.insert(u.unit_id.clone(), path);
    }
    out
}

/// The units table as stored: the input columns, `depth` and `path` (derived from the tree, so
/// readers can roll up without recursion), and provenance.
pub fn units_frame(units: &[UnitRow]) -> Result<DataFrame> {
    let paths = paths(units);
    let mut sorted: Vec<&UnitRow> = units.iter().collect();
    sorted.sort_by(|a, b| paths[&a.unit_id].cmp(&paths[&b.unit_id]));
    let col_s = |name: &str, f: &dyn Fn(&UnitRow) -> Option<String>| -> Column {
        Column::new(name.into(), sorted.iter().map(|u| f(u)).collect::<Vec<Option<String>>>())
    };
    let height = sorted.len();
    let mtimes: Vec<i64> = sorted.iter().map(|u| u.source_mtime).collect();
    let df = DataFrame::new(
        height,
        vec![
            col_s("unit_id", &|u| Some(u.unit_id.clone())),
            col_s("unit_name", &|u| Some(u.unit_name.clone())),
            col_s("parent_id", &|u| u.parent_id.clone()),
            col_s("level", &|u| Some(u.level.clone())),
            col_s("category", &|u| u.category.clone()),
            Column::new(
                "depth".into(),
                sorted.iter().map(|u| paths[&u.unit_id].len() as i32 - 1).collect::<Vec<i32>>(),
            ),
            col_s("path", &|u| Some(paths[&u.unit_id].join("/"))),
            col_s("source_file", &|u| Some(u.source_file.clone())),
            Column::new("source_line".into(), sorted.iter().map(|u| u.source_line).collect::<Vec<i64>>()),
            Column::new("source_mtime".into(), mtimes).cast(&DataType::Datetime(TimeUnit::Microseconds, None))?,
            col_s("ingest_id", &|u| Some(u.ingest_id.clone())),
        ],
    )?;
    Ok(df)
}

/// Read the stored units table back into rows.
pub fn units_from_frame(df: &DataFrame) -> Result<Vec<UnitRow>> {
    let s = |name: &str| -> Result<StringChunked> { Ok(df.column(name)?.str()?.clone()) };
    let (id, name, parent, level, cat, file, ingest) = (
        s("unit_id")?,
        s("unit_name")?,
        s("parent_id")?,
        s("level")?,
        s("category")?,
        s("source_file")?,
        s("ingest_id")?,
    );
    let line = df.column("source_line")?.i64()?.clone();
    let mtime = df.column("source_mtime")?.cast(&DataType::Int64)?;
    let mtime = mtime.i64()?;
    Ok((0..df.height())
        .map(|i| UnitRow {
            unit_id: id.get(i).unwrap_or_default().to_string(),
            unit_name: name.get(i).unwrap_or_default().to_string(),
            parent_id: parent.get(i).map(str::to_string),
            level: level.get(i).unwrap_or_default().to_string(),
            category: cat.get(i).map(str::to_string),
            source_file: file.get(i).unwrap_or_default().to_string(),
            source_line: line.get(i).unwrap_or_default(),
            source_mtime: mtime.get(i).unwrap_or_default(),
            ingest_id: ingest.get(i).unwrap_or_default().to_string(),
            origin: Origin::Existing,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_units_frame_has_the_columns_of_the_model() {
        assert_eq!(units_frame(&[]).unwrap().schema().as_ref(), &crate::model::Table::Units.schema());
    }

    fn u(id: &str, parent: Option<&str>, level: &str, file: usize, line: i64) -> UnitRow {
        UnitRow {
            unit_id: id.into(),
            unit_name: format!("{id} 名称"),
            parent_id: parent.map(Into::into),
            level: level.into(),
            category: if parent.is_some() { Some("community".into()) } else { None },
            source_file: format!("f{file}.csv"),
            source_line: line,
            source_mtime: 1000 + file as i64,
            ingest_id: "i".into(),
            origin: Origin::Incoming { file, row: line as usize },
        }
    }

    fn rejected(m: &UnitsMerge) -> Vec<(String, &'static str)> {
        let mut v: Vec<_> = m.rejections.iter().map(|r| (r.reason.value.clone(), r.reason.rule.name())).collect();
        v.sort();
        v
    }

    #[test]
    fn a_valid_tree_loads_whole() {
        let m = merge_units(
            vec![],
            vec![
                u("D", None, "district", 0, 2),
                u("T", Some("D"), "township", 0, 3),
                u("B", Some("T"), "branch", 0, 4),
            ],
        );
        assert!(m.rejections.is_empty());
        assert_eq!(m.loaded[&0], 3);
        assert_eq!(paths(&m.units)["B"], vec!["D", "T", "B"]);
    }

    #[test]
    fn unknown_parent_cascades_to_children() {
        let m = merge_units(
            vec![],
            vec![
                u("D", None, "district", 0, 2),
                u("T", Some("X"), "township", 0, 3),
                u("B", Some("T"), "branch", 0, 4),
            ],
        );
        // T's parent X is unknown; then B's parent T is gone too. Values name the parent.
        assert_eq!(rejected(&m), vec![("T".into(), "reference"), ("X".into(), "reference")]);
        assert_eq!(m.units.len(), 1);
    }

    #[test]
    fn cycles_and_second_roots_are_refused() {
        let m = merge_units(
            vec![],
            vec![
                u("D", None, "district", 0, 2),
                u("A", Some("B"), "township", 0, 3),
                u("B", Some("A"), "township", 0, 4),
            ],
        );
        assert_eq!(rejected(&m), vec![("A".into(), "tree"), ("B".into(), "tree")]);
        let base = merge_units(vec![], vec![u("D", None, "district", 0, 2)]).units;
        let existing: Vec<UnitRow> = base
            .into_iter()
            .map(|mut r| {
                r.origin = Origin::Existing;
                r
            })
            .collect();
        let m = merge_units(existing, vec![u("E", None, "district", 1, 2)]);
        assert_eq!(rejected(&m), vec![("".into(), "tree")]);
        assert_eq!(m.units.len(), 1);
    }

    #[test]
    fn a_later_export_replaces_and_a_refused_one_restores() {
        let first =
            merge_units(vec![], vec![u("D", None, "district", 0, 2), u("T", Some("D"), "township", 0, 3)]).units;
        let existing: Vec<UnitRow> = first
            .into_iter()
            .map(|mut r| {
                r.origin = Origin::Existing;
                r
            })
            .collect();
        let mut renamed = u("T", Some("D"), "township", 1, 2);
        renamed.unit_name = "新名称".into();
        let m = merge_units(existing.clone(), vec![renamed]);
        assert_eq!(m.superseded[&1], 1);
        assert_eq!(m.units.iter().find(|x| x.unit_id == "T").unwrap().unit_name, "新名称");
        // A replacement that makes T its own grandparent is refused; the old T stays.
        let m = merge_units(existing, vec![u("T", Some("T2"), "township", 1, 2), u("T2", Some("T"), "township", 1, 3)]);
        assert_eq!(m.rejections.len(), 2);
        assert_eq!(m.units.iter().find(|x| x.unit_id == "T").unwrap().parent_id.as_deref(), Some("D"));
        assert!(m.superseded.is_empty());
    }
}
