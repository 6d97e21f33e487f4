//! The HTTP API: every endpoint and error status, through `oneshot` on the router (no socket)
//! except the WebSocket, which needs a real listener on 127.0.0.1:0.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use bytes::Bytes;
use common::*;
use framewire_proto::*;
use framewire_server::web::router;
use framewire_testkit::frames::sample_frame;
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

async fn call(hub: &TestHub, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Bytes) {
    let res = tokio::time::timeout(T, router(hub.handle.clone()).oneshot(req))
        .await
        .unwrap()
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = tokio::time::timeout(T, res.into_body().collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    (status, headers, body)
}

async fn get(hub: &TestHub, uri: &str) -> (StatusCode, axum::http::HeaderMap, Bytes) {
    call(hub, Request::get(uri).body(Body::empty()).unwrap()).await
}

async fn put(hub: &TestHub, uri: &str, body: &[u8]) -> (StatusCode, Value) {
    let req = Request::put(uri)
        .header(header::CONTENT_LENGTH, body.len())
        .body(Body::from(body.to_vec()))
        .unwrap();
    let (s, _, b) = call(hub, req).await;
    (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

fn json(b: &Bytes) -> Value {
    serde_json::from_slice(b)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(b)))
}

#[tokio::test]
async fn put_then_get_with_etag_and_ranges() {
    let hub = start_hub().await;
    let content: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let (s, v) = put(&hub, "/files/cam/shot%201.jpg", &content).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let hash = blake3::hash(&content).to_hex().to_string();
    assert_eq!(v["blake3"], hash);
    assert_eq!(
        (v["size"].as_u64(), v["status"].as_str(), v["path"].as_str()),
        (Some(100_000), Some("new"), Some("cam/shot 1.jpg"))
    );
    assert_eq!(
        std::fs::read(hub.files().join("cam/shot 1.jpg")).unwrap(),
        content
    );

    let (s, h, b) = get(&hub, "/files/cam/shot%201.jpg").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(&b[..], &content[..]);
    assert_eq!(h[header::CONTENT_TYPE], "image/jpeg");
    assert_eq!(h[header::ACCEPT_RANGES], "bytes");
    let etag = h[header::ETAG].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{hash}\""));

    let req = Request::get("/files/cam/shot%201.jpg")
        .header(header::IF_NONE_MATCH, &etag)
        .body(Body::empty())
        .unwrap();
    let (s, _, b) = call(&hub, req).await;
    assert_eq!((s, b.len()), (StatusCode::NOT_MODIFIED, 0));

    let req = Request::get("/files/cam/shot%201.jpg")
        .header(header::RANGE, "bytes=1000-1999")
        .body(Body::empty())
        .unwrap();
    let (s, h, b) = call(&hub, req).await;
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    assert_eq!(h[header::CONTENT_RANGE], "bytes 1000-1999/100000");
    assert_eq!(&b[..], &content[1000..2000]);

    let req = Request::get("/files/cam/shot%201.jpg")
        .header(header::RANGE, "bytes=-10")
        .body(Body::empty())
        .unwrap();
    let (s, _, b) = call(&hub, req).await;
    assert_eq!(
        (s, &b[..]),
        (StatusCode::PARTIAL_CONTENT, &content[99_990..])
    );

    let req = Request::get("/files/cam/shot%201.jpg")
        .header(header::RANGE, "bytes=200000-")
        .body(Body::empty())
        .unwrap();
    let (s, h, _) = call(&hub, req).await;
    assert_eq!(s, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(h[header::CONTENT_RANGE], "bytes */100000");

    // A stale If-Range means: the whole file.
    let req = Request::get("/files/cam/shot%201.jpg")
        .header(header::RANGE, "bytes=0-9")
        .header(header::IF_RANGE, "\"old\"")
        .body(Body::empty())
        .unwrap();
    let (s, _, b) = call(&hub, req).await;
    assert_eq!((s, b.len()), (StatusCode::OK, 100_000));
    hub.stop().await;
}

#[tokio::test]
async fn put_follows_the_overwrite_policy() {
    let hub = start_hub().await;
    assert_eq!(
        put(&hub, "/files/doc.txt", b"one").await.0,
        StatusCode::CREATED
    );
    let (s, v) = put(&hub, "/files/doc.txt", b"one").await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("unchanged"))
    );
    let (s, v) = put(&hub, "/files/doc.txt", b"two!").await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v["error"].as_str().unwrap().contains("overwrite"), "{v}");
    let (s, v) = put(&hub, "/files/doc.txt", b"tw0").await;
    assert_eq!(s, StatusCode::CONFLICT, "same size, different content: {v}");
    let (s, v) = put(&hub, "/files/doc.txt?overwrite=1", b"two!").await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("replaced"))
    );
    assert_eq!(std::fs::read(hub.files().join("doc.txt")).unwrap(), b"two!");
    hub.stop().await;
}

