//! Which charts a review pack shows, built from its data.

use std::collections::BTreeMap;

use crate::charts::{BoxGroup, Card, Chart, FunnelLimits, FunnelPoint, HeatRow, Panel, RankBar, Series};
use crate::indicators::catalogue::Direction;
use crate::indicators::compute::{UnitInfo, WEAK};
use crate::model::period::PeriodKind;
use crate::model::{Category, Level, Status};
use crate::review::appraisal::Appraisal;
use crate::review::funnel::{self, Counts, Funnel};
use crate::review::life::State;
use crate::review::problems::{Problem, ProblemRules};
use crate::review::{KEY_INDICATORS, Pack};

pub fn level_zh(level: &str) -> &'static str {
    Level::parse(level).map_or("", Level::label)
}

pub fn category_zh(category: Option<&str>) -> &'static str {
    category.map_or("全区", |c| Category::parse(c).map_or("", Category::label))
}

/// Indicators ranked in the pack, in order.
pub fn ranked_indicators(pack: &Pack) -> Vec<&'static str> {
    let mut v = vec!["composite_score", "attendance_rate"];
    if pack.period.kind() != PeriodKind::Month {
        v.extend(["meeting_completion", "assessment_score"]);
    }
    v.retain(|id| pack.catalogue.get(id).is_some());
    v
}

/// A ranking longer than this shows its best and its worst `RANKING_END` units: a province's
/// 27,000 branches are no chart, and the panel looks at the two ends. The rest is in the
/// workbook.
const RANKING_MAX: usize = 40;
const RANKING_END: usize = 20;

/// The heatmap's rows at most: past it, branches are left out, then villages and communities.
const HEATMAP_MAX: usize = 600;

/// The bars of a sorted ranking, each with its place, only the two ends of a long one.
fn ends_of_ranking(mut bars: Vec<RankBar>) -> Vec<RankBar> {
    for (i, b) in bars.iter_mut().enumerate() {
        b.place = i as u32 + 1;
    }
    if bars.len() > RANKING_MAX {
        bars.drain(RANKING_END..bars.len() - RANKING_END);
    }
    bars
}

/// Whether a unit is at `deepest` or above it.
fn within(u: &&UnitInfo, deepest: Level) -> bool {
    Level::parse(&u.level).is_some_and(|l| l <= deepest)
}

/// The deepest level the heatmap can show all units down to, in at most `HEATMAP_MAX` rows
/// (townships at least).
fn heatmap_deepest(units: &[UnitInfo]) -> Level {
    [Level::Branch, Level::Community]
        .into_iter()
        .find(|&deepest| units.iter().filter(|u| within(u, deepest)).count() <= HEATMAP_MAX)
        .unwrap_or(Level::Township)
}

/// The rates drawn as funnel plots and placed on the diagnosis cards.
const FUNNEL_RATES: [&str; 4] =
    ["attendance_rate", "activity_day_coverage", "task_completion_rate", "rectification_rate"];

/// One level's funnel for one rate: the units with counts, and the limits' centre and spread.
struct LevelFunnel<'a> {
    ind: &'a crate::indicators::catalogue::Indicator,
    scale: f64,
    members: Vec<(&'a UnitInfo, Counts)>,
    funnel: Funnel,
}

/// The funnel of `level` for `ind_id`, when the rate is a share of counts and the level has at
/// least five units with them.
fn level_funnel<'a>(pack: &'a Pack, rules: &ProblemRules, ind_id: &str, level: Level) -> Option<LevelFunnel<'a>> {
    let ind = pack.catalogue.get(ind_id)?;
    let scale = funnel::scale_of(&ind.unit)?;
    let members: Vec<(&UnitInfo, Counts)> = pack
        .units
        .iter()
        .filter(|u| u.level == level.code())
        .filter_map(|u| {
            let r = pack.row(&u.id, ind_id)?;
            Some((u, Counts::of_rate(r.numerator, r.denominator, r.value, &ind.unit)?))
        })
        .collect();
    if members.len() < 5 {
        return None;
    }
    let counts: Vec<Counts> = members.iter().map(|m| m.1).collect();
    let funnel = Funnel::of(&counts, rules.overdispersion)?;
    Some(LevelFunnel { ind, scale, members, funnel })
}

