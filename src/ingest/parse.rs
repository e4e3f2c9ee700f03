//! One input file from bytes to validated rows: read (CSV or XLSX), map the header to a kind,
//! validate every row. A file-level problem (wrong encoding, unknown header, damaged workbook)
//! is a `FileError`; row problems are quarantine records inside the result.

use std::collections::HashSet;

use super::decode::{BadLine, Encoding, EncodingChoice};
use super::files::InputFile;
use super::names::NameHasher;
use super::read::{self, Format, ReadOutcome, RowSink};
use super::schema::map_header;
use super::validate::{Validated, Validator};
use crate::model::Kind;

/// Options that apply to every file of an ingest.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    pub kind: Option<Kind>,
    pub encoding: EncodingChoice,
    pub sheet: Option<String>,
}

/// A file that was read and validated.
pub struct ParsedFile {
    pub kind: Kind,
    /// BLAKE3 of the bytes that were read, hex.
    pub hash: String,
    pub encoding: Option<Encoding>,
    pub header: Vec<String>,
    pub ignored_columns: Vec<String>,
    pub validated: Validated,
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
    struct Peek(Option<Result<Kind, String>>);
    impl RowSink for Peek {
        fn header(&mut self, _line: u64, cells: Vec<String>) -> Result<(), String> {
            let r = map_header(&cells, None).map(|m| m.kind).map_err(|e| e.to_string());
            self.0 = Some(r.clone());
            // Stop after the header either way: the error text carries the outcome.
            Err(r.err().unwrap_or_default())
        }
        fn row(&mut self, _: u64, _: &[&str]) {}
        fn bad_line(&mut self, _: &BadLine) {}
    }
    let mut peek = Peek(None);
    // A CSV's header is in its first bytes; a workbook is opened by path.
    let head = match file.format {
        Format::Csv => file.head(HEAD_BYTES).map_err(|message| FileError { line: None, message })?,
        Format::Xlsx => Vec::new(),
    };
    let out = run_reader_on(file, header_bytes(&head), opts, &mut peek);
    match (peek.0, out) {
        (Some(Ok(k)), _) => Ok(k),
        (Some(Err(e)), _) => Err(FileError { line: Some(1), message: e }),
        (None, Err(e)) => Err(e),
        (None, Ok(_)) => Err(FileError { line: None, message: "the file has no header row".into() }),
    }
}

/// How much of a CSV is read to find its header line.
const HEAD_BYTES: u64 = 4 << 20;

/// For a CSV only the first non-blank line is decoded: detecting the kind of a large export
/// must not cost a second pass over it.
fn header_bytes(bytes: &[u8]) -> &[u8] {
    let mut start = 0;
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'\n' {
            if bytes[start..i].iter().any(|c| !c.is_ascii_whitespace()) {
                return &bytes[..=i];
            }
            start = i + 1;
        }
    }
    bytes
}

fn run_reader_on(
    file: &InputFile,
    bytes: &[u8],
    opts: &ParseOptions,
    sink: &mut dyn RowSink,
) -> Result<Option<Encoding>, FileError> {
    let out = match file.format {
        Format::Csv => read::read_csv(bytes, opts.encoding, sink),
        Format::Xlsx => read::read_xlsx(&file.path, opts.sheet.as_deref(), sink),
    };
    out.map(|info| info.encoding).map_err(file_error)
}

fn file_error(outcome: ReadOutcome) -> FileError {
    match outcome {
        ReadOutcome::Header(m) => FileError { line: Some(1), message: m },
        ReadOutcome::Read(e) => {
            let line = match &e {
                read::ReadError::Csv { line, .. } => Some(*line),
                _ => None,
            };
            FileError { line, message: e.to_string() }
        }
    }
}

struct Sink<'a> {
    kind: Option<Kind>,
    units: Option<&'a HashSet<String>>,
    names: &'a NameHasher,
    capacity: usize,
    validator: Option<Validator<'a>>,
    header: Vec<String>,
    ignored: Vec<String>,
}

impl<'a> RowSink for Sink<'a> {
    fn header(&mut self, _line: u64, cells: Vec<String>) -> Result<(), String> {
        let map = map_header(&cells, self.kind).map_err(|e| e.to_string())?;
        let units = if map.kind == Kind::Units { None } else { self.units };
        self.ignored = map.ignored.clone();
        self.header = cells.clone();
        self.validator = Some(Validator::new(cells, map, units, self.names, self.capacity));
        Ok(())
    }

    fn row(&mut self, line: u64, cells: &[&str]) {
        if let Some(v) = self.validator.as_mut() {
            v.row(line, cells);
        }
    }

    fn bad_line(&mut self, bad: &BadLine) {
        if let Some(v) = self.validator.as_mut() {
            v.bad_line(bad.line, &bad.excerpt);
        }
    }
}

/// Read and validate one file. `units` is the set of known unit ids (for the reference rule).
pub fn parse_file(
    file: &InputFile,
    opts: &ParseOptions,
    units: &HashSet<String>,
    names: &NameHasher,
) -> Result<ParsedFile, FileError> {
    // A rough row count from the size keeps the column buffers from regrowing.
    let capacity = (file.size as usize / 64).min(1 << 24);
    let new_sink = || Sink {
        kind: opts.kind,
        units: Some(units),
        names,
        capacity,
        validator: None,
        header: Vec::new(),
        ignored: Vec::new(),
    };
    let mut sink = new_sink();
    let mut encoding = None;
    let refused = |message| FileError { line: None, message };
    // A plain CSV (UTF-8 or GB18030), the usual export, is read a chunk at a time; anything
    // else whole. Either read hashes the bytes it parses.
    let mut hash = None;
    if file.format == Format::Csv {
        let mut reader = file.reader().map_err(refused)?;
        match read::read_csv_stream(&mut reader, opts.encoding, &mut sink) {
            Ok(Some(info)) => (encoding, hash) = (info.encoding, Some(reader.verify().map_err(refused)?)),
            Ok(None) => sink = new_sink(),
            Err(e) => return Err(file_error(e)),
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
        encoding = run_reader_on(file, &bytes, opts, &mut sink)?;
    }
    let hash = hash.expect("every read gives a hash");
    let validator =
        sink.validator.ok_or_else(|| FileError { line: None, message: "the file has no header row".into() })?;
    let kind = validator.kind();
    let validated = validator.finish().map_err(|e| FileError { line: None, message: e.to_string() })?;
    Ok(ParsedFile { kind, hash, encoding, header: sink.header, ignored_columns: sink.ignored, validated })
}
