//! The command line (SPEC §1), and nothing else: clap definitions, and the step that turns raw
//! arguments into checked values (periods parsed, encodings and formats mapped) before any
//! work starts. Commands receive these typed values, never raw strings.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::model::Level;
use crate::model::period::Period;
use crate::pipeline::{PeriodSpec, Stage};

#[derive(Debug, Parser)]
#[command(name = "dangjian", version, about = "Grassroots Party-building analytics: ingest, warehouse, indicators, review pack", long_about = None)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log lines as text or as JSON (one event per line, for schedulers).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load exports (CSV or XLSX files, or folders of them) into the warehouse.
    Ingest(IngestArgs),
    /// Compute the indicators of a period into the warehouse.
    Compute(ComputeArgs),
    /// Draw the charts of a period (PNG and SVG).
    Chart(OutArgs),
    /// Write the report of a period (HTML and XLSX).
    Report(OutArgs),
    /// Draw units for the roving inspection of a quarter.
    Draw(DrawArgs),
    /// Run read-only SQL over the warehouse tables.
    Query(QueryArgs),
    /// Show what ingest would do with files, without writing anything.
    Inspect(InspectArgs),
    /// Look a warehouse over (layout, every table file, leftovers of killed writes); --repair
    /// mends what can be mended.
    Check(CheckArgs),
    /// Run a pipeline file.
    Run(RunArgs),
    /// List the last pipeline runs.
    Runs(RunsArgs),
    /// Write the warehouse DDL and the indicator SQL for another engine.
    Sql(SqlArgs),
    /// Generate a realistic sample district's exports.
    Sample(SampleArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    Units,
    Attendance,
    Points,
    Assessment,
    Tasks,
    Findings,
}

/// The levels a draw can be made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LevelArg {
    Township,
    Community,
    Branch,
}

/// The stages of a pipeline, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StageArg {
    Ingest,
    Compute,
    Draw,
    Chart,
    Report,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EncodingArg {
    Auto,
    #[value(name = "utf-8", alias = "utf8")]
    Utf8,
    #[value(alias = "gbk")]
    Gb18030,
}

/// How export files are read: what `ingest` and `inspect` share.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// The kind of every file; detected from each file's header when absent.
    #[arg(long, value_enum)]
    pub kind: Option<KindArg>,
    /// The text encoding of CSV files.
    #[arg(long, value_enum, default_value_t = EncodingArg::Auto)]
    pub encoding: EncodingArg,
    /// The sheet to read from XLSX files (default: the first that holds a table).
    #[arg(long)]
    pub sheet: Option<String>,
    /// A TOML file of the district's own header names and labels (see pipelines/aliases.toml).
    #[arg(long, value_name = "FILE")]
    pub aliases: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The warehouse folder (created if missing).
    #[arg(long)]
    pub warehouse: PathBuf,
    #[command(flatten)]
    pub read: ReadArgs,
    /// Exit with code 3 when quarantined rows exceed this share of rows read.
    #[arg(long, default_value_t = 0.05, value_parser = ratio)]
    pub max_bad_ratio: f64,
    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Validated rows kept in memory until they are merged, in MiB; beyond it, and for any file
    /// larger than a thirty-second of it, they wait on disk in the warehouse's spill/ folder (same
    /// result, less memory).
    #[arg(long, default_value_t = crate::ingest::DEFAULT_MEMORY_BUDGET >> 20, value_name = "MIB")]
    pub memory_budget_mib: usize,
    /// A plain CSV of this many MiB or more is read in blocks on every core (a year's backfill
    /// in one file); 0 reads every CSV so.
    #[arg(long, default_value_t = crate::ingest::blocks::Sizes::default().file >> 20, value_name = "MIB")]
    pub blocks_from_mib: u64,
    /// The day a changed unit without 生效日期 takes effect (YYYY-MM-DD); by default the first day
    /// of the month of the units export's file time.
    #[arg(long, value_name = "DATE", value_parser = day)]
    pub effective: Option<chrono::NaiveDate>,
    /// The units exports list every unit: units they omit are dissolved from their effective
    /// day (kept in the history, gone from later periods).
    #[arg(long)]
    pub complete: bool,
    /// Files or folders to read (.csv, .xlsx).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

