//! SIGTERM while uploads arrive on every door (native, HTTP PUT, raw TCP), through the real
//! binary: each upload is either acknowledged and stored, or kept resumable and the client is
//! told so (a raw upload cannot resume: it is refused and nothing is kept), and the hub exits 0.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use framewire_proto::{decode, Accept, Data, End, Hello, Message, Offer, VERSION};

use super::Hub;

const SIZE: usize = 50 << 20;
const CHUNK: usize = 256 << 10;

/// How an upload ended, as its client saw it.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Stored,
    /// Told the hub is shutting down and the bytes are kept for resuming.
    KeptResumable,
    /// Told it was refused because the hub is shutting down (raw: nothing kept).
    Refused,
    Other(String),
}

fn content(seed: u8) -> Vec<u8> {
    let mut x = 0x9e37_79b9_u32.wrapping_mul(seed as u32 + 1);
    (0..SIZE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Sends `body` in paced chunks; tells `started` once 5 MB are out. Stops at the first write
/// error (the hub closed).
fn paced(
    s: &mut TcpStream,
    body: &[u8],
    pause: Duration,
    started: &mpsc::Sender<()>,
    frame: impl Fn(&[u8]) -> Vec<u8>,
) {
    let mut sent = 0;
    let mut told = false;
    for c in body.chunks(CHUNK) {
        if s.write_all(&frame(c)).is_err() {
            return;
        }
        sent += c.len();
        if !told && sent >= 5 << 20 {
            let _ = started.send(());
            told = true;
        }
        std::thread::sleep(pause);
    }
    if !told {
        let _ = started.send(());
    }
}

fn read_message(s: &mut TcpStream, buf: &mut BytesMut) -> Option<Message> {
    loop {
        if let Ok(Some(m)) = decode(buf, 1 << 24) {
            return Some(m);
        }
        let mut b = [0u8; 64 << 10];
        match s.read(&mut b) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&b[..n]),
        }
    }
}

/// Connects, shakes hands and offers `path` (`SIZE` bytes): the hub's answer.
fn offer(addr: &str, path: &str) -> (TcpStream, BytesMut, Option<Message>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = BytesMut::new();
    let hello = Message::Hello(Hello {
        version: VERSION,
        name: "native".into(),
        token: String::new(),
    });
    s.write_all(&hello.to_bytes().unwrap()).unwrap();
    assert!(matches!(
        read_message(&mut s, &mut buf),
        Some(Message::Welcome(_))
    ));
    let offer = Message::Offer(Offer {
        id: 1,
        flags: 0,
        size: SIZE as u64,
        path: path.into(),
    });
    s.write_all(&offer.to_bytes().unwrap()).unwrap();
    let answer = read_message(&mut s, &mut buf);
    (s, buf, answer)
}

fn native(addr: &str, body: Vec<u8>, pause: Duration, started: mpsc::Sender<()>) -> Outcome {
    let (mut s, mut buf, answer) = offer(addr, "native.bin");
    match answer {
        Some(Message::Accept(Accept { offset: 0, .. })) => {}
        other => panic!("{other:?}"),
    }
    paced(&mut s, &body, pause, &started, |c| {
        Message::Data(Data {
            id: 1,
            bytes: Bytes::copy_from_slice(c),
        })
        .to_bytes()
        .unwrap()
        .to_vec()
    });
    let end = Message::End(End {
        id: 1,
        hash: Some(*blake3::hash(&body).as_bytes()),
    });
    let _ = s.write_all(&end.to_bytes().unwrap());
    match read_message(&mut s, &mut buf) {
        Some(Message::Stored(_)) => Outcome::Stored,
        Some(Message::Error(e)) if e.message.contains("kept") => Outcome::KeptResumable,
        Some(other) => Outcome::Other(format!("{other:?}")),
        None => Outcome::Other("closed without an answer".into()),
    }
}

fn http(addr: &str, body: Vec<u8>, pause: Duration, started: mpsc::Sender<()>) -> Outcome {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "PUT /files/http.bin HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    paced(&mut s, &body, pause, &started, <[u8]>::to_vec);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    if answer.starts_with("HTTP/1.1 201") {
        Outcome::Stored
    } else if answer.starts_with("HTTP/1.1 503") && answer.contains("are kept") {
        Outcome::KeptResumable
    } else {
        Outcome::Other(answer)
    }
}

