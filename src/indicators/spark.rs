//! The warehouse and the indicator catalogue as one Spark SQL script, so a province runs the
//! same definitions on a cluster: `spark-sql -f indicators.sql`.
//!
//! The script first declares a view per table over the warehouse location (Hive partitions
//! discovered from the paths, columns typed explicitly), then computes exactly the
//! `indicators` table of `compute` for the period, step by step in temporary views. The
//! numerators, denominators and filters are the catalogue's own SQL text, unchanged: there is
//! one copy of the formulas, the catalogue. Only the `note` column (which weak-unit rule fired)
//! is left null here.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use polars::prelude::DataType;

use super::catalogue::{Catalogue, Direction, Indicator, IndicatorKind, Source};
use super::compute::{THIRDS, TIE, tied_limit};
use crate::model::period::{Period, PeriodKind};
use crate::model::{Level, Status, Table};

fn spark_type(t: &DataType) -> &'static str {
    match t {
        DataType::String => "STRING",
        DataType::Date => "DATE",
        DataType::Datetime(..) => "TIMESTAMP_NTZ",
        DataType::Float64 => "DOUBLE",
        DataType::Int64 => "BIGINT",
        DataType::Int32 => "INT",
        DataType::Boolean => "BOOLEAN",
        _ => "STRING",
    }
}

/// A Spark SQL string literal (Spark escapes with a backslash, not by doubling the quote).
pub(crate) fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

pub(crate) fn num(v: f64) -> String {
    // Doubles written so Spark reads back the same double.
    format!("CAST({v:?} AS DOUBLE)")
}

/// The DDL: one temporary view per table over `root` (absolute).
pub fn ddl(root: &Path) -> Result<String> {
    let mut s = String::new();
    writeln!(
        s,
        "-- Tables over the warehouse at {} (Hive layout, partitions discovered from the paths).",
        root.display()
    )?;
    writeln!(s, "-- For a metastore, the same columns work with CREATE TABLE ... USING parquet PARTITIONED BY (...)")?;
    writeln!(s, "-- LOCATION '...' followed by MSCK REPAIR TABLE.")?;
    for t in Table::ALL {
        let df = t.empty_frame()?;
        let mut cols: Vec<String> = df.schema().iter().map(|(n, dt)| format!("`{n}` {}", spark_type(dt))).collect();
        cols.extend(t.partition_columns().iter().map(|(n, dt)| format!("`{n}` {}", spark_type(dt))));
        writeln!(
            s,
            "CREATE OR REPLACE TEMPORARY VIEW {} ({})\nUSING parquet OPTIONS (path {});",
            t.name(),
            cols.join(", "),
            quote(&root.join(t.name()).display().to_string())
        )?;
    }
    Ok(s)
}

/// Rows of a source within the two periods, tagged `_period` 0 (the period) or 1 (the one
/// before); partition columns keep the scan to those months or years.
fn source_view(source: Source, periods: [Period; 2]) -> String {
    let (table, tag, prune) = match source {
        Source::Attendance | Source::Points => {
            let date = if source == Source::Attendance { "event_date" } else { "entry_date" };
            let within = |p: Period| format!("{date} >= DATE'{}' AND {date} < DATE'{}'", p.start(), p.end_exclusive());
            let months: Vec<String> =
                periods.iter().flat_map(|p| p.months()).map(|(y, m)| format!("(year = {y} AND month = {m})")).collect();
            (
                if source == Source::Attendance { "attendance" } else { "points" },
                format!("CASE WHEN {} THEN 0 WHEN {} THEN 1 END", within(periods[0]), within(periods[1])),
                months.join(" OR "),
            )
        }
        Source::Tasks | Source::Findings => {
            // Every row due by each period's last day, once per period (see `compute`).
            let due = source.due_field().expect("a ledger");
            let table = source.table().name();
            return format!(
                "SELECT t.*, p._period, p.first_day AS period_first_day, p.last_day AS period_last_day FROM {table} t JOIN dj_periods p ON t.{due} <= p.last_day"
            );
        }
        Source::Assessment => {
            let labels = |p: Period| p.assessment_labels().iter().map(|l| quote(l)).collect::<Vec<_>>();
            let in_p = |p: Period| {
                let l = labels(p);
                if l.is_empty() { "FALSE".to_string() } else { format!("period IN ({})", l.join(", ")) }
            };
            let mut years: Vec<i32> = periods.iter().map(|p| p.year()).collect();
            years.dedup();
            (
                "assessment",
                format!("CASE WHEN {} THEN 0 WHEN {} THEN 1 END", in_p(periods[0]), in_p(periods[1])),
                format!("year IN ({})", years.iter().map(|y| y.to_string()).collect::<Vec<_>>().join(", ")),
            )
        }
    };
    format!("SELECT * FROM (SELECT *, {tag} AS _period FROM {table} WHERE {prune}) WHERE _period IS NOT NULL")
}

