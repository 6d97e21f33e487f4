//! `framewire watch NAME [--out DIR] [--mjpeg FILE|-] [--frames N] [--stats]`: receive a live
//! stream, newest frame first, and save it, pipe it to a player, or just measure it.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use framewire_client::{frame_format, ReceivedFrame, Subscriber};
use hdrhistogram::Histogram;
use tokio::signal::unix::{signal, SignalKind};

use crate::{format, Global};

/// Arguments of `framewire watch`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
With no --out or --mjpeg, --stats is implied. Stats lines go to standard output, or to
standard error when the MJPEG stream does (--mjpeg -).

Examples:
  framewire watch cam
  framewire watch cam --out frames/ --frames 100
  framewire watch cam --mjpeg - | ffplay -f mjpeg -i -")]
pub struct Args {
    /// The stream's name.
    stream: String,
    /// Save each frame as DIR/NAME-000001.jpg, ... (numbered in arrival order).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Write the frames back to back (MJPEG, as `ffplay -f mjpeg -i -` reads) to FILE, or to
    /// standard output with `-`.
    #[arg(long, value_name = "FILE|-")]
    mjpeg: Option<PathBuf>,
    /// Stop after N frames.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    frames: Option<u64>,
    /// Print once a second: frames per second, latency (capture to arrival) p50/p99, the newest
    /// frame's sequence number, frames skipped, reconnects.
    #[arg(long)]
    stats: bool,
    /// Give up (exit 1) if no frame of the stream arrives within DUR (like 10s, 2m): for a
    /// stream nobody publishes. Without it, watch waits for a publisher as long as it runs.
    #[arg(long, value_name = "DUR", value_parser = format::parse_duration)]
    wait_timeout: Option<Duration>,
}

