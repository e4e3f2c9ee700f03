//! The annual appraisal (年度目标绩效考核, SPEC §6): a score from weighted components, a grade
//! in stars, the five-star quota of each level enforced by rank, and the eligibility for
//! honours (评优评先) with every veto and quota decision written out in words.
//!
//! The components are catalogue indicators of the year, on a 0–100 scale (a share × 100, a
//! score as it is). A missing component is left out and the weights of the others rescaled,
//! as in the composite score, but a unit whose present components weigh less than
//! `min_weight` of the whole is not graded: a year with no attendance and no assessment is not
//! a score from one ledger. Vetoes (一票否决) are data: which rule, and what it costs
//! (eligibility, a cap on the stars).
//!
//! The quota: within each level, at most ⌊share × graded⌋ units keep five stars; those in the
//! five-star band are ordered by score, then by the `tie_break` indicators (better first),
//! and the rest are graded four stars. Units still equal on every key at the boundary are
//! all graded four stars: the quota is a limit, and neither a unit id nor chance decides an
//! honour. Scores are compared at two decimals, as printed.
//!
//! Never reads the warehouse and never prints.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use super::ledgers::{Finding, Task};
use crate::indicators::Catalogue;
use crate::indicators::catalogue::Direction;
use crate::indicators::compute::{UnitInfo, competition_ranks};
use crate::model::Level;
use crate::model::period::Period;
use crate::model::tables::APPRAISAL_PARTS;

/// `[appraisal]` of an annual pipeline.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppraisalRules {
    /// The levels graded, each against its own quota.
    #[serde(default = "default_levels")]
    pub levels: Vec<Level>,
    /// Lower bounds of five, four, three and two stars; below the last, one star.
    #[serde(default = "default_bands")]
    pub bands: [f64; 4],
    /// The most five-star units of a level, as a share of its graded units.
    #[serde(default = "default_quota")]
    pub five_star_quota: f64,
    /// A unit is graded only when its present components weigh at least this share of all.
    #[serde(default = "default_min_weight")]
    pub min_weight: f64,
    /// Indicators that order equal scores at the quota's boundary, better first.
    #[serde(default = "default_tie_break")]
    pub tie_break: Vec<String>,
    #[serde(default = "default_components", rename = "component")]
    pub components: Vec<Component>,
    #[serde(default = "default_vetoes", rename = "veto")]
    pub vetoes: Vec<Veto>,
}

/// One weighted part of the score: a catalogue indicator (a share or a score).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    pub indicator: String,
    pub weight: f64,
}

/// How serious a finding is, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Minor,
    Major,
    Serious,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Minor, Severity::Major, Severity::Serious];

    /// The code the findings ledger stores (SPEC §2).
    pub fn code(self) -> &'static str {
        match self {
            Severity::Minor => "minor",
            Severity::Major => "major",
            Severity::Serious => "serious",
        }
    }

    fn of(code: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.code() == code)
    }

    fn zh(self) -> &'static str {
        crate::model::kinds::label_of(crate::model::kinds::SEVERITIES, self.code())
    }
}

/// Whose findings and tasks a veto counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The unit's and every unit's below it (a township answers for its branches), as the
    /// supervision indicators count them (SPEC §4).
    #[default]
    Below,
    /// The unit's own only.
    Own,
}

/// A veto rule (一票否决) and what it costs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "when", rename_all = "snake_case", deny_unknown_fields)]
pub enum Veto {
    /// A finding of at least `severity` past its deadline and not rectified on the year's
    /// last day.
    OverdueFinding {
        severity: Severity,
        #[serde(default)]
        scope: Scope,
        #[serde(default = "yes")]
        ineligible: bool,
        max_stars: Option<u32>,
    },
    /// A weak-unit candidate (软弱涣散) in at least `at_least` quarters of the year.
    WeakQuarters {
        at_least: u32,
        #[serde(default = "yes")]
        ineligible: bool,
        max_stars: Option<u32>,
    },
    /// At least `at_least` target tasks past due and not done on the year's last day.
    OverdueTasks {
        at_least: u32,
        #[serde(default)]
        scope: Scope,
        #[serde(default = "yes")]
        ineligible: bool,
        max_stars: Option<u32>,
    },
}

