//! The review pack's report: one self-contained HTML file (inline CSS and SVG charts, no
//! request leaves it, prints on A4 landscape) in Chinese, and an XLSX workbook beside it with
//! the indicator table, the problem list, the draw and, for a year, the appraisal.
//!
//! A month gives the shorter bulletin (党建月报); a quarter the think-tank pack; a year adds
//! the annual appraisal (年度目标绩效考核). All text from the data is escaped by the template engine
//! (minijinja, auto-escaping for `.html`). Never prints.

mod appraisal;
pub mod charts;
mod groups;
mod review_loop;
mod slides;
mod xlsx;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::charts::Chart;
use crate::indicators::compute::UnitInfo;
use crate::indicators::compute::WEAK;
use crate::model::period::PeriodKind;
use crate::model::{Category, Level, Status};
use crate::output::write_atomically;
use crate::review::appraisal::{Appraisal, AppraisalRules};
use crate::review::life::State;
use crate::review::problems::{Problem, ProblemRules, median};
use crate::review::{DrawRecord, Pack};
use charts::{category_zh, level_zh};

const TEMPLATE: &str = include_str!("report.html");
/// The chart appendix (rankings, trends, funnels, heatmap, diagnosis cards): a second file, so
/// the report itself prints in a few pages.
const CHARTS_TEMPLATE: &str = include_str!("charts.html");
/// The style sheet both pages share.
const CSS: &str = include_str!("report.css");

/// What a report run wrote.
#[derive(Debug, Clone)]
pub struct ReportFiles {
    pub html: PathBuf,
    pub charts_html: PathBuf,
    /// The meeting slides (`slides/` beside it).
    pub slides_html: PathBuf,
    pub xlsx: PathBuf,
    pub charts: usize,
}

#[cfg(test)]
mod tests {
    #[test]
    fn weak_notes_read_in_chinese() {
        assert_eq!(
            super::weak_note_zh(
                "composite_score 36.0 < 60; last of 2 branch units by composite_score; meeting_completion 0.00 < 0.5"
            ),
            "综合得分 36.0 低于 60；综合得分在同级同类 2 个支部中排名末位；三会一课完成率 0.00 低于 0.5"
        );
    }
}

#[derive(Serialize)]
struct ChartCtx {
    svg: String,
}

#[derive(Serialize)]
struct Cell {
    value: String,
    status: String,
    /// A rate's denominator (attendance rows, meetings required, ...): how much it rests on.
    n: Option<String>,
}

#[derive(Serialize)]
struct UnitRowCtx {
    name: String,
    level: &'static str,
    cells: Vec<Cell>,
    weak: String,
}

#[derive(Serialize)]
struct Project {
    title: String,
    rows: Vec<UnitRowCtx>,
    /// The rows by township, when there are too many to print one a line (`rows` is then
    /// empty).
    groups: Option<Vec<groups::Group<UnitRowCtx>>>,
}

fn fmt_opt(v: Option<f64>, unit: &str) -> String {
    v.map_or("—".to_string(), |v| crate::output::format_value(v, unit))
}

/// The project names of the four categories (the district's "136" plan).
pub fn project_title(category: Category) -> &'static str {
    match category {
        Category::Community => "社区“融合”工程 · 街道社区",
        Category::Rural => "农村“磁铁”工程 · 乡镇农村",
        Category::Organ => "机关“先锋”工程 · 区直机关",
        Category::Nonpublic => "非公“红领”工程 · 非公企业和社会组织",
    }
}

fn kind_zh(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "weak" => ("软弱涣散候选", "red"),
        "red" => ("指标不达标", "red"),
        "drop" => ("较上期明显下滑", "amber"),
        "overdue" => ("逾期未整改", "red"),
        _ => ("同类异常值", "amber"),
    }
}

