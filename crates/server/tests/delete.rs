//! Deleting stored files (issue 12): the native `Delete`, HTTP `DELETE`, the `delete`
//! permission, the path lease shared with uploads, and durability across a restart.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::*;
use framewire_proto::*;
use framewire_server::auth::{Perms, Tokens};
use framewire_server::web::router;
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn delete(r: &mut Raw, id: u32, path: &str) -> Message {
    r.send(Message::Delete(Delete {
        id,
        path: path.into(),
    }))
    .await;
    r.recv().await
}

fn listed(hub: &TestHub, prefix: &str) -> Vec<String> {
    let (recs, _) = hub.handle.store().list(prefix, "", "", 100).unwrap();
    recs.into_iter().map(|r| r.path).collect()
}

#[tokio::test]
async fn native_delete_removes_the_file_from_disk_and_listing_and_survives_a_restart() {
    let hub = start_hub().await;
    let (mut r, _) = Raw::hello(hub.addr).await;
    assert_stored(
        &r.upload(1, "trip/a.jpg", b"hello", 0).await,
        StoredStatus::New,
    );
    assert_stored(
        &r.upload(2, "trip/b.jpg", b"world!", 0).await,
        StoredStatus::New,
    );
    assert_eq!(
        delete(&mut r, 3, "trip/a.jpg").await,
        Message::Deleted(Deleted { id: 3, size: 5 })
    );
    assert!(!hub.files().join("trip/a.jpg").exists());
    assert_eq!(listed(&hub, ""), ["trip/b.jpg"]);
    assert_eq!(
        hub.handle
            .stats()
            .files_deleted
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    match delete(&mut r, 4, "trip/a.jpg").await {
        Message::Error(e) => assert_eq!((e.id, e.code), (4, ErrorCode::NotFound)),
        other => panic!("expected NotFound, got {other:?}"),
    }
    match delete(&mut r, 5, "../etc/passwd").await {
        Message::Error(e) => assert_eq!((e.id, e.code), (5, ErrorCode::BadPath)),
        other => panic!("expected BadPath, got {other:?}"),
    }
    drop(r);
    let hub = hub.restart().await;
    assert_eq!(
        listed(&hub, ""),
        ["trip/b.jpg"],
        "still gone after a restart"
    );
    assert!(!hub.files().join("trip/a.jpg").exists());
    hub.stop().await;
}

#[tokio::test]
async fn a_delete_waits_for_no_upload_of_the_same_path_it_is_refused_busy() {
    let hub = start_hub().await;
    let (mut up, _) = Raw::hello(hub.addr).await;
    assert_stored(&up.upload(1, "x.bin", b"old", 0).await, StoredStatus::New);
    // An upload to x.bin in progress holds its lease.
    up.send(Message::Offer(Offer {
        id: 2,
        flags: offer_flags::OVERWRITE | offer_flags::NO_RESUME,
        size: 10,
        path: "x.bin".into(),
    }))
    .await;
    assert!(matches!(up.recv().await, Message::Accept(_)));
    let (mut del, _) = Raw::hello(hub.addr).await;
    match delete(&mut del, 1, "x.bin").await {
        Message::Error(e) => assert_eq!(e.code, ErrorCode::Busy, "{}", e.message),
        other => panic!("expected Busy, got {other:?}"),
    }
    assert!(hub.files().join("x.bin").exists());
    hub.stop().await;
}

#[tokio::test]
async fn the_delete_permission_is_needed_on_every_door() {
    let hub = start_hub_with(|c| {
        let mut t = Tokens::default();
        t.add(
            "uploader-token-0123456789",
            "up",
            Perms::UPLOAD | Perms::DOWNLOAD,
        );
        t.add("deleter-token-0123456789", "del", Perms::DELETE);
        c.tokens = t;
    })
    .await;
    let (mut r, w) = Raw::greet(hub.addr, "cam", "uploader-token-0123456789").await;
    assert!(matches!(w, Message::Welcome(_)));
    assert_stored(
        &r.upload(1, "keep.txt", b"data", 0).await,
        StoredStatus::New,
    );
    match delete(&mut r, 2, "keep.txt").await {
        Message::Error(e) => assert_eq!((e.id, e.code), (2, ErrorCode::Forbidden)),
        other => panic!("expected Forbidden, got {other:?}"),
    }
    let http_delete = |token: &str| {
        Request::builder()
            .method(Method::DELETE)
            .uri("/files/keep.txt")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    let res = router(hub.handle.clone())
        .oneshot(http_delete("uploader-token-0123456789"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(
        hub.files().join("keep.txt").exists(),
        "refused: still there"
    );

    let res = router(hub.handle.clone())
        .oneshot(http_delete("deleter-token-0123456789"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["size"], 4);
    assert!(!hub.files().join("keep.txt").exists());
    assert!(listed(&hub, "").is_empty());
    let res = router(hub.handle.clone())
        .oneshot(http_delete("deleter-token-0123456789"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    hub.stop().await;
}
