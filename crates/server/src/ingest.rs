//! Doors for devices that cannot speak the full protocol.
//!
//! - **Raw TCP** ([`serve_raw`]): every byte of a connection until EOF becomes one stored file,
//!   named from the time, the peer and the detected type (JPEG, PNG, BMP, else `.bin`), through the
//!   same spool → verify → group commit path and limits as native uploads. `nc -q0 HOST PORT <
//!   photo.jpg` is a complete client. A connection that breaks (reset) or goes silent stores nothing.
//! - **UDP** ([`serve_udp`]): each datagram is one protocol message (8-byte header and payload):
//!   `Text` (logged and put in the event log) or `Frame` (published to its stream, for cameras that
//!   fit a frame in one datagram). Anything else, malformed or oversized, is counted and ignored.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use framewire_proto::{decode, ErrorCode, Message, RemotePath};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use crate::conn::now_us;
use crate::store::Refusal;
use crate::HubHandle;

/// Largest UDP payload (IPv4).
const MAX_DATAGRAM: usize = 65_507;

/// The type of a file from its first bytes: the file name extension to store it under.
pub fn sniff_extension(head: &[u8]) -> &'static str {
    if head.starts_with(&[0xff, 0xd8, 0xff]) {
        "jpg"
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        "png"
    } else if head.starts_with(b"BM") && head.len() >= 14 {
        "bmp"
    } else {
        "bin"
    }
}

/// `raw/<peer ip>/<UTC time>-<n>.<ext>`: unique, sortable, and safe as a remote path.
fn raw_path(peer: SocketAddr, ext: &str, now_us: i64) -> RemotePath {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Relaxed);
    let secs = now_us.div_euclid(1_000_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let ip = peer.ip().to_string().replace(':', "-");
    let name = format!(
        "raw/{ip}/{y:04}{m:02}{d:02}-{:02}{:02}{:02}.{:06}-{n}.{ext}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now_us.rem_euclid(1_000_000)
    );
    RemotePath::parse(&name).expect("generated raw paths are valid")
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Accepts raw connections until `shutdown` resolves.
///
/// # Errors
/// Never for a single connection's trouble; only if the listener itself fails for good.
pub async fn serve_raw(
    listener: TcpListener,
    hub: HubHandle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "raw accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let hub = hub.clone();
        tokio::spawn(async move {
            match ingest_raw(stream, peer, &hub).await {
                Ok(Some((path, size))) => {
                    tracing::info!(%peer, %path, size, "raw upload stored");
                    hub.events().emit(
                        "upload",
                        &format!("raw@{}", peer.ip()),
                        format!("stored {path} ({size} bytes)"),
                    );
                }
                Ok(None) => {}
                Err(r) => {
                    tracing::info!(%peer, reason = %r.reason, "raw upload refused");
                    hub.stats().upload_failed(r.code);
                    hub.events()
                        .emit("reject", &format!("raw@{}", peer.ip()), r.reason);
                }
            }
        });
    }
}

/// Reads one raw upload to EOF and commits it. `Ok(None)`: the peer sent nothing.
async fn ingest_raw(
    mut stream: TcpStream,
    peer: SocketAddr,
    hub: &HubHandle,
) -> Result<Option<(RemotePath, u64)>, Refusal> {
    let config = hub.config();
    let mut buf = BytesMut::with_capacity(256 * 1024);
    let mut writer = None;
    let mut path = None;
    let mut received: u64 = 0;
    let failure = loop {
        if buf.capacity() - buf.len() < 64 * 1024 {
            buf.reserve(256 * 1024);
        }
        let n = match tokio::time::timeout(config.raw_idle_timeout, stream.read_buf(&mut buf)).await
        {
            Err(_) => {
                break Some(Refusal::new(
                    ErrorCode::Timeout,
                    format!("raw upload from {peer} went silent"),
                ))
            }
            Ok(Err(e)) => {
                break Some(Refusal::new(
                    ErrorCode::Cancelled,
                    format!("raw upload from {peer} broke off: {e}"),
                ))
            }
            Ok(Ok(0)) => break None,
            Ok(Ok(n)) => n,
        };
        received += n as u64;
        if received > config.max_file_size {
            break Some(Refusal::new(
                ErrorCode::TooLarge,
                format!(
                    "raw upload from {peer} exceeds the limit of {} bytes",
                    config.max_file_size
                ),
            ));
        }
        if !hub.stats().storage_has_room(received, config.max_storage) {
            break Some(Refusal::new(
                ErrorCode::StorageFull,
                "storage full: the raw upload does not fit the storage limit",
            ));
        }
        if writer.is_none() {
            // The first bytes name the file (their type).
            let p = raw_path(peer, sniff_extension(&buf), now_us());
            path = Some(p);
            writer = Some(hub.store().open_spool_fresh());
        }
        let chunk: Bytes = buf.split().freeze();
        if writer.as_ref().expect("opened").write(chunk).await.is_err() {
            break None;
        }
    };
    let Some(writer) = writer else {
        return match failure {
            Some(r) if r.code != ErrorCode::Cancelled => Err(r),
            _ => Ok(None),
        };
    };
    let done = writer.finish().await?;
    if let Some(r) = failure {
        done.discard();
        return Err(r);
    }
    let path = path.expect("named with the first bytes");
    let (size, hash) = (done.len, done.hash);
    let sender = format!("raw@{}", peer.ip());
    hub.store()
        .commit(path.clone(), done, false, sender)
        .await?;
    // Tell a client that waits (plain `nc` without -q0) what happened; -q0 has already gone.
    let _ = stream
        .write_all(format!("stored {path} {size} {}\n", hex::encode(hash)).as_bytes())
        .await;
    let _ = stream.shutdown().await;
    Ok(Some((path, size)))
}

