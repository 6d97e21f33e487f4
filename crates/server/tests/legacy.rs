//! The legacy doors at the byte level: each seed client's conversation, played against a hub.

use std::net::SocketAddr;
use std::time::Duration;

use framewire_server::{Config, HubBuilder, LegacyDoor, RunningHub};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const T: Duration = Duration::from_secs(10);

/// A JPEG-looking image (the hub only sniffs its first bytes).
fn image() -> Vec<u8> {
    let mut v = vec![0xff, 0xd8, 0xff, 0xe0];
    v.extend((0..3000u32).map(|i| (i * 7) as u8));
    v
}

fn b64(data: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

async fn start(spec: &str) -> (RunningHub, tempfile::TempDir, SocketAddr) {
    let dir = tempfile::tempdir().unwrap();
    let door: LegacyDoor = spec.parse().unwrap();
    let hub = HubBuilder::new(Config::new(dir.path().join("data")))
        .listen("127.0.0.1:0")
        .legacy("127.0.0.1:0", door)
        .start()
        .await
        .unwrap();
    let addr = hub.legacy_addrs()[0].1;
    (hub, dir, addr)
}

async fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut b = vec![0; n];
    tokio::time::timeout(T, s.read_exact(&mut b))
        .await
        .unwrap()
        .unwrap();
    b
}

