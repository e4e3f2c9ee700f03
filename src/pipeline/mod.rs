//! Pipelines on a schedule: a pipeline file names its inbox, warehouse, outputs, catalogue
//! and stages; `run` resolves the periods, runs the stages with exactly the functions the single
//! verbs use, and writes a manifest per run under `DIR/runs/` (the run history).
//!
//! One run at a time per warehouse (`DIR/.run.lock`, an OS lock that dies with its holder, so
//! a killed run leaves nothing to clean up). A failed stage stops the run and leaves earlier
//! outputs as they were; `--from STAGE` resumes. Never prints: progress goes to `tracing`.

pub mod config;
pub mod history;
pub mod periods;

pub use config::{ConfigError, Pipeline, Stage};

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::exit::Outcome;
use crate::indicators::Catalogue;
use crate::ingest::{self, IngestOptions};
use crate::period::Period;
use crate::warehouse::{LockError, Warehouse, WarehouseLock};

/// How a run was asked for.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `auto`, a period or a range; `None` takes the pipeline's own `period`, else `auto`.
    pub period: Option<String>,
    pub warehouse: Option<PathBuf>,
    pub today: NaiveDate,
    pub from: Option<Stage>,
    pub wait: bool,
}

/// A file a stage wrote, with its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Output {
    pub path: PathBuf,
    pub blake3: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    pub stage: String,
    /// `ok`, `failed` or `skipped`.
    pub status: String,
    pub started_at: String,
    pub duration_ms: u64,
    pub detail: String,
    pub outputs: Vec<Output>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputRecord {
    pub file: String,
    pub blake3: String,
    pub status: String,
    pub rows_read: u64,
    pub loaded: u64,
    pub quarantined: u64,
    pub duplicates: u64,
}

/// The manifest of one run of one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub run_id: String,
    pub version: String,
    pub pipeline: String,
    pub pipeline_name: String,
    pub pipeline_blake3: String,
    pub catalogue_blake3: String,
    pub period: String,
    pub from_stage: Option<String>,
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: u64,
    pub exit_code: i32,
    pub error: Option<String>,
    pub inputs: Vec<InputRecord>,
    pub stages: Vec<StageRecord>,
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

/// Run the pipeline for each period the options name. Returns the manifests and the outcome;
/// a failed stage is an error (after its manifest is written).
pub fn run(p: &Pipeline, opts: &RunOptions, names: &ingest::names::NameHasher) -> Result<(Vec<Manifest>, Outcome)> {
    let spec = opts.period.clone().or_else(|| p.period.clone()).unwrap_or_else(|| "auto".into());
    let periods = periods::resolve(&spec, p.kind.period_kind(), opts.today)
        .map_err(|e| crate::exit::UsageError(e.to_string()))?;
    let catalogue = match &p.indicators {
        Some(path) => Catalogue::load(path)?,
        None => Catalogue::builtin(),
    };
    let root = opts.warehouse.clone().unwrap_or_else(|| p.warehouse.clone());
    let wh =
        if p.stages.contains(&Stage::Ingest) { Warehouse::open_or_create(&root)? } else { Warehouse::open(&root)? };
    let what = format!("run {} {spec}", p.name);
    let _run_lock = if opts.wait {
        WarehouseLock::acquire_named_blocking(wh.root(), ".run.lock", &what)?
    } else {
        WarehouseLock::acquire_named(wh.root(), ".run.lock", &what).map_err(|e| match e {
            LockError::Busy { holder } => {
                anyhow!("another run holds the warehouse ({holder}); try again later, or pass --wait")
            }
            e => e.into(),
        })?
    };
    let mut manifests = Vec::new();
    let mut outcome = Outcome::Success;
    for period in periods {
        let (m, o) = run_period(p, &catalogue, &wh, period, opts, names)?;
        manifests.push(m);
        if o == Outcome::TooManyQuarantined {
            outcome = o;
        }
    }
    Ok((manifests, outcome))
}

