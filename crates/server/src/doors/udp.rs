//! The UDP door: a datagram that starts with a framewire header is one protocol message (8-byte
//! header and payload): `Text` (logged and put in the event log) or `Frame` (published to its
//! stream, for cameras that fit a frame in one datagram); anything else of that kind, malformed
//! or oversized, is counted and ignored. Any other datagram is plain UTF-8 text from its sender
//! (`sk.sendto(b"door opened", hub)`, as hand-written UDP clients send it): a message like `Text`;
//! one that is not UTF-8 is counted and dropped.
//!
//! UDP cannot present a token: on a hub with tokens the door acts as the identity it was bound to
//! (`--udp-as NAME`, whose permissions apply: a frame needs `publish`), only for the addresses
//! allowed (`--udp-allow CIDR`). A stream a connection publishes belongs to that connection: a
//! UDP frame for it is refused, and so is one for a new stream when the hub has its most streams.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use bytes::BytesMut;
use framewire_proto::{check_header, decode, Message};
use tokio::net::UdpSocket;

use crate::auth::Perms;
use crate::conn::now_us;
use crate::gate::DoorAccess;
use crate::Hub;

/// Largest UDP payload (IPv4).
const MAX_DATAGRAM: usize = 65_507;

/// Counters of the UDP door.
#[derive(Debug, Default)]
pub struct UdpStats {
    /// Datagrams accepted (text or frame).
    pub accepted: AtomicU64,
    /// Datagrams ignored: malformed, oversized, or of a type UDP does not carry.
    pub ignored: AtomicU64,
    /// Datagrams refused: from an address not allowed, or needing a permission the door's
    /// identity lacks.
    pub refused: AtomicU64,
    /// Plain-text datagrams (no framewire header) that are not UTF-8: dropped.
    pub invalid_utf8: AtomicU64,
}

/// What a datagram is, from its bytes alone.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Datagram<'a> {
    /// Starts with a valid framewire header (known type, flags 0): a protocol message, whole
    /// or malformed.
    Framewire,
    /// Anything else: plain text, without one trailing line ending (`echo hi | nc -u`).
    Text(&'a str),
    /// Neither a framewire header nor UTF-8.
    InvalidUtf8,
    /// Nothing at all.
    Empty,
}

/// Sorts a datagram: a framewire header wins; otherwise it is text if it is UTF-8.
pub(crate) fn classify(data: &[u8]) -> Datagram<'_> {
    if data.is_empty() {
        return Datagram::Empty;
    }
    // A header whose length is over the limit is still a framewire header (ignored as oversized).
    if matches!(check_header(data, u32::MAX), Ok(Some(_))) {
        return Datagram::Framewire;
    }
    match std::str::from_utf8(data) {
        Ok(t) => {
            let t = t.strip_suffix('\n').unwrap_or(t);
            Datagram::Text(t.strip_suffix('\r').unwrap_or(t))
        }
        Err(_) => Datagram::InvalidUtf8,
    }
}

/// Receives datagrams on `socket` until the hub stops.
pub(crate) async fn receive(socket: UdpSocket, access: DoorAccess, hub: Arc<Hub>) {
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    loop {
        let (n, peer) = tokio::select! {
            _ = hub.gate.stop.cancelled() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(error = %e, "udp receive failed");
                    continue;
                }
            },
        };
        if !access.allows(peer.ip()) {
            hub.udp.refused.fetch_add(1, Relaxed);
            continue;
        }
        handle_datagram(&buf[..n], peer, &access, &hub);
    }
}

/// Acts on one datagram: plain text, exactly one whole message, or nothing.
fn handle_datagram(data: &[u8], peer: SocketAddr, access: &DoorAccess, hub: &Hub) {
    let udp = &hub.udp;
    match classify(data) {
        Datagram::Framewire => {}
        Datagram::Text(text) => {
            udp.accepted.fetch_add(1, Relaxed);
            let from = access.sender("udp", peer.ip());
            tracing::info!(%from, text = %crate::untrusted::shown(text), "message");
            hub.events.emit("message", &from, text);
            return;
        }
        Datagram::InvalidUtf8 => {
            udp.invalid_utf8.fetch_add(1, Relaxed);
            tracing::debug!(%peer, len = data.len(), "dropped a UDP datagram that is neither framewire nor UTF-8");
            return;
        }
        Datagram::Empty => {
            udp.ignored.fetch_add(1, Relaxed);
            return;
        }
    }
    let mut b = BytesMut::from(data);
    let msg = match decode(&mut b, MAX_DATAGRAM as u32) {
        Ok(Some(m)) if b.is_empty() => m,
        _ => {
            udp.ignored.fetch_add(1, Relaxed);
            tracing::debug!(%peer, len = data.len(), "ignored a malformed UDP datagram");
            return;
        }
    };
    let from = access.sender("udp", peer.ip());
    match msg {
        Message::Text(t) => {
            udp.accepted.fetch_add(1, Relaxed);
            tracing::info!(%from, text = %crate::untrusted::shown(&t.text), "message");
            hub.events.emit("message", &from, t.text);
        }
        Message::Frame(_) if !access.identity.perms.allows(Perms::PUBLISH) => {
            udp.refused.fetch_add(1, Relaxed);
            tracing::debug!(%peer, "UDP frame refused: the door's identity may not publish");
        }
        Message::Frame(f) if !access.identity.may_claim(&f.stream) => {
            udp.refused.fetch_add(1, Relaxed);
            tracing::debug!(%peer, "UDP frame refused: the door's identity may not claim the stream");
        }
        Message::Frame(f) => match hub.streams.get_or_create(&f.stream, now_us()) {
            // A stream a connection publishes belongs to it: UDP does not overwrite it.
            Ok(stream) if !stream.is_held() => {
                udp.accepted.fetch_add(1, Relaxed);
                stream.publish(f, now_us(), 0);
            }
            Ok(_) => {
                udp.refused.fetch_add(1, Relaxed);
                tracing::debug!(%peer, "UDP frame refused: a connection publishes that stream");
            }
            Err(e) => {
                udp.refused.fetch_add(1, Relaxed);
                tracing::debug!(%peer, reason = %e, "UDP frame refused");
            }
        },
        other => {
            udp.ignored.fetch_add(1, Relaxed);
            tracing::debug!(%peer, kind = other.name(), "UDP carries only Text and Frame; ignored");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use framewire_proto::Text;

    #[test]
    fn sorts_datagrams() {
        let text = Message::Text(Text {
            id: 1,
            text: "hi".into(),
        })
        .to_bytes()
        .unwrap();
        assert_eq!(classify(&text), Datagram::Framewire);
        assert_eq!(classify(&text[..text.len() - 1]), Datagram::Framewire);
        assert_eq!(classify(&text[..8]), Datagram::Framewire);
        assert_eq!(classify("温度 21".as_bytes()), Datagram::Text("温度 21"));
        assert_eq!(classify(b"hi\r\n"), Datagram::Text("hi"));
        assert_eq!(classify(b"\n"), Datagram::Text(""));
        assert_eq!(classify(b"short"), Datagram::Text("short"));
        assert_eq!(classify(b"\xff\xfe bad"), Datagram::InvalidUtf8);
        assert_eq!(classify(b""), Datagram::Empty);
    }
}
