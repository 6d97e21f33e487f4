//! Live-video benchmark (issue 3), framewire's side: one scenario per invocation, against a hub
//! that is already running, one JSON object on stdout. `bench/live.sh` runs it next to the
//! ImageZMQ peers and builds the report; see docs/BENCHMARKS.md, "Live video (issue 3)".
//!
//! ```text
//! live_bench throughput --hub 127.0.0.1:PORT --frames DIR [--seconds 5] [--stream NAME]
//!                       [--feed closed-loop|poll] [--feed-poll-us 100] [--hub-pid PID]
//! live_bench latency    --hub 127.0.0.1:PORT --frames DIR [--seconds 10] [--fps 30]
//! live_bench slow       --hub 127.0.0.1:PORT --frames DIR [--seconds 6] [--fps 60] [--sleep-ms 100]
//! ```
//!
//! - `throughput`: the frames of DIR in a loop, as fast as the pipeline takes them; one subscriber
//!   consuming as fast as it can. Frames/s and MB/s received, publisher → hub → subscriber, and
//!   the CPU time this process and the hub (`--hub-pid`) used per delivered frame. `--feed
//!   closed-loop` (the default) hands the publisher a new frame each time the
//!   subscriber receives one, two in flight; `--feed poll` feeds from a thread that looks every
//!   `--feed-poll-us` whether the publisher took the last frame.
//! - `latency`: one frame every 1/fps s; one fast subscriber. Age of every frame when `next()`
//!   hands it over (wall clock at the `publish` call to wall clock at `next()` returning), µs.
//! - `slow`: a publisher at `fps`; a subscriber that sleeps `sleep-ms` per frame (a detector),
//!   recording (time since the first publish, age) per frame; a fast subscriber alongside.
//!
//! Publisher and subscribers live in this one process, so both ends read the same clock and an
//! age is exact; the library's own estimate (`ReceivedFrame::age_us`, through the hub's clock
//! offsets) is reported next to it. Every loop is bounded in count and time.

use std::collections::HashMap;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use framewire_client::{
    frame_format, ConnectOptions, PublishOptions, Publisher, ReceivedFrame, Subscriber,
};
use hdrhistogram::Histogram;

type BoxResult<T> = Result<T, Box<dyn Error>>;

/// Time for a new subscription to reach the hub before the first frame is published (the
/// subscriber pings five times, then subscribes).
const SETTLE: Duration = Duration::from_millis(300);
/// Throughput: frames received before the clock starts (connections warm, buffers sized).
const THROUGHPUT_WARMUP: Duration = Duration::from_millis(500);
/// Latency: frames published before the measured ones, left out of the figures.
const LATENCY_WARMUP_FRAMES: u64 = 15;
/// Longest wait for any one frame before a scenario gives up.
const FRAME_TIMEOUT: Duration = Duration::from_secs(5);
/// Throughput: how often the feeding thread looks whether the publisher wants another frame
/// (default of `--feed-poll-us`).
const FEED_POLL_US: u64 = 100;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Throughput,
    Latency,
    Slow,
}

struct Args {
    scenario: Scenario,
    hub: String,
    frames: PathBuf,
    stream: String,
    seconds: f64,
    fps: f64,
    sleep_ms: u64,
    feed_poll: Duration,
    closed_loop: bool,
    hub_pid: Option<String>,
}

