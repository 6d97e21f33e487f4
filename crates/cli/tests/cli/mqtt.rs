//! The MQTT door against Debian's real `mosquitto` broker (issue 11). Ignored by default: it needs
//! `mosquitto` and `mosquitto_sub`/`mosquitto_pub` (apt packages mosquitto, mosquitto-clients),
//! and `.ci/run` runs it with `--ignored`, where a missing tool fails the test.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command as StdCommand, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{stderr, Hub, BIN};

/// A child killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tool(name: &str) -> StdCommand {
    let path = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("{name} is missing: apt-get install mosquitto mosquitto-clients")
        });
    StdCommand::new(path)
}

/// `mosquitto_sub` printing `TOPIC PAYLOAD` lines onto a channel.
fn subscribe(port: u16, topic: &str) -> (Proc, mpsc::Receiver<String>) {
    let mut child = tool("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-v",
            "-t",
            topic,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    (Proc(child), rx)
}

fn wait_for(rx: &mpsc::Receiver<String>, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let l = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("never saw {what}"));
        if pred(&l) {
            return l;
        }
    }
}

#[test]
#[ignore = "needs Debian's mosquitto; run by .ci/run with --ignored"]
fn mqtt_events_availability_and_commands_through_mosquitto() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
    )
    .unwrap();
    let _broker = Proc(
        tool("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The broker is up when a subscriber can connect.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "mosquitto did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_sub, lines) = subscribe(port, "fw/#");
    std::thread::sleep(Duration::from_millis(300));
    let url = format!("mqtt://127.0.0.1:{port}");
    let hub = Hub::start_with(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &["--mqtt", &url, "--mqtt-prefix", "fw"],
    );
    wait_for(&lines, "fw/status online", |l| l == "fw/status online");

    // A stored file's event.
    let file = dir.path().join("m.txt");
    std::fs::write(&file, b"mqtt!").unwrap();
    let out = hub.cmd().args(["send"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let l = wait_for(&lines, "the stored event", |l| {
        l.starts_with("fw/events/stored ")
    });
    let v: serde_json::Value =
        serde_json::from_str(l.strip_prefix("fw/events/stored ").unwrap()).unwrap();
    assert_eq!(v["path"], "m.txt");
    assert_eq!(v["hash"], blake3::hash(b"mqtt!").to_hex().as_str());

    // A command from MQTT reaches a device (a `framewire stream` camera answers `status`) and its
    // reply comes back on the reply topic.
    let device = Proc(
        StdCommand::new(BIN)
            .args([
                "--server", &hub.addr, "--name", "cam1", "stream", "--fps", "5",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(&lines, "the device online", |l| {
        l.starts_with("fw/events/device ") && l.contains("\"online\"")
    });
    let out = tool("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            "fw/devices/cam1/command",
            "-m",
            "status",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let l = wait_for(&lines, "the reply", |l| {
        l.starts_with("fw/devices/cam1/reply ")
    });
    let v: serde_json::Value =
        serde_json::from_str(l.strip_prefix("fw/devices/cam1/reply ").unwrap()).unwrap();
    assert_eq!(v["status"], "Ok", "{l}");
    drop(device);
}
