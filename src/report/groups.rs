//! Long lists of units printed per township. Past [`GROUP_OVER`] units a list is a summary line
//! per township (街道/镇) with its units folded under it (folded away on paper); the workbook
//! holds every row. A district of a thousand units then prints its overdue items, its project
//! tables and its weak candidates on a page or two each, not one row per unit.

use std::collections::HashMap;

use serde::Serialize;

use crate::model::Status;
use crate::review::Pack;

/// The longest list printed one row per unit.
pub const GROUP_OVER: usize = 40;

/// The most units a list folds under its townships' summaries; past it (a province: tens of
/// thousands) the page has the summaries alone, and the workbook every unit.
pub const DETAIL_OVER: usize = 2_000;

/// How many townships' summary lines are printed; the others fold away on paper (the template
/// says so, and uses the same number).
pub const PRINTED: usize = 20;

/// What units directly under the district are grouped as.
const DIRECT: &str = "区直属";

/// One township's part of a list.
#[derive(Debug, Serialize)]
pub struct Group<T> {
    pub name: String,
    /// The summary line's cells, after the name.
    pub summary: Vec<String>,
    /// Which cells are counts, set right as numbers are.
    pub counts: Vec<bool>,
    /// Its units, folded under the summary; none past [`DETAIL_OVER`] units in the list.
    pub rows: Vec<T>,
    /// How many units it has.
    pub units: usize,
}

/// `rows`, each with its unit's id: as they are when there are at most [`GROUP_OVER`], else
/// grouped by township (the rows dropped past [`DETAIL_OVER`]), each group summarised by `summary`, the groups of most `weight`
/// first (in the tree's order among equals: the report prints the first [`PRINTED`] of a
/// province's hundred townships). Exactly one of the two is not empty.
pub fn by_township<T>(
    pack: &Pack,
    rows: Vec<(String, T)>,
    summary: impl Fn(&[T]) -> Vec<String>,
    weight: impl Fn(&[T]) -> usize,
) -> (Vec<T>, Option<Vec<Group<T>>>) {
    if rows.len() <= GROUP_OVER {
        return (rows.into_iter().map(|(_, r)| r).collect(), None);
    }
    let mut groups: Vec<Group<T>> = gather(pack, rows)
        .into_iter()
        .map(|(name, rows)| Group { name, summary: Vec::new(), counts: Vec::new(), rows, units: 0 })
        .collect();
    for g in &mut groups {
        g.summary = summary(&g.rows);
        g.counts = g.summary.iter().map(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit())).collect();
    }
    groups.sort_by_key(|g| std::cmp::Reverse(weight(&g.rows)));
    let total: usize = groups.iter().map(|g| g.rows.len()).sum();
    for g in &mut groups {
        g.units = g.rows.len();
        if total > DETAIL_OVER {
            g.rows.clear();
        }
    }
    (Vec::new(), Some(groups))
}

/// `rows`, each with its unit's id, gathered by their unit's township in the order each township
/// first comes, with its name ([`DIRECT`] for units directly under the district). By the
/// township's id: two townships may share a name.
pub fn gather<T>(pack: &Pack, rows: impl IntoIterator<Item = (String, T)>) -> Vec<(String, Vec<T>)> {
    let mut out: Vec<(String, Vec<T>)> = Vec::new();
    let mut index: HashMap<Option<&str>, usize> = HashMap::new();
    for (id, row) in rows {
        let township = pack.township_of(&id);
        let i = *index.entry(township.map(|t| t.id.as_str())).or_insert_with(|| {
            out.push((township.map_or_else(|| DIRECT.to_string(), |t| t.name.clone()), Vec::new()));
            out.len() - 1
        });
        out[i].1.push(row);
    }
    out
}

/// How many of the statuses (by code) are red and amber, for a summary cell ("红 3 · 黄 5";
/// "—" for none).
pub fn status_counts<'a>(statuses: impl Iterator<Item = &'a str>) -> String {
    let (mut red, mut amber) = (0, 0);
    for s in statuses {
        match Status::parse(s) {
            Some(Status::Red) => red += 1,
            Some(Status::Amber) => amber += 1,
            _ => {}
        }
    }
    match (red, amber) {
        (0, 0) => "—".into(),
        (r, 0) => format!("红 {r}"),
        (0, a) => format!("黄 {a}"),
        (r, a) => format!("红 {r} · 黄 {a}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_say_red_and_amber() {
        assert_eq!(status_counts(["red", "green", "amber", "red"].into_iter()), "红 2 · 黄 1");
        assert_eq!(status_counts(["green", "none"].into_iter()), "—");
        assert_eq!(status_counts(["amber"].into_iter()), "黄 1");
    }
}
