//! The indicator catalogue: definitions as data (TOML), checked before any computing starts.
//! A bad file is a `CatalogueError` naming the file, the line and the key.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::model::Category;

/// The built-in catalogue: the same file as `pipelines/indicators.toml`.
pub const DEFAULT_CATALOGUE: &str = include_str!("../../pipelines/indicators.toml");

#[derive(Debug, Clone, thiserror::Error)]
#[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct CatalogueError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Higher,
    Lower,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub green: f64,
    pub amber: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndicatorKind {
    Ratio,
    /// A count of rows (`numerator`), rolled up like a ratio; `denominator` counts the rows it
    /// is out of, shown beside it. Null when that is 0: nothing was due, so nothing is judged.
    Count,
    ActivityCoverage,
    MeetingCompletion,
    Composite,
    /// Branch-months with any attendance row / branch-months expected.
    Reporting,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Attendance,
    Points,
    Assessment,
    Tasks,
    Findings,
}

impl Source {
    pub fn table(&self) -> crate::model::Table {
        use crate::model::Table;
        match self {
            Source::Attendance => Table::Attendance,
            Source::Points => Table::Points,
            Source::Assessment => Table::Assessment,
            Source::Tasks => Table::Tasks,
            Source::Findings => Table::Findings,
        }
    }

    /// For a ledger (tasks, findings): the date its rows fall due on. A ledger's rows are
    /// judged as they stand on a period's last day, so a period reads every row due by then,
    /// with the period's first and last days beside it (`period_first_day`,
    /// `period_last_day`) for the catalogue's expressions.
    pub fn due_field(&self) -> Option<&'static str> {
        match self {
            Source::Tasks => Some("due_date"),
            Source::Findings => Some("deadline"),
            Source::Attendance | Source::Points | Source::Assessment => None,
        }
    }
}

impl IndicatorKind {
    /// Whether the indicator is rolled up from a source's rows by its numerator and
    /// denominator expressions.
    pub fn rolled_from_rows(self) -> bool {
        matches!(self, IndicatorKind::Ratio | IndicatorKind::Count)
    }
}

