//! Computing the catalogue for one period (and the period before it, for change) over the unit
//! tree.
//!
//! The heavy part runs in polars: one lazy plan per source table and filter, reading only the
//! partitions of the two periods, collected one after the other on the streaming engine. A
//! ratio's figures for a unit come from the rows of the unit and all its descendants, so a
//! distinct count at a township counts each member once and nothing is an average of averages.
//! Sums and distinct counts are grouped once per unit and added up the tree (`leaves`); any
//! other aggregate joins each row to its ancestor at every depth and groups once per depth.
//! Per-branch meeting and activity counts are small and are rolled up here; ranks, statuses,
//! the composite and the weak-unit rules work on one row per unit and indicator.

use std::collections::{BTreeMap, HashMap};

use anyhow::Result;
use polars::prelude::*;

use super::catalogue::{Catalogue, Direction, Indicator, IndicatorKind, Source};
use super::leaves::{Ancestry, Leaves};
use super::tree;
pub use super::tree::UnitInfo;
use crate::model::period::{Period, PeriodKind};
use crate::model::{Level, Status};
use crate::warehouse::{self, Snapshot};

/// The figures of one indicator for one unit and period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figure {
    pub value: Option<f64>,
    pub numerator: Option<f64>,
    pub denominator: Option<f64>,
    pub status: Option<Status>,
    pub rank: Option<u32>,
    pub note: Option<String>,
}

/// A per-branch indicator's numerator and denominator for a branch.
type PerBranch<'a> = Option<Box<dyn Fn(&UnitInfo) -> (f64, f64) + 'a>>;

/// Units grouped by (level, category), with their values.
type Groups<'a> = BTreeMap<(&'a str, Option<&'a str>), Vec<(&'a str, f64)>>;

/// Every figure: (period index 0 = the period, 1 = the previous one, unit, indicator). Looked
/// up by [`At`], without building the key's strings.
pub type Figures = hashbrown::HashMap<(usize, String, String), Figure, foldhash::fast::RandomState>;

/// A key of [`Figures`] borrowed: (period index, unit, indicator). It hashes as the owned key
/// does (a tuple and a struct hash their fields in order; a `String` as its `str`). A province's
/// 30,000 units made a lookup's two new strings a second of the whole catalogue's compute.
#[derive(Hash)]
pub struct At<'a>(pub usize, pub &'a str, pub &'a str);

impl hashbrown::Equivalent<(usize, String, String)> for At<'_> {
    fn equivalent(&self, key: &(usize, String, String)) -> bool {
        self.0 == key.0 && self.1 == key.1 && self.2 == key.2
    }
}

/// One row per unit: `unit_id` and, for each depth of the tree, the index in `units` of the
/// unit's ancestor at that depth (`_a0` the root, ...; null below the unit's own depth).
///
/// A ratio for a unit at depth d is a group-by of the rows on `_a<d>`: every row is joined once
/// (not once per ancestor, as a closure join would), and each depth's group-by sees exactly
/// the rows of each subtree, so any aggregate, distinct counts included, stays exact.
fn depth_frame(units: &[UnitInfo], tree: &Ancestry) -> Result<(DataFrame, usize)> {
    // At least one depth, so that the plans keep their column types even with no units.
    let depth = units.iter().map(|u| u.path.len()).max().unwrap_or(0).max(1);
    let paths: Vec<&[u32]> = (0..units.len()).map(|u| tree.ancestors(u as u32)).collect();
    let mut cols = vec![Column::new("unit_id".into(), units.iter().map(|u| u.id.as_str()).collect::<Vec<_>>())];
    for d in 0..depth {
        let level: Vec<Option<u32>> = paths.iter().map(|p| p.get(d).copied()).collect();
        cols.push(Column::new(depth_col(d).into(), level));
    }
    Ok((DataFrame::new(units.len(), cols)?, depth))
}

fn depth_col(d: usize) -> String {
    format!("_a{d}")
}

const ANCESTOR_COL: &str = "_ancestor";
pub(super) const PERIOD_COL: &str = "_period";

/// The rows of a source for the periods (the period, and the one before when asked), tagged
/// with `_period`: the index of their period. Only the partitions that can hold them are read.
pub(super) fn source_rows(snapshot: &Snapshot, source: Source, periods: &[Period]) -> Result<LazyFrame> {
    let table = source.table();
    let mut files = Vec::new();
    match source {
        Source::Attendance | Source::Points => {
            for p in periods {
                for (y, m) in p.months() {
                    files.extend(snapshot.partition_files(table, &warehouse::month_partition(y, m))?);
                }
            }
        }
        Source::Assessment => {
            let mut years: Vec<i32> = periods.iter().map(|p| p.year()).collect();
            years.dedup();
            for y in years {
                files.extend(snapshot.partition_files(table, &warehouse::year_partition(y))?);
            }
        }
        // A ledger is small and judged as it stands: all of it.
        Source::Tasks | Source::Findings => files.extend(snapshot.files(table)?),
    }
    files.sort();
    files.dedup();
    let lf = if files.is_empty() {
        table.empty_frame()?.lazy()
    } else {
        let paths: Vec<PlRefPath> = files
            .iter()
            .map(|f| PlRefPath::try_from_path(f).map_err(|e| anyhow::anyhow!("{e}")))
            .collect::<Result<_>>()?;
        let args = ScanArgsParquet { hive_options: HiveOptions::new_disabled(), ..Default::default() };
        LazyFrame::scan_parquet_files(paths.into_iter().collect(), args)?
    };
    // Date literals compare as days; a bare NaiveDate literal is a datetime, and every row's
    // date was cast to nanoseconds to meet it.
    let day = |d: chrono::NaiveDate| lit(d).cast(DataType::Date);
    if let Some(due) = source.due_field() {
        // Every row due by each period's last day, once per period: the windows overlap.
        let per: Vec<LazyFrame> = periods
            .iter()
            .enumerate()
            .map(|(i, p)| {
                lf.clone().filter(col(due).lt(day(p.end_exclusive()))).with_columns([
                    lit(i as i32).alias(PERIOD_COL),
                    day(p.start()).alias("period_first_day"),
                    day(p.last_day()).alias("period_last_day"),
                ])
            })
            .collect();
        return Ok(concat(per, UnionArgs::default())?);
    }
    let in_period = |p: Period| -> Expr {
        match source {
            Source::Attendance | Source::Points => {
                let date = if source == Source::Attendance { "event_date" } else { "entry_date" };
                col(date).gt_eq(day(p.start())).and(col(date).lt(day(p.end_exclusive())))
            }
            Source::Assessment => {
                p.assessment_labels().into_iter().fold(lit(false), |acc, l| acc.or(col("period").eq(lit(l))))
            }
            Source::Tasks | Source::Findings => unreachable!("ledgers are read above"),
        }
    };
    // The first period that holds a row names it; rows of none are dropped.
    let tag =
        periods.iter().enumerate().rev().fold(lit(NULL).cast(DataType::Int32), |rest, (i, p)| {
            when(in_period(*p)).then(lit(i as i32)).otherwise(rest)
        });
    Ok(lf.with_column(tag.alias(PERIOD_COL)).filter(col(PERIOD_COL).is_not_null()))
}

