//! A large plain CSV validated in blocks on every core, its rows staged a block at a time:
//! a year's backfill in one file is neither parsed by one core nor held whole in memory.
//!
//! The reader cuts the text at line ends into blocks; worker threads validate each block on
//! its own (types, rules, references) and stage its rows (split by partition, on disk), and
//! the reading thread gathers the blocks' staged rows and short key hashes in file order. A
//! key the file repeats, however far apart, is left to the merge, which finds every repeated
//! key with 8 bytes a row and settles the file's own repeats as the validator does for a
//! smaller file (see `merge::own_repeats`).

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use polars::prelude::*;

use super::parse::SkippedRow;
use super::schema::HeaderMap;
use super::validate::{Block, RejectedRow};
use crate::model::Kind;

/// When a file is read in blocks, and the size of a block.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Files at least this large are read in blocks (smaller ones are already read in
    /// parallel with each other, a file per thread).
    pub file: u64,
    /// The text of one block.
    pub block: usize,
    /// The most bytes of a file's validated rows held to be staged by partition (see
    /// `coalesce`).
    pub held: usize,
}

impl Default for Sizes {
    /// 48 MiB files, 8 MiB blocks (about 110,000 attendance rows) and 64 MiB of rows held (a
    /// few blocks): the blocks in flight, the months held and the two being written are then
    /// what a one-file backfill peaks at, below polars' own peak for it. 12 MiB blocks held a
    /// tenth more memory and saved no time; smaller ones cost a file in no order of time a
    /// piece per block and month more.
    fn default() -> Self {
        Sizes { file: 48 << 20, block: 8 << 20, held: 64 << 20 }
    }
}

/// The header a block's validator starts from.
pub type Template = Arc<(Vec<String>, HeaderMap)>;

/// A block for a worker.
pub struct Job {
    pub index: usize,
    pub line: u64,
    pub text: String,
    pub last: bool,
    pub template: Template,
}

/// A validated and staged block for the reading thread.
pub struct Done<T> {
    pub index: usize,
    pub result: Result<Staged<T>, String>,
    /// The block's text, back for the next block to reuse.
    pub text: String,
}

/// A block's rows staged (as a `T`), with what the file's figures need of them.
pub struct Staged<T> {
    pub staged: T,
    pub rows: usize,
    pub keys: Vec<u64>,
    pub rows_read: u64,
    pub rejected: Vec<RejectedRow>,
    pub skipped: Vec<SkippedRow>,
}

/// What is done with each block's rows (on the worker that validated it).
pub type Stage<'s, T> = dyn Fn(Kind, DataFrame) -> anyhow::Result<T> + Sync + 's;

/// What then takes each block's staged rows, their count and their short key hashes (on the
/// reading thread, in file order).
pub type Gather<'g, T> = dyn FnMut(T, usize, &[u64]) -> anyhow::Result<()> + 'g;

/// A validated block's rows staged.
pub fn stage_block<T>(
    kind: Kind,
    block: Block,
    skipped: Vec<SkippedRow>,
    stage: &Stage<T>,
) -> anyhow::Result<Staged<T>> {
    let rows = block.frame.height();
    let staged = stage(kind, block.frame)?;
    Ok(Staged { staged, rows, keys: block.keys, rows_read: block.rows_read, rejected: block.rejected, skipped })
}

/// The reading thread's side: blocks out to the workers, back in file order.
pub struct Dispatch<'s, T> {
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Done<T>>,
    pub template: Option<Template>,
    /// Text gathered for the next block, and its first line.
    pending: String,
    /// Texts of blocks done with, to be filled again: a new one each time had every page of
    /// it faulted in anew, on the thread that feeds the workers.
    spare: Vec<String>,
    /// Texts made so far, and the most there may be: past that the reading thread waits for a
    /// worker to hand one back. Unbounded, a reading thread ahead of its workers made twice as
    /// many as it could use, which a one-file backfill's peak memory then kept.
    made: usize,
    most: usize,
    pending_line: u64,
    /// The text of a block.
    block: usize,
    sent: usize,
    next: usize,
    waiting: BTreeMap<usize, Done<T>>,
    pub file: FileBlocks,
    stage: &'s Stage<'s, T>,
    gather: &'s mut Gather<'s, T>,
}

