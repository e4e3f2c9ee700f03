//! Row validation: one file's rows become typed columns for the warehouse, or quarantine
//! records naming file, line, column, value and rule.
//!
//! The validator sees one row at a time (it never holds the file's text), checks types,
//! enumerations, ranges, required columns and references to units, hashes personal names,
//! and catches a natural key repeated inside the same file. It does no I/O.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use polars::prelude::*;
use polars_arrow::array::MutableBinaryViewArray;
use polars_arrow::array::View;

use super::keycheck::{Admit, KeyCheck};
use super::names::NameHasher;
use super::schema::HeaderMap;
use super::values::{self, DateError};
use crate::model::kinds::{Field, FieldType, Kind};
use crate::model::period::{date_of_day, day_number};
use crate::packed::{TextMap, encode, pack};

/// A validation rule; the quarantine table names it in `rule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Bytes that are invalid in the file's encoding.
    Encoding,
    /// A row with more or fewer fields than the header.
    Ragged,
    /// A required value is empty.
    Required,
    /// A value that does not parse as its type (date, number, yes/no, period).
    Type,
    /// A value that is not one of the enumeration's codes or labels.
    Enum,
    /// A value out of its allowed range (scores, dates, signs, text length).
    Range,
    /// An Excel error value such as `#DIV/0!`.
    ExcelError,
    /// A `unit_id` or `parent_id` that is not in the units table.
    Reference,
    /// The same natural key twice in one file with different values.
    KeyConflict,
    /// A unit that breaks the tree: a cycle, a second root, a bad root, too deep.
    Tree,
}

impl Rule {
    pub fn name(&self) -> &'static str {
        match self {
            Rule::Encoding => "encoding",
            Rule::Ragged => "ragged",
            Rule::Required => "required",
            Rule::Type => "type",
            Rule::Enum => "enum",
            Rule::Range => "range",
            Rule::ExcelError => "excel_error",
            Rule::Reference => "reference",
            Rule::KeyConflict => "key_conflict",
            Rule::Tree => "tree",
        }
    }
}

/// One reason a row was quarantined. A row may have several; it is counted once.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub line: u64,
    /// The column as the file names it (its header cell), or `-` for the whole row.
    pub column: String,
    pub value: String,
    pub rule: Rule,
    pub message: String,
}

/// A quarantined row with the original cells, so a clerk can fix and resend it.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedRow {
    pub line: u64,
    pub cells: Vec<String>,
    pub reasons: Vec<Rejection>,
}

enum Buf {
    /// A column that is null on every row (personal names when names are dropped): counted,
    /// not built, so no 16-byte view per row is written for it.
    Nulls(PlSmallStr, usize),
    Text(TextBuf),
    Date(PrimitiveChunkedBuilder<Int32Type>),
    Number(PrimitiveChunkedBuilder<Float64Type>),
    Bool(BooleanChunkedBuilder),
}

impl Buf {
    fn new(field: &Field, cap: usize, names: &NameHasher) -> Buf {
        let name = PlSmallStr::from(field.stored_name());
        if field.ty == FieldType::PersonalName && !names.is_keyed() {
            return Buf::Nulls(name, 0);
        }
        match field.stored_dtype() {
            DataType::Date => Buf::Date(PrimitiveChunkedBuilder::new(name, cap)),
            DataType::Float64 => Buf::Number(PrimitiveChunkedBuilder::new(name, cap)),
            DataType::Boolean => Buf::Bool(BooleanChunkedBuilder::new(name, cap)),
            _ => Buf::Text(TextBuf::new(name, cap)),
        }
    }

    fn finish(self) -> Column {
        match self {
            Buf::Nulls(name, n) => Column::full_null(name, n, &DataType::String),
            Buf::Text(b) => b.finish(),
            Buf::Date(b) => b.finish().into_date().into_column(),
            Buf::Number(b) => b.finish().into_column(),
            Buf::Bool(b) => b.finish().into_column(),
        }
    }
}

/// A text column built run by run. Rows come grouped by event, so an event's id, unit and type
/// repeat row after row: a run's value is written once and its view repeated, which costs no
/// copy per row, keeps long values (event ids) out of the buffer but once a run, and lets the
/// Parquet writer see a repeat by its view. A column whose values seldom repeat in runs (any
/// column of a shuffled file) is appended value by value after its first rows, and its long
/// values are interned while they repeat at all: see [`Interned`].
struct TextBuf {
    name: PlSmallStr,
    array: MutableBinaryViewArray<str>,
    /// The pending run: its value (unless null) and length (0: no run).
    run: String,
    run_null: bool,
    run_len: usize,
    /// Runs flushed so far, to decide `direct`.
    runs: usize,
    /// Whether values go straight into the array (the column does not run).
    direct: bool,
    /// Long values already written, once the column is direct (`None`: given up).
    interned: Option<Interned>,
}

/// After this many values a column that ran less than twice a value on average is appended
/// value by value.
const RUN_TRIAL: usize = 1024;

/// The long values (past a view's 12 inline bytes) of a direct column, each with the view of
/// its first copy in the buffer: a repeat is given that view instead of a copy of its bytes.
/// Equal values then have equal views, as after runs, so that the sort and the Parquet
/// writer's dictionary see a repeat by its view, without reading the bytes.
/// A shuffled month's event ids (1,500 values on 140,000 rows) were compared in full there,
/// at addresses all over the buffer.
struct Interned {
    /// Event ids (16 bytes) are found by their packed form, without `memcmp`.
    views: TextMap<Box<str>, View>,
    /// Long values seen, interned or not.
    seen: usize,
    /// Bytes of the views pushed without `push_value`, added to the array's total at the end.
    bytes: usize,
}

/// The most distinct values interned. A column that fills the table having repeated less than
/// once a value on average (notes, names) stops interning; another keeps the table as it is.
/// The decision waits that long because a month's event ids, taken in no order, look all
/// distinct until about as many rows have passed as there are events (1,500 in a district's
/// month, 100,000 in a province's).
const INTERN_MAX: usize = 1 << 18;

impl TextBuf {
    fn new(name: PlSmallStr, cap: usize) -> TextBuf {
        let array = MutableBinaryViewArray::with_capacity(cap);
        let interned = Some(Interned { views: TextMap::default(), seen: 0, bytes: 0 });
        TextBuf { name, array, run: String::new(), run_null: false, run_len: 0, runs: 0, direct: false, interned }
    }

