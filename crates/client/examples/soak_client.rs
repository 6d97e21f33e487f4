//! Soak test load (issue 5), driven by `bench/soak/run.sh`: many clients in one process, against a
//! hub that is already running.
//!
//! ```text
//! soak_client --hub ADDR --work DIR [--seconds 120] [--clients 200] [--data HUB_DATA_DIR]
//! ```
//!
//! Roles, each a tokio task that connects, does a random number of operations and then leaves
//! (politely or by dropping the connection mid-operation), until the time is up:
//!
//! - 4 publishers (streams `soak-0..3`, 160x120 grey frames at ~15 fps); `soak-0` and `soak-1`
//!   also answer commands as devices; each reconnects every 10..30 s;
//! - subscribers (45% of the clients), each on a random stream, for a random 20..200 frames;
//! - uploaders (25%): batches of 1..8 files of 1 B..64 KiB (1% of them 1.5 MiB, which the hub
//!   spools) under unique paths, 0.2..2 s apart; every acknowledged file is recorded;
//! - commanders (10%): `echo` commands to the devices, answers checked;
//! - texters (10%): text messages, answers checked;
//! - the rest churn: connect, ping, leave.
//!
//! A probe connection pings every 200 ms throughout (the hub's responsiveness under the load).
//! `SOAK_DEBUG=1` prints every stall (a subscriber 5 s without a frame, a ping over 1 s).
//!
//! At the end every acknowledged file is looked up in a fresh listing (same size and hash) and,
//! with `--data`, hashed on the hub's disk. Prints `key=value` lines: duration, clients, operations
//! by kind, errors by kind, files acknowledged / verified / lost. Exits 1 if any acknowledged file
//! was lost or the final checks could not run.

use std::collections::BTreeMap;
use std::error::Error;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use framewire_client::{
    frame_format, Client, ConnectOptions, FileOutcome, ProgressEvent, PublishOptions, Publisher,
    ReplyStatus, SendOptions, Subscriber, UploadJob,
};
use framewire_testkit::data::Rng;

type BoxResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

const STREAMS: usize = 4;
const DEVICES: [&str; 2] = ["soak-0", "soak-1"];
/// Longest wait for any single operation; past it the operation counts as a timeout error.
const OP_TIMEOUT: Duration = Duration::from_secs(20);

/// Counters shared by every task.
#[derive(Default)]
struct Figures {
    ops: Mutex<BTreeMap<&'static str, u64>>,
    errors: Mutex<BTreeMap<String, u64>>,
    upload_bytes: AtomicU64,
    /// Every file the hub acknowledged: remote path → (size, hash).
    acked: Mutex<BTreeMap<String, (u64, [u8; 32])>>,
}

impl Figures {
    fn op(&self, kind: &'static str, n: u64) {
        *self.ops.lock().unwrap().entry(kind).or_default() += n;
    }

    fn error(&self, kind: &str, e: impl std::fmt::Display) {
        // Group by the error's first words, not its details (paths, ids, durations).
        let text = e.to_string();
        let class: String = text
            .split([':', '(', '"'])
            .next()
            .unwrap_or("")
            .trim()
            .chars()
            .take(60)
            .collect();
        *self
            .errors
            .lock()
            .unwrap()
            .entry(format!("{kind}: {class}"))
            .or_default() += 1;
    }
}

/// Random pauses, in milliseconds from `lo` to `hi`.
trait Pauses {
    fn ms(&mut self, lo: u64, hi: u64) -> Duration;
}

impl Pauses for Rng {
    fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.range(lo, hi))
    }
}

struct Ctx {
    hub: String,
    work: PathBuf,
    deadline: Instant,
    fig: Figures,
}

impl Ctx {
    fn running(&self) -> bool {
        Instant::now() < self.deadline
    }

    fn opts(&self, name: String) -> ConnectOptions {
        ConnectOptions {
            name,
            io_timeout: OP_TIMEOUT,
            ..ConnectOptions::default()
        }
    }

    async fn connect(&self, name: String) -> Option<Client> {
        match tokio::time::timeout(OP_TIMEOUT, Client::connect(&self.hub, self.opts(name))).await {
            Ok(Ok(c)) => {
                self.fig.op("connect", 1);
                Some(c)
            }
            Ok(Err(e)) => {
                self.fig.error("connect", e);
                None
            }
            Err(_) => {
                self.fig.error("connect", "timeout");
                None
            }
        }
    }

