//! prism-operator: the Kubernetes operator for Prism.

use std::process::ExitCode;

use clap::Parser;
use prism_operator::cli;

/// jemalloc rather than glibc's malloc: the operator makes many small, short-lived allocations
/// from several threads (JSON of every watch event and apply), and glibc's per-thread arenas keep
/// the freed memory they fragment; jemalloc hands it back to the system (a background thread
/// purges what stayed unused for a while). See the README's memory figures.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.command.execute() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}