/// The status of `value_col`, with per-category thresholds read from `category_col`.
fn thresholds_case(ind: &Indicator, months: u32, value_col: &str, category_col: &str) -> String {
    let op = match ind.direction {
        Direction::Higher => ">=",
        Direction::Lower => "<=",
    };
    let t = |green: f64, amber: f64, value: &str| {
        format!(
            "CASE WHEN {value} IS NULL THEN NULL WHEN {value} {op} {} THEN {g} WHEN {value} {op} {} THEN {a} ELSE {r} END",
            num(tied_limit(green, ind.direction)),
            num(tied_limit(amber, ind.direction)),
            g = quote(Status::Green.code()),
            a = quote(Status::Amber.code()),
            r = quote(Status::Red.code()),
        )
    };
    let mut branches = Vec::new();
    for cat in ind.thresholds_by_category.keys() {
        let th = ind.thresholds_for(Some(cat), months);
        branches.push(format!("WHEN {category_col} = {} THEN {}", quote(cat), t(th.green, th.amber, value_col)));
    }
    let d = ind.thresholds_for(None, months);
    if branches.is_empty() {
        t(d.green, d.amber, value_col)
    } else {
        format!("CASE {} ELSE {} END", branches.join(" "), t(d.green, d.amber, value_col))
    }
}

/// A script's statements, in order, without their comment lines and final semicolons: the
/// generator ends each statement with a semicolon at the end of a line, and no literal it
/// writes holds one there.
#[cfg_attr(not(feature = "spark"), allow(dead_code))]
pub fn statements(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Vec<&str> = Vec::new();
    for line in script.lines().filter(|l| !l.trim_start().starts_with("--")) {
        cur.push(line);
        if line.trim_end().ends_with(';') {
            out.push(cur.join("\n").trim_end().trim_end_matches(';').trim().to_string());
            cur.clear();
        }
    }
    let rest = cur.join("\n");
    if !rest.trim().is_empty() {
        out.push(rest.trim().to_string());
    }
    out
}

/// The whole script for `period`.
pub fn script(catalogue: &Catalogue, root: &Path, period: Period) -> Result<String> {
    let periods = [period, period.previous()];
    let months = period.month_count();
    let mut s = String::new();
    writeln!(
        s,
        "-- dangjian {}: the indicators of {period} (and {} for change), Spark SQL.",
        env!("CARGO_PKG_VERSION"),
        periods[1]
    )?;
    writeln!(s, "-- Catalogue BLAKE3 {}. Generated; edit the catalogue, not this file.\n", catalogue.hash())?;
    // Spark renders every query's plan as text for its event log and UI, with each view
    // inlined wherever it is used; for these views over views that text ran the driver out of
    // heap. The log's copy is cut short; the computation is unchanged.
    writeln!(s, "SET spark.sql.maxPlanStringLength=65536;\n")?;
    s.push_str(&ddl(root)?);
    s.push('\n');
    s.push_str(&shared_views(periods)?);
    let (group_views, mut figures) = ratio_figures(catalogue);
    s.push_str(&group_views);
    figures.extend(branch_figures(catalogue, period));
    writeln!(
        s,
        "CREATE OR REPLACE TEMPORARY VIEW dj_base AS SELECT unit_id, _period, indicator, numerator / parts AS numerator, denominator / parts AS denominator, CASE WHEN denominator > 0 THEN (scale * numerator) / {} END AS value FROM (\n  {}\n);",
        counts_undivided(catalogue),
        figures.join("\n  UNION ALL\n  ")
    )?;
    let composite_id = catalogue.indicator.iter().find(|i| i.kind == IndicatorKind::Composite).map(|i| i.id.clone());
    s.push_str(&values_view(catalogue, composite_id.as_deref())?);
    s.push_str(&judged_view(catalogue, months)?);
    s.push_str(&weak_view(catalogue, composite_id.as_deref().unwrap_or_default())?);
    s.push_str(&indicators_view(period)?);
    Ok(s)
}