/// Receives frames until `--frames`, a closed MJPEG reader, or SIGINT/SIGTERM.
pub async fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let to_stdout = args.mjpeg.as_deref() == Some(Path::new("-"));
    let stats = args.stats || (args.out.is_none() && args.mjpeg.is_none());
    let mut outputs = Outputs::open(&args.stream, args.out, args.mjpeg)?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sub =
        Subscriber::connect(&global.server, global.connect_options(), &args.stream).await?;

    let mut figures = Figures::new(&args.stream);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut received = 0u64;
    let started = Instant::now();
    // Said once if the first frame is slow to come: most often a typo or a publisher not started.
    let waiting_note = tokio::time::sleep(Duration::from_millis(500));
    tokio::pin!(waiting_note);
    let mut noted = false;
    let give_up = tokio::time::sleep(
        args.wait_timeout
            .unwrap_or(Duration::from_secs(365 * 86400)),
    );
    tokio::pin!(give_up);
    loop {
        if args.frames.is_some_and(|n| received >= n) {
            break;
        }
        tokio::select! {
            f = sub.next() => {
                let Some(f) = f else { break };
                received += 1;
                figures.add(&f);
                // On a blocking thread; meanwhile the hub holds newer frames for us, not a queue.
                let (o, written) = tokio::task::spawn_blocking(move || {
                    let r = outputs.write(&f);
                    (outputs, r)
                })
                .await
                .context("the writer thread failed")?;
                outputs = o;
                match written {
                    Ok(()) => {}
                    // The player was closed: that is how watching ends.
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => break,
                    Err(e) => return Err(e).context("cannot write the frame"),
                }
            }
            _ = tick.tick(), if stats => {
                let line = figures.line(sub.link().reconnects, sub.link().connected);
                if to_stdout {
                    eprintln!("{line}");
                } else {
                    println!("{line}");
                }
            }
            _ = &mut waiting_note, if received == 0 && !noted => {
                noted = true;
                if !global.quiet {
                    eprintln!("waiting for stream {}: no publisher yet", args.stream);
                }
            }
            _ = &mut give_up, if received == 0 && args.wait_timeout.is_some() => {
                sub.close().await;
                anyhow::bail!(
                    "no frame of stream {} within {}: nobody publishes it",
                    args.stream,
                    format::seconds(started.elapsed())
                );
            }
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
        }
    }
    sub.close().await;
    if !global.quiet && !stats {
        eprintln!(
            "received {received} frames of {} in {}",
            args.stream,
            format::seconds(started.elapsed())
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Where frames go.
struct Outputs {
    stream: String,
    dir: Option<PathBuf>,
    mjpeg: Option<Box<dyn Write + Send>>,
    saved: u64,
}

impl Outputs {
    fn open(stream: &str, dir: Option<PathBuf>, mjpeg: Option<PathBuf>) -> anyhow::Result<Outputs> {
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let mjpeg: Option<Box<dyn Write + Send>> = match mjpeg {
            None => None,
            Some(p) if p == Path::new("-") => Some(Box::new(io::stdout())),
            Some(p) => Some(Box::new(
                File::create(&p).with_context(|| format!("cannot create {}", p.display()))?,
            )),
        };
        Ok(Outputs {
            // A stream name may hold `/`; a file name may not.
            stream: stream.replace('/', "_"),
            dir,
            mjpeg,
            saved: 0,
        })
    }

    fn write(&mut self, f: &ReceivedFrame) -> io::Result<()> {
        if let Some(dir) = &self.dir {
            self.saved += 1;
            let ext = match f.format {
                frame_format::JPEG => "jpg",
                frame_format::PNG => "png",
                _ => "raw",
            };
            let name = format!("{}-{:06}.{ext}", self.stream, self.saved);
            write_atomically(&dir.join(&name), &f.payload)?;
        }
        if let Some(out) = &mut self.mjpeg {
            if f.format == frame_format::JPEG {
                out.write_all(&f.payload)?;
                // A player shows the frame now, not when a buffer fills.
                out.flush()?;
            } else {
                tracing::warn!(
                    seq = f.seq,
                    "not a JPEG frame; left out of the MJPEG stream"
                );
            }
        }
        Ok(())
    }
}

/// Writes `path` so that it never exists half-written: a temporary file renamed into place.
fn write_atomically(path: &Path, data: &Bytes) -> io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

/// Figures over the last second, for the stats line.
struct Figures {
    stream: String,
    since: Instant,
    frames: u64,
    latency_us: Histogram<u64>,
    last_seq: Option<u64>,
    skipped: u64,
}

impl Figures {
    fn new(stream: &str) -> Figures {
        Figures {
            stream: stream.to_owned(),
            since: Instant::now(),
            frames: 0,
            // 1 µs to 1 h, 3 significant digits.
            latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
            last_seq: None,
            skipped: 0,
        }
    }

    fn add(&mut self, f: &ReceivedFrame) {
        self.frames += 1;
        self.latency_us.saturating_record(f.age_us().max(1) as u64);
        // A gap in the sequence: frames we never got. A lower number: the publisher restarted.
        if let Some(prev) = self.last_seq {
            if f.seq > prev + 1 {
                self.skipped += f.seq - prev - 1;
            }
        }
        self.last_seq = Some(f.seq);
    }

    /// `cam: 29.9 fps, latency p50 1.23 ms p99 4.56 ms, seq 1234, skipped 0, reconnects 0` (rate
    /// and latency over the last second; seq: the newest frame's; skipped and reconnects in total).
    fn line(&mut self, reconnects: u64, connected: bool) -> String {
        let secs = self.since.elapsed().as_secs_f64().max(1e-3);
        let latency = if self.latency_us.is_empty() {
            "latency -".to_owned()
        } else {
            format!(
                "latency p50 {} p99 {}",
                ms(self.latency_us.value_at_quantile(0.5)),
                ms(self.latency_us.value_at_quantile(0.99))
            )
        };
        let seq = self.last_seq.map_or("-".to_owned(), |s| s.to_string());
        let mut line = format!(
            "{}: {:.1} fps, {latency}, seq {seq}, skipped {}, reconnects {reconnects}",
            self.stream,
            self.frames as f64 / secs,
            self.skipped
        );
        if !connected {
            line.push_str(" (reconnecting)");
        } else if self.frames == 0 {
            line.push_str(" (waiting for frames)");
        }
        self.since = Instant::now();
        self.frames = 0;
        self.latency_us.reset();
        line
    }
}

/// µs as milliseconds with two decimals: `1.23 ms`.
fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: u64, age_us: i64) -> ReceivedFrame {
        ReceivedFrame {
            stream: "cam".into(),
            seq,
            capture_hub_us: 0,
            capture_local_us: 1_000_000,
            received_local_us: 1_000_000 + age_us,
            format: frame_format::JPEG,
            width: 16,
            height: 16,
            payload: Bytes::new(),
        }
    }

    #[test]
    fn figures_count_gaps_and_report_latency() {
        let mut f = Figures::new("cam");
        let line = f.line(0, true);
        assert!(line.contains("latency -, seq -"), "{line}");
        assert!(line.ends_with("(waiting for frames)"), "{line}");
        for (seq, age) in [(1, 1000), (2, 2000), (5, 3000), (6, 100_000)] {
            f.add(&frame(seq, age));
        }
        let line = f.line(2, true);
        assert!(line.contains("latency p50 2.00 ms p99 100.0"), "{line}");
        assert!(line.contains("seq 6, skipped 2, reconnects 2"), "{line}");
        // A publisher that restarted counts from 1 again: no gap, no negative skip.
        f.add(&frame(1, 1000));
        let line = f.line(2, false);
        assert!(line.contains("seq 1, skipped 2"), "{line}");
        assert!(line.ends_with("(reconnecting)"), "{line}");
    }
}