fn raw(addr: &str, body: Vec<u8>, pause: Duration, started: mpsc::Sender<()>) -> Outcome {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    paced(&mut s, &body, pause, &started, <[u8]>::to_vec);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    if answer.starts_with("stored ") {
        Outcome::Stored
    } else if answer.contains("shutting down") {
        Outcome::Refused
    } else {
        Outcome::Other(answer)
    }
}

/// Starts the three uploads, SIGTERMs the hub once each has sent 5 MB, and returns the outcomes
/// (native, HTTP, raw) with the bodies.
fn sigterm_during_uploads(data: &Path, pause: Duration) -> Vec<(Outcome, Vec<u8>)> {
    let mut hub = Hub::start_with(data, "127.0.0.1:0", &["--raw-listen", "127.0.0.1:0"]);
    let raw_addr = super::doors::wait_line(
        &hub,
        |l| l.strip_prefix("raw uploads: ").map(str::to_owned),
        "the raw address",
    );
    let (started, ready) = mpsc::channel();
    type Door = fn(&str, Vec<u8>, Duration, mpsc::Sender<()>) -> Outcome;
    let doors: [(Door, String, u8); 3] = [
        (native, hub.addr.clone(), 1),
        (http, hub.http.clone(), 2),
        (raw, raw_addr, 3),
    ];
    let uploads: Vec<_> = doors
        .into_iter()
        .map(|(door, addr, seed)| {
            let started = started.clone();
            std::thread::spawn(move || {
                let body = content(seed);
                (door(&addr, body.clone(), pause, started), body)
            })
        })
        .collect();
    for _ in 0..3 {
        ready
            .recv_timeout(Duration::from_secs(30))
            .expect("every upload started");
    }
    let status = hub.terminate(Duration::from_secs(20));
    assert!(
        status.success(),
        "the hub exits 0 after SIGTERM: {status:?}"
    );
    uploads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn stored(data: &Path, name: &str) -> Option<Vec<u8>> {
    std::fs::read(data.join("files").join(name)).ok()
}

/// Offers `path` again on a restarted hub: the offset it resumes from.
fn resume_offset(hub: &Hub, path: &str) -> u64 {
    match offer(&hub.addr, path).2 {
        Some(Message::Accept(a)) => a.offset,
        other => panic!("{other:?}"),
    }
}

/// Uploads that finish within the grace period are acknowledged and stored.
#[test]
fn sigterm_lets_uploads_in_flight_on_every_door_finish() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // 50 MB in about 2 s: well inside the 3 s grace after SIGTERM.
    let outcomes = sigterm_during_uploads(&data, Duration::from_millis(10));
    for ((outcome, body), name) in outcomes.iter().zip(["native.bin", "http.bin", "raw"]) {
        assert_eq!(*outcome, Outcome::Stored, "{name}");
        if name != "raw" {
            assert!(
                stored(&data, name).as_deref() == Some(&body[..]),
                "{name} stored whole"
            );
        }
    }
    let raw_files: Vec<_> = walk(&data.join("files/raw"));
    assert_eq!(raw_files.len(), 1);
    assert!(std::fs::read(&raw_files[0]).unwrap() == outcomes[2].1);
}

/// Uploads still arriving when the grace period ends are kept resumable (native and HTTP, which
/// know their size) and their clients are told so; a raw upload is refused.
#[test]
fn sigterm_keeps_unfinished_uploads_resumable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // 50 MB in about 8 s: not done when the 3 s grace ends.
    let outcomes = sigterm_during_uploads(&data, Duration::from_millis(40));
    assert_eq!(outcomes[0].0, Outcome::KeptResumable, "native");
    assert_eq!(outcomes[1].0, Outcome::KeptResumable, "HTTP");
    assert_eq!(outcomes[2].0, Outcome::Refused, "raw");
    assert!(stored(&data, "native.bin").is_none() && stored(&data, "http.bin").is_none());
    assert!(
        walk(&data.join("files")).is_empty(),
        "nothing half-written is visible"
    );
    let hub = Hub::start(&data);
    for name in ["native.bin", "http.bin"] {
        let offset = resume_offset(&hub, name);
        assert!(
            offset >= 5 << 20 && offset < SIZE as u64,
            "{name} resumes from {offset}"
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