/// Where a unit stands on its level's funnel plots, in words, one line per rate.
fn funnel_lines(pack: &Pack, rules: &ProblemRules, u: &UnitInfo) -> Vec<String> {
    let Some(level) = Level::parse(&u.level) else { return Vec::new() };
    FUNNEL_RATES
        .iter()
        .filter_map(|id| {
            let lf = level_funnel(pack, rules, id, level)?;
            let c = lf.members.iter().find(|m| m.0.id == u.id)?.1;
            let pct = |v: f64| format!("{:.1}%", v * 100.0);
            let outer = format!("{}%", rules.funnel_level * 100.0);
            let head = format!("漏斗图 · {} {}（{:.0}/{:.0}）", lf.ind.name_zh, pct(c.rate()), c.x, c.n);
            Some(match lf.funnel.place(c, rules.funnel_level) {
                funnel::Place::Below(lo) => format!("{head}：低于同级 {outer} 控制下限 {}", pct(lo)),
                funnel::Place::Above(hi) => format!("{head}：高于同级 {outer} 控制上限 {}", pct(hi)),
                funnel::Place::Within => format!("{head}：在同级 {outer} 控制限内（总体 {}）", pct(lf.funnel.centre)),
            })
        })
        .collect()
}

/// A unit's open problems with their states, one line, when the problem list is at hand.
fn problem_lines(pack: &Pack, problems: Option<&[Problem]>, unit: &str) -> Option<String> {
    let open: Vec<String> = problems?
        .iter()
        .filter(|p| p.unit_id == unit && p.life.state != State::Resolved)
        .map(|p| {
            let what = pack.catalogue.get(&p.indicator).map_or(p.indicator.clone(), |i| i.name_zh.clone());
            let since = if p.life.periods_flagged > 1 {
                format!("，自 {} 起第 {} 期", p.life.first_period, p.life.periods_flagged)
            } else {
                String::new()
            };
            format!("{}·{what}（{}{since}）", super::kind_zh(p.kind).0, p.life.state.zh())
        })
        .collect();
    Some(if open.is_empty() {
        "本期无未解决问题".to_string()
    } else {
        format!("本期问题：{}", open.join("；"))
    })
}

/// Funnel plots of the key rates that are shares of counts, one per level: each unit at its
/// denominator, the level's pooled rate and its 95% and outer limits (the problem list's level
/// and overdispersion; a unit is marked only at the minimum denominator, so a marked point is
/// a listed outlier). Levels with fewer than five units are left out.
fn funnels(pack: &Pack, rules: &ProblemRules) -> Vec<Chart> {
    let mut out = Vec::new();
    for ind_id in FUNNEL_RATES {
        for level in Level::GRADED {
            let Some(LevelFunnel { ind, scale, members, funnel: f }) = level_funnel(pack, rules, ind_id, level) else {
                continue;
            };
            let counts: Vec<Counts> = members.iter().map(|m| m.1).collect();
            let (n_min, n_max) = counts.iter().fold((f64::INFINITY, 0.0f64), |(a, z), c| (a.min(c.n), z.max(c.n)));
            let (a, z) = ((n_min / 1.5).max(1.0).ln(), (n_max * 1.5).ln());
            let limits = (0..=60)
                .map(|k| {
                    let n = (a + (z - a) * f64::from(k) / 60.0).exp();
                    let (i0, i1) = funnel::limits(f.centre, n, 0.95, f.phi);
                    let (o0, o1) = funnel::limits(f.centre, n, rules.funnel_level, f.phi);
                    FunnelLimits { n, inner: (i0 * scale, i1 * scale), outer: (o0 * scale, o1 * scale) }
                })
                .collect();
            let points = members
                .iter()
                .map(|(u, c)| FunnelPoint {
                    label: u.name.clone(),
                    n: c.n,
                    rate: c.rate() * scale,
                    outside: c.n >= rules.min_denominator && f.place(*c, rules.funnel_level) != funnel::Place::Within,
                })
                .collect();
            let widened = if f.phi > 1.0 { format!("，按离散度 φ={:.1} 放宽", f.phi) } else { String::new() };
            out.push(Chart::Funnel {
                id: format!("funnel-{ind_id}-{}", level.code()),
                title: format!("{} 漏斗图 · {}（{}{widened}）", ind.name_zh, level_zh(level.code()), pack.period),
                unit: ind.unit.clone(),
                centre: f.centre * scale,
                outer_level: rules.funnel_level,
                limits,
                points,
            });
        }
    }
    out
}

/// What the charts of a pack show besides the pack.
pub struct ChartInputs<'a> {
    pub appraisal: Option<&'a Appraisal>,
    pub rules: &'a ProblemRules,
    /// The period's problem list, when it has been made (the report's charts): a diagnosis
    /// card then lists the unit's open problems and their states.
    pub problems: Option<&'a [Problem]>,
    /// The most diagnosis cards.
    pub max_cards: usize,
}

