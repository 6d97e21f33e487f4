//! Property test of the whole hub (issue 5): random streams of valid messages (every type, random
//! fields: offers with bad paths, data for unknown ids, ends with wrong hashes, frames with extreme
//! sequence numbers and clocks...) mixed with invalid bytes (garbage, truncated headers, huge
//! lengths), written to one connection in random splits. After each case:
//!
//! - nothing in the process panicked (a panic hook counts panics on every thread, so a panic inside
//!   a connection or subscription task fails the case, not only one in the accept loop);
//! - the hub's serve task is still running;
//! - everything the hub wrote back decodes;
//! - once the connection is gone, nothing is left behind: no client in the registry, no device, no
//!   publisher or subscriber counted on any stream;
//! - a well-behaved client on another connection completes a Ping and an upload, byte-identical on
//!   disk;
//! - the index agrees with `files/` (same paths, same sizes).
//!
//! One hub serves every case (state carries over, as in real life); 64 cases of at most 50
//! actions (`PROPTEST_CASES` overrides the count). A failing case is shrunk and printed.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::{Raw, TestHub};
use framewire_proto::*;
use framewire_testkit::data::{self, Rng};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Panics seen anywhere in this test process since it started.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            default(info);
        }));
    });
}

/// The kit's in-process hub with the common settings, and quick command timeouts.
async fn start_hub() -> TestHub {
    common::hub_builder()
        .config(|c| {
            // A case that sends a command to a device that never answers should not wait 10 s.
            c.command_timeout = Duration::from_millis(300);
        })
        .start()
        .await
}

/// How a case's connection starts.
#[derive(Debug, Clone)]
enum Start {
    Hello,
    HelloVersion0,
    Http,
    Bytes(Vec<u8>),
}

/// One step of a case.
#[derive(Debug, Clone)]
enum Action {
    /// Any message, encoded as it should be.
    Msg(Message),
    /// Offer, every byte, End with the right hash.
    Upload {
        id: u32,
        path: String,
        content: Vec<u8>,
    },
    /// The same, for a file past the in-memory limit (spooled), content from a seed.
    LargeUpload { id: u32, path: String, seed: u64 },
    /// Random bytes.
    Garbage(Vec<u8>),
    /// The first `cut` bytes of a valid header (the next action's bytes complete it).
    TruncatedHeader { kind: u16, len: u32, cut: usize },
    /// A header announcing more than the hub accepts.
    HugeLength { kind: u16, len: u32 },
    /// Let the hub catch up (commits finish, frames go out) before the next bytes.
    Pause(u8),
}

#[derive(Debug, Clone)]
struct Case {
    start: Start,
    actions: Vec<Action>,
    /// Seeds the split points of the byte stream.
    split_seed: u64,
}

const KINDS: [u16; 25] = [
    kind::HELLO,
    kind::WELCOME,
    kind::ERROR,
    kind::PING,
    kind::PONG,
    kind::TEXT,
    kind::COMMAND,
    kind::REPLY,
    kind::REGISTER_DEVICE,
    kind::OFFER,
    kind::ACCEPT,
    kind::DATA,
    kind::END,
    kind::STORED,
    kind::REJECTED,
    kind::CANCEL,
    kind::GET,
    kind::FILE_INFO,
    kind::LIST,
    kind::LIST_PAGE,
    kind::FRAME,
    kind::SUBSCRIBE,
    kind::UNSUBSCRIBE,
    kind::FRAME_ACK,
    kind::PUBLISH,
];

fn small_id() -> impl Strategy<Value = u32> {
    prop_oneof![8 => 0u32..6, 1 => any::<u32>()]
}

/// Valid paths, kept under `p/` so they never collide with the checking client's `good/`.
fn valid_path() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "p/a.bin", "p/b.bin", "p/d/e.jpg", "p/d", "p/d/e.jpg/f", "p/données/été.png",
            "p/.hidden", "p/a..b", "p/big.bin",
        ])
        .prop_map(str::to_owned),
        2 => "p/[a-c]{1,3}(/[a-c]{1,3}){0,2}",
    ]
}

