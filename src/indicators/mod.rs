//! Indicators (SPEC §4): the catalogue of definitions (`catalogue`), their computation over
//! the unit tree (`compute`), and the long `indicators` table written to
//! `indicators/period=PERIOD/`, replaced atomically when a period is recomputed.
//!
//! Never prints; `compute` returns a summary for the command to show.

pub mod catalogue;
pub mod compute;
mod leaves;
pub mod reporting;
pub mod spark;
#[cfg(feature = "spark")]
mod spark_connect;
pub mod tree;

pub use catalogue::{Catalogue, CatalogueError};

use anyhow::Result;
use polars::prelude::*;

use crate::model::period::Period;
use crate::model::{Status, Table};
use crate::warehouse::Warehouse;
use compute::{Figure, UnitInfo, WEAK};

/// Where a period's indicators are computed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Engine {
    /// This machine (the default).
    #[default]
    Local,
    /// A Spark Connect server, with the same definitions (`spark::script`).
    Spark(SparkRemote),
}

/// A Spark Connect server, and the warehouse as its cluster sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparkRemote {
    /// `sc://HOST:PORT`.
    pub url: String,
    /// The warehouse's path (or URL) on the cluster; `None`: this machine's absolute path.
    pub warehouse: Option<String>,
}

impl SparkRemote {
    /// A remote at `url`, which must be a Spark Connect address.
    pub fn new(url: &str, warehouse: Option<String>) -> Result<SparkRemote, EngineError> {
        let remote = SparkRemote { url: url.to_string(), warehouse };
        remote.address().map(|_| remote)
    }

    /// The server's host and port (Spark Connect's 15002 when the address names none):
    /// `sc://HOST[:PORT][/;param=value...]`, the host possibly an `[IPv6]` literal.
    pub fn address(&self) -> Result<(String, u16), EngineError> {
        let bad = || EngineError::NotAnAddress(self.url.clone());
        let rest = self.url.strip_prefix("sc://").ok_or_else(bad)?;
        let authority = rest.split(['/', ';']).next().unwrap_or_default();
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (host, after) = v6.split_once(']').ok_or_else(bad)?;
                (host, after.strip_prefix(':'))
            }
            None => match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        let port = match port {
            Some(p) => p.parse::<u16>().map_err(|_| bad())?,
            None => 15002,
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok((host.to_string(), port))
    }
}

impl Engine {
    /// The engine in a word, for a manifest.
    pub fn name(&self) -> &'static str {
        match self {
            Engine::Local => "local",
            Engine::Spark(_) => "spark",
        }
    }
}

/// An engine that cannot be used as asked: a usage or configuration error.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[cfg(not(feature = "spark"))]
    #[error(
        "this dangjian was built without Spark Connect: build it with `cargo build --release --features spark` (README, \"When one machine is not enough\")"
    )]
    NotBuilt,
    #[error("{0:?} is not a Spark Connect address: it looks like sc://HOST:PORT")]
    NotAnAddress(String),
}

/// What `compute` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ComputeSummary {
    pub period: Period,
    pub units: usize,
    pub indicators: usize,
    pub rows: usize,
    pub red: usize,
    pub amber: usize,
    pub green: usize,
    pub weak_candidates: Vec<(String, String, String)>,
    pub snapshot: u64,
    /// Branch-months with attendance, and branch-months expected.
    pub reported: usize,
    pub expected: usize,
}

