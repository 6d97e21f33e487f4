//! Tokens and limits: nobody gets in without a token (native and every HTTP path), a token does
//! only what it allows, and every limit refuses with a clear error while a well-behaved client on
//! the same hub keeps working.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use bytes::Bytes;
use common::*;
use framewire_proto::*;
use framewire_server::auth::{Perms, Tokens};
use framewire_server::web::router;
use http_body_util::BodyExt;
use tokio::io::AsyncWriteExt;
use tower::ServiceExt;

const ADMIN: &str = "admin-token-0123456789abcdef";
const VIEWER: &str = "viewer-token-0123456789abcd";

fn tokens() -> Tokens {
    let mut t = Tokens::default();
    t.add(ADMIN, "ops", Perms::ALL);
    t.add(VIEWER, "viewer", Perms::SUBSCRIBE | Perms::DOWNLOAD);
    t
}

async fn hello_with(addr: std::net::SocketAddr, token: &str) -> (Raw, Message) {
    let mut r = Raw::connect(addr).await;
    r.send(Message::Hello(Hello {
        version: VERSION,
        name: "t".into(),
        token: token.into(),
    }))
    .await;
    let m = r.recv().await;
    (r, m)
}

fn expect_error(m: &Message, code: ErrorCode) -> String {
    match m {
        Message::Error(e) => {
            assert_eq!(e.code, code, "{m:?}");
            e.message.clone()
        }
        other => panic!("expected Error({code:?}), got {other:?}"),
    }
}

#[tokio::test]
async fn native_handshake_needs_a_valid_token_and_perms_are_enforced() {
    let hub = start_hub_with(|c| c.tokens = tokens()).await;
    let (mut c, m) = hello_with(hub.addr, "").await;
    assert!(expect_error(&m, ErrorCode::Unauthorized).contains("requires a token"));
    assert!(c.try_recv().await.is_none(), "closed");
    let (_, m) = hello_with(hub.addr, "admin-token-0123456789abcdeX").await;
    assert_eq!(expect_error(&m, ErrorCode::Unauthorized), "wrong token");

    // The viewer may download and subscribe, not upload, publish or command.
    let (mut v, m) = hello_with(hub.addr, VIEWER).await;
    assert!(matches!(m, Message::Welcome(_)));
    let reason = assert_rejected(&v.upload(1, "x.txt", b"x", 0).await, ErrorCode::Forbidden);
    assert!(reason.contains("may not upload"), "{reason}");
    v.send(Message::Command(Command {
        id: 2,
        target: "cam".into(),
        command: "status".into(),
        args: vec![],
    }))
    .await;
    assert_eq!(
        expect_error(&v.recv().await, ErrorCode::Forbidden),
        "this token may not command"
    );
    v.send(Message::List(List {
        id: 3,
        limit: 10,
        prefix: String::new(),
        after: String::new(),
    }))
    .await;
    assert!(matches!(v.recv().await, Message::ListPage(_)));
    v.send(Message::Publish(Publish {
        stream: "cam".into(),
        max_latency_ms: 0,
    }))
    .await;
    expect_error(&v.recv().await, ErrorCode::Forbidden);
    assert!(
        v.try_recv().await.is_none(),
        "publishing without permission ends the connection"
    );

    // The admin may do everything; uploads are attributed to the token's name.
    let (mut a, m) = hello_with(hub.addr, ADMIN).await;
    assert!(matches!(m, Message::Welcome(_)));
    assert_stored(&a.upload(1, "x.txt", b"x", 0).await, StoredStatus::New);
    assert_eq!(
        hub.handle.store().record("x.txt").unwrap().unwrap().sender,
        "ops@127.0.0.1"
    );
    hub.stop().await;
}

async fn http(hub: &TestHub, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Bytes) {
    let res = tokio::time::timeout(T, router(hub.handle.clone()).oneshot(req))
        .await
        .unwrap()
        .unwrap();
    let (s, h) = (res.status(), res.headers().clone());
    // Live responses (MJPEG) never end: only read bodies of refusals.
    let b = if s.is_success() {
        Bytes::new()
    } else {
        res.into_body().collect().await.unwrap().to_bytes()
    };
    (s, h, b)
}

fn req(method: Method, uri: &str, auth: Option<&str>) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(t) = auth {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::from("x")).unwrap()
}

