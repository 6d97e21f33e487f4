//! framewire's wire protocol, without I/O.
//!
//! Every message is an 8-byte little-endian [`Header`] (`type: u16`, `flags: u16`, `len: u32`)
//! followed by `len` payload bytes laid out per type (see [`Message`] and `docs/PROTOCOL.md`).
//! [`decode`] takes bytes from a buffer that the caller fills from any transport and returns whole
//! messages; a partial message simply means "read more". Lengths are checked against the caller's
//! limit before anything is allocated for them. Encoding appends to any [`bytes::BufMut`].
//!
//! Nothing here reads a clock or a socket: times come in as arguments, so tests control them.

#![forbid(unsafe_code)]

mod clock;
mod fingerprint;
mod handshake;
mod message;
mod path;
mod wire;

use bytes::{Buf, BufMut, BytesMut};

pub use clock::{ClockEstimate, ClockSample, UtcTime};
pub use fingerprint::{format_fingerprint, parse_fingerprint};
pub use handshake::{check_preface, Preface, HTTP_REFUSAL};
pub use message::*;
pub use path::{PathError, RemotePath, MAX_PATH_LEN, MAX_SEGMENT_LEN};

/// The four bytes at the start of every [`Hello`] payload: ASCII `FWIR`.
pub const MAGIC: [u8; 4] = *b"FWIR";

/// The newest protocol version this crate speaks (sent in [`Hello`]).
///
/// Version 2 adds the hub's answers [`Registered`] and [`Subscribed`]; a hub sends them only on
/// connections that negotiated version 2, so version 1 peers never see a type they do not know.
pub const VERSION: u16 = 2;

/// The oldest protocol version this crate still speaks: a hub serves, and a client accepts, every
/// version from this one to [`VERSION`].
pub const MIN_VERSION: u16 = 1;

/// Size of the fixed header in front of every message.
pub const HEADER_LEN: usize = 8;

/// Default limit on one message's payload: 16 MiB (a 4K raw frame still fits in a few messages).
pub const DEFAULT_MAX_PAYLOAD: u32 = 16 << 20;

/// Default size of [`Data`] chunks: 1 MiB.
pub const DEFAULT_CHUNK_SIZE: u32 = 1 << 20;

/// Largest [`Hello`] payload a hub accepts before it has authenticated anyone.
pub const MAX_HELLO_PAYLOAD: u32 = 4096;

/// The fixed 8-byte header in front of every message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Message type, see [`kind`].
    pub kind: u16,
    /// Reserved, must be 0 in this version.
    pub flags: u16,
    /// Payload length in bytes (not counting the header).
    pub len: u32,
}

impl Header {
    /// Appends the 8 header bytes.
    pub fn encode(&self, dst: &mut impl BufMut) {
        dst.put_u16_le(self.kind);
        dst.put_u16_le(self.flags);
        dst.put_u32_le(self.len);
    }

    /// Reads a header from the first 8 bytes of `src`, or `None` if fewer are present.
    pub fn peek(src: &[u8]) -> Option<Header> {
        if src.len() < HEADER_LEN {
            return None;
        }
        let mut b = &src[..HEADER_LEN];
        Some(Header {
            kind: b.get_u16_le(),
            flags: b.get_u16_le(),
            len: b.get_u32_le(),
        })
    }
}

/// Why bytes could not be decoded into a message. After any of these the stream is out of sync
/// and the connection should be closed (after sending an [`ErrorMsg`] if possible).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The header announces more payload than the receiver allows.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Announced payload length.
        len: u32,
        /// The receiver's limit.
        max: u32,
    },
    /// The header's type is not one this version knows.
    #[error("unknown message type 0x{kind:04x}")]
    UnknownType {
        /// The type number.
        kind: u16,
    },
    /// The header's reserved flags are not zero.
    #[error("unsupported header flags 0x{flags:04x}")]
    UnsupportedFlags {
        /// The flags.
        flags: u16,
    },
    /// A `Hello` without the `FWIR` magic.
    #[error("bad magic: the peer is not a framewire client")]
    BadMagic,
    /// The payload ends before the message's fields do.
    #[error("{message} message is truncated")]
    Truncated {
        /// Message name.
        message: &'static str,
    },
    /// The payload has bytes after the message's last field.
    #[error("{message} message has {extra} unexpected trailing bytes")]
    TrailingBytes {
        /// Message name.
        message: &'static str,
        /// How many.
        extra: usize,
    },
    /// A text field is not UTF-8.
    #[error("{message} message contains invalid UTF-8")]
    InvalidUtf8 {
        /// Message name.
        message: &'static str,
    },
    /// A field holds a value outside its range.
    #[error("{message} message has an invalid {field}")]
    BadField {
        /// Message name.
        message: &'static str,
        /// Field name.
        field: &'static str,
    },
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A string field is longer than its `u16` length prefix can say.
    #[error("{field} is {len} bytes; at most 65535 fit")]
    StringTooLong {
        /// Field name.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// A list has more items than its count field can say.
    #[error("too many {field}")]
    TooManyItems {
        /// Field name.
        field: &'static str,
    },
    /// The payload is longer than a `u32` length can say.
    #[error("payload of {len} bytes is too large to encode")]
    PayloadTooLarge {
        /// Its length.
        len: usize,
    },
}

/// Decodes the next whole message from the front of `buf`, removing its bytes.
///
/// Returns `Ok(None)` when `buf` holds only part of a message: read more bytes into `buf` and call
/// again. Any split of the byte stream works, down to one byte at a time. When the header is
/// complete, `buf` reserves room for the rest of the message (which the caller's limit bounds).
///
/// # Errors
/// [`DecodeError`] for oversized lengths (checked against `max_payload` before any allocation),
/// unknown types, non-zero flags, or a payload that does not match its type.
pub fn decode(buf: &mut BytesMut, max_payload: u32) -> Result<Option<Message>, DecodeError> {
    let Some(header) = check_header(buf, max_payload)? else {
        return Ok(None);
    };
    let total = HEADER_LEN + header.len as usize;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    let mut frame = buf.split_to(total).freeze();
    frame.advance(HEADER_LEN);
    Message::decode_payload(header.kind, frame).map(Some)
}

/// Validates the header at the front of `buf` without consuming anything.
///
/// # Errors
/// As [`decode`], for the header's fields.
pub fn check_header(buf: &[u8], max_payload: u32) -> Result<Option<Header>, DecodeError> {
    let Some(header) = Header::peek(buf) else {
        return Ok(None);
    };
    if header.flags != 0 {
        return Err(DecodeError::UnsupportedFlags {
            flags: header.flags,
        });
    }
    if kind_name(header.kind).is_none() {
        return Err(DecodeError::UnknownType { kind: header.kind });
    }
    if header.len > max_payload {
        return Err(DecodeError::TooLarge {
            len: header.len,
            max: max_payload,
        });
    }
    Ok(Some(header))
}
