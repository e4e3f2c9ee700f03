//! The review pack's data: everything the charts and the report show for a period, gathered
//! from one warehouse snapshot (`Pack`), plus the problem list and the inspection draw, which
//! are also written back to the warehouse (`problems`, `draws`) so they can be queried.
//!
//! Never prints.

pub mod appraisal;
pub mod appraisal_spark;
pub mod draw;
pub mod funnel;
pub mod ledgers;
pub mod life;
pub mod problems;

use std::collections::HashMap;
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};
use polars::prelude::*;

use crate::indicators::Catalogue;
use crate::indicators::compute::{self, UnitInfo};
use crate::indicators::reporting::{self, Reporting};
use crate::indicators::tree;
use crate::model::period::{Period, PeriodKind};
use crate::model::{Level, Status, Table};
use crate::warehouse::scan_table;
use crate::warehouse::{self, Snapshot, Warehouse};

/// One row of the `indicators` table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IndicatorRow {
    pub unit_id: String,
    pub indicator: String,
    pub value: Option<f64>,
    pub numerator: Option<f64>,
    pub denominator: Option<f64>,
    pub status: Option<Status>,
    pub rank: Option<i32>,
    pub previous: Option<f64>,
    pub change: Option<f64>,
    pub note: Option<String>,
}

/// Values over several periods, per (unit, indicator).
pub type OverTime = HashMap<(String, String), Vec<Option<f64>>>;

/// Indicators followed over time in trends and diagnosis cards.
pub const KEY_INDICATORS: [&str; 4] =
    ["attendance_rate", "activity_day_coverage", "meeting_completion", "composite_score"];

/// Everything a review of one period shows.
#[derive(Debug, Clone)]
pub struct Pack {
    pub period: Period,
    pub catalogue: Catalogue,
    /// Units in grid order (by path).
    pub units: Vec<UnitInfo>,
    pub rows: Vec<IndicatorRow>,
    /// The 12 months ending with the period, and per (unit, indicator) a value for each.
    pub trend_months: Vec<Period>,
    pub trends: OverTime,
    /// The last four periods of the period's kind, ending with it, and values for each.
    pub history_periods: Vec<Period>,
    pub history: OverTime,
    /// (category, a member's approved points in the period).
    pub member_points: Vec<(String, f64)>,
    /// (kind, source file, rule, rows) from the quarantine.
    pub quarantine: Vec<(String, String, String, u64)>,
    /// (file, BLAKE3, ingested at, rows read, loaded, quarantined) from the ledger.
    pub inputs: Vec<(String, String, String, i64, i64, i64)>,
    /// Which branches reported in each month of the period.
    pub reporting: Reporting,
    /// The problem lists stored for earlier periods of the period's kind (ids and states).
    pub earlier_problems: life::Stored,
    /// The counts behind the period before's proportions, by (unit, indicator): a change is
    /// tested on counts, not on two percentages (`funnel`). Loaded only where problems are
    /// listed (`with_previous_rates`): a chart does not need them, and at a province's size
    /// they may mean computing the period before.
    pub previous_rates: Option<HashMap<(String, String), funnel::Counts>>,
    /// The target tasks and the findings as the latest exports have them.
    pub tasks: Vec<ledgers::Task>,
    pub findings: Vec<ledgers::Finding>,
    /// The tree of the period before, and what changed since (units added, moved, dissolved).
    pub tree_before: Vec<UnitInfo>,
    pub tree_changes: tree::Changes,
    pub snapshot: u64,
    /// Units and rows by id, built on first use: a province's pack has 30,000 units and
    /// 300,000 rows, looked up once per unit and indicator by every chart.
    index: Index,
}

#[derive(Debug, Clone, Default)]
struct Index {
    units: OnceLock<HashMap<String, usize>>,
    rows: OnceLock<HashMap<(String, String), usize>>,
}

impl Pack {
    /// The counts behind a unit's proportion in the period before, if it was one.
    ///
    /// Panics when the pack was not given them (`with_previous_rates`): a drop would silently
    /// be judged by the rule for values that are not counts.
    pub fn previous_counts(&self, unit: &str, indicator: &str) -> Option<funnel::Counts> {
        let rates = self.previous_rates.as_ref().expect("problems are listed from a pack with_previous_rates");
        rates.get(&(unit.to_string(), indicator.to_string())).copied()
    }

