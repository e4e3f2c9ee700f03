//! Reading an export file into a header and rows. A plain CSV in UTF-8 or GB18030 (no quotes,
//! the usual export) is read from a stream a chunk at a time and cut on commas and line feeds,
//! eight bytes at a time; any other CSV is decoded whole (damaged lines, UTF-8 with a few
//! GB18030 lines) and cut by the `csv` crate or, when plain, by the same cutter; XLSX goes
//! through `calamine`. Rows are handed to a callback one at a time with their line number (for
//! XLSX, the sheet's row number), so a caller never needs the whole table as strings.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::Path;

use calamine::{Data, Reader};

use super::decode::{self, BadLine, EncodingChoice};

/// The format of an input file, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
}

impl Format {
    pub fn of(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            // Excel's text exports: tab-separated, often UTF-16 ("Unicode text").
            "csv" | "tsv" | "txt" => Some(Format::Csv),
            "xlsx" => Some(Format::Xlsx),
            _ => None,
        }
    }
}

/// A file-level read error (the whole file is refused).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Decode(#[from] decode::DecodeError),
    #[error("CSV error at line {line}: {message}")]
    Csv { line: u64, message: String },
    #[error("cannot read the workbook: {0}")]
    Xlsx(String),
    #[error("the workbook has no sheet named '{0}'")]
    NoSheet(String),
    #[error(
        "the workbook has a table on sheet '{0}' and another on sheet '{1}'; ingest one sheet at a time with --sheet NAME (or save each sheet as its own file)"
    )]
    SheetsWithData(String, String),
    #[error("the file is empty: no header row")]
    Empty,
    #[error("the sheet would unpack to {0} MiB, over the limit of {1} MiB")]
    TooLarge(u64, u64),
    #[error("cannot read the file: {0}")]
    Io(String),
}

/// What a reader reports: the encoding it used (CSV), and the lines it could not decode.
#[derive(Debug, Clone)]
pub struct ReadInfo {
    pub encoding: Option<decode::Encoding>,
    /// A workbook's sheets that hold no table (instructions, notes), passed over.
    pub skipped_sheets: Vec<String>,
}

/// Receives a file's header and rows.
pub trait RowSink {
    /// A row that may be the header: each non-blank row is offered until one is taken
    /// (`Ok(true)`); rows passed over (`Ok(false)`) are what offices put above a table.
    /// Returning an error stops the read.
    fn header(&mut self, line: u64, cells: Vec<String>) -> Result<bool, String>;
    fn row(&mut self, line: u64, cells: &[&str]);
    fn bad_line(&mut self, bad: &BadLine);
    /// A workbook's sheet begins (XLSX only); rows offered for a header start afresh.
    fn sheet(&mut self, _name: &str) {}
    /// Whether a header has been taken, so that a workbook's other sheets need not be read.
    fn has_header(&self) -> bool {
        false
    }
    /// A piece of a plain CSV's text, whole lines from `line` (the file's end when `last`),
    /// offered before it is cut into rows: a sink that takes it (`Ok(true)`) reads the rows
    /// itself (see `parse`'s blocks). An error stops the read.
    fn take_text(&mut self, _text: &str, _line: u64, _last: bool) -> Result<bool, String> {
        Ok(false)
    }
}

/// The cells of some lines of a plain CSV (one the block reader read), read again a piece at
/// a time.
pub fn lines_of(
    path: &Path,
    choice: EncodingChoice,
    lines: &BTreeSet<u64>,
) -> Result<HashMap<u64, Vec<String>>, String> {
    struct Pick<'l>(&'l BTreeSet<u64>, HashMap<u64, Vec<String>>);
    impl RowSink for Pick<'_> {
        fn header(&mut self, line: u64, cells: Vec<String>) -> Result<bool, String> {
            if self.0.contains(&line) {
                self.1.insert(line, cells);
            }
            Ok(true)
        }
        fn row(&mut self, line: u64, cells: &[&str]) {
            if self.0.contains(&line) {
                self.1.insert(line, cells.iter().map(|c| c.to_string()).collect());
            }
        }
        fn bad_line(&mut self, _: &BadLine) {}
    }
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut pick = Pick(lines, HashMap::new());
    match read_csv_stream(&mut file, choice, &mut pick) {
        Ok(Some(_)) => Ok(pick.1),
        Ok(None) => Err("the file changed: it no longer reads as plain text".into()),
        Err(ReadOutcome::Read(e)) => Err(e.to_string()),
        Err(ReadOutcome::Header(m)) => Err(m),
    }
}

