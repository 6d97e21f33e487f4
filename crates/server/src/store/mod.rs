//! Durable file storage: spool → verify → commit.
//!
//! An upload moves through three steps, and only the last one makes it visible:
//! 1. **plan** ([`Store::plan_upload`]): check the path and the index, and decide where the client
//!    should start (0, the length of a kept partial upload, or the whole size of an identical
//!    stored file);
//! 2. **spool** ([`Store::open_spool`]): bytes go to `spool/<key>.part`, hashed with BLAKE3 as they
//!    are written, on a blocking thread;
//! 3. **commit** ([`Store::commit`]): a single committer thread takes every verified spool file
//!    that is waiting, makes the batch durable with one file-system sync, renames each into
//!    `files/<path>`, makes the renames durable with a second sync, records them in the index and
//!    only then answers. Many small files therefore share two syncs instead of paying one each.
//!
//! An object store would replace steps 2 and 3 (multipart upload, then complete) behind the same
//! calls; nothing outside this module touches the data folder.

mod commit;
mod index;
mod reconcile;

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use framewire_proto::{ErrorCode, RemotePath, StoredStatus};
use tokio::sync::{mpsc, oneshot};

pub use index::FileRecord;
pub use reconcile::ReconcileReport;

use crate::stats::Stats;
use crate::ServerError;
use index::Index;

/// Longest side of thumbnails, in pixels.
pub const THUMBNAIL_SIDE: u32 = 320;

/// Capacity of the channel between a connection and its spool writer, in chunks: enough to keep
/// the disk busy while the socket is read, small enough to bound memory per connection.
const SPOOL_QUEUE_CHUNKS: usize = 8;
/// Coalesce small writes into the spool file.
const SPOOL_WRITE_BUFFER: usize = 1 << 20;

/// The data folder: stored files, uploads in progress and the index.
pub struct Store {
    files_dir: PathBuf,
    thumbs_dir: PathBuf,
    spool_dir: PathBuf,
    reader: Mutex<Index>,
    busy: Mutex<HashSet<String>>,
    committer: commit::CommitQueue,
    stats: Arc<Stats>,
}

/// What the hub tells a client that offers a file.
#[derive(Debug)]
pub enum UploadPlan {
    /// Send from `offset`; the hub holds `[0, offset)` of a partial upload (hashing to
    /// `prefix_hash`) or nothing (`offset == 0`).
    Spool {
        /// First byte wanted.
        offset: u64,
        /// BLAKE3 of the bytes held.
        prefix_hash: [u8; 32],
        /// The hash state after those bytes, to continue from.
        hasher: Box<blake3::Hasher>,
    },
    /// A file of the same size is stored at the path: the client compares hashes and the upload
    /// ends without data if they match.
    CheckExisting {
        /// The stored file's hash.
        hash: [u8; 32],
    },
}

/// Why an upload was refused, for the `Rejected` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Machine-readable reason.
    pub code: ErrorCode,
    /// Human-readable reason.
    pub reason: String,
}

impl Refusal {
    pub(crate) fn new(code: ErrorCode, reason: impl Into<String>) -> Self {
        Refusal {
            code,
            reason: reason.into(),
        }
    }

    fn internal(e: impl std::fmt::Display) -> Self {
        Refusal::new(ErrorCode::Internal, format!("storage error: {e}"))
    }
}

/// Exclusive claim on a path while one upload to it is in progress; released on drop.
pub struct PathLease {
    path: String,
    busy: Arc<Store>,
}

impl Drop for PathLease {
    fn drop(&mut self) {
        self.busy.busy.lock().unwrap().remove(&self.path);
    }
}

/// Bytes of one upload on their way to a spool file.
pub struct SpoolWriter {
    tx: mpsc::Sender<Bytes>,
    task: tokio::task::JoinHandle<io::Result<SpoolDone>>,
}

/// A spool file whose bytes are all written (not yet durable).
pub struct SpoolDone {
    file: File,
    spool_path: PathBuf,
    /// BLAKE3 of everything in the spool file.
    pub hash: [u8; 32],
    /// Length of the spool file.
    pub len: u64,
}

impl SpoolDone {
    /// Removes the spool file (after a failed verification).
    pub fn discard(self) {
        drop(self.file);
        let _ = fs::remove_file(&self.spool_path);
    }
}

impl SpoolWriter {
    /// Queues a chunk; waits if the writer is behind.
    ///
    /// # Errors
    /// If the writer stopped (its error comes from [`SpoolWriter::finish`]).
    pub async fn write(&self, chunk: Bytes) -> Result<(), ()> {
        self.tx.send(chunk).await.map_err(|_| ())
    }