/// Counters of the UDP door.
#[derive(Debug, Default)]
pub struct UdpStats {
    /// Datagrams accepted (text or frame).
    pub accepted: AtomicU64,
    /// Datagrams ignored: malformed, oversized, or of a type UDP does not carry.
    pub ignored: AtomicU64,
}

/// Receives datagrams on `socket` until `shutdown` resolves.
///
/// # Errors
/// Only if the socket itself fails for good.
pub async fn serve_udp(
    socket: UdpSocket,
    hub: HubHandle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    loop {
        let (n, peer) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(error = %e, "udp receive failed");
                    continue;
                }
            },
        };
        handle_datagram(&buf[..n], peer, &hub);
    }
}

/// Acts on one datagram: exactly one whole message, or nothing.
pub fn handle_datagram(data: &[u8], peer: SocketAddr, hub: &HubHandle) {
    let udp = hub.udp_stats();
    let mut b = BytesMut::from(data);
    let msg = match decode(&mut b, MAX_DATAGRAM as u32) {
        Ok(Some(m)) if b.is_empty() => m,
        _ => {
            udp.ignored.fetch_add(1, Relaxed);
            tracing::debug!(%peer, len = data.len(), "ignored a malformed UDP datagram");
            return;
        }
    };
    let from = format!("udp@{peer}");
    match msg {
        Message::Text(t) => {
            udp.accepted.fetch_add(1, Relaxed);
            tracing::info!(%from, text = %t.text, "message");
            hub.events().emit("message", &from, t.text);
        }
        Message::Frame(f) => {
            udp.accepted.fetch_add(1, Relaxed);
            hub.streams()
                .get_or_create(&f.stream)
                .publish(f, now_us(), 0);
        }
        other => {
            udp.ignored.fetch_add(1, Relaxed);
            tracing::debug!(%peer, kind = other.name(), "UDP carries only Text and Frame; ignored");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_types() {
        assert_eq!(sniff_extension(&[0xff, 0xd8, 0xff, 0xe0]), "jpg");
        assert_eq!(sniff_extension(b"\x89PNG\r\n\x1a\nrest"), "png");
        assert_eq!(
            sniff_extension(b"BM\x36\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00"),
            "bmp"
        );
        assert_eq!(sniff_extension(b"BM"), "bin");
        assert_eq!(sniff_extension(b"hello"), "bin");
        assert_eq!(sniff_extension(b""), "bin");
    }

    #[test]
    fn raw_names_are_valid_dated_paths() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        // 2024-02-29 12:34:56.789012 UTC
        let p = raw_path(peer, "jpg", 1_709_210_096_789_012);
        assert!(
            p.as_str()
                .starts_with("raw/127.0.0.1/20240229-123456.789012-"),
            "{p}"
        );
        assert!(p.as_str().ends_with(".jpg"));
        let v6: SocketAddr = "[::1]:5000".parse().unwrap();
        assert!(raw_path(v6, "bin", 0)
            .as_str()
            .starts_with("raw/--1/19700101-000000.000000-"));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
