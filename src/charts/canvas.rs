//! Drawing in pixels on any plotters backend: rectangles, lines, dots and text with the
//! embedded font. Charts lay themselves out in pixels, which keeps bar labels, long Chinese
//! unit names and threshold lines exactly where they belong in both PNG and SVG.

use crate::model::Status;
use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::FONT_FAMILY;

pub const RED: RGBColor = RGBColor(0xd6, 0x45, 0x41);
pub const AMBER: RGBColor = RGBColor(0xf0, 0xa3, 0x0a);
pub const GREEN: RGBColor = RGBColor(0x2e, 0x9e, 0x5b);
pub const GREY: RGBColor = RGBColor(0xbb, 0xbb, 0xbb);
pub const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);
/// Axis and tick text: lighter than the data's ink, dark enough for a projector.
pub const MUTED: RGBColor = RGBColor(0x55, 0x55, 0x55);
pub const FAINT: RGBColor = RGBColor(0xe6, 0xe6, 0xe6);
pub const PARTY_RED: RGBColor = RGBColor(0xb3, 0x12, 0x1a);

/// A palette for lines, distinct in print.
pub const LINES: [RGBColor; 8] = [
    RGBColor(0xb3, 0x12, 0x1a),
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0x17, 0xbe, 0xcf),
    RGBColor(0x7f, 0x7f, 0x7f),
];

/// A status's colour; grey where there is none.
pub fn status_colour(status: Option<Status>) -> RGBColor {
    match status {
        Some(Status::Red) => RED,
        Some(Status::Amber) => AMBER,
        Some(Status::Green) => GREEN,
        Some(Status::NoData) | None => GREY,
    }
}

/// Horizontal anchor of text.
#[derive(Clone, Copy)]
pub enum Align {
    Left,
    Centre,
    Right,
}

/// A drawing area seen in a chart's own pixels: every coordinate, line width, radius and font
/// size is multiplied by `scale` and moved by `offset`, so a chart laid out for 900 pixels
/// draws unchanged on a 1920×1080 slide, its text as much larger as the rest.
pub struct Canvas<'a, DB: DrawingBackend> {
    pub area: &'a DrawingArea<DB, Shift>,
    pub scale: f64,
    pub offset: (i32, i32),
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing: {e:?}")
}

impl<'a, DB: DrawingBackend> Canvas<'a, DB> {
    /// The area at the chart's own size.
    pub fn new(area: &'a DrawingArea<DB, Shift>) -> Self {
        Canvas { area, scale: 1.0, offset: (0, 0) }
    }

    fn at(&self, (x, y): (i32, i32)) -> (i32, i32) {
        (
            self.offset.0 + (f64::from(x) * self.scale).round() as i32,
            self.offset.1 + (f64::from(y) * self.scale).round() as i32,
        )
    }

    fn size(&self, n: u32) -> u32 {
        ((f64::from(n) * self.scale).round() as u32).max(1)
    }

    pub fn clear(&self) -> Result<()> {
        self.area.fill(&WHITE).map_err(err)
    }

    pub fn rect(&self, x0: i32, y0: i32, x1: i32, y1: i32, colour: RGBColor, filled: bool) -> Result<()> {
        let style = if filled { colour.filled() } else { colour.stroke_width(self.size(1)) };
        self.area.draw(&Rectangle::new([self.at((x0, y0)), self.at((x1, y1))], style)).map_err(err)
    }

    pub fn line(&self, points: &[(i32, i32)], colour: RGBColor, width: u32) -> Result<()> {
        let points: Vec<(i32, i32)> = points.iter().map(|p| self.at(*p)).collect();
        self.area.draw(&PathElement::new(points, colour.stroke_width(self.size(width)))).map_err(err)
    }

    pub fn dashed(&self, x0: i32, y0: i32, x1: i32, y1: i32, colour: RGBColor) -> Result<()> {
        // Dashes of 6 pixels along a vertical or horizontal segment.
        let (dx, dy) = ((x1 - x0).signum(), (y1 - y0).signum());
        let len = (x1 - x0).abs().max((y1 - y0).abs());
        let mut at = 0;
        while at < len {
            let end = (at + 6).min(len);
            self.line(&[(x0 + dx * at, y0 + dy * at), (x0 + dx * end, y0 + dy * end)], colour, 1)?;
            at += 10;
        }
        Ok(())
    }

    pub fn dot(&self, x: i32, y: i32, r: i32, colour: RGBColor) -> Result<()> {
        let r = (f64::from(r) * self.scale).round() as i32;
        self.area.draw(&Circle::new(self.at((x, y)), r, colour.filled())).map_err(err)
    }

    pub fn text(&self, s: &str, x: i32, y: i32, size: u32, colour: RGBColor, align: Align) -> Result<()> {
        let h = match align {
            Align::Left => HPos::Left,
            Align::Centre => HPos::Center,
            Align::Right => HPos::Right,
        };
        let style =
            TextStyle::from((FONT_FAMILY, self.size(size)).into_font()).color(&colour).pos(Pos::new(h, VPos::Center));
        self.area.draw(&Text::new(s.to_string(), self.at((x, y)), style)).map_err(err)
    }

    /// Text turned 90° (for column labels).
    pub fn text_up(&self, s: &str, x: i32, y: i32, size: u32, colour: RGBColor) -> Result<()> {
        let style = TextStyle::from((FONT_FAMILY, self.size(size)).into_font().transform(FontTransform::Rotate270))
            .color(&colour)
            .pos(Pos::new(HPos::Left, VPos::Center));
        self.area.draw(&Text::new(s.to_string(), self.at((x, y)), style)).map_err(err)
    }
}

/// An approximate text width in pixels: CJK characters are square, Latin about half.
pub fn text_width(s: &str, size: u32) -> i32 {
    s.chars().map(|c| if (c as u32) < 0x2E80 { size as i32 * 55 / 100 } else { size as i32 }).sum()
}

/// Shorten a label to `max` pixels, ending with an ellipsis.
pub fn fit(s: &str, size: u32, max: i32) -> String {
    if text_width(s, size) <= max {
        return s.to_string();
    }
    let mut out = String::new();
    for c in s.chars() {
        if text_width(&out, size) + text_width(&c.to_string(), size) + size as i32 > max {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}
