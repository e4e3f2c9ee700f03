//! Charts with Chinese labels, as PNG (for slides) and SVG (for print), from prepared data.
//!
//! Text is drawn with an embedded font (WenQuanYi Micro Hei, Apache-2.0, in `assets/fonts/` with
//! its licence), through plotters' font-bytes backend, so PNGs are right on a machine with no
//! CJK font at all. In SVG the text stays text: its `font-family` stack starts with the embedded
//! face, which each SVG file carries, cut to its own characters (`webfont`); inline in the
//! report, the page's face serves them all. Each chart is a `Chart` value (data already prepared); drawing is pure
//! and deterministic, and the many charts of a pack render in parallel with rayon.
//!
//! This module never reads the warehouse and never prints.

mod canvas;
mod kinds;
pub mod webfont;

pub use kinds::{
    AgendaLine, BoxGroup, Card, Chart, FunnelLimits, FunnelPoint, GradeBar, HeatRow, Panel, RankBar, Series,
};

use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{Result, anyhow};
use plotters::prelude::*;
use rayon::prelude::*;

/// The embedded font: WenQuanYi Micro Hei covers every GBK hanzi, Latin and digits.
static FONT: &[u8] = include_bytes!("../../assets/fonts/wqy-microhei.ttc");

/// The family name charts use. The bitmap backend finds the embedded font under this name;
/// SVG writes it as the `font-family`: the embedded face first (`webfont::FAMILY`), then the
/// fonts Chinese office machines have, for an SVG copied without its style.
pub const FONT_FAMILY: &str =
    "dangjian-wqy, WenQuanYi Micro Hei, Microsoft YaHei, SimHei, PingFang SC, Noto Sans CJK SC, sans-serif";

static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("the embedded font is valid"));
    });
}

/// A rendered chart's files.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub id: String,
    pub title: String,
    pub png: PathBuf,
    pub svg: PathBuf,
}

/// Render one chart to SVG text.
pub fn to_svg(chart: &Chart) -> Result<String> {
    register_font();
    let (w, h) = chart.size();
    let mut out = String::new();
    {
        let area = SVGBackend::with_string(&mut out, (w, h)).into_drawing_area();
        chart.draw(&area)?;
        area.present().map_err(|e| anyhow!("drawing {}: {e:?}", chart.id()))?;
    }
    Ok(out)
}

/// A meeting slide's size: 16:9 at 1080p.
pub const SLIDE: (u32, u32) = (1920, 1080);

/// How much larger a chart draws on a slide: as large as fits.
pub fn slide_scale(chart: &Chart) -> f64 {
    let (w, h) = chart.size();
    (f64::from(SLIDE.0) / f64::from(w)).min(f64::from(SLIDE.1) / f64::from(h))
}

/// Render one chart as a 1920×1080 PNG slide, as large as it fits, centred: every size grows
/// with it, so a chart that fits twice over has its 10-pixel tick text at 20 pixels.
pub fn to_slide_png(chart: &Chart, path: &Path) -> Result<()> {
    register_font();
    let (w, h) = chart.size();
    let k = slide_scale(chart);
    let offset = (
        ((f64::from(SLIDE.0) - f64::from(w) * k) / 2.0) as i32,
        ((f64::from(SLIDE.1) - f64::from(h) * k) / 2.0) as i32,
    );
    let area = BitMapBackend::new(path, SLIDE).into_drawing_area();
    chart.draw_scaled(&area, k, offset)?;
    area.present().map_err(|e| anyhow!("writing {}: {e:?}", path.display()))?;
    Ok(())
}

/// Render one chart to a PNG file.
pub fn to_png(chart: &Chart, path: &Path) -> Result<()> {
    register_font();
    let (w, h) = chart.size();
    let area = BitMapBackend::new(path, (w, h)).into_drawing_area();
    chart.draw(&area)?;
    area.present().map_err(|e| anyhow!("writing {}: {e:?}", path.display()))?;
    Ok(())
}

/// Render every chart into `dest` as `<id>.png` and `<id>.svg`: the `chart` verb and the
/// pipeline's chart stage both write through here.
///
/// The charts are drawn in a hidden folder beside `dest` (`out/.charts.tmp` for `out/charts`)
/// and moved in only once all are drawn, so a failure leaves the charts that were there, and a
/// reader never sees half a file. Other files in `dest` are left alone: it may be a folder of
/// the user's.
pub fn write_all(charts: &[Chart], dest: &Path) -> Result<Vec<Rendered>> {
    let mut drawn = Vec::new();
    let moved = crate::output::stage_then_move(dest, |staging| {
        drawn = render_all(charts, staging)?;
        Ok(drawn.iter().flat_map(|r| [r.png.clone(), r.svg.clone()]).collect())
    })?;
    Ok(drawn
        .into_iter()
        .zip(moved.chunks(2))
        .map(|(r, files)| Rendered { png: files[0].clone(), svg: files[1].clone(), ..r })
        .collect())
}