    pub fn unit(&self, id: &str) -> Option<&UnitInfo> {
        let index = self.index.units.get_or_init(|| first_of(self.units.iter().map(|u| u.id.clone())));
        index.get(id).map(|&i| &self.units[i])
    }

    /// The township (街道/镇) a unit belongs to, the unit itself when it is one; `None` for the
    /// district and units directly under it.
    pub fn township_of(&self, id: &str) -> Option<&UnitInfo> {
        self.unit(id)?.township(|p| self.unit(p))
    }

    pub fn row(&self, unit: &str, indicator: &str) -> Option<&IndicatorRow> {
        let index = self
            .index
            .rows
            .get_or_init(|| first_of(self.rows.iter().map(|r| (r.unit_id.clone(), r.indicator.clone()))));
        index.get(&(unit.to_string(), indicator.to_string())).map(|&i| &self.rows[i])
    }
}

/// Each key's first position, as a search from the start would find it.
fn first_of<K: std::hash::Hash + Eq>(keys: impl Iterator<Item = K>) -> HashMap<K, usize> {
    let mut out = HashMap::new();
    for (i, k) in keys.enumerate() {
        out.entry(k).or_insert(i);
    }
    out
}

fn strs(df: &DataFrame, c: &str) -> Result<Vec<Option<String>>> {
    Ok(df.column(c)?.cast(&DataType::String)?.str()?.iter().map(|v| v.map(str::to_string)).collect())
}

fn floats(df: &DataFrame, c: &str) -> Result<Vec<Option<f64>>> {
    Ok(df.column(c)?.cast(&DataType::Float64)?.f64()?.iter().collect())
}

/// The stored indicators of a period.
pub fn load_indicators(snapshot: &Snapshot, period: Period) -> Result<Vec<IndicatorRow>> {
    let files = snapshot.partition_files(Table::Indicators, &warehouse::period_partition(&period))?;
    let Some(file) = files.first() else {
        bail!("no indicators for {period} yet: run `dangjian compute --period {period}` first");
    };
    let df = warehouse::read_parquet(file)?;
    let (u, i, st, note) = (strs(&df, "unit_id")?, strs(&df, "indicator")?, strs(&df, "status")?, strs(&df, "note")?);
    let (v, n, d, p, c) = (
        floats(&df, "value")?,
        floats(&df, "numerator")?,
        floats(&df, "denominator")?,
        floats(&df, "previous_value")?,
        floats(&df, "change")?,
    );
    let rank: Vec<Option<i32>> = df.column("rank")?.cast(&DataType::Int32)?.i32()?.iter().collect();
    Ok((0..df.height())
        .map(|k| IndicatorRow {
            unit_id: u[k].clone().unwrap_or_default(),
            indicator: i[k].clone().unwrap_or_default(),
            value: v[k],
            numerator: n[k],
            denominator: d[k],
            status: st[k].as_deref().and_then(Status::parse),
            rank: rank[k],
            previous: p[k],
            change: c[k],
            note: note[k].clone(),
        })
        .collect())
}

/// Give the pack the counts of the period before's proportions, once (the problem list tests
/// a change on them).
pub fn with_previous_rates(wh: &Warehouse, pack: &mut Pack) -> Result<()> {
    if pack.previous_rates.is_none() {
        pack.previous_rates = Some(previous_rates(&wh.snapshot()?, &pack.catalogue, pack.period.previous())?);
    }
    Ok(())
}

/// The counts of every proportion of `period`: its stored indicators, or computed now if it
/// was never computed (a first review).
fn previous_rates(
    snapshot: &Snapshot,
    catalogue: &Catalogue,
    period: Period,
) -> Result<HashMap<(String, String), funnel::Counts>> {
    let stored = !snapshot.partition_files(Table::Indicators, &warehouse::period_partition(&period))?.is_empty();
    let counts = |u: String, i: String, x: Option<f64>, n: Option<f64>, v: Option<f64>| {
        let unit = &catalogue.get(&i)?.unit;
        funnel::Counts::of_rate(x, n, v, unit).map(|c| ((u, i), c))
    };
    if stored {
        return Ok(load_indicators(snapshot, period)?
            .into_iter()
            .filter_map(|r| counts(r.unit_id, r.indicator, r.numerator, r.denominator, r.value))
            .collect());
    }
    let (_, figures) = compute::compute_figures_alone(snapshot, catalogue, period)
        .with_context(|| format!("computing {period} to compare against"))?;
    Ok(figures.into_iter().filter_map(|((_, u, i), f)| counts(u, i, f.numerator, f.denominator, f.value)).collect())
}

