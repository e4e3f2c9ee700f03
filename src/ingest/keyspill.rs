//! What a file's rows leave for the merge, a few bytes a row: the short key hashes of its
//! validated rows (8 bytes a row), and for each staged piece the validated row behind each of
//! its rows (4 bytes a row). A file read whole keeps them in memory; a large file read in
//! blocks writes them to its staging folder as its blocks come in, so that an ingest's memory
//! does not grow with the size of one file. The merge reads the keys back in slices, in row
//! order, and a piece's rows only when it needs them (when some of the file's rows go).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use polars::prelude::IdxSize;

/// How many keys a slice read back holds (8 MiB).
const SLICE: usize = 1 << 20;

/// A file's short key hashes, in validated-row order.
pub enum Keys {
    Memory(Vec<u64>),
    Disk { path: PathBuf, len: usize },
}

impl Default for Keys {
    fn default() -> Self {
        Keys::Memory(Vec::new())
    }
}

impl Keys {
    pub fn len(&self) -> usize {
        match self {
            Keys::Memory(keys) => keys.len(),
            Keys::Disk { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `f` on each slice of the keys in row order, with the row of the slice's first key.
    pub fn for_each_slice(&self, mut f: impl FnMut(usize, &[u64])) -> Result<()> {
        let (path, len) = match self {
            Keys::Memory(keys) => {
                f(0, keys);
                return Ok(());
            }
            Keys::Disk { path, len } => (path, *len),
        };
        let context = || format!("reading the staged keys {}", path.display());
        let mut file = File::open(path).with_context(context)?;
        let mut bytes = vec![0u8; SLICE.min(len) * 8];
        let mut keys = Vec::with_capacity(SLICE.min(len));
        let mut start = 0;
        while start < len {
            let n = SLICE.min(len - start);
            file.read_exact(&mut bytes[..n * 8]).with_context(context)?;
            keys.clear();
            keys.extend(bytes[..n * 8].chunks_exact(8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes"))));
            f(start, &keys);
            start += n;
        }
        Ok(())
    }
}

/// A staging file written at its end as values come, made when the first come (not synced: it
/// lives as long as this ingest). Each write is a block's or a piece's worth, so it goes to the
/// file as it is.
struct Appended {
    path: PathBuf,
    /// What it holds, for messages: "keys", "rows".
    what: &'static str,
    out: Option<File>,
    /// Bytes written so far.
    at: u64,
    bytes: Vec<u8>,
}

impl Appended {
    fn new(path: &Path, what: &'static str) -> Appended {
        Appended { path: path.to_path_buf(), what, out: None, at: 0, bytes: Vec::new() }
    }

    /// `values` written at the end, as their little-endian bytes; the byte where they start.
    fn push<const N: usize>(&mut self, values: impl Iterator<Item = [u8; N]>) -> Result<u64> {
        let context = || format!("writing the staged {} {}", self.what, self.path.display());
        if self.out.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir).with_context(context)?;
            }
            self.out = Some(File::create(&self.path).with_context(context)?);
        }
        self.bytes.clear();
        self.bytes.extend(values.flatten());
        self.out.as_mut().expect("opened above").write_all(&self.bytes).with_context(context)?;
        let start = self.at;
        self.at += self.bytes.len() as u64;
        Ok(start)
    }
}

/// Keys written to a file as they come, for [`Keys::Disk`].
pub struct KeyFile {
    file: Appended,
    len: usize,
}

impl KeyFile {
    /// A key file at `path`, made when the first keys come.
    pub fn new(path: &Path) -> KeyFile {
        KeyFile { file: Appended::new(path, "keys"), len: 0 }
    }

    pub fn push(&mut self, keys: &[u64]) -> Result<()> {
        self.file.push(keys.iter().map(|k| k.to_le_bytes()))?;
        self.len += keys.len();
        Ok(())
    }

    /// The keys written.
    pub fn finish(self) -> Keys {
        if self.file.out.is_none() {
            return Keys::default();
        }
        Keys::Disk { path: self.file.path, len: self.len }
    }
}

/// The validated row behind each row of a staged piece.
pub enum RowMap {
    Memory(Vec<IdxSize>),
    /// `len` rows at byte `offset` of a [`RowFile`].
    Disk {
        path: PathBuf,
        offset: u64,
        len: usize,
    },
}

impl RowMap {
    /// The piece's height.
    pub fn len(&self) -> usize {
        match self {
            RowMap::Memory(rows) => rows.len(),
            RowMap::Disk { len, .. } => *len,
        }
    }

    /// The rows, read back if they are on disk.
    pub fn load(&self) -> Result<std::borrow::Cow<'_, [IdxSize]>> {
        let (path, offset, len) = match self {
            RowMap::Memory(rows) => return Ok(std::borrow::Cow::Borrowed(rows)),
            RowMap::Disk { path, offset, len } => (path, *offset, *len),
        };
        let context = || format!("reading the staged rows {} ({len} rows at byte {offset})", path.display());
        let mut file = File::open(path).with_context(context)?;
        file.seek(SeekFrom::Start(offset)).with_context(context)?;
        let mut bytes = vec![0u8; len * size_of::<IdxSize>()];
        file.read_exact(&mut bytes).with_context(context)?;
        let rows = bytes
            .chunks_exact(size_of::<IdxSize>())
            .map(|b| IdxSize::from_le_bytes(b.try_into().expect("one row")))
            .collect();
        Ok(std::borrow::Cow::Owned(rows))
    }
}

/// The row maps of a file's pieces, one after the other in one file: a file in no order of
/// time has a piece per block and month, and a file each cost a tenth of its ingest's time.
pub struct RowFile(Appended);

impl RowFile {
    /// A row file at `path`, made when the first rows come.
    pub fn new(path: &Path) -> RowFile {
        RowFile(Appended::new(path, "rows"))
    }

