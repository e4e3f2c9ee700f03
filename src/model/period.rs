//! Reporting periods: a month (`2026-03`), a quarter (`2026Q1`) or a year (`2026`).
//!
//! Owns parsing, formatting, the months a period covers, the previous period of the same kind
//! and which period a date or an assessment label belongs to. It knows nothing of the warehouse.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};

/// The kind of a period; the previous period of a period is of the same kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeriodKind {
    Month,
    Quarter,
    Year,
}

/// A calendar period. Ordering is by start month, then by length (month < quarter < year).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    Month { year: i32, month: u32 },
    Quarter { year: i32, quarter: u32 },
    Year { year: i32 },
}

impl Ord for Period {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.start(), self.kind()).cmp(&(other.start(), other.kind()))
    }
}

impl PartialOrd for Period {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("'{0}' is not a period: expected a month (2026-03), a quarter (2026Q1) or a year (2026)")]
pub struct PeriodError(pub String);

impl Period {
    pub fn kind(&self) -> PeriodKind {
        match self {
            Period::Month { .. } => PeriodKind::Month,
            Period::Quarter { .. } => PeriodKind::Quarter,
            Period::Year { .. } => PeriodKind::Year,
        }
    }

    pub fn year(&self) -> i32 {
        match *self {
            Period::Month { year, .. } | Period::Quarter { year, .. } | Period::Year { year } => year,
        }
    }

    /// The (year, month) pairs the period covers, in order.
    pub fn months(&self) -> Vec<(i32, u32)> {
        match *self {
            Period::Month { year, month } => vec![(year, month)],
            Period::Quarter { year, quarter } => (1..=3).map(|i| (year, (quarter - 1) * 3 + i)).collect(),
            Period::Year { year } => (1..=12).map(|m| (year, m)).collect(),
        }
    }

    pub fn month_count(&self) -> u32 {
        match self {
            Period::Month { .. } => 1,
            Period::Quarter { .. } => 3,
            Period::Year { .. } => 12,
        }
    }

    /// First day of the period.
    pub fn start(&self) -> NaiveDate {
        let (y, m) = self.months()[0];
        NaiveDate::from_ymd_opt(y, m, 1).expect("valid first day")
    }

    /// First day after the period (exclusive end).
    pub fn end_exclusive(&self) -> NaiveDate {
        self.next().start()
    }

    /// The period's last day: the unit tree of this day is the period's tree (SPEC §2).
    pub fn last_day(&self) -> NaiveDate {
        self.end_exclusive().pred_opt().expect("a day before the next period")
    }

    pub fn contains(&self, date: NaiveDate) -> bool {
        date >= self.start() && date < self.end_exclusive()
    }

    /// The period of the same kind just before this one.
    pub fn previous(&self) -> Period {
        match *self {
            Period::Month { year, month: 1 } => Period::Month { year: year - 1, month: 12 },
            Period::Month { year, month } => Period::Month { year, month: month - 1 },
            Period::Quarter { year, quarter: 1 } => Period::Quarter { year: year - 1, quarter: 4 },
            Period::Quarter { year, quarter } => Period::Quarter { year, quarter: quarter - 1 },
            Period::Year { year } => Period::Year { year: year - 1 },
        }
    }

    /// The period of the same kind just after this one.
    pub fn next(&self) -> Period {
        match *self {
            Period::Month { year, month: 12 } => Period::Month { year: year + 1, month: 1 },
            Period::Month { year, month } => Period::Month { year, month: month + 1 },
            Period::Quarter { year, quarter: 4 } => Period::Quarter { year: year + 1, quarter: 1 },
            Period::Quarter { year, quarter } => Period::Quarter { year, quarter: quarter + 1 },
            Period::Year { year } => Period::Year { year: year + 1 },
        }
    }

    /// The assessment period labels whose rows belong to this period: a quarter takes its own
    /// rows; a year takes its four quarters and its annual rows; a month has no assessment.
    pub fn assessment_labels(&self) -> Vec<String> {
        match *self {
            Period::Month { .. } => Vec::new(),
            Period::Quarter { .. } => vec![self.to_string()],
            Period::Year { year } => {
                let mut v: Vec<String> = (1..=4).map(|q| format!("{year}Q{q}")).collect();
                v.push(year.to_string());
                v
            }
        }
    }

    /// The month period a date falls in.
    pub fn month_of(date: NaiveDate) -> Period {
        Period::Month { year: date.year(), month: date.month() }
    }