impl Args {
    fn parse() -> BoxResult<Args> {
        let mut it = std::env::args().skip(1);
        let scenario = match it.next().as_deref() {
            Some("throughput") => Scenario::Throughput,
            Some("latency") => Scenario::Latency,
            Some("slow") => Scenario::Slow,
            other => return Err(format!("unknown scenario {other:?}; {}", USAGE).into()),
        };
        let (seconds, fps) = match scenario {
            Scenario::Throughput => (5.0, 0.0),
            Scenario::Latency => (10.0, 30.0),
            Scenario::Slow => (6.0, 60.0),
        };
        let mut a = Args {
            scenario,
            hub: String::new(),
            frames: PathBuf::new(),
            stream: format!("bench-{}", std::process::id()),
            seconds,
            fps,
            sleep_ms: 100,
            feed_poll: Duration::from_micros(FEED_POLL_US),
            closed_loop: true,
            hub_pid: None,
        };
        while let Some(flag) = it.next() {
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--hub" => a.hub = value,
                "--frames" => a.frames = value.into(),
                "--stream" => a.stream = value,
                "--seconds" => a.seconds = value.parse()?,
                "--fps" => a.fps = value.parse()?,
                "--sleep-ms" => a.sleep_ms = value.parse()?,
                "--feed-poll-us" => a.feed_poll = Duration::from_micros(value.parse()?),
                "--hub-pid" => a.hub_pid = Some(value),
                "--feed" => {
                    a.closed_loop = match value.as_str() {
                        "poll" => false,
                        "closed-loop" => true,
                        _ => return Err("--feed is poll or closed-loop".into()),
                    }
                }
                _ => return Err(format!("unknown option {flag}; {USAGE}").into()),
            }
        }
        if a.hub.is_empty() || a.frames.as_os_str().is_empty() {
            return Err(format!("--hub and --frames are required; {USAGE}").into());
        }
        if !(0.5..=120.0).contains(&a.seconds) {
            return Err("--seconds must be within 0.5..=120".into());
        }
        if a.scenario != Scenario::Throughput && !(1.0..=1000.0).contains(&a.fps) {
            return Err("--fps must be within 1..=1000".into());
        }
        Ok(a)
    }
}

const USAGE: &str =
    "usage: live_bench throughput|latency|slow --hub ADDR --frames DIR [--seconds S] [--fps F] [--sleep-ms MS] [--stream NAME] [--feed poll|closed-loop] [--feed-poll-us US] [--hub-pid PID]";

/// The JPEG files of a folder, in name order, held in memory so reading them costs nothing.
struct Clip {
    frames: Vec<Bytes>,
    width: u32,
    height: u32,
}

impl Clip {
    fn load(dir: &Path) -> BoxResult<Clip> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|x| {
                    x.eq_ignore_ascii_case("jpg") || x.eq_ignore_ascii_case("jpeg")
                })
            })
            .collect();
        paths.sort();
        if paths.is_empty() {
            return Err(format!("no .jpg files in {}", dir.display()).into());
        }
        let frames = paths
            .iter()
            .map(|p| std::fs::read(p).map(Bytes::from))
            .collect::<Result<Vec<_>, _>>()?;
        let (width, height) = jpeg_size(&frames[0]).ok_or("cannot read the first JPEG's size")?;
        Ok(Clip {
            frames,
            width,
            height,
        })
    }

    fn frame(&self, i: u64) -> Bytes {
        self.frames[(i % self.frames.len() as u64) as usize].clone()
    }

    fn mean_bytes(&self) -> f64 {
        self.frames.iter().map(|f| f.len() as f64).sum::<f64>() / self.frames.len() as f64
    }
}

/// Width and height from a JPEG's start-of-frame segment.
fn jpeg_size(jpeg: &[u8]) -> Option<(u32, u32)> {
    let mut i = 2;
    while i + 9 <= jpeg.len() {
        if jpeg[i] != 0xFF {
            return None;
        }
        let marker = jpeg[i + 1];
        let len = u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]) as usize;
        // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC), which share the range.
        if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
            let h = u16::from_be_bytes([jpeg[i + 5], jpeg[i + 6]]);
            let w = u16::from_be_bytes([jpeg[i + 7], jpeg[i + 8]]);
            return Some((w.into(), h.into()));
        }
        i += 2 + len;
    }
    None
}

fn wall_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// CPU time (user + system, all threads) a process has used so far, from `/proc/PID/stat`.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux this runs on (it is fixed in the kernel ABI for x86 and arm).
    Some(ticks as f64 / 100.0)
}

