//! The group committer: one thread that makes verified uploads durable in batches.
//!
//! Per batch: sync the file data (one `syncfs` for the whole batch on Linux, one `fsync` when the
//! batch holds a single file), rename each spool file into place, sync again so the renames and
//! any new folders are durable, update the index in one transaction, then answer every upload.
//! While a batch is being synced the next one queues up, so the number of syncs per file falls as
//! the load rises.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{SystemTime, UNIX_EPOCH};

use framewire_proto::{ErrorCode, RemotePath, StoredStatus};

use super::index::{FileRecord, Index};
use super::{classify_io, CommitNotify, CommitSource, Refusal};
use crate::stats::Stats;

/// Most uploads committed together.
const MAX_BATCH: usize = 4096;

pub(crate) struct CommitRequest {
    pub(crate) path: RemotePath,
    pub(crate) source: CommitSource,
    pub(crate) overwrite: bool,
    pub(crate) sender: String,
    pub(crate) notify: CommitNotify,
    /// Memory the upload holds; released when the request is dropped (committed or refused).
    pub(crate) _budget: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// A request whose bytes are in a file of the spool folder, ready to be synced and renamed.
struct OnDisk {
    req: CommitRequest,
    file: File,
    spool_path: PathBuf,
    size: u64,
    hash: [u8; 32],
}

pub(crate) struct CommitQueue {
    tx: Mutex<Option<mpsc::Sender<CommitRequest>>>,
    thread: Mutex<Option<thread::JoinHandle<()>>>,
}

impl CommitQueue {
    pub(crate) fn start(
        index: Index,
        files_dir: PathBuf,
        spool_dir: PathBuf,
        stats: Arc<Stats>,
    ) -> io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("framewire-commit".into())
            .spawn(move || run(rx, index, files_dir, spool_dir, stats))?;
        Ok(CommitQueue {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues a request; gives it back if the committer has stopped.
    pub(crate) fn submit(&self, req: CommitRequest) -> Result<(), Box<CommitRequest>> {
        match &*self.tx.lock().unwrap() {
            Some(tx) => tx.send(req).map_err(|e| Box::new(e.0)),
            None => Err(Box::new(req)),
        }
    }

    /// Lets the queue drain, then stops the thread.
    pub(crate) fn close(&self) {
        self.tx.lock().unwrap().take();
        if let Some(t) = self.thread.lock().unwrap().take() {
            let _ = t.join();
        }
    }
}

fn run(
    rx: mpsc::Receiver<CommitRequest>,
    mut index: Index,
    files_dir: PathBuf,
    spool_dir: PathBuf,
    stats: Arc<Stats>,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        commit_batch(batch, &mut index, &files_dir, &spool_dir, &stats);
    }
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

pub(crate) fn mtime_ns(meta: &fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn commit_batch(
    batch: Vec<CommitRequest>,
    index: &mut Index,
    files_dir: &Path,
    spool_dir: &Path,
    stats: &Stats,
) {
    // 0. Small files held in memory are written out now, inside the batch.
    let mut on_disk = Vec::with_capacity(batch.len());
    for req in batch {
        on_disk.extend(materialize(req, spool_dir, stats));
    }
    if on_disk.is_empty() {
        return;
    }

    // 1. File data durable before any rename can make it visible.
    let synced = if on_disk.len() == 1 {
        on_disk[0].file.sync_all()
    } else {
        sync_filesystem(&on_disk[0].file)
    };
    if let Err(e) = synced {
        fail_all(on_disk, &classify_io(&e), stats);
        return;
    }

    // 2. Rename into place, refusing anything that would silently replace a different file.
    let mut renamed = Vec::with_capacity(on_disk.len());
    let mut dirs = BTreeSet::new();
    for d in on_disk {
        let target = files_dir.join(d.req.path.as_str());
        match place(&d, &target, files_dir, &mut dirs) {
            Ok(Placed::Renamed(status)) => renamed.push((d, target, status)),
            Ok(Placed::Unchanged) => {
                let _ = fs::remove_file(&d.spool_path);
                stats.file_unchanged();
                d.req.notify.send(Ok(StoredStatus::Unchanged));
            }
            Err(refusal) => {
                let _ = fs::remove_file(&d.spool_path);
                stats.upload_failed(refusal.code);
                d.req.notify.send(Err(refusal));
            }
        }
    }
    if renamed.is_empty() {
        return;
    }

    // 3. The renames (and new folders) durable.
    let synced = if renamed.len() == 1 {
        dirs.iter().try_for_each(|d| sync_dir(d))
    } else {
        sync_filesystem(&renamed[0].0.file)
    };
    if let Err(e) = synced {
        // Whether the renames survive a crash is unknown: say so rather than claim durability.
        tracing::error!(error = %e, "sync after rename failed");
        let refusal = classify_io(&e);
        for (d, target, _) in renamed {
            let _ = fs::remove_file(&target);
            stats.upload_failed(refusal.code);
            d.req.notify.send(Err(refusal.clone()));
        }
        return;
    }

    // 4. Index, then answers.
    let stored_us = now_us();
    let records: Vec<FileRecord> = renamed
        .iter()
        .map(|(d, target, _)| FileRecord {
            path: d.req.path.as_str().to_owned(),
            size: d.size,
            hash: d.hash,
            sender: d.req.sender.clone(),
            stored_us,
            mtime_ns: fs::metadata(target).map(|m| mtime_ns(&m)).unwrap_or(0),
        })
        .collect();
    if let Err(e) = index.upsert_many(&records) {
        // The files are durable and in place: they are stored. The next start's reconcile
        // re-indexes them; the hub logs the failure loudly.
        tracing::error!(error = %e, "index update failed; files stay stored and are re-indexed at the next start");
    }
    for (d, _, status) in renamed {
        stats.file_stored(d.size, status == StoredStatus::Replaced);
        d.req.notify.send(Ok(status));
    }
}

/// Gets a request's bytes into a spool file (writing them out if they are in memory); a request
/// that cannot be written is answered here.
fn materialize(req: CommitRequest, spool_dir: &Path, stats: &Stats) -> Option<OnDisk> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut req = req;
    let empty = CommitSource::Memory {
        chunks: Vec::new(),
        len: 0,
        hash: [0; 32],
    };
    match std::mem::replace(&mut req.source, empty) {
        CommitSource::Spool(done) => {
            let (file, spool_path, size, hash) = done.into_parts();
            Some(OnDisk {
                req,
                file,
                spool_path,
                size,
                hash,
            })
        }
        CommitSource::Memory { chunks, len, hash } => {
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let spool_path = spool_dir.join(format!("mem-{}-{n}.tmp", std::process::id()));
            let written = (|| {
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&spool_path)?;
                for c in &chunks {
                    f.write_all(c)?;
                }
                Ok::<_, io::Error>(f)
            })();
            match written {
                Ok(file) => Some(OnDisk {
                    req,
                    file,
                    spool_path,
                    size: len,
                    hash,
                }),
                Err(e) => {
                    let _ = fs::remove_file(&spool_path);
                    let refusal = classify_io(&e);
                    stats.upload_failed(refusal.code);
                    req.notify.send(Err(refusal));
                    None
                }
            }
        }
    }
}

enum Placed {
    Renamed(StoredStatus),
    Unchanged,
}

fn place(
    d: &OnDisk,
    target: &Path,
    files_dir: &Path,
    dirs: &mut BTreeSet<PathBuf>,
) -> Result<Placed, Refusal> {
    let req = &d.req;
    let status = match fs::symlink_metadata(target) {
        Ok(m) if m.is_dir() => {
            return Err(Refusal::new(
                ErrorCode::Exists,
                format!("{} is a folder on the hub", req.path),
            ))
        }
        Ok(m) => {
            if m.len() == d.size && hash_of(target)? == d.hash {
                return Ok(Placed::Unchanged);
            }
            if !req.overwrite {
                return Err(Refusal::new(
                    ErrorCode::Exists,
                    format!(
                        "a different file ({} bytes) is already stored at {}; send with --overwrite to replace it",
                        m.len(),
                        req.path
                    ),
                ));
            }
            StoredStatus::Replaced
        }
        Err(_) => StoredStatus::New,
    };
    let parent = target.parent().unwrap_or(files_dir);
    create_dirs(parent, files_dir, dirs).map_err(|e| {
        if e.kind() == io::ErrorKind::NotADirectory || e.kind() == io::ErrorKind::AlreadyExists {
            Refusal::new(
                ErrorCode::Exists,
                format!(
                    "a file on the hub is in the way of the folders of {}",
                    req.path
                ),
            )
        } else {
            classify_io(&e)
        }
    })?;
    fs::rename(&d.spool_path, target).map_err(|e| classify_io(&e))?;
    dirs.insert(parent.to_path_buf());
    Ok(Placed::Renamed(status))
}

/// Creates `dir` and its missing parents below `root`, remembering every folder whose entries
/// changed (so they can be synced).
fn create_dirs(dir: &Path, root: &Path, dirs: &mut BTreeSet<PathBuf>) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if dir != root {
        if let Some(parent) = dir.parent() {
            create_dirs(parent, root, dirs)?;
            dirs.insert(parent.to_path_buf());
        }
    }
    match fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Hash of a stored file (to tell an identical re-upload from a different one).
fn hash_of(path: &Path) -> Result<[u8; 32], Refusal> {
    let mut hasher = blake3::Hasher::new();
    hasher
        .update_reader(File::open(path).map_err(|e| classify_io(&e))?)
        .map_err(|e| classify_io(&e))?;
    Ok(*hasher.finalize().as_bytes())
}

fn fail_all(batch: Vec<OnDisk>, refusal: &Refusal, stats: &Stats) {
    for d in batch {
        let _ = fs::remove_file(&d.spool_path);
        stats.upload_failed(refusal.code);
        d.req.notify.send(Err(refusal.clone()));
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// One sync of the whole file system holding `file`: every dirty page and inode of the batch in a
/// single journal commit, instead of one per file.
#[cfg(target_os = "linux")]
fn sync_filesystem(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `syncfs` only reads the descriptor number, which `file` keeps open for the call.
    let rc = unsafe { libc::syncfs(file.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn sync_filesystem(file: &File) -> io::Result<()> {
    file.sync_all()
}