/// Cut plain text (see [`is_plain`]) of whole lines from `line` into rows for a sink that has
/// its header already; `last` when the text ends the file.
pub fn read_rows(text: &str, line: u64, last: bool, sink: &mut dyn RowSink) -> Result<(), ReadOutcome> {
    let mut feed = Feed::new(&[], sink);
    feed.have_header = true;
    feed_lines(&mut feed, text, line, last)?;
    Ok(())
}

/// Read a CSV file's bytes (already in memory), decoding them first.
pub fn read_csv(bytes: &[u8], choice: EncodingChoice, sink: &mut dyn RowSink) -> Result<ReadInfo, ReadOutcome> {
    let decoded = decode::decode(bytes, choice).map_err(|e| ReadOutcome::Read(e.into()))?;
    let delimiter = delimiter_of(decoded.text.as_bytes());
    if delimiter == b',' && is_plain(decoded.text.as_bytes()) {
        read_plain(&decoded.text, &decoded.bad_lines, sink)?;
    } else {
        read_quoted(&decoded.text, &decoded.bad_lines, delimiter, sink)?;
    }
    Ok(ReadInfo { encoding: Some(decoded.encoding), skipped_sheets: Vec::new() })
}

/// How much of a CSV [`read_csv_stream`] reads at a time, and at first.
const CHUNK: usize = 4 << 20;
const FIRST_CHUNK: usize = 256 << 10;

/// Read a plain CSV (see [`is_plain`]) in UTF-8 or GB18030 a chunk at a time, so that a large
/// export is never whole in memory: the same rows, line numbers and encoding as [`read_csv`]
/// gives for it. `Ok(None)` as soon as the file turns out to be something this reader does not
/// do (a quote, a lone carriage return, a line that does not decode, a UTF-16 mark, or a file
/// `read_csv` would call damaged UTF-8 rather than GB18030): the caller then reads it whole with
/// a fresh sink, since this one has seen some of its rows.
pub fn read_csv_stream(
    reader: &mut dyn Read,
    choice: EncodingChoice,
    sink: &mut dyn RowSink,
) -> Result<Option<ReadInfo>, ReadOutcome> {
    let io = |e: std::io::Error| ReadOutcome::Read(ReadError::Io(e.to_string()));
    let mut feed = Feed::new(&[], sink);
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK);
    let (mut first, mut bom, mut eof, mut line) = (true, false, false, 1u64);
    let mut gb18030 = choice == EncodingChoice::Gb18030;
    // Whether text with non-ASCII characters was read as UTF-8 (then it cannot turn GB18030),
    // and the evidence `decode` weighs between damaged UTF-8 and GB18030 over the whole file.
    let (mut utf8_non_ascii, mut evidence) = (false, decode::NonAsciiLines::default());
    while !eof {
        // Top the buffer up to a chunk; a line longer than that makes it grow. The first is
        // smaller: the rows after the header in it are validated by the reading thread alone
        // (see `blocks`), while the workers wait.
        let want = if first { FIRST_CHUNK } else { CHUNK.saturating_sub(buf.len()).max(64 << 10) };
        let n = (&mut *reader).take(want as u64).read_to_end(&mut buf).map_err(io)?;
        eof = n < want;
        if first {
            if decode::is_utf16(&buf) {
                return Ok(None);
            }
            if buf.starts_with(decode::UTF8_BOM) {
                bom = true;
                buf.drain(..decode::UTF8_BOM.len());
            }
            if delimiter_of(&buf) != b',' {
                return Ok(None);
            }
            first = false;
        }
        // Whole lines only, but for the last piece of the file. A line feed byte is a line
        // feed in both encodings, and neither a quote nor a carriage return byte can be part
        // of a GB18030 character: the bytes answer `is_plain` for the text.
        let cut = if eof { buf.len() } else { memchr::memrchr(b'\n', &buf).map_or(0, |i| i + 1) };
        let done = &buf[..cut];
        if !is_plain(done) {
            return Ok(None);
        }
        let mut text = None;
        if !gb18030 {
            // simdutf8: the UTF-8 check was 3% of ingest's CPU with `std::str::from_utf8`.
            match simdutf8::basic::from_utf8(done) {
                Ok(t) => {
                    utf8_non_ascii |= !t.is_ascii();
                    text = Some(std::borrow::Cow::Borrowed(t));
                }
                Err(_) if choice == EncodingChoice::Auto && !bom && !utf8_non_ascii => gb18030 = true,
                Err(_) => return Ok(None),
            }
        }
        if gb18030 {
            if choice == EncodingChoice::Auto {
                evidence.add(done);
            }
            text = decode::decode_all(done, decode::Encoding::Gb18030);
        }
        let Some(text) = text else { return Ok(None) };
        let taken = feed.sink.take_text(&text, line, eof).map_err(|e| ReadOutcome::Read(ReadError::Io(e)))?;
        line = if taken {
            line + memchr::memchr_iter(b'\n', text.as_bytes()).count() as u64
        } else {
            feed_lines(&mut feed, &text, line, eof)?
        };
        drop(text);
        buf.drain(..cut);
    }
    // `decode` reads a file that is mostly UTF-8 as damaged UTF-8, not as GB18030.
    if gb18030 && choice == EncodingChoice::Auto && evidence.mostly_utf8() {
        return Ok(None);
    }
    feed.finish()?;
    let encoding = match (gb18030, bom) {
        (true, _) => decode::Encoding::Gb18030,
        (false, true) => decode::Encoding::Utf8Bom,
        (false, false) => decode::Encoding::Utf8,
    };
    Ok(Some(ReadInfo { encoding: Some(encoding), skipped_sheets: Vec::new() }))
}