/// The columns of the `indicators` table (the partition column `period` is in the path).
fn frame(rows: &[Row]) -> Result<DataFrame> {
    let s = |f: &dyn Fn(&Row) -> Option<String>| rows.iter().map(f).collect::<Vec<Option<String>>>();
    let n = |f: &dyn Fn(&Row) -> Option<f64>| rows.iter().map(f).collect::<Vec<Option<f64>>>();
    Ok(DataFrame::new(
        rows.len(),
        vec![
            Column::new("unit_id".into(), s(&|r| Some(r.unit.id.clone()))),
            Column::new("unit_name".into(), s(&|r| Some(r.unit.name.clone()))),
            Column::new("level".into(), s(&|r| Some(r.unit.level.clone()))),
            Column::new("category".into(), s(&|r| r.unit.category.clone())),
            Column::new("indicator".into(), s(&|r| Some(r.indicator.to_string()))),
            Column::new("value".into(), n(&|r| r.fig.value)),
            Column::new("numerator".into(), n(&|r| r.fig.numerator)),
            Column::new("denominator".into(), n(&|r| r.fig.denominator)),
            Column::new("status".into(), s(&|r| r.fig.status.map(|st| st.code().to_string()))),
            Column::new("rank".into(), rows.iter().map(|r| r.fig.rank.map(|x| x as i32)).collect::<Vec<Option<i32>>>()),
            Column::new("previous_value".into(), n(&|r| r.previous)),
            Column::new(
                "change".into(),
                n(&|r| match (r.fig.value, r.previous) {
                    (Some(v), Some(p)) => Some(v - p),
                    _ => None,
                }),
            ),
            Column::new("note".into(), s(&|r| r.fig.note.clone())),
        ],
    )?)
}

struct Row<'a> {
    unit: &'a UnitInfo,
    indicator: &'a str,
    fig: &'a Figure,
    previous: Option<f64>,
}

/// The indicators of `period` as the long table, ordered by indicator then unit (tree order).
pub fn indicator_frame(wh: &Warehouse, catalogue: &Catalogue, period: Period) -> Result<DataFrame> {
    let snapshot = wh.snapshot()?;
    let (mut units, figs) = compute::compute_figures(&snapshot, catalogue, period)?;
    units.sort_by(|a, b| a.path.cmp(&b.path));
    let mut ids: Vec<String> = catalogue.indicator.iter().map(|i| i.id.clone()).collect();
    ids.push(WEAK.to_string());
    let mut rows = Vec::new();
    for id in &ids {
        for u in &units {
            let Some(fig) = figs.get(&compute::At(0, &u.id, id)) else { continue };
            let previous = figs.get(&compute::At(1, &u.id, id)).and_then(|f| f.value);
            rows.push(Row { unit: u, indicator: id, fig, previous });
        }
    }
    frame(&rows)
}

impl ComputeSummary {
    /// What a period's table says, whichever engine computed it: its units (each has a
    /// weak-unit row), its statuses, its weak-unit candidates.
    fn of(df: &DataFrame, period: Period, catalogue: &Catalogue) -> Result<ComputeSummary> {
        let text = |name: &str| -> Result<Vec<Option<String>>> {
            Ok(df.column(name)?.str()?.iter().map(|v| v.map(str::to_string)).collect())
        };
        let (ids, names, indicators) = (text("unit_id")?, text("unit_name")?, text("indicator")?);
        let (statuses, notes) = (text("status")?, text("note")?);
        let values: Vec<Option<f64>> = df.column("value")?.f64()?.iter().collect();
        let mut s = ComputeSummary {
            period,
            units: 0,
            indicators: catalogue.indicator.len() + 1,
            rows: df.height(),
            red: 0,
            amber: 0,
            green: 0,
            weak_candidates: Vec::new(),
            snapshot: 0,
            reported: 0,
            expected: 0,
        };
        for i in 0..df.height() {
            if indicators[i].as_deref() == Some(WEAK) {
                s.units += 1;
                if values[i] == Some(1.0) {
                    let text = |v: &Option<String>| v.clone().unwrap_or_default();
                    s.weak_candidates.push((text(&ids[i]), text(&names[i]), text(&notes[i])));
                }
                continue;
            }
            match statuses[i].as_deref().and_then(Status::parse) {
                Some(Status::Red) => s.red += 1,
                Some(Status::Amber) => s.amber += 1,
                Some(Status::Green) => s.green += 1,
                _ => {}
            }
        }
        Ok(s)
    }
}

