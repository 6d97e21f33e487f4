//! The hub's doors: each accepts its kind of connection or datagram, passes it through the
//! [`gate`](crate::gate) and hands requests to the same hub state and upload pipeline.
//!
//! - [`native`]: the framewire protocol, plain TCP or TLS (the session itself is in `conn`);
//! - [`http`]: the dashboard and HTTP API (axum over hyper, HTTPS with TLS);
//! - [`raw`]: every byte of a TCP connection becomes one stored file;
//! - [`udp`]: one datagram is one text message or one small frame;
//! - [`legacy`]: the raw door playing a hand-written socket server's side of its conversation.

pub(crate) mod http;
pub mod legacy;
pub mod mqtt;
pub(crate) mod native;
pub mod raw;
pub mod udp;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::gate::Admission;
use crate::Hub;

/// The next connection the gate admits on `listener`, or `None` once the hub stops. One over a
/// limit is handed to `refuse`, which tells the client why in the door's own language and
/// closes; nobody waits in a queue.
async fn admitted<R, F>(
    listener: &TcpListener,
    hub: &Hub,
    door: &'static str,
    refuse: R,
) -> Option<(TcpStream, SocketAddr, Admission)>
where
    R: Fn(TcpStream, String) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    loop {
        let (stream, peer) = tokio::select! {
            _ = hub.gate.stop.cancelled() => return None,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(door, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        match hub.gate.admit(peer) {
            Ok(a) => return Some((stream, peer, a)),
            Err(why) => {
                tracing::warn!(door, %peer, reason = %why, "connection refused");
                tokio::spawn(refuse(stream, why));
            }
        }
    }
}
