//! The warehouse on disk: its Hive layout, atomic snapshots, the writer lock, Parquet I/O.
//!
//! Layout (SPEC §3): `DIR/<table>/...` are what other engines read. Each is a symlink into
//! `DIR/current`, itself a symlink to `DIR/.snapshots/<N>`. A write builds snapshot N+1 beside
//! the current one (unchanged files are hard links, so this is cheap), syncs it, and then swaps
//! `current` with one `rename`: every table changes at once, and a crash at any moment leaves
//! either the old or the new state, both complete. Old snapshots are kept briefly for readers
//! that are still scanning them, then removed.
//!
//! This module knows tables and partitions (their list and columns come from `model`), not
//! what rows mean: ingest and indicators decide what to write. It uses nothing above `model`
//! and never prints.

pub mod check;
pub mod history;
mod lock;
mod parquet_io;
mod scan;
mod snapshot;

pub use lock::{LockError, WarehouseLock};
pub use parquet_io::{
    PartsWriter, ROW_GROUP, date_values, read_parquet, read_parquet_columns, read_parquet_columns_serial,
    read_parquet_rows_serial, read_parquet_serial, write_parquet, write_parquet_serial, write_parquet_unsynced,
};
pub use scan::scan_table;
pub use snapshot::{Built, Snapshot, Txn};

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::model::{Period, Table};

/// The Hive partition folder (relative to the table) for a month, e.g. `year=2026/month=03`.
pub fn month_partition(year: i32, month: u32) -> String {
    format!("year={year:04}/month={month:02}")
}

/// The Hive partition folder for a year, e.g. `year=2026`.
pub fn year_partition(year: i32) -> String {
    format!("year={year:04}")
}

/// The Hive partition folder for a period, e.g. `period=2026Q1`.
pub fn period_partition(period: &Period) -> String {
    format!("period={period}")
}

const SNAPSHOTS: &str = ".snapshots";
/// A failed write in plain words: what happened to which file, and what to do.
pub fn io_error(doing: &str, path: &Path, e: std::io::Error) -> anyhow::Error {
    use std::io::ErrorKind;
    let advice = match e.kind() {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => {
            " (the disk is full: free some space or move the warehouse, then run again; the warehouse is as it was)"
        }
        ErrorKind::ReadOnlyFilesystem => " (the folder is on a read-only file system: the warehouse is as it was)",
        ErrorKind::PermissionDenied => {
            " (this user may not write there: check the folder's owner and permissions; the warehouse is as it was)"
        }
        _ => "",
    };
    anyhow::anyhow!("{doing} {}: {e}{advice}", path.display())
}

const CURRENT: &str = "current";
const MARKER: &str = ".dangjian-warehouse";

/// Make an empty warehouse at `root` (missing or an empty folder): built in a hidden sibling
/// folder, then renamed over it in one step.
fn create(root: &Path) -> Result<()> {
    let parent = match root.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let name = root.file_name().map_or("warehouse".into(), |n| n.to_string_lossy().into_owned());
    let prefix = format!(".{name}.dangjian-new-");
    remove_abandoned(&parent, &prefix);
    let staging = parent.join(format!("{prefix}{}", std::process::id()));
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    initialise(&staging).with_context(|| format!("creating warehouse {}", root.display()))?;
    match std::fs::rename(&staging, root) {
        Ok(()) => Ok(()),
        // Another process made it meanwhile: theirs stands.
        Err(_) if root.join(MARKER).exists() => {
            let _ = std::fs::remove_dir_all(&staging);
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(e).with_context(|| format!("creating warehouse {}", root.display()))
        }
    }
}

/// An empty snapshot 0, the `current` link, one link per table, and the marker, in `dir`.
fn initialise(dir: &Path) -> Result<()> {
    let snap0 = dir.join(SNAPSHOTS).join(snapshot::snapshot_name(0));
    for t in Table::ALL {
        std::fs::create_dir_all(snap0.join(t.name()))?;
    }
    snapshot::replace_symlink(&Path::new(SNAPSHOTS).join(snapshot::snapshot_name(0)), &dir.join(CURRENT))?;
    std::fs::create_dir_all(dir.join("rejects"))?;
    std::fs::write(
        dir.join(MARKER),
        "dangjian warehouse, layout 1\nTables are the folders beside this file; read them with any Parquet reader (Hive partitioning).\n",
    )?;
    Ok(())
}