/// What both CSV readers do with a record once they have cut it into cells: report the
/// undecodable lines before it in line order, skip it if blank, take the first one as the
/// header, and hand the others to the sink.
struct Feed<'b, 's> {
    sink: &'s mut dyn RowSink,
    bad: std::iter::Peekable<std::slice::Iter<'b, BadLine>>,
    have_header: bool,
}

impl<'b, 's> Feed<'b, 's> {
    fn new(bad: &'b [BadLine], sink: &'s mut dyn RowSink) -> Self {
        Feed { sink, bad: bad.iter().peekable(), have_header: false }
    }

    fn record(&mut self, line: u64, cells: &[&str]) -> Result<(), ReadOutcome> {
        // Undecodable lines were blanked; report them in line order among the rows.
        while let Some(b) = self.bad.next_if(|b| b.line < line) {
            if self.have_header {
                self.sink.bad_line(b);
            }
        }
        // A blank row: every cell empty or spaces.
        if cells.iter().all(|c| super::values::trim(c).is_empty()) {
            return Ok(());
        }
        if !self.have_header {
            let header = cells.iter().map(|c| c.trim_start_matches('\u{feff}').to_string()).collect();
            self.have_header = self.sink.header(line, header).map_err(ReadOutcome::Header)?;
            return Ok(());
        }
        self.sink.row(line, cells);
        Ok(())
    }

    fn finish(self) -> Result<(), ReadOutcome> {
        if !self.have_header {
            return Err(ReadOutcome::Read(ReadError::Empty));
        }
        for b in self.bad {
            self.sink.bad_line(b);
        }
        Ok(())
    }
}

/// The separator of a delimited text: a tab when the first lines hold more tabs than commas
/// (Excel's "Unicode text" and "text (tab-separated)" exports), else a comma.
fn delimiter_of(text: &[u8]) -> u8 {
    let head = text.split(|b| *b == b'\n').take(60);
    let (mut tabs, mut commas) = (0usize, 0usize);
    for line in head {
        tabs += memchr::memchr_iter(b'\t', line).count();
        commas += memchr::memchr_iter(b',', line).count();
    }
    if tabs > commas { b'\t' } else { b',' }
}

