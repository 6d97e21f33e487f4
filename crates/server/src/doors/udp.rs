//! The UDP door: each datagram is one protocol message (8-byte header and payload): `Text`
//! (logged and put in the event log) or `Frame` (published to its stream, for cameras that fit a
//! frame in one datagram). Anything else, malformed or oversized, is counted and ignored.
//!
//! UDP cannot present a token: on a hub with tokens the door acts as the identity it was bound to
//! (`--udp-as NAME`, whose permissions apply: a frame needs `publish`), only for the addresses
//! allowed (`--udp-allow CIDR`). A stream a connection publishes belongs to that connection: a
//! UDP frame for it is refused, and so is one for a new stream when the hub has its most streams.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use bytes::BytesMut;
use framewire_proto::{decode, Message};
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

/// Acts on one datagram: exactly one whole message, or nothing.
fn handle_datagram(data: &[u8], peer: SocketAddr, access: &DoorAccess, hub: &Hub) {
    let udp = &hub.udp;
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