/// Staging folders of creations whose process is gone.
fn remove_abandoned(parent: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(prefix).and_then(|p| p.parse::<u32>().ok()) else { continue };
        if !Path::new("/proc").join(pid.to_string()).exists() || pid == std::process::id() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Whether `root` holds only what an interrupted creation leaves: the empty first snapshot,
/// the `current` link, links named after tables, an empty `rejects/`, and no marker. Anything
/// else (a user's own `units` folder, say) is not touched.
fn interrupted_creation(root: &Path) -> Result<bool> {
    let snap0 = Path::new(SNAPSHOTS).join(snapshot::snapshot_name(0));
    let empty = |p: &Path| std::fs::read_dir(p).map(|mut d| d.next().is_none()).unwrap_or(false);
    if !root.join(SNAPSHOTS).is_dir() {
        return Ok(false);
    }
    for e in std::fs::read_dir(root).with_context(|| format!("reading {}", root.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let link = e.file_type()?.is_symlink();
        let leftover = match name.as_str() {
            SNAPSHOTS => true,
            CURRENT => link,
            "rejects" => empty(&e.path()),
            _ => link && Table::parse(&name).is_some(),
        };
        if !leftover {
            return Ok(false);
        }
    }
    let snapshots: Vec<_> = std::fs::read_dir(root.join(SNAPSHOTS))?.flatten().map(|e| e.file_name()).collect();
    if snapshots.iter().any(|n| Path::new(SNAPSHOTS).join(n) != snap0) {
        return Ok(false);
    }
    // Nothing was written into the first snapshot's tables.
    let tables = std::fs::read_dir(root.join(&snap0)).map(|d| d.flatten().collect::<Vec<_>>()).unwrap_or_default();
    Ok(tables.iter().all(|t| t.file_type().is_ok_and(|f| f.is_dir()) && empty(&t.path())))
}

/// A warehouse folder.
#[derive(Debug, Clone)]
pub struct Warehouse {
    root: PathBuf,
}

impl Warehouse {
    /// Open a warehouse, creating an empty one if the folder is empty or missing.
    ///
    /// A new warehouse is built beside the folder and renamed into place, so a kill at any
    /// moment leaves either no warehouse or a whole empty one. A folder left half-made by an
    /// interrupted creation of an earlier version (the empty first snapshot, no marker) is
    /// recognised and made again.
    pub fn open_or_create(root: &Path) -> Result<Warehouse> {
        let wh = Warehouse { root: root.to_path_buf() };
        if root.join(MARKER).exists() {
            wh.link_tables()?;
            return Ok(wh);
        }
        if root.exists() {
            if interrupted_creation(root)? {
                tracing::info!("{}: finishing a warehouse whose creation was interrupted", root.display());
                std::fs::remove_dir_all(root).with_context(|| format!("removing {}", root.display()))?;
            } else if std::fs::read_dir(root).with_context(|| format!("reading {}", root.display()))?.next().is_some() {
                bail!("{} is not empty and is not a dangjian warehouse; choose an empty or new folder", root.display());
            }
        }
        create(root)?;
        wh.link_tables()?;
        Ok(wh)
    }

    /// Open an existing warehouse; a missing one is an error that says how to make one.
    pub fn open(root: &Path) -> Result<Warehouse> {
        if !root.join(MARKER).exists() {
            bail!(
                "{} is not a dangjian warehouse (no {MARKER}); create one with `dangjian ingest --warehouse {} PATH`",
                root.display(),
                root.display()
            );
        }
        let wh = Warehouse { root: root.to_path_buf() };
        wh.link_tables()?;
        Ok(wh)
    }

    /// One link per table; tables added by a newer version get theirs on first open.
    fn link_tables(&self) -> Result<()> {
        for t in Table::ALL {
            let link = self.root.join(t.name());
            if std::fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(Path::new(CURRENT).join(t.name()), &link)
                    .with_context(|| format!("linking {}", link.display()))?;
            }
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The snapshot readers see now. A reader keeps this path for its whole run, so a write
    /// that commits meanwhile does not mix states.
    pub fn snapshot(&self) -> Result<Snapshot> {
        snapshot::current(&self.root)
    }

    /// Take the writer lock; at most one writer per warehouse.
    pub fn lock(&self, what: &str) -> Result<WarehouseLock, LockError> {
        WarehouseLock::acquire(&self.root, what)
    }

    /// Start a write on top of the current snapshot. Hold the lock while the write lasts.
    pub fn begin(&self, _lock: &WarehouseLock) -> Result<Txn> {
        Txn::begin(&self.root)
    }

    /// Folder for the clerk-facing CSV exports of an ingest.
    pub fn rejects_dir(&self, ingest_id: &str) -> PathBuf {
        self.root.join("rejects").join(ingest_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the creation of earlier versions left when killed before the marker was written.
    fn half_made(root: &Path) {
        let snap0 = root.join(SNAPSHOTS).join(snapshot::snapshot_name(0));
        for t in [Table::Units, Table::Attendance] {
            std::fs::create_dir_all(snap0.join(t.name())).unwrap();
        }
        std::os::unix::fs::symlink(Path::new(SNAPSHOTS).join(snapshot::snapshot_name(0)), root.join(CURRENT)).unwrap();
        std::os::unix::fs::symlink("current/units", root.join("units")).unwrap();
    }

    #[test]
    fn a_creation_interrupted_by_an_earlier_version_is_made_again() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("wh");
        half_made(&root);
        Warehouse::open_or_create(&root).unwrap();
        assert!(root.join(MARKER).exists());
        assert!(root.join("units_history").symlink_metadata().is_ok());
        let siblings: Vec<_> = std::fs::read_dir(t.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(siblings, vec![std::ffi::OsString::from("wh")], "no staging folder is left");
    }

    #[test]
    fn a_folder_of_ones_own_is_never_taken_for_a_leftover() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("exports");
        half_made(&root);
        // The same shape, but with something written: a file in the first snapshot.
        std::fs::write(root.join(SNAPSHOTS).join(snapshot::snapshot_name(0)).join("units/x.parquet"), b"x").unwrap();
        assert!(Warehouse::open_or_create(&root).is_err());
        // And a real `units` folder of CSV files.
        let mine = t.path().join("mine");
        std::fs::create_dir_all(mine.join(SNAPSHOTS)).unwrap();
        std::fs::create_dir_all(mine.join("units")).unwrap();
        std::fs::write(mine.join("units/组织架构.csv"), b"a").unwrap();
        assert!(Warehouse::open_or_create(&mine).is_err());
        assert!(mine.join("units/组织架构.csv").exists());
    }

    #[test]
    fn an_empty_folder_becomes_a_warehouse_in_place() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("wh");
        std::fs::create_dir(&root).unwrap();
        Warehouse::open_or_create(&root).unwrap();
        assert!(root.join(MARKER).exists() && root.join(CURRENT).symlink_metadata().is_ok());
    }
}
