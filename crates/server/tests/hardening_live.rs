//! Issue 10, live side, each attack at small scale: a publish token impersonating another's
//! device or stream (and UDP overwriting a connection's stream), a device that stops reading
//! (its callers and the hub must not wait on it), and an unbounded number of stream names.

mod common;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use bytes::Bytes;
use common::*;
use framewire_proto::*;
use framewire_server::auth::Tokens;
use framewire_server::DoorPolicy;
use http_body_util::BodyExt;
use tower::ServiceExt;

const CAM_A: &str = "cam-a-token-0123456789";
const CAM_B: &str = "cam-b-token-0123456789";
const DOORCAM: &str = "doorcam-token-0123456789";
const ADMIN: &str = "admin-token-0123456789";

fn tokens(dir: &std::path::Path) -> Tokens {
    let f = dir.join("tokens");
    std::fs::write(
        &f,
        format!(
            "{CAM_A} camA publish\n{CAM_B} camB publish\n{DOORCAM} doorcam publish names=cam-*,door\n{ADMIN} ops admin\n"
        ),
    )
    .unwrap();
    let mut t = Tokens::default();
    t.load_file(&f).unwrap();
    t
}

async fn hello_with(addr: std::net::SocketAddr, token: &str) -> Raw {
    let mut r = Raw::connect(addr).await;
    r.send(Message::Hello(Hello {
        version: VERSION,
        name: "t".into(),
        token: token.into(),
    }))
    .await;
    match r.recv().await {
        Message::Welcome(_) => r,
        other => panic!("expected Welcome, got {other:?}"),
    }
}

fn frame(stream: &str, seq: u64) -> Message {
    Message::Frame(Frame {
        stream: stream.into(),
        seq,
        capture_us: 0,
        format: frame_format::JPEG,
        width: 1,
        height: 1,
        payload: Bytes::from(vec![seq as u8; 16]),
    })
}

async fn register(c: &mut Raw, name: &str) -> Message {
    c.send(Message::RegisterDevice(RegisterDevice {
        name: name.into(),
    }))
    .await;
    c.recv().await
}

fn expect_forbidden(m: &Message) -> String {
    match m {
        Message::Error(e) if e.code == ErrorCode::Forbidden && e.id == 0 => e.message.clone(),
        other => panic!("expected Error{{Forbidden, 0}}, got {other:?}"),
    }
}

fn latest_seq(hub: &TestHub, stream: &str) -> Option<u64> {
    hub.handle
        .streams()
        .get(stream)
        .and_then(|s| s.latest())
        .map(|f| f.frame.seq)
}

