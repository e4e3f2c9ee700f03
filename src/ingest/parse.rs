//! One input file from bytes to validated rows: read (CSV or XLSX), map the header to a kind,
//! validate every row. A file-level problem (wrong encoding, unknown header, damaged workbook)
//! is a `FileError`; row problems are quarantine records inside the result.

use std::collections::HashSet;

use std::sync::Arc;

use super::aliases::Aliases;
use super::blocks::{self, Dispatch};
use super::decode::{BadLine, Encoding, EncodingChoice};
use super::files::InputFile;
use super::names::NameHasher;
use super::read::{self, Format, ReadOutcome, RowSink};
use super::schema::{HeaderError, map_header_with};
use super::validate::{Validated, Validator};
use crate::model::Kind;

/// Options that apply to every file of an ingest.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    pub kind: Option<Kind>,
    pub encoding: EncodingChoice,
    pub sheet: Option<String>,
    /// The district's extra header names and labels.
    pub aliases: std::sync::Arc<Aliases>,
}

/// A row that is not data: a title or 填报单位 line above the header, a 合计 row, a 填表人 line
/// or a note below the data. Counted and listed, never quarantined, never stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SkippedRow {
    pub line: u64,
    pub why: &'static str,
    /// The row's first cells, for a clerk to recognise it.
    pub text: String,
}

/// A file that was read and validated.
pub struct ParsedFile {
    pub kind: Kind,
    /// BLAKE3 of the bytes that were read, hex.
    pub hash: String,
    pub encoding: Option<Encoding>,
    pub header: Vec<String>,
    pub ignored_columns: Vec<String>,
    /// Rows above the header and below the data that are not data.
    pub skipped: Vec<SkippedRow>,
    /// A workbook's sheets without a table.
    pub skipped_sheets: Vec<String>,
    pub validated: Validated,
}

/// How many rows above the header are looked at before a file is called headerless.
pub const MAX_ROWS_ABOVE: usize = 30;

/// Why a row above the header is not data.
fn above_why(cells: &[String]) -> &'static str {
    let first = first_text(cells.iter().map(String::as_str));
    if ["填报单位", "填报日期", "单位", "填表单位", "报送单位", "统计时间", "日期"].iter().any(|p| first.starts_with(p))
    {
        "填报单位/日期行 (above the header)"
    } else {
        "标题或说明行 (above the header)"
    }
}

/// Why a row below the header is not data, if it is one of what offices put under a table.
fn footer_why(cells: &[&str]) -> Option<&'static str> {
    // Most rows begin with an id: no footer begins with an ASCII letter or digit.
    let lead = cells.iter().map(|c| c.trim_start()).find(|c| !c.is_empty());
    if lead.is_none_or(|c| c.as_bytes()[0].is_ascii_alphanumeric()) {
        return None;
    }
    let first = first_text(cells.iter().copied());
    if ["合计", "小计", "总计", "共计"].iter().any(|p| first.starts_with(p)) {
        Some("合计/小计行")
    } else if ["填表人", "填报人", "制表人", "审核人", "负责人", "联系人", "联系电话", "签字", "审核："]
        .iter()
        .any(|p| first.starts_with(p))
    {
        Some("填表人/审核人行")
    } else if ["注：", "注:", "说明：", "说明:", "备注：", "备注:"].iter().any(|p| first.starts_with(p)) {
        Some("注释/说明")
    } else {
        None
    }
}

/// The first non-empty cell, without spaces (offices space out 合　计).
fn first_text<'a>(mut cells: impl Iterator<Item = &'a str>) -> String {
    cells
        .find(|c| !c.trim().is_empty())
        .map(|c| c.chars().filter(|ch| !ch.is_whitespace() && *ch != '\u{3000}').collect())
        .unwrap_or_default()
}

