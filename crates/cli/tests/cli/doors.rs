//! The doors for simple devices and the token check, through the real binary: raw TCP ingest
//! (what `nc -q0 HOST PORT < photo.jpg` does), `msg --udp`, and a hub that requires a token.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use framewire_testkit::frames::sample_frames_dir;

use super::{framewire, stderr, stdout, Hub};

/// Waits for a hub log line starting with `prefix` and returns the rest.
pub(super) fn wait_line(hub: &Hub, pred: impl Fn(&str) -> Option<String>, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = hub
            .lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("hub never printed {what}"));
        if let Some(v) = pred(&line) {
            return v;
        }
    }
}

#[test]
fn raw_tcp_ingest_and_udp_messages() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start_with(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &["--raw-listen", "127.0.0.1:0", "--udp", "127.0.0.1:0"],
    );
    let raw = wait_line(
        &hub,
        |l| l.strip_prefix("raw uploads: ").map(str::to_owned),
        "the raw address",
    );
    let udp = wait_line(
        &hub,
        |l| l.strip_prefix("udp: ").map(str::to_owned),
        "the UDP address",
    );

    // As nc -q0 does: send the file, close our side, (try to) read the one-line answer.
    let photo = std::fs::read(sample_frames_dir().join("f0003.jpg")).unwrap();
    let mut s = std::net::TcpStream::connect(&raw).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&photo).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let path = answer
        .split_whitespace()
        .nth(1)
        .expect("stored PATH SIZE HASH")
        .to_owned();
    assert!(
        path.starts_with("raw/127.0.0.1/") && path.ends_with(".jpg"),
        "{answer}"
    );
    let out_file = dir.path().join("back.jpg");
    let out = hub
        .cmd()
        .args(["get", &path, "-o"])
        .arg(&out_file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(&out_file).unwrap(), photo, "byte-identical");

    // UDP: fire and forget; the hub logs it.
    let out = framewire()
        .args(["msg", "--udp", &udp, "door opened at the back"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    wait_line(
        &hub,
        |l| l.contains("door opened at the back").then(String::new),
        "the UDP message in its log",
    );
}

#[test]
fn a_hub_with_tokens_refuses_clients_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let token = "sesame-sesame-sesame-1234";
    let hub = Hub::start_with(&dir.path().join("data"), "127.0.0.1:0", &["--token", token]);
    let out = hub.client().args(["ls"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("requires a token"),
        "{}",
        stderr(&out)
    );
    let out = hub
        .client()
        .args(["--token", "wrong-wrong-wrong-wrong", "ls"])
        .output()
        .unwrap();
    assert!(stderr(&out).contains("wrong token"), "{}", stderr(&out));
    let out = hub
        .client()
        .env("FRAMEWIRE_TOKEN", token)
        .args(["msg", "hello"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "hello");
    // The HTTP side too.
    let r = hub.http_get("/api/streams");
    assert!(
        r.starts_with("HTTP/1.1 401") || r.starts_with("HTTP/1.0 401"),
        "{r}"
    );
}