/// Any CSV (or tab-separated text), through the `csv` crate.
fn read_quoted(text: &str, bad: &[BadLine], delimiter: u8, sink: &mut dyn RowSink) -> Result<(), ReadOutcome> {
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).delimiter(delimiter).from_reader(text.as_bytes());
    let mut record = csv::StringRecord::new();
    let mut feed = Feed::new(bad, sink);
    // Line numbers come from byte offsets: the csv crate does not count blank lines, and
    // undecodable lines were blanked.
    let text = text.as_bytes();
    let (mut at_byte, mut at_line) = (0usize, 1u64);
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(at_line, |p| {
                    let end = (p.byte() as usize).min(text.len());
                    at_line + text[at_byte..end].iter().filter(|b| **b == b'\n').count() as u64
                });
                return Err(ReadOutcome::Read(ReadError::Csv { line, message: e.to_string() }));
            }
        }
        let mut start = record.position().map_or(at_byte, |p| p.byte() as usize).min(text.len());
        // The position is where reading resumed: skip the blank lines before the record.
        while start < text.len() && (text[start] == b'\n' || text[start] == b'\r') {
            start += 1;
        }
        at_line += text[at_byte..start].iter().filter(|b| **b == b'\n').count() as u64;
        at_byte = start;
        feed.record(at_line, &record.iter().collect::<Vec<_>>())?;
    }
    feed.finish()
}

/// Whether a decoded CSV can be cut on commas and line ends alone, as most exports can: no
/// quote character anywhere, and a carriage return only before a line feed.
fn is_plain(text: &[u8]) -> bool {
    memchr::memchr(b'"', text).is_none() && memchr::memchr_iter(b'\r', text).all(|i| text.get(i + 1) == Some(&b'\n'))
}

/// The same rows as the `csv` reader gives for a plain file (see [`is_plain`]), without its
/// state machine and a UTF-8 check per record: the text is already `str`, and cutting it at
/// ASCII commas and line feeds leaves `str` cells. Line numbers are the line feeds counted.
fn read_plain(text: &str, bad: &[BadLine], sink: &mut dyn RowSink) -> Result<(), ReadOutcome> {
    let mut feed = Feed::new(bad, sink);
    feed_lines(&mut feed, text, 1, true)?;
    feed.finish()
}

/// Cut plain text into lines and cells for `feed`, numbering lines from `line`; the text after
/// the last line feed is a line only at the end of the file (`last`), else it is left for the
/// next piece. Returns the number of the next line.
///
/// One pass over the text, eight bytes at a time: a word's commas and line feeds are found
/// together with bit arithmetic, and each cell is cut where they are. (A search for line
/// feeds, then a byte loop for the commas of each line, was a tenth of ingest's CPU.) ASCII
/// commas and line feeds are never inside a UTF-8 sequence, so the cells are `str`.
fn feed_lines(feed: &mut Feed, text: &str, mut line: u64, last: bool) -> Result<u64, ReadOutcome> {
    let bytes = text.as_bytes();
    // The cells of the current line, reused from line to line.
    let mut cells: Vec<&str> = Vec::with_capacity(32);
    let mut start = 0;
    let words = bytes.chunks_exact(8);
    let tail = words.remainder().len();
    for (w, word) in words.enumerate() {
        let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        let mut found = zero_bytes(word ^ COMMAS) | zero_bytes(word ^ LINE_FEEDS);
        while found != 0 {
            let at = w * 8 + (found.trailing_zeros() / 8) as usize;
            if bytes[at] == b',' {
                cells.push(&text[start..at]);
            } else {
                end_line(feed, &mut cells, &text[start..at], &mut line)?;
            }
            start = at + 1;
            found &= found - 1;
        }
    }
    for at in bytes.len() - tail..bytes.len() {
        match bytes[at] {
            b',' => cells.push(&text[start..at]),
            b'\n' => end_line(feed, &mut cells, &text[start..at], &mut line)?,
            _ => continue,
        }
        start = at + 1;
    }
    if last {
        // The last line, without a line feed after it.
        end_line(feed, &mut cells, &text[start..], &mut line)?;
    }
    Ok(line)
}