impl<'s, T> Dispatch<'s, T> {
    /// A dispatch of blocks of `block` bytes, with at most `texts` of them made.
    pub fn new(
        jobs: SyncSender<Job>,
        done: Receiver<Done<T>>,
        block: usize,
        texts: usize,
        stage: &'s Stage<'s, T>,
        gather: &'s mut Gather<'s, T>,
    ) -> Self {
        let file = FileBlocks::default();
        Dispatch {
            jobs: Some(jobs),
            done,
            template: None,
            pending: String::new(),
            spare: Vec::new(),
            made: 0,
            most: texts,
            pending_line: 0,
            block,
            sent: 0,
            next: 0,
            waiting: BTreeMap::new(),
            file,
            stage,
            gather,
        }
    }

    /// The rows the reading thread validated itself (those after the header in the first
    /// piece of the file) are block 0.
    pub fn first_block(&mut self, kind: Kind, block: Block, skipped: Vec<SkippedRow>) -> anyhow::Result<()> {
        self.sent = 1;
        self.next = 1;
        let staged = stage_block(kind, block, skipped, self.stage)?;
        self.absorb(staged)
    }

    /// A piece of text after the first block: gathered, and sent once a block is full.
    pub fn text(&mut self, text: &str, line: u64, last: bool) -> anyhow::Result<()> {
        if self.pending.is_empty() {
            self.pending_line = line;
        }
        // A block's text is allocated once at its full size: grown by doubling, it was copied
        // again and again.
        if self.pending.capacity() < self.block + text.len() {
            let mut fresh = self.text_buffer(text.len())?;
            fresh.push_str(&self.pending);
            let old = std::mem::replace(&mut self.pending, fresh);
            if old.capacity() > 0 {
                self.spare.push(old);
            }
        }
        self.pending.push_str(text);
        // Full blocks go, cut after a line end.
        while self.pending.len() > self.block
            && let Some(cut) = memchr::memchr(b'\n', &self.pending.as_bytes()[self.block - 1..])
        {
            let mut rest = self.text_buffer(text.len())?;
            rest.push_str(&self.pending[self.block + cut..]);
            self.pending.truncate(self.block + cut);
            let full = std::mem::replace(&mut self.pending, rest);
            let lines = memchr::memchr_iter(b'\n', full.as_bytes()).count() as u64;
            self.send(full, false)?;
            self.pending_line += lines;
        }
        if last && !self.pending.is_empty() {
            let text = std::mem::take(&mut self.pending);
            self.send(text, true)?;
        }
        Ok(())
    }

    /// An empty text that holds a block and `more` (exactly: `reserve` doubled a spare a little
    /// too small), reused when one is spare, else made, or waited for when enough are made.
    fn text_buffer(&mut self, more: usize) -> anyhow::Result<String> {
        if self.spare.is_empty() && self.made >= self.most {
            let done = self.done.recv().map_err(|_| anyhow::anyhow!("a block worker stopped"))?;
            self.taken_back(done);
        }
        let mut text = match self.spare.pop() {
            Some(text) => text,
            None => {
                self.made += 1;
                String::new()
            }
        };
        text.clear();
        text.reserve_exact(self.block + more);
        Ok(text)
    }

    /// A worker's block back: its text spare, its rows waiting for their turn in file order.
    fn taken_back(&mut self, mut done: Done<T>) {
        self.spare.push(std::mem::take(&mut done.text));
        self.waiting.insert(done.index, done);
    }

    fn send(&mut self, text: String, last: bool) -> anyhow::Result<()> {
        let template = self.template.clone().expect("blocks are sent after the header");
        let job = Job { index: self.sent, line: self.pending_line, text, last, template };
        self.sent += 1;
        let jobs = self.jobs.as_ref().expect("no block is sent after the last");
        jobs.send(job).map_err(|_| anyhow::anyhow!("a block worker stopped"))?;
        // Take what is done meanwhile, so that finished blocks do not wait in memory.
        while let Ok(done) = self.done.try_recv() {
            self.taken_back(done);
        }
        self.absorb_ready()
    }

    fn absorb_ready(&mut self) -> anyhow::Result<()> {
        while let Some(done) = self.waiting.remove(&self.next) {
            self.next += 1;
            self.absorb(done.result.map_err(anyhow::Error::msg)?)?;
        }
        Ok(())
    }

    fn absorb(&mut self, block: Staged<T>) -> anyhow::Result<()> {
        let f = &mut self.file;
        f.rows_read += block.rows_read;
        f.rejected.extend(block.rejected);
        f.skipped.extend(block.skipped);
        (self.gather)(block.staged, block.rows, &block.keys)
    }

