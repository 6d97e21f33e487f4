//! Round trips, every split point, hostile lengths, and the shared test vectors in
//! `docs/protocol-vectors.json` (which the C and Python clients check too).
//!
//! To regenerate the vectors after a deliberate format change:
//! `FRAMEWIRE_BLESS=1 cargo test -p framewire-proto --test codec` (and update docs/PROTOCOL.md).

use bytes::{Bytes, BytesMut};
use framewire_proto::*;
use proptest::prelude::*;
use serde_json::{json, Value};

const H1: [u8; 32] = [0x11; 32];

fn hash_seq() -> [u8; 32] {
    let mut h = [0u8; 32];
    for (i, b) in h.iter_mut().enumerate() {
        *b = i as u8;
    }
    h
}

/// One example of every message, with the field values a client's own test can rebuild it from.
fn examples() -> Vec<(&'static str, Message, Value)> {
    let hs = hash_seq();
    let hex32 = hex::encode(hs);
    vec![
        (
            "hello",
            Message::Hello(Hello {
                version: 2,
                name: "cam-1".into(),
                token: "s3cret".into(),
            }),
            json!({"version": 2, "name": "cam-1", "token": "s3cret"}),
        ),
        (
            "welcome",
            Message::Welcome(Welcome {
                version: 2,
                hub_time_us: 1_700_000_000_000_000,
                max_payload: DEFAULT_MAX_PAYLOAD,
                max_file_size: 1 << 40,
                chunk_size: DEFAULT_CHUNK_SIZE,
                max_inflight: 64,
                hub_name: "hub".into(),
            }),
            json!({"version": 2, "hub_time_us": 1_700_000_000_000_000i64, "max_payload": 16777216,
                   "max_file_size": 1u64 << 40, "chunk_size": 1048576, "max_inflight": 64, "hub_name": "hub"}),
        ),
        (
            "error",
            Message::Error(ErrorMsg {
                code: ErrorCode::BadPath,
                id: 7,
                message: "bad path".into(),
            }),
            json!({"code": 5, "id": 7, "message": "bad path"}),
        ),
        (
            "ping",
            Message::Ping(Ping {
                nonce: 0x0102030405060708,
                time_us: 1_700_000_000_000_001,
            }),
            json!({"nonce": 0x0102030405060708u64, "time_us": 1_700_000_000_000_001i64}),
        ),
        (
            "pong",
            Message::Pong(Pong {
                nonce: 9,
                ping_time_us: 1_700_000_000_000_001,
                time_us: 1_700_000_000_000_500,
            }),
            json!({"nonce": 9, "ping_time_us": 1_700_000_000_000_001i64, "time_us": 1_700_000_000_000_500i64}),
        ),
        (
            "text",
            Message::Text(Text {
                id: 3,
                text: "hello hub ✓".into(),
            }),
            json!({"id": 3, "text": "hello hub ✓"}),
        ),
        (
            "command",
            Message::Command(Command {
                id: 42,
                target: "cam-1".into(),
                command: "set".into(),
                args: vec!["fps".into(), "15".into()],
            }),
            json!({"id": 42, "target": "cam-1", "command": "set", "args": ["fps", "15"]}),
        ),
        (
            "reply",
            Message::Reply(Reply {
                id: 42,
                status: ReplyStatus::Ok,
                body: Bytes::from_static(b"fps=15"),
            }),
            json!({"id": 42, "status": 0, "body_hex": hex::encode(b"fps=15")}),
        ),
        (
            "register_device",
            Message::RegisterDevice(RegisterDevice {
                name: "cam-1".into(),
            }),
            json!({"name": "cam-1"}),
        ),
        (
            "registered",
            Message::Registered(Registered {
                name: "cam-1".into(),
            }),
            json!({"name": "cam-1"}),
        ),
        (
            "offer",
            Message::Offer(Offer {
                id: 1,
                flags: offer_flags::OVERWRITE,
                size: 5,
                path: "photos/a.jpg".into(),
            }),
            json!({"id": 1, "flags": 1, "size": 5, "path": "photos/a.jpg"}),
        ),
        (
            "accept",
            Message::Accept(Accept {
                id: 1,
                offset: 0,
                prefix_hash: [0; 32],
            }),
            json!({"id": 1, "offset": 0, "prefix_hash": hex::encode([0u8; 32])}),
        ),
        (
            "data",
            Message::Data(Data {
                id: 1,
                bytes: Bytes::from_static(b"hello"),
            }),
            json!({"id": 1, "bytes_hex": hex::encode(b"hello")}),
        ),
        (
            "end",
            Message::End(End {
                id: 1,
                hash: Some(hs),
            }),
            json!({"id": 1, "has_hash": 1, "hash": hex32}),
        ),
        (
            "end_without_hash",
            Message::End(End { id: 2, hash: None }),
            json!({"id": 2, "has_hash": 0, "hash": hex::encode([0u8; 32])}),
        ),
        (
            "stored",
            Message::Stored(Stored {
                id: 1,
                status: StoredStatus::New,
                size: 5,
                hash: hs,
            }),
            json!({"id": 1, "status": 0, "size": 5, "hash": hex32}),
        ),
        (
            "rejected",
            Message::Rejected(Rejected {
                id: 1,
                code: ErrorCode::Exists,
                reason: "exists".into(),
            }),
            json!({"id": 1, "code": 6, "reason": "exists"}),
        ),
        (
            "cancel",
            Message::Cancel(Cancel { id: 1 }),
            json!({"id": 1}),
        ),
        (
            "get",
            Message::Get(Get {
                id: 4,
                offset: 0,
                path: "photos/a.jpg".into(),
            }),
            json!({"id": 4, "offset": 0, "path": "photos/a.jpg"}),
        ),
        (
            "file_info",
            Message::FileInfo(FileInfo {
                id: 4,
                size: 5,
                hash: H1,
            }),
            json!({"id": 4, "size": 5, "hash": hex::encode(H1)}),
        ),
        (
            "list",
            Message::List(List {
                id: 5,
                limit: 100,
                prefix: "photos/".into(),
                after: String::new(),
            }),
            json!({"id": 5, "limit": 100, "prefix": "photos/", "after": ""}),
        ),
        (
            "list_page",
            Message::ListPage(ListPage {
                id: 5,
                more: false,
                entries: vec![ListEntry {
                    path: "photos/a.jpg".into(),
                    size: 5,
                    hash: H1,
                    stored_us: 1_700_000_000_000_000,
                    sender: "cam-1".into(),
                }],
            }),
            json!({"id": 5, "more": 0, "entries": [{"path": "photos/a.jpg", "size": 5, "hash": hex::encode(H1),
                   "stored_us": 1_700_000_000_000_000i64, "sender": "cam-1"}]}),
        ),
        (
            "delete",
            Message::Delete(Delete {
                id: 6,
                path: "photos/a.jpg".into(),
            }),
            json!({"id": 6, "path": "photos/a.jpg"}),
        ),
        (
            "deleted",
            Message::Deleted(Deleted { id: 6, size: 5 }),
            json!({"id": 6, "size": 5}),
        ),
        (
            "frame",
            Message::Frame(Frame {
                stream: "cam".into(),
                seq: 7,
                capture_us: 1_700_000_000_000_000,
                format: frame_format::JPEG,
                width: 1920,
                height: 1080,
                payload: Bytes::from_static(&[0xff, 0xd8, 0xff, 0xd9]),
            }),
            json!({"stream": "cam", "seq": 7, "capture_us": 1_700_000_000_000_000i64, "format": 1,
                   "width": 1920, "height": 1080, "payload_hex": "ffd8ffd9"}),
        ),
        (
            "subscribe",
            Message::Subscribe(Subscribe {
                stream: "cam".into(),
                window: 1,
            }),
            json!({"stream": "cam", "window": 1}),
        ),
        (
            "unsubscribe",
            Message::Unsubscribe(Unsubscribe {
                stream: "cam".into(),
            }),
            json!({"stream": "cam"}),
        ),
        (
            "frame_ack",
            Message::FrameAck(FrameAck {
                stream: "cam".into(),
                seq: 7,
            }),
            json!({"stream": "cam", "seq": 7}),
        ),
        (
            "publish",
            Message::Publish(Publish {
                stream: "cam".into(),
                max_latency_ms: 80,
            }),
            json!({"stream": "cam", "max_latency_ms": 80}),
        ),
        (
            "subscribed",
            Message::Subscribed(Subscribed {
                stream: "cam".into(),
                window: 1,
            }),
            json!({"stream": "cam", "window": 1}),
        ),
        (
            "text_to",
            Message::TextTo(TextTo {
                id: 8,
                to: "sorter".into(),
                text: "hi".into(),
            }),
            json!({"id": 8, "to": "sorter", "text": "hi"}),
        ),
        (
            "delivery",
            Message::Delivery(Delivery {
                id: 8,
                status: DeliveryStatus::NoReceiver,
            }),
            json!({"id": 8, "status": 1}),
        ),
        (
            "text_from",
            Message::TextFrom(TextFrom {
                from: "cam-1".into(),
                to: "sorter".into(),
                text: "hi".into(),
            }),
            json!({"from": "cam-1", "to": "sorter", "text": "hi"}),
        ),
        (
            "follow",
            Message::Follow(Follow {
                name: "sorter".into(),
                prefix: "photos/".into(),
                kinds: vec!["stored".into(), "message".into()],
            }),
            json!({"name": "sorter", "prefix": "photos/", "kinds": ["stored", "message"]}),
        ),
        (
            "following",
            Message::Following(Following {
                name: "sorter".into(),
            }),
            json!({"name": "sorter"}),
        ),
        (
            "event",
            Message::Event(Event {
                time_us: 1_700_000_000_000_000,
                dropped: 2,
                kind: "stored".into(),
                fields: vec![
                    ("path".into(), "photos/a.jpg".into()),
                    ("size".into(), "5".into()),
                ],
            }),
            json!({"time_us": 1_700_000_000_000_000i64, "dropped": 2, "kind": "stored",
                   "fields": [["path", "photos/a.jpg"], ["size", "5"]]}),
        ),
    ]
}