    /// Sleeps, but not past the deadline.
    async fn pause(&self, d: Duration) {
        let left = self.deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(d.min(left)).await;
    }
}

async fn publisher(ctx: Arc<Ctx>, k: usize) {
    let mut rng = Rng::new(1000 + k as u64);
    let name = format!("soak-{k}");
    let (w, h) = (160u32, 120u32);
    while ctx.running() {
        let mut opts = PublishOptions::new(&name);
        opts.device = DEVICES.contains(&name.as_str());
        let mut p = match Publisher::connect(&ctx.hub, ctx.opts(name.clone()), opts).await {
            Ok(p) => p,
            Err(e) => {
                ctx.fig.error("publish", e);
                ctx.pause(Duration::from_millis(500)).await;
                continue;
            }
        };
        ctx.fig.op("connect", 1);
        let device = p.commands().map(|mut rx| {
            let ctx = Arc::clone(&ctx);
            tokio::spawn(async move {
                while let Some(cmd) = rx.recv().await {
                    ctx.fig.op("command_answered", 1);
                    let text = cmd.args.join(" ");
                    cmd.ok(text);
                }
            })
        });
        let session = Instant::now() + rng.ms(10_000, 30_000);
        let mut seq = 0u64;
        while ctx.running() && Instant::now() < session {
            seq += 1;
            let payload: Vec<u8> = (0..w * h).map(|i| (i as u64 + seq) as u8).collect();
            p.publish(Bytes::from(payload), frame_format::GRAY8, w, h, now_us());
            ctx.fig.op("frame_published", 1);
            tokio::time::sleep(Duration::from_millis(66)).await;
        }
        let s = p.stats();
        ctx.fig.op("frame_acked_by_hub", s.acked);
        if rng.chance(50) {
            p.close(Duration::from_secs(2)).await;
            ctx.fig.op("disconnect_polite", 1);
        } else {
            drop(p);
            ctx.fig.op("disconnect_abrupt", 1);
        }
        if let Some(d) = device {
            d.abort();
        }
    }
}

async fn subscriber(ctx: Arc<Ctx>, k: usize) {
    let mut rng = Rng::new(2000 + k as u64);
    ctx.pause(rng.ms(0, 3000)).await;
    while ctx.running() {
        let stream = format!("soak-{}", rng.below(STREAMS as u64));
        let mut s = match tokio::time::timeout(
            OP_TIMEOUT,
            Subscriber::connect(&ctx.hub, ctx.opts(format!("sub-{k}")), &stream),
        )
        .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                ctx.fig.error("subscribe", e);
                ctx.pause(Duration::from_millis(500)).await;
                continue;
            }
            Err(_) => {
                ctx.fig.error("subscribe", "timeout");
                continue;
            }
        };
        ctx.fig.op("connect", 1);
        let want = rng.range(20, 200);
        let slow = rng.chance(20);
        let mut got = 0;
        while ctx.running() && got < want {
            match tokio::time::timeout(Duration::from_secs(5), s.next()).await {
                Ok(Some(_f)) => {
                    got += 1;
                    ctx.fig.op("frame_received", 1);
                    if slow {
                        // A slow consumer: must get fresh frames, never slow anyone else.
                        tokio::time::sleep(Duration::from_millis(150)).await;
                    }
                }
                Ok(None) => break,
                // Publishers reconnect now and then; a gap is not an error of the hub.
                // (At the end of the run the publishers stop first: not counted.)
                Err(_) if !ctx.running() => break,
                Err(_) => {
                    ctx.fig.op("frame_wait_5s", 1);
                    let l = s.link();
                    if std::env::var_os("SOAK_DEBUG").is_some() {
                        eprintln!(
                            "{:?} sub-{k} {stream}: 5 s without a frame after {got}; link {l:?}",
                            Instant::now()
                        );
                    }
                }
            }
        }
        if rng.chance(50) {
            s.close().await;
            ctx.fig.op("disconnect_polite", 1);
        } else {
            drop(s);
            ctx.fig.op("disconnect_abrupt", 1);
        }
        ctx.pause(rng.ms(0, 1000)).await;
    }
}

