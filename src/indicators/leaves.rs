//! Ratio indicators rolled up from each unit's own rows.
//!
//! The depth path (in `compute`) joins every row to its ancestor at each depth of the tree and
//! groups the rows once per depth: any aggregate stays exact, but a province's twenty million
//! rows are grouped four times over with all their expressions. The usual numerators and
//! denominators are sums (`sum(x)`, `count(*)`, `count(x)`), which add up the tree, or distinct
//! counts, whose values can be carried up it. So here the rows are grouped once, by unit and
//! period (and by the distinct values, where there are any), and the groups are added up the
//! tree in Rust: a distinct value met in two units of one subtree still counts once there. A
//! numerator or denominator of any other form keeps its indicators on the depth path.

use std::collections::HashMap;
use std::hash::BuildHasher;

use anyhow::{Context, Result};
use polars::prelude::*;
use rayon::slice::ParallelSliceMut;
use sqlparser::ast::{self, DuplicateTreatment, FunctionArg, FunctionArgExpr, FunctionArguments};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

use super::catalogue::Indicator;
use super::compute::{PERIOD_COL, expr};
use super::tree::UnitInfo;

/// A numerator or denominator that rolls up the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Aggregate {
    /// `count(*)` (or of a literal): the rows.
    Rows,
    /// `sum(x)`: the sum of a value of each row.
    Sum(String),
    /// `count(x)`: the rows where `x` is not null.
    Count(String),
    /// `count(distinct x)`: the distinct non-null values of `x`.
    Distinct(String),
}

impl Aggregate {
    /// The aggregate a catalogue expression is, if it rolls up; `None` sends the indicator to
    /// the depth path. Arguments that are literals are left to it too (`sum(1)`), as are
    /// filters, windows and anything around the aggregate (`sum(x) / 2`).
    pub(super) fn of(sql: &str) -> Option<Aggregate> {
        let dialect = GenericDialect {};
        let mut parser = Parser::new(&dialect).try_with_sql(sql).ok()?;
        let ast::Expr::Function(f) = parser.parse_expr().ok()? else { return None };
        if parser.peek_token().token != Token::EOF {
            return None;
        }
        if f.filter.is_some() || f.over.is_some() || !f.within_group.is_empty() || f.null_treatment.is_some() {
            return None;
        }
        let FunctionArguments::List(list) = &f.args else { return None };
        let [FunctionArg::Unnamed(arg)] = list.args.as_slice() else { return None };
        if !list.clauses.is_empty() {
            return None;
        }
        let distinct = matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct));
        let literal = |x: &ast::Expr| matches!(x, ast::Expr::Value(_));
        match (f.name.to_string().to_ascii_lowercase().as_str(), distinct, arg) {
            ("count", false, FunctionArgExpr::Wildcard) => Some(Aggregate::Rows),
            ("count", false, FunctionArgExpr::Expr(x)) if literal(x) => {
                (!x.to_string().eq_ignore_ascii_case("null")).then_some(Aggregate::Rows)
            }
            ("count", false, FunctionArgExpr::Expr(x)) => Some(Aggregate::Count(x.to_string())),
            ("count", true, FunctionArgExpr::Expr(x)) if !literal(x) => Some(Aggregate::Distinct(x.to_string())),
            ("sum", false, FunctionArgExpr::Expr(x)) if !literal(x) => Some(Aggregate::Sum(x.to_string())),
            _ => None,
        }
    }
}

/// Where a numerator or denominator is found in the grouped rows.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Slot {
    Sum(usize),
    Distinct(usize),
}

/// The plan of a group of indicators that all roll up: the sums and the distinct values to
/// group by, and each indicator's numerator and denominator among them.
pub(super) struct Leaves {
    sums: Vec<Aggregate>,
    distinct: Vec<String>,
    /// (indicator id, numerator, denominator).
    slots: Vec<(String, Slot, Slot)>,
}

impl Leaves {
    /// The plan of `inds`, or `None` when one of their aggregates does not roll up.
    pub(super) fn of(inds: &[&Indicator]) -> Option<Leaves> {
        let mut out = Leaves { sums: Vec::new(), distinct: Vec::new(), slots: Vec::new() };
        for ind in inds {
            let n = out.slot(Aggregate::of(ind.numerator.as_deref()?)?);
            let d = out.slot(Aggregate::of(ind.denominator.as_deref()?)?);
            out.slots.push((ind.id.clone(), n, d));
        }
        Some(out)
    }

