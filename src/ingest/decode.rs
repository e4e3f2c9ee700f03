//! Turning an export's bytes into text: BOM, strict UTF-8, else GB18030 (a superset of GBK).
//!
//! Decoding is never lossy. A line whose bytes are invalid in the chosen encoding is blanked and
//! reported by line number, so the caller quarantines it as a row; the line numbers of the
//! other rows do not move. A file where most lines are invalid is a file-level error instead,
//! since that means the wrong encoding was chosen, not a few damaged rows.

use std::borrow::Cow;

use encoding_rs::GB18030;

/// The encoding a file was read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Encoding {
    #[serde(rename = "utf-8")]
    Utf8,
    #[serde(rename = "utf-8-bom")]
    Utf8Bom,
    #[serde(rename = "gb18030")]
    Gb18030,
    /// Excel's "Unicode text" (Unicode 文本) export.
    #[serde(rename = "utf-16le")]
    Utf16Le,
    #[serde(rename = "utf-16be")]
    Utf16Be,
}

impl Encoding {
    pub fn name(&self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Utf8Bom => "utf-8-bom",
            Encoding::Gb18030 => "gb18030",
            Encoding::Utf16Le => "utf-16le",
            Encoding::Utf16Be => "utf-16be",
        }
    }
}

/// What the user asked for with `--encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncodingChoice {
    #[default]
    Auto,
    Utf8,
    Gb18030,
}

/// A line that could not be decoded: 1-based line number and a hex excerpt of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    pub line: u64,
    pub excerpt: String,
}

/// Decoded text with the lines that could not be decoded. Valid UTF-8 is borrowed from the
/// input, not copied.
#[derive(Debug)]
pub struct Decoded<'a> {
    pub text: Cow<'a, str>,
    pub encoding: Encoding,
    pub bad_lines: Vec<BadLine>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error(
        "{bad} of {total} lines are not valid {encoding} (first at line {first}); \
         the file is probably in another encoding: try --encoding {hint}"
    )]
    WrongEncoding { encoding: &'static str, bad: usize, total: usize, first: u64, hint: &'static str },
    #[error(
        "the file is UTF-16 (Excel's Unicode text) but has damaged characters; in Excel, save it again as CSV UTF-8 (逗号分隔)"
    )]
    Utf16,
}

pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Decode `bytes` as the user chose, detecting the encoding when the choice is `Auto`.
pub fn decode(bytes: &[u8], choice: EncodingChoice) -> Result<Decoded<'_>, DecodeError> {
    if is_utf16(bytes) {
        // Excel's Unicode text: a byte order mark, then the whole text (no line is judged apart:
        // a broken pair of bytes shifts everything after it).
        let encoding = if bytes.starts_with(b"\xFF\xFE") { Encoding::Utf16Le } else { Encoding::Utf16Be };
        let text = decode_all(&bytes[2..], encoding).ok_or(DecodeError::Utf16)?;
        return Ok(Decoded { text: Cow::Owned(text.into_owned()), encoding, bad_lines: Vec::new() });
    }
    let (body, bom) = match bytes.strip_prefix(UTF8_BOM) {
        Some(rest) => (rest, true),
        None => (bytes, false),
    };
    let encoding = match choice {
        EncodingChoice::Utf8 if bom => Encoding::Utf8Bom,
        EncodingChoice::Utf8 => Encoding::Utf8,
        EncodingChoice::Gb18030 => Encoding::Gb18030,
        EncodingChoice::Auto if bom => Encoding::Utf8Bom,
        // Valid UTF-8 is almost never valid-looking GBK by accident, and ASCII is both.
        EncodingChoice::Auto => match simdutf8::basic::from_utf8(body) {
            Ok(text) => {
                return Ok(Decoded { text: Cow::Borrowed(text), encoding: Encoding::Utf8, bad_lines: Vec::new() });
            }
            Err(_) if mostly_utf8(body) => Encoding::Utf8,
            Err(_) => Encoding::Gb18030,
        },
    };
    // Fast path: the whole body decodes.
    if let Some(text) = decode_all(body, encoding) {
        return Ok(Decoded { text, encoding, bad_lines: Vec::new() });
    }
    decode_by_line(body, encoding)
}

