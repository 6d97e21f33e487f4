//! The error codes that `Error` and `Rejected` messages carry, and their numbers on the wire.

/// Error codes carried by [`ErrorMsg`](super::ErrorMsg) and [`Rejected`](super::Rejected).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The peer is not speaking framewire (wrong magic, or an HTTP request on the native port).
    NotFramewire,
    /// The client's protocol version is not supported by the hub.
    UnsupportedVersion,
    /// A message could not be decoded.
    Malformed,
    /// A message or file exceeds a limit.
    TooLarge,
    /// The remote path is not allowed (absolute, `..`, control characters, ...).
    BadPath,
    /// A different file is already stored at the path and overwrite was not asked for.
    Exists,
    /// The received bytes do not hash to what the sender announced.
    HashMismatch,
    /// The hub's storage is full.
    StorageFull,
    /// The path or object does not exist.
    NotFound,
    /// Another upload to the same path is in progress.
    Busy,
    /// The token is missing or wrong.
    Unauthorized,
    /// The token lacks the permission for this request.
    Forbidden,
    /// The peer took too long.
    Timeout,
    /// The request breaks the protocol's sequence (e.g. data for a file that was never accepted).
    ProtocolViolation,
    /// The sender sent more or fewer bytes than it offered.
    SizeMismatch,
    /// The upload was cancelled by the client.
    Cancelled,
    /// The hub is shutting down.
    ShuttingDown,
    /// Something went wrong inside the hub.
    Internal,
    /// A code this library does not know (from a newer peer).
    Other(u16),
}

impl ErrorCode {
    /// The code's number on the wire.
    pub fn to_u16(self) -> u16 {
        match self {
            ErrorCode::NotFramewire => 1,
            ErrorCode::UnsupportedVersion => 2,
            ErrorCode::Malformed => 3,
            ErrorCode::TooLarge => 4,
            ErrorCode::BadPath => 5,
            ErrorCode::Exists => 6,
            ErrorCode::HashMismatch => 7,
            ErrorCode::StorageFull => 8,
            ErrorCode::NotFound => 9,
            ErrorCode::Busy => 10,
            ErrorCode::Unauthorized => 11,
            ErrorCode::Forbidden => 12,
            ErrorCode::Timeout => 13,
            ErrorCode::ProtocolViolation => 14,
            ErrorCode::SizeMismatch => 15,
            ErrorCode::Cancelled => 16,
            ErrorCode::ShuttingDown => 17,
            ErrorCode::Internal => 18,
            ErrorCode::Other(v) => v,
        }
    }

    /// The code for a number on the wire; unknown numbers become [`ErrorCode::Other`].
    pub fn from_u16(v: u16) -> Self {
        match v {
            1 => ErrorCode::NotFramewire,
            2 => ErrorCode::UnsupportedVersion,
            3 => ErrorCode::Malformed,
            4 => ErrorCode::TooLarge,
            5 => ErrorCode::BadPath,
            6 => ErrorCode::Exists,
            7 => ErrorCode::HashMismatch,
            8 => ErrorCode::StorageFull,
            9 => ErrorCode::NotFound,
            10 => ErrorCode::Busy,
            11 => ErrorCode::Unauthorized,
            12 => ErrorCode::Forbidden,
            13 => ErrorCode::Timeout,
            14 => ErrorCode::ProtocolViolation,
            15 => ErrorCode::SizeMismatch,
            16 => ErrorCode::Cancelled,
            17 => ErrorCode::ShuttingDown,
            18 => ErrorCode::Internal,
            other => ErrorCode::Other(other),
        }
    }

    /// A short lowercase name, for logs and metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::NotFramewire => "not_framewire",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::Malformed => "malformed",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::BadPath => "bad_path",
            ErrorCode::Exists => "exists",
            ErrorCode::HashMismatch => "hash_mismatch",
            ErrorCode::StorageFull => "storage_full",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Busy => "busy",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Timeout => "timeout",
            ErrorCode::ProtocolViolation => "protocol_violation",
            ErrorCode::SizeMismatch => "size_mismatch",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::Internal => "internal",
            ErrorCode::Other(_) => "other",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