/// Which of the periods' months a date falls in, counted from the first month of all of
/// them: comparisons with each month's first day, cheaper on millions of rows than taking
/// every date apart into a year and a month.
pub(super) fn month_index(date: &str, periods: &[Period]) -> Expr {
    let mut starts: Vec<chrono::NaiveDate> =
        periods.iter().flat_map(|p| p.months()).map(|(year, month)| Period::Month { year, month }.start()).collect();
    starts.sort();
    starts.dedup();
    let day = |d: chrono::NaiveDate| lit(d).cast(DataType::Date);
    starts.iter().skip(1).fold(lit(0i32), |acc, s| acc + col(date).gt_eq(day(*s)).cast(DataType::Int32))
}

/// Parse a catalogue SQL expression (checked when the catalogue was loaded).
pub(super) fn expr(sql: &str) -> Result<Expr> {
    anyhow::Context::with_context(polars::sql::sql_expr(sql), || format!("in the expression '{sql}'"))
}

/// Compute every indicator of the catalogue for `period` and the period before it.
pub fn compute_figures(snapshot: &Snapshot, catalogue: &Catalogue, period: Period) -> Result<(Vec<UnitInfo>, Figures)> {
    figures_of(snapshot, catalogue, &[period, period.previous()], RatioPath::Leaves)
}

/// Every indicator for `period` alone (period index 0), for series of many periods where the
/// period before each is another member of the series: half the rows to read and group.
pub fn compute_figures_alone(
    snapshot: &Snapshot,
    catalogue: &Catalogue,
    period: Period,
) -> Result<(Vec<UnitInfo>, Figures)> {
    figures_of(snapshot, catalogue, &[period], RatioPath::Leaves)
}

/// Every indicator for each of `periods` (index 0 the period, 1 the one before if given), each
/// rolled up with the tree of its own last day, and the units of the first period's tree.
/// Periods with the same tree (the usual case) share one pass over the rows.
fn figures_of(
    snapshot: &Snapshot,
    catalogue: &Catalogue,
    periods: &[Period],
    path: RatioPath,
) -> Result<(Vec<UnitInfo>, Figures)> {
    let mut trees: Vec<Vec<UnitInfo>> =
        periods.iter().map(|p| tree::load(snapshot, p.last_day())).collect::<Result<_>>()?;
    if trees.windows(2).all(|w| w[0] == w[1]) {
        let units = trees.swap_remove(0);
        let fig = figures_on_tree(snapshot, catalogue, periods, &units, path)?;
        return Ok((units, fig));
    }
    let mut fig = Figures::default();
    for (pi, (p, units)) in periods.iter().zip(&trees).enumerate() {
        for ((_, unit, ind), f) in figures_on_tree(snapshot, catalogue, &[*p], units, path)? {
            fig.insert((pi, unit, ind), f);
        }
    }
    Ok((trees.swap_remove(0), fig))
}

/// Every indicator for each of `periods`, all rolled up with the tree `units`.
fn figures_on_tree(
    snapshot: &Snapshot,
    catalogue: &Catalogue,
    periods: &[Period],
    units: &[UnitInfo],
    path: RatioPath,
) -> Result<Figures> {
    let branches: Vec<&UnitInfo> = units.iter().filter(|u| u.level == Level::Branch.code()).collect();
    let tree = Ancestry::new(units)?;
    let ratios = ratio_plans(snapshot, catalogue, periods, units, &tree, path)?;
    let counts = BranchPlans::new(snapshot, catalogue, periods)?;
    let mut plans = ratios.plans;
    plans.extend(counts.plans);
    let frames = collect_all(plans)?;
    tracing::debug!(plans = frames.len(), "rows grouped");
    let (ratio_frames, count_frames) = frames.split_at(ratios.shapes.len());

    let mut fig = ratio_figures(catalogue, periods, units, &tree, ratio_frames, &ratios.shapes)?;
    let (coverage, months) = branch_months(&count_frames[0])?;
    let reported = Reported::new(periods.len(), units, &branches, months);
    let meetings = if counts.meetings { branch_counts(&count_frames[1], "events")? } else { HashMap::new() };
    let counts = BranchFigures { reported: &reported, coverage: &coverage, meetings: &meetings };
    roll_up_branch_counts(catalogue, periods, units, &branches, &counts, &mut fig);
    fill_values(catalogue, &mut fig);
    for (pi, p) in periods.iter().enumerate() {
        composite(catalogue, units, pi, &reported, &mut fig);
        judge(catalogue, units, pi, *p, &reported, &mut fig);
        weak(catalogue, units, pi, &reported, &mut fig);
    }
    Ok(fig)
}

/// The plans of the ratio indicators, and how each plan's frame holds its indicators.
struct RatioPlans<'c> {
    plans: Vec<LazyFrame>,
    shapes: Vec<Shape<'c>>,
}

