//! Parsing one cell's text into a typed value: dates in the forms districts export, numbers
//! (full-width digits included), booleans in Chinese and English, assessment periods.
//!
//! Pure functions; each returns a message a clerk can act on when the text does not parse.

use chrono::NaiveDate;

/// Earliest and latest dates accepted: anything outside is a typing error, not history.
pub const MIN_DATE: (i32, u32, u32) = (2000, 1, 1);
pub const MAX_DATE: (i32, u32, u32) = (2099, 12, 31);

/// The longest text cell accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 500;

/// `str::trim`, answered without a Unicode search when the text starts and ends with a
/// printable ASCII character or a common Chinese character, as almost every cell does. Cells
/// are trimmed several times on their way (blank-row check, key, type), and `str::trim` was a
/// few per cent of ingest (1% for personal names alone).
pub fn trim(s: &str) -> &str {
    let b = s.as_bytes();
    // A three-byte character led by E4 to E9 is in U+4000..U+9FFF (CJK ideographs), where no
    // character is white space. Ideographic space (U+3000) is led by E3.
    let cjk = |lead: Option<&u8>| lead.is_some_and(|l| (0xE4..=0xE9).contains(l));
    let starts = b.first().is_some_and(u8::is_ascii_graphic) || cjk(b.first());
    let ends = b.last().is_some_and(u8::is_ascii_graphic) || (b.len() >= 3 && cjk(b.get(b.len() - 3)));
    if starts && ends { s } else { s.trim() }
}

/// Map full-width digits and signs (common in Chinese input methods) to ASCII.
fn half_width(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
            '．' => '.',
            '－' => '-',
            '＋' => '+',
            c => c,
        })
        .collect()
}

/// Why a date did not parse: its form, or its range.
#[derive(Debug, PartialEq, Eq)]
pub enum DateError {
    Form(String),
    Range(String),
}

/// Parse `2026-03-06`, `2026/3/6`, `2026.3.6`, `2026-3-6`, `2026年3月6日`, `20260306`, an
/// optional time after the date (Excel adds ` 0:00:00`), or an Excel serial day number (`46087`,
/// also when stored as text).
pub fn parse_date(s: &str) -> Result<NaiveDate, DateError> {
    if let Some(date) = ymd_date(trim(s).as_bytes()) {
        return in_range(date);
    }
    let t = half_width(s.trim());
    let form = || DateError::Form(format!("'{s}' is not a date (expected 2026-03-06, 2026/3/6 or 2026年3月6日)"));
    let date_part = t.split([' ', 'T']).next().unwrap_or("");
    let date = if date_part.len() == 8 && date_part.bytes().all(|b| b.is_ascii_digit()) {
        // `20260306`, as offices type a date into a text cell (no Excel serial has 8 digits).
        let n = |r: std::ops::Range<usize>| date_part[r].parse::<u32>().map_err(|_| form());
        let (y, m, d) = (n(0..4)? as i32, n(4..6)?, n(6..8)?);
        NaiveDate::from_ymd_opt(y, m, d).ok_or_else(|| DateError::Form(format!("'{s}' is not a calendar date")))?
    } else if !date_part.is_empty() && date_part.bytes().all(|b| b.is_ascii_digit()) {
        // An Excel serial date: days since 1899-12-30 (the 1900 system, leap-year bug included).
        let n: i64 = date_part.parse().map_err(|_| form())?;
        if !(20_000..=80_000).contains(&n) {
            return Err(form());
        }
        NaiveDate::from_ymd_opt(1899, 12, 30)
            .and_then(|d| d.checked_add_signed(chrono::Duration::days(n)))
            .ok_or_else(form)?
    } else {
        let cleaned = date_part.trim_end_matches('日');
        let parts: Vec<&str> = cleaned.split(['-', '/', '.', '年', '月']).collect();
        if parts.len() != 3 || parts.iter().any(|p| p.is_empty() || p.len() > 4) {
            return Err(form());
        }
        let y: i32 = parts[0].parse().map_err(|_| form())?;
        let m: u32 = parts[1].parse().map_err(|_| form())?;
        let d: u32 = parts[2].parse().map_err(|_| form())?;
        if parts[0].len() != 4 || parts[1].len() > 2 || parts[2].len() > 2 {
            return Err(form());
        }
        NaiveDate::from_ymd_opt(y, m, d).ok_or_else(|| DateError::Form(format!("'{s}' is not a calendar date")))?
    };
    in_range(date)
}

