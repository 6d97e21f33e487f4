//! Issue 10, memory: each attack that pinned hub memory, at small scale, against a hub with a small
//! memory budget: connections holding partial large messages, a client that never reads the echoes
//! of its texts, a subscriber that never reads with the largest window, a PNG that declares
//! 8192×8192 pixels, an oversized WebSocket message; and a client holding paths with offers it
//! never sends data for.

mod common;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bytes::Bytes;
use common::*;
use framewire_proto::*;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

const MIB: usize = 1 << 20;

async fn get(hub: &TestHub, uri: &str) -> (StatusCode, Bytes) {
    let res = framewire_server::web::router(hub.handle.clone())
        .oneshot(
            Request::get(uri)
                .header("host", "localhost")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = res.status();
    (status, res.into_body().collect().await.unwrap().to_bytes())
}

/// `framewire_memory_buffered_bytes` from `/metrics`.
async fn buffered(hub: &TestHub) -> usize {
    let (_, body) = get(hub, "/metrics").await;
    let text = String::from_utf8(body.to_vec()).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("framewire_memory_buffered_bytes "))
        .expect("the metric exists")
        .parse()
        .unwrap()
}

/// The most `buffered` reads while `during` runs (sampled every 10 ms).
async fn peak_while<F: std::future::Future>(hub: &TestHub, during: F) -> (usize, F::Output) {
    tokio::pin!(during);
    let mut peak = 0;
    loop {
        tokio::select! {
            out = &mut during => return (peak.max(buffered(hub).await), out),
            _ = tokio::time::sleep(Duration::from_millis(10)) => peak = peak.max(buffered(hub).await),
        }
    }
}

async fn ping_rtt(c: &mut Raw) -> Duration {
    let t = Instant::now();
    c.send(Message::Ping(Ping {
        nonce: 7,
        time_us: 0,
    }))
    .await;
    loop {
        if let Message::Pong(_) = c.recv().await {
            return t.elapsed();
        }
    }
}

fn text(id: u32, len: usize) -> Bytes {
    Message::Text(Text {
        id,
        text: "x".repeat(len),
    })
    .to_bytes()
    .unwrap()
}

