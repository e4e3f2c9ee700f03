//! How a file's header is matched to a record kind (the kinds themselves are `model::kinds`),
//! and how an enumeration cell is read. Does no I/O.

use super::aliases::Aliases;
use crate::model::kinds::{EnumValue, Kind};

/// Normalise a header cell so `Unit ID`, ` unit_id ` and `UNIT-ID` all match `unit_id`, and
/// the way offices dress a header does not matter: a line break or spaces inside a cell wrapped
/// in Excel (`活动\n编号`), full-width spaces and brackets, a required-column star (`*组织编码`),
/// and a trailing unit in brackets (`得分（分）`, `满分(分)`).
pub fn normalise_header(h: &str) -> String {
    let h = h.trim_start_matches('\u{feff}');
    // Line breaks from wrapped cells, then the stars templates mark required columns with.
    let flat: String = h.chars().filter(|c| !matches!(c, '\n' | '\r' | '\t')).collect();
    let flat = flat.trim().trim_matches(['*', '＊', '※']).trim();
    let flat = without_unit(flat);
    let chars: Vec<char> = flat.chars().collect();
    let mut out = String::with_capacity(flat.len());
    for (i, &c) in chars.iter().enumerate() {
        match c {
            // A space between two ASCII words joins them (`Unit ID`); beside a Chinese
            // character it is only layout (`组织 编码`).
            ' ' | '\u{3000}' | '-' => {
                let ascii = |x: Option<&char>| x.is_some_and(|x| x.is_ascii_alphanumeric());
                if c == '-' || (ascii(chars.get(i.wrapping_sub(1))) && ascii(chars.get(i + 1))) {
                    out.push('_');
                }
            }
            c => out.push(c.to_ascii_lowercase()),
        }
    }
    out
}

/// A header without a short trailing part in brackets (a unit: 分, 人, 元, %): `得分（分）`.
fn without_unit(h: &str) -> &str {
    for (open, close) in [('（', '）'), ('(', ')'), ('【', '】'), ('[', ']')] {
        if let Some(inner) = h.strip_suffix(close)
            && let Some(at) = inner.rfind(open)
            && at > 0
            && inner[at + open.len_utf8()..].chars().count() <= 4
        {
            return h[..at].trim_end();
        }
    }
    h
}

/// How a file's header maps onto a kind's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderMap {
    pub kind: Kind,
    /// For each field of the kind (same order as `Kind::fields`), its column index, if present.
    pub columns: Vec<Option<usize>>,
    /// Header cells that match no field: ignored, and reported.
    pub ignored: Vec<String>,
}

/// Why a header could not be mapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("the header is empty")]
    Empty,
    #[error("columns {first} and {second} both mean `{field}`")]
    Duplicate { field: &'static str, first: usize, second: usize },
    #[error("the header does not match any record kind; expected one of:\n{expected}")]
    Unrecognised { expected: String },
    #[error("the header lacks required columns for {kind}: {missing}{unknown}")]
    Missing {
        kind: Kind,
        missing: String,
        /// The header's cells that mean nothing to the kind, said after the missing columns
        /// (often the same column under a local name), or empty.
        unknown: String,
    },
}

fn field_of(kind: Kind, header: &str, aliases: &Aliases) -> Option<&'static str> {
    let n = normalise_header(header);
    kind.fields()
        .iter()
        .find(|f| f.name == n || f.aliases.iter().any(|a| normalise_header(a) == n))
        .map(|f| f.name)
        .or_else(|| aliases.field_for(kind, &n))
}

/// How many of a kind's columns a row must name to be taken for a header that lacks some,
/// rather than for a title.
const NEAR_HEADER: usize = 3;

/// Map a header to `kind`, or to the kind it matches when `kind` is `None`.
pub fn map_header(header: &[String], kind: Option<Kind>) -> Result<HeaderMap, HeaderError> {
    map_header_with(header, kind, &Aliases::default())
}

/// [`map_header`], with a district's extra header names.
pub fn map_header_with(header: &[String], kind: Option<Kind>, aliases: &Aliases) -> Result<HeaderMap, HeaderError> {
    if header.iter().all(|h| h.trim().is_empty()) {
        return Err(HeaderError::Empty);
    }
    let candidates: Vec<Kind> = match kind {
        Some(k) => vec![k],
        None => Kind::ALL.to_vec(),
    };
    let mut best: Option<(usize, HeaderMap)> = None;
    let mut first_error = None;
    // With no kind named, the kind a row nearly is: most of its columns named, one or two
    // missing (a local name for 出勤状态). Said instead of every kind's list, with the line.
    let mut nearest: Option<(usize, HeaderError)> = None;
    for k in candidates {
        match map_header_to(header, k, aliases) {
            Ok(m) => {
                let matched = m.columns.iter().filter(|c| c.is_some()).count();
                if best.as_ref().is_none_or(|(b, _)| matched > *b) {
                    best = Some((matched, m));
                }
            }
            Err(e @ HeaderError::Duplicate { .. }) => first_error = first_error.or(Some(e)),
            Err(e) if kind.is_some() => first_error = Some(e),
            Err(e @ HeaderError::Missing { .. }) => {
                let named = header.iter().filter(|h| field_of(k, h, aliases).is_some()).count();
                if named >= NEAR_HEADER && nearest.as_ref().is_none_or(|(n, _)| named > *n) {
                    nearest = Some((named, e));
                }
            }
            Err(_) => {}
        }
    }
    if let Some((_, m)) = best {
        return Ok(m);
    }
    if let Some(e) = first_error.or(nearest.map(|(_, e)| e)) {
        return Err(e);
    }
    Err(HeaderError::Unrecognised { expected: expected_headers() })
}