/// A row's first cells as one short text.
fn excerpt<'a>(cells: impl Iterator<Item = &'a str>) -> String {
    let joined: Vec<&str> = cells.map(str::trim).filter(|c| !c.is_empty()).take(4).collect();
    let text = joined.join(" | ");
    if text.chars().count() > 60 { text.chars().take(60).chain(['…']).collect() } else { text }
}

/// Why a whole file was refused.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct FileError {
    pub line: Option<u64>,
    pub message: String,
}

/// Peek at a file's header to learn its kind without validating rows (units go first).
pub fn detect_kind(file: &InputFile, opts: &ParseOptions) -> Result<Kind, FileError> {
    if let Some(k) = opts.kind {
        return Ok(k);
    }
    /// The kind found, why no row was a header so far, and the rows looked at (in the sheet).
    struct Peek<'a> {
        kind: Option<Kind>,
        refusal: Refusal,
        rows: usize,
        aliases: &'a Aliases,
    }
    impl RowSink for Peek<'_> {
        fn header(&mut self, line: u64, cells: Vec<String>) -> Result<bool, String> {
            self.rows += 1;
            match map_header_with(&cells, None, self.aliases) {
                Ok(m) => {
                    self.kind = Some(m.kind);
                    // Stop at the header: the kind is known.
                    Err(String::new())
                }
                Err(e) => {
                    self.refusal.offer(&e, line);
                    if self.rows >= MAX_ROWS_ABOVE { Err(e.to_string()) } else { Ok(false) }
                }
            }
        }
        fn row(&mut self, _: u64, _: &[&str]) {}
        fn bad_line(&mut self, _: &BadLine) {}
        fn sheet(&mut self, _name: &str) {
            self.rows = 0;
        }
        fn has_header(&self) -> bool {
            self.kind.is_some()
        }
    }
    let mut peek = Peek { kind: None, refusal: Refusal::default(), rows: 0, aliases: &opts.aliases };
    // A CSV's header is in its first bytes; a workbook is opened by path.
    let head = match file.format {
        Format::Csv => file.head(HEAD_BYTES).map_err(|message| FileError { line: None, message })?,
        Format::Xlsx => Vec::new(),
    };
    let out = run_reader_on(file, header_bytes(&head), opts, &mut peek).map_err(file_error);
    match (peek.kind, peek.refusal.0, out) {
        (Some(k), _, _) => Ok(k),
        (None, Some((_, why, line)), _) => Err(FileError { line: Some(line), message: no_header(&why) }),
        (None, None, Err(e)) => Err(e),
        (None, None, Ok(_)) => Err(FileError { line: None, message: "the file has no header row".into() }),
    }
}

/// Why the rows offered as a header were not one, and the line of the row that says it best:
/// the first refusal, unless a later row came closer (it names a kind's columns but lacks
/// some), which a title above the header never does.
#[derive(Default)]
struct Refusal(Option<(bool, String, u64)>);

impl Refusal {
    fn offer(&mut self, e: &HeaderError, line: u64) {
        let telling = !matches!(e, HeaderError::Unrecognised { .. } | HeaderError::Empty);
        if self.0.as_ref().is_none_or(|(t, _, _)| telling && !t) {
            self.0 = Some((telling, e.to_string(), line));
        }
    }

    fn why(&self) -> Option<&str> {
        self.0.as_ref().map(|(_, why, _)| why.as_str())
    }
}

/// How much of a CSV is read to find its header line.
const HEAD_BYTES: u64 = 4 << 20;

/// For a CSV only the first lines are decoded (the header is among the first
/// [`MAX_ROWS_ABOVE`]): detecting the kind of a large export must not cost a second pass over it.
fn header_bytes(bytes: &[u8]) -> &[u8] {
    let mut lines = 0;
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'\n' {
            lines += 1;
            if lines > 2 * MAX_ROWS_ABOVE {
                return &bytes[..=i];
            }
        }
    }
    bytes
}