fn day(s: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("'{s}' is not a date like 2026-01-01"))
}

fn ratio(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("'{s}' is not a ratio between 0 and 1")),
    }
}

#[derive(Debug, Args)]
pub struct ComputeArgs {
    #[arg(long)]
    pub warehouse: PathBuf,
    /// A month (2026-03), a quarter (2026Q1) or a year (2026).
    #[arg(long)]
    pub period: Period,
    /// The indicator catalogue (default: the built-in one, as in pipelines/indicators.toml).
    #[arg(long)]
    pub indicators: Option<PathBuf>,
    /// Where the indicators are computed: here, or on a Spark Connect server (a build with
    /// `--features spark`).
    #[arg(long, value_enum, default_value_t = EngineArg::Local)]
    pub engine: EngineArg,
    /// The Spark Connect server, sc://HOST:PORT (with --engine spark).
    #[arg(long, value_name = "URL")]
    pub spark_remote: Option<String>,
    /// The warehouse's path as the Spark cluster sees it (default: this one's absolute path).
    #[arg(long, value_name = "PATH")]
    pub spark_warehouse: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineArg {
    Local,
    Spark,
}

#[derive(Debug, Args)]
pub struct OutArgs {
    #[arg(long)]
    pub warehouse: PathBuf,
    #[arg(long)]
    pub period: Period,
    /// The output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// The indicator catalogue the period was computed with (default: the pipeline's, else the
    /// built-in one).
    #[arg(long)]
    pub indicators: Option<PathBuf>,
    /// The pipeline whose `[problems]` and `[appraisal]` rules apply, as its own chart and
    /// report stages apply them (default: SPEC §5 and §6's).
    #[arg(long)]
    pub pipeline: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DrawArgs {
    #[arg(long)]
    pub warehouse: PathBuf,
    /// The quarter to draw for (2026Q1).
    #[arg(long)]
    pub period: Period,
    /// How many units to draw (default 2).
    #[arg(long, default_value_t = 2)]
    pub count: u32,
    /// The seed; anyone can re-derive the draw from it and the candidate list.
    #[arg(long)]
    pub seed: u64,
    /// The level drawn from.
    #[arg(long, value_enum, default_value_t = LevelArg::Community)]
    pub level: LevelArg,
    /// Draw one unit per category in turn.
    #[arg(long)]
    pub stratify: bool,
    /// Leave out units drawn in the last K quarters.
    #[arg(long, default_value_t = 0)]
    pub exclude_recent: u32,
    /// Weight of weak-unit candidates (1 = no preference; needs the quarter computed).
    #[arg(long, default_value_t = 1.0)]
    pub weak_weight: f64,
    /// Draw again for a period already drawn (recorded as such).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Table,
    Csv,
    Json,
    Parquet,
    Xlsx,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[arg(long)]
    pub warehouse: PathBuf,
    #[arg(long, value_enum, default_value_t = FormatArg::Table)]
    pub format: FormatArg,
    /// Write to this file instead of stdout (required for parquet and xlsx).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// A value for a `:name` placeholder in the SQL, as NAME=VALUE (repeatable); values are
    /// inserted as quoted literals, never as SQL.
    #[arg(long = "param", value_parser = param)]
    pub params: Vec<(String, String)>,
    /// The SQL, `@FILE` to read it from a file, or `DESCRIBE TABLE`. Tables: units,
    /// units_history, attendance, points, assessment, quarantine, ingests, indicators, problems,
    /// draws, submissions, runs.
    pub sql: String,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[arg(long)]
    pub warehouse: PathBuf,
    /// Restore a copy's links and remove what killed writes left, under the writer lock.
    #[arg(long)]
    pub repair: bool,
    /// Print the findings as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Check unit references against this warehouse's units (unchecked without it).
    #[arg(long)]
    pub warehouse: Option<PathBuf>,
    #[command(flatten)]
    pub read: ReadArgs,
    /// Print the findings as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Files or folders to inspect (.csv, .tsv, .txt, .xlsx).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

fn param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
            Ok((k.to_string(), v.to_string()))
        }
        _ => Err(format!("'{s}' is not NAME=VALUE (a name of letters, digits and _)")),
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    pub pipeline: PathBuf,
    /// A period, a range FROM..TO (backfilled in order), or `auto` for the last complete one.
    #[arg(long)]
    pub period: Option<PeriodSpec>,
    /// Another warehouse than the pipeline's.
    #[arg(long)]
    pub warehouse: Option<PathBuf>,
    /// The day `auto` counts from (default: today), for tests and backfills.
    #[arg(long)]
    pub today: Option<chrono::NaiveDate>,
    /// Resume from this stage (the earlier ones are skipped).
    #[arg(long, value_enum)]
    pub from: Option<StageArg>,
    /// Wait for another run on the warehouse to finish instead of giving up.
    #[arg(long)]
    pub wait: bool,
    /// Draw, chart and report a period even when fewer branch-months reported than the
    /// pipeline's `min_reporting_rate` (the pack then says how incomplete the data is).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    #[arg(long)]
    pub warehouse: PathBuf,
    #[arg(long, default_value_t = 10)]
    pub last: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Dialect {
    Spark,
}

#[derive(Debug, Args)]
pub struct SqlArgs {
    #[arg(long, value_enum)]
    pub dialect: Dialect,
    #[arg(long)]
    pub warehouse: PathBuf,
    #[arg(long)]
    pub period: Option<Period>,
    #[arg(long)]
    pub indicators: Option<PathBuf>,
    /// With a year: the annual appraisal's script (SPEC §6), over the stored indicators of the
    /// year and its quarters, instead of the catalogue's.
    #[arg(long, requires = "period")]
    pub appraisal: bool,
    /// The annual pipeline whose `[appraisal]` the script follows (default: SPEC §6's).
    #[arg(long, requires = "appraisal")]
    pub pipeline: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SampleArgs {
    /// The output folder (created).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of units (all levels).
    #[arg(long, default_value_t = 30)]
    pub units: u32,
    /// Number of members.
    #[arg(long, default_value_t = 150)]
    pub members: u32,
    /// Months of history, ending with the last month of the end year.
    #[arg(long, default_value_t = 15)]
    pub months: u32,
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// Share of rows to spoil on purpose, one spoil of each kind the validator knows in turn.
    #[arg(long, default_value_t = 0.0, value_parser = ratio)]
    pub dirty: f64,
    /// The last month of the history (default 2026-03).
    #[arg(long, default_value = "2026-03")]
    pub end: Period,
    /// Every file as UTF-8 CSV with English headers and codes (for benchmarks against tools
    /// that read nothing else).
    #[arg(long)]
    pub plain: bool,
}

impl KindArg {
    pub fn kind(self) -> crate::model::Kind {
        use crate::model::Kind;
        match self {
            KindArg::Units => Kind::Units,
            KindArg::Attendance => Kind::Attendance,
            KindArg::Points => Kind::Points,
            KindArg::Assessment => Kind::Assessment,
            KindArg::Tasks => Kind::Tasks,
            KindArg::Findings => Kind::Findings,
        }
    }
}

impl LevelArg {
    pub fn level(self) -> Level {
        match self {
            LevelArg::Township => Level::Township,
            LevelArg::Community => Level::Community,
            LevelArg::Branch => Level::Branch,
        }
    }
}

impl StageArg {
    pub fn stage(self) -> Stage {
        match self {
            StageArg::Ingest => Stage::Ingest,
            StageArg::Compute => Stage::Compute,
            StageArg::Draw => Stage::Draw,
            StageArg::Chart => Stage::Chart,
            StageArg::Report => Stage::Report,
        }
    }
}

impl EncodingArg {
    pub fn choice(self) -> crate::ingest::EncodingChoice {
        use crate::ingest::EncodingChoice;
        match self {
            EncodingArg::Auto => EncodingChoice::Auto,
            EncodingArg::Utf8 => EncodingChoice::Utf8,
            EncodingArg::Gb18030 => EncodingChoice::Gb18030,
        }
    }
}

impl FormatArg {
    pub fn format(self) -> crate::query::Format {
        use crate::query::Format;
        match self {
            FormatArg::Table => Format::Table,
            FormatArg::Csv => Format::Csv,
            FormatArg::Json => Format::Json,
            FormatArg::Parquet => Format::Parquet,
            FormatArg::Xlsx => Format::Xlsx,
        }
    }
}
