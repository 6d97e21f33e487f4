//! The real hub binary killed with SIGKILL in the middle of an upload: after a restart no partial
//! file is visible, every stored file is byte-identical to its source, the index agrees with the
//! disk, and re-sending completes (resuming what was cut off).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use framewire_testkit::data::bytes;

const BIN: &str = env!("CARGO_BIN_EXE_framewire");

/// A hub child process, killed (SIGKILL) when dropped.
struct HubProc {
    child: Child,
    addr: String,
}

impl HubProc {
    fn start(data: &Path) -> HubProc {
        let mut child = Command::new(BIN)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--http",
                "off",
                "--data",
            ])
            .arg(data)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hub starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("hub prints its address");
        HubProc { child, addr }
    }

    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for HubProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// 150 small files and 3 large ones (so a kill lands mid-file, in both upload paths).
fn make_source(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for i in 0..150 {
        files.insert(
            format!("src/small/{i:03}.jpg"),
            bytes(i as u64, 20_000 + i * 300),
        );
    }
    for i in 0..3 {
        files.insert(format!("src/big/{i}.bin"), bytes(1000 + i as u64, 24 << 20));
    }
    for (rel, content) in &files {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    files
}

fn stored_files(data: &Path) -> BTreeMap<String, PathBuf> {
    let root = data.join("files");
    let mut out = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(&root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                    p,
                );
            }
        }
    }
    out
}

fn send(addr: &str, src: &Path) -> Child {
    Command::new(BIN)
        .args(["send", "--server", addr, "-q"])
        .arg(src)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_timeout(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let end = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < end, "process did not finish in {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn listed(addr: &str) -> Vec<String> {
    let out = Command::new(BIN)
        .args(["ls", "--server", addr])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn kill_9_mid_upload_loses_nothing_acknowledged_and_resend_completes() {
    let dir = tempfile::tempdir().unwrap();
    let files = make_source(dir.path());
    let data = dir.path().join("data");
    // Kill at a few different moments: early (small files), and later (inside large files).
    for (round, kill_after_ms) in [60u64, 250, 600].into_iter().enumerate() {
        let hub = HubProc::start(&data);
        let mut sender = send(&hub.addr, &dir.path().join("src"));
        std::thread::sleep(Duration::from_millis(kill_after_ms));
        hub.kill9();
        let status = wait_timeout(&mut sender, Duration::from_secs(30));
        let stored = stored_files(&data);
        // No partial file is visible; whatever is there is complete and identical.
        for (rel, path) in &stored {
            let want = files
                .get(rel)
                .unwrap_or_else(|| panic!("round {round}: unexpected file {rel}"));
            assert!(
                std::fs::read(path).unwrap() == *want,
                "round {round}: {rel} is not identical to its source"
            );
        }
        if stored.len() < files.len() {
            assert!(
                !status.success(),
                "round {round}: send must fail when files are missing"
            );
        }

        // Restart on the same data folder: the index agrees with the disk, and re-sending completes.
        let hub = HubProc::start(&data);
        let on_disk: Vec<String> = stored_files(&data).into_keys().collect();
        assert_eq!(
            listed(&hub.addr),
            on_disk,
            "round {round}: index agrees with the disk"
        );
        let mut again = send(&hub.addr, &dir.path().join("src"));
        let status = wait_timeout(&mut again, Duration::from_secs(120));
        assert!(status.success(), "round {round}: re-send completes");
        let stored = stored_files(&data);
        assert_eq!(stored.len(), files.len(), "round {round}");
        for (rel, path) in &stored {
            assert!(
                std::fs::read(path).unwrap() == files[rel],
                "round {round}: {rel}"
            );
        }
        assert_eq!(listed(&hub.addr).len(), files.len());
        hub.kill9();
        // Start the next round from nothing stored again, keeping the data folder (and its index).
        std::fs::remove_dir_all(data.join("files")).unwrap();
    }
}

fn framewire(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().unwrap()
}

/// Issue 12: a delete acknowledged by `framewire rm` stays done when the hub is killed right
/// after the acknowledgement.
#[test]
fn kill_9_right_after_a_delete_is_acknowledged_keeps_the_file_gone() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("trip");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..5 {
        std::fs::write(src.join(format!("{i}.jpg")), bytes(i, 10_000)).unwrap();
    }
    let data = dir.path().join("data");
    let hub = HubProc::start(&data);
    let mut s = send(&hub.addr, &src);
    assert!(wait_timeout(&mut s, Duration::from_secs(60)).success());
    assert_eq!(listed(&hub.addr).len(), 5);

    let out = framewire(&["rm", "--server", &hub.addr, "trip/1.jpg"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "deleted trip/1.jpg"
    );
    // A whole folder needs --yes when nobody can be asked.
    let out = framewire(&["rm", "--server", &hub.addr, "--prefix", "trip/"]);
    assert_eq!(out.status.code(), Some(2), "refused without --yes");
    assert!(String::from_utf8_lossy(&out.stderr).contains("delete 4 files"));
    let out = framewire(&[
        "rm", "-q", "--server", &hub.addr, "--prefix", "trip/3", "--yes",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    hub.kill9();

    assert!(!data.join("files/trip/1.jpg").exists());
    assert!(!data.join("files/trip/3.jpg").exists());
    let hub = HubProc::start(&data);
    assert_eq!(
        listed(&hub.addr),
        ["trip/0.jpg", "trip/2.jpg", "trip/4.jpg"],
        "deleted files are not listed after the restart"
    );
    let out = framewire(&["rm", "--server", &hub.addr, "trip/1.jpg"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no file stored at trip/1.jpg"));
    hub.kill9();
}
