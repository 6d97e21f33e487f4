//! The hub's doors: each accepts its kind of connection or datagram, passes it through the
//! [`gate`](crate::gate) and hands requests to the same hub state and upload pipeline.
//!
//! - [`native`]: the framewire protocol, plain TCP or TLS (the session itself is in `conn`);
//! - [`http`]: the dashboard and HTTP API (axum over hyper, HTTPS with TLS);
//! - [`raw`]: every byte of a TCP connection becomes one stored file;
//! - [`udp`]: one datagram is one text message or one small frame.

pub(crate) mod http;
pub(crate) mod native;
pub mod raw;
pub mod udp;

use std::time::Duration;

/// Accepting failed (out of file descriptors and the like): back off instead of spinning.
async fn accept_failed(door: &str, e: std::io::Error) {
    tracing::warn!(door, error = %e, "accept failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