/// What a figure's scaled numerator is divided by: its denominator, or 1 for a count.
fn counts_undivided(catalogue: &Catalogue) -> String {
    let counts: Vec<String> =
        catalogue.indicator.iter().filter(|i| i.kind == IndicatorKind::Count).map(|i| quote(&i.id)).collect();
    if counts.is_empty() {
        "denominator".into()
    } else {
        format!("CASE WHEN indicator IN ({}) THEN 1 ELSE denominator END", counts.join(", "))
    }
}

/// The two periods, the closure of the unit tree, and each source's rows of the periods.
fn shared_views(periods: [Period; 2]) -> Result<String> {
    let mut s = String::new();
    let day = |d: chrono::NaiveDate| format!("DATE'{d}'");
    writeln!(
        s,
        "CREATE OR REPLACE TEMPORARY VIEW dj_periods AS SELECT 0 AS _period, {} AS first_day, {} AS last_day UNION ALL SELECT 1 AS _period, {} AS first_day, {} AS last_day;",
        day(periods[0].start()),
        day(periods[0].last_day()),
        day(periods[1].start()),
        day(periods[1].last_day())
    )?;
    let month_ends: Vec<String> = periods
        .iter()
        .enumerate()
        .flat_map(|(pi, p)| p.months().into_iter().map(move |(y, m)| (pi, Period::Month { year: y, month: m })))
        .map(|(pi, m)| format!("({pi}, {})", day(m.last_day())))
        .collect();
    writeln!(
        s,
        "CREATE OR REPLACE TEMPORARY VIEW dj_month_ends AS SELECT * FROM (VALUES {}) AS t(_period, last_day);",
        month_ends.join(", ")
    )?;
    writeln!(
        s,
        "-- Each unit's unbroken existence: stretches of `units_history` that follow one another form an island, \
and `since` is its first day (null when it reaches back to the start).\n\
CREATE OR REPLACE TEMPORARY VIEW dj_islands AS SELECT *, SUM(brk) OVER (PARTITION BY unit_id ORDER BY valid_from ASC NULLS FIRST ROWS UNBOUNDED PRECEDING) AS island \
FROM (SELECT *, CASE WHEN LAG(valid_to) OVER (PARTITION BY unit_id ORDER BY valid_from ASC NULLS FIRST) = date_sub(valid_from, 1) THEN 0 ELSE 1 END AS brk FROM units_history);"
    )?;
    writeln!(
        s,
        "-- The tree of each period: the units valid on its last day (SPEC §2), each with its path on that day.\n\
CREATE OR REPLACE TEMPORARY VIEW dj_tree AS SELECT h.unit_id, h.unit_name, h.level, h.category, h.path, p._period, i.since \
FROM dj_islands h JOIN dj_periods p ON (h.valid_from IS NULL OR h.valid_from <= p.last_day) AND (h.valid_to IS NULL OR h.valid_to >= p.last_day) \
JOIN (SELECT unit_id, island, CASE WHEN COUNT(*) > COUNT(valid_from) THEN NULL ELSE MIN(valid_from) END AS since FROM dj_islands GROUP BY unit_id, island) i \
ON i.unit_id = h.unit_id AND i.island = h.island;"
    )?;
    writeln!(s, "CACHE TABLE dj_tree;")?;
    writeln!(
        s,
        "-- Each unit with each of its ancestors in each period's tree, itself included, from the path column.\nCREATE OR REPLACE TEMPORARY VIEW dj_closure AS SELECT u.unit_id, u._period, a.ancestor_id FROM dj_tree u LATERAL VIEW explode(split(u.path, '/')) a AS ancestor_id;"
    )?;
    writeln!(s, "CACHE TABLE dj_closure;")?;
    for src in [Source::Attendance, Source::Points, Source::Assessment, Source::Tasks, Source::Findings] {
        writeln!(s, "CREATE OR REPLACE TEMPORARY VIEW dj_src_{:?} AS {};", src, source_view(src, periods))?;
        // Each source is read by several steps: read it once.
        writeln!(s, "CACHE TABLE dj_src_{src:?};")?;
    }
    writeln!(
        s,
        "-- The months each branch reported (any attendance row): missing is not zero.\n\
CREATE OR REPLACE TEMPORARY VIEW dj_reported AS SELECT x.unit_id, x._period, x.months, y.expected FROM \
(SELECT b.unit_id, p._period, CAST(COUNT(DISTINCT month(a.event_date)) AS DOUBLE) AS months \
FROM dj_tree b JOIN dj_periods p ON p._period = b._period LEFT JOIN dj_src_Attendance a ON a.unit_id = b.unit_id AND a._period = p._period WHERE b.level = {branch} GROUP BY b.unit_id, p._period) x \
JOIN (SELECT b.unit_id, b._period, CAST(COUNT(e.last_day) AS DOUBLE) AS expected FROM dj_tree b \
LEFT JOIN dj_month_ends e ON e._period = b._period AND (b.since IS NULL OR e.last_day >= b.since) WHERE b.level = {branch} GROUP BY b.unit_id, b._period) y \
ON y.unit_id = x.unit_id AND y._period = x._period;",
        branch = quote(Level::Branch.code())
    )?;
    writeln!(s, "CACHE TABLE dj_reported;")?;
    writeln!(
        s,
        "CREATE OR REPLACE TEMPORARY VIEW dj_unit_reported AS SELECT u.unit_id, p._period, COALESCE(x.months, CAST(0 AS DOUBLE)) AS months \
FROM dj_tree u JOIN dj_periods p ON p._period = u._period LEFT JOIN (SELECT c.ancestor_id AS unit_id, r._period, SUM(r.months) AS months FROM dj_reported r JOIN dj_closure c ON c.unit_id = r.unit_id AND c._period = r._period GROUP BY c.ancestor_id, r._period) x \
ON x.unit_id = u.unit_id AND x._period = p._period;"
    )?;
    // Read by the composite, the statuses and the weak-unit rules: worked out once.
    writeln!(s, "CACHE TABLE dj_unit_reported;")?;
    Ok(s)
}