/// The message for a file none of whose first rows is a header.
fn no_header(closest: &str) -> String {
    format!("no header row found in the first {MAX_ROWS_ABOVE} rows; the row closest to one: {closest}")
}

fn run_reader_on(
    file: &InputFile,
    bytes: &[u8],
    opts: &ParseOptions,
    sink: &mut dyn RowSink,
) -> Result<read::ReadInfo, ReadOutcome> {
    match file.format {
        Format::Csv => read::read_csv(bytes, opts.encoding, sink),
        Format::Xlsx => {
            read::read_xlsx(&file.path, file.sheet.as_deref().or(opts.sheet.as_deref()), &opts.aliases, sink)
        }
    }
}

fn file_error(outcome: ReadOutcome) -> FileError {
    match outcome {
        ReadOutcome::Header(m) => FileError { line: None, message: m },
        ReadOutcome::Read(e) => {
            let line = match &e {
                read::ReadError::Csv { line, .. } => Some(*line),
                _ => None,
            };
            FileError { line, message: e.to_string() }
        }
    }
}

struct Sink<'a, T = ()> {
    kind: Option<Kind>,
    aliases: &'a Aliases,
    units: Option<&'a HashSet<String>>,
    names: &'a NameHasher,
    capacity: usize,
    validator: Option<Validator<'a>>,
    header: Vec<String>,
    ignored: Vec<String>,
    skipped: Vec<SkippedRow>,
    /// Rows passed over while looking for the header (of the current sheet).
    above: Vec<SkippedRow>,
    /// Why the first row passed over is not a header: the message when none is found. A row
    /// that names a kind's columns but lacks some says more than a title does, so it wins.
    refusal: Refusal,
    /// A large file's blocks (see `blocks`), once the header is found.
    blocks: Option<Dispatch<'a, T>>,
}

impl<'a, T> Sink<'a, T> {
    fn new(
        opts: &'a ParseOptions,
        kind: Option<Kind>,
        units: Option<&'a HashSet<String>>,
        names: &'a NameHasher,
        capacity: usize,
        blocks: Option<Dispatch<'a, T>>,
    ) -> Self {
        Sink {
            kind,
            aliases: &opts.aliases,
            units,
            names,
            capacity,
            validator: None,
            header: Vec::new(),
            ignored: Vec::new(),
            skipped: Vec::new(),
            above: Vec::new(),
            refusal: Refusal::default(),
            blocks,
        }
    }

    /// A read that ended without a header says why the rows it saw were not one.
    fn refused(&self, outcome: ReadOutcome) -> FileError {
        match (&outcome, &self.refusal.0) {
            (ReadOutcome::Read(read::ReadError::Empty), Some((_, why, line))) => {
                FileError { line: Some(*line), message: no_header(why) }
            }
            (ReadOutcome::Header(m), Some((_, _, line))) => FileError { line: Some(*line), message: m.clone() },
            _ => file_error(outcome),
        }
    }
}

impl<'a, T> RowSink for Sink<'a, T> {
    fn header(&mut self, line: u64, cells: Vec<String>) -> Result<bool, String> {
        let map = match map_header_with(&cells, self.kind, self.aliases) {
            Ok(map) => map,
            Err(e) => {
                self.refusal.offer(&e, line);
                let text = excerpt(cells.iter().map(String::as_str));
                self.above.push(SkippedRow { line, why: above_why(&cells), text });
                if self.above.len() >= MAX_ROWS_ABOVE {
                    // `refused` adds the line of the row that came closest.
                    return Err(no_header(self.refusal.why().expect("offered above")));
                }
                return Ok(false);
            }
        };
        let units = if map.kind == Kind::Units { None } else { self.units };
        self.ignored = map.ignored.clone();
        self.header = cells.clone();
        self.skipped.append(&mut self.above);
        let validator = Validator::new(cells.clone(), map.clone(), units, self.names, self.capacity);
        let validator = validator.with_labels(self.aliases);
        self.validator = Some(match self.blocks.as_mut() {
            Some(blocks) => {
                blocks.template = Some(Arc::new((cells, map)));
                validator.deferred()
            }
            None => validator,
        });
        Ok(true)
    }

