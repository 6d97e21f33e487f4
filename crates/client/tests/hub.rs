//! The real client against a real hub started in-process on 127.0.0.1:0: a tree of 300+ awkward
//! files arrives byte-identical, re-sending skips everything, an interrupted upload resumes, the
//! overwrite policy holds, and downloads verify.

use std::path::{Path, PathBuf};
use std::time::Duration;

use framewire_client::{
    plan_upload, Client, ClientError, ConnectOptions, ErrorCode, SendOptions, StoredStatus,
};
use framewire_testkit::data::{self, bytes, read_tree};
use framewire_testkit::TestHub;
use tokio::sync::oneshot;

const T: Duration = Duration::from_secs(60);

async fn client(hub: &TestHub) -> Client {
    let opts = ConnectOptions {
        name: "tester".into(),
        ..ConnectOptions::default()
    };
    Client::connect(&hub.addr.to_string(), opts).await.unwrap()
}

/// A tree of 320 files: empty, one byte, multi-MB, nested, spaces and non-ASCII names.
fn make_tree(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut add = |rel: &str, content: Vec<u8>| {
        files.push((PathBuf::from(rel), data::write_file(root, rel, content)));
    };
    add("empty.bin", Vec::new());
    add("one byte.txt", vec![b'x']);
    add("big/four megabytes.bin", bytes(1, 4 << 20));
    add("big/odd size.bin", bytes(2, 3 * 1024 * 1024 + 17));
    add("noms/été à Noël.jpg", bytes(3, 1234));
    add("写真/猫 1.jpg", bytes(4, 99_999));
    add("deep/a/b/c/d/e/f/leaf.txt", b"leaf".to_vec());
    for i in 0..313 {
        add(
            &format!("many/dir {}/img_{i:04}.jpg", i % 7),
            bytes(100 + i, 1000 + (i as usize * 37) % 20_000),
        );
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_arrives_byte_identical_and_resend_skips_everything() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("photos");
    let mut want = make_tree(&src);
    assert!(want.len() >= 300);
    let hub = TestHub::builder()
        .data(dir.path().join("data"))
        .start()
        .await;
    let mut c = client(&hub).await;

    let plan = plan_upload(&[src.as_path()], Some("backup")).unwrap();
    let report = tokio::time::timeout(T, c.send_plan(plan, SendOptions::default(), |_| {}))
        .await
        .unwrap()
        .unwrap();
    assert!(report.all_stored(), "failed: {:?}", report.failed);
    assert_eq!(report.stored.len(), want.len());
    assert!(report.stored.iter().all(|f| f.status == StoredStatus::New));

    // Byte-identical, at the scp -r names, under --to.
    let got = read_tree(&dir.path().join("data/files/backup/photos"));
    want.sort();
    assert_eq!(got.len(), want.len());
    for ((gp, gc), (wp, wc)) in got.iter().zip(&want) {
        assert_eq!(gp, wp);
        assert!(gc == wc, "{} differs", gp.display());
    }

    // The index lists them all, with their hashes and sender.
    let listed = c.list("backup/photos/").await.unwrap();
    assert_eq!(listed.len(), want.len());
    let cat = listed
        .iter()
        .find(|e| e.path == "backup/photos/写真/猫 1.jpg")
        .unwrap();
    assert_eq!(cat.hash, *blake3::hash(&bytes(4, 99_999)).as_bytes());
    assert_eq!(cat.sender, "tester@127.0.0.1");

    // Re-sending skips every file without sending its bytes.
    let plan = plan_upload(&[src.as_path()], Some("backup")).unwrap();
    let again = c
        .send_plan(plan, SendOptions::default(), |_| {})
        .await
        .unwrap();
    assert!(again.all_stored());
    assert_eq!(again.skipped.len(), want.len());
    assert!(again.stored.is_empty());
    assert_eq!(again.bytes_sent, 0, "no file bytes were sent again");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_upload_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let big = dir.path().join("big.bin");
    let content = bytes(9, 48 << 20);
    std::fs::write(&big, &content).unwrap();

    // The hub goes away in the middle of the upload (a grace of 0: cut at once, instead of
    // letting the upload finish as a hub shutting down normally does).
    let hub = TestHub::builder()
        .data(&data)
        .config(|c| c.shutdown_grace = Duration::ZERO)
        .start()
        .await;
    let mut c = client(&hub).await;
    let (cut, cut_rx) = oneshot::channel::<()>();
    let mut cut = Some(cut);
    let upload = tokio::spawn(async move {
        c.send_files(
            vec![framewire_client::UploadJob {
                local: big.clone(),
                remote: "big.bin".into(),
            }],
            SendOptions::default(),
            move |ev| {
                if let framewire_client::ProgressEvent::Progress(t) = ev {
                    if t.bytes_sent > 8 << 20 {
                        if let Some(c) = cut.take() {
                            let _ = c.send(());
                        }
                    }
                }
            },
        )
        .await
    });
    tokio::time::timeout(T, cut_rx).await.unwrap().unwrap();
    hub.stop().await;
    let report = tokio::time::timeout(T, upload)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(!report.all_stored(), "the upload was cut off");
    assert!(report.interrupted.is_some());
    assert!(
        !data.join("files/big.bin").exists(),
        "no partial file is visible"
    );

    // Same data folder, new hub: re-sending continues from the verified prefix.
    let hub = TestHub::builder().data(&data).start().await;
    let mut c = client(&hub).await;
    let f = c
        .send_file(
            dir.path().join("big.bin"),
            "big.bin",
            SendOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(f.status, StoredStatus::New);
    assert!(f.resumed_from > 0, "resumed from byte {}", f.resumed_from);
    assert_eq!(std::fs::read(data.join("files/big.bin")).unwrap(), content);
    hub.stop().await;
}

#[tokio::test]
async fn different_file_is_refused_unless_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::builder()
        .data(dir.path().join("data"))
        .start()
        .await;
    let mut c = client(&hub).await;
    let local = dir.path().join("note.txt");
    std::fs::write(&local, b"first version").unwrap();
    assert_eq!(
        c.send_file(&local, "note.txt", SendOptions::default())
            .await
            .unwrap()
            .status,
        StoredStatus::New
    );

    // Same size, different bytes: the client notices the hash differs and the hub refuses.
    std::fs::write(&local, b"other version").unwrap();
    match c
        .send_file(&local, "note.txt", SendOptions::default())
        .await
    {
        Err(ClientError::Rejected {
            code: Some(ErrorCode::Exists),
            reason,
            ..
        }) => assert!(reason.contains("overwrite"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // Different size.
    std::fs::write(&local, b"a longer, third version").unwrap();
    assert!(matches!(
        c.send_file(&local, "note.txt", SendOptions::default())
            .await,
        Err(ClientError::Rejected {
            code: Some(ErrorCode::Exists),
            ..
        })
    ));
    assert_eq!(
        std::fs::read(dir.path().join("data/files/note.txt")).unwrap(),
        b"first version"
    );

    // With overwrite it is replaced.
    let f = c
        .send_file(&local, "note.txt", SendOptions { overwrite: true })
        .await
        .unwrap();
    assert_eq!(f.status, StoredStatus::Replaced);
    assert_eq!(
        std::fs::read(dir.path().join("data/files/note.txt")).unwrap(),
        b"a longer, third version"
    );
    std::fs::write(&local, b"a longer, 4th... version").unwrap();
    let f = c
        .send_file(&local, "note.txt", SendOptions { overwrite: true })
        .await
        .unwrap();
    assert_eq!(
        f.status,
        StoredStatus::Replaced,
        "same size, overwrite: cancel and resend"
    );
    assert_eq!(
        std::fs::read(dir.path().join("data/files/note.txt")).unwrap(),
        b"a longer, 4th... version"
    );
    hub.stop().await;
}

#[tokio::test]
async fn bad_remote_paths_fail_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::builder()
        .data(dir.path().join("data"))
        .start()
        .await;
    let mut c = client(&hub).await;
    let local = dir.path().join("x.txt");
    std::fs::write(&local, b"x").unwrap();
    for bad in ["../x.txt", "/etc/x", "a//b", "a\\b"] {
        assert!(
            c.send_file(&local, bad, SendOptions::default())
                .await
                .is_err(),
            "{bad}"
        );
    }
    assert!(plan_upload(&[local.as_path()], Some("../up")).is_err());
    assert_eq!(
        std::fs::read_dir(dir.path().join("data/files"))
            .unwrap()
            .count(),
        0
    );
    hub.stop().await;
}

#[tokio::test]
async fn get_verifies_and_messages_and_ping_work() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::builder()
        .data(dir.path().join("data"))
        .start()
        .await;
    let mut c = client(&hub).await;
    let local = dir.path().join("in.bin");
    let content = bytes(5, 3 << 20);
    std::fs::write(&local, &content).unwrap();
    c.send_file(&local, "x/in.bin", SendOptions::default())
        .await
        .unwrap();
    let out = dir.path().join("out.bin");
    let got = c.get("x/in.bin", &out).await.unwrap();
    assert_eq!(got.size, content.len() as u64);
    assert_eq!(std::fs::read(&out).unwrap(), content);
    assert!(c.get("x/missing.bin", dir.path().join("m")).await.is_err());
    assert!(
        !dir.path().join("m").exists(),
        "a failed download leaves nothing"
    );
    assert_eq!(c.message("hello hub").await.unwrap(), "hello hub");
    let p = c.ping().await.unwrap();
    assert!(p.rtt < Duration::from_secs(1));
    assert!(
        p.clock_offset_us.abs() < 1_000_000,
        "same machine: offset near 0"
    );
    hub.stop().await;
}

#[tokio::test]
async fn unreachable_hub_is_a_quick_clear_error() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let started = std::time::Instant::now();
    let err = Client::connect(&addr.to_string(), ConnectOptions::default())
        .await
        .expect_err("refused");
    assert!(started.elapsed() < Duration::from_secs(6));
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}