/// How a ratio plan's frame holds its indicators' figures.
enum Shape<'c> {
    /// Each unit's own rows grouped, to be added up the tree (`leaves`).
    Leaves(Leaves),
    /// A group per ancestor at each depth, with a column per numerator and denominator.
    Depths(Vec<&'c Indicator>),
}

/// Which way ratio indicators are computed: the leaves wherever their aggregates allow, or
/// the depths for all (the reference the leaves are tested against).
#[derive(Debug, Clone, Copy, PartialEq)]
enum RatioPath {
    Leaves,
    #[cfg_attr(not(test), allow(dead_code))]
    Depths,
}

/// One plan per (source, filter): the ratio indicators that share rows share a pass.
fn ratio_plans<'c>(
    snapshot: &Snapshot,
    catalogue: &'c Catalogue,
    periods: &[Period],
    units: &[UnitInfo],
    tree: &Ancestry,
    path: RatioPath,
) -> Result<RatioPlans<'c>> {
    let mut groups: BTreeMap<(String, String), Vec<&Indicator>> = BTreeMap::new();
    for ind in catalogue.indicator.iter().filter(|i| i.kind.rolled_from_rows()) {
        let src = format!("{:?}", ind.source.expect("checked"));
        groups.entry((src, ind.filter.clone().unwrap_or_default())).or_default().push(ind);
    }
    let mut out = RatioPlans { plans: Vec::new(), shapes: Vec::new() };
    let mut depths = None;
    for ((_, filter), inds) in groups {
        let source = inds[0].source.expect("checked");
        let mut lf = source_rows(snapshot, source, periods)?;
        if !filter.is_empty() {
            lf = lf.filter(expr(&filter)?);
        }
        if path == RatioPath::Leaves
            && let Some(leaves) = Leaves::of(&inds)
        {
            out.plans.push(leaves.plan(lf)?);
            out.shapes.push(Shape::Leaves(leaves));
            continue;
        }
        let (frame, depth) = match &depths {
            Some(d) => d,
            None => depths.insert(depth_frame(units, tree)?),
        };
        out.plans.push(depth_plan(lf, &inds, frame.clone().lazy(), *depth)?);
        out.shapes.push(Shape::Depths(inds));
    }
    Ok(out)
}

/// The numerator and denominator of each of `inds` per ancestor and period.
fn depth_plan(rows: LazyFrame, inds: &[&Indicator], depths: LazyFrame, depth: usize) -> Result<LazyFrame> {
    let mut aggs = Vec::new();
    for ind in inds {
        aggs.push(
            expr(ind.numerator.as_deref().expect("checked"))?.cast(DataType::Float64).alias(format!("n:{}", ind.id)),
        );
        aggs.push(
            expr(ind.denominator.as_deref().expect("checked"))?.cast(DataType::Float64).alias(format!("d:{}", ind.id)),
        );
    }
    // The rows are joined once and cached: without the cache every depth's group-by read
    // and joined them again (the `cse` feature that would find this is not compiled in).
    // Rows of units shallower than a depth fall in that depth's null group, which the
    // reading below skips, so no filtered copy of the rows is made per depth.
    let joined = rows.join(depths, [col("unit_id")], [col("unit_id")], JoinArgs::new(JoinType::Inner)).cache();
    let per_depth: Vec<LazyFrame> = (0..depth)
        .map(|d| joined.clone().group_by([col(depth_col(d)).alias(ANCESTOR_COL), col(PERIOD_COL)]).agg(aggs.clone()))
        .collect();
    Ok(concat(per_depth, UnionArgs::default())?)
}

/// Branch-level counts: which months each branch held rows of each event type in (from which
/// the months it reported, always needed since missing is not zero, and activity coverage),
/// then meetings, planned only when the catalogue has them. The rows of every unit are
/// counted, not only branches': only branches are read back, and leaving the others in costs
/// less than a join of every row to the branches.
struct BranchPlans {
    plans: Vec<LazyFrame>,
    meetings: bool,
}

impl BranchPlans {
    fn new(snapshot: &Snapshot, catalogue: &Catalogue, periods: &[Period]) -> Result<BranchPlans> {
        let att = source_rows(snapshot, Source::Attendance, periods)?;
        let one_of = |types: &[&str]| types.iter().fold(lit(false), |acc, t| acc.or(col("event_type").eq(lit(*t))));
        let months = att
            .clone()
            .select([
                col("unit_id"),
                col(PERIOD_COL),
                col("event_type"),
                month_index("event_date", periods).alias("month"),
            ])
            .group_by([col("unit_id"), col(PERIOD_COL), col("event_type"), col("month")])
            .agg([len()]);
        let mut out = BranchPlans {
            plans: vec![months],
            meetings: catalogue.indicator.iter().any(|i| i.kind == IndicatorKind::MeetingCompletion),
        };
        if out.meetings {
            let types: Vec<&str> = catalogue.meetings.required_per_quarter.keys().map(String::as_str).collect();
            out.plans.push(
                att.filter(one_of(&types)).group_by([col("unit_id"), col(PERIOD_COL), col("event_type")]).agg([col(
                    "event_id",
                )
                .n_unique()
                .cast(DataType::Float64)
                .alias("events")]),
            );
        }
        Ok(out)
    }
}

/// The months each unit held rows in, per period and event type: (period index, unit, event
/// type) → months, and (period index, unit) → months of any type.
fn branch_months(df: &DataFrame) -> Result<(BranchCounts, UnitMonths)> {
    let (u, p, t, m) = (
        df.column("unit_id")?.str()?,
        df.column(PERIOD_COL)?.i32()?,
        df.column("event_type")?.str()?,
        df.column("month")?.i32()?,
    );
    let mut by_type: HashMap<(usize, &str, &str), f64> = HashMap::new();
    let mut any: HashMap<(usize, &str), Vec<i32>> = HashMap::new();
    for i in 0..df.height() {
        let (pi, unit) = (p.get(i).unwrap_or(0) as usize, u.get(i).unwrap_or_default());
        // One row per (unit, period, type, month): each row is one more month of its type.
        *by_type.entry((pi, unit, t.get(i).unwrap_or_default())).or_default() += 1.0;
        any.entry((pi, unit)).or_default().push(m.get(i).unwrap_or(0));
    }
    let by_type = by_type.into_iter().map(|((pi, u, t), n)| ((pi, u.to_string(), t.to_string()), n)).collect();
    let any = any
        .into_iter()
        .map(|((pi, u), mut months)| {
            months.sort_unstable();
            months.dedup();
            ((pi, u.to_string()), months.len() as f64)
        })
        .collect();
    Ok((by_type, any))
}