/// The charts of a pack, in report order.
pub fn pack_charts(pack: &Pack, inputs: &ChartInputs) -> Vec<Chart> {
    let ChartInputs { appraisal, rules, problems, max_cards } = *inputs;
    let mut out = Vec::new();
    // Rankings within each level and category of two or more units.
    for ind_id in ranked_indicators(pack) {
        let ind = pack.catalogue.get(ind_id).expect("ranked indicators exist");
        let mut groups: BTreeMap<(usize, &str, Option<&str>), Vec<RankBar>> = BTreeMap::new();
        for u in pack.units.iter().filter(|u| Level::GRADED.iter().any(|l| l.code() == u.level)) {
            if let Some(r) = pack.row(&u.id, ind_id)
                && let Some(v) = r.value
            {
                let depth = u.path.len();
                let counts = Counts::of_rate(r.numerator, r.denominator, r.value, &ind.unit);
                let scale = funnel::scale_of(&ind.unit).unwrap_or(1.0);
                groups.entry((depth, u.level.as_str(), u.category.as_deref())).or_default().push(RankBar {
                    label: u.name.clone(),
                    value: v,
                    status: r.status,
                    place: 0,
                    interval: counts.map(|c| c.wilson(0.95)).map(|(lo, hi)| (lo * scale, hi * scale)),
                    n: counts.map(|c| c.n),
                });
            }
        }
        for ((_, level, cat), mut bars) in groups {
            if bars.len() < 2 {
                continue;
            }
            match ind.direction {
                Direction::Higher => bars.sort_by(|a, b| b.value.total_cmp(&a.value).then(a.label.cmp(&b.label))),
                Direction::Lower => bars.sort_by(|a, b| a.value.total_cmp(&b.value).then(a.label.cmp(&b.label))),
            }
            let total = bars.len();
            let bars = ends_of_ranking(bars);
            let shown = if bars.len() < total {
                format!("；共{total}个，显示前{RANKING_END}名与后{RANKING_END}名，全部见工作簿“指标”表")
            } else {
                String::new()
            };
            let t = ind.thresholds_for(cat, pack.period.month_count());
            out.push(Chart::Ranking {
                id: format!("rank-{ind_id}-{level}-{}", cat.unwrap_or("all")),
                title: format!(
                    "{} · {} · {}（{}{shown}）",
                    ind.name_zh,
                    level_zh(level),
                    category_zh(cat),
                    pack.period
                ),
                unit: ind.unit.clone(),
                bars,
                thresholds: vec![(t.green, Status::Green), (t.amber, Status::Amber)],
                higher_is_better: ind.direction == Direction::Higher,
            });
        }
    }
    out.extend(funnels(pack, rules));
    // Trends of key indicators by township over 12 months.
    let townships: Vec<_> = pack.units.iter().filter(|u| u.level == Level::Township.code()).collect();
    for ind_id in ["attendance_rate", "activity_day_coverage", "composite_score"] {
        let Some(ind) = pack.catalogue.get(ind_id) else { continue };
        let series = townships
            .iter()
            .map(|u| Series {
                label: u.name.clone(),
                points: pack.trends.get(&(u.id.clone(), ind_id.to_string())).cloned().unwrap_or_default(),
            })
            .collect();
        out.push(Chart::Trend {
            id: format!("trend-{ind_id}"),
            title: format!("{} · 各街道/镇近12个月走势", ind.name_zh),
            unit: ind.unit.clone(),
            x_labels: pack.trend_months.iter().map(|m| m.to_string()[2..].to_string()).collect(),
            series,
        });
    }
    // The heatmap: units in grid order, down to the deepest level that keeps it readable.
    let columns: Vec<&str> = pack.catalogue.indicator.iter().map(|i| i.id.as_str()).collect();
    let down_to = heatmap_deepest(&pack.units);
    let shown = match down_to {
        Level::Branch => "",
        Level::Community => " · 街道/镇与村/社区",
        _ => " · 街道/镇（村/社区与支部见工作簿）",
    };
    let rows = pack
        .units
        .iter()
        .filter(|u| within(u, down_to))
        .map(|u| HeatRow {
            label: u.name.clone(),
            depth: u.path.len().saturating_sub(1),
            cells: columns.iter().map(|c| pack.row(&u.id, c).and_then(|r| r.status)).collect(),
        })
        .collect();
    out.push(Chart::Heatmap {
        id: "heatmap".into(),
        title: format!("指标状态热力图（{}）{shown}", pack.period),
        columns: columns.iter().map(|c| pack.catalogue.get(c).map(|i| i.name_zh.clone()).unwrap_or_default()).collect(),
        rows,
    });
    // Member points by category.
    let mut by_cat: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (c, v) in &pack.member_points {
        by_cat.entry(c.clone()).or_default().push(*v);
    }
    out.push(Chart::Boxes {
        id: "points-by-category".into(),
        title: format!("党员积分分布 · 按类别（{}）", pack.period),
        unit: "points".into(),
        groups: by_cat
            .into_iter()
            .map(|(c, values)| BoxGroup { label: category_zh(Some(&c)).to_string(), values })
            .collect(),
    });
    if let Some(a) = appraisal {
        out.extend(super::appraisal::charts(a));
    }
    // A diagnosis card per weak candidate.
    let medians = history_medians(pack);
    let weak: Vec<_> =
        pack.rows.iter().filter(|r| r.indicator == WEAK && r.value == Some(1.0)).take(max_cards).collect();
    for r in weak {
        let Some(u) = pack.unit(&r.unit_id) else { continue };
        let panels = KEY_INDICATORS
            .iter()
            .filter_map(|id| {
                let ind = pack.catalogue.get(id)?;
                let mine = pack.history.get(&(u.id.clone(), id.to_string()))?.clone();
                let med =
                    medians.get(&(u.level.clone(), u.category.clone(), id.to_string())).cloned().unwrap_or_default();
                Some(Panel { name: ind.name_zh.clone(), unit: ind.unit.clone(), mine, median: med })
            })
            .collect();
        out.push(Chart::Diagnosis {
            id: format!("card-{}", u.id),
            title: format!("诊断卡 · {}（{} · {}）", u.name, level_zh(&u.level), category_zh(u.category.as_deref())),
            card: Card {
                reasons: super::weak_note_zh(r.note.as_deref().unwrap_or_default())
                    .split('；')
                    .map(str::to_string)
                    .collect(),
                notes: funnel_lines(pack, rules, u).into_iter().chain(problem_lines(pack, problems, &u.id)).collect(),
                x_labels: pack.history_periods.iter().map(|p| p.to_string()).collect(),
                panels,
            },
        });
    }
    out
}

