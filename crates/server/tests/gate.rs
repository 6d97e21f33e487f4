//! One gate for every door: connection budgets shared by the native port, HTTP and the raw door;
//! the header deadline; blocking work that no door can monopolise; the storage limit enforced on
//! reservations and partials; tokenless doors bound to an identity; an index that fails.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use framewire_proto::*;
use framewire_server::auth::{Perms, Tokens};
use framewire_server::{Config, DoorPolicy, HubBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A hub with the HTTP and raw doors, its settings changed by `tweak`.
async fn all_doors(tweak: impl FnOnce(&mut Config)) -> TestHub {
    hub_builder()
        .config(tweak)
        .http()
        .raw(DoorPolicy::default())
        .start()
        .await
}

/// A minimal HTTP/1.1 exchange: the status line and the body.
async fn http(addr: SocketAddr, req: &str, body: &[u8]) -> (String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    answer(&mut s, Vec::new()).await
}

/// Reads the rest of an HTTP answer (after `start`): its status line and body.
async fn answer(s: &mut TcpStream, start: Vec<u8>) -> (String, Vec<u8>) {
    let mut out = start;
    tokio::time::timeout(T, s.read_to_end(&mut out))
        .await
        .expect("HTTP answer in time")
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.lines().next().unwrap_or("").to_owned();
    let body = match text.find("\r\n\r\n") {
        Some(i) => out[i + 4..].to_vec(),
        None => Vec::new(),
    };
    (status, body)
}

/// A PUT as curl sends a large one: `Expect: 100-continue`, the body only once the hub says so,
/// so a refusal arrives before any byte of the body is sent.
async fn put(addr: SocketAddr, path: &str, body: &[u8]) -> (String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PUT /files/{path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut first = vec![0u8; 25];
    tokio::time::timeout(T, s.read_exact(&mut first))
        .await
        .unwrap()
        .unwrap();
    if !first.starts_with(b"HTTP/1.1 100") {
        return answer(&mut s, first).await;
    }
    let mut b = [0u8; 1];
    while !first.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).await.unwrap();
        first.push(b[0]);
    }
    s.write_all(body).await.unwrap();
    answer(&mut s, Vec::new()).await
}