    fn push(&mut self, value: Option<&str>) {
        if self.direct {
            return self.push_direct(value);
        }
        let same = match value {
            None => self.run_null,
            Some(v) => !self.run_null && self.run == v,
        };
        if self.run_len > 0 && same {
            self.run_len += 1;
            return;
        }
        self.flush();
        if self.array.len() >= RUN_TRIAL && self.runs * 2 > self.array.len() {
            self.direct = true;
            return self.push_direct(value);
        }
        self.run_null = value.is_none();
        self.run.clear();
        self.run.push_str(value.unwrap_or(""));
        self.run_len = 1;
    }

    fn push_direct(&mut self, value: Option<&str>) {
        let (Some(v), Some(interned)) = (value, &mut self.interned) else {
            return self.array.push(value);
        };
        if v.len() <= View::MAX_INLINE_SIZE as usize {
            return self.array.push_value(v);
        }
        interned.seen += 1;
        if let Some(&view) = interned.views.get(v) {
            // SAFETY: the view was returned for this array's own bytes (an earlier
            // `push_value`) and buffers are never dropped while the array grows, so it stays
            // valid; the views' total length, the one other invariant, is brought up to date
            // in `finish` (nothing reads it before).
            #[allow(unsafe_code)]
            unsafe {
                self.array.views_mut().push(view)
            };
            if let Some(validity) = self.array.validity() {
                validity.push(true);
            }
            interned.bytes += v.len();
            return;
        }
        self.array.push_value(v);
        let distinct = interned.views.len() + 1;
        if distinct <= INTERN_MAX {
            let view = *self.array.views().last().expect("a value was pushed");
            interned.views.insert(v, view);
        } else if interned.seen < 2 * distinct {
            let bytes = interned.bytes;
            self.interned = None;
            self.add_bytes(bytes);
        }
    }

    /// Count `bytes` of values pushed by view in the array's total.
    fn add_bytes(&mut self, bytes: usize) {
        if bytes > 0 {
            let total = self.array.total_bytes_len() + bytes;
            // SAFETY: `bytes` is the length of the values pushed by view alone, which
            // `total_bytes_len` did not count: the total is then the views' lengths' sum.
            #[allow(unsafe_code)]
            unsafe {
                self.array.set_total_bytes_len(total)
            };
        }
    }

    fn flush(&mut self) {
        if self.run_len > 0 {
            // (`extend_constant` with `None` would not add views: nulls go by `extend_null`.)
            match self.run_null {
                true => self.array.extend_null(self.run_len),
                false => self.array.extend_constant(self.run_len, Some(self.run.as_str())),
            }
            self.runs += 1;
            self.run_len = 0;
        }
    }

    fn finish(mut self) -> Column {
        self.flush();
        if let Some(interned) = self.interned.take() {
            self.add_bytes(interned.bytes);
        }
        StringChunked::with_chunk(self.name, self.array.freeze()).into_column()
    }
}

/// A parsed cell, before it is appended to its column. Text borrows the row's cell (or an
/// enumeration's code) so that a valid row costs no allocation per cell.
#[derive(Debug, Clone, PartialEq)]
enum Value<'c> {
    Null,
    Text(Cow<'c, str>),
    Date(i32),
    Number(f64),
    Bool(bool),
}

impl Value<'_> {
    /// The value as a key's text: text as it is, a date as `YYYY-MM-DD`, nothing as empty.
    fn key_text(&self) -> String {
        match self {
            Value::Text(s) => s.to_string(),
            Value::Date(d) => date_of_day(*d).to_string(),
            _ => String::new(),
        }
    }

    /// Append an unambiguous encoding of the value (for the content hash).
    fn encode_into(&self, buf: &mut Vec<u8>) {
        match self {
            Value::Null => buf.push(0),
            Value::Text(s) => {
                buf.push(1);
                encode(buf, s.as_bytes());
            }
            Value::Date(d) => {
                buf.push(2);
                buf.extend_from_slice(&d.to_le_bytes());
            }
            Value::Number(n) => {
                buf.push(3);
                buf.extend_from_slice(&n.to_bits().to_le_bytes());
            }
            Value::Bool(b) => buf.extend_from_slice(&[4, *b as u8]),
        }
    }
}

/// A 128-bit hash of a natural key (XXH3-128 over the encoded parts, see [`encode`]):
/// collisions are negligible even at billions of rows. `buf` is scratch space, reused to
/// avoid an allocation per row. (Only an ingest's own keys are compared with it: stored keys
/// are hashed again when read.)
pub fn key_hash_with<'a>(buf: &mut Vec<u8>, parts: impl Iterator<Item = &'a str>) -> u128 {
    buf.clear();
    for p in parts {
        encode(buf, p.as_bytes());
    }
    xxhash_rust::xxh3::xxh3_128(buf)
}

/// The bucket hash of a natural-key hash: its halves folded (it is already uniform, and
/// hashing it again was a tenth of ingest time).
pub fn fold(key: u128) -> u64 {
    (key as u64) ^ ((key >> 64) as u64)
}

/// The short (64-bit) hash of a natural key that a validated row keeps until the merge: the
/// 128-bit hash folded. Two keys in a billion rows share one with a chance of a few per cent,
/// so it only says where full keys must be compared.
pub fn short(key: u128) -> u64 {
    fold(key)
}

/// The most fields a kind has (see `schema`); a test holds every kind to it.
const MAX_FIELDS: usize = 12;

/// The cells of a field that parsed to a date or an enumeration code, and their values: the
/// last one, and up to [`MEMO_CAP`] distinct ones. Rows come grouped by event, so the same
/// date and type repeat row after row, and a month's export has a few dozen dates even when
/// its rows are shuffled: looking the cell up costs less than parsing it again (parsing dates
/// and codes was about 7% of ingest's CPU, more on shuffled rows).
#[derive(Default)]
struct Memo {
    /// The last cell looked up or set, packed (see [`pack`]), and its value.
    last: Option<((u128, u8), MemoValue)>,
    /// The cells seen: dates, codes and most labels are 16 bytes at most, looked up without
    /// comparing texts.
    seen: TextMap<Box<str>, MemoValue>,
}

/// How many distinct cells a [`Memo`] keeps: two years of dates, every code.
const MEMO_CAP: usize = 1024;

#[derive(Clone, Copy)]
enum MemoValue {
    Date(i32),
    Code(&'static str),
}

impl MemoValue {
    fn value(self) -> Value<'static> {
        match self {
            MemoValue::Date(d) => Value::Date(d),
            MemoValue::Code(c) => Value::Text(Cow::Borrowed(c)),
        }
    }
}

