//! Finding input files under the paths given, and reading each one's bytes, hash and time.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::read::Format;

/// One input file, read into memory.
#[derive(Debug, Clone)]
pub struct InputFile {
    pub path: PathBuf,
    /// The file name, as stored in the warehouse (never the full path, which may hold a person's
    /// user name).
    pub name: String,
    pub format: Format,
    pub bytes: Vec<u8>,
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

/// Read a file's bytes, hash and modification time.
pub fn load(path: &Path) -> Result<InputFile> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let mtime_us = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_micros() as i64);
    let hash = blake3::hash(&bytes).to_hex().to_string();
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let format = Format::of(path).unwrap_or(Format::Csv);
    Ok(InputFile { path: path.to_path_buf(), name, format, bytes, hash, mtime_us })
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
}