    fn take_text(&mut self, text: &str, line: u64, last: bool) -> Result<bool, String> {
        let Some(blocks) = self.blocks.as_mut() else { return Ok(false) };
        if blocks.template.is_none() {
            // The header may be in this piece: its rows are the first block.
            return Ok(false);
        }
        if let Some(first) = self.validator.take() {
            let kind = first.kind();
            let block = first.finish_block().map_err(|e| e.to_string())?;
            blocks.first_block(kind, block, Vec::new()).map_err(|e| format!("{e:#}"))?;
        }
        blocks.text(text, line, last).map_err(|e| format!("{e:#}"))?;
        Ok(true)
    }

    fn row(&mut self, line: u64, cells: &[&str]) {
        if let Some(why) = footer_why(cells) {
            self.skipped.push(SkippedRow { line, why, text: excerpt(cells.iter().copied()) });
            return;
        }
        if let Some(v) = self.validator.as_mut() {
            v.row(line, cells);
        }
    }

    fn sheet(&mut self, _name: &str) {
        // Rows of a sheet without a table (instructions) are not reported as rows: the sheet is.
        self.above.clear();
    }

    fn has_header(&self) -> bool {
        self.validator.is_some() || self.blocks.as_ref().is_some_and(|b| b.template.is_some())
    }

    fn bad_line(&mut self, bad: &BadLine) {
        if let Some(v) = self.validator.as_mut() {
            v.bad_line(bad.line, &bad.excerpt);
        }
    }
}

/// Read and validate one file. `units` is the set of known unit ids (for the reference rule);
/// `None` leaves references unchecked (`inspect` without a warehouse).
pub fn parse_file(
    file: &InputFile,
    opts: &ParseOptions,
    units: Option<&HashSet<String>>,
    names: &NameHasher,
) -> Result<ParsedFile, FileError> {
    // A rough row count from the size keeps the column buffers from regrowing.
    let capacity = (file.size as usize / 64).min(1 << 24);
    let new_sink = || Sink::<()>::new(opts, opts.kind, units, names, capacity, None);
    let mut sink = new_sink();
    let mut encoding = None;
    let refused = |message| FileError { line: None, message };
    // A plain CSV (UTF-8 or GB18030), the usual export, is read a chunk at a time; anything
    // else whole. Either read hashes the bytes it parses.
    let mut hash = None;
    let mut skipped_sheets = Vec::new();
    if file.format == Format::Csv {
        let mut reader = file.reader().map_err(refused)?;
        match read::read_csv_stream(&mut reader, opts.encoding, &mut sink) {
            Ok(Some(info)) => (encoding, hash) = (info.encoding, Some(reader.verify().map_err(refused)?)),
            Ok(None) => sink = new_sink(),
            Err(e) => return Err(sink.refused(e)),
        }
    }
    if hash.is_none() {
        let bytes = match file.format {
            Format::Csv => {
                let (bytes, h) = file.contents().map_err(refused)?;
                hash = Some(h);
                bytes
            }
            Format::Xlsx => {
                // calamine reads a workbook by its path: it is hashed on its own.
                hash = Some(file.hashed().map_err(refused)?);
                Vec::new()
            }
        };
        let info = run_reader_on(file, &bytes, opts, &mut sink).map_err(|e| sink.refused(e))?;
        encoding = info.encoding;
        skipped_sheets = file.passed_over.iter().cloned().chain(info.skipped_sheets).collect();
    }
    let hash = hash.expect("every read gives a hash");
    let Some(validator) = sink.validator else {
        let (line, message) = match &sink.refusal.0 {
            Some((_, why, line)) => (Some(*line), no_header(why)),
            None => (None, "the file has no header row".into()),
        };
        return Err(FileError { line, message });
    };
    let kind = validator.kind();
    let validated = validator.finish().map_err(|e| FileError { line: None, message: e.to_string() })?;
    let skipped = sink.skipped;
    Ok(ParsedFile {
        kind,
        hash,
        encoding,
        header: sink.header,
        ignored_columns: sink.ignored,
        skipped,
        skipped_sheets,
        validated,
    })
}

