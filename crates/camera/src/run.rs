//! The camera's loop: opens the source, starts the publisher and the capture thread, answers
//! device commands and prints figures until the camera has to stop, then hangs up cleanly.

use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use framewire_client::{FrameSink, PublishOptions, Publisher};

use crate::device::Device;
use crate::feed::{self, Feed, Finished, Request, Settings, Shared};
use crate::figures::Figures;
use crate::{CameraError, CameraOptions, Ended};

/// How often the figure line is printed.
const FIGURES_EVERY: Duration = Duration::from_secs(5);
/// How long the last frame of [`CameraOptions::frames`] (or of a finished file) may take to be
/// acknowledged.
const LAST_ACK_WAIT: Duration = Duration::from_secs(10);
/// How long a stopping camera may take to send what is pending (and a `stop` command's answer).
const STOP_WAIT: Duration = Duration::from_millis(500);

/// Runs the camera until its source ends, [`CameraOptions::frames`] is reached, a `stop` command
/// arrives or `shutdown` completes.
///
/// # Errors
/// [`CameraError::OpenSource`] or [`CameraError::SourceFailed`] if the source cannot be opened or
/// fails for good, [`CameraError::Hub`] if the hub cannot be reached at start (later losses are
/// ridden out), [`CameraError::LastFrameNotAcknowledged`] if the last frame is not acknowledged in
/// time.
pub async fn run(
    opts: CameraOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<Ended, CameraError> {
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
            .map_err(|error| CameraError::Thread {
                what: "the source's thread",
                error,
            })?
            .map_err(|error| CameraError::OpenSource {
                spec: opts.source.clone(),
                error,
            })?
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
        .expect("a publisher with `device: true` hands out its commands once");
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

    let mut figures = Figures::new(&name);
    let mut tick = tokio::time::interval(FIGURES_EVERY);
    tick.tick().await;
    tokio::pin!(shutdown);
    let finished = loop {
        tokio::select! {
            f = &mut capture => break f.map_err(|error| CameraError::Thread {
                what: "the capture thread",
                error,
            })?,
            Some(c) = commands.recv() => {
                let device = Arc::clone(&device);
                tokio::spawn(async move { device.handle(c).await });
            }
            _ = device.stop_requested() => break Finished::Stopped,
            _ = tick.tick(), if opts.figures => eprintln!("{}", figures.line(sink.stats())),
            _ = &mut shutdown => break Finished::Stopped,
        }
    };
    shared.stop.store(true, Relaxed);
    let _ = requests.send(Request::Wake);

    let ended = match finished {
        Finished::Failed(error) => {
            publisher.close(Duration::ZERO).await;
            return Err(CameraError::SourceFailed {
                spec: opts.source,
                error,
            });
        }
        Finished::Frames | Finished::EndOfSource => {
            let last = shared.last_seq.load(Relaxed);
            let acked = wait_for_ack(&sink, last).await;
            publisher.close(Duration::ZERO).await;
            if !acked {
                return Err(CameraError::LastFrameNotAcknowledged(LAST_ACK_WAIT));
            }
            if matches!(finished, Finished::Frames) {
                Ended::Frames
            } else {
                Ended::EndOfSource
            }
        }
        Finished::Stopped => {
            // Send what is pending, and the `stop` command's answer, then hang up.
            publisher.close(STOP_WAIT).await;
            if device.stop_was_requested() {
                Ended::StopCommand
            } else {
                Ended::Shutdown
            }
        }
    };
    if opts.figures {
        eprintln!("{}", figures.summary(&sink.stats()));
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
