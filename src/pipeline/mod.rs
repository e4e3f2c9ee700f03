//! Pipelines on a schedule: a pipeline file names its inbox, warehouse, outputs, catalogue
//! and stages; `run` resolves the periods, runs the stages with exactly the functions the single
//! verbs use, and writes a manifest per run under `DIR/runs/` (the run history).
//!
//! One run at a time per warehouse (`DIR/.run.lock`, an OS lock that dies with its holder, so
//! a killed run leaves nothing to clean up). A failed stage stops the run and leaves earlier
//! outputs as they were; `--from STAGE` resumes. Never prints: progress goes to `tracing`.

pub mod config;
pub mod periods;

pub use config::{ConfigError, Pipeline, Stage};
pub use periods::{PeriodSpec, PeriodsError};

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use chrono::NaiveDate;

use crate::indicators::{Catalogue, Engine};
use crate::ingest::{self, IngestOptions};
use crate::model::Table;
use crate::model::period::Period;
use crate::warehouse::history::{self, EngineRecord, InputRecord, Manifest, Output, StageRecord};
use crate::warehouse::{LockError, Warehouse, WarehouseLock};

/// How a run was asked for.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `None` takes the pipeline's own `period`, else `auto`.
    pub period: Option<PeriodSpec>,
    pub warehouse: Option<PathBuf>,
    pub today: NaiveDate,
    pub from: Option<Stage>,
    pub wait: bool,
    /// Judge a period even when too few branches reported (the pack then says so).
    pub force: bool,
    /// The exit code the process will end with, for the manifest: only the command layer
    /// chooses exit codes, and the manifest records the one it chose.
    pub exit_code_of: fn(RunEnding) -> i32,
}

/// How a run of one period ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnding {
    Success,
    /// Finished, but an ingest quarantined more rows than the pipeline allows.
    OverQuarantineRatio,
    Failed,
}

/// What a run did: a manifest per period, and whether any went over the quarantine ratio.
#[derive(Debug)]
pub struct RunReport {
    pub manifests: Vec<Manifest>,
    pub ending: RunEnding,
}

/// A period with too few branch-months reported to be judged (SPEC §4, missing is not zero).
#[derive(Debug, thiserror::Error)]
#[error(
    "{period}: attendance reported for {reported} of {expected} branch-months ({percent:.0}%), below the minimum of \
     {minimum:.0}%; not reported: {missing}. The period is not judged: draw, chart and report did not run. Run again \
     when the exports are in, or pass --force to judge it anyway (the pack then says how incomplete it is)"
)]
pub struct IncompleteData {
    pub period: Period,
    pub reported: usize,
    pub expected: usize,
    pub percent: f64,
    pub minimum: f64,
    /// Each month with the number of branches that sent nothing.
    pub missing: String,
}

/// The ingest stage run before the periods are resolved, so that `auto` sees the exports
/// that have just arrived in the inbox.
struct EarlyIngest {
    inputs: Vec<InputRecord>,
    result: Result<StageDone>,
    started_at: String,
    duration_ms: u64,
}

/// What a stage that succeeded reports.
struct StageDone {
    detail: String,
    outputs: Vec<Output>,
    over_quarantine_ratio: bool,
}

impl StageDone {
    fn new(detail: String, outputs: Vec<Output>) -> StageDone {
        StageDone { detail, outputs, over_quarantine_ratio: false }
    }
}

/// What every stage of one period's run shares.
struct StageContext<'a> {
    p: &'a Pipeline,
    catalogue: &'a Catalogue,
    wh: &'a Warehouse,
    period: Period,
    out_dir: PathBuf,
    names: &'a ingest::names::NameHasher,
    /// The review pack of the chart stage, for the report stage when nothing wrote in between.
    pack: Option<crate::review::Pack>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn hash_file(path: &Path) -> Result<Output> {
    let bytes = std::fs::read(path).with_context(|| format!("hashing {}", path.display()))?;
    Ok(Output { path: path.to_path_buf(), blake3: blake3::hash(&bytes).to_hex().to_string() })
}

