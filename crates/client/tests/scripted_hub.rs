//! The client against a small scripted hub that follows docs/PROTOCOL.md §4 and checks the client's
//! side of the contract as it goes: the offer window, one file's Data…End at a time, ids, hashes.
//! It also produces situations the real hub rarely does on demand: a partial upload that differs
//! from the local file, a connection cut mid-upload, final answers that arrive in bursts.
//!
//! The real hub is exercised by crates/server's integration tests and the CLI's end-to-end test.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use framewire_client::*;
use framewire_proto::*;
use framewire_testkit::data::{self, bytes as content};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WINDOW: u16 = 4;
const CHUNK: u32 = 64 << 10;

#[derive(Default)]
struct Store {
    files: BTreeMap<String, Vec<u8>>,
    partials: HashMap<String, Vec<u8>>,
    /// Contract violations seen; every test asserts this stays empty.
    violations: Vec<String>,
    /// Cut the connection once this many Data bytes arrived on it (then reset).
    cut_after: Option<usize>,
    /// Hold this many Stored answers back and release them together (group commit).
    burst: usize,
    /// Refuse the handshake with this error.
    refuse: Option<ErrorCode>,
    /// Answer the handshake with this version instead of ours.
    welcome_version: Option<u16>,
}

type Shared = Arc<Mutex<Store>>;

struct Upload {
    path: String,
    size: u64,
    flags: u8,
    bytes: Vec<u8>,
    accepted: bool,
}

async fn start(store: Shared) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(serve(s, store.clone()));
        }
    });
    addr
}

async fn write(s: &mut TcpStream, msgs: &[Message]) {
    let mut out = BytesMut::new();
    for m in msgs {
        m.encode(&mut out).unwrap();
    }
    let _ = s.write_all(&out).await;
}

async fn serve(mut s: TcpStream, store: Shared) {
    let mut buf = BytesMut::new();
    let mut session = Session::default();
    loop {
        let msg = loop {
            match decode(&mut buf, DEFAULT_MAX_PAYLOAD).unwrap() {
                Some(m) => break m,
                None => {
                    if s.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                        return;
                    }
                }
            }
        };
        let (replies, close) = handle(&store, msg, &mut session);
        write(&mut s, &replies).await;
        if close {
            return;
        }
    }
}

/// One connection's state, as the hub sees it.
#[derive(Default)]
struct Session {
    uploads: HashMap<u32, Upload>,
    current: Option<u32>,
    held: Vec<Message>,
    received: usize,
    greeted: bool,
}

