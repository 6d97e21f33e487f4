//! Log output: tracing to stderr, filtered by `-v`/`-q` or `RUST_LOG`, written through
//! tracing-indicatif so log lines never tear a progress bar.

use std::io::IsTerminal;

use tracing_indicatif::filter::{hide_indicatif_span_fields, IndicatifFilter};
use tracing_indicatif::IndicatifLayer;
use tracing_subscriber::fmt::format::DefaultFields;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Whether progress bars may be drawn.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// stderr is a terminal and `--quiet` was not given.
    pub bars: bool,
}

/// Installs the global subscriber. A hub logs at `info` by default (it is a service); client
/// commands only warn, since their output is the result.
pub fn init(verbose: u8, quiet: bool, serving: bool) -> Progress {
    let level = match (quiet, verbose, serving) {
        (true, _, _) => "error",
        (false, 0, true) => "info",
        (false, 0, false) => "warn",
        (false, 1, _) => "info",
        (false, 2, _) => "debug",
        _ => "trace",
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(s) if !s.is_empty() => EnvFilter::new(s),
        _ => EnvFilter::new(level),
    };
    let indicatif = IndicatifLayer::new()
        .with_span_field_formatter(hide_indicatif_span_fields(DefaultFields::new()));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(indicatif.get_stderr_writer())
        .with_target(verbose > 1)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(filter);
    // Only spans that ask for a bar (field `indicatif.pb_show`) get one.
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(indicatif.with_filter(IndicatifFilter::new(false)))
        .try_init();
    Progress {
        bars: !quiet && std::io::stderr().is_terminal(),
    }
}