/// Render every chart to `out/<id>.png` and `out/<id>.svg`, in parallel.
fn render_all(charts: &[Chart], out: &Path) -> Result<Vec<Rendered>> {
    std::fs::create_dir_all(out)?;
    charts
        .par_iter()
        .map(|c| {
            let png = out.join(format!("{}.png", c.id()));
            let svg = out.join(format!("{}.svg", c.id()));
            to_png(c, &png)?;
            std::fs::write(&svg, webfont::embed_in_svg(&to_svg(c)?)?)?;
            Ok(Rendered { id: c.id().to_string(), title: c.title().to_string(), png, svg })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;

    #[test]
    fn charts_are_moved_in_whole_and_other_files_stay() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("out");
        std::fs::create_dir_all(&dest).unwrap();
        std::fs::write(dest.join("notes.txt"), "the user's").unwrap();
        std::fs::write(dest.join("rank-test.png"), "an old chart").unwrap();
        let written = write_all(&[bars()], &dest).unwrap();
        assert_eq!(written[0].png, dest.join("rank-test.png"));
        assert_ne!(std::fs::read(dest.join("rank-test.png")).unwrap(), b"an old chart");
        assert_eq!(std::fs::read_to_string(dest.join("notes.txt")).unwrap(), "the user's");
        let mut names: Vec<String> =
            std::fs::read_dir(&dest).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        assert_eq!(names, ["notes.txt", "rank-test.png", "rank-test.svg"]);
        assert!(!d.path().join(".out.tmp").exists(), "no staging folder is left");
    }

    fn bars() -> Chart {
        Chart::Ranking {
            id: "rank-test".into(),
            title: "出勤率 · 支部 · 街道社区".into(),
            unit: "percent".into(),
            bars: vec![
                RankBar {
                    label: "幸福社区第一党支部".into(),
                    value: 0.91,
                    status: Some(Status::Green),
                    place: 1,
                    interval: Some((0.85, 0.95)),
                    n: Some(120.0),
                },
                RankBar {
                    label: "和谐社区党支部".into(),
                    value: 0.62,
                    status: Some(Status::Red),
                    place: 2,
                    interval: None,
                    n: None,
                },
            ],
            thresholds: vec![(0.85, Status::Green), (0.7, Status::Amber)],
            higher_is_better: true,
        }
    }

    #[test]
    fn chinese_labels_draw_glyphs_in_the_png() {
        let d = tempfile::tempdir().unwrap();
        // A chart with only a Chinese title and nothing else: the pixels that are not white
        // must come from the glyphs.
        let title_only = Chart::Ranking {
            id: "t".into(),
            title: "党建".into(),
            unit: "percent".into(),
            bars: vec![],
            thresholds: vec![],
            higher_is_better: true,
        };
        let p = d.path().join("t.png");
        to_png(&title_only, &p).unwrap();
        let img = image::open(&p).unwrap().to_rgb8();
        let dark = img.pixels().filter(|px| px.0.iter().all(|c| *c < 128)).count();
        assert!(dark > 40, "the title 党建 should leave dark pixels, found {dark}");
        // And the same title with a font that lacks CJK would not: check glyph coverage.
        let font = ab_glyph::FontRef::try_from_slice(FONT).unwrap();
        use ab_glyph::Font;
        for ch in "党建出勤率支部街道社区非公".chars() {
            assert_ne!(font.glyph_id(ch).0, 0, "{ch} has a glyph");
        }
    }

    /// The rows of `img` holding ink (a pixel darker than mid-grey) between columns x0 and x1.
    fn inked_rows(img: &image::RgbImage, x0: u32, x1: u32) -> Vec<u32> {
        (0..img.height()).filter(|&y| (x0..x1).any(|x| img.get_pixel(x, y).0.iter().all(|&v| v < 128))).collect()
    }

    #[test]
    fn a_slide_is_1080p_with_text_at_projector_size() {
        let agenda = Chart::Agenda {
            id: "agenda".into(),
            title: "会诊议程".into(),
            lines: vec![AgendaLine {
                unit: "幸福社区".into(), text: "党支部组织生活".into(), severe: false
            }],
        };
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("agenda.png");
        to_slide_png(&agenda, &path).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), SLIDE);
        // The first line is drawn at y = 70 of a 960×540 chart, 13-px text: twice that on the
        // slide. Measure the ink of the unit's name (x 24..230 → 48..460): a CJK glyph's ink is
        // about 0.9 of its size, so 13 px would be 12 rows and 26 px about 23.
        let rows = inked_rows(&img, 48, 460);
        let band: Vec<u32> = rows.iter().copied().filter(|&y| (110..170).contains(&y)).collect();
        let height = band.last().unwrap() - band.first().unwrap() + 1;
        assert!(height >= 20, "the label's glyphs are {height} pixels high");
        // The unscaled chart draws the same label at 13 px.
        let small = d.path().join("small.png");
        to_png(&agenda, &small).unwrap();
        let img = image::open(&small).unwrap().to_rgb8();
        let band: Vec<u32> = inked_rows(&img, 24, 230).into_iter().filter(|&y| (55..85).contains(&y)).collect();
        assert!(band.last().unwrap() - band.first().unwrap() + 1 < 14);
        assert!(slide_scale(&agenda) >= 2.0);
    }

    #[test]
    fn a_dot_is_drawn_once_where_many_fall() {
        let funnel = |copies: usize| Chart::Funnel {
            id: "funnel".into(),
            title: "出勤率".into(),
            unit: "ratio".into(),
            centre: 0.8,
            outer_level: 0.998,
            limits: [10.0, 100.0, 1000.0].map(|n| FunnelLimits { n, inner: (0.7, 0.9), outer: (0.6, 0.95) }).to_vec(),
            points: (0..copies)
                .flat_map(|_| {
                    [(20.0, 0.8), (200.0, 0.85), (500.0, 0.75)].map(|(n, rate)| FunnelPoint {
                        label: String::new(),
                        n,
                        rate,
                        outside: false,
                    })
                })
                .chain([FunnelPoint { label: "一支部".into(), n: 50.0, rate: 0.3, outside: true }])
                .collect(),
        };
        let d = tempfile::tempdir().unwrap();
        let (one, many) = (
            render_all(&[funnel(1)], &d.path().join("one")).unwrap(),
            render_all(&[funnel(500)], &d.path().join("many")).unwrap(),
        );
        let (a, b) = (std::fs::read_to_string(&one[0].svg).unwrap(), std::fs::read_to_string(&many[0].svg).unwrap());
        assert_eq!(a.matches("<circle").count(), b.matches("<circle").count(), "1,500 dots on three places");
        assert_eq!(image::open(&one[0].png).unwrap().to_rgb8(), image::open(&many[0].png).unwrap().to_rgb8());
        // A box plot's outliers likewise: a member's points are whole numbers, so a province's
        // thousands of outliers sit on a few heights.
        let boxes = |copies: usize| Chart::Boxes {
            id: "points".into(),
            title: "党员积分".into(),
            unit: "points".into(),
            groups: vec![BoxGroup {
                label: "农村".into(),
                values: (0..100).map(f64::from).chain((0..copies).flat_map(|_| [400.0, 450.0])).collect(),
            }],
        };
        let (one, many) = (
            render_all(&[boxes(1)], &d.path().join("b1")).unwrap(),
            render_all(&[boxes(5)], &d.path().join("b5")).unwrap(),
        );
        let (a, b) = (std::fs::read_to_string(&one[0].svg).unwrap(), std::fs::read_to_string(&many[0].svg).unwrap());
        assert_eq!((a.matches("<circle").count(), b.matches("<circle").count()), (2, 2));
    }

    #[test]
    fn same_data_same_bytes_and_svg_names_the_font_stack() {
        let d = tempfile::tempdir().unwrap();
        let a = render_all(&[bars()], &d.path().join("a")).unwrap();
        let b = render_all(&[bars()], &d.path().join("b")).unwrap();
        assert_eq!(std::fs::read(&a[0].png).unwrap(), std::fs::read(&b[0].png).unwrap());
        let svg = std::fs::read_to_string(&a[0].svg).unwrap();
        assert_eq!(svg, std::fs::read_to_string(&b[0].svg).unwrap());
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(svg.contains("Microsoft YaHei"), "SVG names a font stack");
        assert!(svg.contains("font-family=\"dangjian-wqy,"), "the embedded face first");
        assert!(
            svg.contains("@font-face { font-family: \"dangjian-wqy\"; src: url(data:font/ttf;base64,"),
            "the file carries it"
        );
        assert!(svg.contains("幸福社区第一党支部"), "labels are text in SVG");
        assert!(std::fs::read(&a[0].png).unwrap().starts_with(b"\x89PNG"));
    }
}
