//! The review loop's ledgers in a pack: the target tasks and the findings as they stand, and
//! what the pack reports of them (上期问题整改情况, 逾期未整改, 六大工程推进情况).

use std::collections::{BTreeMap, HashMap};

use anyhow::Result;
use chrono::NaiveDate;

use super::strs;
use crate::indicators::tree::UnitInfo;
use crate::model::Table;
use crate::model::period::Period;
use crate::warehouse::{Snapshot, date_values, scan_table};

/// One task of the target ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub task_id: String,
    pub unit_id: String,
    pub project: String,
    pub title: String,
    pub due: NaiveDate,
    pub done: Option<NaiveDate>,
}

impl Task {
    /// Done by `day`.
    pub fn done_by(&self, day: NaiveDate) -> bool {
        self.done.is_some_and(|d| d <= day)
    }
}

/// One finding of the rectification ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub finding_id: String,
    pub unit_id: String,
    pub found: NaiveDate,
    pub source: String,
    pub severity: String,
    pub description: String,
    pub deadline: NaiveDate,
    pub rectified: Option<NaiveDate>,
    pub problem_id: Option<String>,
}

impl Finding {
    pub fn rectified_by(&self, day: NaiveDate) -> bool {
        self.rectified.is_some_and(|d| d <= day)
    }
}

/// Every task as the latest exports have it.
pub fn load_tasks(snapshot: &Snapshot) -> Result<Vec<Task>> {
    let df = scan_table(snapshot, Table::Tasks)?.collect()?;
    let (id, unit, project, title) =
        (strs(&df, "task_id")?, strs(&df, "unit_id")?, strs(&df, "project")?, strs(&df, "title")?);
    let (status, due, done) = (strs(&df, "status")?, date_values(&df, "due_date")?, date_values(&df, "done_date")?);
    let mut out: Vec<Task> = (0..df.height())
        .filter_map(|i| {
            Some(Task {
                task_id: id[i].clone()?,
                unit_id: unit[i].clone()?,
                project: project[i].clone()?,
                title: title[i].clone().unwrap_or_default(),
                due: due[i]?,
                // A done date counts only for a task marked done (the validator requires both).
                done: done[i].filter(|_| status[i].as_deref() == Some("done")),
            })
        })
        .collect();
    out.sort_by(|a, b| a.task_id.cmp(&b.task_id));
    Ok(out)
}

