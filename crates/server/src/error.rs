//! Errors that stop the hub from starting or running (per-connection trouble never does).

use std::path::PathBuf;

/// Why the hub could not start or keep serving.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data folder (or something in it) could not be created or read.
    #[error("data folder {0}: {1}")]
    DataDir(PathBuf, #[source] std::io::Error),
    /// The SQLite index could not be opened or updated.
    #[error("index: {0}")]
    Index(#[source] rusqlite::Error),
    /// Accepting connections failed.
    #[error("listener: {0}")]
    Listen(#[source] std::io::Error),
    /// A start-up task failed to run.
    #[error("start-up task failed: {0}")]
    Task(String),
}
