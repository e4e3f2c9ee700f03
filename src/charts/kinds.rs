//! The chart kinds of the review pack and how each lays itself out.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::canvas::{AMBER, Align, Canvas, FAINT, GREEN, GREY, INK, LINES, MUTED, PARTY_RED, RED, fit, status_colour};
use crate::model::Status;
use crate::output::format_value;

/// One bar of a ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct RankBar {
    pub label: String,
    pub value: f64,
    pub status: Option<Status>,
    /// The bar's place in the whole ranking (a long ranking shows its two ends only).
    pub place: u32,
    /// For a proportion of counts: its 95% interval (in the indicator's unit) and denominator,
    /// so neighbours whose intervals overlap read as not distinguishable.
    pub interval: Option<(f64, f64)>,
    pub n: Option<f64>,
}

/// One line of a trend chart, a value per x label.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<Option<f64>>,
}

/// One row of the heatmap: a unit, its depth in the tree, a status per column.
#[derive(Debug, Clone, PartialEq)]
pub struct HeatRow {
    pub label: String,
    pub depth: usize,
    pub cells: Vec<Option<Status>>,
}

/// The values of one box.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxGroup {
    pub label: String,
    pub values: Vec<f64>,
}

/// A grade band and how many units got it.
#[derive(Debug, Clone, PartialEq)]
pub struct GradeBar {
    pub label: String,
    pub count: u32,
}

/// One weak candidate's card: why, and its indicators against its category's median.
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    /// Why the unit is a candidate (drawn red).
    pub reasons: Vec<String>,
    /// Where it stands on the funnel plots, and its open problems.
    pub notes: Vec<String>,
    pub x_labels: Vec<String>,
    pub panels: Vec<Panel>,
}

/// One indicator on a diagnosis card: the unit's values and its category's median over time.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub name: String,
    pub unit: String,
    pub mine: Vec<Option<f64>>,
    pub median: Vec<Option<f64>>,
}

/// One unit on a funnel plot: its rate (in the indicator's unit) at its denominator.
#[derive(Debug, Clone, PartialEq)]
pub struct FunnelPoint {
    pub label: String,
    pub n: f64,
    pub rate: f64,
    /// Outside the outer limits: drawn red and labelled.
    pub outside: bool,
}

/// The funnel's limits at one denominator: (lower, upper) at 95% and at the outer level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FunnelLimits {
    pub n: f64,
    pub inner: (f64, f64),
    pub outer: (f64, f64),
}

/// One line of the agenda slide.
#[derive(Debug, Clone, PartialEq)]
pub struct AgendaLine {
    /// The unit, on its first problem only.
    pub unit: String,
    pub text: String,
    /// Drawn in red: the most severe.
    pub severe: bool,
}

/// A chart, with its data prepared.
#[derive(Debug, Clone, PartialEq)]
pub enum Chart {
    Ranking {
        id: String,
        title: String,
        unit: String,
        bars: Vec<RankBar>,
        thresholds: Vec<(f64, Status)>,
        higher_is_better: bool,
    },
    Trend {
        id: String,
        title: String,
        unit: String,
        x_labels: Vec<String>,
        series: Vec<Series>,
    },
    Heatmap {
        id: String,
        title: String,
        columns: Vec<String>,
        rows: Vec<HeatRow>,
    },
    Boxes {
        id: String,
        title: String,
        unit: String,
        groups: Vec<BoxGroup>,
    },
    Grades {
        id: String,
        title: String,
        bars: Vec<GradeBar>,
        quota: Option<u32>,
    },
    Diagnosis {
        id: String,
        title: String,
        card: Card,
    },
    /// The meeting's agenda as a slide: the top problems, one line each.
    Agenda {
        id: String,
        title: String,
        lines: Vec<AgendaLine>,
    },
    /// Each unit's rate against its denominator, the group's rate and its control limits.
    Funnel {
        id: String,
        title: String,
        unit: String,
        centre: f64,
        /// The outer limits' level (0.998 by default: the problem list's).
        outer_level: f64,
        limits: Vec<FunnelLimits>,
        points: Vec<FunnelPoint>,
    },
}

const TITLE: u32 = 20;
const LABEL: u32 = 13;

impl Chart {
    pub fn id(&self) -> &str {
        match self {
            Chart::Ranking { id, .. }
            | Chart::Trend { id, .. }
            | Chart::Heatmap { id, .. }
            | Chart::Boxes { id, .. }
            | Chart::Grades { id, .. }
            | Chart::Diagnosis { id, .. }
            | Chart::Agenda { id, .. }
            | Chart::Funnel { id, .. } => id,
        }
    }

