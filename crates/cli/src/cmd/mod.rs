//! One file per subcommand, each with its clap `Args` and an async `run`.

pub mod command;
pub mod demo;
pub mod events;
pub mod get;
pub mod ls;
pub mod msg;
pub mod ping;
pub mod rm;
pub mod send;
pub mod serve;
pub mod stream;
pub mod watch;

/// An argument clap cannot check (an invalid `--to` folder, say): exits with code 2 like any
/// other usage error.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}