/// CPU used during a measurement window by this process and (if given) the hub.
struct Cpu {
    bench_s: Option<f64>,
    hub_s: Option<f64>,
    frames: u64,
}

impl Cpu {
    fn between(
        before: (Option<f64>, Option<f64>),
        after: (Option<f64>, Option<f64>),
        frames: u64,
    ) -> Cpu {
        let delta = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
        Cpu {
            bench_s: delta(before.0, after.0),
            hub_s: delta(before.1, after.1),
            frames,
        }
    }

    fn json(&self) -> String {
        let opt = |x: Option<f64>| x.map_or("null".to_owned(), |v| format!("{v:.2}"));
        let per_frame = match (self.bench_s, self.hub_s) {
            (Some(b), Some(h)) if self.frames > 0 => {
                format!("{:.1}", (b + h) * 1e6 / self.frames as f64)
            }
            _ => "null".to_owned(),
        };
        format!(
            "{{\"publisher_and_subscriber_s\":{},\"hub_s\":{},\"us_per_frame\":{per_frame}}}",
            opt(self.bench_s),
            opt(self.hub_s)
        )
    }
}

fn options(name: &str) -> ConnectOptions {
    ConnectOptions {
        name: name.into(),
        ..ConnectOptions::default()
    }
}

async fn next_frame(sub: &mut Subscriber) -> BoxResult<ReceivedFrame> {
    match tokio::time::timeout(FRAME_TIMEOUT, sub.next()).await {
        Ok(Some(f)) => Ok(f),
        Ok(None) => Err("the subscriber closed".into()),
        Err(_) => Err(format!("no frame within {FRAME_TIMEOUT:?}").into()),
    }
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs .. 100 s, 3 significant digits.
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid histogram bounds")
}

/// `{"count":..,"p50_us":..,...}` of a histogram.
fn histogram_json(h: &Histogram<u64>) -> String {
    format!(
        "{{\"count\":{},\"min_us\":{},\"mean_us\":{:.1},\"p50_us\":{},\"p90_us\":{},\"p99_us\":{},\"max_us\":{}}}",
        h.len(),
        h.min(),
        h.mean(),
        h.value_at_quantile(0.50),
        h.value_at_quantile(0.90),
        h.value_at_quantile(0.99),
        h.max()
    )
}

fn publisher_json(p: &Publisher) -> String {
    let s = p.stats();
    format!(
        "{{\"published\":{},\"sent\":{},\"acked\":{},\"skipped\":{},\"reconnects\":{}}}",
        s.published, s.sent, s.acked, s.skipped, s.link.reconnects
    )
}

/// Capture times of published frames by sequence number, so a subscriber in this process can
/// compute an exact age. Publishing happens under the lock, so a subscriber never looks up a
/// sequence number before it is recorded.
#[derive(Default, Clone)]
struct CaptureLog(Arc<Mutex<HashMap<u64, i64>>>);

impl CaptureLog {
    fn publish(&self, p: &Publisher, clip: &Clip, i: u64) -> u64 {
        let mut log = self.0.lock().unwrap();
        let capture_us = wall_us();
        let seq = p.publish(
            clip.frame(i),
            frame_format::JPEG,
            clip.width,
            clip.height,
            capture_us,
        );
        log.insert(seq, capture_us);
        seq
    }

    fn capture_us(&self, seq: u64) -> Option<i64> {
        self.0.lock().unwrap().get(&seq).copied()
    }
}

#[tokio::main]
async fn main() {
    let result = async {
        let args = Args::parse()?;
        let clip = Arc::new(Clip::load(&args.frames)?);
        match args.scenario {
            Scenario::Throughput => throughput(&args, clip).await,
            Scenario::Latency => latency(&args, clip).await,
            Scenario::Slow => slow(&args, clip).await,
        }
    }
    .await;
    match result {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("live_bench: {e}");
            std::process::exit(1);
        }
    }
}

