//! Live frames and device commands through a real hub, with raw protocol clients: fan-out,
//! newest-first delivery to slow subscribers, max-latency drops, command routing.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::*;
use framewire_proto::*;

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

fn frame(stream: &str, seq: u64, capture_us: i64) -> Message {
    Message::Frame(Frame {
        stream: stream.into(),
        seq,
        capture_us,
        format: frame_format::JPEG,
        width: 64,
        height: 48,
        payload: Bytes::from(vec![seq as u8; 20_000]),
    })
}

/// Publishes `n` frames at `fps` on `stream`, reading the hub's acks as they come.
async fn publish(addr: std::net::SocketAddr, stream: &'static str, n: u64, fps: u64) {
    let (mut c, _) = Raw::hello(addr).await;
    c.send(Message::Publish(Publish {
        stream: stream.into(),
        max_latency_ms: 0,
    }))
    .await;
    let interval = Duration::from_micros(1_000_000 / fps);
    let mut tick = tokio::time::interval(interval);
    for seq in 1..=n {
        tick.tick().await;
        c.send(frame(stream, seq, now_us())).await;
    }
    // Every frame is acknowledged.
    let mut acked = 0;
    while acked < n {
        if let Message::FrameAck(a) = c.recv().await {
            assert_eq!(a.stream, stream);
            acked += 1;
        }
    }
}

struct Received {
    stream: String,
    seq: u64,
    age_us: i64,
}

