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

pub mod history;
mod lock;
mod parquet_io;
mod scan;
mod snapshot;

pub use lock::{LockError, WarehouseLock};
pub use parquet_io::{
    read_parquet, read_parquet_columns, read_parquet_columns_serial, read_parquet_serial, write_parquet,
    write_parquet_serial, write_parquet_unsynced,
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
const CURRENT: &str = "current";
const MARKER: &str = ".dangjian-warehouse";

/// A warehouse folder.
#[derive(Debug, Clone)]
pub struct Warehouse {
    root: PathBuf,
}

impl Warehouse {
    /// Open a warehouse, creating an empty one if the folder is empty or missing.
    pub fn open_or_create(root: &Path) -> Result<Warehouse> {
        if !root.exists() {
            std::fs::create_dir_all(root).with_context(|| format!("creating warehouse {}", root.display()))?;
        }
        let wh = Warehouse { root: root.to_path_buf() };
        if root.join(MARKER).exists() {
            wh.link_tables()?;
        } else {
            let non_empty =
                std::fs::read_dir(root).with_context(|| format!("reading {}", root.display()))?.next().is_some();
            if non_empty {
                bail!("{} is not empty and is not a dangjian warehouse; choose an empty or new folder", root.display());
            }
            wh.initialise()?;
        }
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

    /// An empty snapshot 0, the `current` link and one link per table.
    fn initialise(&self) -> Result<()> {
        let snap0 = self.root.join(SNAPSHOTS).join(snapshot::snapshot_name(0));
        for t in Table::ALL {
            std::fs::create_dir_all(snap0.join(t.name()))?;
        }
        snapshot::replace_symlink(&Path::new(SNAPSHOTS).join(snapshot::snapshot_name(0)), &self.root.join(CURRENT))?;
        self.link_tables()?;
        std::fs::create_dir_all(self.root.join("rejects"))?;
        std::fs::write(
            self.root.join(MARKER),
            "dangjian warehouse, layout 1\nTables are the folders beside this file; read them with any Parquet reader (Hive partitioning).\n",
        )?;
        Ok(())
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