/// Reproduces: a token for camera A registered as device `camB` (the newest registration won),
/// received camB's commands, and its frame became camB's latest.
#[tokio::test]
async fn a_name_belongs_to_its_connection_unless_same_token_or_admin() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start_hub_with(|c| {
        c.tokens = tokens(dir.path());
        c.command_timeout = Duration::from_secs(5);
    })
    .await;
    let mut b = hello_with(hub.addr, CAM_B).await;
    assert!(matches!(
        register(&mut b, "camB").await,
        Message::Registered(_)
    ));
    b.send(frame("camB", 1)).await;
    assert!(matches!(b.recv().await, Message::FrameAck(_)));

    // Camera A may claim neither the device nor the stream.
    let mut a = hello_with(hub.addr, CAM_A).await;
    let why = expect_forbidden(&register(&mut a, "camB").await);
    assert!(why.contains("belongs to another connection"), "{why}");
    assert!(a.try_recv().await.is_none(), "closed");
    let mut a = hello_with(hub.addr, CAM_A).await;
    a.send(frame("camB", 99)).await;
    expect_forbidden(&a.recv().await);
    let mut a = hello_with(hub.addr, CAM_A).await;
    a.send(Message::Publish(Publish {
        stream: "camB".into(),
        max_latency_ms: 0,
    }))
    .await;
    expect_forbidden(&a.recv().await);
    assert_eq!(latest_seq(&hub, "camB"), Some(1));

    // camB's commands still reach camB.
    let devices = hub.handle.clone();
    let call = tokio::spawn(async move {
        devices
            .devices()
            .call("camB", "ping", vec![], Duration::from_secs(5))
            .await
    });
    let Message::Command(c) = b.recv().await else {
        panic!("camB did not get its command")
    };
    b.send(Message::Reply(Reply {
        id: c.id,
        status: ReplyStatus::Ok,
        body: Bytes::from_static(b"pong"),
    }))
    .await;
    assert_eq!(call.await.unwrap().body, Bytes::from_static(b"pong"));

    // The same token reconnecting takes its names back: the newest wins, the old one loses them.
    let mut b2 = hello_with(hub.addr, CAM_B).await;
    assert!(matches!(
        register(&mut b2, "camB").await,
        Message::Registered(_)
    ));
    b2.send(frame("camB", 2)).await;
    assert!(matches!(b2.recv().await, Message::FrameAck(_)));
    b.send(frame("camB", 3)).await;
    let why = expect_forbidden(&b.recv().await);
    assert!(why.contains("taken over"), "{why}");
    assert_eq!(latest_seq(&hub, "camB"), Some(2));

    // An admin token may take any name.
    let mut ops = hello_with(hub.addr, ADMIN).await;
    assert!(matches!(
        register(&mut ops, "camB").await,
        Message::Registered(_)
    ));

    // names=cam-*,door: those names only.
    let mut d = hello_with(hub.addr, DOORCAM).await;
    let why = expect_forbidden(&register(&mut d, "doorbell").await);
    assert!(why.contains("may not claim"), "{why}");
    let mut d = hello_with(hub.addr, DOORCAM).await;
    assert!(matches!(
        register(&mut d, "door").await,
        Message::Registered(_)
    ));
    assert!(matches!(
        register(&mut d, "cam-7").await,
        Message::Registered(_)
    ));
    d.send(frame("lobby", 1)).await;
    expect_forbidden(&d.recv().await);
    drop((b2, ops, d));
    hub.stop().await;
}

