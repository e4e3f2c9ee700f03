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
pub fn indicator_frame(wh: &Warehouse, catalogue: &Catalogue, period: Period) -> Result<(DataFrame, ComputeSummary)> {
    let snapshot = wh.snapshot()?;
    let (mut units, figs) = compute::compute_figures(&snapshot, catalogue, period)?;
    units.sort_by(|a, b| a.path.cmp(&b.path));
    let mut ids: Vec<String> = catalogue.indicator.iter().map(|i| i.id.clone()).collect();
    ids.push(WEAK.to_string());
    let mut rows = Vec::new();
    for id in &ids {
        let mut key = (0, String::new(), id.clone());
        for u in &units {
            key.1.clone_from(&u.id);
            key.0 = 0;
            let Some(fig) = figs.get(&key) else { continue };
            key.0 = 1;
            let previous = figs.get(&key).and_then(|f| f.value);
            rows.push(Row { unit: u, indicator: id, fig, previous });
        }
    }
    let count = |s: Status| rows.iter().filter(|r| r.indicator != WEAK && r.fig.status == Some(s)).count();
    let weak_candidates = rows
        .iter()
        .filter(|r| r.indicator == WEAK && r.fig.value == Some(1.0))
        .map(|r| (r.unit.id.clone(), r.unit.name.clone(), r.fig.note.clone().unwrap_or_default()))
        .collect();
    let summary = ComputeSummary {
        period,
        units: units.len(),
        indicators: ids.len(),
        rows: rows.len(),
        red: count(Status::Red),
        amber: count(Status::Amber),
        green: count(Status::Green),
        weak_candidates,
        snapshot: snapshot.id,
        reported: 0,
        expected: 0,
    };
    Ok((frame(&rows)?, summary))
}

/// Compute `period` with `engine` and write it to `indicators/period=PERIOD/`, with its
/// branch-months to `submissions/period=PERIOD/`, replacing an earlier run. The branch-months
/// (a row per branch and month, cheap) are worked out here whatever the engine; the commit is
/// the same.
pub fn compute(wh: &Warehouse, catalogue: &Catalogue, period: Period, engine: &Engine) -> Result<ComputeSummary> {
    let lock = wh.lock("compute")?;
    let (mut df, mut summary) = match engine {
        Engine::Local => indicator_frame(wh, catalogue, period)?,
        Engine::Spark(remote) => remote_frame(wh, catalogue, period, remote)?,
    };
    let snapshot = wh.snapshot()?;
    let units = tree::load(&snapshot, period.last_day())?;
    let reported = reporting::reporting(&snapshot, &units, period, &catalogue.reporting)?;
    (summary.reported, summary.expected) = (reported.reported(), reported.expected());
    let mut txn = wh.begin(&lock)?;
    let part = crate::warehouse::period_partition(&period);
    txn.replace_partition(Table::Indicators, &part, &mut df)?;
    txn.replace_partition(Table::Submissions, &part, &mut reporting::frame(&reported)?)?;
    summary.snapshot = txn.commit()?.id;
    Ok(summary)
}

#[cfg(feature = "spark")]
fn remote_frame(
    wh: &Warehouse,
    catalogue: &Catalogue,
    period: Period,
    remote: &SparkRemote,
) -> Result<(DataFrame, ComputeSummary)> {
    spark_connect::indicator_frame(wh, catalogue, period, remote)
}

#[cfg(not(feature = "spark"))]
fn remote_frame(_: &Warehouse, _: &Catalogue, _: Period, _: &SparkRemote) -> Result<(DataFrame, ComputeSummary)> {
    Err(EngineError::NotBuilt.into())
}

#[cfg(test)]
mod tests {
    use super::*;

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
