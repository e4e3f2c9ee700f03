//! Snapshots and write transactions.
//!
//! A transaction stages snapshot N+1 in `.snapshots/N+1.tmp`: new files are written there, and
//! every file of snapshot N that the transaction did not remove or replace is hard-linked in.
//! Commit syncs, renames the staging folder to `.snapshots/N+1`, then atomically points
//! `current` at it. Leftovers of a crash (a `.tmp` folder, or a finished snapshot newer than
//! `current`) are removed by the next transaction.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use polars::prelude::DataFrame;

use super::{CURRENT, SNAPSHOTS, Table, write_parquet, write_parquet_serial};

/// How many snapshots older than `current` are kept for readers still scanning them.
const KEEP_OLD: u64 = 2;

pub(super) fn snapshot_name(id: u64) -> String {
    format!("{id:08}")
}

/// A consistent state of the warehouse.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub id: u64,
    pub dir: PathBuf,
}

impl Snapshot {
    /// The file that holds the unit tree: `units_history`, or `units` in a warehouse written
    /// before the tree had a history (its rows are then valid at all times).
    pub fn units_file(&self) -> Result<Option<PathBuf>> {
        Ok(match self.files(Table::UnitsHistory)?.into_iter().next() {
            Some(f) => Some(f),
            None => self.files(Table::Units)?.into_iter().next(),
        })
    }

    pub fn table_dir(&self, table: Table) -> PathBuf {
        self.dir.join(table.name())
    }

