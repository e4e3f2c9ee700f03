//! The problem list (突出问题清单): every red indicator, every weak-unit candidate with its rule,
//! every indicator that fell by more than the configured share against the previous period,
//! and outliers within a level and category (robust z-score on the median absolute
//! deviation), and every unit with overdue tasks or findings. Each problem carries its
//! evidence, its stable id and its life over the periods (`super::life`): the problems of the
//! period before that are gone are listed too, as resolved.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::funnel::{self, Counts, Funnel, Place};
use super::life::{self, Life, State};
use super::{IndicatorRow, Pack};
use crate::indicators::catalogue::{Direction, Indicator, IndicatorKind};
use crate::indicators::compute::WEAK;
use crate::model::Status;

/// Thresholds of the problem list.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProblemRules {
    /// For a value that is not a proportion of counts (a score, points per member): a fall of
    /// more than this share of the previous value is a problem (0.10 = 10%).
    pub drop_share: f64,
    /// For a proportion: a fall is a problem when a fall at least as large would happen by
    /// chance less often than this (one-sided two-proportion test on the counts).
    pub drop_alpha: f64,
    /// |robust z| above this is an outlier, for values that are not proportions (3.5 is the
    /// usual cut for MAD z-scores).
    pub outlier_z: f64,
    /// Outliers are looked for in groups of at least this many units.
    pub outlier_min_group: usize,
    /// A proportion outside the funnel's limits of this coverage (0.998: 3 standard errors)
    /// at its own denominator is an outlier.
    pub funnel_level: f64,
    /// Widen the funnel by the group's overdispersion (see `funnel`).
    pub overdispersion: bool,
    /// Nothing is flagged as a drop or an outlier on a denominator below this (a 3-member
    /// branch's rate moves 8 points with one absence).
    pub min_denominator: f64,
    /// How many problems, by priority, the report's agenda (会诊议程) opens with.
    pub agenda: usize,
}

impl Default for ProblemRules {
    fn default() -> Self {
        ProblemRules {
            drop_share: 0.10,
            drop_alpha: 0.001,
            outlier_z: 3.5,
            outlier_min_group: 5,
            funnel_level: 0.998,
            overdispersion: true,
            min_denominator: 20.0,
            agenda: 15,
        }
    }
}

/// One problem.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    /// Stable across periods: unit, kind and indicator (`life::problem_id`).
    pub problem_id: String,
    pub unit_id: String,
    pub unit_name: String,
    pub level: String,
    pub category: Option<String>,
    /// `weak`, `red`, `overdue`, `drop` or `outlier`.
    pub kind: &'static str,
    pub indicator: String,
    pub value: Option<f64>,
    pub previous_value: Option<f64>,
    pub category_median: Option<f64>,
    /// What the value was judged against: the warning line (red), the previous value (drop),
    /// the funnel limit crossed or the group median (outlier).
    pub reference: Option<f64>,
    /// The denominator of the value (attendances, branch-months, tasks due...).
    pub denominator: Option<f64>,
    /// 3 severe, 2 serious, 1 minor (see [`Severity`]).
    pub severity: u8,
    /// The order in which the panel takes the open problems: 1 first (see [`prioritise`]);
    /// none for a resolved one.
    pub priority: Option<u32>,
    pub evidence: String,
    pub life: Life,
}

/// How severe a problem is, from its kind and how it was found (README, "The problem list").
pub fn severity(kind: &str, on_counts: bool, serious_finding: bool) -> u8 {
    match kind {
        "weak" => 3,
        "overdue" if serious_finding => 3,
        "overdue" | "red" => 2,
        // A fall or an outlier tested on counts is unlikely to be chance; one judged by a
        // share of a score or against the median is a weaker signal.
        "drop" | "outlier" if on_counts => 2,
        _ => 1,
    }
}

/// The level's place from the top (the district 0): a problem higher up touches more members.
fn level_rank(level: &str) -> usize {
    ["district", "township", "community", "branch"].iter().position(|l| *l == level).unwrap_or(4)
}