async fn uploader(ctx: Arc<Ctx>, k: usize) {
    let mut rng = Rng::new(3000 + k as u64);
    let dir = ctx.work.join(format!("u{k}"));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        ctx.fig.error("upload", e);
        return;
    }
    let mut n = 0u64;
    ctx.pause(rng.ms(0, 3000)).await;
    while ctx.running() {
        let Some(mut client) = ctx.connect(format!("up-{k}")).await else {
            ctx.pause(Duration::from_millis(500)).await;
            continue;
        };
        let batches = rng.range(1, 10);
        let mut abrupt = false;
        for _ in 0..batches {
            if !ctx.running() {
                break;
            }
            let mut jobs = Vec::new();
            for _ in 0..rng.range(1, 8) {
                n += 1;
                let len = if rng.chance(1) {
                    3 << 19
                } else {
                    rng.range(1, 64 << 10) as usize
                };
                let local = dir.join(format!("{n}.bin"));
                if let Err(e) = std::fs::write(&local, rng.bytes(len)) {
                    ctx.fig.error("upload", e);
                    continue;
                }
                jobs.push(UploadJob {
                    local,
                    remote: format!("soak/u{k}/{n}.bin"),
                });
            }
            let files: Vec<PathBuf> = jobs.iter().map(|j| j.local.clone()).collect();
            // Now and then the client walks away in the middle of the upload.
            let cut = rng.chance(8).then(|| rng.ms(1, 40));
            let fig = &ctx.fig;
            let send = client.send_files(jobs, SendOptions::default(), |ev| {
                if let ProgressEvent::FileFinished(FileOutcome::Stored(f)) = ev {
                    fig.op("file_stored", 1);
                    fig.upload_bytes.fetch_add(f.size, Relaxed);
                    fig.acked
                        .lock()
                        .unwrap()
                        .insert(f.remote.clone(), (f.size, f.hash));
                }
            });
            let result = match cut {
                Some(d) => tokio::time::timeout(d, send).await.ok(),
                None => Some(send.await),
            };
            for f in files {
                let _ = std::fs::remove_file(f);
            }
            match result {
                None => {
                    ctx.fig.op("upload_cut_mid_way", 1);
                    abrupt = true;
                    break;
                }
                Some(Ok(report)) => {
                    ctx.fig.op("upload_batch", 1);
                    for f in &report.failed {
                        ctx.fig.error("upload_file", &f.reason);
                    }
                    if let Some(why) = report.interrupted {
                        ctx.fig.error("upload", why);
                        break;
                    }
                }
                Some(Err(e)) => {
                    ctx.fig.error("upload", e);
                    break;
                }
            }
            ctx.pause(rng.ms(200, 2000)).await;
        }
        drop(client);
        ctx.fig.op(
            if abrupt {
                "disconnect_abrupt"
            } else {
                "disconnect_polite"
            },
            1,
        );
        ctx.pause(rng.ms(0, 1000)).await;
    }
}

async fn commander(ctx: Arc<Ctx>, k: usize) {
    let mut rng = Rng::new(4000 + k as u64);
    ctx.pause(rng.ms(500, 3000)).await;
    while ctx.running() {
        let Some(mut client) = ctx.connect(format!("cmd-{k}")).await else {
            ctx.pause(Duration::from_millis(500)).await;
            continue;
        };
        for _ in 0..rng.range(1, 20) {
            if !ctx.running() {
                break;
            }
            let device = DEVICES[rng.below(DEVICES.len() as u64) as usize];
            let arg = format!("{k}-{}", rng.next_u64() % 100_000);
            match client
                .command(device, "echo", std::slice::from_ref(&arg))
                .await
            {
                Ok(r) if r.status == ReplyStatus::Ok && r.text() == arg => {
                    ctx.fig.op("command_ok", 1)
                }
                // The device is between two connections: the hub says so, as it should.
                Ok(r) if r.status == ReplyStatus::UnknownDevice => {
                    ctx.fig.op("command_device_away", 1)
                }
                // The device dropped its connection while the command was on its way: the hub
                // (or the device's library) answers for it, as it should.
                Ok(r)
                    if r.status == ReplyStatus::Failed
                        && (r.text().contains("disconnected") || r.text().contains("dropped")) =>
                {
                    ctx.fig.op("command_device_left", 1)
                }
                Ok(r) => ctx.fig.error(
                    "command",
                    format!("unexpected reply {:?}: {}", r.status, r.text()),
                ),
                Err(e) => {
                    ctx.fig.error("command", e);
                    break;
                }
            }
            ctx.pause(rng.ms(20, 400)).await;
        }
        drop(client);
        ctx.fig.op("disconnect_polite", 1);
        ctx.pause(rng.ms(0, 1000)).await;
    }
}

