//! The commands a camera answers as a device: `capture`, `pause`, `resume`, `set fps N`,
//! `set quality Q`, `status`, `stop`; anything else goes to [`CameraOptions::on_command`] if given.

use std::ffi::OsString;
use std::io::Write;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use framewire_client::{
    Client, ClientError, ConnectOptions, DeviceCommand, FrameSink, ReplyStatus, SendOptions,
};
use framewire_media::{SourceFrame, SourceSpec};
use tokio::sync::{oneshot, Notify};

use crate::feed::{Request, Shared};
use crate::CameraOptions;

/// How long the `on_command` program may run. Below the hub's default command timeout (10 s), so
/// the caller hears "PROGRAM did not finish" from us rather than a bare timeout from the hub.
const PROGRAM_TIMEOUT: Duration = Duration::from_secs(8);
/// How long `capture` waits for the capture thread to render a frame.
const RENDER_TIMEOUT: Duration = Duration::from_secs(5);

/// The verbs a camera knows, for the `UnknownCommand` answer.
const KNOWN: &str = "capture, pause, resume, set fps N, set quality Q, status, stop";

/// Why a `capture` failed: the text of the `Failed` answer.
#[derive(Debug, thiserror::Error)]
enum CaptureError {
    #[error("{0}")]
    Render(String),
    #[error("the camera is stopping")]
    Stopping,
    #[error("no frame rendered within {0:?}")]
    RenderTimeout(Duration),
    #[error("no frame has come from the source yet")]
    NoFrameYet,
    #[error("cannot write the snapshot to a temporary file")]
    TempFile(#[source] std::io::Error),
    #[error(transparent)]
    Thread(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Hub(#[from] ClientError),
}

/// One camera's command handler; shared by the tasks answering commands.
pub(crate) struct Device {
    name: String,
    source: SourceSpec,
    server: String,
    connect: ConnectOptions,
    on_command: Option<OsString>,
    shared: Arc<Shared>,
    requests: Mutex<Sender<Request>>,
    sink: FrameSink,
    captures: AtomicU64,
    stop: Notify,
    stop_requested: AtomicBool,
}

impl Device {
    /// The handler of the camera described by `opts`.
    pub(crate) fn new(
        opts: &CameraOptions,
        shared: Arc<Shared>,
        requests: Sender<Request>,
        sink: FrameSink,
    ) -> Device {
        Device {
            name: opts.connect.name.clone(),
            source: opts.source.clone(),
            server: opts.server.clone(),
            connect: opts.connect.clone(),
            on_command: opts.on_command.clone(),
            shared,
            requests: Mutex::new(requests),
            sink,
            captures: AtomicU64::new(0),
            stop: Notify::new(),
            stop_requested: AtomicBool::new(false),
        }
    }

    /// Completes once a `stop` command was answered.
    pub(crate) async fn stop_requested(&self) {
        self.stop.notified().await;
    }

    /// Whether a `stop` command was answered.
    pub(crate) fn stop_was_requested(&self) -> bool {
        self.stop_requested.load(Relaxed)
    }

    /// Answers one command.
    pub(crate) async fn handle(&self, c: DeviceCommand) {
        let line = std::iter::once(c.command.as_str())
            .chain(c.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
        let (status, body) = match (c.command.as_str(), args.as_slice()) {
            ("capture", []) => match self.capture().await {
                Ok(path) => (ReplyStatus::Ok, path),
                Err(e) => (
                    ReplyStatus::Failed,
                    format!("capture failed: {}", chain(&e)),
                ),
            },
            ("pause", []) => (ReplyStatus::Ok, self.set_paused(true)),
            ("resume", []) => (ReplyStatus::Ok, self.set_paused(false)),
            ("set", [key, value]) => match self.set(key, value) {
                Ok(text) => (ReplyStatus::Ok, text),
                Err(text) => (ReplyStatus::Failed, text),
            },
            ("status", []) => (ReplyStatus::Ok, self.status()),
            ("stop", []) => (ReplyStatus::Ok, "stopping".to_owned()),
            ("capture" | "pause" | "resume" | "status" | "stop", _) => (
                ReplyStatus::Failed,
                format!("{} takes no arguments", c.command),
            ),
            ("set", _) => (
                ReplyStatus::Failed,
                "usage: set fps N | set quality Q".to_owned(),
            ),
            _ => match &self.on_command {
                Some(program) => self.run_program(program, &c.command, &c.args).await,
                None => (
                    ReplyStatus::UnknownCommand,
                    format!("unknown command {:?} (known: {KNOWN})", c.command),
                ),
            },
        };
        tracing::info!(device = %self.name, command = %line, ?status, "answered");
        let stop = c.command == "stop" && status == ReplyStatus::Ok;
        c.reply(status, body);
        if stop {
            self.stop_requested.store(true, Relaxed);
            self.stop.notify_one();
        }
    }

    fn wake(&self) {
        let _ = self.requests.lock().unwrap().send(Request::Wake);
    }

    fn set_paused(&self, paused: bool) -> String {
        self.shared.settings.lock().unwrap().paused = paused;
        self.wake();
        if paused { "paused" } else { "resumed" }.to_owned()
    }

    fn set(&self, key: &str, value: &str) -> Result<String, String> {
        match key {
            "fps" => {
                let fps: f64 = value
                    .parse()
                    .ok()
                    .filter(|f| (0.001..=1000.0).contains(f))
                    .ok_or_else(|| {
                        format!("fps must be a number from 0.001 to 1000, not {value:?}")
                    })?;
                self.shared.settings.lock().unwrap().fps = Some(fps);
                self.wake();
                Ok(format!("fps={}", format_fps(Some(fps))))
            }
            "quality" => {
                if !matches!(
                    self.source,
                    SourceSpec::Synthetic { .. } | SourceSpec::Dir(_)
                ) {
                    return Err(format!(
                        "quality applies to frames this camera encodes (synthetic, PNG files); \
                         {} frames pass through as they are",
                        self.source
                    ));
                }
                let quality: u8 = value
                    .parse()
                    .ok()
                    .filter(|q| (1..=100).contains(q))
                    .ok_or_else(|| format!("quality must be 1..=100, not {value:?}"))?;
                self.shared.settings.lock().unwrap().quality = quality;
                self.wake();
                Ok(format!("quality={quality}"))
            }
            _ => Err(format!("unknown setting {key:?} (settings: fps, quality)")),
        }
    }

    /// `name=cam source=synthetic:640x480 fps=30 quality=80 paused=false published=123 skipped=4
    /// connected=true rtt_ms=0.2`
    fn status(&self) -> String {
        let settings = self.shared.settings();
        let stats = self.sink.stats();
        format!(
            "name={} source={} fps={} quality={} paused={} published={} skipped={} connected={} rtt_ms={:.1}",
            self.name,
            self.source,
            format_fps(settings.fps),
            settings.quality,
            settings.paused,
            stats.published,
            stats.skipped,
            stats.link.connected,
            stats.link.rtt_us.max(0) as f64 / 1000.0,
        )
    }

    /// Stores a full-quality snapshot on the hub; returns its path there.
    async fn capture(&self) -> Result<String, CaptureError> {
        let frame = self.snapshot().await?;
        let n = self.captures.fetch_add(1, Relaxed) + 1;
        let remote = format!("{}/captures/{}-{n}.jpg", self.name, utc_compact(now_us()));
        // Through the ordinary upload path (verified with BLAKE3), on a connection of its own so
        // frames keep flowing meanwhile.
        let file = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            let mut f = tempfile::Builder::new()
                .prefix("framewire-capture-")
                .suffix(".jpg")
                .tempfile()?;
            f.write_all(&frame.jpeg)?;
            f.flush()?;
            Ok(f)
        })
        .await?
        .map_err(CaptureError::TempFile)?;
        let mut hub = Client::connect(&self.server, self.connect.clone()).await?;
        let stored = hub
            .send_file(file.path(), &remote, SendOptions::default())
            .await?;
        let _ = hub.close().await;
        Ok(stored.remote)
    }

    /// The current frame: the synthetic one re-rendered at full quality, otherwise the last one
    /// taken from the source.
    async fn snapshot(&self) -> Result<SourceFrame, CaptureError> {
        if matches!(self.source, SourceSpec::Synthetic { .. }) {
            let (tx, rx) = oneshot::channel();
            let _ = self.requests.lock().unwrap().send(Request::Capture(tx));
            return match tokio::time::timeout(RENDER_TIMEOUT, rx).await {
                Ok(Ok(r)) => r.map_err(CaptureError::Render),
                Ok(Err(_)) => Err(CaptureError::Stopping),
                Err(_) => Err(CaptureError::RenderTimeout(RENDER_TIMEOUT)),
            };
        }
        self.shared
            .latest
            .lock()
            .unwrap()
            .clone()
            .ok_or(CaptureError::NoFrameYet)
    }

    /// Runs `PROGRAM VERB ARGS...`: its output is the answer (`Ok` if it exits 0).
    async fn run_program(
        &self,
        program: &OsString,
        verb: &str,
        args: &[String],
    ) -> (ReplyStatus, String) {
        let shown = std::path::Path::new(program).display().to_string();
        let child = tokio::process::Command::new(program)
            .arg(verb)
            .args(args)
            .env("FRAMEWIRE_DEVICE", &self.name)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output();
        match tokio::time::timeout(PROGRAM_TIMEOUT, child).await {
            Err(_) => (
                ReplyStatus::Failed,
                format!(
                    "{shown} did not finish within {:.2} s (killed)",
                    PROGRAM_TIMEOUT.as_secs_f64()
                ),
            ),
            Ok(Err(e)) => (ReplyStatus::Failed, format!("cannot run {shown}: {e}")),
            Ok(Ok(out)) => {
                let stdout = String::from_utf8_lossy(&out.stdout).trim_end().to_owned();
                if out.status.success() {
                    (ReplyStatus::Ok, stdout)
                } else {
                    let stderr = String::from_utf8_lossy(&out.stderr).trim_end().to_owned();
                    let why = if stderr.is_empty() {
                        format!("{shown} {verb} failed ({})", out.status)
                    } else {
                        stderr
                    };
                    (ReplyStatus::Failed, why)
                }
            }
        }
    }
}

/// `error: its source: ...`, as `anyhow` prints `{:#}`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

/// µs since the Unix epoch as a UTC stamp fit for a file name (no `:`): `20231114T221320.123Z`.
fn utc_compact(us: i64) -> String {
    let t = framewire_proto::UtcTime::from_unix_us(us);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        t.micros / 1000
    )
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// `30`, `2.5`, or `source` (the source's own rate).
fn format_fps(fps: Option<f64>) -> String {
    match fps {
        None => "source".into(),
        Some(f) if f.fract() == 0.0 => format!("{f:.0}"),
        Some(f) => format!("{f}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fps_reads_like_it_was_typed() {
        assert_eq!(format_fps(Some(30.0)), "30");
        assert_eq!(format_fps(Some(2.5)), "2.5");
        assert_eq!(format_fps(None), "source");
    }

    #[test]
    fn capture_names_carry_a_utc_stamp_without_colons() {
        assert_eq!(utc_compact(1_700_000_000_123_456), "20231114T221320.123Z");
        assert_eq!(utc_compact(951_782_400_000_000), "20000229T000000.000Z");
        assert_eq!(utc_compact(-1_000), "19691231T235959.999Z");
    }

    #[test]
    fn capture_failures_read_with_their_causes() {
        let e = CaptureError::TempFile(std::io::Error::other("disk full"));
        assert_eq!(
            chain(&e),
            "cannot write the snapshot to a temporary file: disk full"
        );
        assert_eq!(
            chain(&CaptureError::RenderTimeout(RENDER_TIMEOUT)),
            "no frame rendered within 5s"
        );
    }
}
