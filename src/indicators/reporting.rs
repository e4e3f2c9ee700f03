//! Reporting as data (SPEC §4, missing is not zero): for each branch and month of a period,
//! whether any attendance row arrived, from which exports, and when the warehouse first and last
//! received them (the ingest ledger's times). This is the `submissions` table, what the
//! pipeline checks before it judges a period, and the report's 报送情况.
//!
//! Never prints.

use std::collections::{BTreeSet, HashMap};

use anyhow::{Context, Result};
use chrono::NaiveDate;
use polars::prelude::*;

use super::catalogue::{ReportingRules, Source};
use super::compute::{UnitInfo, collect_all, month_index, source_rows};
use crate::model::{Level, Period, Table};
use crate::warehouse::{Snapshot, scan_table};

/// One branch's attendance for one month.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Submission {
    pub unit_id: String,
    pub unit_name: String,
    pub parent_id: Option<String>,
    pub month: Period,
    /// Attendance rows stored for the month (0: not reported).
    pub rows: i64,
    pub events: i64,
    /// The exports the rows came from.
    pub files: Vec<String>,
    /// When the warehouse first and last received rows of the month (µs since the epoch, UTC).
    pub first_received: Option<i64>,
    pub last_received: Option<i64>,
    /// Whether the first rows came after the deadline; `None` when nothing came, or the
    /// deadline passed before the warehouse's first ingest (a backfill is not late).
    pub late: Option<bool>,
}

impl Submission {
    pub fn reported(&self) -> bool {
        self.rows > 0
    }
}

/// Every branch-month of a period.
#[derive(Debug, Clone, Default)]
pub struct Reporting {
    pub submissions: Vec<Submission>,
}

impl Reporting {
    pub fn expected(&self) -> usize {
        self.submissions.len()
    }

    pub fn reported(&self) -> usize {
        self.submissions.iter().filter(|s| s.reported()).count()
    }

    /// Branch-months reported over branch-months expected; `None` with no branch.
    pub fn rate(&self) -> Option<f64> {
        (self.expected() > 0).then(|| self.reported() as f64 / self.expected() as f64)
    }

    /// The branches that did not report, by month in order.
    pub fn missing_by_month(&self) -> Vec<(Period, Vec<&Submission>)> {
        let mut out: Vec<(Period, Vec<&Submission>)> = Vec::new();
        for s in self.submissions.iter().filter(|s| !s.reported()) {
            match out.last_mut() {
                Some((m, list)) if *m == s.month => list.push(s),
                _ => out.push((s.month, vec![s])),
            }
        }
        out
    }

    pub fn late(&self) -> Vec<&Submission> {
        self.submissions.iter().filter(|s| s.late == Some(true)).collect()
    }
}

/// What each branch-month's stored rows say, keyed by (branch, year, month).
#[derive(Default)]
struct Arrived {
    rows: i64,
    events: i64,
    files: BTreeSet<String>,
    first: Option<i64>,
    last: Option<i64>,
}

/// The submissions of every branch (of the tree in `units`) for every month of `period`.
pub fn reporting(snapshot: &Snapshot, units: &[UnitInfo], period: Period, rules: &ReportingRules) -> Result<Reporting> {
    let arrived = arrived(snapshot, period)?;
    let first_ingest = first_ingest(snapshot)?;
    let mut submissions = Vec::new();
    for (year, month) in period.months() {
        let month_period = Period::Month { year, month };
        let deadline = deadline(month_period, rules.deadline_days);
        // A branch created inside the period is expected from its first month on.
        let exists = |b: &&UnitInfo| b.exists_in(month_period);
        for b in units.iter().filter(|u| u.level == Level::Branch.code()).filter(exists) {
            let a = arrived.get(&(b.id.clone(), year, month));
            let first_received = a.and_then(|a| a.first);
            submissions.push(Submission {
                unit_id: b.id.clone(),
                unit_name: b.name.clone(),
                parent_id: b.path.len().checked_sub(2).map(|i| b.path[i].clone()),
                month: month_period,
                rows: a.map_or(0, |a| a.rows),
                events: a.map_or(0, |a| a.events),
                files: a.map_or_else(Vec::new, |a| a.files.iter().cloned().collect()),
                first_received,
                last_received: a.and_then(|a| a.last),
                late: late(first_received, first_ingest, deadline),
            });
        }
    }
    Ok(Reporting { submissions })
}