impl Veto {
    /// What the veto costs when it fires: eligibility, and the most stars.
    pub fn costs(&self) -> (bool, Option<u32>) {
        match *self {
            Veto::OverdueFinding { ineligible, max_stars, .. }
            | Veto::WeakQuarters { ineligible, max_stars, .. }
            | Veto::OverdueTasks { ineligible, max_stars, .. } => (ineligible, max_stars),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_levels() -> Vec<Level> {
    Level::GRADED.to_vec()
}
fn default_bands() -> [f64; 4] {
    [90.0, 80.0, 70.0, 60.0]
}
fn default_quota() -> f64 {
    0.30
}
fn default_min_weight() -> f64 {
    0.5
}
fn default_tie_break() -> Vec<String> {
    vec!["assessment_score".into()]
}
fn default_components() -> Vec<Component> {
    APPRAISAL_PARTS.iter().map(|(id, w)| Component { indicator: id.to_string(), weight: *w }).collect()
}
fn default_vetoes() -> Vec<Veto> {
    vec![
        Veto::OverdueFinding { severity: Severity::Serious, scope: Scope::Below, ineligible: true, max_stars: Some(3) },
        Veto::WeakQuarters { at_least: 2, ineligible: true, max_stars: None },
    ]
}

impl Default for AppraisalRules {
    fn default() -> Self {
        AppraisalRules {
            levels: default_levels(),
            bands: default_bands(),
            five_star_quota: default_quota(),
            min_weight: default_min_weight(),
            tie_break: default_tie_break(),
            components: default_components(),
            vetoes: default_vetoes(),
        }
    }
}

impl AppraisalRules {
    /// What is wrong with the rules on their own: (the key, what). The catalogue's part is
    /// `check_against`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.levels.contains(&Level::District) {
            return Err(("levels", "the district is not graded: levels are township, community, branch".into()));
        }
        if !self.bands.windows(2).all(|w| w[0] > w[1]) {
            return Err((
                "bands",
                "bands are the lower bounds of five, four, three and two stars, highest first".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.five_star_quota) {
            return Err(("five_star_quota", "five_star_quota must be between 0 and 1".into()));
        }
        if !(0.0..=1.0).contains(&self.min_weight) {
            return Err(("min_weight", "min_weight must be between 0 and 1".into()));
        }
        if self.components.is_empty() {
            return Err(("component", "the appraisal has no component".into()));
        }
        if let Some(c) = self.components.iter().find(|c| !(c.weight > 0.0 && c.weight.is_finite())) {
            return Err((
                "weight",
                format!("component '{}' has weight {}: weights are positive", c.indicator, c.weight),
            ));
        }
        for v in &self.vetoes {
            if let (_, Some(s)) = v.costs()
                && !(1..=5).contains(&s)
            {
                return Err(("max_stars", format!("max_stars = {s}: stars are 1 to 5")));
            }
        }
        Ok(())
    }

    /// Every component and tie-break names an indicator of the catalogue; a component is a
    /// share or a score, where higher is better (a count has no 0–100 scale).
    pub fn check_against(&self, catalogue: &Catalogue) -> Result<(), String> {
        for c in &self.components {
            let Some(ind) = catalogue.get(&c.indicator) else {
                return Err(format!("component '{}' is not an indicator of the catalogue", c.indicator));
            };
            if !matches!(ind.unit.as_str(), "percent" | "score") || ind.direction != Direction::Higher {
                return Err(format!(
                    "component '{}' is a {} ({}): a component must be a share or a score where higher is better",
                    c.indicator,
                    ind.unit,
                    if ind.direction == Direction::Higher { "higher is better" } else { "lower is better" }
                ));
            }
        }
        if let Some(t) = self.tie_break.iter().find(|t| catalogue.get(t).is_none()) {
            return Err(format!("tie_break '{t}' is not an indicator of the catalogue"));
        }
        Ok(())
    }
}

/// What the appraisal reads: the year's tree, indicator values and ledgers, and the quarters
/// in which each unit was a weak-unit candidate.
pub struct Inputs<'a> {
    pub year: i32,
    pub catalogue: &'a Catalogue,
    /// The tree on the year's last day, in grid order.
    pub units: &'a [UnitInfo],
    /// (unit, indicator) → the year's value.
    pub values: HashMap<(String, String), f64>,
    pub findings: &'a [Finding],
    pub tasks: &'a [Task],
    pub weak_quarters: &'a HashMap<String, Vec<Period>>,
}

/// One graded unit (a unit of a graded level; `grade` is none when it could not be graded).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Appraised {
    pub unit_id: String,
    pub unit_name: String,
    pub level: Level,
    pub category: Option<String>,
    /// The township the unit is in (itself for a township).
    pub township: Option<String>,
    /// Each component on the 0–100 scale, in the rules' order.
    pub parts: Vec<Option<f64>>,
    pub score: Option<f64>,
    /// Competition rank by score within level and category.
    pub rank: Option<u32>,
    pub grade: Option<u32>,
    pub eligible: bool,
    pub reasons: Vec<String>,
}

/// One level's grades against its quota.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LevelGrades {
    pub level: Level,
    pub graded: u32,
    pub quota: u32,
    /// Units with five, four, three, two and one stars.
    pub stars: [u32; 5],
    /// Units in the five-star band before the quota (after the vetoes' caps).
    pub in_band: u32,
    /// Units equal on every key at the quota's boundary (names), when there were any.
    pub tied: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Appraisal {
    pub year: i32,
    pub components: Vec<Component>,
    pub units: Vec<Appraised>,
    pub levels: Vec<LevelGrades>,
}

/// Appraise every unit of the graded levels.
pub fn appraise(inputs: &Inputs, rules: &AppraisalRules) -> Result<Appraisal> {
    if let Err(e) = rules.check_against(inputs.catalogue) {
        bail!("[appraisal]: {e}");
    }
    let last_day = Period::Year { year: inputs.year }.last_day();
    let ledger = Ledger::of(inputs, last_day);
    let (mut units, caps): (Vec<Appraised>, Vec<Option<u32>>) = inputs
        .units
        .iter()
        .filter(|u| rules.levels.iter().any(|l| l.code() == u.level))
        .map(|u| score_unit(inputs, rules, &ledger, u))
        .unzip();
    rank_within_groups(&mut units);
    let mut levels = Vec::new();
    for level in Level::GRADED.into_iter().filter(|l| rules.levels.contains(l)) {
        levels.push(grade_level(inputs, rules, &mut units, &caps, level));
    }
    Ok(Appraisal { year: inputs.year, components: rules.components.clone(), units, levels })
}

/// The findings and tasks open at the year's end, by the unit they count against in each
/// scope (its own, and each of its ancestors' for `below`), and the units by id: built once,
/// so a province's 30,000 units never scan every row or every unit again.
struct Ledger<'a> {
    findings: HashMap<(Scope, &'a str), Vec<&'a Finding>>,
    tasks: HashMap<(Scope, &'a str), Vec<&'a Task>>,
    units: HashMap<&'a str, &'a UnitInfo>,
}

impl<'a> Ledger<'a> {
    fn of(inputs: &'a Inputs, day: chrono::NaiveDate) -> Ledger<'a> {
        let units: HashMap<&str, &UnitInfo> = inputs.units.iter().map(|u| (u.id.as_str(), u)).collect();
        // Rows of a unit not in the year-end tree count against nobody.
        let against = |holder: &'a str| -> Vec<(Scope, &'a str)> {
            let Some(u) = units.get(holder) else { return Vec::new() };
            std::iter::once((Scope::Own, holder)).chain(u.path.iter().map(|a| (Scope::Below, a.as_str()))).collect()
        };
        let mut findings: HashMap<(Scope, &str), Vec<&Finding>> = HashMap::new();
        for f in inputs.findings.iter().filter(|f| f.deadline <= day && !f.rectified_by(day)) {
            for key in against(&f.unit_id) {
                findings.entry(key).or_default().push(f);
            }
        }
        let mut tasks: HashMap<(Scope, &str), Vec<&Task>> = HashMap::new();
        for t in inputs.tasks.iter().filter(|t| t.due <= day && !t.done_by(day)) {
            for key in against(&t.unit_id) {
                tasks.entry(key).or_default().push(t);
            }
        }
        for list in findings.values_mut() {
            list.sort_by(|a, b| a.deadline.cmp(&b.deadline).then(a.finding_id.cmp(&b.finding_id)));
        }
        for list in tasks.values_mut() {
            list.sort_by(|a, b| a.due.cmp(&b.due).then(a.task_id.cmp(&b.task_id)));
        }
        Ledger { findings, tasks, units }
    }

    fn findings_of(&self, unit: &str, scope: Scope, at_least: Severity) -> Vec<&'a Finding> {
        self.findings
            .get(&(scope, unit))
            .into_iter()
            .flatten()
            .copied()
            .filter(|f| Severity::of(&f.severity).is_some_and(|s| s >= at_least))
            .collect()
    }

    fn tasks_of(&self, unit: &str, scope: Scope) -> Vec<&'a Task> {
        self.tasks.get(&(scope, unit)).into_iter().flatten().copied().collect()
    }