/// Compute `period` with `engine` and write it to `indicators/period=PERIOD/`, with its
/// branch-months to `submissions/period=PERIOD/`, replacing an earlier run. The branch-months
/// (a row per branch and month, cheap) are worked out here whatever the engine; the commit is
/// the same.
pub fn compute(wh: &Warehouse, catalogue: &Catalogue, period: Period, engine: &Engine) -> Result<ComputeSummary> {
    let lock = wh.lock("compute")?;
    let clock = std::time::Instant::now();
    let step = |name: &str| tracing::debug!(step = name, ms = clock.elapsed().as_millis() as u64, "compute step done");
    let mut df = match engine {
        Engine::Local => indicator_frame(wh, catalogue, period)?,
        Engine::Spark(remote) => remote_frame(wh, catalogue, period, remote)?,
    };
    step("indicators");
    let mut summary = ComputeSummary::of(&df, period, catalogue)?;
    let snapshot = wh.snapshot()?;
    let units = tree::load(&snapshot, period.last_day())?;
    let reported = reporting::reporting(&snapshot, &units, period, &catalogue.reporting)?;
    (summary.reported, summary.expected) = (reported.reported(), reported.expected());
    step("branch-months");
    let mut txn = wh.begin(&lock)?;
    let part = crate::warehouse::period_partition(&period);
    txn.replace_partition(Table::Indicators, &part, &mut df)?;
    txn.replace_partition(Table::Submissions, &part, &mut reporting::frame(&reported)?)?;
    summary.snapshot = txn.commit()?.id;
    step("committed");
    Ok(summary)
}

#[cfg(feature = "spark")]
fn remote_frame(wh: &Warehouse, catalogue: &Catalogue, period: Period, remote: &SparkRemote) -> Result<DataFrame> {
    spark_connect::indicator_frame(wh, catalogue, period, remote)
}

#[cfg(not(feature = "spark"))]
fn remote_frame(_: &Warehouse, _: &Catalogue, _: Period, _: &SparkRemote) -> Result<DataFrame> {
    Err(EngineError::NotBuilt.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_units_statuses_and_candidates_from_the_table() {
        let df = df!(
            "unit_id" => ["B1", "B1", "B2", "B2", "B2", "B3"],
            "unit_name" => ["一支部", "一支部", "二支部", "二支部", "二支部", "三支部"],
            "indicator" => [WEAK, "composite_score", WEAK, "composite_score", "attendance_rate", WEAK],
            "value" => [Some(1.0), Some(40.0), Some(0.0), Some(90.0), Some(0.7), None],
            "status" => [None, Some("red"), None, Some("green"), Some("amber"), Some("no_data")],
            "note" => [Some("composite_score 40.0 < 60"), None, None, None, None, None],
        )
        .unwrap();
        let s = ComputeSummary::of(&df, Period::Quarter { year: 2026, quarter: 1 }, &Catalogue::builtin()).unwrap();
        assert_eq!((s.units, s.rows, s.red, s.amber, s.green), (3, 6, 1, 1, 1));
        assert_eq!(s.indicators, Catalogue::builtin().indicator.len() + 1);
        assert_eq!(
            s.weak_candidates,
            [("B1".to_string(), "一支部".to_string(), "composite_score 40.0 < 60".to_string())]
        );
    }

    #[test]
    fn the_indicators_frame_has_the_columns_of_the_model() {
        assert_eq!(frame(&[]).unwrap().schema().as_ref(), &crate::model::Table::Indicators.schema());
    }

    #[test]
    fn a_spark_remote_is_a_spark_connect_address() {
        assert!(SparkRemote::new("sc://127.0.0.1:15002", None).is_ok());
        let at = |url: &str| SparkRemote::new(url, None).unwrap().address().unwrap();
        assert_eq!(at("sc://10.1.2.3:15003"), ("10.1.2.3".to_string(), 15003));
        assert_eq!(at("sc://spark.example/;use_ssl=true"), ("spark.example".to_string(), 15002));
        assert_eq!(at("sc://[::1]:15004/;token=x"), ("::1".to_string(), 15004));
        for bad in ["127.0.0.1:15002", "http://h:1", "sc://", "sc://:15002", "sc://h:port", "sc://h:99999"] {
            assert!(matches!(SparkRemote::new(bad, None), Err(EngineError::NotAnAddress(_))), "{bad}");
        }
    }
}
