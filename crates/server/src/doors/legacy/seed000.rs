//! Seed 000 ("Python 建立 socket 通信传输图像"). The image server greets with
//! `Hi, Welcome to the server!`, then reads until the client closes: the image in base64 followed
//! by `timestamp<time.time()>` (matched by `timestamp(\d+\.\d+)$`). The hub stores the decoded
//! image as `DIR/<ip>/<capture time>-<n>.<ext>`, the capture time being the client's timestamp
//! (the store has no capture-time field: the name carries it).
//!
//! The chat server answers every read with `server received you message.`; the hub does the same
//! and puts each text in the event log as a message from the client.

use bytes::Bytes;

use super::{base64, dated_path, Conn, Ended};
use crate::conn::now_us;
use crate::doors::raw::sniff_extension;

/// What the image server says first.
pub(crate) const GREETING: &[u8] = b"Hi, Welcome to the server!";
/// What the chat server answers to every read.
pub(crate) const CHAT_REPLY: &[u8] = b"server received you message.";

/// The latest time a timestamp may name: 9999-12-31 23:59:59 UTC, in µs.
const MAX_TIME_US: i64 = 253_402_300_799_999_999;

/// An upload of the image protocol, taken apart.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Image {
    /// The decoded image.
    pub(crate) bytes: Vec<u8>,
    /// The client's `timestamp`, µs since the Unix epoch, if it sent one.
    pub(crate) capture_us: Option<i64>,
}

/// Takes apart everything the client sent: base64, then optionally `timestamp<digits>.<digits>`
/// at the very end (a final line ending allowed, as Python's `$` allows it).
///
/// # Errors
/// The rest is not base64, or a timestamp is out of range.
pub(crate) fn parse_image(body: &[u8]) -> Result<Image, String> {
    let trimmed = body.strip_suffix(b"\n").unwrap_or(body);
    let (b64, capture_us) = match find_last(trimmed, b"timestamp") {
        Some(at) => match parse_seconds(&trimmed[at + b"timestamp".len()..]) {
            Some(us) if (0..=MAX_TIME_US).contains(&us) => (&trimmed[..at], Some(us)),
            Some(_) => return Err("the timestamp is out of range".into()),
            // Not the seed's pattern: the whole body is the image, as the seed would print it.
            None => (body, None),
        },
        None => (body, None),
    };
    Ok(Image {
        bytes: base64::decode(b64)?,
        capture_us,
    })
}

fn find_last(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// `\d+\.\d+` (all of `s`) as µs; digits past the sixth decimal are cut.
fn parse_seconds(s: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(s).ok()?;
    let (whole, frac) = text.split_once('.')?;
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(frac) || whole.len() > 12 {
        return None;
    }
    let mut micros = frac.chars().take(6).collect::<String>();
    while micros.len() < 6 {
        micros.push('0');
    }
    Some(whole.parse::<i64>().ok()? * 1_000_000 + micros.parse::<i64>().ok()?)
}

/// The image server's side.
pub(crate) async fn image(mut c: Conn) -> Result<(), Ended> {
    c.say(GREETING).await?;
    let body = c.read_to_eof(c.base64_limit() + 64).await?;
    if body.is_empty() {
        return Ok(());
    }
    let img = parse_image(&body).map_err(Ended::Malformed)?;
    let time = img.capture_us.unwrap_or_else(now_us);
    let dir = c.option("dir").unwrap_or("seed000").to_owned();
    let path = dated_path(&dir, c.peer, time, sniff_extension(&img.bytes));
    c.store(path, Bytes::from(img.bytes)).await?;
    Ok(())
}

/// The chat server's side: each read is one message, answered.
pub(crate) async fn chat(mut c: Conn) -> Result<(), Ended> {
    while let Some(data) = c.recv(1024).await? {
        let text = String::from_utf8_lossy(&data);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        tracing::info!(from = %c.sender(), text = %crate::untrusted::shown(text), "message");
        c.hub.events.emit("message", c.sender(), text);
        c.say(CHAT_REPLY).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_apart_base64_and_timestamp() {
        // client.py: b64encode(b"\x89PNG...") then 'timestamp' + str(time.time())
        let img = parse_image(b"iVBORw0KGgo=timestamp1733338273.1234567").unwrap();
        assert_eq!(img.bytes, b"\x89PNG\r\n\x1a\n");
        assert_eq!(img.capture_us, Some(1_733_338_273_123_456));
        let img = parse_image(b"YWJj").unwrap();
        assert_eq!((img.bytes.as_slice(), img.capture_us), (&b"abc"[..], None));
        assert_eq!(
            parse_image(b"YWJjtimestamp5.5\n").unwrap().capture_us,
            Some(5_500_000)
        );
        assert!(parse_image(b"YWJjtimestamp12.").is_err(), "not the pattern");
        assert!(parse_image(b"not base64!").is_err());
    }
}