/// The common forms `2026-03-06` and `2026/3/6` (also with `.`), read without allocating: a
/// four-digit year, then month and day of one or two digits. Anything else, and an impossible
/// date, is `None` and goes the general way, which names the problem.
fn ymd_date(b: &[u8]) -> Option<NaiveDate> {
    let mut parts = [0u32; 3];
    let mut lens = [0usize; 3];
    let mut at = 0;
    for &c in b {
        match c {
            b'0'..=b'9' => {
                parts[at] = parts[at] * 10 + (c - b'0') as u32;
                lens[at] += 1;
                if lens[at] > 4 {
                    return None;
                }
            }
            b'-' | b'/' | b'.' if at < 2 => at += 1,
            _ => return None,
        }
    }
    if at != 2 || lens[0] != 4 || !(1..=2).contains(&lens[1]) || !(1..=2).contains(&lens[2]) {
        return None;
    }
    NaiveDate::from_ymd_opt(parts[0] as i32, parts[1], parts[2])
}

fn in_range(date: NaiveDate) -> Result<NaiveDate, DateError> {
    let lo = NaiveDate::from_ymd_opt(MIN_DATE.0, MIN_DATE.1, MIN_DATE.2).expect("valid");
    let hi = NaiveDate::from_ymd_opt(MAX_DATE.0, MAX_DATE.1, MAX_DATE.2).expect("valid");
    if date < lo || date > hi {
        return Err(DateError::Range(format!("date {date} is outside {lo} to {hi}")));
    }
    Ok(date)
}

/// Parse a decimal number; thousands separators are not accepted (they hide typing errors).
pub fn parse_number(s: &str) -> Result<f64, String> {
    let t = s.trim();
    // Full-width digits are only looked for when the text is not plain ASCII.
    let t: std::borrow::Cow<str> = if t.is_ascii() { t.into() } else { half_width(t).into() };
    let ok = !t.is_empty()
        && t.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+' || b == b'e' || b == b'E');
    match t.parse::<f64>() {
        Ok(v) if ok && v.is_finite() => Ok(v),
        _ => Err(format!("'{s}' is not a number")),
    }
}

/// Parse 是/否, true/false, yes/no, y/n, 1/0, 通过/不通过, 已审核/未审核.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "是" | "true" | "yes" | "y" | "1" | "通过" | "已审核" | "t" => Ok(true),
        "否" | "false" | "no" | "n" | "0" | "不通过" | "未审核" | "f" => Ok(false),
        _ => Err(format!("'{s}' is not yes/no (expected 是/否 or true/false)")),
    }
}

/// Parse an assessment period into its canonical label: `2026Q1`, `2026`, `2026年`,
/// `2026年第1季度`, `2026年一季度`.
pub fn parse_assessment_period(s: &str) -> Result<String, String> {
    let t = half_width(s.trim());
    let err = || format!("'{s}' is not an assessment period (expected a quarter 2026Q1 or a year 2026)");
    let year_of = |y: &str| -> Result<i32, String> {
        match y.parse::<i32>() {
            Ok(v) if y.len() == 4 && (2000..=2099).contains(&v) => Ok(v),
            _ => Err(err()),
        }
    };
    if let Some(rest) = t.strip_suffix("季度") {
        let (y, q) = rest.split_once('年').ok_or_else(err)?;
        let q = q.trim_start_matches('第');
        let quarter = match q {
            "1" | "一" => 1,
            "2" | "二" => 2,
            "3" | "三" => 3,
            "4" | "四" => 4,
            _ => return Err(err()),
        };
        return Ok(format!("{}Q{quarter}", year_of(y)?));
    }
    let t = t.trim_end_matches("年度").trim_end_matches('年');
    if let Some((y, q)) = t.split_once(['Q', 'q']) {
        let quarter: u32 = q.parse().map_err(|_| err())?;
        if q.len() != 1 || !(1..=4).contains(&quarter) {
            return Err(err());
        }
        return Ok(format!("{}Q{quarter}", year_of(y)?));
    }
    Ok(year_of(t)?.to_string())
}