    fn name(&self, id: &str) -> String {
        self.units.get(id).map_or(id.to_string(), |u| u.name.clone())
    }
}

/// A unit's components, score and the vetoes' loss of eligibility, and the lowest cap on its
/// stars of the vetoes that fire.
fn score_unit(inputs: &Inputs, rules: &AppraisalRules, ledger: &Ledger, u: &UnitInfo) -> (Appraised, Option<u32>) {
    let level = Level::parse(&u.level).expect("a graded unit has a level");
    let parts: Vec<Option<f64>> = rules
        .components
        .iter()
        .map(|c| {
            let v = *inputs.values.get(&(u.id.clone(), c.indicator.clone()))?;
            let unit = &inputs.catalogue.get(&c.indicator)?.unit;
            Some(if unit == "percent" { 100.0 * v } else { v })
        })
        .collect();
    let total: f64 = rules.components.iter().map(|c| c.weight).sum();
    let present: f64 = rules.components.iter().zip(&parts).filter(|(_, p)| p.is_some()).map(|(c, _)| c.weight).sum();
    let weighted: f64 = rules.components.iter().zip(&parts).filter_map(|(c, p)| p.map(|v| c.weight * v)).sum();
    let name = |id: &str| inputs.catalogue.get(id).map_or(id.to_string(), |i| i.name_zh.clone());
    let missing: Vec<String> =
        rules.components.iter().zip(&parts).filter(|(_, p)| p.is_none()).map(|(c, _)| name(&c.indicator)).collect();
    let mut reasons = Vec::new();
    let score = if present > 0.0 && present / total >= rules.min_weight - 1e-12 {
        if !missing.is_empty() {
            reasons.push(format!("缺{}，按其余 {:.0}% 的权重折算", missing.join("、"), present / total * 100.0));
        }
        Some(weighted / present)
    } else {
        reasons.push(format!(
            "数据不足，不予评定：有数据的部分权重合计 {:.0}%，低于 {:.0}%（缺{}）",
            present / total * 100.0,
            rules.min_weight * 100.0,
            missing.join("、")
        ));
        None
    };
    let mut eligible = score.is_some();
    let mut cap: Option<u32> = None;
    for veto in &rules.vetoes {
        if let Some(why) = fired(inputs, ledger, veto, &u.id) {
            let (ineligible, max_stars) = veto.costs();
            cap = cap.into_iter().chain(max_stars).min();
            let mut cost = Vec::new();
            if ineligible {
                eligible = false;
                cost.push("不得评优评先".to_string());
            }
            if let Some(s) = max_stars {
                cost.push(format!("最高{}", stars_zh(s)));
            }
            reasons.push(format!("一票否决：{why}；{}", cost.join("，")));
        }
    }
    let township = u.township(|id| ledger.units.get(id).copied()).map(|t| t.name.clone());
    let appraised = Appraised {
        unit_id: u.id.clone(),
        unit_name: u.name.clone(),
        level,
        category: u.category.clone(),
        township,
        parts,
        score,
        rank: None,
        grade: None,
        eligible,
        reasons,
    };
    (appraised, cap)
}