    /// Every block sent is taken back.
    pub fn finish(&mut self) -> anyhow::Result<()> {
        if !self.pending.is_empty() {
            let text = std::mem::take(&mut self.pending);
            self.send(text, true)?;
        }
        self.jobs = None;
        while self.next < self.sent {
            let done = self.done.recv().map_err(|_| anyhow::anyhow!("a block worker stopped"))?;
            self.waiting.insert(done.index, done);
            self.absorb_ready()?;
        }
        Ok(())
    }
}

/// The worker's loop: validate and stage blocks until the reading thread stops sending.
pub fn work<T>(
    jobs: &Mutex<Receiver<Job>>,
    done: std::sync::mpsc::Sender<Done<T>>,
    validate: impl Fn(&Job) -> Result<Staged<T>, String>,
) {
    loop {
        let job = jobs.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(job) = job else { return };
        let result = validate(&job);
        if done.send(Done { index: job.index, result, text: job.text }).is_err() {
            return;
        }
    }
}

/// What the blocks of a file gave besides their rows and keys, gathered in file order.
#[derive(Default)]
pub struct FileBlocks {
    pub rows_read: u64,
    pub rejected: Vec<RejectedRow>,
    pub skipped: Vec<SkippedRow>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{IngestOptions, NoProgress, ingest};
    use crate::model::Table;
    use crate::warehouse::{self, Warehouse};
    use std::path::Path;

    const UNITS: &str = "unit_id,unit_name,parent_id,level,category\n\
        D01,示范区,,district,\nT001,东城街道,D01,township,community\nC001,幸福社区,T001,community,community\n\
        B0001,第一党支部,C001,branch,community\nB0002,第二党支部,C001,branch,community\n";

    /// An export as offices and information systems make them, with everything the key check
    /// and the footers have to catch spread over many blocks: rows by date but members
    /// shuffled, three months, repeats of a row far from its first, keys with other values
    /// (one three times), rows with bad values, an unknown unit, a title above the header and
    /// footers below.
    fn export() -> String {
        let mut out =
            String::from("2026年一季度活动出勤台账\n\nevent_id,unit_id,event_type,event_date,member_id,status\n");
        let mut rows = Vec::new();
        let mut next = 7u64;
        let mut rand = |n: u64| {
            next = next.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (next >> 33) % n
        };
        for month in 1..=3 {
            for event in 0..60 {
                let unit = if event % 2 == 0 { "B0001" } else { "B0002" };
                let day = 1 + event / 3;
                let event = event * 7 % 60;
                let mut members: Vec<u64> = (0..600).collect();
                for i in (1..members.len()).rev() {
                    members.swap(i, rand(i as u64 + 1) as usize);
                }
                for m in members {
                    let status = ["present", "absent", "leave"][rand(3) as usize];
                    rows.push(format!(
                        "E{month}{event:02},{unit},activity_day,2026-{month:02}-{day:02},M{m:03},{status}"
                    ));
                }
            }
        }
        // The same row again, much later; another key with other values later (twice); a bad
        // date; an unknown unit.
        let (a, b, c) = (rows[5].clone(), rows[100].clone(), rows[50_000].clone());
        rows.insert(rows.len() - 100, a);
        let other = |r: &str| {
            if r.ends_with("present") {
                r.replace("present", "absent")
            } else {
                r.rsplit_once(',').unwrap().0.to_string() + ",present"
            }
        };
        rows.insert(60_000, other(&b));
        rows.push(other(&b));
        rows.insert(100_000, c.clone());
        rows.insert(101_000, other(&c));
        rows.insert(30_000, "E999,B0001,activity_day,2026-02-30,M001,present".into());
        rows.insert(90_000, "E998,B0009,activity_day,2026-02-03,M001,present".into());
        out.push_str(&rows.join("\n"));
        out.push_str("\n合计,,,,,\n填表人：张三,,,,,\n");
        out
    }

