//! The annual appraisal as a Spark SQL script (`dangjian sql --dialect spark --period YEAR
//! --appraisal`): the same score, rank, grade and eligibility as `appraisal`, from the tables a
//! province's warehouse holds: the year's and its quarters' `indicators` (computed by the
//! catalogue's own script), `findings`, `tasks` and `units_history`.
//!
//! One difference of input, none of rule: the weak-unit veto reads the quarters' stored
//! indicators, so the quarters must have been computed (the quarterly pipeline does), where
//! dangjian computes a missing quarter on the fly.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use super::appraisal::{AppraisalRules, Scope, Severity, Veto};
use crate::indicators::Catalogue;
use crate::indicators::catalogue::Direction;
use crate::indicators::spark::{self, num, quote};
use crate::model::period::Period;

fn severities_from(at_least: Severity) -> String {
    Severity::ALL.iter().filter(|s| **s >= at_least).map(|s| quote(s.code())).collect::<Vec<_>>().join(", ")
}

/// The script: the DDL, then one view per step, ending with a SELECT of every graded unit.
pub fn script(rules: &AppraisalRules, catalogue: &Catalogue, root: &Path, year: i32) -> Result<String> {
    if let Err(e) = rules.check_against(catalogue) {
        anyhow::bail!("[appraisal]: {e}");
    }
    let day = Period::Year { year }.last_day();
    let d = format!("DATE'{day}'");
    let mut s = spark::ddl(root)?;
    writeln!(s, "-- The annual appraisal of {year} (SPEC §6), from the stored indicators of {year} and its quarters.")?;
    let levels: Vec<String> = rules.levels.iter().map(|l| quote(l.code())).collect();
    writeln!(
        s,
        "CREATE OR REPLACE TEMPORARY VIEW appraisal_units AS\nSELECT DISTINCT unit_id, level, category FROM indicators\nWHERE period = '{year}' AND level IN ({});",
        levels.join(", ")
    )?;
    let components: Vec<String> = rules
        .components
        .iter()
        .map(|c| {
            let percent = catalogue.get(&c.indicator).is_some_and(|i| i.unit == "percent");
            format!("({}, {}, {})", quote(&c.indicator), num(c.weight), percent)
        })
        .collect();
    writeln!(
        s,
        "CREATE OR REPLACE TEMPORARY VIEW appraisal_parts AS\nSELECT i.unit_id, c.weight, CASE WHEN c.percent THEN 100 * i.value ELSE i.value END AS v\n\
         FROM indicators i JOIN (VALUES {}) AS c(indicator, weight, percent) ON i.indicator = c.indicator\n\
         WHERE i.period = '{year}' AND i.value IS NOT NULL;",
        components.join(", ")
    )?;
    let total: f64 = rules.components.iter().map(|c| c.weight).sum();
    writeln!(
        s,
        "CREATE OR REPLACE TEMPORARY VIEW appraisal_scored AS\nSELECT u.unit_id, u.level, u.category,\n  \
         CASE WHEN coalesce(sum(p.weight), 0) > 0 AND coalesce(sum(p.weight), 0) / {} >= {} - 1e-12\n  \
         THEN sum(p.weight * p.v) / sum(p.weight) END AS score\n\
         FROM appraisal_units u LEFT JOIN appraisal_parts p ON p.unit_id = u.unit_id\nGROUP BY u.unit_id, u.level, u.category;",
        num(total),
        num(rules.min_weight)
    )?;
    writeln!(
        s,
        "CREATE OR REPLACE TEMPORARY VIEW appraisal_tree AS\nSELECT unit_id, path FROM units_history\n\
         WHERE coalesce(valid_from, {d}) <= {d} AND coalesce(valid_to, {d}) >= {d};"
    )?;
    // One view per veto: the units it fires for.
    for (k, veto) in rules.vetoes.iter().enumerate() {
        let (holders, scope, at_least) = match veto {
            Veto::OverdueFinding { severity, scope, .. } => (
                format!(
                    "SELECT unit_id FROM findings WHERE deadline <= {d} AND severity IN ({})\n  \
                     AND NOT (status = 'rectified' AND rectified_date IS NOT NULL AND rectified_date <= {d})",
                    severities_from(*severity)
                ),
                *scope,
                1,
            ),
            Veto::OverdueTasks { at_least, scope, .. } => (
                format!(
                    "SELECT unit_id FROM tasks WHERE due_date <= {d}\n  \
                     AND NOT (status = 'done' AND done_date IS NOT NULL AND done_date <= {d})"
                ),
                *scope,
                *at_least,
            ),
            Veto::WeakQuarters { at_least, .. } => {
                let quarters: Vec<String> = (1..=4).map(|q| quote(&format!("{year}Q{q}"))).collect();
                writeln!(
                    s,
                    "CREATE OR REPLACE TEMPORARY VIEW appraisal_veto_{k} AS\nSELECT unit_id FROM indicators\n\
                     WHERE period IN ({}) AND indicator = 'weak_candidate' AND value = 1\n\
                     GROUP BY unit_id HAVING count(DISTINCT period) >= {at_least};",
                    quarters.join(", ")
                )?;
                continue;
            }
        };
        // The rows count against their unit, or against it and every unit above it, in the
        // tree of the year's last day (rows of a unit not in it count for nobody).
        let against = match scope {
            Scope::Own => "h.unit_id".to_string(),
            Scope::Below => "explode(split(t.path, '/'))".to_string(),
        };
        writeln!(
            s,
            "CREATE OR REPLACE TEMPORARY VIEW appraisal_veto_{k} AS\nSELECT unit_id FROM (\n  \
             SELECT {against} AS unit_id FROM ({holders}) h JOIN appraisal_tree t ON h.unit_id = t.unit_id\n) \
             GROUP BY unit_id HAVING count(*) >= {at_least};"
        )?;
    }
    // Caps and eligibility.
    let mut joins = String::new();
    let mut caps = vec!["5".to_string()];
    let mut barred = vec!["score IS NULL".to_string()];
    for (k, veto) in rules.vetoes.iter().enumerate() {
        let (ineligible, max_stars) = veto.costs();
        write!(joins, "\nLEFT JOIN appraisal_veto_{k} v{k} ON v{k}.unit_id = s.unit_id")?;
        if let Some(m) = max_stars {
            caps.push(format!("CASE WHEN v{k}.unit_id IS NOT NULL THEN {m} ELSE 5 END"));
        }
        if ineligible {
            barred.push(format!("v{k}.unit_id IS NOT NULL"));
        }
    }
    let [b5, b4, b3, b2] = rules.bands;
    writeln!(
        s,
        "CREATE OR REPLACE TEMPORARY VIEW appraisal_banded AS\nSELECT s.unit_id, s.level, s.category, s.score, round(s.score * 100, 0) / 100 AS s2,\n  \
         CASE WHEN s.score IS NULL THEN NULL ELSE least({}, CASE WHEN round(s.score * 100, 0) / 100 >= {} THEN 5 WHEN round(s.score * 100, 0) / 100 >= {} THEN 4 \
         WHEN round(s.score * 100, 0) / 100 >= {} THEN 3 WHEN round(s.score * 100, 0) / 100 >= {} THEN 2 ELSE 1 END) END AS capped,\n  \
         NOT ({}) AS eligible\nFROM appraisal_scored s{joins};",
        caps.join(", "),
        num(b5),
        num(b4),
        num(b3),
        num(b2),
        barred.join(" OR ")
    )?;
    // The five-star band in order: score at two decimals, the tie-breaks (better first, a
    // missing value last), the unit id; the quota's boundary is the first unit past it.
    let mut order = vec!["b.s2 DESC".to_string()];
    let mut keys = vec!["s2".to_string()];
    let mut tie_joins = String::new();
    for (k, t) in rules.tie_break.iter().enumerate() {
        let lower = catalogue.get(t).is_some_and(|i| i.direction == Direction::Lower);
        order.push(format!("tb{k} {} NULLS LAST", if lower { "ASC" } else { "DESC" }));
        keys.push(format!("tb{k}"));
        write!(
            tie_joins,
            "\n  LEFT JOIN (SELECT unit_id, value AS tb{k} FROM indicators WHERE period = '{year}' AND indicator = {}) t{k} ON t{k}.unit_id = b.unit_id",
            quote(t)
        )?;
    }
    writeln!(
        s,
        "CREATE OR REPLACE TEMPORARY VIEW appraisal_band5 AS\nSELECT *, row_number() OVER (PARTITION BY level ORDER BY {}, unit_id) AS pos FROM (\n  \
         SELECT b.*, {}\n  FROM appraisal_banded b{tie_joins}\n  WHERE b.capped = 5) x;",
        order.iter().map(|o| o.trim_start_matches("b.").to_string()).collect::<Vec<_>>().join(", "),
        if keys.len() > 1 { keys[1..].join(", ") } else { "NULL AS no_tie_break".to_string() }
    )?;
    writeln!(
        s,
        "CREATE OR REPLACE TEMPORARY VIEW appraisal_quota AS\nSELECT level, CAST(floor({} * count(*) + 1e-9) AS INT) AS quota\n\
         FROM appraisal_banded WHERE score IS NOT NULL GROUP BY level;",
        num(rules.five_star_quota)
    )?;
    let same: Vec<String> = keys.iter().map(|k| format!("f.{k} <=> bd.{k}")).collect();
    writeln!(
        s,
        "CREATE OR REPLACE TEMPORARY VIEW appraisal_kept AS\nSELECT f.unit_id FROM appraisal_band5 f JOIN appraisal_quota q ON f.level = q.level\n\
         LEFT JOIN appraisal_band5 bd ON bd.level = f.level AND bd.pos = q.quota + 1\n\
         WHERE f.pos <= q.quota AND NOT coalesce({}, false);",
        same.join(" AND ")
    )?;
    writeln!(
        s,
        "SELECT b.unit_id, b.level, b.category, b.score,\n  \
         CASE WHEN b.score IS NULL THEN NULL ELSE rank() OVER (PARTITION BY b.level, b.category, b.score IS NULL ORDER BY b.s2 DESC) END AS rank,\n  \
         CASE WHEN b.capped = 5 AND k.unit_id IS NULL THEN 4 ELSE b.capped END AS grade, b.eligible\n\
         FROM appraisal_banded b LEFT JOIN appraisal_kept k ON k.unit_id = b.unit_id\nORDER BY b.unit_id;"
    )?;
    Ok(s)
}