fn vectors_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/protocol-vectors.json")
}

fn decode_one(bytes: &[u8]) -> Message {
    let mut buf = BytesMut::from(bytes);
    let m = decode(&mut buf, DEFAULT_MAX_PAYLOAD)
        .unwrap()
        .expect("whole message");
    assert!(buf.is_empty(), "decoder left bytes behind");
    m
}

#[test]
fn vectors_file_matches_encoder_and_decoder() {
    let mut out = Vec::new();
    for (name, msg, fields) in examples() {
        let bytes = msg.to_bytes().unwrap();
        out.push(json!({
            "name": name,
            "type": msg.kind(),
            "hex": hex::encode(&bytes),
            "fields": fields,
        }));
    }
    let doc = json!({
        "about": "One encoded example of every framewire message (protocol version 2). Each client's tests decode `hex` and compare with `fields`, and encode `fields` and compare with `hex`. Hashes and byte fields are hex strings.",
        "version": VERSION,
        "vectors": out,
    });
    let text = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    if std::env::var_os("FRAMEWIRE_BLESS").is_some() {
        std::fs::write(vectors_path(), &text).unwrap();
    }
    let on_disk = std::fs::read_to_string(vectors_path())
        .expect("docs/protocol-vectors.json is missing; run with FRAMEWIRE_BLESS=1 to create it");
    let on_disk: Value = serde_json::from_str(&on_disk).unwrap();
    // Decode every vector from the file (not from our own encoder) and compare.
    let by_name: std::collections::HashMap<_, _> =
        examples().into_iter().map(|(n, m, _)| (n, m)).collect();
    let vectors = on_disk["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), by_name.len(), "one vector per example");
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
        let want = &by_name[name];
        assert_eq!(&decode_one(&bytes), want, "vector {name}");
        assert_eq!(
            want.to_bytes().unwrap().as_ref(),
            &bytes[..],
            "vector {name}"
        );
    }
    assert_eq!(
        on_disk, doc,
        "docs/protocol-vectors.json is stale: FRAMEWIRE_BLESS=1"
    );
}