    pub fn title(&self) -> &str {
        match self {
            Chart::Ranking { title, .. }
            | Chart::Trend { title, .. }
            | Chart::Heatmap { title, .. }
            | Chart::Boxes { title, .. }
            | Chart::Grades { title, .. }
            | Chart::Diagnosis { title, .. }
            | Chart::Agenda { title, .. }
            | Chart::Funnel { title, .. } => title,
        }
    }

    /// Width and height in pixels.
    pub fn size(&self) -> (u32, u32) {
        match self {
            // Room below the bars for the thresholds' values and the intervals' note.
            Chart::Ranking { bars, .. } => (900, 110 + 22 * bars.len().max(1) as u32),
            Chart::Trend { .. } | Chart::Boxes { .. } => (900, 440),
            Chart::Heatmap { columns, rows, .. } => {
                (300 + 58 * columns.len() as u32, 150 + 18 * rows.len().max(1) as u32)
            }
            Chart::Grades { .. } => (700, 380),
            Chart::Funnel { .. } => (900, 480),
            // 16:9, a line of 13-px text every 26 pixels: 2× on a 1920×1080 slide.
            Chart::Agenda { lines, .. } => (960, 540.max(70 + 26 * lines.len() as u32)),
            Chart::Diagnosis { card, .. } => {
                (900, 110 + 18 * (card.reasons.len() + card.notes.len()) as u32 + 150 * card.panels.len() as u32)
            }
        }
    }

    pub fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()> {
        self.paint(&Canvas::new(area))
    }

    /// Draw `scale` times larger, moved by `offset` (a slide).
    pub fn draw_scaled<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        scale: f64,
        offset: (i32, i32),
    ) -> Result<()> {
        self.paint(&Canvas { area, scale, offset })
    }

    fn paint<DB: DrawingBackend>(&self, c: &Canvas<DB>) -> Result<()> {
        c.clear()?;
        let (w, _) = self.size();
        c.text(self.title(), w as i32 / 2, 24, TITLE, INK, Align::Centre)?;
        match self {
            Chart::Ranking { unit, bars, thresholds, higher_is_better, .. } => {
                ranking(c, unit, bars, thresholds, *higher_is_better)
            }
            Chart::Trend { unit, x_labels, series, .. } => trend(c, unit, x_labels, series),
            Chart::Heatmap { columns, rows, .. } => heatmap(c, columns, rows),
            Chart::Boxes { unit, groups, .. } => boxes(c, unit, groups),
            Chart::Grades { bars, quota, .. } => grades(c, bars, *quota),
            Chart::Diagnosis { card, .. } => diagnosis(c, card),
            Chart::Funnel { unit, centre, outer_level, limits, points, .. } => {
                funnel(c, unit, *centre, *outer_level, limits, points)
            }
            Chart::Agenda { lines, .. } => agenda(c, lines),
        }
    }
}