    /// The slot of an aggregate, shared with an equal one already planned.
    fn slot(&mut self, agg: Aggregate) -> Slot {
        if let Aggregate::Distinct(x) = agg {
            let i = self.distinct.iter().position(|d| *d == x).unwrap_or_else(|| {
                self.distinct.push(x);
                self.distinct.len() - 1
            });
            return Slot::Distinct(i);
        }
        let i = self.sums.iter().position(|s| *s == agg).unwrap_or_else(|| {
            self.sums.push(agg);
            self.sums.len() - 1
        });
        Slot::Sum(i)
    }

    /// The rows grouped by unit, period and the distinct values, with the partial sums.
    pub(super) fn plan(&self, rows: LazyFrame) -> Result<LazyFrame> {
        let mut keys = vec![col("unit_id"), col(PERIOD_COL)];
        for (k, x) in self.distinct.iter().enumerate() {
            // As text, so that values of any type meet in one map below.
            keys.push(expr(x)?.cast(DataType::String).alias(distinct_col(k)));
        }
        let mut aggs = Vec::new();
        for (s, agg) in self.sums.iter().enumerate() {
            let e = match agg {
                Aggregate::Rows => len(),
                Aggregate::Sum(x) => expr(x)?.cast(DataType::Float64).sum(),
                Aggregate::Count(x) => expr(x)?.is_not_null().cast(DataType::Float64).sum(),
                Aggregate::Distinct(_) => unreachable!("distinct counts have no sum"),
            };
            aggs.push(e.cast(DataType::Float64).alias(sum_col(s)));
        }
        if aggs.is_empty() {
            aggs.push(len().alias(sum_col(0)));
        }
        Ok(rows.group_by(keys).agg(aggs))
    }

    /// Each indicator's numerator and denominator for every period and unit of the tree, from
    /// the frame of `plan`.
    pub(super) fn roll_up<'a>(&'a self, df: &DataFrame, tree: &Ancestry, periods: usize) -> Result<Vec<Rolled<'a>>> {
        let units = tree.units();
        let leaf_unit: Vec<Option<u32>> =
            df.column("unit_id")?.str()?.iter().map(|u| u.and_then(|u| tree.index.get(u).copied())).collect();
        let leaf_period: Vec<Option<usize>> = df
            .column(PERIOD_COL)?
            .i32()?
            .iter()
            .map(|p| p.and_then(|p| usize::try_from(p).ok()).filter(|&p| p < periods))
            .collect();
        let leaves = || {
            leaf_unit.iter().zip(&leaf_period).enumerate().filter_map(|(i, (u, p))| Some((i, (*u)? as usize, (*p)?)))
        };

        let (ns, nd) = (self.sums.len(), self.distinct.len());
        // Each unit's own sums first, then up the tree once per unit: with a distinct count in
        // the plan a unit has a group per distinct value (a province: 3 M groups for 36,000
        // unit-periods), and adding every group to every ancestor cost four times the adds.
        let mut own = vec![0.0; periods * units * ns];
        for s in 0..ns {
            // Read in order: a streamed frame has many chunks, and a lookup by row finds its chunk.
            let values = df.column(&sum_col(s))?.f64()?;
            for ((u, p), v) in leaf_unit.iter().zip(&leaf_period).zip(values.iter()) {
                if let (Some(u), Some(p)) = (u, p) {
                    own[(p * units + *u as usize) * ns + s] += v.unwrap_or(0.0);
                }
            }
        }
        let mut sums = vec![0.0; periods * units * ns];
        for (at, own) in own.chunks_exact(ns.max(1)).enumerate().filter(|(_, own)| own.iter().any(|v| *v != 0.0)) {
            let (p, u) = (at / units, at % units);
            for &a in tree.ancestors(u as u32) {
                let to = (p * units + a as usize) * ns;
                sums[to..to + ns].iter_mut().zip(own).for_each(|(sum, v)| *sum += v);
            }
        }
        let mut distinct = vec![0.0; periods * units * nd];
        let hasher = foldhash::fast::FixedState::with_seed(0);
        for k in 0..nd {
            let values: Vec<Option<&str>> = df.column(&distinct_col(k))?.str()?.iter().collect();
            // The groups sorted by (hash of the value, period), so that a value's units are side
            // by side and each of their ancestors counts it once. Values whose hashes collide
            // are told apart by comparing them, so the count stays exact.
            let mut groups: Vec<(u64, u8, u32, u32)> = leaves()
                .filter_map(|(i, u, p)| Some((hasher.hash_one(values[i]?), p as u8, u as u32, i as u32)))
                .collect();
            groups.par_sort_unstable();
            let mut seen: Vec<u32> = Vec::new();
            for run in groups.chunk_by_mut(|a, b| (a.0, a.1) == (b.0, b.1)) {
                let p = run[0].1 as usize;
                if run.len() > 1 {
                    run.sort_unstable_by_key(|g| values[g.3 as usize]);
                }
                for same in run.chunk_by(|a, b| values[a.3 as usize] == values[b.3 as usize]) {
                    seen.clear();
                    for g in same {
                        seen.extend(tree.ancestors(g.2));
                    }
                    if same.len() > 1 {
                        seen.sort_unstable();
                        seen.dedup();
                    }
                    for &a in &seen {
                        distinct[(p * units + a as usize) * nd + k] += 1.0;
                    }
                }
            }
        }
        let value = |slot: Slot, p: usize, u: usize| match slot {
            Slot::Sum(s) => sums[(p * units + u) * ns + s],
            Slot::Distinct(k) => distinct[(p * units + u) * nd + k],
        };
        let mut out = Vec::with_capacity(periods * units * self.slots.len());
        for p in 0..periods {
            for u in 0..units {
                for (id, n, d) in &self.slots {
                    out.push(Rolled {
                        period: p,
                        unit: u,
                        indicator: id,
                        numerator: value(*n, p, u),
                        denominator: value(*d, p, u),
                    });
                }
            }
        }
        Ok(out)
    }
}