#[test]
fn vector_header_is_byte_exact() {
    // The worked example of docs/PROTOCOL.md: Data { id: 1, bytes: "hello" }.
    let b = Message::Data(Data {
        id: 1,
        bytes: Bytes::from_static(b"hello"),
    })
    .to_bytes()
    .unwrap();
    assert_eq!(hex::encode(&b), "32000000090000000100000068656c6c6f");
}

#[test]
fn every_example_round_trips_from_every_split() {
    for (name, msg, _) in examples() {
        let bytes = msg.to_bytes().unwrap();
        assert_eq!(bytes.len(), HEADER_LEN + msg.payload_len(), "{name}");
        for split in 0..=bytes.len() {
            let mut buf = BytesMut::new();
            buf.extend_from_slice(&bytes[..split]);
            let first = decode(&mut buf, DEFAULT_MAX_PAYLOAD).unwrap();
            if split < bytes.len() {
                assert!(
                    first.is_none(),
                    "{name}: whole message from {split} of {} bytes",
                    bytes.len()
                );
                buf.extend_from_slice(&bytes[split..]);
                let m = decode(&mut buf, DEFAULT_MAX_PAYLOAD).unwrap().unwrap();
                assert_eq!(m, msg, "{name} split at {split}");
            } else {
                assert_eq!(first.unwrap(), msg, "{name}");
            }
            assert!(buf.is_empty());
        }
    }
}