fn ranking<DB: DrawingBackend>(
    c: &Canvas<DB>,
    unit: &str,
    bars: &[RankBar],
    thresholds: &[(f64, Status)],
    higher: bool,
) -> Result<()> {
    let (left, right, top) = (280, 800, 60);
    let max = bars
        .iter()
        .map(|b| b.interval.map_or(b.value, |i| i.1.max(b.value)))
        .chain(thresholds.iter().map(|t| t.0))
        .fold(0.0f64, f64::max);
    let max = if unit == "percent" {
        max.max(1.0)
    } else if max <= 0.0 {
        1.0
    } else {
        max * 1.08
    };
    let min = bars.iter().map(|b| b.value).fold(0.0f64, f64::min);
    let x = |v: f64| left + ((v - min) / (max - min) * (right - left) as f64) as i32;
    let note = if higher { "越高越好" } else { "越低越好" };
    c.text(note, right, 44, LABEL - 2, MUTED, Align::Right)?;
    for (i, b) in bars.iter().enumerate() {
        let y = top + 22 * i as i32;
        // Where the places jump, the middle of the ranking was left out: a line says so.
        if i > 0 && b.place > bars[i - 1].place + 1 {
            c.dashed(12, y, right, y, GREY)?;
        }
        c.text(&format!("{}", b.place), 18, y + 9, LABEL - 1, MUTED, Align::Left)?;
        c.text(&fit(&b.label, LABEL, left - 50), left - 8, y + 9, LABEL, INK, Align::Right)?;
        c.rect(
            x(0.0_f64.max(min)),
            y + 2,
            x(b.value).max(x(0.0_f64.max(min)) + 1),
            y + 17,
            status_colour(b.status),
            true,
        )?;
        let mut end = x(b.value);
        if let Some((lo, hi)) = b.interval {
            c.line(&[(x(lo), y + 9), (x(hi), y + 9)], INK, 1)?;
            c.line(&[(x(lo), y + 5), (x(lo), y + 13)], INK, 1)?;
            c.line(&[(x(hi), y + 5), (x(hi), y + 13)], INK, 1)?;
            end = end.max(x(hi));
        }
        let label = match b.n {
            Some(n) => format!("{} · n={n:.0}", format_value(b.value, unit)),
            None => format_value(b.value, unit),
        };
        c.text(&label, end + 6, y + 9, LABEL - 1, INK, Align::Left)?;
    }
    let bottom = top + 22 * bars.len() as i32 + 4;
    if bars.iter().any(|b| b.interval.is_some()) {
        c.text(
            "细线为 95% 置信区间（Wilson）：区间重叠的单位排名差异不显著",
            left,
            bottom + 28,
            LABEL - 2,
            MUTED,
            Align::Left,
        )?;
    }
    for (v, status) in thresholds {
        let colour = if *status == Status::Green { GREEN } else { AMBER };
        c.dashed(x(*v), top - 6, x(*v), bottom, colour)?;
        c.text(&format_value(*v, unit), x(*v), bottom + 12, LABEL - 2, colour, Align::Centre)?;
    }
    Ok(())
}

/// Five round tick values covering [lo, hi].
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(1e-9);
    let raw = span / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(raw);
    let start = (lo / step).floor() * step;
    (0..=8).map(|i| start + step * i as f64).take_while(|v| *v <= hi + step * 0.01).collect()
}

fn value_range(values: impl Iterator<Item = f64>, unit: &str) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if unit == "percent" {
        return ((lo - 0.05).max(0.0).min(lo), (hi + 0.05).min(1.0).max(hi));
    }
    let pad = ((hi - lo) * 0.1).max(1.0);
    (lo - pad, hi + pad)
}

fn axes<DB: DrawingBackend>(
    c: &Canvas<DB>,
    unit: &str,
    lo: f64,
    hi: f64,
    frame: (i32, i32, i32, i32),
) -> Result<Vec<f64>> {
    let (l, t, r, b) = frame;
    let ts = ticks(lo, hi);
    for v in &ts {
        let y = b - ((v - lo) / (hi - lo) * (b - t) as f64) as i32;
        if y < t - 1 || y > b + 1 {
            continue;
        }
        c.line(&[(l, y), (r, y)], FAINT, 1)?;
        // Dark enough to read on a projector (light grey was not).
        c.text(&format_value(*v, unit), l - 6, y, LABEL - 2, MUTED, Align::Right)?;
    }
    c.line(&[(l, t), (l, b), (r, b)], INK, 1)?;
    Ok(ts)
}

fn trend<DB: DrawingBackend>(c: &Canvas<DB>, unit: &str, x_labels: &[String], series: &[Series]) -> Result<()> {
    let frame = (80, 60, 680, 380);
    let (l, t, r, b) = frame;
    let (lo, hi) = value_range(series.iter().flat_map(|s| s.points.iter().flatten().copied()), unit);
    axes(c, unit, lo, hi, frame)?;
    let n = x_labels.len().max(2);
    let x = |i: usize| l + ((r - l) as f64 * i as f64 / (n - 1) as f64) as i32;
    let y = |v: f64| b - ((v - lo) / (hi - lo) * (b - t) as f64) as i32;
    for (i, lab) in x_labels.iter().enumerate() {
        c.text(lab, x(i), b + 14, LABEL - 3, MUTED, Align::Centre)?;
    }
    for (si, s) in series.iter().enumerate() {
        let colour = LINES[si % LINES.len()];
        // Lines break where a month has no value.
        let mut run: Vec<(i32, i32)> = Vec::new();
        for (i, p) in s.points.iter().enumerate() {
            match p {
                Some(v) => {
                    run.push((x(i), y(*v)));
                    c.dot(x(i), y(*v), 3, colour)?;
                }
                None => {
                    if run.len() > 1 {
                        c.line(&run, colour, 2)?;
                    }
                    run.clear();
                }
            }
        }
        if run.len() > 1 {
            c.line(&run, colour, 2)?;
        }
        let ly = t + 16 * si as i32;
        c.rect(r + 16, ly - 4, r + 28, ly + 4, colour, true)?;
        c.text(&fit(&s.label, LABEL - 1, 180), r + 34, ly, LABEL - 1, INK, Align::Left)?;
    }
    Ok(())
}