/// Whether the bytes start with a UTF-16 byte order mark.
pub fn is_utf16(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF")
}

/// A UTF-8 file with a few damaged lines must not be read as GB18030 (which would turn every
/// Chinese character into wrong but valid characters): it is UTF-8 when most of its non-ASCII
/// lines are valid UTF-8.
fn mostly_utf8(body: &[u8]) -> bool {
    let mut lines = NonAsciiLines::default();
    lines.add(body);
    lines.mostly_utf8()
}

/// The evidence [`decode`] weighs between damaged UTF-8 and GB18030, gathered a piece of a
/// file at a time (pieces cut at line feeds): its non-ASCII lines, and those that are not UTF-8.
#[derive(Debug, Default)]
pub struct NonAsciiLines {
    lines: usize,
    not_utf8: usize,
}

impl NonAsciiLines {
    /// The lines of `bytes` (cut at line feeds) that hold a non-ASCII byte, and of those the ones
    /// that are not UTF-8. It jumps from one non-ASCII byte to the next and checks a line from
    /// there to its end (what comes before is ASCII): a GB18030 export whose every row has a
    /// name spent a tenth of its ingest here when each line was cut and checked whole.
    pub fn add(&mut self, bytes: &[u8]) {
        let mut at = 0;
        while let Some(first) = first_non_ascii(&bytes[at..]) {
            let first = at + first;
            let end = memchr::memchr(b'\n', &bytes[first..]).map_or(bytes.len(), |i| first + i);
            self.lines += 1;
            self.not_utf8 += simdutf8::basic::from_utf8(&bytes[first..end]).is_err() as usize;
            at = (end + 1).min(bytes.len());
        }
    }

    /// Most of them are UTF-8.
    pub fn mostly_utf8(&self) -> bool {
        self.not_utf8 * 2 < self.lines
    }
}

/// Where the first byte of 0x80 or above is, a word at a time.
fn first_non_ascii(bytes: &[u8]) -> Option<usize> {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let words = bytes.chunks_exact(8);
    let tail = words.remainder();
    for (i, word) in words.enumerate() {
        if u64::from_le_bytes(word.try_into().expect("8 bytes")) & HIGH != 0 {
            return word.iter().position(|b| !b.is_ascii()).map(|p| i * 8 + p);
        }
    }
    tail.iter().position(|b| !b.is_ascii()).map(|p| bytes.len() - tail.len() + p)
}

/// The whole text in `encoding`, or `None` if any byte does not decode.
pub fn decode_all(body: &[u8], encoding: Encoding) -> Option<Cow<'_, str>> {
    match encoding {
        Encoding::Utf8 | Encoding::Utf8Bom => simdutf8::basic::from_utf8(body).ok().map(Cow::Borrowed),
        Encoding::Gb18030 => GB18030.decode_without_bom_handling_and_without_replacement(body),
        Encoding::Utf16Le => encoding_rs::UTF_16LE.decode_without_bom_handling_and_without_replacement(body),
        Encoding::Utf16Be => encoding_rs::UTF_16BE.decode_without_bom_handling_and_without_replacement(body),
    }
}