/// Handles one message: the replies, and whether to close the connection afterwards.
fn handle(store: &Shared, msg: Message, ss: &mut Session) -> (Vec<Message>, bool) {
    let Session {
        uploads,
        current,
        held,
        received,
        greeted,
    } = ss;
    let mut st = store.lock().unwrap();
    let mut replies = Vec::new();
    {
        match msg {
            Message::Hello(_) if !*greeted => {
                *greeted = true;
                if let Some(code) = st.refuse {
                    let refusal = Message::Error(ErrorMsg {
                        code,
                        id: 0,
                        message: "go away".into(),
                    });
                    return (vec![refusal], true);
                }
                replies.push(Message::Welcome(Welcome {
                    version: st.welcome_version.unwrap_or(VERSION),
                    hub_time_us: 0,
                    max_payload: DEFAULT_MAX_PAYLOAD,
                    max_file_size: 1 << 30,
                    chunk_size: CHUNK,
                    max_inflight: WINDOW,
                    hub_name: "scripted".into(),
                }));
            }
            Message::Ping(p) => replies.push(Message::Pong(Pong {
                nonce: p.nonce,
                ping_time_us: p.time_us,
                time_us: p.time_us + 5_000_000,
            })),
            Message::Text(t) => replies.push(Message::Text(t)),
            Message::Offer(o) => {
                if uploads.contains_key(&o.id) {
                    st.violations.push(format!("offer reuses id {}", o.id));
                }
                if uploads.len() >= WINDOW as usize {
                    st.violations
                        .push(format!("window exceeded at offer {}", o.id));
                }
                let no_resume = o.flags & offer_flags::NO_RESUME != 0;
                let overwrite = o.flags & offer_flags::OVERWRITE != 0;
                let stored = st.files.get(&o.path).cloned();
                let answer = match stored {
                    Some(f) if f.len() as u64 == o.size && !no_resume => {
                        Some((o.size, *blake3::hash(&f).as_bytes(), f))
                    }
                    Some(_) if !overwrite => None,
                    _ => match st.partials.get(&o.path) {
                        Some(p) if !no_resume && (p.len() as u64) < o.size => {
                            Some((p.len() as u64, *blake3::hash(p).as_bytes(), p.clone()))
                        }
                        _ => Some((0, [0; 32], Vec::new())),
                    },
                };
                if no_resume {
                    st.partials.remove(&o.path);
                }
                match answer {
                    None => replies.push(Message::Rejected(Rejected {
                        id: o.id,
                        code: ErrorCode::Exists,
                        reason: "a different file is stored there".into(),
                    })),
                    Some((offset, prefix_hash, bytes)) => {
                        uploads.insert(
                            o.id,
                            Upload {
                                path: o.path,
                                size: o.size,
                                flags: o.flags,
                                bytes,
                                accepted: true,
                            },
                        );
                        replies.push(Message::Accept(Accept {
                            id: o.id,
                            offset,
                            prefix_hash,
                        }));
                    }
                }
            }
            Message::Data(d) => {
                match *current {
                    None => *current = Some(d.id),
                    Some(c) if c != d.id => st
                        .violations
                        .push(format!("data of {} inside file {c}", d.id)),
                    _ => {}
                }
                match uploads.get_mut(&d.id) {
                    Some(u) if u.accepted => u.bytes.extend_from_slice(&d.bytes),
                    _ => st
                        .violations
                        .push(format!("data for unaccepted id {}", d.id)),
                }
                *received += d.bytes.len();
                if st.cut_after.is_some_and(|n| *received >= n) {
                    st.cut_after = None;
                    // keep what arrived, as the real hub does
                    for u in uploads.values() {
                        if !u.bytes.is_empty() && (u.bytes.len() as u64) < u.size {
                            st.partials.insert(u.path.clone(), u.bytes.clone());
                        }
                    }
                    return (Vec::new(), true);
                }
            }
            Message::End(e) => {
                if current.is_some_and(|c| c != e.id) {
                    st.violations
                        .push(format!("end of {} inside another file", e.id));
                }
                *current = None;
                let Some(u) = uploads.remove(&e.id) else {
                    st.violations.push(format!("end for unknown id {}", e.id));
                    return (replies, false);
                };
                let hash = *blake3::hash(&u.bytes).as_bytes();
                let answer = if u.bytes.len() as u64 != u.size {
                    st.violations
                        .push(format!("{} sent {} of {}", u.path, u.bytes.len(), u.size));
                    Message::Rejected(Rejected {
                        id: e.id,
                        code: ErrorCode::SizeMismatch,
                        reason: String::new(),
                    })
                } else if e.hash != Some(hash) {
                    st.violations.push(format!("{} hash differs", u.path));
                    Message::Rejected(Rejected {
                        id: e.id,
                        code: ErrorCode::HashMismatch,
                        reason: String::new(),
                    })
                } else {
                    let status = match st.files.get(&u.path) {
                        Some(f) if *f == u.bytes => StoredStatus::Unchanged,
                        Some(_) if u.flags & offer_flags::OVERWRITE != 0 => StoredStatus::Replaced,
                        Some(_) => {
                            st.violations
                                .push(format!("{} replaced without OVERWRITE", u.path));
                            StoredStatus::Replaced
                        }
                        None => StoredStatus::New,
                    };
                    st.partials.remove(&u.path);
                    st.files.insert(u.path, u.bytes);
                    Message::Stored(Stored {
                        id: e.id,
                        status,
                        size: u.size,
                        hash,
                    })
                };
                held.push(answer);
                if held.len() >= st.burst.max(1) || uploads.is_empty() {
                    replies.append(held);
                }
            }
            Message::Cancel(c) => {
                if *current == Some(c.id) {
                    *current = None;
                }
                match uploads.remove(&c.id) {
                    Some(u) => {
                        st.partials.remove(&u.path);
                        replies.push(Message::Rejected(Rejected {
                            id: c.id,
                            code: ErrorCode::Cancelled,
                            reason: String::new(),
                        }));
                    }
                    None => st.violations.push(format!("cancel of unknown id {}", c.id)),
                }
            }
            Message::List(l) => {
                let entries: Vec<ListEntry> = st
                    .files
                    .iter()
                    .filter(|(p, _)| p.starts_with(&l.prefix) && p.as_str() > l.after.as_str())
                    .take(2) // tiny pages, so the client must page
                    .map(|(p, b)| ListEntry {
                        path: p.clone(),
                        size: b.len() as u64,
                        hash: *blake3::hash(b).as_bytes(),
                        stored_us: 1_700_000_000_000_000,
                        sender: "tester".into(),
                    })
                    .collect();
                let last = entries.last().map(|e| e.path.clone()).unwrap_or_default();
                let more = st
                    .files
                    .keys()
                    .any(|p| p.starts_with(&l.prefix) && *p > last);
                replies.push(Message::ListPage(ListPage {
                    id: l.id,
                    more: more && !entries.is_empty(),
                    entries,
                }));
            }
            Message::Get(g) => match st.files.get(&g.path) {
                None => replies.push(Message::Error(ErrorMsg {
                    code: ErrorCode::NotFound,
                    id: g.id,
                    message: format!("no file {:?}", g.path),
                })),
                Some(f) => {
                    let hash = *blake3::hash(f).as_bytes();
                    replies.push(Message::FileInfo(FileInfo {
                        id: g.id,
                        size: f.len() as u64,
                        hash,
                    }));
                    for c in f.chunks(CHUNK as usize) {
                        replies.push(Message::Data(Data {
                            id: g.id,
                            bytes: bytes::Bytes::copy_from_slice(c),
                        }));
                    }
                    replies.push(Message::End(End {
                        id: g.id,
                        hash: Some(hash),
                    }));
                }
            },
            other => st.violations.push(format!("unexpected {}", other.name())),
        }
    }
    (replies, false)
}