/// The words of a veto that fires for `unit`, if it does.
fn fired(inputs: &Inputs, ledger: &Ledger, veto: &Veto, unit: &str) -> Option<String> {
    let whose = |scope: Scope, holder: &str| {
        if scope == Scope::Below && holder != unit { format!("（{}）", ledger.name(holder)) } else { String::new() }
    };
    match *veto {
        Veto::OverdueFinding { severity, scope, .. } => {
            let found = ledger.findings_of(unit, scope, severity);
            if found.is_empty() {
                return None;
            }
            let list: Vec<String> = found
                .iter()
                .map(|f| format!("{}{}（整改时限 {}）", f.finding_id, whose(scope, &f.unit_id), f.deadline))
                .collect();
            let kind = if severity == Severity::Minor {
                "问题".to_string()
            } else {
                format!("{}及以上问题", severity.zh())
            };
            Some(format!("{kind} {}至年底逾期未整改", list.join("、")))
        }
        Veto::WeakQuarters { at_least, .. } => {
            let quarters = inputs.weak_quarters.get(unit)?;
            (quarters.len() as u32 >= at_least).then(|| {
                let q: Vec<String> = quarters.iter().map(Period::to_string).collect();
                format!("{} 共 {} 个季度列为软弱涣散候选", q.join("、"), q.len())
            })
        }
        Veto::OverdueTasks { at_least, scope, .. } => {
            let open = ledger.tasks_of(unit, scope);
            (open.len() as u32 >= at_least).then(|| {
                let ids: Vec<String> =
                    open.iter().map(|t| format!("{}{}", t.task_id, whose(scope, &t.unit_id))).collect();
                format!("{} 项目标任务至年底逾期未完成（{}）", open.len(), ids.join("、"))
            })
        }
    }
}

