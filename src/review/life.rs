//! Problems followed from period to period (SPEC §5): a problem keeps one id (its unit, kind
//! and indicator) for as long as the district runs, and each period's list says whether it is
//! new, still there, back again, or solved since the period before.
//!
//! The states come from the lists stored for earlier periods of the same kind (quarters for a
//! quarter), never from a previous run's own verdicts: recomputing a period gives the same
//! states, and a list written by an older version (without ids) still counts.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::model::period::Period;

/// Where a problem stands in a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Not flagged in any earlier period.
    New,
    /// Flagged in the period before too.
    Persisting,
    /// Flagged before, but not in the period before.
    Recurring,
    /// Flagged in the period before and not now: written as a row so the pack reports it.
    Resolved,
}

impl State {
    pub fn code(self) -> &'static str {
        match self {
            State::New => "new",
            State::Persisting => "persisting",
            State::Recurring => "recurring",
            State::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        [State::New, State::Persisting, State::Recurring, State::Resolved].into_iter().find(|x| x.code() == s)
    }

    pub fn zh(self) -> &'static str {
        match self {
            State::New => "新发现",
            State::Persisting => "持续存在",
            State::Recurring => "反弹复发",
            State::Resolved => "已解决",
        }
    }
}

/// A problem's stable id: its unit, kind and indicator.
pub fn problem_id(unit_id: &str, kind: &str, indicator: &str) -> String {
    format!("{unit_id}:{kind}:{indicator}")
}

/// The ids flagged (not resolved) in each earlier period.
pub type Flagged = BTreeMap<Period, BTreeSet<String>>;

/// Stored problem lists: each period's ids with their states (none in a list written before
/// problems had states).
pub type Stored = BTreeMap<Period, Vec<(String, Option<State>)>>;

/// The ids each stored list flagged: all but the resolved.
pub fn flagged(stored: &Stored) -> Flagged {
    stored
        .iter()
        .map(|(p, list)| {
            let ids = list.iter().filter(|(_, s)| *s != Some(State::Resolved)).map(|(id, _)| id.clone()).collect();
            (*p, ids)
        })
        .collect()
}

/// A problem's life up to a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Life {
    pub state: State,
    /// The first period of its current stretch of consecutive periods flagged.
    pub first_period: Period,
    /// Periods it was flagged in, this one included (a resolved problem: up to the one before).
    pub periods_flagged: u32,
}

/// The lives of `current` (the ids of the problems found in `period`) against the earlier
/// lists, in the order of `current`; and the ids of the period before that are gone now, with
/// their lives as resolved problems.
pub fn lives(period: Period, current: &[String], earlier: &Flagged) -> (Vec<Life>, Vec<(String, Life)>) {
    let previous = period.previous();
    let empty = BTreeSet::new();
    let before = earlier.get(&previous).unwrap_or(&empty);
    let times = |id: &str| earlier.range(..period).filter(|(_, ids)| ids.contains(id)).count() as u32;
    // The first period of the unbroken run of periods up to `last` in which `id` is flagged.
    let run_start = |id: &str, last: Period| {
        let mut first = last;
        let mut p = last.previous();
        while earlier.get(&p).is_some_and(|ids| ids.contains(id)) {
            first = p;
            p = p.previous();
        }
        first
    };
    let now: BTreeSet<&str> = current.iter().map(String::as_str).collect();
    let lives = current
        .iter()
        .map(|id| {
            let earlier_times = times(id);
            if before.contains(id) {
                Life {
                    state: State::Persisting,
                    first_period: run_start(id, previous),
                    periods_flagged: earlier_times + 1,
                }
            } else if earlier_times > 0 {
                Life { state: State::Recurring, first_period: period, periods_flagged: earlier_times + 1 }
            } else {
                Life { state: State::New, first_period: period, periods_flagged: 1 }
            }
        })
        .collect();
    let resolved = before
        .iter()
        .filter(|id| !now.contains(id.as_str()))
        .map(|id| {
            let life =
                Life { state: State::Resolved, first_period: run_start(id, previous), periods_flagged: times(id) };
            (id.clone(), life)
        })
        .collect();
    (lives, resolved)
}

/// The three parts of a problem's id, for a resolved problem's row.
pub fn parts_of(id: &str) -> Option<(&str, &str, &str)> {
    let mut it = id.rsplitn(3, ':');
    let (indicator, kind, unit) = (it.next()?, it.next()?, it.next()?);
    Some((unit, kind, indicator))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: u32) -> Period {
        Period::Quarter { year: 2025 + (n as i32 - 1) / 4, quarter: (n - 1) % 4 + 1 }
    }

    fn flagged(lists: &[(u32, &[&str])]) -> Flagged {
        lists.iter().map(|(n, ids)| (q(*n), ids.iter().map(|s| s.to_string()).collect())).collect()
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Three consecutive quarters: A is new, persists, then is resolved; B is new, absent,
    /// then recurs; the ids do not change.
    #[test]
    fn new_persisting_resolved_and_recurring_over_three_quarters() {
        let (l1, r1) = lives(q(1), &ids(&["A", "B"]), &Flagged::new());
        assert!(l1.iter().all(|l| l.state == State::New && l.periods_flagged == 1 && l.first_period == q(1)));
        assert!(r1.is_empty());

        let earlier = flagged(&[(1, &["A", "B"])]);
        let (l2, r2) = lives(q(2), &ids(&["A"]), &earlier);
        assert_eq!(l2[0], Life { state: State::Persisting, first_period: q(1), periods_flagged: 2 });
        assert_eq!(r2, vec![("B".into(), Life { state: State::Resolved, first_period: q(1), periods_flagged: 1 })]);

        let earlier = flagged(&[(1, &["A", "B"]), (2, &["A"])]);
        let (l3, r3) = lives(q(3), &ids(&["B"]), &earlier);
        assert_eq!(l3[0], Life { state: State::Recurring, first_period: q(3), periods_flagged: 2 });
        assert_eq!(r3, vec![("A".into(), Life { state: State::Resolved, first_period: q(1), periods_flagged: 2 })]);
    }

    /// A period computed again gives the same states: only earlier lists count.
    #[test]
    fn a_recompute_gives_the_same_states() {
        let mut earlier = flagged(&[(4, &["A"]), (5, &["A", "C"])]);
        let first = lives(q(6), &ids(&["A"]), &earlier);
        // The period's own earlier list (a first run) is in the warehouse when it is redone.
        earlier.insert(q(6), ["A".to_string()].into());
        assert_eq!(lives(q(6), &ids(&["A"]), &earlier), first);
        assert_eq!(first.0[0], Life { state: State::Persisting, first_period: q(4), periods_flagged: 3 });
    }

    #[test]
    fn an_id_splits_back_into_unit_kind_and_indicator() {
        let id = problem_id("C:01", "red", "attendance_rate");
        assert_eq!(parts_of(&id), Some(("C:01", "red", "attendance_rate")));
    }
}
