//! Issue 10, finding 1: symbolic links that appear in the data folder while the hub runs are never
//! followed. Each test plants a link to a folder or file outside the data folder and checks that
//! nothing there is written, truncated or served.

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bytes::Bytes;
use common::*;
use framewire_proto::*;
use framewire_server::web::router;
use http_body_util::BodyExt;
use tower::ServiceExt;

/// Every file below `dir` with its content.
fn snapshot(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    tree(dir)
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_default();
            (p, bytes)
        })
        .collect()
}

fn body(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
}

#[tokio::test]
async fn a_folder_swapped_for_a_link_mid_upload_does_not_write_outside() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("keep.txt"), b"outside").unwrap();
    let before = snapshot(outside.path());
    let hub = hub_builder().start().await;
    let (mut c, _) = Raw::hello(hub.addr).await;
    assert_stored(
        &c.upload(1, "dir/first.bin", b"first", 0).await,
        StoredStatus::New,
    );

    let content = body(300_000, 7);
    c.send(Message::Offer(Offer {
        id: 2,
        flags: 0,
        size: content.len() as u64,
        path: "dir/x.bin".into(),
    }))
    .await;
    assert!(matches!(c.recv().await, Message::Accept(_)));
    let (first, second) = content.split_at(content.len() / 2);
    for part in first.chunks(7000) {
        c.send(Message::Data(Data {
            id: 2,
            bytes: Bytes::copy_from_slice(part),
        }))
        .await;
    }
    // The attack: the folder is moved aside and a link to the outside takes its place.
    let files = hub.files();
    std::fs::rename(files.join("dir"), files.join("dir.moved")).unwrap();
    symlink(outside.path(), files.join("dir")).unwrap();
    for part in second.chunks(7000) {
        c.send(Message::Data(Data {
            id: 2,
            bytes: Bytes::copy_from_slice(part),
        }))
        .await;
    }
    c.send(Message::End(End {
        id: 2,
        hash: Some(*blake3::hash(&content).as_bytes()),
    }))
    .await;
    let reason = assert_rejected(&c.recv().await, ErrorCode::BadPath);
    assert!(reason.contains("symbolic link"), "{reason}");
    assert_eq!(snapshot(outside.path()), before, "nothing written outside");
    assert!(!files.join("dir.moved/x.bin").exists());
    hub.stop().await;
}

#[tokio::test]
async fn a_link_planted_as_a_partial_is_neither_truncated_nor_appended() {
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim.log");
    std::fs::write(&victim, body(5000, 1)).unwrap();
    let before = snapshot(outside.path());
    let hub = hub_builder().start().await;

    let path = "cam/clip.bin";
    let content = body(300_000, 9);
    let key = format!(
        "{}-{}.part",
        &blake3::hash(path.as_bytes()).to_hex()[..32],
        content.len()
    );
    symlink(&victim, hub.data.join("spool").join(&key)).unwrap();

    let (mut c, _) = Raw::hello(hub.addr).await;
    c.send(Message::Offer(Offer {
        id: 1,
        flags: 0,
        size: content.len() as u64,
        path: path.into(),
    }))
    .await;
    match c.recv().await {
        Message::Accept(a) => {
            assert_eq!(a.offset, 0, "the link is not a partial to resume");
            for part in content.chunks(7000) {
                c.send(Message::Data(Data {
                    id: 1,
                    bytes: Bytes::copy_from_slice(part),
                }))
                .await;
            }
            c.send(Message::End(End {
                id: 1,
                hash: Some(*blake3::hash(&content).as_bytes()),
            }))
            .await;
            match c.recv().await {
                Message::Stored(_) => {
                    assert_eq!(std::fs::read(hub.files().join(path)).unwrap(), content);
                }
                Message::Rejected(r) => assert!(r.reason.contains("symbolic link"), "{r:?}"),
                other => panic!("{other:?}"),
            }
        }
        Message::Rejected(r) => assert!(r.reason.contains("symbolic link"), "{r:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        snapshot(outside.path()),
        before,
        "the outside file is untouched"
    );
    hub.stop().await;
}

#[tokio::test]
async fn a_stored_file_swapped_for_a_link_is_not_served() {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, b"OUTSIDE SECRET").unwrap();
    let hub = hub_builder().http().start().await;
    let (mut c, _) = Raw::hello(hub.addr).await;
    assert_stored(
        &c.upload(1, "s/photo.txt", b"inside content", 0).await,
        StoredStatus::New,
    );
    let target = hub.files().join("s/photo.txt");
    std::fs::remove_file(&target).unwrap();
    symlink(&secret, &target).unwrap();

    c.send(Message::Get(Get {
        id: 2,
        offset: 0,
        path: "s/photo.txt".into(),
    }))
    .await;
    match c.recv().await {
        Message::Error(e) => assert_eq!(e.id, 2),
        other => panic!("expected an error, got {other:?}"),
    }

    let res = router(hub.handle.clone())
        .oneshot(
            Request::get("/files/s/photo.txt")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    assert_ne!(status, StatusCode::OK);
    assert!(
        !bytes.windows(6).any(|w| w == b"SECRET"),
        "{status}: {bytes:?}"
    );

    // Nor does a restart index the link or hash through it.
    let hub = hub.restart().await;
    assert!(hub.handle.store().record("s/photo.txt").unwrap().is_none());
    assert_eq!(std::fs::read(&secret).unwrap(), b"OUTSIDE SECRET");
    hub.stop().await;
}
