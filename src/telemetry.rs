//! Structured logs with tracing: human-readable text or one JSON object per line.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::args::LogFormat;

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter {filter:?}")]
    Filter { filter: String, source: tracing_subscriber::filter::ParseError },
    #[error("a global logger is already installed")]
    AlreadyInstalled(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The filter in effect: the flag, else `RUST_LOG`, else `info`.
pub fn filter_directives(flag: Option<&str>) -> String {
    flag.map(str::to_string)
        .or_else(|| std::env::var(EnvFilter::DEFAULT_ENV).ok())
        .filter(|f| !f.trim().is_empty())
        .unwrap_or_else(|| "info".to_string())
}

/// Installs the global subscriber, writing to standard error (standard output is for commands
/// such as `crds` whose output is piped).
pub fn init(format: LogFormat, level: Option<&str>) -> Result<(), TelemetryError> {
    let directives = filter_directives(level);
    let filter = EnvFilter::try_new(&directives)
        .map_err(|source| TelemetryError::Filter { filter: directives.clone(), source })?;
    // Colour only on a terminal: a log file or `kubectl logs` would show the escape codes.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        // Flattened so that log pipelines find `message`, `controller`, ... at the top level.
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
    };
    installed.map_err(TelemetryError::AlreadyInstalled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_over_the_default() {
        assert_eq!(filter_directives(Some("debug,kube=warn")), "debug,kube=warn");
    }

    #[test]
    fn a_bad_filter_is_reported_with_its_text() {
        let err = init(LogFormat::Text, Some("info,=[")).expect_err("invalid directive");
        assert!(err.to_string().contains("info,=["), "{err}");
    }
}