    /// All Parquet files of a table, sorted by path (so reads are deterministic).
    pub fn files(&self, table: Table) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        collect_files(&self.table_dir(table), &mut out)?;
        out.retain(|p| p.extension().is_some_and(|e| e == "parquet"));
        out.sort();
        Ok(out)
    }

    /// The files of one partition folder (relative to the table), sorted.
    pub fn partition_files(&self, table: Table, partition: &str) -> Result<Vec<PathBuf>> {
        let dir = self.table_dir(table).join(partition);
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let mut out: Vec<PathBuf> = fs::read_dir(&dir)
            .with_context(|| format!("listing {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "parquet"))
            .collect();
        out.sort();
        Ok(out)
    }

    /// The partition folder of a file, relative to its table (`year=2026/month=03`, or `` for an
    /// unpartitioned table).
    pub fn partition_of(&self, table: Table, file: &Path) -> String {
        file.parent()
            .and_then(|p| p.strip_prefix(self.table_dir(table)).ok())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// The snapshot `current` points at. In a copy made by a tool that follows links (`cp -rL`,
/// Python's `shutil.copytree`, `tar -h`, a Windows or USB copy, an object-store sync),
/// `current` is a plain folder holding the current snapshot's files: it is read as it is, and
/// the next write turns the copy back into links ([`restore_links`]).
pub(super) fn current(root: &Path) -> Result<Snapshot> {
    let link = root.join(CURRENT);
    match fs::symlink_metadata(&link) {
        Ok(m) if m.is_dir() => return Ok(Snapshot { id: copied_id(root)?, dir: link }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A restore of the links that was interrupted between its two renames.
            if let Some(id) =
                fs::read_to_string(root.join(SNAPSHOTS).join(RESTORING)).ok().and_then(|t| t.trim().parse().ok())
            {
                return Ok(Snapshot { id, dir: root.join(SNAPSHOTS).join(snapshot_name(id)) });
            }
        }
        _ => {}
    }
    let target = fs::read_link(&link).with_context(|| format!("reading {}", link.display()))?;
    let name = target.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let id: u64 =
        name.parse().with_context(|| format!("{} points at {}, not a snapshot", link.display(), target.display()))?;
    let dir = root.join(SNAPSHOTS).join(name);
    if !dir.is_dir() {
        bail!("{} points at a missing snapshot {}", link.display(), dir.display());
    }
    Ok(Snapshot { id, dir })
}

/// Written while a copy's links are being restored: the id of the snapshot `current` will name.
const RESTORING: &str = ".restoring";

/// The numbered snapshots in `.snapshots/`, newest first.
fn snapshot_ids(root: &Path) -> Vec<u64> {
    let mut ids: Vec<u64> = fs::read_dir(root.join(SNAPSHOTS))
        .map(|d| d.flatten().filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok())).collect())
        .unwrap_or_default();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids
}

/// The files of a folder by path below it, with their sizes.
fn listing(dir: &Path) -> Result<BTreeSet<(PathBuf, u64)>> {
    let mut files = Vec::new();
    collect_files(dir, &mut files)?;
    files
        .into_iter()
        .map(|f| Ok((f.strip_prefix(dir).expect("below").to_path_buf(), fs::metadata(&f)?.len())))
        .collect()
}

/// In a copy, which snapshot the `current` folder is: the newest with the same files and sizes;
/// a new id past the newest when none is (a copy that left `.snapshots/` behind).
fn copied_id(root: &Path) -> Result<u64> {
    let want = listing(&root.join(CURRENT))?;
    let ids = snapshot_ids(root);
    for &id in &ids {
        if listing(&root.join(SNAPSHOTS).join(snapshot_name(id)))? == want {
            return Ok(id);
        }
    }
    Ok(ids.first().map_or(1, |n| n + 1))
}

/// Turn a copy made by a link-following tool back into the snapshot layout, under the writer
/// lock: the `current` folder becomes its snapshot (or is dropped when `.snapshots/` has it),
/// `current` a link again, and the table folders links into it. Returns whether there was
/// anything to do.
pub(super) fn restore_links(root: &Path) -> Result<bool> {
    let cur = root.join(CURRENT);
    if !fs::symlink_metadata(&cur).is_ok_and(|m| m.is_dir()) {
        return Ok(false);
    }
    let id = copied_id(root)?;
    let snaps = root.join(SNAPSHOTS);
    fs::create_dir_all(&snaps)?;
    let snap = snaps.join(snapshot_name(id));
    fs::write(snaps.join(RESTORING), id.to_string())?;
    sync_dir(&snaps)?;
    if snap.is_dir() {
        // The same files are in `.snapshots/`: the copy goes where a later write removes it.
        fs::rename(&cur, snaps.join(format!("{}.copied", snapshot_name(id))))?;
    } else {
        fs::rename(&cur, &snap)?;
    }
    replace_symlink(&Path::new(SNAPSHOTS).join(snapshot_name(id)), &cur)?;
    fs::remove_file(snaps.join(RESTORING))?;
    for t in Table::ALL {
        let entry = root.join(t.name());
        if fs::symlink_metadata(&entry).is_ok_and(|m| m.is_dir()) {
            fs::remove_dir_all(&entry).with_context(|| format!("removing the copied {}", entry.display()))?;
            std::os::unix::fs::symlink(Path::new(CURRENT).join(t.name()), &entry)
                .with_context(|| format!("linking {}", entry.display()))?;
        }
    }
    Ok(true)
}

/// Point `link` at `target` atomically: make a new link beside it, then rename over it.
pub(super) fn replace_symlink(target: &Path, link: &Path) -> Result<()> {
    let tmp = link.with_file_name(format!(".{}.new", link.file_name().and_then(|n| n.to_str()).unwrap_or("link")));
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).with_context(|| format!("linking {}", tmp.display()))?;
    fs::rename(&tmp, link).with_context(|| format!("swapping {}", link.display()))?;
    sync_dir(link.parent().unwrap_or(Path::new(".")))
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir).and_then(|f| f.sync_all()).with_context(|| format!("syncing {}", dir.display()))
}

/// A write in progress: a staged snapshot that becomes current on `commit`.
#[derive(Debug)]
pub struct Txn {
    root: PathBuf,
    base: Snapshot,
    id: u64,
    staging: PathBuf,
    /// Paths relative to the snapshot that must not be carried over from the base.
    removed: BTreeSet<PathBuf>,
    /// Paths relative to the snapshot written by this transaction.
    written: BTreeSet<PathBuf>,
}

/// What a partition's builder hands back to [`Txn::replace_partitions`].
pub enum Built {
    /// The partition's rows, to be written (none: the partition is removed).
    Frame(DataFrame),
    /// A finished Parquet file of the partition's rows in stored form, synced and moved in,
    /// not rewritten: an ingest's staged piece that turned out to be the whole partition, or
    /// a merge written part by part.
    File(PathBuf),
}

/// Sync a finished file and move it into the staging folder (copied when it is on another
/// file system).
fn adopt(from: &Path, to: &Path) -> Result<()> {
    fs::File::open(from).and_then(|f| f.sync_all()).with_context(|| format!("syncing {}", from.display()))?;
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    if fs::rename(from, to).is_err() {
        fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        fs::File::open(to).and_then(|f| f.sync_all()).with_context(|| format!("syncing {}", to.display()))?;
        let _ = fs::remove_file(from);
    }
    Ok(())
}