    /// Waits for every queued chunk to be written.
    ///
    /// # Errors
    /// The write error, classified (a full disk is [`ErrorCode::StorageFull`]).
    pub async fn finish(self) -> Result<SpoolDone, Refusal> {
        drop(self.tx);
        match self.task.await {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(e)) => Err(classify_io(&e)),
            Err(e) => Err(Refusal::internal(e)),
        }
    }
}

/// Turns an I/O error into the refusal a client sees.
pub(crate) fn classify_io(e: &io::Error) -> Refusal {
    let full = e.kind() == io::ErrorKind::StorageFull
        || matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT));
    if full {
        Refusal::new(
            ErrorCode::StorageFull,
            "storage full: the hub's disk has no room left",
        )
    } else {
        Refusal::internal(e)
    }
}

impl Store {
    /// Opens (creating if needed) the data folder, reconciles the index with the disk, and starts
    /// the committer thread. Blocking: call it from a blocking context.
    ///
    /// # Errors
    /// If the folder, the index or the committer cannot be set up.
    pub fn open(
        data_dir: &Path,
        stats: Arc<Stats>,
    ) -> Result<(Arc<Store>, ReconcileReport), ServerError> {
        let files_dir = data_dir.join("files");
        let spool_dir = data_dir.join("spool");
        let thumbs_dir = data_dir.join("thumbs");
        for d in [data_dir, &files_dir, &spool_dir, &thumbs_dir] {
            fs::create_dir_all(d).map_err(|e| ServerError::DataDir(d.to_path_buf(), e))?;
        }
        let index_path = data_dir.join("index.sqlite");
        let mut writer = Index::open(&index_path).map_err(ServerError::Index)?;
        let report = reconcile::reconcile(&files_dir, &spool_dir, &mut writer)?;
        let reader = Index::open(&index_path).map_err(ServerError::Index)?;
        let committer = commit::CommitQueue::start(writer, files_dir.clone(), Arc::clone(&stats))
            .map_err(|e| ServerError::DataDir(data_dir.to_path_buf(), e))?;
        let (files, bytes) = reader.totals().map_err(ServerError::Index)?;
        stats.set_stored_totals(files, bytes);
        Ok((
            Arc::new(Store {
                files_dir,
                thumbs_dir,
                spool_dir,
                reader: Mutex::new(reader),
                busy: Mutex::new(HashSet::new()),
                committer,
                stats,
            }),
            report,
        ))
    }

    /// Claims `path` for one upload.
    ///
    /// # Errors
    /// [`ErrorCode::Busy`] if another upload to it is in progress.
    pub fn lease(self: &Arc<Self>, path: &RemotePath) -> Result<PathLease, Refusal> {
        let mut busy = self.busy.lock().unwrap();
        if !busy.insert(path.as_str().to_owned()) {
            return Err(Refusal::new(
                ErrorCode::Busy,
                format!("another upload to {path} is in progress"),
            ));
        }
        Ok(PathLease {
            path: path.as_str().to_owned(),
            busy: Arc::clone(self),
        })
    }

    /// Decides how an offered upload starts. Blocking (may hash a kept partial upload).
    ///
    /// # Errors
    /// A [`Refusal`] the client should see (exists, conflicts with a folder, storage error).
    pub fn plan_upload(
        &self,
        path: &RemotePath,
        size: u64,
        overwrite: bool,
        no_resume: bool,
    ) -> Result<UploadPlan, Refusal> {
        self.check_target_shape(path)?;
        let stored = self.record(path.as_str()).map_err(Refusal::internal)?;
        if let Some(rec) = &stored {
            if !no_resume && rec.size == size {
                return Ok(UploadPlan::CheckExisting { hash: rec.hash });
            }
            if !overwrite {
                return Err(exists_refusal(path, rec.size));
            }
        }
        let spool = self.spool_path(path, size);
        if no_resume {
            let _ = fs::remove_file(&spool);
        } else if let Ok(meta) = fs::metadata(&spool) {
            if meta.len() > 0 && meta.len() <= size {
                let (hasher, prefix_hash) =
                    hash_file_prefix(&spool, meta.len()).map_err(|e| classify_io(&e))?;
                return Ok(UploadPlan::Spool {
                    offset: meta.len(),
                    prefix_hash,
                    hasher: Box::new(hasher),
                });
            }
        }
        Ok(UploadPlan::Spool {
            offset: 0,
            prefix_hash: [0; 32],
            hasher: Box::new(blake3::Hasher::new()),
        })
    }

