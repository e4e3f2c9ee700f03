//! Finding input files under the paths given, noting each one's size and time, hashing it
//! (up front, or while it is parsed), and reading its bytes for the parse. Bytes are not kept
//! between reads: an ingest of many files holds only the files being parsed.

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
    /// BLAKE3 of the bytes, hex, once taken: up front by [`InputFile::hashed`], or by the
    /// read that parses the file ([`InputFile::reader`], [`InputFile::contents`]).
    pub hash: Option<String>,
    /// Modification time, microseconds since the Unix epoch: the export's time.
    pub mtime_us: i64,
    /// The one sheet of a workbook this input is (see [`sheets`]); `None`: the file whole.
    pub sheet: Option<String>,
    /// The workbook's own hash when this input is one of its sheets (`hash` is then the
    /// sheet's identity): what a manifest records of the bytes read.
    pub workbook_hash: Option<String>,
    /// A workbook's sheets without a table, reported with its first sheet that has one.
    pub passed_over: Vec<String>,
}

/// Expand files and folders into the input files, sorted, skipping hidden files and Excel's
/// `~$` lock files. A file named directly must be a `.csv`, `.tsv`, `.txt` or `.xlsx`.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
        if meta.is_dir() {
            walk(p, &mut out)?;
        } else if Format::of(p).is_some() {
            out.push(p.clone());
        } else {
            bail!("{}: only .csv, .tsv, .txt (Excel's text exports) and .xlsx files are read", p.display());
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
        } else if Format::of(&p).is_some() && (!has_extension(&p, "txt") || is_unicode_text(&p)) {
            // In a folder, a `.txt` is read only when it is Excel's Unicode text (a UTF-16
            // mark): an inbox's 说明.txt is not an export.
            out.push(p);
        }
    }
    Ok(())
}

fn has_extension(p: &Path, ext: &str) -> bool {
    p.extension().is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

fn is_unicode_text(p: &Path) -> bool {
    let mut head = [0u8; 2];
    std::fs::File::open(p).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head)).is_ok()
        && super::decode::is_utf16(&head)
}

/// Note a file's size and modification time; its hash is taken later (see [`InputFile::hash`]).
pub fn stat(path: &Path) -> Result<InputFile> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let mtime_us = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_micros() as i64);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let format = Format::of(path).unwrap_or(Format::Csv);
    Ok(InputFile {
        path: path.to_path_buf(),
        name,
        format,
        size: meta.len(),
        hash: None,
        mtime_us,
        sheet: None,
        workbook_hash: None,
        passed_over: Vec::new(),
    })
}

/// The inputs a file is read as. A workbook with tables on several sheets (one per month is
/// common) is one input per such sheet, so that each has its own name in the ledger
/// (`考勤.xlsx[三月]`: Excel forbids brackets in a sheet's name), its own identity and its own
/// line numbers for the clerk; with `sheet` named, that sheet of every workbook. Anything else,
/// and a workbook that cannot be opened (its read says why), is one input as it is.
pub fn sheets(input: InputFile, sheet: Option<&str>, aliases: &super::aliases::Aliases) -> Vec<InputFile> {
    if input.format != Format::Xlsx {
        return vec![input];
    }
    if let Some(name) = sheet {
        return vec![input.sheet_of(name, Vec::new())];
    }
    match super::read::workbook_sheets(&input.path, aliases) {
        Ok(found) if found.tables.len() > 1 => {
            let mut others = Some(found.others);
            found.tables.iter().map(|t| input.sheet_of(t, others.take().unwrap_or_default())).collect()
        }
        _ => vec![input],
    }
}

/// A sheet's identity: its workbook's hash and its name.
fn sheet_identity(workbook_hash: &str, sheet: &str) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(workbook_hash.as_bytes()).update(b"\0sheet\0").update(sheet.as_bytes());
    hasher.finalize().to_hex().to_string()
}

/// The message for bytes that are not the ones hashed before.
const CHANGED: &str = "the file changed while it was being ingested; run the ingest again";

impl InputFile {
    /// One sheet of this workbook as an input of its own. Its identity is the workbook's bytes
    /// and the sheet's name: the same sheet read again is known, another sheet is not.
    fn sheet_of(&self, sheet: &str, passed_over: Vec<String>) -> InputFile {
        InputFile {
            name: format!("{}[{sheet}]", self.name),
            hash: self.hash.as_ref().map(|h| sheet_identity(h, sheet)),
            sheet: Some(sheet.to_string()),
            workbook_hash: self.hash.clone(),
            passed_over,
            ..self.clone()
        }
    }