fn any_path() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => valid_path(),
        3 => prop::sample::select(vec![
            "", "/etc/passwd", "../x", "p/../../x", "p/./a", "..", "p//b", "p/", "a\\b",
            "C:/x", "c:x", "p/a\0b", "p/\u{7f}", "spool/x.part", "index.sqlite", "files",
        ])
        .prop_map(str::to_owned),
        1 => Just("p/".to_owned() + &"x".repeat(300)),
        1 => Just("p/".repeat(600)),
        1 => "\\PC{0,16}",
    ]
}

fn stream_name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(vec!["s1", "s2", ""]).prop_map(str::to_owned),
        1 => Just("s".repeat(3000)),
        1 => "\\PC{0,8}",
    ]
}

fn small_bytes() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..48).prop_map(Bytes::from)
}

fn hash() -> impl Strategy<Value = [u8; 32]> {
    any::<[u8; 32]>()
}

fn size() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 0u64..4096,
        1 => (1u64 << 20)..(1 << 20) + 4096,
        1 => Just(u64::MAX),
        1 => any::<u64>(),
    ]
}

fn extreme_u64() -> impl Strategy<Value = u64> {
    prop_oneof![4 => 0u64..100, 1 => Just(u64::MAX), 1 => Just(u64::MAX - 1), 1 => any::<u64>()]
}

fn extreme_i64() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => Just(0i64),
        2 => 1_600_000_000_000_000i64..1_900_000_000_000_000,
        1 => Just(i64::MIN),
        1 => Just(i64::MAX),
        1 => any::<i64>(),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![4 => "\\PC{0,24}", 1 => Just("t".repeat(5000))]
}

/// Messages a client may send, with random fields.
fn client_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        1 => (any::<u64>(), extreme_i64()).prop_map(|(nonce, time_us)| Message::Ping(Ping { nonce, time_us })),
        1 => (any::<u64>(), any::<i64>(), any::<i64>()).prop_map(|(nonce, ping_time_us, time_us)| {
            Message::Pong(Pong { nonce, ping_time_us, time_us })
        }),
        1 => (any::<u32>(), text()).prop_map(|(id, text)| Message::Text(Text { id, text })),
        3 => (small_id(), 0u8..4, size(), any_path())
            .prop_map(|(id, flags, size, path)| Message::Offer(Offer { id, flags, size, path })),
        3 => (small_id(), small_bytes()).prop_map(|(id, bytes)| Message::Data(Data { id, bytes })),
        2 => (small_id(), prop::option::of(hash())).prop_map(|(id, hash)| Message::End(End { id, hash })),
        1 => (small_id()).prop_map(|id| Message::Cancel(Cancel { id })),
        1 => (small_id(), extreme_u64(), any_path())
            .prop_map(|(id, offset, path)| Message::Get(Get { id, offset, path })),
        1 => (any::<u32>(), any::<u32>(), any_path(), any_path())
            .prop_map(|(id, limit, prefix, after)| Message::List(List { id, limit, prefix, after })),
        3 => (stream_name(), extreme_u64(), extreme_i64(), any::<u8>(), any::<u32>(), any::<u32>(), small_bytes())
            .prop_map(|(stream, seq, capture_us, format, width, height, payload)| {
                Message::Frame(Frame { stream, seq, capture_us, format, width, height, payload })
            }),
        2 => (stream_name(), prop_oneof![Just(0u16), Just(1), Just(u16::MAX), any::<u16>()])
            .prop_map(|(stream, window)| Message::Subscribe(Subscribe { stream, window })),
        1 => (stream_name()).prop_map(|stream| Message::Unsubscribe(Unsubscribe { stream })),
        2 => (stream_name(), extreme_u64()).prop_map(|(stream, seq)| Message::FrameAck(FrameAck { stream, seq })),
        1 => (stream_name(), any::<u32>())
            .prop_map(|(stream, max_latency_ms)| Message::Publish(Publish { stream, max_latency_ms })),
        2 => (any::<u32>(), prop::sample::select(vec!["dev", "nodev", ""]), "[a-z]{0,6}", prop::collection::vec("\\PC{0,6}", 0..4))
            .prop_map(|(id, target, command, args)| {
                Message::Command(Command { id, target: target.to_owned(), command, args })
            }),
        1 => (prop::sample::select(vec!["dev", ""])).prop_map(|n| Message::RegisterDevice(RegisterDevice { name: n.to_owned() })),
        1 => (any::<u32>(), prop::sample::select(vec![ReplyStatus::Ok, ReplyStatus::Failed, ReplyStatus::Timeout]), small_bytes())
            .prop_map(|(id, status, body)| Message::Reply(Reply { id, status, body })),
        1 => (any::<u16>(), any::<u32>(), text())
            .prop_map(|(code, id, message)| Message::Error(ErrorMsg { code: ErrorCode::from_u16(code), id, message })),
    ]
}

