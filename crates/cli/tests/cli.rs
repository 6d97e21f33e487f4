//! The built `framewire` binary: help and usage errors, an unreachable hub, and one end-to-end
//! run against a real `framewire serve` child process; live video and device commands in
//! [`live`]. Every wait is bounded; child processes are killed if a test fails half-way.

#[path = "cli/doors.rs"]
mod doors;
#[path = "cli/events.rs"]
mod events;
#[path = "cli/live.rs"]
mod live;
#[path = "cli/mqtt.rs"]
mod mqtt;
#[path = "cli/shutdown.rs"]
mod shutdown;
#[path = "cli/tls.rs"]
mod tls;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command as StdCommand, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use assert_cmd::Command;

const BIN: &str = env!("CARGO_BIN_EXE_framewire");

fn framewire() -> Command {
    let mut c = Command::new(BIN);
    c.env_remove("FRAMEWIRE_SERVER")
        .env_remove("FRAMEWIRE_TOKEN")
        .env_remove("FRAMEWIRE_TLS_FINGERPRINT")
        .env_remove("RUST_LOG")
        .timeout(Duration::from_secs(30));
    c
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn help_lists_the_commands() {
    let out = framewire().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = stdout(&out);
    for cmd in [
        "serve", "send", "ls", "get", "msg", "ping", "stream", "watch", "cmd", "demo",
    ] {
        assert!(text.contains(cmd), "{cmd} missing from:\n{text}");
    }
    let out = framewire().args(["send", "--help"]).output().unwrap();
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(
        text.contains("--to") && text.contains("--overwrite"),
        "{text}"
    );
    // Issue 12: the connection options under their own heading, after the command's own.
    let heading = text.find("\nConnection:\n").expect("a Connection heading");
    assert!(text[heading..].contains("--server") && text[heading..].contains("--tls-ca"));
    assert!(text.find("--overwrite").unwrap() < heading, "{text}");
    let out = framewire().args(["serve", "--help"]).output().unwrap();
    let text = stdout(&out);
    for flag in [
        "--listen",
        "--data",
        "--http",
        "--max-file-size",
        "--max-inflight",
    ] {
        assert!(text.contains(flag), "{flag} missing from:\n{text}");
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["bogus"][..],
        &["send"][..],
        &["get"][..],
        &["ping", "--count", "0"][..],
        &["serve", "--max-file-size", "lots"][..],
        &["stream"][..],
        &["stream", "--name", "x", "--source", "camera"][..],
        &["stream", "--name", "x", "--fps", "0"][..],
        &["stream", "--name", "x", "--quality", "101"][..],
        &[
            "stream", "--name", "x", "--source", "dir:/tmp", "--size", "10x10",
        ][..],
        &["watch"][..],
        &["cmd", "cam"][..],
    ] {
        let out = framewire().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    // an invalid remote folder is caught before any connection is tried
    let dir = tempfile::tempdir().unwrap();
    let out = framewire()
        .args(["send", "--to", "../up", "--server", "127.0.0.1:9"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--to: invalid remote path"),
        "{}",
        stderr(&out)
    );
}

/// Reproduces issue 10 (web hygiene, 4): `serve --token x` required a 1-character token, while
/// a tokens file insists on 16. The hub refuses short ones; clients still send what they are given.
#[test]
fn serve_refuses_a_short_token() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let serve = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--http",
        "off",
        "--data",
    ];
    let by_flag = framewire()
        .args(serve)
        .arg(&data)
        .args(["--token", "x"])
        .output()
        .unwrap();
    let by_env = framewire()
        .args(serve)
        .arg(&data)
        .env("FRAMEWIRE_TOKEN", "0123456789abcde")
        .output()
        .unwrap();
    for out in [by_flag, by_env] {
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("at least 16 characters"),
            "{}",
            stderr(&out)
        );
    }
    assert!(!data.exists(), "refused before the data folder is made");
}

#[test]
fn unreachable_hub_fails_fast_and_clearly() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    for args in [&["ping"][..], &["ls"][..], &["msg", "hi"][..]] {
        let started = Instant::now();
        let out = framewire()
            .args(args)
            .args(["--server", &addr])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(started.elapsed() < Duration::from_secs(5));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("cannot reach hub at {addr}: connection refused")),
            "{err}"
        );
    }
    // the environment variable works too
    let out = framewire()
        .env("FRAMEWIRE_SERVER", &addr)
        .arg("ping")
        .output()
        .unwrap();
    assert!(stderr(&out).contains(&addr), "{}", stderr(&out));
}

