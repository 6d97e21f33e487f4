//! The live-video client API against a real in-process hub: publish and subscribe, device
//! commands, and a hub restart in the middle of a stream that both sides ride out on their own.

use std::time::Duration;

use bytes::Bytes;
use framewire_client::{
    Client, ConnectOptions, PublishOptions, Publisher, ReplyStatus, Subscriber,
};
use framewire_testkit::TestHub;

const T: Duration = Duration::from_secs(20);

fn opts(name: &str) -> ConnectOptions {
    ConnectOptions {
        name: name.into(),
        connect_timeout: Duration::from_secs(2),
        ..ConnectOptions::default()
    }
}

fn jpeg(seq: u8) -> Bytes {
    let mut v = vec![0xff, 0xd8, 0xff];
    v.extend(std::iter::repeat_n(seq, 4999));
    v.extend([0xff, 0xd9]);
    Bytes::from(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_subscribe_and_commands() {
    let hub = TestHub::start().await;
    let addr = hub.addr.to_string();
    let mut sub = Subscriber::connect(&addr, opts("viewer"), "cam")
        .await
        .unwrap();
    let mut publish = PublishOptions::new("cam");
    publish.device = true;
    let mut p = Publisher::connect(&addr, opts("camera"), publish)
        .await
        .unwrap();
    let mut commands = p.commands().expect("a device gets commands");
    let device = tokio::spawn(async move {
        while let Some(c) = commands.recv().await {
            match c.command.as_str() {
                "status" => {
                    let text = format!("ok {}", c.args.join(","));
                    c.ok(text)
                }
                _ => c.reply(
                    ReplyStatus::UnknownCommand,
                    Bytes::from_static(b"unknown command"),
                ),
            }
        }
    });
    // Publish until the subscriber has seen frames; it must get fresh ones, in order.
    let mut got = Vec::new();
    let mut seq = 0u8;
    while got.len() < 5 {
        seq = seq.wrapping_add(1);
        p.publish_jpeg(jpeg(seq), 16, 16);
        if let Ok(Some(f)) = tokio::time::timeout(Duration::from_millis(50), sub.next()).await {
            assert_eq!(f.payload.len(), 5004);
            assert!(f.age_us() < 1_000_000, "age {} µs", f.age_us());
            got.push(f.seq);
        }
        assert!(seq < 250, "subscriber got nothing");
    }
    assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
    // The hub's Subscribed came before the first frame.
    assert_eq!(sub.granted_window(), Some(1));

    let mut c = Client::connect(&addr, opts("ctl")).await.unwrap();
    let r = c
        .command("cam", "status", &["a".into(), "b".into()])
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.text()),
        (ReplyStatus::Ok, "ok a,b".to_string())
    );
    let r = c.command("cam", "dance", &[]).await.unwrap();
    assert_eq!(r.status, ReplyStatus::UnknownCommand);
    let r = c.command("nobody", "status", &[]).await.unwrap();
    assert_eq!(r.status, ReplyStatus::UnknownDevice);
    // The hub's Registered came before the first command.
    assert!(p.registered());

    let stats = p.stats();
    assert!(stats.sent > 0 && stats.link.connected);
    assert!(stats.link.rtt_us < 1_000_000);
    p.close(Duration::from_secs(1)).await;
    sub.close().await;
    device.abort();
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_and_subscriber_ride_out_a_hub_restart() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::builder().data(dir.path()).start().await;
    let addr = hub.addr;
    let a = addr.to_string();
    let mut sub = Subscriber::connect(&a, opts("viewer"), "cam")
        .await
        .unwrap();
    let p = Publisher::connect(&a, opts("camera"), PublishOptions::new("cam"))
        .await
        .unwrap();
    let feed = {
        let p = std::sync::Arc::new(p);
        let p2 = std::sync::Arc::clone(&p);
        let h = tokio::spawn(async move {
            let mut i = 0u8;
            loop {
                i = i.wrapping_add(1);
                p2.publish_jpeg(jpeg(i), 16, 16);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        (p, h)
    };
    let before = tokio::time::timeout(T, sub.next()).await.unwrap().unwrap();

    // The hub goes away and comes back on the same address.
    hub.stop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let hub = TestHub::builder()
        .data(dir.path())
        .listen(addr)
        .start()
        .await;

    // Both reconnect by themselves; frames flow again.
    let after = tokio::time::timeout(T, async {
        loop {
            let f = sub.next().await.unwrap();
            if f.seq > before.seq + 20 {
                return f;
            }
        }
    })
    .await
    .expect("frames flow after the restart");
    assert!(after.age_us() < 1_000_000);
    assert!(sub.link().reconnects >= 1);
    assert!(feed.0.stats().link.reconnects >= 1);
    feed.1.abort();
    sub.close().await;
    hub.stop().await;
}

/// A device that answers `stop` and closes at once: the answer still reaches the caller (the CLI's
/// `framewire cmd cam stop` relies on it), and the sink reports the newest acknowledged frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_given_before_close_is_delivered() {
    let hub = TestHub::start().await;
    let addr = hub.addr.to_string();
    let mut publish = PublishOptions::new("cam");
    publish.device = true;
    let mut p = Publisher::connect(&addr, opts("camera"), publish)
        .await
        .unwrap();
    let mut commands = p.commands().unwrap();
    let sink = p.sink();
    let mut last = 0;
    for i in 1..=3 {
        last = sink.publish_jpeg(jpeg(i), 16, 16);
    }
    tokio::time::timeout(T, async {
        while sink.stats().last_acked_seq < last {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the last frame is acknowledged");

    let device = tokio::spawn(async move {
        let c = commands.recv().await.unwrap();
        assert_eq!(c.command, "stop");
        c.ok("stopping");
        p.close(Duration::ZERO).await;
    });
    // Registration is asynchronous: retry while the hub does not know the device yet.
    let mut c = Client::connect(&addr, opts("ctl")).await.unwrap();
    let r = tokio::time::timeout(T, async {
        loop {
            let r = c.command("cam", "stop", &[]).await.unwrap();
            if r.status != ReplyStatus::UnknownDevice {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!((r.status, r.text()), (ReplyStatus::Ok, "stopping".into()));
    tokio::time::timeout(T, device).await.unwrap().unwrap();
    hub.stop().await;
}