/// Subscribes to `streams`, consuming frames for `dur`, taking `work` per frame before acking.
async fn subscribe(
    addr: std::net::SocketAddr,
    streams: &[&str],
    dur: Duration,
    work: Duration,
) -> Vec<Received> {
    let (mut c, _) = Raw::hello(addr).await;
    for s in streams {
        c.send(Message::Subscribe(Subscribe {
            stream: (*s).into(),
            window: 1,
        }))
        .await;
    }
    let end = tokio::time::Instant::now() + dur;
    let mut got = Vec::new();
    while tokio::time::Instant::now() < end {
        let m = match tokio::time::timeout_at(end, c.recv()).await {
            Ok(m) => m,
            Err(_) => break,
        };
        if let Message::Frame(f) = m {
            got.push(Received {
                stream: f.stream.clone(),
                seq: f.seq,
                age_us: now_us() - f.capture_us,
            });
            assert_eq!(f.payload.len(), 20_000);
            tokio::time::sleep(work).await;
            c.send(Message::FrameAck(FrameAck {
                stream: f.stream,
                seq: f.seq,
            }))
            .await;
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_publishers_three_subscribers_every_stream_arrives() {
    let hub = start_hub().await;
    let addr = hub.addr;
    let subs: Vec<_> = (0..3)
        .map(|_| {
            tokio::spawn(async move {
                subscribe(
                    addr,
                    &["cam-a", "cam-b"],
                    Duration::from_secs(3),
                    Duration::ZERO,
                )
                .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pa = tokio::spawn(publish(addr, "cam-a", 60, 30));
    let pb = tokio::spawn(publish(addr, "cam-b", 60, 30));
    pa.await.unwrap();
    pb.await.unwrap();
    for s in subs {
        let got = s.await.unwrap();
        for name in ["cam-a", "cam-b"] {
            let seqs: Vec<u64> = got
                .iter()
                .filter(|r| r.stream == name)
                .map(|r| r.seq)
                .collect();
            assert!(seqs.len() >= 50, "{name}: only {} of 60 frames", seqs.len());
            assert!(
                seqs.windows(2).all(|w| w[0] < w[1]),
                "{name}: frames in order, never repeated"
            );
            assert_eq!(*seqs.last().unwrap(), 60, "{name}: the last frame arrives");
        }
    }
    let snap = hub.handle.streams().snapshots(now_us());
    assert_eq!(snap.len(), 2);
    assert!(snap.iter().all(|s| s.frames_in == 60));
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_subscriber_gets_fresh_frames_while_fast_one_keeps_pace() {
    let hub = start_hub().await;
    let addr = hub.addr;
    let run = Duration::from_secs(3);
    let slow =
        tokio::spawn(
            async move { subscribe(addr, &["cam"], run, Duration::from_millis(100)).await },
        );
    let fast = tokio::spawn(async move { subscribe(addr, &["cam"], run, Duration::ZERO).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    publish(addr, "cam", 170, 60).await;
    let slow = slow.await.unwrap();
    let fast = fast.await.unwrap();
    // Slow: every frame it gets is fresh: at most its processing time plus two frame intervals.
    let bound_us = 100_000 + 2 * 16_667;
    assert!(
        slow.len() >= 15,
        "slow subscriber got {} frames",
        slow.len()
    );
    for r in &slow {
        assert!(
            r.age_us <= bound_us,
            "slow subscriber got a frame {} µs old (bound {bound_us})",
            r.age_us
        );
    }
    let slow_seqs: Vec<u64> = slow.iter().map(|r| r.seq).collect();
    assert!(
        slow_seqs.windows(2).all(|w| w[1] > w[0] + 1),
        "slow subscriber skips, it does not queue"
    );
    // Fast: close to every frame.
    assert!(
        fast.len() >= 150,
        "fast subscriber got only {} of 170 frames",
        fast.len()
    );
    let snap = hub.handle.streams().get("cam").unwrap().snapshot(now_us());
    assert!(snap.skipped > 0, "skips are counted");
    hub.stop().await;
}

#[tokio::test]
async fn frames_older_than_max_latency_are_dropped_and_counted() {
    let hub = start_hub().await;
    let (mut sub, _) = Raw::hello(hub.addr).await;
    sub.send(Message::Subscribe(Subscribe {
        stream: "cam".into(),
        window: 8,
    }))
    .await;
    let (mut p, _) = Raw::hello(hub.addr).await;
    p.send(Message::Publish(Publish {
        stream: "cam".into(),
        max_latency_ms: 80,
    }))
    .await;
    p.send(frame("cam", 1, now_us() - 500_000)).await;
    p.send(frame("cam", 2, now_us() - 81_000)).await;
    p.send(frame("cam", 3, now_us())).await;
    for want in 1..=3 {
        assert!(
            matches!(p.recv().await, Message::FrameAck(a) if a.seq == want),
            "every frame is acked"
        );
    }
    assert_eq!(
        sub.recv().await,
        Message::Subscribed(Subscribed {
            stream: "cam".into(),
            window: 8
        })
    );
    match sub.recv().await {
        Message::Frame(f) => assert_eq!(f.seq, 3, "only the fresh frame is delivered"),
        other => panic!("{other:?}"),
    }
    let snap = hub.handle.streams().get("cam").unwrap().snapshot(now_us());
    assert_eq!((snap.dropped_late, snap.frames_in), (2, 1));
    hub.stop().await;
}

#[tokio::test]
async fn commands_reach_devices_and_replies_come_back() {
    let hub = start_hub_with(|c| c.command_timeout = Duration::from_millis(300)).await;
    let (mut dev, _) = Raw::hello(hub.addr).await;
    dev.send(Message::RegisterDevice(RegisterDevice {
        name: "cam".into(),
    }))
    .await;
    let (mut mute, _) = Raw::hello(hub.addr).await;
    mute.send(Message::RegisterDevice(RegisterDevice {
        name: "mute".into(),
    }))
    .await;
    // The hub says when each registration took effect.
    for (c, name) in [(&mut dev, "cam"), (&mut mute, "mute")] {
        assert_eq!(
            c.recv().await,
            Message::Registered(Registered { name: name.into() })
        );
    }
    let (mut user, _) = Raw::hello(hub.addr).await;
    user.send(Message::Command(Command {
        id: 11,
        target: "cam".into(),
        command: "status".into(),
        args: vec!["x".into()],
    }))
    .await;
    user.send(Message::Command(Command {
        id: 12,
        target: "nobody".into(),
        command: "status".into(),
        args: vec![],
    }))
    .await;
    user.send(Message::Command(Command {
        id: 13,
        target: "mute".into(),
        command: "status".into(),
        args: vec![],
    }))
    .await;
    let Message::Command(c) = dev.recv().await else {
        panic!("device gets the command")
    };
    assert_eq!(
        (c.command.as_str(), c.args.as_slice()),
        ("status", &["x".to_string()][..])
    );
    dev.send(Message::Reply(Reply {
        id: c.id,
        status: ReplyStatus::Ok,
        body: Bytes::from_static(b"fps=30"),
    }))
    .await;
    let mut replies = Vec::new();
    for _ in 0..3 {
        match user.recv().await {
            Message::Reply(r) => replies.push(r),
            other => panic!("{other:?}"),
        }
    }
    replies.sort_by_key(|r| r.id);
    assert_eq!(
        (replies[0].id, replies[0].status, &replies[0].body[..]),
        (11, ReplyStatus::Ok, &b"fps=30"[..])
    );
    assert_eq!(
        (replies[1].id, replies[1].status),
        (12, ReplyStatus::UnknownDevice)
    );
    assert_eq!(
        (replies[2].id, replies[2].status),
        (13, ReplyStatus::Timeout)
    );
    hub.stop().await;
}
