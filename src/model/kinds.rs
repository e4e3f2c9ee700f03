//! The record kinds of SPEC §2: their columns, Chinese aliases, types, enumerations, natural
//! keys and stored columns.
//!
//! This is the single description of the input contract; the validator, the header matcher, the
//! sample generator and the warehouse schemas all read it. Adding a record kind starts here: a
//! `Kind` variant, its fields, its natural key and its table (`model::tables`). It does no I/O
//! and knows nothing of files or parsing.

use std::collections::HashMap;
use std::fmt;

use polars::prelude::{DataType, TimeUnit};

use super::tables::Table;

/// A kind of input record, and the warehouse table it lands in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Units,
    Attendance,
    Points,
    Assessment,
    /// 目标任务台账: the year's target tasks, re-exported as they progress.
    Tasks,
    /// 问题整改台账: problems found by supervision and the expert panel, and their rectification.
    Findings,
}

/// How a kind's table is cut into partitions (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partitioning {
    /// One file for the whole table (the units tree).
    Whole,
    /// `year=YYYY/month=MM/` by a date field.
    Month(&'static str),
    /// `year=YYYY/` by the year of a period label field (`2026Q1`, `2026`).
    YearOfPeriod(&'static str),
    /// `year=YYYY/` by the year of a date field: a ledger re-exported whole rewrites only the
    /// years its rows fall in, and a reader of one year reads one folder.
    YearOfDate(&'static str),
}

impl Kind {
    pub const ALL: [Kind; 6] =
        [Kind::Units, Kind::Attendance, Kind::Points, Kind::Assessment, Kind::Tasks, Kind::Findings];

    /// The kinds whose rows are merged by natural key into partitioned tables.
    pub const RECORDS: [Kind; 5] = [Kind::Attendance, Kind::Points, Kind::Assessment, Kind::Tasks, Kind::Findings];

    pub fn name(&self) -> &'static str {
        match self {
            Kind::Units => "units",
            Kind::Attendance => "attendance",
            Kind::Points => "points",
            Kind::Assessment => "assessment",
            Kind::Tasks => "tasks",
            Kind::Findings => "findings",
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
            Kind::Tasks => TASKS,
            Kind::Findings => FINDINGS,
        }
    }

    /// Field names forming the natural key; a later export of the same key replaces the row.
    pub fn natural_key(&self) -> &'static [&'static str] {
        match self {
            // A history export lists a unit once per version.
            Kind::Units => &["unit_id", "valid_from"],
            Kind::Attendance => &["event_id", "member_id"],
            Kind::Points => &["entry_id"],
            Kind::Assessment => &["unit_id", "period", "method", "item_code"],
            Kind::Tasks => &["task_id"],
            Kind::Findings => &["finding_id"],
        }
    }

    pub fn partitioning(&self) -> Partitioning {
        match self {
            Kind::Units => Partitioning::Whole,
            Kind::Attendance => Partitioning::Month("event_date"),
            Kind::Points => Partitioning::Month("entry_date"),
            Kind::Assessment => Partitioning::YearOfPeriod("period"),
            Kind::Tasks => Partitioning::YearOfDate("due_date"),
            Kind::Findings => Partitioning::YearOfDate("found_date"),
        }
    }

    /// The date field whose year and month partition the table, if it is partitioned by month.
    pub fn month_partition_field(&self) -> Option<&'static str> {
        match self.partitioning() {
            Partitioning::Month(field) => Some(field),
            _ => None,
        }
    }

    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields().iter().find(|f| f.name == name)
    }

    /// The warehouse table rows of this kind land in.
    pub fn table(&self) -> Table {
        match self {
            Kind::Units => Table::Units,
            Kind::Attendance => Table::Attendance,
            Kind::Points => Table::Points,
            Kind::Assessment => Table::Assessment,
            Kind::Tasks => Table::Tasks,
            Kind::Findings => Table::Findings,
        }
    }

    /// The stored columns of a kind's table in order: its fields (names hashed), then the
    /// source columns every stored row carries. The units table has a shape of its own
    /// (`model::tables`).
    pub fn stored_columns(&self) -> Vec<String> {
        let mut cols: Vec<String> = self.fields().iter().map(Field::stored_name).collect();
        cols.extend(SOURCE_COLUMNS.iter().map(|(n, _)| n.to_string()));
        cols
    }
}

/// The columns every stored record carries after its fields: where it came from, and which
/// ingest loaded it.
pub const SOURCE_COLUMNS: [(&str, SourceType); 4] = [
    ("source_file", SourceType::Text),
    ("source_line", SourceType::Line),
    ("source_mtime", SourceType::Time),
    ("ingest_id", SourceType::Text),
];

/// The type of a source column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceType {
    Text,
    Line,
    Time,
}