async fn texter(ctx: Arc<Ctx>, k: usize) {
    let mut rng = Rng::new(5000 + k as u64);
    ctx.pause(rng.ms(0, 3000)).await;
    while ctx.running() {
        let Some(mut client) = ctx.connect(format!("text-{k}")).await else {
            ctx.pause(Duration::from_millis(500)).await;
            continue;
        };
        for _ in 0..rng.range(1, 30) {
            if !ctx.running() {
                break;
            }
            let text = format!("hello from {k}: {}", rng.next_u64());
            match client.message(&text).await {
                Ok(answer) if answer == text => ctx.fig.op("text_ok", 1),
                Ok(answer) => ctx.fig.error("text", format!("odd answer {answer:?}")),
                Err(e) => {
                    ctx.fig.error("text", e);
                    break;
                }
            }
            ctx.pause(rng.ms(20, 300)).await;
        }
        drop(client);
        ctx.fig.op("disconnect_polite", 1);
        ctx.pause(rng.ms(0, 1000)).await;
    }
}

async fn churner(ctx: Arc<Ctx>, k: usize) {
    let mut rng = Rng::new(6000 + k as u64);
    while ctx.running() {
        if let Some(mut client) = ctx.connect(format!("churn-{k}")).await {
            match client.ping().await {
                Ok(_) => ctx.fig.op("ping_ok", 1),
                Err(e) => ctx.fig.error("ping", e),
            }
            drop(client);
            ctx.fig.op("disconnect_abrupt", 1);
        }
        ctx.pause(rng.ms(50, 600)).await;
    }
}