#[test]
fn missing_local_files_fail_without_a_hub() {
    let dir = tempfile::tempdir().unwrap();
    let out = framewire()
        .args(["send", "--server", "127.0.0.1:9"])
        .arg(dir.path().join("nope"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no such file or directory"),
        "{}",
        stderr(&out)
    );
}

/// A plain HTTP/1.0 GET on `host:port`: the whole response.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// A command for the hub at `addr`, without a client name.
fn client(addr: &str) -> Command {
    let mut c = framewire();
    c.args(["--server", addr]);
    c
}

/// A `framewire serve` child, killed on drop if the test did not stop it.
struct Hub {
    child: Child,
    addr: String,
    http: String,
    /// With TLS: the certificate's SHA-256 as printed (`AB:CD:...`); empty without.
    fingerprint: String,
    /// With `--plain-listen`: the plain TCP address beside the TLS one; empty without.
    plain: String,
    lines: mpsc::Receiver<String>,
}

impl Hub {
    fn start(data: &Path) -> Hub {
        Hub::start_on(data, "127.0.0.1:0")
    }

    /// A hub listening on `listen` (a fixed address, to restart a hub where it was).
    fn start_on(data: &Path, listen: &str) -> Hub {
        Hub::start_with(data, listen, &[])
    }

    /// A hub with more `serve` options.
    fn start_with(data: &Path, listen: &str, options: &[&str]) -> Hub {
        let mut child = StdCommand::new(BIN)
            .args([
                "serve",
                "--listen",
                listen,
                "--http",
                "127.0.0.1:0",
                "--data",
            ])
            .arg(data)
            .args(options)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Keep draining stderr so the hub never blocks on a full pipe.
        let (tx, lines) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut hub = Hub {
            child,
            addr: String::new(),
            http: String::new(),
            fingerprint: String::new(),
            plain: String::new(),
            lines,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while hub.addr.is_empty() || hub.http.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = hub
                .lines
                .recv_timeout(left)
                .expect("hub prints its listening line within 10 s");
            if let Some(rest) = line.split("listening on ").nth(1) {
                hub.addr = rest.split_whitespace().next().unwrap().to_owned();
            }
            if let Some(rest) = line
                .strip_prefix("dashboard: http://")
                .or_else(|| line.strip_prefix("dashboard: https://"))
            {
                hub.http = rest.trim_end_matches('/').to_owned();
            }
            if let Some(rest) = line.strip_prefix("TLS certificate SHA-256: ") {
                hub.fingerprint = rest.trim().to_owned();
            }
            if let Some(rest) = line.strip_prefix("plain TCP (no TLS) clients: ") {
                hub.plain = rest.trim().to_owned();
            }
        }
        assert!(hub.addr.starts_with("127.0.0.1:"), "{}", hub.addr);
        assert!(!hub.addr.ends_with(":0"), "the real port is shown");
        hub
    }

    /// A plain HTTP/1.0 GET on the dashboard port: the whole response.
    fn http_get(&self, path: &str) -> String {
        http_get(&self.http, path)
    }

    fn cmd(&self) -> Command {
        let mut c = framewire();
        c.args(["--server", &self.addr, "--name", "e2e"]);
        c
    }

    /// A command for this hub without a client name.
    fn client(&self) -> Command {
        client(&self.addr)
    }

    /// SIGKILL: the hub vanishes without closing anything.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then the exit status within `limit`.
    fn terminate(&mut self, limit: Duration) -> std::process::ExitStatus {
        let ok = StdCommand::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "hub did not stop within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn end_to_end_against_a_real_hub() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let photos = src.join("photos");
    std::fs::create_dir_all(photos.join("sub dir")).unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(photos.join("big.bin"), &big).unwrap();
    std::fs::write(photos.join("a.jpg"), b"first").unwrap();
    std::fs::write(photos.join("sub dir/été 1.txt"), "bonjour").unwrap();
    std::fs::write(photos.join("empty"), b"").unwrap();
    let mut hub = Hub::start(&tmp.path().join("data"));

    // send a folder: stored as backup/photos/...
    let out = hub
        .cmd()
        .args(["send", "--to", "backup"])
        .arg(&photos)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = stdout(&out);
    assert!(
        summary.starts_with("stored 4 files (0 unchanged), 3.00 MB in "),
        "{summary}"
    );

    // again: nothing is resent
    let out = hub
        .cmd()
        .args(["send", "--to", "backup"])
        .arg(&photos)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        // Issue 12: as the README promises.
        stdout(&out).starts_with("every file was already there (4 unchanged), nothing sent, in "),
        "{}",
        stdout(&out)
    );

    let out = hub.cmd().args(["ls"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "backup/photos/a.jpg\nbackup/photos/big.bin\nbackup/photos/empty\nbackup/photos/sub dir/été 1.txt\n"
    );
    let out = hub
        .cmd()
        .args(["ls", "--long", "backup/photos/b"])
        .output()
        .unwrap();
    let long = stdout(&out);
    let hash = blake3::hash(&big).to_hex();
    assert!(long.contains("3000000") && long.contains("e2e"), "{long}");
    assert!(long.contains(&hash.as_str()[..12]), "{long}");
    assert!(long.trim_end().ends_with("backup/photos/big.bin"), "{long}");

    // get: verified, into a file or a folder
    let got = tmp.path().join("got.bin");
    let out = hub
        .cmd()
        .args(["get", "backup/photos/big.bin", "-o"])
        .arg(&got)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(&got).unwrap(), big);
    let out = hub
        .cmd()
        .args(["get", "backup/photos/sub dir/été 1.txt", "-o"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("été 1.txt")).unwrap(),
        "bonjour"
    );
    let out = hub.cmd().args(["get", "backup/nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not_found"), "{}", stderr(&out));

    // a changed file is refused without --overwrite (exit 1, with the reason), replaced with it
    std::fs::write(photos.join("a.jpg"), b"SECOND").unwrap();
    let out = hub
        .cmd()
        .args(["send", "--to", "backup"])
        .arg(&photos)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("a.jpg → backup/photos/a.jpg") && err.contains("exists"),
        "{err}"
    );
    assert!(
        stdout(&out).contains("3 unchanged), 1 failed"),
        "{}",
        stdout(&out)
    );
    let out = hub
        .cmd()
        .args(["send", "--overwrite", "--to", "backup/photos"])
        .arg(photos.join("a.jpg"))
        .arg(photos.join("sub dir"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("stored 2 files (1 unchanged)"),
        "{}",
        stdout(&out)
    );

    // the dashboard's API sees the same store
    let api = hub.http_get("/api/files");
    assert!(
        api.starts_with("HTTP/1.0 200") || api.starts_with("HTTP/1.1 200"),
        "{api}"
    );
    assert!(api.contains("backup/photos/big.bin"), "{api}");

    let out = hub.cmd().args(["msg", "hello ✓"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hello ✓\n");

    let out = hub
        .cmd()
        .args(["ping", "--count", "2", "--interval", "10"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.contains("rtt=") && text.contains("clock offset"),
        "{text}"
    );

    let status = hub.terminate(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0));
}

/// Issue 12: `get -r` fetches a folder byte-identical, skips what is already there on a second
/// run, and resumes a `.part` kept by an interrupted run (a killed client leaves exactly the
/// prefix it had received in `NAME.part`).
#[test]
fn get_r_downloads_a_folder_skips_what_is_there_and_resumes_a_part() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("holiday");
    std::fs::create_dir_all(src.join("day 2")).unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 241) as u8).collect();
    std::fs::write(src.join("big.bin"), &big).unwrap();
    std::fs::write(src.join("a.jpg"), b"first").unwrap();
    std::fs::write(src.join("day 2/b.txt"), "bonjour").unwrap();
    std::fs::write(src.join("empty"), b"").unwrap();
    let hub = Hub::start(&tmp.path().join("data"));
    hub.client().arg("send").arg(&src).assert().success();
    // Not under the folder `holiday`, though it starts with the same letters.
    let other = tmp.path().join("holidays");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("x"), b"x").unwrap();
    hub.client().arg("send").arg(&other).assert().success();

    let out_dir = tmp.path().join("out");
    let out = hub
        .client()
        .args(["get", "-r", "holiday"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("4 downloaded, 0 already there"),
        "{}",
        stderr(&out)
    );
    let tree = |root: &Path| -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
        framewire_testkit::data::list_tree(root)
            .into_iter()
            .filter(|p| p.is_file())
            .map(|p| {
                (
                    p.strip_prefix(root).unwrap().to_owned(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(tree(&src).len(), 4);
    assert!(
        tree(&out_dir.join("holiday")) == tree(&src),
        "byte-identical tree"
    );
    assert!(!out_dir.join("holidays").exists());

    let out = hub
        .client()
        .args(["get", "-r", "holiday"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("0 downloaded, 4 already there"),
        "{}",
        stderr(&out)
    );

    // What an interrupted run leaves: the big file missing, its first 1 MB in big.bin.part.
    std::fs::remove_file(out_dir.join("holiday/big.bin")).unwrap();
    std::fs::write(out_dir.join("holiday/big.bin.part"), &big[..1_000_000]).unwrap();
    let out = hub
        .client()
        .args(["get", "-r", "holiday/"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 downloaded, 3 already there")
            && stderr(&out).contains("(resumed 1"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(out_dir.join("holiday/big.bin")).unwrap(), big);
    assert!(!out_dir.join("holiday/big.bin.part").exists());

    // A .part that does not match the stored file is started over, still verified.
    std::fs::remove_file(out_dir.join("holiday/big.bin")).unwrap();
    std::fs::write(out_dir.join("holiday/big.bin.part"), vec![7u8; 500_000]).unwrap();
    let out = hub
        .client()
        .args(["get", "-r", "holiday"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(out_dir.join("holiday/big.bin")).unwrap(), big);
}

/// Issue 12: `watch` of a stream nobody publishes says so, and `--wait-timeout` ends it with a
/// non-zero exit instead of waiting for ever.
#[test]
fn watch_of_an_unpublished_stream_says_so_and_gives_up_after_wait_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = Hub::start(&tmp.path().join("data"));
    let started = Instant::now();
    let out = hub
        .client()
        .args(["watch", "nosuch", "--wait-timeout", "1500ms"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("waiting for stream nosuch: no publisher yet"),
        "{err}"
    );
    assert!(err.contains("nobody publishes it"), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert!(started.elapsed() < Duration::from_secs(15));
}
