//! The warehouse tables (SPEC §3) and the columns each stores, for readers that need a schema
//! before any row exists (an empty table in `query`, the Spark DDL) and for the writers, whose
//! tests hold their frames to these columns.

use anyhow::Result;
use polars::prelude::*;

use super::kinds::{Kind, SOURCE_COLUMNS};

/// The tables of the warehouse, each a folder of Parquet files in Hive layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Units,
    UnitsHistory,
    Attendance,
    Points,
    Assessment,
    Tasks,
    Findings,
    Quarantine,
    Ingests,
    Indicators,
    Problems,
    Draws,
    Submissions,
    Appraisal,
}

/// The appraisal's default components (SPEC §6): (indicator, weight). The `appraisal` table
/// has a column per component, on the 0–100 scale; these are its columns when an annual
/// pipeline does not configure others.
pub const APPRAISAL_PARTS: [(&str, f64); 8] = [
    ("attendance_rate", 0.15),
    ("meeting_completion", 0.15),
    ("assessment_regular", 0.15),
    ("assessment_random", 0.10),
    ("assessment_unannounced", 0.10),
    ("assessment_review", 0.10),
    ("task_completion_rate", 0.15),
    ("rectification_rate", 0.10),
];

impl Table {
    pub const ALL: [Table; 14] = [
        Table::Units,
        Table::UnitsHistory,
        Table::Attendance,
        Table::Points,
        Table::Assessment,
        Table::Tasks,
        Table::Findings,
        Table::Quarantine,
        Table::Ingests,
        Table::Indicators,
        Table::Problems,
        Table::Draws,
        Table::Submissions,
        Table::Appraisal,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Table::Units => "units",
            Table::UnitsHistory => "units_history",
            Table::Attendance => "attendance",
            Table::Points => "points",
            Table::Assessment => "assessment",
            Table::Tasks => "tasks",
            Table::Findings => "findings",
            Table::Quarantine => "quarantine",
            Table::Ingests => "ingests",
            Table::Indicators => "indicators",
            Table::Problems => "problems",
            Table::Draws => "draws",
            Table::Submissions => "submissions",
            Table::Appraisal => "appraisal",
        }
    }

    pub fn parse(s: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == s)
    }

    /// The Hive partition columns (in the folder names, not in the files), with fixed types:
    /// inference would read `period=2026` as a number.
    pub fn partition_columns(&self) -> Vec<(&'static str, DataType)> {
        match self {
            Table::Attendance | Table::Points => vec![("year", DataType::Int32), ("month", DataType::Int32)],
            Table::Assessment | Table::Tasks | Table::Findings | Table::Appraisal => vec![("year", DataType::Int32)],
            Table::Indicators | Table::Problems | Table::Submissions => vec![("period", DataType::String)],
            _ => vec![],
        }
    }

    /// The stored columns in order (partition columns not included). The appraisal's are
    /// those of its default components; a pipeline that configures others stores theirs.
    pub fn columns(&self) -> Vec<(String, DataType)> {
        use DataType::{Boolean, Float64, Int32, Int64, String as Text};
        let time = || DataType::Datetime(TimeUnit::Microseconds, None);
        let own = |cols: &[(&str, DataType)]| cols.iter().map(|(n, t)| (n.to_string(), t.clone())).collect();
        match self {
            // `units` is the tree after every recorded change (the rows of `units_history` open
            // at the end); `units_history` has a row per unit per stretch of days over which
            // its row, its path included, stays the same (ingest/units).
            Table::Units | Table::UnitsHistory => {
                let mut cols: Vec<(String, DataType)> = own(&[
                    ("unit_id", Text),
                    ("unit_name", Text),
                    ("parent_id", Text),
                    ("level", Text),
                    ("category", Text),
                    ("valid_from", DataType::Date),
                    ("valid_to", DataType::Date),
                    ("depth", Int32),
                    ("path", Text),
                ]);
                cols.extend(source_columns());
                cols
            }
            Table::Attendance => kind_columns(Kind::Attendance),
            Table::Points => kind_columns(Kind::Points),
            Table::Assessment => kind_columns(Kind::Assessment),
            Table::Tasks => kind_columns(Kind::Tasks),
            Table::Findings => kind_columns(Kind::Findings),
            Table::Quarantine => own(&[
                ("ingest_id", Text),
                ("kind", Text),
                ("source_file", Text),
                ("line", Int64),
                ("column", Text),
                ("value", Text),
                ("rule", Text),
                ("message", Text),
                ("quarantined_at", time()),
            ]),
            Table::Ingests => own(&[
                ("ingest_id", Text),
                ("ingested_at", time()),
                ("source_file", Text),
                ("blake3", Text),
                ("bytes", Int64),
                ("source_mtime", time()),
                ("kind", Text),
                ("encoding", Text),
                ("rows_read", Int64),
                ("loaded", Int64),
                ("quarantined", Int64),
                ("duplicates", Int64),
                ("superseded", Int64),
                ("ignored_columns", Text),
                ("skipped", Int64),
            ]),
            Table::Indicators => own(&[
                ("unit_id", Text),
                ("unit_name", Text),
                ("level", Text),
                ("category", Text),
                ("indicator", Text),
                ("value", Float64),
                ("numerator", Float64),
                ("denominator", Float64),
                ("status", Text),
                ("rank", Int32),
                ("previous_value", Float64),
                ("change", Float64),
                ("note", Text),
            ]),
            Table::Problems => own(&[
                ("problem_id", Text),
                ("unit_id", Text),
                ("unit_name", Text),
                ("level", Text),
                ("category", Text),
                ("kind", Text),
                ("indicator", Text),
                ("value", Float64),
                ("previous_value", Float64),
                ("category_median", Float64),
                ("evidence", Text),
                ("state", Text),
                ("first_period", Text),
                ("periods_flagged", Int32),
                // Added with the agenda (SPEC §5); older files read them as null.
                ("reference", Float64),
                ("denominator", Float64),
                ("severity", Int32),
                ("priority", Int32),
            ]),
            Table::Draws => own(&[
                ("period", Text),
                ("seed", Text),
                ("count", Int32),
                ("level", Text),
                ("candidates", Text),
                ("chosen", Text),
                ("drawn_at", time()),
                ("forced", Boolean),
                ("algorithm", Text),
            ]),
            Table::Submissions => own(&[
                ("unit_id", Text),
                ("unit_name", Text),
                ("parent_id", Text),
                ("month", Text),
                ("reported", Boolean),
                ("rows", Int64),
                ("events", Int64),
                ("files", Text),
                ("first_received", time()),
                ("last_received", time()),
                ("late", Boolean),
            ]),
            Table::Appraisal => appraisal_columns(APPRAISAL_PARTS.iter().map(|(id, _)| *id)),
        }
    }

    /// The table's schema (stored columns only).
    pub fn schema(&self) -> Schema {
        self.columns().into_iter().map(|(n, t)| Field::new(n.into(), t)).collect()
    }

    /// An empty frame with the table's stored columns.
    pub fn empty_frame(&self) -> Result<DataFrame> {
        Ok(DataFrame::empty_with_schema(&self.schema()))
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The appraisal's columns for these components (SPEC §6).
pub fn appraisal_columns<'a>(parts: impl Iterator<Item = &'a str>) -> Vec<(String, DataType)> {
    use DataType::{Boolean, Float64, Int32, String as Text};
    let mut cols: Vec<(String, DataType)> = [
        ("unit_id", Text),
        ("unit_name", Text),
        ("level", Text),
        ("category", Text),
        ("township", Text),
        ("score", Float64),
        ("rank", Int32),
        ("grade", Int32),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), t))
    .collect();
    cols.extend(parts.map(|p| (p.to_string(), Float64)));
    cols.push(("eligible".into(), Boolean));
    cols.push(("reasons".into(), Text));
    cols
}

fn source_columns() -> impl Iterator<Item = (String, DataType)> {
    SOURCE_COLUMNS.iter().map(|(n, t)| (n.to_string(), t.dtype()))
}

fn kind_columns(kind: Kind) -> Vec<(String, DataType)> {
    let mut cols: Vec<(String, DataType)> = kind.fields().iter().map(|f| (f.stored_name(), f.stored_dtype())).collect();
    cols.extend(source_columns());
    cols
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_lands_in_its_own_table_with_its_stored_columns() {
        for kind in Kind::ALL {
            let t = kind.table();
            assert_eq!(t.name(), kind.name());
            if kind != Kind::Units {
                let names: Vec<String> = t.columns().into_iter().map(|(n, _)| n).collect();
                assert_eq!(names, kind.stored_columns());
            }
        }
    }

    #[test]
    fn names_parse_back() {
        for t in Table::ALL {
            assert_eq!(Table::parse(t.name()), Some(t));
        }
        assert_eq!(Table::parse("runs"), None);
    }
}