/// Ratios: one pass per (source, filter), as in `compute`. Returns the views of the passes,
/// and one figure query per ratio indicator.
fn ratio_figures(catalogue: &Catalogue) -> (String, Vec<String>) {
    let mut groups: Vec<((Source, String), Vec<&Indicator>)> = Vec::new();
    for ind in catalogue.indicator.iter().filter(|i| i.kind.rolled_from_rows()) {
        let key = (ind.source.expect("checked"), ind.filter.clone().unwrap_or_default());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(ind),
            None => groups.push((key, vec![ind])),
        }
    }
    let mut views = String::new();
    let mut figures = Vec::new();
    for (gi, ((src, filter), inds)) in groups.iter().enumerate() {
        let aggs: Vec<String> = inds
            .iter()
            .map(|i| {
                format!(
                    "CAST({} AS DOUBLE) AS `n_{id}`, CAST({} AS DOUBLE) AS `d_{id}`",
                    i.numerator.as_deref().expect("checked"),
                    i.denominator.as_deref().expect("checked"),
                    id = i.id
                )
            })
            .collect();
        let where_ = if filter.is_empty() { String::new() } else { format!(" WHERE ({filter})") };
        views.push_str(&format!(
            "CREATE OR REPLACE TEMPORARY VIEW dj_g{gi} AS SELECT c.ancestor_id AS unit_id, r._period, {} FROM (SELECT * FROM dj_src_{src:?} AS s{where_}) r JOIN dj_closure c ON r.unit_id = c.unit_id AND r._period = c._period GROUP BY c.ancestor_id, r._period;\n",
            aggs.join(", ")
        ));
        // Each group is read by one figure per indicator in it: worked out once. Inlined into
        // every figure, the groups made the plan of the figures' union run the driver out of
        // heap at fifteen indicators.
        views.push_str(&format!("CACHE TABLE dj_g{gi};\n"));
        for i in inds {
            figures.push(format!(
                "SELECT u.unit_id, p._period, {ind} AS indicator, COALESCE(g.`n_{id}`, CAST(0 AS DOUBLE)) AS numerator, COALESCE(g.`d_{id}`, CAST(0 AS DOUBLE)) AS denominator, {scale} AS scale, CAST(1 AS DOUBLE) AS parts FROM dj_tree u JOIN dj_periods p ON p._period = u._period LEFT JOIN dj_g{gi} g ON g.unit_id = u.unit_id AND g._period = p._period",
                ind = quote(&i.id),
                id = i.id,
                scale = num(i.scale)
            ));
        }
    }
    (views, figures)
}

