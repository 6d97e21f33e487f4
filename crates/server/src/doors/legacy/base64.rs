//! Standard base64 (RFC 4648, `+/`, `=` padding), as Python's `base64.b64encode` writes it. The
//! seeds' clients send images this way; nothing else in the hub needs it.

/// Decodes `text`, ignoring ASCII whitespace (a client may wrap or end its lines).
///
/// # Errors
/// A byte outside the alphabet, padding in the middle, or a length that is not whole.
pub(crate) fn decode(text: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits, mut pad) = (0u32, 0u32, 0usize);
    let mut n = 0usize;
    for &c in text {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                pad += 1;
                n += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => return Err(format!("byte 0x{c:02x} is not base64")),
        };
        if pad > 0 {
            return Err("base64 padding in the middle".into());
        }
        n += 1;
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    if !n.is_multiple_of(4) || pad > 2 {
        return Err("base64 text of a length that is not a multiple of 4".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn decodes_python_b64encode() {
        // base64.b64encode(b"framewire\xff\x00") == b"ZnJhbWV3aXJl/wA="
        assert_eq!(decode(b"ZnJhbWV3aXJl/wA=").unwrap(), b"framewire\xff\x00");
        assert_eq!(decode(b"").unwrap(), b"");
        assert_eq!(decode(b"YQ==").unwrap(), b"a");
        assert_eq!(decode(b"YWI=\n").unwrap(), b"ab");
        assert_eq!(decode(b"YWJj").unwrap(), b"abc");
        assert!(decode(b"YQ=x").is_err());
        assert!(decode(b"YWJ").is_err());
        assert!(decode(b"timestamp1.5").is_err());
    }
}