fn hub() -> Shared {
    Arc::new(Mutex::new(Store::default()))
}

fn violations(store: &Shared) -> Vec<String> {
    store.lock().unwrap().violations.clone()
}

async fn connect(addr: SocketAddr) -> Client {
    let opts = ConnectOptions {
        name: "tester".into(),
        io_timeout: Duration::from_secs(5),
        ..ConnectOptions::default()
    };
    Client::connect(&addr.to_string(), opts).await.unwrap()
}

/// A folder `photos` with files of assorted sizes (empty, below, at and above one chunk).
fn folder(root: &Path) -> Vec<(String, Vec<u8>)> {
    let sizes = [
        0,
        1,
        1000,
        CHUNK as usize,
        CHUNK as usize + 1,
        3 * CHUNK as usize + 17,
    ];
    let mut files = Vec::new();
    for i in 0..20u64 {
        let sub = if i % 3 == 0 { "sub dir/" } else { "" };
        let rel = format!("photos/{sub}img {i:02}.bin");
        let bytes = data::write_file(
            root,
            &rel,
            content(i, sizes[i as usize % sizes.len()] + i as usize),
        );
        files.push((rel, bytes));
    }
    files.sort();
    files
}

#[tokio::test]
async fn folder_upload_is_pipelined_verified_and_idempotent() {
    let store = hub();
    store.lock().unwrap().burst = 3;
    let addr = start(store.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let files = folder(dir.path());
    let total: u64 = files.iter().map(|(_, b)| b.len() as u64).sum();

    let mut c = connect(addr).await;
    let mut events = 0;
    let mut last = Totals::default();
    let report = c
        .send_dir(
            dir.path().join("photos"),
            None,
            SendOptions::default(),
            |e| {
                events += 1;
                if let ProgressEvent::Progress(t) = e {
                    assert!(t.bytes_done >= last.bytes_done && t.bytes_done <= t.bytes_total);
                    last = t;
                }
            },
        )
        .await
        .unwrap();
    assert!(report.all_stored(), "{report:#?}");
    assert_eq!(report.stored.len(), files.len());
    assert_eq!((report.bytes_sent, report.bytes_total), (total, total));
    assert_eq!(
        (last.files_done, last.bytes_done),
        (files.len() as u64, total)
    );
    assert!(events > files.len());
    assert!(report.stored.iter().all(|f| f.status == StoredStatus::New));
    assert_eq!(violations(&store), Vec::<String>::new());
    let stored: Vec<(String, Vec<u8>)> = store.lock().unwrap().files.clone().into_iter().collect();
    assert_eq!(stored, files);

    // Again: everything is already there, nothing is resent.
    let report = c
        .send_dir(
            dir.path().join("photos"),
            None,
            SendOptions::default(),
            |_| {},
        )
        .await
        .unwrap();
    assert!(report.all_stored(), "{report:#?}");
    assert_eq!(report.skipped.len(), files.len());
    assert_eq!(report.bytes_sent, 0);
    assert_eq!(violations(&store), Vec::<String>::new());
}

#[tokio::test]
async fn changed_file_is_refused_without_overwrite_and_replaced_with_it() {
    let store = hub();
    let addr = start(store.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.bin");
    std::fs::write(&f, content(1, 5000)).unwrap();
    let mut c = connect(addr).await;
    c.send_file(&f, "a.bin", SendOptions::default())
        .await
        .unwrap();

    // same size, different bytes: the prefix hash differs → Cancel, re-offer NO_RESUME → Exists
    std::fs::write(&f, content(2, 5000)).unwrap();
    match c.send_file(&f, "a.bin", SendOptions::default()).await {
        Err(ClientError::Rejected { code, .. }) => assert_eq!(code, Some(ErrorCode::Exists)),
        other => panic!("{other:?}"),
    }
    let replaced = c
        .send_file(&f, "a.bin", SendOptions { overwrite: true })
        .await
        .unwrap();
    assert_eq!(replaced.status, StoredStatus::Replaced);
    assert_eq!(store.lock().unwrap().files["a.bin"], content(2, 5000));
    assert_eq!(violations(&store), Vec::<String>::new());
}

#[tokio::test]
async fn interrupted_upload_is_reported_and_resumes() {
    let store = hub();
    store.lock().unwrap().cut_after = Some(CHUNK as usize * 5 / 2);
    let addr = start(store.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let big = content(7, CHUNK as usize * 6 + 123);
    std::fs::create_dir(dir.path().join("d")).unwrap();
    std::fs::write(dir.path().join("d/big.bin"), &big).unwrap();
    std::fs::write(dir.path().join("d/small.bin"), content(8, 10)).unwrap();

    let mut c = connect(addr).await;
    let report = c
        .send_dir(
            dir.path().join("d"),
            Some("up"),
            SendOptions::default(),
            |_| {},
        )
        .await
        .unwrap();
    assert!(report.interrupted.is_some(), "{report:#?}");
    assert_eq!(report.failed.len(), 2, "{report:#?}");
    assert!(report.failed[0].reason.contains("not acknowledged"));
    // the connection is gone for good
    assert!(matches!(
        c.ping().await,
        Err(ClientError::ConnectionLost(_))
    ));

    let held = store.lock().unwrap().partials["up/d/big.bin"].len() as u64;
    assert!(held > 0);
    let mut c = connect(addr).await;
    let report = c
        .send_dir(
            dir.path().join("d"),
            Some("up"),
            SendOptions::default(),
            |_| {},
        )
        .await
        .unwrap();
    assert!(report.all_stored(), "{report:#?}");
    let bigf = report
        .stored
        .iter()
        .find(|f| f.remote == "up/d/big.bin")
        .unwrap();
    assert_eq!(bigf.resumed_from, held);
    assert_eq!(report.bytes_sent, big.len() as u64 - held + 10);
    assert_eq!(store.lock().unwrap().files["up/d/big.bin"], big);
    assert_eq!(violations(&store), Vec::<String>::new());
}

#[tokio::test]
async fn partial_that_differs_is_started_over() {
    let store = hub();
    let data = content(3, CHUNK as usize * 2);
    store
        .lock()
        .unwrap()
        .partials
        .insert("p.bin".into(), content(4, CHUNK as usize));
    let addr = start(store.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.bin"), &data).unwrap();
    let mut c = connect(addr).await;
    let f = c
        .send_file(dir.path().join("p.bin"), "p.bin", SendOptions::default())
        .await
        .unwrap();
    assert_eq!((f.status, f.resumed_from), (StoredStatus::New, 0));
    assert_eq!(store.lock().unwrap().files["p.bin"], data);
    assert_eq!(violations(&store), Vec::<String>::new());
}

#[tokio::test]
async fn ping_message_list_get() {
    let store = hub();
    for (i, p) in ["a/1", "a/2", "a/3", "b/été 1"].iter().enumerate() {
        store
            .lock()
            .unwrap()
            .files
            .insert(p.to_string(), content(i as u64, 100 + i * 70_000));
    }
    let addr = start(store.clone()).await;
    let mut c = connect(addr).await;
    assert_eq!(c.welcome().hub_name, "scripted");

    let p = c.ping().await.unwrap();
    assert!(p.rtt < Duration::from_secs(1));
    // the scripted hub's clock runs 5 s ahead
    assert!((p.clock_offset_us - 5_000_000).abs() < 1_000_000, "{p:?}");

    assert_eq!(c.message("héllo ✓").await.unwrap(), "héllo ✓");

    let all: Vec<String> = c
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(all, ["a/1", "a/2", "a/3", "b/été 1"]);
    assert_eq!(c.list("a/").await.unwrap().len(), 3);

    let dir = tempfile::tempdir().unwrap();
    let got = c.get("b/été 1", dir.path()).await.unwrap();
    assert_eq!(got.local, dir.path().join("été 1"));
    assert_eq!(
        std::fs::read(&got.local).unwrap(),
        content(3, 100 + 3 * 70_000)
    );
    let out = dir.path().join("renamed");
    c.get("a/1", &out).await.unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), content(0, 100));

    match c.get("nope", dir.path()).await {
        Err(ClientError::Hub { code, .. }) => assert_eq!(code, ErrorCode::NotFound),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        c.get("../x", dir.path()).await,
        Err(ClientError::BadPath { .. })
    ));
    // no temp files left behind
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[tokio::test]
async fn refused_handshake_and_unreachable_hub_fail_fast() {
    let store = hub();
    store.lock().unwrap().refuse = Some(ErrorCode::Unauthorized);
    let addr = start(store).await;
    match Client::connect(&addr.to_string(), ConnectOptions::default()).await {
        Err(ClientError::Hub { code, message }) => {
            assert_eq!(
                (code, message.as_str()),
                (ErrorCode::Unauthorized, "go away")
            )
        }
        other => panic!("{other:?}"),
    }

    // a port nobody listens on: refused at once
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let t = Instant::now();
    let e = Client::connect(&format!("127.0.0.1:{port}"), ConnectOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Connect { .. }), "{e:?}");
    assert!(
        e.to_string().starts_with("cannot reach hub at 127.0.0.1:"),
        "{e}"
    );
    assert!(t.elapsed() < Duration::from_secs(2));

    // something that accepts but never answers: the handshake times out
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let opts = ConnectOptions {
        handshake_timeout: Duration::from_millis(300),
        ..ConnectOptions::default()
    };
    let t = Instant::now();
    let e = Client::connect(&silent.local_addr().unwrap().to_string(), opts)
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Timeout { .. }), "{e:?}");
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn download_larger_than_the_read_ahead_limit() {
    // More than the reader queues ahead (32 MiB), so it must pause and resume reading.
    let big: Vec<u8> = (0..40_000_000u32).map(|i| (i % 251) as u8).collect();
    let store = hub();
    store
        .lock()
        .unwrap()
        .files
        .insert("big".into(), big.clone());
    let addr = start(store).await;
    let mut c = connect(addr).await;
    let dir = tempfile::tempdir().unwrap();
    let got = c.get("big", dir.path().join("big")).await.unwrap();
    assert_eq!(got.size, big.len() as u64);
    assert!(std::fs::read(&got.local).unwrap() == big);
    // the connection is still in step afterwards
    assert_eq!(c.message("after").await.unwrap(), "after");
}

/// A hub that speaks only version 1 is served (it just never confirms live roles); a version the
/// client does not speak is refused.
#[tokio::test]
async fn versions_from_min_to_ours_are_accepted() {
    let store = hub();
    store.lock().unwrap().welcome_version = Some(MIN_VERSION);
    let addr = start(store.clone()).await;
    let mut c = connect(addr).await;
    assert_eq!(c.welcome().version, MIN_VERSION);
    c.ping().await.unwrap();

    store.lock().unwrap().welcome_version = Some(VERSION + 1);
    match Client::connect(&addr.to_string(), ConnectOptions::default()).await {
        Err(ClientError::Protocol(m)) => assert!(m.contains("protocol version"), "{m}"),
        other => panic!("{:?}", other.map(|c| c.welcome().clone())),
    }
}
