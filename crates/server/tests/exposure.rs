//! What a token may see, and what a client may write into the hub's logs.

mod common;

use std::time::Duration;

use common::*;
use framewire_proto::*;
use framewire_server::auth::{Perms, Tokens};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const VIEWER: &str = "viewer-token-0123456789";
const OPS: &str = "ops-token-0123456789";

fn tokens() -> Tokens {
    let mut t = Tokens::default();
    t.add(VIEWER, "viewer", Perms::SUBSCRIBE);
    t.add(OPS, "ops", Perms::ALL);
    t
}

async fn start() -> TestHub {
    hub_builder()
        .config(|c| c.tokens = tokens())
        .http()
        .start()
        .await
}

/// Opens `/ws` with `token` and returns the first `n` JSON messages.
async fn ws_messages(hub: &TestHub, token: &str, n: usize) -> Vec<Value> {
    let mut s = TcpStream::connect(hub.http_addr.unwrap()).await.unwrap();
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let mut out = Vec::new();
    tokio::time::timeout(T, async {
        while out.len() < n {
            out.push(serde_json::from_str(&ws_text(&mut s).await).unwrap());
        }
    })
    .await
    .expect("messages in time");
    out
}

async fn api(hub: &TestHub, path: &str, token: &str) -> (String, String) {
    let mut s = TcpStream::connect(hub.http_addr.unwrap()).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(T, s.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// Reproduces: `/ws` gave a subscribe-only token the whole event log (file names, texts,
/// commands) while `/api/events` answered 403 to the same token; `/api/clients` showed every
/// client's IP address to any token.
#[tokio::test]
async fn a_viewer_token_sees_neither_the_event_log_nor_addresses() {
    let hub = start().await;
    let (mut c, welcome) = Raw::greet(hub.addr, "ops", OPS).await;
    assert!(matches!(welcome, Message::Welcome(_)));
    c.send(Message::Text(Text {
        id: 1,
        text: "secret plan".into(),
    }))
    .await;
    assert!(matches!(c.recv().await, Message::Text(_)));

    let (status, _) = api(&hub, "/api/events", VIEWER).await;
    assert!(status.contains("403"), "{status}");
    // The viewer's socket: stats only, no event, no address.
    for m in ws_messages(&hub, VIEWER, 2).await {
        assert_eq!(m["type"], "stats", "{m}");
        for client in m["clients"].as_array().unwrap() {
            assert!(client.get("addr").is_none(), "{client}");
        }
    }
    let (status, body) = api(&hub, "/api/clients", VIEWER).await;
    assert!(status.contains("200"), "{status}");
    assert!(!body.contains("127.0.0.1"), "{body}");

    // The operator sees both.
    let ops = ws_messages(&hub, OPS, 3).await;
    assert!(ops.iter().any(|m| m["text"] == "secret plan"), "{ops:?}");
    let (_, body) = api(&hub, "/api/clients", OPS).await;
    assert!(body.contains("127.0.0.1"), "{body}");
    drop(c);
    hub.stop().await;
}

/// Reproduces: five 16 MiB texts added 80 MiB to the event log at the default level, and a
/// newline in a text forged a log line.
#[tokio::test]
async fn client_text_is_bounded_in_the_event_log() {
    let hub = start_hub().await;
    let (mut c, _) = Raw::hello(hub.addr).await;
    for i in 0..5 {
        c.send(Message::Text(Text {
            id: i,
            text: format!("line\nFORGED {}", "x".repeat(8 << 20)),
        }))
        .await;
        assert!(matches!(c.recv().await, Message::Text(_)));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (events, _) = hub.handle.events().subscribe();
    let texts: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == "message")
        .map(|e| e.text.as_str())
        .collect();
    assert_eq!(texts.len(), 5);
    for t in texts {
        assert!(t.len() < 1100, "{}", t.len());
        assert!(t.starts_with("line\\nFORGED"), "escaped: {}", &t[..20]);
    }
    hub.stop().await;
}
