//! The unit tree and its history: merging a units export into the stored versions of each
//! unit, and checking that the tree of every day is one tree.
//!
//! A unit has versions, each valid from a first day to a last day (open at either end when
//! absent). A row that declares 生效日期/撤销日期 is a version with those days; a row that does not
//! and differs from the unit's version of its export's effective day (the first day of the
//! export's month, or `--effective`) starts a new version on that day and closes the one before
//! the day before. A unit new to a warehouse that already has units starts on the effective day
//! too, so that periods already computed keep their tree; the first units export opens every
//! unit from the start of time. A complete export closes the units it omits from its effective
//! day (dissolved, never deleted).
//!
//! A version that would break the tree on any day (a second root, an unknown parent or one not
//! valid then, a cycle, too deep) is quarantined with the rule it breaks and the unit keeps its
//! stored history; when a unit's change leaves a stored child without its parent, the change
//! is refused, naming the child.

mod check;
mod history;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::NaiveDate;

use super::validate::{Rejection, Rule};
pub use history::{history_frame, rows_of, units_frame, versions_from_frame};

/// Where a unit row came from: the warehouse, or row `row` of input file `file`, whose export
/// takes effect on `effective`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Existing,
    Incoming { file: usize, row: usize, effective: NaiveDate },
}

/// One version of a unit, with its provenance. For an incoming row, `valid_from` and
/// `valid_to` are what the export declared.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitRow {
    pub unit_id: String,
    pub unit_name: String,
    pub parent_id: Option<String>,
    pub level: String,
    pub category: Option<String>,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
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

    /// The first day, `NaiveDate::MIN` when open.
    fn from(&self) -> NaiveDate {
        self.valid_from.unwrap_or(NaiveDate::MIN)
    }

    /// The last day, `NaiveDate::MAX` when open.
    fn to(&self) -> NaiveDate {
        self.valid_to.unwrap_or(NaiveDate::MAX)
    }

    fn covers(&self, day: NaiveDate) -> bool {
        self.from() <= day && day <= self.to()
    }

    /// Same name, parent, level and category: a re-export of the version, not a new one.
    fn same_unit_as(&self, other: &UnitRow) -> bool {
        self.unit_name == other.unit_name
            && self.parent_id == other.parent_id
            && self.level == other.level
            && self.category == other.category
    }

    fn incoming_at(&self) -> Option<(usize, usize)> {
        match self.origin {
            Origin::Incoming { file, row, .. } => Some((file, row)),
            Origin::Existing => None,
        }
    }

    fn is_incoming(&self) -> bool {
        self.incoming_at().is_some()
    }
}

/// A day as written in messages; the open ends have no date.
fn day_text(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

/// The day before, kept open-ended at the start of time.
fn day_before(day: NaiveDate) -> Option<NaiveDate> {
    day.pred_opt().filter(|d| *d > NaiveDate::MIN)
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
    /// Every version of every unit, sorted by unit and first day.
    pub units: Vec<UnitRow>,
    pub rejections: Vec<TreeRejection>,
    /// Incoming rows dropped because another version of the unit wins, per file.
    pub duplicates: HashMap<usize, u64>,
    /// Stored versions replaced in place (the same first day), per file that replaced them.
    pub superseded: HashMap<usize, u64>,
    /// Incoming rows that are in the final table, per file.
    pub loaded: HashMap<usize, u64>,
    /// Units a complete export closed, with the day they were closed from.
    pub dissolved: Vec<(String, NaiveDate)>,
}

/// What a units export says about the units it omits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Coverage {
    /// Units it omits stay as they are (an export of one township, a correction).
    #[default]
    Partial,
    /// It lists every unit: those it omits are dissolved from its effective day.
    Complete,
}

/// The versions of each unit, by unit id, sorted by first day.
type Timelines = BTreeMap<String, Vec<UnitRow>>;

