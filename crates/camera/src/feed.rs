//! The capture thread: takes frames from a source at the rate asked for and hands each one to the
//! publisher, which never queues them (the newest replaces one not yet sent).
//!
//! Sources block (a camera waits for its sensor, a pipe for its writer), so this runs on a
//! blocking thread. The async side changes its settings (`pause`, `set fps`...) through
//! [`Shared`] and wakes it with a [`Request`]; `capture` of the synthetic pattern is served here
//! because only this thread owns the pattern.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use framewire_client::FrameSink;
use framewire_media::source::{DirSource, Synthetic};
use framewire_media::{FrameSource, SourceError, SourceFrame, SourceSpec};
use tokio::sync::oneshot;

/// JPEG quality of a `capture` of the synthetic pattern.
pub(crate) const CAPTURE_QUALITY: u8 = 95;

/// What the device commands can change while the camera runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Settings {
    /// Frames per second: the pace for sources that do not pace themselves, a cap for those that
    /// do (`None`: the source's own rate).
    pub fps: Option<f64>,
    /// JPEG quality for frames this side encodes (synthetic, PNG files).
    pub quality: u8,
    /// No frames are published while paused.
    pub paused: bool,
}

/// State shared by the capture thread and the async side.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Current settings; the thread reads them before every frame.
    pub settings: Mutex<Settings>,
    /// The frame last taken from the source (published or not), for `capture`.
    pub latest: Mutex<Option<SourceFrame>>,
    /// Set when the camera is shutting down.
    pub stop: AtomicBool,
    /// Frames handed to the publisher by this thread.
    pub published: AtomicU64,
    /// Sequence number of the last frame handed to the publisher (0: none).
    pub last_seq: AtomicU64,
}

impl Shared {
    /// Fresh state with `settings`.
    pub(crate) fn new(settings: Settings) -> Shared {
        Shared {
            settings: Mutex::new(settings),
            latest: Mutex::new(None),
            stop: AtomicBool::new(false),
            published: AtomicU64::new(0),
            last_seq: AtomicU64::new(0),
        }
    }

    /// The settings now.
    pub(crate) fn settings(&self) -> Settings {
        *self.settings.lock().unwrap()
    }
}

/// A message to the capture thread.
#[derive(Debug)]
pub(crate) enum Request {
    /// Settings changed, or the camera stops: look again now rather than after the current wait.
    Wake,
    /// Re-render the current synthetic frame at [`CAPTURE_QUALITY`].
    Capture(oneshot::Sender<Result<SourceFrame, String>>),
}

/// Why the capture thread ended.
#[derive(Debug)]
pub(crate) enum Finished {
    /// [`CameraOptions::frames`](crate::CameraOptions::frames) frames were published.
    Frames,
    /// The source has no more frames (end of an MJPEG file or pipe).
    EndOfSource,
    /// [`Shared::stop`] was set.
    Stopped,
    /// The source failed for good.
    Failed(SourceError),
}

/// An open source, in the form the capture thread needs.
pub(crate) enum Feed {
    /// The test pattern, drawn here so that quality can change and `capture` can re-render.
    Synthetic(Box<Pattern>),
    /// A folder; reopened (from its first file) when the quality changes.
    Dir {
        /// The folder.
        path: PathBuf,
        /// Its source, at `quality`.
        source: DirSource,
        /// The quality it encodes PNGs at.
        quality: u8,
    },
    /// Anything else; frames pass through as they are.
    Other {
        /// The source.
        source: Box<dyn FrameSource + Send>,
        /// Whether it delivers frames at its own pace (a camera, a pipe).
        paces_itself: bool,
    },
}

/// The synthetic pattern with its own frame counter.
pub(crate) struct Pattern {
    pattern: Synthetic,
    quality: u8,
    next_number: u64,
    /// Frame number and time of the frame last drawn, to draw it again for `capture`.
    last: Option<(u64, SystemTime)>,
    /// The same pattern at [`CAPTURE_QUALITY`], made on the first `capture`.
    capture: Option<Synthetic>,
}

impl Pattern {
    fn next_frame(&mut self, quality: u8) -> Result<SourceFrame, SourceError> {
        if quality != self.quality {
            self.pattern = Synthetic::new(self.pattern.width(), self.pattern.height(), quality)?;
            self.quality = quality;
        }
        let (number, now) = (self.next_number, SystemTime::now());
        let frame = self.pattern.render(number, now)?;
        self.next_number += 1;
        self.last = Some((number, now));
        Ok(frame)
    }

    fn capture(&mut self) -> Result<SourceFrame, SourceError> {
        let hq = match &mut self.capture {
            Some(hq) => hq,
            None => self.capture.insert(Synthetic::new(
                self.pattern.width(),
                self.pattern.height(),
                CAPTURE_QUALITY,
            )?),
        };
        let (number, time) = self.last.unwrap_or((self.next_number, SystemTime::now()));
        hq.render(number, time)
    }
}

/// Whether `spec` delivers frames at its own pace ([`CameraOptions::fps`](crate::CameraOptions::fps) then only caps it).
pub fn paces_itself(spec: &SourceSpec) -> bool {
    matches!(spec, SourceSpec::MjpegStdin | SourceSpec::V4l2 { .. })
}

