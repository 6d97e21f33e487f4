//! Crash-safety harness helper (issue 5), driven by `bench/crash/run.sh`.
//!
//! ```text
//! crash_client gen    --out DIR --seed N [--clients 4] [--small 40]
//! crash_client upload --hub ADDR --src DIR --to REMOTE_DIR --log FILE [--clients 4]
//! crash_client verify --data DATA --src ROOT --log FILE
//! ```
//!
//! - `gen` writes `DIR/c0 .. DIR/c{clients-1}`, each with `small` files of 0..64 KiB, one just over
//!   the hub's in-memory limit (1 MiB) and one of 3..6 MiB, all with content unique to `seed`.
//! - `upload` runs one connection per `DIR/cK` at once and appends a line `remote<TAB>blake3<TAB>size`
//!   to `FILE` for every file the hub acknowledged as stored (the progress callback's
//!   `FileFinished(Stored)`), fsyncing the log after every batch of lines. It prints
//!   `stored=N failed=N interrupted=N` and exits 0 only if every file was stored.
//! - `verify` checks that every acknowledged file is under `DATA/files` with its hash, and that
//!   every file under `DATA/files` is byte-identical to `ROOT/<its path>` (no partial or foreign
//!   file is visible). It prints `acked=N found=N missing=N corrupt=N files=N partial=N` and exits
//!   non-zero on any problem.
//!
//! Every wait is bounded: connections and I/O use the client's timeouts, an upload gives up after
//! `--limit-secs` (default 300).

use std::collections::BTreeMap;
use std::error::Error;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use framewire_client::{Client, ConnectOptions, FileOutcome, ProgressEvent, SendOptions};
use framewire_testkit::data::Rng;

type BoxResult<T> = Result<T, Box<dyn Error>>;

/// Flags as `--name value` pairs.
struct Flags(BTreeMap<String, String>);

impl Flags {
    fn parse(args: &[String]) -> BoxResult<Flags> {
        let mut m = BTreeMap::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let name = a
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {a:?}"))?;
            let v = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
            m.insert(name.to_owned(), v.clone());
        }
        Ok(Flags(m))
    }

    fn str(&self, name: &str) -> BoxResult<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| format!("--{name} is required").into())
    }

    fn num(&self, name: &str, default: u64) -> BoxResult<u64> {
        match self.0.get(name) {
            Some(v) => Ok(v.parse().map_err(|_| format!("--{name}: not a number"))?),
            None => Ok(default),
        }
    }
}

fn gen(f: &Flags) -> BoxResult<()> {
    let out = PathBuf::from(f.str("out")?);
    let seed = f.num("seed", 1)?;
    let clients = f.num("clients", 4)?;
    let small = f.num("small", 40)?;
    let mut rng = Rng::new(seed);
    let mut bytes = 0usize;
    let mut files = 0usize;
    for c in 0..clients {
        let dir = out.join(format!("c{c}"));
        std::fs::create_dir_all(dir.join("small"))?;
        let mut write = |p: PathBuf, len: usize| -> BoxResult<()> {
            // The seed and path lead the content, so no two files of a run are alike.
            let mut data = format!("{seed}:{}:", p.display()).into_bytes();
            data.extend(rng.bytes(len.saturating_sub(data.len())));
            data.truncate(len);
            bytes += data.len();
            files += 1;
            std::fs::write(p, data)?;
            Ok(())
        };
        for i in 0..small {
            let len = if i == 0 {
                0
            } else {
                (seed as usize * 31 + i as usize * 977) % (64 << 10)
            };
            write(dir.join(format!("small/{i:03}.jpg")), len)?;
        }
        write(dir.join("medium.bin"), (1 << 20) + 1 + (c as usize) * 4096)?;
        let large = (3 << 20) + ((seed * 7919 + c * 104_729) % (3 << 20)) as usize;
        write(dir.join("large.bin"), large)?;
    }
    println!("files={files} bytes={bytes}");
    Ok(())
}

/// Appends acknowledged files to the log, fsyncing after every batch: what is in the log was
/// acknowledged, even if this process dies right after.
fn log_writer(path: PathBuf, rx: mpsc::Receiver<String>) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut w = std::io::BufWriter::new(file);
    while let Ok(line) = rx.recv() {
        writeln!(w, "{line}")?;
        while let Ok(line) = rx.try_recv() {
            writeln!(w, "{line}")?;
        }
        w.flush()?;
        w.get_ref().sync_data()?;
    }
    w.flush()?;
    w.get_ref().sync_data()
}

#[derive(Default, Debug)]
struct UploadTotals {
    stored: usize,
    failed: usize,
    interrupted: usize,
    errors: Vec<String>,
}

