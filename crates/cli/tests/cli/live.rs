//! Live video and device commands with the built binary: `stream`, `watch`, `cmd` and `demo`
//! against a real `framewire serve` child, including a hub killed and restarted mid-stream.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command as StdCommand, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use framewire_media::jpeg;
use framewire_media::mjpeg::Splitter;

use super::{client, stderr, stdout, Hub, BIN};

/// Longest wait for any one thing.
const T: Duration = Duration::from_secs(30);

/// A `framewire` child whose output lines are collected; killed on drop.
struct Proc {
    child: Child,
    out: mpsc::Receiver<String>,
    err: mpsc::Receiver<String>,
}

impl Proc {
    fn spawn(hub: &Hub, args: &[&str]) -> Proc {
        Proc::spawn_with(hub, args, Stdio::null())
    }

    fn spawn_with(hub: &Hub, args: &[&str], stdin: Stdio) -> Proc {
        Proc::start(&hub.addr, args, stdin)
    }

    fn start(server: &str, args: &[&str], stdin: Stdio) -> Proc {
        let mut child = StdCommand::new(BIN)
            .args(["--server", server])
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("FRAMEWIRE_SERVER")
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = drain(child.stdout.take().unwrap());
        let err = drain(child.stderr.take().unwrap());
        Proc { child, out, err }
    }