/// Decode line by line, blanking the lines that do not decode. In UTF-8 and in GB18030 the byte
/// 0x0A only ever means a newline (no multi-byte sequence contains it), so splitting on it first
/// is safe.
fn decode_by_line(body: &[u8], encoding: Encoding) -> Result<Decoded<'static>, DecodeError> {
    let mut text = String::with_capacity(body.len() + body.len() / 2);
    let mut bad_lines = Vec::new();
    let mut total = 0usize;
    for (i, line) in body.split(|b| *b == b'\n').enumerate() {
        if i > 0 {
            text.push('\n');
        }
        if !line.is_empty() {
            total += 1;
        }
        match decode_all(line, encoding) {
            Some(s) => text.push_str(&s),
            None => bad_lines.push(BadLine { line: i as u64 + 1, excerpt: hex_excerpt(line) }),
        }
    }
    // More than half the lines broken (or the header) means a wrong encoding, not bad rows.
    let header_bad = bad_lines.first().is_some_and(|b| b.line == 1);
    if header_bad || bad_lines.len() * 2 > total {
        let hint = match encoding {
            Encoding::Gb18030 => "utf-8",
            _ => "gb18030",
        };
        return Err(DecodeError::WrongEncoding {
            encoding: encoding.name(),
            bad: bad_lines.len(),
            total,
            first: bad_lines[0].line,
            hint,
        });
    }
    Ok(Decoded { text: Cow::Owned(text), encoding, bad_lines })
}

