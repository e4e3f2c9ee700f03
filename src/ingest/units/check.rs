//! The tree rules, checked on every day the tree changes: one district root, every parent
//! known and valid that day, no cycles, not too deep.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::NaiveDate;

use super::{Timelines, UnitRow, day_text};
use crate::ingest::validate::Rule;
use crate::model::Level;

/// The deepest tree accepted (root at depth 0). The district grid has four levels; a little
/// room is left for sub-branches.
pub const MAX_DEPTH: usize = 7;

/// A unit that breaks the tree on `day`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Violation {
    pub unit_id: String,
    pub day: NaiveDate,
    pub rule: Rule,
    pub column: &'static str,
    pub message: String,
    /// For a unit whose parent is not valid that day: the parent, whose change is to blame
    /// when the unit itself did not change.
    pub orphaned_by: Option<String>,
}

/// The days on which the tree may change: the start of time and each version's first day and
/// the day after its last.
pub(super) fn change_days(lines: &Timelines) -> Vec<NaiveDate> {
    let mut days: BTreeSet<NaiveDate> = BTreeSet::from([NaiveDate::MIN]);
    for v in lines.values().flatten() {
        days.insert(v.from());
        if let Some(after) = v.valid_to.and_then(|t| t.succ_opt()) {
            days.insert(after);
        }
    }
    days.into_iter().collect()
}

/// The version of each unit valid on `day`.
pub(super) fn tree_on(lines: &Timelines, day: NaiveDate) -> BTreeMap<&str, &UnitRow> {
    lines.iter().filter_map(|(id, tl)| tl.iter().find(|v| v.covers(day)).map(|v| (id.as_str(), v))).collect()
}

/// Every violation of the tree rules, on each day the tree changes. Each unit is reported once,
/// on the first day it breaks a rule.
pub(super) fn violations(lines: &Timelines) -> Vec<Violation> {
    let mut out: Vec<Violation> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for day in change_days(lines) {
        for v in violations_on(&tree_on(lines, day), day, lines) {
            if seen.insert(v.unit_id.clone()) {
                out.push(v);
            }
        }
    }
    out
}

/// The violations of one day's tree. Roots first, then parents, then cycles and depth: a
/// later rule is only meaningful once the earlier ones hold. Only incoming units are blamed
/// for roots, cycles and depth; a stored unit whose parent is gone is reported with that parent,
/// since the parent's change is what broke it.
fn violations_on(units: &BTreeMap<&str, &UnitRow>, day: NaiveDate, lines: &Timelines) -> Vec<Violation> {
    let at = |u: &UnitRow, rule: Rule, column: &'static str, message: String| Violation {
        unit_id: u.unit_id.clone(),
        day,
        rule,
        column,
        message,
        orphaned_by: None,
    };
    let mut bad = Vec::new();
    let roots: Vec<&UnitRow> = units.values().copied().filter(|u| u.parent_id.is_none()).collect();
    let existing_root = roots.iter().find(|u| !u.is_incoming()).map(|u| u.unit_id.clone());
    for r in roots.iter().filter(|r| r.is_incoming()) {
        if let Some(er) = &existing_root {
            let m = format!("a second root: the tree's root is already '{er}'; give '{}' a parent", r.unit_id);
            bad.push(at(r, Rule::Tree, "parent_id", m));
        } else if roots.len() > 1 {
            let names: Vec<&str> = roots.iter().map(|u| u.unit_id.as_str()).collect();
            let m = format!("{} roots ({}): the tree needs exactly one", roots.len(), names.join(", "));
            bad.push(at(r, Rule::Tree, "parent_id", m));
        } else if r.level != Level::District.code() {
            bad.push(at(r, Rule::Tree, "level", format!("the root must be the district, not a {}", r.level)));
        }
    }
    if !bad.is_empty() {
        return bad;
    }
    for u in units.values().copied() {
        let Some(p) = &u.parent_id else { continue };
        if !u.is_incoming() {
            if !units.contains_key(p.as_str()) {
                let mut v = at(u, Rule::Reference, "parent_id", format!("parent '{p}' is not valid"));
                v.orphaned_by = Some(p.clone());
                bad.push(v);
            }
            continue;
        }
        if u.level == Level::District.code() {
            bad.push(at(u, Rule::Tree, "level", "only the root may be a district".into()));
        } else if u.category.is_none() {
            let m = "category is required for every unit but the district root".to_string();
            bad.push(at(u, Rule::Required, "category", m));
        } else if !units.contains_key(p.as_str()) {
            let m = match lines.get(p.as_str()) {
                None => format!("parent '{p}' is not in the units table"),
                Some(tl) => format!("parent '{p}' is not valid on {} ({})", day_text(day), validity(tl)),
            };
            bad.push(at(u, Rule::Reference, "parent_id", m));
        }
    }
    if !bad.is_empty() {
        return bad;
    }
    // Cycles and depth: walk up from every unit.
    let mut blamed: HashSet<&str> = HashSet::new();
    for u in units.values().copied() {
        let mut seen: Vec<&str> = vec![&u.unit_id];
        let mut cur = u;
        while let Some(p) = &cur.parent_id {
            if seen.contains(&p.as_str()) {
                // Blame the incoming members of the cycle.
                let start = seen.iter().position(|s| s == p).expect("in path");
                let cycle = seen[start..].join(" → ");
                for id in &seen[start..] {
                    let member = units[*id];
                    if member.is_incoming() && blamed.insert(id) {
                        let m = format!("the parents form a cycle: {cycle} → {p}");
                        bad.push(at(member, Rule::Tree, "parent_id", m));
                    }
                }
                break;
            }
            seen.push(p);
            cur = units[p.as_str()];
        }
        if seen.len() > MAX_DEPTH + 1 && u.is_incoming() && blamed.insert(&u.unit_id) {
            let m = format!("the unit is {} levels below the root; at most {MAX_DEPTH} are allowed", seen.len() - 1);
            bad.push(at(u, Rule::Tree, "parent_id", m));
        }
    }
    bad
}

/// A unit's days of validity, for messages: "valid 2025-01-01 to 2025-12-31".
fn validity(tl: &[UnitRow]) -> String {
    let spans: Vec<String> = tl
        .iter()
        .map(|v| {
            let from = v.valid_from.map(day_text).unwrap_or_else(|| "the start".into());
            let to = v.valid_to.map(day_text).unwrap_or_else(|| "open".into());
            format!("{from} to {to}")
        })
        .collect();
    format!("valid {}", spans.join(", "))
}