    /// Everything an ingest leaves that a reader sees: the report's figures, each stored row in
    /// file order, the quarantine and the clerk's files of rejected rows.
    fn outcome(inbox: &Path, file: &Path, sizes: Sizes) -> Vec<String> {
        let root = &inbox.join("warehouse");
        let mut opts = IngestOptions::new(crate::ingest::names::NameHasher::dropping());
        ingest(root, &[inbox.join("units.csv")], &opts, &NoProgress).unwrap();
        opts.blocks = sizes;
        let r = ingest(root, &[file.to_path_buf()], &opts, &NoProgress).unwrap();
        let mut out = vec![format!(
            "read {} loaded {} quarantined {} duplicates {} skipped {} {:?}",
            r.rows_read, r.loaded, r.quarantined, r.duplicates, r.skipped, r.quarantined_by_rule
        )];
        let snap = Warehouse::open(root).unwrap().snapshot().unwrap();
        for table in [Table::Attendance, Table::Quarantine] {
            for f in snap.files(table).unwrap() {
                let df = warehouse::read_parquet(&f).unwrap();
                let df = df.drop_many(["ingest_id", "quarantined_at", "source_mtime"]);
                out.push(snap.partition_of(table, &f));
                for i in 0..df.height() {
                    let row: Vec<String> = df.columns().iter().map(|c| c.get(i).unwrap().to_string()).collect();
                    out.push(row.join(","));
                }
            }
        }
        let exports = r.exports_dir.expect("rows were quarantined");
        let mut names: Vec<_> = std::fs::read_dir(&exports).unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        for n in names {
            out.push(std::fs::read_to_string(&n).unwrap_or_default());
        }
        out
    }

    #[test]
    fn blocks_give_the_warehouse_of_one_read() {
        let dir = tempfile::tempdir().unwrap();
        let text = export();
        let (one, many) = (dir.path().join("one"), dir.path().join("many"));
        for root in [&one, &many] {
            std::fs::create_dir_all(root).unwrap();
            std::fs::write(root.join("units.csv"), UNITS).unwrap();
            std::fs::write(root.join("出勤台账.csv"), &text).unwrap();
        }
        let whole =
            outcome(&one, &one.join("出勤台账.csv"), Sizes { file: u64::MAX, block: 1 << 20, ..Sizes::default() });
        assert!(text.len() > 4 << 20, "the reader's pieces are 4 MiB: the export spans two");
        // Months held until done with (each spans many blocks of 100,000 bytes), and staged
        // at every block when nothing may be held.
        for (block, held) in [(16 << 20, 96 << 20), (1 << 20, 96 << 20), (100_000, 96 << 20), (100_000, 0)] {
            let blocks = in_blocks(&many, &text, Sizes { file: 0, block, held });
            assert_eq!(blocks.len(), whole.len());
            for (b, w) in blocks.iter().zip(&whole) {
                assert_eq!(b, w, "blocks of {block} bytes, {held} held");
            }
        }
        assert!(whole[0].contains("duplicates 2"), "{}", whole[0]);
        assert!(whole[0].contains("key_conflict"), "{}", whole[0]);
    }

    /// `text` ingested from `root` in blocks of `sizes`.
    fn in_blocks(root: &Path, text: &str, sizes: Sizes) -> Vec<String> {
        let _ = std::fs::remove_dir_all(root);
        std::fs::create_dir_all(root).unwrap();
        std::fs::write(root.join("units.csv"), UNITS).unwrap();
        std::fs::write(root.join("出勤台账.csv"), text).unwrap();
        outcome(root, &root.join("出勤台账.csv"), sizes)
    }

    /// Rows in no order of time: each block falls in every month, and is staged by its worker
    /// a month a piece; the same warehouse as one read.
    #[test]
    fn blocks_of_rows_in_no_order_give_the_warehouse_of_one_read() {
        let dir = tempfile::tempdir().unwrap();
        let text = export();
        let (head, rest) = text.split_at(text.find("\nE").unwrap() + 1);
        let (rows, footer) = rest.split_at(rest.find("合计").unwrap());
        let mut rows: Vec<&str> = rows.lines().collect();
        let mut rng = crate::rng::Rng::new(5);
        for i in (1..rows.len()).rev() {
            rows.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let shuffled = format!("{head}{}\n{footer}", rows.join("\n"));
        let whole = in_blocks(&dir.path().join("one"), &shuffled, Sizes { file: u64::MAX, ..Sizes::default() });
        let blocks =
            in_blocks(&dir.path().join("many"), &shuffled, Sizes { file: 0, block: 100_000, ..Sizes::default() });
        assert_eq!(blocks, whole);
        // Which repeat is a duplicate and which a conflict depends on the order; both occur.
        assert!(!whole[0].contains("duplicates 0") && whole[0].contains("key_conflict"), "{}", whole[0]);
    }
}
