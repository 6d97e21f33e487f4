//! What can go wrong talking to a hub.

use std::path::PathBuf;
use std::time::Duration;

use framewire_proto::{DecodeError, EncodeError, ErrorCode, PathError};

/// Why a client operation failed.
///
/// Each message is complete on its own (it includes the underlying OS or decode error), so the
/// variants do not chain a `source`: printing with `{:#}` through `anyhow` shows it once.
///
/// Per-file upload failures do not show up here: [`crate::Client::send_files`] reports them in
/// its [`crate::SendReport`] so one bad file does not hide what happened to the others.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The TCP connection could not be opened (refused, unreachable, bad address...).
    #[error("cannot reach hub at {addr}: {}", io_reason(error))]
    Connect {
        /// The address dialled.
        addr: String,
        /// What the operating system said.
        error: std::io::Error,
    },
    /// The TCP connection was not established within the connect timeout.
    #[error("cannot reach hub at {addr}: no answer within {timeout:?}")]
    ConnectTimeout {
        /// The address dialled.
        addr: String,
        /// The connect timeout.
        timeout: Duration,
    },
    /// The peer answered with bytes that are not framewire (a web server, say).
    #[error("the server at {addr} is not a framewire hub ({reason})")]
    NotAHub {
        /// The address dialled.
        addr: String,
        /// What was wrong with its answer.
        reason: String,
    },
    /// The TLS settings cannot be used (an unreadable CA file, say).
    #[error("TLS settings: {0}")]
    TlsSetup(String),
    /// A TLS client reached a port that does not speak TLS.
    #[error("the hub at {addr} did not answer TLS (is it a plain port? drop --tls)")]
    NotTls {
        /// The address dialled.
        addr: String,
    },
    /// The hub's certificate is not the pinned one: someone else may be answering.
    #[error("the hub at {addr} presented a certificate with SHA-256 {got}, but the expected fingerprint is {expected}: refusing to connect (if the hub's certificate was replaced on purpose, use the fingerprint it prints at start-up)")]
    FingerprintMismatch {
        /// The address dialled.
        addr: String,
        /// The pinned fingerprint (`AB:CD:...`).
        expected: String,
        /// The fingerprint of the certificate presented.
        got: String,
    },
    /// The TLS handshake failed for another reason (a certificate that does not verify, say).
    #[error("TLS with the hub at {addr} failed: {reason}")]
    Tls {
        /// The address dialled.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// An expected answer did not arrive in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: &'static str,
        /// How long we waited.
        after: Duration,
    },
    /// The hub answered with an error (for the connection or for this request).
    #[error("hub error ({code}): {message}")]
    Hub {
        /// The hub's error code.
        code: ErrorCode,
        /// The hub's explanation.
        message: String,
    },
    /// The connection ended (the hub closed it, or it failed earlier); reconnect to go on.
    #[error("connection to the hub lost: {0}")]
    ConnectionLost(String),
    /// Reading from or writing to the socket failed.
    #[error("connection to the hub failed: {}", io_reason(.0))]
    Io(std::io::Error),
    /// The hub sent something this client cannot decode.
    #[error("undecodable message from the hub: {0}")]
    Decode(DecodeError),
    /// A request could not be encoded (a string longer than the protocol allows).
    #[error("request cannot be encoded: {0}")]
    Encode(EncodeError),
    /// The hub sent a message that breaks the protocol's sequence.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A remote path breaks the [`framewire_proto::RemotePath`] rules.
    #[error("invalid remote path {path:?}: {error}")]
    BadPath {
        /// The path given.
        path: String,
        /// The rule it breaks.
        error: PathError,
    },
    /// A local file or folder could not be read or written.
    #[error("{}: {}", path.display(), io_reason(error))]
    Local {
        /// The local path.
        path: PathBuf,
        /// What the operating system said.
        error: std::io::Error,
    },
    /// A file was not stored (see [`crate::FailedFile`] for the same in a report).
    #[error("{remote} was not stored: {reason}")]
    Rejected {
        /// Where it was to be stored.
        remote: String,
        /// The hub's code, if the hub refused it.
        code: Option<ErrorCode>,
        /// Why.
        reason: String,
    },
    /// A downloaded file does not have the size or hash the hub announced; it was deleted.
    #[error("downloaded {path:?} does not match what the hub announced: {detail}")]
    Corrupt {
        /// The remote path.
        path: String,
        /// Which check failed.
        detail: String,
    },
}

impl ClientError {
    /// Whether the connection is unusable after this error (every later request would fail too).
    pub fn ends_connection(&self) -> bool {
        matches!(
            self,
            ClientError::ConnectionLost(_)
                | ClientError::Io(_)
                | ClientError::Decode(_)
                | ClientError::Protocol(_)
        )
    }
}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        ClientError::Io(e)
    }
}

impl From<DecodeError> for ClientError {
    fn from(e: DecodeError) -> Self {
        ClientError::Decode(e)
    }
}

impl From<EncodeError> for ClientError {
    fn from(e: EncodeError) -> Self {
        ClientError::Encode(e)
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// The OS error without the "(os error N)" suffix, lower-cased like the rest of our messages.
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = match s.find(" (os error") {
        Some(i) => s[..i].to_owned(),
        None => s,
    };
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => s,
    }
}
