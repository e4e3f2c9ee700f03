//! The four record kinds of SPEC §2: their columns, Chinese aliases, types, enumerations and
//! natural keys, and how a file's header is matched to a kind.
//!
//! This module is the single description of the input contract; the validator, the sample
//! generator and the warehouse schemas all read it. It does no I/O.

use std::collections::HashMap;
use std::fmt;

/// A kind of input record, and the warehouse table it lands in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Units,
    Attendance,
    Points,
    Assessment,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Units, Kind::Attendance, Kind::Points, Kind::Assessment];

    pub fn name(&self) -> &'static str {
        match self {
            Kind::Units => "units",
            Kind::Attendance => "attendance",
            Kind::Points => "points",
            Kind::Assessment => "assessment",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }

    pub fn fields(&self) -> &'static [Field] {
        match self {
            Kind::Units => UNITS,
            Kind::Attendance => ATTENDANCE,
            Kind::Points => POINTS,
            Kind::Assessment => ASSESSMENT,
        }
    }

    /// Field names forming the natural key; a later export of the same key replaces the row.
    pub fn natural_key(&self) -> &'static [&'static str] {
        match self {
            Kind::Units => &["unit_id"],
            Kind::Attendance => &["event_id", "member_id"],
            Kind::Points => &["entry_id"],
            Kind::Assessment => &["unit_id", "period", "method", "item_code"],
        }
    }

    /// The date field whose year and month partition the table, if it is partitioned by month.
    pub fn month_partition_field(&self) -> Option<&'static str> {
        match self {
            Kind::Attendance => Some("event_date"),
            Kind::Points => Some("entry_date"),
            _ => None,
        }
    }

    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields().iter().find(|f| f.name == name)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The type a field's text must parse to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// Free text, trimmed; an identifier or a label.
    Text,
    /// A calendar date, stored as DATE.
    Date,
    /// A decimal number, stored as DOUBLE.
    Number,
    /// 是/否, true/false, yes/no, 1/0.
    Bool,
    /// One of the codes; Chinese labels map to the code.
    Enum(&'static [EnumValue]),
    /// A quarter (`2026Q1`) or a year (`2026`).
    AssessmentPeriod,
    /// A personal name: never stored in clear text (see `ingest::names`).
    PersonalName,
}

/// One value of an enumeration: its code and the labels that mean it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnumValue {
    pub code: &'static str,
    pub labels: &'static [&'static str],
}

const fn ev(code: &'static str, labels: &'static [&'static str]) -> EnumValue {
    EnumValue { code, labels }
}

/// A column of an input kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    /// Chinese header names; the first is the one we write.
    pub aliases: &'static [&'static str],
    pub ty: FieldType,
    pub required: bool,
}

