//! The hub against hand-built bytes: what a well-behaved client never sends (corrupted chunks,
//! lying sizes, escapes, the wrong protocol) must be refused cleanly while the hub keeps serving.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use framewire_proto::*;
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn welcome_carries_limits_and_clock() {
    let hub = start_hub().await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let (mut c, w) = Raw::hello(hub.addr).await;
    assert_eq!(w.version, VERSION);
    assert_eq!(w.max_payload, DEFAULT_MAX_PAYLOAD);
    assert!(w.max_inflight > 0 && w.chunk_size > 0 && w.max_file_size > 0);
    assert!(
        (w.hub_time_us - before).abs() < 5_000_000,
        "hub clock is wall time"
    );
    c.send(Message::Ping(Ping {
        nonce: 77,
        time_us: 123,
    }))
    .await;
    match c.recv().await {
        Message::Pong(p) => assert_eq!((p.nonce, p.ping_time_us), (77, 123)),
        other => panic!("{other:?}"),
    }
    c.send(Message::Text(Text {
        id: 5,
        text: "hello ✓".into(),
    }))
    .await;
    assert_eq!(
        c.recv().await,
        Message::Text(Text {
            id: 5,
            text: "hello ✓".into()
        })
    );
    hub.stop().await;
}

#[tokio::test]
async fn browser_and_garbage_get_clear_errors_and_hub_keeps_serving() {
    let hub = start_hub().await;
    let mut http = Raw::connect(hub.addr).await;
    http.send_raw(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await;
    let mut reply = String::new();
    tokio::time::timeout(T, http.s.read_to_string(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(reply.contains("native protocol port"), "{reply}");

    // The start of a TLS ClientHello: a TLS client on this plain port is told so.
    let mut tls = Raw::connect(hub.addr).await;
    tls.send_raw(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03")
        .await;
    match tls.recv().await {
        Message::Error(e) => {
            assert_eq!((e.code, e.id), (ErrorCode::NotFramewire, 0));
            assert!(
                e.message
                    .contains("this port is plain TCP (no TLS): connect without --tls"),
                "{}",
                e.message
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(tls.try_recv().await.is_none(), "closed after the error");

    let mut junk = Raw::connect(hub.addr).await;
    junk.send_raw(b"\x7f\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03")
        .await;
    match junk.recv().await {
        Message::Error(e) => {
            assert_eq!((e.code, e.id), (ErrorCode::NotFramewire, 0));
            assert!(e.message.contains("not a framewire client"));
        }
        other => panic!("{other:?}"),
    }
    assert!(junk.try_recv().await.is_none(), "closed after the error");

    // Right header, wrong magic.
    let mut bad = Message::Hello(Hello {
        version: 1,
        name: "x".into(),
        token: String::new(),
    })
    .to_bytes()
    .unwrap()
    .to_vec();
    bad[8..12].copy_from_slice(b"NOPE");
    let mut c = Raw::connect(hub.addr).await;
    c.send_raw(&bad).await;
    match c.recv().await {
        Message::Error(e) => assert_eq!(e.code, ErrorCode::NotFramewire),
        other => panic!("{other:?}"),
    }

    // Version 0 is not spoken.
    let mut c = Raw::connect(hub.addr).await;
    c.send(Message::Hello(Hello {
        version: 0,
        name: "old".into(),
        token: String::new(),
    }))
    .await;
    match c.recv().await {
        Message::Error(e) => assert_eq!(e.code, ErrorCode::UnsupportedVersion),
        other => panic!("{other:?}"),
    }

    // A silent peer is dropped at the handshake timeout.
    let mut silent = Raw::connect(hub.addr).await;
    match silent.recv().await {
        Message::Error(e) => assert_eq!(e.code, ErrorCode::Timeout),
        other => panic!("{other:?}"),
    }

    let (mut ok, _) = Raw::hello(hub.addr).await;
    assert_stored(
        &ok.upload(1, "still/serving.txt", b"yes", 0).await,
        StoredStatus::New,
    );
    hub.stop().await;
}

#[tokio::test]
async fn oversized_length_is_refused_without_reading_it() {
    let hub = start_hub().await;
    let (mut c, _) = Raw::hello(hub.addr).await;
    // Data header announcing 4 GiB.
    c.send_raw(&[0x32, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]).await;
    match c.recv().await {
        Message::Error(e) => {
            assert_eq!((e.code, e.id), (ErrorCode::TooLarge, 0));
            assert!(e.message.contains("exceeds the limit"), "{}", e.message);
        }
        other => panic!("{other:?}"),
    }
    assert!(c.try_recv().await.is_none());
    let (mut ok, _) = Raw::hello(hub.addr).await;
    ok.send(Message::Ping(Ping {
        nonce: 1,
        time_us: 0,
    }))
    .await;
    assert!(matches!(ok.recv().await, Message::Pong(_)));
    hub.stop().await;
}

#[tokio::test]
async fn every_bad_path_is_refused_and_nothing_lands_outside_data() {
    let dir = tempfile::tempdir().unwrap();
    let outside_before = tree(dir.path());
    let hub = hub_builder().data(dir.path().join("data")).start().await;
    let (mut c, _) = Raw::hello(hub.addr).await;
    let bad = [
        "/etc/passwd",
        "../escape.txt",
        "a/../../escape.txt",
        "a/./b",
        "a//b",
        "trailing/",
        "",
        "back\\slash",
        "..\\..\\escape",
        "C:/windows/x",
        "nul\0byte",
        "ctrl\x1b[31m",
        "line\nfeed",
    ];
    for (i, p) in bad.iter().enumerate() {
        let reason = assert_rejected(
            &c.upload(i as u32 + 1, p, b"evil", 0).await,
            ErrorCode::BadPath,
        );
        assert!(!reason.is_empty());
    }
    // Downloads are held to the same rules.
    c.send(Message::Get(Get {
        id: 99,
        offset: 0,
        path: "../index.sqlite".into(),
    }))
    .await;
    match c.recv().await {
        Message::Error(e) => assert_eq!((e.code, e.id), (ErrorCode::BadPath, 99)),
        other => panic!("{other:?}"),
    }
    let files = hub.files();
    hub.stop().await;
    let mut after = tree(dir.path());
    after.retain(|p| !p.starts_with(dir.path().join("data")));
    let mut before = outside_before;
    before.retain(|p| !p.starts_with(dir.path().join("data")));
    assert_eq!(after, before, "nothing written outside the data folder");
    assert!(
        tree(&files).is_empty(),
        "nothing stored: {:?}",
        tree(&files)
    );
}

#[tokio::test]
async fn corrupted_chunk_is_rejected_and_nothing_stored() {
    let hub = start_hub().await;
    let (mut c, _) = Raw::hello(hub.addr).await;
    let good: Vec<u8> = (0..50_000u32).map(|i| (i * 7) as u8).collect();
    let mut bad = good.clone();
    bad[25_000] ^= 0xff;
    c.send(Message::Offer(Offer {
        id: 1,
        flags: 0,
        size: good.len() as u64,
        path: "img/c.jpg".into(),
    }))
    .await;
    assert!(matches!(
        c.recv().await,
        Message::Accept(Accept { offset: 0, .. })
    ));
    c.send(Message::Data(Data {
        id: 1,
        bytes: Bytes::from(bad),
    }))
    .await;
    c.send(Message::End(End {
        id: 1,
        hash: Some(*blake3::hash(&good).as_bytes()),
    }))
    .await;
    let reason = assert_rejected(&c.recv().await, ErrorCode::HashMismatch);
    assert!(reason.contains("nothing was stored"), "{reason}");
    assert!(!hub.files().join("img/c.jpg").exists());
    // The corrupt bytes are not kept as a resumable prefix either.
    c.send(Message::Offer(Offer {
        id: 2,
        flags: 0,
        size: good.len() as u64,
        path: "img/c.jpg".into(),
    }))
    .await;
    assert!(matches!(
        c.recv().await,
        Message::Accept(Accept { offset: 0, .. })
    ));
    c.send(Message::Cancel(Cancel { id: 2 })).await;
    assert_rejected(&c.recv().await, ErrorCode::Cancelled);
    assert_stored(&c.upload(3, "img/c.jpg", &good, 0).await, StoredStatus::New);
    assert_eq!(std::fs::read(hub.files().join("img/c.jpg")).unwrap(), good);
    hub.stop().await;
}

#[tokio::test]
async fn size_lies_are_rejected() {
    let hub = start_hub().await;
    let (mut c, _) = Raw::hello(hub.addr).await;
    c.send(Message::Offer(Offer {
        id: 1,
        flags: 0,
        size: 3,
        path: "short".into(),
    }))
    .await;
    assert!(matches!(c.recv().await, Message::Accept(_)));
    c.send(Message::Data(Data {
        id: 1,
        bytes: Bytes::from_static(b"ab"),
    }))
    .await;
    c.send(Message::End(End { id: 1, hash: None })).await;
    assert_rejected(&c.recv().await, ErrorCode::SizeMismatch);
    c.send(Message::Offer(Offer {
        id: 2,
        flags: 0,
        size: 3,
        path: "long".into(),
    }))
    .await;
    assert!(matches!(c.recv().await, Message::Accept(_)));
    c.send(Message::Data(Data {
        id: 2,
        bytes: Bytes::from_static(b"abcd"),
    }))
    .await;
    assert_rejected(&c.recv().await, ErrorCode::SizeMismatch);
    // Its End is ignored, the connection stays usable.
    c.send(Message::End(End { id: 2, hash: None })).await;
    assert_stored(&c.upload(3, "fine", b"abc", 0).await, StoredStatus::New);
    assert!(!hub.files().join("short").exists() && !hub.files().join("long").exists());
    hub.stop().await;
}

#[tokio::test]
async fn too_large_and_interleaving_are_refused() {
    let hub = start_hub_with(|c| c.max_file_size = 1000).await;
    let (mut c, _) = Raw::hello(hub.addr).await;
    c.send(Message::Offer(Offer {
        id: 1,
        flags: 0,
        size: 1001,
        path: "big".into(),
    }))
    .await;
    let reason = assert_rejected(&c.recv().await, ErrorCode::TooLarge);
    assert!(reason.contains("1000"), "{reason}");
    c.send(Message::Offer(Offer {
        id: 2,
        flags: 0,
        size: 10,
        path: "a".into(),
    }))
    .await;
    c.send(Message::Offer(Offer {
        id: 3,
        flags: 0,
        size: 10,
        path: "b".into(),
    }))
    .await;
    assert!(matches!(c.recv().await, Message::Accept(_)));
    assert!(matches!(c.recv().await, Message::Accept(_)));
    c.send(Message::Data(Data {
        id: 2,
        bytes: Bytes::from_static(b"12345"),
    }))
    .await;
    c.send(Message::Data(Data {
        id: 3,
        bytes: Bytes::from_static(b"12345"),
    }))
    .await;
    match c.recv().await {
        Message::Error(e) => assert_eq!((e.code, e.id), (ErrorCode::ProtocolViolation, 0)),
        other => panic!("{other:?}"),
    }
    assert!(c.try_recv().await.is_none());
    hub.stop().await;
}

#[tokio::test]
async fn existing_files_skip_refuse_or_overwrite() {
    let hub = start_hub().await;
    let (mut c, _) = Raw::hello(hub.addr).await;
    assert_stored(
        &c.upload(1, "doc.txt", b"version one", 0).await,
        StoredStatus::New,
    );

    // Same content: Accept at the end with the stored hash; End without data → Unchanged.
    c.send(Message::Offer(Offer {
        id: 2,
        flags: 0,
        size: 11,
        path: "doc.txt".into(),
    }))
    .await;
    match c.recv().await {
        Message::Accept(a) => {
            assert_eq!(a.offset, 11);
            assert_eq!(a.prefix_hash, *blake3::hash(b"version one").as_bytes());
        }
        other => panic!("{other:?}"),
    }
    c.send(Message::End(End {
        id: 2,
        hash: Some(*blake3::hash(b"version one").as_bytes()),
    }))
    .await;
    assert_stored(&c.recv().await, StoredStatus::Unchanged);

    // Different size, no overwrite: refused before any byte is sent.
    c.send(Message::Offer(Offer {
        id: 3,
        flags: 0,
        size: 3,
        path: "doc.txt".into(),
    }))
    .await;
    let reason = assert_rejected(&c.recv().await, ErrorCode::Exists);
    assert!(reason.contains("--overwrite"), "{reason}");

    // Same size, different content, no overwrite: the client re-offers with NO_RESUME → Exists.
    c.send(Message::Offer(Offer {
        id: 4,
        flags: offer_flags::NO_RESUME,
        size: 11,
        path: "doc.txt".into(),
    }))
    .await;
    assert_rejected(&c.recv().await, ErrorCode::Exists);
    // A client that skips the hash check and sends End with another hash is refused too.
    c.send(Message::Offer(Offer {
        id: 5,
        flags: 0,
        size: 11,
        path: "doc.txt".into(),
    }))
    .await;
    assert!(matches!(c.recv().await, Message::Accept(_)));
    c.send(Message::End(End {
        id: 5,
        hash: Some([9; 32]),
    }))
    .await;
    assert_rejected(&c.recv().await, ErrorCode::Exists);
    assert_eq!(
        std::fs::read(hub.files().join("doc.txt")).unwrap(),
        b"version one"
    );

    // Overwrite replaces atomically.
    assert_stored(
        &c.upload(6, "doc.txt", b"version two!", offer_flags::OVERWRITE)
            .await,
        StoredStatus::Replaced,
    );
    assert_eq!(
        std::fs::read(hub.files().join("doc.txt")).unwrap(),
        b"version two!"
    );

    // A file where a folder is needed, and a folder where a file is wanted.
    let reason = assert_rejected(
        &c.upload(7, "doc.txt/inner", b"x", 0).await,
        ErrorCode::Exists,
    );
    assert!(reason.contains("folder"), "{reason}");
    assert_stored(&c.upload(8, "dir/f", b"x", 0).await, StoredStatus::New);
    assert_rejected(
        &c.upload(9, "dir", b"x", offer_flags::OVERWRITE).await,
        ErrorCode::Exists,
    );

    // Two uploads to one path at once: the second is told it's busy.
    c.send(Message::Offer(Offer {
        id: 10,
        flags: 0,
        size: 1,
        path: "race".into(),
    }))
    .await;
    c.send(Message::Offer(Offer {
        id: 11,
        flags: 0,
        size: 1,
        path: "race".into(),
    }))
    .await;
    assert!(matches!(c.recv().await, Message::Accept(_)));
    assert_rejected(&c.recv().await, ErrorCode::Busy);
    hub.stop().await;
}

#[tokio::test]
async fn interrupted_upload_resumes_from_verified_prefix() {
    let hub = start_hub().await;
    let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    {
        let (mut c, _) = Raw::hello(hub.addr).await;
        c.send(Message::Offer(Offer {
            id: 1,
            flags: 0,
            size: content.len() as u64,
            path: "big.bin".into(),
        }))
        .await;
        assert!(matches!(
            c.recv().await,
            Message::Accept(Accept { offset: 0, .. })
        ));
        c.send(Message::Data(Data {
            id: 1,
            bytes: Bytes::copy_from_slice(&content[..1_000_000]),
        }))
        .await;
        c.send(Message::Ping(Ping {
            nonce: 1,
            time_us: 0,
        }))
        .await;
        assert!(matches!(c.recv().await, Message::Pong(_)));
        // Connection drops mid-file.
    }
    assert!(
        !hub.files().join("big.bin").exists(),
        "no partial file is visible"
    );
    let (mut c, _) = Raw::hello(hub.addr).await;
    // The first connection's writer may still be flushing: retry while busy.
    let accept = loop {
        c.send(Message::Offer(Offer {
            id: 2,
            flags: 0,
            size: content.len() as u64,
            path: "big.bin".into(),
        }))
        .await;
        match c.recv().await {
            Message::Accept(a) => break a,
            Message::Rejected(r) if r.code == ErrorCode::Busy => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(accept.offset, 1_000_000);
    assert_eq!(
        accept.prefix_hash,
        *blake3::hash(&content[..1_000_000]).as_bytes()
    );
    c.send(Message::Data(Data {
        id: 2,
        bytes: Bytes::copy_from_slice(&content[1_000_000..]),
    }))
    .await;
    c.send(Message::End(End {
        id: 2,
        hash: Some(*blake3::hash(&content).as_bytes()),
    }))
    .await;
    assert_stored(&c.recv().await, StoredStatus::New);
    assert_eq!(std::fs::read(hub.files().join("big.bin")).unwrap(), content);
    hub.stop().await;
}

/// Small files are received in memory; a dropped connection must still leave their prefix for
/// resuming.
#[tokio::test]
async fn interrupted_small_upload_resumes_too() {
    let hub = start_hub().await;
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 239) as u8).collect();
    {
        let (mut c, _) = Raw::hello(hub.addr).await;
        c.send(Message::Offer(Offer {
            id: 1,
            flags: 0,
            size: content.len() as u64,
            path: "small.bin".into(),
        }))
        .await;
        assert!(matches!(
            c.recv().await,
            Message::Accept(Accept { offset: 0, .. })
        ));
        c.send(Message::Data(Data {
            id: 1,
            bytes: Bytes::copy_from_slice(&content[..120_000]),
        }))
        .await;
        c.send(Message::Ping(Ping {
            nonce: 1,
            time_us: 0,
        }))
        .await;
        assert!(matches!(c.recv().await, Message::Pong(_)));
    }
    let (mut c, _) = Raw::hello(hub.addr).await;
    let accept = loop {
        c.send(Message::Offer(Offer {
            id: 2,
            flags: 0,
            size: content.len() as u64,
            path: "small.bin".into(),
        }))
        .await;
        match c.recv().await {
            Message::Accept(a) => break a,
            Message::Rejected(r) if r.code == ErrorCode::Busy => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(accept.offset, 120_000);
    assert_eq!(
        accept.prefix_hash,
        *blake3::hash(&content[..120_000]).as_bytes()
    );
    c.send(Message::Data(Data {
        id: 2,
        bytes: Bytes::copy_from_slice(&content[120_000..]),
    }))
    .await;
    c.send(Message::End(End {
        id: 2,
        hash: Some(*blake3::hash(&content).as_bytes()),
    }))
    .await;
    assert_stored(&c.recv().await, StoredStatus::New);
    assert_eq!(
        std::fs::read(hub.files().join("small.bin")).unwrap(),
        content
    );
    hub.stop().await;
}

#[tokio::test]
async fn list_and_get_stream_stored_files() {
    let hub = start_hub().await;
    let (mut c, _) = Raw::hello(hub.addr).await;
    for (i, p) in ["a/1", "a/2", "b/1"].iter().enumerate() {
        assert_stored(
            &c.upload(i as u32 + 1, p, p.as_bytes(), 0).await,
            StoredStatus::New,
        );
    }
    c.send(Message::List(List {
        id: 7,
        limit: 1,
        prefix: "a/".into(),
        after: String::new(),
    }))
    .await;
    match c.recv().await {
        Message::ListPage(p) => {
            assert_eq!((p.id, p.more), (7, true));
            assert_eq!(p.entries[0].path, "a/1");
            assert_eq!(p.entries[0].sender, "raw@127.0.0.1");
        }
        other => panic!("{other:?}"),
    }
    c.send(Message::Get(Get {
        id: 8,
        offset: 0,
        path: "b/1".into(),
    }))
    .await;
    assert_eq!(
        c.recv().await,
        Message::FileInfo(FileInfo {
            id: 8,
            size: 3,
            hash: *blake3::hash(b"b/1").as_bytes()
        })
    );
    assert_eq!(
        c.recv().await,
        Message::Data(Data {
            id: 8,
            bytes: Bytes::from_static(b"b/1")
        })
    );
    assert!(matches!(c.recv().await, Message::End(End { id: 8, .. })));
    c.send(Message::Get(Get {
        id: 9,
        offset: 0,
        path: "nope".into(),
    }))
    .await;
    match c.recv().await {
        Message::Error(e) => assert_eq!((e.code, e.id), (ErrorCode::NotFound, 9)),
        other => panic!("{other:?}"),
    }
    hub.stop().await;
}

#[tokio::test]
async fn restart_reconciles_index_with_disk() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_builder().data(dir.path().join("data")).start().await;
    let (mut c, _) = Raw::hello(hub.addr).await;
    assert_stored(&c.upload(1, "keep", b"keep", 0).await, StoredStatus::New);
    assert_stored(&c.upload(2, "gone", b"gone", 0).await, StoredStatus::New);
    drop(c);
    let files = hub.files();
    hub.stop().await;
    // Behind the hub's back: one file deleted, one added (as after a crash between rename and
    // index update), one changed.
    std::fs::remove_file(files.join("gone")).unwrap();
    std::fs::write(files.join("found"), b"found").unwrap();
    let hub = hub_builder().data(dir.path().join("data")).start().await;
    let (mut c, _) = Raw::hello(hub.addr).await;
    c.send(Message::List(List {
        id: 1,
        limit: 100,
        prefix: String::new(),
        after: String::new(),
    }))
    .await;
    match c.recv().await {
        Message::ListPage(p) => {
            let paths: Vec<_> = p.entries.iter().map(|e| e.path.as_str()).collect();
            assert_eq!(paths, ["found", "keep"]);
            assert_eq!(p.entries[0].hash, *blake3::hash(b"found").as_bytes());
        }
        other => panic!("{other:?}"),
    }
    hub.stop().await;
}

#[tokio::test]
async fn many_concurrent_clients() {
    let hub = start_hub().await;
    let mut tasks = Vec::new();
    for i in 0..200u32 {
        let addr = hub.addr;
        tasks.push(tokio::spawn(async move {
            let (mut c, _) = Raw::hello(addr).await;
            let body = format!("client {i}");
            assert_stored(
                &c.upload(1, &format!("c/{i}.txt"), body.as_bytes(), 0).await,
                StoredStatus::New,
            );
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        std::fs::read_dir(hub.files().join("c")).unwrap().count(),
        200
    );
    hub.stop().await;
}

/// Connects speaking protocol `version` (the hub answers with the lower of it and its own).
async fn hello_version(addr: std::net::SocketAddr, version: u16) -> (Raw, Welcome) {
    let mut r = Raw::connect(addr).await;
    r.send(Message::Hello(Hello {
        version,
        name: "raw".into(),
        token: String::new(),
    }))
    .await;
    match r.recv().await {
        Message::Welcome(w) => (r, w),
        other => panic!("expected Welcome, got {other:?}"),
    }
}

async fn ping(c: &mut Raw, nonce: u64) {
    c.send(Message::Ping(Ping { nonce, time_us: 0 })).await;
    match c.recv().await {
        Message::Pong(p) => assert_eq!(p.nonce, nonce),
        other => panic!("expected Pong({nonce}), got {other:?}"),
    }
}

/// Version 2: `RegisterDevice` and `Subscribe` are answered once they took effect, `Subscribed`
/// with the window granted and before the stream's first frame; version 1 clients get neither.
#[tokio::test]
async fn registered_and_subscribed_say_when_live_roles_took_effect() {
    let hub = start_hub().await;
    let (mut p, _) = Raw::hello(hub.addr).await;
    p.send(Message::Frame(Frame {
        stream: "cam".into(),
        seq: 4,
        capture_us: 0,
        format: frame_format::JPEG,
        width: 1,
        height: 1,
        payload: Bytes::from_static(b"jpeg"),
    }))
    .await;
    assert!(matches!(p.recv().await, Message::FrameAck(_)));

    let (mut c, w) = hello_version(hub.addr, 2).await;
    assert_eq!(w.version, 2);
    c.send(Message::RegisterDevice(RegisterDevice {
        name: "cam-1".into(),
    }))
    .await;
    assert_eq!(
        c.recv().await,
        Message::Registered(Registered {
            name: "cam-1".into()
        })
    );
    assert_eq!(hub.handle.devices().list()[0].name, "cam-1");
    // Window 0 means 1; the frame already there follows the answer.
    for (asked, granted) in [(0, 1), (5, 5)] {
        c.send(Message::Subscribe(Subscribe {
            stream: "cam".into(),
            window: asked,
        }))
        .await;
        assert_eq!(
            c.recv().await,
            Message::Subscribed(Subscribed {
                stream: "cam".into(),
                window: granted
            })
        );
        match c.recv().await {
            Message::Frame(f) => assert_eq!(f.seq, 4),
            other => panic!("expected the stream's frame, got {other:?}"),
        }
    }

    // A version 1 client is served version 1 and never sees the new types.
    let (mut old, w) = hello_version(hub.addr, 1).await;
    assert_eq!(w.version, 1);
    old.send(Message::RegisterDevice(RegisterDevice {
        name: "old".into(),
    }))
    .await;
    old.send(Message::Subscribe(Subscribe {
        stream: "quiet".into(),
        window: 3,
    }))
    .await;
    ping(&mut old, 9).await;

    // A newer client is served the hub's version.
    let (_, w) = hello_version(hub.addr, 7).await;
    assert_eq!(w.version, VERSION);

    // Only the hub sends them.
    c.send(Message::Registered(Registered { name: "x".into() }))
        .await;
    loop {
        match c.recv().await {
            Message::Frame(_) => {}
            Message::Error(e) => {
                assert_eq!((e.code, e.id), (ErrorCode::ProtocolViolation, 0));
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(c.try_recv().await.is_none(), "closed after the error");
    hub.stop().await;
}

/// A command pending when its device disconnects is answered by the hub.
#[tokio::test]
async fn a_device_that_leaves_with_a_command_pending_fails_it() {
    let hub = start_hub().await;
    let (mut dev, _) = Raw::hello(hub.addr).await;
    dev.send(Message::RegisterDevice(RegisterDevice { name: "d".into() }))
        .await;
    assert!(matches!(dev.recv().await, Message::Registered(_)));
    let (mut user, _) = Raw::hello(hub.addr).await;
    user.send(Message::Command(Command {
        id: 3,
        target: "d".into(),
        command: "capture".into(),
        args: vec![],
    }))
    .await;
    assert!(matches!(dev.recv().await, Message::Command(_)));
    drop(dev);
    assert_eq!(
        user.recv().await,
        Message::Reply(Reply {
            id: 3,
            status: ReplyStatus::Failed,
            body: Bytes::from_static(b"the device disconnected before answering"),
        })
    );
    hub.stop().await;
}

/// An offset past the end is refused before anything is sent; the end itself is an empty
/// download.
#[tokio::test]
async fn get_past_the_end_is_an_error_without_file_info() {
    let hub = start_hub().await;
    let (mut c, _) = Raw::hello(hub.addr).await;
    assert_stored(&c.upload(1, "a.txt", b"hello", 0).await, StoredStatus::New);
    c.send(Message::Get(Get {
        id: 2,
        offset: 6,
        path: "a.txt".into(),
    }))
    .await;
    assert_eq!(
        c.recv().await,
        Message::Error(ErrorMsg {
            code: ErrorCode::Malformed,
            id: 2,
            message: "offset 6 is past the end of a.txt (5 bytes)".into()
        })
    );
    c.send(Message::Get(Get {
        id: 3,
        offset: 5,
        path: "a.txt".into(),
    }))
    .await;
    assert!(matches!(
        c.recv().await,
        Message::FileInfo(FileInfo { id: 3, size: 5, .. })
    ));
    assert!(matches!(c.recv().await, Message::End(End { id: 3, .. })));
    // Refused requests leave the connection open; so does an Offer with the reserved id 0.
    assert_eq!(
        c.upload(0, "b.txt", b"b", 0).await,
        Message::Rejected(Rejected {
            id: 0,
            code: ErrorCode::ProtocolViolation,
            reason: "file id 0 is reserved".into()
        })
    );
    ping(&mut c, 1).await;
    hub.stop().await;
}

/// Stores `n` small files `dir/NNNN`, offers pipelined in windows.
async fn store_many(c: &mut Raw, dir: &str, n: u32) {
    for start in (0..n).step_by(50) {
        let ids: Vec<u32> = (start..n.min(start + 50)).collect();
        for &i in &ids {
            c.send(Message::Offer(Offer {
                id: i + 1,
                flags: 0,
                size: 1,
                path: format!("{dir}/{i:04}"),
            }))
            .await;
        }
        for &i in &ids {
            assert!(matches!(c.recv().await, Message::Accept(a) if a.id == i + 1));
        }
        for &i in &ids {
            c.send(Message::Data(Data {
                id: i + 1,
                bytes: Bytes::from_static(b"x"),
            }))
            .await;
            c.send(Message::End(End {
                id: i + 1,
                hash: Some(*blake3::hash(b"x").as_bytes()),
            }))
            .await;
        }
        for _ in &ids {
            assert_stored(&c.recv().await, StoredStatus::New);
        }
    }
}

async fn list(c: &mut Raw, id: u32, limit: u32, after: &str) -> ListPage {
    c.send(Message::List(List {
        id,
        limit,
        prefix: "many/".into(),
        after: after.into(),
    }))
    .await;
    match c.recv().await {
        Message::ListPage(p) => {
            assert_eq!(p.id, id);
            p
        }
        other => panic!("expected ListPage, got {other:?}"),
    }
}

/// `limit` 0 asks for the hub's largest page (1000); larger limits are capped at it.
#[tokio::test]
async fn list_limit_zero_is_a_full_page() {
    let hub = start_hub().await;
    let (mut c, _) = Raw::hello(hub.addr).await;
    store_many(&mut c, "many", 1001).await;
    for (id, limit) in [(1, 0), (2, 5000)] {
        let page = list(&mut c, id, limit, "").await;
        assert_eq!(
            (page.entries.len(), page.more),
            (1000, true),
            "limit {limit}"
        );
        assert_eq!(page.entries[999].path, "many/0999");
        assert_eq!(page.entries[0].sender, "raw@127.0.0.1");
    }
    let last = list(&mut c, 3, 0, "many/0999").await;
    assert_eq!((last.entries.len(), last.more), (1, false));
    assert_eq!(list(&mut c, 4, 3, "").await.entries.len(), 3);
    hub.stop().await;
}

/// A connection's Gets are answered one after another in the order asked; past 64 waiting, the
/// hub answers `Busy` instead of queueing.
#[tokio::test]
async fn gets_are_answered_in_order_and_a_long_queue_is_busy() {
    let hub = start_hub_with(|c| c.chunk_size = 16 << 10).await;
    let (mut c, _) = Raw::hello(hub.addr).await;
    let big: Vec<u8> = (0..16u32 << 20).map(|i| (i % 251) as u8).collect();
    assert_stored(&c.upload(1, "big", &big, 0).await, StoredStatus::New);
    assert_stored(&c.upload(2, "small", b"small", 0).await, StoredStatus::New);

    // Big, missing, small: each answer whole, in that order.
    for (id, path) in [(10, "big"), (11, "missing"), (12, "small")] {
        c.send(Message::Get(Get {
            id,
            offset: 0,
            path: path.into(),
        }))
        .await;
    }
    let mut seen = Vec::new();
    let mut got = Vec::new();
    while seen.last() != Some(&(12, "End")) {
        let (id, what) = match c.recv().await {
            Message::FileInfo(i) => (i.id, "FileInfo"),
            Message::Data(d) => {
                if d.id == 10 {
                    got.extend_from_slice(&d.bytes);
                }
                (d.id, "Data")
            }
            Message::End(e) => (e.id, "End"),
            Message::Error(e) => (e.id, "Error"),
            other => panic!("{other:?}"),
        };
        if seen.last() != Some(&(id, what)) {
            seen.push((id, what));
        }
    }
    assert_eq!(
        seen,
        [
            (10, "FileInfo"),
            (10, "Data"),
            (10, "End"),
            (11, "Error"),
            (12, "FileInfo"),
            (12, "Data"),
            (12, "End")
        ]
    );
    assert!(got == big, "the big file arrives whole");

    // Without reading: the first Get stalls on the full connection, 64 wait, the rest are Busy.
    for id in 100..170 {
        c.send(Message::Get(Get {
            id,
            offset: 0,
            path: "big".into(),
        }))
        .await;
    }
    let mut busy = Vec::new();
    while busy.len() < 5 {
        match c.recv().await {
            Message::Error(e) => {
                assert_eq!(e.code, ErrorCode::Busy, "{e:?}");
                busy.push(e.id);
            }
            Message::FileInfo(i) => assert_eq!(i.id, 100, "the first Get is still being answered"),
            Message::Data(d) => assert_eq!(d.id, 100),
            other => panic!("{other:?}"),
        }
    }
    assert!(busy.iter().all(|&id| id >= 164), "{busy:?}");
    drop(c);
    hub.stop().await;
}