/// Scores by level and category.
type Groups<'a> = BTreeMap<(Level, Option<String>), Vec<(&'a str, f64)>>;

fn rank_within_groups(units: &mut [Appraised]) {
    let mut groups: Groups = BTreeMap::new();
    for a in units.iter() {
        if let Some(s) = a.score {
            groups.entry((a.level, a.category.clone())).or_default().push((a.unit_id.as_str(), rounded(s)));
        }
    }
    let ranks: HashMap<String, u32> = groups
        .into_values()
        .flat_map(|mut m| {
            competition_ranks(&mut m, Direction::Higher)
                .into_iter()
                .map(|(id, r)| (id.to_string(), r))
                .collect::<Vec<_>>()
        })
        .collect();
    for a in units.iter_mut() {
        a.rank = ranks.get(&a.unit_id).copied();
    }
}

/// A score as compared and printed: two decimals.
fn rounded(s: f64) -> f64 {
    (s * 100.0).round() / 100.0
}

pub fn stars(score: f64, bands: &[f64; 4]) -> u32 {
    match bands.iter().position(|b| rounded(score) >= *b) {
        Some(i) => 5 - i as u32,
        None => 1,
    }
}

pub fn stars_zh(n: u32) -> String {
    ["一星", "二星", "三星", "四星", "五星"].get(n.saturating_sub(1) as usize).copied().unwrap_or("").to_string()
}

