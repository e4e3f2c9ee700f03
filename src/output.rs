//! Text and files for people, shared by every layer that writes them: terminal widths, cells
//! safe to open in a spreadsheet, values as a person reads them, and a file written whole or
//! not at all. Knows nothing of tables, kinds or the warehouse.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Display width: CJK and full-width characters take two columns in a terminal.
pub fn width(s: &str) -> usize {
    s.chars()
        .map(|c| match c as u32 {
            0x1100..=0x115F
            | 0x2E80..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6 => 2,
            _ => 1,
        })
        .sum()
}

pub fn pad(s: &str, w: usize, right: bool) -> String {
    let fill = " ".repeat(w.saturating_sub(width(s)));
    if right { format!("{fill}{s}") } else { format!("{s}{fill}") }
}

/// Make a cell safe to open in a spreadsheet: text that starts like a formula gets a leading
/// apostrophe (Excel's own escape). Plain numbers such as `-5` are left alone.
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    // A lone sign cannot start a formula; Excel shows it as text.
    let starts_like_formula = cell != "-" && cell != "+" && cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if starts_like_formula && cell.trim().parse::<f64>().is_err() {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

/// A value for people: percentages for rates, one decimal for scores.
pub fn format_value(v: f64, unit: &str) -> String {
    match unit {
        "percent" => format!("{:.1}%", v * 100.0),
        "score" | "points" | "per100" => format!("{v:.1}"),
        "count" => format!("{v:.0}"),
        _ => format!("{v:.2}"),
    }
}

/// Write through a temporary file and a rename, so a crash never leaves half a report.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("{}.tmp", path.extension().and_then(|e| e.to_str()).unwrap_or("")));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Draw a set of files in a hidden folder beside `dest` (`out/.charts.tmp` for `out/charts`)
/// and move them in one by one only once all are drawn: a failure leaves the files that were
/// there, and a reader never sees half a file. Other files in `dest` are left alone (it may be
/// a folder of the user's). `draw` returns the paths it wrote inside the folder it is given;
/// their new paths are returned in the same order.
pub fn stage_then_move(dest: &Path, draw: impl FnOnce(&Path) -> Result<Vec<PathBuf>>) -> Result<Vec<PathBuf>> {
    let staging = match (dest.parent(), dest.file_name()) {
        (Some(parent), Some(name)) => parent.join(format!(".{}.tmp", name.to_string_lossy())),
        _ => dest.join(".staging.tmp"),
    };
    if staging.exists() {
        std::fs::remove_dir_all(&staging).with_context(|| format!("removing {}", staging.display()))?;
    }
    std::fs::create_dir_all(&staging).with_context(|| format!("creating {}", staging.display()))?;
    let drawn = match draw(&staging) {
        Ok(d) => d,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    std::fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    let moved = drawn
        .iter()
        .map(|from| {
            let to = dest.join(from.file_name().context("a staged file has a name")?);
            std::fs::rename(from, &to).with_context(|| format!("moving a file into {}", to.display()))?;
            Ok(to)
        })
        .collect::<Result<Vec<_>>>()?;
    std::fs::remove_dir(&staging).with_context(|| format!("removing {}", staging.display()))?;
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_numbers_are_not() {
        assert_eq!(neutralise("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(neutralise("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(neutralise("+86 123"), "'+86 123");
        assert_eq!(neutralise("-5"), "-5");
        assert_eq!(neutralise("-"), "-");
        assert_eq!(neutralise("-1+2"), "'-1+2");
        assert_eq!(neutralise("张三"), "张三");
    }

    #[test]
    fn cjk_takes_two_columns() {
        assert_eq!(width("abc"), 3);
        assert_eq!(width("党建"), 4);
        assert_eq!(pad("党", 4, false), "党  ");
        assert_eq!(pad("7", 3, true), "  7");
    }

    #[test]
    fn values_for_people() {
        assert_eq!(format_value(0.8766, "percent"), "87.7%");
        assert_eq!(format_value(72.34, "score"), "72.3");
        assert_eq!(format_value(1.234, "ratio"), "1.23");
    }

    #[test]
    fn atomic_write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("report.html");
        write_atomically(&p, b"one").unwrap();
        write_atomically(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
