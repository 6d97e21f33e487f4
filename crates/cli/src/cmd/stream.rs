//! `framewire stream --name NAME [--source SRC] [--fps N] ...`: publish a live stream and answer
//! commands as device NAME.

use std::ffi::OsString;
use std::process::ExitCode;

use framewire_camera::{self as camera, CameraOptions};
use framewire_client::ConnectOptions;
use framewire_media::SourceSpec;
use tokio::signal::unix::{signal, SignalKind};

use crate::cmd::UsageError;
use crate::Global;

/// Arguments of `framewire stream`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Commands it answers (framewire cmd NAME ...): capture, pause, resume, set fps N,
set quality Q, status, stop; any other goes to --on-command PROGRAM.

Examples:
  framewire stream --name cam
  framewire stream --name cam --source v4l2:/dev/video0@1280x720 --max-latency 80
  ffmpeg -i in.mp4 -f mjpeg - | framewire stream --name movie --source mjpeg:-")]
pub struct Args {
    /// Where frames come from: synthetic[:WxH], dir:PATH, mjpeg:FILE, mjpeg:- (standard
    /// input) or v4l2:/dev/videoN[@WxH] (built with the `v4l2` feature).
    #[arg(long, default_value = "synthetic", value_name = "SRC", value_parser = parse_source)]
    source: SourceSpec,
    /// Frames per second. Synthetic, folder and file sources are paced to it [default: 30];
    /// cameras and mjpeg:- deliver at their own pace, which this caps.
    #[arg(long, value_name = "N", value_parser = parse_fps)]
    fps: Option<f64>,
    /// Size of the synthetic pattern [default: 640x480].
    #[arg(long, value_name = "WxH")]
    size: Option<String>,
    /// JPEG quality of frames this side encodes (synthetic, PNG files, YUYV cameras).
    #[arg(long, default_value_t = 80, value_name = "Q",
          value_parser = clap::value_parser!(u8).range(1..=100))]
    quality: u8,
    /// The hub drops frames older than this on arrival (0: no limit).
    #[arg(long, default_value_t = 0, value_name = "MS")]
    max_latency: u32,
    /// Stop after publishing N frames (once the hub acknowledged the last one).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    frames: Option<u64>,
    /// Program answering commands the camera does not know: run as `PROGRAM VERB ARGS...`;
    /// its standard output is the answer (failed if it exits non-zero).
    #[arg(long, value_name = "PROGRAM")]
    on_command: Option<OsString>,
}

/// Runs the camera until its source ends, `--frames` is reached, `stop` arrives or a signal.
pub async fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let name = global.explicit_name.clone().ok_or_else(|| {
        UsageError("stream needs --name NAME (the stream's and the device's name)".into())
    })?;
    let source = match (args.size, args.source) {
        (None, s) => s,
        (Some(size), SourceSpec::Synthetic { .. }) => parse_source(&format!("synthetic:{size}"))
            .map_err(|e| UsageError(format!("--size: {e}")))?,
        (Some(_), s) => {
            return Err(
                UsageError(format!("--size applies to the synthetic source, not {s}")).into(),
            )
        }
    };
    let fps = match args.fps {
        Some(f) => Some(f),
        None if camera::paces_itself(&source) => None,
        None => Some(30.0),
    };
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let opts = CameraOptions {
        server: global.server.clone(),
        connect: ConnectOptions {
            name,
            ..global.connect_options()
        },
        source,
        fps,
        quality: args.quality,
        max_latency_ms: args.max_latency,
        frames: args.frames,
        on_command: args.on_command,
        figures: !global.quiet,
    };
    camera::run(opts, async move {
        tokio::select! {
            _ = sigint.recv() => {}
            _ = sigterm.recv() => {}
        }
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

fn parse_source(s: &str) -> Result<SourceSpec, String> {
    SourceSpec::parse(s).map_err(|e| e.to_string())
}

fn parse_fps(s: &str) -> Result<f64, String> {
    s.parse()
        .ok()
        .filter(|f| (0.001..=1000.0).contains(f))
        .ok_or_else(|| format!("{s:?} is not a frame rate from 0.001 to 1000"))
}
