//! The doors for simple devices: raw TCP (a connection's bytes become one file) and UDP datagrams.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use bytes::Bytes;
use common::*;
use framewire_proto::*;
use framewire_server::DoorPolicy;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

fn stored_under(hub: &TestHub, dir: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = tree(&hub.files().join(dir))
        .into_iter()
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn raw_tcp_bytes_become_one_stored_file() {
    let hub = hub_builder()
        .config(|c| {
            c.max_file_size = 200_000;
            c.raw_idle_timeout = Duration::from_millis(300);
        })
        .raw(DoorPolicy::default())
        .start()
        .await;
    let addr = hub.raw_addr.unwrap();
    let jpeg: Vec<u8> = [
        &[0xffu8, 0xd8, 0xff, 0xe0][..],
        &vec![7u8; 150_000][..],
        &[0xff, 0xd9][..],
    ]
    .concat();

    // Like `nc -q0`: write everything, close the write side, read the hub's one-line answer.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    for c in jpeg.chunks(10_000) {
        s.write_all(c).await.unwrap();
    }
    s.shutdown().await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(T, s.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("stored raw/127.0.0.1/"), "{answer}");
    assert!(
        answer.contains(&blake3::hash(&jpeg).to_hex().to_string()),
        "{answer}"
    );
    let files = stored_under(&hub, "raw");
    assert_eq!(files.len(), 1);
    assert!(files[0].extension().unwrap() == "jpg");
    assert_eq!(std::fs::read(&files[0]).unwrap(), jpeg);
    assert_eq!(
        hub.handle.store().list("raw/", "", "", 10).unwrap().0[0].sender,
        "raw@127.0.0.1"
    );

    // Other types, by their first bytes.
    for (body, ext) in [
        (b"\x89PNG\r\n\x1a\nxxxx".to_vec(), "png"),
        (b"just text".to_vec(), "bin"),
    ] {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(&body).await.unwrap();
        s.shutdown().await.unwrap();
        let mut a = String::new();
        tokio::time::timeout(T, s.read_to_string(&mut a))
            .await
            .unwrap()
            .unwrap();
        assert!(
            a.trim_end().split(' ').nth(1).unwrap().ends_with(ext),
            "{a}"
        );
    }

    // Nothing sent: nothing stored. Silent: nothing stored. Too large: nothing stored.
    drop(tokio::net::TcpStream::connect(addr).await.unwrap());
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    silent.write_all(&[0xff, 0xd8, 0xff]).await.unwrap();
    let mut big = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = big.write_all(&vec![1u8; 300_000]).await;
    let _ = big.shutdown().await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        stored_under(&hub, "raw").len(),
        3,
        "only the three complete uploads"
    );
    let failures = hub.handle.stats().upload_failures();
    assert_eq!(failures.get("too_large"), Some(&1), "{failures:?}");
    assert_eq!(failures.get("timeout"), Some(&1), "{failures:?}");
    assert!(
        tree(&hub.data.join("spool")).is_empty(),
        "no spool left behind"
    );
    drop(silent);
    hub.stop().await;
}

#[tokio::test]
async fn udp_datagrams_carry_messages_and_frames() {
    let hub = hub_builder().udp(DoorPolicy::default()).start().await;
    let addr = hub.udp_addr.unwrap();
    let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let text = Message::Text(Text {
        id: 1,
        text: "door opened".into(),
    })
    .to_bytes()
    .unwrap();
    client.send_to(&text, addr).await.unwrap();
    let frame = Message::Frame(Frame {
        stream: "udpcam".into(),
        seq: 3,
        capture_us: 0,
        format: frame_format::JPEG,
        width: 8,
        height: 8,
        payload: Bytes::from_static(&[0xff, 0xd8, 0xff, 0xd9]),
    })
    .to_bytes()
    .unwrap();
    client.send_to(&frame, addr).await.unwrap();
    // Seed 003's UDP client: plain UTF-8, no header, is a text message from its sender.
    client.send_to("温度 21.5".as_bytes(), addr).await.unwrap();
    // Neither framewire nor UTF-8: dropped and counted.
    client.send_to(b"\xff\xfe\x00garbage", addr).await.unwrap();
    client.send_to(&text[..text.len() - 2], addr).await.unwrap();
    let ping = Message::Ping(Ping {
        nonce: 1,
        time_us: 0,
    })
    .to_bytes()
    .unwrap();
    client.send_to(&ping, addr).await.unwrap();
    let udp = hub.handle.udp_stats();
    let n = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    tokio::time::timeout(T, async {
        while n(&udp.accepted) < 3 || n(&udp.ignored) < 2 || n(&udp.invalid_utf8) < 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("all datagrams handled");
    let (events, _) = hub.handle.events().subscribe();
    assert!(events.iter().any(|e| e.kind == "message"
        && e.text == "door opened"
        && e.client.starts_with("udp@127.0.0.1")));
    assert!(events
        .iter()
        .any(|e| e.kind == "message" && e.text == "温度 21.5" && e.client == "udp@127.0.0.1"));
    assert_eq!(
        hub.handle
            .streams()
            .get("udpcam")
            .unwrap()
            .latest()
            .unwrap()
            .frame
            .seq,
        3
    );
    // Exported as PROTOCOL.md §7.1 names them, all three outcomes.
    let res = framewire_server::web::router(hub.handle.clone())
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let metrics = String::from_utf8(body.to_vec()).unwrap();
    for want in [
        "framewire_udp_datagrams_total{outcome=\"accepted\"} 3",
        "framewire_udp_datagrams_total{outcome=\"ignored\"} 2",
        "framewire_udp_datagrams_total{outcome=\"refused\"} 0",
        "framewire_udp_datagrams_total{outcome=\"invalid_utf8\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == want),
            "missing {want:?} in\n{metrics}"
        );
    }
    hub.stop().await;
}