/// The key indicators of several periods, computed on the fly (in parallel).
fn series(snapshot: &Snapshot, catalogue: &Catalogue, periods: &[Period], units: &[UnitInfo]) -> Result<OverTime> {
    // Only the key indicators: the others' passes (points, distinct members) would be most of
    // the work of sixteen periods.
    let catalogue = &catalogue.only(&KEY_INDICATORS);
    // Plain threads, not rayon: each computation is a polars plan (see `workers`).
    let per: Vec<compute::Figures> = crate::workers::map(periods.to_vec(), |p| {
        compute::compute_figures_alone(snapshot, catalogue, p).map(|(_, f)| f)
    })
    .into_iter()
    .collect::<Result<_>>()?;
    let mut out: OverTime = HashMap::new();
    for u in units {
        for ind in KEY_INDICATORS {
            let vals = per.iter().map(|f| f.get(&compute::At(0, &u.id, ind)).and_then(|x| x.value)).collect();
            out.insert((u.id.clone(), ind.to_string()), vals);
        }
    }
    Ok(out)
}

/// `cached` if it is the pack of `period` for the current snapshot and catalogue, else a fresh
/// [`load`]: the pipeline's chart and report stages share one.
pub fn load_or_reuse(wh: &Warehouse, catalogue: &Catalogue, period: Period, cached: Option<Pack>) -> Result<Pack> {
    match cached {
        Some(p) if p.period == period && p.snapshot == wh.snapshot()?.id && p.catalogue.hash() == catalogue.hash() => {
            Ok(p)
        }
        _ => load(wh, catalogue, period),
    }
}