/// Number the open problems for a meeting of limited time: the more severe first; then the
/// longer-standing (periods flagged); then the higher level; then the larger denominator; then
/// grid order. Resolved problems get no priority.
pub fn prioritise(list: &mut [Problem]) {
    let mut open: Vec<usize> = (0..list.len()).filter(|&i| list[i].life.state != State::Resolved).collect();
    open.sort_by(|&a, &b| {
        let (p, q) = (&list[a], &list[b]);
        q.severity
            .cmp(&p.severity)
            .then(q.life.periods_flagged.cmp(&p.life.periods_flagged))
            .then(level_rank(&p.level).cmp(&level_rank(&q.level)))
            .then(q.denominator.unwrap_or(0.0).total_cmp(&p.denominator.unwrap_or(0.0)))
            .then(a.cmp(&b))
    });
    for (rank, i) in open.into_iter().enumerate() {
        list[i].priority = Some(rank as u32 + 1);
    }
}

/// The median (the mean of the middle two for an even count).
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// (level, category, indicator).
type GroupKey = (String, Option<String>, String);

/// The median of an indicator per (level, category).
pub fn group_medians(pack: &Pack) -> BTreeMap<GroupKey, f64> {
    let mut groups: BTreeMap<GroupKey, Vec<f64>> = BTreeMap::new();
    for r in &pack.rows {
        if let (Some(v), Some(u)) = (r.value, pack.unit(&r.unit_id)) {
            groups.entry((u.level.clone(), u.category.clone(), r.indicator.clone())).or_default().push(v);
        }
    }
    groups.into_iter().filter_map(|(k, v)| median(v).map(|m| (k, m))).collect()
}

/// The kinds in the order a unit's problems are listed.
const KIND_ORDER: [&str; 5] = ["weak", "red", "overdue", "drop", "outlier"];

/// Find the problems of a pack, in unit (tree) order then kind, with their lives against the
/// lists stored for earlier periods; then the problems of the period before that are solved
/// now.
pub fn problems(pack: &Pack, rules: &ProblemRules) -> Vec<Problem> {
    let found = found(pack, rules);
    let ids: Vec<String> = found.iter().map(|p| p.problem_id.clone()).collect();
    let (lives, resolved) = life::lives(pack.period, &ids, &life::flagged(&pack.earlier_problems));
    let mut out: Vec<Problem> = found.into_iter().zip(lives).map(|(p, life)| Problem { life, ..p }).collect();
    out.extend(resolved.into_iter().filter_map(|(id, life)| resolved_row(pack, &id, life)));
    prioritise(&mut out);
    out
}

/// A problem of the period before that is gone, with the indicator's value now.
fn resolved_row(pack: &Pack, id: &str, life: Life) -> Option<Problem> {
    let (unit_id, kind, indicator) = life::parts_of(id)?;
    let kind = KIND_ORDER.into_iter().find(|k| *k == kind)?;
    let unit = pack.unit(unit_id);
    let row = pack.row(unit_id, indicator);
    let name = pack.catalogue.get(indicator).map_or("软弱涣散候选", |i| i.name_zh.as_str());
    let evidence = match (row.and_then(|r| r.value), pack.catalogue.get(indicator)) {
        (Some(v), Some(ind)) => format!("{name} 现为 {}", crate::output::format_value(v, &ind.unit)),
        _ if unit.is_none() => "单位已撤并".to_string(),
        _ => format!("{name} 本期未再列入"),
    };
    Some(Problem {
        problem_id: id.to_string(),
        unit_id: unit_id.to_string(),
        unit_name: unit.map_or_else(|| unit_id.to_string(), |u| u.name.clone()),
        level: unit.map(|u| u.level.clone()).unwrap_or_default(),
        category: unit.and_then(|u| u.category.clone()),
        kind,
        indicator: indicator.to_string(),
        value: row.and_then(|r| r.value),
        previous_value: row.and_then(|r| r.previous),
        category_median: None,
        reference: None,
        denominator: row.and_then(|r| r.denominator),
        severity: 1,
        priority: None,
        evidence,
        life,
    })
}