/// Messages only a hub sends (a client sending one breaks the protocol).
fn hub_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (any::<u16>(), text(), text()).prop_map(|(version, name, token)| Message::Hello(Hello {
            version,
            name,
            token
        })),
        (any::<u32>(), any::<u64>(), hash()).prop_map(|(id, offset, prefix_hash)| Message::Accept(
            Accept {
                id,
                offset,
                prefix_hash
            }
        )),
        (any::<u32>(), any::<u64>(), hash()).prop_map(|(id, size, hash)| {
            Message::Stored(Stored {
                id,
                status: StoredStatus::New,
                size,
                hash,
            })
        }),
        (any::<u32>(), any::<u16>(), text()).prop_map(|(id, code, reason)| {
            Message::Rejected(Rejected {
                id,
                code: ErrorCode::from_u16(code),
                reason,
            })
        }),
        (any::<u32>(), any::<u64>(), hash())
            .prop_map(|(id, size, hash)| Message::FileInfo(FileInfo { id, size, hash })),
        text().prop_map(|name| Message::Registered(Registered { name })),
        (text(), any::<u16>())
            .prop_map(|(stream, window)| Message::Subscribed(Subscribed { stream, window })),
        (any::<u32>(), any::<bool>()).prop_map(|(id, more)| Message::ListPage(ListPage {
            id,
            more,
            entries: vec![]
        })),
        Just(Message::Welcome(Welcome {
            version: 1,
            hub_time_us: 0,
            max_payload: 1,
            max_file_size: 1,
            chunk_size: 1,
            max_inflight: 1,
            hub_name: "evil".into(),
        })),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        30 => client_message().prop_map(Action::Msg),
        1 => hub_message().prop_map(Action::Msg),
        4 => (small_id(), valid_path(), prop::collection::vec(any::<u8>(), 0..3000))
            .prop_map(|(id, path, content)| Action::Upload { id, path, content }),
        1 => (small_id(), prop::sample::select(vec!["p/big.bin", "p/big2.bin"]), 0u64..3)
            .prop_map(|(id, path, seed)| Action::LargeUpload { id, path: path.to_owned(), seed }),
        1 => prop::collection::vec(any::<u8>(), 1..64).prop_map(Action::Garbage),
        1 => (prop::sample::select(KINDS.to_vec()), 0u32..64, 1usize..8)
            .prop_map(|(kind, len, cut)| Action::TruncatedHeader { kind, len, cut }),
        1 => (prop_oneof![prop::sample::select(KINDS.to_vec()), any::<u16>()], (DEFAULT_MAX_PAYLOAD + 1)..=u32::MAX)
            .prop_map(|(kind, len)| Action::HugeLength { kind, len }),
        2 => (0u8..4).prop_map(Action::Pause),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![
            12 => Just(Start::Hello),
            1 => Just(Start::HelloVersion0),
            1 => Just(Start::Http),
            1 => prop::collection::vec(any::<u8>(), 0..24).prop_map(Start::Bytes),
        ],
        prop::collection::vec(action(), 0..=50),
        any::<u64>(),
    )
        .prop_map(|(start, actions, split_seed)| Case {
            start,
            actions,
            split_seed,
        })
}

/// Deterministic content of a large upload.
fn large_content(seed: u64) -> Vec<u8> {
    let len = (1 << 20) + 1000 + seed as usize * 7;
    data::bytes(seed, len)
}