/// The agenda: the unit in the first column, each problem on a line beside it.
fn agenda<DB: DrawingBackend>(c: &Canvas<DB>, lines: &[AgendaLine]) -> Result<()> {
    for (i, l) in lines.iter().enumerate() {
        let y = 70 + 26 * i as i32;
        if !l.unit.is_empty() {
            if i > 0 {
                c.line(&[(20, y - 13), (940, y - 13)], FAINT, 1)?;
            }
            c.text(&fit(&l.unit, LABEL, 210), 24, y, LABEL, INK, Align::Left)?;
        }
        let colour = if l.severe { RED } else { INK };
        c.text(&fit(&l.text, LABEL, 700), 240, y, LABEL, colour, Align::Left)?;
    }
    Ok(())
}

/// A funnel plot: the denominator on a log scale (units differ a hundredfold), the rate up.
fn funnel<DB: DrawingBackend>(
    c: &Canvas<DB>,
    unit: &str,
    centre: f64,
    outer_level: f64,
    limits: &[FunnelLimits],
    points: &[FunnelPoint],
) -> Result<()> {
    let frame = (80, 70, 700, 420);
    let (l, t, r, b) = frame;
    let (lo, hi) = value_range(points.iter().map(|p| p.rate).chain([centre]), unit);
    axes(c, unit, lo, hi, frame)?;
    let (n_min, n_max) = points.iter().fold((f64::INFINITY, 0.0f64), |(a, z), p| (a.min(p.n), z.max(p.n)));
    let (x0, x1) = ((n_min.max(1.0) / 1.5).log10(), (n_max.max(2.0) * 1.5).log10());
    let x = |n: f64| l + ((n.max(1.0).log10() - x0) / (x1 - x0) * (r - l) as f64) as i32;
    let y = |v: f64| b - ((v.clamp(lo, hi) - lo) / (hi - lo) * (b - t) as f64) as i32;
    // 1, 2 and 5 times the powers of ten along the denominator axis.
    let mut decade = 10f64.powf(x0.floor());
    while decade.log10() <= x1 {
        for tick in [decade, 2.0 * decade, 5.0 * decade] {
            if (x0..=x1).contains(&tick.log10()) {
                c.line(&[(x(tick), b), (x(tick), b + 4)], INK, 1)?;
                c.text(&format!("{tick:.0}"), x(tick), b + 14, LABEL - 2, INK, Align::Centre)?;
            }
        }
        decade *= 10.0;
    }
    c.text("分母（出勤人次、支部·月等）", (l + r) / 2, b + 34, LABEL - 1, INK, Align::Centre)?;
    for (values, colour) in [
        (limits.iter().map(|k| k.inner.0).collect::<Vec<_>>(), AMBER),
        (limits.iter().map(|k| k.inner.1).collect(), AMBER),
        (limits.iter().map(|k| k.outer.0).collect(), RED),
        (limits.iter().map(|k| k.outer.1).collect(), RED),
    ] {
        let curve: Vec<_> = limits.iter().zip(values).map(|(k, v)| (x(k.n), y(v))).collect();
        c.line(&curve, colour, 1)?;
    }
    c.line(&[(l, y(centre)), (r, y(centre))], INK, 1)?;
    // A province puts 27,000 branches on one plot, most on top of each other: a dot where one
    // already is changes no pixel, so each position is drawn once (its SVG was 1.7 MB).
    let inside: std::collections::BTreeSet<(i32, i32)> =
        points.iter().filter(|p| !p.outside).map(|p| (x(p.n), y(p.rate))).collect();
    for (px, py) in inside {
        c.dot(px, py, 3, GREY)?;
    }
    for p in points.iter().filter(|p| p.outside) {
        c.dot(x(p.n), y(p.rate), 4, RED)?;
        c.text(&fit(&p.label, LABEL - 2, 160), x(p.n) + 6, y(p.rate), LABEL - 2, RED, Align::Left)?;
    }
    // Legend.
    let lx = r + 20;
    let outer = format!("{}%", outer_level * 100.0);
    let names =
        ["总体水平".to_string(), "95% 控制限".to_string(), format!("{outer} 控制限"), format!("超出 {outer} 限")];
    for (k, (name, colour)) in names.iter().zip([INK, AMBER, RED, RED]).enumerate() {
        let ly = t + 20 * k as i32;
        if k == 3 {
            c.dot(lx + 6, ly, 4, colour)?;
        } else {
            c.line(&[(lx, ly), (lx + 14, ly)], colour, 2)?;
        }
        c.text(name, lx + 20, ly, LABEL - 1, INK, Align::Left)?;
    }
    Ok(())
}