/// Grade one level: bands, the vetoes' caps, then the five-star quota by rank.
fn grade_level(
    inputs: &Inputs,
    rules: &AppraisalRules,
    units: &mut [Appraised],
    caps: &[Option<u32>],
    level: Level,
) -> LevelGrades {
    let members: Vec<usize> =
        (0..units.len()).filter(|&i| units[i].level == level && units[i].score.is_some()).collect();
    let graded = members.len() as u32;
    let quota = (rules.five_star_quota * f64::from(graded) + 1e-9).floor() as u32;
    for &i in &members {
        let band = stars(units[i].score.expect("graded"), &rules.bands);
        let grade = caps[i].map_or(band, |c| band.min(c));
        if grade < band {
            units[i].reasons.push(format!("按否决规则由{}降为{}", stars_zh(band), stars_zh(grade)));
        }
        units[i].grade = Some(grade);
    }
    // The keys that order the five-star band: score, then the tie-break indicators.
    let key = |i: usize| -> Vec<Option<f64>> {
        let mut k = vec![units[i].score.map(rounded)];
        for t in &rules.tie_break {
            let higher = inputs.catalogue.get(t).is_none_or(|ind| ind.direction == Direction::Higher);
            let v = inputs.values.get(&(units[i].unit_id.clone(), t.clone())).copied();
            k.push(v.map(|v| if higher { v } else { -v }));
        }
        k
    };
    let better = |a: &Vec<Option<f64>>, b: &Vec<Option<f64>>| {
        // Descending, a missing value last.
        for (x, y) in a.iter().zip(b) {
            let o = match (x, y) {
                (Some(x), Some(y)) => y.total_cmp(x),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            };
            if o.is_ne() {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    };
    let mut band: Vec<(usize, Vec<Option<f64>>)> =
        members.iter().filter(|&&i| units[i].grade == Some(5)).map(|&i| (i, key(i))).collect();
    band.sort_by(|a, b| better(&a.1, &b.1).then(units[a.0].unit_id.cmp(&units[b.0].unit_id)));
    let in_band = band.len() as u32;
    let mut tied = Vec::new();
    if band.len() > quota as usize {
        let boundary = band[quota as usize].1.clone();
        let tied_at_boundary: Vec<usize> =
            band.iter().filter(|(_, k)| better(k, &boundary).is_eq()).map(|(i, _)| *i).collect();
        let straddles = band[..quota as usize].iter().any(|(_, k)| better(k, &boundary).is_eq());
        let fully_tied: Vec<String> =
            if straddles { tied_at_boundary.iter().map(|&i| units[i].unit_name.clone()).collect() } else { vec![] };
        let share = format!("{:.0}%", rules.five_star_quota * 100.0);
        let by = tie_break_zh(inputs, rules);
        for (pos, (i, k)) in band.iter().enumerate() {
            let kept = pos < quota as usize && !better(k, &boundary).is_eq();
            if kept {
                continue;
            }
            let u = &mut units[*i];
            u.grade = Some(4);
            let limit = format!("同级五星限额 {quota} 个（{share} × {graded} 个参评）");
            let why = if straddles && tied_at_boundary.contains(i) {
                let others: Vec<&str> = fully_tied.iter().filter(|n| **n != u.unit_name).map(String::as_str).collect();
                format!(
                    "得分达五星线，与{}得分{}相同、并列于限额边界，{limit}，并列者均不评五星：评为四星",
                    others.join("、"),
                    if by.is_empty() { String::new() } else { format!("及{by}") }
                )
            } else if pos >= quota as usize && pos > 0 && band[pos - 1].1[0] == k[0] && !by.is_empty() {
                format!("得分达五星线，与排在前面的单位得分相同，按{by}排序第 {} 位，超出{limit}：评为四星", pos + 1)
            } else {
                format!("得分达五星线，五星候选中排序第 {} 位，超出{limit}：评为四星", pos + 1)
            };
            u.reasons.push(why);
        }
        // Units of the boundary's score on both sides of it: the report names them, with what
        // each got, and the one kept says why.
        let at = boundary[0];
        let same_score: Vec<usize> = band.iter().filter(|(_, k)| k[0] == at).map(|(i, _)| *i).collect();
        if band[..quota as usize].iter().any(|(_, k)| k[0] == at) {
            tied = same_score
                .iter()
                .map(|&i| format!("{}（{}）", units[i].unit_name, stars_zh(units[i].grade.unwrap_or(0))))
                .collect();
            for &i in &same_score {
                if units[i].grade == Some(5) {
                    let others: Vec<String> =
                        same_score.iter().filter(|&&j| j != i).map(|&j| units[j].unit_name.clone()).collect();
                    units[i]
                        .reasons
                        .push(format!("得分与{}相同、并列于五星限额边界，按{by}排序在前：保留五星", others.join("、")));
                }
            }
        }
    }
    let mut counts = [0u32; 5];
    for &i in &members {
        if let Some(g) = units[i].grade {
            counts[5 - g as usize] += 1;
        }
    }
    LevelGrades { level, graded, quota, stars: counts, in_band, tied }
}

fn tie_break_zh(inputs: &Inputs, rules: &AppraisalRules) -> String {
    rules
        .tie_break
        .iter()
        .map(|t| inputs.catalogue.get(t).map_or(t.clone(), |i| i.name_zh.clone()))
        .collect::<Vec<_>>()
        .join("、")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn unit(id: &str, level: &str, path: &[&str]) -> UnitInfo {
        UnitInfo {
            id: id.into(),
            name: format!("{id}名"),
            level: level.into(),
            category: Some("community".into()),
            path: path.iter().map(|s| s.to_string()).collect(),
            since: None,
        }
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// Branches B1–B5 under one community; values: attendance and assessment only.
    struct World {
        units: Vec<UnitInfo>,
        values: HashMap<(String, String), f64>,
        findings: Vec<Finding>,
        weak: HashMap<String, Vec<Period>>,
    }

    fn world(scores: &[(&str, f64, f64)]) -> World {
        let mut units = vec![unit("D", "district", &["D"]), unit("C", "community", &["D", "C"])];
        let mut values = HashMap::new();
        for (id, att, assess) in scores {
            units.push(unit(id, "branch", &["D", "C", id]));
            values.insert((id.to_string(), "attendance_rate".to_string()), *att);
            values.insert((id.to_string(), "assessment_score".to_string()), *assess);
        }
        World { units, values, findings: vec![], weak: HashMap::new() }
    }

    fn rules() -> AppraisalRules {
        AppraisalRules {
            levels: vec![Level::Branch],
            components: vec![
                Component { indicator: "attendance_rate".into(), weight: 0.5 },
                Component { indicator: "assessment_score".into(), weight: 0.5 },
            ],
            ..Default::default()
        }
    }

    fn run(w: &World, rules: &AppraisalRules) -> Appraisal {
        let catalogue = Catalogue::builtin();
        let inputs = Inputs {
            year: 2025,
            catalogue: &catalogue,
            units: &w.units,
            values: w.values.clone(),
            findings: &w.findings,
            tasks: &[],
            weak_quarters: &w.weak,
        };
        appraise(&inputs, rules).unwrap()
    }

    fn grade_of(a: &Appraisal, id: &str) -> Option<u32> {
        a.units.iter().find(|u| u.unit_id == id).unwrap().grade
    }

    #[test]
    fn the_quota_keeps_the_best_and_a_tie_broken_by_assessment() {
        // Ten branches: quota ⌊0.3 × 10⌋ = 3. Scores (0.5 × 100·attendance + 0.5 × assessment):
        // B1 98, B2 96, B3 95 (assessment 94), B4 95 (assessment 90), B5 92, the rest below 90.
        let mut s =
            vec![("B1", 0.98, 98.0), ("B2", 0.96, 96.0), ("B3", 0.96, 94.0), ("B4", 1.00, 90.0), ("B5", 0.92, 92.0)];
        let low = [("B6", 0.8, 80.0), ("B7", 0.7, 70.0), ("B8", 0.6, 60.0), ("B9", 0.5, 50.0), ("BA", 0.85, 85.0)];
        s.extend(low);
        let a = run(&world(&s), &rules());
        assert_eq!(["B1", "B2", "B3", "B4", "B5"].map(|b| grade_of(&a, b)), [5, 5, 5, 4, 4].map(Some));
        let b4 = a.units.iter().find(|u| u.unit_id == "B4").unwrap();
        assert_eq!(b4.score, Some(95.0));
        assert!(b4.reasons.iter().any(|r| r.contains("按考核得分排序第 4 位")), "{:?}", b4.reasons);
        let level = &a.levels[0];
        assert_eq!((level.graded, level.quota, level.in_band, level.stars), (10, 3, 5, [3, 4, 1, 1, 1]));
        assert_eq!(level.tied, ["B3名（五星）", "B4名（四星）"]);
        let b3 = a.units.iter().find(|u| u.unit_id == "B3").unwrap();
        assert!(
            b3.reasons.iter().any(|r| r.contains("得分与B4名相同、并列于五星限额边界，按考核得分排序在前")),
            "{:?}",
            b3.reasons
        );
        assert!(a.units.iter().all(|u| u.eligible));
    }

    #[test]
    fn units_equal_on_every_key_at_the_boundary_all_get_four_stars() {
        // Quota 3 of 10; B3 and B4 equal in score and assessment, third and fourth.
        let mut s = vec![("B1", 0.98, 98.0), ("B2", 0.96, 96.0), ("B3", 0.94, 94.0), ("B4", 0.94, 94.0)];
        s.extend([("B5", 0.8, 80.0), ("B6", 0.7, 70.0), ("B7", 0.6, 60.0), ("B8", 0.5, 50.0), ("B9", 0.85, 85.0)]);
        s.push(("BA", 0.1, 10.0));
        let a = run(&world(&s), &rules());
        assert_eq!(["B1", "B2", "B3", "B4"].map(|b| grade_of(&a, b)), [5, 5, 4, 4].map(Some));
        assert_eq!(a.levels[0].tied, ["B3名（四星）", "B4名（四星）"]);
        let b3 = a.units.iter().find(|u| u.unit_id == "B3").unwrap();
        assert!(b3.reasons.iter().any(|r| r.contains("与B4名得分及考核得分相同")), "{:?}", b3.reasons);
        // The same rank for equal scores.
        assert_eq!(b3.rank, Some(3));
        assert_eq!(a.units.iter().find(|u| u.unit_id == "B4").unwrap().rank, Some(3));
    }

    #[test]
    fn a_serious_finding_overdue_at_year_end_vetoes_the_unit_and_those_above_it() {
        let mut w = world(&[("B1", 1.0, 100.0), ("B2", 0.9, 90.0)]);
        let finding = |id: &str, unit: &str, severity: &str, deadline: &str, rectified: Option<&str>| Finding {
            finding_id: id.into(),
            unit_id: unit.into(),
            found: day("2025-03-01"),
            source: "expert".into(),
            severity: severity.into(),
            description: "x".into(),
            deadline: day(deadline),
            rectified: rectified.map(day),
            problem_id: None,
        };
        w.findings = vec![
            finding("F-1", "B1", "serious", "2025-10-31", None),
            // Rectified after the year's end: still overdue on 12-31.
            finding("F-2", "B1", "serious", "2025-11-30", Some("2026-01-05")),
            // Not serious, or not yet due, or rectified in time: no veto.
            finding("F-3", "B2", "major", "2025-06-30", None),
            finding("F-4", "B2", "serious", "2026-01-31", None),
            finding("F-5", "B2", "serious", "2025-06-30", Some("2025-06-30")),
        ];
        w.values.insert(("C".into(), "attendance_rate".into()), 0.95);
        w.values.insert(("C".into(), "assessment_score".into()), 95.0);
        let mut r = rules();
        r.levels = vec![Level::Community, Level::Branch];
        let a = run(&w, &r);
        let b1 = a.units.iter().find(|u| u.unit_id == "B1").unwrap();
        assert!(!b1.eligible);
        // Band five stars, capped at three.
        assert_eq!(b1.grade, Some(3));
        assert!(
            b1.reasons[0].contains("严重及以上问题 F-1（整改时限 2025-10-31）、F-2（整改时限 2025-11-30）"),
            "{:?}",
            b1.reasons
        );
        assert!(b1.reasons.iter().any(|r| r.contains("由五星降为三星")));
        let b2 = a.units.iter().find(|u| u.unit_id == "B2").unwrap();
        assert!(b2.eligible, "{:?}", b2.reasons);
        // The community answers for its branch.
        let c = a.units.iter().find(|u| u.unit_id == "C").unwrap();
        assert!(!c.eligible);
        assert!(c.reasons[0].contains("F-1（B1名）"), "{:?}", c.reasons);
        // With the scope `own`, it does not.
        r.vetoes = vec![Veto::OverdueFinding {
            severity: Severity::Serious,
            scope: Scope::Own,
            ineligible: true,
            max_stars: Some(3),
        }];
        let a = run(&w, &r);
        assert!(a.units.iter().find(|u| u.unit_id == "C").unwrap().eligible);
    }

    #[test]
    fn weak_in_two_quarters_is_not_eligible_and_missing_parts_are_rescaled() {
        let mut w = world(&[("B1", 0.9, 80.0), ("B2", 0.9, 80.0)]);
        w.values.remove(&("B2".to_string(), "assessment_score".to_string()));
        w.weak.insert("B1".into(), vec!["2025Q2".parse().unwrap(), "2025Q3".parse().unwrap()]);
        let a = run(&w, &rules());
        let b1 = &a.units[0];
        assert!(!b1.eligible);
        assert!(b1.reasons[0].contains("2025Q2、2025Q3 共 2 个季度列为软弱涣散候选"), "{:?}", b1.reasons);
        // 0.5 × 90 + 0.5 × 80.
        assert_eq!(b1.score, Some(85.0));
        // B2 has attendance only: half the weight, enough at min_weight 0.5: 90 rescaled.
        let b2 = &a.units[1];
        assert_eq!(b2.score, Some(90.0));
        assert!(b2.reasons[0].contains("缺考核得分，按其余 50% 的权重折算"), "{:?}", b2.reasons);
        let mut r = rules();
        r.min_weight = 0.6;
        let a = run(&w, &r);
        assert_eq!((a.units[1].score, a.units[1].grade, a.units[1].eligible), (None, None, false));
        assert!(a.units[1].reasons[0].starts_with("数据不足"), "{:?}", a.units[1].reasons);
    }

    #[test]
    fn the_rules_are_checked() {
        let parse = |s: &str| toml::from_str::<AppraisalRules>(s);
        let r = parse("[[veto]]\nwhen = \"weak_quarters\"\nat_least = 3\n").unwrap();
        assert_eq!(r.vetoes, [Veto::WeakQuarters { at_least: 3, ineligible: true, max_stars: None }]);
        assert_eq!(r.components, default_components());
        assert!(parse("[[veto]]\nwhen = \"weak_quarters\"\nat_least = 3\ncolour = 1\n").is_err());
        assert!(parse("[[veto]]\nwhen = \"sometimes\"\n").is_err());
        let bad = AppraisalRules { bands: [90.0, 95.0, 70.0, 60.0], ..Default::default() };
        assert_eq!(bad.check().unwrap_err().0, "bands");
        let mut bad = AppraisalRules::default();
        bad.components.push(Component { indicator: "overdue_tasks".into(), weight: 0.1 });
        assert!(bad.check_against(&Catalogue::builtin()).unwrap_err().contains("lower is better"));
        assert!(AppraisalRules::default().check().is_ok());
        assert!(AppraisalRules::default().check_against(&Catalogue::builtin()).is_ok());
        let weights: f64 = default_components().iter().map(|c| c.weight).sum();
        assert!((weights - 1.0).abs() < 1e-12);
    }
}
