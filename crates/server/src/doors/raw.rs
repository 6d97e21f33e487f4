//! The raw TCP door: every byte of a connection until EOF becomes one stored file, named from
//! the time, the peer and the detected type (JPEG, PNG, BMP, else `.bin`), through the same
//! upload pipeline as every other door. `nc -q0 HOST PORT < photo.jpg` is a complete client; a
//! client that waits is told `stored PATH SIZE BLAKE3` (or `refused: REASON`). A connection that
//! breaks (reset) or goes silent stores nothing.
//!
//! The door cannot present a token: on a hub with tokens it acts as the identity it was bound to
//! (`--raw-as NAME`), only for the addresses allowed (`--raw-allow CIDR`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use framewire_proto::{ErrorCode, RemotePath, UtcTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::conn::now_us;
use crate::gate::DoorAccess;
use crate::store::Refusal;
use crate::upload::{Admitted, Request, Stored, Upload, Uploader};
use crate::Hub;

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
    let t = UtcTime::from_unix_us(now_us);
    let ip = peer.ip().to_string().replace(':', "-");
    let name = format!(
        "raw/{ip}/{:04}{:02}{:02}-{:02}{:02}{:02}.{:06}-{n}.{ext}",
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.micros
    );
    RemotePath::parse(&name).expect("generated raw paths are valid")
}

/// Socket reads go into at least this much free buffer.
const READ_CHUNK: usize = 256 * 1024;

/// Accepts raw connections until the hub stops.
pub(crate) async fn accept(listener: TcpListener, access: DoorAccess, hub: Arc<Hub>) {
    let access = Arc::new(access);
    let refuse = |stream, why| tell(stream, format!("refused: {why}"));
    while let Some((stream, peer, admission)) =
        super::admitted(&listener, &hub, "raw", refuse).await
    {
        if !access.allows(peer.ip()) {
            tracing::warn!(%peer, "raw upload refused: address not allowed");
            tokio::spawn(tell(
                stream,
                "refused: this address may not use the raw door".into(),
            ));
            continue;
        }
        let (h, a) = (Arc::clone(&hub), Arc::clone(&access));
        hub.gate.tracker.spawn(async move {
            let _admission = admission;
            ingest(stream, peer, &a, &h).await;
        });
    }
}

/// Says one line to a client that may be listening, and closes.
async fn tell(mut stream: TcpStream, line: String) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(format!("{line}\n").as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

/// How reading a raw upload ended.
enum Ended {
    Eof,
    Refused(Refusal),
    /// Broken off or shut down: nothing to say.
    Gone,
}

/// Reads one raw upload to EOF and commits it.
async fn ingest(mut stream: TcpStream, peer: SocketAddr, access: &DoorAccess, hub: &Hub) {
    let who = Uploader {
        sender: access.sender("raw", peer.ip()),
        perms: access.identity.perms,
    };
    let mut upload: Option<Upload> = None;
    let ended = read_upload(&mut stream, peer, &who, hub, &mut upload).await;
    let result = match (ended, upload) {
        (Ended::Eof, None) => return,
        (Ended::Eof, Some(u)) => commit(u).await,
        (Ended::Refused(r), u) => {
            if let Some(u) = u {
                u.cancel().await;
                hub.pipeline.refused(&who.sender, &r);
            }
            Err(r)
        }
        (Ended::Gone, u) => {
            if let Some(u) = u {
                u.cancel().await;
            }
            return;
        }
    };
    let line = match result {
        Ok((path, s)) => {
            format!("stored {path} {} {}", s.size, hex::encode(s.hash))
        }
        Err(r) => format!("refused: {}", r.reason),
    };
    // Tell a client that waits (plain `nc` without -q0) what happened; -q0 has already gone.
    let _ = stream.write_all(format!("{line}\n").as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn commit(u: Upload) -> Result<(RemotePath, Stored), Refusal> {
    let path = u.path().clone();
    let stored = u.finish(None).await?.commit_and_wait().await?;
    Ok((path, stored))
}

async fn read_upload(
    stream: &mut TcpStream,
    peer: SocketAddr,
    who: &Uploader,
    hub: &Hub,
    upload: &mut Option<Upload>,
) -> Ended {
    let idle = hub.config.raw_idle_timeout;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        let read = tokio::select! {
            r = tokio::time::timeout(idle, stream.read_buf(&mut buf)) => r,
            // Past the grace period: a raw upload cannot resume, so it is given up.
            _ = hub.gate.abort.cancelled() => {
                return Ended::Refused(Refusal::shutting_down());
            }
        };
        match read {
            Err(_) => {
                return Ended::Refused(Refusal::new(
                    ErrorCode::Timeout,
                    format!("raw upload from {peer} went silent"),
                ))
            }
            Ok(Err(_)) => return Ended::Gone,
            Ok(Ok(0)) => return Ended::Eof,
            Ok(Ok(_)) => {}
        }
        if upload.is_none() {
            // The first bytes name the file (their type).
            let req = Request {
                path: raw_path(peer, sniff_extension(&buf), now_us()),
                size: None,
                overwrite: false,
                resume: false,
                identical_ok: false,
            };
            match hub.pipeline.admit(who, req, None).await {
                Ok(Admitted::Upload(u)) => *upload = Some(u),
                Ok(Admitted::Existing(_)) => unreachable!("resume is off"),
                // Already counted by the pipeline.
                Err(r) => {
                    let _ = stream
                        .write_all(format!("refused: {}\n", r.reason).as_bytes())
                        .await;
                    return Ended::Gone;
                }
            }
        }
        let u = upload.as_mut().expect("admitted above");
        if let Err(r) = u.write(buf.split().freeze()).await {
            // The pipeline counted it and threw the bytes away.
            upload.take();
            let _ = stream
                .write_all(format!("refused: {}\n", r.reason).as_bytes())
                .await;
            return Ended::Gone;
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
    }
}
