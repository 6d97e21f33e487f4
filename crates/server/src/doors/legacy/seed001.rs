//! Seed 001 ("Python中的socket编程", Network-Video-Transmission). Each exchange, as the seed's
//! server plays it:
//!
//! 1. the server sends its time, `str(time.time())` padded with spaces to 32 bytes;
//! 2. the client sends the JPEG's length in 32 bytes (`str(n).ljust(32)`), the JPEG, and the
//!    32 bytes of step 1 back;
//! 3. the server compares the echoed time with its clock: more than 80 ms apart, it answers `0`
//!    and drops the frame; otherwise `1`, takes the frame, and sends
//!    `received and not delay` padded to 1,024 bytes.
//!
//! The hub publishes each frame it takes to a live stream (option `stream`, default `seed001`),
//! so `framewire watch NAME`, the dashboard and MJPEG viewers see the camera.

use std::sync::atomic::Ordering::Relaxed;

use bytes::{Bytes, BytesMut};
use framewire_proto::{frame_format, Frame};

use super::{Conn, Ended};
use crate::auth::{Claimant, Perms};
use crate::conn::now_us;

/// Size of the time and length fields.
pub(crate) const FIELD: usize = 32;
/// Size of the answer after a `1`.
pub(crate) const REPLY_LEN: usize = 1024;
/// The seed's rule: an exchange older than this is dropped.
pub(crate) const MAX_LAG_US: i64 = 80_000;

/// Python's `str(data).ljust(length)` as bytes.
fn ljust(text: &str, len: usize) -> Vec<u8> {
    let mut v = text.as_bytes().to_vec();
    if v.len() < len {
        v.resize(len, b' ');
    }
    v
}

/// `str(time.time()).ljust(32)` for hub time `now_us`.
pub(crate) fn time_field(now_us: i64) -> Vec<u8> {
    let (s, us) = (now_us.div_euclid(1_000_000), now_us.rem_euclid(1_000_000));
    let frac = format!("{us:06}");
    let frac = frac.trim_end_matches('0');
    ljust(
        &format!("{s}.{}", if frac.is_empty() { "0" } else { frac }),
        FIELD,
    )
}

/// Python's `int(field)`: digits, surrounded by whitespace.
///
/// # Errors
/// Anything else (the seed's server raises `ValueError`).
pub(crate) fn parse_length(field: &[u8]) -> Result<usize, String> {
    let t = std::str::from_utf8(field)
        .map_err(|_| "the length is not text".to_owned())?
        .trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the length {t:?} is not a number"));
    }
    t.parse()
        .map_err(|_| format!("the length {t:?} is too large"))
}

/// Python's `float(field)` of the echoed time, in µs.
///
/// # Errors
/// Not a number.
pub(crate) fn parse_time(field: &[u8]) -> Result<i64, String> {
    let t = std::str::from_utf8(field)
        .map_err(|_| "the echoed time is not text".to_owned())?
        .trim();
    let secs: f64 = t
        .parse()
        .map_err(|_| format!("the echoed time {t:?} is not a number"))?;
    if !secs.is_finite() {
        return Err(format!("the echoed time {t:?} is not a time"));
    }
    Ok((secs * 1e6).round() as i64)
}

/// The seed's verdict: `|now - echoed| <= 80 ms`.
pub(crate) fn on_time(echoed_us: i64, now_us: i64) -> bool {
    now_us.saturating_sub(echoed_us).saturating_abs() <= MAX_LAG_US
}

/// What the server sends after the echoed time: `0`, or `1` and the 1,024-byte answer.
pub(crate) fn answer(on_time: bool) -> Vec<u8> {
    if on_time {
        let mut v = b"1".to_vec();
        v.extend(ljust("received and not delay", REPLY_LEN));
        v
    } else {
        b"0".to_vec()
    }
}