/// The problems found in the pack's own figures (their lives not yet known).
fn found(pack: &Pack, rules: &ProblemRules) -> Vec<Problem> {
    let new = Life { state: State::New, first_period: pack.period, periods_flagged: 1 };
    let medians = group_medians(pack);
    let mut out = Vec::new();
    let fmt = |v: f64, unit: &str| crate::output::format_value(v, unit);
    // Each unit's rows, in table order: a province has 30,000 units and 300,000 rows.
    let mut by_unit: HashMap<&str, Vec<&IndicatorRow>> = HashMap::new();
    for r in &pack.rows {
        by_unit.entry(r.unit_id.as_str()).or_default().push(r);
    }
    // Units with a serious finding of their own past its deadline at the period's end.
    let end = pack.period.last_day();
    let serious_overdue: std::collections::HashSet<&str> = pack
        .findings
        .iter()
        .filter(|f| f.severity == "serious" && f.deadline <= end && !f.rectified_by(end))
        .map(|f| f.unit_id.as_str())
        .collect();
    for u in &pack.units {
        let rows = by_unit.get(u.id.as_str()).map(Vec::as_slice).unwrap_or_default();
        let med = |ind: &str| medians.get(&(u.level.clone(), u.category.clone(), ind.to_string())).copied();
        let base = |kind: &'static str, r: &IndicatorRow, evidence: String| Problem {
            problem_id: life::problem_id(&u.id, kind, &r.indicator),
            unit_id: u.id.clone(),
            unit_name: u.name.clone(),
            level: u.level.clone(),
            category: u.category.clone(),
            kind,
            indicator: r.indicator.clone(),
            value: r.value,
            previous_value: r.previous,
            category_median: med(&r.indicator),
            reference: None,
            denominator: r.denominator,
            severity: severity(kind, false, false),
            priority: None,
            evidence,
            life: new.clone(),
        };
        for r in rows {
            if r.indicator == WEAK {
                if r.value == Some(1.0) {
                    out.push(base("weak", r, r.note.clone().unwrap_or_default()));
                }
                continue;
            }
            let Some(ind) = pack.catalogue.get(&r.indicator) else { continue };
            let Some(v) = r.value else { continue };
            let unit = ind.unit.as_str();
            // A count of what is overdue is a problem of its own kind from the first one; it is
            // not judged against a threshold, a previous period or the unit's peers.
            if ind.kind == IndicatorKind::Count {
                if v > 0.0 {
                    let of = r.denominator.map(|d| format!("（到期 {d:.0} 项）")).unwrap_or_default();
                    let serious = r.indicator == "overdue_findings" && serious_overdue.contains(u.id.as_str());
                    out.push(Problem {
                        severity: severity("overdue", false, serious),
                        ..base("overdue", r, format!("{} {v:.0} 项{of}", ind.name_zh))
                    });
                }
                continue;
            }
            if r.status == Some(Status::Red) {
                let t = ind.thresholds_for(u.category.as_deref(), pack.period.month_count());
                let side = if ind.direction == Direction::Higher { "低于" } else { "高于" };
                let median = med(&r.indicator).map(|m| format!("，同类中位数 {}", fmt(m, unit))).unwrap_or_default();
                out.push(Problem {
                    reference: Some(t.amber),
                    ..base(
                        "red",
                        r,
                        format!("{} {}，{side}预警线 {}{median}", ind.name_zh, fmt(v, unit), fmt(t.amber, unit)),
                    )
                });
            }
            if let Some((evidence, on_counts)) = drop_evidence(pack, rules, r, ind) {
                out.push(Problem {
                    reference: r.previous,
                    severity: severity("drop", on_counts, false),
                    ..base("drop", r, evidence)
                });
            }
        }
    }
    out.extend(outliers(pack, rules, &new));
    let order: BTreeMap<&str, usize> = pack.units.iter().enumerate().map(|(i, u)| (u.id.as_str(), i)).collect();
    let kind_order = |k: &str| KIND_ORDER.iter().position(|x| *x == k).unwrap_or(9);
    out.sort_by_key(|p| (order.get(p.unit_id.as_str()).copied().unwrap_or(usize::MAX), kind_order(p.kind)));
    out
}