#[test]
fn one_byte_at_a_time_across_a_stream_of_messages() {
    let mut stream = Vec::new();
    for (_, msg, _) in examples() {
        msg.encode(&mut stream).unwrap();
    }
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for b in stream {
        buf.extend_from_slice(&[b]);
        while let Some(m) = decode(&mut buf, DEFAULT_MAX_PAYLOAD).unwrap() {
            got.push(m);
        }
    }
    let want: Vec<_> = examples().into_iter().map(|(_, m, _)| m).collect();
    assert_eq!(got, want);
}

#[test]
fn oversized_length_is_refused_before_allocation() {
    // Header claims 4 GiB - 1 of Data; only the header is present.
    let mut buf = BytesMut::from(&[0x32, 0, 0, 0, 0xff, 0xff, 0xff, 0xff][..]);
    let before = buf.capacity();
    let err = decode(&mut buf, DEFAULT_MAX_PAYLOAD).unwrap_err();
    assert_eq!(
        err,
        DecodeError::TooLarge {
            len: u32::MAX,
            max: DEFAULT_MAX_PAYLOAD
        }
    );
    assert_eq!(
        buf.capacity(),
        before,
        "no room was reserved for the claimed size"
    );
    assert!(err.to_string().contains("exceeds the limit"));
}

#[test]
fn unknown_type_bad_flags_and_bad_magic() {
    let mut buf = BytesMut::from(&[0xee, 0xee, 0, 0, 0, 0, 0, 0x7f][..]);
    assert_eq!(
        decode(&mut buf, 1024).unwrap_err(),
        DecodeError::UnknownType { kind: 0xeeee }
    );
    let mut buf = BytesMut::from(&[0x04, 0, 1, 0, 16, 0, 0, 0][..]);
    assert_eq!(
        decode(&mut buf, 1024).unwrap_err(),
        DecodeError::UnsupportedFlags { flags: 1 }
    );
    let mut hello = Message::Hello(Hello {
        version: 1,
        name: "x".into(),
        token: String::new(),
    })
    .to_bytes()
    .unwrap()
    .to_vec();
    hello[8] = b'X';
    let mut buf = BytesMut::from(&hello[..]);
    assert_eq!(decode(&mut buf, 1024).unwrap_err(), DecodeError::BadMagic);
}