    /// Refuses paths whose target is a folder or whose folders are files or links, before any
    /// byte is sent (the committer checks again, under its lock).
    fn check_target_shape(&self, path: &RemotePath) -> Result<(), Refusal> {
        let mut cur = self.files_dir.clone();
        let segments: Vec<&str> = path.segments().collect();
        for (i, seg) in segments.iter().enumerate() {
            cur.push(seg);
            let last = i + 1 == segments.len();
            match fs::symlink_metadata(&cur) {
                Err(_) => return Ok(()),
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(Refusal::new(
                        ErrorCode::BadPath,
                        format!(
                            "{} is a symbolic link on the hub; refusing to follow it",
                            segments[..=i].join("/")
                        ),
                    ))
                }
                Ok(m) if last && m.is_dir() => {
                    return Err(Refusal::new(
                        ErrorCode::Exists,
                        format!("{path} is a folder on the hub"),
                    ))
                }
                Ok(m) if !last && !m.is_dir() => {
                    return Err(Refusal::new(
                        ErrorCode::Exists,
                        format!(
                            "{} is a file on the hub, but {path} needs it to be a folder",
                            segments[..=i].join("/")
                        ),
                    ))
                }
                Ok(_) => {}
            }
        }
        Ok(())
    }

    /// Starts writing an upload's bytes from `offset` into its spool file.
    pub fn open_spool(
        &self,
        path: &RemotePath,
        size: u64,
        offset: u64,
        hasher: blake3::Hasher,
    ) -> SpoolWriter {
        spawn_spool_writer(self.spool_path(path, size), offset, hasher)
    }

    /// Starts a spool file for an upload that cannot resume (HTTP `PUT`, snapshots). Its name ends
    /// in `.tmp`, so one left behind by a crash is removed at the next start.
    pub fn open_spool_fresh(&self) -> SpoolWriter {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("fresh-{}-{n}.tmp", std::process::id());
        spawn_spool_writer(self.spool_dir.join(name), 0, blake3::Hasher::new())
    }

    /// Refuses paths that cannot be stored because of what is on the hub: a folder at the path, a
    /// file where a folder is needed, a symbolic link.
    ///
    /// # Errors
    /// The [`Refusal`] the client should see.
    pub fn check_path(&self, path: &RemotePath) -> Result<(), Refusal> {
        self.check_target_shape(path)
    }
}

/// Writes chunks to `spool_path` from `offset` on a blocking thread, hashing them on the way.
fn spawn_spool_writer(spool_path: PathBuf, offset: u64, hasher: blake3::Hasher) -> SpoolWriter {
    {
        let (tx, mut rx) = mpsc::channel::<Bytes>(SPOOL_QUEUE_CHUNKS);
        let task = tokio::task::spawn_blocking(move || -> io::Result<SpoolDone> {
            let mut hasher = hasher;
            let mut file = OpenOptions::new()
                .create(true)
                .truncate(offset == 0)
                .write(true)
                .read(true)
                .open(&spool_path)?;
            if offset > 0 {
                // Drop anything past the verified prefix (a torn last write) and append after it.
                file.set_len(offset)?;
                file.seek(SeekFrom::Start(offset))?;
            }
            let mut out = io::BufWriter::with_capacity(SPOOL_WRITE_BUFFER, file);
            let mut len = offset;
            while let Some(chunk) = rx.blocking_recv() {
                hasher.update(&chunk);
                out.write_all(&chunk)?;
                len += chunk.len() as u64;
            }
            let file = out.into_inner().map_err(|e| e.into_error())?;
            Ok(SpoolDone {
                file,
                spool_path,
                hash: *hasher.finalize().as_bytes(),
                len,
            })
        });
        SpoolWriter { tx, task }
    }
}

impl Store {
    /// Makes a verified spool file durable and visible at `path`, in a group commit. Resolves once
    /// the file and its directory entry are on stable storage and the index records it.
    pub async fn commit(
        &self,
        path: RemotePath,
        done: SpoolDone,
        overwrite: bool,
        sender: String,
    ) -> Result<StoredStatus, Refusal> {
        let (reply, rx) = oneshot::channel();
        let req = commit::CommitRequest {
            path,
            spool_path: done.spool_path,
            file: done.file,
            size: done.len,
            hash: done.hash,
            overwrite,
            sender,
            reply,
        };
        if let Err(req) = self.committer.submit(req) {
            let _ = fs::remove_file(&req.spool_path);
            return Err(Refusal::new(
                ErrorCode::ShuttingDown,
                "the hub is shutting down",
            ));
        }
        rx.await
            .unwrap_or_else(|_| Err(Refusal::new(ErrorCode::Internal, "the committer stopped")))
    }