fn hex_excerpt(line: &[u8]) -> String {
    let shown: Vec<String> = line.iter().take(24).map(|b| format!("{b:02X}")).collect();
    let more = if line.len() > 24 { " …" } else { "" };
    format!("bytes {}{more}", shown.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gbk(s: &str) -> Vec<u8> {
        GB18030.encode(s).0.into_owned()
    }

    #[test]
    fn detects_bom_utf8_and_gb18030() {
        let d = decode(b"\xEF\xBB\xBFa,b\n1,2\n", EncodingChoice::Auto).unwrap();
        assert_eq!((d.encoding, d.text.as_ref()), (Encoding::Utf8Bom, "a,b\n1,2\n"));
        // Valid UTF-8 is borrowed, not copied.
        assert!(matches!(d.text, Cow::Borrowed(_)));
        let d = decode("组织编码\n".as_bytes(), EncodingChoice::Auto).unwrap();
        assert_eq!(d.encoding, Encoding::Utf8);
        let bytes = gbk("组织编码,组织名称\nA,党支部\n");
        let d = decode(&bytes, EncodingChoice::Auto).unwrap();
        assert_eq!(d.encoding, Encoding::Gb18030);
        assert_eq!(d.text, "组织编码,组织名称\nA,党支部\n");
    }

    #[test]
    fn a_bad_line_is_blanked_and_reported_not_replaced() {
        let mut bytes = gbk("编号,名称\n1,第一\n");
        bytes.extend_from_slice(b"2,\x81\n"); // a lone lead byte: invalid GB18030
        bytes.extend_from_slice(&gbk("3,第三\n"));
        let d = decode(&bytes, EncodingChoice::Gb18030).unwrap();
        assert_eq!(d.bad_lines.len(), 1);
        assert_eq!(d.bad_lines[0].line, 3);
        assert_eq!(d.text, "编号,名称\n1,第一\n\n3,第三\n");
        assert!(!d.text.contains('\u{FFFD}'));
    }

    #[test]
    fn a_damaged_utf8_file_stays_utf8() {
        let mut bytes = "编号,名称\n1,第一\n2,第二\n".as_bytes().to_vec();
        bytes.extend_from_slice(b"3,\xE7\xAC\n");
        let d = decode(&bytes, EncodingChoice::Auto).unwrap();
        assert_eq!(d.encoding, Encoding::Utf8);
        assert_eq!(d.bad_lines.iter().map(|b| b.line).collect::<Vec<_>>(), vec![4]);
    }

    #[test]
    fn gbk_declared_utf8_is_a_file_error() {
        let err = decode(&gbk("编号,名称\n1,第一\n2,第二\n"), EncodingChoice::Utf8).unwrap_err();
        assert!(matches!(err, DecodeError::WrongEncoding { hint: "gb18030", .. }), "{err}");
    }

    #[test]
    fn utf16_with_a_byte_order_mark_is_read_and_a_broken_one_refused() {
        let le = decode(b"\xFF\xFEa\0,\0\x16\x7f\n\0", EncodingChoice::Auto).unwrap();
        assert_eq!((le.text.as_ref(), le.encoding), ("a,编\n", Encoding::Utf16Le));
        let be = decode(b"\xFE\xFF\0a\0b", EncodingChoice::Auto).unwrap();
        assert_eq!((be.text.as_ref(), be.encoding), ("ab", Encoding::Utf16Be));
        // A lone surrogate: refused whole, with what to do.
        let err = decode(b"\xFF\xFEa\0\x00\xD8b\0", EncodingChoice::Auto).unwrap_err();
        assert_eq!(err, DecodeError::Utf16);
        assert!(err.to_string().contains("CSV UTF-8"));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any bytes: no panic, never a replacement character, and every line is either in the
        /// text or reported as bad.
        #[test]
        fn decoding_any_bytes_is_total_and_lossless(bytes in prop::collection::vec(any::<u8>(), 0..400), choice in 0u8..3) {
            let choice = [EncodingChoice::Auto, EncodingChoice::Utf8, EncodingChoice::Gb18030][choice as usize];
            if let Ok(d) = decode(&bytes, choice) {
                const REPLACEMENT: char = '\u{FFFD}';
                let in_input = bytes.windows(3).any(|w| w == [0xEF, 0xBF, 0xBD]);
                prop_assert!(!d.text.contains(REPLACEMENT) || in_input, "a replacement character appeared");
                let body = bytes.strip_prefix(UTF8_BOM).unwrap_or(&bytes);
                let lines = body.split(|b| *b == b'\n').count();
                prop_assert_eq!(d.text.split('\n').count(), lines, "line numbers are kept");
                for b in &d.bad_lines {
                    prop_assert!(d.text.split('\n').nth(b.line as usize - 1) == Some(""), "a bad line is blanked");
                }
            }
        }

        /// The count of non-ASCII lines and of those not UTF-8 is the count line by line, for
        /// any bytes cut into any pieces at line feeds.
        #[test]
        fn non_ascii_lines_are_counted_as_line_by_line(
            lines in prop::collection::vec(prop::collection::vec(prop_oneof![4 => 0x20u8..0x7f, 1 => 0x80u8..=0xff, 1 => Just(0xe7u8), 1 => Just(0xacu8)], 0..40), 0..30),
            cut in 0usize..30,
        ) {
            let bytes = lines.join(&b'\n');
            let naive = |b: &[u8]| {
                let non_ascii: Vec<&[u8]> = b.split(|c| *c == b'\n').filter(|l| !l.is_ascii()).collect();
                (non_ascii.len(), non_ascii.iter().filter(|l| std::str::from_utf8(l).is_err()).count())
            };
            let mut whole = NonAsciiLines::default();
            whole.add(&bytes);
            prop_assert_eq!((whole.lines, whole.not_utf8), naive(&bytes));
            // In two pieces cut after a line feed, as the stream reader adds them.
            let at = bytes.iter().enumerate().filter(|(_, b)| **b == b'\n').nth(cut).map_or(bytes.len(), |(i, _)| i + 1);
            let mut pieces = NonAsciiLines::default();
            pieces.add(&bytes[..at]);
            pieces.add(&bytes[at..]);
            prop_assert_eq!((pieces.lines, pieces.not_utf8), naive(&bytes));
        }

        /// Any header cells: mapping never panics, and a mapped kind has all its required fields.
        #[test]
        fn header_mapping_is_total(cells in prop::collection::vec("[a-z_ 组织编码活动日期-]{0,12}", 0..10)) {
            if let Ok(m) = super::super::schema::map_header(&cells, None) {
                for (f, c) in m.kind.fields().iter().zip(&m.columns) {
                    prop_assert!(!f.required || c.is_some());
                }
            }
        }
    }
}