fn encode(m: &Message, out: &mut Vec<u8>) {
    m.encode(out).expect("test messages encode");
}

/// The byte segments of a case: each is written in random pieces, pauses in between.
enum Segment {
    Bytes(Vec<u8>),
    Pause(Duration),
}

fn segments(case: &Case) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    match &case.start {
        Start::Hello | Start::HelloVersion0 => encode(
            &Message::Hello(Hello {
                version: if matches!(case.start, Start::Hello) {
                    VERSION
                } else {
                    0
                },
                name: "fuzz".into(),
                token: String::new(),
            }),
            &mut cur,
        ),
        Start::Http => cur.extend_from_slice(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"),
        Start::Bytes(b) => cur.extend_from_slice(b),
    }
    for a in &case.actions {
        match a {
            Action::Msg(m) => encode(m, &mut cur),
            Action::Upload { id, path, content } => upload_bytes(*id, path, content, &mut cur),
            Action::LargeUpload { id, path, seed } => {
                upload_bytes(*id, path, &large_content(*seed), &mut cur)
            }
            Action::Garbage(b) => cur.extend_from_slice(b),
            Action::TruncatedHeader { kind, len, cut } => {
                let mut h = Vec::new();
                Header {
                    kind: *kind,
                    flags: 0,
                    len: *len,
                }
                .encode(&mut h);
                cur.extend_from_slice(&h[..*cut]);
            }
            Action::HugeLength { kind, len } => Header {
                kind: *kind,
                flags: 0,
                len: *len,
            }
            .encode(&mut cur),
            Action::Pause(ms) => {
                out.push(Segment::Bytes(std::mem::take(&mut cur)));
                out.push(Segment::Pause(Duration::from_millis(*ms as u64 * 5)));
            }
        }
    }
    out.push(Segment::Bytes(cur));
    out
}

fn upload_bytes(id: u32, path: &str, content: &[u8], out: &mut Vec<u8>) {
    encode(
        &Message::Offer(Offer {
            id,
            flags: 0,
            size: content.len() as u64,
            path: path.to_owned(),
        }),
        out,
    );
    for c in content.chunks(64 * 1024) {
        encode(
            &Message::Data(Data {
                id,
                bytes: Bytes::copy_from_slice(c),
            }),
            out,
        );
    }
    encode(
        &Message::End(End {
            id,
            hash: Some(*blake3::hash(content).as_bytes()),
        }),
        out,
    );
}

/// Reads and decodes everything the hub sends until it closes; returns how many messages came and
/// the first decoding error, if any. (An HTTP request gets a plain-text refusal, not messages.)
async fn drain(mut rd: tokio::net::tcp::OwnedReadHalf) -> (usize, Option<DecodeError>) {
    let mut buf = BytesMut::new();
    let mut n = 0;
    loop {
        const REFUSAL: &[u8] = b"HTTP/1.1 400";
        if n == 0 && buf.starts_with(REFUSAL) {
            let mut rest = Vec::new();
            let _ = rd.read_to_end(&mut rest).await;
            return (n, None);
        }
        // Until 12 bytes are in, a refusal cannot be told from messages.
        if n > 0 || !REFUSAL.starts_with(&buf[..buf.len().min(REFUSAL.len())]) {
            loop {
                match decode(&mut buf, u32::MAX) {
                    Ok(Some(_)) => n += 1,
                    Ok(None) => break,
                    Err(e) => return (n, Some(e)),
                }
            }
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return (n, None),
            Ok(_) => {}
        }
    }
}