impl Memo {
    fn get(&mut self, raw: &str) -> Option<Value<'static>> {
        let packed = pack(raw.as_bytes());
        if let Some((last, value)) = self.last
            && packed == Some(last)
        {
            return Some(value.value());
        }
        let value = *self.seen.get(raw)?;
        self.last = packed.map(|p| (p, value));
        Some(value.value())
    }

    /// Remember `raw`'s value if it is a date or an enumeration's code.
    fn set(&mut self, field: &Field, raw: &str, value: &Value) {
        let value = match (&field.ty, value) {
            (FieldType::Date, Value::Date(d)) => MemoValue::Date(*d),
            // The code again, as the schema's own `'static` text.
            (FieldType::Enum(set), Value::Text(c)) => match set.iter().find(|v| v.code == c) {
                Some(v) => MemoValue::Code(v.code),
                None => return,
            },
            _ => return,
        };
        if self.seen.len() < MEMO_CAP {
            self.seen.insert(raw, value);
        }
        self.last = pack(raw.as_bytes()).map(|p| (p, value));
    }
}

/// The validated rows of one file.
pub struct Validated {
    /// Typed columns for the rows that passed, in file order, plus `source_line`.
    pub frame: DataFrame,
    /// A 64-bit hash of each row's natural key ([`short`] of its 128-bit hash): 8 bytes a row
    /// kept until the merge, not 16. Equal short hashes are not equal keys: the merge compares
    /// the full keys wherever two short hashes meet.
    pub keys: Vec<u64>,
    pub rows_read: u64,
    pub duplicates: u64,
    pub rejected: Vec<RejectedRow>,
    /// Whether the rows of `frame` are in strictly increasing natural-key order (byte order,
    /// as polars sorts text; key fields are required, so never null): staging then has
    /// nothing to sort and nothing to check. `false` says only that the validator saw rows
    /// out of order.
    pub in_key_order: bool,
}

/// Positions in `kind.fields()` of the fields the row rules look at, found once per file.
#[derive(Debug, Default)]
struct FieldIx {
    unit_id: Option<usize>,
    parent_id: Option<usize>,
    max_score: Option<usize>,
    score: Option<usize>,
    category: Option<usize>,
    points: Option<usize>,
    valid_from: Option<usize>,
    valid_to: Option<usize>,
    status: Option<usize>,
    /// The date a task was done or a finding rectified.
    closed_date: Option<usize>,
    /// A finding's found date and deadline.
    found_date: Option<usize>,
    deadline: Option<usize>,
    key: Vec<usize>,
    /// The fields outside the key: a row's content, which tells a repeat of a key from a
    /// conflict, is theirs (the key's own fields are equal in both).
    rest: Vec<usize>,
    /// Whether a date is part of the key (a unit's versions): its text is then made per row.
    date_key: bool,
}

impl FieldIx {
    fn of(kind: Kind) -> FieldIx {
        let fields = kind.fields();
        let at = |name: &str| fields.iter().position(|f| f.name == name);
        FieldIx {
            unit_id: at("unit_id"),
            parent_id: at("parent_id"),
            max_score: at("max_score"),
            score: at("score"),
            category: at("category"),
            points: at("points"),
            valid_from: at("valid_from"),
            valid_to: at("valid_to"),
            status: at("status"),
            closed_date: at("done_date").or_else(|| at("rectified_date")),
            found_date: at("found_date"),
            deadline: at("deadline"),
            key: kind.natural_key().iter().map(|k| at(k).expect("key field")).collect(),
            rest: (0..fields.len()).filter(|i| !kind.natural_key().contains(&fields[*i].name)).collect(),
            date_key: kind.natural_key().iter().any(|k| kind.field(k).is_some_and(|f| f.ty == FieldType::Date)),
        }
    }
}

/// Validates the rows of one file of one kind.
pub struct Validator<'a> {
    kind: Kind,
    header: Vec<String>,
    map: HeaderMap,
    ix: FieldIx,
    units: Option<&'a HashSet<String>>,
    names: &'a NameHasher,
    bufs: Vec<Buf>,
    lines: Vec<i64>,
    /// The repeated-key check, row by row; `None` for a block of a larger file, whose rows
    /// are checked in file order afterwards (see [`Block`]).
    check: Option<KeyCheck>,
    /// A block's short key hash per row (see [`Block`]).
    block_keys: Vec<u64>,
    /// Whether every key field is plain text, so that a row's key can be hashed from its raw
    /// cells before they are parsed (see [`Validator::row`]).
    raw_key: bool,
    /// Scratch space for hashing, reused by every row.
    scratch: Vec<u8>,
    /// The unit ids found in the units table so far: a faster hash than the table's, and
    /// small enough to stay in cache when rows are not grouped by unit.
    /// Units found in `units` so far, packed (see [`pack`]; a longer id is looked up there
    /// each time).
    known_units: hashbrown::HashSet<(u128, u8), foldhash::fast::FixedState>,
    /// Per field, the last cell parsed to a date or an enumeration code and its value.
    memo: Vec<Memo>,
    /// Per field, extra labels from the district's aliases file: label → code.
    labels: Vec<HashMap<String, &'static str>>,
    rows_read: u64,
    rejected: Vec<RejectedRow>,
}

impl<'a> Validator<'a> {
    /// `units` is the set of known unit ids for the reference check (`None` for units files,
    /// whose references are checked on the whole tree afterwards).
    /// The district's extra enumeration labels (aliases), per field.
    pub fn with_labels(mut self, aliases: &super::aliases::Aliases) -> Self {
        self.labels = self.kind.fields().iter().map(|f| aliases.labels(self.kind, f.name)).collect();
        self
    }

