//! A large file's blocks gathered by partition before they are staged, so that a partition
//! whose rows arrive together (a backfill in date order, a month's export) is staged as one
//! piece in stored form, which the merge then moves in without writing it again. Staged a
//! block at a time, a backfill's month lay in two or three pieces that the merge read back,
//! put in order and wrote a second time.
//!
//! A partition's pieces are held in memory until no block has added to it for [`QUIET`]
//! blocks, or until the rows held pass a budget (then the largest partition goes first), so
//! memory stays that of a few blocks whatever the file's size or order. Rows out of any order
//! (every block touching every month) still end in several pieces a partition, as before.
//!
//! The blocks' short key hashes go to a file beside the pieces, and so does each piece's map to
//! the file's validated rows ([`super::keyspill`]): at 8 and 4 bytes a row they were what grew
//! with the size of a file.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::mpsc::SyncSender;

use anyhow::Result;
use polars::prelude::*;

use super::keyspill::{KeyFile, RowFile};
use super::merge::{self, Piece, PieceData, Source, Spill, Staged};
use crate::model::Kind;

/// A block's validated rows in natural-key order, split by partition (on a block's worker).
pub struct Split {
    pub kind: Kind,
    pub parts: Vec<Part>,
    /// The memory of the block's rows.
    pub bytes: usize,
}

/// One partition's rows of a block.
pub struct Part {
    partition: String,
    /// The block's validated row behind each row (`None`: all of the block's rows, in order).
    rows: Option<Vec<IdxSize>>,
    height: usize,
    data: PartData,
}

enum PartData {
    /// To be gathered with the partition's rows of the next blocks.
    Held(DataFrame),
    /// Staged already, as a piece of its own.
    Written(PathBuf),
}

impl Split {
    /// Split a block, and write its parts at once when they are spread over many partitions.
    pub fn of(kind: Kind, frame: DataFrame, spill: &Spill, file: usize, source: &Source) -> Result<Split> {
        let bytes = frame.estimated_size();
        let split = merge::split(kind, frame, false)?;
        let spread = split.len() > SPREAD;
        let staging = if spread { spill.next_staging() } else { 0 };
        let mut parts = Vec::with_capacity(split.len());
        for (n, (partition, df, rows)) in split.into_iter().enumerate() {
            let height = df.height();
            let data = if spread {
                PartData::Written(spill.write_piece(kind, &format!("{file}-{staging}-{n}"), source, df)?)
            } else {
                PartData::Held(df)
            };
            parts.push(Part { partition, rows, height, data });
        }
        Ok(Split { kind, parts, bytes })
    }
}

/// A block whose rows fall in more partitions than this is staged at once by the worker that
/// validated it, a piece a partition, as before: its rows are in no order of time (a file
/// shuffled across months), so no partition would be whole in memory, and the pieces held
/// would keep every block's text alive (they share it).
const SPREAD: usize = 3;

/// Blocks without new rows for a partition before its rows are staged. A backfill in date order
/// does not come back to a month a whole block later; waiting a second block held one more
/// block's rows at the peak.
const QUIET: usize = 1;

/// One partition's rows held so far: sorted frames in block order, the file's validated row
/// behind each of their rows, and the last block that added to them.
#[derive(Default)]
struct Held {
    frames: Vec<DataFrame>,
    rows: Vec<Vec<IdxSize>>,
    last: usize,
    bytes: usize,
}

/// The gatherer of one file's blocks (on the reading thread, in file order). Partitions
/// done with go to stager threads, so that putting them in order and writing them does not
/// hold up the reading thread, which feeds the blocks' workers.
pub struct Coalesce<'r> {
    file: usize,
    budget: usize,
    kind: Option<Kind>,
    held: BTreeMap<String, Held>,
    bytes: usize,
    blocks: usize,
    /// Validated rows of the blocks before the next one.
    offset: IdxSize,
    staging: usize,
    /// Pieces named so far.
    named: usize,
    /// Pieces the blocks' workers wrote.
    pieces: Vec<Piece>,
    keys: KeyFile,
    /// The row maps of the file's pieces, shared with the stagers.
    row_file: &'r Mutex<RowFile>,
    stagers: Option<SyncSender<Job>>,
}

/// A partition's held rows for a stager.
struct Job {
    kind: Kind,
    name: String,
    partition: String,
    held: Held,
}

impl Job {
    fn run(self, spill: &Spill, source: &Source, row_file: &Mutex<RowFile>) -> Result<Piece> {
        let (df, rows) = in_order(self.kind, self.held.frames, self.held.rows)?;
        let path = spill.write_piece(self.kind, &self.name, source, df)?;
        let rows = row_file.lock().unwrap_or_else(|e| e.into_inner()).push(&rows)?;
        Ok(Piece { partition: self.partition, data: PieceData::Spilled(path), rows: Some(rows) })
    }
}

