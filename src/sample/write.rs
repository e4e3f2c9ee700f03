//! Writers for the sample's files: CSV rows encoded as they are written (GB18030, UTF-8 with
//! or without a BOM), and XLSX sheets with a fixed creation time so the bytes are repeatable.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{Datelike, NaiveDate};
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enc {
    Utf8,
    Utf8Bom,
    Gb18030,
}

/// Windows line ends, as Excel writes them.
fn line_writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).flexible(true).from_writer(Vec::new())
}

/// A CSV file written row by row.
pub struct CsvOut {
    path: PathBuf,
    out: BufWriter<File>,
    enc: Enc,
    line: csv::Writer<Vec<u8>>,
    rows: u64,
    header_done: bool,
}

impl CsvOut {
    pub fn create(path: &Path, enc: Enc) -> Result<CsvOut> {
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p)?;
        }
        let f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, f);
        if enc == Enc::Utf8Bom {
            out.write_all(b"\xEF\xBB\xBF")?;
        }
        let line = line_writer();
        Ok(CsvOut { path: path.to_path_buf(), out, enc, line, rows: 0, header_done: false })
    }

    /// The bytes of the record just written (the csv writer is swapped for a fresh one).
    fn take_line(&mut self) -> Result<Vec<u8>> {
        let fresh = line_writer();
        let old = std::mem::replace(&mut self.line, fresh);
        old.into_inner().map_err(|e| anyhow::anyhow!("{}", e.error()))
    }

    fn emit(&mut self) -> Result<()> {
        let bytes = self.take_line()?;
        match self.enc {
            Enc::Gb18030 => {
                let text = std::str::from_utf8(&bytes).expect("csv writes UTF-8");
                let (enc, _, unmappable) = encoding_rs::GB18030.encode(text);
                debug_assert!(!unmappable, "GB18030 maps every character");
                self.out.write_all(&enc)?;
            }
            _ => self.out.write_all(&bytes)?,
        }
        if self.header_done {
            self.rows += 1;
        }
        self.header_done = true;
        Ok(())
    }

    pub fn row(&mut self, cells: &[&str]) -> Result<()> {
        self.line.write_record(cells)?;
        self.emit()
    }

    /// A row that is not data, as offices put above and below a table (a title, 填表人): written,
    /// neither the header nor counted.
    pub fn note(&mut self, cells: &[&str]) -> Result<()> {
        let (rows, header_done) = (self.rows, self.header_done);
        self.line.write_record(cells)?;
        self.emit()?;
        (self.rows, self.header_done) = (rows, header_done);
        Ok(())
    }

    pub fn row_owned(&mut self, cells: &[String]) -> Result<()> {
        self.line.write_record(cells)?;
        self.emit()
    }

    /// A row whose last cell holds a byte sequence invalid in the file's encoding: 0x81 then a
    /// space, a GB18030 lead byte without its trail byte, and never valid UTF-8.
    pub fn raw_bad_row(&mut self, cells: &[String]) -> Result<()> {
        const MARK: &str = "@@BAD@@";
        let mut marked = cells.to_vec();
        if let Some(last) = marked.last_mut() {
            *last = MARK.to_string();
        }
        self.line.write_record(&marked)?;
        let text = String::from_utf8(self.take_line()?).expect("csv writes UTF-8");
        let encoded: Vec<u8> = match self.enc {
            Enc::Gb18030 => encoding_rs::GB18030.encode(&text).0.into_owned(),
            _ => text.into_bytes(),
        };
        let at = encoded.windows(MARK.len()).position(|w| w == MARK.as_bytes()).expect("marker written");
        self.out.write_all(&encoded[..at])?;
        self.out.write_all(b"\x81 ")?;
        self.out.write_all(&encoded[at + MARK.len()..])?;
        self.rows += 1;
        Ok(())
    }

    pub fn finish(mut self) -> Result<(PathBuf, u64)> {
        self.out.flush()?;
        self.out.get_ref().sync_all()?;
        Ok((self.path, self.rows))
    }
}

/// A cell of an XLSX row.
pub enum Cell {
    Text(String),
    Number(f64),
    Date(NaiveDate),
}

/// An XLSX workbook built in memory (only small files are XLSX): one plain sheet, or, as an
/// office keeps a ledger, an instructions sheet and then a sheet per month, each under a
/// merged title and a 填报单位 line with a 合计 row below.
pub struct XlsxOut {
    wb: Workbook,
    /// Data rows written, over all sheets.
    rows: u64,
    /// The sheet being written, and the row its next data row goes to.
    sheet: usize,
    next_row: u32,
    /// The header of every data sheet; an office sheet's data rows, for its 合计.
    header: Vec<String>,
    office: Option<u64>,
    date_format: Format,
}

