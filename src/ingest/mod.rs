//! Ingest: export files (CSV in UTF-8 or GB18030, XLSX) into the warehouse, validated, with
//! every refused row in quarantine and every row accounted for:
//! rows read = rows loaded + rows quarantined + duplicates dropped, per file and in total.
//!
//! Order of work: find the files; hash those the ledger may know (the same name, size and
//! time) and skip content already ingested; detect each file's kind from its header; validate
//! units first and check the tree; validate the other kinds against the final units, in
//! parallel, hashing each file as it is read (content found known then is dropped, so a file
//! is known by its bytes whatever its name); merge into one new snapshot; write the
//! clerk-facing CSVs. A file that cannot be read at all fails the whole ingest, and nothing is
//! written. This module reports through its return value and a progress callback; it never
//! prints.

pub mod aliases;
pub mod blocks;
pub mod coalesce;
pub mod decode;
pub mod exports;
pub mod files;
pub mod inspect;
pub mod keycheck;
pub mod keyfilter;
pub mod keyspill;
pub mod keytable;
pub mod merge;
pub mod names;
pub mod parse;
pub mod read;
pub mod schema;
pub mod units;
pub mod validate;
pub mod values;

use crate::model::Kind;
pub use decode::EncodingChoice;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::Datelike;
use polars::prelude::*;
use rayon::prelude::*;

use crate::model::Table;
use crate::warehouse::{self, Warehouse};
use exports::QuarantineRecord;
use files::InputFile;
use keyspill::Keys;
use names::NameHasher;
pub use parse::SkippedRow;
use parse::{FileError, ParseOptions, ParsedFile};
pub use units::Coverage;
use units::{Origin, UnitRow};
use validate::RejectedRow;

/// How an ingest runs.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub parse: ParseOptions,
    pub names: NameHasher,
    /// How units exports enter the tree's history.
    pub units: UnitsOptions,
    /// Validated rows kept in memory until the merge, in bytes; past it they wait on disk.
    pub memory_budget: usize,
    /// When a CSV is read in blocks on every core, and how large a block is (see `blocks`).
    pub blocks: blocks::Sizes,
}

/// The default of [`IngestOptions::memory_budget`]: 64 MiB. A file whose rows take more than
/// a thirty-second of it (2 MiB) goes to disk at once in stored form, and when it is the whole of its
/// partition (a month's export) the merge moves the file in: no second write. The budget is
/// for many small files (one per unit) whose pieces share partitions: spilling those costs a
/// file each, written and read back. 994 files of one month (844 k rows): 1.3 s at 64 MiB
/// against 2.5 s at 16 MiB with every file under the budget; 9.2 M rows in 12 files: 0.55-0.61
/// GB with large files staged on disk, 0.76-0.80 GB when the first ones are held in memory.
pub const DEFAULT_MEMORY_BUDGET: usize = 64 << 20;

impl IngestOptions {
    /// Default parsing and the default memory budget, with names as given.
    pub fn new(names: NameHasher) -> IngestOptions {
        IngestOptions {
            parse: ParseOptions::default(),
            names,
            units: UnitsOptions::default(),
            memory_budget: DEFAULT_MEMORY_BUDGET,
            blocks: blocks::Sizes::default(),
        }
    }
}

/// How a units export enters the tree's history (SPEC §2).
#[derive(Debug, Clone, Copy, Default)]
pub struct UnitsOptions {
    /// The day a changed row without 生效日期 takes effect; by default the first day of the month
    /// of the export's file time.
    pub effective: Option<chrono::NaiveDate>,
    /// Whether the exports list every unit, so that those they omit are dissolved.
    pub coverage: units::Coverage,
}

impl UnitsOptions {
    /// The effective day of an export made at `mtime_us`.
    fn effective_of(&self, mtime_us: i64) -> chrono::NaiveDate {
        self.effective.unwrap_or_else(|| {
            let made = chrono::DateTime::from_timestamp_micros(mtime_us).unwrap_or_default().date_naive();
            made.with_day(1).expect("the first of a month exists")
        })
    }
}

/// Progress callbacks; the command turns them into a progress bar on a terminal.
pub trait Progress: Sync {
    fn start(&self, _files: u64) {}
    fn file_done(&self, _name: &str) {}
    fn finish(&self) {}
}

/// No progress reporting.
pub struct NoProgress;
impl Progress for NoProgress {}

/// What happened to one input file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum FileStatus {
    Loaded,
    /// The same bytes were ingested before (or earlier in this call).
    AlreadyIngested {
        by: String,
    },
    /// The whole file was refused.
    Failed {
        line: Option<u64>,
        message: String,
    },
}