/// Whether a month's first rows came after its deadline. Not judged when nothing came, nor when
/// the warehouse's first ingest was after the deadline: the month was backfilled, not late.
fn late(first_received: Option<i64>, first_ingest: Option<i64>, deadline: i64) -> Option<bool> {
    let judged = first_ingest.is_some_and(|f| f < deadline);
    first_received.filter(|_| judged).map(|t| t >= deadline)
}

/// The first moment after a month's deadline day (UTC), in µs.
fn deadline(month: Period, days: u32) -> i64 {
    let due: NaiveDate = month.end_exclusive() + chrono::Days::new(u64::from(days));
    due.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc().timestamp_micros()
}

/// When the warehouse received its first export, if it has any.
fn first_ingest(snapshot: &Snapshot) -> Result<Option<i64>> {
    let df = scan_table(snapshot, Table::Ingests)?
        .select([col("ingested_at").cast(DataType::Int64).min().alias("first")])
        .collect()?;
    Ok(df.column("first")?.i64()?.get(0))
}

/// The stored attendance of the period per branch-month, with the times its ingests ran.
fn arrived(snapshot: &Snapshot, period: Period) -> Result<HashMap<(String, i32, u32), Arrived>> {
    let rows = source_rows(snapshot, Source::Attendance, &[period])?.select([
        col("unit_id"),
        col("event_id"),
        col("source_file"),
        col("ingest_id"),
        month_index("event_date", &[period]).alias("month"),
    ]);
    let keys = [col("unit_id"), col("month")];
    let per_month = rows.clone().group_by(keys.clone()).agg([
        len().cast(DataType::Int64).alias("rows"),
        col("event_id").n_unique().cast(DataType::Int64).alias("events"),
    ]);
    // Per export and ingest: few groups, so the ingests' times are looked up after.
    let per_file = rows.group_by([col("unit_id"), col("month"), col("source_file"), col("ingest_id")]).agg([len()]);
    let [per_month, per_file]: [DataFrame; 2] =
        collect_all(vec![per_month, per_file])?.try_into().expect("two plans, two frames");
    let received = received(snapshot)?;

    let months = period.months();
    let key = |df: &DataFrame, i: usize| -> Result<(String, i32, u32)> {
        let month = df.column("month")?.i32()?.get(i).and_then(|m| months.get(usize::try_from(m).ok()?));
        let (year, month) = month.copied().context("a row of the period falls in one of its months")?;
        Ok((df.column("unit_id")?.str()?.get(i).unwrap_or_default().to_string(), year, month))
    };
    let mut out: HashMap<(String, i32, u32), Arrived> = HashMap::new();
    for i in 0..per_month.height() {
        let a = out.entry(key(&per_month, i)?).or_default();
        a.rows = per_month.column("rows")?.i64()?.get(i).unwrap_or(0);
        a.events = per_month.column("events")?.i64()?.get(i).unwrap_or(0);
    }
    let (files, ingests) = (per_file.column("source_file")?.str()?, per_file.column("ingest_id")?.str()?);
    for i in 0..per_file.height() {
        let a = out.entry(key(&per_file, i)?).or_default();
        a.files.insert(files.get(i).unwrap_or_default().to_string());
        if let Some(&t) = ingests.get(i).and_then(|id| received.get(id)) {
            a.first = Some(a.first.map_or(t, |f| f.min(t)));
            a.last = Some(a.last.map_or(t, |l| l.max(t)));
        }
    }
    Ok(out)
}