/// Gather the pack of `period` from the warehouse's current snapshot.
pub fn load(wh: &Warehouse, catalogue: &Catalogue, period: Period) -> Result<Pack> {
    let snapshot = wh.snapshot()?;
    let mut units = tree::load(&snapshot, period.last_day())?;
    units.sort_by(|a, b| a.path.cmp(&b.path));
    let rows = load_indicators(&snapshot, period)?;

    let last_month = *period.months().last().expect("a period has months");
    let mut trend_months = vec![Period::Month { year: last_month.0, month: last_month.1 }];
    while trend_months.len() < 12 {
        let p = trend_months[0].previous();
        trend_months.insert(0, p);
    }
    let mut history_periods = vec![period];
    while history_periods.len() < 4 {
        let p = history_periods[0].previous();
        history_periods.insert(0, p);
    }
    let trends = series(&snapshot, catalogue, &trend_months, &units).context("computing the monthly trends")?;
    let history = series(&snapshot, catalogue, &history_periods, &units).context("computing the history")?;

    // Each member's approved points in the period, with the category of their unit.
    let mut files = Vec::new();
    for (y, m) in period.months() {
        files.extend(snapshot.partition_files(Table::Points, &warehouse::month_partition(y, m))?);
    }
    let mut member_points = Vec::new();
    if !files.is_empty() {
        let paths: Vec<PlRefPath> = files
            .iter()
            .map(|f| PlRefPath::try_from_path(f).map_err(|e| anyhow::anyhow!("{e}")))
            .collect::<Result<_>>()?;
        let cats = DataFrame::new(
            units.len(),
            vec![
                Column::new("unit_id".into(), units.iter().map(|u| u.id.as_str()).collect::<Vec<_>>()),
                Column::new("unit_category".into(), units.iter().map(|u| u.category.clone()).collect::<Vec<_>>()),
            ],
        )?;
        let df = LazyFrame::scan_parquet_files(paths.into_iter().collect(), ScanArgsParquet::default())?
            .filter(col("approved"))
            .join(cats.lazy(), [col("unit_id")], [col("unit_id")], JoinArgs::new(JoinType::Inner))
            .group_by([col("member_id")])
            .agg([col("points").sum().alias("total"), col("unit_category").last().alias("category")])
            .sort(["member_id"], Default::default())
            .collect()?;
        let (c, t) = (strs(&df, "category")?, floats(&df, "total")?);
        member_points = c.into_iter().zip(t).filter_map(|(c, t)| Some((c?, t?))).collect();
    }

    let q = scan_table(&snapshot, Table::Quarantine)?
        .group_by([col("kind"), col("source_file"), col("rule")])
        .agg([len().alias("rows")])
        .sort(["kind", "source_file", "rule"], Default::default())
        .collect()?;
    let (k, f, r, n) = (strs(&q, "kind")?, strs(&q, "source_file")?, strs(&q, "rule")?, floats(&q, "rows")?);
    let quarantine = (0..q.height())
        .map(|i| {
            (
                k[i].clone().unwrap_or_default(),
                f[i].clone().unwrap_or_default(),
                r[i].clone().unwrap_or_default(),
                n[i].unwrap_or(0.0) as u64,
            )
        })
        .collect();
    let led =
        scan_table(&snapshot, Table::Ingests)?.sort(["ingested_at", "source_file"], Default::default()).collect()?;
    let (lf, lh, la) = (strs(&led, "source_file")?, strs(&led, "blake3")?, strs(&led, "ingested_at")?);
    let (lr, ll, lq) = (floats(&led, "rows_read")?, floats(&led, "loaded")?, floats(&led, "quarantined")?);
    let inputs = (0..led.height())
        .map(|i| {
            (
                lf[i].clone().unwrap_or_default(),
                lh[i].clone().unwrap_or_default(),
                la[i].clone().unwrap_or_default(),
                lr[i].unwrap_or(0.0) as i64,
                ll[i].unwrap_or(0.0) as i64,
                lq[i].unwrap_or(0.0) as i64,
            )
        })
        .collect();
    let reporting = reporting::reporting(&snapshot, &units, period, &catalogue.reporting)?;
    let tree_before = tree::load(&snapshot, period.previous().last_day())?;
    let tree_changes = tree::changes(&tree_before, &units);
    let tasks = ledgers::load_tasks(&snapshot)?;
    let findings = ledgers::load_findings(&snapshot)?;
    let earlier_problems = earlier_problems(&snapshot, period)?;
    Ok(Pack {
        period,
        earlier_problems,
        previous_rates: None,
        tasks,
        findings,
        catalogue: catalogue.clone(),
        reporting,
        tree_before,
        tree_changes,
        units,
        rows,
        trend_months,
        trends,
        history_periods,
        history,
        member_points,
        quarantine,
        inputs,
        snapshot: snapshot.id,
        index: Index::default(),
    })
}

/// The problems table's rows.
pub fn problems_frame(list: &[problems::Problem]) -> Result<DataFrame> {
    let s = |f: &dyn Fn(&problems::Problem) -> Option<String>| list.iter().map(f).collect::<Vec<Option<String>>>();
    let n = |f: &dyn Fn(&problems::Problem) -> Option<f64>| list.iter().map(f).collect::<Vec<Option<f64>>>();
    Ok(DataFrame::new(
        list.len(),
        vec![
            Column::new("problem_id".into(), s(&|p| Some(p.problem_id.clone()))),
            Column::new("unit_id".into(), s(&|p| Some(p.unit_id.clone()))),
            Column::new("unit_name".into(), s(&|p| Some(p.unit_name.clone()))),
            Column::new("level".into(), s(&|p| Some(p.level.clone()))),
            Column::new("category".into(), s(&|p| p.category.clone())),
            Column::new("kind".into(), s(&|p| Some(p.kind.to_string()))),
            Column::new("indicator".into(), s(&|p| Some(p.indicator.clone()))),
            Column::new("value".into(), n(&|p| p.value)),
            Column::new("previous_value".into(), n(&|p| p.previous_value)),
            Column::new("category_median".into(), n(&|p| p.category_median)),
            Column::new("evidence".into(), s(&|p| Some(p.evidence.clone()))),
            Column::new("state".into(), s(&|p| Some(p.life.state.code().to_string()))),
            Column::new("first_period".into(), s(&|p| Some(p.life.first_period.to_string()))),
            Column::new(
                "periods_flagged".into(),
                list.iter().map(|p| p.life.periods_flagged as i32).collect::<Vec<i32>>(),
            ),
            Column::new("reference".into(), n(&|p| p.reference)),
            Column::new("denominator".into(), n(&|p| p.denominator)),
            Column::new("severity".into(), list.iter().map(|p| i32::from(p.severity)).collect::<Vec<i32>>()),
            Column::new(
                "priority".into(),
                list.iter().map(|p| p.priority.map(|x| x as i32)).collect::<Vec<Option<i32>>>(),
            ),
        ],
    )?)
}