/// Figures for one input file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileReport {
    pub file: String,
    pub path: PathBuf,
    /// The content's identity in the ledger: the file's BLAKE3, or for one sheet of a
    /// workbook, of the workbook's hash and the sheet's name.
    pub blake3: String,
    /// The sheet, when a workbook is read sheet by sheet, and the workbook's own BLAKE3.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workbook_blake3: Option<String>,
    pub kind: Option<Kind>,
    pub encoding: Option<&'static str>,
    #[serde(flatten)]
    pub status: FileStatus,
    pub rows_read: u64,
    pub loaded: u64,
    pub quarantined: u64,
    pub duplicates: u64,
    pub superseded: u64,
    /// Rows that are not data (titles above the header, 合计 and 填表人 rows below it), listed.
    pub skipped: u64,
    pub skipped_rows: Vec<parse::SkippedRow>,
    /// A workbook's sheets without a table.
    pub skipped_sheets: Vec<String>,
    pub quarantined_by_rule: BTreeMap<&'static str, u64>,
    pub ignored_columns: Vec<String>,
}

impl FileReport {
    fn new(f: &InputFile) -> Self {
        FileReport {
            file: f.name.clone(),
            path: f.path.clone(),
            blake3: f.hash.clone().unwrap_or_default(),
            sheet: f.sheet.clone(),
            workbook_blake3: f.workbook_hash.clone(),
            kind: None,
            encoding: None,
            status: FileStatus::Loaded,
            rows_read: 0,
            loaded: 0,
            quarantined: 0,
            duplicates: 0,
            superseded: 0,
            skipped: 0,
            skipped_rows: Vec::new(),
            skipped_sheets: Vec::new(),
            quarantined_by_rule: BTreeMap::new(),
            ignored_columns: Vec::new(),
        }
    }

    /// rows read = loaded + quarantined + duplicates.
    pub fn balanced(&self) -> bool {
        self.rows_read == self.loaded + self.quarantined + self.duplicates + self.skipped
    }
}

/// The outcome of an ingest.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct IngestReport {
    pub ingest_id: String,
    pub files: Vec<FileReport>,
    pub rows_read: u64,
    pub loaded: u64,
    pub quarantined: u64,
    pub duplicates: u64,
    pub superseded: u64,
    pub skipped: u64,
    pub quarantined_by_rule: BTreeMap<&'static str, u64>,
    /// The snapshot committed, or `None` when nothing changed or the ingest failed.
    pub snapshot: Option<u64>,
    /// Where the clerk-facing CSV files went, when any row was quarantined.
    pub exports_dir: Option<PathBuf>,
    pub names_hashed: bool,
}

impl IngestReport {
    pub fn failed(&self) -> Vec<&FileReport> {
        self.files.iter().filter(|f| matches!(f.status, FileStatus::Failed { .. })).collect()
    }

    /// Quarantined rows over rows read (0 when nothing was read).
    pub fn bad_ratio(&self) -> f64 {
        if self.rows_read == 0 { 0.0 } else { self.quarantined as f64 / self.rows_read as f64 }
    }

    fn total(&mut self) {
        let loaded = self.files.iter().filter(|f| f.status == FileStatus::Loaded);
        let (mut r, mut l, mut q, mut d, mut s, mut k) = (0, 0, 0, 0, 0, 0);
        let mut by_rule = BTreeMap::new();
        for f in loaded {
            (r, l, q, d, s) = (r + f.rows_read, l + f.loaded, q + f.quarantined, d + f.duplicates, s + f.superseded);
            k += f.skipped;
            for (k, v) in &f.quarantined_by_rule {
                *by_rule.entry(*k).or_default() += v;
            }
        }
        (self.rows_read, self.loaded, self.quarantined, self.duplicates, self.superseded) = (r, l, q, d, s);
        self.skipped = k;
        self.quarantined_by_rule = by_rule;
    }
}

/// A new ingest id: UTC time to the millisecond plus a digest of the inputs' names, sizes and
/// times (their contents are hashed only as they are parsed).
fn new_ingest_id(inputs: &[InputFile]) -> String {
    let mut h = blake3::Hasher::new();
    for f in inputs {
        h.update(f.name.as_bytes());
        h.update(&[0]);
        h.update(&f.size.to_le_bytes());
        h.update(&f.mtime_us.to_le_bytes());
    }
    let now = chrono::Utc::now();
    format!("{}-{}", now.format("%Y%m%dT%H%M%S%3fZ"), &h.finalize().to_hex()[..6])
}

/// What the warehouse's ledger knows of the files loaded before.
struct Ledger {
    /// Each content hash, with the ingest that loaded it.
    hashes: HashMap<String, String>,
    /// Each file's name, size and time.
    files: HashSet<(String, u64, i64)>,
}

