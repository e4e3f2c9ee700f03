//! Which periods a run covers: an explicit period, a range `2025Q1..2025Q4` (in order), or
//! `auto`, the last complete period of the pipeline's kind on a given day, so a cron line
//! needs no date arithmetic.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};

use crate::model::period::{Period, PeriodError, PeriodKind};

/// The last complete period of `kind` on `today`.
pub fn last_complete(kind: PeriodKind, today: NaiveDate) -> Period {
    match kind {
        PeriodKind::Month => Period::month_of(today).previous(),
        PeriodKind::Quarter => Period::quarter_of(today).previous(),
        PeriodKind::Year => Period::Year { year: today.year() - 1 },
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PeriodsError {
    #[error(transparent)]
    Period(#[from] PeriodError),
    #[error("{0} is not a {1}, the kind of this pipeline")]
    WrongKind(String, &'static str),
    #[error("the range {0} runs backwards")]
    Backwards(String),
    #[error("the range {0} mixes kinds of period; give two months, two quarters or two years")]
    MixedRange(String),
}

fn kind_name(k: PeriodKind) -> &'static str {
    match k {
        PeriodKind::Month => "month",
        PeriodKind::Quarter => "quarter",
        PeriodKind::Year => "year",
    }
}

/// The periods a run is asked for, parsed from `--period` or a pipeline's `period` before any
/// work starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodSpec {
    /// The last complete period of the pipeline's kind.
    Auto,
    One(Period),
    /// From the first to the second, both included, in order.
    Range(Period, Period),
}

impl FromStr for PeriodSpec {
    type Err = PeriodsError;

    fn from_str(s: &str) -> Result<PeriodSpec, PeriodsError> {
        let s = s.trim();
        if s == "auto" {
            return Ok(PeriodSpec::Auto);
        }
        let Some((a, b)) = s.split_once("..") else { return Ok(PeriodSpec::One(s.parse()?)) };
        let (from, to): (Period, Period) = (a.parse()?, b.parse()?);
        if from.kind() != to.kind() {
            return Err(PeriodsError::MixedRange(s.to_string()));
        }
        if to.start() < from.start() {
            return Err(PeriodsError::Backwards(s.to_string()));
        }
        Ok(PeriodSpec::Range(from, to))
    }
}

impl fmt::Display for PeriodSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeriodSpec::Auto => f.write_str("auto"),
            PeriodSpec::One(p) => write!(f, "{p}"),
            PeriodSpec::Range(a, b) => write!(f, "{a}..{b}"),
        }
    }
}

/// The periods `spec` covers for a pipeline of `kind`.
pub fn resolve(spec: PeriodSpec, kind: PeriodKind, today: NaiveDate) -> Result<Vec<Period>, PeriodsError> {
    let check =
        |p: Period| if p.kind() == kind { Ok(p) } else { Err(PeriodsError::WrongKind(p.to_string(), kind_name(kind))) };
    match spec {
        PeriodSpec::Auto => Ok(vec![last_complete(kind, today)]),
        PeriodSpec::One(p) => Ok(vec![check(p)?]),
        PeriodSpec::Range(from, to) => {
            let (from, to) = (check(from)?, check(to)?);
            let mut out = vec![from];
            while *out.last().expect("non-empty") != to {
                let next = out.last().expect("non-empty").next();
                out.push(next);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn p(s: &str) -> Period {
        s.parse().unwrap()
    }

    /// Parse then resolve, as a run does.
    fn resolve(spec: &str, kind: PeriodKind, today: NaiveDate) -> Result<Vec<Period>, PeriodsError> {
        super::resolve(spec.parse()?, kind, today)
    }

    #[test]
    fn auto_is_the_last_complete_period() {
        assert_eq!(resolve("auto", PeriodKind::Month, d("2026-04-01")).unwrap(), vec![p("2026-03")]);
        assert_eq!(resolve("auto", PeriodKind::Month, d("2026-01-15")).unwrap(), vec![p("2025-12")]);
        assert_eq!(resolve("auto", PeriodKind::Quarter, d("2026-04-01")).unwrap(), vec![p("2026Q1")]);
        assert_eq!(resolve("auto", PeriodKind::Quarter, d("2026-03-31")).unwrap(), vec![p("2025Q4")]);
        assert_eq!(resolve("auto", PeriodKind::Quarter, d("2026-01-01")).unwrap(), vec![p("2025Q4")]);
        assert_eq!(resolve("auto", PeriodKind::Year, d("2026-01-01")).unwrap(), vec![p("2025")]);
        assert_eq!(resolve("auto", PeriodKind::Year, d("2026-12-31")).unwrap(), vec![p("2025")]);
    }

    #[test]
    fn ranges_backfill_in_order_across_years() {
        assert_eq!(
            resolve("2025Q3..2026Q2", PeriodKind::Quarter, d("2026-11-26")).unwrap(),
            ["2025Q3", "2025Q4", "2026Q1", "2026Q2"].map(p).to_vec()
        );
        assert_eq!(resolve("2025-11..2026-02", PeriodKind::Month, d("2026-11-26")).unwrap().len(), 4);
        assert!(matches!(
            resolve("2026Q2..2026Q1", PeriodKind::Quarter, d("2026-11-26")),
            Err(PeriodsError::Backwards(_))
        ));
        assert!(matches!(resolve("2026-03", PeriodKind::Quarter, d("2026-11-26")), Err(PeriodsError::WrongKind(..))));
        assert!(matches!(
            resolve("2026-01..2026Q2", PeriodKind::Quarter, d("2026-11-26")),
            Err(PeriodsError::MixedRange(_))
        ));
    }

    #[test]
    fn specs_print_as_they_are_written() {
        for s in ["auto", "2026Q1", "2025-11..2026-02"] {
            assert_eq!(s.parse::<PeriodSpec>().unwrap().to_string(), s);
        }
        assert!(matches!("2026Q5".parse::<PeriodSpec>(), Err(PeriodsError::Period(_))));
    }
}
