//! The workbook beside the report, for analysts who work in Excel: the indicator table (units ×
//! indicators), the problem list, the draw and, for a year, the appraisal (a sheet per level). Text cells that Excel would read as
//! formulas are neutralised.

use anyhow::Result;
use rust_xlsxwriter::{Format, Workbook};

use super::charts::{category_zh, level_zh};
use super::review_loop;
use crate::output::neutralise;
use crate::review::appraisal::Appraisal;
use crate::review::problems::Problem;
use crate::review::{DrawRecord, Pack};

pub fn workbook(
    pack: &Pack,
    problems: &[Problem],
    draw: Option<&DrawRecord>,
    appraisal: Option<&Appraisal>,
) -> Result<Vec<u8>> {
    let mut wb = Workbook::new();
    let created = rust_xlsxwriter::ExcelDateTime::from_ymd(2026, 1, 1)?;
    wb.set_properties(&rust_xlsxwriter::DocProperties::new().set_creation_datetime(&created));
    let head = Format::new().set_bold().set_background_color(0xF6E7E7);
    let text = |s: &str| neutralise(s).into_owned();

    let ws = wb.add_worksheet();
    ws.set_name("指标")?;
    let mut ids: Vec<String> = pack.catalogue.indicator.iter().map(|i| i.id.clone()).collect();
    ids.push(crate::indicators::compute::WEAK.into());
    let mut header =
        vec!["组织编码".to_string(), "组织名称".into(), "层级".into(), "类别".into(), "所属街道（镇）".into()];
    header
        .extend(ids.iter().map(|id| pack.catalogue.get(id).map_or("软弱涣散候选".to_string(), |i| i.name_zh.clone())));
    for (c, h) in header.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, h, &head)?;
    }
    for (r, u) in pack.units.iter().enumerate() {
        let row = r as u32 + 1;
        ws.write_string(row, 0, text(&u.id))?;
        ws.write_string(row, 1, text(&u.name))?;
        ws.write_string(row, 2, level_zh(&u.level))?;
        ws.write_string(row, 3, category_zh(u.category.as_deref()))?;
        ws.write_string(row, 4, text(&township(pack, &u.id)))?;
        for (k, id) in ids.iter().enumerate() {
            if let Some(v) = pack.row(&u.id, id).and_then(|x| x.value) {
                ws.write_number(row, 5 + k as u16, v)?;
            }
        }
    }
    ws.set_freeze_panes(1, 2)?;

    let ws = wb.add_worksheet();
    ws.set_name("问题清单")?;
    for (c, h) in [
        "组织编码",
        "组织名称",
        "层级",
        "类别",
        "问题类型",
        "指标",
        "数值",
        "上期",
        "同类中位数",
        "证据",
        "问题编号",
        "状态",
        "首次列入",
        "列入期数",
        "比较基准",
        "分母",
        "严重程度",
        "优先级",
    ]
    .iter()
    .enumerate()
    {
        ws.write_string_with_format(0, c as u16, *h, &head)?;
    }
    for (r, p) in problems.iter().enumerate() {
        let row = r as u32 + 1;
        ws.write_string(row, 0, text(&p.unit_id))?;
        ws.write_string(row, 1, text(&p.unit_name))?;
        ws.write_string(row, 2, level_zh(&p.level))?;
        ws.write_string(row, 3, category_zh(p.category.as_deref()))?;
        ws.write_string(row, 4, p.kind)?;
        ws.write_string(row, 5, text(&p.indicator))?;
        for (k, v) in [p.value, p.previous_value, p.category_median].into_iter().enumerate() {
            if let Some(v) = v {
                ws.write_number(row, 6 + k as u16, v)?;
            }
        }
        ws.write_string(row, 9, text(&p.evidence))?;
        ws.write_string(row, 10, text(&p.problem_id))?;
        ws.write_string(row, 11, p.life.state.zh())?;
        ws.write_string(row, 12, p.life.first_period.to_string())?;
        ws.write_number(row, 13, p.life.periods_flagged as f64)?;
        for (k, v) in [p.reference, p.denominator].into_iter().enumerate() {
            if let Some(v) = v {
                ws.write_number(row, 14 + k as u16, v)?;
            }
        }
        ws.write_number(row, 16, f64::from(p.severity))?;
        if let Some(rank) = p.priority {
            ws.write_number(row, 17, f64::from(rank))?;
        }
    }

    // The review loop, as the report shows it.
    let moved = review_loop::movement(pack, problems);
    let rows: Vec<Vec<Cell>> = moved
        .rows
        .iter()
        .map(|r| {
            vec![
                Cell::T(r.unit.clone()),
                Cell::T(r.indicator.clone()),
                Cell::T(r.state.into()),
                Cell::T(r.first_period.clone()),
                Cell::N(r.periods_flagged as f64),
                Cell::T(r.now.clone()),
            ]
        })
        .collect();
    sheet(&mut wb, "上期问题整改情况", &["组织", "问题", "状态", "首次列入", "列入期数", "现状"], rows, &head)?;
    let rows: Vec<Vec<Cell>> = review_loop::overdue(pack)
        .into_iter()
        .map(|o| {
            vec![
                Cell::T(township(pack, &o.unit_id)),
                Cell::T(o.unit_id),
                Cell::T(o.unit),
                Cell::T(o.findings.join("\n")),
                Cell::T(o.tasks.join("\n")),
            ]
        })
        .collect();
    sheet(&mut wb, "逾期未整改", &["所属街道（镇）", "组织编码", "组织", "逾期问题", "逾期任务"], rows, &head)?;
    let projects = review_loop::projects(pack);
    let rows: Vec<Vec<Cell>> = projects
        .iter()
        .map(|p| {
            vec![
                Cell::T(p.project.into()),
                Cell::N(p.due as f64),
                Cell::N(p.on_time as f64),
                Cell::N(p.overdue as f64),
                Cell::N(p.behind.len() as f64),
            ]
        })
        .collect();
    let projects_sheet = sheet(
        &mut wb,
        "六大工程推进情况",
        &["工程", "本期到期任务", "按期完成", "逾期未完成", "滞后单位数"],
        rows,
        &head,
    )?;
    // The units behind one per row under the table: a province's thousands do not fit in one
    // cell (Excel holds 32,767 characters).
    let ws = wb.worksheet_from_index(projects_sheet)?;
    let first = projects.len() as u32 + 2;
    for (c, h) in ["工程", "所属街道（镇）", "组织编码", "滞后单位"].iter().enumerate() {
        ws.write_string_with_format(first, c as u16, *h, &head)?;
    }
    let behind = projects.iter().flat_map(|p| p.behind_ids.iter().zip(&p.behind).map(move |u| (p.project, u)));
    for (r, (project, (id, name))) in behind.enumerate() {
        let row = first + 1 + r as u32;
        ws.write_string(row, 0, project)?;
        ws.write_string(row, 1, text(&township(pack, id)))?;
        ws.write_string(row, 2, text(id))?;
        ws.write_string(row, 3, text(name))?;
    }
    // Every branch-month without attendance: the report names the first few of each month.
    let rows: Vec<Vec<Cell>> = pack
        .reporting
        .missing_by_month()
        .into_iter()
        .flat_map(|(month, list)| {
            list.into_iter().map(move |s| {
                let parent = s.parent_id.as_deref().and_then(|p| pack.unit(p)).map(|p| p.name.clone());
                vec![
                    Cell::T(month.to_string()),
                    Cell::T(township(pack, &s.unit_id)),
                    Cell::T(parent.unwrap_or_default()),
                    Cell::T(s.unit_id.clone()),
                    Cell::T(s.unit_name.clone()),
                ]
            })
        })
        .collect();
    sheet(&mut wb, "报送情况", &["月份（未报送）", "所属街道（镇）", "所属村/社区", "支部编码", "支部"], rows, &head)?;

    let ws = wb.add_worksheet();
    ws.set_name("巡回观摩")?;
    for (c, h) in ["报告期", "种子", "算法", "层级", "抽中", "抽签时间", "重新抽签"].iter().enumerate()
    {
        ws.write_string_with_format(0, c as u16, *h, &head)?;
    }
    if let Some(d) = draw {
        ws.write_string(1, 0, &d.period)?;
        ws.write_string(1, 1, d.seed.to_string())?;
        ws.write_string(1, 2, &d.algorithm)?;
        ws.write_string(1, 3, level_zh(&d.level))?;
        ws.write_string(1, 4, text(&d.chosen.join(",")))?;
        ws.write_string(1, 5, &d.drawn_at)?;
        ws.write_boolean(1, 6, d.forced)?;
        // The candidates one per row: a province's thousands do not fit in one cell (Excel
        // holds 32,767 characters).
        for (c, h) in ["候选组织编码", "抽签权重"].iter().enumerate() {
            ws.write_string_with_format(3, c as u16, *h, &head)?;
        }
        for (r, (id, w)) in d.candidates.iter().enumerate() {
            ws.write_string(4 + r as u32, 0, text(id))?;
            ws.write_number(4 + r as u32, 1, *w)?;
        }
    }

    let changes = super::tree_change_rows(pack);
    if !changes.is_empty() {
        let ws = wb.add_worksheet();
        ws.set_name("组织架构变化")?;
        for (c, h) in ["变化", "组织名称", "组织编码", "说明"].iter().enumerate() {
            ws.write_string_with_format(0, c as u16, *h, &head)?;
        }
        for (r, cells) in changes.iter().enumerate() {
            for (c, cell) in cells.iter().enumerate() {
                ws.write_string(r as u32 + 1, c as u16, text(cell))?;
            }
        }
    }

    if let Some(a) = appraisal {
        super::appraisal::sheets(&mut wb, pack, a, &head)?;
    }
    Ok(wb.save_to_buffer()?)
}

/// The name of a unit's township, empty for the district and units directly under it.
fn township(pack: &Pack, unit_id: &str) -> String {
    pack.township_of(unit_id).map(|t| t.name.clone()).unwrap_or_default()
}

/// A cell of a plain sheet.
enum Cell {
    T(String),
    N(f64),
}

/// A sheet of a header and rows.
/// A sheet of a header and rows; its index in the workbook.
fn sheet(wb: &mut Workbook, name: &str, header: &[&str], rows: Vec<Vec<Cell>>, head: &Format) -> Result<usize> {
    let index = wb.worksheets().len();
    let ws = wb.add_worksheet();
    ws.set_name(name)?;
    for (c, h) in header.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, *h, head)?;
    }
    for (r, cells) in rows.into_iter().enumerate() {
        for (c, cell) in cells.into_iter().enumerate() {
            let (row, col) = (r as u32 + 1, c as u16);
            match cell {
                Cell::T(t) => ws.write_string(row, col, neutralise(&t).into_owned())?,
                Cell::N(n) => ws.write_number(row, col, n)?,
            };
        }
    }
    Ok(index)
}
