//! The pack's account of the review loop: what became of last period's problems, the
//! findings due this period, what is overdue, and the six projects' tasks (SPEC §5, issue
//! "review loop"). Builds the template's context and the workbook's rows; never prints.

use std::collections::HashMap;

use serde::Serialize;

use crate::model::kinds::{FINDING_SOURCES, PROJECTS, SEVERITIES, label_of};
use crate::model::period::PeriodKind;
use crate::review::Pack;
use crate::review::ledgers::{self, Overdue};
use crate::review::life::State;
use crate::review::problems::Problem;

/// Last period's problems, and how the list moved.
#[derive(Debug, Clone, Serialize)]
pub struct Movement {
    pub previous: String,
    pub resolved: usize,
    pub persisting: usize,
    pub recurring: usize,
    pub new: usize,
    /// The problems of the period before: those still there by priority, then the resolved,
    /// each in one line (the page keeps the first [`super::LISTED`]).
    pub rows: Vec<MovementRow>,
    /// How many there are in all.
    pub total: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct MovementRow {
    pub unit: String,
    pub indicator: String,
    pub state: &'static str,
    pub css: &'static str,
    pub first_period: String,
    pub periods_flagged: u32,
    pub now: String,
}

pub fn movement(pack: &Pack, problems: &[Problem]) -> Movement {
    let count = |s: State| problems.iter().filter(|p| p.life.state == s).count();
    let mut before: Vec<&Problem> =
        problems.iter().filter(|p| matches!(p.life.state, State::Resolved | State::Persisting)).collect();
    // What is still there first, by priority, then what was solved.
    before.sort_by_key(|p| (p.life.state == State::Resolved, p.priority.unwrap_or(u32::MAX)));
    let total = before.len();
    let rows = before
        .into_iter()
        .map(|p| MovementRow {
            unit: p.unit_name.clone(),
            indicator: format!("{}（{}）", indicator_zh(pack, &p.indicator), super::kind_zh(p.kind).0),
            state: p.life.state.zh(),
            css: if p.life.state == State::Resolved { "green" } else { "red" },
            first_period: p.life.first_period.to_string(),
            periods_flagged: p.life.periods_flagged,
            now: if p.kind == "weak" && p.life.state != State::Resolved {
                super::weak_note_zh(&p.evidence)
            } else {
                p.evidence.clone()
            },
        })
        .collect();
    Movement {
        previous: pack.period.previous().to_string(),
        resolved: count(State::Resolved),
        persisting: count(State::Persisting),
        recurring: count(State::Recurring),
        new: count(State::New),
        rows,
        total,
    }
}

pub fn indicator_zh(pack: &Pack, id: &str) -> String {
    pack.catalogue.get(id).map(|i| i.name_zh.clone()).unwrap_or_else(|| "软弱涣散候选".into())
}

/// Findings due this period, per source.
#[derive(Debug, Clone, Serialize)]
pub struct DueRow {
    pub source: &'static str,
    pub due: u32,
    pub on_time: u32,
    pub late: u32,
    pub open: u32,
}

pub fn due_findings(pack: &Pack) -> Vec<DueRow> {
    ledgers::due_findings(&pack.findings, pack.period)
        .into_iter()
        .map(|(source, d)| DueRow {
            source: label_of(FINDING_SOURCES, &source),
            due: d.due,
            on_time: d.on_time,
            late: d.late,
            open: d.open,
        })
        .collect()
}

/// One unit's overdue items, each in words.
#[derive(Debug, Clone, Serialize)]
pub struct OverdueRow {
    pub unit_id: String,
    pub unit: String,
    pub findings: Vec<String>,
    pub tasks: Vec<String>,
    pub serious: bool,
}

/// Everything overdue at the period's end; for a month, only what fell due in it (the
/// bulletin's "newly overdue").
pub fn overdue(pack: &Pack) -> Vec<OverdueRow> {
    let end = pack.period.last_day();
    let list = ledgers::overdue(&pack.findings, &pack.tasks, &pack.units, end);
    let month = pack.period.kind() == PeriodKind::Month;
    list.into_iter()
        .filter_map(|o: Overdue| {
            let findings: Vec<String> = o
                .findings
                .iter()
                .filter(|f| !month || pack.period.contains(f.deadline))
                .map(|f| {
                    format!(
                        "【{}】{}（{}，整改时限 {}）",
                        label_of(SEVERITIES, &f.severity),
                        f.description,
                        label_of(FINDING_SOURCES, &f.source),
                        f.deadline
                    )
                })
                .collect();
            let tasks: Vec<String> = o
                .tasks
                .iter()
                .filter(|t| !month || pack.period.contains(t.due))
                .map(|t| format!("{}（{}工程，完成时限 {}）", t.title, label_of(PROJECTS, &t.project), t.due))
                .collect();
            if findings.is_empty() && tasks.is_empty() {
                return None;
            }
            let serious = o.findings.iter().any(|f| f.severity == "serious");
            let unit = pack.unit(&o.unit_id).map_or_else(|| o.unit_id.clone(), |u| u.name.clone());
            Some(OverdueRow { unit_id: o.unit_id, unit, findings, tasks, serious })
        })
        .collect()
}

/// One project's tasks this period.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectRow {
    pub project: &'static str,
    pub due: u32,
    pub on_time: u32,
    pub rate: String,
    pub overdue: u32,
    /// The units behind, by name (the report prints the first few, the workbook all).
    pub behind: Vec<String>,
    /// Their ids, in the same order.
    #[serde(skip)]
    pub behind_ids: Vec<String>,
}

