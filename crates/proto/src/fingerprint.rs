//! SHA-256 certificate fingerprints as people read and type them: `AB:CD:...`, the form browsers
//! show, which a hub prints at start-up and a client pins.

/// Formats a SHA-256 fingerprint as browsers show it: uppercase hex pairs joined by `:`
/// (95 characters).
pub fn format_fingerprint(sha256: &[u8; 32]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(32 * 3 - 1);
    for (i, b) in sha256.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0xf)] as char);
    }
    s
}

/// Parses a SHA-256 fingerprint: 64 hex digits in either case, plain or in colon-separated pairs
/// as [`format_fingerprint`] writes them. As the client's `--tls-fingerprint` has always allowed,
/// surrounding whitespace and a `sha256:` (or `SHA256:`) prefix are ignored, and so are colons
/// and whitespace between the digits.
///
/// Returns `None` for anything else.
pub fn parse_fingerprint(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    let s = s
        .strip_prefix("sha256:")
        .or_else(|| s.strip_prefix("SHA256:"))
        .unwrap_or(s);
    let mut digits = s
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .map(|c| c.to_digit(16).map(|d| d as u8));
    let mut out = [0u8; 32];
    for b in &mut out {
        let hi = digits.next()??;
        let lo = digits.next()??;
        *b = hi << 4 | lo;
    }
    match digits.next() {
        None => Some(out),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> [u8; 32] {
        std::array::from_fn(|i| (i * 7 + 0xa0) as u8)
    }

    #[test]
    fn formats_as_uppercase_colon_pairs() {
        let mut fp = [0u8; 32];
        fp[0] = 0xab;
        fp[1] = 0x0c;
        fp[31] = 0xff;
        let s = format_fingerprint(&fp);
        assert_eq!(s.len(), 95);
        assert!(s.starts_with("AB:0C:00:"), "{s}");
        assert!(s.ends_with(":00:FF"), "{s}");
    }

    #[test]
    fn matches_the_format_the_hub_and_client_print_today() {
        // crates/server/src/tls.rs and crates/client/src/tls.rs: `format!("{b:02X}")` joined by ':'.
        let fp = sample();
        let theirs = fp
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(format_fingerprint(&fp), theirs);
    }

    #[test]
    fn parses_every_accepted_form() {
        let fp = sample();
        let colons = format_fingerprint(&fp);
        let plain: String = colons.split(':').collect();
        assert_eq!(plain.len(), 64);
        for s in [
            colons.clone(),
            colons.to_lowercase(),
            plain.clone(),
            plain.to_lowercase(),
            format!(" sha256:{colons}\n"),
            format!("SHA256:{plain}"),
            colons.replace(':', " "),
        ] {
            assert_eq!(parse_fingerprint(&s), Some(fp), "{s:?}");
        }
    }

    #[test]
    fn refuses_anything_else() {
        let plain: String = format_fingerprint(&sample()).split(':').collect();
        for s in [
            String::new(),
            "AB:CD".to_owned(),
            plain[..63].to_owned(),
            format!("{plain}0"),
            format!("{plain}00"),
            "zz".repeat(32),
            format!("{}é", &plain[..63]),
            format!("sha1:{plain}"),
            format!("0x{}", &plain[..62]),
        ] {
            assert_eq!(parse_fingerprint(&s), None, "{s:?}");
        }
    }

    #[test]
    fn round_trips() {
        for fp in [[0u8; 32], [0xff; 32], sample()] {
            assert_eq!(parse_fingerprint(&format_fingerprint(&fp)), Some(fp));
        }
    }
}