/// Publisher → hub → one subscriber, as fast as the pipeline goes.
async fn throughput(args: &Args, clip: Arc<Clip>) -> BoxResult<String> {
    let publisher = Publisher::connect(
        &args.hub,
        options("bench-publisher"),
        PublishOptions::new(&args.stream),
    )
    .await?;
    let mut sub = Subscriber::connect(&args.hub, options("bench-subscriber"), &args.stream).await?;
    tokio::time::sleep(SETTLE).await;

    // Feeding "as fast as the pipeline takes frames". `poll`: a plain thread keeps one frame
    // waiting whenever the publisher has taken the last one (`publish` never blocks, and a newer
    // frame replaces a waiting one, so feeding a little too often costs nothing but "skipped"
    // counts); a thread polling every 100 µs rather than a tokio timer (1 ms resolution) keeps the
    // feeder from being the bottleneck. `closed-loop`: no thread; two frames to start with, then
    // one more each time the subscriber receives one.
    let publisher = Arc::new(publisher);
    let stop = Arc::new(AtomicBool::new(false));
    let poll = args.feed_poll;
    let hard_stop =
        Instant::now() + Duration::from_secs_f64(args.seconds) + Duration::from_secs(20);
    let feeder = (!args.closed_loop).then(|| {
        let stop = Arc::clone(&stop);
        let clip = Arc::clone(&clip);
        let publisher = Arc::clone(&publisher);
        std::thread::spawn(move || {
            let mut i = 0u64;
            let mut last_sent = u64::MAX;
            while !stop.load(Relaxed) && Instant::now() < hard_stop {
                let s = publisher.stats();
                let nothing_waiting = s.published == s.sent + s.skipped;
                if nothing_waiting || s.sent != last_sent {
                    last_sent = s.sent;
                    publisher.publish_jpeg(clip.frame(i), clip.width, clip.height);
                    i += 1;
                }
                std::thread::sleep(poll);
            }
        })
    });
    let mut fed = 0u64;
    let mut feed = |n: u64| {
        if args.closed_loop {
            for _ in 0..n {
                publisher.publish_jpeg(clip.frame(fed), clip.width, clip.height);
                fed += 1;
            }
        }
    };
    feed(2);

    let hub_pid = args.hub_pid.clone();
    let measured = async {
        next_frame(&mut sub).await?;
        feed(1);
        let warm_until = Instant::now() + THROUGHPUT_WARMUP;
        while Instant::now() < warm_until {
            next_frame(&mut sub).await?;
            feed(1);
        }
        let sent_before = publisher.stats().sent;
        let cpu_before = (
            cpu_seconds("self"),
            hub_pid.as_deref().and_then(cpu_seconds),
        );
        let t0 = Instant::now();
        let window = Duration::from_secs_f64(args.seconds);
        let (mut frames, mut bytes, mut last_seq, mut gaps) = (0u64, 0u64, 0u64, 0u64);
        while t0.elapsed() < window {
            let f = next_frame(&mut sub).await?;
            feed(1);
            frames += 1;
            bytes += f.payload.len() as u64;
            if last_seq != 0 && f.seq > last_seq + 1 {
                gaps += f.seq - last_seq - 1;
            }
            last_seq = f.seq;
        }
        let secs = t0.elapsed().as_secs_f64();
        let cpu_after = (
            cpu_seconds("self"),
            hub_pid.as_deref().and_then(cpu_seconds),
        );
        let cpu = Cpu::between(cpu_before, cpu_after, frames);
        let sent = publisher.stats().sent - sent_before;
        BoxResult::Ok((frames, bytes, gaps, sent, secs, cpu))
    }
    .await;
    stop.store(true, Relaxed);
    if let Some(feeder) = feeder {
        tokio::task::spawn_blocking(move || feeder.join())
            .await?
            .map_err(|_| "the feeding thread panicked")?;
    }
    let publisher = Arc::into_inner(publisher).ok_or("the publisher is still shared")?;
    let (frames, bytes, gaps, sent, secs, cpu) = measured?;
    let json =
        format!(
        "{{\"system\":\"framewire\",\"scenario\":\"throughput\",\"hops\":2,\"seconds\":{secs:.3},\
         \"frames\":{frames},\"bytes\":{bytes},\"fps\":{:.1},\"mb_per_s\":{:.1},\
         \"frames_skipped_by_subscriber\":{gaps},\"publisher_sent_per_s\":{:.1},\"feed\":\"{}\",\
         \"mean_frame_bytes\":{:.0},\"cpu\":{},\"publisher\":{}}}",
        frames as f64 / secs,
        bytes as f64 / secs / 1e6,
        sent as f64 / secs,
        if args.closed_loop { "closed-loop" } else { "poll" },
        clip.mean_bytes(),
        cpu.json(),
        publisher_json(&publisher)
    );
    sub.close().await;
    publisher.close(Duration::from_millis(500)).await;
    Ok(json)
}