    /// Throws away the partial upload of `path` (after a `Cancel` or a failed verification).
    pub fn discard_partial(&self, path: &RemotePath, size: u64) {
        let _ = fs::remove_file(self.spool_path(path, size));
    }

    /// The index record of a stored file.
    ///
    /// # Errors
    /// If the index cannot be read.
    pub fn record(&self, path: &str) -> rusqlite::Result<Option<FileRecord>> {
        self.reader.lock().unwrap().get(path)
    }

    /// A page of stored files under `prefix`, after `after`, from `sender` (empty: anyone).
    ///
    /// # Errors
    /// If the index cannot be read.
    pub fn list(
        &self,
        prefix: &str,
        after: &str,
        sender: &str,
        limit: usize,
    ) -> rusqlite::Result<(Vec<FileRecord>, bool)> {
        self.reader
            .lock()
            .unwrap()
            .list(prefix, after, sender, limit)
    }

    /// Opens a stored file for reading, with its record.
    ///
    /// # Errors
    /// [`ErrorCode::NotFound`] if nothing is stored there.
    pub fn open_stored(&self, path: &RemotePath) -> Result<(File, FileRecord), Refusal> {
        let rec = self
            .record(path.as_str())
            .map_err(Refusal::internal)?
            .ok_or_else(|| {
                Refusal::new(ErrorCode::NotFound, format!("no file stored at {path}"))
            })?;
        let file = File::open(self.files_dir.join(path.as_str()))
            .map_err(|_| Refusal::new(ErrorCode::NotFound, format!("no file stored at {path}")))?;
        Ok((file, rec))
    }

    /// A JPEG thumbnail (at most [`THUMBNAIL_SIDE`] pixels a side) of a stored JPEG or PNG, made
    /// once and cached under `thumbs/` by content hash. Blocking.
    ///
    /// # Errors
    /// [`ErrorCode::NotFound`] if nothing is stored there; [`ErrorCode::Malformed`] if it is not
    /// a decodable image.
    pub fn thumbnail(&self, path: &RemotePath) -> Result<Bytes, Refusal> {
        let (mut file, rec) = self.open_stored(path)?;
        let cached = self
            .thumbs_dir
            .join(format!("{}-{THUMBNAIL_SIDE}.jpg", hex::encode(rec.hash)));
        if let Ok(b) = fs::read(&cached) {
            return Ok(Bytes::from(b));
        }
        let mut data = Vec::with_capacity(rec.size as usize);
        file.read_to_end(&mut data).map_err(|e| classify_io(&e))?;
        let thumb = framewire_media::thumbnail(&data, THUMBNAIL_SIDE).map_err(|e| {
            Refusal::new(
                ErrorCode::Malformed,
                format!("{path} is not a readable image: {e}"),
            )
        })?;
        // Best effort: a cache write that fails (disk full) just means making it again next time.
        let tmp = cached.with_extension("tmp");
        if fs::write(&tmp, &thumb).is_ok() {
            let _ = fs::rename(&tmp, &cached);
        }
        Ok(thumb)
    }

    /// Waits until every commit submitted so far is done and stops the committer.
    pub fn close(&self) {
        self.committer.close();
    }

    /// Counters shared with the rest of the hub.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// One spool file per (path, size): a re-sent upload of the same file finds its partial bytes,
    /// a changed size starts afresh.
    fn spool_path(&self, path: &RemotePath, size: u64) -> PathBuf {
        let key = blake3::hash(path.as_str().as_bytes());
        self.spool_dir
            .join(format!("{}-{size}.part", &key.to_hex()[..32]))
    }
}

fn exists_refusal(path: &RemotePath, stored_size: u64) -> Refusal {
    Refusal::new(
        ErrorCode::Exists,
        format!("a different file ({stored_size} bytes) is already stored at {path}; send with --overwrite to replace it"),
    )
}

/// Hashes the first `len` bytes of a file: the hash of the prefix and the state to continue from.
fn hash_file_prefix(path: &Path, len: u64) -> io::Result<(blake3::Hasher, [u8; 32])> {
    let mut f = File::open(path)?.take(len);
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let h = *hasher.finalize().as_bytes();
    Ok((hasher, h))
}