/// Merge incoming unit rows (in any order) into the stored versions and check the tree of
/// every day.
pub fn merge_units(existing: Vec<UnitRow>, incoming: Vec<UnitRow>, coverage: Coverage) -> UnitsMerge {
    let first_load = existing.is_empty();
    let mut out = UnitsMerge::default();
    let winners = latest_per_version(incoming, first_load, &mut out.duplicates);
    let mut stored: Timelines = BTreeMap::new();
    for u in existing {
        stored.entry(u.unit_id.clone()).or_default().push(u);
    }
    for tl in stored.values_mut() {
        tl.sort_by_key(UnitRow::from);
    }
    let mut refused: BTreeMap<(usize, usize), Rejection> = BTreeMap::new();
    let mut kept: BTreeSet<String> = BTreeSet::new();
    let built = loop {
        let built = Build::run(&stored, &winners, &refused, &kept, coverage, first_load);
        let blamed = blame(&built, &winners, &refused);
        if blamed.refuse.is_empty() && blamed.keep.is_empty() {
            break built;
        }
        refused.extend(blamed.refuse);
        kept.extend(blamed.keep);
    };
    out.superseded = built.superseded;
    for (at, reason) in refused.iter().chain(&built.overlaps) {
        out.rejections.push(TreeRejection { file: at.0, reason: reason.clone() });
    }
    let present: HashSet<(usize, usize)> = built.lines.values().flatten().filter_map(UnitRow::incoming_at).collect();
    for row in &winners {
        let at = row.incoming_at().expect("incoming");
        if refused.contains_key(&at) || built.overlaps.contains_key(&at) {
            continue;
        }
        let tally = if present.contains(&at) { &mut out.loaded } else { &mut out.duplicates };
        *tally.entry(at.0).or_default() += 1;
    }
    out.dissolved = built.dissolved;
    out.units = built.lines.into_values().flatten().collect();
    out
}

/// The day an incoming row's version starts: the declared first day, or the export's
/// effective day; open from the start of time when the warehouse has no units yet.
fn start_of(row: &UnitRow, first_load: bool) -> NaiveDate {
    match (row.valid_from, row.origin) {
        (Some(d), _) => d,
        (None, _) if first_load => NaiveDate::MIN,
        (None, Origin::Incoming { effective, .. }) => effective,
        (None, Origin::Existing) => NaiveDate::MIN,
    }
}

/// The latest incoming row (by file time, name, line) of each unit and first day; the others
/// count as duplicates of their file. Returned in that order, so later exports apply last.
fn latest_per_version(incoming: Vec<UnitRow>, first_load: bool, duplicates: &mut HashMap<usize, u64>) -> Vec<UnitRow> {
    let mut sorted = incoming;
    sorted.sort_by(|a, b| a.order().cmp(&b.order()));
    let mut winners: BTreeMap<(String, NaiveDate), UnitRow> = BTreeMap::new();
    for row in sorted {
        let key = (row.unit_id.clone(), start_of(&row, first_load));
        if let Some(prev) = winners.insert(key, row)
            && let Some((file, _)) = prev.incoming_at()
        {
            *duplicates.entry(file).or_default() += 1;
        }
    }
    let mut rows: Vec<UnitRow> = winners.into_values().collect();
    rows.sort_by(|a, b| a.order().cmp(&b.order()));
    rows
}

/// One attempt at the merged history, leaving out the rows refused so far.
struct Build {
    lines: Timelines,
    /// Incoming rows whose declared days overlap another version of their unit.
    overlaps: BTreeMap<(usize, usize), Rejection>,
    superseded: HashMap<usize, u64>,
    dissolved: Vec<(String, NaiveDate)>,
    /// Incoming rows that declared their last day.
    declared_to: HashSet<(usize, usize)>,
}