impl Ledger {
    fn read(snapshot: &warehouse::Snapshot) -> Result<Ledger> {
        let mut ledger = Ledger { hashes: HashMap::new(), files: HashSet::new() };
        let cols = ["blake3", "ingest_id", "source_file", "bytes", "source_mtime"];
        for f in snapshot.files(Table::Ingests)? {
            let df = warehouse::read_parquet_columns(&f, &cols)?;
            let (h, id, name) =
                (df.column("blake3")?.str()?, df.column("ingest_id")?.str()?, df.column("source_file")?.str()?);
            let mtime = df.column("source_mtime")?.cast(&DataType::Int64)?;
            let (bytes, mtime) = (df.column("bytes")?.i64()?, mtime.i64()?);
            for (i, (h, id)) in h.iter().zip(id.iter()).enumerate() {
                if let (Some(h), Some(id)) = (h, id) {
                    ledger.hashes.insert(h.to_string(), id.to_string());
                }
                let (name, size, mtime) =
                    (name.get(i).unwrap_or(""), bytes.get(i).unwrap_or(-1), mtime.get(i).unwrap_or(0));
                ledger.files.insert((name.to_string(), size as u64, mtime));
            }
        }
        Ok(ledger)
    }

    /// Whether the ledger lists a file of this name, size and time: its content is most likely
    /// loaded already, so it is hashed before anything else is read.
    fn may_know(&self, f: &InputFile) -> bool {
        self.files.contains(&(f.name.clone(), f.size, f.mtime_us))
    }
}

/// Whether `input`, whose content hashes to `hash`, is new to the warehouse and to this call;
/// files are settled in input order, so the first of two equal files is the one loaded. When
/// it is not new, its report becomes a skipped file's.
fn settle(
    input: &InputFile,
    hash: &str,
    ledger: &Ledger,
    seen: &mut HashMap<String, String>,
    report: &mut FileReport,
) -> bool {
    let by = match (ledger.hashes.get(hash), seen.get(hash)) {
        (Some(by), _) => format!("ingest {by}"),
        (None, Some(by)) => format!("{by} in this call"),
        (None, None) => {
            seen.insert(hash.to_string(), input.name.clone());
            report.blake3 = hash.to_string();
            return true;
        }
    };
    *report =
        FileReport { blake3: hash.to_string(), status: FileStatus::AlreadyIngested { by }, ..FileReport::new(input) };
    false
}