async fn run_case(hub: &TestHub, case: &Case, case_no: usize) -> Result<(), TestCaseError> {
    let panics_before = PANICS.load(Ordering::SeqCst);
    let s = TcpStream::connect(hub.addr).await.unwrap();
    let (rd, mut wr) = s.into_split();
    let reader = tokio::spawn(drain(rd));

    let mut rng = Rng::new(case.split_seed);
    let mut rnd = move || rng.next_u64();
    'write: for seg in segments(case) {
        match seg {
            Segment::Pause(d) => tokio::time::sleep(d).await,
            Segment::Bytes(b) => {
                let mut at = 0;
                while at < b.len() {
                    let n = match rnd() % 4 {
                        0 => 1 + (rnd() % 8) as usize,
                        1 => 1 + (rnd() % 100) as usize,
                        _ => 1 + (rnd() % 70_000) as usize,
                    };
                    let end = (at + n).min(b.len());
                    // The hub may close on us at any point (that is its answer to garbage).
                    if wr.write_all(&b[at..end]).await.is_err() {
                        break 'write;
                    }
                    at = end;
                    if rnd() % 8 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            }
        }
    }
    let _ = wr.shutdown().await;
    let (answers, bad) = tokio::time::timeout(Duration::from_secs(20), reader)
        .await
        .map_err(|_| {
            TestCaseError::fail("the hub did not close the connection within 20 s of EOF")
        })?
        .unwrap();
    drop(wr);
    prop_assert!(
        bad.is_none(),
        "the hub sent bytes that do not decode: {bad:?}"
    );

    // Nothing left behind once the connection is gone.
    let settled = wait_until(Duration::from_secs(5), || {
        hub.handle.clients().list().is_empty()
            && hub.handle.devices().list().is_empty()
            && hub.handle.streams().all().iter().all(|s| {
                s.publishers.load(Ordering::SeqCst) == 0
                    && s.subscribers.load(Ordering::SeqCst) == 0
            })
    })
    .await;
    let panics = PANICS.load(Ordering::SeqCst) - panics_before;
    prop_assert_eq!(panics, 0, "the hub panicked (see the panic message above)");
    prop_assert!(hub.is_serving(), "the hub's serve task ended");
    prop_assert!(
        settled,
        "state left behind: clients {:?}, devices {:?}, streams {:?}",
        hub.handle
            .clients()
            .list()
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>(),
        hub.handle.devices().list(),
        hub.handle
            .streams()
            .all()
            .iter()
            .map(|s| (
                s.name().to_owned(),
                s.publishers.load(Ordering::SeqCst),
                s.subscribers.load(Ordering::SeqCst)
            ))
            .collect::<Vec<_>>()
    );

    // A well-behaved client still gets everything done.
    let (mut good, _) = Raw::hello(hub.addr).await;
    let nonce = 0xF00D_0000 + case_no as u64;
    good.send(Message::Ping(Ping { nonce, time_us: 1 })).await;
    match good.recv().await {
        Message::Pong(p) => prop_assert_eq!(p.nonce, nonce),
        other => return Err(TestCaseError::fail(format!("expected Pong, got {other:?}"))),
    }
    let content: Vec<u8> = (0..5000u32)
        .map(|i| (i * 31 + case_no as u32) as u8)
        .collect();
    let path = format!("good/case-{case_no}.bin");
    match good.upload(1, &path, &content, 0).await {
        Message::Stored(s) => prop_assert_eq!(s.status, StoredStatus::New),
        other => {
            return Err(TestCaseError::fail(format!(
                "good upload: {other:?} (after {answers} answers)"
            )))
        }
    }
    drop(good);
    prop_assert!(std::fs::read(hub.data.join("files").join(&path)).unwrap() == content);

    index_agrees_with_disk(hub, false)?;
    Ok(())
}

async fn wait_until(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let end = tokio::time::Instant::now() + limit;
    loop {
        if ok() {
            return true;
        }
        if tokio::time::Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn files_on_disk(root: &Path) -> BTreeMap<String, std::path::PathBuf> {
    common::tree(root)
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.strip_prefix(root).unwrap().to_string_lossy().into_owned(),
                p,
            )
        })
        .collect()
}