pub fn projects(pack: &Pack) -> Vec<ProjectRow> {
    ledgers::projects(&pack.tasks, &pack.units, pack.period)
        .into_iter()
        .map(|p| {
            let names: Vec<String> =
                p.units_behind.iter().map(|id| pack.unit(id).map_or_else(|| id.clone(), |u| u.name.clone())).collect();
            ProjectRow {
                project: label_of(PROJECTS, &p.project),
                due: p.due,
                on_time: p.on_time,
                rate: if p.due > 0 { format!("{:.1}%", 100.0 * p.on_time as f64 / p.due as f64) } else { "—".into() },
                overdue: p.overdue,
                behind: names,
                behind_ids: p.units_behind.clone(),
            }
        })
        .collect()
}

/// The findings that answer a problem (an expert's diagnosis), in words: description,
/// deadline, state; by problem id, built once for the whole list.
pub fn diagnoses(pack: &Pack) -> HashMap<&str, Vec<String>> {
    let end = pack.period.last_day();
    let mut out: HashMap<&str, Vec<String>> = HashMap::new();
    for f in pack.findings.iter().filter(|f| f.found <= end) {
        let Some(id) = f.problem_id.as_deref() else { continue };
        let state = if f.rectified_by(end) {
            "已整改"
        } else if f.deadline <= end {
            "逾期未整改"
        } else {
            "整改中"
        };
        let text =
            format!("{}（{}，整改时限 {}，{state}）", f.description, label_of(FINDING_SOURCES, &f.source), f.deadline);
        out.entry(id).or_default().push(text);
    }
    out
}

/// Periods the problem-flow chart covers, the current one last.
const FLOW_PERIODS: usize = 8;

/// The problem flow: per period, the problems new, back again, still there and solved, over
/// the last eight periods of the pack's kind (lists stored before problems had states are
/// left blank).
pub fn flow_chart(pack: &Pack, problems: &[Problem]) -> crate::charts::Chart {
    let mut periods = vec![pack.period];
    while periods.len() < FLOW_PERIODS {
        let p = periods[0].previous();
        periods.insert(0, p);
    }
    let states = [State::New, State::Recurring, State::Persisting, State::Resolved];
    let count = |p: crate::model::period::Period, s: State| -> Option<f64> {
        if p == pack.period {
            return Some(problems.iter().filter(|x| x.life.state == s).count() as f64);
        }
        let list = pack.earlier_problems.get(&p)?;
        if list.iter().any(|(_, st)| st.is_none()) {
            return None;
        }
        Some(list.iter().filter(|(_, st)| *st == Some(s)).count() as f64)
    };
    let series = states
        .iter()
        .map(|s| crate::charts::Series {
            label: s.zh().to_string(),
            points: periods.iter().map(|p| count(*p, *s)).collect(),
        })
        .collect();
    crate::charts::Chart::Trend {
        id: "problem-flow".into(),
        title: format!("问题动态 · 近{FLOW_PERIODS}期新发现、反弹、持续与解决（条）"),
        unit: "count".into(),
        x_labels: periods.iter().map(|p| p.to_string()).collect(),
        series,
    }
}