const fn f(name: &'static str, aliases: &'static [&'static str], ty: FieldType, required: bool) -> Field {
    Field { name, aliases, ty, required }
}

pub const LEVELS: &[EnumValue] = &[
    ev("district", &["区"]),
    ev("township", &["街道/镇", "街道", "镇", "乡镇"]),
    ev("community", &["村/社区", "社区", "村"]),
    ev("branch", &["支部", "党支部"]),
];

pub const CATEGORIES: &[EnumValue] = &[
    ev("community", &["街道社区"]),
    ev("rural", &["乡镇农村"]),
    ev("organ", &["区直机关"]),
    ev("nonpublic", &["非公企业和社会组织"]),
];

pub const EVENT_TYPES: &[EnumValue] = &[
    ev("activity_day", &["主题党日"]),
    ev("member_meeting", &["党员大会"]),
    ev("committee_meeting", &["支委会"]),
    ev("group_meeting", &["党小组会"]),
    ev("party_lesson", &["党课"]),
    ev("org_life", &["组织生活会"]),
    ev("training", &["培训"]),
    ev("service", &["志愿服务"]),
];

pub const STATUSES: &[EnumValue] = &[ev("present", &["出席"]), ev("leave", &["请假"]), ev("absent", &["缺席"])];

pub const POINT_CATEGORIES: &[EnumValue] =
    &[ev("base", &["基础"]), ev("task", &["任务"]), ev("reward", &["奖励"]), ev("deduction", &["扣分"])];

pub const METHODS: &[EnumValue] = &[
    ev("regular", &["定期督查"]),
    ev("random", &["随机抽查"]),
    ev("unannounced", &["走访暗查"]),
    ev("review", &["述职评议"]),
];

use FieldType::*;

const UNITS: &[Field] = &[
    f("unit_id", &["组织编码"], Text, true),
    f("unit_name", &["组织名称"], Text, true),
    f("parent_id", &["上级组织编码"], Text, false),
    f("level", &["层级"], Enum(LEVELS), true),
    f("category", &["类别"], Enum(CATEGORIES), false),
];

const ATTENDANCE: &[Field] = &[
    f("event_id", &["活动编号"], Text, true),
    f("unit_id", &["组织编码"], Text, true),
    f("event_type", &["活动类型"], Enum(EVENT_TYPES), true),
    f("event_date", &["活动日期"], Date, true),
    f("member_id", &["党员编号"], Text, true),
    f("status", &["出勤状态"], Enum(STATUSES), true),
    f("member_name", &["姓名"], PersonalName, false),
];

const POINTS: &[Field] = &[
    f("entry_id", &["流水号"], Text, true),
    f("member_id", &["党员编号"], Text, true),
    f("unit_id", &["组织编码"], Text, true),
    f("entry_date", &["日期"], Date, true),
    f("category", &["积分类别"], Enum(POINT_CATEGORIES), true),
    f("rule_code", &["积分项目"], Text, true),
    f("points", &["分值"], Number, true),
    f("approved", &["审核状态"], Bool, false),
    f("member_name", &["姓名"], PersonalName, false),
];

const ASSESSMENT: &[Field] = &[
    f("unit_id", &["组织编码"], Text, true),
    f("period", &["考核期"], AssessmentPeriod, true),
    f("method", &["考核方式"], Enum(METHODS), true),
    f("item_code", &["考核项目编码"], Text, true),
    f("item_name", &["考核项目"], Text, true),
    f("max_score", &["满分"], Number, true),
    f("score", &["得分"], Number, true),
    // The assessor is a person: like member names, never stored in clear text.
    f("assessor", &["考核人"], PersonalName, false),
    f("note", &["扣分原因"], Text, false),
];

/// Normalise a header cell so `Unit ID`, ` unit_id ` and `UNIT-ID` all match `unit_id`.
pub fn normalise_header(h: &str) -> String {
    h.trim()
        .trim_start_matches('\u{feff}')
        .trim()
        .chars()
        .map(|c| match c {
            ' ' | '-' | '\u{3000}' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
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
    #[error("the header lacks required columns for {kind}: {missing}")]
    Missing { kind: Kind, missing: String },
}

fn field_of(kind: Kind, header: &str) -> Option<&'static str> {
    let n = normalise_header(header);
    kind.fields().iter().find(|f| f.name == n || f.aliases.iter().any(|a| normalise_header(a) == n)).map(|f| f.name)
}

/// Map a header to `kind`, or to the kind it matches when `kind` is `None`.
pub fn map_header(header: &[String], kind: Option<Kind>) -> Result<HeaderMap, HeaderError> {
    if header.iter().all(|h| h.trim().is_empty()) {
        return Err(HeaderError::Empty);
    }
    let candidates: Vec<Kind> = match kind {
        Some(k) => vec![k],
        None => Kind::ALL.to_vec(),
    };
    let mut best: Option<(usize, HeaderMap)> = None;
    let mut first_error = None;
    for k in candidates {
        match map_header_to(header, k) {
            Ok(m) => {
                let matched = m.columns.iter().filter(|c| c.is_some()).count();
                if best.as_ref().is_none_or(|(b, _)| matched > *b) {
                    best = Some((matched, m));
                }
            }
            Err(e @ HeaderError::Duplicate { .. }) => first_error = first_error.or(Some(e)),
            Err(e) if kind.is_some() => first_error = Some(e),
            Err(_) => {}
        }
    }
    if let Some((_, m)) = best {
        return Ok(m);
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    Err(HeaderError::Unrecognised { expected: expected_headers() })
}

fn map_header_to(header: &[String], kind: Kind) -> Result<HeaderMap, HeaderError> {
    let fields = kind.fields();
    let mut columns = vec![None; fields.len()];
    let mut ignored = Vec::new();
    for (i, h) in header.iter().enumerate() {
        match field_of(kind, h) {
            Some(name) => {
                let fi = fields.iter().position(|f| f.name == name).expect("field exists");
                if let Some(first) = columns[fi] {
                    return Err(HeaderError::Duplicate { field: name, first: first + 1, second: i + 1 });
                }
                columns[fi] = Some(i);
            }
            None if h.trim().is_empty() => {}
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
        return Err(HeaderError::Missing { kind, missing: missing.join(", ") });
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
    let t = super::values::trim(s);
    values.iter().find(|v| v.code.eq_ignore_ascii_case(t) || v.labels.contains(&t)).map(|v| v.code)
}

/// The Chinese label of a code, for output written for people.
pub fn label_of(values: &'static [EnumValue], code: &str) -> &'static str {
    values.iter().find(|v| v.code == code).map(|v| v.labels[0]).unwrap_or("")
}

/// An index from Chinese label to code for every enumeration, used by the sample generator.
pub fn all_labels() -> HashMap<&'static str, &'static str> {
    let mut m = HashMap::new();
    for set in [LEVELS, CATEGORIES, EVENT_TYPES, STATUSES, POINT_CATEGORIES, METHODS] {
        for v in set {
            m.insert(v.labels[0], v.code);
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

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
