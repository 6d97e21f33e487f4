//! The framewire handshake: read `Hello` within the deadline, check the version and the token,
//! answer `Welcome`.

use std::sync::atomic::Ordering;

use bytes::BytesMut;
use framewire_proto::{
    check_preface, decode, ErrorCode, Hello, Message, Preface, MAX_HELLO_PAYLOAD, MIN_VERSION,
    VERSION,
};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::transport::{read_client_hello, PLAIN_PORT};
use super::Fatal;
use crate::Hub;

/// Why a handshake did not produce a `Hello`.
pub(super) enum HandshakeEnd {
    /// An HTTP request on the native port.
    Http,
    Closed,
    Fatal(Fatal),
}

/// Reads the client's `Hello`.
pub(super) async fn read_hello<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    hub: &Hub,
) -> Result<Hello, HandshakeEnd> {
    loop {
        if buf.first() == Some(&crate::tls::TLS_HANDSHAKE_BYTE) {
            // A TLS client on a plain port (a framewire Hello starts 01 00).
            read_client_hello(rd, buf).await;
            return Err(HandshakeEnd::Fatal(Fatal::new(
                ErrorCode::NotFramewire,
                PLAIN_PORT,
            )));
        }
        match check_preface(buf) {
            Preface::NeedMore => {}
            Preface::Http => return Err(HandshakeEnd::Http),
            Preface::NotFramewire => {
                return Err(HandshakeEnd::Fatal(Fatal::new(
                    ErrorCode::NotFramewire,
                    "not a framewire client: the first message must be Hello (magic FWIR)",
                )))
            }
            Preface::Hello => match decode(buf, MAX_HELLO_PAYLOAD) {
                Ok(Some(Message::Hello(h))) => {
                    // A newer client is served at the hub's version (`Welcome` says which).
                    if h.version < MIN_VERSION {
                        return Err(HandshakeEnd::Fatal(Fatal::new(
                            ErrorCode::UnsupportedVersion,
                            format!("protocol version {} is not supported; this hub speaks {MIN_VERSION}..={VERSION}", h.version),
                        )));
                    }
                    hub.stats
                        .bytes_in
                        .fetch_add(buf.len() as u64, Ordering::Relaxed);
                    return Ok(h);
                }
                Ok(Some(_)) => unreachable!("preface checked the type"),
                Ok(None) => {}
                Err(e) => return Err(HandshakeEnd::Fatal(e.into())),
            },
        }
        match rd.read_buf(buf).await {
            Ok(0) | Err(_) => return Err(HandshakeEnd::Closed),
            Ok(_) => {}
        }
    }
}