/// The annual appraisal of a year's pack (SPEC §6), with the quarters in which each unit was a
/// weak-unit candidate.
pub fn appraise(wh: &Warehouse, pack: &Pack, rules: &appraisal::AppraisalRules) -> Result<appraisal::Appraisal> {
    let year = pack.period.year();
    let weak = weak_quarters(&wh.snapshot()?, &pack.catalogue, year)?;
    let values = pack.rows.iter().filter_map(|r| Some(((r.unit_id.clone(), r.indicator.clone()), r.value?))).collect();
    let inputs = appraisal::Inputs {
        year,
        catalogue: &pack.catalogue,
        units: &pack.units,
        values,
        findings: &pack.findings,
        tasks: &pack.tasks,
        weak_quarters: &weak,
    };
    appraisal::appraise(&inputs, rules)
}

/// The quarters of `year` in which each unit was a weak-unit candidate: from each quarter's
/// stored indicators, or computed now for a quarter never computed.
fn weak_quarters(snapshot: &Snapshot, catalogue: &Catalogue, year: i32) -> Result<HashMap<String, Vec<Period>>> {
    let mut out: HashMap<String, Vec<Period>> = HashMap::new();
    for quarter in 1..=4 {
        let q = Period::Quarter { year, quarter };
        let stored = !snapshot.partition_files(Table::Indicators, &warehouse::period_partition(&q))?.is_empty();
        let weak: Vec<String> = if stored {
            load_indicators(snapshot, q)?
                .into_iter()
                .filter(|r| r.indicator == compute::WEAK && r.value == Some(1.0))
                .map(|r| r.unit_id)
                .collect()
        } else {
            let (_, figures) = compute::compute_figures_alone(snapshot, catalogue, q)
                .with_context(|| format!("computing {q} for the appraisal's weak-unit rule"))?;
            figures
                .into_iter()
                .filter(|((_, _, i), f)| i == compute::WEAK && f.value == Some(1.0))
                .map(|((_, u, _), _)| u)
                .collect()
        };
        for unit in weak {
            out.entry(unit).or_default().push(q);
        }
    }
    for quarters in out.values_mut() {
        quarters.sort();
    }
    Ok(out)
}

/// Replace the appraisal of its year.
pub fn write_appraisal(wh: &Warehouse, a: &appraisal::Appraisal) -> Result<()> {
    let lock = wh.lock("appraisal")?;
    let mut txn = wh.begin(&lock)?;
    txn.replace_partition(Table::Appraisal, &warehouse::year_partition(a.year), &mut appraisal_frame(a)?)?;
    txn.commit()?;
    Ok(())
}

/// The `appraisal` rows: a column per component (0–100), reasons joined by "；".
pub fn appraisal_frame(a: &appraisal::Appraisal) -> Result<DataFrame> {
    let u = &a.units;
    let s = |f: &dyn Fn(&appraisal::Appraised) -> Option<String>| u.iter().map(f).collect::<Vec<Option<String>>>();
    let i = |f: &dyn Fn(&appraisal::Appraised) -> Option<u32>| {
        u.iter().map(|x| f(x).map(|v| v as i32)).collect::<Vec<Option<i32>>>()
    };
    let mut cols = vec![
        Column::new("unit_id".into(), s(&|x| Some(x.unit_id.clone()))),
        Column::new("unit_name".into(), s(&|x| Some(x.unit_name.clone()))),
        Column::new("level".into(), s(&|x| Some(x.level.code().to_string()))),
        Column::new("category".into(), s(&|x| x.category.clone())),
        Column::new("township".into(), s(&|x| x.township.clone())),
        Column::new("score".into(), u.iter().map(|x| x.score).collect::<Vec<Option<f64>>>()),
        Column::new("rank".into(), i(&|x| x.rank)),
        Column::new("grade".into(), i(&|x| x.grade)),
    ];
    for (k, c) in a.components.iter().enumerate() {
        cols.push(Column::new(c.indicator.as_str().into(), u.iter().map(|x| x.parts[k]).collect::<Vec<Option<f64>>>()));
    }
    cols.push(Column::new("eligible".into(), u.iter().map(|x| x.eligible).collect::<Vec<bool>>()));
    cols.push(Column::new("reasons".into(), s(&|x| Some(x.reasons.join("；")))));
    Ok(DataFrame::new(u.len(), cols)?)
}