    /// The quarter a date falls in.
    pub fn quarter_of(date: NaiveDate) -> Period {
        Period::Quarter { year: date.year(), quarter: (date.month() - 1) / 3 + 1 }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Month { year, month } => write!(f, "{year:04}-{month:02}"),
            Period::Quarter { year, quarter } => write!(f, "{year:04}Q{quarter}"),
            Period::Year { year } => write!(f, "{year:04}"),
        }
    }
}

impl FromStr for Period {
    type Err = PeriodError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let err = || PeriodError(s.to_string());
        let year = |y: &str| -> Result<i32, PeriodError> {
            if y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit()) {
                let v: i32 = y.parse().map_err(|_| err())?;
                if (1900..=2999).contains(&v) {
                    return Ok(v);
                }
            }
            Err(err())
        };
        if let Some((y, q)) = t.split_once(['Q', 'q']) {
            let quarter: u32 = q.parse().map_err(|_| err())?;
            if !(1..=4).contains(&quarter) || q.len() != 1 {
                return Err(err());
            }
            return Ok(Period::Quarter { year: year(y)?, quarter });
        }
        if let Some((y, m)) = t.split_once('-') {
            let month: u32 = m.parse().map_err(|_| err())?;
            if !(1..=12).contains(&month) || m.len() != 2 {
                return Err(err());
            }
            return Ok(Period::Month { year: year(y)?, month });
        }
        Ok(Period::Year { year: year(t)? })
    }
}

impl serde::Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Period {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Days from 0001-01-01 to 1970-01-01: a DATE column stores days since the latter.
const EPOCH_DAYS_CE: i32 = 719_163;

/// A date as a DATE column stores it: days since 1970-01-01.
pub fn day_number(date: NaiveDate) -> i32 {
    chrono::Datelike::num_days_from_ce(&date) - EPOCH_DAYS_CE
}

/// The date a DATE column's day number stands for.
pub fn date_of_day(days: i32) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(days + EPOCH_DAYS_CE).unwrap_or(NaiveDate::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_are_days_since_1970() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(day_number(d(1970, 1, 1)), 0);
        // 2026-03-06: 56 years of 365 days, 14 leap days (1972..2024), then 31 + 28 + 5.
        assert_eq!(day_number(d(2026, 3, 6)), 56 * 365 + 14 + 31 + 28 + 5);
        assert_eq!(date_of_day(day_number(d(2026, 3, 6))), d(2026, 3, 6));
        assert_eq!(date_of_day(-1), d(1969, 12, 31));
    }

    fn p(s: &str) -> Period {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_formats_all_kinds() {
        assert_eq!(p("2026-03"), Period::Month { year: 2026, month: 3 });
        assert_eq!(p("2026Q1"), Period::Quarter { year: 2026, quarter: 1 });
        assert_eq!(p("2026q4").to_string(), "2026Q4");
        assert_eq!(p("2026"), Period::Year { year: 2026 });
        for s in ["2026-03", "2026Q2", "2026"] {
            assert_eq!(p(s).to_string(), s);
        }
    }

    #[test]
    fn rejects_bad_periods() {
        for s in ["", "2026-13", "2026-3", "2026Q5", "2026Q", "26", "abcd", "2026-00", "2026Q12"] {
            assert!(s.parse::<Period>().is_err(), "{s} should be rejected");
        }
    }

    #[test]
    fn previous_crosses_year_boundaries() {
        assert_eq!(p("2026-01").previous(), p("2025-12"));
        assert_eq!(p("2026Q1").previous(), p("2025Q4"));
        assert_eq!(p("2026").previous(), p("2025"));
        assert_eq!(p("2025-12").next(), p("2026-01"));
    }

    #[test]
    fn months_and_bounds() {
        assert_eq!(p("2026Q2").months(), vec![(2026, 4), (2026, 5), (2026, 6)]);
        assert_eq!(p("2026").months().len(), 12);
        let q = p("2026Q1");
        assert!(q.contains(NaiveDate::from_ymd_opt(2026, 3, 31).unwrap()));
        assert!(!q.contains(NaiveDate::from_ymd_opt(2026, 4, 1).unwrap()));
        assert_eq!(p("2026").assessment_labels(), vec!["2026Q1", "2026Q2", "2026Q3", "2026Q4", "2026"]);
        assert!(p("2026-03").assessment_labels().is_empty());
    }
}