impl Feed {
    /// Opens `spec`; `fps` is asked of a camera. Blocks (a camera takes a moment to open).
    ///
    /// # Errors
    /// Whatever opening the source reports.
    #[cfg_attr(not(feature = "v4l2"), allow(unused_variables))]
    pub(crate) fn open(
        spec: &SourceSpec,
        quality: u8,
        fps: Option<f64>,
    ) -> Result<Feed, SourceError> {
        Ok(match spec {
            SourceSpec::Synthetic { width, height } => Feed::Synthetic(Box::new(Pattern {
                pattern: Synthetic::new(*width, *height, quality)?,
                quality,
                next_number: 0,
                last: None,
                capture: None,
            })),
            SourceSpec::Dir(path) => Feed::Dir {
                path: path.clone(),
                source: DirSource::new(path)?.with_quality(quality)?,
                quality,
            },
            #[cfg(feature = "v4l2")]
            SourceSpec::V4l2 {
                device,
                width,
                height,
            } => {
                use framewire_media::source::{V4l2Config, V4l2Source};
                let config = V4l2Config {
                    width: *width,
                    height: *height,
                    fps: fps.map_or(0, |f| f.round().max(1.0) as u32),
                    quality,
                    ..V4l2Config::default()
                };
                Feed::Other {
                    source: Box::new(V4l2Source::open(device, &config)?),
                    paces_itself: true,
                }
            }
            other => Feed::Other {
                source: other.open(quality)?,
                paces_itself: paces_itself(other),
            },
        })
    }

    fn paces_itself(&self) -> bool {
        matches!(
            self,
            Feed::Other {
                paces_itself: true,
                ..
            }
        )
    }

    fn next_frame(&mut self, quality: u8) -> Result<SourceFrame, SourceError> {
        match self {
            Feed::Synthetic(p) => p.next_frame(quality),
            Feed::Dir {
                path,
                source,
                quality: current,
            } => {
                if quality != *current {
                    *source = DirSource::new(&*path)?.with_quality(quality)?;
                    *current = quality;
                }
                source.next_frame()
            }
            Feed::Other { source, .. } => source.next_frame(),
        }
    }
}

/// Runs the capture loop until the source ends, `frames` frames were published, or
/// [`Shared::stop`] is set.
pub(crate) fn run(
    mut feed: Feed,
    shared: &Shared,
    requests: &Receiver<Request>,
    sink: &FrameSink,
    frames: Option<u64>,
) -> Finished {
    let live = feed.paces_itself();
    // When the last frame was due (paced sources) or went out (capped live ones).
    let mut last_sent: Option<Instant> = None;
    let mut complained = 0u64;
    loop {
        if shared.stop.load(Relaxed) {
            return Finished::Stopped;
        }
        if frames.is_some_and(|n| shared.published.load(Relaxed) >= n) {
            return Finished::Frames;
        }
        let settings = shared.settings();
        if live {
            while let Ok(r) = requests.try_recv() {
                serve(&mut feed, r);
            }
        } else {
            // Wait for the frame's turn (paused: for a change), serving requests meanwhile, then
            // look at everything again.
            let now = Instant::now();
            let due = match (settings.paused, settings.fps, last_sent) {
                (true, _, _) => None,
                (false, Some(fps), Some(at)) => Some(at + Duration::from_secs_f64(1.0 / fps)),
                (false, _, _) => Some(now),
            };
            if due.is_none_or(|due| due > now) {
                let request = match due {
                    None => requests.recv().map_err(|_| RecvTimeoutError::Disconnected),
                    Some(due) => requests.recv_timeout(due - now),
                };
                match request {
                    Ok(r) => serve(&mut feed, r),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return Finished::Stopped,
                }
                continue;
            }
        }
        let frame = match feed.next_frame(settings.quality) {
            Ok(f) => f,
            Err(SourceError::End) => return Finished::EndOfSource,
            Err(e) if e.is_recoverable() => {
                // One bad frame or file: say so (not for every frame of a broken stream) and go on.
                complained += 1;
                if complained.is_power_of_two() {
                    tracing::warn!("skipping a frame: {e}");
                }
                continue;
            }
            Err(e) => return Finished::Failed(e),
        };
        *shared.latest.lock().unwrap() = Some(frame.clone());
        if shared.stop.load(Relaxed) {
            return Finished::Stopped;
        }
        let now = Instant::now();
        // Look again: a camera's frame may have taken long to come, and a `pause` answered while
        // this frame was being made must hold for it too.
        let settings = shared.settings();
        if settings.paused {
            continue;
        }
        if live {
            let early = match (settings.fps, last_sent) {
                // A little slack, so a 30 fps camera capped at 30 fps is not halved by jitter.
                (Some(fps), Some(at)) => now - at < Duration::from_secs_f64(0.9 / fps),
                _ => false,
            };
            if early {
                continue;
            }
            last_sent = Some(now);
        } else {
            last_sent = Some(match (settings.fps, last_sent) {
                // Keep the schedule unless it fell more than a frame behind; then restart it.
                (Some(fps), Some(at)) => {
                    let due = at + Duration::from_secs_f64(1.0 / fps);
                    if now.saturating_duration_since(due) < Duration::from_secs_f64(1.0 / fps) {
                        due
                    } else {
                        now
                    }
                }
                _ => now,
            });
        }
        let seq = sink.publish_jpeg(frame.jpeg, frame.width, frame.height);
        shared.last_seq.store(seq, Relaxed);
        shared.published.fetch_add(1, Relaxed);
    }
}

fn serve(feed: &mut Feed, request: Request) {
    match request {
        Request::Wake => {}
        Request::Capture(reply) => {
            let result = match feed {
                Feed::Synthetic(p) => p.capture().map_err(|e| e.to_string()),
                _ => Err("only the synthetic source re-renders captures".into()),
            };
            let _ = reply.send(result);
        }
    }
}