async fn upload_one(
    hub: String,
    dir: PathBuf,
    to: String,
    log: mpsc::Sender<String>,
    name: String,
) -> UploadTotals {
    let mut t = UploadTotals::default();
    let opts = ConnectOptions {
        name,
        io_timeout: Duration::from_secs(20),
        ..ConnectOptions::default()
    };
    let mut client = match Client::connect(&hub, opts).await {
        Ok(c) => c,
        Err(e) => {
            t.interrupted = 1;
            t.errors.push(format!("connect: {e}"));
            return t;
        }
    };
    let result = client
        .send_dir(&dir, Some(&to), SendOptions::default(), |ev| {
            if let ProgressEvent::FileFinished(FileOutcome::Stored(f)) = ev {
                let _ = log.send(format!("{}\t{}\t{}", f.remote, hex::encode(f.hash), f.size));
            }
        })
        .await;
    match result {
        Ok(report) => {
            t.stored = report.stored.len() + report.skipped.len();
            t.failed = report.failed.len();
            if let Some(why) = report.interrupted {
                t.interrupted = 1;
                t.errors.push(why);
            }
        }
        Err(e) => {
            t.interrupted = 1;
            t.errors.push(e.to_string());
        }
    }
    t
}

async fn upload(f: &Flags) -> BoxResult<bool> {
    let hub = f.str("hub")?.to_owned();
    let src = PathBuf::from(f.str("src")?);
    let to = f.str("to")?.to_owned();
    let clients = f.num("clients", 4)?;
    let limit = Duration::from_secs(f.num("limit-secs", 300)?);
    let (tx, rx) = mpsc::channel();
    let log_path = PathBuf::from(f.str("log")?);
    let writer = std::thread::spawn(move || log_writer(log_path, rx));
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        tasks.spawn(upload_one(
            hub.clone(),
            src.join(format!("c{c}")),
            to.clone(),
            tx.clone(),
            format!("crash-{c}"),
        ));
    }
    drop(tx);
    let mut total = UploadTotals::default();
    let all = async {
        while let Some(r) = tasks.join_next().await {
            let t = r.expect("upload task");
            total.stored += t.stored;
            total.failed += t.failed;
            total.interrupted += t.interrupted;
            total.errors.extend(t.errors);
        }
    };
    if tokio::time::timeout(limit, all).await.is_err() {
        total.errors.push(format!("gave up after {limit:?}"));
        total.interrupted += 1;
    }
    tasks.abort_all();
    // The log holds every acknowledgement before this process reports anything.
    writer.join().expect("log writer")?;
    println!(
        "stored={} failed={} interrupted={}",
        total.stored, total.failed, total.interrupted
    );
    if let Some(e) = total.errors.first() {
        eprintln!("first error: {e}");
    }
    Ok(total.failed == 0 && total.interrupted == 0)
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(_) => out.push(p),
                Err(_) => {}
            }
        }
    }
    out.sort();
    out
}

fn hash_file(p: &Path) -> Option<String> {
    let bytes = std::fs::read(p).ok()?;
    Some(blake3::hash(&bytes).to_hex().to_string())
}

fn verify(f: &Flags) -> BoxResult<bool> {
    let files = PathBuf::from(f.str("data")?).join("files");
    let src = PathBuf::from(f.str("src")?);
    let log = std::fs::read_to_string(f.str("log")?).unwrap_or_default();
    let mut acked = BTreeMap::new();
    for line in log.lines() {
        let mut parts = line.split('\t');
        if let (Some(path), Some(hash)) = (parts.next(), parts.next()) {
            acked.insert(path.to_owned(), hash.to_owned());
        }
    }
    let (mut found, mut missing, mut corrupt) = (0, 0, 0);
    for (path, want) in &acked {
        match hash_file(&files.join(path)) {
            Some(h) if &h == want => found += 1,
            Some(_) => {
                corrupt += 1;
                eprintln!("acknowledged file differs: {path}");
            }
            None => {
                missing += 1;
                eprintln!("acknowledged file missing: {path}");
            }
        }
    }
    let on_disk = walk(&files);
    let mut partial = 0;
    for p in &on_disk {
        let rel = p.strip_prefix(&files)?;
        let same = match (hash_file(p), hash_file(&src.join(rel))) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        };
        if !same {
            partial += 1;
            eprintln!(
                "visible file is not a complete source file: {}",
                rel.display()
            );
        }
    }
    println!(
        "acked={} found={found} missing={missing} corrupt={corrupt} files={} partial={partial}",
        acked.len(),
        on_disk.len()
    );
    Ok(missing == 0 && corrupt == 0 && partial == 0)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprintln!("usage: crash_client gen|upload|verify --flag value ...");
        return ExitCode::from(2);
    };
    let run = || -> BoxResult<bool> {
        let flags = Flags::parse(&args[1..])?;
        match cmd.as_str() {
            "gen" => gen(&flags).map(|_| true),
            "upload" => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?
                .block_on(upload(&flags)),
            "verify" => verify(&flags),
            other => Err(format!("unknown command {other:?}").into()),
        }
    };
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("crash_client: {e}");
            ExitCode::from(2)
        }
    }
}