/// When each ingest ran (µs since the epoch).
fn received(snapshot: &Snapshot) -> Result<HashMap<String, i64>> {
    let df = scan_table(snapshot, Table::Ingests)?
        .group_by([col("ingest_id")])
        .agg([col("ingested_at").cast(DataType::Int64).min().alias("received")])
        .collect()?;
    let (id, at) = (df.column("ingest_id")?.str()?, df.column("received")?.i64()?);
    Ok(id.iter().zip(at.iter()).filter_map(|(i, t)| Some((i?.to_string(), t?))).collect())
}

/// The `submissions` rows of a period (the partition column `period` is in the path).
pub fn frame(r: &Reporting) -> Result<DataFrame> {
    let subs = &r.submissions;
    let s = |f: &dyn Fn(&Submission) -> Option<String>| subs.iter().map(f).collect::<Vec<Option<String>>>();
    let time = DataType::Datetime(TimeUnit::Microseconds, None);
    Ok(DataFrame::new(
        subs.len(),
        vec![
            Column::new("unit_id".into(), s(&|x| Some(x.unit_id.clone()))),
            Column::new("unit_name".into(), s(&|x| Some(x.unit_name.clone()))),
            Column::new("parent_id".into(), s(&|x| x.parent_id.clone())),
            Column::new("month".into(), s(&|x| Some(x.month.to_string()))),
            Column::new("reported".into(), subs.iter().map(Submission::reported).collect::<Vec<bool>>()),
            Column::new("rows".into(), subs.iter().map(|x| x.rows).collect::<Vec<i64>>()),
            Column::new("events".into(), subs.iter().map(|x| x.events).collect::<Vec<i64>>()),
            Column::new("files".into(), s(&|x| Some(x.files.join("; ")))),
            Column::new("first_received".into(), subs.iter().map(|x| x.first_received).collect::<Vec<_>>())
                .cast(&time)?,
            Column::new("last_received".into(), subs.iter().map(|x| x.last_received).collect::<Vec<_>>())
                .cast(&time)?,
            Column::new("late".into(), subs.iter().map(|x| x.late).collect::<Vec<Option<bool>>>()),
        ],
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_has_the_columns_of_the_model() {
        assert_eq!(frame(&Reporting::default()).unwrap().schema().as_ref(), &Table::Submissions.schema());
    }

    #[test]
    fn a_month_is_due_ten_days_after_its_end() {
        // March 2026 ends on the 31st; due by the end of April 10th (UTC).
        let d = deadline("2026-03".parse().unwrap(), 10);
        let expected = NaiveDate::from_ymd_opt(2026, 4, 11).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc();
        assert_eq!(d, expected.timestamp_micros());
    }

    #[test]
    fn late_is_judged_only_where_the_warehouse_was_running_by_the_deadline() {
        let deadline = 1_000;
        assert_eq!(late(Some(999), Some(10), deadline), Some(false), "in time");
        assert_eq!(late(Some(1_000), Some(10), deadline), Some(true), "the deadline's first moment is late");
        assert_eq!(late(Some(5_000), Some(10), deadline), Some(true));
        assert_eq!(late(None, Some(10), deadline), None, "nothing came: not reported, not late");
        assert_eq!(late(Some(5_000), Some(2_000), deadline), None, "a backfill");
        assert_eq!(late(Some(5_000), None, deadline), None);
    }

    #[test]
    fn the_rate_counts_branch_months() {
        let sub = |rows| Submission {
            unit_id: "B".into(),
            unit_name: "B".into(),
            parent_id: None,
            month: "2026-01".parse().unwrap(),
            rows,
            events: 0,
            files: vec![],
            first_received: None,
            last_received: None,
            late: None,
        };
        let r = Reporting { submissions: vec![sub(5), sub(0), sub(2), sub(1)] };
        assert_eq!((r.reported(), r.expected()), (3, 4));
        assert_eq!(r.rate(), Some(0.75));
        assert_eq!(r.missing_by_month().iter().map(|(_, l)| l.len()).sum::<usize>(), 1);
        assert_eq!(Reporting::default().rate(), None);
    }
}
