//! The run history: one JSON manifest per pipeline run under `DIR/runs/`, written atomically,
//! read back for `dangjian runs` and as the `runs` table of `query`. The pipeline fills the
//! manifests; this module only stores and reads them.

use std::path::PathBuf;

use anyhow::{Context, Result};
use polars::prelude::*;

use serde::{Deserialize, Serialize};

use super::Warehouse;

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
    /// The sheet read, when a workbook is read sheet by sheet (one record per sheet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    /// The file's BLAKE3 (the workbook's, for a sheet).
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
    /// Why `auto` chose this period, when it was not the calendar's last complete one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_note: Option<String>,
    pub from_stage: Option<String>,
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: u64,
    pub exit_code: i32,
    pub error: Option<String>,
    pub inputs: Vec<InputRecord>,
    pub stages: Vec<StageRecord>,
    /// Where the compute stage computed, when the run has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_engine: Option<EngineRecord>,
}

/// The engine of a run's compute stage: `local`, or `spark` with its server and the
/// warehouse's path as the cluster saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineRecord {
    pub engine: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spark_remote: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spark_warehouse: Option<String>,
}

fn dir(wh: &Warehouse) -> PathBuf {
    wh.root().join("runs")
}

pub fn write_manifest(wh: &Warehouse, m: &Manifest) -> Result<()> {
    let d = dir(wh);
    std::fs::create_dir_all(&d)?;
    let path = d.join(format!("{}.json", m.run_id));
    crate::output::write_atomically(&path, serde_json::to_string_pretty(m)?.as_bytes())
}

/// Every manifest, oldest first.
pub fn load(wh: &Warehouse) -> Result<Vec<Manifest>> {
    let d = dir(wh);
    if !d.is_dir() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&d)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f)?;
            serde_json::from_str(&text).with_context(|| format!("reading {}", f.display()))
        })
        .collect()
}

/// The `runs` table: one row per run.
pub fn runs_frame(list: &[Manifest]) -> Result<DataFrame> {
    let s = |f: &dyn Fn(&Manifest) -> String| list.iter().map(f).collect::<Vec<String>>();
    Ok(DataFrame::new(
        list.len(),
        vec![
            Column::new("run_id".into(), s(&|m| m.run_id.clone())),
            Column::new("pipeline".into(), s(&|m| m.pipeline_name.clone())),
            Column::new("period".into(), s(&|m| m.period.clone())),
            Column::new("started_at".into(), s(&|m| m.started_at.clone())),
            Column::new("duration_ms".into(), list.iter().map(|m| m.duration_ms as i64).collect::<Vec<_>>()),
            Column::new("exit_code".into(), list.iter().map(|m| m.exit_code).collect::<Vec<_>>()),
            Column::new(
                "stages".into(),
                s(&|m| m.stages.iter().map(|x| format!("{}:{}", x.stage, x.status)).collect::<Vec<_>>().join(" ")),
            ),
            Column::new("inputs".into(), list.iter().map(|m| m.inputs.len() as i64).collect::<Vec<_>>()),
            Column::new("error".into(), list.iter().map(|m| m.error.clone()).collect::<Vec<_>>()),
            Column::new("version".into(), s(&|m| m.version.clone())),
            Column::new("pipeline_blake3".into(), s(&|m| m.pipeline_blake3.clone())),
        ],
    )?)
}