/// On a hub without tokens the first holder keeps a name while connected; UDP cannot overwrite
/// a stream a connection publishes.
#[tokio::test]
async fn without_tokens_the_first_holder_keeps_the_name_and_udp_cannot_overwrite() {
    let hub = hub_builder().udp(DoorPolicy::default()).start().await;
    let (mut first, _) = Raw::hello(hub.addr).await;
    assert!(matches!(
        register(&mut first, "cam").await,
        Message::Registered(_)
    ));
    first.send(frame("cam", 1)).await;
    assert!(matches!(first.recv().await, Message::FrameAck(_)));
    let (mut second, _) = Raw::hello(hub.addr).await;
    expect_forbidden(&register(&mut second, "cam").await);
    let (mut second, _) = Raw::hello(hub.addr).await;
    second.send(frame("cam", 50)).await;
    expect_forbidden(&second.recv().await);

    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let stats = hub.handle.udp_stats();
    let refused = stats.refused.load(std::sync::atomic::Ordering::Relaxed);
    udp.send_to(&frame("cam", 99).to_bytes().unwrap(), hub.udp_addr.unwrap())
        .await
        .unwrap();
    tokio::time::timeout(T, async {
        while stats.refused.load(std::sync::atomic::Ordering::Relaxed) == refused {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the UDP frame was refused");
    assert_eq!(latest_seq(&hub, "cam"), Some(1));

    // Once the holder leaves, the name is free.
    drop(first);
    tokio::time::timeout(T, async {
        while !hub.handle.devices().list().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    let (mut third, _) = Raw::hello(hub.addr).await;
    assert!(matches!(
        register(&mut third, "cam").await,
        Message::Registered(_)
    ));
    third.send(frame("cam", 7)).await;
    assert!(matches!(third.recv().await, Message::FrameAck(_)));
    drop(third);
    hub.stop().await;
}

/// Reproduces: a device that stopped reading was never closed, and its callers waited past their
/// timeouts (HTTP commands with timeout_ms 2000 had no answer after 40 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_stops_reading_is_closed_and_never_blocks_its_callers() {
    let hub = start_hub_with(|c| c.write_timeout = Duration::from_secs(1)).await;
    // Registers, then never reads again.
    let (mut stalled, _) = Raw::hello(hub.addr).await;
    assert!(matches!(
        register(&mut stalled, "stall").await,
        Message::Registered(_)
    ));
    // About 1 MiB a command (strings are at most 64 KiB each): 100 MiB in all, more than the
    // socket buffers and the device's queue hold together.
    let big: Vec<String> = vec!["x".repeat(60_000); 17];
    let started = Instant::now();
    let calls: Vec<_> = (0..100)
        .map(|_| {
            let h = hub.handle.clone();
            let args = big.clone();
            tokio::spawn(async move {
                let t = Instant::now();
                let o = h
                    .devices()
                    .call("stall", "x", args, Duration::from_secs(2))
                    .await;
                (o.status, t.elapsed())
            })
        })
        .collect();
    for c in calls {
        let (status, took) = c.await.unwrap();
        assert_ne!(status, ReplyStatus::Ok);
        assert!(
            took < Duration::from_millis(2_900),
            "a caller waited {took:?}"
        );
    }
    // The hub closed the device: its name is gone, and its socket ends.
    tokio::time::timeout(Duration::from_secs(5), async {
        while !hub.handle.devices().list().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the stalled device was closed");
    assert!(started.elapsed() < Duration::from_secs(8));
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        use tokio::io::AsyncReadExt;
        let mut sink = vec![0u8; 1 << 20];
        while stalled.s.read(&mut sink).await.unwrap_or(0) > 0 {}
    })
    .await;
    assert!(drained.is_ok(), "the hub closed the socket");
    // The hub still serves others.
    let (mut c, _) = Raw::hello(hub.addr).await;
    c.send(Message::Ping(Ping {
        nonce: 1,
        time_us: 0,
    }))
    .await;
    assert!(matches!(c.recv().await, Message::Pong(_)));
    hub.stop().await;
}

async fn get_body(hub: &TestHub, uri: &str) -> Bytes {
    let res = framewire_server::web::router(hub.handle.clone())
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    res.into_body().collect().await.unwrap().to_bytes()
}

/// Reproduces: 100,000 stream names over UDP made `/metrics` 396 MiB and `/api/streams` 30 MiB.
#[tokio::test]
async fn stream_names_are_capped_and_expire() {
    let hub = hub_builder()
        .config(|c| {
            c.max_streams = 100;
            c.stream_ttl = Duration::from_secs(2);
        })
        .http()
        .udp(DoorPolicy::default())
        .start()
        .await;
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = hub.udp_addr.unwrap();
    let stats = hub.handle.udp_stats();
    let counted = || {
        stats.accepted.load(std::sync::atomic::Ordering::Relaxed)
            + stats.refused.load(std::sync::atomic::Ordering::Relaxed)
    };
    for i in 0..2_000u32 {
        udp.send_to(&frame(&format!("s{i:05}"), 1).to_bytes().unwrap(), to)
            .await
            .unwrap();
        if i % 50 == 49 {
            // Let the door keep up: loopback drops datagrams a full buffer cannot take.
            let want = u64::from(i + 1);
            let _ = tokio::time::timeout(Duration::from_millis(500), async {
                while counted() < want {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
            .await;
        }
    }
    assert_eq!(hub.handle.streams().len(), 100);
    assert!(
        stats.refused.load(std::sync::atomic::Ordering::Relaxed) >= 1_500,
        "new streams past the cap are refused and counted"
    );
    let listed: serde_json::Value =
        serde_json::from_slice(&get_body(&hub, "/api/streams").await).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 100);
    let metrics = get_body(&hub, "/metrics").await;
    let text = String::from_utf8_lossy(&metrics);
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("framewire_stream_frames_in_total{"))
            .count(),
        100
    );
    // Native: a new stream past the cap is refused.
    let (mut c, _) = Raw::hello(hub.addr).await;
    c.send(frame("one-too-many", 1)).await;
    match c.recv().await {
        Message::Error(e) => assert_eq!(e.code, ErrorCode::Busy, "{e:?}"),
        other => panic!("expected Error{{Busy}}, got {other:?}"),
    }
    // Streams without a publisher expire after the TTL: room again.
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    let (mut c, _) = Raw::hello(hub.addr).await;
    c.send(frame("fresh", 1)).await;
    assert!(matches!(c.recv().await, Message::FrameAck(_)));
    let listed: serde_json::Value =
        serde_json::from_slice(&get_body(&hub, "/api/streams").await).unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fresh"]);
    drop(c);
    hub.stop().await;
}
