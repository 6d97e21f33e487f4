//! A camera for a framewire hub: a frame source published as a live stream, answering commands
//! as the device of the same name. `framewire stream` runs one; `framewire demo` runs two next to
//! a hub; a Rust program can run its own with [`run`].
//!
//! ```no_run
//! use framewire_camera::{CameraOptions, Ended};
//! use framewire_client::ConnectOptions;
//! use framewire_media::SourceSpec;
//!
//! # async fn demo() -> Result<(), framewire_camera::CameraError> {
//! let opts = CameraOptions::new(
//!     "127.0.0.1:7878",
//!     ConnectOptions { name: "cam".into(), ..ConnectOptions::default() },
//!     SourceSpec::Synthetic { width: 640, height: 480 },
//! );
//! let ended = framewire_camera::run(opts, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await?;
//! assert!(matches!(ended, Ended::Shutdown | Ended::StopCommand));
//! # Ok(()) }
//! ```
//!
//! Three parts: the capture thread (`feed.rs`) pulls frames and hands them to the publisher, the
//! [`Publisher`](framewire_client::Publisher) sends them (newest only, reconnecting by itself),
//! and the camera's loop (`run.rs`) answers device commands (`device.rs`: `capture`, `pause`,
//! `resume`, `set fps N`, `set quality Q`, `status`, `stop`, anything else to
//! [`CameraOptions::on_command`]) and prints figures until the camera has to stop.

#![forbid(unsafe_code)]

mod device;
mod error;
mod feed;
mod figures;
mod run;

use std::ffi::OsString;

use framewire_client::ConnectOptions;
use framewire_media::SourceSpec;

pub use error::CameraError;
pub use feed::paces_itself;
pub use run::run;

/// Everything a camera needs to know.
#[derive(Debug, Clone)]
pub struct CameraOptions {
    /// Hub address.
    pub server: String,
    /// How to connect; `name` is also the stream's and the device's name.
    pub connect: ConnectOptions,
    /// Where frames come from.
    pub source: SourceSpec,
    /// Frames per second: the pace for sources that do not pace themselves (see
    /// [`paces_itself`]), a cap for those that do; `None`: as fast as the source goes.
    pub fps: Option<f64>,
    /// JPEG quality for frames this side encodes (synthetic, PNG files).
    pub quality: u8,
    /// The hub drops frames older than this on arrival (0: no limit).
    pub max_latency_ms: u32,
    /// Stop after this many frames (once the hub acknowledged the last one).
    pub frames: Option<u64>,
    /// Program that answers commands the camera does not know: run as `PROGRAM VERB ARGS...`
    /// with `FRAMEWIRE_DEVICE` set to the camera's name; its standard output is the answer
    /// (failed if it exits non-zero).
    pub on_command: Option<OsString>,
    /// Print a figure line every few seconds, and a summary at the end, on standard error.
    pub figures: bool,
}

impl CameraOptions {
    /// A camera publishing `source` to the hub at `server` under `connect.name`: 30 fps for
    /// sources that do not pace themselves, quality 80, no latency limit, no frame limit, no
    /// command program, no figures.
    pub fn new(server: impl Into<String>, connect: ConnectOptions, source: SourceSpec) -> Self {
        let fps = (!paces_itself(&source)).then_some(30.0);
        CameraOptions {
            server: server.into(),
            connect,
            source,
            fps,
            quality: 80,
            max_latency_ms: 0,
            frames: None,
            on_command: None,
            figures: false,
        }
    }
}

/// Why a camera stopped, all of them normal ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// [`CameraOptions::frames`] frames were published and the last one acknowledged.
    Frames,
    /// The source ended (an MJPEG file or pipe) and the last frame was acknowledged.
    EndOfSource,
    /// A `stop` command.
    StopCommand,
    /// The `shutdown` future completed (a signal).
    Shutdown,
}