#[tokio::test]
async fn every_http_path_needs_a_token() {
    let hub = start_hub_with(|c| c.tokens = tokens()).await;
    let (mut p, _) = hello_with(hub.addr, ADMIN).await;
    p.send(Message::Frame(Frame {
        stream: "cam".into(),
        seq: 1,
        capture_us: 0,
        format: frame_format::JPEG,
        width: 1,
        height: 1,
        payload: Bytes::from_static(&[0xff, 0xd8, 0xff, 0xd9]),
    }))
    .await;
    assert!(matches!(p.recv().await, Message::FrameAck(_)));
    let paths = [
        (Method::GET, "/"),
        (Method::GET, "/api/clients"),
        (Method::GET, "/api/streams"),
        (Method::GET, "/api/files"),
        (Method::GET, "/api/devices"),
        (Method::POST, "/api/devices/cam/commands"),
        (Method::GET, "/files/x.txt"),
        (Method::PUT, "/files/x.txt"),
        (Method::GET, "/thumbs/x.jpg"),
        (Method::GET, "/streams/cam.mjpeg"),
        (Method::GET, "/streams/cam/latest.jpg"),
        (Method::GET, "/ws"),
        (Method::GET, "/metrics"),
    ];
    for (m, p) in &paths {
        for bad in [None, Some("nope-nope-nope-nope")] {
            let (s, h, b) = http(&hub, req(m.clone(), p, bad)).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{m} {p} with {bad:?}");
            assert_eq!(h[header::WWW_AUTHENTICATE], "Bearer");
            assert!(String::from_utf8_lossy(&b).contains("missing or wrong token"));
        }
    }
    // With a valid token they work (status depends on the path, but never 401).
    let (s, _, _) = http(
        &hub,
        req(Method::GET, "/streams/cam/latest.jpg", Some(VIEWER)),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = http(&hub, req(Method::GET, "/streams/cam.mjpeg", Some(VIEWER))).await;
    assert_eq!(s, StatusCode::OK);
    // A token without the permission: 403.
    for (m, p) in [
        (Method::PUT, "/files/x.txt"),
        (Method::GET, "/metrics"),
        (Method::POST, "/api/devices/cam/commands"),
    ] {
        let (s, _, b) = http(&hub, req(m.clone(), p, Some(VIEWER))).await;
        assert_eq!(
            s,
            StatusCode::FORBIDDEN,
            "{m} {p}: {}",
            String::from_utf8_lossy(&b)
        );
    }
    let put = Request::put("/files/up.txt")
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
        .body(Body::from("up"))
        .unwrap();
    assert_eq!(http(&hub, put).await.0, StatusCode::CREATED);
    assert_eq!(
        hub.handle.store().record("up.txt").unwrap().unwrap().sender,
        "ops@local"
    );

    // The dashboard: a browser is sent to the login form; a good token sets the cookie.
    let page = Request::get("/")
        .header(header::ACCEPT, "text/html")
        .body(Body::empty())
        .unwrap();
    let (s, h, _) = http(&hub, page).await;
    assert_eq!(
        (s, h[header::LOCATION].to_str().unwrap()),
        (StatusCode::SEE_OTHER, "/login")
    );
    assert_eq!(
        http(&hub, Request::get("/login").body(Body::empty()).unwrap())
            .await
            .0,
        StatusCode::OK
    );
    let login = |t: &str| {
        Request::post("/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("token={t}")))
            .unwrap()
    };
    assert_eq!(
        http(&hub, login("wrong-wrong-wrong-wrong")).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (s, h, _) = http(&hub, login(VIEWER)).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let cookie = h[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let with_cookie = |p: &str| {
        Request::get(p)
            .header(header::COOKIE, cookie.split(';').next().unwrap())
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(http(&hub, with_cookie("/")).await.0, StatusCode::OK);
    assert_eq!(
        http(&hub, with_cookie("/api/streams")).await.0,
        StatusCode::OK
    );
    hub.stop().await;
}

#[tokio::test]
async fn connection_limits_refuse_clearly_and_others_keep_working() {
    let hub = start_hub_with(|c| {
        c.max_connections = 4;
        c.max_connections_per_ip = 3;
    })
    .await;
    let mut kept = Vec::new();
    for _ in 0..3 {
        kept.push(Raw::hello(hub.addr).await.0);
    }
    // A fourth from the same address: the per-address limit.
    let mut extra = Raw::connect(hub.addr).await;
    let why = expect_error(&extra.recv().await, ErrorCode::Busy);
    assert!(why.contains("127.0.0.1 already has 3 connections"), "{why}");
    // The connections already in keep working.
    for (i, c) in kept.iter_mut().enumerate() {
        assert_stored(
            &c.upload(1, &format!("k/{i}"), b"ok", 0).await,
            StoredStatus::New,
        );
    }
    drop(kept.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut again = Raw::hello(hub.addr).await.0;
    assert_stored(
        &again.upload(1, "k/again", b"ok", 0).await,
        StoredStatus::New,
    );
    hub.stop().await;

    let hub = start_hub_with(|c| c.max_connections = 2).await;
    let _a = Raw::hello(hub.addr).await;
    let _b = Raw::hello(hub.addr).await;
    let mut c = Raw::connect(hub.addr).await;
    assert!(expect_error(&c.recv().await, ErrorCode::Busy).contains("limit of 2 connections"));
    hub.stop().await;
}

#[tokio::test]
async fn idle_and_subscriber_limits() {
    let hub = start_hub_with(|c| {
        c.idle_timeout = Duration::from_millis(400);
        c.max_subscribers_per_stream = 1;
    })
    .await;
    let (mut idle, _) = Raw::hello(hub.addr).await;
    let (mut busy, _) = Raw::hello(hub.addr).await;
    // The busy one pings more often than the limit; the idle one says nothing.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        busy.send(Message::Ping(Ping {
            nonce: 1,
            time_us: 0,
        }))
        .await;
        assert!(matches!(busy.recv().await, Message::Pong(_)));
    }
    assert!(expect_error(&idle.recv().await, ErrorCode::Timeout).contains("idle"));

    let (mut s1, _) = Raw::hello(hub.addr).await;
    s1.send(Message::Subscribe(Subscribe {
        stream: "cam".into(),
        window: 1,
    }))
    .await;
    assert!(matches!(s1.recv().await, Message::Subscribed(_)));
    let (mut s2, _) = Raw::hello(hub.addr).await;
    s2.send(Message::Subscribe(Subscribe {
        stream: "cam".into(),
        window: 1,
    }))
    .await;
    assert!(expect_error(&s2.recv().await, ErrorCode::Busy).contains("already has 1 subscribers"));
    let (status, _, b) = http(&hub, req(Method::GET, "/streams/cam.mjpeg", None)).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "the limit holds for MJPEG viewers too"
    );
    assert!(String::from_utf8_lossy(&b).contains("already has 1 viewers"));
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_half_open_connections_are_closed_at_the_handshake_timeout() {
    let hub = start_hub_with(|c| {
        c.handshake_timeout = Duration::from_secs(2);
        c.max_connections_per_ip = 2000;
    })
    .await;
    let started = std::time::Instant::now();
    let mut silent = Vec::new();
    for _ in 0..1000 {
        silent.push(tokio::net::TcpStream::connect(hub.addr).await.unwrap());
    }
    // Meanwhile a well-behaved client is served promptly.
    let (mut ok, _) = Raw::hello(hub.addr).await;
    assert_stored(
        &ok.upload(1, "during.txt", b"served", 0).await,
        StoredStatus::New,
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the good client did not wait for the silent ones"
    );
    // Every silent one is closed at the timeout (an Error then EOF).
    let closed = tokio::time::timeout(Duration::from_secs(15), async {
        let mut n = 0;
        for mut s in silent {
            let mut sink = Vec::new();
            use tokio::io::AsyncReadExt;
            if s.read_to_end(&mut sink).await.is_ok() {
                n += 1;
            }
        }
        n
    })
    .await
    .expect("all closed in time");
    assert_eq!(closed, 1000);
    assert!(started.elapsed() >= Duration::from_secs(2));
    ok.send(Message::Ping(Ping {
        nonce: 1,
        time_us: 0,
    }))
    .await;
    assert!(matches!(ok.recv().await, Message::Pong(_)));
    let mut w = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
    w.shutdown().await.unwrap();
    hub.stop().await;
}