/// Every plan collected, one after the other, on polars' streaming engine: it groups a
/// province's rows in about half the time of the in-memory one. Each plan uses every core on
/// its own; collected together they gained nothing and held every plan's groups at once.
pub(super) fn collect_all(plans: Vec<LazyFrame>) -> Result<Vec<DataFrame>> {
    if tracing::enabled!(tracing::Level::TRACE) {
        for p in &plans {
            let plan = p.clone().describe_optimized_plan().unwrap_or_default();
            tracing::trace!("indicator plan after optimisation:\n{plan}");
        }
    }
    let frames = plans
        .into_iter()
        .map(|p| p.collect_with_engine(Engine::Streaming).map(|r| r.unwrap_single()))
        .collect::<PolarsResult<Vec<_>>>();
    let mut frames = anyhow::Context::context(frames, "computing the indicators")?;
    // One chunk per column, so that reading a row by its index does not search the chunks.
    for f in &mut frames {
        f.rechunk_mut_par();
    }
    Ok(frames)
}

/// The ratio indicators' numerators and denominators for every unit and period. Each starts
/// at 0/0, so a unit without rows gets a null value.
fn ratio_figures(
    catalogue: &Catalogue,
    periods: &[Period],
    units: &[UnitInfo],
    tree: &Ancestry,
    frames: &[DataFrame],
    shapes: &[Shape],
) -> Result<Figures> {
    // Dense figures by (period, unit, indicator), turned into the map once at the end: a map
    // filled with zeros and then looked up for each figure built two keys per lookup.
    let rolled: Vec<&Indicator> = catalogue.indicator.iter().filter(|i| i.kind.rolled_from_rows()).collect();
    let slot_of: HashMap<&str, usize> = rolled.iter().enumerate().map(|(k, i)| (i.id.as_str(), k)).collect();
    let mut dense = vec![(0.0, 0.0); periods.len() * units.len() * rolled.len()];
    let mut set = |pi: usize, unit: usize, id: &str, n: f64, d: f64| {
        if let Some(&k) = slot_of.get(id).filter(|_| pi < periods.len() && unit < units.len()) {
            dense[(pi * units.len() + unit) * rolled.len() + k] = (n, d);
        }
    };
    for (df, shape) in frames.iter().zip(shapes) {
        match shape {
            Shape::Leaves(leaves) => {
                for r in leaves.roll_up(df, tree, periods.len())? {
                    set(r.period, r.unit, r.indicator, r.numerator, r.denominator);
                }
            }
            Shape::Depths(inds) => {
                let anc = df.column(ANCESTOR_COL)?.u32()?;
                let per = df.column(PERIOD_COL)?.i32()?;
                for ind in inds {
                    let n = df.column(&format!("n:{}", ind.id))?.f64()?;
                    let d = df.column(&format!("d:{}", ind.id))?.f64()?;
                    for i in 0..df.height() {
                        let Some(unit) = anc.get(i) else { continue };
                        let pi = per.get(i).unwrap_or(0) as usize;
                        set(pi, unit as usize, &ind.id, n.get(i).unwrap_or(0.0), d.get(i).unwrap_or(0.0));
                    }
                }
            }
        }
    }
    let mut fig = Figures::with_capacity_and_hasher(dense.len(), Default::default());
    for (at, &(n, d)) in dense.iter().enumerate() {
        let (pu, k) = (at / rolled.len(), at % rolled.len());
        let (pi, u) = (pu / units.len(), pu % units.len());
        let figure = Figure { numerator: Some(n), denominator: Some(d), ..Default::default() };
        fig.insert((pi, units[u].id.clone(), rolled[k].id.clone()), figure);
    }
    Ok(fig)
}

/// (period index, branch, event type) → count.
type BranchCounts = HashMap<(usize, String, String), f64>;

/// (period index, unit) → months.
type UnitMonths = HashMap<(usize, String), f64>;

/// A branch-count frame as a map.
fn branch_counts(df: &DataFrame, value: &str) -> Result<BranchCounts> {
    let (u, p, t, v) = (
        df.column("unit_id")?.str()?,
        df.column(PERIOD_COL)?.i32()?,
        df.column("event_type")?.str()?,
        df.column(value)?.f64()?,
    );
    Ok((0..df.height())
        .map(|i| {
            let key = (
                p.get(i).unwrap_or(0) as usize,
                u.get(i).unwrap_or_default().to_string(),
                t.get(i).unwrap_or_default().to_string(),
            );
            (key, v.get(i).unwrap_or(0.0))
        })
        .collect())
}

/// Which branch-months reported: a month in which a branch has any attendance row. A month
/// without one is "not reported", not "held nothing" (SPEC §4, missing is not zero).
struct Reported {
    /// (period index, branch) → months of the period with any attendance row.
    branch: HashMap<(usize, String), f64>,
    /// (period index, unit) → the same, summed over the branches under the unit (the unit
    /// itself if it is a branch).
    unit: HashMap<(usize, String), f64>,
}

impl Reported {
    fn new(periods: usize, units: &[UnitInfo], branches: &[&UnitInfo], branch: UnitMonths) -> Reported {
        let mut unit: HashMap<(usize, String), f64> =
            (0..periods).flat_map(|pi| units.iter().map(move |x| ((pi, x.id.clone()), 0.0))).collect();
        for pi in 0..periods {
            for b in branches {
                let months = branch.get(&(pi, b.id.clone())).copied().unwrap_or(0.0);
                for anc in &b.path {
                    if let Some(s) = unit.get_mut(&(pi, anc.clone())) {
                        *s += months;
                    }
                }
            }
        }
        Reported { branch, unit }
    }