#[tokio::test]
async fn bad_requests_get_the_right_status() {
    let hub = start_hub_with(|c| {
        c.max_file_size = 1000;
        c.max_storage = 1500;
    })
    .await;
    // Escapes, URL-encoded so that no client normalizes them away.
    for uri in [
        "/files/%2e%2e%2fescape.txt",
        "/files/a/%2e%2e/%2e%2e/escape.txt",
        "/files/a%5cb",
        "/files/C%3a/x",
        "/files/a%00b",
    ] {
        let (s, v) = put(&hub, uri, b"evil").await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {v}");
        assert!(v["error"].is_string());
        assert_eq!(get(&hub, uri).await.0, StatusCode::BAD_REQUEST, "GET {uri}");
    }
    assert!(tree(&hub.files()).is_empty());
    assert_eq!(
        get(&hub, "/files/missing.txt").await.0,
        StatusCode::NOT_FOUND
    );
    let (s, v) = put(&hub, "/files/big.bin", &[0u8; 1001]).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    // A body larger than the limit without a Content-Length is cut off too.
    let req = Request::put("/files/big2.bin")
        .body(Body::from(vec![0u8; 5000]))
        .unwrap();
    assert_eq!(call(&hub, req).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    // Storage full: 900 + 900 > 1500.
    assert_eq!(
        put(&hub, "/files/a.bin", &[1u8; 900]).await.0,
        StatusCode::CREATED
    );
    let (s, v) = put(&hub, "/files/b.bin", &[2u8; 900]).await;
    assert_eq!(s, StatusCode::INSUFFICIENT_STORAGE, "{v}");
    assert!(v["error"].as_str().unwrap().contains("storage full"));
    assert!(!hub.files().join("b.bin").exists());
    // A wrong hash header stores nothing.
    let req = Request::put("/files/h.bin")
        .header("x-blake3", "00".repeat(32))
        .body(Body::from("abc"))
        .unwrap();
    let (s, _, b) = call(&hub, req).await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&b)
    );
    assert!(!hub.files().join("h.bin").exists());
    assert_eq!(get(&hub, "/nope").await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&hub, "/api/nope").await.0, StatusCode::NOT_FOUND);
    hub.stop().await;
}

#[tokio::test]
async fn listings_page_and_filter() {
    let hub = start_hub().await;
    for p in ["a/1.jpg", "a/2.jpg", "a/3.txt", "b/1.jpg"] {
        assert_eq!(
            put(&hub, &format!("/files/{p}"), p.as_bytes()).await.0,
            StatusCode::CREATED
        );
    }
    let (mut raw, _) = Raw::hello(hub.addr).await;
    assert!(matches!(
        raw.upload(1, "a/4.png", b"png", 0).await,
        Message::Stored(_)
    ));
    let (s, _, b) = get(&hub, "/api/files?prefix=a/&limit=2").await;
    assert_eq!(s, StatusCode::OK);
    let v = json(&b);
    let paths: Vec<_> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(paths, ["a/1.jpg", "a/2.jpg"]);
    assert_eq!(v["next_after"], "a/2.jpg");
    assert_eq!(v["files"][0]["image"], true);
    assert_eq!(v["files"][0]["sender"], "http@local");
    let (_, _, b) = get(&hub, "/api/files?prefix=a/&limit=2&after=a/2.jpg").await;
    let v = json(&b);
    assert_eq!(v["files"].as_array().unwrap().len(), 2);
    assert_eq!(v["next_after"], Value::Null);
    let (_, _, b) = get(&hub, "/api/files?sender=raw@127.0.0.1").await;
    let v = json(&b);
    assert_eq!(v["files"].as_array().unwrap().len(), 1);
    assert_eq!(v["files"][0]["path"], "a/4.png");

    let (s, _, b) = get(&hub, "/api/events").await;
    assert_eq!(s, StatusCode::OK);
    let ev = json(&b);
    assert!(
        ev.as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "stored" && e["text"].as_str().unwrap().contains("a/4.png")),
        "{ev}"
    );

    let (s, _, b) = get(&hub, "/api/clients").await;
    assert_eq!(s, StatusCode::OK);
    let v = json(&b);
    assert_eq!(v[0]["name"], "raw");
    assert_eq!(v[0]["roles"][0], "files");
    assert!(v[0]["bytes_in"].as_u64().unwrap() > 0);
    hub.stop().await;
}

