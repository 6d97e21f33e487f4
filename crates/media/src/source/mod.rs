//! Where frames come from: one blocking trait, several implementations.
//!
//! `framewire stream` must not care whether frames come from a camera, a folder, a pipe or a test
//! pattern, so each is a [`FrameSource`] that hands out one JPEG at a time. Sources block (a
//! camera waits for its sensor, a pipe for its writer), so callers run them on a blocking thread.
//! Sources that can produce frames faster than real time (synthetic, folder, file) are not paced:
//! wrap them in [`Paced`] for a fixed rate. A [`SourceSpec`] parses the command-line form
//! (`synthetic`, `dir:PATH`, `mjpeg:FILE`, `mjpeg:-`, `v4l2:/dev/videoN`).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::image::ImageError;
use crate::jpeg::JpegError;
use crate::mjpeg::MjpegError;

mod dir;
mod font;
mod mjpeg;
mod synthetic;
#[cfg(feature = "v4l2")]
mod v4l2;

#[cfg(all(feature = "v4l2", not(target_os = "linux")))]
compile_error!("the `v4l2` feature needs Linux (Video4Linux2 is a Linux kernel API)");

pub use dir::DirSource;
pub use mjpeg::MjpegSource;
pub use synthetic::Synthetic;
#[cfg(feature = "v4l2")]
pub use v4l2::{V4l2Config, V4l2Source};

/// One frame: a complete JPEG and its dimensions.
#[derive(Clone, PartialEq, Eq)]
pub struct SourceFrame {
    /// The JPEG file bytes, SOI to EOI.
    pub jpeg: Bytes,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl fmt::Debug for SourceFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the bytes: a frame is hundreds of kilobytes.
        f.debug_struct("SourceFrame")
            .field("jpeg_len", &self.jpeg.len())
            .field("width", &self.width)
            .field("height", &self.height)
            .finish()
    }
}

/// A blocking producer of JPEG frames.
pub trait FrameSource {
    /// Blocks until the next frame is ready and returns it.
    ///
    /// # Errors
    /// [`SourceError::End`] once the source is exhausted (and on every call after). Errors for
    /// which [`SourceError::is_recoverable`] is true concern one frame or file: calling again
    /// moves on to the next.
    fn next_frame(&mut self) -> Result<SourceFrame, SourceError>;
}

impl<S: FrameSource + ?Sized> FrameSource for Box<S> {
    fn next_frame(&mut self) -> Result<SourceFrame, SourceError> {
        (**self).next_frame()
    }
}