/// Read and validate a large plain CSV in blocks on every core: each block's rows go to
/// `stage` on the worker that validated them, and what it made to `gather`, in file order.
/// The file's `validated.frame` and `keys` are then empty: `gather` had them, block by block. `Ok(None)` when the file is not one the block reader does (quoted,
/// not UTF-8 or GB18030, ...): the caller reads it with [`parse_file`].
pub fn parse_file_in_blocks<T: Send>(
    file: &InputFile,
    opts: &ParseOptions,
    units: Option<&HashSet<String>>,
    names: &NameHasher,
    block: usize,
    stage: &blocks::Stage<T>,
    gather: &mut blocks::Gather<T>,
) -> Result<Option<ParsedFile>, FileError> {
    let refused = |message| FileError { line: None, message };
    let block_capacity = block / 64;
    let threads = crate::workers::threads();
    // A block for each worker, one queued and one being read: the reading thread waits for a
    // text back past those (see `Dispatch`'s `most`).
    let (jobs, job_queue) = std::sync::mpsc::sync_channel(1);
    let (done, done_queue) = std::sync::mpsc::channel();
    let job_queue = std::sync::Mutex::new(job_queue);
    std::thread::scope(|s| {
        for _ in 0..threads {
            let (done, job_queue) = (done.clone(), &job_queue);
            s.spawn(move || {
                blocks::work(job_queue, done, |job| validate_block(job, opts, units, names, block_capacity, stage))
            });
        }
        drop(done);
        let dispatch = Dispatch::new(jobs, done_queue, block, threads + 2, stage, gather);
        let mut sink = Sink::new(opts, opts.kind, units, names, block_capacity, Some(dispatch));
        let mut reader = file.reader().map_err(refused)?;
        let info = match read::read_csv_stream(&mut reader, opts.encoding, &mut sink) {
            Ok(Some(info)) => info,
            Ok(None) => return Ok(None),
            Err(e) => return Err(sink.refused(e)),
        };
        let hash = reader.verify().map_err(refused)?;
        let mut blocks = sink.blocks.take().expect("set above");
        let failed = |e: anyhow::Error| FileError { line: None, message: format!("{e:#}") };
        let Some(template) = blocks.template.clone() else {
            return Err(FileError { line: None, message: "the file has no header row".into() });
        };
        if let Some(first) = sink.validator.take() {
            // The file ended in its first piece.
            let block = first.finish_block().map_err(|e| failed(e.into()))?;
            blocks.first_block(template.1.kind, block, Vec::new()).map_err(failed)?;
        }
        blocks.finish().map_err(failed)?;
        let gathered = std::mem::take(&mut blocks.file);
        let mut skipped = sink.skipped;
        skipped.extend(gathered.skipped);
        skipped.sort_by_key(|r| r.line);
        let mut rejected = gathered.rejected;
        rejected.sort_by_key(|r| r.line);
        let validated = Validated {
            frame: polars::prelude::DataFrame::empty(),
            // Each block's keys went to `gather` with its rows.
            keys: Vec::new(),
            rows_read: gathered.rows_read,
            // The file's own repeated keys are settled by the merge.
            duplicates: 0,
            rejected,
            in_key_order: false,
        };
        let parsed = ParsedFile {
            kind: template.1.kind,
            hash,
            encoding: info.encoding,
            header: sink.header,
            ignored_columns: sink.ignored,
            skipped,
            skipped_sheets: Vec::new(),
            validated,
        };
        Ok(Some(parsed))
    })
}

