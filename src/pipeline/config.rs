//! Pipeline files (TOML): what a scheduled run does. Checked whole before any work starts; a
//! wrong key or value is a `ConfigError` naming the file, the line and the key.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::periods::{PeriodSpec, PeriodsError};
use crate::indicators::{Catalogue, Engine, SparkRemote};
use crate::model::Level;
use crate::model::period::{Period, PeriodKind};
use crate::review::DrawOptions;
use crate::review::appraisal::AppraisalRules;
use crate::review::problems::ProblemRules;

#[derive(Debug, Clone, thiserror::Error)]
#[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

/// Remove `.` and `name/..` from a path without touching the file system, so messages show
/// `out/2026Q1`, not `pipelines/../out/2026Q1`.
pub fn normalise(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    if out.is_empty() { PathBuf::from(".") } else { out.iter().collect() }
}

/// The line of `key` inside the section whose header starts with `section`; else the header's
/// line; else none.
fn line_in_section(text: &str, section: &str, key: &str) -> Option<usize> {
    let mut lines = text.lines().enumerate().skip_while(|(_, l)| !l.trim_start().starts_with(section));
    let header = lines.next().map(|(i, _)| i + 1)?;
    Some(lines.find(|(_, l)| l.trim_start().starts_with(key)).map_or(header, |(i, _)| i + 1))
}

/// A stage of a pipeline, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Ingest,
    Compute,
    Draw,
    Chart,
    Report,
}

impl Stage {
    pub fn name(&self) -> &'static str {
        match self {
            Stage::Ingest => "ingest",
            Stage::Compute => "compute",
            Stage::Draw => "draw",
            Stage::Chart => "chart",
            Stage::Report => "report",
        }
    }

    /// Whether the stage passes a verdict on the period (and so needs its data complete).
    pub fn judges(self) -> bool {
        matches!(self, Stage::Draw | Stage::Chart | Stage::Report)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Month,
    Quarter,
    Year,
}