/// One connection that pings every 200 ms for the whole run: how responsive the hub stays.
async fn probe(ctx: Arc<Ctx>) -> Vec<Duration> {
    let mut rtts = Vec::new();
    let mut client = None;
    while ctx.running() {
        if client.is_none() {
            client = ctx.connect("probe".into()).await;
        }
        if let Some(c) = client.as_mut() {
            match c.ping().await {
                Ok(r) => {
                    if r.rtt > Duration::from_secs(1) && std::env::var_os("SOAK_DEBUG").is_some() {
                        eprintln!("{:?} probe: ping took {:?}", Instant::now(), r.rtt);
                    }
                    rtts.push(r.rtt);
                }
                Err(e) => {
                    ctx.fig.error("probe_ping", e);
                    client = None;
                }
            }
        }
        ctx.pause(Duration::from_millis(200)).await;
    }
    rtts
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Every acknowledged file, in a fresh listing and (with `data`) on the hub's disk.
async fn verify(ctx: &Ctx, data: Option<PathBuf>) -> BoxResult<(usize, usize, usize)> {
    let mut client = Client::connect(&ctx.hub, ctx.opts("soak-verify".into())).await?;
    let listed: BTreeMap<String, (u64, [u8; 32])> = client
        .list("soak/")
        .await?
        .into_iter()
        .map(|e| (e.path, (e.size, e.hash)))
        .collect();
    let acked = ctx.fig.acked.lock().unwrap().clone();
    let (mut verified, mut lost, mut on_disk) = (0, 0, 0);
    for (path, want) in &acked {
        if listed.get(path) == Some(want) {
            verified += 1;
        } else {
            lost += 1;
            eprintln!("lost: {path} (listed as {:?})", listed.get(path));
        }
        if let Some(d) = &data {
            match std::fs::read(d.join("files").join(path)) {
                Ok(b) if *blake3::hash(&b).as_bytes() == want.1 => on_disk += 1,
                _ => eprintln!("not on disk as acknowledged: {path}"),
            }
        }
    }
    Ok((verified, lost, on_disk))
}

async fn run(args: BTreeMap<String, String>) -> BoxResult<bool> {
    let get = |k: &str| args.get(k).cloned();
    let hub = get("hub").ok_or("--hub is required")?;
    let work = PathBuf::from(get("work").ok_or("--work is required")?);
    let seconds: u64 = get("seconds").unwrap_or("120".into()).parse()?;
    let clients: usize = get("clients").unwrap_or("200".into()).parse()?;
    let data = get("data").map(PathBuf::from);
    let started = Instant::now();
    let ctx = Arc::new(Ctx {
        hub,
        work,
        deadline: started + Duration::from_secs(seconds),
        fig: Figures::default(),
    });
    let rest = clients.saturating_sub(STREAMS);
    let subs = rest * 45 / 100;
    let ups = rest * 25 / 100;
    let cmds = rest * 10 / 100;
    let texts = rest * 10 / 100;
    let churn = rest - subs - ups - cmds - texts;
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..STREAMS {
        tasks.spawn(publisher(Arc::clone(&ctx), k));
    }
    for k in 0..subs {
        tasks.spawn(subscriber(Arc::clone(&ctx), k));
    }
    for k in 0..ups {
        tasks.spawn(uploader(Arc::clone(&ctx), k));
    }
    for k in 0..cmds {
        tasks.spawn(commander(Arc::clone(&ctx), k));
    }
    for k in 0..texts {
        tasks.spawn(texter(Arc::clone(&ctx), k));
    }
    for k in 0..churn {
        tasks.spawn(churner(Arc::clone(&ctx), k));
    }
    let probe = tokio::spawn(probe(Arc::clone(&ctx)));
    eprintln!(
        "soak: {clients} clients ({STREAMS} publishers, {subs} subscribers, {ups} uploaders, \
         {cmds} commanders, {texts} texters, {churn} churners) for {seconds} s"
    );
    // Every task checks the deadline between operations, each bounded by OP_TIMEOUT.
    let drain_by = ctx.deadline + OP_TIMEOUT + Duration::from_secs(15);
    let drained = tokio::time::timeout_at(drain_by.into(), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        eprintln!("some tasks did not finish in time; aborting them");
        ctx.fig.error("soak", "task still running at the end");
        tasks.abort_all();
    }
    let duration = started.elapsed();
    let mut rtts = probe.await.unwrap_or_default();
    rtts.sort();
    let (verified, lost, on_disk) = match verify(&ctx, data.clone()).await {
        Ok(x) => x,
        Err(e) => {
            eprintln!("final check failed: {e}");
            return Ok(false);
        }
    };
    let acked = ctx.fig.acked.lock().unwrap().len();
    println!("duration_s={:.1}", duration.as_secs_f64());
    println!("clients={clients}");
    for (k, v) in ctx.fig.ops.lock().unwrap().iter() {
        println!("op.{k}={v}");
    }
    println!("op.upload_mib={}", ctx.fig.upload_bytes.load(Relaxed) >> 20);
    if !rtts.is_empty() {
        let q = |p: f64| rtts[((rtts.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0;
        println!(
            "probe_ping_ms p50={:.2} p99={:.1} max={:.1} over_1s={} samples={}",
            q(0.5),
            q(0.99),
            q(1.0),
            rtts.iter().filter(|r| r.as_secs() >= 1).count(),
            rtts.len()
        );
    }
    let errors = ctx.fig.errors.lock().unwrap();
    for (k, v) in errors.iter() {
        println!("error.{}={v}", k.replace(' ', "_"));
    }
    println!("errors_total={}", errors.values().sum::<u64>());
    println!("files_acknowledged={acked}");
    println!("files_verified_listed={verified}");
    if data.is_some() {
        println!("files_verified_on_disk={on_disk}");
    }
    println!("files_lost={lost}");
    Ok(lost == 0 && (data.is_none() || on_disk == acked))
}

fn main() -> std::process::ExitCode {
    let mut args = BTreeMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let (Some(name), Some(v)) = (a.strip_prefix("--"), it.next()) else {
            eprintln!("usage: soak_client --hub ADDR --work DIR [--seconds 120] [--clients 200] [--data DIR]");
            return std::process::ExitCode::from(2);
        };
        args.insert(name.to_owned(), v);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("soak_client: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match rt.block_on(run(args)) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak_client: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