/// Reproduces: 1,100 idle HTTP connections made a hub stop answering everyone (HTTP had no
/// connection cap), and raw connections were not counted either.
#[tokio::test]
async fn idle_connections_of_every_door_share_the_global_cap() {
    let hub = all_doors(|c| {
        c.max_connections = 6;
        c.handshake_timeout = Duration::from_secs(30);
        c.raw_idle_timeout = Duration::from_secs(30);
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..2 {
        idle.push(TcpStream::connect(hub.http_addr.unwrap()).await.unwrap());
        idle.push(TcpStream::connect(hub.raw_addr.unwrap()).await.unwrap());
    }
    let mut natives = Vec::new();
    for _ in 0..2 {
        natives.push(Raw::hello(hub.addr).await.0);
    }
    // Let the hub admit them all.
    tokio::time::timeout(T, async {
        while hub.handle.open_connections() < 6 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("six connections admitted");

    // The seventh, on any door, is refused at once with the reason, not left hanging.
    let started = Instant::now();
    match Raw::greet(hub.addr, "late", "").await.1 {
        Message::Error(e) => {
            assert_eq!(e.code, ErrorCode::Busy);
            assert!(
                e.message.contains("limit of 6 connections"),
                "{}",
                e.message
            );
        }
        other => panic!("expected Error{{Busy}}, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refused at once"
    );
    let (status, _) = http(
        hub.http_addr.unwrap(),
        "GET /api/streams HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"",
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 503"), "{status}");

    // One idle connection goes away: a new client is served again.
    drop(idle.pop());
    let (mut c, _) = tokio::time::timeout(T, async {
        loop {
            match Raw::greet(hub.addr, "again", "").await {
                (c, Message::Welcome(w)) => return (c, w),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await
    .expect("served once a slot is free");
    c.send(Message::Ping(Ping {
        nonce: 1,
        time_us: 0,
    }))
    .await;
    assert!(matches!(c.recv().await, Message::Pong(_)));
    drop((idle, natives, c));
    hub.stop().await;
}

/// Reproduces: HTTP had no deadline for the request headers, so silent connections stayed.
#[tokio::test]
async fn a_silent_http_connection_is_closed_at_the_header_deadline() {
    let hub = all_doors(|c| c.handshake_timeout = Duration::from_millis(500)).await;
    for partial in [&b""[..], b"GET / HTTP/1.1\r\nHost: localhost\r\n"] {
        let mut s = TcpStream::connect(hub.http_addr.unwrap()).await.unwrap();
        s.write_all(partial).await.unwrap();
        let started = Instant::now();
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
            .await
            .expect("closed by the hub")
            .ok();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "closed near the deadline"
        );
    }
    hub.stop().await;
}

/// Reproduces: 520 raw uploads sending a byte every 10 s held all of tokio's blocking threads and
/// stalled `ls`, `get`, `send` and HTTP GETs for everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_raw_uploads_delay_no_one() {
    let hub = all_doors(|c| c.raw_idle_timeout = Duration::from_secs(30)).await;
    let (mut c, _) = Raw::hello(hub.addr).await;
    assert_stored(
        &c.upload(1, "stored.jpg", &[7u8; 100_000], 0).await,
        StoredStatus::New,
    );
    let raw = hub.raw_addr.unwrap();
    let mut trickles = Vec::new();
    for _ in 0..600 {
        let mut s = TcpStream::connect(raw).await.unwrap();
        s.write_all(b"x").await.unwrap();
        trickles.push(s);
    }
    let feeding = tokio::spawn(async move {
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_secs(5)).await;
            for s in &mut trickles {
                let _ = s.write_all(b"y").await;
            }
        }
        trickles
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    for round in 0..3u32 {
        let started = Instant::now();
        let big = vec![round as u8; 2 << 20];
        assert_stored(
            &c.upload(10 + round, &format!("big-{round}.bin"), &big, 0)
                .await,
            StoredStatus::New,
        );
        let sent = started.elapsed();
        let started = Instant::now();
        c.send(Message::List(List {
            id: 100 + round,
            prefix: String::new(),
            after: String::new(),
            limit: 10,
        }))
        .await;
        assert!(matches!(c.recv().await, Message::ListPage(_)));
        let listed = started.elapsed();
        let started = Instant::now();
        let (status, body) = http(
            hub.http_addr.unwrap(),
            "GET /files/stored.jpg HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            b"",
        )
        .await;
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        assert_eq!(body.len(), 100_000);
        let got = started.elapsed();
        for (what, t) in [("a 2 MiB send", sent), ("ls", listed), ("an HTTP GET", got)] {
            assert!(
                t < Duration::from_secs(1),
                "{what} took {t:?} behind 600 trickling raw uploads"
            );
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    drop(feeding.await.unwrap());
    hub.stop().await;
}

async fn offer(c: &mut Raw, id: u32, path: &str, size: u64) -> Message {
    c.send(Message::Offer(Offer {
        id,
        flags: 0,
        size,
        path: path.into(),
    }))
    .await;
    c.recv().await
}

fn stored_bytes(hub: &TestHub) -> u64 {
    tree(&hub.files())
        .iter()
        .filter(|p| p.is_file())
        .map(|p| p.metadata().unwrap().len())
        .sum()
}

/// Reproduces: `--max-storage` was checked only when a file was offered: five 8 MiB files under
/// a 10 MiB limit were all stored, so were parallel PUTs, and partials did not count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_storage_limit_holds_for_reservations_and_partials() {
    const MIB: u64 = 1 << 20;
    let limit = |c: &mut Config| c.max_storage = 10 * MIB;

    // Native: five 8 MiB offers pipelined; one fits.
    let hub = all_doors(limit).await;
    let (mut c, _) = Raw::hello(hub.addr).await;
    let mut accepted = Vec::new();
    for id in 1..=5u32 {
        c.send(Message::Offer(Offer {
            id,
            flags: 0,
            size: 8 * MIB,
            path: format!("n{id}.bin"),
        }))
        .await;
    }
    for _ in 1..=5 {
        match c.recv().await {
            Message::Accept(a) => accepted.push(a.id),
            Message::Rejected(r) => {
                assert_eq!(r.code, ErrorCode::StorageFull, "{}", r.reason);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(accepted.len(), 1, "exactly one 8 MiB file fits in 10 MiB");
    let body = Bytes::from(vec![1u8; (8 * MIB) as usize]);
    for chunk in body.chunks(1 << 20) {
        c.send(Message::Data(Data {
            id: accepted[0],
            bytes: Bytes::copy_from_slice(chunk),
        }))
        .await;
    }
    c.send(Message::End(End {
        id: accepted[0],
        hash: Some(*blake3::hash(&body).as_bytes()),
    }))
    .await;
    assert_stored(&c.recv().await, StoredStatus::New);
    assert!(stored_bytes(&hub) <= 10 * MIB);
    drop(c);
    hub.stop().await;

    // HTTP: five parallel 8 MiB PUTs; one fits, the others are told "storage full".
    let hub = all_doors(limit).await;
    let addr = hub.http_addr.unwrap();
    let puts: Vec<_> = (0..5)
        .map(|i| {
            tokio::spawn(async move {
                let body = vec![i as u8; (8 * MIB) as usize];
                put(addr, &format!("p{i}.bin"), &body).await
            })
        })
        .collect();
    let mut created = 0;
    for p in puts {
        let (status, body) = p.await.unwrap();
        if status.starts_with("HTTP/1.1 201") {
            created += 1;
        } else {
            assert!(status.starts_with("HTTP/1.1 507"), "{status}");
            assert!(String::from_utf8_lossy(&body).contains("storage full"));
        }
    }
    assert_eq!(created, 1);
    assert!(stored_bytes(&hub) <= 10 * MIB);

    // Partials count: 6 MiB of an interrupted upload are kept; 8 MiB more do not fit, 3 do.
    hub.stop().await;
    let hub = all_doors(limit).await;
    let (mut c, _) = Raw::hello(hub.addr).await;
    assert!(matches!(
        offer(&mut c, 1, "part.bin", 8 * MIB).await,
        Message::Accept(_)
    ));
    for _ in 0..6 {
        c.send(Message::Data(Data {
            id: 1,
            bytes: Bytes::from(vec![2u8; MIB as usize]),
        }))
        .await;
    }
    // Make sure the bytes arrived before hanging up.
    c.send(Message::Ping(Ping {
        nonce: 9,
        time_us: 0,
    }))
    .await;
    assert!(matches!(c.recv().await, Message::Pong(_)));
    drop(c);
    // The connection's end parks the partial (6 MiB at rest) and gives back its reservation.
    tokio::time::timeout(T, async {
        while hub.handle.open_connections() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the first connection closed");
    let (mut c, _) = Raw::hello(hub.addr).await;
    match offer(&mut c, 2, "other.bin", 8 * MIB).await {
        Message::Rejected(r) => assert_eq!(r.code, ErrorCode::StorageFull, "{}", r.reason),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        offer(&mut c, 3, "small.bin", 3 * MIB).await,
        Message::Accept(_)
    ));
    // That reservation leaves no room to finish the partial (6 + 3 + 2 > 10) until it is given up.
    c.send(Message::Cancel(Cancel { id: 3 })).await;
    assert_rejected(&c.recv().await, ErrorCode::Cancelled);
    // And the partial resumes where it stopped.
    match offer(&mut c, 4, "part.bin", 8 * MIB).await {
        Message::Accept(a) => assert_eq!(a.offset, 6 * MIB),
        other => panic!("{other:?}"),
    }
    drop(c);
    hub.stop().await;
}

fn tokens() -> Tokens {
    let mut t = Tokens::default();
    t.add("admin-token-0123456789", "ops", Perms::ALL);
    t.add("raw-token-0123456789", "cam", Perms::UPLOAD);
    t.add("udp-token-0123456789", "sensor", Perms::PUBLISH);
    t
}

/// Reproduces: on a hub with tokens, a raw upload with no token was stored, and a UDP datagram
/// with no token replaced a stream's latest frame.
#[tokio::test]
async fn tokenless_doors_refuse_to_start_unbound_and_act_as_their_identity() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicU32::new(0);
    let config = || {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut c = Config::new(dir.path().join(format!("data-{i}")));
        c.tokens = tokens();
        c
    };
    for (door, builder) in [
        (
            "--raw-as",
            HubBuilder::new(config()).raw("127.0.0.1:0", DoorPolicy::default()),
        ),
        (
            "--udp-as",
            HubBuilder::new(config()).udp("127.0.0.1:0", DoorPolicy::default()),
        ),
    ] {
        let err = match builder.listen("127.0.0.1:0").start().await {
            Ok(_) => panic!("a tokenless door started unbound on a hub with tokens"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(door), "{err}");
    }
    let as_name = |name: &str| DoorPolicy {
        act_as: Some(name.into()),
        allow: Vec::new(),
    };

    // Bound: raw acts as "cam" (upload only), UDP as "sensor" (publish only).
    let hub = HubBuilder::new(config())
        .listen("127.0.0.1:0")
        .raw("127.0.0.1:0", as_name("cam"))
        .udp("127.0.0.1:0", as_name("sensor"))
        .start()
        .await
        .unwrap();
    assert!(hub
        .banner()
        .iter()
        .any(|l| l.contains("acts as cam (upload)")));
    let mut s = TcpStream::connect(hub.raw_addr().unwrap()).await.unwrap();
    s.write_all(b"\xff\xd8\xffraw photo").await.unwrap();
    s.shutdown().await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(T, s.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("stored raw/"), "{answer}");
    let (files, _) = hub.handle().store().list("raw/", "", "", 10).unwrap();
    assert_eq!(files[0].sender, "cam@127.0.0.1");

    // UDP as "sensor": frames are published, and texts are messages from sensor@IP.
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let frame = |stream: &str| {
        Message::Frame(Frame {
            stream: stream.into(),
            seq: 1,
            capture_us: 0,
            width: 1,
            height: 1,
            format: frame_format::JPEG,
            payload: Bytes::from_static(b"\xff\xd8\xff\xd9"),
        })
        .to_bytes()
        .unwrap()
    };
    udp.send_to(&frame("udpcam"), hub.udp_addr().unwrap())
        .await
        .unwrap();
    tokio::time::timeout(T, async {
        while hub.handle().streams().get("udpcam").is_none() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the frame was published");
    hub.shutdown().await.unwrap();

    // The same doors bound to identities without the permission: refused, nothing changes.
    let hub = HubBuilder::new(config())
        .listen("127.0.0.1:0")
        .raw("127.0.0.1:0", as_name("sensor"))
        .udp("127.0.0.1:0", as_name("cam"))
        .start()
        .await
        .unwrap();
    let mut s = TcpStream::connect(hub.raw_addr().unwrap()).await.unwrap();
    s.write_all(b"not allowed").await.unwrap();
    s.shutdown().await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(T, s.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(
        answer.starts_with("refused: this token may not upload"),
        "{answer}"
    );
    udp.send_to(&frame("forged"), hub.udp_addr().unwrap())
        .await
        .unwrap();
    tokio::time::timeout(T, async {
        while hub
            .handle()
            .udp_stats()
            .refused
            .load(std::sync::atomic::Ordering::Relaxed)
            == 0
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the frame was refused");
    assert!(hub.handle().streams().get("forged").is_none());
    assert!(hub
        .handle()
        .store()
        .list("", "", "", 10)
        .unwrap()
        .0
        .is_empty());
    hub.shutdown().await.unwrap();

    // A source filter: only the allowed addresses may use the door.
    let hub = HubBuilder::new(config())
        .listen("127.0.0.1:0")
        .raw(
            "127.0.0.1:0",
            DoorPolicy {
                act_as: Some("cam".into()),
                allow: vec!["10.0.0.0/8".parse().unwrap()],
            },
        )
        .start()
        .await
        .unwrap();
    let mut s = TcpStream::connect(hub.raw_addr().unwrap()).await.unwrap();
    let _ = s.write_all(b"from loopback").await;
    let mut answer = String::new();
    let _ = tokio::time::timeout(T, s.read_to_string(&mut answer)).await;
    assert!(answer.contains("may not use the raw door"), "{answer}");
    assert!(hub
        .handle()
        .store()
        .list("", "", "", 10)
        .unwrap()
        .0
        .is_empty());
    hub.shutdown().await.unwrap();
}

/// Reproduces: when an index write failed after the files were made durable, `send` said
/// "stored" while `ls` showed nothing and GET answered 404 until a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_index_never_hides_an_acknowledged_file() {
    let hub = all_doors(|_| {}).await;
    // Another process holds the index's write lock: every index write fails (after its busy
    // timeout), as on a full or broken disk.
    let lock = rusqlite::Connection::open(hub.data.join("index.sqlite")).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE; INSERT INTO files VALUES ('lock', 0, x'00', '', 0, 0);")
        .unwrap();
    let (mut c, _) = Raw::hello(hub.addr).await;
    for (id, name) in [(1, "a.txt"), (2, "b.txt")] {
        assert_stored(
            &c.upload(id, name, name.as_bytes(), 0).await,
            StoredStatus::New,
        );
    }
    // Acknowledged, so listed and served.
    c.send(Message::List(List {
        id: 10,
        prefix: String::new(),
        after: String::new(),
        limit: 0,
    }))
    .await;
    match c.recv().await {
        Message::ListPage(p) => {
            let paths: Vec<&str> = p.entries.iter().map(|e| e.path.as_str()).collect();
            assert_eq!(paths, ["a.txt", "b.txt"]);
        }
        other => panic!("{other:?}"),
    }
    let (status, body) = http(
        hub.http_addr.unwrap(),
        "GET /files/b.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        b"",
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(body, b"b.txt");

    // The lock goes away: the next commit writes everything, and a restart finds it all.
    lock.execute_batch("ROLLBACK").unwrap();
    drop(lock);
    assert_stored(&c.upload(3, "c.txt", b"c", 0).await, StoredStatus::New);
    drop(c);
    let hub = hub.restart().await;
    let (files, _) = hub.handle.store().list("", "", "", 10).unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["a.txt", "b.txt", "c.txt"]);
    hub.stop().await;
}
