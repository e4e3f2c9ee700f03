//! The `dangjian` binary: parse arguments, run the command, turn the result into an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = dangjian::cli::Cli::parse();
    dangjian::commands::init_logging(&cli);
    match dangjian::commands::run(cli) {
        Ok(outcome) => dangjian::exit::code_of(outcome),
        Err(e) if dangjian::exit::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            dangjian::exit::code_of_error(&e)
        }
    }
}