/// The problem lists stored for the periods of `period`'s kind before it: each problem's id
/// and state. A list written before problems had ids gets them from its unit, kind and
/// indicator, and no state.
pub fn earlier_problems(snapshot: &Snapshot, period: Period) -> Result<life::Stored> {
    let mut out = life::Stored::new();
    for file in snapshot.files(Table::Problems)? {
        let part = snapshot.partition_of(Table::Problems, &file);
        let Some(p) = part.strip_prefix("period=").and_then(|p| p.parse::<Period>().ok()) else { continue };
        if p.kind() != period.kind() || p >= period {
            continue;
        }
        let df = warehouse::read_parquet(&file)?;
        let text = |c: &str| -> Result<Option<Vec<Option<String>>>> {
            if df.column(c).is_err() {
                return Ok(None);
            }
            Ok(Some(strs(&df, c)?))
        };
        let (units, kinds, inds) = (text("unit_id")?, text("kind")?, text("indicator")?);
        let (ids, states) = (text("problem_id")?, text("state")?);
        let at = |col: &Option<Vec<Option<String>>>, i: usize| col.as_ref().and_then(|c| c[i].clone());
        let list = out.entry(p).or_default();
        for i in 0..df.height() {
            let id = at(&ids, i).or_else(|| Some(life::problem_id(&at(&units, i)?, &at(&kinds, i)?, &at(&inds, i)?)));
            let state = at(&states, i).and_then(|s| life::State::parse(&s));
            list.extend(id.map(|id| (id, state)));
        }
    }
    Ok(out)
}

/// Write the problem list of a period to `problems/period=PERIOD/`.
pub fn write_problems(wh: &Warehouse, period: Period, list: &[problems::Problem]) -> Result<()> {
    let lock = wh.lock("problems")?;
    let mut txn = wh.begin(&lock)?;
    txn.replace_partition(Table::Problems, &warehouse::period_partition(&period), &mut problems_frame(list)?)?;
    txn.commit()?;
    Ok(())
}

/// Options of the inspection draw.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrawOptions {
    #[serde(default = "default_count")]
    pub count: u32,
    pub seed: Option<u64>,
    /// The level units are drawn from.
    #[serde(default = "default_level")]
    pub level: Level,
    #[serde(default)]
    pub stratify: bool,
    /// Units drawn in the last this many quarters are not drawn again.
    #[serde(default)]
    pub exclude_recent_quarters: u32,
    /// Weight of a weak-unit candidate (1 = no preference).
    #[serde(default = "one")]
    pub weak_weight: f64,
    #[serde(default, skip)]
    pub force: bool,
}

fn default_count() -> u32 {
    2
}
fn default_level() -> Level {
    Level::Community
}
fn one() -> f64 {
    1.0
}

impl Default for DrawOptions {
    fn default() -> Self {
        DrawOptions {
            count: 2,
            seed: None,
            level: default_level(),
            stratify: false,
            exclude_recent_quarters: 0,
            weak_weight: 1.0,
            force: false,
        }
    }
}

/// A recorded draw.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DrawRecord {
    pub period: String,
    pub seed: u64,
    pub count: u32,
    pub level: String,
    pub candidates: Vec<(String, f64)>,
    pub chosen: Vec<String>,
    pub drawn_at: String,
    pub forced: bool,
    pub algorithm: String,
}