fn heatmap<DB: DrawingBackend>(c: &Canvas<DB>, columns: &[String], rows: &[HeatRow]) -> Result<()> {
    let (left, top, cw, rh) = (290, 130, 58, 18);
    for (j, col) in columns.iter().enumerate() {
        c.text_up(&fit(col, LABEL - 2, 90), left + cw * j as i32 + cw / 2, top - 8, LABEL - 2, INK)?;
    }
    for (i, row) in rows.iter().enumerate() {
        let y = top + rh * i as i32;
        let indent = 12 * row.depth as i32;
        c.text(&fit(&row.label, LABEL - 2, left - 20 - indent), 10 + indent, y + rh / 2, LABEL - 2, INK, Align::Left)?;
        for (j, s) in row.cells.iter().enumerate() {
            let x0 = left + cw * j as i32;
            c.rect(x0 + 1, y + 1, x0 + cw - 1, y + rh - 1, status_colour(*s), true)?;
        }
    }
    // Legend.
    let y = 48;
    for (k, (name, colour)) in
        [("达标 green", GREEN), ("预警 amber", AMBER), ("不达标 red", RED), ("无数据", GREY)].iter().enumerate()
    {
        let x = 20 + 140 * k as i32;
        c.rect(x, y - 6, x + 14, y + 6, *colour, true)?;
        c.text(name, x + 20, y, LABEL - 2, INK, Align::Left)?;
    }
    Ok(())
}

/// Quartiles by linear interpolation (the same as R type 7 and numpy's default).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos - pos.floor());
    if i + 1 < sorted.len() { sorted[i] + frac * (sorted[i + 1] - sorted[i]) } else { sorted[i] }
}

fn boxes<DB: DrawingBackend>(c: &Canvas<DB>, unit: &str, groups: &[BoxGroup]) -> Result<()> {
    let frame = (80, 60, 860, 380);
    let (l, t, r, b) = frame;
    let (lo, hi) = value_range(groups.iter().flat_map(|g| g.values.iter().copied()), unit);
    axes(c, unit, lo, hi, frame)?;
    let y = |v: f64| b - ((v - lo) / (hi - lo) * (b - t) as f64) as i32;
    let slot = (r - l) / groups.len().max(1) as i32;
    for (k, g) in groups.iter().enumerate() {
        let cx = l + slot * k as i32 + slot / 2;
        c.text(&format!("{} (n={})", g.label, g.values.len()), cx, b + 16, LABEL - 1, INK, Align::Centre)?;
        if g.values.is_empty() {
            continue;
        }
        let mut v = g.values.clone();
        v.sort_by(f64::total_cmp);
        let (q1, med, q3) = (quantile(&v, 0.25), quantile(&v, 0.5), quantile(&v, 0.75));
        let iqr = q3 - q1;
        let lo_w = v.iter().copied().find(|x| *x >= q1 - 1.5 * iqr).unwrap_or(v[0]);
        let hi_w = v.iter().rev().copied().find(|x| *x <= q3 + 1.5 * iqr).unwrap_or(v[v.len() - 1]);
        let half = (slot / 4).min(50);
        let colour = LINES[k % LINES.len()];
        c.line(&[(cx, y(lo_w)), (cx, y(q1))], INK, 1)?;
        c.line(&[(cx, y(q3)), (cx, y(hi_w))], INK, 1)?;
        c.line(&[(cx - half / 2, y(lo_w)), (cx + half / 2, y(lo_w))], INK, 1)?;
        c.line(&[(cx - half / 2, y(hi_w)), (cx + half / 2, y(hi_w))], INK, 1)?;
        c.rect(cx - half, y(q3), cx + half, y(q1), colour, true)?;
        c.line(&[(cx - half, y(med)), (cx + half, y(med))], WHITE, 2)?;
        // A province's members give thousands of outliers on a few heights: each drawn once.
        let outliers: std::collections::BTreeSet<i32> =
            v.iter().filter(|x| **x < lo_w || **x > hi_w).map(|o| y(*o)).collect();
        for oy in outliers {
            c.dot(cx, oy, 2, GREY)?;
        }
    }
    Ok(())
}

