//! The `dangjian` binary: parse arguments, run the command, turn the result into an exit code.

use std::process::ExitCode;

use clap::Parser;

// mimalloc instead of glibc's allocator: polars allocates and frees large buffers at a high
// rate, and glibc hands each back to the kernel (page faults were a third of compute's time).
// It is built without transparent huge pages (`no_thp` in Cargo.toml): with them, every fresh
// 2 MiB region was zeroed on first touch and page zeroing was half of compute's CPU time.
// The measurements are in the README (Performance, Crates).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = dangjian::cli::Cli::parse();
    dangjian::commands::init_logging(&cli);
    match dangjian::commands::run(cli) {
        Ok(outcome) => dangjian::commands::exit::code_of(outcome),
        Err(e) if dangjian::commands::exit::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            dangjian::commands::exit::code_of_error(&e)
        }
    }
}