    pub fn new(
        header: Vec<String>,
        map: HeaderMap,
        units: Option<&'a HashSet<String>>,
        names: &'a NameHasher,
        capacity: usize,
    ) -> Self {
        let kind = map.kind;
        let bufs = kind.fields().iter().map(|f| Buf::new(f, capacity, names)).collect();
        Validator {
            kind,
            header,
            map,
            ix: FieldIx::of(kind),
            units,
            names,
            bufs,
            lines: Vec::with_capacity(capacity),
            check: Some(KeyCheck::with_capacity(capacity)),
            block_keys: Vec::new(),
            raw_key: kind.natural_key().iter().all(|k| kind.field(k).is_some_and(|f| f.ty == FieldType::Text)),
            scratch: Vec::with_capacity(256),
            known_units: Default::default(),
            memo: kind.fields().iter().map(|_| Memo::default()).collect(),
            labels: kind.fields().iter().map(|_| HashMap::new()).collect(),
            rows_read: 0,
            rejected: Vec::new(),
        }
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// A line that could not be decoded: read, and quarantined.
    pub fn bad_line(&mut self, line: u64, excerpt: &str) {
        self.rows_read += 1;
        self.rejected.push(RejectedRow {
            line,
            cells: Vec::new(),
            reasons: vec![Rejection {
                line,
                column: "-".into(),
                value: excerpt.to_string(),
                rule: Rule::Encoding,
                message: "the line has bytes that are invalid in the file's encoding".into(),
            }],
        });
    }

    /// Validate one data row.
    pub fn row(&mut self, line: u64, cells: &[&str]) {
        self.rows_read += 1;
        let mut reasons = Vec::new();
        if cells.len() != self.header.len() {
            // Trailing empty cells (a common Excel artefact) are not an error.
            let extra_empty =
                cells.len() > self.header.len() && cells[self.header.len()..].iter().all(|c| c.trim().is_empty());
            if !extra_empty {
                // The value names the count, not the cells: a cell may hold a personal name.
                reasons.push(Rejection {
                    line,
                    column: "-".into(),
                    value: format!("{} fields", cells.len()),
                    rule: Rule::Ragged,
                    message: format!("the row has {} fields, the header has {}", cells.len(), self.header.len()),
                });
                return self.reject(line, cells, reasons);
            }
        }
        // The key table is larger than the caches, so its probe is a memory read: start it now,
        // from the raw key cells, and parse the row while it comes. A valid text cell's value
        // is its trimmed text, so the key is the same as the one `accept` would compute.
        let early = match &self.check {
            Some(check) if self.raw_key && !check.in_order() => {
                let map = &self.map;
                let raw = |fi: &usize| map.columns[*fi].and_then(|ci| cells.get(ci)).map_or("", |c| values::trim(c));
                let key = key_hash_with(&mut self.scratch, self.ix.key.iter().map(raw));
                check.prefetch(key);
                Some(key)
            }
            _ => None,
        };
        let fields = self.kind.fields();
        // The values on the stack: no allocation per row.
        let mut store: [Value; MAX_FIELDS] = std::array::from_fn(|_| Value::Null);
        let values = &mut store[..fields.len()];
        for (fi, field) in fields.iter().enumerate() {
            let Some(ci) = self.map.columns[fi] else { continue };
            let raw = cells.get(ci).copied().unwrap_or("");
            let memo = &mut self.memo[fi];
            // Only dates and codes are remembered: another field would hash its cell for nothing.
            let remembered = matches!(field.ty, FieldType::Date | FieldType::Enum(_));
            if remembered && let Some(v) = memo.get(raw) {
                values[fi] = v;
                continue;
            }
            let parsed =
                parse_cell(field, raw, self.names).or_else(|e| match (&e.0, self.labels[fi].get(values::trim(raw))) {
                    // A label of the district's own (aliases), after the built-in ones.
                    (Rule::Enum, Some(code)) => Ok(Value::Text(Cow::Borrowed(*code))),
                    _ => Err(e),
                });
            match parsed {
                Ok(v) => {
                    memo.set(field, raw, &v);
                    values[fi] = v
                }
                Err((rule, message)) => reasons.push(Rejection {
                    line,
                    column: self.header[ci].clone(),
                    value: raw.chars().take(200).collect(),
                    rule,
                    message,
                }),
            }
        }
        if reasons.is_empty() {
            let unit_known = self.unit_known(values);
            self.row_rules(line, cells, values, unit_known, &mut reasons);
        }
        if !reasons.is_empty() {
            return self.reject(line, cells, reasons);
        }
        self.accept(line, cells, values, early);
    }

    /// Whether the row's unit is in the units table (true when there is nothing to check).
    fn unit_known(&mut self, values: &[Value]) -> bool {
        let (Some(units), Some(fi)) = (self.units, self.ix.unit_id) else { return true };
        let Value::Text(u) = &values[fi] else { return true };
        let packed = pack(u.as_bytes());
        if let Some(p) = packed
            && self.known_units.contains(&p)
        {
            return true;
        }
        if !units.contains(u.as_ref()) {
            return false;
        }
        self.known_units.extend(packed);
        true
    }

    /// Rules across fields: ranges, signs, references.
    fn row_rules(&self, line: u64, cells: &[&str], values: &[Value], unit_known: bool, reasons: &mut Vec<Rejection>) {
        let ix = &self.ix;
        let mut push = |fi: usize, rule: Rule, message: String| {
            let ci = self.map.columns[fi].expect("a field with a value has a column");
            let (column, value) = (self.header[ci].clone(), cells.get(ci).copied().unwrap_or("").to_string());
            reasons.push(Rejection { line, column, value, rule, message });
        };
        let value = |fi: Option<usize>| fi.map_or(&Value::Null, |i| &values[i]);
        if !unit_known
            && let Some(fi) = ix.unit_id
            && let Value::Text(u) = &values[fi]
        {
            push(fi, Rule::Reference, format!("unit '{u}' is not in the units table"));
        }
        match self.kind {
            Kind::Assessment => {
                let (Value::Number(max), Value::Number(score)) = (value(ix.max_score), value(ix.score)) else {
                    return;
                };
                if *max <= 0.0 {
                    push(ix.max_score.expect("present"), Rule::Range, format!("max_score {max} must be above 0"));
                } else if *score < 0.0 || score > max {
                    let m = format!("score {score} is outside 0 to max_score {max}");
                    push(ix.score.expect("present"), Rule::Range, m);
                }
            }
            Kind::Points => {
                let (Value::Text(cat), Value::Number(p)) = (value(ix.category), value(ix.points)) else {
                    return;
                };
                let at = ix.points.expect("present");
                if cat == "deduction" && *p >= 0.0 {
                    push(at, Rule::Range, format!("a deduction must be negative, got {p}"));
                } else if cat != "deduction" && *p < 0.0 {
                    push(at, Rule::Range, format!("only a deduction may be negative, got {p} for {cat}"));
                }
            }
            Kind::Units => {
                let (Value::Text(id), parent) = (value(ix.unit_id), value(ix.parent_id)) else {
                    return;
                };
                if id.contains('/') {
                    // `/` separates ids in the units table's `path` column.
                    push(ix.unit_id.expect("present"), Rule::Type, format!("unit id '{id}' must not contain '/'"));
                }
                if let Value::Text(p) = parent
                    && p == id
                {
                    push(ix.parent_id.expect("present"), Rule::Tree, format!("unit '{id}' is its own parent"));
                }
                if let (Value::Date(from), Value::Date(to)) = (value(ix.valid_from), value(ix.valid_to))
                    && to < from
                {
                    push(
                        ix.valid_to.expect("present"),
                        Rule::Range,
                        "撤销日期 (valid_to) is before 生效日期 (valid_from)".into(),
                    );
                }
            }
            Kind::Tasks | Kind::Findings => {
                let (closed, field, label) = match self.kind {
                    Kind::Tasks => ("done", "done_date", "完成日期"),
                    _ => ("rectified", "rectified_date", "整改完成日期"),
                };
                let Value::Text(status) = value(ix.status) else { return };
                let is_closed = status == closed;
                match (value(ix.closed_date), ix.closed_date.and_then(|fi| self.map.columns[fi].map(|_| fi))) {
                    (Value::Null, None) if is_closed => push(
                        ix.status.expect("present"),
                        Rule::Required,
                        format!("status {status} needs a {label} ({field}) column"),
                    ),
                    (Value::Null, Some(fi)) if is_closed => {
                        push(fi, Rule::Required, format!("{label} ({field}) is required when the status is {status}"))
                    }
                    (Value::Date(_), Some(fi)) if !is_closed => push(
                        fi,
                        Rule::Range,
                        format!("{label} ({field}) is given but the status is {status}, not {closed}"),
                    ),
                    _ => {}
                }
                if let (Value::Date(found), Some(fi)) = (value(ix.found_date), ix.deadline)
                    && let Value::Date(deadline) = value(Some(fi))
                    && deadline < found
                {
                    push(fi, Rule::Range, "整改时限 (deadline) is before 发现日期 (found_date)".into());
                }
                if let (Value::Date(found), Some(fi)) = (value(ix.found_date), ix.closed_date)
                    && let Value::Date(done) = value(Some(fi))
                    && done < found
                {
                    push(fi, Rule::Range, "整改完成日期 (rectified_date) is before 发现日期 (found_date)".into());
                }
            }
            Kind::Attendance => {}
        }
    }

    fn reject(&mut self, line: u64, cells: &[&str], reasons: Vec<Rejection>) {
        self.rejected.push(RejectedRow { line, cells: cells.iter().map(|c| c.to_string()).collect(), reasons });
    }

    fn accept(&mut self, line: u64, cells: &[&str], values: &mut [Value], early: Option<u128>) {
        // Texts are borrowed from the values, but a date has none to borrow.
        let dates: Option<Vec<String>> =
            self.ix.date_key.then(|| self.ix.key.iter().map(|fi| values[*fi].key_text()).collect());
        let key_part = |i: usize, fi: &usize| -> &str {
            match &dates {
                Some(d) => &d[i],
                None => text_of(&values[*fi]),
            }
        };
        let key = match early {
            Some(k) => k,
            None => key_hash_with(&mut self.scratch, self.ix.key.iter().enumerate().map(|(i, fi)| key_part(i, fi))),
        };
        match self.check.as_mut() {
            // A block's repeats are the merge's to find, from the key alone.
            None => self.block_keys.push(short(key)),
            Some(check) => {
                self.scratch.clear();
                for &fi in &self.ix.rest {
                    values[fi].encode_into(&mut self.scratch);
                }
                let content = xxhash_rust::xxh3::xxh3_64(&self.scratch);
                let mut texts = [""; MAX_KEY_PARTS];
                for (i, fi) in self.ix.key.iter().enumerate() {
                    texts[i] = key_part(i, fi);
                }
                let texts = &texts[..self.ix.key.len()];
                match check.admit(key, content, line, texts) {
                    Admit::New => {}
                    Admit::Duplicate => return,
                    Admit::Conflict { first_line, newly, .. } => {
                        let (first, later) = conflict_rows(texts, first_line, line, newly);
                        self.rejected.extend(first);
                        return self.reject(line, cells, later);
                    }
                }
            }
        }
        self.lines.push(line as i64);
        for (buf, v) in self.bufs.iter_mut().zip(values.iter_mut()) {
            match (buf, std::mem::replace(v, Value::Null)) {
                (Buf::Nulls(_, n), Value::Null) => *n += 1,
                (Buf::Text(b), Value::Text(s)) => b.push(Some(&s)),
                (Buf::Text(b), Value::Null) => b.push(None),
                (Buf::Date(b), Value::Date(d)) => b.append_value(d),
                (Buf::Date(b), Value::Null) => b.append_null(),
                (Buf::Number(b), Value::Number(n)) => b.append_value(n),
                (Buf::Number(b), Value::Null) => b.append_null(),
                (Buf::Bool(b), Value::Bool(x)) => b.append_value(x),
                (Buf::Bool(b), Value::Null) => b.append_null(),
                _ => unreachable!("a parsed value always matches its column type"),
            }
        }
    }

    /// Check each block's rows as a whole file's (see [`Block`]) instead of row by row.
    pub fn deferred(mut self) -> Self {
        self.check = None;
        self
    }

    /// The accepted rows as typed columns, in file order, with `source_line`.
    fn frame(kind: Kind, bufs: Vec<Buf>, lines: Vec<i64>) -> PolarsResult<DataFrame> {
        let height = lines.len();
        let mut columns: Vec<Column> = bufs.into_iter().map(Buf::finish).collect();
        columns.push(Column::new("source_line".into(), lines));
        let mut frame = DataFrame::new(height, columns)?;
        // Optional flags default when the column is absent or empty.
        if kind == Kind::Points {
            let approved = frame.column("approved")?.bool()?.fill_null_with_values(true)?;
            frame.with_column(approved.into_column())?;
        }
        Ok(frame)
    }

    /// A block's rows, not yet checked for repeated keys.
    pub fn finish_block(self) -> PolarsResult<Block> {
        let frame = Self::frame(self.kind, self.bufs, self.lines)?;
        Ok(Block { frame, keys: self.block_keys, rows_read: self.rows_read, rejected: self.rejected })
    }

    /// The typed frame of accepted rows (without rows later found in a key conflict).
    pub fn finish(self) -> PolarsResult<Validated> {
        let height = self.lines.len();
        let mut frame = Self::frame(self.kind, self.bufs, self.lines)?;
        let check = self.check.expect("a block is finished with `finish_block`");
        let conflicted = check.conflicted();
        let keys: Vec<u64> =
            check.keys().iter().enumerate().filter(|(i, _)| !conflicted.contains(i)).map(|(_, &k)| short(k)).collect();
        if !conflicted.is_empty() {
            let mask: BooleanChunked = (0..height).map(|i| !conflicted.contains(&i)).collect();
            frame = frame.filter(&mask)?;
        }
        let mut rejected = self.rejected;
        rejected.sort_by_key(|r| r.line);
        // Removing conflicted rows keeps the order of the others.
        let in_key_order = check.in_order();
        let duplicates = check.duplicates();
        Ok(Validated { frame, keys, rows_read: self.rows_read, duplicates, rejected, in_key_order })
    }
}

/// The most parts a natural key has (assessment's four).
const MAX_KEY_PARTS: usize = 4;

/// The quarantine entries of a key conflict: the key's first row (once, when `newly`), without
/// its cells, which are gone; and the reasons for the row at `line`.
pub fn conflict_rows(texts: &[&str], first_line: u64, line: u64, newly: bool) -> (Option<RejectedRow>, Vec<Rejection>) {
    let message = format!(
        "the key ({}) appears at lines {first_line} and {line} with different values; keep one in the export",
        texts.join(", ")
    );
    let value = texts.join(",");
    let rejection = |line: u64| Rejection {
        line,
        column: "-".into(),
        value: value.clone(),
        rule: Rule::KeyConflict,
        message: message.clone(),
    };
    let first =
        newly.then(|| RejectedRow { line: first_line, cells: Vec::new(), reasons: vec![rejection(first_line)] });
    (first, vec![rejection(line)])
}

/// The rows of one block of a large file, validated on their own: every accepted row is in
/// `frame`, and the file's repeated keys are left to the merge (see `merge::own_repeats`).
pub struct Block {
    pub frame: DataFrame,
    /// The short key hash of each row (see [`short`]).
    pub keys: Vec<u64>,
    pub rows_read: u64,
    pub rejected: Vec<RejectedRow>,
}

/// A key part's text (a key field that is not text, or empty, counts as "").
fn text_of<'v>(value: &'v Value) -> &'v str {
    match value {
        Value::Text(s) => s.as_ref(),
        _ => "",
    }
}