/// One frame every 1/fps s, one fast subscriber: the age of every frame.
async fn latency(args: &Args, clip: Arc<Clip>) -> BoxResult<String> {
    let publisher = Publisher::connect(
        &args.hub,
        options("bench-publisher"),
        PublishOptions::new(&args.stream),
    )
    .await?;
    let mut sub = Subscriber::connect(&args.hub, options("bench-subscriber"), &args.stream).await?;
    tokio::time::sleep(SETTLE).await;

    let measured = (args.seconds * args.fps).round() as u64;
    let total = LATENCY_WARMUP_FRAMES + measured;
    let log = CaptureLog::default();
    let period = Duration::from_secs_f64(1.0 / args.fps);
    let producer = {
        let log = log.clone();
        let clip = Arc::clone(&clip);
        tokio::spawn(async move {
            // How late the timer wakes this task: the machine's scheduling noise, measured in
            // the same run (tokio's timer adds up to 1 ms of rounding on its own).
            let mut lateness = new_histogram();
            let mut tick = tokio::time::interval(period);
            for i in 0..total {
                let due = tick.tick().await;
                let late = due.elapsed().as_micros() as u64;
                log.publish(&publisher, &clip, i);
                if i >= LATENCY_WARMUP_FRAMES {
                    let _ = lateness.record(late.max(1));
                }
            }
            (publisher, lateness)
        })
    };

    let mut age = new_histogram();
    let mut age_library = new_histogram();
    let (mut received, mut last_seq) = (0u64, 0u64);
    // The slowest frames, (age µs, seq), to tell a systematic tail from scattered hiccups.
    let mut worst: Vec<(i64, u64)> = Vec::new();
    let deadline = Instant::now() + period * total as u32 + Duration::from_secs(5);
    while last_seq < total && Instant::now() < deadline {
        let f = next_frame(&mut sub).await?;
        let now = wall_us();
        last_seq = f.seq;
        if f.seq <= LATENCY_WARMUP_FRAMES {
            continue;
        }
        let capture = log.capture_us(f.seq).ok_or("a frame nobody published")?;
        age.record((now - capture).max(1) as u64)?;
        age_library.record(f.age_us().max(1) as u64)?;
        received += 1;
        worst.push((now - capture, f.seq));
        worst.sort_unstable_by(|a, b| b.cmp(a));
        worst.truncate(5);
    }
    let worst = worst
        .iter()
        .map(|(age, seq)| format!("[{seq},{age}]"))
        .collect::<Vec<_>>()
        .join(",");
    let (publisher, lateness) = producer.await?;
    // Both ends read this machine's clock, so their offsets to the hub's clock are truly 0; what
    // they estimate is the error of `age_us`.
    let json = format!(
        "{{\"system\":\"framewire\",\"scenario\":\"latency\",\"hops\":2,\"fps\":{},\"published\":{measured},\
         \"received\":{received},\"age\":{},\"age_library_estimate\":{},\
         \"clock_offset_estimate_us\":{{\"publisher\":{},\"subscriber\":{}}},\"timer_lateness\":{},\
         \"worst_seq_age_us\":[{worst}],\"publisher\":{}}}",
        args.fps,
        histogram_json(&age),
        histogram_json(&age_library),
        publisher.stats().link.clock_offset_us,
        sub.link().clock_offset_us,
        histogram_json(&lateness),
        publisher_json(&publisher)
    );
    sub.close().await;
    publisher.close(Duration::from_millis(500)).await;
    Ok(json)
}