/// Excel error values, as a cell holds them or as Excel writes them into a CSV.
pub fn is_excel_error(s: &str) -> bool {
    matches!(
        s.trim(),
        "#DIV/0!" | "#N/A" | "#NAME?" | "#NULL!" | "#NUM!" | "#REF!" | "#VALUE!" | "#DATA!" | "#SPILL!" | "#CALC!"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_trim_is_str_trim() {
        for s in [
            "",
            " ",
            "a",
            " a",
            "a ",
            "\u{3000}a\u{3000}",
            "a\u{3000}",
            "\ta\n",
            "ab",
            "a b",
            "张三",
            " 张三",
            "#",
            "a\u{a0}",
            "张三\u{3000}",
            "\u{3000}张三",
            "张三 ",
            "x\u{2003}",
            "é ",
            "a张",
            "张a",
        ] {
            assert_eq!(trim(s), s.trim(), "{s:?}");
        }
        // Every character as the first and the last of a cell, beside a Chinese one.
        for c in (0..0x11_0000).filter_map(char::from_u32) {
            for t in [format!("{c}张"), format!("张{c}"), format!("{c}")] {
                assert_eq!(trim(&t), t.trim(), "{c:?}");
            }
        }
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn dates_in_every_exported_form() {
        for s in [
            "2026-03-06",
            "2026/3/6",
            "2026.03.06",
            "2026年3月6日",
            "2026-03-06 00:00:00",
            "2026/3/6 0:00",
            "２０２６-０３-０６",
            "20260306",
            "2026-3-6",
            "2026.3.6",
            " 46087 ",
        ] {
            assert_eq!(parse_date(s), Ok(d(2026, 3, 6)), "{s}");
        }
        // 46087 days after 1899-12-30 is 2026-03-06 (Excel's serial for that day).
        assert_eq!(parse_date("46087"), Ok(d(2026, 3, 6)));
    }

    #[test]
    fn the_quick_form_agrees_with_the_general_one() {
        // Full-width digits take the general way (and are read as their half-width forms).
        let wide = |s: &str| -> String {
            s.chars().map(|c| c.to_digit(10).map_or(c, |d| char::from_u32(0xFF10 + d).expect("digit"))).collect()
        };
        for s in ["2026-03-06", "2026/3/6", "2026.3.06", "2026-3/6", "2026/12/31", "2026/1/1", "1999/12/31"] {
            assert_eq!(ymd_date(wide(s).as_bytes()), None);
            assert_eq!(ymd_date(s.as_bytes()).map(in_range), Some(parse_date(&wide(s))), "{s}");
        }
        // Not its to decide: the general way reads or refuses these, with its own message.
        for s in ["2026/2/30", "2026/13/1", "26/3/6", "2026/003/6", "2026//6", "2026/3/6/1", "2026/3", "+2026/3/6"] {
            assert_eq!(ymd_date(s.as_bytes()), None, "{s}");
        }
    }

    #[test]
    fn bad_dates_name_form_or_range() {
        for s in ["2026-02-30", "2026-13-01", "06/03/2026", "26-3-6", "yesterday", "", "2026-3", "20260230", "2026036"]
        {
            assert!(matches!(parse_date(s), Err(DateError::Form(_))), "{s}");
        }
        assert!(matches!(parse_date("1999-12-31"), Err(DateError::Range(_))));
        assert!(matches!(parse_date("2100-01-01"), Err(DateError::Range(_))));
    }

    #[test]
    fn numbers_and_booleans() {
        assert_eq!(parse_number(" -5 "), Ok(-5.0));
        assert_eq!(parse_number("８５．５"), Ok(85.5));
        for bad in ["1,000", "NaN", "inf", "", "5分", "--5"] {
            assert!(parse_number(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_bool("是"), Ok(true));
        assert_eq!(parse_bool("FALSE"), Ok(false));
        assert!(parse_bool("maybe").is_err());
    }

    #[test]
    fn assessment_periods() {
        assert_eq!(parse_assessment_period("2026Q1").unwrap(), "2026Q1");
        assert_eq!(parse_assessment_period("2026年第2季度").unwrap(), "2026Q2");
        assert_eq!(parse_assessment_period("2026年三季度").unwrap(), "2026Q3");
        assert_eq!(parse_assessment_period("2026年").unwrap(), "2026");
        assert_eq!(parse_assessment_period("2026").unwrap(), "2026");
        for bad in ["2026-03", "2026Q5", "Q1", "2026年第五季度"] {
            assert!(parse_assessment_period(bad).is_err(), "{bad}");
        }
    }
}