/// The instructions sheet an office's workbook opens with.
const INSTRUCTIONS: [&str; 3] =
    ["填表说明", "1. 每月一张工作表，每条积分记录一行，请勿合并单元格。", "2. 积分类别填 基础积分/奖励积分/扣减积分。"];

impl XlsxOut {
    pub fn new(header: &[&str]) -> Result<XlsxOut> {
        let mut x = XlsxOut::empty(header);
        let ws = x.wb.add_worksheet();
        ws.set_name("Sheet1")?;
        x.write_header(0)?;
        x.next_row = 1;
        Ok(x)
    }

    /// A workbook as an office keeps one: the instructions sheet now, data sheets by
    /// [`XlsxOut::office_sheet`].
    pub fn office(header: &[&str]) -> Result<XlsxOut> {
        let mut x = XlsxOut::empty(header);
        let ws = x.wb.add_worksheet();
        ws.set_name(INSTRUCTIONS[0])?;
        for (r, line) in INSTRUCTIONS.iter().enumerate() {
            ws.write_string(r as u32, 0, *line)?;
        }
        Ok(x)
    }

    fn empty(header: &[&str]) -> XlsxOut {
        let mut wb = Workbook::new();
        // A fixed creation time: the same sample gives the same bytes.
        let created = ExcelDateTime::from_ymd(2026, 1, 1).expect("a valid date");
        wb.set_properties(&DocProperties::new().set_creation_datetime(&created));
        XlsxOut {
            wb,
            rows: 0,
            sheet: 0,
            next_row: 0,
            header: header.iter().map(|h| h.to_string()).collect(),
            office: None,
            date_format: Format::new().set_num_format("yyyy-mm-dd"),
        }
    }

    /// A new data sheet under `title` (merged over the header's width) and a 填报单位 line; the
    /// sheet before it gets its 合计 row.
    pub fn office_sheet(&mut self, name: &str, title: &str) -> Result<()> {
        self.close_office_sheet()?;
        let width = self.header.len() as u16;
        let ws = self.wb.add_worksheet();
        ws.set_name(name)?;
        ws.merge_range(0, 0, 0, width.saturating_sub(1), title, &Format::new().set_bold())?;
        ws.write_string(1, 0, "填报单位：区委组织部（盖章）")?;
        self.sheet = self.wb.worksheets().len() - 1;
        self.write_header(2)?;
        self.next_row = 3;
        self.office = Some(0);
        Ok(())
    }

    fn close_office_sheet(&mut self) -> Result<()> {
        if let Some(n) = self.office.take() {
            let (r, sheet) = (self.next_row, self.sheet);
            let ws = self.wb.worksheet_from_index(sheet)?;
            ws.write_string(r, 0, "合计")?;
            ws.write_string(r, 1, format!("{n}条"))?;
        }
        Ok(())
    }

    fn write_header(&mut self, row: u32) -> Result<()> {
        let (sheet, header) = (self.sheet, self.header.clone());
        let ws = self.wb.worksheet_from_index(sheet)?;
        for (c, h) in header.iter().enumerate() {
            ws.write_string(row, c as u16, h)?;
        }
        Ok(())
    }

    pub fn row(&mut self, cells: &[Cell]) -> Result<()> {
        let (r, sheet) = (self.next_row, self.sheet);
        self.next_row += 1;
        self.rows += 1;
        if let Some(n) = self.office.as_mut() {
            *n += 1;
        }
        let ws = self.wb.worksheet_from_index(sheet)?;
        for (c, cell) in cells.iter().enumerate() {
            let c = c as u16;
            match cell {
                Cell::Text(s) if s.is_empty() => {}
                Cell::Text(s) => {
                    ws.write_string(r, c, s)?;
                }
                Cell::Number(n) => {
                    ws.write_number(r, c, *n)?;
                }
                Cell::Date(d) => {
                    let dt = ExcelDateTime::from_ymd(d.year() as u16, d.month() as u8, d.day() as u8)?;
                    ws.write_datetime_with_format(r, c, &dt, &self.date_format)?;
                }
            }
        }
        Ok(())
    }

    pub fn save(mut self, path: &Path) -> Result<u64> {
        self.close_office_sheet()?;
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p)?;
        }
        self.wb.save(path).with_context(|| format!("writing {}", path.display()))?;
        Ok(self.rows)
    }
}