    /// Every unit reported (for tests of the rules that follow).
    #[cfg(test)]
    fn everyone(units: &[UnitInfo]) -> Reported {
        let unit = units.iter().map(|u| ((0, u.id.clone()), 1.0)).collect();
        Reported { branch: HashMap::new(), unit }
    }

    fn months(&self, pi: usize, branch: &str) -> f64 {
        self.branch.get(&(pi, branch.to_string())).copied().unwrap_or(0.0)
    }

    /// Whether no branch under the unit reported in the period.
    fn nothing(&self, pi: usize, unit: &str) -> bool {
        self.unit.get(&(pi, unit.to_string())).copied().unwrap_or(0.0) == 0.0
    }
}

/// The branch counts the per-branch indicators are made of.
struct BranchFigures<'a> {
    reported: &'a Reported,
    coverage: &'a BranchCounts,
    meetings: &'a BranchCounts,
}

/// The per-branch indicators, each branch's numerator and denominator summed up to every
/// ancestor. Only the months a branch reported count: activity coverage is over those months,
/// and the meetings required scale with them (a quarter's requirement for three reported
/// months, two thirds of it for two).
fn roll_up_branch_counts(
    catalogue: &Catalogue,
    periods: &[Period],
    units: &[UnitInfo],
    branches: &[&UnitInfo],
    counts: &BranchFigures,
    fig: &mut Figures,
) {
    let BranchFigures { reported, coverage, meetings } = *counts;
    for (pi, p) in periods.iter().enumerate() {
        for ind in &catalogue.indicator {
            let per_branch: PerBranch = match ind.kind {
                IndicatorKind::ActivityCoverage => {
                    let et = ind.event_type.clone().unwrap_or_default();
                    Some(Box::new(move |b: &UnitInfo| {
                        let held = coverage.get(&(pi, b.id.clone(), et.clone())).copied().unwrap_or(0.0);
                        (held, reported.months(pi, &b.id))
                    }))
                }
                IndicatorKind::MeetingCompletion if p.kind() != PeriodKind::Month => {
                    let per_quarter: Vec<(String, f64)> =
                        catalogue.meetings.required_per_quarter.iter().map(|(t, n)| (t.clone(), *n as f64)).collect();
                    // Counted in thirds of a meeting, so that every term is whole and every sum
                    // exact in any order (`fill_values` turns them back into meetings).
                    Some(Box::new(move |b: &UnitInfo| {
                        let months = reported.months(pi, &b.id);
                        let (mut held, mut required) = (0.0, 0.0);
                        for (t, n) in &per_quarter {
                            let r = n * months;
                            held +=
                                (THIRDS * meetings.get(&(pi, b.id.clone(), t.clone())).copied().unwrap_or(0.0)).min(r);
                            required += r;
                        }
                        (held, required)
                    }))
                }
                IndicatorKind::Reporting => {
                    let p = *p;
                    Some(Box::new(move |b: &UnitInfo| (reported.months(pi, &b.id), b.expected_months(p) as f64)))
                }
                _ => None,
            };
            let Some(per_branch) = per_branch else { continue };
            let mut sums: HashMap<&str, (f64, f64)> = units.iter().map(|u| (u.id.as_str(), (0.0, 0.0))).collect();
            for b in branches {
                let (h, d) = per_branch(b);
                for anc in &b.path {
                    if let Some(s) = sums.get_mut(anc.as_str()) {
                        s.0 += h;
                        s.1 += d;
                    }
                }
            }
            for u in units {
                let (n, d) = sums[u.id.as_str()];
                fig.insert(
                    (pi, u.id.clone(), ind.id.clone()),
                    Figure { numerator: Some(n), denominator: Some(d), ..Default::default() },
                );
            }
        }
    }
}

/// Meeting completion's parts are counted in thirds of a meeting: a month's share of a
/// quarter's requirement is a third of it.
pub(crate) const THIRDS: f64 = 3.0;

/// Values from numerators and denominators; then meeting completion's parts, counted in
/// thirds, in meetings (its value is the exact sums' ratio: an exact half is 0.5, not
/// 0.49999999999999994).
fn fill_values(catalogue: &Catalogue, fig: &mut Figures) {
    for ((_, _, id), f) in fig.iter_mut() {
        let ind = catalogue.get(id).expect("figure of a known indicator");
        f.value = match (f.numerator, f.denominator) {
            (Some(n), Some(d)) if d > 0.0 && ind.kind == IndicatorKind::Count => Some(ind.scale * n),
            (Some(n), Some(d)) if d > 0.0 => Some(ind.scale * n / d),
            _ => None,
        };
        if ind.kind == IndicatorKind::MeetingCompletion {
            f.numerator = f.numerator.map(|n| n / THIRDS);
            f.denominator = f.denominator.map(|d| d / THIRDS);
        }
    }
}

/// The composite: weighted mean of the non-null parts, weights rescaled. A unit none of whose
/// branches reported gets none: it would otherwise be judged on its other parts alone.
fn composite(catalogue: &Catalogue, units: &[UnitInfo], pi: usize, reported: &Reported, fig: &mut Figures) {
    for ind in catalogue.indicator.iter().filter(|i| i.kind == IndicatorKind::Composite) {
        for u in units {
            if catalogue.on_attendance(ind) && reported.nothing(pi, &u.id) {
                fig.insert((pi, u.id.clone(), ind.id.clone()), Figure::default());
                continue;
            }
            let (mut sum, mut weights) = (0.0, 0.0);
            for part in &catalogue.composite.part {
                if let Some(v) = fig.get(&At(pi, &u.id, &part.indicator)).and_then(|f| f.value) {
                    sum += part.weight * (part.scale * v);
                    weights += part.weight;
                }
            }
            let value = if weights > 0.0 { Some(sum / weights) } else { None };
            fig.insert((pi, u.id.clone(), ind.id.clone()), Figure { value, ..Default::default() });
        }
    }
}

