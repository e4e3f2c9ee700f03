//! One writer per warehouse: an OS file lock on `DIR/.lock`, which the kernel releases when the
//! holder dies, so a killed run never leaves a stale lock behind. The file's text says who
//! holds it, for the message a second writer gets.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("the warehouse is busy: {holder}")]
    Busy { holder: String },
    /// Why the lock file could not be written, in plain words (see `warehouse::io_error`).
    #[error("cannot lock the warehouse: {0}")]
    Io(String),
}

/// Held while writing; dropping it releases the lock.
#[derive(Debug)]
pub struct WarehouseLock {
    file: File,
}

impl WarehouseLock {
    pub fn acquire(root: &Path, what: &str) -> Result<Self, LockError> {
        Self::acquire_named(root, ".lock", what)
    }

    /// A lock on another file of the warehouse folder (`.run.lock`: one pipeline run at a time,
    /// while its stages take the write lock in turn).
    pub fn acquire_named(root: &Path, file: &str, what: &str) -> Result<Self, LockError> {
        let path = root.join(file);
        let io = |e: std::io::Error| LockError::Io(format!("{:#}", super::io_error("opening", &path, e)));
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = if holder.trim().is_empty() {
                    "another dangjian process".to_string()
                } else {
                    holder.trim().to_string()
                };
                return Err(LockError::Busy { holder });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        let since = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
        write!(file, "held by pid {} ({what}) since {since}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(WarehouseLock { file })
    }

    /// Wait for the lock instead of failing.
    pub fn acquire_named_blocking(root: &Path, file: &str, what: &str) -> Result<Self, LockError> {
        loop {
            match Self::acquire_named(root, file, what) {
                Err(LockError::Busy { .. }) => std::thread::sleep(std::time::Duration::from_millis(200)),
                other => return other,
            }
        }
    }
}

impl Drop for WarehouseLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_told_who_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let first = WarehouseLock::acquire(dir.path(), "ingest").unwrap();
        match WarehouseLock::acquire(dir.path(), "compute") {
            Err(LockError::Busy { holder }) => {
                assert!(holder.contains(&format!("pid {}", std::process::id())), "{holder}");
                assert!(holder.contains("(ingest)"), "{holder}");
            }
            other => panic!("expected busy, got {other:?}"),
        }
        drop(first);
        WarehouseLock::acquire(dir.path(), "compute").unwrap();
    }
}