impl Build {
    fn run(
        stored: &Timelines,
        winners: &[UnitRow],
        refused: &BTreeMap<(usize, usize), Rejection>,
        kept: &BTreeSet<String>,
        coverage: Coverage,
        first_load: bool,
    ) -> Build {
        let mut b = Build {
            lines: stored.clone(),
            overlaps: BTreeMap::new(),
            superseded: HashMap::new(),
            dissolved: Vec::new(),
            declared_to: HashSet::new(),
        };
        for row in winners {
            if !refused.contains_key(&row.incoming_at().expect("incoming")) {
                b.apply(row, first_load);
            }
        }
        if coverage == Coverage::Complete {
            b.dissolve_omitted(winners, kept);
        }
        b
    }

    /// Put one incoming row into its unit's timeline.
    fn apply(&mut self, row: &UnitRow, first_load: bool) {
        let start = start_of(row, first_load);
        let (file, _) = row.incoming_at().expect("incoming");
        if row.valid_to.is_some() {
            self.declared_to.insert(row.incoming_at().expect("incoming"));
        }
        let tl = self.lines.entry(row.unit_id.clone()).or_default();
        let mut version = row.clone();
        version.valid_from = (start > NaiveDate::MIN).then_some(start);
        match tl.iter().position(|v| v.covers(start)) {
            Some(i) if tl[i].same_unit_as(row) && row.valid_to.is_none_or(|t| Some(t) == tl[i].valid_to) => {
                // A re-export of the version: only its provenance changes, if it is newer.
                if tl[i].order() < row.order() {
                    version.valid_from = tl[i].valid_from;
                    version.valid_to = tl[i].valid_to;
                    if !tl[i].is_incoming() {
                        *self.superseded.entry(file).or_default() += 1;
                    }
                    tl[i] = version;
                }
            }
            Some(i) if tl[i].from() == start => {
                if tl[i].order() > row.order() {
                    return;
                }
                version.valid_to = row.valid_to.or(tl[i].valid_to);
                if let Some(r) = overlap(tl, &version, Some(i)) {
                    self.overlaps.insert(row.incoming_at().expect("incoming"), r);
                    return;
                }
                if !tl[i].is_incoming() {
                    *self.superseded.entry(file).or_default() += 1;
                }
                tl[i] = version;
            }
            Some(i) => {
                version.valid_to = row.valid_to.or(tl[i].valid_to);
                // Two declared versions that overlap: neither may silently shorten the other.
                let declared_end = tl[i].incoming_at().is_some_and(|at| self.declared_to.contains(&at));
                let clash = if declared_end && row.valid_from.is_some() { Some(i) } else { None };
                if let Some(r) =
                    clash.map(|i| overlap_with(&version, &tl[i])).or_else(|| overlap(tl, &version, Some(i)))
                {
                    self.overlaps.insert(row.incoming_at().expect("incoming"), r);
                    return;
                }
                tl[i].valid_to = day_before(start);
                tl.insert(i + 1, version);
            }
            None => {
                let next = tl.iter().find(|v| v.from() > start).map(UnitRow::from);
                version.valid_to = row.valid_to.or(next.and_then(day_before));
                if let Some(r) = overlap(tl, &version, None) {
                    self.overlaps.insert(row.incoming_at().expect("incoming"), r);
                    return;
                }
                tl.push(version);
                tl.sort_by_key(UnitRow::from);
            }
        }
    }

    /// A complete export: the units it omits that are valid on its effective day are closed
    /// the day before (the latest effective day of the call's exports). `kept` are units whose
    /// closing would orphan a unit the export could not move.
    fn dissolve_omitted(&mut self, winners: &[UnitRow], kept: &BTreeSet<String>) {
        let Some(effective) = winners
            .iter()
            .filter_map(|r| match r.origin {
                Origin::Incoming { effective, .. } => Some(effective),
                Origin::Existing => None,
            })
            .max()
        else {
            return;
        };
        let listed: HashSet<&str> = winners.iter().map(|r| r.unit_id.as_str()).collect();
        for (id, tl) in &mut self.lines {
            if listed.contains(id.as_str()) || kept.contains(id) {
                continue;
            }
            if let Some(v) = tl.iter_mut().find(|v| v.covers(effective) && v.from() < effective) {
                v.valid_to = day_before(effective);
                self.dissolved.push((id.clone(), effective));
            }
        }
    }
}