/// A weak-unit note (stored in English, as the rules are named) in Chinese for the report.
pub fn weak_note_zh(note: &str) -> String {
    note.split("; ")
        .map(|part| {
            let words: Vec<&str> = part.split_whitespace().collect();
            match words.as_slice() {
                ["composite_score", v, "<", l] => format!("综合得分 {v} 低于 {l}"),
                ["meeting_completion", v, "<", l] => format!("三会一课完成率 {v} 低于 {l}"),
                ["last", "of", n, level, "units", "by", "composite_score"] => {
                    format!("综合得分在同级同类 {n} 个{}中排名末位", level_zh(level))
                }
                _ => part.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("；")
}

/// Render the report into `out` (report.html, report.xlsx).
pub fn write_report(
    pack: &Pack,
    problems: &[Problem],
    draw: Option<&DrawRecord>,
    appraisal: Option<&Appraisal>,
    problem_rules: &ProblemRules,
    out: &Path,
) -> Result<ReportFiles> {
    let agenda_size = problem_rules.agenda;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let inputs = charts::ChartInputs { appraisal, rules: problem_rules, problems: Some(problems), max_cards: 30 };
    let mut charts = charts::pack_charts(pack, &inputs);
    if pack.period.kind() != PeriodKind::Month {
        charts.push(review_loop::flow_chart(pack, problems));
    }
    let sections = ChartSections::of(pack, &charts)?;
    let is_month = pack.period.kind() == PeriodKind::Month;
    let root = pack.units.iter().find(|u| u.path.len() == 1);
    let key_ids: Vec<&str> = ["composite_score", "attendance_rate", "meeting_completion", "assessment_score"]
        .into_iter()
        .filter(|id| pack.catalogue.get(id).is_some() && pack.rows.iter().any(|r| r.indicator == *id))
        .collect();
    let (gu_ben, xing_huo) = foundations_and_brands(pack);
    let weak = weak_rows(pack);
    let weak_count = weak.len();
    let (weak, weak_groups) = groups::by_township(pack, weak, weak_summary, <[_]>::len);
    let overdue = review_loop::overdue(pack).into_iter().map(|o| (o.unit_id.clone(), o)).collect();
    let (overdue, overdue_groups) = groups::by_township(pack, overdue, overdue_summary, |rows| {
        rows.iter().map(|r| r.findings.len() + r.tasks.len() + usize::from(r.serious)).sum()
    });
    // The open problems by priority, once: counted, listed and counted per township.
    let open = open_by_priority(problems);
    let mut movement = review_loop::movement(pack, problems);
    movement.rows.truncate(LISTED);
    let mut ctx = serde_json::json!({
        "title": title(pack, root),
        "period": pack.period.to_string(),
        "period_kind": match pack.period.kind() { PeriodKind::Month => "月", PeriodKind::Quarter => "季度", PeriodKind::Year => "年度" },
        "is_month": is_month,
        "generated_at": chrono::Local::now().format("%Y-%m-%d %H:%M").to_string(),
        "version": env!("CARGO_PKG_VERSION"),
        "snapshot": pack.snapshot,
        "headline": headline(pack, root),
        "units_total": pack.units.len(),
        "reds": pack.rows.iter().filter(|r| r.indicator != WEAK && r.status == Some(Status::Red)).count(),
        "weak_count": weak_count,
        "problem_count": open.len(),
        "movement": movement,
        "due_findings": review_loop::due_findings(pack),
        "overdue": overdue,
        "project_tasks": review_loop::projects(pack),
        "projects": projects(pack, &key_ids),
        "key_columns": key_ids.iter().map(|id| pack.catalogue.get(id).map(|i| i.name_zh.clone()).unwrap_or_default()).collect::<Vec<_>>(),
        "gu_ben": gu_ben,
        "xing_huo": xing_huo,
        "charts_rank": sections.rank,
        "charts_trend": sections.trend,
        "charts_other": sections.other,
        "charts_cards": sections.cards,
        "charts_flow": sections.flow,
        "problems": problem_rows(pack, &open),
        "weak": weak,
        "draw": draw.map(|d| draw_context(pack, d)),
        "appraisal": appraisal.map(|a| appraisal::context(pack, a)),
        "quarantine": pack.quarantine.iter().map(|(k, f, r, n)| serde_json::json!({"kind": k, "file": f, "rule": r, "rows": n})).collect::<Vec<_>>(),
        "catalogue_hash": pack.catalogue.hash(),
        "reporting": reporting_context(pack),
        "tree_changes": tree_changes_context(pack),
        "inputs": pack.inputs.iter().map(|(f, h, at, r, l, q)| serde_json::json!({"file": f, "hash": h, "at": at, "read": r, "loaded": l, "quarantined": q})).collect::<Vec<_>>(),
    });
    // (Beside the literal above, which is at serde_json's macro recursion limit.)
    ctx["agenda"] = serde_json::Value::Array(agenda(pack, problems, agenda_size));
    ctx["agenda_size"] = agenda_size.into();
    ctx["overdue_groups"] = serde_json::to_value(overdue_groups)?;
    ctx["weak_groups"] = serde_json::to_value(weak_groups)?;
    ctx["problem_townships"] = serde_json::to_value(problem_townships(pack, &open))?;
    ctx["printed_groups"] = groups::PRINTED.into();
    ctx["css"] = CSS.into();
    let mut env = minijinja::Environment::new();
    env.add_template("report.html", TEMPLATE).context("loading the report template")?;
    env.add_template("charts.html", CHARTS_TEMPLATE).context("loading the chart appendix template")?;
    let html_path = out.join("report.html");
    let charts_path = out.join("charts.html");
    for (name, path) in [("report.html", &html_path), ("charts.html", &charts_path)] {
        let html = env.get_template(name)?.render(&ctx).with_context(|| format!("rendering {name}"))?;
        write_atomically(path, with_font(&html)?.as_bytes())?;
    }
    let xlsx_path = out.join("report.xlsx");
    let bytes = xlsx::workbook(pack, problems, draw, appraisal)?;
    write_atomically(&xlsx_path, &bytes)?;
    let heading = title(pack, root);
    let agenda_slide = slides::agenda_chart(&heading, problems, agenda_size);
    let slides_html = slides::write(&agenda_slide, &charts, &heading, out)?;
    Ok(ReportFiles { html: html_path, charts_html: charts_path, slides_html, xlsx: xlsx_path, charts: charts.len() })
}

/// The page with the embedded font's face for its own characters in its style sheet (the
/// template holds the place), so it reads on a machine with no Chinese font.
fn with_font(html: &str) -> Result<String> {
    const PLACE: &str = "/*@font-face*/";
    let face = crate::charts::webfont::font_face(html)?;
    Ok(html.replacen(PLACE, &face, 1))
}

/// The report's inline SVG charts by section.
struct ChartSections {
    rank: Vec<ChartCtx>,
    trend: Vec<ChartCtx>,
    other: Vec<ChartCtx>,
    cards: Vec<ChartCtx>,
    flow: Vec<ChartCtx>,
}

impl ChartSections {
    fn of(pack: &Pack, charts: &[Chart]) -> Result<ChartSections> {
        let svgs: Vec<(String, String)> =
            charts.iter().map(|c| Ok((c.id().to_string(), crate::charts::to_svg(c)?))).collect::<Result<_>>()?;
        let pick = |keep: &dyn Fn(&str) -> bool| -> Vec<ChartCtx> {
            svgs.iter().filter(|(id, _)| keep(id)).map(|(_, s)| ChartCtx { svg: s.clone() }).collect()
        };
        let is_month = pack.period.kind() == PeriodKind::Month;
        let mut other = Vec::new();
        if !is_month {
            for prefix in ["funnel", "heatmap", "points-by-category", "grades"] {
                other.extend(pick(&|id| id.starts_with(prefix)));
            }
        }
        Ok(ChartSections {
            // Rankings: in a bulletin only the composite.
            rank: pick(&|id| id.starts_with("rank-") && (!is_month || id.starts_with("rank-composite"))),
            trend: pick(&|id| id.starts_with("trend-")),
            other,
            cards: if is_month { Vec::new() } else { pick(&|id| id.starts_with("card-")) },
            flow: pick(&|id| id == "problem-flow"),
        })
    }
}

fn title(pack: &Pack, root: Option<&UnitInfo>) -> String {
    let district = root.map_or("本区".to_string(), |u| u.name.clone());
    let kind_name = match pack.period.kind() {
        PeriodKind::Month => "党建月报",
        PeriodKind::Quarter => "基层党建季度会诊报告",
        PeriodKind::Year => "基层党建年度评定报告",
    };
    format!("{district}{kind_name}（{}）", pack.period)
}

/// The district's headline figures, each with its change against the period before.
fn headline(pack: &Pack, root: Option<&UnitInfo>) -> Vec<serde_json::Value> {
    let ids = [
        "composite_score",
        "attendance_rate",
        "meeting_completion",
        "activity_day_coverage",
        "assessment_score",
        "points_per_member",
    ];
    ids.iter()
        .filter_map(|id| {
            let ind = pack.catalogue.get(id)?;
            let r = pack.row(&root?.id, id)?;
            let change = match (r.change, r.previous) {
                (Some(c), Some(_)) if c > 0.0 => format!("较上期 ▲ {}", crate::output::format_value(c, &ind.unit)),
                (Some(c), Some(_)) if c < 0.0 => format!("较上期 ▼ {}", crate::output::format_value(-c, &ind.unit)),
                (Some(_), Some(_)) => "与上期持平".to_string(),
                _ => "上期无数据".to_string(),
            };
            Some(serde_json::json!({"name": ind.name_zh, "value": cell_value(r.value, r.status, &ind.unit), "status": r.status.map_or("", |s| s.code()), "change": change}))
        })
        .collect()
}

/// 报送情况: the reporting rate, the branches that sent nothing, by month, and the late ones.
fn reporting_context(pack: &Pack) -> serde_json::Value {
    let r = &pack.reporting;
    let name_with_parent = |id: &str, parent: Option<&str>| {
        let name = pack.unit(id).map_or(id.to_string(), |u| u.name.clone());
        match parent.and_then(|p| pack.unit(p)) {
            Some(p) => format!("{name}（{}）", p.name),
            None => name,
        }
    };
    let missing: Vec<_> = r
        .missing_by_month()
        .iter()
        .map(|(month, list)| {
            let names: Vec<String> =
                list.iter().map(|s| name_with_parent(&s.unit_id, s.parent_id.as_deref())).collect();
            serde_json::json!({"month": month.to_string(), "count": list.len(), "units": names})
        })
        .collect();
    let day = |us: Option<i64>| {
        us.and_then(chrono::DateTime::from_timestamp_micros).map_or(String::new(), |t| t.format("%Y-%m-%d").to_string())
    };
    let late: Vec<_> = r
        .late()
        .iter()
        .map(|s| {
            serde_json::json!({
                "unit": name_with_parent(&s.unit_id, s.parent_id.as_deref()), "month": s.month.to_string(),
                "received": day(s.first_received),
            })
        })
        .collect();
    serde_json::json!({
        "rate": r.rate().map_or("—".to_string(), |x| format!("{:.1}%", x * 100.0)),
        "reported": r.reported(),
        "expected": r.expected(),
        "complete": r.rate().is_none_or(|x| x >= 1.0),
        "deadline_days": pack.catalogue.reporting.deadline_days,
        "missing": missing,
        "late": late,
    })
}

/// 组织架构变化: what changed in the tree since the period before, so that figures that moved
/// with a restructure are read as such. (change, unit name, unit id, detail) per row.
fn tree_change_rows(pack: &Pack) -> Vec<[String; 4]> {
    let c = &pack.tree_changes;
    let name_in = |tree: &[UnitInfo], id: Option<&str>| {
        id.map_or(String::new(), |id| tree.iter().find(|u| u.id == id).map_or(id.to_string(), |u| u.name.clone()))
    };
    let label = |u: &UnitInfo| format!("{}·{}", level_zh(&u.level), category_zh(u.category.as_deref()));
    let row = |change: &str, u: &UnitInfo, detail: String| [change.to_string(), u.name.clone(), u.id.clone(), detail];
    let mut rows = Vec::new();
    for u in &c.added {
        rows.push(row("新设", u, format!("隶属{}（{}）", name_in(&pack.units, u.parent()), label(u))));
    }
    for (u, before) in &c.moved {
        let (from, to) = (name_in(&pack.tree_before, before.parent()), name_in(&pack.units, u.parent()));
        rows.push(row("调整隶属", u, format!("由{from}调整至{to}")));
    }
    for (u, before) in &c.regraded {
        rows.push(row("层级/类别变更", u, format!("由{}改为{}；排名在本期类别内比较", label(before), label(u))));
    }
    for u in &c.dissolved {
        let parent = name_in(&pack.tree_before, u.parent());
        rows.push(row("撤销", u, format!("原隶属{parent}；本期起不再统计，其本期记录不计入任何组织")));
    }
    rows
}

fn tree_changes_context(pack: &Pack) -> serde_json::Value {
    let rows = tree_change_rows(pack);
    if rows.is_empty() {
        return serde_json::Value::Null;
    }
    let rows: Vec<_> = rows
        .iter()
        .map(|[change, unit, id, detail]| serde_json::json!({"change": change, "unit": unit, "id": id, "detail": detail}))
        .collect();
    serde_json::json!({"previous": pack.period.previous().to_string(), "rows": rows})
}

/// A value for a table cell: "未报送" where the unit's branches sent nothing.
fn cell_value(value: Option<f64>, status: Option<Status>, unit: &str) -> String {
    if status == Some(Status::NoData) { NOT_REPORTED.to_string() } else { fmt_opt(value, unit) }
}

const NOT_REPORTED: &str = "未报送";

fn weak_note_of(pack: &Pack, unit_id: &str) -> Option<String> {
    pack.row(unit_id, WEAK)
        .filter(|r| r.value == Some(1.0))
        .map(|r| weak_note_zh(r.note.as_deref().unwrap_or_default()))
}

/// One table per unit project: its townships and communities with the key indicators.
fn projects(pack: &Pack, key_ids: &[&str]) -> Vec<Project> {
    let upper = [Level::Township.code(), Level::Community.code()];
    let row = |u: &UnitInfo| UnitRowCtx {
        name: u.name.clone(),
        level: level_zh(&u.level),
        cells: key_ids
            .iter()
            .map(|id| {
                let unit = pack.catalogue.get(id).map(|i| i.unit.clone()).unwrap_or_default();
                let r = pack.row(&u.id, id);
                let rate = matches!(unit.as_str(), "percent" | "per100");
                Cell {
                    value: cell_value(r.and_then(|r| r.value), r.and_then(|r| r.status), &unit),
                    status: r.and_then(|r| r.status).map_or("none", |s| s.code()).to_string(),
                    n: r.filter(|r| rate && r.value.is_some())
                        .and_then(|r| r.denominator)
                        .map(|d| if d.fract() == 0.0 { format!("{d:.0}") } else { format!("{d:.1}") }),
                }
            })
            .collect(),
        weak: if weak_note_of(pack, &u.id).is_some() { "是".into() } else { String::new() },
    };
    // A township's line: its units, red and amber on each key indicator, weak candidates.
    let summary = |rows: &[UnitRowCtx]| {
        let mut cells = vec![rows.len().to_string()];
        cells
            .extend((0..key_ids.len()).map(|k| groups::status_counts(rows.iter().map(|r| r.cells[k].status.as_str()))));
        cells.push(rows.iter().filter(|r| !r.weak.is_empty()).count().to_string());
        cells
    };
    Category::ALL
        .into_iter()
        .map(|cat| {
            let rows: Vec<(String, UnitRowCtx)> = pack
                .units
                .iter()
                .filter(|u| u.category.as_deref() == Some(cat.code()) && upper.contains(&u.level.as_str()))
                .map(|u| (u.id.clone(), row(u)))
                .collect();
            let title = project_title(cat).to_string();
            let weight = |rows: &[UnitRowCtx]| {
                rows.iter()
                    .map(|r| {
                        let reds = r.cells.iter().filter(|c| c.status == Status::Red.code()).count();
                        reds + usize::from(!r.weak.is_empty())
                    })
                    .sum()
            };
            let (rows, groups) = groups::by_township(pack, rows, summary, weight);
            Project { title, rows, groups }
        })
        .collect()
}

/// 固本: branch medians per category; 星火: the top five branches by composite.
fn foundations_and_brands(pack: &Pack) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let mut gu_ben = Vec::new();
    let mut xing_huo = Vec::new();
    for cat in Category::ALL.map(Category::code) {
        let branches: Vec<_> = pack
            .units
            .iter()
            .filter(|u| u.level == Level::Branch.code() && u.category.as_deref() == Some(cat))
            .collect();
        let vals =
            |id: &str| branches.iter().filter_map(|u| pack.row(&u.id, id).and_then(|r| r.value)).collect::<Vec<f64>>();
        let meetings = vals("meeting_completion");
        gu_ben.push(serde_json::json!({
            "category": category_zh(Some(cat)),
            "branches": branches.len(),
            "meetings": fmt_opt(median(meetings.clone()), "percent"),
            "coverage": fmt_opt(median(vals("activity_day_coverage")), "percent"),
            "below_half": meetings.iter().filter(|v| **v < 0.5).count(),
        }));
        let mut top: Vec<(&str, f64)> = branches
            .iter()
            .filter_map(|u| pack.row(&u.id, "composite_score").and_then(|r| r.value).map(|v| (u.name.as_str(), v)))
            .collect();
        top.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        for (name, v) in top.into_iter().take(5) {
            xing_huo.push(
                serde_json::json!({"category": category_zh(Some(cat)), "name": name, "value": format!("{v:.1}")}),
            );
        }
    }
    (gu_ben, xing_huo)
}

/// The most rows a long list prints on the page (problems by priority, the annual appraisal's
/// honours and barred units). A province has tens of thousands (the page was 35 MB at 30,000
/// units); past this the page lists these and counts the rest per township, and the workbook
/// holds every one.
pub const LISTED: usize = 300;

/// The open problems, by priority.
fn open_by_priority(problems: &[Problem]) -> Vec<&Problem> {
    let mut open: Vec<&Problem> = problems.iter().filter(|p| p.life.state != State::Resolved).collect();
    open.sort_by_key(|p| p.priority.unwrap_or(u32::MAX));
    open
}

/// The first [`LISTED`] open problems as the page lists them.
fn problem_rows(pack: &Pack, open: &[&Problem]) -> Vec<serde_json::Value> {
    let diagnoses = review_loop::diagnoses(pack);
    open.iter()
        .take(LISTED)
        .map(|p| {
            let (kind, css) = kind_zh(p.kind);
            let state = match p.life.state {
                State::New => p.life.state.zh().to_string(),
                _ => format!("{}（{} 起，第 {} 期）", p.life.state.zh(), p.life.first_period, p.life.periods_flagged),
            };
            serde_json::json!({
                "unit_name": p.unit_name, "level": level_zh(&p.level), "category": category_zh(p.category.as_deref()),
                "kind": kind, "css": css, "state": state,
                "severity": severity_zh(p.severity), "priority": p.priority,
                "indicator": review_loop::indicator_zh(pack, &p.indicator),
                "evidence": if p.kind == "weak" { weak_note_zh(&p.evidence) } else { p.evidence.clone() },
                "diagnosis": diagnoses.get(p.problem_id.as_str()).cloned().unwrap_or_default(),
            })
        })
        .collect()
}

/// When the page lists only the first problems: every open one counted per township, the
/// townships with most first (problems, severe ones, units).
fn problem_townships(pack: &Pack, open: &[&Problem]) -> Option<Vec<groups::Group<()>>> {
    if open.len() <= LISTED {
        return None;
    }
    let rows = open.iter().map(|p| (p.unit_id.clone(), *p)).collect();
    let summary = |rows: &[&Problem]| {
        let units: std::collections::HashSet<&str> = rows.iter().map(|p| p.unit_id.as_str()).collect();
        let severe = rows.iter().filter(|p| p.severity >= 3).count();
        vec![rows.len().to_string(), severe.to_string(), units.len().to_string()]
    };
    let (_, grouped) = groups::by_township(pack, rows, summary, <[_]>::len);
    let counted = grouped?.into_iter().map(|g| groups::Group {
        name: g.name,
        summary: g.summary,
        counts: g.counts,
        rows: Vec::new(),
        units: g.units,
    });
    Some(counted.collect())
}

/// The agenda's problems: the first `size` open ones by priority, grouped by unit (units in
/// the order of their first problem). The report and the agenda slide both show these.
fn agenda_groups(problems: &[Problem], size: usize) -> Vec<Vec<&Problem>> {
    let mut top: Vec<&Problem> = problems.iter().filter(|p| p.priority.is_some_and(|r| r as usize <= size)).collect();
    top.sort_by_key(|p| p.priority);
    let mut units: Vec<(&str, Vec<&Problem>)> = Vec::new();
    for p in top {
        match units.iter_mut().find(|(u, _)| *u == p.unit_id) {
            Some((_, list)) => list.push(p),
            None => units.push((&p.unit_id, vec![p])),
        }
    }
    units.into_iter().map(|(_, list)| list).collect()
}

/// The agenda the pack opens with, one line a problem.
fn agenda(pack: &Pack, problems: &[Problem], size: usize) -> Vec<serde_json::Value> {
    agenda_groups(problems, size)
        .into_iter()
        .map(|list| {
            let first = list[0];
            serde_json::json!({
                "unit_name": first.unit_name, "level": level_zh(&first.level), "category": category_zh(first.category.as_deref()),
                "items": list.iter().map(|p| {
                    let (kind, css) = kind_zh(p.kind);
                    let since = if p.life.periods_flagged > 1 { format!("（第 {} 期）", p.life.periods_flagged) } else { String::new() };
                    serde_json::json!({
                        "priority": p.priority, "severity": severity_zh(p.severity), "kind": kind, "css": css,
                        "evidence": if p.kind == "weak" { weak_note_zh(&p.evidence) } else { p.evidence.clone() },
                        // A weak candidate's "indicator" is the kind itself.
                        "indicator": if p.kind == "weak" { String::new() } else { format!(" · {}", review_loop::indicator_zh(pack, &p.indicator)) },
                        "since": since,
                    })
                }).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// A problem's severity in words (the findings ledger's words: 严重, 较重, 一般).
fn severity_zh(severity: u8) -> &'static str {
    match severity {
        3 => "严重",
        2 => "较重",
        _ => "一般",
    }
}

/// A problem's evidence as the report says it (a weak candidate's rules in Chinese).
fn weak_note_or_evidence(p: &Problem) -> String {
    if p.kind == "weak" { weak_note_zh(&p.evidence) } else { p.evidence.clone() }
}

/// The weak candidates, each with its unit's id.
fn weak_rows(pack: &Pack) -> Vec<(String, serde_json::Value)> {
    pack.units
        .iter()
        .filter_map(|u| {
            weak_note_of(pack, &u.id).map(|why| (u.id.clone(), serde_json::json!({"name": u.name, "level": level_zh(&u.level), "category": category_zh(u.category.as_deref()), "why": why})))
        })
        .collect()
}

/// A township's line of the weak candidates: how many, and who.
fn weak_summary(rows: &[serde_json::Value]) -> Vec<String> {
    let names: Vec<&str> = rows.iter().filter_map(|r| r["name"].as_str()).collect();
    vec![rows.len().to_string(), names.join("、")]
}

/// A township's line of the overdue list: units, findings, tasks, units with a serious finding.
fn overdue_summary(rows: &[review_loop::OverdueRow]) -> Vec<String> {
    let findings: usize = rows.iter().map(|r| r.findings.len()).sum();
    let tasks: usize = rows.iter().map(|r| r.tasks.len()).sum();
    let serious = rows.iter().filter(|r| r.serious).count();
    vec![rows.len().to_string(), findings.to_string(), tasks.to_string(), serious.to_string()]
}

fn draw_context(pack: &Pack, d: &DrawRecord) -> serde_json::Value {
    let names: Vec<String> =
        d.chosen.iter().map(|id| pack.unit(id).map_or(id.clone(), |u| format!("{}（{id}）", u.name))).collect();
    serde_json::json!({
        "chosen": names.join("、"), "algorithm": d.algorithm, "seed": d.seed.to_string(), "candidate_count": d.candidates.len(),
        "level": level_zh(&d.level), "drawn_at": d.drawn_at, "forced": d.forced,
        "candidates": d.candidates.iter().map(|(id, w)| if (*w - 1.0).abs() < 1e-12 { id.clone() } else { format!("{id}×{w}") }).collect::<Vec<_>>().join(", "),
    })
}

/// The problem list (and for a year the appraisal) into the warehouse, then the report from
/// the same pack (the `report` verb and the pipeline's report stage). `cached` is a pack loaded earlier, used if the
/// warehouse has not changed since.
pub fn build(
    wh: &crate::warehouse::Warehouse,
    catalogue: &crate::indicators::Catalogue,
    period: crate::model::period::Period,
    problem_rules: &crate::review::problems::ProblemRules,
    appraisal_rules: &AppraisalRules,
    out: &Path,
    cached: Option<crate::review::Pack>,
) -> Result<ReportFiles> {
    let mut pack = crate::review::load_or_reuse(wh, catalogue, period, cached)?;
    settle_previous_problems(wh, catalogue, problem_rules, &mut pack)?;
    crate::review::with_previous_rates(wh, &mut pack)?;
    let list = crate::review::problems::problems(&pack, problem_rules);
    crate::review::write_problems(wh, period, &list)?;
    let draws = crate::review::load_draws(&wh.snapshot()?)?;
    let draw = draws.iter().rev().find(|d| d.period == period.to_string());
    let appraisal = appraisal_of(wh, &pack, appraisal_rules)?;
    if let Some(a) = &appraisal {
        crate::review::write_appraisal(wh, a)?;
    }
    write_report(&pack, &list, draw, appraisal.as_ref(), problem_rules, out)
}

/// The problem list of the period before, when it was computed but never listed (a district's
/// first review, or a quarter whose pack was skipped): without it nothing of this period could
/// be "persisting" or "resolved". It is listed now, from its own indicators, and stored.
fn settle_previous_problems(
    wh: &crate::warehouse::Warehouse,
    catalogue: &crate::indicators::Catalogue,
    rules: &crate::review::problems::ProblemRules,
    pack: &mut Pack,
) -> Result<()> {
    let previous = pack.period.previous();
    let computed = !wh
        .snapshot()?
        .partition_files(crate::model::Table::Indicators, &crate::warehouse::period_partition(&previous))?
        .is_empty();
    if pack.earlier_problems.contains_key(&previous) || !computed {
        return Ok(());
    }
    let mut before = crate::review::load(wh, catalogue, previous)?;
    crate::review::with_previous_rates(wh, &mut before)?;
    let list = crate::review::problems::problems(&before, rules);
    crate::review::write_problems(wh, previous, &list)?;
    let stored = list.iter().map(|p| (p.problem_id.clone(), Some(p.life.state))).collect();
    pack.earlier_problems.insert(previous, stored);
    Ok(())
}

/// The appraisal when the pack is a year's.
fn appraisal_of(wh: &crate::warehouse::Warehouse, pack: &Pack, rules: &AppraisalRules) -> Result<Option<Appraisal>> {
    if pack.period.kind() != PeriodKind::Year {
        return Ok(None);
    }
    crate::review::appraise(wh, pack, rules).map(Some)
}

/// The charts of a pack (for `dangjian chart` and the pipeline's chart stage).
pub fn all_charts(
    wh: &crate::warehouse::Warehouse,
    pack: &Pack,
    appraisal_rules: &AppraisalRules,
    problem_rules: &ProblemRules,
) -> Result<Vec<Chart>> {
    let appraisal = appraisal_of(wh, pack, appraisal_rules)?;
    // No problem list here: it is made by the report, after the charts' stage.
    let inputs = charts::ChartInputs {
        appraisal: appraisal.as_ref(),
        rules: problem_rules,
        problems: None,
        max_cards: usize::MAX,
    };
    Ok(charts::pack_charts(pack, &inputs))
}