fn jpeg_frame(seq: u64) -> Message {
    // Not a real image: the hub passes frames through without decoding them.
    let mut payload = vec![0xff, 0xd8, 0xff];
    payload.extend(std::iter::repeat_n(seq as u8, 999));
    payload.extend([0xff, 0xd9]);
    Message::Frame(Frame {
        stream: "cam".into(),
        seq,
        capture_us: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as i64,
        format: frame_format::JPEG,
        width: 4,
        height: 4,
        payload: Bytes::from(payload),
    })
}

#[tokio::test]
async fn live_streams_over_http() {
    let hub = start_hub().await;
    assert_eq!(
        get(&hub, "/streams/cam.mjpeg").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&hub, "/streams/cam/latest.jpg").await.0,
        StatusCode::NOT_FOUND
    );
    let (mut publisher, _) = Raw::hello(hub.addr).await;
    publisher.send(jpeg_frame(1)).await;
    assert!(matches!(publisher.recv().await, Message::FrameAck(_)));

    let (s, h, b) = get(&hub, "/streams/cam/latest.jpg").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h[header::CONTENT_TYPE], "image/jpeg");
    assert_eq!(h["x-frame-seq"], "1");
    assert_eq!(b.len(), 1004);

    let res = router(hub.handle.clone())
        .oneshot(
            Request::get("/streams/cam.mjpeg")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let ctype = res.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        ctype.starts_with("multipart/x-mixed-replace; boundary="),
        "{ctype}"
    );
    assert!(
        res.headers().get(header::CONTENT_ENCODING).is_none(),
        "never compressed"
    );
    let mut body = res.into_body();
    let mut buf = Vec::new();
    let seqs_in = |buf: &[u8]| -> Vec<String> {
        let text = String::from_utf8_lossy(buf);
        text.match_indices("X-Frame-Seq: ")
            .map(|(i, _)| text[i + 13..].split("\r\n").next().unwrap().to_owned())
            .collect()
    };
    // The frame already there comes at once; then each newer one, newest first.
    for (publish_next, want) in [(None, vec!["1"]), (Some(2), vec!["1", "2"])] {
        if let Some(seq) = publish_next {
            publisher.send(jpeg_frame(seq)).await;
            assert!(matches!(publisher.recv().await, Message::FrameAck(_)));
        }
        while seqs_in(&buf).len() < want.len() {
            let f = tokio::time::timeout(T, body.frame())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            buf.extend_from_slice(&f.into_data().unwrap());
        }
        assert_eq!(seqs_in(&buf), want);
    }
    assert!(
        String::from_utf8_lossy(&buf).contains("Content-Type: image/jpeg\r\nContent-Length: 1004")
    );
    drop(body);
    hub.stop().await;
}

