//! The annual appraisal in the report: the grades of each level against its quota, the
//! 评优评先 list and the list of units that may not be honoured (with the reasons), each
//! township's units, the year's findings by source and severity; the grade charts; and the
//! workbook's sheets for the appraisal office, one per level.

use rust_xlsxwriter::{Format, Workbook};
use serde_json::{Value, json};

use super::charts::{category_zh, level_zh};
use crate::charts::{Chart, GradeBar};
use crate::model::kinds::{FINDING_SOURCES, SEVERITIES, label_of};
use crate::output::neutralise;
use crate::review::Pack;
use crate::review::appraisal::{Appraisal, Appraised, stars_zh};

/// The report's 评优评先 list holds eligible units of at least this many stars; every eligible
/// unit is in the workbook.
const HONOUR_MIN_STARS: u32 = 4;

fn score_text(s: Option<f64>) -> String {
    s.map_or("—".into(), |s| format!("{s:.2}"))
}

fn grade_text(g: Option<u32>) -> String {
    g.map_or("不评定".into(), |g| "★".repeat(g as usize))
}

fn unit_row(a: &Appraised) -> Value {
    json!({
        "name": a.unit_name,
        "level": level_zh(a.level.code()),
        "category": category_zh(a.category.as_deref()),
        "township": a.township.clone().unwrap_or_default(),
        "score": score_text(a.score),
        "rank": a.rank.map_or("—".into(), |r| r.to_string()),
        "grade": grade_text(a.grade),
        "eligible": if a.eligible { "是" } else { "否" },
        "reasons": a.reasons.join("；"),
    })
}

/// Units best first: by level, then grade, then score.
fn best_first<'a>(units: impl Iterator<Item = &'a Appraised>) -> Vec<&'a Appraised> {
    let mut v: Vec<&Appraised> = units.collect();
    v.sort_by(|a, b| {
        a.level
            .cmp(&b.level)
            .then(b.grade.cmp(&a.grade))
            .then(b.score.unwrap_or(f64::MIN).total_cmp(&a.score.unwrap_or(f64::MIN)))
            .then(a.unit_id.cmp(&b.unit_id))
    });
    v
}

pub fn context(pack: &Pack, a: &Appraisal) -> Value {
    let name = |id: &str| pack.catalogue.get(id).map_or(id.to_string(), |i| i.name_zh.clone());
    let components: Vec<String> =
        a.components.iter().map(|c| format!("{} {:.0}%", name(&c.indicator), c.weight * 100.0)).collect();
    let levels: Vec<Value> = a
        .levels
        .iter()
        .map(|l| {
            json!({
                "level": level_zh(l.level.code()), "graded": l.graded, "stars": l.stars, "in_band": l.in_band,
                "quota": l.quota, "within": l.stars[0] <= l.quota, "tied": l.tied.join("、"),
            })
        })
        .collect();
    let honours = best_first(a.units.iter().filter(|u| u.eligible && u.grade >= Some(HONOUR_MIN_STARS)));
    let honours_total = honours.len();
    let honours: Vec<Value> = honours.into_iter().take(super::LISTED).map(unit_row).collect();
    let eligible = a.units.iter().filter(|u| u.eligible).count();
    let barred = best_first(a.units.iter().filter(|u| !u.eligible));
    let barred_total = barred.len();
    let barred: Vec<Value> = barred.into_iter().take(super::LISTED).map(unit_row).collect();
    // Each township's units; past DETAIL_OVER units (a province) its stars counted instead.
    let by_unit = best_first(a.units.iter()).into_iter().map(|u| (u.unit_id.clone(), u));
    let mut townships = super::groups::gather(pack, by_unit);
    townships.sort_by(|a, b| a.0.cmp(&b.0));
    let detail = a.units.len() <= super::groups::DETAIL_OVER;
    let townships: Vec<Value> = townships
        .into_iter()
        .map(|(t, units)| {
            let stars: Vec<usize> =
                (1..=5).rev().map(|g| units.iter().filter(|u| u.grade == Some(g)).count()).collect();
            let barred = units.iter().filter(|u| !u.eligible).count();
            let rows: Vec<Value> = if detail { units.iter().map(|u| unit_row(u)).collect() } else { Vec::new() };
            json!({"name": t, "units": units.len(), "stars": stars, "barred": barred, "rows": rows})
        })
        .collect();
    json!({
        "year": a.year,
        "components": components.join("、"),
        "levels": levels,
        "honours": honours,
        "honour_min": stars_zh(HONOUR_MIN_STARS),
        "eligible": eligible,
        "honours_total": honours_total,
        "barred": barred,
        "barred_total": barred_total,
        "townships": townships,
        "township_detail": detail,
        "findings": findings_by_source(pack),
    })
}

