//! A hub to work on the dashboard with: two fake cameras and a fake device, no hardware.
//!
//! ```text
//! cargo run -p framewire-server --example dev_hub -- <data dir>
//! ```
//!
//! Streams `cam-1` and `cam-2` replay 1920×1080 JPEGs at about 10 fps, published straight into the
//! hub: those of the folder in `FRAMEWIRE_FRAMES`, or else the test kit's 39 generated sample
//! frames. Devices `cam-1`
//! and `cam-2` are a real protocol client on the native port that answers every command with
//! `ok: <command> <args>`. Prints `... listening on ADDR` and the dashboard's `http://.../` URL,
//! then runs until Ctrl-C or SIGTERM.

use std::error::Error;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use framewire_proto::{
    decode, frame_format, Frame, Hello, Message, Pong, RegisterDevice, Reply, ReplyStatus,
    DEFAULT_MAX_PAYLOAD, VERSION,
};
use framewire_server::HubHandle;
use framewire_testkit::TestHub;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

const FPS: u64 = 10;
const STREAMS: [&str; 2] = ["cam-1", "cam-2"];

type AnyResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

#[tokio::main]
async fn main() -> AnyResult<()> {
    let data = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("./framewire-dev-data"));
    let frames_dir = std::env::var_os("FRAMEWIRE_FRAMES")
        .map(PathBuf::from)
        .unwrap_or_else(|| framewire_testkit::frames::sample_frames_dir().to_path_buf());
    let frames = load_jpegs(&frames_dir)?;

    // Before anything is announced, so that a signal sent right after the URLs stops us cleanly.
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;

    let hub = TestHub::builder().data(&data).http().start().await;
    let native_addr = hub.addr;
    let http_addr = hub.http_addr.expect("asked for HTTP");

    let stop = CancellationToken::new();
    for (i, name) in STREAMS.iter().enumerate() {
        tokio::spawn(feed_stream(
            hub.handle.clone(),
            name,
            frames.clone(),
            i * frames.len() / 2,
            stop.clone(),
        ));
    }
    tokio::spawn(fake_device(native_addr, stop.clone()));

    println!(
        "framewire dev hub listening on {native_addr} (data: {}, {} frames from {})",
        data.display(),
        frames.len(),
        frames_dir.display()
    );
    println!("dashboard: http://{http_addr}/");

    tokio::select! {
        _ = sigint.recv() => {},
        _ = sigterm.recv() => {},
    }
    println!("stopping");
    stop.cancel();
    hub.stop().await;
    Ok(())
}

/// Every `*.jpg` of `dir`, by name.
fn load_jpegs(dir: &Path) -> AnyResult<Vec<Bytes>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("jpg") || x.eq_ignore_ascii_case("jpeg"))
        })
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(format!("no JPEG files in {}", dir.display()).into());
    }
    paths
        .iter()
        .map(|p| Ok(Bytes::from(std::fs::read(p)?)))
        .collect()
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Publishes `frames` in a loop into stream `name` at [`FPS`], starting at frame `first`.
async fn feed_stream(
    hub: HubHandle,
    name: &'static str,
    frames: Vec<Bytes>,
    first: usize,
    stop: CancellationToken,
) {
    let Ok(stream) = hub.streams().get_or_create(name, now_us()) else {
        return;
    };
    // A real camera would count itself as the stream's publisher; do the same for the dashboard.
    stream.publishers.fetch_add(1, Relaxed);
    hub.events()
        .emit("stream", "dev_hub", format!("publishing {name}"));
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / FPS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    for seq in 1u64.. {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let now = now_us();
        // Pretend capture and transport took 5–35 ms, so the latency figures have something to show.
        let age = 5_000 + (seq * 7_919 % 30_000) as i64;
        let payload = frames[(first + seq as usize) % frames.len()].clone();
        stream.publish(
            Frame {
                stream: name.to_owned(),
                seq,
                capture_us: now - age,
                format: frame_format::JPEG,
                width: 1920,
                height: 1080,
                payload,
            },
            now,
            0,
        );
    }
    stream.publishers.fetch_sub(1, Relaxed);
}

/// Connects to the hub as devices `cam-1` and `cam-2`, answering every command with
/// `ok: <command> <args>`. Reconnects if the connection drops.
async fn fake_device(addr: SocketAddr, stop: CancellationToken) {
    while !stop.is_cancelled() {
        tokio::select! {
            _ = stop.cancelled() => return,
            r = run_device(addr) => {
                if let Err(e) = r {
                    eprintln!("fake device: {e}; reconnecting");
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

async fn run_device(addr: SocketAddr) -> AnyResult<()> {
    let mut s = TcpStream::connect(addr).await?;
    let mut buf = BytesMut::new();
    send(
        &mut s,
        Message::Hello(Hello {
            version: VERSION,
            name: "dev-camera".into(),
            token: String::new(),
        }),
    )
    .await?;
    match recv(&mut s, &mut buf).await? {
        Message::Welcome(_) => {}
        other => return Err(format!("expected Welcome, got {other:?}").into()),
    }
    for name in STREAMS {
        send(
            &mut s,
            Message::RegisterDevice(RegisterDevice { name: name.into() }),
        )
        .await?;
    }
    loop {
        match recv(&mut s, &mut buf).await? {
            Message::Command(c) => {
                let line = std::iter::once(c.command.as_str())
                    .chain(c.args.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(" ");
                let reply = Reply {
                    id: c.id,
                    status: ReplyStatus::Ok,
                    body: Bytes::from(format!("ok: {line}")),
                };
                send(&mut s, Message::Reply(reply)).await?;
            }
            Message::Ping(p) => {
                let pong = Pong {
                    nonce: p.nonce,
                    ping_time_us: p.time_us,
                    time_us: now_us(),
                };
                send(&mut s, Message::Pong(pong)).await?;
            }
            _ => {}
        }
    }
}

async fn send(s: &mut TcpStream, m: Message) -> AnyResult<()> {
    s.write_all(&m.to_bytes()?).await?;
    Ok(())
}

async fn recv(s: &mut TcpStream, buf: &mut BytesMut) -> AnyResult<Message> {
    loop {
        if let Some(m) = decode(buf, DEFAULT_MAX_PAYLOAD)? {
            return Ok(m);
        }
        if s.read_buf(buf).await? == 0 {
            return Err("the hub closed the connection".into());
        }
    }
}