#[test]
fn lying_inner_lengths_are_truncation_errors() {
    // Offer whose path length says 60000 but the payload is short.
    let mut b = Vec::new();
    Header {
        kind: kind::OFFER,
        flags: 0,
        len: 4 + 1 + 8 + 2,
    }
    .encode(&mut b);
    b.extend_from_slice(&[1, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0x60, 0xea]);
    let mut buf = BytesMut::from(&b[..]);
    assert_eq!(
        decode(&mut buf, 1024).unwrap_err(),
        DecodeError::Truncated { message: "Offer" }
    );
    // Command whose argument count says 65535 with no arguments present.
    let mut b = Vec::new();
    Header {
        kind: kind::COMMAND,
        flags: 0,
        len: 4 + 2 + 2 + 2,
    }
    .encode(&mut b);
    b.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
    let mut buf = BytesMut::from(&b[..]);
    assert_eq!(
        decode(&mut buf, 1024).unwrap_err(),
        DecodeError::Truncated { message: "Command" }
    );
    // ListPage claiming 2^32-1 entries.
    let mut b = Vec::new();
    Header {
        kind: kind::LIST_PAGE,
        flags: 0,
        len: 9,
    }
    .encode(&mut b);
    b.extend_from_slice(&[5, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    let mut buf = BytesMut::from(&b[..]);
    assert_eq!(
        decode(&mut buf, 1024).unwrap_err(),
        DecodeError::Truncated {
            message: "ListPage"
        }
    );
}

#[test]
fn trailing_bytes_and_invalid_utf8_are_errors() {
    let mut b = Message::Cancel(Cancel { id: 1 })
        .to_bytes()
        .unwrap()
        .to_vec();
    b[4] = 5;
    b.push(0);
    let mut buf = BytesMut::from(&b[..]);
    assert!(matches!(
        decode(&mut buf, 1024).unwrap_err(),
        DecodeError::TrailingBytes { extra: 1, .. }
    ));
    let mut b = Vec::new();
    Header {
        kind: kind::TEXT,
        flags: 0,
        len: 6,
    }
    .encode(&mut b);
    b.extend_from_slice(&[1, 0, 0, 0, 0xc3, 0x28]);
    let mut buf = BytesMut::from(&b[..]);
    assert_eq!(
        decode(&mut buf, 1024).unwrap_err(),
        DecodeError::InvalidUtf8 { message: "Text" }
    );
}

#[test]
fn zero_copy_heads_match_full_encoding() {
    let f = Frame {
        stream: "cam".into(),
        seq: 1,
        capture_us: 2,
        format: frame_format::JPEG,
        width: 3,
        height: 4,
        payload: Bytes::from_static(b"jpegbytes"),
    };
    let mut head = Vec::new();
    encode_frame_head(&f, &mut head).unwrap();
    head.extend_from_slice(&f.payload);
    assert_eq!(head, Message::Frame(f).to_bytes().unwrap().to_vec());
    let mut head = Vec::new();
    encode_data_head(9, 3, &mut head);
    head.extend_from_slice(b"abc");
    assert_eq!(
        head,
        Message::Data(Data {
            id: 9,
            bytes: Bytes::from_static(b"abc")
        })
        .to_bytes()
        .unwrap()
        .to_vec()
    );
}

#[test]
fn overlong_strings_cannot_be_encoded() {
    let m = Message::Offer(Offer {
        id: 1,
        flags: 0,
        size: 0,
        path: "a".repeat(70_000),
    });
    let mut v = Vec::new();
    assert!(matches!(
        m.encode(&mut v),
        Err(EncodeError::StringTooLong { field: "path", .. })
    ));
    assert!(v.is_empty(), "nothing written on error");
}

fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![".{0,40}", "[a-z/]{0,20}"]
}

/// Every type number this version knows.
fn all_kinds() -> Vec<u16> {
    (0..=u16::MAX).filter(|&k| kind_name(k).is_some()).collect()
}

/// Any message of type `k`; panics for a type without a strategy, which
/// `every_kind_has_a_strategy` catches when a message is added.
fn arb_of_kind(k: u16) -> BoxedStrategy<Message> {
    let bytes = || proptest::collection::vec(any::<u8>(), 0..300).prop_map(Bytes::from);
    let hash = any::<[u8; 32]>;
    match k {
        kind::HELLO => (any::<u16>(), arb_string(), arb_string())
            .prop_map(|(version, name, token)| {
                Message::Hello(Hello {
                    version,
                    name,
                    token,
                })
            })
            .boxed(),
        kind::WELCOME => (
            any::<u16>(),
            any::<i64>(),
            any::<u32>(),
            any::<u64>(),
            any::<u32>(),
            any::<u16>(),
            arb_string(),
        )
            .prop_map(
                |(
                    version,
                    hub_time_us,
                    max_payload,
                    max_file_size,
                    chunk_size,
                    max_inflight,
                    hub_name,
                )| {
                    Message::Welcome(Welcome {
                        version,
                        hub_time_us,
                        max_payload,
                        max_file_size,
                        chunk_size,
                        max_inflight,
                        hub_name,
                    })
                },
            )
            .boxed(),
        kind::ERROR => (any::<u16>(), any::<u32>(), arb_string())
            .prop_map(|(c, id, message)| {
                Message::Error(ErrorMsg {
                    code: ErrorCode::from_u16(c),
                    id,
                    message,
                })
            })
            .boxed(),
        kind::PING => (any::<u64>(), any::<i64>())
            .prop_map(|(nonce, time_us)| Message::Ping(Ping { nonce, time_us }))
            .boxed(),
        kind::PONG => (any::<u64>(), any::<i64>(), any::<i64>())
            .prop_map(|(nonce, ping_time_us, time_us)| {
                Message::Pong(Pong {
                    nonce,
                    ping_time_us,
                    time_us,
                })
            })
            .boxed(),
        kind::TEXT => (any::<u32>(), arb_string())
            .prop_map(|(id, text)| Message::Text(Text { id, text }))
            .boxed(),
        kind::COMMAND => (
            any::<u32>(),
            arb_string(),
            arb_string(),
            proptest::collection::vec(arb_string(), 0..5),
        )
            .prop_map(|(id, target, command, args)| {
                Message::Command(Command {
                    id,
                    target,
                    command,
                    args,
                })
            })
            .boxed(),
        kind::REPLY => (
            any::<u32>(),
            prop_oneof![
                Just(ReplyStatus::Ok),
                Just(ReplyStatus::Failed),
                Just(ReplyStatus::UnknownDevice),
                Just(ReplyStatus::UnknownCommand),
                Just(ReplyStatus::Timeout),
            ],
            bytes(),
        )
            .prop_map(|(id, status, body)| Message::Reply(Reply { id, status, body }))
            .boxed(),
        kind::REGISTER_DEVICE => arb_string()
            .prop_map(|name| Message::RegisterDevice(RegisterDevice { name }))
            .boxed(),
        kind::REGISTERED => arb_string()
            .prop_map(|name| Message::Registered(Registered { name }))
            .boxed(),
        kind::OFFER => (any::<u32>(), any::<u8>(), any::<u64>(), arb_string())
            .prop_map(|(id, flags, size, path)| {
                Message::Offer(Offer {
                    id,
                    flags,
                    size,
                    path,
                })
            })
            .boxed(),
        kind::ACCEPT => (any::<u32>(), any::<u64>(), hash())
            .prop_map(|(id, offset, prefix_hash)| {
                Message::Accept(Accept {
                    id,
                    offset,
                    prefix_hash,
                })
            })
            .boxed(),
        kind::DATA => (any::<u32>(), bytes())
            .prop_map(|(id, bytes)| Message::Data(Data { id, bytes }))
            .boxed(),
        kind::END => (any::<u32>(), proptest::option::of(hash()))
            .prop_map(|(id, hash)| Message::End(End { id, hash }))
            .boxed(),
        kind::STORED => (
            any::<u32>(),
            prop_oneof![
                Just(StoredStatus::New),
                Just(StoredStatus::Replaced),
                Just(StoredStatus::Unchanged),
            ],
            any::<u64>(),
            hash(),
        )
            .prop_map(|(id, status, size, hash)| {
                Message::Stored(Stored {
                    id,
                    status,
                    size,
                    hash,
                })
            })
            .boxed(),
        kind::REJECTED => (any::<u32>(), any::<u16>(), arb_string())
            .prop_map(|(id, c, reason)| {
                Message::Rejected(Rejected {
                    id,
                    code: ErrorCode::from_u16(c),
                    reason,
                })
            })
            .boxed(),
        kind::CANCEL => any::<u32>()
            .prop_map(|id| Message::Cancel(Cancel { id }))
            .boxed(),
        kind::GET => (any::<u32>(), any::<u64>(), arb_string())
            .prop_map(|(id, offset, path)| Message::Get(Get { id, offset, path }))
            .boxed(),
        kind::FILE_INFO => (any::<u32>(), any::<u64>(), hash())
            .prop_map(|(id, size, hash)| Message::FileInfo(FileInfo { id, size, hash }))
            .boxed(),
        kind::LIST => (any::<u32>(), any::<u32>(), arb_string(), arb_string())
            .prop_map(|(id, limit, prefix, after)| {
                Message::List(List {
                    id,
                    limit,
                    prefix,
                    after,
                })
            })
            .boxed(),
        kind::DELETE => (any::<u32>(), arb_string())
            .prop_map(|(id, path)| Message::Delete(Delete { id, path }))
            .boxed(),
        kind::DELETED => (any::<u32>(), any::<u64>())
            .prop_map(|(id, size)| Message::Deleted(Deleted { id, size }))
            .boxed(),
        kind::LIST_PAGE => (
            any::<u32>(),
            any::<bool>(),
            proptest::collection::vec(
                (
                    arb_string(),
                    any::<u64>(),
                    hash(),
                    any::<i64>(),
                    arb_string(),
                ),
                0..4,
            ),
        )
            .prop_map(|(id, more, es)| {
                Message::ListPage(ListPage {
                    id,
                    more,
                    entries: es
                        .into_iter()
                        .map(|(path, size, hash, stored_us, sender)| ListEntry {
                            path,
                            size,
                            hash,
                            stored_us,
                            sender,
                        })
                        .collect(),
                })
            })
            .boxed(),
        kind::FRAME => (
            arb_string(),
            any::<u64>(),
            any::<i64>(),
            any::<u8>(),
            any::<u32>(),
            any::<u32>(),
            bytes(),
        )
            .prop_map(
                |(stream, seq, capture_us, format, width, height, payload)| {
                    Message::Frame(Frame {
                        stream,
                        seq,
                        capture_us,
                        format,
                        width,
                        height,
                        payload,
                    })
                },
            )
            .boxed(),
        kind::SUBSCRIBE => (arb_string(), any::<u16>())
            .prop_map(|(stream, window)| Message::Subscribe(Subscribe { stream, window }))
            .boxed(),
        kind::SUBSCRIBED => (arb_string(), any::<u16>())
            .prop_map(|(stream, window)| Message::Subscribed(Subscribed { stream, window }))
            .boxed(),
        kind::UNSUBSCRIBE => arb_string()
            .prop_map(|stream| Message::Unsubscribe(Unsubscribe { stream }))
            .boxed(),
        kind::FRAME_ACK => (arb_string(), any::<u64>())
            .prop_map(|(stream, seq)| Message::FrameAck(FrameAck { stream, seq }))
            .boxed(),
        kind::PUBLISH => (arb_string(), any::<u32>())
            .prop_map(|(stream, max_latency_ms)| {
                Message::Publish(Publish {
                    stream,
                    max_latency_ms,
                })
            })
            .boxed(),
        kind::TEXT_TO => (any::<u32>(), arb_string(), arb_string())
            .prop_map(|(id, to, text)| Message::TextTo(TextTo { id, to, text }))
            .boxed(),
        kind::DELIVERY => (any::<u32>(), 0u8..3)
            .prop_map(|(id, s)| {
                let status = match s {
                    0 => DeliveryStatus::Delivered,
                    1 => DeliveryStatus::NoReceiver,
                    _ => DeliveryStatus::ReceiverBusy,
                };
                Message::Delivery(Delivery { id, status })
            })
            .boxed(),
        kind::TEXT_FROM => (arb_string(), arb_string(), arb_string())
            .prop_map(|(from, to, text)| Message::TextFrom(TextFrom { from, to, text }))
            .boxed(),
        kind::FOLLOW => (
            arb_string(),
            arb_string(),
            proptest::collection::vec(arb_string(), 0..4),
        )
            .prop_map(|(name, prefix, kinds)| {
                Message::Follow(Follow {
                    name,
                    prefix,
                    kinds,
                })
            })
            .boxed(),
        kind::FOLLOWING => arb_string()
            .prop_map(|name| Message::Following(Following { name }))
            .boxed(),
        kind::EVENT => (
            any::<i64>(),
            any::<u32>(),
            arb_string(),
            proptest::collection::vec((arb_string(), arb_string()), 0..4),
        )
            .prop_map(|(time_us, dropped, kind, fields)| {
                Message::Event(Event {
                    time_us,
                    dropped,
                    kind,
                    fields,
                })
            })
            .boxed(),
        other => panic!("no strategy for message type 0x{other:04x}: add one to arb_of_kind"),
    }
}

/// Any message of any type.
fn arb_message() -> impl Strategy<Value = Message> {
    proptest::sample::select(all_kinds()).prop_flat_map(arb_of_kind)
}

#[test]
fn every_kind_has_a_strategy() {
    let kinds = all_kinds();
    assert_eq!(kinds.len(), 35);
    for k in kinds {
        let _ = arb_of_kind(k);
    }
}

proptest! {
    /// Every type: decode(encode(m)) == m, the header's length is the payload actually written,
    /// `payload_len` agrees, and the zero-copy heads match the full encoding.
    #[test]
    fn prop_every_kind_round_trips_with_an_exact_length(m in arb_message()) {
        let bytes = m.to_bytes().unwrap();
        let header = Header::peek(&bytes).unwrap();
        prop_assert_eq!(header.kind, m.kind());
        prop_assert_eq!(header.flags, 0);
        prop_assert_eq!(header.len as usize, bytes.len() - HEADER_LEN);
        prop_assert_eq!(m.payload_len(), bytes.len() - HEADER_LEN);
        prop_assert_eq!(kind_name(header.kind), Some(m.name()));
        let mut v = Vec::new();
        m.encode(&mut v).unwrap();
        prop_assert_eq!(&v[..], &bytes[..]);
        prop_assert_eq!(decode_one(&bytes), m.clone());
        match &m {
            Message::Frame(f) => {
                let mut head = Vec::new();
                encode_frame_head(f, &mut head).unwrap();
                head.extend_from_slice(&f.payload);
                prop_assert_eq!(&head[..], &bytes[..]);
            }
            Message::Data(d) => {
                let mut head = Vec::new();
                encode_data_head(d.id, d.bytes.len() as u32, &mut head);
                prop_assert_eq!(head.len(), HEADER_LEN + DATA_PREFIX_LEN);
                head.extend_from_slice(&d.bytes);
                prop_assert_eq!(&head[..], &bytes[..]);
            }
            _ => {}
        }
    }

    #[test]
    fn prop_round_trip_any_split(msgs in proptest::collection::vec(arb_message(), 1..6), cut in any::<prop::sample::Index>()) {
        let mut stream = Vec::new();
        for m in &msgs { m.encode(&mut stream).unwrap(); }
        let cut = cut.index(stream.len() + 1);
        let mut buf = BytesMut::from(&stream[..cut]);
        let mut got = Vec::new();
        while let Some(m) = decode(&mut buf, DEFAULT_MAX_PAYLOAD).unwrap() { got.push(m); }
        buf.extend_from_slice(&stream[cut..]);
        while let Some(m) = decode(&mut buf, DEFAULT_MAX_PAYLOAD).unwrap() { got.push(m); }
        prop_assert_eq!(got, msgs);
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn prop_random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut buf = BytesMut::from(&data[..]);
        // Errors are fine; panics and over-allocation are not.
        while let Ok(Some(_)) = decode(&mut buf, 1024) {}
        prop_assert!(buf.capacity() <= data.len().max(1024 + HEADER_LEN) + 64);
    }

    #[test]
    fn prop_preface_of_a_real_hello_is_hello(name in "[a-z]{0,30}", token in "[a-z]{0,30}") {
        let b = Message::Hello(Hello { version: VERSION, name, token }).to_bytes().unwrap();
        prop_assert_eq!(check_preface(&b), Preface::Hello);
    }
}