/// Findings found in the year, by source (rows) and severity (columns), with a total row.
fn findings_by_source(pack: &Pack) -> Value {
    let year = pack.period.year();
    let found: Vec<_> = pack.findings.iter().filter(|f| chrono::Datelike::year(&f.found) == year).collect();
    let count = |source: Option<&str>, severity: &str| {
        found.iter().filter(|f| source.is_none_or(|s| f.source == s) && f.severity == severity).count()
    };
    let mut rows: Vec<Value> = FINDING_SOURCES
        .iter()
        .filter(|s| found.iter().any(|f| f.source == s.code))
        .map(|s| {
            let by: Vec<usize> = SEVERITIES.iter().map(|v| count(Some(s.code), v.code)).collect();
            json!({"source": label_of(FINDING_SOURCES, s.code), "by": by, "total": by.iter().sum::<usize>()})
        })
        .collect();
    if !rows.is_empty() {
        let by: Vec<usize> = SEVERITIES.iter().map(|v| count(None, v.code)).collect();
        rows.push(json!({"source": "合计", "by": by, "total": found.len()}));
    }
    json!({
        "severities": SEVERITIES.iter().map(|v| label_of(SEVERITIES, v.code)).collect::<Vec<_>>(),
        "rows": rows,
    })
}

/// A grade chart per level, with its quota.
pub fn charts(a: &Appraisal) -> Vec<Chart> {
    a.levels
        .iter()
        .map(|l| Chart::Grades {
            id: format!("grades-{}", l.level.code()),
            title: format!(
                "{} 年度星级分布 · {}（{} 个参评，五星限额 {} 个）",
                a.year,
                level_zh(l.level.code()),
                l.graded,
                l.quota
            ),
            bars: (0..5).map(|k| GradeBar { label: "★".repeat(5 - k), count: l.stars[k] }).collect(),
            quota: Some(l.quota),
        })
        .collect()
}

enum Cell {
    Text(String),
    /// Empty when missing, never 0.
    Number(Option<f64>),
}

/// One sheet per level, laid out for the appraisal office's form: every component, the score,
/// the rank, the grade, the eligibility and the reasons.
pub fn sheets(wb: &mut Workbook, pack: &Pack, a: &Appraisal, head: &Format) -> anyhow::Result<()> {
    let name = |id: &str| pack.catalogue.get(id).map_or(id.to_string(), |i| i.name_zh.clone());
    for l in &a.levels {
        let ws = wb.add_worksheet();
        ws.set_name(format!("考核-{}", level_zh(l.level.code()).replace('/', "")))?;
        let mut header: Vec<String> =
            ["组织编码", "组织名称", "所属街道（镇）", "类别"].iter().map(|s| s.to_string()).collect();
        header.extend(a.components.iter().map(|c| format!("{}（权重{:.0}%）", name(&c.indicator), c.weight * 100.0)));
        header.extend(["综合得分", "同级同类排名", "星级", "评优评先资格", "说明"].iter().map(|s| s.to_string()));
        for (c, h) in header.iter().enumerate() {
            ws.write_string_with_format(0, c as u16, h, head)?;
        }
        let rows = best_first(a.units.iter().filter(|u| u.level == l.level));
        for (r, u) in rows.iter().enumerate() {
            let two = |v: f64| (v * 100.0).round() / 100.0;
            let mut cells: Vec<Cell> = vec![
                Cell::Text(u.unit_id.clone()),
                Cell::Text(u.unit_name.clone()),
                Cell::Text(u.township.clone().unwrap_or_default()),
                Cell::Text(category_zh(u.category.as_deref()).to_string()),
            ];
            cells.extend(u.parts.iter().map(|p| Cell::Number(p.map(two))));
            cells.extend([
                Cell::Number(u.score.map(two)),
                Cell::Number(u.rank.map(f64::from)),
                Cell::Number(u.grade.map(f64::from)),
                Cell::Text(if u.eligible { "是" } else { "否" }.into()),
                Cell::Text(u.reasons.join("；")),
            ]);
            for (c, cell) in cells.into_iter().enumerate() {
                let (row, col) = (r as u32 + 1, c as u16);
                match cell {
                    Cell::Text(t) => {
                        ws.write_string(row, col, neutralise(&t).into_owned())?;
                    }
                    Cell::Number(Some(n)) => {
                        ws.write_number(row, col, n)?;
                    }
                    Cell::Number(None) => {}
                }
            }
        }
        ws.set_freeze_panes(1, 2)?;
    }
    Ok(())
}