fn grades<DB: DrawingBackend>(c: &Canvas<DB>, bars: &[GradeBar], quota: Option<u32>) -> Result<()> {
    let frame = (70, 60, 660, 320);
    let (l, t, r, b) = frame;
    let max = bars.iter().map(|g| g.count).chain(quota).max().unwrap_or(1).max(1) as f64 * 1.15;
    axes(c, "count", 0.0, max, frame)?;
    let y = |v: f64| b - (v / max * (b - t) as f64) as i32;
    let slot = (r - l) / bars.len().max(1) as i32;
    for (k, g) in bars.iter().enumerate() {
        let x0 = l + slot * k as i32 + slot / 5;
        let x1 = x0 + slot * 3 / 5;
        c.rect(x0, y(g.count as f64), x1, b, PARTY_RED, true)?;
        c.text(&g.count.to_string(), (x0 + x1) / 2, y(g.count as f64) - 10, LABEL, INK, Align::Centre)?;
        c.text(&g.label, (x0 + x1) / 2, b + 18, LABEL, INK, Align::Centre)?;
    }
    if let Some(q) = quota {
        let x1 = l + slot;
        c.dashed(l, y(q as f64), x1, y(q as f64), RED)?;
        c.text(&format!("五星限额 {q}"), x1 + 4, y(q as f64), LABEL - 1, RED, Align::Left)?;
    }
    Ok(())
}

fn diagnosis<DB: DrawingBackend>(c: &Canvas<DB>, card: &Card) -> Result<()> {
    let mut y = 56;
    for (line, colour) in card.reasons.iter().map(|r| (r, RED)).chain(card.notes.iter().map(|n| (n, INK))) {
        c.text(&fit(&format!("· {line}"), LABEL, 840), 30, y, LABEL, colour, Align::Left)?;
        y += 18;
    }
    y += 10;
    for Panel { name, unit, mine, median } in &card.panels {
        let frame = (110, y + 20, 640, y + 120);
        let (l, _, r, b) = frame;
        c.text(name, 20, y + 8, LABEL, INK, Align::Left)?;
        let (lo, hi) = value_range(mine.iter().chain(median.iter()).flatten().copied(), unit);
        axes(c, unit, lo, hi, frame)?;
        let n = card.x_labels.len().max(2);
        let x = |i: usize| l + ((r - l) as f64 * i as f64 / (n - 1) as f64) as i32;
        let yy = |v: f64| b - ((v - lo) / (hi - lo) * 100.0) as i32;
        for (i, lab) in card.x_labels.iter().enumerate() {
            c.text(lab, x(i), b + 12, LABEL - 3, MUTED, Align::Centre)?;
        }
        for (vals, colour, label, dy) in [(median, GREY, "类别中位数", 0), (mine, PARTY_RED, "本单位", 18)] {
            let pts: Vec<(i32, i32)> = vals.iter().enumerate().filter_map(|(i, v)| v.map(|v| (x(i), yy(v)))).collect();
            if pts.len() > 1 {
                c.line(&pts, colour, 2)?;
            }
            for p in &pts {
                c.dot(p.0, p.1, 3, colour)?;
            }
            c.rect(680, y + 40 + dy - 4, 692, y + 40 + dy + 4, colour, true)?;
            c.text(label, 698, y + 40 + dy, LABEL - 1, INK, Align::Left)?;
        }
        y += 150;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quartiles_match_numpy() {
        // numpy.percentile([1, 2, 3, 4, 10], [25, 50, 75]) = [2, 3, 4]
        let v = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert_eq!((quantile(&v, 0.25), quantile(&v, 0.5), quantile(&v, 0.75)), (2.0, 3.0, 4.0));
        // numpy.percentile([1, 2, 3, 4], 25) = 1.75
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.25), 1.75);
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(ticks(0.0, 1.0), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(ticks(0.0, 100.0), vec![0.0, 25.0, 50.0, 75.0, 100.0]);
    }
}