/// Per-branch counts rolled up the tree: activity coverage over the months each branch
/// reported, meeting completion against the meetings its reported months require, and the
/// reporting rate.
fn branch_figures(catalogue: &Catalogue, period: Period) -> Vec<String> {
    let branch = quote(Level::Branch.code());
    // `per_branch` gives each branch's held and den, counted in `parts` of the unit published.
    let branch_rollup = |name: &str, per_branch: &str, parts: f64| -> String {
        format!(
            "SELECT u.unit_id, p._period, {ind} AS indicator, COALESCE(x.held, CAST(0 AS DOUBLE)) AS numerator, COALESCE(x.den, CAST(0 AS DOUBLE)) AS denominator, CAST(1.0 AS DOUBLE) AS scale, {parts} AS parts \
FROM dj_tree u JOIN dj_periods p ON p._period = u._period LEFT JOIN (SELECT c.ancestor_id AS unit_id, b._period, SUM(b.held) AS held, SUM(b.den) AS den FROM ({per_branch}) b JOIN dj_closure c ON c.unit_id = b.unit_id AND c._period = b._period GROUP BY c.ancestor_id, b._period) x \
ON x.unit_id = u.unit_id AND x._period = p._period",
            ind = quote(name),
            parts = num(parts),
        )
    };
    let mut figures = Vec::new();
    for ind in &catalogue.indicator {
        match ind.kind {
            IndicatorKind::ActivityCoverage => {
                let et = ind.event_type.clone().unwrap_or_default();
                let per_branch = format!(
                    "SELECT h.unit_id, h._period, h.held, r.months AS den FROM (SELECT b.unit_id, p._period, CAST(COUNT(DISTINCT CASE WHEN a.event_type = {et} THEN month(a.event_date) END) AS DOUBLE) AS held \
FROM dj_tree b JOIN dj_periods p ON p._period = b._period LEFT JOIN dj_src_Attendance a ON a.unit_id = b.unit_id AND a._period = p._period WHERE b.level = {branch} GROUP BY b.unit_id, p._period) h \
JOIN dj_reported r ON r.unit_id = h.unit_id AND r._period = h._period",
                    et = quote(&et)
                );
                figures.push(branch_rollup(&ind.id, &per_branch, 1.0));
            }
            IndicatorKind::MeetingCompletion if period.kind() != PeriodKind::Month => {
                let values: Vec<String> = catalogue
                    .meetings
                    .required_per_quarter
                    .iter()
                    .map(|(t, n)| format!("({}, {})", quote(t), num(*n as f64)))
                    .collect();
                let per_branch = format!(
                    "SELECT b.unit_id, p._period, SUM(LEAST({thirds} * COALESCE(m.events, CAST(0 AS DOUBLE)), req.required * r.months)) AS held, SUM(req.required * r.months) AS den \
FROM dj_tree b JOIN dj_periods p ON p._period = b._period CROSS JOIN (VALUES {}) AS req(event_type, required) \
JOIN dj_reported r ON r.unit_id = b.unit_id AND r._period = p._period \
LEFT JOIN (SELECT unit_id, _period, event_type, CAST(COUNT(DISTINCT event_id) AS DOUBLE) AS events FROM dj_src_Attendance GROUP BY unit_id, _period, event_type) m \
ON m.unit_id = b.unit_id AND m._period = p._period AND m.event_type = req.event_type WHERE b.level = {branch} GROUP BY b.unit_id, p._period",
                    values.join(", "),
                    thirds = num(THIRDS)
                );
                figures.push(branch_rollup(&ind.id, &per_branch, THIRDS));
            }
            IndicatorKind::Reporting => {
                let per_branch =
                    "SELECT unit_id, _period, months AS held, expected AS den FROM dj_reported".to_string();
                figures.push(branch_rollup(&ind.id, &per_branch, 1.0));
            }
            _ => {}
        }
    }
    figures
}

