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
    /// An address could not be bound (`what` names the door).
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        /// The door.
        what: &'static str,
        /// The address asked for.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A door's configuration cannot work (for example a tokenless door on a hub with tokens).
    #[error("{0}")]
    Door(String),
    /// A start-up task failed to run.
    #[error("start-up task failed: {0}")]
    Task(String),
}
