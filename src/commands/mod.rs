//! One file per verb: each maps its checked arguments onto the domain modules and prints the
//! result (data on stdout, logs on stderr). `run` dispatches.

mod chart;
mod check;
mod compute;
mod draw;
pub mod exit;
mod ingest;
mod inspect;
mod query;
mod report;
mod run;
mod runs;
mod sample;
mod sql;

use anyhow::Result;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command, LogFormat};
use crate::review::appraisal::AppraisalRules;
use crate::review::problems::ProblemRules;
use exit::Outcome;

/// Logs go to stderr; `-v`/`-q` choose the level, `RUST_LOG` overrides both.
pub fn init_logging(cli: &Cli) {
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(format!("dangjian={level},warn")));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    let _ = match cli.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.without_time().try_init(),
    };
}

/// The catalogue named on the command line, or the built-in one.
pub(crate) fn catalogue(path: Option<&std::path::Path>) -> Result<crate::indicators::Catalogue> {
    Ok(match path {
        Some(p) => crate::indicators::Catalogue::load(p)?,
        None => crate::indicators::Catalogue::builtin(),
    })
}

/// The catalogue and the rules `chart` and `report` judge by: a pipeline's (checked as `run`
/// checks them: a bad one is exit 2), else the defaults; `--indicators` over the pipeline's.
pub(crate) fn review_rules(
    a: &crate::cli::OutArgs,
) -> Result<(crate::indicators::Catalogue, ProblemRules, AppraisalRules)> {
    match &a.pipeline {
        Some(path) => {
            let p = crate::pipeline::Pipeline::load(path)?;
            Ok((p.catalogue(a.indicators.as_deref())?, p.problems, p.appraisal))
        }
        None => Ok((catalogue(a.indicators.as_deref())?, ProblemRules::default(), AppraisalRules::default())),
    }
}

/// How `ingest` and `inspect` read files, with the aliases file loaded (a bad one is exit 2).
pub(crate) fn parse_options(a: &crate::cli::ReadArgs) -> Result<crate::ingest::parse::ParseOptions> {
    Ok(crate::ingest::parse::ParseOptions {
        kind: a.kind.map(|k| k.kind()),
        encoding: a.encoding.choice(),
        sheet: a.sheet.clone(),
        aliases: std::sync::Arc::new(match &a.aliases {
            Some(path) => crate::ingest::aliases::Aliases::load(path)?,
            None => Default::default(),
        }),
    })
}

/// Run the command the arguments name.
pub fn run(cli: Cli) -> Result<Outcome> {
    match cli.command {
        Command::Ingest(a) => ingest::run(a),
        Command::Compute(a) => compute::run(a),
        Command::Query(a) => query::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Check(a) => check::run(a),
        Command::Sample(a) => sample::run(a),
        Command::Chart(a) => chart::run(a),
        Command::Report(a) => report::run(a),
        Command::Draw(a) => draw::run(a),
        Command::Run(a) => run::run(a),
        Command::Runs(a) => runs::run(a),
        Command::Sql(a) => sql::run(a),
    }
}