    /// `rows` written at the end, and where.
    pub fn push(&mut self, rows: &[IdxSize]) -> Result<RowMap> {
        let offset = self.0.push(rows.iter().map(|r| r.to_le_bytes()))?;
        Ok(RowMap::Disk { path: self.0.path.clone(), offset, len: rows.len() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(keys: &Keys) -> Vec<(usize, u64)> {
        let mut out = Vec::new();
        keys.for_each_slice(|start, slice| out.extend(slice.iter().enumerate().map(|(i, &k)| (start + i, k)))).unwrap();
        out
    }

    #[test]
    fn keys_on_disk_read_back_in_order_across_slices() {
        let t = tempfile::tempdir().unwrap();
        let mut file = KeyFile::new(&t.path().join("staging").join("keys-0.bin"));
        let keys: Vec<u64> = (0..(SLICE as u64 * 2 + 5)).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).collect();
        for part in keys.chunks(777_777) {
            file.push(part).unwrap();
        }
        let on_disk = file.finish();
        assert!(matches!(on_disk, Keys::Disk { .. }));
        assert_eq!(on_disk.len(), keys.len());
        let expected: Vec<(usize, u64)> = keys.iter().copied().enumerate().collect();
        assert_eq!(read_all(&on_disk), expected);
        assert_eq!(read_all(&Keys::Memory(keys)), expected);
    }

    #[test]
    fn no_keys_make_no_file() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("keys-1.bin");
        let keys = KeyFile::new(&path).finish();
        assert!(keys.is_empty() && !path.exists());
        assert_eq!(read_all(&keys), []);
    }

    #[test]
    fn row_maps_on_disk_read_back_as_written() {
        let t = tempfile::tempdir().unwrap();
        let mut file = RowFile::new(&t.path().join("staging").join("0-0.rows"));
        let maps: Vec<Vec<IdxSize>> = [100_003, 0, 7]
            .iter()
            .map(|&n| (0..n).map(|i: IdxSize| i.wrapping_mul(2_654_435_761) % 1_000_000).collect())
            .collect();
        let on_disk: Vec<RowMap> = maps.iter().map(|rows| file.push(rows).unwrap()).collect();
        for (rows, map) in maps.iter().zip(&on_disk) {
            assert_eq!(map.len(), rows.len());
            assert_eq!(&*map.load().unwrap(), &rows[..]);
            assert_eq!(&*RowMap::Memory(rows.clone()).load().unwrap(), &rows[..]);
        }
        // A file cut short is an error naming it, not fewer rows.
        let RowMap::Disk { path, .. } = &on_disk[2] else { panic!("written to disk") };
        let bytes = std::fs::read(path).unwrap();
        std::fs::write(path, &bytes[..bytes.len() - 4]).unwrap();
        let e = format!("{:#}", on_disk[2].load().unwrap_err());
        assert!(e.contains("0-0.rows") && e.contains("7 rows"), "{e}");
    }
}