/// A publisher at `fps`, a subscriber sleeping `sleep_ms` per frame, a fast one alongside.
async fn slow(args: &Args, clip: Arc<Clip>) -> BoxResult<String> {
    let publisher = Publisher::connect(
        &args.hub,
        options("bench-publisher"),
        PublishOptions::new(&args.stream),
    )
    .await?;
    let mut slow_sub =
        Subscriber::connect(&args.hub, options("bench-slow-subscriber"), &args.stream).await?;
    let mut fast_sub =
        Subscriber::connect(&args.hub, options("bench-fast-subscriber"), &args.stream).await?;
    tokio::time::sleep(SETTLE).await;

    let window = Duration::from_secs_f64(args.seconds);
    // The publisher outlasts the subscribers' window, so they never wait on a stopped stream.
    let total = ((args.seconds + 0.5) * args.fps).round() as u64;
    let period = Duration::from_secs_f64(1.0 / args.fps);
    let log = CaptureLog::default();
    let start_us = wall_us();
    let start = Instant::now();
    let producer = {
        let log = log.clone();
        let clip = Arc::clone(&clip);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            for i in 0..total {
                tick.tick().await;
                log.publish(&publisher, &clip, i);
            }
            publisher
        })
    };

    let sleep = Duration::from_millis(args.sleep_ms);
    let slow_task = {
        let log = log.clone();
        async move {
            let mut samples: Vec<(i64, i64)> = Vec::new();
            // Bounded: at most one frame per `sleep`, for `window`.
            while start.elapsed() < window && samples.len() < 100_000 {
                let f = next_frame(&mut slow_sub).await?;
                let now = wall_us();
                let capture = log.capture_us(f.seq).ok_or("a frame nobody published")?;
                samples.push((now - start_us, now - capture));
                tokio::time::sleep(sleep).await;
            }
            let secs = start.elapsed().as_secs_f64();
            slow_sub.close().await;
            BoxResult::Ok((samples, secs))
        }
    };
    let fast_task = {
        let log = log.clone();
        async move {
            let mut age = new_histogram();
            while start.elapsed() < window && age.len() < 1_000_000 {
                let f = next_frame(&mut fast_sub).await?;
                let now = wall_us();
                let capture = log.capture_us(f.seq).ok_or("a frame nobody published")?;
                age.record((now - capture).max(1) as u64)?;
            }
            let secs = start.elapsed().as_secs_f64();
            fast_sub.close().await;
            BoxResult::Ok((age, secs))
        }
    };
    let (slow_result, fast_result) = tokio::join!(slow_task, fast_task);
    let publisher = producer.await?;
    let ((samples, slow_secs), (fast_age, fast_secs)) = (slow_result?, fast_result?);

    let points = samples
        .iter()
        .map(|(t, a)| format!("[{:.1},{:.2}]", *t as f64 / 1e3, *a as f64 / 1e3))
        .collect::<Vec<_>>()
        .join(",");
    let json = format!(
        "{{\"system\":\"framewire\",\"scenario\":\"slow\",\"hops\":2,\"fps\":{},\"sleep_ms\":{},\
         \"seconds\":{slow_secs:.3},\"slow_frames\":{},\"slow_fps\":{:.2},\"samples_ms\":[{points}],\
         \"fast_frames\":{},\"fast_fps\":{:.1},\"fast_age\":{},\"publisher\":{}}}",
        args.fps,
        args.sleep_ms,
        samples.len(),
        samples.len() as f64 / slow_secs,
        fast_age.len(),
        fast_age.len() as f64 / fast_secs,
        histogram_json(&fast_age),
        publisher_json(&publisher)
    );
    publisher.close(Duration::from_millis(500)).await;
    Ok(json)
}