/// The end of a line: its last cell (without the carriage return of a CRLF) and the record.
fn end_line<'t>(feed: &mut Feed, cells: &mut Vec<&'t str>, last: &'t str, line: &mut u64) -> Result<(), ReadOutcome> {
    cells.push(last.strip_suffix('\r').unwrap_or(last));
    feed.record(*line, cells)?;
    cells.clear();
    *line += 1;
    Ok(())
}

const COMMAS: u64 = u64::from_ne_bytes([b','; 8]);
const LINE_FEEDS: u64 = u64::from_ne_bytes([b'\n'; 8]);

/// The top bit of each byte of `x` that is zero, and no other bit (exact: no borrow runs from
/// one byte into the next).
fn zero_bytes(x: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// Either a read error or the sink's refusal of the header.
#[derive(Debug)]
pub enum ReadOutcome {
    Read(ReadError),
    Header(String),
}

/// The most a sheet may unpack to: an XLSX is a zip, and a hostile one inflates to gigabytes.
pub const MAX_SHEET_BYTES: u64 = 512 * 1024 * 1024;

/// Read an XLSX file: `sheet` if given, else its sheets in order until one holds a table (a
/// header row that maps to a kind); sheets before it (instructions, notes) are offered to the
/// sink and passed over. A later sheet that holds a table too is an error, never skipped
/// silently: see [`ReadError::SheetsWithData`].
pub fn read_xlsx(
    path: &Path,
    sheet: Option<&str>,
    aliases: &super::aliases::Aliases,
    sink: &mut dyn RowSink,
) -> Result<ReadInfo, ReadOutcome> {
    check_unpacked_size(path).map_err(ReadOutcome::Read)?;
    let err = |e: calamine::Error| ReadOutcome::Read(ReadError::Xlsx(e.to_string()));
    let mut wb = calamine::open_workbook_auto(path).map_err(err)?;
    let names: Vec<String> = match sheet {
        Some(name) => {
            if !wb.sheet_names().iter().any(|n| n == name) {
                return Err(ReadOutcome::Read(ReadError::NoSheet(name.to_string())));
            }
            vec![name.to_string()]
        }
        None => wb.sheet_names().to_vec(),
    };
    if names.is_empty() {
        return Err(ReadOutcome::Read(ReadError::Empty));
    }
    let mut read_from: Option<String> = None;
    let mut skipped_sheets = Vec::new();
    let mut refusal = None;
    for name in &names {
        let range = wb.worksheet_range(name).map_err(err)?;
        if let Some(first) = &read_from {
            // Another table after the one read: say so rather than leave it out.
            if sheet_has_table(&range, aliases) {
                return Err(ReadOutcome::Read(ReadError::SheetsWithData(first.clone(), name.clone())));
            }
            skipped_sheets.push(name.clone());
            continue;
        }
        sink.sheet(name);
        match read_sheet(&range, sink) {
            Ok(()) => {}
            // A sheet that is not a table (a long instructions sheet): the next may be.
            Err(ReadOutcome::Header(m)) if !sink.has_header() => refusal = Some(m),
            Err(e) => return Err(e),
        }
        if sink.has_header() {
            read_from = Some(name.clone());
        } else {
            skipped_sheets.push(name.clone());
        }
    }
    if read_from.is_none() {
        return Err(refusal.map_or(ReadOutcome::Read(ReadError::Empty), ReadOutcome::Header));
    }
    Ok(ReadInfo { encoding: None, skipped_sheets })
}

/// A workbook's sheets in order, split into those that hold a table and those that do not.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WorkbookSheets {
    pub tables: Vec<String>,
    pub others: Vec<String>,
}

/// Which sheets of a workbook hold a table: a workbook with one sheet per month is read sheet by
/// sheet, each as its own source.
pub fn workbook_sheets(path: &Path, aliases: &super::aliases::Aliases) -> Result<WorkbookSheets, ReadError> {
    check_unpacked_size(path)?;
    let err = |e: calamine::Error| ReadError::Xlsx(e.to_string());
    let mut wb = calamine::open_workbook_auto(path).map_err(err)?;
    let mut sheets = WorkbookSheets::default();
    for name in wb.sheet_names().to_vec() {
        let range = wb.worksheet_range(&name).map_err(err)?;
        if sheet_has_table(&range, aliases) { sheets.tables.push(name) } else { sheets.others.push(name) }
    }
    Ok(sheets)
}