/// The seed of a quarter's draw when the pipeline sets none: the first day of the quarter as a
/// number (2026Q2 → 20260401), so it is known in advance and the same for everyone.
pub fn default_seed(period: Period) -> u64 {
    let s = period.start();
    (chrono::Datelike::year(&s) as u64) * 10_000 + chrono::Datelike::month(&s) as u64 * 100 + 1
}

/// Run the pipeline for each period the options name. A failed stage is an error (after its
/// manifest is written).
pub fn run(p: &Pipeline, opts: &RunOptions, names: &ingest::names::NameHasher) -> Result<RunReport> {
    let spec = opts.period.or(p.period).unwrap_or(PeriodSpec::Auto);
    let mut periods = periods::resolve(spec, p.kind.period_kind(), opts.today)?;
    let catalogue = p.catalogue(None)?;
    let root = opts.warehouse.clone().unwrap_or_else(|| p.warehouse.clone());
    let wh =
        if p.stages.contains(&Stage::Ingest) { Warehouse::open_or_create(&root)? } else { Warehouse::open(&root)? };
    let _run_lock = run_lock(&wh, &format!("run {} {spec}", p.name), opts.wait)?;
    let mut early = None;
    let mut note = None;
    if spec == PeriodSpec::Auto {
        if p.stages.contains(&Stage::Ingest) && opts.from.is_none_or(|f| f <= Stage::Ingest) {
            early = Some(early_ingest(p, names, &wh));
        }
        let (period, why) = last_with_data(periods[0], &wh)?;
        (periods, note) = (vec![period], why);
    }
    let mut report = RunReport { manifests: Vec::new(), ending: RunEnding::Success };
    for period in periods {
        let (m, ending) = run_period(p, &catalogue, &wh, period, opts, names, early.take(), note.take())?;
        report.manifests.push(m);
        if ending == RunEnding::OverQuarantineRatio {
            report.ending = ending;
        }
    }
    Ok(report)
}

/// How far `auto` looks back for a period with attendance.
const AUTO_LOOK_BACK: usize = 8;

