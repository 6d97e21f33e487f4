//! Programs that react to what arrives (issue 11): `framewire events` and `msg --to`, through the
//! real binary.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command as StdCommand, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{stderr, stdout, Hub, BIN};

/// A running `framewire events ARGS` whose stdout lines arrive on a channel with their arrival
/// time; started when it says it follows.
struct Follower {
    child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
}

impl Follower {
    fn start(hub: &Hub, args: &[&str]) -> Follower {
        let mut child = StdCommand::new(BIN)
            .args(["--server", &hub.addr, "events"])
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send((Instant::now(), line));
            }
        });
        let (ready_tx, ready) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = ready_tx.send(line);
            }
        });
        let line = ready
            .recv_timeout(Duration::from_secs(10))
            .expect("events says it follows");
        assert_eq!(line, "following events");
        Follower { child, lines }
    }

    fn next(&self) -> (Instant, String) {
        self.lines
            .recv_timeout(Duration::from_secs(10))
            .expect("an event line within 10 s")
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn events_json_prints_the_stored_file_of_a_send_within_100_ms() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(&dir.path().join("data"));
    let follower = Follower::start(&hub, &["--json", "--kind", "stored", "--prefix", "in/"]);
    let file = dir.path().join("a.txt");
    std::fs::write(&file, b"hello events").unwrap();
    // Not under the prefix: filtered out.
    let out = hub
        .cmd()
        .args(["send", "--to", "other"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = hub
        .cmd()
        .args(["send", "--to", "in"])
        .arg(&file)
        .output()
        .unwrap();
    let exited = Instant::now();
    assert!(out.status.success(), "{}", stderr(&out));
    let (at, line) = follower.next();
    let waited = at.saturating_duration_since(exited);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["kind"], "stored", "{line}");
    assert_eq!(v["path"], "in/a.txt", "{line}");
    assert_eq!(v["size"], "12", "{line}");
    assert_eq!(
        v["hash"],
        blake3::hash(b"hello events").to_hex().as_str(),
        "{line}"
    );
    assert!(v["sender"].as_str().unwrap().starts_with("e2e@"), "{line}");
    assert!(
        waited < Duration::from_millis(100),
        "the event came {waited:?} after send exited"
    );
    drop(stdout(&out));
}

#[test]
fn msg_to_reaches_a_named_follower_or_says_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(&dir.path().join("data"));
    let out = hub
        .cmd()
        .args(["msg", "--to", "sorter", "anyone?"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no such receiver"),
        "{}",
        stderr(&out)
    );

    let follower = Follower::start(&hub, &["--name", "sorter", "--kind", "none"]);
    let out = hub
        .cmd()
        .args(["msg", "--to", "sorter", "hello sorter"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "delivered to sorter");
    let (_, line) = follower.next();
    assert_eq!(line, "text from=e2e to=sorter text=hello sorter");
    // Without --to: the old echo.
    let out = hub.cmd().args(["msg", "plain"]).output().unwrap();
    assert_eq!(stdout(&out).trim(), "plain");
}