impl Kind {
    pub fn period_kind(self) -> PeriodKind {
        match self {
            Kind::Month => PeriodKind::Month,
            Kind::Quarter => PeriodKind::Quarter,
            Kind::Year => PeriodKind::Year,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComputeSection {
    /// Also compute the period before (the review compares the two).
    #[serde(default)]
    pub previous: bool,
    /// Where the indicators are computed.
    #[serde(default)]
    pub engine: EngineName,
    /// The Spark Connect server (`sc://HOST:PORT`), with `engine = "spark"`.
    pub spark_remote: Option<String>,
    /// The warehouse's path as the Spark cluster sees it (default: this machine's).
    pub spark_warehouse: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineName {
    #[default]
    Local,
    Spark,
}

impl ComputeSection {
    /// The engine the section names, or what is wrong with it (the key, and why).
    fn engine(&self) -> Result<Engine, (&'static str, String)> {
        match (self.engine, &self.spark_remote) {
            (EngineName::Local, None) if self.spark_warehouse.is_none() => Ok(Engine::Local),
            (EngineName::Local, _) => {
                Err(("spark_", "spark_remote and spark_warehouse go with engine = \"spark\"".into()))
            }
            (EngineName::Spark, None) => {
                Err(("engine", "engine = \"spark\" needs spark_remote = \"sc://HOST:PORT\"".into()))
            }
            (EngineName::Spark, Some(url)) => SparkRemote::new(url, self.spark_warehouse.clone())
                .map(Engine::Spark)
                .map_err(|e| ("spark_remote", e.to_string())),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    /// The folder relative paths are resolved against (relative to the pipeline file; default
    /// the file's own folder). Relative paths may not leave it.
    root: Option<String>,
    kind: Kind,
    /// The default period when `--period` is not given (`auto` or a period).
    period: Option<String>,
    inbox: Option<String>,
    warehouse: String,
    out: String,
    indicators: Option<String>,
    stages: Vec<Stage>,
    #[serde(default = "ratio")]
    max_bad_ratio: f64,
    /// Below this share of branch-months with attendance, a period is not judged.
    #[serde(default = "min_reporting")]
    min_reporting_rate: f64,
    /// The inbox's units exports list every unit: those they omit are dissolved.
    #[serde(default)]
    units_complete: bool,
    /// The district's own header names and labels (a TOML file, see `ingest::aliases`).
    aliases: Option<String>,
    #[serde(default)]
    compute: ComputeSection,
    draw: Option<DrawOptions>,
    #[serde(default)]
    problems: Option<ProblemRules>,
    /// The annual appraisal (SPEC §6).
    #[serde(default)]
    appraisal: Option<AppraisalRules>,
    /// The star grading before the appraisal: refused with a pointer to `[appraisal]`.
    #[serde(default)]
    grading: Option<toml::Value>,
}

fn ratio() -> f64 {
    0.05
}

fn min_reporting() -> f64 {
    0.8
}

/// A checked pipeline: paths resolved against the pipeline file's folder.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub path: PathBuf,
    pub text: String,
    pub name: String,
    pub kind: Kind,
    pub period: Option<PeriodSpec>,
    pub inbox: Option<PathBuf>,
    pub warehouse: PathBuf,
    /// The output folder; `{period}` is replaced by the period.
    pub out: String,
    pub indicators: Option<PathBuf>,
    pub stages: Vec<Stage>,
    pub max_bad_ratio: f64,
    /// Below this share of branch-months with attendance, the run stops before draw, chart and
    /// report (unless forced).
    pub min_reporting_rate: f64,
    /// Whether the inbox's units exports are complete (`ingest --complete`).
    pub units_complete: bool,
    /// The district's own header names and labels, loaded and checked with the pipeline.
    pub aliases: std::sync::Arc<crate::ingest::aliases::Aliases>,
    pub compute: ComputeSection,
    /// Where the compute stage computes (from `[compute]`).
    pub engine: Engine,
    pub draw: DrawOptions,
    pub problems: ProblemRules,
    pub appraisal: AppraisalRules,
}

impl Pipeline {
    /// The catalogue the pipeline judges by (`over`, else its own, else the built-in one), its
    /// `[appraisal]` checked against it: a component or veto that names an indicator the
    /// catalogue lacks is a configuration error.
    pub fn catalogue(&self, over: Option<&Path>) -> anyhow::Result<Catalogue> {
        let catalogue = match over.or(self.indicators.as_deref()) {
            Some(path) => Catalogue::load(path)?,
            None => Catalogue::builtin(),
        };
        self.appraisal.check_against(&catalogue).map_err(|message| ConfigError {
            path: self.path.clone(),
            line: self.text.lines().position(|l| l.trim_start().starts_with("[appraisal")).map(|i| i + 1),
            message: format!("[appraisal] {message}"),
        })?;
        Ok(catalogue)
    }

    pub fn load(path: &Path) -> Result<Pipeline, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            line: None,
            message: format!("cannot read: {e}"),
        })?;
        Pipeline::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Pipeline, ConfigError> {
        let err = |line: Option<usize>, message: String| ConfigError { path: path.to_path_buf(), line, message };
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let (line, message) = crate::configfile::locate_toml_error(text, &e);
            err(line, message)
        })?;
        let line_of = |key: &str| text.lines().position(|l| l.trim_start().starts_with(key)).map(|i| i + 1);
        let here = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let base = normalise(&here.join(raw.root.as_deref().unwrap_or(".")));
        // Relative paths stay inside the base: a pipeline file cannot reach elsewhere unless its
        // author writes an absolute path, or declares a wider `root`.
        let check = |key: &str, p: &str| -> Result<(), ConfigError> {
            if Path::new(p).is_absolute() {
                return Ok(());
            }
            let inside = normalise(Path::new(p))
                .components()
                .next()
                .is_none_or(|c| !matches!(c, std::path::Component::ParentDir));
            if inside {
                Ok(())
            } else {
                Err(err(
                    line_of(key),
                    format!(
                        "`{key} = \"{p}\"` leaves the pipeline's folder; write an absolute path, or set `root` to the folder the paths are in"
                    ),
                ))
            }
        };
        for (key, value) in [
            ("inbox", raw.inbox.as_deref()),
            ("warehouse", Some(raw.warehouse.as_str())),
            ("out", Some(raw.out.as_str())),
            ("indicators", raw.indicators.as_deref()),
            ("aliases", raw.aliases.as_deref()),
        ] {
            if let Some(v) = value {
                check(key, v)?;
            }
        }
        let resolve = |p: &str| if Path::new(p).is_absolute() { PathBuf::from(p) } else { normalise(&base.join(p)) };
        if raw.stages.is_empty() {
            return Err(err(line_of("stages"), "`stages` lists no stage".into()));
        }
        let mut sorted = raw.stages.clone();
        sorted.sort();
        sorted.dedup();
        if sorted != raw.stages {
            return Err(err(
                line_of("stages"),
                "stages must be in order (ingest, compute, draw, chart, report), each once".into(),
            ));
        }
        if raw.stages.contains(&Stage::Ingest) && raw.inbox.is_none() {
            return Err(err(None, "the ingest stage needs `inbox`".into()));
        }
        if raw.stages.contains(&Stage::Draw) && raw.kind != Kind::Quarter {
            return Err(err(
                line_of("stages"),
                "the draw is per quarter: only a quarterly pipeline can have it".into(),
            ));
        }
        if !(0.0..=1.0).contains(&raw.max_bad_ratio) {
            return Err(err(line_of("max_bad_ratio"), "max_bad_ratio must be between 0 and 1".into()));
        }
        if !(0.0..=1.0).contains(&raw.min_reporting_rate) {
            return Err(err(line_of("min_reporting_rate"), "min_reporting_rate must be between 0 and 1".into()));
        }
        let period = match raw.period.as_deref() {
            None => None,
            Some(p) => {
                let spec: PeriodSpec = p.parse().map_err(|e: PeriodsError| err(line_of("period"), e.to_string()))?;
                if let PeriodSpec::One(first) | PeriodSpec::Range(first, _) = spec
                    && first.kind() != raw.kind.period_kind()
                {
                    return Err(err(line_of("period"), format!("period {p} is not a {:?}", raw.kind).to_lowercase()));
                }
                Some(spec)
            }
        };
        if raw.grading.is_some() {
            return Err(err(
                line_of("[grading]"),
                "`[grading]` is now `[appraisal]` (SPEC §6): move `bands`, `five_star_quota` and `levels` there; components, vetoes and the tie rule have defaults".into(),
            ));
        }
        if raw.appraisal.is_some() && raw.kind != Kind::Year {
            return Err(err(
                line_of("[appraisal]"),
                "the appraisal is annual: only a yearly pipeline can have it".into(),
            ));
        }
        let appraisal = raw.appraisal.clone().unwrap_or_default();
        if let Err((key, message)) = appraisal.check() {
            return Err(err(line_in_section(text, "[appraisal", key), format!("[appraisal] {key}: {message}")));
        }
        let engine = raw
            .compute
            .engine()
            .map_err(|(key, message)| err(line_in_section(text, "[compute]", key), format!("[compute] {message}")))?;
        let draw = raw.draw.clone().unwrap_or_default();
        if draw.level == Level::District {
            return Err(err(
                line_of("level"),
                format!("[draw] level '{}' is not township, community or branch", draw.level),
            ));
        }
        Ok(Pipeline {
            path: path.to_path_buf(),
            text: text.to_string(),
            name: raw.name,
            kind: raw.kind,
            period,
            inbox: raw.inbox.as_deref().map(resolve),
            warehouse: resolve(&raw.warehouse),
            out: resolve(&raw.out).to_string_lossy().into_owned(),
            indicators: raw.indicators.as_deref().map(resolve),
            stages: raw.stages,
            max_bad_ratio: raw.max_bad_ratio,
            min_reporting_rate: raw.min_reporting_rate,
            units_complete: raw.units_complete,
            aliases: std::sync::Arc::new(match raw.aliases.as_deref() {
                Some(p) => crate::ingest::aliases::Aliases::load(&resolve(p))
                    .map_err(|e| err(line_of("aliases"), e.to_string()))?,
                None => Default::default(),
            }),
            compute: raw.compute,
            engine,
            draw,
            problems: raw.problems.unwrap_or_default(),
            appraisal,
        })
    }

    /// The pipeline file's BLAKE3.
    pub fn hash(&self) -> String {
        blake3::hash(self.text.as_bytes()).to_hex().to_string()
    }

    pub fn out_dir(&self, period: Period) -> PathBuf {
        PathBuf::from(self.out.replace("{period}", &period.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "q"
kind = "quarter"
inbox = "in"
warehouse = "wh"
out = "out/{period}"
stages = ["ingest", "compute", "draw", "report"]
[draw]
count = 1
seed = 5
"#;

    #[test]
    fn paths_are_normalised() {
        assert_eq!(normalise(Path::new("pipelines/../out/./x")), PathBuf::from("out/x"));
        assert_eq!(normalise(Path::new("../a")), PathBuf::from("../a"));
        assert_eq!(normalise(Path::new("p/..")), PathBuf::from("."));
    }

    #[test]
    fn paths_resolve_against_the_file() {
        let p = Pipeline::parse(GOOD, Path::new("/srv/pipes/q.toml")).unwrap();
        assert_eq!(p.warehouse, PathBuf::from("/srv/pipes/wh"));
        assert_eq!(p.out_dir("2026Q1".parse().unwrap()), PathBuf::from("/srv/pipes/out/2026Q1"));
        assert_eq!(p.draw.count, 1);
    }

    #[test]
    fn errors_name_line_and_key() {
        let bad = GOOD.replace("count = 1", "count = 1\ncolour = 2");
        let e = Pipeline::parse(&bad, Path::new("q.toml")).unwrap_err();
        assert_eq!(e.line, Some(10), "{e}");
        assert!(e.message.contains("unknown field `colour`"), "{e}");
        let e = Pipeline::parse(&GOOD.replace("\"draw\", \"report\"", "\"report\", \"draw\""), Path::new("q.toml"))
            .unwrap_err();
        assert!(e.message.contains("in order"), "{e}");
        let e =
            Pipeline::parse(&GOOD.replace("kind = \"quarter\"", "kind = \"month\""), Path::new("q.toml")).unwrap_err();
        assert!(e.message.contains("only a quarterly pipeline"), "{e}");
    }

    #[test]
    fn paths_may_not_leave_the_folder_unless_absolute_or_under_a_declared_root() {
        let e = Pipeline::parse(&GOOD.replace("inbox = \"in\"", "inbox = \"../../etc\""), Path::new("/srv/p/q.toml"))
            .unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.message.contains("leaves the pipeline's folder"), "{e}");
        let ok = Pipeline::parse(&GOOD.replace("inbox = \"in\"", "inbox = \"/data/in\""), Path::new("/srv/p/q.toml"))
            .unwrap();
        assert_eq!(ok.inbox, Some(PathBuf::from("/data/in")));
        let rooted = Pipeline::parse(&format!("root = \"..\"\n{GOOD}"), Path::new("/srv/p/q.toml")).unwrap();
        assert_eq!(rooted.warehouse, PathBuf::from("/srv/wh"));
        assert!(
            Pipeline::parse(&GOOD.replace("out = \"out/{period}\"", "out = \"a/../../b\""), Path::new("/srv/p/q.toml"))
                .is_err()
        );
    }

    #[test]
    fn the_compute_engine_is_read_and_checked_at_its_line() {
        assert_eq!(Pipeline::parse(GOOD, Path::new("q.toml")).unwrap().engine, Engine::Local);
        let spark = format!(
            "{GOOD}[compute]\nengine = \"spark\"\nspark_remote = \"sc://10.0.0.5:15002\"\nspark_warehouse = \"/mnt/wh\"\n"
        );
        let remote = SparkRemote { url: "sc://10.0.0.5:15002".into(), warehouse: Some("/mnt/wh".into()) };
        assert_eq!(Pipeline::parse(&spark, Path::new("q.toml")).unwrap().engine, Engine::Spark(remote));
        let e =
            Pipeline::parse(&format!("{GOOD}[compute]\nprevious = true\nengine = \"spark\"\n"), Path::new("q.toml"))
                .unwrap_err();
        assert_eq!(e.line, Some(13), "{e}");
        assert!(e.message.contains("needs spark_remote"), "{e}");
        let e =
            Pipeline::parse(&spark.replace("sc://10.0.0.5:15002", "10.0.0.5:15002"), Path::new("q.toml")).unwrap_err();
        assert_eq!(e.line, Some(13), "{e}");
        assert!(e.message.contains("sc://HOST:PORT"), "{e}");
        let e = Pipeline::parse(&spark.replace("\"spark\"", "\"local\""), Path::new("q.toml")).unwrap_err();
        assert!(e.message.contains("go with engine = \"spark\""), "{e}");
    }
}