fn parse_cell<'c>(field: &Field, raw: &'c str, names: &NameHasher) -> Result<Value<'c>, (Rule, String)> {
    let t = values::trim(raw);
    if t.starts_with('#') && values::is_excel_error(t) {
        return Err((Rule::ExcelError, format!("{} holds the Excel error {t}", field.name)));
    }
    if t.is_empty() {
        return if field.required {
            Err((Rule::Required, format!("{} is required", field.name)))
        } else {
            Ok(Value::Null)
        };
    }
    match field.ty {
        FieldType::Text => {
            // Byte length bounds the character count: count characters only when it might matter.
            if t.len() > values::MAX_TEXT_CHARS && t.chars().count() > values::MAX_TEXT_CHARS {
                return Err((
                    Rule::Range,
                    format!("{} is longer than {} characters", field.name, values::MAX_TEXT_CHARS),
                ));
            }
            let ascii_control = t.bytes().any(|b| b < 0x20 || b == 0x7f);
            if ascii_control || (!t.is_ascii() && t.chars().any(|c| c.is_control())) {
                return Err((Rule::Type, format!("{} holds control characters", field.name)));
            }
            Ok(Value::Text(Cow::Borrowed(t)))
        }
        FieldType::PersonalName => Ok(names.hash(t).map_or(Value::Null, |h| Value::Text(Cow::Owned(h)))),
        FieldType::Date => match values::parse_date(t) {
            Ok(d) => Ok(Value::Date(day_number(d))),
            Err(DateError::Form(m)) => Err((Rule::Type, m)),
            Err(DateError::Range(m)) => Err((Rule::Range, m)),
        },
        FieldType::Number => values::parse_number(t).map(Value::Number).map_err(|m| (Rule::Type, m)),
        FieldType::Bool => values::parse_bool(t).map(Value::Bool).map_err(|m| (Rule::Type, m)),
        FieldType::AssessmentPeriod => {
            values::parse_assessment_period(t).map(|p| Value::Text(Cow::Owned(p))).map_err(|m| (Rule::Type, m))
        }
        FieldType::Enum(set) => {
            super::schema::parse_enum(set, t).map(|c| Value::Text(Cow::Borrowed(c))).ok_or_else(|| {
                let allowed: Vec<String> = set.iter().map(|v| format!("{} {}", v.code, v.labels[0])).collect();
                (Rule::Enum, format!("'{t}' is not a valid {}; allowed: {}", field.name, allowed.join(", ")))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::schema::map_header;
    use super::*;

    fn validate(kind: Kind, header: &[&str], rows: &[&str], units: Option<&HashSet<String>>) -> Validated {
        let header: Vec<String> = header.iter().map(|s| s.to_string()).collect();
        let map = map_header(&header, Some(kind)).unwrap();
        let names = NameHasher::dropping();
        let mut v = Validator::new(header, map, units, &names, 8);
        for (i, r) in rows.iter().enumerate() {
            let cells: Vec<&str> = r.split(',').collect();
            v.row(i as u64 + 2, &cells);
        }
        v.finish().unwrap()
    }

    fn rules(v: &Validated) -> Vec<(u64, &'static str, String)> {
        v.rejected.iter().flat_map(|r| r.reasons.iter().map(|x| (x.line, x.rule.name(), x.column.clone()))).collect()
    }

    const ATT: &[&str] = &["活动编号", "组织编码", "活动类型", "活动日期", "党员编号", "出勤状态", "姓名"];

    /// Repeated keys give the same duplicates and conflicts whether the rows come in key order
    /// (no key table), leave it partway (the table is built then) or come in any order, checked
    /// against a plain map of first occurrences.
    #[test]
    fn repeated_keys_are_caught_in_and_out_of_key_order() {
        let mut seed = 7u64;
        let mut next = |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let row =
            |e: u64, m: u64, s: u64| format!("E{e:03},B1,主题党日,2026/3/6,M{m:02},{},", ["出席", "请假"][s as usize]);
        for case in 0..60 {
            let mut keys: Vec<(u64, u64, u64)> = (0..80).map(|_| (next(12), next(6), next(2))).collect();
            match case % 3 {
                0 => keys.sort(),
                1 => {
                    keys.sort();
                    let (a, b) = (next(80) as usize, next(80) as usize);
                    keys.swap(a, b);
                }
                _ => {}
            }
            let rows: Vec<String> = keys.iter().map(|&(e, m, s)| row(e, m, s)).collect();
            let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
            let v = validate(Kind::Attendance, ATT, &rows, None);
            // The reference: the first row of a key stays unless a later one differs from it.
            let mut first: std::collections::HashMap<(u64, u64), (usize, u64, bool)> = Default::default();
            let (mut dups, mut conflicts) = (0, Vec::new());
            for (i, &(e, m, s)) in keys.iter().enumerate() {
                match first.get_mut(&(e, m)) {
                    None => {
                        first.insert((e, m), (i, s, false));
                    }
                    Some((_, s0, false)) if *s0 == s => dups += 1,
                    Some((i0, _, bad)) => {
                        if !*bad {
                            conflicts.push(*i0 as u64 + 2);
                        }
                        *bad = true;
                        conflicts.push(i as u64 + 2);
                    }
                }
            }
            conflicts.sort();
            let mut kept: Vec<i64> = first.values().filter(|f| !f.2).map(|f| f.0 as i64 + 2).collect();
            kept.sort();
            let lines = v.frame.column("source_line").unwrap().i64().unwrap().clone();
            let mut got: Vec<i64> = lines.into_no_null_iter().collect();
            got.sort();
            assert_eq!(v.duplicates, dups, "case {case}");
            assert_eq!(v.rejected.iter().map(|r| r.line).collect::<Vec<_>>(), conflicts, "case {case}");
            assert_eq!(got, kept, "case {case}");
            // The order staging trusts: sorted input says so, and the word is true of the frame.
            if case % 3 == 0 {
                assert!(v.in_key_order, "case {case}");
            }
            if v.in_key_order {
                assert!(super::super::merge::in_key_order(Kind::Attendance, &v.frame).unwrap(), "case {case}");
            }
        }
    }

    /// A date or a type repeated from the row before is taken from the memo: the rows come out
    /// as they do when every row is validated on its own, bad cells included.
    #[test]
    fn repeated_cells_read_as_when_parsed_alone() {
        let rows = [
            "E1,B1,主题党日,2026/3/6,M1,出席,",
            "E1,B1,主题党日,2026/3/6,M2,出席,",
            "E1,B1,activity_day,2026-03-06,M3,请假,",
            "E1,B1,activity_day,2026/3/32,M4,请假,",
            "E1,B1,activity_day,2026/3/32,M5,leave,",
            "E2,B1,培训,2026/3/6 ,M1,缺席,",
            "E2,B1,培训,2026/3/6 ,M2,旷课,",
            "E2,B1,培训,2026/3/7,M3,缺席,",
        ];
        let together = validate(Kind::Attendance, ATT, &rows, None);
        let alone: Vec<Validated> = rows.iter().map(|r| validate(Kind::Attendance, ATT, &[r], None)).collect();
        let mut frames = alone.iter().map(|v| v.frame.drop("source_line").unwrap());
        let mut expected = frames.next().unwrap();
        for f in frames {
            expected.vstack_mut(&f).unwrap();
        }
        assert!(together.frame.drop("source_line").unwrap().equals_missing(&expected), "{}", together.frame);
        let bad: Vec<(&str, String)> =
            together.rejected.iter().map(|r| (r.reasons[0].rule.name(), r.cells[4].clone())).collect();
        assert_eq!(bad, [("type", "M4".to_string()), ("type", "M5".to_string()), ("enum", "M2".to_string())]);
    }

    #[test]
    fn every_kind_fits_the_values_on_the_stack() {
        for kind in Kind::ALL {
            assert!(kind.fields().len() <= MAX_FIELDS, "{kind}");
        }
    }

    #[test]
    fn good_rows_become_typed_columns_and_names_vanish() {
        let units: HashSet<String> = ["B1".to_string()].into();
        let v = validate(
            Kind::Attendance,
            ATT,
            &["E1,B1,主题党日,2026/3/6,M1,出席,张三", "E1,B1,主题党日,2026/3/6,M2,请假,"],
            Some(&units),
        );
        assert_eq!(v.frame.height(), 2);
        assert_eq!(v.rows_read, 2);
        assert!(v.rejected.is_empty());
        assert_eq!(v.frame.column("event_date").unwrap().dtype(), &DataType::Date);
        assert_eq!(v.frame.column("status").unwrap().str().unwrap().get(1), Some("leave"));
        assert_eq!(v.frame.column("member_name_hash").unwrap().null_count(), 2);
        assert_eq!(v.frame.column("source_line").unwrap().i64().unwrap().get(1), Some(3));
    }

    #[test]
    fn each_rule_names_line_and_column() {
        let units: HashSet<String> = ["B1".to_string()].into();
        let v = validate(
            Kind::Attendance,
            ATT,
            &[
                "E1,B1,主题党日,2026-02-30,M1,出席,", // line 2: bad date
                "E1,B9,主题党日,2026-03-01,M2,出席,", // line 3: unknown unit
                "E1,B1,开会,2026-03-01,M3,出席,",     // line 4: enum
                "E1,B1,主题党日,2026-03-01,,出席,",   // line 5: required
                "E1,B1,主题党日,2026-03-01,M5",       // line 6: ragged
                "E1,B1,主题党日,#N/A,M6,出席,",       // line 7: excel error
                "E1,B1,主题党日,1999-03-01,M7,出席,", // line 8: range
            ],
            Some(&units),
        );
        assert_eq!(v.frame.height(), 0);
        assert_eq!(
            rules(&v),
            vec![
                (2, "type", "活动日期".to_string()),
                (3, "reference", "组织编码".to_string()),
                (4, "enum", "活动类型".to_string()),
                (5, "required", "党员编号".to_string()),
                (6, "ragged", "-".to_string()),
                (7, "excel_error", "活动日期".to_string()),
                (8, "range", "活动日期".to_string()),
            ]
        );
    }

    #[test]
    fn repeated_keys_in_one_file() {
        let v = validate(
            Kind::Attendance,
            ATT,
            &[
                "E1,B1,主题党日,2026-03-01,M1,出席,",
                "E1,B1,主题党日,2026-03-01,M1,出席,", // identical: a duplicate
                "E1,B1,主题党日,2026-03-01,M2,出席,",
                "E1,B1,主题党日,2026-03-01,M2,缺席,", // conflicting: both out
            ],
            None,
        );
        assert_eq!(v.frame.height(), 1);
        assert_eq!(v.duplicates, 1);
        assert_eq!(rules(&v), vec![(4, "key_conflict", "-".into()), (5, "key_conflict", "-".into())]);
        assert_eq!(v.rows_read, 1 + 1 + 2);
    }

    #[test]
    fn scores_and_signs() {
        let h = ["unit_id", "period", "method", "item_code", "item_name", "max_score", "score"];
        let v = validate(
            Kind::Assessment,
            &h,
            &["U,2026Q1,regular,A1,x,10,11", "U,2026Q1,regular,A2,x,0,0", "U,2026Q1,regular,A3,x,10,9.5"],
            None,
        );
        assert_eq!(rules(&v), vec![(2, "range", "score".into()), (3, "range", "max_score".into())]);
        let h = ["entry_id", "member_id", "unit_id", "entry_date", "category", "rule_code", "points"];
        let v = validate(
            Kind::Points,
            &h,
            &["P1,M,U,2026-01-05,deduction,R,5", "P2,M,U,2026-01-05,reward,R,-5", "P3,M,U,2026-01-05,扣分,R,-2"],
            None,
        );
        assert_eq!(rules(&v), vec![(2, "range", "points".into()), (3, "range", "points".into())]);
        assert_eq!(v.frame.column("approved").unwrap().bool().unwrap().get(0), Some(true));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::super::schema::map_header;
    use super::*;

    /// A cell that is sometimes valid and sometimes not, for each attendance column.
    fn cell(col: usize) -> BoxedStrategy<String> {
        let choices: Vec<&'static str> = match col {
            0 => vec!["E1", "E2", "E3", ""],
            1 => vec!["B1", "B2", "B9", ""],
            2 => vec!["主题党日", "party_lesson", "lecture", "#N/A"],
            3 => vec!["2026-03-06", "2026/3/6", "2026-02-30", "1999-01-01", "yesterday"],
            4 => vec!["M1", "M2", "M3", ""],
            5 => vec!["出席", "absent", "leave", "late"],
            _ => vec!["张三", ""],
        };
        proptest::sample::select(choices).prop_map(str::to_string).boxed()
    }

    fn row() -> impl Strategy<Value = Vec<String>> {
        // Mostly seven cells, sometimes a ragged row.
        (0u8..10).prop_flat_map(|ragged| {
            let n = if ragged == 0 { 5 } else { 7 };
            (0..n).map(cell).collect::<Vec<_>>()
        })
    }

    /// A text column built run by run holds the same values as one built value by value:
    /// runs, nulls, long values kept in the buffer, and a column that turns direct after its
    /// first rows.
    #[test]
    fn text_columns_built_by_runs_hold_every_value() {
        let long = ["E0001-202604-01-extra", "E0002-202604-01-extra"];
        let mut state = 7u64;
        let mut next = |n: u64| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        let patterns: Vec<Vec<Option<String>>> = vec![
            // Runs of a few values, nulls among them.
            (0..5000)
                .map(|i| match (i / 7) % 5 {
                    0 => None,
                    k => Some(format!("v{}", k % 3)),
                })
                .collect(),
            // Long values in runs.
            (0..3000).map(|i| Some(long[(i / 11) % 2].to_string())).collect(),
            // Unique values: the column turns direct, then a run and nulls come.
            (0..3000)
                .map(|i| {
                    if i < 2000 {
                        Some(format!("M{i:06}"))
                    } else if i < 2500 {
                        None
                    } else {
                        Some("same".into())
                    }
                })
                .collect(),
            // Random short values and nulls.
            (0..4000).map(|_| (next(4) > 0).then(|| format!("x{}", next(3)))).collect(),
            Vec::new(),
            vec![None; 10],
        ];
        for values in patterns {
            let mut b = TextBuf::new("c".into(), 16);
            for v in &values {
                b.push(v.as_deref());
            }
            let got = b.finish();
            let want = Column::new("c".into(), values.iter().map(|v| v.as_deref()).collect::<Vec<_>>());
            assert_eq!(got.len(), values.len());
            assert!(got.equals_missing(&want), "{:?}", values.iter().take(20).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_shuffled_columns_long_values_share_one_view_each_while_they_repeat() {
        let mut rng = crate::rng::Rng::new(7);
        // Event ids of 16 bytes in no order, with nulls and short values among them.
        let values: Vec<Option<String>> = (0..20_000)
            .map(|_| match rng.below(50) {
                0 => None,
                1 => Some("short".into()),
                _ => Some(format!("EB{:04}-202404-01", rng.below(300))),
            })
            .collect();
        let mut b = TextBuf::new("c".into(), 16);
        for v in &values {
            b.push(v.as_deref());
        }
        let got = b.finish();
        let want = Column::new("c".into(), values.iter().map(|v| v.as_deref()).collect::<Vec<_>>());
        assert!(got.equals_missing(&want));
        let array = got.str().unwrap().downcast_as_array().clone();
        let mut view_of: HashMap<&str, u128> = HashMap::new();
        let mut differ = 0;
        for (value, view) in array.iter().zip(array.views().iter()).skip(RUN_TRIAL) {
            if let Some(value) = value {
                differ += (*view_of.entry(value).or_insert(view.as_u128()) != view.as_u128()) as usize;
            }
        }
        assert_eq!(differ, 0, "equal values with different views");
        assert_eq!(array.total_bytes_len(), values.iter().flatten().map(String::len).sum::<usize>());

        // Values that do not repeat are not kept past the table's size.
        let mut b = TextBuf::new("c".into(), 16);
        let n = RUN_TRIAL + INTERN_MAX + 2;
        for i in 0..n {
            b.push(Some(&format!("a note of its own, {i}")));
        }
        assert!(b.interned.is_none());
        let notes = b.finish();
        assert_eq!(notes.str().unwrap().get(n - 1), Some(format!("a note of its own, {}", n - 1).as_str()));
        assert_eq!(
            notes.str().unwrap().downcast_as_array().total_bytes_len(),
            (0..n).map(|i| 19 + i.to_string().len()).sum::<usize>()
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        /// rows read = rows kept + rows quarantined + duplicates dropped, whatever the rows.
        #[test]
        fn every_row_is_accounted_for(rows in prop::collection::vec(row(), 0..60)) {
            let header: Vec<String> = ["活动编号", "组织编码", "活动类型", "活动日期", "党员编号", "出勤状态", "姓名"].iter().map(|s| s.to_string()).collect();
            let map = map_header(&header, Some(Kind::Attendance)).unwrap();
            let names = NameHasher::dropping();
            let units: HashSet<String> = ["B1".to_string(), "B2".to_string()].into();
            let mut v = Validator::new(header, map, Some(&units), &names, 8);
            for (i, r) in rows.iter().enumerate() {
                let cells: Vec<&str> = r.iter().map(String::as_str).collect();
                v.row(i as u64 + 2, &cells);
            }
            let out = v.finish().unwrap();
            prop_assert_eq!(out.rows_read, rows.len() as u64);
            prop_assert_eq!(out.rows_read, out.frame.height() as u64 + out.rejected.len() as u64 + out.duplicates);
            prop_assert_eq!(out.keys.len(), out.frame.height());
            // No two kept rows share a key.
            let (e, m) = (out.frame.column("event_id").unwrap().str().unwrap(), out.frame.column("member_id").unwrap().str().unwrap());
            let distinct: HashSet<(Option<&str>, Option<&str>)> = e.iter().zip(m.iter()).collect();
            prop_assert_eq!(distinct.len(), out.keys.len());
        }

        /// Any calendar date in range parses back from every form districts export.
        #[test]
        fn dates_round_trip(days in 0i64..36_500) {
            let d = chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap() + chrono::Duration::days(days);
            use chrono::Datelike;
            for s in [d.format("%Y-%m-%d").to_string(), format!("{}/{}/{}", d.year(), d.month(), d.day()), format!("{}年{}月{}日", d.year(), d.month(), d.day())] {
                prop_assert_eq!(super::super::values::parse_date(&s), Ok(d));
            }
        }
    }
}