    /// The file's hash: the one taken before, or else taken now by reading the file through.
    pub fn hashed(&self) -> Result<String, String> {
        if let Some(h) = &self.hash {
            return Ok(h.clone());
        }
        let file = std::fs::File::open(&self.path).map_err(|e| format!("cannot read the file: {e}"))?;
        let mut hasher = blake3::Hasher::new();
        hasher.update_reader(file).map_err(|e| format!("cannot read the file: {e}"))?;
        let hash = hasher.finalize().to_hex().to_string();
        Ok(match &self.sheet {
            Some(sheet) => sheet_identity(&hash, sheet),
            None => hash,
        })
    }

    /// The file's bytes and their hash, checked against the hash taken before if there is one:
    /// the ledger must describe exactly the bytes that were loaded.
    pub fn contents(&self) -> Result<(Vec<u8>, String), String> {
        let bytes = std::fs::read(&self.path).map_err(|e| format!("cannot read the file again: {e}"))?;
        let hash = blake3::hash(&bytes).to_hex().to_string();
        if self.hash.as_ref().is_some_and(|h| *h != hash) {
            return Err(CHANGED.into());
        }
        Ok((bytes, hash))
    }

    /// The file's bytes as a stream, hashed as they are read; [`CheckedReader::verify`] at the
    /// end gives the hash, checked as [`InputFile::contents`] checks it.
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
    expected: Option<String>,
}

impl std::io::Read for CheckedReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

impl CheckedReader {
    /// After the whole file was read: its hash, if it is still the file hashed before (when
    /// it was).
    pub fn verify(self) -> Result<String, String> {
        let hash = self.hasher.finalize().to_hex().to_string();
        if self.expected.as_ref().is_some_and(|h| *h != hash) {
            return Err(CHANGED.into());
        }
        Ok(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_folders_sorted_and_skips_noise() {
        let d = tempfile::tempdir().unwrap();
        for f in ["b.csv", "a.xlsx", "~$a.xlsx", ".hidden.csv", "notes.txt", "sub/c.CSV", "e.tsv", "notes.md"] {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x").unwrap();
        }
        // Excel's Unicode text export: a .txt that starts with a UTF-16 mark.
        std::fs::write(d.path().join("unicode.txt"), b"\xFF\xFEa\0").unwrap();
        let got: Vec<String> = expand(&[d.path().to_path_buf()])
            .unwrap()
            .iter()
            .map(|p| p.strip_prefix(d.path()).unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(got, vec!["a.xlsx", "b.csv", "e.tsv", "sub/c.CSV", "unicode.txt"]);
        // Named on the command line, any text export is read; other files are refused.
        assert_eq!(expand(&[d.path().join("notes.txt")]).unwrap().len(), 1);
        assert!(expand(&[d.path().join("notes.md")]).is_err());
    }

    /// A file's size, time and hash.
    fn load(path: &Path) -> InputFile {
        let mut f = stat(path).unwrap();
        f.hash = Some(f.hashed().unwrap());
        f
    }

    #[test]
    fn contents_are_checked_against_the_hash() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.csv");
        std::fs::write(&p, "a,b\n1,2\n").unwrap();
        let f = load(&p);
        let hash = f.hash.clone().unwrap();
        assert_eq!(f.size, 8);
        assert_eq!(f.contents().unwrap(), (b"a,b\n1,2\n".to_vec(), hash.clone()));
        assert_eq!(f.head(3).unwrap(), b"a,b");
        let read_all = |f: &InputFile| {
            let mut r = f.reader().unwrap();
            std::io::Read::read_to_end(&mut r, &mut Vec::new()).unwrap();
            r.verify()
        };
        // Not hashed before: the read gives the hash.
        let unhashed = stat(&p).unwrap();
        assert_eq!(unhashed.hash, None);
        assert_eq!(read_all(&unhashed).unwrap(), hash);
        assert_eq!(unhashed.contents().unwrap().1, hash);
        std::fs::write(&p, "a,b\n1,3\n").unwrap();
        assert!(f.contents().unwrap_err().contains("changed while"));
        assert!(read_all(&f).unwrap_err().contains("changed while"));
        assert!(read_all(&load(&p)).is_ok());
        assert_ne!(read_all(&stat(&p).unwrap()).unwrap(), hash);
    }
}