/// An indicator's figures for one period (by index) and unit (by index in the tree).
pub(super) struct Rolled<'a> {
    pub period: usize,
    pub unit: usize,
    pub indicator: &'a str,
    pub numerator: f64,
    pub denominator: f64,
}

/// The tree as indices, for both ways of rolling up: each unit's index by id, and the indices of its path from the root,
/// all paths in one vector (read once per group, in no order: they had better be close).
pub(super) struct Ancestry<'u> {
    index: HashMap<&'u str, u32, foldhash::fast::RandomState>,
    paths: Vec<u32>,
    /// Where each unit's path starts in `paths`; one more at the end.
    starts: Vec<usize>,
}

impl<'u> Ancestry<'u> {
    pub(super) fn new(units: &'u [UnitInfo]) -> Result<Ancestry<'u>> {
        let index: HashMap<&str, u32, _> = units.iter().enumerate().map(|(i, u)| (u.id.as_str(), i as u32)).collect();
        let (mut paths, mut starts) = (Vec::new(), vec![0]);
        for u in units {
            for a in &u.path {
                paths.push(*index.get(a.as_str()).with_context(|| format!("unit {a} of the path of {}", u.id))?);
            }
            starts.push(paths.len());
        }
        Ok(Ancestry { index, paths, starts })
    }

    fn units(&self) -> usize {
        self.starts.len() - 1
    }

    /// The unit's path from the root, itself last.
    pub(super) fn ancestors(&self, unit: u32) -> &[u32] {
        let u = unit as usize;
        &self.paths[self.starts[u]..self.starts[u + 1]]
    }
}

fn sum_col(s: usize) -> String {
    format!("_s{s}")
}

fn distinct_col(k: usize) -> String {
    format!("_k{k}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_counts_and_distinct_counts_roll_up_and_nothing_else_does() {
        use Aggregate::*;
        let of = Aggregate::of;
        assert_eq!(of("count(*)"), Some(Rows));
        assert_eq!(of("COUNT(1)"), Some(Rows));
        assert_eq!(of("count(member_id)"), Some(Count("member_id".into())));
        assert_eq!(of("count(distinct member_id)"), Some(Distinct("member_id".into())));
        assert_eq!(
            of("sum(case when status = 'present' then 1 else 0 end)"),
            Some(Sum("CASE WHEN status = 'present' THEN 1 ELSE 0 END".into()))
        );
        for other in [
            "sum(points) / 2",
            "avg(score)",
            "max(score)",
            "sum(distinct points)",
            "sum(1)",
            "count(null)",
            "count(distinct 1)",
            "sum(points) filter (where approved)",
            "sum(points) over ()",
            "1",
        ] {
            assert_eq!(of(other), None, "{other}");
        }
    }
}