impl SourceType {
    pub fn dtype(self) -> DataType {
        match self {
            SourceType::Text => DataType::String,
            SourceType::Line => DataType::Int64,
            SourceType::Time => DataType::Datetime(TimeUnit::Microseconds, None),
        }
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

impl Field {
    /// The column name in the warehouse: a personal name is stored as its keyed hash.
    pub fn stored_name(&self) -> String {
        match self.ty {
            FieldType::PersonalName => format!("{}_hash", self.name),
            _ => self.name.to_string(),
        }
    }

    /// The warehouse type of a field.
    pub fn stored_dtype(&self) -> DataType {
        match self.ty {
            FieldType::Date => DataType::Date,
            FieldType::Number => DataType::Float64,
            FieldType::Bool => DataType::Boolean,
            _ => DataType::String,
        }
    }
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

pub const PROJECTS: &[EnumValue] = &[
    ev("integration", &["融合", "融合工程"]),
    ev("magnet", &["磁铁", "磁铁工程"]),
    ev("vanguard", &["先锋", "先锋工程"]),
    ev("red_collar", &["红领", "红领工程"]),
    ev("foundation", &["固本", "固本工程"]),
    ev("spark", &["星火", "星火工程"]),
];

pub const TASK_STATUSES: &[EnumValue] =
    &[ev("pending", &["未开始"]), ev("in_progress", &["推进中"]), ev("done", &["已完成"])];

/// Where a finding came from: the assessment methods, and the expert panel.
pub const FINDING_SOURCES: &[EnumValue] = &[
    ev("regular", &["定期督查"]),
    ev("random", &["随机抽查"]),
    ev("unannounced", &["走访暗查"]),
    ev("review", &["述职评议"]),
    ev("expert", &["专家会诊", "专家智库"]),
];

pub const SEVERITIES: &[EnumValue] = &[ev("minor", &["一般"]), ev("major", &["较重"]), ev("serious", &["严重"])];

pub const FINDING_STATUSES: &[EnumValue] =
    &[ev("open", &["待整改"]), ev("rectifying", &["整改中"]), ev("rectified", &["已整改"])];

use FieldType::*;

const UNITS: &[Field] = &[
    f("unit_id", &["组织编码"], Text, true),
    f("unit_name", &["组织名称"], Text, true),
    f("parent_id", &["上级组织编码"], Text, false),
    f("level", &["层级"], Enum(LEVELS), true),
    f("category", &["类别"], Enum(CATEGORIES), false),
    // A version's first and last day; without them a changed row takes effect from the first
    // day of its export's month (ingest/units).
    f("valid_from", &["生效日期"], Date, false),
    f("valid_to", &["撤销日期"], Date, false),
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

const TASKS: &[Field] = &[
    f("task_id", &["任务编号"], Text, true),
    f("unit_id", &["责任单位编码", "组织编码"], Text, true),
    f("project", &["所属工程"], Enum(PROJECTS), true),
    f("title", &["任务内容"], Text, true),
    f("due_date", &["完成时限"], Date, true),
    f("status", &["完成状态"], Enum(TASK_STATUSES), true),
    // Required when done, empty otherwise (a rule across fields, `ingest::validate`).
    f("done_date", &["完成日期"], Date, false),
];

const FINDINGS: &[Field] = &[
    f("finding_id", &["问题编号"], Text, true),
    f("unit_id", &["组织编码", "责任单位编码"], Text, true),
    f("found_date", &["发现日期"], Date, true),
    f("source", &["问题来源"], Enum(FINDING_SOURCES), true),
    f("severity", &["严重程度"], Enum(SEVERITIES), true),
    // Free text as the inspector wrote it: it describes the unit's work, not a person.
    f("description", &["问题描述"], Text, true),
    f("deadline", &["整改时限"], Date, true),
    f("status", &["整改状态"], Enum(FINDING_STATUSES), true),
    f("rectified_date", &["整改完成日期"], Date, false),
    f("problem_id", &["关联问题编号"], Text, false),
];

/// The code an already trimmed value (code in any case, or a Chinese label) stands for.
pub fn code_of(values: &'static [EnumValue], trimmed: &str) -> Option<&'static str> {
    values.iter().find(|v| v.code.eq_ignore_ascii_case(trimmed) || v.labels.contains(&trimmed)).map(|v| v.code)
}

/// The Chinese label of a code, for output written for people.
pub fn label_of(values: &'static [EnumValue], code: &str) -> &'static str {
    values.iter().find(|v| v.code == code).map(|v| v.labels[0]).unwrap_or("")
}

/// An index from Chinese label to code for every enumeration, used by the sample generator.
pub fn all_labels() -> HashMap<&'static str, &'static str> {
    let mut m = HashMap::new();
    for set in [
        LEVELS,
        CATEGORIES,
        EVENT_TYPES,
        STATUSES,
        POINT_CATEGORIES,
        METHODS,
        PROJECTS,
        TASK_STATUSES,
        FINDING_SOURCES,
        SEVERITIES,
        FINDING_STATUSES,
    ] {
        for v in set {
            m.insert(v.labels[0], v.code);
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_codes_both_ways() {
        assert_eq!(code_of(STATUSES, "Absent"), Some("absent"));
        assert_eq!(label_of(CATEGORIES, code_of(CATEGORIES, "区直机关").unwrap()), "区直机关");
    }

    #[test]
    fn stored_columns_hash_names_and_end_with_the_source() {
        assert_eq!(
            Kind::Attendance.stored_columns(),
            [
                "event_id",
                "unit_id",
                "event_type",
                "event_date",
                "member_id",
                "status",
                "member_name_hash",
                "source_file",
                "source_line",
                "source_mtime",
                "ingest_id"
            ]
        );
    }
}