/// A worker's block: its rows validated on their own, footers set aside, and staged.
fn validate_block<T>(
    job: &blocks::Job,
    opts: &ParseOptions,
    units: Option<&HashSet<String>>,
    names: &NameHasher,
    capacity: usize,
    stage: &blocks::Stage<T>,
) -> Result<blocks::Staged<T>, String> {
    let (header, map) = &*job.template;
    let units = if map.kind == Kind::Units { None } else { units };
    let validator =
        Validator::new(header.clone(), map.clone(), units, names, capacity).with_labels(&opts.aliases).deferred();
    let mut sink = Sink::<()>::new(opts, Some(map.kind), units, names, capacity, None);
    sink.validator = Some(validator);
    sink.header = header.clone();
    read::read_rows(&job.text, job.line, job.last, &mut sink).map_err(|e| file_error(e).message)?;
    let block = sink.validator.take().expect("set above").finish_block().map_err(|e| e.to_string())?;
    blocks::stage_block(map.kind, block, sink.skipped, stage).map_err(|e| format!("{e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::*;
    use proptest::prelude::*;

    const TABLE: &str = "活动编号,组织编码,活动类型,活动日期,党员编号,出勤状态\n\
        E1,B1,主题党日,2026-03-06,M1,出席\n\
        E1,B1,主题党日,2026-03-06,M2,缺席\n\
        E2,B2,党课,2026/3/20,M3,请假\n\
        E2,B2,党课,2026/3/20,M4,出席\n";

    /// The rows a file loads, without their line numbers (which move with the rows above).
    fn loaded(text: &str) -> (DataFrame, usize) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.csv");
        std::fs::write(&path, text).unwrap();
        let input = super::super::files::stat(&path).unwrap();
        let p = parse_file(&input, &ParseOptions::default(), None, &NameHasher::dropping()).unwrap();
        (p.validated.frame.drop("source_line").unwrap(), p.skipped.len())
    }

    fn above() -> impl Strategy<Value = String> {
        prop_oneof![
            (1u32..13).prop_map(|m| format!("2026年{m}月主题党日出勤统计表")),
            Just("填报单位：东城街道党工委,,,填报日期：2026年4月2日".to_string()),
            Just("单位：人".to_string()),
            Just(",,,,,".to_string()),
            Just(String::new()),
            Just("\"注意：\n请如实填写\"".to_string()),
        ]
    }

    fn below() -> impl Strategy<Value = String> {
        prop_oneof![
            (0u32..99).prop_map(|n| format!("合计,,,,{n}人,")),
            Just("小　计,,,,,".to_string()),
            Just("填表人：张三,,审核人：李四,,联系电话：12345678,".to_string()),
            Just("注：本表由各支部填报。".to_string()),
            Just("说明：缺席须注明原因".to_string()),
            Just(String::new()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

        /// Titles above and footers below a table never change what it loads, and every
        /// non-blank one is counted as skipped.
        #[test]
        fn titles_and_footers_never_change_what_is_loaded(
            top in proptest::collection::vec(above(), 0..5),
            bottom in proptest::collection::vec(below(), 0..5),
        ) {
            let (want, none) = loaded(TABLE);
            prop_assert_eq!(none, 0);
            let mut text = String::new();
            for l in &top {
                text.push_str(l);
                text.push('\n');
            }
            text.push_str(TABLE);
            for l in &bottom {
                text.push_str(l);
                text.push('\n');
            }
            let (got, skipped) = loaded(&text);
            prop_assert!(got.equals_missing(&want), "{got}\nwant\n{want}");
            let blank = |l: &String| l.split(',').all(|c| c.trim().is_empty());
            prop_assert_eq!(skipped, top.iter().chain(&bottom).filter(|l| !blank(l)).count());
        }
    }
}
