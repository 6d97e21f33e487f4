//! A camera: a frame source published as a live stream, answering commands as the device of the
//! same name. `framewire stream` runs one; `framewire demo` runs two next to a hub.
//!
//! Three parts: the capture thread ([`feed`]) pulls frames and hands them to the publisher, the
//! [`Publisher`] sends them (newest only, reconnecting by itself), and this module's loop answers
//! device commands ([`device`]) and prints figures until the camera has to stop.

mod device;
mod feed;

use std::ffi::OsString;
use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use framewire_client::{ConnectOptions, FrameSink, PublishOptions, Publisher};
use framewire_media::SourceSpec;

pub use feed::paces_itself;

use crate::format;
use device::Device;
use feed::{Feed, Finished, Request, Settings, Shared};

/// How often the figure line is printed.
const FIGURES_EVERY: Duration = Duration::from_secs(5);
/// How long the last frame of `--frames N` (or of a finished file) may take to be acknowledged.
const LAST_ACK_WAIT: Duration = Duration::from_secs(10);

/// Everything a camera needs to know.
#[derive(Debug, Clone)]
pub struct CameraOptions {
    /// Hub address.
    pub server: String,
    /// How to connect; `name` is also the stream's and the device's name.
    pub connect: ConnectOptions,
    /// Where frames come from.
    pub source: SourceSpec,
    /// Frames per second (see [`Settings::fps`]).
    pub fps: Option<f64>,
    /// JPEG quality for frames this side encodes.
    pub quality: u8,
    /// The hub drops frames older than this on arrival (0: no limit).
    pub max_latency_ms: u32,
    /// Stop after this many frames.
    pub frames: Option<u64>,
    /// Program that answers commands the camera does not know.
    pub on_command: Option<OsString>,
    /// Print a figure line every few seconds (stderr).
    pub figures: bool,
}

/// Why a camera stopped, all of them normal ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// `--frames N` were published and the last one acknowledged.
    Frames,
    /// The source ended (an MJPEG file or pipe) and the last frame was acknowledged.
    EndOfSource,
    /// A `stop` command.
    StopCommand,
    /// The `shutdown` future completed (a signal).
    Shutdown,
}