impl Txn {
    pub(super) fn begin(root: &Path) -> Result<Txn> {
        if restore_links(root)? {
            tracing::info!("{}: a copy made by following links; its links are restored", root.display());
        }
        let base = current(root)?;
        let snaps = root.join(SNAPSHOTS);
        // Remove leftovers of crashed writes: staging folders and snapshots newer than current.
        for entry in fs::read_dir(&snaps).with_context(|| format!("listing {}", snaps.display()))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let stale = match name.parse::<u64>() {
                Ok(id) => id > base.id,
                Err(_) => true,
            };
            if stale {
                fs::remove_dir_all(entry.path()).with_context(|| format!("removing {}", entry.path().display()))?;
            }
        }
        let id = base.id + 1;
        let staging = snaps.join(format!("{}.tmp", snapshot_name(id)));
        fs::create_dir_all(&staging)?;
        Ok(Txn { root: root.to_path_buf(), base, id, staging, removed: BTreeSet::new(), written: BTreeSet::new() })
    }

    fn rel(table: Table, rel: &str) -> PathBuf {
        let mut p = PathBuf::from(table.name());
        if !rel.is_empty() {
            p.push(rel);
        }
        p
    }

    /// Replace a partition folder's files with one file holding `df` (none if `df` is empty).
    pub fn replace_partition(&mut self, table: Table, partition: &str, df: &mut DataFrame) -> Result<()> {
        let path = self.staging.join(Self::rel(table, &Self::partition_file(partition)));
        if df.height() > 0 {
            write_parquet(df, &path)?;
        }
        self.partition_replaced(table, partition, df.height() > 0)
    }

    /// Record that a partition's base files are gone and whether its new file was written.
    fn partition_replaced(&mut self, table: Table, partition: &str, written: bool) -> Result<()> {
        for f in self.base.partition_files(table, partition)? {
            let rel = f.strip_prefix(&self.base.dir).expect("file under snapshot").to_path_buf();
            self.removed.insert(rel);
        }
        if written {
            self.written.insert(Self::rel(table, &Self::partition_file(partition)));
        }
        Ok(())
    }

    /// Replace many partitions of a table at once, building and writing them in parallel:
    /// `build` turns each item into the partition's rows (an empty frame removes the
    /// partition), or names a finished file to move in. Only the frames being written are in
    /// memory at one time, not all of them.
    pub fn replace_partitions<T, F>(&mut self, table: Table, items: Vec<(String, T)>, build: F) -> Result<()>
    where
        T: Send,
        F: Fn(&str, T) -> Result<Built> + Sync,
    {
        let staging = &self.staging;
        // Plain threads, not rayon: `build` calls polars (see `workers`).
        let written: Vec<(String, bool)> = crate::workers::map(items, |(part, item)| -> Result<_> {
            let dest = staging.join(Self::rel(table, &Self::partition_file(&part)));
            match build(&part, item)? {
                Built::Frame(mut df) => {
                    if df.height() > 0 {
                        // Serial: this is already one task of a parallel loop (see parquet_io).
                        write_parquet_serial(&mut df, &dest)?;
                    }
                    Ok((part, df.height() > 0))
                }
                Built::File(path) => {
                    adopt(&path, &dest)?;
                    Ok((part, true))
                }
            }
        })
        .into_iter()
        .collect::<Result<_>>()?;
        for (part, any) in written {
            self.partition_replaced(table, &part, any)?;
        }
        Ok(())
    }

    /// The one file a rewritten partition holds.
    fn partition_file(partition: &str) -> String {
        format!("{}{}part-0.parquet", partition, if partition.is_empty() { "" } else { "/" })
    }

    /// Add (or overwrite) one file of a table, e.g. `quarantine/<ingest>.parquet`.
    pub fn write_file(&mut self, table: Table, rel: &str, df: &mut DataFrame) -> Result<()> {
        let rel = Self::rel(table, rel);
        write_parquet(df, &self.staging.join(&rel))?;
        self.written.insert(rel);
        Ok(())
    }

    /// Make the staged snapshot current. Until the final rename, a crash changes nothing.
    pub fn commit(self) -> Result<Snapshot> {
        // Carry over every base file this transaction did not touch, as a hard link.
        for table in Table::ALL {
            fs::create_dir_all(self.staging.join(table.name()))?;
            for f in self.base.files(table)? {
                let rel = f.strip_prefix(&self.base.dir).expect("file under snapshot").to_path_buf();
                if self.removed.contains(&rel) || self.written.contains(&rel) {
                    continue;
                }
                let dest = self.staging.join(&rel);
                if let Some(parent) = dest.parent() {
                    fs::create_dir_all(parent)?;
                }
                fs::hard_link(&f, &dest).with_context(|| format!("linking {} into the new snapshot", f.display()))?;
            }
        }
        sync_dir(&self.staging)?;
        let snaps = self.root.join(SNAPSHOTS);
        let final_dir = snaps.join(snapshot_name(self.id));
        fs::rename(&self.staging, &final_dir).with_context(|| format!("finishing {}", final_dir.display()))?;
        sync_dir(&snaps)?;
        replace_symlink(&Path::new(SNAPSHOTS).join(snapshot_name(self.id)), &self.root.join(CURRENT))?;
        // Old snapshots: keep a couple for readers still scanning them.
        if let Ok(entries) = fs::read_dir(&snaps) {
            for entry in entries.flatten() {
                if let Ok(id) = entry.file_name().to_string_lossy().parse::<u64>()
                    && id + KEEP_OLD < self.id
                {
                    let _ = fs::remove_dir_all(entry.path());
                }
            }
        }
        Ok(Snapshot { id: self.id, dir: final_dir })
    }

    /// Abandon the write; the staging folder is removed. (A transaction dropped without either
    /// leaves its folder to the next one.)
    pub fn abort(self) {
        let _ = fs::remove_dir_all(&self.staging);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Warehouse, read_parquet};
    use super::*;
    use polars::prelude::*;

    fn df(v: &[i32]) -> DataFrame {
        DataFrame::new_infer_height(vec![Column::new("x".into(), v)]).unwrap()
    }

    #[test]
    fn commit_swaps_all_tables_and_keeps_untouched_files() {
        let dir = tempfile::tempdir().unwrap();
        let wh = Warehouse::open_or_create(dir.path()).unwrap();
        let lock = wh.lock("test").unwrap();
        let mut t = wh.begin(&lock).unwrap();
        t.replace_partition(Table::Attendance, "year=2026/month=01", &mut df(&[1, 2])).unwrap();
        t.replace_partition(Table::Attendance, "year=2026/month=02", &mut df(&[3])).unwrap();
        let s1 = t.commit().unwrap();
        assert_eq!(s1.id, 1);
        let mut t = wh.begin(&lock).unwrap();
        t.replace_partition(Table::Attendance, "year=2026/month=02", &mut df(&[4, 5])).unwrap();
        t.replace_partition(Table::Units, "", &mut df(&[9])).unwrap();
        let s2 = t.commit().unwrap();
        assert_eq!(wh.snapshot().unwrap().id, 2);
        let files = s2.files(Table::Attendance).unwrap();
        assert_eq!(files.len(), 2);
        let jan = read_parquet(&files[0]).unwrap();
        assert_eq!(jan.height(), 2, "January was carried over");
        // The public path reads the new state.
        let feb = read_parquet(&dir.path().join("attendance/year=2026/month=02/part-0.parquet")).unwrap();
        assert_eq!(feb.height(), 2);
        assert_eq!(read_parquet(&dir.path().join("units/part-0.parquet")).unwrap().height(), 1);
    }

    #[test]
    fn an_uncommitted_write_leaves_no_trace() {
        let dir = tempfile::tempdir().unwrap();
        let wh = Warehouse::open_or_create(dir.path()).unwrap();
        let lock = wh.lock("test").unwrap();
        let mut t = wh.begin(&lock).unwrap();
        t.replace_partition(Table::Units, "", &mut df(&[1])).unwrap();
        drop(t); // as if the process died here
        assert_eq!(wh.snapshot().unwrap().id, 0);
        assert!(wh.snapshot().unwrap().files(Table::Units).unwrap().is_empty());
        let t = wh.begin(&lock).unwrap(); // cleans the leftover staging folder
        t.abort();
        let leftovers: Vec<_> = fs::read_dir(dir.path().join(SNAPSHOTS)).unwrap().flatten().collect();
        assert_eq!(leftovers.len(), 1);
    }
}