/// Status against thresholds, and the competition rank within level and category. A unit
/// none of whose branches reported is `no_data` where attendance is measured, and unranked.
fn judge(catalogue: &Catalogue, units: &[UnitInfo], pi: usize, period: Period, reported: &Reported, fig: &mut Figures) {
    for ind in &catalogue.indicator {
        let mut groups: Groups = BTreeMap::new();
        for u in units {
            let Some(f) = fig.get_mut(&At(pi, &u.id, &ind.id)) else { continue };
            let Some(v) = f.value else {
                if catalogue.on_attendance(ind) && reported.nothing(pi, &u.id) {
                    f.status = Some(Status::NoData);
                }
                continue;
            };
            let t = ind.thresholds_for(u.category.as_deref(), period.month_count());
            let (green, amber) = (tied_limit(t.green, ind.direction), tied_limit(t.amber, ind.direction));
            f.status = Some(match ind.direction {
                Direction::Higher if v >= green => Status::Green,
                Direction::Higher if v >= amber => Status::Amber,
                Direction::Lower if v <= green => Status::Green,
                Direction::Lower if v <= amber => Status::Amber,
                _ => Status::Red,
            });
            groups.entry((u.level.as_str(), u.category.as_deref())).or_default().push((u.id.as_str(), v));
        }
        for members in groups.values_mut() {
            for (id, rank) in competition_ranks(members, ind.direction) {
                if let Some(f) = fig.get_mut(&At(pi, id, &ind.id)) {
                    f.rank = Some(rank);
                }
            }
        }
    }
}

/// Figures closer than this are equal: in ranks, against thresholds and in the weak-unit rules.
/// A ratio's parts are sums of fractions (a quarter's meetings required for two reported months
/// are two thirds of its requirement; assessment scores have decimals), and such sums differ in
/// their last bits with the order of addition: a branch that held exactly half its meetings came
/// out 0.49999999999999994 and was flagged "below 0.5", and two townships equal in exact
/// arithmetic came out 1e-16 apart here and the other way round in Spark. No two different
/// figures of the catalogue are this close (ratios of counts below a million, scores to 100).
pub(crate) const TIE: f64 = 1e-9;

/// The limit as compared, moved by [`TIE`] towards the side a value must pass: a value within
/// it of the limit is on the limit. Spark's script writes the same moved limits as literals.
pub(crate) fn tied_limit(limit: f64, direction: Direction) -> f64 {
    match direction {
        Direction::Higher => limit - TIE,
        Direction::Lower => limit + TIE,
    }
}

/// Competition ranks: 1 + the number of units better by at least [`TIE`], by sorting (a
/// province's groups hold thousands of branches, too many to compare each with each). Spark's
/// script counts the same units with a window over the same key (`spark::judged_view`).
pub(crate) fn competition_ranks<'a>(members: &mut [(&'a str, f64)], direction: Direction) -> Vec<(&'a str, u32)> {
    // Ascending key, best first: the key Spark orders its window by.
    let key = |v: f64| match direction {
        Direction::Higher => -v,
        Direction::Lower => v,
    };
    members.sort_by(|a, b| key(a.1).total_cmp(&key(b.1)));
    let keys: Vec<f64> = members.iter().map(|m| key(m.1)).collect();
    members
        .iter()
        .map(|m| {
            let bound = key(m.1) + -TIE;
            (m.0, 1 + keys.partition_point(|k| *k <= bound) as u32)
        })
        .collect()
}

pub const WEAK: &str = "weak_candidate";
pub(crate) const COMPOSITE: &str = "composite_score";
pub(crate) const MEETINGS: &str = "meeting_completion";

/// A (level, category) group of units with a composite score: how many, and the rank of the
/// last.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WeakGroup {
    pub size: u32,
    pub last: u32,
}

impl WeakGroup {
    /// One more unit, of composite rank `rank`.
    pub fn add(&mut self, rank: u32) {
        self.size += 1;
        self.last = self.last.max(rank);
    }
}

/// Which weak-unit rules fire for a unit with these composite and meeting figures, in the
/// words of the note. Shared with the Spark engine, which finds the same units weak and
/// words them here (one copy of the wording, with Rust's rounding).
pub(crate) fn weak_reasons(
    w: &super::catalogue::Weak,
    comp: &Figure,
    meet: &Figure,
    group: WeakGroup,
    level: &str,
) -> Vec<String> {
    let mut fired = Vec::new();
    // "Below" a limit means below it by more than TIE (a value must pass it upwards).
    if let (Some(limit), Some(v)) = (w.composite_below, comp.value)
        && v < tied_limit(limit, Direction::Higher)
    {
        fired.push(format!("composite_score {v:.1} < {limit}"));
    }
    // "Last" needs a group of two or more and someone ahead: when all tie, none is last.
    if w.last_in_group && group.size >= 2 && group.last > 1 && comp.rank == Some(group.last) {
        fired.push(format!("last of {} {level} units by composite_score", group.size));
    }
    if let (Some(limit), Some(v)) = (w.meeting_completion_below, meet.value)
        && v < tied_limit(limit, Direction::Higher)
    {
        fired.push(format!("meeting_completion {v:.2} < {limit}"));
    }
    fired
}