/// Runs the camera until its source ends, `--frames` is reached, a `stop` command arrives or
/// `shutdown` completes.
///
/// # Errors
/// The source cannot be opened or fails for good, the hub cannot be reached at start (later
/// losses are ridden out), or the last frame is not acknowledged in time.
pub async fn run(opts: CameraOptions, shutdown: impl Future<Output = ()>) -> anyhow::Result<Ended> {
    let name = opts.connect.name.clone();
    let settings = Settings {
        fps: opts.fps,
        quality: opts.quality,
        paused: false,
    };
    let feed = {
        let (spec, quality, fps) = (opts.source.clone(), opts.quality, opts.fps);
        tokio::task::spawn_blocking(move || Feed::open(&spec, quality, fps))
            .await
            .context("the source's thread failed")?
            .with_context(|| format!("cannot open source {}", opts.source))?
    };
    let mut publisher = Publisher::connect(
        &opts.server,
        opts.connect.clone(),
        PublishOptions {
            stream: name.clone(),
            max_latency_ms: opts.max_latency_ms,
            in_flight: 2,
            device: true,
        },
    )
    .await?;
    let mut commands = publisher
        .commands()
        .context("the publisher takes no commands")?;
    let sink = publisher.sink();
    let shared = Arc::new(Shared::new(settings));
    let (requests, requests_rx) = std::sync::mpsc::channel();
    let mut capture = {
        let (shared, sink, frames) = (Arc::clone(&shared), sink.clone(), opts.frames);
        tokio::task::spawn_blocking(move || feed::run(feed, &shared, &requests_rx, &sink, frames))
    };
    let device = Arc::new(Device::new(
        &opts,
        Arc::clone(&shared),
        requests.clone(),
        sink.clone(),
    ));

    let mut figures = Figures::new(&name, &sink);
    let mut tick = tokio::time::interval(FIGURES_EVERY);
    tick.tick().await;
    tokio::pin!(shutdown);
    let finished = loop {
        tokio::select! {
            f = &mut capture => break f.context("the capture thread failed")?,
            Some(c) = commands.recv() => {
                let device = Arc::clone(&device);
                tokio::spawn(async move { device.handle(c).await });
            }
            _ = device.stop_requested() => break Finished::Stopped,
            _ = tick.tick(), if opts.figures => eprintln!("{}", figures.line()),
            _ = &mut shutdown => break Finished::Stopped,
        }
    };
    shared.stop.store(true, Relaxed);
    let _ = requests.send(Request::Wake);

    let ended = match finished {
        Finished::Failed(e) => {
            publisher.close(Duration::ZERO).await;
            return Err(e).context(format!("source {} failed", opts.source));
        }
        Finished::Frames | Finished::EndOfSource => {
            let last = shared.last_seq.load(Relaxed);
            let acked = wait_for_ack(&sink, last).await;
            publisher.close(Duration::ZERO).await;
            anyhow::ensure!(
                acked,
                "the hub did not acknowledge the last frame within {}",
                format::seconds(LAST_ACK_WAIT)
            );
            if matches!(finished, Finished::Frames) {
                Ended::Frames
            } else {
                Ended::EndOfSource
            }
        }
        Finished::Stopped => {
            // Send what is pending, and the `stop` command's answer, then hang up.
            publisher.close(Duration::from_millis(500)).await;
            if device.stop_was_requested() {
                Ended::StopCommand
            } else {
                Ended::Shutdown
            }
        }
    };
    if opts.figures {
        eprintln!("{}", figures.summary());
    }
    Ok(ended)
}

/// Waits until the hub acknowledged frame `seq` (true), or gives up after [`LAST_ACK_WAIT`].
async fn wait_for_ack(sink: &FrameSink, seq: u64) -> bool {
    let deadline = Instant::now() + LAST_ACK_WAIT;
    while sink.stats().last_acked_seq < seq {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// The periodic figure line: rates since the previous line.
struct Figures {
    name: String,
    sink: FrameSink,
    started: Instant,
    at: Instant,
    sent: u64,
}

impl Figures {
    fn new(name: &str, sink: &FrameSink) -> Figures {
        Figures {
            name: name.to_owned(),
            sink: sink.clone(),
            started: Instant::now(),
            at: Instant::now(),
            sent: 0,
        }
    }

    /// `cam: 29.9 fps sent, 3 skipped, rtt 0.214 ms` (+ `, reconnecting: why` while the hub is away).
    fn line(&mut self) -> String {
        let s = self.sink.stats();
        let now = Instant::now();
        let fps = (s.sent - self.sent) as f64 / (now - self.at).as_secs_f64().max(1e-3);
        (self.at, self.sent) = (now, s.sent);
        let mut line = format!(
            "{}: {fps:.1} fps sent, {} skipped, rtt {}",
            self.name,
            s.skipped,
            format::millis(Duration::from_micros(s.link.rtt_us.max(0) as u64))
        );
        if !s.link.connected {
            let why = s
                .link
                .last_error
                .unwrap_or_else(|| "connection lost".into());
            line.push_str(&format!(", reconnecting ({why})"));
        }
        line
    }

    /// `cam: published 300 frames in 10.01 s (sent 298, skipped 2, acknowledged 298, 1 reconnect)`
    fn summary(&self) -> String {
        let s = self.sink.stats();
        format!(
            "{}: published {} frames in {} (sent {}, skipped {}, acknowledged {}, reconnects {})",
            self.name,
            s.published,
            format::seconds(self.started.elapsed()),
            s.sent,
            s.skipped,
            s.acked,
            s.link.reconnects
        )
    }
}