/// Reproduces: 240 connections each holding a partial 16 MiB message took the hub past 4 GiB.
/// Scaled: 8 connections each start a 3 MiB text (charged three times: read, decoded, echoed)
/// against a 10 MiB budget. One is charged; the others wait without reading, and are refused with `Busy` after the write timeout; a client
/// with small messages is served throughout.
#[tokio::test]
async fn partial_large_messages_wait_for_the_memory_budget() {
    let hub = start_hub_with(|c| {
        c.memory_budget = 10 * MIB;
        c.write_timeout = Duration::from_secs(1);
    })
    .await;
    let mut good = Raw::hello(hub.addr).await.0;
    let mut holders = Vec::new();
    for i in 0..8 {
        let (mut c, _) = Raw::hello(hub.addr).await;
        let msg = text(i, 3 * MIB);
        c.send_raw(&msg[..MIB]).await;
        holders.push((c, msg));
    }
    let (peak, refused) = peak_while(&hub, async {
        let mut worst = Duration::ZERO;
        for _ in 0..20 {
            worst = worst.max(ping_rtt(&mut good).await);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(worst < Duration::from_millis(500), "ping took {worst:?}");
        // Past the write timeout, the waiting ones are told why.
        let mut refused = 0;
        for (c, _) in holders.iter_mut() {
            let r = tokio::time::timeout(Duration::from_millis(300), c.try_recv()).await;
            if let Ok(Some(Message::Error(e))) = r {
                assert_eq!(e.code, ErrorCode::Busy, "{e:?}");
                assert!(e.message.contains("memory budget"), "{e:?}");
                refused += 1;
            }
        }
        refused
    })
    .await;
    assert!(peak <= 10 * MIB, "buffered {peak} bytes");
    assert!(peak >= 9 * MIB, "the first message was charged: {peak}");
    assert!(refused >= 6, "{refused} of 8 refused");
    hub.stop().await;
}

/// Reproduces: a client that sends 16 MiB texts and never reads the echoes pinned 1.1 GiB.
/// Scaled: 30 texts of 1 MiB; what the hub holds for it stays within one connection's queue, and
/// after the write timeout it is closed and everything is returned.
#[tokio::test]
async fn a_client_that_never_reads_its_echoes_holds_one_queue() {
    let hub = start_hub_with(|c| {
        c.memory_budget = 64 * MIB;
        c.write_timeout = Duration::from_secs(1);
    })
    .await;
    let (mut c, _) = Raw::hello(hub.addr).await;
    let (peak, _) = peak_while(&hub, async {
        let send = async {
            for i in 0..30 {
                if c.s.write_all(&text(i, MIB)).await.is_err() {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), send).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
    })
    .await;
    // The outgoing queue (4 MiB), one echo waiting for room, and one text being read (charged
    // three times: read, decoded, encoded).
    assert!(peak <= 9 * MIB, "buffered {peak} bytes");
    tokio::time::timeout(T, async {
        while buffered(&hub).await > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("all returned after the close");
    hub.stop().await;
}

/// Reproduces: a subscriber that never reads, with window 65,535 and 16 MiB frames, pinned
/// 1.15 GiB. Scaled: 1 MiB frames; the window granted is capped, and the frames held for it stay
/// within its queue.
#[tokio::test]
async fn a_subscriber_that_never_reads_pins_at_most_its_queue() {
    let hub = start_hub_with(|c| {
        c.memory_budget = 256 * MIB;
        c.write_timeout = Duration::from_secs(2);
    })
    .await;
    let (mut sub, _) = Raw::hello(hub.addr).await;
    sub.send(Message::Subscribe(Subscribe {
        stream: "big".into(),
        window: u16::MAX,
    }))
    .await;
    match sub.recv().await {
        Message::Subscribed(s) => assert_eq!(s.window, 64, "the window is capped"),
        other => panic!("expected Subscribed, got {other:?}"),
    }
    let (mut publisher, _) = Raw::hello(hub.addr).await;
    let (peak, _) = peak_while(&hub, async {
        for seq in 1..=40u64 {
            publisher
                .send(Message::Frame(Frame {
                    stream: "big".into(),
                    seq,
                    capture_us: 0,
                    format: frame_format::JPEG,
                    width: 1,
                    height: 1,
                    payload: Bytes::from(vec![seq as u8; MIB]),
                }))
                .await;
            // Its acknowledgement: the publisher reads.
            loop {
                if let Message::FrameAck(_) = publisher.recv().await {
                    break;
                }
            }
        }
    })
    .await;
    // The subscriber's queue (4 MiB of frames, one more waiting), the newest frame, and the
    // frame being read.
    assert!(peak <= 8 * MIB, "buffered {peak} bytes");
    hub.stop().await;
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG that declares `w`×`h` RGB pixels (the data is a stub: only the header matters).
fn png_declaring(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    png.extend_from_slice(&[0u8; 4096]);
    png
}

/// Reproduces: a 191 KiB PNG of 8192×8192 pixels cost about 300 MiB per `/thumbs` request.
#[tokio::test]
async fn thumbnails_of_huge_images_are_refused_before_decoding() {
    let hub = hub_builder().http().start().await;
    let (mut c, _) = Raw::hello(hub.addr).await;
    assert_stored(
        &c.upload(1, "huge.png", &png_declaring(8192, 8192), 0).await,
        StoredStatus::New,
    );
    let (peak, (status, body)) = peak_while(&hub, get(&hub, "/thumbs/huge.png")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("8192x8192"), "{body}");
    assert!(peak < MIB, "buffered {peak} bytes");
    hub.stop().await;
}

/// Reproduces: an unfinished 60 MiB WebSocket message cost 79 MiB. A message over the limit is
/// refused from its header: the hub closes the socket without reading the body.
#[tokio::test]
async fn oversized_websocket_messages_close_the_socket() {
    let hub = hub_builder().http().start().await;
    let mut s = tokio::net::TcpStream::connect(hub.http_addr.unwrap())
        .await
        .unwrap();
    s.write_all(b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    // A masked text frame announcing 60 MiB, and its first 64 KiB.
    let len = 60u64 << 20;
    let mut frame = vec![0x81, 0x80 | 127];
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    frame.extend_from_slice(&[b'x' ^ 1; 64 * 1024]);
    let _ = s.write_all(&frame).await;
    // The hub ends the connection (a close frame, then EOF, or a reset) instead of waiting for
    // the rest.
    let ended = tokio::time::timeout(T, async {
        let mut sink = vec![0u8; 64 * 1024];
        loop {
            match s.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the hub closed the WebSocket");
    hub.stop().await;
}

/// Reproduces: a client could hold 256 paths with offers it never sends data for, so others got
/// Busy. Offers left without data past the offer timeout are withdrawn and their paths released.
#[tokio::test]
async fn offers_without_data_are_withdrawn_and_release_their_paths() {
    let hub = start_hub_with(|c| c.offer_timeout = Duration::from_millis(800)).await;
    let (mut squatter, _) = Raw::hello(hub.addr).await;
    for id in 1..=20u32 {
        squatter
            .send(Message::Offer(Offer {
                id,
                flags: 0,
                size: 100,
                path: format!("held/{id}.bin"),
            }))
            .await;
        assert!(matches!(squatter.recv().await, Message::Accept(_)));
    }
    // Meanwhile another client cannot have those paths.
    let (mut other, _) = Raw::hello(hub.addr).await;
    let r = other.upload(1, "held/1.bin", &[7u8; 100], 0).await;
    assert_rejected(&r, ErrorCode::Busy);
    // Past the offer timeout the squatter is told, for every offer.
    let started = Instant::now();
    let mut withdrawn = 0;
    while withdrawn < 20 {
        match squatter.recv().await {
            Message::Rejected(r) => {
                assert_eq!(r.code, ErrorCode::Timeout, "{r:?}");
                withdrawn += 1;
            }
            other => panic!("expected Rejected, got {other:?}"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    // Its late data is ignored, not a protocol error: the connection still works.
    squatter
        .send(Message::Data(Data {
            id: 3,
            bytes: Bytes::from_static(b"late"),
        }))
        .await;
    assert!(ping_rtt(&mut squatter).await < T);
    // The paths are free.
    let r = other.upload(2, "held/1.bin", &[7u8; 100], 0).await;
    assert_stored(&r, StoredStatus::New);
    hub.stop().await;
}