/// Read file `file` with `read`, which hands its blocks to the [`Coalesce`] it is given, holding
/// up to `budget` bytes of rows: what `read` gave, and the file's pieces.
pub fn gather<'a, R>(
    spill: &'a Spill,
    file: usize,
    source: Source<'a>,
    budget: usize,
    read: impl FnOnce(&mut Coalesce<'_>) -> R,
) -> Result<(R, Staged)> {
    let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(1);
    let queue = Mutex::new(queue);
    let staging = spill.next_staging();
    let row_file = Mutex::new(RowFile::new(&spill.dir().join(format!("{file}-{staging}.rows"))));
    std::thread::scope(|s| {
        let stagers: Vec<_> = (0..crate::workers::threads())
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        // The lock is held only to take the next job, never while working.
                        let job = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok(job) = job else { return out };
                        out.push(job.run(spill, &source, &row_file));
                    }
                })
            })
            .collect();
        let mut c = Coalesce {
            file,
            budget,
            kind: None,
            held: BTreeMap::new(),
            bytes: 0,
            blocks: 0,
            offset: 0,
            staging,
            named: 0,
            pieces: Vec::new(),
            keys: KeyFile::new(&spill.dir().join(format!("{file}-{staging}.keys"))),
            row_file: &row_file,
            stagers: Some(jobs),
        };
        let got = read(&mut c);
        let sent = c.finish();
        let Coalesce { mut pieces, keys, .. } = c;
        let keys = keys.finish();
        for stager in stagers {
            let staged = stager.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            for piece in staged {
                pieces.push(piece?);
            }
        }
        sent?;
        Ok((got, Staged { pieces, keys: Some(keys) }))
    })
}

impl Coalesce<'_> {
    /// The next block in file order, which validated `rows` rows with short key hashes `keys`.
    pub fn add(&mut self, split: Split, rows: usize, keys: &[u64]) -> Result<()> {
        self.kind = Some(split.kind);
        self.keys.push(keys)?;
        for part in split.parts {
            let at: Vec<IdxSize> = match part.rows {
                Some(at) => at.into_iter().map(|r| r + self.offset).collect(),
                None => (self.offset..self.offset + part.height as IdxSize).collect(),
            };
            let (partition, df) = match part.data {
                PartData::Written(path) => {
                    let rows = self.row_file.lock().unwrap_or_else(|e| e.into_inner()).push(&at)?;
                    self.pieces.push(Piece {
                        partition: part.partition,
                        data: PieceData::Spilled(path),
                        rows: Some(rows),
                    });
                    continue;
                }
                PartData::Held(df) => (part.partition, df),
            };
            // The block's memory shared by its partitions' rows (their texts are in common).
            let bytes = split.bytes * at.len() / rows.max(1) + at.len() * size_of::<IdxSize>();
            let held = self.held.entry(partition).or_default();
            held.frames.push(df);
            held.rows.push(at);
            held.last = self.blocks;
            held.bytes += bytes;
            self.bytes += bytes;
        }
        self.offset += rows as IdxSize;
        self.blocks += 1;
        let quiet: Vec<String> =
            self.held.iter().filter(|(_, h)| h.last + QUIET < self.blocks).map(|(p, _)| p.clone()).collect();
        for partition in quiet {
            self.stage(&partition)?;
        }
        while self.bytes > self.budget {
            let largest = self.held.iter().max_by_key(|(_, h)| h.bytes).map(|(p, _)| p.clone());
            let Some(largest) = largest else { break };
            self.stage(&largest)?;
        }
        Ok(())
    }

    /// Every partition still held to the stagers, which then stop.
    fn finish(&mut self) -> Result<()> {
        let rest: Vec<String> = self.held.keys().cloned().collect();
        for partition in rest {
            self.stage(&partition)?;
        }
        self.stagers = None;
        Ok(())
    }

    /// A partition's held rows to a stager, to be put in key order and written as one piece.
    fn stage(&mut self, partition: &str) -> Result<()> {
        let Some(held) = self.held.remove(partition) else { return Ok(()) };
        self.bytes -= held.bytes;
        let kind = self.kind.expect("rows are held only after a block came");
        let name = format!("{}-{}-{}", self.file, self.staging, self.named);
        self.named += 1;
        let job = Job { kind, name, partition: partition.to_string(), held };
        let stagers = self.stagers.as_ref().expect("no partition is staged after the last");
        stagers.send(job).map_err(|_| anyhow::anyhow!("a stager stopped"))
    }
}

/// Frames each in key order, as one frame in key order (equal keys in frame order), with
/// their validated rows moved alike.
fn in_order(kind: Kind, frames: Vec<DataFrame>, rows: Vec<Vec<IdxSize>>) -> Result<(DataFrame, Vec<IdxSize>)> {
    if frames.len() == 1 {
        let df = frames.into_iter().next().expect("one frame");
        return Ok((df, rows.into_iter().next().expect("one")));
    }
    let keys = frames
        .iter()
        .map(|df| merge::numbered(df.select(kind.natural_key().iter().copied())?, None))
        .collect::<Result<_>>()?;
    let order = merge::order_of_keys(kind, keys)?;
    let mut start = Vec::with_capacity(frames.len());
    let mut stacked: Option<DataFrame> = None;
    for df in frames {
        start.push(stacked.as_ref().map_or(0, |s| s.height()) as IdxSize);
        match &mut stacked {
            None => stacked = Some(df),
            Some(all) => {
                all.vstack_mut_owned(df)?;
            }
        }
    }
    let at: Vec<IdxSize> = order.iter().map(|&(r, i)| start[r as usize] + i).collect();
    let moved: Vec<IdxSize> = order.iter().map(|&(r, i)| rows[r as usize][i as usize]).collect();
    Ok((merge::take_owned(stacked.expect("two frames or more"), &at)?, moved))
}
