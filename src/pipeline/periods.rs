//! Which periods a run covers: an explicit period, a range `2025Q1..2025Q4` (in order), or
//! `auto`, the last complete period of the pipeline's kind on a given day, so a cron line
//! needs no date arithmetic.

use chrono::{Datelike, NaiveDate};

use crate::period::{Period, PeriodError, PeriodKind};

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
}

fn kind_name(k: PeriodKind) -> &'static str {
    match k {
        PeriodKind::Month => "month",
        PeriodKind::Quarter => "quarter",
        PeriodKind::Year => "year",
    }
}

/// Resolve `spec` (`auto`, a period, or `FROM..TO`) for a pipeline of `kind`.
pub fn resolve(spec: &str, kind: PeriodKind, today: NaiveDate) -> Result<Vec<Period>, PeriodsError> {
    let spec = spec.trim();
    if spec == "auto" {
        return Ok(vec![last_complete(kind, today)]);
    }
    let check =
        |p: Period| if p.kind() == kind { Ok(p) } else { Err(PeriodsError::WrongKind(p.to_string(), kind_name(kind))) };
    if let Some((a, b)) = spec.split_once("..") {
        let (from, to) = (check(a.parse()?)?, check(b.parse()?)?);
        if to.start() < from.start() {
            return Err(PeriodsError::Backwards(spec.to_string()));
        }
        let mut out = vec![from];
        while *out.last().expect("non-empty") != to {
            let next = out.last().expect("non-empty").next();
            out.push(next);
        }
        return Ok(out);
    }
    Ok(vec![check(spec.parse()?)?])
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
    }
}