/// Draws recorded so far, oldest first.
pub fn load_draws(snapshot: &Snapshot) -> Result<Vec<DrawRecord>> {
    let df = scan_table(snapshot, Table::Draws)?.sort(["drawn_at"], Default::default()).collect()?;
    let (p, s, lv, c, ch, at, alg) = (
        strs(&df, "period")?,
        strs(&df, "seed")?,
        strs(&df, "level")?,
        strs(&df, "candidates")?,
        strs(&df, "chosen")?,
        strs(&df, "drawn_at")?,
        strs(&df, "algorithm")?,
    );
    let count = floats(&df, "count")?;
    let forced: Vec<Option<bool>> = df.column("forced")?.bool()?.iter().collect();
    Ok((0..df.height())
        .map(|i| DrawRecord {
            period: p[i].clone().unwrap_or_default(),
            seed: s[i].as_deref().unwrap_or("0").parse().unwrap_or(0),
            count: count[i].unwrap_or(0.0) as u32,
            level: lv[i].clone().unwrap_or_default(),
            candidates: c[i]
                .as_deref()
                .unwrap_or("")
                .split(',')
                .filter(|x| !x.is_empty())
                .map(|x| {
                    let (id, w) = x.split_once(':').unwrap_or((x, "1"));
                    (id.to_string(), w.parse().unwrap_or(1.0))
                })
                .collect(),
            chosen: ch[i].as_deref().unwrap_or("").split(',').filter(|x| !x.is_empty()).map(str::to_string).collect(),
            drawn_at: at[i].clone().unwrap_or_default(),
            forced: forced[i].unwrap_or(false),
            algorithm: alg[i].clone().unwrap_or_default(),
        })
        .collect())
}

/// The draws table's rows.
pub fn draws_frame(records: &[DrawRecord]) -> Result<DataFrame> {
    let s = |f: &dyn Fn(&DrawRecord) -> String| records.iter().map(f).collect::<Vec<String>>();
    let at: Vec<i64> = records
        .iter()
        .map(|r| chrono::DateTime::parse_from_rfc3339(&r.drawn_at).map(|d| d.timestamp_micros()).unwrap_or(0))
        .collect();
    Ok(DataFrame::new(
        records.len(),
        vec![
            Column::new("period".into(), s(&|r| r.period.clone())),
            Column::new("seed".into(), s(&|r| r.seed.to_string())),
            Column::new("count".into(), records.iter().map(|r| r.count as i32).collect::<Vec<_>>()),
            Column::new("level".into(), s(&|r| r.level.clone())),
            Column::new(
                "candidates".into(),
                s(&|r| r.candidates.iter().map(|(id, w)| format!("{id}:{w}")).collect::<Vec<_>>().join(",")),
            ),
            Column::new("chosen".into(), s(&|r| r.chosen.join(","))),
            Column::new("drawn_at".into(), at).cast(&DataType::Datetime(TimeUnit::Microseconds, None))?,
            Column::new("forced".into(), records.iter().map(|r| r.forced).collect::<Vec<_>>()),
            Column::new("algorithm".into(), s(&|r| r.algorithm.clone())),
        ],
    )?)
}

/// Why a draw was refused.
#[derive(Debug, thiserror::Error)]
#[error("{period} was already drawn on {at} (chose {chosen}); use --force to draw again, which is recorded")]
pub struct AlreadyDrawn {
    pub period: String,
    pub at: String,
    pub chosen: String,
}

/// A draw asked for in a way that cannot be done: the user's to mend.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DrawError {
    #[error("the inspection draw is per quarter; {0} is not a quarter")]
    NotAQuarter(Period),
    #[error("the draw needs a seed (--seed, or `seed` in the pipeline)")]
    NoSeed,
}