/// The seed server's side, publishing the frames it takes.
pub(crate) async fn serve(mut c: Conn) -> Result<(), Ended> {
    let name = c.option("stream").unwrap_or("seed001").to_owned();
    let refused = |why: String| {
        Ended::Refused(crate::store::Refusal::new(
            framewire_proto::ErrorCode::Forbidden,
            why,
        ))
    };
    if !c.access.identity.perms.allows(Perms::PUBLISH) {
        return Err(refused("the door's identity may not publish".into()));
    }
    if !c.access.identity.may_claim(&name) {
        return Err(refused(format!(
            "the door's identity may not claim {name:?}"
        )));
    }
    let stream = c.hub.streams.get_or_create(&name, now_us()).map_err(|e| {
        Ended::Refused(crate::store::Refusal::new(
            framewire_proto::ErrorCode::Busy,
            e.to_string(),
        ))
    })?;
    let tokens = c.hub.config.tokens.enabled();
    let claimant = Claimant {
        conn: c.hub.next_conn_id(),
        token: if tokens {
            c.access.identity.name.clone()
        } else {
            String::new()
        },
        admin: tokens && c.access.identity.perms.allows(Perms::ADMIN),
    };
    stream.claim(&claimant).map_err(refused)?;
    stream.publishers.fetch_add(1, Relaxed);
    c.hub
        .events
        .emit("stream", c.sender(), format!("publishing {name}"));
    let result = exchanges(&mut c, &stream, &name).await;
    stream.publishers.fetch_sub(1, Relaxed);
    stream.release(claimant.conn, now_us());
    c.hub
        .events
        .emit("stream", c.sender(), format!("stopped publishing {name}"));
    result
}

async fn exchanges(c: &mut Conn, stream: &crate::streams::Stream, name: &str) -> Result<(), Ended> {
    let max = c.hub.config.max_payload as usize;
    let mut buf = BytesMut::new();
    let mut seq = 0u64;
    loop {
        let sent_us = now_us();
        c.say(&time_field(sent_us)).await?;
        if buf.is_empty() && c.read_some(&mut buf).await? == 0 {
            return Ok(()); // the camera went away between frames
        }
        let len = parse_length(&c.read_exact(&mut buf, FIELD).await?).map_err(Ended::Malformed)?;
        if len > max {
            return Err(Ended::Refused(crate::store::Refusal::new(
                framewire_proto::ErrorCode::TooLarge,
                format!("a frame of {len} bytes is over the limit of {max}"),
            )));
        }
        let jpeg = c.read_exact(&mut buf, len).await?;
        let echoed = parse_time(&c.read_exact(&mut buf, FIELD).await?).map_err(Ended::Malformed)?;
        let ok = on_time(echoed, now_us());
        if ok {
            seq += 1;
            publish(stream, name, seq, sent_us, jpeg);
        } else {
            tracing::debug!(stream = %name, "seed001 frame over 80 ms late: answered 0");
        }
        c.say(&answer(ok)).await?;
    }
}

fn publish(stream: &crate::streams::Stream, name: &str, seq: u64, capture_us: i64, jpeg: Bytes) {
    let (width, height) = framewire_media::jpeg::probe(&jpeg).unwrap_or((0, 0));
    let frame = Frame {
        stream: name.to_owned(),
        seq,
        capture_us,
        format: frame_format::JPEG,
        width,
        height,
        payload: jpeg,
    };
    stream.publish(frame, now_us(), 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_as_python_writes_them() {
        let f = time_field(1_733_338_273_123_400);
        assert_eq!(f.len(), FIELD);
        assert_eq!(&f[..16], b"1733338273.1234 ");
        assert_eq!(&time_field(5_000_000)[..4], b"5.0 ");
        assert_eq!(parse_length(b"1234                            "), Ok(1234));
        assert!(parse_length(b"12a4").is_err());
        assert!(parse_length(b"    ").is_err());
        assert_eq!(parse_time(&f), Ok(1_733_338_273_123_400));
        assert!(parse_time(b"soon").is_err());
    }

    #[test]
    fn the_80_ms_rule() {
        assert!(on_time(1_000_000, 1_080_000));
        assert!(!on_time(1_000_000, 1_080_001));
        assert!(!on_time(1_080_001, 1_000_000), "abs(), as the seed");
        assert_eq!(answer(false), b"0");
        let yes = answer(true);
        assert_eq!(yes.len(), 1 + REPLY_LEN);
        assert!(yes.starts_with(b"1received and not delay   "));
    }
}