fn map_header_to(header: &[String], kind: Kind, aliases: &Aliases) -> Result<HeaderMap, HeaderError> {
    let fields = kind.fields();
    let mut columns = vec![None; fields.len()];
    let mut ignored = Vec::new();
    for (i, h) in header.iter().enumerate() {
        match field_of(kind, h, aliases) {
            Some(name) => {
                let fi = fields.iter().position(|f| f.name == name).expect("field exists");
                if let Some(first) = columns[fi] {
                    return Err(HeaderError::Duplicate { field: name, first: first + 1, second: i + 1 });
                }
                columns[fi] = Some(i);
            }
            None if h.trim().is_empty() => {}
            // The row numbers offices put in front: neither data nor worth reporting.
            None if matches!(normalise_header(h).as_str(), "序号" | "编号" | "no." | "no" | "#") => {}
            None => ignored.push(h.trim().to_string()),
        }
    }
    let missing: Vec<String> = fields
        .iter()
        .zip(&columns)
        .filter(|(f, c)| f.required && c.is_none())
        .map(|(f, _)| format!("{} ({})", f.name, f.aliases[0]))
        .collect();
    if !missing.is_empty() {
        let unknown = if ignored.is_empty() {
            String::new()
        } else {
            format!(" (not recognised: {}; a district's own column names go in the aliases file)", ignored.join(", "))
        };
        return Err(HeaderError::Missing { kind, missing: missing.join(", "), unknown });
    }
    Ok(HeaderMap { kind, columns, ignored })
}

/// One line per kind listing its required and optional columns, for error messages.
pub fn expected_headers() -> String {
    Kind::ALL
        .iter()
        .map(|k| {
            let cols: Vec<String> = k
                .fields()
                .iter()
                .map(|f| {
                    let opt = if f.required { "" } else { "?" };
                    format!("{}{opt} ({})", f.name, f.aliases[0])
                })
                .collect();
            format!("  {}: {}", k, cols.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Map an enumeration value (code, any case, or a Chinese label) to its code.
pub fn parse_enum(values: &'static [EnumValue], s: &str) -> Option<&'static str> {
    crate::model::kinds::code_of(values, super::values::trim(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::kinds::{LEVELS, STATUSES};

    fn h(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn detects_kind_from_english_and_chinese_headers() {
        let en = h(&["event_id", "unit_id", "event_type", "event_date", "member_id", "status"]);
        assert_eq!(map_header(&en, None).unwrap().kind, Kind::Attendance);
        let zh = h(&["流水号", "党员编号", "组织编码", "日期", "积分类别", "积分项目", "分值", "姓名"]);
        let m = map_header(&zh, None).unwrap();
        assert_eq!(m.kind, Kind::Points);
        assert_eq!(m.columns[7], None, "approved is absent");
        assert_eq!(m.columns[8], Some(7));
        let units = h(&["\u{feff}Unit ID", "unit name", "PARENT-ID", "level", "category"]);
        assert_eq!(map_header(&units, None).unwrap().kind, Kind::Units);
    }

    #[test]
    fn headers_dressed_by_offices_still_match() {
        for (dressed, plain) in [
            ("活动\n编号", "活动编号"),
            (" 组织 编码 ", "组织编码"),
            ("*组织编码", "组织编码"),
            ("得分（分）", "得分"),
            ("满分(分)", "满分"),
            ("组织名称（全称）", "组织名称"),
            ("Unit ID", "unit_id"),
            ("党员\r\n编号", "党员编号"),
        ] {
            assert_eq!(normalise_header(dressed), normalise_header(plain), "{dressed:?}");
        }
        let m = map_header(&h(&["序号", "组织编码", "组织名称", "上级组织编码", "层级", "类别"]), None).unwrap();
        assert_eq!((m.kind, m.ignored.len()), (Kind::Units, 0), "序号 is neither a field nor reported");
    }

    #[test]
    fn unrecognised_header_lists_what_was_expected() {
        let err = map_header(&h(&["foo", "bar"]), None).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("attendance: event_id (活动编号)"), "{msg}");
        assert!(msg.contains("units: unit_id (组织编码)"), "{msg}");
    }

    #[test]
    fn duplicate_and_missing_columns_are_errors() {
        let dup = h(&["unit_id", "组织编码", "unit_name", "level"]);
        assert!(matches!(map_header(&dup, Some(Kind::Units)), Err(HeaderError::Duplicate { first: 1, second: 2, .. })));
        let missing = h(&["unit_id", "unit_name"]);
        let err = map_header(&missing, Some(Kind::Units)).unwrap_err();
        assert_eq!(err.to_string(), "the header lacks required columns for units: level (层级)");
    }

    #[test]
    fn extra_columns_are_ignored_and_reported() {
        let m = map_header(&h(&["unit_id", "unit_name", "level", "备注"]), None).unwrap();
        assert_eq!(m.ignored, vec!["备注".to_string()]);
    }

    #[test]
    fn enums_accept_codes_and_labels() {
        assert_eq!(parse_enum(STATUSES, "出席"), Some("present"));
        assert_eq!(parse_enum(STATUSES, " Absent "), Some("absent"));
        assert_eq!(parse_enum(LEVELS, "村/社区"), Some("community"));
        assert_eq!(parse_enum(STATUSES, "迟到"), None);
    }
}