/// Every indexed file is on disk with its size (and, with `hashes`, its hash), and every file on
/// disk is indexed.
fn index_agrees_with_disk(hub: &TestHub, hashes: bool) -> Result<(), TestCaseError> {
    let (records, more) = hub.handle.store().list("", "", "", 1_000_000).unwrap();
    prop_assert!(!more);
    let disk = files_on_disk(&hub.data.join("files"));
    let indexed: Vec<&str> = records.iter().map(|r| r.path.as_str()).collect();
    let on_disk: Vec<&str> = disk.keys().map(String::as_str).collect();
    prop_assert_eq!(&indexed, &on_disk, "index and files/ disagree");
    for r in &records {
        let p = &disk[&r.path];
        prop_assert_eq!(
            std::fs::metadata(p).unwrap().len(),
            r.size,
            "size of {}",
            r.path
        );
        if hashes {
            let b = std::fs::read(p).unwrap();
            prop_assert_eq!(*blake3::hash(&b).as_bytes(), r.hash, "hash of {}", r.path);
        }
    }
    Ok(())
}

#[test]
fn random_streams_never_break_the_hub_for_others() {
    count_panics();
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let hub = Arc::new(rt.block_on(start_hub()));
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        // State carries over between cases, so a failure that leaves state behind fails every
        // later case too: shrink briefly, and print the first failing case as it was.
        max_shrink_iters: 64,
        max_shrink_time: 30_000,
        // No regression file is written into the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let case_no = AtomicUsize::new(0);
    let first_failure = std::sync::atomic::AtomicBool::new(false);
    let result = runner.run(&case(), |c| {
        let n = case_no.fetch_add(1, Ordering::SeqCst);
        let r = rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(60), run_case(&hub, &c, n))
                .await
                .map_err(|_| TestCaseError::fail("case did not finish within 60 s"))?
        });
        if let Err(e) = &r {
            if !first_failure.swap(true, Ordering::SeqCst) {
                eprintln!("first failing case (#{n}): {e}\n{c:#?}");
            }
        }
        r
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // At the end, every stored file's content matches its index record.
    if let Err(e) = index_agrees_with_disk(&hub, true) {
        panic!("{e}");
    }
    eprintln!(
        "{} cases; {} files stored; {} bytes in, {} bytes out",
        case_no.load(Ordering::SeqCst),
        hub.handle
            .store()
            .list("", "", "", 1_000_000)
            .unwrap()
            .0
            .len(),
        hub.handle.stats().bytes_in.load(Ordering::Relaxed),
        hub.handle.stats().bytes_out.load(Ordering::Relaxed),
    );
}

/// Found by the property test above: a `Frame` whose `capture_us` is far in the past (i64::MIN)
/// made `now - capture_us` overflow in `Stream::publish`, and a `seq` of u64::MAX made `prev + 1`
/// overflow in the connection's frame handler. With overflow checks (debug builds) either one
/// panicked the connection task, which then skipped its clean-up: the client stayed listed and the
/// stream kept a ghost publisher. Each frame must simply be acknowledged.
#[tokio::test]
async fn frames_with_extreme_clocks_and_sequence_numbers_are_acknowledged() {
    let hub = common::start_hub().await;
    let (mut c, _) = Raw::hello(hub.addr).await;
    let frame = |seq: u64, capture_us: i64| {
        Message::Frame(Frame {
            stream: "s".into(),
            seq,
            capture_us,
            format: frame_format::JPEG,
            width: 1,
            height: 1,
            payload: Bytes::from_static(b"x"),
        })
    };
    for (seq, capture_us) in [
        (1, i64::MIN),
        (2, i64::MAX),
        (u64::MAX, 0),
        (5, i64::MIN + 1),
    ] {
        c.send(frame(seq, capture_us)).await;
        match c.recv().await {
            Message::FrameAck(a) => assert_eq!(a.seq, seq),
            other => panic!("expected FrameAck({seq}), got {other:?}"),
        }
    }
    // A subscriber gets the newest frame (its age is computed on the way out, too).
    let (mut sub, _) = Raw::hello(hub.addr).await;
    sub.send(Message::Subscribe(Subscribe {
        stream: "s".into(),
        window: 1,
    }))
    .await;
    assert!(matches!(sub.recv().await, Message::Subscribed(_)));
    match sub.recv().await {
        Message::Frame(f) => assert_eq!(f.seq, 5),
        other => panic!("expected the newest frame, got {other:?}"),
    }
    drop((c, sub));
    let _ = hub.stop().await;
}
