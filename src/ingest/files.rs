//! Finding input files under the paths given, hashing each one, and reading its bytes again
//! (checked against the hash) when it is parsed. Bytes are not kept between the two: an
//! ingest of many files holds only the files being parsed.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::read::Format;

/// One input file: where it is, its size, hash and time.
#[derive(Debug, Clone)]
pub struct InputFile {
    pub path: PathBuf,
    /// The file name, as stored in the warehouse (never the full path, which may hold a person's
    /// user name).
    pub name: String,
    pub format: Format,
    pub size: u64,
    /// BLAKE3 of the bytes, hex.
    pub hash: String,
    /// Modification time, microseconds since the Unix epoch: the export's time.
    pub mtime_us: i64,
}

/// Expand files and folders into the input files, sorted, skipping hidden files and Excel's
/// `~$` lock files. A file named directly must be a `.csv` or `.xlsx`.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
        if meta.is_dir() {
            walk(p, &mut out)?;
        } else if Format::of(p).is_some() {
            out.push(p.clone());
        } else {
            bail!("{}: only .csv and .xlsx files are read", p.display());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || name.starts_with("~$") {
            continue;
        }
        if p.is_dir() {
            walk(&p, out)?;
        } else if Format::of(&p).is_some() {
            out.push(p);
        }
    }
    Ok(())
}

/// Hash a file and note its size and modification time.
pub fn load(path: &Path) -> Result<InputFile> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let mtime_us = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_micros() as i64);
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(file).with_context(|| format!("reading {}", path.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let format = Format::of(path).unwrap_or(Format::Csv);
    let hash = hasher.finalize().to_hex().to_string();
    Ok(InputFile { path: path.to_path_buf(), name, format, size: hasher.count(), hash, mtime_us })
}

impl InputFile {
    /// The file's bytes, read again and checked against the hash taken by [`load`]: the
    /// ledger must describe exactly the bytes that were loaded.
    pub fn contents(&self) -> Result<Vec<u8>, String> {
        let bytes = std::fs::read(&self.path).map_err(|e| format!("cannot read the file again: {e}"))?;
        if blake3::hash(&bytes).to_hex().as_str() != self.hash {
            return Err("the file changed while it was being ingested; run the ingest again".into());
        }
        Ok(bytes)
    }

    /// The file's bytes as a stream, hashed as they are read; [`CheckedReader::verify`] at the
    /// end checks them against the hash taken by [`load`], as [`InputFile::contents`] does.
    pub fn reader(&self) -> Result<CheckedReader, String> {
        let file = std::fs::File::open(&self.path).map_err(|e| format!("cannot read the file again: {e}"))?;
        Ok(CheckedReader { file, hasher: blake3::Hasher::new(), expected: self.hash.clone() })
    }

    /// The start of the file, up to `max` bytes: enough for a CSV header.
    pub fn head(&self, max: u64) -> Result<Vec<u8>, String> {
        use std::io::Read;
        let mut out = Vec::new();
        std::fs::File::open(&self.path)
            .and_then(|f| f.take(max).read_to_end(&mut out))
            .map_err(|e| format!("cannot read the file again: {e}"))?;
        Ok(out)
    }
}

/// A file read once from start to end, hashed on the way.
pub struct CheckedReader {
    file: std::fs::File,
    hasher: blake3::Hasher,
    expected: String,
}

impl std::io::Read for CheckedReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

impl CheckedReader {
    /// After the whole file was read: whether it is still the file that was hashed.
    pub fn verify(self) -> Result<(), String> {
        if self.hasher.finalize().to_hex().as_str() != self.expected {
            return Err("the file changed while it was being ingested; run the ingest again".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_folders_sorted_and_skips_noise() {
        let d = tempfile::tempdir().unwrap();
        for f in ["b.csv", "a.xlsx", "~$a.xlsx", ".hidden.csv", "notes.txt", "sub/c.CSV"] {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x").unwrap();
        }
        let got: Vec<String> = expand(&[d.path().to_path_buf()])
            .unwrap()
            .iter()
            .map(|p| p.strip_prefix(d.path()).unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(got, vec!["a.xlsx", "b.csv", "sub/c.CSV"]);
        assert!(expand(&[d.path().join("notes.txt")]).is_err());
    }

    #[test]
    fn contents_are_checked_against_the_hash() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.csv");
        std::fs::write(&p, "a,b\n1,2\n").unwrap();
        let f = load(&p).unwrap();
        assert_eq!(f.size, 8);
        assert_eq!(f.contents().unwrap(), b"a,b\n1,2\n");
        assert_eq!(f.head(3).unwrap(), b"a,b");
        std::fs::write(&p, "a,b\n1,3\n").unwrap();
        assert!(f.contents().unwrap_err().contains("changed while"));
        let read_all = |f: &InputFile| {
            let mut r = f.reader().unwrap();
            std::io::Read::read_to_end(&mut r, &mut Vec::new()).unwrap();
            r.verify()
        };
        assert!(read_all(&f).unwrap_err().contains("changed while"));
        assert!(read_all(&load(&p).unwrap()).is_ok());
    }
}