#[tokio::test]
async fn commands_from_http() {
    let hub = start_hub_with(|c| c.command_timeout = Duration::from_millis(300)).await;
    let post = |uri: &str, body: &str| {
        Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap()
    };
    let (s, _, b) = call(
        &hub,
        post("/api/devices/nobody/commands", r#"{"command":"status"}"#),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(json(&b)["status"], "unknown_device");

    let (mut dev, _) = Raw::hello(hub.addr).await;
    dev.send(Message::RegisterDevice(RegisterDevice {
        name: "cam".into(),
    }))
    .await;
    assert!(matches!(dev.recv().await, Message::Registered(_)));
    let (_, _, b) = get(&hub, "/api/devices").await;
    assert_eq!(json(&b)[0]["name"], "cam");
    let device = tokio::spawn(async move {
        let Message::Command(c) = dev.recv().await else {
            panic!()
        };
        assert_eq!(
            (c.command.as_str(), c.args.as_slice()),
            ("set", &["fps".to_string(), "5".to_string()][..])
        );
        dev.send(Message::Reply(Reply {
            id: c.id,
            status: ReplyStatus::Ok,
            body: Bytes::from_static(b"fps=5"),
        }))
        .await;
        // Second command: no answer (timeout).
        let Message::Command(_) = dev.recv().await else {
            panic!()
        };
        dev
    });
    let (s, _, b) = call(
        &hub,
        post(
            "/api/devices/cam/commands",
            r#"{"command":"set","args":["fps","5"]}"#,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (json(&b)["status"].as_str(), json(&b)["reply"].as_str()),
        (Some("ok"), Some("fps=5"))
    );
    let (s, _, b) = call(
        &hub,
        post("/api/devices/cam/commands", r#"{"command":"status"}"#),
    )
    .await;
    assert_eq!(
        (s, json(&b)["status"].as_str()),
        (StatusCode::GATEWAY_TIMEOUT, Some("timeout"))
    );
    let _dev = device.await.unwrap();
    let (s, _, _) = call(&hub, post("/api/devices/cam/commands", "not json")).await;
    assert!(s.is_client_error());
    hub.stop().await;
}

/// A strict reader of the Prometheus text format: every sample belongs to a family declared by
/// HELP and TYPE, names and labels are well formed, values parse, histograms are cumulative and
/// end in `+Inf` equal to `_count`.
fn check_prometheus(text: &str) -> usize {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut types = std::collections::HashMap::new();
    let mut helps = std::collections::HashSet::new();
    let mut samples = 0;
    let mut last_bucket: std::collections::HashMap<String, f64> = Default::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(name_ok(name), "{line}");
            assert!(helps.insert(name.to_owned()), "HELP twice: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            let (name, kind) = (it.next().unwrap(), it.next().unwrap());
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "TYPE twice: {line}"
            );
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line {line:?}"
        );
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (
                n,
                Some(
                    l.strip_suffix('}')
                        .unwrap_or_else(|| panic!("unclosed labels: {line}")),
                ),
            ),
            None => (series, None),
        };
        assert!(name_ok(name), "{line}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "sample before its TYPE: {line}");
        if let Some(l) = labels {
            // label="value" pairs, values with only \\, \" and \n escapes.
            let mut rest = l;
            while !rest.is_empty() {
                let (k, after) = rest
                    .split_once("=\"")
                    .unwrap_or_else(|| panic!("bad label: {line}"));
                assert!(name_ok(k), "{line}");
                let mut end = None;
                let mut esc = false;
                for (i, c) in after.char_indices() {
                    match (esc, c) {
                        (true, '\\' | '"' | 'n') => esc = false,
                        (true, _) => panic!("bad escape: {line}"),
                        (false, '\\') => esc = true,
                        (false, '"') => {
                            end = Some(i);
                            break;
                        }
                        _ => {}
                    }
                }
                let end = end.unwrap_or_else(|| panic!("unterminated label: {line}"));
                rest = after[end + 1..]
                    .strip_prefix(',')
                    .unwrap_or(&after[end + 1..]);
            }
        }
        if name.ends_with("_bucket") {
            let key = series.split(",le=").next().unwrap().to_owned();
            let prev = last_bucket.insert(key, v).unwrap_or(0.0);
            assert!(v >= prev, "buckets must be cumulative: {line}");
        }
        samples += 1;
    }
    for (f, t) in &types {
        assert!(helps.contains(f), "{f} has TYPE {t} but no HELP");
    }
    samples
}

#[tokio::test]
async fn metrics_are_strict_prometheus_text() {
    let hub = start_hub().await;
    let (mut publisher, _) = Raw::hello(hub.addr).await;
    let mut f = jpeg_frame(1);
    if let Message::Frame(fr) = &mut f {
        fr.stream = "weird \"name\"\\\n".into();
    }
    publisher.send(f).await;
    assert!(matches!(publisher.recv().await, Message::FrameAck(_)));
    assert!(matches!(
        publisher.upload(9, "x/y.txt", b"abc", 0).await,
        Message::Stored(_)
    ));
    assert!(matches!(
        publisher.upload(10, "../bad", b"abc", 0).await,
        Message::Rejected(_)
    ));
    assert_eq!(put(&hub, "/files/z.txt", b"z").await.0, StatusCode::CREATED);
    let (s, h, b) = get(&hub, "/metrics").await;
    assert_eq!(s, StatusCode::OK);
    assert!(h[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(b.to_vec()).unwrap();
    assert!(check_prometheus(&text) > 20);
    for want in [
        "framewire_connections 1",
        "framewire_files_stored 2",
        "framewire_upload_failures_total{reason=\"bad_path\"} 1",
        "framewire_stream_frames_in_total{stream=\"weird \\\"name\\\"\\\\\\n\"} 1",
        "framewire_stream_capture_to_hub_seconds_count{stream=\"weird \\\"name\\\"\\\\\\n\"} 1",
        "framewire_http_requests_total{status=\"201\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l == want),
            "missing {want:?} in\n{text}"
        );
    }
    hub.stop().await;
}

#[tokio::test]
async fn thumbnails_are_small_jpegs_made_once() {
    let hub = start_hub().await;
    assert_eq!(
        put(&hub, "/files/cam/frame.jpg", &sample_frame(0)).await.0,
        StatusCode::CREATED
    );
    let (s, h, b) = get(&hub, "/thumbs/cam/frame.jpg").await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    assert_eq!(h[header::CONTENT_TYPE], "image/jpeg");
    let (w, ht) = framewire_media::jpeg::probe(&b).unwrap();
    assert!(w <= 320 && ht <= 320 && w >= 100, "{w}x{ht}");
    assert_eq!(
        std::fs::read_dir(hub.data.join("thumbs")).unwrap().count(),
        1,
        "cached"
    );
    let (s2, _, b2) = get(&hub, "/thumbs/cam/frame.jpg").await;
    assert_eq!((s2, &b2[..]), (StatusCode::OK, &b[..]));
    assert_eq!(
        put(&hub, "/files/fake.jpg", b"not a jpeg").await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        get(&hub, "/thumbs/fake.jpg").await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        put(&hub, "/files/doc.txt", b"text").await.0,
        StatusCode::CREATED
    );
    assert_eq!(get(&hub, "/thumbs/doc.txt").await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        get(&hub, "/thumbs/missing.jpg").await.0,
        StatusCode::NOT_FOUND
    );
    hub.stop().await;
}

#[tokio::test]
async fn dashboard_and_assets_are_served() {
    let hub = start_hub().await;
    let (s, h, b) = get(&hub, "/").await;
    assert_eq!(s, StatusCode::OK);
    assert!(h[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = String::from_utf8_lossy(&b);
    assert!(html.contains("/assets/app.js") && html.contains("/assets/app.css"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no CDN: works offline"
    );
    for (a, t) in [
        ("/assets/app.js", "text/javascript"),
        ("/assets/app.css", "text/css"),
    ] {
        let (s, h, _) = get(&hub, a).await;
        assert_eq!(s, StatusCode::OK);
        assert!(h[header::CONTENT_TYPE].to_str().unwrap().starts_with(t));
    }
    hub.stop().await;
}

#[tokio::test]
async fn websocket_streams_events_and_stats() {
    let hub = hub_builder().http().start().await;
    let http = hub.http_addr.unwrap();
    let (mut c, _) = Raw::hello(hub.addr).await;
    c.send(Message::Text(Text {
        id: 1,
        text: "before".into(),
    }))
    .await;
    c.recv().await;
    let mut ws = tokio::net::TcpStream::connect(http).await.unwrap();
    ws.write_all(
        b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        ws.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    assert!(
        String::from_utf8_lossy(&head).starts_with("HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let mut kinds = Vec::new();
    let mut saw_stats = false;
    c.send(Message::Text(Text {
        id: 2,
        text: "after".into(),
    }))
    .await;
    tokio::time::timeout(T, async {
        while !(saw_stats && kinds.iter().any(|t: &String| t == "after")) {
            let v: Value = serde_json::from_str(&ws_text(&mut ws).await).unwrap();
            match v["type"].as_str() {
                Some("event") => kinds.push(v["text"].as_str().unwrap_or("").to_owned()),
                Some("stats") => {
                    saw_stats = true;
                    assert!(v["clients"].is_array() && v["streams"].is_array());
                }
                other => panic!("{other:?}"),
            }
        }
    })
    .await
    .expect("events and stats arrive");
    assert!(
        kinds.iter().any(|t| t == "before"),
        "history first: {kinds:?}"
    );
    drop(ws);
    hub.stop().await;
}

/// Graceful shutdown must not wait for live responses to end by themselves (found by the browser
/// test: an open MJPEG viewer held the HTTP side's shutdown forever).
#[tokio::test]
async fn http_shutdown_ends_live_mjpeg_viewers() {
    let hub = hub_builder().http().start().await;
    let (mut publisher, _) = Raw::hello(hub.addr).await;
    publisher.send(jpeg_frame(1)).await;
    assert!(matches!(publisher.recv().await, Message::FrameAck(_)));
    let http = hub.http_addr.unwrap();
    let mut viewer = tokio::net::TcpStream::connect(http).await.unwrap();
    viewer
        .write_all(b"GET /streams/cam.mjpeg HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut first = vec![0u8; 256];
    let n = tokio::time::timeout(T, viewer.read(&mut first))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    tokio::time::timeout(Duration::from_secs(5), hub.stop())
        .await
        .expect("the hub stops while a viewer is still connected");
    let mut rest = Vec::new();
    let ended = tokio::time::timeout(T, viewer.read_to_end(&mut rest)).await;
    assert!(ended.is_ok(), "the viewer's response ended");
}