/// A version that overlaps another of its unit (other than the one at `replacing`, which it
/// closes or replaces), as a rejection.
fn overlap(tl: &[UnitRow], version: &UnitRow, replacing: Option<usize>) -> Option<Rejection> {
    let other = tl
        .iter()
        .enumerate()
        .filter(|(j, _)| Some(*j) != replacing)
        .map(|(_, v)| v)
        .find(|v| v.from() <= version.to() && version.from() <= v.to() && v.from() > version.from())?;
    Some(overlap_with(version, other))
}

/// The rejection of `version` for overlapping `other`, a version of the same unit.
fn overlap_with(version: &UnitRow, other: &UnitRow) -> Rejection {
    let (column, value) = match version.valid_to {
        Some(t) if other.from() > version.from() => ("valid_to", day_text(t)),
        _ => ("valid_from", version.valid_from.map(day_text).unwrap_or_default()),
    };
    let span = |v: &UnitRow| {
        let from = v.valid_from.map_or("the start".to_string(), day_text);
        let to = v.valid_to.map_or("open".to_string(), day_text);
        format!("{from} to {to}")
    };
    Rejection {
        line: version.source_line as u64,
        column: column.into(),
        value,
        rule: Rule::Tree,
        message: format!(
            "this version of '{}' ({}) overlaps its version {} (line {}); a unit has one version on any day",
            version.unit_id,
            span(version),
            span(other),
            other.source_line
        ),
    }
}

/// What to change before the next build.
#[derive(Default)]
struct Blame {
    /// Incoming rows to refuse, with the reason.
    refuse: BTreeMap<(usize, usize), Rejection>,
    /// Units a complete export must not close: a stored unit still hangs below them.
    keep: Vec<String>,
}

/// What to change for the tree's violations on any day. A violation by an incoming version
/// refuses it; a stored unit left without its parent refuses the parent's incoming rows (the
/// move or the closing that orphaned it), or keeps the parent open when a complete export
/// closed it.
fn blame(built: &Build, winners: &[UnitRow], refused: &BTreeMap<(usize, usize), Rejection>) -> Blame {
    let mut out = Blame::default();
    for v in check::violations(&built.lines) {
        let Some(row) = built.lines[&v.unit_id].iter().find(|r| r.covers(v.day)) else { continue };
        if let Some(at) = row.incoming_at() {
            let on = if v.day > NaiveDate::MIN && !v.message.contains(&day_text(v.day)) {
                format!(" (on {})", day_text(v.day))
            } else {
                String::new()
            };
            let value = match v.column {
                "parent_id" => row.parent_id.clone().unwrap_or_default(),
                "category" => row.category.clone().unwrap_or_default(),
                "level" => row.level.clone(),
                _ => row.unit_id.clone(),
            };
            out.refuse.entry(at).or_insert(Rejection {
                line: row.source_line as u64,
                column: v.column.to_string(),
                value,
                rule: v.rule,
                message: format!("{}{on}", v.message),
            });
            continue;
        }
        let Some(parent) = v.orphaned_by.as_deref() else { continue };
        if built.dissolved.iter().any(|(id, _)| id == parent) {
            out.keep.push(parent.to_string());
            continue;
        }
        for w in winners.iter().filter(|w| w.unit_id == parent) {
            let at = w.incoming_at().expect("incoming");
            if refused.contains_key(&at) {
                continue;
            }
            out.refuse.entry(at).or_insert(Rejection {
                line: w.source_line as u64,
                column: "unit_id".into(),
                value: parent.to_string(),
                rule: Rule::Tree,
                message: format!(
                    "this change leaves unit '{}' without its parent '{parent}' on {}; move or dissolve its units in the same export",
                    v.unit_id,
                    day_text(v.day)
                ),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests;