/// Every value, with the composite: the weighted mean of the parts that are not null, weights
/// rescaled.
fn values_view(catalogue: &Catalogue, composite_id: Option<&str>) -> Result<String> {
    // A unit none of whose branches reported gets no composite (see `compute::composite`).
    let on_attendance =
        catalogue.indicator.iter().any(|i| i.kind == IndicatorKind::Composite && catalogue.on_attendance(i));
    let unreported = if on_attendance { "WHEN MAX(ur.months) = 0 THEN NULL " } else { "" };
    let mut s = String::new();
    let parts: Vec<String> = catalogue
        .composite
        .part
        .iter()
        .map(|p| format!("({}, {}, {})", quote(&p.indicator), num(p.weight), num(p.scale)))
        .collect();
    match composite_id {
        Some(id) => writeln!(
            s,
            "CREATE OR REPLACE TEMPORARY VIEW dj_values AS SELECT unit_id, _period, indicator, numerator, denominator, value FROM dj_base \
UNION ALL SELECT b.unit_id, b._period, {} AS indicator, CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE), \
CASE {unreported}WHEN SUM(CASE WHEN b.value IS NOT NULL THEN w.weight END) > 0 THEN SUM(w.weight * (w.scale * b.value)) / SUM(CASE WHEN b.value IS NOT NULL THEN w.weight END) END \
FROM dj_base b JOIN (VALUES {}) AS w(indicator, weight, scale) ON b.indicator = w.indicator \
JOIN dj_unit_reported ur ON ur.unit_id = b.unit_id AND ur._period = b._period GROUP BY b.unit_id, b._period;",
            quote(id),
            parts.join(", ")
        )?,
        None => writeln!(
            s,
            "CREATE OR REPLACE TEMPORARY VIEW dj_values AS SELECT unit_id, _period, indicator, numerator, denominator, value FROM dj_base;"
        )?,
    }
    writeln!(s, "CACHE TABLE dj_values;")?;
    Ok(s)
}

/// Status and competition rank within level and category: 1 + the units better by at least
/// `TIE`, as `compute::competition_ranks` ranks (Spark's frame bound is the key plus the
/// negated offset, and includes rows equal to it).
fn judged_view(catalogue: &Catalogue, months: u32) -> Result<String> {
    let mut status_cases = Vec::new();
    let mut order_cases = Vec::new();
    for ind in &catalogue.indicator {
        let judged = thresholds_case(ind, months, "v.value", "u.category");
        let status = if catalogue.on_attendance(ind) {
            format!(
                "CASE WHEN v.value IS NULL AND ur.months = 0 THEN {} ELSE {judged} END",
                quote(Status::NoData.code())
            )
        } else {
            judged
        };
        status_cases.push(format!("WHEN {} THEN {status}", quote(&ind.id)));
        let sign = if ind.direction == Direction::Higher { "-" } else { "" };
        order_cases.push(format!("WHEN {} THEN {sign}v.value", quote(&ind.id)));
    }
    let mut s = String::new();
    writeln!(
        s,
        "CREATE OR REPLACE TEMPORARY VIEW dj_judged AS SELECT v.*, u.unit_name, u.level, u.category, \
CASE v.indicator {} END AS status, \
CASE WHEN v.value IS NULL THEN NULL ELSE CAST(1 + COUNT(*) OVER (PARTITION BY v.indicator, v._period, u.level, u.category, v.value IS NULL ORDER BY CASE v.indicator {} END RANGE BETWEEN UNBOUNDED PRECEDING AND {} PRECEDING) AS INT) END AS `rank` \
FROM dj_values v JOIN dj_tree u ON u.unit_id = v.unit_id AND u._period = v._period JOIN dj_unit_reported ur ON ur.unit_id = v.unit_id AND ur._period = v._period;",
        status_cases.join(" "),
        order_cases.join(" "),
        num(TIE)
    )?;
    Ok(s)
}