/// Ingest `paths` (files or folders) into the warehouse at `root`.
pub fn ingest(root: &Path, paths: &[PathBuf], opts: &IngestOptions, progress: &dyn Progress) -> Result<IngestReport> {
    let list = files::expand(paths)?;
    if list.is_empty() {
        bail!(
            "no .csv or .xlsx files under {}",
            paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    let wh = Warehouse::open_or_create(root)?;
    let lock = wh.lock("ingest")?;
    let base = wh.snapshot()?;
    let ledger = Ledger::read(&base)?;
    progress.start(list.len() as u64);
    let phases = PhaseLog::start();

    let mut call = Call::stat(&list, &ledger, &opts.parse)?;
    phases.done("read and hash");
    call.skip_known(progress);
    let mut kinds = call.detect_kinds(opts);
    call.settle_early(&mut kinds)?;
    let mut parsed = call.parse_units(&kinds.units, opts, progress);
    let tree = call.unit_tree(&base, &opts.units, &kinds.units, &parsed)?;
    let unit_ids: HashSet<String> = tree.merge.units.iter().map(|u| u.unit_id.clone()).collect();
    let spill = merge::Spill::new(root, &call.ingest_id, opts.memory_budget)?;
    let mut staged = call.parse_and_stage(kinds.others, &unit_ids, opts, progress, &spill, &mut parsed)?;
    progress.finish();
    phases.done("parse and validate");

    if call.reports.iter().any(|r| matches!(r.status, FileStatus::Failed { .. })) || call.fresh.is_empty() {
        return Ok(call.finish(opts, None, None));
    }
    let mut rejected = rejected_rows(&mut parsed, &tree);
    call.count_units(&kinds.units, &tree);
    let mut txn = wh.begin(&lock)?;
    if tree.changed {
        txn.replace_partition(Table::Units, "", &mut units::units_frame(&tree.merge.units)?)?;
        txn.replace_partition(Table::UnitsHistory, "", &mut units::history_frame(&tree.merge.units)?)?;
    }
    for (i, rows) in call.merge_kinds(&mut parsed, &mut staged, &spill, &base, &mut txn, opts)? {
        rejected.entry(i).or_default().extend(rows);
    }
    phases.done("merge and write");
    let records = call.quarantine_records(&mut rejected);
    call.check_balanced()?;
    call.write_ledger(&records, &mut txn)?;
    let snap = txn.commit()?;
    phases.done("commit");
    drop(lock);

    // Clerk-facing CSVs, after the commit: they describe what the warehouse now holds.
    let skipped = parsed.values().any(|p| !p.skipped.is_empty());
    let exports_dir = if records.is_empty() && !skipped {
        None
    } else {
        let dir = call.write_clerk_exports(&wh, &records, &rejected, &parsed).with_context(|| {
            format!("the ingest is committed (snapshot {}), but its files for clerks could not be written", snap.id)
        })?;
        Some(dir)
    };
    Ok(call.finish(opts, Some(snap.id), exports_dir))
}

/// A file's index, what its read gave, and its staged rows.
type ParsedAndStaged = (usize, Result<ParsedFile, FileError>, Option<merge::Staged>);

/// The time and peak memory at the end of each phase, in debug logs, to see which phase sets
/// the peak.
struct PhaseLog(std::time::Instant);

impl PhaseLog {
    fn start() -> PhaseLog {
        PhaseLog(std::time::Instant::now())
    }

    fn done(&self, name: &str) {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        // The peak memory so far (Linux).
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let peak = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or("").trim_start_matches("VmHWM:").trim();
        tracing::debug!(phase = name, ms = self.0.elapsed().as_millis() as u64, peak, "ingest phase done")
    }
}

/// The files of a call by kind, as indices into its inputs.
struct ByKind {
    units: Vec<usize>,
    others: Vec<usize>,
    /// Files whose header matched no kind: they failed already.
    unknown: Vec<usize>,
}

/// The unit tree after this call's units exports: stored units merged with the new ones.
struct Tree {
    merge: units::UnitsMerge,
    /// Whether any units export came in (the units table is then rewritten).
    changed: bool,
}

/// One call's input files and what is known of each so far.
struct Call<'l> {
    inputs: Vec<InputFile>,
    reports: Vec<FileReport>,
    /// Files whose content is not known to be loaded, in input order.
    fresh: Vec<usize>,
    ledger: &'l Ledger,
    /// Content hashes met in this call, with the name of the file that brought each first.
    seen: HashMap<String, String>,
    ingest_id: String,
    now_us: i64,
}

impl<'l> Call<'l> {
    /// Sizes and times first. A file the ledger may know (the same name, size and time) and a
    /// workbook are hashed now; any other file is hashed by the read that parses it, so that a
    /// new export is read once, not twice (hashing every file up front was a pass over all the
    /// bytes before the first row was parsed).
    /// A workbook is then read as one input per sheet that holds a table (see
    /// [`files::sheets`]).
    fn stat(list: &[PathBuf], ledger: &'l Ledger, opts: &ParseOptions) -> Result<Call<'l>> {
        let mut inputs: Vec<InputFile> = list.par_iter().map(|p| files::stat(p)).collect::<Result<_>>()?;
        inputs.par_iter_mut().filter(|f| f.format == read::Format::Xlsx || ledger.may_know(f)).try_for_each(
            |f| -> Result<()> {
                f.hash = Some(hashed(f)?);
                Ok(())
            },
        )?;
        let per_sheet: Vec<Vec<InputFile>> =
            inputs.into_par_iter().map(|f| files::sheets(f, opts.sheet.as_deref(), &opts.aliases)).collect();
        let inputs: Vec<InputFile> = per_sheet.into_iter().flatten().collect();
        Ok(Call {
            ingest_id: new_ingest_id(&inputs),
            now_us: chrono::Utc::now().timestamp_micros(),
            reports: inputs.iter().map(FileReport::new).collect(),
            inputs,
            fresh: Vec::new(),
            ledger,
            seen: HashMap::new(),
        })
    }

    /// Content already in the warehouse is skipped now when its hash is known; the rest is
    /// settled once hashed (see `settle`), which also finds content twice in this call.
    fn skip_known(&mut self, progress: &dyn Progress) {
        for (i, f) in self.inputs.iter().enumerate() {
            match f.hash.as_ref().and_then(|h| self.ledger.hashes.get(h)) {
                Some(by) => self.reports[i].status = FileStatus::AlreadyIngested { by: format!("ingest {by}") },
                None => self.fresh.push(i),
            }
        }
        for i in (0..self.inputs.len()).filter(|i| !self.fresh.contains(i)) {
            progress.file_done(&self.inputs[i].name);
        }
    }

    /// Kinds first: units are validated before the rows that refer to them.
    fn detect_kinds(&mut self, opts: &IngestOptions) -> ByKind {
        let kinds: Vec<(usize, Result<Kind, FileError>)> =
            self.fresh.par_iter().map(|&i| (i, parse::detect_kind(&self.inputs[i], &opts.parse))).collect();
        let mut by = ByKind { units: Vec::new(), others: Vec::new(), unknown: Vec::new() };
        for (i, k) in kinds {
            match k {
                Ok(Kind::Units) => by.units.push(i),
                Ok(k) => {
                    self.reports[i].kind = Some(k);
                    by.others.push(i);
                }
                Err(e) => {
                    self.reports[i].status = FileStatus::Failed { line: e.line, message: e.message };
                    by.unknown.push(i);
                }
            }
        }
        by
    }

    /// Units files (small, and the tree must take no rows from content loaded before) and files
    /// of no known kind are settled before any row is parsed. Equal contents are of one kind,
    /// so settling each group in input order is settling all files in input order.
    fn settle_early(&mut self, kinds: &mut ByKind) -> Result<()> {
        let early: BTreeSet<usize> = kinds.units.iter().chain(&kinds.unknown).copied().collect();
        for i in early {
            let hash = hashed(&self.inputs[i])?;
            if !self.settle(i, &hash) {
                kinds.units.retain(|&u| u != i);
                self.fresh.retain(|&f| f != i);
            }
        }
        Ok(())
    }

    /// Whether file `i`, whose content hashes to `hash`, is new (see the free `settle`).
    fn settle(&mut self, i: usize, hash: &str) -> bool {
        settle(&self.inputs[i], hash, self.ledger, &mut self.seen, &mut self.reports[i])
    }

    fn parse_units(
        &mut self,
        unit_files: &[usize],
        opts: &IngestOptions,
        progress: &dyn Progress,
    ) -> BTreeMap<usize, ParsedFile> {
        let no_units = HashSet::new();
        let results: Vec<(usize, Result<ParsedFile, FileError>)> = unit_files
            .par_iter()
            .map(|&i| {
                let r = parse::parse_file(&self.inputs[i], &opts.parse, Some(&no_units), &opts.names);
                progress.file_done(&self.inputs[i].name);
                (i, r)
            })
            .collect();
        let mut parsed = BTreeMap::new();
        absorb(results, &mut self.reports, &mut parsed);
        parsed
    }

    /// The unit tree: stored units plus the new exports.
    fn unit_tree(
        &self,
        base: &warehouse::Snapshot,
        opts: &UnitsOptions,
        unit_files: &[usize],
        parsed: &BTreeMap<usize, ParsedFile>,
    ) -> Result<Tree> {
        let stored_units = match base.units_file()? {
            Some(f) => units::versions_from_frame(&warehouse::read_parquet(&f)?)?,
            None => Vec::new(),
        };
        let mut incoming_units = Vec::new();
        for &i in unit_files {
            if let Some(p) = parsed.get(&i) {
                let input = &self.inputs[i];
                let effective = opts.effective_of(input.mtime_us);
                incoming_units.extend(unit_rows(&p.validated.frame, i, input, effective, &self.ingest_id)?);
            }
        }
        let changed = !incoming_units.is_empty();
        Ok(Tree { merge: units::merge_units(stored_units, incoming_units, opts.coverage), changed })
    }

    /// The other kinds: each file is split by partition as soon as it is validated, and its
    /// rows wait in memory or, past the budget, on disk. Once parsed, a file's content is
    /// known (a file that failed before its end is hashed on its own), and known content is
    /// dropped with its staged pieces.
    fn parse_and_stage(
        &mut self,
        files: Vec<usize>,
        unit_ids: &HashSet<String>,
        opts: &IngestOptions,
        progress: &dyn Progress,
        spill: &merge::Spill,
        parsed: &mut BTreeMap<usize, ParsedFile>,
    ) -> Result<BTreeMap<usize, merge::Staged>> {
        let inputs = &self.inputs;
        // Plain threads, not rayon: staging calls polars (see `workers`).
        let results: Vec<ParsedAndStaged> = crate::workers::map(files, |i| -> Result<_> {
            if let Some(done) = Self::parse_in_blocks(&inputs[i], i, unit_ids, opts, spill)? {
                progress.file_done(&inputs[i].name);
                return Ok(done);
            }
            let mut r = parse::parse_file(&inputs[i], &opts.parse, Some(unit_ids), &opts.names);
            let mut stage = None;
            if let Ok(p) = &mut r
                && p.kind != Kind::Units
            {
                let frame = std::mem::take(&mut p.validated.frame);
                let source = merge::Source { name: &inputs[i].name, mtime_us: inputs[i].mtime_us };
                let staged = spill.stage(p.kind, i, source, frame, p.validated.in_key_order);
                stage = Some(staged.with_context(|| format!("staging {}", inputs[i].name))?);
            }
            progress.file_done(&inputs[i].name);
            Ok((i, r, stage))
        })
        .into_iter()
        .collect::<Result<_>>()?;
        let mut staged = BTreeMap::new();
        let mut kept = Vec::new();
        for (i, r, stage) in results {
            let hash = match &r {
                Ok(p) => p.hash.clone(),
                Err(_) => hashed(&self.inputs[i])?,
            };
            if !self.settle(i, &hash) {
                self.fresh.retain(|&f| f != i);
                continue;
            }
            if let Some(st) = stage {
                staged.insert(i, st);
            }
            kept.push((i, r));
        }
        absorb(kept, &mut self.reports, parsed);
        Ok(staged)
    }

    /// A large plain CSV is validated in blocks and staged block by block (see `blocks`);
    /// `None` for any other file, or one the block reader turns down.
    fn parse_in_blocks(
        input: &InputFile,
        i: usize,
        unit_ids: &HashSet<String>,
        opts: &IngestOptions,
        spill: &merge::Spill,
    ) -> Result<Option<ParsedAndStaged>> {
        if input.format != read::Format::Csv || input.size < opts.blocks.file {
            return Ok(None);
        }
        let source = || merge::Source { name: &input.name, mtime_us: input.mtime_us };
        let stage = |kind: Kind, frame: DataFrame| -> Result<coalesce::Split> {
            coalesce::Split::of(kind, frame, spill, i, &source()).with_context(|| format!("staging {}", input.name))
        };
        let (parsed, staged) = coalesce::gather(spill, i, source(), opts.blocks.held, |gathered| {
            let mut gather = |split, rows, keys: &[u64]| {
                gathered.add(split, rows, keys).with_context(|| format!("staging {}", input.name))
            };
            parse::parse_file_in_blocks(
                input,
                &opts.parse,
                Some(unit_ids),
                &opts.names,
                opts.blocks.block,
                &stage,
                &mut gather,
            )
        })
        .with_context(|| format!("staging {}", input.name))?;
        match parsed {
            Ok(None) => Ok(None),
            Ok(Some(parsed)) => Ok(Some((i, Ok(parsed), Some(staged)))),
            Err(e) => Ok(Some((i, Err(e), None))),
        }
    }

    /// The units files' figures come from the tree's merge.
    fn count_units(&mut self, unit_files: &[usize], tree: &Tree) {
        for &i in unit_files {
            let rep = &mut self.reports[i];
            rep.loaded = tree.merge.loaded.get(&i).copied().unwrap_or(0);
            rep.duplicates += tree.merge.duplicates.get(&i).copied().unwrap_or(0);
            rep.superseded = tree.merge.superseded.get(&i).copied().unwrap_or(0);
        }
    }

    /// Each partitioned kind's files merged into the stored rows, in the write `txn`; the rows
    /// of a file's own key conflicts the merge found, for the quarantine.
    fn merge_kinds(
        &mut self,
        parsed: &mut BTreeMap<usize, ParsedFile>,
        staged: &mut BTreeMap<usize, merge::Staged>,
        spill: &merge::Spill,
        base: &warehouse::Snapshot,
        txn: &mut warehouse::Txn,
        opts: &IngestOptions,
    ) -> Result<Vec<(usize, Vec<RejectedRow>)>> {
        let mut rejected = Vec::new();
        for kind in Kind::RECORDS {
            let mut batches = Vec::new();
            for (&i, p) in parsed.iter_mut().filter(|(_, p)| p.kind == kind) {
                let mut staged = staged.remove(&i).expect("every parsed file of a partitioned kind is staged");
                // A file read in blocks left its keys beside its pieces; one read whole has them.
                let keys = staged.keys.take().unwrap_or_else(|| Keys::Memory(std::mem::take(&mut p.validated.keys)));
                let input = &self.inputs[i];
                batches.push(merge::Batch {
                    file: i,
                    mtime_us: input.mtime_us,
                    name: input.name.clone(),
                    keys,
                    staged,
                });
            }
            if batches.is_empty() {
                continue;
            }
            let counts = merge::merge_kind(kind, batches, &self.ingest_id, spill.dir(), base, txn)
                .with_context(|| format!("merging {kind} into the warehouse"))?;
            for (i, c) in counts {
                self.reports[i].loaded = c.loaded;
                self.reports[i].duplicates += c.duplicates;
                self.reports[i].superseded = c.superseded;
                if !c.conflicts.is_empty() {
                    rejected.push((i, self.conflict_rows(i, c.conflicts, opts)?));
                }
            }
        }
        Ok(rejected)
    }

    /// A large file's own key conflicts from the merge, with the cells of the rows a clerk
    /// must see read again from the export (the blocks' text is long gone).
    fn conflict_rows(
        &self,
        i: usize,
        conflicts: Vec<(RejectedRow, bool)>,
        opts: &IngestOptions,
    ) -> Result<Vec<RejectedRow>> {
        let lines: BTreeSet<u64> = conflicts.iter().filter(|(_, cells)| *cells).map(|(r, _)| r.line).collect();
        let mut cells = read::lines_of(&self.inputs[i].path, opts.parse.encoding, &lines)
            .map_err(|e| anyhow::anyhow!("reading {} again for its conflicting rows: {e}", self.inputs[i].name))?;
        Ok(conflicts
            .into_iter()
            .map(|(mut row, want)| {
                if want {
                    row.cells = cells.remove(&row.line).unwrap_or_default();
                }
                row
            })
            .collect())
    }

    /// Quarantine records, one per problem; rows are counted once, by their first rule.
    fn quarantine_records(&mut self, rejected: &mut BTreeMap<usize, Vec<RejectedRow>>) -> Vec<QuarantineRecord> {
        let mut records = Vec::new();
        for (&i, rows) in rejected.iter_mut() {
            rows.sort_by_key(|r| r.line);
            let rep = &mut self.reports[i];
            rep.quarantined = rows.len() as u64;
            for row in rows.iter() {
                *rep.quarantined_by_rule.entry(row.reasons[0].rule.name()).or_default() += 1;
                for x in &row.reasons {
                    records.push(QuarantineRecord {
                        kind: rep.kind.map(|k| k.name()).unwrap_or("").to_string(),
                        source_file: self.inputs[i].name.clone(),
                        line: x.line,
                        column: x.column.clone(),
                        value: x.value.clone(),
                        rule: x.rule,
                        message: x.message.clone(),
                    });
                }
            }
        }
        records
    }

    /// No row is lost: every loaded file's rows read are loaded, quarantined or duplicates.
    fn check_balanced(&self) -> Result<()> {
        for r in &self.reports {
            if r.status == FileStatus::Loaded && !r.balanced() {
                bail!(
                    "internal error: {} does not balance (read {} ≠ loaded {} + quarantined {} + duplicates {} + skipped {})",
                    r.file,
                    r.rows_read,
                    r.loaded,
                    r.quarantined,
                    r.duplicates,
                    r.skipped
                );
            }
        }
        Ok(())
    }

    /// The quarantine and the ledger rows of this call, in the write `txn`.
    fn write_ledger(&self, records: &[QuarantineRecord], txn: &mut warehouse::Txn) -> Result<()> {
        let file = format!("{}.parquet", self.ingest_id);
        if !records.is_empty() {
            txn.write_file(
                Table::Quarantine,
                &file,
                &mut exports::quarantine_frame(&self.ingest_id, self.now_us, records)?,
            )?;
        }
        let fresh_reports: Vec<&FileReport> = self.fresh.iter().map(|&i| &self.reports[i]).collect();
        let mut ledger = ledger_frame(&self.ingest_id, self.now_us, &fresh_reports, &self.inputs, &self.fresh)?;
        txn.write_file(Table::Ingests, &file, &mut ledger)
    }

    /// `quarantine.csv` and each file's refused rows for the clerks; returns their folder.
    fn write_clerk_exports(
        &self,
        wh: &Warehouse,
        records: &[QuarantineRecord],
        rejected: &BTreeMap<usize, Vec<RejectedRow>>,
        parsed: &BTreeMap<usize, ParsedFile>,
    ) -> Result<PathBuf> {
        let dir = wh.rejects_dir(&self.ingest_id);
        if !records.is_empty() {
            exports::write_quarantine_csv(&dir, records)?;
        }
        let skipped: Vec<(&str, &SkippedRow)> = parsed
            .iter()
            .flat_map(|(&i, p)| p.skipped.iter().map(move |r| (self.inputs[i].name.as_str(), r)))
            .collect();
        if !skipped.is_empty() {
            exports::write_skipped_csv(&dir, &skipped)?;
        }
        for (&i, rows) in rejected {
            if !rows.is_empty()
                && let Some(p) = parsed.get(&i)
            {
                let blank = personal_columns(&p.header, p.kind);
                exports::write_rejects_csv(&dir, &self.inputs[i].name, &p.header, &blank, rows)?;
            }
        }
        Ok(dir)
    }

    fn finish(self, opts: &IngestOptions, snapshot: Option<u64>, exports_dir: Option<PathBuf>) -> IngestReport {
        let mut report = IngestReport {
            ingest_id: self.ingest_id,
            files: self.reports,
            snapshot,
            exports_dir,
            names_hashed: opts.names.is_keyed(),
            ..Default::default()
        };
        report.total();
        report
    }
}

/// A file's content hash, taken now if it was not taken before.
fn hashed(f: &InputFile) -> Result<String> {
    f.hashed().map_err(|e| anyhow::anyhow!("{}: {e}", f.path.display()))
}

/// Each file's refused rows, with the tree's refusals joining the units files'.
fn rejected_rows(parsed: &mut BTreeMap<usize, ParsedFile>, tree: &Tree) -> BTreeMap<usize, Vec<RejectedRow>> {
    let mut rejected: BTreeMap<usize, Vec<RejectedRow>> = BTreeMap::new();
    for (&i, p) in parsed.iter_mut() {
        rejected.insert(i, std::mem::take(&mut p.validated.rejected));
    }
    for r in &tree.merge.rejections {
        rejected.entry(r.file).or_default().push(RejectedRow {
            line: r.reason.line,
            cells: Vec::new(),
            reasons: vec![r.reason.clone()],
        });
    }
    rejected
}

/// Record parse results: figures into the reports, parsed files into `parsed`.
fn absorb(
    results: Vec<(usize, Result<ParsedFile, FileError>)>,
    reports: &mut [FileReport],
    parsed: &mut BTreeMap<usize, ParsedFile>,
) {
    for (i, r) in results {
        match r {
            Ok(p) => {
                let rep = &mut reports[i];
                rep.kind = Some(p.kind);
                rep.encoding = p.encoding.map(|e| e.name());
                rep.skipped = p.skipped.len() as u64;
                rep.rows_read = p.validated.rows_read + rep.skipped;
                rep.duplicates = p.validated.duplicates;
                rep.ignored_columns = p.ignored_columns.clone();
                rep.skipped_rows = p.skipped.clone();
                rep.skipped_sheets = p.skipped_sheets.clone();
                parsed.insert(i, p);
            }
            Err(e) => reports[i].status = FileStatus::Failed { line: e.line, message: e.message },
        }
    }
}

/// The columns of a header that hold personal names.
fn personal_columns(header: &[String], kind: Kind) -> Vec<usize> {
    let Ok(map) = schema::map_header(header, Some(kind)) else { return Vec::new() };
    kind.fields()
        .iter()
        .zip(&map.columns)
        .filter(|(f, _)| f.ty == crate::model::kinds::FieldType::PersonalName)
        .filter_map(|(_, c)| *c)
        .collect()
}

/// Unit rows from a validated units frame.
fn unit_rows(
    df: &DataFrame,
    file: usize,
    input: &InputFile,
    effective: chrono::NaiveDate,
    ingest_id: &str,
) -> Result<Vec<UnitRow>> {
    let mut rows = units::rows_of(df)?;
    for (row, r) in rows.iter_mut().enumerate() {
        r.source_file = input.name.clone();
        r.source_mtime = input.mtime_us;
        r.ingest_id = ingest_id.to_string();
        r.origin = Origin::Incoming { file, row, effective };
    }
    Ok(rows)
}

/// The ledger rows of this ingest: one per input file loaded.
pub(crate) fn ledger_frame(
    ingest_id: &str,
    at_us: i64,
    reps: &[&FileReport],
    inputs: &[InputFile],
    idx: &[usize],
) -> Result<DataFrame> {
    let n = reps.len();
    let u = |f: &dyn Fn(&FileReport) -> u64| reps.iter().map(|r| f(r) as i64).collect::<Vec<i64>>();
    let ts = DataType::Datetime(TimeUnit::Microseconds, None);
    Ok(DataFrame::new(
        n,
        vec![
            Column::new("ingest_id".into(), vec![ingest_id; n]),
            Column::new("ingested_at".into(), vec![at_us; n]).cast(&ts)?,
            Column::new("source_file".into(), reps.iter().map(|r| r.file.clone()).collect::<Vec<_>>()),
            Column::new("blake3".into(), reps.iter().map(|r| r.blake3.clone()).collect::<Vec<_>>()),
            Column::new("bytes".into(), idx.iter().map(|&i| inputs[i].size as i64).collect::<Vec<_>>()),
            Column::new("source_mtime".into(), idx.iter().map(|&i| inputs[i].mtime_us).collect::<Vec<_>>())
                .cast(&ts)?,
            Column::new("kind".into(), reps.iter().map(|r| r.kind.map(|k| k.name()).unwrap_or("")).collect::<Vec<_>>()),
            Column::new("encoding".into(), reps.iter().map(|r| r.encoding.unwrap_or("xlsx")).collect::<Vec<_>>()),
            Column::new("rows_read".into(), u(&|r| r.rows_read)),
            Column::new("loaded".into(), u(&|r| r.loaded)),
            Column::new("quarantined".into(), u(&|r| r.quarantined)),
            Column::new("duplicates".into(), u(&|r| r.duplicates)),
            Column::new("superseded".into(), u(&|r| r.superseded)),
            Column::new(
                "ignored_columns".into(),
                reps.iter().map(|r| r.ignored_columns.join(", ")).collect::<Vec<_>>(),
            ),
            Column::new("skipped".into(), u(&|r| r.skipped)),
        ],
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_frame_has_the_columns_of_the_model() {
        assert_eq!(
            ledger_frame("", 0, &[], &[], &[]).unwrap().schema().as_ref(),
            &crate::model::Table::Ingests.schema()
        );
    }
}
