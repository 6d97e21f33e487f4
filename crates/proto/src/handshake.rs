//! Recognizing a framewire client (or something else) from a connection's first bytes.

use crate::{kind, Header, HEADER_LEN, MAX_HELLO_PAYLOAD};

/// What a connection's first bytes say about the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preface {
    /// Fewer than 8 bytes so far.
    NeedMore,
    /// A plausible `Hello` header: decode the message (its magic and version are checked there).
    Hello,
    /// An HTTP request: a browser or curl pointed at the native port.
    Http,
    /// Anything else.
    NotFramewire,
}

/// Classifies the first bytes of a connection before any allocation for them.
pub fn check_preface(first: &[u8]) -> Preface {
    const METHODS: [&[u8]; 9] = [
        b"GET ", b"POST", b"PUT ", b"HEAD", b"DELE", b"OPTI", b"PATC", b"CONN", b"PRI ",
    ];
    if first.len() >= 4 && METHODS.iter().any(|m| first.starts_with(m)) {
        return Preface::Http;
    }
    match Header::peek(first) {
        None if first.len() < HEADER_LEN => Preface::NeedMore,
        Some(h) if h.kind == kind::HELLO && h.flags == 0 && h.len <= MAX_HELLO_PAYLOAD => {
            Preface::Hello
        }
        _ => Preface::NotFramewire,
    }
}

/// A plain HTTP response for a browser that reached the native port, so the user sees why.
pub const HTTP_REFUSAL: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nThis is framewire's native protocol port, not a web server.\nUse the `framewire` command line or a framewire client library here; the web dashboard listens on the hub's HTTP port.\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_http_and_garbage() {
        assert_eq!(check_preface(b"GET / HTTP/1.1\r\n"), Preface::Http);
        assert_eq!(check_preface(b"GE"), Preface::NeedMore);
        assert_eq!(
            check_preface(b"\x16\x03\x01\x02\x00\x01\x00\x01"),
            Preface::NotFramewire
        );
        assert_eq!(
            check_preface(b"\x01\x00\x00\x00\x10\x00\x00\x00"),
            Preface::Hello
        );
        // a Hello header announcing a huge payload is not a real client
        assert_eq!(
            check_preface(b"\x01\x00\x00\x00\x00\x00\x00\x10"),
            Preface::NotFramewire
        );
    }
}
