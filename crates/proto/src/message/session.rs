//! Opening and keeping a connection: the handshake (`Hello`, `Welcome`), connection errors, and
//! the ping/pong that checks liveness and measures the clock offset.

use super::{Body, ErrorCode};
use crate::wire::{Reader, Writer};
use crate::{DecodeError, MAGIC};

/// Client → hub, first message: who I am and which protocol version I speak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Highest protocol version the client speaks.
    pub version: u16,
    /// A name for logs and the index's `sender` column (e.g. `cam-kitchen`).
    pub name: String,
    /// Access token; empty when the hub needs none.
    pub token: String,
}

impl Body for Hello {
    const KIND: u16 = 0x0001;
    const NAME: &'static str = "Hello";

    fn encode(&self, w: &mut impl Writer) {
        w.slice(&MAGIC);
        w.u16(self.version);
        w.str16("name", &self.name);
        w.str16("token", &self.token);
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        if r.bytes(MAGIC.len())?[..] != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        Ok(Hello {
            version: r.u16()?,
            name: r.str16()?,
            token: r.str16()?,
        })
    }
}

/// Hub → client: the handshake succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    /// The protocol version used on this connection.
    pub version: u16,
    /// The hub's wall clock, microseconds since the Unix epoch, when it sent this.
    pub hub_time_us: i64,
    /// Largest payload the hub accepts in one message.
    pub max_payload: u32,
    /// Largest file the hub stores.
    pub max_file_size: u64,
    /// The chunk size the hub suggests for [`Data`](super::Data).
    pub chunk_size: u32,
    /// How many offers a client may have outstanding (offered, no `Stored`/`Rejected` yet).
    pub max_inflight: u16,
    /// The hub's name.
    pub hub_name: String,
}

impl Body for Welcome {
    const KIND: u16 = 0x0002;
    const NAME: &'static str = "Welcome";

    fn encode(&self, w: &mut impl Writer) {
        w.u16(self.version);
        w.i64(self.hub_time_us);
        w.u32(self.max_payload);
        w.u64(self.max_file_size);
        w.u32(self.chunk_size);
        w.u16(self.max_inflight);
        w.str16("hub_name", &self.hub_name);
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Welcome {
            version: r.u16()?,
            hub_time_us: r.i64()?,
            max_payload: r.u32()?,
            max_file_size: r.u64()?,
            chunk_size: r.u32()?,
            max_inflight: r.u16()?,
            hub_name: r.str16()?,
        })
    }
}

/// An error about the connection (`id` 0, after which the sender closes) or about request `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMsg {
    /// What went wrong.
    pub code: ErrorCode,
    /// The request, file or command id the error is about; 0 for the connection.
    pub id: u32,
    /// A human-readable explanation.
    pub message: String,
}

impl Body for ErrorMsg {
    const KIND: u16 = 0x0003;
    const NAME: &'static str = "Error";

    fn encode(&self, w: &mut impl Writer) {
        w.u16(self.code.to_u16());
        w.u32(self.id);
        w.slice(self.message.as_bytes());
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ErrorMsg {
            code: ErrorCode::from_u16(r.u16()?),
            id: r.u32()?,
            message: r.rest_str()?,
        })
    }
}

/// Liveness and clock probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ping {
    /// Echoed in the [`Pong`].
    pub nonce: u64,
    /// Sender's wall clock (µs since the Unix epoch) when sent.
    pub time_us: i64,
}

impl Body for Ping {
    const KIND: u16 = 0x0004;
    const NAME: &'static str = "Ping";

    fn encode(&self, w: &mut impl Writer) {
        w.u64(self.nonce);
        w.i64(self.time_us);
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Ping {
            nonce: r.u64()?,
            time_us: r.i64()?,
        })
    }
}

/// Answer to a [`Ping`]: with the ping's time and the answerer's clock, the pinger can estimate the
/// round trip and the offset between the two clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pong {
    /// The ping's nonce.
    pub nonce: u64,
    /// The ping's `time_us`, echoed.
    pub ping_time_us: i64,
    /// The answerer's wall clock (µs since the Unix epoch) when it answered.
    pub time_us: i64,
}

impl Body for Pong {
    const KIND: u16 = 0x0005;
    const NAME: &'static str = "Pong";

    fn encode(&self, w: &mut impl Writer) {
        w.u64(self.nonce);
        w.i64(self.ping_time_us);
        w.i64(self.time_us);
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Pong {
            nonce: r.u64()?,
            ping_time_us: r.i64()?,
            time_us: r.i64()?,
        })
    }
}
