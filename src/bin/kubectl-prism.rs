//! kubectl-prism: `kubectl prism tree|status|why|render|crds` once on the PATH.

use std::process::ExitCode;

use clap::Parser;
use prism_operator::plugin::{self, Plugin};

fn main() -> ExitCode {
    let plugin = Plugin::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(3);
        }
    };
    let result = runtime.block_on(plugin.run(&mut std::io::stdout().lock()));
    if let Err(error) = &result {
        eprintln!("error: {}", plugin::one_line(error));
    }
    plugin::exit_code(&result)
}
