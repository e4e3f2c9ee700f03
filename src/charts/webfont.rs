//! The embedded font, cut to the characters a page uses, as CSS a browser loads from the page
//! itself.
//!
//! A report opened on a machine without Chinese fonts (a fresh server, a container) showed every
//! hanzi as an empty box: HTML and SVG text is drawn by the reader's fonts, and the stack named
//! only fonts that Chinese office machines have. So each page carries the glyphs it needs: the
//! characters of the page are looked up in the font's cmap, the font is subset to those glyphs
//! (allsorts keeps a Unicode cmap, which browsers require) and written as a TrueType data URI in
//! an `@font-face` rule whose family is first in every font stack. A quarterly report of the
//! sample uses about 430 distinct characters, which is about 90 KB of font (120 KB as base64);
//! the whole font is 5 MB.

use std::collections::BTreeSet;

use allsorts::binary::read::ReadScope;
use allsorts::font_data::FontData;
use allsorts::subset::{CmapTarget, SubsetProfile, subset};
use allsorts::tables::FontTableProvider;
use allsorts::tables::cmap::Cmap;
use anyhow::{Context, Result, anyhow};
use base64::Engine;

use super::FONT;

/// The family name of the embedded face, first in every font stack of the report and charts.
pub const FAMILY: &str = "dangjian-wqy";

/// The `@font-face` rule for the characters of `text` (any text: markup is fine, its ASCII is
/// wanted anyway). Digits, Latin letters and common punctuation are always included, so numbers
/// a script or a reader's zoom might show are never boxes.
pub fn font_face(text: &str) -> Result<String> {
    let ttf = subset_for(text)?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(ttf);
    Ok(format!(
        "@font-face {{ font-family: \"{FAMILY}\"; src: url(data:font/ttf;base64,{b64}) format(\"truetype\"); font-display: block; }}"
    ))
}

/// A TrueType font holding the glyphs of every character of `text` the embedded font has.
pub fn subset_for(text: &str) -> Result<Vec<u8>> {
    let chars: BTreeSet<char> = text.chars().chain(' '..='~').filter(|c| !c.is_control()).collect();
    let data = ReadScope::new(FONT).read::<FontData<'_>>().map_err(|e| anyhow!("reading the embedded font: {e}"))?;
    let provider = data.table_provider(0).map_err(|e| anyhow!("reading the embedded font: {e}"))?;
    let cmap_data =
        provider.read_table_data(allsorts::tag::CMAP).map_err(|e| anyhow!("the embedded font's cmap: {e}"))?;
    let cmap = ReadScope::new(&cmap_data).read::<Cmap<'_>>().map_err(|e| anyhow!("the embedded font's cmap: {e}"))?;
    let (_, table) = allsorts::font::read_cmap_subtable(&cmap)
        .map_err(|e| anyhow!("the embedded font's cmap: {e}"))?
        .context("the embedded font has no Unicode cmap")?;
    // Glyph 0 (.notdef) comes first: a subset font must keep it.
    let mut glyphs = vec![0u16];
    for c in chars {
        if let Some(g) = table.map_glyph(u32::from(c)).map_err(|e| anyhow!("the embedded font's cmap: {e}"))? {
            glyphs.push(g);
        }
    }
    glyphs.sort_unstable();
    glyphs.dedup();
    subset(&provider, &glyphs, &SubsetProfile::Minimal, CmapTarget::Unicode)
        .map_err(|e| anyhow!("subsetting the embedded font: {e}"))
}

/// An SVG that carries its own font: the `@font-face` of its characters in a `<style>` right
/// after the root element, so the file reads right opened alone, on any machine.
pub fn embed_in_svg(svg: &str) -> Result<String> {
    let open_end = svg.find('>').context("an SVG has a root element")? + 1;
    let face = font_face(svg)?;
    Ok(format!("{}\n<defs><style>{face}</style></defs>{}", &svg[..open_end], &svg[open_end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glyph_of(ttf: &[u8], c: char) -> u16 {
        use ab_glyph::Font;
        ab_glyph::FontRef::try_from_slice(ttf).unwrap().glyph_id(c).0
    }

    #[test]
    fn the_subset_maps_every_character_it_was_cut_for_and_little_else() {
        let text = "基层党建季度会诊报告（2026Q1）：出勤率 87.5%";
        let ttf = subset_for(text).unwrap();
        for c in text.chars() {
            assert_ne!(glyph_of(&ttf, c), 0, "{c} is in the subset's cmap");
        }
        assert_eq!(glyph_of(&ttf, '龙'), 0, "a character not asked for is not there");
        assert!(ttf.len() < 60_000, "a few dozen glyphs, not the 5 MB font: {} bytes", ttf.len());
        assert_eq!(ttf, subset_for(text).unwrap(), "the same text gives the same bytes");
    }

    #[test]
    fn an_svg_gets_its_face_after_the_root_element() {
        let svg =
            "<svg width=\"10\" height=\"10\" xmlns=\"http://www.w3.org/2000/svg\">\n<text>党支部</text>\n</svg>\n";
        let out = embed_in_svg(svg).unwrap();
        assert!(out.starts_with(
            "<svg width=\"10\" height=\"10\" xmlns=\"http://www.w3.org/2000/svg\">\n<defs><style>@font-face"
        ));
        assert!(out.ends_with("<text>党支部</text>\n</svg>\n"));
        assert!(out.contains(FAMILY));
    }
}
