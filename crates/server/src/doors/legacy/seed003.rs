//! Seed 003 ("Python: Socket编程", batch upload). One connection per image: a 16-byte header of
//! ASCII digits (the length of what follows, zero-padded on the left), the image's name in
//! 32 characters, the image in base64; then the client closes. The seed's server answers
//! nothing.
//!
//! The hub stores each image decoded as `DIR/<name>` (option `dir`, default `seed003`), adding an
//! extension from the content (`.jpg`, `.png`, `.bmp`, else `.bin`) when the name has none: the
//! seed's client strips `.jpg` from its names. Sending the same image again is not an error
//! (stored unchanged); a different image under a stored name is refused.

use bytes::{Bytes, BytesMut};
use framewire_proto::RemotePath;

use super::{base64, Conn, Ended};
use crate::doors::raw::sniff_extension;

/// The length header.
pub(crate) const HEADER_LEN: usize = 16;
/// The name's length.
pub(crate) const NAME_LEN: usize = 32;

/// The header's value: 16 ASCII digits.
///
/// # Errors
/// Anything else (the seed's server fails on it too).
pub(crate) fn parse_header(h: &[u8]) -> Result<usize, String> {
    if h.len() != HEADER_LEN || !h.iter().all(u8::is_ascii_digit) {
        return Err(format!(
            "the header {:?} is not 16 digits",
            String::from_utf8_lossy(h)
        ));
    }
    std::str::from_utf8(h)
        .expect("digits")
        .parse()
        .map_err(|_| "the length does not fit".into())
}

/// The stored path of the body's image under `dir`, and the decoded image.
///
/// # Errors
/// A body shorter than a name, a name that is not one path segment, base64 that is not.
pub(crate) fn take_apart(dir: &str, body: &[u8]) -> Result<(RemotePath, Vec<u8>), String> {
    if body.len() < NAME_LEN {
        return Err(format!("{} bytes cannot hold a 32-byte name", body.len()));
    }
    let (name, b64) = body.split_at(NAME_LEN);
    let name = std::str::from_utf8(name).map_err(|_| "the name is not UTF-8".to_owned())?;
    if name.contains(['/', '\\']) {
        return Err(format!("the name {name:?} is not a file name"));
    }
    let image = base64::decode(b64)?;
    let file = if name.contains('.') {
        name.to_owned()
    } else {
        format!("{name}.{}", sniff_extension(&image))
    };
    let path = RemotePath::parse(&format!("{dir}/{file}"))
        .map_err(|e| format!("the name {name:?} cannot be stored: {e}"))?;
    Ok((path, image))
}

/// The seed server's side: one image per connection.
pub(crate) async fn serve(mut c: Conn) -> Result<(), Ended> {
    let mut buf = BytesMut::new();
    if c.read_some(&mut buf).await? == 0 {
        return Ok(());
    }
    let len = parse_header(&c.read_exact(&mut buf, HEADER_LEN).await?).map_err(Ended::Malformed)?;
    let limit = c.base64_limit() + NAME_LEN;
    if len > limit {
        return Err(Ended::Refused(crate::store::Refusal::new(
            framewire_proto::ErrorCode::TooLarge,
            format!("{len} bytes announced, over the limit of {limit}"),
        )));
    }
    let body = c.read_exact(&mut buf, len).await?;
    let dir = c.option("dir").unwrap_or("seed003").to_owned();
    let (path, image) = take_apart(&dir, &body).map_err(Ended::Malformed)?;
    c.store(path, Bytes::from(image)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_name() {
        assert_eq!(parse_header(b"0000000000000044"), Ok(44));
        assert!(parse_header(b"00000000000000 4").is_err());
        assert!(parse_header(b"44").is_err());
        let name = "0123456789abcdef0123456789abcdef";
        // base64 of FF D8 FF E0
        let body = format!("{name}/9j/4A==");
        let (path, image) = take_apart("seed003", body.as_bytes()).unwrap();
        assert_eq!(path.as_str(), format!("seed003/{name}.jpg"));
        assert_eq!(image, [0xff, 0xd8, 0xff, 0xe0]);
        let named = "photo-of-the-door-0000000001.png";
        let (path, _) = take_apart("s", format!("{named}YQ==").as_bytes()).unwrap();
        assert_eq!(path.as_str(), format!("s/{named}"));
        assert!(take_apart("s", b"short").is_err());
        assert!(take_apart("s", format!("{}YQ==", "a/".repeat(16)).as_bytes()).is_err());
    }
}