/// Whether one of a sheet's first rows is a header that maps to a kind.
fn sheet_has_table(range: &calamine::Range<Data>, aliases: &super::aliases::Aliases) -> bool {
    range.rows().take(MAX_PROBE_ROWS).any(|row| {
        let texts: Vec<String> = row.iter().map(cell_text).collect();
        !texts.iter().all(|t| t.trim().is_empty()) && super::schema::map_header_with(&texts, None, aliases).is_ok()
    })
}

/// How many rows of a later sheet are looked at for a header.
const MAX_PROBE_ROWS: usize = 30;

/// One sheet's rows to the sink: candidates for the header, then the data rows.
fn read_sheet(range: &calamine::Range<Data>, sink: &mut dyn RowSink) -> Result<(), ReadOutcome> {
    let first_row = range.start().map_or(0, |(r, _)| r as u64);
    let mut have_header = false;
    let mut width = 0usize;
    let mut texts: Vec<String> = Vec::new();
    for (i, row) in range.rows().enumerate() {
        let line = first_row + i as u64 + 1;
        texts.clear();
        texts.extend(row.iter().map(cell_text));
        // Trailing empty cells are Excel's formatting, not data.
        while texts.last().is_some_and(|t| t.is_empty()) {
            texts.pop();
        }
        if texts.iter().all(|t| t.trim().is_empty()) {
            continue;
        }
        if !have_header {
            have_header = sink.header(line, texts.clone()).map_err(ReadOutcome::Header)?;
            width = texts.len();
            continue;
        }
        // A sheet has no ragged rows: empty trailing cells are simply not stored.
        if texts.len() < width {
            texts.resize(width, String::new());
        }
        let cells: Vec<&str> = texts.iter().map(String::as_str).collect();
        sink.row(line, &cells);
    }
    Ok(())
}

/// Sum the declared unpacked sizes of the workbook's parts and refuse a zip bomb before
/// calamine inflates anything.
fn check_unpacked_size(path: &Path) -> Result<(), ReadError> {
    let mut f = std::fs::File::open(path).map_err(|e| ReadError::Xlsx(e.to_string()))?;
    let mut head = [0u8; 4];
    if f.read_exact(&mut head).is_err() || &head != b"PK\x03\x04" {
        return Err(ReadError::Xlsx("not an XLSX file (no zip signature); is it an old .xls or a CSV renamed?".into()));
    }
    let bytes = std::fs::read(path).map_err(|e| ReadError::Xlsx(e.to_string()))?;
    let total =
        zip_declared_size(&bytes).ok_or_else(|| ReadError::Xlsx("the zip directory is damaged or truncated".into()))?;
    if total > MAX_SHEET_BYTES {
        return Err(ReadError::TooLarge(total >> 20, MAX_SHEET_BYTES >> 20));
    }
    Ok(())
}

/// The sum of uncompressed sizes in a zip's central directory (ZIP64 sizes count as huge).
fn zip_declared_size(bytes: &[u8]) -> Option<u64> {
    // End of central directory: signature 0x06054b50 within the last 64 KiB + 22 bytes.
    let tail_start = bytes.len().saturating_sub(65_557);
    let eocd =
        (tail_start..bytes.len().saturating_sub(21)).rev().find(|&i| bytes[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])?;
    let u16_at = |i: usize| -> Option<u64> { Some(u16::from_le_bytes(bytes.get(i..i + 2)?.try_into().ok()?) as u64) };
    let u32_at = |i: usize| -> Option<u64> { Some(u32::from_le_bytes(bytes.get(i..i + 4)?.try_into().ok()?) as u64) };
    let entries = u16_at(eocd + 10)?;
    let mut at = u32_at(eocd + 16)? as usize;
    let mut total = 0u64;
    for _ in 0..entries {
        if bytes.get(at..at + 4)? != [0x50, 0x4b, 0x01, 0x02] {
            return None;
        }
        let size = u32_at(at + 24)?;
        total += if size == 0xFFFF_FFFF { u64::MAX / 4 } else { size };
        let (n, m, k) = (u16_at(at + 28)? as usize, u16_at(at + 30)? as usize, u16_at(at + 32)? as usize);
        at += 46 + n + m + k;
    }
    Some(total)
}