/// Every finding as the latest exports have it.
pub fn load_findings(snapshot: &Snapshot) -> Result<Vec<Finding>> {
    let df = scan_table(snapshot, Table::Findings)?.collect()?;
    let (id, unit, source, severity) =
        (strs(&df, "finding_id")?, strs(&df, "unit_id")?, strs(&df, "source")?, strs(&df, "severity")?);
    let (description, status, problem) = (strs(&df, "description")?, strs(&df, "status")?, strs(&df, "problem_id")?);
    let (found, deadline, rectified) =
        (date_values(&df, "found_date")?, date_values(&df, "deadline")?, date_values(&df, "rectified_date")?);
    let mut out: Vec<Finding> = (0..df.height())
        .filter_map(|i| {
            Some(Finding {
                finding_id: id[i].clone()?,
                unit_id: unit[i].clone()?,
                found: found[i]?,
                source: source[i].clone()?,
                severity: severity[i].clone()?,
                description: description[i].clone().unwrap_or_default(),
                deadline: deadline[i]?,
                rectified: rectified[i].filter(|_| status[i].as_deref() == Some("rectified")),
                problem_id: problem[i].clone(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.finding_id.cmp(&b.finding_id));
    Ok(out)
}

/// Findings due in a period, by how they ended (上期问题整改情况, the findings' half).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct DueFindings {
    pub due: u32,
    pub on_time: u32,
    pub late: u32,
    pub open: u32,
}

/// Per source (in `FINDING_SOURCES` order), the findings whose deadline falls in `period`:
/// rectified by the deadline, rectified after it (by the period's end), still open then.
pub fn due_findings(findings: &[Finding], period: Period) -> Vec<(String, DueFindings)> {
    let end = period.last_day();
    let mut by: BTreeMap<usize, (String, DueFindings)> = BTreeMap::new();
    for f in findings.iter().filter(|f| period.contains(f.deadline)) {
        let order = crate::model::kinds::FINDING_SOURCES.iter().position(|s| s.code == f.source).unwrap_or(99);
        let (_, d) = by.entry(order).or_insert_with(|| (f.source.clone(), DueFindings::default()));
        d.due += 1;
        match f.rectified {
            Some(r) if r <= f.deadline => d.on_time += 1,
            Some(r) if r <= end => d.late += 1,
            _ => d.open += 1,
        }
    }
    by.into_values().collect()
}

/// What is overdue on a day, for one unit: findings (serious first) and tasks.
#[derive(Debug, Clone, PartialEq)]
pub struct Overdue<'a> {
    pub unit_id: String,
    pub findings: Vec<&'a Finding>,
    pub tasks: Vec<&'a Task>,
}

fn severity_rank(s: &str) -> usize {
    ["serious", "major", "minor"].iter().position(|x| *x == s).unwrap_or(3)
}

/// Units with findings or tasks due by `day` and not closed by then (SPEC §4), the unit with
/// the most serious finding first, then by how many are overdue; only units of `units`.
pub fn overdue<'a>(findings: &'a [Finding], tasks: &'a [Task], units: &[UnitInfo], day: NaiveDate) -> Vec<Overdue<'a>> {
    let known: HashMap<&str, usize> = units.iter().enumerate().map(|(i, u)| (u.id.as_str(), i)).collect();
    let mut by: BTreeMap<&str, Overdue<'a>> = BTreeMap::new();
    for f in
        findings.iter().filter(|f| f.deadline <= day && !f.rectified_by(day) && known.contains_key(f.unit_id.as_str()))
    {
        by.entry(&f.unit_id)
            .or_insert_with(|| Overdue { unit_id: f.unit_id.clone(), findings: Vec::new(), tasks: Vec::new() })
            .findings
            .push(f);
    }
    for t in tasks.iter().filter(|t| t.due <= day && !t.done_by(day) && known.contains_key(t.unit_id.as_str())) {
        by.entry(&t.unit_id)
            .or_insert_with(|| Overdue { unit_id: t.unit_id.clone(), findings: Vec::new(), tasks: Vec::new() })
            .tasks
            .push(t);
    }
    let mut out: Vec<Overdue> = by.into_values().collect();
    for o in &mut out {
        o.findings.sort_by_key(|f| (severity_rank(&f.severity), f.deadline));
        o.tasks.sort_by_key(|t| t.due);
    }
    let worst = |o: &Overdue| o.findings.first().map_or(3, |f| severity_rank(&f.severity));
    out.sort_by_key(|o| (worst(o), std::cmp::Reverse(o.findings.len() + o.tasks.len()), known[o.unit_id.as_str()]));
    out
}

/// Tasks of one project in a period (六大工程推进情况).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ProjectProgress {
    pub project: String,
    /// Tasks due in the period, and those done by their due date.
    pub due: u32,
    pub on_time: u32,
    /// Tasks due by the period's last day and not done by then (any year).
    pub overdue: u32,
    /// Units with an overdue task of the project.
    pub units_behind: Vec<String>,
}

/// Progress per project, in `PROJECTS` order; only projects with tasks.
pub fn projects(tasks: &[Task], units: &[UnitInfo], period: Period) -> Vec<ProjectProgress> {
    let known: std::collections::HashSet<&str> = units.iter().map(|u| u.id.as_str()).collect();
    let end = period.last_day();
    let mut out = Vec::new();
    for p in crate::model::kinds::PROJECTS {
        let mine: Vec<&Task> =
            tasks.iter().filter(|t| t.project == p.code && known.contains(t.unit_id.as_str())).collect();
        if mine.is_empty() {
            continue;
        }
        let mut row = ProjectProgress { project: p.code.to_string(), ..Default::default() };
        for t in &mine {
            if period.contains(t.due) {
                row.due += 1;
                row.on_time += u32::from(t.done.is_some_and(|d| d <= t.due));
            }
            if t.due <= end && !t.done_by(end) {
                row.overdue += 1;
                if !row.units_behind.contains(&t.unit_id) {
                    row.units_behind.push(t.unit_id.clone());
                }
            }
        }
        out.push(row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn finding(id: &str, unit: &str, severity: &str, deadline: &str, rectified: Option<&str>) -> Finding {
        Finding {
            finding_id: id.into(),
            unit_id: unit.into(),
            found: day("2026-01-05"),
            source: "regular".into(),
            severity: severity.into(),
            description: String::new(),
            deadline: day(deadline),
            rectified: rectified.map(day),
            problem_id: None,
        }
    }

    fn unit(id: &str) -> UnitInfo {
        UnitInfo {
            id: id.into(),
            name: id.into(),
            level: "branch".into(),
            category: None,
            path: vec![id.into()],
            since: None,
        }
    }

    /// A finding rectified on time, one late within the period, one late after it, one open,
    /// and one due next period.
    #[test]
    fn findings_due_in_a_period_by_how_they_ended() {
        let q1 = Period::Quarter { year: 2026, quarter: 1 };
        let fs = vec![
            finding("F1", "B1", "minor", "2026-02-01", Some("2026-01-20")),
            finding("F2", "B1", "major", "2026-02-01", Some("2026-03-10")),
            finding("F3", "B1", "major", "2026-03-01", Some("2026-04-10")),
            finding("F4", "B2", "serious", "2026-03-15", None),
            finding("F5", "B2", "minor", "2026-04-15", None),
        ];
        let due = due_findings(&fs, q1);
        assert_eq!(due, vec![("regular".into(), DueFindings { due: 4, on_time: 1, late: 1, open: 2 })]);
        let units = vec![unit("B1"), unit("B2")];
        let over = overdue(&fs, &[], &units, q1.last_day());
        // B2's serious finding comes first; F2 was rectified by then, F5 is not due yet.
        assert_eq!(over.iter().map(|o| o.unit_id.as_str()).collect::<Vec<_>>(), ["B2", "B1"]);
        assert_eq!(over[0].findings.iter().map(|f| f.finding_id.as_str()).collect::<Vec<_>>(), ["F4"]);
        assert_eq!(over[1].findings.iter().map(|f| f.finding_id.as_str()).collect::<Vec<_>>(), ["F3"]);
    }
}
