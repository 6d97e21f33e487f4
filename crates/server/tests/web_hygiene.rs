//! Issue 10, finding 8 ("web hygiene"): each test reproduces an attack from a browser or a
//! guesser at small scale, over a real HTTP socket.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use framewire_proto::*;
use framewire_server::auth::{Perms, Tokens};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "right-token-0123456789";

fn tokens() -> Tokens {
    let mut t = Tokens::default();
    t.add(TOKEN, "ops", Perms::ALL);
    t
}

/// An answer: status code, header block (lower-cased names), body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Sends `method path` with `headers` (each `Name: value`) and `body`, and reads the whole answer.
async fn send(hub: &TestHub, method: &str, path: &str, headers: &[&str], body: &str) -> Answer {
    let mut s = TcpStream::connect(hub.http_addr.unwrap()).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("host:"))
    {
        req.push_str("Host: localhost\r\n");
    }
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(T, s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let out = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// Reads only the head of an answer that never ends (MJPEG), and what follows, for `wait`.
async fn open_stream(hub: &TestHub, path: &str, wait: Duration) -> String {
    let mut s = TcpStream::connect(hub.http_addr.unwrap()).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    let _ = tokio::time::timeout(wait, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

fn frame(seq: u64, payload: &'static [u8]) -> Message {
    Message::Frame(Frame {
        stream: "cam".into(),
        seq,
        capture_us: 1,
        format: frame_format::JPEG,
        width: 4,
        height: 4,
        payload: Bytes::from_static(payload),
    })
}

const HTML: &[u8] = b"<html><script>alert(document.cookie)</script></html>";
const JPEG: &[u8] = b"\xff\xd8\xff\xe0 a jpeg \xff\xd9";

/// Reproduces finding 8.1: a page on `evil.example` whose name is rebound to 127.0.0.1 reached
/// the open hub's API with `Host: evil.example`.
#[tokio::test]
async fn a_rebound_host_name_is_refused() {
    let hub = hub_builder()
        .config(|c| c.allowed_hosts = vec!["hub.local".into()])
        .http()
        .start()
        .await;
    let port = hub.http_addr.unwrap().port();
    let evil = send(
        &hub,
        "GET",
        "/api/streams",
        &["Host: evil.example:7879"],
        "",
    )
    .await;
    assert_eq!(evil.status, 421, "{}", evil.body);
    assert!(
        evil.body.contains("--allowed-host evil.example"),
        "{}",
        evil.body
    );
    let evil = send(&hub, "GET", "/", &["Host: localhost.evil.example"], "").await;
    assert_eq!(evil.status, 421);
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "192.168.1.7".to_owned(),
        format!("HUB.local:{port}"),
    ] {
        let ok = send(&hub, "GET", "/api/streams", &[&format!("Host: {host}")], "").await;
        assert_eq!(ok.status, 200, "{host}: {}", ok.body);
    }
}

/// Reproduces finding 8.2: no CSP, framing or sniffing protection on any answer.
#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let hub = hub_builder().http().start().await;
    let (mut publisher, _) = Raw::hello(hub.addr).await;
    publisher.send(frame(1, JPEG)).await;
    assert!(matches!(publisher.recv().await, Message::FrameAck(_)));
    let mut answers = vec![];
    for path in ["/", "/api/streams", "/nope", "/assets/app.js"] {
        answers.push(send(&hub, "GET", path, &[], "").await.head);
    }
    answers.push(
        send(&hub, "GET", "/", &["Host: evil.example"], "")
            .await
            .head,
    );
    // The never-ending MJPEG answer gets them too, and its frames still flow (nothing buffers).
    let mjpeg = open_stream(&hub, "/streams/cam.mjpeg", Duration::from_millis(500)).await;
    assert!(mjpeg.contains("a jpeg"), "{mjpeg}");
    answers.push(mjpeg.split("\r\n\r\n").next().unwrap().to_owned());
    for head in answers {
        let lower = head.to_ascii_lowercase();
        for want in [
            "content-security-policy: default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
            "x-frame-options: deny",
            "x-content-type-options: nosniff",
            "referrer-policy: same-origin",
        ] {
            assert!(lower.contains(want), "{want} missing in\n{head}");
        }
    }
    // The dashboard works under that policy: no inline script or style.
    let page = send(&hub, "GET", "/", &[], "").await.body;
    let login = send(&hub, "GET", "/login", &[], "").await.body;
    for html in [&page, &login] {
        assert!(
            !html.contains("<style") && !html.contains("style="),
            "{html}"
        );
        for script in html.split("<script").skip(1) {
            assert!(
                script.trim_start().starts_with("src="),
                "inline script in {html}"
            );
        }
    }
}

/// Reproduces finding 8.2: a publisher's HTML was served from `latest.jpg` and in MJPEG as
/// `image/jpeg` (with sniffing, a page of the hub's origin).
#[tokio::test]
async fn only_jpeg_bytes_are_served_as_jpeg() {
    let hub = hub_builder().http().start().await;
    let (mut publisher, _) = Raw::hello(hub.addr).await;
    publisher.send(frame(1, HTML)).await;
    assert!(matches!(publisher.recv().await, Message::FrameAck(_)));
    let latest = send(&hub, "GET", "/streams/cam/latest.jpg", &[], "").await;
    assert_eq!(latest.status, 415, "{}", latest.body);
    assert!(!latest.body.contains("<script>"));

    let viewer = tokio::spawn({
        let addr = hub.http_addr.unwrap();
        async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /streams/cam.mjpeg HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .await
                .unwrap();
            let mut out = Vec::new();
            let mut buf = [0u8; 4096];
            while !String::from_utf8_lossy(&out).contains("a jpeg") {
                let n = s.read(&mut buf).await.unwrap();
                assert!(n > 0);
                out.extend_from_slice(&buf[..n]);
            }
            String::from_utf8_lossy(&out).into_owned()
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    publisher.send(frame(2, HTML)).await;
    assert!(matches!(publisher.recv().await, Message::FrameAck(_)));
    publisher.send(frame(3, JPEG)).await;
    assert!(matches!(publisher.recv().await, Message::FrameAck(_)));
    let seen = tokio::time::timeout(T, viewer).await.unwrap().unwrap();
    assert!(!seen.contains("<script>"), "{seen}");
    assert!(seen.contains("X-Frame-Seq: 3"), "{seen}");

    let latest = send(&hub, "GET", "/streams/cam/latest.jpg", &[], "").await;
    assert_eq!(latest.status, 200);
    assert_eq!(latest.header("content-type"), Some("image/jpeg"));
}

/// Reproduces finding 8.3: a page on another site logged the browser in with the attacker's token
/// (login CSRF), and could post commands and uploads the same way.
#[tokio::test]
async fn cross_site_posts_are_refused() {
    let hub = hub_builder()
        .config(|c| c.tokens = tokens())
        .http()
        .start()
        .await;
    let port = hub.http_addr.unwrap().port();
    let host = format!("Host: 127.0.0.1:{port}");
    let form = format!("token={TOKEN}");
    let bearer = format!("Authorization: Bearer {TOKEN}");
    for from in [
        "Origin: https://evil.example",
        "Origin: null",
        &format!("Origin: http://127.0.0.1:{}", port + 1),
        "Referer: https://evil.example/page.html",
    ] {
        let login = send(
            &hub,
            "POST",
            "/login",
            &[
                &host,
                from,
                "Content-Type: application/x-www-form-urlencoded",
            ],
            &form,
        )
        .await;
        assert_eq!(login.status, 403, "{from}: {}", login.body);
        assert!(login.header("set-cookie").is_none());
        let put = send(&hub, "PUT", "/files/csrf.txt", &[&host, from, &bearer], "x").await;
        assert_eq!(put.status, 403, "{from}");
        let cmd = send(
            &hub,
            "POST",
            "/api/devices/cam/commands",
            &[&host, from, &bearer, "Content-Type: application/json"],
            r#"{"verb":"reboot"}"#,
        )
        .await;
        assert_eq!(cmd.status, 403, "{from}");
        let logout = send(&hub, "POST", "/logout", &[&host, from], "").await;
        assert_eq!(logout.status, 403, "{from}");
    }
    assert!(!hub.files().join("csrf.txt").exists());
    // The hub's own pages, and tools that send no Origin, still work.
    for from in [
        format!("Origin: http://127.0.0.1:{port}"),
        format!("Referer: http://127.0.0.1:{port}/login"),
        "X-Nothing: 1".to_owned(),
    ] {
        let login = send(
            &hub,
            "POST",
            "/login",
            &[
                &host,
                &from,
                "Content-Type: application/x-www-form-urlencoded",
            ],
            &form,
        )
        .await;
        assert_eq!(login.status, 303, "{from}: {}", login.body);
        assert!(login.header("set-cookie").unwrap().contains(TOKEN));
    }
    let put = send(&hub, "PUT", "/files/ok.txt", &[&host, &bearer], "x").await;
    assert!(put.status < 300, "{}", put.body);
}

/// Reproduces finding 8.5: 500 wrong tokens were checked in 0.1 s, without any slowing down.
#[tokio::test]
async fn wrong_tokens_are_throttled_per_address() {
    let hub = hub_builder()
        .config(|c| c.tokens = tokens())
        .http()
        .start()
        .await;
    let right = format!("Authorization: Bearer {TOKEN}");
    for i in 0..5 {
        let wrong = format!("Authorization: Bearer wrong-token-{i:010}");
        let a = send(&hub, "GET", "/api/streams", &[&wrong], "").await;
        assert_eq!(a.status, 401, "guess {i}");
    }
    // Locked out: even the right token waits, so guessing on cannot tell a hit.
    let locked = send(&hub, "GET", "/api/streams", &[&right], "").await;
    assert_eq!(locked.status, 429, "{}", locked.body);
    assert_eq!(locked.header("retry-after"), Some("1"));
    let form = send(
        &hub,
        "POST",
        "/login",
        &["Content-Type: application/x-www-form-urlencoded"],
        &format!("token={TOKEN}"),
    )
    .await;
    assert_eq!(form.status, 429);
    assert!(form.body.contains("Too many wrong tokens"), "{}", form.body);

    // The next wrong guess after the lockout locks out for longer.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let wrong = send(
        &hub,
        "POST",
        "/login",
        &["Content-Type: application/x-www-form-urlencoded"],
        "token=wrong-again-0123456789",
    )
    .await;
    assert_eq!(wrong.status, 401);
    let locked = send(&hub, "GET", "/api/streams", &[&right], "").await;
    assert_eq!(locked.status, 429);
    assert_eq!(locked.header("retry-after"), Some("2"));

    // A right token after the wait clears the record.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        send(&hub, "GET", "/api/streams", &[&right], "")
            .await
            .status,
        200
    );
    for _ in 0..4 {
        let a = send(
            &hub,
            "GET",
            "/api/streams",
            &["Authorization: Bearer nope-nope-nope-nope"],
            "",
        )
        .await;
        assert_eq!(a.status, 401);
    }
    // Requests without any token are not guesses.
    for _ in 0..10 {
        assert_eq!(send(&hub, "GET", "/api/streams", &[], "").await.status, 401);
    }
    assert_eq!(
        send(&hub, "GET", "/api/streams", &[&right], "")
            .await
            .status,
        200
    );
}