/// Files under `files/DIR`, found once the hub has stored `n` (a legacy client gets no answer).
async fn stored(dir: &std::path::Path, n: usize) -> Vec<(String, Vec<u8>)> {
    tokio::time::timeout(T, async {
        loop {
            let mut found = Vec::new();
            let mut stack = vec![dir.to_path_buf()];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                    if e.path().is_dir() {
                        stack.push(e.path());
                    } else {
                        let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
                        found.push((rel, std::fs::read(e.path()).unwrap()));
                    }
                }
            }
            if found.len() >= n {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("stored in time")
}

#[tokio::test]
async fn seed000_image_greets_and_stores_the_decoded_image_at_its_timestamp() {
    let (hub, dir, addr) = start("seed000-image").await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    assert_eq!(read_n(&mut s, 26).await, b"Hi, Welcome to the server!");
    s.write_all(b64(&image()).as_bytes()).await.unwrap();
    s.write_all(b"timestamp1733338273.1234567").await.unwrap();
    s.shutdown().await.unwrap();
    let files = stored(&dir.path().join("data/files/seed000"), 1).await;
    assert_eq!(files.len(), 1);
    assert!(
        files[0].0.starts_with("127.0.0.1/20241204-185113.123456-"),
        "{}",
        files[0].0
    );
    assert!(files[0].0.ends_with(".jpg"));
    assert_eq!(files[0].1, image());
    hub.shutdown().await.unwrap();
}

#[tokio::test]
async fn seed000_chat_answers_each_read_and_makes_it_a_message() {
    let (hub, _dir, addr) = start("seed000-chat").await;
    let (_, mut events) = hub.handle().events().subscribe();
    let mut s = TcpStream::connect(addr).await.unwrap();
    for line in ["hello", "second"] {
        s.write_all(line.as_bytes()).await.unwrap();
        assert_eq!(read_n(&mut s, 28).await, b"server received you message.");
        let e = tokio::time::timeout(T, events.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((e.kind, e.text.as_str()), ("message", line));
        assert_eq!(e.client, "seed000-chat@127.0.0.1");
    }
    hub.shutdown().await.unwrap();
}

#[tokio::test]
async fn seed001_plays_the_80_ms_rule_and_publishes_the_frames() {
    let (hub, _dir, addr) = start("seed001-stream:stream=cam").await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let jpeg = image();
    // On time: `1` and the 1,024-byte answer.
    let time = read_n(&mut s, 32).await;
    let t: f64 = std::str::from_utf8(&time).unwrap().trim().parse().unwrap();
    assert!(t > 1.7e9);
    s.write_all(format!("{:<32}", jpeg.len()).as_bytes())
        .await
        .unwrap();
    s.write_all(&jpeg).await.unwrap();
    s.write_all(&time).await.unwrap();
    let ok = read_n(&mut s, 1 + 1024).await;
    assert_eq!(ok[0], b'1');
    assert_eq!(
        &ok[1..],
        format!("{:<1024}", "received and not delay").as_bytes()
    );
    let frame = hub.handle().streams().get("cam").unwrap().latest().unwrap();
    assert_eq!(frame.frame.payload.as_ref(), jpeg.as_slice());
    assert_eq!(frame.frame.seq, 1);
    // Late (a time a second old echoed): `0`, nothing published.
    let _ = read_n(&mut s, 32).await;
    s.write_all(format!("{:<32}", jpeg.len()).as_bytes())
        .await
        .unwrap();
    s.write_all(&jpeg).await.unwrap();
    s.write_all(format!("{:<32}", t - 1.0).as_bytes())
        .await
        .unwrap();
    assert_eq!(read_n(&mut s, 1).await, b"0");
    // The next exchange begins with the hub's time again.
    let _ = read_n(&mut s, 32).await;
    let cam = hub.handle().streams().get("cam").unwrap();
    assert_eq!(cam.latest().unwrap().frame.seq, 1);
    hub.shutdown().await.unwrap();
}

#[tokio::test]
async fn seed002_texts_become_commands_and_exit_closes() {
    let (hub, _dir, addr) = start("seed002-control:device=cam").await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    assert_eq!(read_n(&mut s, 7).await, b"Welcome");
    s.write_all(b"c").await.unwrap();
    let mut b = vec![0; 1024];
    let n = tokio::time::timeout(T, s.read(&mut b))
        .await
        .unwrap()
        .unwrap();
    // No camera connected: the reason instead of `Received`.
    assert_eq!(
        &b[..n],
        b"no device named \"cam\" is connected",
        "{}",
        String::from_utf8_lossy(&b[..n])
    );
    s.write_all(b"exit").await.unwrap();
    let n = tokio::time::timeout(T, s.read(&mut b))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0, "exit: closed without an answer");
    hub.shutdown().await.unwrap();
}

#[tokio::test]
async fn seed003_stores_each_file_decoded_under_its_name() {
    let (hub, dir, addr) = start("seed003-batch").await;
    let name = "0123456789abcdef0123456789abcdef";
    for _ in 0..2 {
        // The same image twice: stored once, the second is unchanged, not refused.
        let mut s = TcpStream::connect(addr).await.unwrap();
        let body = b64(&image());
        s.write_all(format!("{:016}", body.len() + name.len()).as_bytes())
            .await
            .unwrap();
        s.write_all(name.as_bytes()).await.unwrap();
        s.write_all(body.as_bytes()).await.unwrap();
        s.shutdown().await.unwrap();
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(T, s.read_to_end(&mut rest)).await;
        assert!(rest.is_empty(), "the seed's server answers nothing");
    }
    let files = stored(&dir.path().join("data/files/seed003"), 1).await;
    assert_eq!(files, vec![(format!("{name}.jpg"), image())]);
    hub.shutdown().await.unwrap();
}

#[tokio::test]
async fn seed004_greets_takes_commands_and_stores_the_file_with_nothing_prepended() {
    let (hub, dir, addr) = start("seed004-stm32").await;
    let (_, mut events) = hub.handle().events().subscribe();
    let mut s = TcpStream::connect(addr).await.unwrap();
    assert_eq!(read_n(&mut s, 12).await, b"hello client");
    s.write_all(b"hello server").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.write_all(b"c").await.unwrap();
    s.write_all(b"weeding").await.unwrap();
    let e = tokio::time::timeout(T, async {
        loop {
            let e = events.recv().await.unwrap();
            if e.kind == "message" {
                return e;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(e.text, "weeding");
    s.write_all(b"f").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    for line in image().split_inclusive(|b| *b == b'\n') {
        s.write_all(line).await.unwrap();
    }
    s.shutdown().await.unwrap();
    let files = stored(&dir.path().join("data/files/seed004"), 1).await;
    assert_eq!(files.len(), 1);
    assert!(files[0].0.ends_with(".jpg"), "{}", files[0].0);
    assert_eq!(files[0].1, image());
    hub.shutdown().await.unwrap();
}
