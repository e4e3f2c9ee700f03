//! Exit codes (SPEC §1) and the error kinds that choose them.
//!
//! 0 success; 1 the run failed (nothing half-written remains); 2 bad usage or configuration;
//! 3 finished, but quarantined rows went over the configured ratio.

use std::process::ExitCode;

/// How a command that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Finished, but more rows were quarantined than allowed.
    TooManyQuarantined,
}

/// Bad usage or bad configuration: exit code 2. Callers match on it through `anyhow`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit code for an outcome.
pub fn code_of(outcome: Outcome) -> ExitCode {
    match outcome {
        Outcome::Success => ExitCode::SUCCESS,
        Outcome::TooManyQuarantined => ExitCode::from(3),
    }
}

/// The exit code for an error: 2 for usage and configuration errors, else 1.
pub fn code_of_error(err: &anyhow::Error) -> ExitCode {
    let usage = err.chain().any(|c| {
        c.is::<UsageError>()
            || c.is::<crate::query::NotReadOnly>()
            || c.is::<crate::indicators::CatalogueError>()
            || c.is::<crate::period::PeriodError>()
            || c.is::<crate::pipeline::ConfigError>()
    });
    if usage { ExitCode::from(2) } else { ExitCode::from(1) }
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