/// One indicator definition.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Indicator {
    pub id: String,
    pub name_zh: String,
    /// Part of the catalogue's format for other tools; dangjian's own packs are in Chinese.
    #[allow(dead_code)]
    pub name_en: String,
    pub kind: IndicatorKind,
    pub source: Option<Source>,
    pub filter: Option<String>,
    pub numerator: Option<String>,
    pub denominator: Option<String>,
    #[serde(default = "one")]
    pub scale: f64,
    /// For `activity_coverage`: the event type that counts.
    pub event_type: Option<String>,
    pub unit: String,
    pub direction: Direction,
    pub thresholds: Thresholds,
    #[serde(default)]
    pub thresholds_by_category: BTreeMap<String, Thresholds>,
    #[serde(default)]
    pub thresholds_per_month: bool,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meetings {
    pub required_per_quarter: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompositePart {
    pub indicator: String,
    pub weight: f64,
    pub scale: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Composite {
    pub part: Vec<CompositePart>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weak {
    pub composite_below: Option<f64>,
    pub meeting_completion_below: Option<f64>,
    #[serde(default)]
    pub last_in_group: bool,
}

/// When a month's attendance is due.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportingRules {
    /// Days after a month's last day by which its attendance export is due (党建月报).
    #[serde(default = "ten")]
    pub deadline_days: u32,
}

fn ten() -> u32 {
    10
}

impl Default for ReportingRules {
    fn default() -> Self {
        ReportingRules { deadline_days: ten() }
    }
}

/// The whole catalogue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    pub version: u32,
    pub indicator: Vec<Indicator>,
    #[serde(default)]
    pub reporting: ReportingRules,
    pub meetings: Meetings,
    pub composite: Composite,
    pub weak: Weak,
    /// The catalogue's text, for its hash in provenance.
    #[serde(skip)]
    pub text: String,
}

impl Indicator {
    /// The thresholds for a category and a period of `months` months.
    pub fn thresholds_for(&self, category: Option<&str>, months: u32) -> Thresholds {
        let t = category.and_then(|c| self.thresholds_by_category.get(c)).copied().unwrap_or(self.thresholds);
        if self.thresholds_per_month {
            Thresholds { green: t.green * months as f64, amber: t.amber * months as f64 }
        } else {
            t
        }
    }
}

const MEETING_TYPES: [&str; 4] = ["member_meeting", "committee_meeting", "group_meeting", "party_lesson"];

impl Catalogue {
    /// The built-in catalogue.
    pub fn builtin() -> Catalogue {
        Catalogue::parse(DEFAULT_CATALOGUE, Path::new("pipelines/indicators.toml"))
            .expect("the built-in catalogue is valid")
    }

    pub fn load(path: &Path) -> Result<Catalogue, CatalogueError> {
        let text = std::fs::read_to_string(path).map_err(|e| CatalogueError {
            path: path.to_path_buf(),
            line: None,
            message: format!("cannot read: {e}"),
        })?;
        Catalogue::parse(&text, path)
    }

    /// The catalogue's BLAKE3, for provenance.
    pub fn hash(&self) -> String {
        blake3::hash(self.text.as_bytes()).to_hex().to_string()
    }

    /// The catalogue cut down to `ids` and what they are made of (a composite's parts): for a
    /// few indicators over many periods, without the others' passes over the rows.
    pub fn only(&self, ids: &[&str]) -> Catalogue {
        let mut keep: HashSet<&str> = ids.iter().copied().collect();
        if self.indicator.iter().any(|i| i.kind == IndicatorKind::Composite && keep.contains(i.id.as_str())) {
            keep.extend(self.composite.part.iter().map(|p| p.indicator.as_str()));
        }
        let mut out = self.clone();
        out.indicator.retain(|i| keep.contains(i.id.as_str()));
        out
    }

    pub fn get(&self, id: &str) -> Option<&Indicator> {
        self.indicator.iter().find(|i| i.id == id)
    }

    /// Whether an indicator measures what branches report in their attendance: a unit none of
    /// whose branches reported in the period has no value for it, and the status `no_data`.
    pub fn on_attendance(&self, ind: &Indicator) -> bool {
        match ind.kind {
            IndicatorKind::Ratio | IndicatorKind::Count => ind.source == Some(Source::Attendance),
            IndicatorKind::ActivityCoverage | IndicatorKind::MeetingCompletion => true,
            IndicatorKind::Composite => self.composite.part.iter().any(|p| {
                self.get(&p.indicator).is_some_and(|i| i.kind != IndicatorKind::Composite && self.on_attendance(i))
            }),
            IndicatorKind::Reporting => false,
        }
    }

    pub fn parse(text: &str, path: &Path) -> Result<Catalogue, CatalogueError> {
        let err = |line: Option<usize>, message: String| CatalogueError { path: path.to_path_buf(), line, message };
        let mut cat: Catalogue = toml::from_str(text).map_err(|e| {
            let (line, message) = crate::configfile::locate_toml_error(text, &e);
            err(line, message)
        })?;
        cat.text = text.to_string();
        // The line of an indicator's `id = "..."`, to point at it in messages.
        let line_of = |id: &str| {
            text.lines()
                .position(|l| {
                    let l = l.trim();
                    l.starts_with("id") && l.contains(&format!("\"{id}\""))
                })
                .map(|i| i + 1)
        };
        if cat.version != 1 {
            return Err(err(None, format!("version {} is not supported (expected 1)", cat.version)));
        }
        let mut ids = HashSet::new();
        for ind in &cat.indicator {
            let at = line_of(&ind.id);
            let bad = |key: &str, msg: String| err(at, format!("indicator `{}`, key `{key}`: {msg}", ind.id));
            if ind.id.is_empty() || !ind.id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
                return Err(bad("id", "use lower-case letters, digits and _".into()));
            }
            if ind.id == "weak_candidate" {
                return Err(bad(
                    "id",
                    "`weak_candidate` is computed from the [weak] rules; it cannot be defined".into(),
                ));
            }
            if !ids.insert(ind.id.clone()) {
                return Err(bad("id", "defined twice".into()));
            }
            let t = ind.thresholds;
            let ordered = |t: Thresholds| match ind.direction {
                Direction::Higher => t.green >= t.amber,
                Direction::Lower => t.green <= t.amber,
            };
            if !ordered(t) || !t.green.is_finite() || !t.amber.is_finite() {
                return Err(bad(
                    "thresholds",
                    format!(
                        "green {} and amber {} are in the wrong order for direction {:?}",
                        t.green, t.amber, ind.direction
                    ),
                ));
            }
            for (c, t) in &ind.thresholds_by_category {
                if Category::parse(c).is_none() {
                    return Err(bad(
                        "thresholds_by_category",
                        format!("'{c}' is not a category ({})", Category::ALL.map(Category::code).join(", ")),
                    ));
                }
                if !ordered(*t) {
                    return Err(bad("thresholds_by_category", format!("{c}: green and amber are in the wrong order")));
                }
            }
            if !(ind.scale.is_finite() && ind.scale != 0.0) {
                return Err(bad("scale", "must be a non-zero number".into()));
            }
            match ind.kind {
                IndicatorKind::Ratio | IndicatorKind::Count => {
                    if ind.source.is_none() {
                        return Err(bad(
                            "source",
                            "a ratio or count needs a source table (attendance, points, assessment, tasks or findings)"
                                .into(),
                        ));
                    }
                    for (key, expr) in [("numerator", &ind.numerator), ("denominator", &ind.denominator)] {
                        let Some(expr) = expr else { return Err(bad(key, "missing".into())) };
                        let _ = polars::sql::sql_expr(expr)
                            .map_err(|e| bad(key, format!("'{expr}' is not an expression: {e}")))?;
                    }
                    if let Some(f) = &ind.filter {
                        let _ = polars::sql::sql_expr(f)
                            .map_err(|e| bad("filter", format!("'{f}' is not an expression: {e}")))?;
                    }
                }
                IndicatorKind::ActivityCoverage => {
                    let et = ind.event_type.as_deref().unwrap_or("");
                    if crate::model::kinds::code_of(crate::model::kinds::EVENT_TYPES, et.trim()).is_none() {
                        return Err(bad("event_type", format!("'{et}' is not an event type")));
                    }
                }
                IndicatorKind::MeetingCompletion | IndicatorKind::Composite | IndicatorKind::Reporting => {}
            }
        }
        for (t, n) in &cat.meetings.required_per_quarter {
            if !MEETING_TYPES.contains(&t.as_str()) {
                return Err(err(
                    None,
                    format!("[meetings.required_per_quarter]: '{t}' is not one of {}", MEETING_TYPES.join(", ")),
                ));
            }
            if *n == 0 {
                return Err(err(None, format!("[meetings.required_per_quarter]: {t} must be at least 1")));
            }
        }
        if cat.composite.part.is_empty() {
            return Err(err(None, "[composite]: needs at least one part".into()));
        }
        for p in &cat.composite.part {
            match cat.get(&p.indicator) {
                Some(i) if i.kind != IndicatorKind::Composite => {}
                _ => {
                    return Err(err(None, format!("[[composite.part]]: '{}' is not a defined indicator", p.indicator)));
                }
            }
            if !(p.weight > 0.0 && p.weight.is_finite()) {
                return Err(err(None, format!("[[composite.part]] {}: weight must be above 0", p.indicator)));
            }
        }
        Ok(cat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_catalogue_keeps_what_its_indicators_are_made_of() {
        let c = Catalogue::builtin();
        let cut = c.only(&["activity_day_coverage", "composite_score"]);
        let ids: Vec<&str> = cut.indicator.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(
            ids,
            ["attendance_rate", "activity_day_coverage", "meeting_completion", "assessment_score", "composite_score"]
        );
        assert_eq!(c.only(&["absence_rate"]).indicator.len(), 1);
    }

    #[test]
    fn the_builtin_catalogue_is_valid() {
        let c = Catalogue::builtin();
        assert_eq!(c.indicator.len(), 19);
        let counts: Vec<&str> =
            c.indicator.iter().filter(|i| i.kind == IndicatorKind::Count).map(|i| i.id.as_str()).collect();
        assert_eq!(counts, ["overdue_tasks", "overdue_findings"]);
        assert_eq!(c.reporting.deadline_days, 10);
        // What a unit that reported nothing has no value for.
        let on: Vec<&str> = c.indicator.iter().filter(|i| c.on_attendance(i)).map(|i| i.id.as_str()).collect();
        assert_eq!(
            on,
            [
                "attendance_rate",
                "attendance_rate_excused",
                "absence_rate",
                "activity_day_coverage",
                "meeting_completion",
                "participation_per_member",
                "composite_score"
            ]
        );
        assert_eq!(c.meetings.required_per_quarter["committee_meeting"], 3);
        let a = c.get("attendance_rate").unwrap();
        assert_eq!(a.thresholds_for(Some("rural"), 3), Thresholds { green: 0.80, amber: 0.65 });
        assert_eq!(a.thresholds_for(Some("organ"), 3), Thresholds { green: 0.85, amber: 0.70 });
        let p = c.get("participation_per_member").unwrap();
        assert_eq!(p.thresholds_for(None, 3), Thresholds { green: 6.0, amber: 1.3 * 3.0 });
    }

    fn parse_err(text: &str) -> CatalogueError {
        Catalogue::parse(text, Path::new("bad.toml")).unwrap_err()
    }

    #[test]
    fn errors_name_line_and_key() {
        let bad_key = DEFAULT_CATALOGUE.replacen("unit = \"percent\"", "unit = \"percent\"\ncolour = \"red\"", 1);
        let e = parse_err(&bad_key);
        assert!(e.message.contains("unknown field `colour`"), "{e}");
        assert_eq!(e.line, Some(bad_key.lines().position(|l| l.starts_with("colour")).unwrap() + 1), "{e}");

        let bad_thresholds = DEFAULT_CATALOGUE.replacen(
            "thresholds = { green = 0.05, amber = 0.12 }",
            "thresholds = { green = 0.12, amber = 0.05 }",
            1,
        );
        let e = parse_err(&bad_thresholds);
        assert!(e.to_string().starts_with("bad.toml:"), "{e}");
        assert!(e.message.contains("indicator `absence_rate`, key `thresholds`"), "{e}");

        let bad_sql = DEFAULT_CATALOGUE.replacen("numerator = \"sum(score)\"", "numerator = \"sum(score\"", 1);
        let e = parse_err(&bad_sql);
        assert!(e.message.contains("indicator `assessment_score`, key `numerator`"), "{e}");
    }
}