/// A cell as text: dates as ISO dates, integral numbers without `.0`, errors as Excel shows them.
fn cell_text(c: &Data) -> String {
    match c {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(dt) => {
            let serial = dt.as_f64().floor() as i64;
            chrono::NaiveDate::from_ymd_opt(1899, 12, 30)
                .and_then(|d| d.checked_add_signed(chrono::Duration::days(serial)))
                .map_or_else(|| serial.to_string(), |d| d.format("%Y-%m-%d").to_string())
        }
        Data::DateTimeIso(s) => s.split('T').next().unwrap_or(s).to_string(),
        Data::DurationIso(s) => s.clone(),
        Data::Error(e) => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect {
        header: Vec<String>,
        rows: Vec<(u64, Vec<String>)>,
        bad: Vec<u64>,
    }

    impl RowSink for Collect {
        fn header(&mut self, _line: u64, cells: Vec<String>) -> Result<bool, String> {
            self.header = cells;
            Ok(true)
        }
        fn row(&mut self, line: u64, cells: &[&str]) {
            self.rows.push((line, cells.iter().map(|s| s.to_string()).collect()));
        }
        fn bad_line(&mut self, bad: &BadLine) {
            self.bad.push(bad.line);
        }
    }

    #[test]
    fn csv_lines_survive_blank_lines_quotes_and_bad_bytes() {
        let mut c = Collect::default();
        let bytes = b"\xEF\xBB\xBFa,b\n\n1,\"x\ny\"\n2,\xFF\xFE\n3,z\n";
        let info = read_csv(bytes, EncodingChoice::Auto, &mut c).unwrap();
        assert_eq!(info.encoding, Some(decode::Encoding::Utf8Bom));
        assert_eq!(c.header, vec!["a", "b"]);
        assert_eq!(
            c.rows,
            vec![(3, vec!["1".to_string(), "x\ny".to_string()]), (6, vec!["3".to_string(), "z".to_string()])]
        );
        assert_eq!(c.bad, vec![5]);
    }

    #[test]
    fn plain_files_read_as_the_csv_crate_reads_them() {
        let texts = [
            "a,b\n1,2\n",
            "\u{feff}a,b\r\n1,2\r\n\r\n3,4",
            "\n\n a , b \n  \n,,\n , \n1,\n,2\n1,2,3,\n1\n",
            "a,b\n\n\n5,6\n\n",
            "h\n1\n",
            "\n  \n,\n",
            &format!("{}\n{}\n", vec!["h"; 40].join(","), (0..40).map(|i| i.to_string()).collect::<Vec<_>>().join(",")),
        ];
        let bad = vec![
            BadLine { line: 2, excerpt: "x".into() },
            BadLine { line: 4, excerpt: "y".into() },
            BadLine { line: 99, excerpt: "z".into() },
        ];
        for text in texts {
            assert!(is_plain(text.as_bytes()), "{text:?}");
            let (mut a, mut b) = (Collect::default(), Collect::default());
            let ra = read_plain(text, &bad, &mut a).map_err(|e| format!("{e:?}"));
            let rb = read_quoted(text, &bad, b',', &mut b).map_err(|e| format!("{e:?}"));
            assert_eq!(ra, rb, "{text:?}");
            assert_eq!((a.header, a.rows, a.bad), (b.header, b.rows, b.bad), "{text:?}");
        }
        for text in ["a,\"b\"\n", "a\rb\n", "a\r"] {
            assert!(!is_plain(text.as_bytes()), "{text:?}");
        }
    }

    /// The streaming reader against the whole-file one: same header, rows, lines and encoding,
    /// across chunk boundaries (a text of several chunks, a line longer than a chunk), in UTF-8
    /// and GB18030, and for the files it must hand back (quotes, lone CR, undecodable bytes,
    /// UTF-16, a UTF-8 file with one GB18030 line, which `decode` reads as damaged UTF-8).
    #[test]
    fn streamed_plain_files_read_as_whole_files() {
        let long_cell = "x".repeat(CHUNK + 10);
        let mut big = String::from("a,b,c\r\n");
        for i in 0..(CHUNK / 10) {
            big.push_str(&format!("{i},张,{}\r\n", if i % 1000 == 0 { "" } else { "y" }));
            if i % 5000 == 0 {
                big.push_str("\r\n , ,\r\n");
            }
        }
        big.push_str(&format!("1,{long_cell},2\nlast,,"));
        let gb = |s: &str| encoding_rs::GB18030.encode(s).0.into_owned();
        let ascii_then_chinese = format!("{}\n{}", "a,b\n1,2\n".repeat(CHUNK / 8), "3,组织\n");
        let texts: Vec<Vec<u8>> = vec![
            format!("\u{feff}{big}").into_bytes(),
            gb(&big),
            gb(&ascii_then_chinese),
            b"a,b\n1,2".to_vec(),
            b"a,b\n1,2\n\n".to_vec(),
            b"\n\nh\n1\n".to_vec(),
            b"a\n".to_vec(),
        ];
        for text in &texts {
            for choice in [EncodingChoice::Auto, EncodingChoice::Gb18030] {
                if choice == EncodingChoice::Gb18030 && text.starts_with(decode::UTF8_BOM) {
                    continue;
                }
                let (mut a, mut b) = (Collect::default(), Collect::default());
                let ra = read_csv(text, choice, &mut a).map(|i| i.encoding);
                let rb = read_csv_stream(&mut &text[..], choice, &mut b).map(|i| i.unwrap().encoding);
                assert_eq!(format!("{ra:?}"), format!("{rb:?}"));
                assert!(a.rows.len() == b.rows.len() && a.rows == b.rows, "{} rows", a.rows.len());
                assert_eq!((a.header, a.bad), (b.header, b.bad));
            }
        }
        let mut damaged = "名,值\n张,1\n李,2\n王,3\n".as_bytes().to_vec();
        damaged.extend(gb("赵,4\n"));
        for text in [&b"a,\"b\"\n"[..], b"a\rb\n", b"a,b\n1,\xFF\n", b"\xFF\xFEa\x00", &damaged] {
            let mut c = Collect::default();
            assert!(read_csv_stream(&mut &text[..], EncodingChoice::Auto, &mut c).unwrap().is_none(), "{text:?}");
        }
        let mut c = Collect::default();
        assert!(matches!(
            read_csv_stream(&mut &b"\n \n"[..], EncodingChoice::Auto, &mut c),
            Err(ReadOutcome::Read(ReadError::Empty))
        ));
    }

    /// The word-at-a-time cutter against the `csv` crate on random plain texts: commas, line
    /// feeds and CRLFs at every offset of a word, blank lines, multi-byte characters, no line
    /// feed at the end.
    mod cutter {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

            #[test]
            fn cuts_as_the_csv_crate_does(pieces in prop::collection::vec(
                prop::sample::select(vec!["a", "bc", ",", ",", "\n", "\r\n", " ", "张", "é", "12345678"]), 0..120)) {
                let text = format!("h1,h2\n{}", pieces.concat());
                let (mut a, mut b) = (Collect::default(), Collect::default());
                let ra = read_plain(&text, &[], &mut a).map_err(|e| format!("{e:?}"));
                let rb = read_quoted(&text, &[], b',', &mut b).map_err(|e| format!("{e:?}"));
                prop_assert_eq!(ra, rb);
                prop_assert_eq!((a.header, a.rows), (b.header, b.rows));
            }
        }
    }

    #[test]
    fn empty_csv_is_an_error() {
        let mut c = Collect::default();
        assert!(matches!(read_csv(b"\n\n", EncodingChoice::Auto, &mut c), Err(ReadOutcome::Read(ReadError::Empty))));
    }

    #[test]
    fn excel_cells_become_text() {
        assert_eq!(cell_text(&Data::Float(1001.0)), "1001");
        assert_eq!(cell_text(&Data::Float(85.5)), "85.5");
        assert_eq!(cell_text(&Data::Error(calamine::CellErrorType::Div0)), "#DIV/0!");
    }
}
