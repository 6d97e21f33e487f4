//! Live video: frames, and the subscribe/publish settings and acknowledgements that pace them.

use bytes::{BufMut, Bytes};

use super::Body;
use crate::wire::{Measure, Reader, Writer};
use crate::{DecodeError, EncodeError, Header};

/// Image formats carried by a [`Frame`].
pub mod frame_format {
    /// JPEG (baseline or progressive).
    pub const JPEG: u8 = 1;
    /// PNG.
    pub const PNG: u8 = 2;
    /// Raw 8-bit RGB, `width * height * 3` bytes, rows top to bottom.
    pub const RGB8: u8 = 3;
    /// Raw 8-bit grey, `width * height` bytes.
    pub const GRAY8: u8 = 4;
}

/// One live video frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Stream name.
    pub stream: String,
    /// Publisher's frame number (gaps mean skipped frames).
    pub seq: u64,
    /// Capture time on the **hub's** clock, µs since the Unix epoch: the publisher converts its
    /// capture time with the clock offset it measured by Ping/Pong, so ages compare across machines.
    pub capture_us: i64,
    /// [`frame_format`].
    pub format: u8,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Encoded image, the rest of the payload.
    pub payload: Bytes,
}

impl Frame {
    /// The fields before the image.
    fn encode_head(&self, w: &mut impl Writer) {
        w.str16("stream", &self.stream);
        w.u64(self.seq);
        w.i64(self.capture_us);
        w.u8(self.format);
        w.u32(self.width);
        w.u32(self.height);
    }
}

impl Body for Frame {
    const KIND: u16 = 0x0040;
    const NAME: &'static str = "Frame";

    fn encode(&self, w: &mut impl Writer) {
        self.encode_head(w);
        w.slice(&self.payload);
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Frame {
            stream: r.str16()?,
            seq: r.u64()?,
            capture_us: r.i64()?,
            format: r.u8()?,
            width: r.u32()?,
            height: r.u32()?,
            payload: r.rest(),
        })
    }
}

/// Writes the header and the fields of a [`Frame`] but not its payload, so a sender can hand the
/// (shared, reference-counted) payload to the socket separately instead of copying it.
///
/// # Errors
/// [`EncodeError`] if the stream name is too long or the payload is longer than 4 GiB. Nothing
/// is written in that case.
pub fn encode_frame_head(frame: &Frame, dst: &mut impl BufMut) -> Result<(), EncodeError> {
    // Measuring counts the payload's length without touching its bytes.
    let len = Measure::of(|w| frame.encode(w)).checked_len()?;
    Header {
        kind: Frame::KIND,
        flags: 0,
        len,
    }
    .encode(dst);
    frame.encode_head(dst);
    Ok(())
}

/// Send me stream `stream`'s frames, newest first, with at most `window` frames unacknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Stream name.
    pub stream: String,
    /// Frames the hub may send before a [`FrameAck`]; 0 means the hub's default (1).
    pub window: u16,
}

impl Body for Subscribe {
    const KIND: u16 = 0x0041;
    const NAME: &'static str = "Subscribe";

    fn encode(&self, w: &mut impl Writer) {
        w.str16("stream", &self.stream);
        w.u16(self.window);
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Subscribe {
            stream: r.str16()?,
            window: r.u16()?,
        })
    }
}

/// The hub's answer to [`Subscribe`] (protocol version 2): the subscription is in effect, with
/// the window the hub grants. It comes before the stream's first [`Frame`] on this connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribed {
    /// Stream name.
    pub stream: String,
    /// Frames the hub sends before waiting for a [`FrameAck`]: the window granted, at least 1.
    pub window: u16,
}

impl Body for Subscribed {
    const KIND: u16 = 0x0045;
    const NAME: &'static str = "Subscribed";

    fn encode(&self, w: &mut impl Writer) {
        w.str16("stream", &self.stream);
        w.u16(self.window);
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Subscribed {
            stream: r.str16()?,
            window: r.u16()?,
        })
    }
}

/// Stop sending stream `stream`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Stream name.
    pub stream: String,
}

impl Body for Unsubscribe {
    const KIND: u16 = 0x0042;
    const NAME: &'static str = "Unsubscribe";

    fn encode(&self, w: &mut impl Writer) {
        w.str16("stream", &self.stream);
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Unsubscribe { stream: r.str16()? })
    }
}

/// Frame `seq` of `stream` was consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameAck {
    /// Stream name.
    pub stream: String,
    /// The frame's sequence number.
    pub seq: u64,
}

impl Body for FrameAck {
    const KIND: u16 = 0x0043;
    const NAME: &'static str = "FrameAck";

    fn encode(&self, w: &mut impl Writer) {
        w.str16("stream", &self.stream);
        w.u64(self.seq);
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(FrameAck {
            stream: r.str16()?,
            seq: r.u64()?,
        })
    }
}

/// This connection publishes `stream`: the hub drops frames older than `max_latency_ms` on arrival
/// (0: no limit). Sending [`Frame`]s without it publishes with no limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// Stream name.
    pub stream: String,
    /// Frames whose age (hub clock minus `capture_us`) exceeds this on arrival are dropped.
    pub max_latency_ms: u32,
}

impl Body for Publish {
    const KIND: u16 = 0x0044;
    const NAME: &'static str = "Publish";

    fn encode(&self, w: &mut impl Writer) {
        w.str16("stream", &self.stream);
        w.u32(self.max_latency_ms);
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Publish {
            stream: r.str16()?,
            max_latency_ms: r.u32()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Message, HEADER_LEN};

    fn frame(stream: String) -> Frame {
        Frame {
            stream,
            seq: 5,
            capture_us: -1,
            format: frame_format::RGB8,
            width: 2,
            height: 1,
            payload: Bytes::from_static(&[1, 2, 3, 4, 5, 6]),
        }
    }

    #[test]
    fn frame_head_plus_payload_is_the_whole_message() {
        let f = frame("cam".into());
        let mut v = Vec::new();
        encode_frame_head(&f, &mut v).unwrap();
        let head_len = v.len();
        v.extend_from_slice(&f.payload);
        let whole = Message::from(f.clone()).to_bytes().unwrap();
        assert_eq!(v, whole.to_vec());
        assert_eq!(head_len, whole.len() - f.payload.len());
        assert_eq!(
            Header::peek(&v).unwrap().len as usize,
            whole.len() - HEADER_LEN
        );
    }

    #[test]
    fn frame_head_with_an_overlong_stream_writes_nothing() {
        let f = frame("s".repeat(u16::MAX as usize + 1));
        let mut v = Vec::new();
        assert!(matches!(
            encode_frame_head(&f, &mut v),
            Err(EncodeError::StringTooLong {
                field: "stream",
                ..
            })
        ));
        assert!(v.is_empty());
    }
}
