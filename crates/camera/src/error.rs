//! Why a camera could not run.

use std::time::Duration;

use framewire_client::ClientError;
use framewire_media::{SourceError, SourceSpec};

/// Why [`run`](crate::run) failed. Printed with its sources (`anyhow`'s `{:#}`), it reads as one
/// line: `cannot open source dir:x: no JPEG or PNG files in x`.
#[derive(Debug, thiserror::Error)]
pub enum CameraError {
    /// The source could not be opened.
    #[error("cannot open source {spec}")]
    OpenSource {
        /// The source.
        spec: SourceSpec,
        /// Why.
        #[source]
        error: SourceError,
    },
    /// The source failed for good while the camera ran.
    #[error("source {spec} failed")]
    SourceFailed {
        /// The source.
        spec: SourceSpec,
        /// Why.
        #[source]
        error: SourceError,
    },
    /// The hub could not be reached at start (later losses are ridden out).
    #[error(transparent)]
    Hub(#[from] ClientError),
    /// The hub did not acknowledge the last frame in time.
    #[error("the hub did not acknowledge the last frame within {:.2} s", .0.as_secs_f64())]
    LastFrameNotAcknowledged(Duration),
    /// One of the camera's threads panicked or was cancelled.
    #[error("{what} failed")]
    Thread {
        /// Which: `the source's thread` or `the capture thread`.
        what: &'static str,
        /// Why.
        #[source]
        error: tokio::task::JoinError,
    },
}