    /// The exit status within `limit` (panics after it).
    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "process did not end within {limit:?}; stderr:\n{}",
                self.stderr_so_far()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// The next stdout line matching `want`, within `limit`.
    fn stdout_line(&mut self, limit: Duration, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.out.recv_timeout(left) {
                Ok(line) if want(&line) => return line,
                Ok(_) => {}
                Err(_) => panic!(
                    "no matching line within {limit:?}; stderr:\n{}",
                    self.stderr_so_far()
                ),
            }
        }
    }

    fn stderr_so_far(&self) -> String {
        self.err.try_iter().collect::<Vec<_>>().join("\n")
    }

    /// All of stderr, for a process that has ended (waits for the pipe's end, boundedly).
    fn stderr_to_end(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.err.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(_) => return lines.join("\n"),
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Lines of `r`, read on a thread so the child never blocks on a full pipe.
fn drain(r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// Runs `framewire cmd DEVICE ARGS...` until the device is known to the hub (it registers a
/// moment after the stream starts); returns the final output.
fn cmd_when_ready(hub: &str, device: &str, args: &[&str]) -> std::process::Output {
    let deadline = Instant::now() + T;
    loop {
        let out = client(hub)
            .args(["cmd", device])
            .args(args)
            .output()
            .unwrap();
        if !stderr(&out).contains("no device named") || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn cmd_ok(hub: &str, device: &str, args: &[&str]) -> String {
    let out = client(hub)
        .args(["cmd", device])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "cmd {args:?}: {}", stderr(&out));
    stdout(&out)
}

/// The `published=N` figure of a status answer.
fn published(status: &str) -> u64 {
    status
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("published="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no published= in {status:?}"))
}

/// The JPEG files of `dir`, sorted.
fn jpegs_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
        .collect();
    files.sort();
    files
}

#[test]
fn stream_and_watch_save_valid_jpegs() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = Hub::start(&tmp.path().join("data"));
    let out_dir = tmp.path().join("frames");
    let out_arg = out_dir.to_str().unwrap();
    // The viewer first (its first stats line says it is subscribed), so that it is there from
    // the stream's first frame.
    let mut watch = Proc::spawn(
        &hub,
        &[
            "watch", "cam", "--out", out_arg, "--frames", "10", "--stats",
        ],
    );
    watch.stdout_line(T, |l| l.contains("waiting for frames"));
    let mut stream = Proc::spawn(
        &hub,
        &[
            "--name",
            "cam",
            "stream",
            "--frames",
            "30",
            "--max-latency",
            "80",
        ],
    );
    assert!(watch.wait(T).success(), "{}", watch.stderr_so_far());
    let status = stream.wait(T);
    assert!(status.success(), "{}", stream.stderr_so_far());
    let summary = stream.stderr_to_end();
    assert!(summary.contains("published 30 frames"), "{summary}");

    let files = jpegs_in(&out_dir);
    assert_eq!(files.len(), 10, "{files:?}");
    assert!(files[0].ends_with("cam-000001.jpg"), "{files:?}");
    assert!(files[9].ends_with("cam-000010.jpg"), "{files:?}");
    for f in &files {
        let data = std::fs::read(f).unwrap();
        assert_eq!(jpeg::probe(&data).unwrap(), (640, 480), "{}", f.display());
        jpeg::decode_rgb(&data).unwrap();
    }
    // Nothing half-written is left behind.
    let names: Vec<_> = std::fs::read_dir(&out_dir).unwrap().collect();
    assert_eq!(names.len(), 10);
}

#[test]
fn device_commands_capture_settings_and_a_helper_program() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = Hub::start(&tmp.path().join("data"));
    let script = tmp.path().join("helper.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\ncase \"$1\" in\n  greet) echo \"hello $2 from $FRAMEWIRE_DEVICE\" ;;\n  \
         *) echo \"helper does not do $1\" >&2; exit 3 ;;\nesac\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut stream = Proc::spawn(
        &hub,
        &[
            "-q",
            "--name",
            "cam",
            "stream",
            "--size",
            "320x240",
            "--on-command",
            script.to_str().unwrap(),
        ],
    );

    let out = cmd_when_ready(&hub.addr, "cam", &["status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let status = stdout(&out);
    for want in [
        "name=cam",
        "source=synthetic:320x240",
        "fps=30",
        "quality=80",
        "paused=false",
        "connected=true",
        "rtt_ms=",
    ] {
        assert!(status.contains(want), "{want} missing from {status:?}");
    }

    // set fps, set quality
    assert_eq!(cmd_ok(&hub.addr, "cam", &["set", "fps", "5"]), "fps=5\n");
    assert!(cmd_ok(&hub.addr, "cam", &["status"]).contains(" fps=5 "));
    assert_eq!(
        cmd_ok(&hub.addr, "cam", &["set", "quality", "50"]),
        "quality=50\n"
    );
    assert!(cmd_ok(&hub.addr, "cam", &["status"]).contains(" quality=50 "));
    let out = hub
        .client()
        .args(["cmd", "cam", "set", "fps", "-3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("fps must be"), "{}", stderr(&out));
    assert_eq!(cmd_ok(&hub.addr, "cam", &["set", "fps", "50"]), "fps=50\n");

    // pause: the count stands still; resume: it moves again
    assert_eq!(cmd_ok(&hub.addr, "cam", &["pause"]), "paused\n");
    let a = published(&cmd_ok(&hub.addr, "cam", &["status"]));
    std::thread::sleep(Duration::from_millis(300));
    let status = cmd_ok(&hub.addr, "cam", &["status"]);
    assert!(status.contains("paused=true"), "{status}");
    assert_eq!(published(&status), a, "{status}");
    assert_eq!(cmd_ok(&hub.addr, "cam", &["resume"]), "resumed\n");
    let deadline = Instant::now() + T;
    while published(&cmd_ok(&hub.addr, "cam", &["status"])) <= a {
        assert!(Instant::now() < deadline, "frames never resumed");
        std::thread::sleep(Duration::from_millis(50));
    }

    // capture: stored through the verified upload path, at full quality
    let path = cmd_ok(&hub.addr, "cam", &["capture"]);
    let path = path.trim_end();
    assert!(
        path.starts_with("cam/captures/") && path.ends_with("-1.jpg"),
        "{path:?}"
    );
    let got = tmp.path().join("capture.jpg");
    let out = hub
        .client()
        .args(["get", path, "-o"])
        .arg(&got)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let bytes = std::fs::read(&got).unwrap();
    assert_eq!(jpeg::probe(&bytes).unwrap(), (320, 240));
    jpeg::decode_rgb(&bytes).unwrap();
    let out = hub
        .client()
        .args(["ls", "--long", "cam/captures/"])
        .output()
        .unwrap();
    let long = stdout(&out);
    let hash = blake3::hash(&bytes).to_hex();
    assert!(long.contains(&hash.as_str()[..12]), "{long}");
    assert!(long.contains(path) && long.contains("cam"), "{long}");
    let second = cmd_ok(&hub.addr, "cam", &["capture"]);
    assert!(second.trim_end().ends_with("-2.jpg"), "{second}");

    // the helper program answers what the camera does not know
    assert_eq!(
        cmd_ok(&hub.addr, "cam", &["greet", "world"]),
        "hello world from cam\n"
    );
    let out = hub.client().args(["cmd", "cam", "dance"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("helper does not do dance"),
        "{}",
        stderr(&out)
    );

    // a device nobody runs
    let out = hub
        .client()
        .args(["cmd", "nobody", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no device named \"nobody\""),
        "{}",
        stderr(&out)
    );
    assert!(stream.running());
}

#[test]
fn unknown_command_and_stop() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = Hub::start(&tmp.path().join("data"));
    let mut stream = Proc::spawn(&hub, &["--name", "cam2", "stream", "--fps", "10"]);
    let out = cmd_when_ready(&hub.addr, "cam2", &["dance"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("does not know \"dance\""),
        "{}",
        stderr(&out)
    );
    let out = hub
        .client()
        .args(["cmd", "cam2", "status", "now"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("takes no arguments"),
        "{}",
        stderr(&out)
    );

    assert_eq!(cmd_ok(&hub.addr, "cam2", &["stop"]), "stopping\n");
    let status = stream.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", stream.stderr_so_far());
    let out = hub
        .client()
        .args(["cmd", "cam2", "status"])
        .output()
        .unwrap();
    assert!(stderr(&out).contains("no device named"), "{}", stderr(&out));
}

#[test]
fn a_silent_device_times_out() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = Hub::start_with(
        &tmp.path().join("data"),
        "127.0.0.1:0",
        &["--command-timeout", "0.5"],
    );
    let script = tmp.path().join("slow.sh");
    std::fs::write(&script, "#!/bin/sh\nsleep 5\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let slow = [
        "--name",
        "slow",
        "stream",
        "--fps",
        "5",
        "--on-command",
        script.to_str().unwrap(),
    ];
    let _stream = Proc::spawn(&hub, &slow);
    assert!(cmd_when_ready(&hub.addr, "slow", &["status"])
        .status
        .success());
    // The hub's limit: it answers `Timeout` itself.
    let started = Instant::now();
    let out = hub
        .client()
        .args(["cmd", "slow", "think"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("device \"slow\" did not answer within 500 ms"),
        "{}",
        stderr(&out)
    );
    assert!(started.elapsed() < Duration::from_secs(4));

    // The CLI's own limit, shorter than the hub's (10 s by default): it gives up by itself.
    let hub2 = Hub::start(&tmp.path().join("data2"));
    let _stream2 = Proc::spawn(&hub2, &slow);
    assert!(cmd_when_ready(&hub2.addr, "slow", &["status"])
        .status
        .success());
    let out = hub2
        .client()
        .args(["cmd", "--timeout", "0.2", "slow", "think"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("device \"slow\" did not answer within"),
        "{}",
        stderr(&out)
    );
}

/// Guards the promise of issue 3: a hub that dies (SIGKILL, no goodbye) and comes back on the
/// same port is ridden out by both ends without restarting either.
#[test]
fn hub_restart_mid_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut hub = Hub::start(&data);
    let addr = hub.addr.clone();
    let mut stream = Proc::spawn(&hub, &["--name", "cam", "stream", "--size", "160x120"]);
    let mut watch = Proc::spawn(&hub, &["watch", "cam", "--stats"]);
    let seq_of = |line: &str| -> u64 {
        line.split(", ")
            .find_map(|p| p.strip_prefix("seq "))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    };
    let before = watch.stdout_line(T, |l| seq_of(l) > 0 && l.contains("reconnects 0"));
    let seq_before = seq_of(&before);

    hub.kill();
    std::thread::sleep(Duration::from_millis(300));
    let _hub = Hub::start_on(&data, &addr);

    let after = watch.stdout_line(T, |l| {
        seq_of(l) > seq_before + 10 && l.contains("reconnects 1") && !l.contains(" 0.0 fps")
    });
    assert!(after.starts_with("cam: "), "{after}");
    assert!(
        stream.running(),
        "the stream exited: {}",
        stream.stderr_so_far()
    );
    assert!(
        watch.running(),
        "the watcher exited: {}",
        watch.stderr_so_far()
    );
}

#[test]
fn watch_mjpeg_output_splits_into_jpegs() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = Hub::start(&tmp.path().join("data"));
    let file = tmp.path().join("out.mjpeg");
    let mut watch = Proc::spawn(
        &hub,
        &[
            "watch",
            "cam",
            "--mjpeg",
            file.to_str().unwrap(),
            "--frames",
            "5",
        ],
    );
    let _stream = Proc::spawn(&hub, &["--name", "cam", "stream", "--size", "320x240"]);
    assert!(watch.wait(T).success(), "{}", watch.stderr_so_far());

    let mut splitter = Splitter::new();
    splitter.push(&std::fs::read(&file).unwrap());
    let mut frames = Vec::new();
    while let Some(f) = splitter.next_frame() {
        frames.push(f.unwrap());
    }
    assert!(splitter.finish().is_none());
    assert_eq!(frames.len(), 5);
    for f in &frames {
        assert_eq!(jpeg::probe(f).unwrap(), (320, 240));
    }
    assert_eq!(splitter.skipped_bytes(), 0);
}

#[test]
fn stream_publishes_the_frames_of_an_mjpeg_file() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = Hub::start(&tmp.path().join("data"));
    // Twelve distinct frames, back to back.
    let mut pattern = framewire_media::source::Synthetic::new(160, 120, 80).unwrap();
    let frames: Vec<_> = (0..12)
        .map(|_| {
            framewire_media::FrameSource::next_frame(&mut pattern)
                .unwrap()
                .jpeg
        })
        .collect();
    let file = tmp.path().join("in.mjpeg");
    std::fs::write(&file, frames.concat()).unwrap();
    let src = format!("mjpeg:{}", file.display());

    // End of file ends the stream, exit 0; every frame received is one of the file's.
    let out_dir = tmp.path().join("got");
    let mut watch = Proc::spawn(
        &hub,
        &[
            "watch",
            "cam",
            "--out",
            out_dir.to_str().unwrap(),
            "--stats",
        ],
    );
    watch.stdout_line(T, |l| l.contains("waiting for frames"));
    let mut stream = Proc::spawn(
        &hub,
        &["--name", "cam", "stream", "--source", &src, "--fps", "20"],
    );
    assert!(stream.wait(T).success(), "{}", stream.stderr_so_far());
    let summary = stream.stderr_to_end();
    assert!(summary.contains("published 12 frames"), "{summary}");
    let deadline = Instant::now() + T;
    while jpegs_in(&out_dir).is_empty() {
        assert!(Instant::now() < deadline, "the watcher got nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(watch.child.kill());
    let got = jpegs_in(&out_dir);
    assert!(got.len() >= 2, "{got:?}");
    for g in &got {
        let data = std::fs::read(g).unwrap();
        assert!(
            frames.iter().any(|f| f[..] == data[..]),
            "{} is not a frame of the file",
            g.display()
        );
    }

    // --frames N stops early, also exit 0
    let mut stream = Proc::spawn(
        &hub,
        &["--name", "cam", "stream", "--source", &src, "--frames", "5"],
    );
    assert!(stream.wait(T).success(), "{}", stream.stderr_so_far());
    let summary = stream.stderr_to_end();
    assert!(summary.contains("published 5 frames"), "{summary}");

    // standard input: frames pass as they come, end of input ends the stream
    let mut stream = Proc::spawn_with(
        &hub,
        &["--name", "cam", "stream", "--source", "mjpeg:-"],
        Stdio::from(std::fs::File::open(&file).unwrap()),
    );
    assert!(stream.wait(T).success(), "{}", stream.stderr_so_far());
    let summary = stream.stderr_to_end();
    assert!(summary.contains("published 12 frames"), "{summary}");
}

#[test]
fn demo_runs_a_hub_and_two_cameras() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut demo = Proc::start(
        "127.0.0.1:9",
        &[
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--data",
            data.to_str().unwrap(),
        ],
        Stdio::null(),
    );
    let (mut addr, mut http) = (String::new(), String::new());
    let deadline = Instant::now() + T;
    while addr.is_empty() || http.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = demo
            .err
            .recv_timeout(left)
            .expect("the demo prints its addresses");
        if let Some(rest) = line.strip_prefix("framewire hub listening on ") {
            addr = rest.split_whitespace().next().unwrap().to_owned();
        }
        if let Some(i) = line.find("http://") {
            http = line[i + 7..].trim_end_matches('/').to_owned();
        }
    }
    assert!(
        !addr.ends_with(":0") && !http.ends_with(":0"),
        "{addr} {http}"
    );
    let out = cmd_when_ready(&addr, "cam-1", &["status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("source=synthetic:640x480 fps=15 "),
        "{}",
        stdout(&out)
    );
    let out = cmd_when_ready(&addr, "cam-2", &["status"]);
    assert!(
        stdout(&out).contains("source=synthetic:320x240 fps=10 "),
        "{}",
        stdout(&out)
    );
    let path = cmd_ok(&addr, "cam-1", &["capture"]);
    assert!(path.starts_with("cam-1/captures/"), "{path}");

    let api = super::http_get(&http, "/api/streams");
    assert!(
        api.contains("\"cam-1\"") && api.contains("\"cam-2\""),
        "{api}"
    );

    let ok = StdCommand::new("kill")
        .args(["-TERM", &demo.child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    assert_eq!(demo.wait(Duration::from_secs(10)).code(), Some(0));
}