/// The weak-unit rules; the note says which fired. A unit none of whose branches reported is
/// not judged: `no_data`, with no value.
fn weak(catalogue: &Catalogue, units: &[UnitInfo], pi: usize, reported: &Reported, fig: &mut Figures) {
    let w = &catalogue.weak;
    // Group sizes by level and category, among units with a composite score.
    let mut groups: HashMap<(&str, Option<&str>), WeakGroup> = HashMap::new();
    for u in units {
        if let Some(f) = fig.get(&At(pi, &u.id, COMPOSITE))
            && let Some(r) = f.rank
        {
            groups.entry((u.level.as_str(), u.category.as_deref())).or_default().add(r);
        }
    }
    for u in units {
        if reported.nothing(pi, &u.id) {
            let no_data = Figure { status: Some(Status::NoData), ..Default::default() };
            fig.insert((pi, u.id.clone(), WEAK.to_string()), no_data);
            continue;
        }
        let get = |id: &str| fig.get(&At(pi, &u.id, id)).cloned().unwrap_or_default();
        let group = groups.get(&(u.level.as_str(), u.category.as_deref())).copied().unwrap_or_default();
        let fired = weak_reasons(w, &get(COMPOSITE), &get(MEETINGS), group, &u.level);
        let flag = !fired.is_empty();
        fig.insert(
            (pi, u.id.clone(), WEAK.to_string()),
            Figure {
                value: Some(if flag { 1.0 } else { 0.0 }),
                status: Some(if flag { Status::Red } else { Status::Green }),
                note: if flag { Some(fired.join("; ")) } else { None },
                ..Default::default()
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(id: &str, level: &str, category: Option<&str>) -> UnitInfo {
        UnitInfo {
            id: id.into(),
            name: id.into(),
            level: level.into(),
            category: category.map(Into::into),
            path: vec![id.into()],
            since: None,
        }
    }

    fn set(fig: &mut Figures, unit: &str, ind: &str, v: Option<f64>) {
        fig.insert((0, unit.into(), ind.into()), Figure { value: v, ..Default::default() });
    }

    /// The sample district, plus a member who attends in two branches of one community and in
    /// a branch of another township, in both quarters: what only a roll-up from the leaves
    /// could count twice.
    fn warehouse_with_a_shared_member(dir: &std::path::Path) -> (crate::warehouse::Warehouse, [String; 3]) {
        use crate::ingest::{IngestOptions, NoProgress, names::NameHasher};
        let input = dir.join("in");
        let opts = crate::sample::SampleOptions {
            units: 30,
            members: 600,
            months: 6,
            seed: 5,
            dirty: 0.0,
            end: "2026-03".parse().unwrap(),
            plain: true,
        };
        crate::sample::generate(&input, &opts).unwrap();
        let units = std::fs::read_to_string(input.join("units/units.csv")).unwrap();
        let branches: Vec<(String, String)> = units
            .lines()
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f[3] == "branch")
            .map(|f| (f[0].to_string(), f[2].to_string()))
            .collect();
        let (a, b) = branches
            .iter()
            .enumerate()
            .find_map(|(i, x)| branches[i + 1..].iter().find(|y| y.1 == x.1).map(|y| (x.clone(), y.clone())))
            .expect("two branches of one community");
        let c = branches.iter().find(|x| x.1 != a.1).expect("a branch elsewhere").clone();
        let mut csv = String::from("event_id,unit_id,event_type,event_date,member_id,status,member_name\n");
        for (n, (branch, date)) in [
            (&a.0, "2026-02-10"),
            (&b.0, "2026-02-11"),
            (&c.0, "2026-03-02"),
            (&a.0, "2025-11-05"),
            (&b.0, "2025-12-01"),
        ]
        .into_iter()
        .enumerate()
        {
            csv.push_str(&format!("EXTRA-{n},{branch},activity_day,{date},M000001,present,\n"));
        }
        std::fs::create_dir_all(input.join("extra")).unwrap();
        std::fs::write(input.join("extra/attendance_extra.csv"), csv).unwrap();
        let root = dir.join("wh");
        let paths: Vec<std::path::PathBuf> =
            ["units", "attendance", "points", "extra"].iter().map(|d| input.join(d)).collect();
        crate::ingest::ingest(&root, &paths, &IngestOptions::new(NameHasher::dropping()), &NoProgress).unwrap();
        (crate::warehouse::Warehouse::open(&root).unwrap(), [a.0, b.0, a.1])
    }

    #[test]
    fn the_leaves_give_the_figures_of_the_depths_and_count_a_shared_member_once() {
        let dir = tempfile::tempdir().unwrap();
        let (wh, [a, b, community]) = warehouse_with_a_shared_member(dir.path());
        let snapshot = wh.snapshot().unwrap();
        let cat = Catalogue::builtin();
        // Every ratio of the builtin catalogue takes the leaves: the comparison is not empty.
        let ratios: Vec<&Indicator> = cat.indicator.iter().filter(|i| i.kind.rolled_from_rows()).collect();
        assert!(ratios.len() >= 4 && ratios.iter().all(|i| Leaves::of(&[i]).is_some()));

        let periods: [Period; 2] = ["2026Q1".parse().unwrap(), "2025Q4".parse().unwrap()];
        let (units, leaves) = figures_of(&snapshot, &cat, &periods, RatioPath::Leaves).unwrap();
        let (_, depths) = figures_of(&snapshot, &cat, &periods, RatioPath::Depths).unwrap();
        assert_eq!(leaves.len(), depths.len());
        let close = |x: Option<f64>, y: Option<f64>| match (x, y) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(1.0),
            (x, y) => x == y,
        };
        for (key, d) in &depths {
            let l = &leaves[key];
            assert!(
                close(l.numerator, d.numerator) && close(l.denominator, d.denominator) && close(l.value, d.value),
                "{key:?}: leaves {l:?}, depths {d:?}"
            );
            assert_eq!((l.status, l.rank, &l.note), (d.status, d.rank, &d.note), "{key:?}");
        }
        // The shared member is one member of the community, not one per branch.
        let members = |unit: &str| leaves[&(0, unit.to_string(), "participation_per_member".to_string())].denominator;
        let children: f64 =
            units.iter().filter(|u| u.parent() == Some(community.as_str())).filter_map(|u| members(&u.id)).sum();
        assert!(members(&a).unwrap() > 0.0 && members(&b).unwrap() > 0.0);
        assert_eq!(members(&community), Some(children - 1.0));
    }

    #[test]
    fn competition_ranks_with_ties_by_direction_within_level_and_category() {
        let cat = Catalogue::builtin();
        let units = vec![
            unit("A", "branch", Some("rural")),
            unit("B", "branch", Some("rural")),
            unit("C", "branch", Some("rural")),
            unit("D", "branch", Some("rural")),
            unit("E", "branch", Some("rural")),
            unit("X", "branch", Some("organ")),
        ];
        let mut fig = Figures::default();
        // Higher is better: 0.9, 0.8, 0.8, 0.7 → 1, 2, 2, 4; E has no value, no rank; X is
        // alone in its category → 1.
        for (u, v) in
            [("A", Some(0.9)), ("B", Some(0.8)), ("C", Some(0.8)), ("D", Some(0.7)), ("E", None), ("X", Some(0.1))]
        {
            set(&mut fig, u, "attendance_rate", v);
        }
        // Lower is better: 0.05, 0.05, 0.2, 0.1 → 1, 1, 4, 3.
        for (u, v) in [("A", Some(0.05)), ("B", Some(0.05)), ("C", Some(0.2)), ("D", Some(0.1))] {
            set(&mut fig, u, "absence_rate", v);
        }
        judge(&cat, &units, 0, "2026Q1".parse().unwrap(), &Reported::everyone(&units), &mut fig);
        let rank = |u: &str, i: &str| fig[&(0, u.to_string(), i.to_string())].rank;
        assert_eq!(
            ["A", "B", "C", "D", "E", "X"].map(|u| rank(u, "attendance_rate")),
            [Some(1), Some(2), Some(2), Some(4), None, Some(1)]
        );
        assert_eq!(["A", "B", "C", "D"].map(|u| rank(u, "absence_rate")), [Some(1), Some(1), Some(4), Some(3)]);
        // Status with the rural thresholds (green 0.80, amber 0.65): 0.8 is green, 0.7 amber.
        let status = |u: &str| fig[&(0, u.to_string(), "attendance_rate".to_string())].status;
        assert_eq!(
            ["A", "B", "D", "E", "X"].map(status),
            [Some(Status::Green), Some(Status::Green), Some(Status::Amber), None, Some(Status::Red)]
        );
    }

    #[test]
    fn values_equal_but_for_the_order_of_addition_tie() {
        // 0.1 + 0.2 + 0.3 is 0.6000000000000001 and 0.3 + 0.2 + 0.1 is 0.6; 0.1 + 0.2 is not 0.3.
        let (c, d) = ([0.1, 0.2, 0.3].iter().sum::<f64>(), [0.3, 0.2, 0.1].iter().sum::<f64>());
        assert_ne!(c, d);
        let mut members = [("A", 0.1 + 0.2), ("B", 0.3), ("C", c), ("D", d), ("E", 0.3 - 2e-9), ("F", 0.9)];
        let ranks: BTreeMap<&str, u32> = competition_ranks(&mut members, Direction::Higher).into_iter().collect();
        assert_eq!(ranks.values().copied().collect::<Vec<_>>(), [4, 4, 2, 2, 6, 1]);
        let ranks: BTreeMap<&str, u32> = competition_ranks(&mut members, Direction::Lower).into_iter().collect();
        assert_eq!(ranks.values().copied().collect::<Vec<_>>(), [2, 2, 4, 4, 1, 6]);
    }

    #[test]
    fn a_value_on_a_limit_but_for_its_last_bits_is_on_it() {
        let cat = Catalogue::builtin();
        let units = vec![unit("A", "branch", Some("rural")), unit("B", "branch", Some("rural"))];
        // Half the meetings, summed in thirds: 0.49999999999999994. Exactly on the rural green
        // threshold of attendance (0.80) but for a last bit: 0.7999999999999999.
        let (half, below) = (0.49999999999999994_f64, 0.8 - 1e-16);
        assert!(half < 0.5 && below < 0.8);
        let mut fig = Figures::default();
        set(&mut fig, "A", "meeting_completion", Some(half));
        set(&mut fig, "B", "meeting_completion", Some(0.5 - 2e-9));
        set(&mut fig, "A", "attendance_rate", Some(below));
        set(&mut fig, "B", "attendance_rate", Some(0.8 - 2e-9));
        judge(&cat, &units, 0, "2026Q1".parse().unwrap(), &Reported::everyone(&units), &mut fig);
        let status = |u: &str| fig[&(0, u.to_string(), "attendance_rate".to_string())].status;
        assert_eq!([status("A"), status("B")], [Some(Status::Green), Some(Status::Amber)]);
        let w = &cat.weak;
        let meet = |u: &str| fig[&(0, u.to_string(), MEETINGS.to_string())].clone();
        let none = Figure::default();
        assert!(weak_reasons(w, &none, &meet("A"), WeakGroup::default(), "branch").is_empty());
        assert_eq!(
            weak_reasons(w, &none, &meet("B"), WeakGroup::default(), "branch"),
            ["meeting_completion 0.50 < 0.5"]
        );
    }

    #[test]
    fn last_in_group_needs_someone_ahead() {
        let cat = Catalogue::builtin();
        let units = vec![
            unit("A", "branch", Some("rural")),
            unit("B", "branch", Some("rural")),
            unit("S", "branch", Some("organ")),
        ];
        let mut fig = Figures::default();
        // All tied at 70: nobody is last. S alone: not last either.
        for u in ["A", "B", "S"] {
            set(&mut fig, u, "composite_score", Some(70.0));
            set(&mut fig, u, "meeting_completion", Some(0.9));
        }
        judge(&cat, &units, 0, "2026Q1".parse().unwrap(), &Reported::everyone(&units), &mut fig);
        weak(&cat, &units, 0, &Reported::everyone(&units), &mut fig);
        for u in ["A", "B", "S"] {
            assert_eq!(fig[&(0, u.to_string(), WEAK.to_string())].value, Some(0.0), "{u}");
        }
        // B falls behind: B is last of two.
        set(&mut fig, "B", "composite_score", Some(65.0));
        judge(&cat, &units, 0, "2026Q1".parse().unwrap(), &Reported::everyone(&units), &mut fig);
        weak(&cat, &units, 0, &Reported::everyone(&units), &mut fig);
        let b = &fig[&(0, "B".to_string(), WEAK.to_string())];
        assert_eq!(b.value, Some(1.0));
        assert_eq!(b.note.as_deref(), Some("last of 2 branch units by composite_score"));
    }
}