/// Why a source produced no frame.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source has no more frames: an MJPEG reader reached the end of its input.
    #[error("end of source")]
    End,
    /// Reading a file, folder, stream or device failed.
    #[error("{context}")]
    Io {
        /// What was being done, e.g. `reading /srv/frames/a.png`.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A folder source's folder holds no `.jpg`, `.jpeg` or `.png` files.
    #[error("no JPEG or PNG files in {}", path.display())]
    EmptyDir {
        /// The folder.
        path: PathBuf,
    },
    /// One image in a folder could not be used; the next call moves on to the next file.
    #[error("cannot use {}", path.display())]
    Image {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: ImageError,
    },
    /// A frame could not be probed, or pixels could not be encoded.
    #[error(transparent)]
    Jpeg(#[from] JpegError),
    /// A camera's YUYV frame could not be converted (a short buffer, usually).
    #[error(transparent)]
    Yuv(#[from] crate::yuv::YuvError),
    /// The MJPEG splitter dropped a broken, truncated or oversized frame; the source goes on.
    #[error(transparent)]
    Mjpeg(#[from] MjpegError),
    /// A source description (as given on the command line) could not be parsed.
    #[error("invalid source {spec:?}: {reason}")]
    InvalidSpec {
        /// The text given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The source kind needs a cargo feature this build was compiled without.
    #[error("cannot open a {kind} source: built without the {feature} feature (enable the `{feature}` cargo feature)")]
    FeatureDisabled {
        /// The source kind, e.g. `v4l2`.
        kind: &'static str,
        /// The cargo feature that enables it.
        feature: &'static str,
    },
    /// A capture device cannot be used as asked (not a camera, no usable pixel format, ...).
    #[error("{}: {message}", device.display())]
    Device {
        /// The device node, e.g. `/dev/video0`.
        device: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A capture device delivered no frame in time.
    #[error("{}: no frame within {after:?}", device.display())]
    Timeout {
        /// The device node.
        device: PathBuf,
        /// How long was waited.
        after: Duration,
    },
}

impl SourceError {
    /// Whether the error concerns only one frame or file, so calling
    /// [`FrameSource::next_frame`] again is worthwhile (log it and go on). `false` means the source
    /// is finished or unusable.
    pub fn is_recoverable(&self) -> bool {
        matches!(
            self,
            SourceError::Image { .. }
                | SourceError::Jpeg(_)
                | SourceError::Mjpeg(_)
                | SourceError::Yuv(_)
                | SourceError::Timeout { .. }
        )
    }

    fn io(context: impl Into<String>, source: std::io::Error) -> SourceError {
        SourceError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Default JPEG quality for sources that encode (synthetic, PNG files, YUYV cameras).
pub const DEFAULT_QUALITY: u8 = 80;

/// Default size of the synthetic pattern.
pub const DEFAULT_SYNTHETIC_SIZE: (u32, u32) = (640, 480);

/// Default capture size asked of a V4L2 camera (the driver picks the nearest it supports).
pub const DEFAULT_CAPTURE_SIZE: (u32, u32) = (1280, 720);

/// A source as written on a command line.
///
/// | text | source |
/// |---|---|
/// | `synthetic`, `synthetic:1280x720` | [`Synthetic`] (default 640×480) |
/// | `dir:PATH` | [`DirSource`] |
/// | `mjpeg:FILE` | [`MjpegSource`] reading the file |
/// | `mjpeg:-` | [`MjpegSource`] reading standard input |
/// | `v4l2:/dev/video0`, `v4l2:/dev/video0@1920x1080` | `V4l2Source` (feature `v4l2`; default 1280×720) |
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// The moving test pattern.
    Synthetic {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// The images of a folder, looping.
    Dir(PathBuf),
    /// Concatenated JPEGs from a file.
    Mjpeg(PathBuf),
    /// Concatenated JPEGs from standard input.
    MjpegStdin,
    /// A V4L2 capture device.
    V4l2 {
        /// Device node, e.g. `/dev/video0`.
        device: PathBuf,
        /// Requested width (the driver may pick another).
        width: u32,
        /// Requested height.
        height: u32,
    },
}

impl SourceSpec {
    /// Parses the command-line form (see the table on [`SourceSpec`]).
    ///
    /// # Errors
    /// [`SourceError::InvalidSpec`] saying what is wrong.
    pub fn parse(spec: &str) -> Result<SourceSpec, SourceError> {
        let invalid = |reason: &str| SourceError::InvalidSpec {
            spec: spec.to_owned(),
            reason: reason.to_owned(),
        };
        let (kind, arg) = match spec.split_once(':') {
            Some((kind, arg)) => (kind, Some(arg)),
            None => (spec, None),
        };
        match (kind, arg) {
            ("synthetic", None) => {
                let (width, height) = DEFAULT_SYNTHETIC_SIZE;
                Ok(SourceSpec::Synthetic { width, height })
            }
            ("synthetic", Some(size)) => {
                let (width, height) = parse_size(size).ok_or_else(|| {
                    invalid("expected synthetic or synthetic:WIDTHxHEIGHT, e.g. synthetic:1280x720")
                })?;
                Ok(SourceSpec::Synthetic { width, height })
            }
            ("dir", Some(path)) if !path.is_empty() => Ok(SourceSpec::Dir(path.into())),
            ("mjpeg", Some("-")) => Ok(SourceSpec::MjpegStdin),
            ("mjpeg", Some(path)) if !path.is_empty() => Ok(SourceSpec::Mjpeg(path.into())),
            ("v4l2", Some(arg)) if !arg.is_empty() => {
                let (device, (width, height)) = match arg.rsplit_once('@') {
                    Some((device, size)) => (
                        device,
                        parse_size(size).ok_or_else(|| {
                            invalid(
                                "expected v4l2:DEVICE@WIDTHxHEIGHT, e.g. v4l2:/dev/video0@1280x720",
                            )
                        })?,
                    ),
                    None => (arg, DEFAULT_CAPTURE_SIZE),
                };
                Ok(SourceSpec::V4l2 {
                    device: device.into(),
                    width,
                    height,
                })
            }
            ("dir" | "mjpeg" | "v4l2", _) => Err(invalid(&format!(
                "{kind} needs an argument: {}",
                match kind {
                    "dir" => "dir:PATH",
                    "mjpeg" => "mjpeg:FILE or mjpeg:- for standard input",
                    _ => "v4l2:/dev/videoN",
                }
            ))),
            _ => Err(invalid(
                "expected synthetic[:WxH], dir:PATH, mjpeg:FILE, mjpeg:- or v4l2:/dev/videoN",
            )),
        }
    }

    /// Opens the source; sources that encode use JPEG `quality` (1..=100).
    ///
    /// # Errors
    /// Whatever opening that kind of source reports, e.g. [`SourceError::EmptyDir`],
    /// [`SourceError::Io`] for a missing file, or [`SourceError::FeatureDisabled`] for `v4l2` in a
    /// build without that feature.
    pub fn open(&self, quality: u8) -> Result<Box<dyn FrameSource + Send>, SourceError> {
        Ok(match self {
            SourceSpec::Synthetic { width, height } => {
                Box::new(Synthetic::new(*width, *height, quality)?)
            }
            SourceSpec::Dir(path) => Box::new(DirSource::new(path)?.with_quality(quality)?),
            SourceSpec::Mjpeg(path) => Box::new(MjpegSource::open(path)?),
            SourceSpec::MjpegStdin => Box::new(MjpegSource::new(std::io::stdin())),
            #[cfg(feature = "v4l2")]
            SourceSpec::V4l2 {
                device,
                width,
                height,
            } => Box::new(V4l2Source::open(
                device,
                &V4l2Config {
                    width: *width,
                    height: *height,
                    quality,
                    ..V4l2Config::default()
                },
            )?),
            #[cfg(not(feature = "v4l2"))]
            SourceSpec::V4l2 { .. } => {
                return Err(SourceError::FeatureDisabled {
                    kind: "v4l2",
                    feature: "v4l2",
                })
            }
        })
    }
}

/// Parses and opens a source in one step, encoding at [`DEFAULT_QUALITY`] where needed.
///
/// ```
/// let mut source = framewire_media::source::open("synthetic:320x240").unwrap();
/// let frame = source.next_frame().unwrap();
/// assert_eq!((frame.width, frame.height), (320, 240));
/// ```
///
/// # Errors
/// As [`SourceSpec::parse`] and [`SourceSpec::open`].
pub fn open(spec: &str) -> Result<Box<dyn FrameSource + Send>, SourceError> {
    SourceSpec::parse(spec)?.open(DEFAULT_QUALITY)
}

impl FromStr for SourceSpec {
    type Err = SourceError;

    fn from_str(s: &str) -> Result<SourceSpec, SourceError> {
        SourceSpec::parse(s)
    }
}

impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceSpec::Synthetic { width, height } => write!(f, "synthetic:{width}x{height}"),
            SourceSpec::Dir(path) => write!(f, "dir:{}", path.display()),
            SourceSpec::Mjpeg(path) => write!(f, "mjpeg:{}", path.display()),
            SourceSpec::MjpegStdin => f.write_str("mjpeg:-"),
            SourceSpec::V4l2 {
                device,
                width,
                height,
            } => write!(f, "v4l2:{}@{width}x{height}", device.display()),
        }
    }
}

/// `WIDTHxHEIGHT` with both sides non-zero.
fn parse_size(text: &str) -> Option<(u32, u32)> {
    let (w, h) = text.split_once(['x', 'X'])?;
    let (w, h) = (w.parse().ok()?, h.parse().ok()?);
    (w > 0 && h > 0).then_some((w, h))
}

/// Paces another source to a fixed frame rate by sleeping before each frame.
///
/// Frames are due at a fixed interval from the first; a source that falls behind (slow
/// encoding, a slow disk) is not made to catch up in a burst: the schedule restarts from now.
#[derive(Debug)]
pub struct Paced<S> {
    inner: S,
    interval: Duration,
    next_due: Option<Instant>,
}

impl<S: FrameSource> Paced<S> {
    /// Paces `inner` to `fps` frames per second.
    ///
    /// # Errors
    /// [`SourceError::InvalidSpec`] unless `fps` is finite and in 0.001..=1000.
    pub fn new(inner: S, fps: f64) -> Result<Paced<S>, SourceError> {
        if !(0.001..=1000.0).contains(&fps) {
            return Err(SourceError::InvalidSpec {
                spec: fps.to_string(),
                reason: "frame rate must be between 0.001 and 1000 per second".into(),
            });
        }
        Ok(Paced {
            inner,
            interval: Duration::from_secs_f64(1.0 / fps),
            next_due: None,
        })
    }

    /// The paced source.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: FrameSource> FrameSource for Paced<S> {
    fn next_frame(&mut self) -> Result<SourceFrame, SourceError> {
        let now = Instant::now();
        let due = match self.next_due {
            Some(due) if due > now => {
                std::thread::sleep(due - now);
                due
            }
            Some(due) if now - due < self.interval => due,
            _ => now,
        };
        self.next_due = Some(due + self.interval);
        self.inner.next_frame()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_print_back() {
        let cases = [
            ("synthetic", "synthetic:640x480"),
            ("synthetic:1280x720", "synthetic:1280x720"),
            ("dir:/srv/frames", "dir:/srv/frames"),
            ("dir:C:/frames", "dir:C:/frames"),
            ("mjpeg:cam.mjpeg", "mjpeg:cam.mjpeg"),
            ("mjpeg:-", "mjpeg:-"),
            ("v4l2:/dev/video0", "v4l2:/dev/video0@1280x720"),
            ("v4l2:/dev/video2@1920x1080", "v4l2:/dev/video2@1920x1080"),
        ];
        for (text, printed) in cases {
            let spec: SourceSpec = text.parse().unwrap();
            assert_eq!(spec.to_string(), printed, "{text}");
            assert_eq!(SourceSpec::parse(printed).unwrap(), spec, "{printed}");
        }
    }

    #[test]
    fn bad_specs_say_what_is_expected() {
        for text in [
            "",
            "camera",
            "dir",
            "dir:",
            "mjpeg",
            "synthetic:big",
            "synthetic:0x10",
            "v4l2",
            "v4l2:/dev/video0@wide",
        ] {
            let err = SourceSpec::parse(text).unwrap_err();
            assert!(
                matches!(err, SourceError::InvalidSpec { .. }),
                "{text}: {err}"
            );
            assert!(err.to_string().contains("expected") || err.to_string().contains("needs"));
        }
    }

    #[cfg(not(feature = "v4l2"))]
    #[test]
    fn v4l2_without_the_feature_says_so() {
        let err = open("v4l2:/dev/video0").err().expect("must fail");
        assert!(matches!(err, SourceError::FeatureDisabled { .. }));
        assert!(
            err.to_string().contains("built without the v4l2 feature"),
            "{err}"
        );
        assert!(!err.is_recoverable());
    }

    #[test]
    fn open_builds_each_kind() {
        let mut synthetic = open("synthetic:64x48").unwrap();
        let frame = synthetic.next_frame().unwrap();
        assert_eq!((frame.width, frame.height), (64, 48));

        let dir = tempfile::tempdir().unwrap();
        let jpeg = crate::test_images::small_jpeg(20, 10, 1);
        std::fs::write(dir.path().join("a.jpg"), &jpeg).unwrap();
        let mut source = open(&format!("dir:{}", dir.path().display())).unwrap();
        assert_eq!(source.next_frame().unwrap().jpeg, jpeg);

        let file = dir.path().join("stream.mjpeg");
        std::fs::write(&file, [&jpeg[..], &jpeg].concat()).unwrap();
        let mut source = open(&format!("mjpeg:{}", file.display())).unwrap();
        assert_eq!(source.next_frame().unwrap().jpeg, jpeg);
        assert_eq!(source.next_frame().unwrap().jpeg, jpeg);
        assert!(matches!(source.next_frame(), Err(SourceError::End)));

        let err = open("mjpeg:/nonexistent/stream.mjpeg").err().unwrap();
        assert!(matches!(err, SourceError::Io { .. }), "{err}");
        assert!(
            err.to_string().contains("/nonexistent/stream.mjpeg"),
            "{err}"
        );
    }

    /// Counts frames; never ends.
    struct Counter(u32);

    impl FrameSource for Counter {
        fn next_frame(&mut self) -> Result<SourceFrame, SourceError> {
            self.0 += 1;
            Ok(SourceFrame {
                jpeg: Bytes::new(),
                width: self.0,
                height: 1,
            })
        }
    }

    #[test]
    fn paced_source_keeps_the_rate() {
        let mut paced = Paced::new(Counter(0), 100.0).unwrap();
        let start = Instant::now();
        for _ in 0..11 {
            paced.next_frame().unwrap();
        }
        let elapsed = start.elapsed();
        // 10 intervals of 10 ms after the first frame; generous upper bound for a loaded CI.
        assert!(elapsed >= Duration::from_millis(100), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(1000), "{elapsed:?}");
        assert_eq!(paced.into_inner().0, 11);
        assert!(Paced::new(Counter(0), 0.0).is_err());
        assert!(Paced::new(Counter(0), f64::NAN).is_err());
    }
}
