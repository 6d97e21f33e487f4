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

/// Writes an executable shell script (the hub runs it directly; its `#!` line picks the shell).
fn script(path: &std::path::Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn on_upload_runs_once_per_stored_file_with_path_and_hash() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hook.log");
    let hook = dir.path().join("hook.sh");
    script(
        &hook,
        &format!(
            "echo \"$1 $2 $3 $FRAMEWIRE_PATH $FRAMEWIRE_HASH\" >> {}",
            log.display()
        ),
    );
    let hub = Hub::start_with(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &["--on-upload", hook.to_str().unwrap()],
    );
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("one.txt"), b"one").unwrap();
    std::fs::write(src.join("two.txt"), b"two!").unwrap();
    let out = hub
        .cmd()
        .args(["send", "--to", "h"])
        .arg(&src)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // Sent again: unchanged, so no new stored event and no new hook run.
    let out = hub
        .cmd()
        .args(["send", "--to", "h"])
        .arg(&src)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut lines: Vec<String>;
    loop {
        lines = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        if lines.len() >= 2 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    lines = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    let h1 = blake3::hash(b"one").to_hex().to_string();
    let h2 = blake3::hash(b"two!").to_hex().to_string();
    assert_eq!(
        lines,
        vec![
            format!("h/src/one.txt 3 {h1} h/src/one.txt {h1}"),
            format!("h/src/two.txt 4 {h2} h/src/two.txt {h2}"),
        ]
    );
}

#[test]
fn a_hook_that_hangs_or_fails_does_not_delay_or_fail_the_upload() {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in [("hang.sh", "exec sleep 30"), ("fail.sh", "exit 3")] {
        let hook = dir.path().join(name);
        script(&hook, body);
        let hub = Hub::start_with(
            &dir.path().join(format!("data-{name}")),
            "127.0.0.1:0",
            &[
                "--on-upload",
                hook.to_str().unwrap(),
                "--hook-concurrency",
                "1",
                "--hook-timeout",
                "1",
            ],
        );
        let file = dir.path().join("f.bin");
        for i in 0..3u8 {
            std::fs::write(&file, [i; 100]).unwrap();
            let started = Instant::now();
            let out = hub
                .cmd()
                .args(["send", "--overwrite", "--to", "x"])
                .arg(&file)
                .output()
                .unwrap();
            assert!(out.status.success(), "{name}: {}", stderr(&out));
            assert!(
                started.elapsed() < Duration::from_millis(800),
                "{name}: send took {:?}",
                started.elapsed()
            );
            assert_eq!(std::fs::read(hub_file(&dir, name)).unwrap(), [i; 100]);
        }
    }
}

fn hub_file(dir: &tempfile::TempDir, name: &str) -> std::path::PathBuf {
    dir.path()
        .join(format!("data-{name}"))
        .join("files/x/f.bin")
}