/// Per (level, category, indicator), the median over units of each history period.
fn history_medians(pack: &Pack) -> BTreeMap<(String, Option<String>, String), Vec<Option<f64>>> {
    let mut vals: BTreeMap<(String, Option<String>, String), Vec<Vec<f64>>> = BTreeMap::new();
    let n = pack.history_periods.len();
    for u in &pack.units {
        for id in KEY_INDICATORS {
            if let Some(series) = pack.history.get(&(u.id.clone(), id.to_string())) {
                let slot = vals
                    .entry((u.level.clone(), u.category.clone(), id.to_string()))
                    .or_insert_with(|| vec![Vec::new(); n]);
                for (i, v) in series.iter().enumerate() {
                    if let Some(v) = v {
                        slot[i].push(*v);
                    }
                }
            }
        }
    }
    vals.into_iter()
        .map(|(k, per)| {
            let meds = per.into_iter().map(crate::review::problems::median).collect();
            (k, meds)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bars(n: usize) -> Vec<RankBar> {
        (0..n)
            .map(|i| RankBar {
                label: format!("U{i}"),
                value: i as f64,
                status: None,
                place: 0,
                interval: None,
                n: None,
            })
            .collect()
    }

    #[test]
    fn a_long_ranking_shows_its_two_ends_with_their_places() {
        let short = ends_of_ranking(bars(RANKING_MAX));
        assert_eq!(short.iter().map(|b| b.place).collect::<Vec<_>>(), (1..=RANKING_MAX as u32).collect::<Vec<_>>());
        let long = ends_of_ranking(bars(27_000));
        assert_eq!(long.len(), 2 * RANKING_END);
        assert_eq!((long[0].place, long[RANKING_END - 1].place), (1, RANKING_END as u32));
        assert_eq!((long[RANKING_END].place, long.last().unwrap().place), (27_000 - RANKING_END as u32 + 1, 27_000));
        assert_eq!(long.last().unwrap().label, "U26999");
    }

    #[test]
    fn the_heatmap_goes_as_deep_as_its_rows_allow() {
        let unit = |level: &str| UnitInfo {
            id: String::new(),
            name: String::new(),
            level: level.into(),
            category: None,
            path: Vec::new(),
            since: None,
        };
        let grid = |townships: usize, communities: usize, branches: usize| {
            let mut v = vec![unit("district")];
            v.extend((0..townships).map(|_| unit("township")));
            v.extend((0..communities).map(|_| unit("community")));
            v.extend((0..branches).map(|_| unit("branch")));
            v
        };
        assert_eq!(heatmap_deepest(&grid(4, 8, 17)), Level::Branch);
        assert_eq!(heatmap_deepest(&grid(10, 300, 700)), Level::Community);
        assert_eq!(heatmap_deepest(&grid(100, 3_000, 26_900)), Level::Township);
    }
}