fn run_period(
    p: &Pipeline,
    catalogue: &Catalogue,
    wh: &Warehouse,
    period: Period,
    opts: &RunOptions,
    names: &ingest::names::NameHasher,
) -> Result<(Manifest, Outcome)> {
    let started = Instant::now();
    let mut m = Manifest {
        run_id: format!("{}-{}-{period}", chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ"), p.name),
        version: env!("CARGO_PKG_VERSION").into(),
        pipeline: p.path.display().to_string(),
        pipeline_name: p.name.clone(),
        pipeline_blake3: p.hash(),
        catalogue_blake3: catalogue.hash(),
        period: period.to_string(),
        from_stage: opts.from.map(|s| s.name().to_string()),
        started_at: now(),
        finished_at: String::new(),
        duration_ms: 0,
        exit_code: 0,
        error: None,
        inputs: Vec::new(),
        stages: Vec::new(),
    };
    let mut outcome = Outcome::Success;
    let out_dir = p.out_dir(period);
    // The review pack of the chart stage, for the report stage when nothing wrote in between.
    let mut pack: Option<crate::review::Pack> = None;
    for stage in &p.stages {
        if opts.from.is_some_and(|f| *stage < f) {
            m.stages.push(StageRecord {
                stage: stage.name().into(),
                status: "skipped".into(),
                started_at: now(),
                duration_ms: 0,
                detail: "before --from".into(),
                outputs: vec![],
            });
            continue;
        }
        tracing::info!(stage = stage.name(), %period, "stage starts");
        let t = Instant::now();
        let started_at = now();
        let result = run_stage(*stage, p, catalogue, wh, period, &out_dir, names, &mut m, &mut pack);
        let duration_ms = t.elapsed().as_millis() as u64;
        match result {
            Ok((detail, outputs, o)) => {
                if o == Outcome::TooManyQuarantined {
                    outcome = o;
                }
                tracing::info!(stage = stage.name(), %period, duration_ms, "{detail}");
                m.stages.push(StageRecord {
                    stage: stage.name().into(),
                    status: "ok".into(),
                    started_at,
                    duration_ms,
                    detail,
                    outputs,
                });
            }
            Err(e) => {
                let msg = format!("{e:#}");
                m.stages.push(StageRecord {
                    stage: stage.name().into(),
                    status: "failed".into(),
                    started_at,
                    duration_ms,
                    detail: msg.clone(),
                    outputs: vec![],
                });
                m.error = Some(format!("stage {} failed: {msg}", stage.name()));
                m.exit_code = 1;
                finish(wh, &mut m, started)?;
                return Err(e.context(format!(
                    "stage {} failed for {period}; earlier outputs are kept; resume with --from {}",
                    stage.name(),
                    stage.name()
                )));
            }
        }
    }
    m.exit_code = if outcome == Outcome::TooManyQuarantined { 3 } else { 0 };
    finish(wh, &mut m, started)?;
    Ok((m, outcome))
}

fn finish(wh: &Warehouse, m: &mut Manifest, started: Instant) -> Result<()> {
    m.finished_at = now();
    m.duration_ms = started.elapsed().as_millis() as u64;
    history::write_manifest(wh, m)
}

type StageResult = Result<(String, Vec<Output>, Outcome)>;

#[allow(clippy::too_many_arguments)]
fn run_stage(
    stage: Stage,
    p: &Pipeline,
    catalogue: &Catalogue,
    wh: &Warehouse,
    period: Period,
    out_dir: &Path,
    names: &ingest::names::NameHasher,
    m: &mut Manifest,
    pack: &mut Option<crate::review::Pack>,
) -> StageResult {
    match stage {
        Stage::Ingest => {
            let inbox = p.inbox.clone().expect("checked: ingest has an inbox");
            let opts = IngestOptions::new(names.clone());
            let r = ingest::ingest(wh.root(), &[inbox], &opts, &ingest::NoProgress)?;
            for f in &r.files {
                let status = match &f.status {
                    ingest::FileStatus::Loaded => "loaded".to_string(),
                    ingest::FileStatus::AlreadyIngested { .. } => "already_ingested".to_string(),
                    ingest::FileStatus::Failed { line, message } => {
                        format!("failed{}: {message}", line.map(|l| format!(" at line {l}")).unwrap_or_default())
                    }
                };
                m.inputs.push(InputRecord {
                    file: f.path.display().to_string(),
                    blake3: f.blake3.clone(),
                    status,
                    rows_read: f.rows_read,
                    loaded: f.loaded,
                    quarantined: f.quarantined,
                    duplicates: f.duplicates,
                });
            }
            let failed = r.failed();
            if !failed.is_empty() {
                return Err(anyhow!(
                    "{} file(s) could not be read ({}); nothing was loaded",
                    failed.len(),
                    failed.iter().map(|f| f.file.as_str()).collect::<Vec<_>>().join(", ")
                ));
            }
            let detail = format!(
                "read {} rows: loaded {}, quarantined {}, duplicates {}",
                r.rows_read, r.loaded, r.quarantined, r.duplicates
            );
            let o = if r.bad_ratio() > p.max_bad_ratio { Outcome::TooManyQuarantined } else { Outcome::Success };
            Ok((detail, Vec::new(), o))
        }
        Stage::Compute => {
            let mut periods = vec![period];
            if p.compute.previous {
                periods.insert(0, period.previous());
            }
            let mut outputs = Vec::new();
            let mut detail = Vec::new();
            for q in periods {
                let s = crate::indicators::compute(wh, catalogue, q)?;
                detail.push(format!("{q}: {} rows, {} red, {} weak", s.rows, s.red, s.weak_candidates.len()));
                // Named by the public path: snapshot folders come and go, the table path stays.
                let snap = wh.snapshot()?;
                let part = crate::warehouse::period_partition(&q);
                for f in snap.partition_files(crate::warehouse::Table::Indicators, &part)? {
                    let public = wh.root().join("indicators").join(&part).join(f.file_name().expect("a file"));
                    outputs.push(hash_file(&public)?);
                }
            }
            Ok((detail.join("; "), outputs, Outcome::Success))
        }
        Stage::Draw => {
            let mut opts = p.draw.clone();
            opts.seed = Some(opts.seed.unwrap_or_else(|| default_seed(period)));
            match crate::review::run_draw(wh, period, &opts) {
                Ok(d) => Ok((format!("seed {}: drew {}", d.seed, d.chosen.join(", ")), Vec::new(), Outcome::Success)),
                // A re-run does not draw again: the first draw of the quarter stands.
                Err(e) if e.downcast_ref::<crate::review::AlreadyDrawn>().is_some() => {
                    Ok((format!("kept the existing draw: {e}"), Vec::new(), Outcome::Success))
                }
                Err(e) => Err(e),
            }
        }
        Stage::Chart => {
            // Render beside the old charts, then swap, so a failure keeps the old ones.
            let loaded = crate::review::load_or_reuse(wh, catalogue, period, pack.take())?;
            let charts = crate::report::all_charts(&loaded, &p.grading);
            *pack = Some(loaded);
            let dest = out_dir.join("charts");
            let tmp = out_dir.join(".charts.tmp");
            if tmp.exists() {
                std::fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
            }
            let rendered = crate::charts::render_all(&charts, &tmp)?;
            if dest.exists() {
                std::fs::remove_dir_all(&dest)?;
            }
            std::fs::rename(&tmp, &dest).with_context(|| format!("moving charts into {}", dest.display()))?;
            let mut outputs = Vec::new();
            for r in &rendered {
                for f in [&r.png, &r.svg] {
                    let final_path = dest.join(f.file_name().expect("file"));
                    outputs.push(hash_file(&final_path)?);
                }
            }
            Ok((format!("{} charts in {}", rendered.len(), dest.display()), outputs, Outcome::Success))
        }
        Stage::Report => {
            let files = crate::report::build(wh, catalogue, period, &p.problems, &p.grading, out_dir, pack.take())?;
            Ok((
                format!("report {}", files.html.display()),
                vec![hash_file(&files.html)?, hash_file(&files.xlsx)?],
                Outcome::Success,
            ))
        }
    }
}