/// Draw units for the roving inspection of a quarter and record the draw.
pub fn run_draw(wh: &Warehouse, period: Period, opts: &DrawOptions) -> Result<DrawRecord> {
    if period.kind() != PeriodKind::Quarter {
        return Err(DrawError::NotAQuarter(period).into());
    }
    let lock = wh.lock("draw")?;
    let snapshot = wh.snapshot()?;
    let past = load_draws(&snapshot)?;
    if let Some(prev) = past.iter().rev().find(|d| d.period == period.to_string())
        && !opts.force
    {
        return Err(AlreadyDrawn {
            period: prev.period.clone(),
            at: prev.drawn_at.clone(),
            chosen: prev.chosen.join(", "),
        }
        .into());
    }
    let seed = opts.seed.ok_or(DrawError::NoSeed)?;
    // Units drawn in the last K quarters are left out.
    let mut recent = std::collections::HashSet::new();
    let mut q = period;
    for _ in 0..opts.exclude_recent_quarters {
        q = q.previous();
        for d in past.iter().filter(|d| d.period == q.to_string()) {
            recent.extend(d.chosen.iter().cloned());
        }
    }
    let weak: std::collections::HashSet<String> = if (opts.weak_weight - 1.0).abs() > f64::EPSILON {
        load_indicators(&snapshot, period)?
            .into_iter()
            .filter(|r| r.indicator == compute::WEAK && r.value == Some(1.0))
            .map(|r| r.unit_id)
            .collect()
    } else {
        Default::default()
    };
    let units = tree::load(&snapshot, period.last_day())?;
    let mut candidates: Vec<draw::Candidate> = units
        .iter()
        .filter(|u| u.level == opts.level.code() && !recent.contains(&u.id))
        .map(|u| draw::Candidate {
            unit_id: u.id.clone(),
            category: u.category.clone().unwrap_or_default(),
            weight: if weak.contains(&u.id) { opts.weak_weight } else { 1.0 },
        })
        .collect();
    candidates.sort_by(|a, b| a.unit_id.cmp(&b.unit_id));
    if candidates.is_empty() {
        bail!("no {} units are left to draw from for {period}", opts.level);
    }
    let chosen = draw::draw(&candidates, opts.count as usize, seed, opts.stratify);
    let record = DrawRecord {
        period: period.to_string(),
        seed,
        count: opts.count,
        level: opts.level.code().to_string(),
        candidates: candidates.iter().map(|c| (c.unit_id.clone(), c.weight)).collect(),
        chosen,
        drawn_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        forced: opts.force,
        algorithm: draw::ALGORITHM.into(),
    };
    let mut txn = wh.begin(&lock)?;
    let n = past.iter().filter(|d| d.period == record.period).count();
    txn.write_file(
        Table::Draws,
        &format!("{}-{}.parquet", record.period, n + 1),
        &mut draws_frame(std::slice::from_ref(&record))?,
    )?;
    txn.commit()?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_and_draw_frames_have_the_columns_of_the_model() {
        assert_eq!(problems_frame(&[]).unwrap().schema().as_ref(), &Table::Problems.schema());
        assert_eq!(draws_frame(&[]).unwrap().schema().as_ref(), &Table::Draws.schema());
        let none = appraisal::Appraisal {
            year: 2025,
            components: appraisal::AppraisalRules::default().components,
            units: vec![],
            levels: vec![],
        };
        assert_eq!(appraisal_frame(&none).unwrap().schema().as_ref(), &Table::Appraisal.schema());
    }
    use crate::ingest::{IngestOptions, NoProgress, names::NameHasher};

    #[test]
    fn a_cached_pack_is_reused_only_for_the_same_period_and_snapshot() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("wh");
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/indicators");
        let opts = IngestOptions::new(NameHasher::dropping());
        crate::ingest::ingest(&root, &[fixtures], &opts, &NoProgress).unwrap();
        let wh = Warehouse::open_or_create(&root).unwrap();
        let cat = Catalogue::builtin();
        let (period, other): (Period, Period) = ("2026Q1".parse().unwrap(), "2026-03".parse().unwrap());
        crate::indicators::compute(&wh, &cat, period, &Default::default()).unwrap();
        crate::indicators::compute(&wh, &cat, other, &Default::default()).unwrap();

        // A marker that a fresh load never has.
        let mut pack = load(&wh, &cat, period).unwrap();
        pack.inputs.push(("marker".into(), String::new(), String::new(), 0, 0, 0));
        let marked = |p: &Pack| p.inputs.iter().any(|i| i.0 == "marker");
        assert!(marked(&load_or_reuse(&wh, &cat, period, Some(pack.clone())).unwrap()));
        // Another period, or a warehouse that changed since: loaded again.
        assert!(!marked(&load_or_reuse(&wh, &cat, other, Some(pack.clone())).unwrap()));
        crate::indicators::compute(&wh, &cat, period, &Default::default()).unwrap();
        assert!(!marked(&load_or_reuse(&wh, &cat, period, Some(pack)).unwrap()));
    }
}