/// The evidence of a fall worth listing, if the row has one. A proportion (`funnel::Counts`)
/// is tested on its counts against the period before; another value falls by a share of
/// itself. Neither is judged on a denominator below the minimum.
fn drop_evidence(pack: &Pack, rules: &ProblemRules, r: &IndicatorRow, ind: &Indicator) -> Option<(String, bool)> {
    let p = r.previous.filter(|p| p.abs() > 1e-12)?;
    let v = r.value?;
    let higher = ind.direction == Direction::Higher;
    let now = Counts::of_rate(r.numerator, r.denominator, r.value, &ind.unit);
    let before = pack.previous_counts(&r.unit_id, &r.indicator);
    if let (Some(now), Some(before)) = (now, before) {
        if now.n < rules.min_denominator || before.n < rules.min_denominator {
            return None;
        }
        let (z, chance) = funnel::worse_than_chance(before, now, higher)?;
        if chance >= rules.drop_alpha {
            return None;
        }
        let points = (now.rate() - before.rate()).abs() * 100.0;
        let way = if higher { "下降" } else { "上升" };
        let chance = if chance < 0.001 { "p < 0.001".to_string() } else { format!("p = {chance:.3}") };
        let evidence = format!(
            "{} 由 {:.1}%（{:.0}/{:.0}）变为 {:.1}%（{:.0}/{:.0}），{way} {points:.1} 个百分点（双比例检验 z = {z:.2}，单侧 {chance}）",
            ind.name_zh,
            before.rate() * 100.0,
            before.x,
            before.n,
            now.rate() * 100.0,
            now.x,
            now.n
        );
        // (Shown as percentages whatever the indicator's unit: the test is on the shares.)
        return Some((evidence, true));
    }
    if r.denominator.is_some_and(|d| d < rules.min_denominator) {
        return None;
    }
    let worse = if higher { p - v } else { v - p };
    if worse <= rules.drop_share * p.abs() {
        return None;
    }
    let pct = worse / p.abs() * 100.0;
    let fmt = |x: f64| crate::output::format_value(x, &ind.unit);
    Some((format!("{} 由 {} 变为 {}，较上期变差 {pct:.0}%", ind.name_zh, fmt(p), fmt(v)), false))
}