/// `auto` takes the calendar's last complete period when it has any attendance row, else the
/// latest period before it that has, and says why (a cron line run before the exports arrive
/// must not judge an empty quarter). With none in reach, the calendar's period stands, and the
/// reporting check stops the run.
fn last_with_data(calendar: Period, wh: &Warehouse) -> Result<(Period, Option<String>)> {
    let snapshot = wh.snapshot()?;
    let has_rows = |q: Period| -> Result<bool> {
        for (y, m) in q.months() {
            if !snapshot.partition_files(Table::Attendance, &crate::warehouse::month_partition(y, m))?.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    };
    let mut empty = vec![calendar.to_string()];
    let mut q = calendar;
    if has_rows(q)? {
        return Ok((q, None));
    }
    for _ in 0..AUTO_LOOK_BACK {
        q = q.previous();
        if has_rows(q)? {
            let why = format!("auto: no attendance rows for {} yet; took {q}, the last with data", empty.join(", "));
            return Ok((q, Some(why)));
        }
        empty.push(q.to_string());
    }
    Ok((calendar, Some(format!("auto: no attendance rows for {calendar} or the {AUTO_LOOK_BACK} periods before it"))))
}

fn early_ingest(p: &Pipeline, names: &ingest::names::NameHasher, wh: &Warehouse) -> EarlyIngest {
    let (started_at, t) = (now(), Instant::now());
    let (inputs, result) = ingest_stage(p, names, wh);
    EarlyIngest { inputs, result, started_at, duration_ms: t.elapsed().as_millis() as u64 }
}

/// Whether too few branch-months reported in the period to judge it.
fn incomplete(cx: &StageContext) -> Result<Option<IncompleteData>> {
    let snapshot = cx.wh.snapshot()?;
    let units = crate::indicators::tree::load(&snapshot, cx.period.last_day())?;
    let r = crate::indicators::reporting::reporting(&snapshot, &units, cx.period, &cx.catalogue.reporting)?;
    let Some(rate) = r.rate() else { return Ok(None) };
    if rate >= cx.p.min_reporting_rate {
        return Ok(None);
    }
    let missing: Vec<String> =
        r.missing_by_month().iter().map(|(m, list)| format!("{m} ({} branches)", list.len())).collect();
    Ok(Some(IncompleteData {
        period: cx.period,
        reported: r.reported(),
        expected: r.expected(),
        percent: rate * 100.0,
        minimum: cx.p.min_reporting_rate * 100.0,
        missing: missing.join(", "),
    }))
}

/// One run at a time per warehouse.
fn run_lock(wh: &Warehouse, what: &str, wait: bool) -> Result<WarehouseLock> {
    if wait {
        return Ok(WarehouseLock::acquire_named_blocking(wh.root(), ".run.lock", what)?);
    }
    WarehouseLock::acquire_named(wh.root(), ".run.lock", what).map_err(|e| match e {
        LockError::Busy { holder } => {
            anyhow!("another run holds the warehouse ({holder}); try again later, or pass --wait")
        }
        e => e.into(),
    })
}

fn new_manifest(p: &Pipeline, catalogue: &Catalogue, period: Period, opts: &RunOptions) -> Manifest {
    Manifest {
        run_id: format!("{}-{}-{period}", chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ"), p.name),
        version: env!("CARGO_PKG_VERSION").into(),
        pipeline: p.path.display().to_string(),
        pipeline_name: p.name.clone(),
        pipeline_blake3: p.hash(),
        catalogue_blake3: catalogue.hash(),
        period: period.to_string(),
        period_note: None,
        from_stage: opts.from.map(|s| s.name().to_string()),
        started_at: now(),
        finished_at: String::new(),
        duration_ms: 0,
        exit_code: 0,
        error: None,
        inputs: Vec::new(),
        stages: Vec::new(),
        compute_engine: p.stages.contains(&Stage::Compute).then(|| engine_record(&p.engine)),
    }
}

fn engine_record(engine: &Engine) -> EngineRecord {
    let (spark_remote, spark_warehouse) = match engine {
        Engine::Local => (None, None),
        Engine::Spark(r) => (Some(r.url.clone()), r.warehouse.clone()),
    };
    EngineRecord { engine: engine.name().to_string(), spark_remote, spark_warehouse }
}

#[allow(clippy::too_many_arguments)]
fn run_period(
    p: &Pipeline,
    catalogue: &Catalogue,
    wh: &Warehouse,
    period: Period,
    opts: &RunOptions,
    names: &ingest::names::NameHasher,
    mut early: Option<EarlyIngest>,
    note: Option<String>,
) -> Result<(Manifest, RunEnding)> {
    let started = Instant::now();
    let mut m = new_manifest(p, catalogue, period, opts);
    m.period_note = note;
    let mut ending = RunEnding::Success;
    let mut cx = StageContext { p, catalogue, wh, period, out_dir: p.out_dir(period), names, pack: None };
    let mut checked = opts.force;
    for (i, &stage) in p.stages.iter().enumerate() {
        if opts.from.is_some_and(|f| stage < f) {
            m.stages.push(record(stage, "skipped", now(), 0, "before --from".into(), vec![]));
            continue;
        }
        if stage.judges() && !checked {
            checked = true;
            if let Some(why) = incomplete(&cx)? {
                for &later in &p.stages[i..] {
                    m.stages.push(record(
                        later,
                        "skipped",
                        now(),
                        0,
                        "not judged: too few branches reported".into(),
                        vec![],
                    ));
                }
                m.error = Some(why.to_string());
                m.exit_code = (opts.exit_code_of)(RunEnding::Failed);
                finish(wh, &mut m, started)?;
                return Err(why.into());
            }
        }
        tracing::info!(stage = stage.name(), %period, "stage starts");
        let (started_at, t) = (now(), Instant::now());
        // The inbox was ingested already when `auto` chose the period: its outcome is this stage's.
        let early_ingest = if stage == Stage::Ingest { early.take() } else { None };
        let (result, duration_ms, started_at) = match early_ingest {
            Some(e) => {
                m.inputs.extend(e.inputs);
                (e.result, e.duration_ms, e.started_at)
            }
            None => {
                let result = run_stage(stage, &mut cx, &mut m);
                (result, t.elapsed().as_millis() as u64, started_at)
            }
        };
        match result {
            Ok(done) => {
                if done.over_quarantine_ratio {
                    ending = RunEnding::OverQuarantineRatio;
                }
                tracing::info!(stage = stage.name(), %period, duration_ms, "{}", done.detail);
                m.stages.push(record(stage, "ok", started_at, duration_ms, done.detail, done.outputs));
            }
            Err(e) => {
                let msg = format!("{e:#}");
                m.stages.push(record(stage, "failed", started_at, duration_ms, msg.clone(), vec![]));
                m.error = Some(format!("stage {} failed: {msg}", stage.name()));
                m.exit_code = (opts.exit_code_of)(RunEnding::Failed);
                finish(wh, &mut m, started)?;
                return Err(e.context(format!(
                    "stage {} failed for {period}; earlier outputs are kept; resume with --from {}",
                    stage.name(),
                    stage.name()
                )));
            }
        }
    }
    m.exit_code = (opts.exit_code_of)(ending);
    finish(wh, &mut m, started)?;
    Ok((m, ending))
}

fn record(
    stage: Stage,
    status: &str,
    started_at: String,
    duration_ms: u64,
    detail: String,
    outputs: Vec<Output>,
) -> StageRecord {
    StageRecord { stage: stage.name().into(), status: status.into(), started_at, duration_ms, detail, outputs }
}

fn finish(wh: &Warehouse, m: &mut Manifest, started: Instant) -> Result<()> {
    m.finished_at = now();
    m.duration_ms = started.elapsed().as_millis() as u64;
    history::write_manifest(wh, m)
}

fn run_stage(stage: Stage, cx: &mut StageContext, m: &mut Manifest) -> Result<StageDone> {
    match stage {
        Stage::Ingest => {
            let (inputs, result) = ingest_stage(cx.p, cx.names, cx.wh);
            m.inputs.extend(inputs);
            result
        }
        Stage::Compute => compute_stage(cx),
        Stage::Draw => draw_stage(cx),
        Stage::Chart => chart_stage(cx),
        Stage::Report => report_stage(cx),
    }
}

/// The inbox into the warehouse; the files' records go to the manifest whether it worked or not.
fn ingest_stage(
    p: &Pipeline,
    names: &ingest::names::NameHasher,
    wh: &Warehouse,
) -> (Vec<InputRecord>, Result<StageDone>) {
    let inbox = p.inbox.clone().expect("checked: ingest has an inbox");
    let mut opts = IngestOptions::new(names.clone());
    opts.parse.aliases = p.aliases.clone();
    if p.units_complete {
        opts.units.coverage = ingest::Coverage::Complete;
    }
    let r = match ingest::ingest(wh.root(), &[inbox], &opts, &ingest::NoProgress) {
        Ok(r) => r,
        Err(e) => return (Vec::new(), Err(e)),
    };
    let inputs = r.files.iter().map(input_record).collect();
    let failed = r.failed();
    if !failed.is_empty() {
        let why = anyhow!(
            "{} file(s) could not be read ({}); nothing was loaded",
            failed.len(),
            failed.iter().map(|f| f.file.as_str()).collect::<Vec<_>>().join(", ")
        );
        return (inputs, Err(why));
    }
    // The same balance as the ingest verb's: rows read = loaded + quarantined + duplicates
    // + skipped (titles and 合计 rows, which are not data).
    let mut detail = format!(
        "read {} rows: loaded {}, quarantined {}, duplicates {}",
        r.rows_read, r.loaded, r.quarantined, r.duplicates
    );
    if r.skipped > 0 {
        detail.push_str(&format!(", skipped {} (not data)", r.skipped));
    }
    (inputs, Ok(StageDone { detail, outputs: Vec::new(), over_quarantine_ratio: r.bad_ratio() > p.max_bad_ratio }))
}

fn input_record(f: &ingest::FileReport) -> InputRecord {
    let status = match &f.status {
        ingest::FileStatus::Loaded => "loaded".to_string(),
        ingest::FileStatus::AlreadyIngested { .. } => "already_ingested".to_string(),
        ingest::FileStatus::Failed { line, message } => {
            format!("failed{}: {message}", line.map(|l| format!(" at line {l}")).unwrap_or_default())
        }
    };
    InputRecord {
        file: f.path.display().to_string(),
        sheet: f.sheet.clone(),
        blake3: f.workbook_blake3.clone().unwrap_or_else(|| f.blake3.clone()),
        status,
        rows_read: f.rows_read,
        loaded: f.loaded,
        quarantined: f.quarantined,
        duplicates: f.duplicates,
    }
}

fn compute_stage(cx: &StageContext) -> Result<StageDone> {
    let mut periods = vec![cx.period];
    if cx.p.compute.previous {
        periods.insert(0, cx.period.previous());
    }
    let mut outputs = Vec::new();
    let mut detail = Vec::new();
    for q in periods {
        let s = crate::indicators::compute(cx.wh, cx.catalogue, q, &cx.p.engine)?;
        detail.push(format!("{q}: {} rows, {} red, {} weak", s.rows, s.red, s.weak_candidates.len()));
        // Named by the public path: snapshot folders come and go, the table path stays.
        let snap = cx.wh.snapshot()?;
        let part = crate::warehouse::period_partition(&q);
        for f in snap.partition_files(crate::model::Table::Indicators, &part)? {
            let public = cx.wh.root().join("indicators").join(&part).join(f.file_name().expect("a file"));
            outputs.push(hash_file(&public)?);
        }
    }
    Ok(StageDone::new(detail.join("; "), outputs))
}

fn draw_stage(cx: &StageContext) -> Result<StageDone> {
    let mut opts = cx.p.draw.clone();
    opts.seed = Some(opts.seed.unwrap_or_else(|| default_seed(cx.period)));
    match crate::review::run_draw(cx.wh, cx.period, &opts) {
        Ok(d) => Ok(StageDone::new(format!("seed {}: drew {}", d.seed, d.chosen.join(", ")), Vec::new())),
        // A re-run does not draw again: the first draw of the quarter stands.
        Err(e) if e.downcast_ref::<crate::review::AlreadyDrawn>().is_some() => {
            Ok(StageDone::new(format!("kept the existing draw: {e}"), Vec::new()))
        }
        Err(e) => Err(e),
    }
}

fn chart_stage(cx: &mut StageContext) -> Result<StageDone> {
    let loaded = crate::review::load_or_reuse(cx.wh, cx.catalogue, cx.period, cx.pack.take())?;
    let charts = crate::report::all_charts(cx.wh, &loaded, &cx.p.appraisal, &cx.p.problems)?;
    cx.pack = Some(loaded);
    let dest = cx.out_dir.join("charts");
    let rendered = crate::charts::write_all(&charts, &dest)?;
    let mut outputs = Vec::new();
    for r in &rendered {
        outputs.push(hash_file(&r.png)?);
        outputs.push(hash_file(&r.svg)?);
    }
    Ok(StageDone::new(format!("{} charts in {}", rendered.len(), dest.display()), outputs))
}

fn report_stage(cx: &mut StageContext) -> Result<StageDone> {
    let p = cx.p;
    let files =
        crate::report::build(cx.wh, cx.catalogue, cx.period, &p.problems, &p.appraisal, &cx.out_dir, cx.pack.take())?;
    Ok(StageDone::new(
        format!("report {}", files.html.display()),
        vec![
            hash_file(&files.html)?,
            hash_file(&files.charts_html)?,
            hash_file(&files.slides_html)?,
            hash_file(&files.xlsx)?,
        ],
    ))
}
