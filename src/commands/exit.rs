//! Exit codes (SPEC §1), chosen here and nowhere else: domain modules return values and typed
//! errors, and this module maps them.
//!
//! 0 success; 1 the run failed (nothing half-written remains); 2 bad usage or configuration;
//! 3 finished, but quarantined rows went over the configured ratio.

use std::process::ExitCode;

use crate::pipeline::RunEnding;

/// How a command that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Finished, but more rows were quarantined than allowed.
    TooManyQuarantined,
}

/// Bad usage of a verb that the command layer itself finds: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

const FAILED: u8 = 1;
const USAGE: u8 = 2;
const OVER_QUARANTINE_RATIO: u8 = 3;

fn number(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Success => 0,
        Outcome::TooManyQuarantined => OVER_QUARANTINE_RATIO,
    }
}

/// The exit code for an outcome.
pub fn code_of(outcome: Outcome) -> ExitCode {
    ExitCode::from(number(outcome))
}

/// A pipeline run's ending as the outcome of `run`.
pub fn outcome_of(ending: RunEnding) -> Outcome {
    match ending {
        RunEnding::OverQuarantineRatio => Outcome::TooManyQuarantined,
        RunEnding::Success | RunEnding::Failed => Outcome::Success,
    }
}

/// The code a run's manifest records: the one the process ends with.
pub fn manifest_code(ending: RunEnding) -> i32 {
    i32::from(match ending {
        RunEnding::Failed => FAILED,
        e => number(outcome_of(e)),
    })
}

/// The exit code for an error: 2 for usage and configuration errors, else 1.
pub fn code_of_error(err: &anyhow::Error) -> ExitCode {
    let usage = err.chain().any(|c| {
        c.is::<UsageError>()
            || c.is::<crate::query::QueryError>()
            || c.is::<crate::indicators::CatalogueError>()
            || c.is::<crate::indicators::EngineError>()
            || c.is::<crate::model::PeriodError>()
            || c.is::<crate::pipeline::ConfigError>()
            || c.is::<crate::pipeline::PeriodsError>()
            || c.is::<crate::review::DrawError>()
            || c.is::<crate::ingest::aliases::AliasError>()
    });
    ExitCode::from(if usage { USAGE } else { FAILED })
}

/// A closed stdout (`dangjian query ... | head`) is how a reader says "enough", not an error.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    let pipe = |e: &std::io::Error| e.kind() == std::io::ErrorKind::BrokenPipe;
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(pipe)
            // The csv writer wraps I/O errors in its own type.
            || c.downcast_ref::<csv::Error>().is_some_and(|e| matches!(e.kind(), csv::ErrorKind::Io(io) if pipe(io)))
            || c.downcast_ref::<serde_json::Error>().is_some_and(|e| e.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_record_the_codes_of_spec_section_1() {
        assert_eq!(manifest_code(RunEnding::Success), 0);
        assert_eq!(manifest_code(RunEnding::Failed), 1);
        assert_eq!(manifest_code(RunEnding::OverQuarantineRatio), 3);
    }

    #[test]
    fn typed_domain_errors_are_usage_errors() {
        let e = anyhow::Error::from(crate::review::DrawError::NoSeed).context("drawing");
        assert_eq!(code_of_error(&e), ExitCode::from(USAGE));
        let e = anyhow::anyhow!("disk full");
        assert_eq!(code_of_error(&e), ExitCode::from(FAILED));
    }
}