/// The weak-unit candidates, by the rules of the catalogue.
fn weak_view(catalogue: &Catalogue, comp: &str) -> Result<String> {
    let w = &catalogue.weak;
    let mut rules = Vec::new();
    if let Some(l) = w.composite_below {
        rules.push(format!("(c.value IS NOT NULL AND c.value < {})", num(tied_limit(l, Direction::Higher))));
    }
    if w.last_in_group {
        rules.push("(g.size >= 2 AND g.last > 1 AND c.`rank` = g.last)".to_string());
    }
    if let Some(l) = w.meeting_completion_below {
        rules.push(format!("(m.value IS NOT NULL AND m.value < {})", num(tied_limit(l, Direction::Higher))));
    }
    let fired = if rules.is_empty() { "FALSE".to_string() } else { rules.join(" OR ") };
    let mut s = String::new();
    writeln!(
        s,
        "CREATE OR REPLACE TEMPORARY VIEW dj_weak AS SELECT u.unit_id, p._period, 'weak_candidate' AS indicator, CAST(NULL AS DOUBLE) AS numerator, CAST(NULL AS DOUBLE) AS denominator, \
CASE WHEN ur.months = 0 THEN CAST(NULL AS DOUBLE) WHEN {fired} THEN CAST(1 AS DOUBLE) ELSE CAST(0 AS DOUBLE) END AS value, u.unit_name, u.level, u.category, \
CASE WHEN ur.months = 0 THEN {no_data} WHEN {fired} THEN {red} ELSE {green} END AS status, CAST(NULL AS INT) AS `rank` \
FROM dj_tree u JOIN dj_periods p ON p._period = u._period JOIN dj_unit_reported ur ON ur.unit_id = u.unit_id AND ur._period = p._period \
LEFT JOIN dj_judged c ON c.unit_id = u.unit_id AND c._period = p._period AND c.indicator = {comp} \
LEFT JOIN dj_judged m ON m.unit_id = u.unit_id AND m._period = p._period AND m.indicator = 'meeting_completion' \
LEFT JOIN (SELECT level, category, _period, COUNT(`rank`) AS size, MAX(`rank`) AS last FROM dj_judged WHERE indicator = {comp} GROUP BY level, category, _period) g \
ON g.level = u.level AND g.category <=> u.category AND g._period = p._period;",
        comp = quote(comp),
        red = quote(Status::Red.code()),
        green = quote(Status::Green.code()),
        no_data = quote(Status::NoData.code()),
    )?;
    writeln!(s, "CACHE TABLE dj_judged;")?;
    Ok(s)
}

/// The indicators table of the period, with the change against the period before.
fn indicators_view(period: Period) -> Result<String> {
    let mut s = String::new();
    writeln!(
        s,
        "CREATE OR REPLACE TEMPORARY VIEW dj_all AS SELECT unit_id, _period, indicator, numerator, denominator, value, unit_name, level, category, status, `rank` FROM dj_judged UNION ALL SELECT * FROM dj_weak;"
    )?;
    writeln!(
        s,
        "-- The indicators table of {period}: the same rows and columns as `dangjian compute` writes.\n\
CREATE OR REPLACE TEMPORARY VIEW dj_indicators AS SELECT a.unit_id, a.unit_name, a.level, a.category, a.indicator, a.value, a.numerator, a.denominator, a.status, a.`rank`, \
b.value AS previous_value, a.value - b.value AS change, CAST(NULL AS STRING) AS note, {} AS period \
FROM dj_all a LEFT JOIN dj_all b ON b.unit_id = a.unit_id AND b.indicator = a.indicator AND b._period = 1 WHERE a._period = 0;",
        quote(&period.to_string())
    )?;
    writeln!(s, "SELECT * FROM dj_indicators ORDER BY indicator, unit_id;")?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_splits_into_its_statements_without_comments() {
        let script = "-- a title\nSET a=1;\n\nCREATE VIEW v AS SELECT 1\n  -- inside\nFROM t;\nSELECT * FROM v;\n";
        assert_eq!(statements(script), ["SET a=1", "CREATE VIEW v AS SELECT 1\nFROM t", "SELECT * FROM v"]);
        assert_eq!(statements("SELECT 1"), ["SELECT 1"]);
    }

    #[test]
    fn the_generated_script_ends_with_the_one_select_of_the_indicators() {
        let catalogue = Catalogue::builtin();
        let text = script(&catalogue, Path::new("/w"), Period::Quarter { year: 2026, quarter: 1 }).unwrap();
        let all = statements(&text);
        let selects: Vec<&String> = all.iter().filter(|s| s.starts_with("SELECT")).collect();
        assert_eq!(selects.len(), 1);
        assert!(all.last().unwrap().starts_with("SELECT * FROM dj_indicators"));
        assert!(all.iter().all(|s| !s.is_empty() && !s.ends_with(';') && !s.contains("\n--")));
        // One view per table, then the computation.
        assert!(all.iter().filter(|s| s.contains("USING parquet")).count() == Table::ALL.len());
    }
}