/// Outliers within each level, category and indicator, on the worse side for a proportion:
/// outside the funnel limits at the unit's own denominator; for another value, a robust
/// z = 0.6745 (x − median) / MAD beyond the cut, either side. Units below the minimum
/// denominator count in the group's centre but are not flagged.
fn outliers(pack: &Pack, rules: &ProblemRules, new: &Life) -> Vec<Problem> {
    let mut groups: BTreeMap<GroupKey, Vec<&IndicatorRow>> = BTreeMap::new();
    for r in &pack.rows {
        if r.indicator == WEAK || r.value.is_none() {
            continue;
        }
        if let (Some(ind), Some(u)) = (pack.catalogue.get(&r.indicator), pack.unit(&r.unit_id))
            && ind.kind != IndicatorKind::Count
        {
            groups.entry((u.level.clone(), u.category.clone(), r.indicator.clone())).or_default().push(r);
        }
    }
    let mut out = Vec::new();
    for ((_, _, ind_id), members) in groups {
        if members.len() < rules.outlier_min_group {
            continue;
        }
        let ind = pack.catalogue.get(&ind_id).expect("grouped by catalogue indicators");
        let fmt = |x: f64| crate::output::format_value(x, &ind.unit);
        let values: Vec<f64> = members.iter().filter_map(|r| r.value).collect();
        let m = median(values.clone()).expect("non-empty");
        let flag = |r: &IndicatorRow, reference: f64, on_counts: bool, evidence: String| {
            let u = pack.unit(&r.unit_id).expect("unit of a row");
            Problem {
                problem_id: life::problem_id(&u.id, "outlier", &ind_id),
                unit_id: u.id.clone(),
                unit_name: u.name.clone(),
                level: u.level.clone(),
                category: u.category.clone(),
                kind: "outlier",
                indicator: ind_id.clone(),
                value: r.value,
                previous_value: r.previous,
                category_median: Some(m),
                reference: Some(reference),
                denominator: r.denominator,
                severity: severity("outlier", on_counts, false),
                priority: None,
                evidence,
                life: new.clone(),
            }
        };
        let counts: Option<Vec<Counts>> =
            members.iter().map(|r| Counts::of_rate(r.numerator, r.denominator, r.value, &ind.unit)).collect();
        if let (Some(counts), Some(scale)) = (counts, funnel::scale_of(&ind.unit)) {
            let Some(f) = Funnel::of(&counts, rules.overdispersion) else { continue };
            let widened =
                if f.phi > 1.0 { format!("，已按离散度 φ = {:.1} 放宽", f.phi) } else { String::new() };
            for (r, c) in members.iter().zip(&counts) {
                if c.n < rules.min_denominator {
                    continue;
                }
                let crossed = match (f.place(*c, rules.funnel_level), ind.direction) {
                    (Place::Below(l), Direction::Higher) => Some(("低于", "下限", l)),
                    (Place::Above(l), Direction::Lower) => Some(("高于", "上限", l)),
                    _ => None,
                };
                if let Some((side, which, limit)) = crossed {
                    let level = rules.funnel_level * 100.0;
                    out.push(flag(
                        r,
                        limit * scale,
                        true,
                        format!(
                            "{} {}（{:.0}/{:.0}），{side}同级同类漏斗图 {level:.1}% 控制{which} {}（总体 {}{widened}）",
                            ind.name_zh,
                            fmt(c.rate() * scale),
                            c.x,
                            c.n,
                            fmt(limit * scale),
                            fmt(f.centre * scale)
                        ),
                    ));
                }
            }
            continue;
        }
        let mad = median(values.iter().map(|v| (v - m).abs()).collect()).expect("non-empty");
        if mad <= 0.0 {
            continue;
        }
        for r in members {
            if r.denominator.is_some_and(|d| d < rules.min_denominator) {
                continue;
            }
            let v = r.value.expect("members have values");
            let z = 0.6745 * (v - m) / mad;
            if z.abs() > rules.outlier_z {
                out.push(flag(r, m, false, format!("{} 对比同级同类中位数 {}（稳健 z 值 {z:+.1}）", fmt(v), fmt(m))));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(
        unit: &str,
        level: &str,
        kind: &'static str,
        on_counts: bool,
        state: State,
        periods: u32,
        n: f64,
    ) -> Problem {
        let first_period: crate::model::period::Period = "2026Q1".parse().unwrap();
        Problem {
            problem_id: life::problem_id(unit, kind, "attendance_rate"),
            unit_id: unit.to_string(),
            unit_name: unit.to_string(),
            level: level.to_string(),
            category: None,
            kind,
            indicator: "attendance_rate".to_string(),
            value: None,
            previous_value: None,
            category_median: None,
            reference: None,
            denominator: Some(n),
            severity: severity(kind, on_counts, false),
            priority: None,
            evidence: String::new(),
            life: Life { state, first_period, periods_flagged: periods },
        }
    }

    #[test]
    fn the_agenda_takes_the_severe_then_the_lasting_then_the_high_then_the_large() {
        let mut list = vec![
            problem("B1", "branch", "drop", true, State::New, 1, 3600.0),
            problem("B2", "branch", "drop", false, State::New, 1, 9000.0),
            problem("T1", "township", "red", false, State::New, 1, 100.0),
            problem("B3", "branch", "red", false, State::Persisting, 3, 36.0),
            problem("B4", "branch", "weak", false, State::New, 1, 10.0),
            problem("B5", "branch", "red", false, State::Resolved, 2, 50.0),
            problem("C1", "community", "red", false, State::New, 1, 400.0),
        ];
        prioritise(&mut list);
        let order: Vec<(&str, Option<u32>)> = list.iter().map(|p| (p.unit_id.as_str(), p.priority)).collect();
        // Weak (3) first; then the serious (2): persisting three periods, then the township,
        // the community, the branch's tested fall; the untested fall (1) last; resolved: none.
        assert_eq!(
            order,
            vec![
                ("B1", Some(5)),
                ("B2", Some(6)),
                ("T1", Some(3)),
                ("B3", Some(2)),
                ("B4", Some(1)),
                ("B5", None),
                ("C1", Some(4))
            ]
        );
        assert_eq!(severity("overdue", false, true), 3);
        assert_eq!(severity("outlier", false, false), 1);
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }
}
