//! prism-operator: the Kubernetes operator for Prism.

use std::process::ExitCode;

use clap::Parser;
use prism_operator::cli;

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
