//! The C client for microcontrollers (`clients/c`, issue 6) against a real `framewire serve`
//! child: its vector tests, `send_file` of 5 MB, `publish_dir` of 100 frames received by a Rust
//! subscriber, and `device` answering `capture` and `status` sent with `framewire cmd`.
//!
//! The C programs are built with `make -C clients/c` (needs `make` and a C compiler); a build
//! failure fails these tests with make's output. Every wait is bounded and every child process is
//! killed if a test stops half-way.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use framewire_client::{ConnectOptions, Subscriber};

const BIN: &str = env!("CARGO_BIN_EXE_framewire");

/// Longest wait for any one thing.
const T: Duration = Duration::from_secs(60);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn c_dir() -> PathBuf {
    repo().join("clients/c")
}

fn c_program(name: &str) -> PathBuf {
    c_dir().join("build").join(name)
}

/// The test kit's sample frames (39 JPEGs of 1920×1080).
fn frames_dir() -> PathBuf {
    framewire_testkit::frames::sample_frames_dir().to_path_buf()
}

/// The frames' files in name order, as `publish_dir` sends them.
fn frame_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(frames_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .jpg in {}", frames_dir().display());
    files
}

/// A finished process's status and output.
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` to the end within `limit` (killed and reported after it).
fn run(cmd: &mut Command, limit: Duration) -> Finished {
    let mut p = Proc::spawn(cmd);
    let status = p.wait(limit);
    Finished {
        status,
        stdout: p.lines_to_end(&p.out),
        stderr: p.lines_to_end(&p.err),
    }
}

/// `make -C clients/c ARGS`, one at a time (the tests run on parallel threads).
fn make(args: &[&str]) -> Finished {
    static LOCK: Mutex<()> = Mutex::new(());
    let _one = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    run(
        Command::new("make").arg("-C").arg(c_dir()).args(args),
        Duration::from_secs(300),
    )
}

/// Builds the C library, examples and tests once for all tests.
fn build_c() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let out = make(&[]);
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "make -C clients/c failed ({}):\n{}\n{}",
                out.status, out.stdout, out.stderr
            ))
        }
    });
    if let Err(e) = built {
        panic!("{e}");
    }
}

/// A child process whose output lines are collected on threads; killed on drop.
struct Proc {
    child: Child,
    out: mpsc::Receiver<String>,
    err: mpsc::Receiver<String>,
}

impl Proc {
    fn spawn(cmd: &mut Command) -> Proc {
        let mut child = cmd
            .env_remove("FRAMEWIRE_TOKEN")
            .env_remove("FRAMEWIRE_SERVER")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let out = drain(child.stdout.take().unwrap());
        let err = drain(child.stderr.take().unwrap());
        Proc { child, out, err }
    }

    /// The exit status within `limit`; kills the process and panics after it.
    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "process did not end within {limit:?}; stderr:\n{}",
                    self.lines_to_end(&self.err)
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The next line of `rx` matching `want`, within `limit`.
    fn line(&self, rx: &mpsc::Receiver<String>, limit: Duration, want: &str) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(want) => return line,
                Ok(_) => {}
                Err(_) => panic!(
                    "no line with {want:?} within {limit:?}; stderr:\n{}",
                    self.lines_to_end(&self.err)
                ),
            }
        }
    }

    /// What is left of a stream (until its end or 5 s of silence).
    fn lines_to_end(&self, rx: &mpsc::Receiver<String>) -> String {
        let mut lines = Vec::new();
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
            lines.push(line);
        }
        lines.join("\n")
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

/// Lines of `r`, read on a thread so that the child never blocks on a full pipe.
fn drain(r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// A `framewire serve` child on 127.0.0.1 with its data folder; killed on drop.
struct Hub {
    /// Kept for its `Drop`, which stops the hub.
    _proc: Proc,
    host: String,
    port: String,
    data: tempfile::TempDir,
}

impl Hub {
    fn start() -> Hub {
        let data = tempfile::tempdir().unwrap();
        let proc = Proc::spawn(
            Command::new(BIN)
                .args([
                    "serve",
                    "--listen",
                    "127.0.0.1:0",
                    "--http",
                    "off",
                    "--data",
                ])
                .arg(data.path()),
        );
        let line = proc.line(&proc.err, T, "listening on ");
        let addr = line
            .split("listening on ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap()
            .to_owned();
        let (host, port) = addr.rsplit_once(':').unwrap();
        Hub {
            host: host.to_owned(),
            port: port.to_owned(),
            _proc: proc,
            data,
        }
    }

    fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// A stored file's bytes.
    fn stored(&self, path: &str) -> Vec<u8> {
        let p = self.data.path().join("files").join(path);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{} not on the hub: {e}", p.display()))
    }

    /// A C example program with the hub's host and port as its first arguments.
    fn c_example(&self, name: &str) -> Command {
        let mut c = Command::new(c_program(name));
        c.args([&self.host, &self.port]);
        c
    }
}

#[test]
fn c_vector_and_scripted_hub_tests_pass() {
    build_c();
    let out = make(&["test"]);
    assert!(
        out.status.success(),
        "make test failed:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    // Both builds (with and without BLAKE3) report, and neither fails a check.
    let summaries: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.ends_with(" failed"))
        .collect();
    assert_eq!(summaries.len(), 2, "{}", out.stdout);
    assert!(
        summaries.iter().all(|l| l.ends_with(", 0 failed")),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("vectors: "), "{}", out.stdout);
}

#[test]
fn c_send_file_stores_5_mb_byte_identical() {
    build_c();
    let hub = Hub::start();
    let dir = tempfile::tempdir().unwrap();
    let bytes = framewire_testkit::data::bytes(1, 5_000_000);
    let local = dir.path().join("five.bin");
    std::fs::write(&local, &bytes).unwrap();

    let out = run(hub.c_example("send_file").arg(&local).arg("c/five.bin"), T);
    assert!(out.status.success(), "send_file: {}", out.stderr);
    let hash = blake3::hash(&bytes).to_hex().to_string();
    assert_eq!(
        out.stdout.trim(),
        format!("stored c/five.bin 5000000 bytes new blake3 {hash}")
    );
    assert!(hub.stored("c/five.bin") == bytes, "stored bytes differ");

    // Again: the hub already has these bytes, so nothing is resent.
    let out = run(hub.c_example("send_file").arg(&local).arg("c/five.bin"), T);
    assert!(out.status.success(), "send_file again: {}", out.stderr);
    assert!(out.stdout.contains(" unchanged "), "{}", out.stdout);

    // Different bytes at the same path are refused with the hub's reason.
    let other = dir.path().join("other.bin");
    std::fs::write(&other, b"not the same").unwrap();
    let out = run(hub.c_example("send_file").arg(&other).arg("c/five.bin"), T);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.contains("Exists"), "{}", out.stderr);
    assert!(hub.stored("c/five.bin") == bytes, "the stored file changed");
}

#[test]
fn c_publish_dir_frames_reach_a_rust_subscriber() {
    build_c();
    let files = frame_files();
    let (width, height) = framewire_media::jpeg::probe(&std::fs::read(&files[0]).unwrap()).unwrap();
    let hub = Hub::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let opts = ConnectOptions {
        name: "rust-subscriber".into(),
        ..ConnectOptions::default()
    };
    let mut sub = rt
        .block_on(Subscriber::connect(&hub.addr(), opts, "c-cam"))
        .unwrap();

    // 100 frames at 25 frames per second, looping over the folder.
    let mut publisher = Proc::spawn(
        hub.c_example("publish_dir")
            .arg("c-cam")
            .arg(frames_dir())
            .args(["25", "100"]),
    );
    let mut received = 0u64;
    let mut last_seq = None;
    while last_seq != Some(99) {
        let frame = rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(20), sub.next()).await })
            .expect("a frame within 20 s")
            .expect("the subscriber is open");
        received += 1;
        let i = frame.seq as usize % files.len();
        assert!(
            frame.payload == std::fs::read(&files[i]).unwrap(),
            "frame {} is not {}",
            frame.seq,
            files[i].display()
        );
        assert_eq!((frame.width, frame.height), (width, height));
        assert_eq!(frame.format, framewire_client::frame_format::JPEG);
        // The C client's monotonic clock, moved onto the hub's by Ping/Pong, says "just now".
        assert!(
            frame.age_us().abs() < 5_000_000,
            "frame {} is {} us old",
            frame.seq,
            frame.age_us()
        );
        assert!(last_seq.is_none_or(|s| frame.seq > s), "seq went backwards");
        last_seq = Some(frame.seq);
    }
    let status = publisher.wait(T);
    assert!(
        status.success(),
        "publish_dir: {}",
        publisher.lines_to_end(&publisher.err)
    );
    publisher.line(
        &publisher.out,
        T,
        "published 100 frames to c-cam (100 acknowledged",
    );
    println!("rust subscriber received {received} of 100 frames from the C publisher");
    // Newest-first delivery may skip frames under load, but not most of them at 25 fps.
    assert!(received >= 50, "only {received} of 100 frames arrived");
    rt.block_on(sub.close());
}

/// `framewire cmd DEVICE ARGS...`, retried while the hub does not know the device yet.
fn cmd(hub: &Hub, device: &str, args: &[&str]) -> Finished {
    let deadline = Instant::now() + T;
    loop {
        let out = run(
            Command::new(BIN)
                .args(["--server", &hub.addr(), "cmd", device])
                .args(args),
            T,
        );
        if !out.stderr.contains("no device named") || Instant::now() > deadline {
            return out;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn c_device_answers_capture_and_status() {
    build_c();
    let hub = Hub::start();
    let captures = tempfile::tempdir().unwrap();
    let sample = frame_files()[0].clone();
    let sample_bytes = std::fs::read(&sample).unwrap();
    std::fs::copy(&sample, captures.path().join("latest.jpg")).unwrap();
    let device = Proc::spawn(
        hub.c_example("device")
            .arg("c-dev")
            .env("FRAMEWIRE_CAPTURE_DIR", captures.path()),
    );
    device.line(&device.out, T, "registered as device c-dev");

    // capture: the newest JPEG of the folder, uploaded over a second connection.
    let out = cmd(&hub, "c-dev", &["capture"]);
    assert!(out.status.success(), "capture: {}", out.stderr);
    let path = out.stdout.trim().to_owned();
    assert!(
        path.starts_with("c-dev/captures/") && path.ends_with(".jpg"),
        "{path}"
    );
    assert!(
        hub.stored(&path) == sample_bytes,
        "{path} differs from the sample"
    );

    // Without a JPEG in the folder: the embedded 8x8 image, a JPEG that decodes.
    std::fs::remove_file(captures.path().join("latest.jpg")).unwrap();
    let out = cmd(&hub, "c-dev", &["capture"]);
    assert!(out.status.success(), "capture: {}", out.stderr);
    let second = out.stdout.trim().to_owned();
    assert_ne!(second, path);
    let image = framewire_media::image::decode_rgb(&hub.stored(&second)).unwrap();
    assert_eq!((image.width(), image.height()), (8, 8));

    let out = cmd(&hub, "c-dev", &["status"]);
    assert!(out.status.success(), "status: {}", out.stderr);
    assert!(
        out.stdout.contains("device c-dev") && out.stdout.contains("2 captures"),
        "{}",
        out.stdout
    );

    let out = cmd(&hub, "c-dev", &["launch", "now"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.contains("does not know") && out.stderr.contains("unknown command launch"),
        "{}",
        out.stderr
    );
    device.line(&device.out, T, "command launch -> failed");
}

/// Issue 11: a C device sends a text to a program that follows events under a name, and receives
/// a text addressed to its device name.
#[test]
fn c_device_sends_a_text_to_a_named_program_and_receives_one() {
    build_c();
    let hub = Hub::start();
    let program = Proc::spawn(Command::new(BIN).args([
        "--server",
        &hub.addr(),
        "events",
        "--name",
        "prog",
        "--kind",
        "none",
    ]));
    program.line(&program.err, T, "following events");
    let device = Proc::spawn(hub.c_example("device").arg("c-talk"));
    device.line(&device.out, T, "registered as device c-talk");

    let out = cmd(&hub, "c-talk", &["tell", "prog", "hello from C"]);
    assert!(out.status.success(), "tell: {}", out.stderr);
    device.line(&device.out, T, "told prog: delivered");
    program.line(
        &program.out,
        T,
        "text from=c-talk to=prog text=hello from C",
    );

    let out = run(
        Command::new(BIN).args([
            "--server",
            &hub.addr(),
            "--name",
            "prog",
            "msg",
            "--to",
            "c-talk",
            "hi device",
        ]),
        T,
    );
    assert!(out.status.success(), "msg --to: {}", out.stderr);
    device.line(&device.out, T, "text from prog: hi device");
}
