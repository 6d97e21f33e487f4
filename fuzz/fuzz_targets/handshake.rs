//! A connection's first bytes, as the hub reads them, and the remote-path rules.
//!
//! Handshake: the bytes arrive in growing prefixes; `check_preface` classifies them and, for a
//! plausible `Hello`, `decode` with `MAX_HELLO_PAYLOAD` runs, as in the hub's `read_hello`.
//! Properties: no panic; the verdict depends only on the first 8 bytes and never changes once
//! given; a `Hello` preface decodes to a `Hello` or an error, never another message (the hub has
//! an `unreachable!` there).
//!
//! Paths: the same bytes (as UTF-8, lossily) through `RemotePath::parse`. A parsed path never has
//! a `..`, `.` or empty segment, never starts with `/`, never contains `\`, `:`, NUL or another
//! control character, and joined to a folder it only names things inside that folder.

#![no_main]

use std::path::{Component, Path};

use bytes::BytesMut;
use framewire_proto::{
    check_preface, decode, Message, Preface, RemotePath, HEADER_LEN, MAX_HELLO_PAYLOAD,
    MAX_PATH_LEN, MAX_SEGMENT_LEN,
};
use libfuzzer_sys::fuzz_target;

fn handshake(data: &[u8]) {
    let verdict = check_preface(data);
    assert_eq!(
        verdict,
        check_preface(&data[..data.len().min(HEADER_LEN)]),
        "the preface verdict depends on more than the first 8 bytes"
    );
    let mut buf = BytesMut::new();
    let mut decided: Option<Preface> = None;
    // Grow the buffer one byte at a time up to the header, then in bigger steps.
    let mut at = 0;
    while at < data.len() {
        let step = if at < HEADER_LEN { 1 } else { 1 + at / 3 };
        let end = (at + step).min(data.len());
        buf.extend_from_slice(&data[at..end]);
        at = end;
        let p = check_preface(&buf);
        if let Some(d) = decided {
            assert_eq!(p, d, "the preface verdict changed as more bytes arrived");
        }
        match p {
            Preface::NeedMore => continue,
            Preface::Http | Preface::NotFramewire => {
                decided = Some(p);
                break;
            }
            Preface::Hello => {
                decided = Some(p);
                match decode(&mut buf, MAX_HELLO_PAYLOAD) {
                    Ok(Some(Message::Hello(_))) | Err(_) => break,
                    Ok(Some(other)) => panic!("a Hello preface decoded to {}", other.name()),
                    Ok(None) => {}
                }
            }
        }
    }
    if let Some(d) = decided {
        assert_eq!(d, verdict);
    }
}

fn path_rules(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let Ok(p) = RemotePath::parse(&s) else {
        return;
    };
    let t = p.as_str();
    assert_eq!(t, s, "a parsed path is the input, unchanged");
    assert!(!t.is_empty() && t.len() <= MAX_PATH_LEN);
    assert!(!t.starts_with('/'), "absolute: {t:?}");
    assert!(!t.contains('\\'), "backslash: {t:?}");
    assert!(!t.contains(':'), "colon: {t:?}");
    assert!(!t.contains('\0'), "NUL: {t:?}");
    assert!(!t.chars().any(char::is_control), "control: {t:?}");
    for seg in p.segments() {
        assert!(
            seg != ".." && seg != "." && !seg.is_empty(),
            "segment {seg:?} in {t:?}"
        );
        assert!(seg.len() <= MAX_SEGMENT_LEN);
    }
    // Joined to the data folder, it names something strictly inside it.
    let joined = Path::new("/data/files").join(t);
    assert!(joined.starts_with("/data/files") && joined != Path::new("/data/files"));
    for c in Path::new(t).components() {
        assert!(matches!(c, Component::Normal(_)), "{c:?} in {t:?}");
    }
    if let Some(parent) = p.parent() {
        assert!(t.starts_with(parent) && RemotePath::parse(parent).is_ok());
    }
}

fuzz_target!(|data: &[u8]| {
    handshake(data);
    path_rules(data);
});
