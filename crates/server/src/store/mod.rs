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

/// How an offered upload starts, as decided from the index and the spool (cheap: a few `stat`s
/// and one index lookup, no hashing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadPlan {
    /// Nothing held: send from byte 0.
    Fresh,
    /// A partial upload of this path and size holds `offset` bytes; hash them with
    /// [`Store::hash_partial`] before answering.
    Resume {
        /// Bytes held.
        offset: u64,
    },
    /// A file of the same size is stored at the path: the client compares hashes and the upload
    /// ends without data if they match.
    CheckExisting {
        /// The stored file's hash.
        hash: [u8; 32],
    },
}

/// What a finished upload hands to the committer.
pub enum CommitSource {
    /// Bytes already written to a spool file (large or resumed uploads).
    Spool(SpoolDone),
    /// A small file held in memory: the committer writes it out as part of its batch, so small
    /// files cost no thread hand-off of their own.
    Memory {
        /// The file's bytes, in order.
        chunks: Vec<Bytes>,
        /// Their total length.
        len: u64,
        /// Their BLAKE3.
        hash: [u8; 32],
    },
}

impl CommitSource {
    /// Size of the file.
    pub fn len(&self) -> u64 {
        match self {
            CommitSource::Spool(d) => d.len,
            CommitSource::Memory { len, .. } => *len,
        }
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// BLAKE3 of the file.
    pub fn hash(&self) -> [u8; 32] {
        match self {
            CommitSource::Spool(d) => d.hash,
            CommitSource::Memory { hash, .. } => *hash,
        }
    }
}

/// A commit's outcome, delivered on a connection's channel.
#[derive(Debug)]
pub struct Committed {
    /// The tag given to [`Store::submit`] (the connection uses the file id).
    pub tag: u32,
    /// Stored (new, replaced, unchanged) or refused.
    pub result: Result<StoredStatus, Refusal>,
}

/// Where a commit's outcome goes.
pub enum CommitNotify {
    /// One waiter (HTTP uploads).
    Once(oneshot::Sender<Result<StoredStatus, Refusal>>),
    /// A connection's result channel: many outcomes, drained in batches.
    Channel {
        /// The connection's receiver.
        tx: mpsc::UnboundedSender<Committed>,
        /// Identifies the upload.
        tag: u32,
    },
}

impl CommitNotify {
    pub(crate) fn send(self, result: Result<StoredStatus, Refusal>) {
        match self {
            CommitNotify::Once(tx) => {
                let _ = tx.send(result);
            }
            CommitNotify::Channel { tx, tag } => {
                let _ = tx.send(Committed { tag, result });
            }
        }
    }
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
    pub(crate) fn into_parts(self) -> (File, PathBuf, u64, [u8; 32]) {
        (self.file, self.spool_path, self.len, self.hash)
    }

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
        let committer = commit::CommitQueue::start(
            writer,
            files_dir.clone(),
            spool_dir.clone(),
            Arc::clone(&stats),
        )
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

    /// Decides how an offered upload starts. Cheap enough to call from async code: a few `stat`s
    /// and one index lookup.
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
                return Ok(UploadPlan::Resume { offset: meta.len() });
            }
        }
        Ok(UploadPlan::Fresh)
    }

    /// Hashes the `offset` bytes a partial upload holds: their hash for the client to compare, and
    /// the hash state to continue from. Blocking (reads the bytes).
    ///
    /// # Errors
    /// If the partial cannot be read.
    pub fn hash_partial(
        &self,
        path: &RemotePath,
        size: u64,
        offset: u64,
    ) -> Result<(blake3::Hasher, [u8; 32]), Refusal> {
        hash_file_prefix(&self.spool_path(path, size), offset).map_err(|e| classify_io(&e))
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
    /// Queues a verified upload for the group committer: durable and visible at `path` once the
    /// outcome arrives through `notify`. `budget` (memory held by an in-memory upload) is released
    /// when the commit is done.
    pub fn submit(
        &self,
        path: RemotePath,
        source: CommitSource,
        overwrite: bool,
        sender: String,
        notify: CommitNotify,
        budget: Option<tokio::sync::OwnedSemaphorePermit>,
    ) {
        let req = commit::CommitRequest {
            path,
            source,
            overwrite,
            sender,
            notify,
            _budget: budget,
        };
        if let Err(req) = self.committer.submit(req) {
            if let CommitSource::Spool(d) = req.source {
                d.discard();
            }
            req.notify.send(Err(Refusal::new(
                ErrorCode::ShuttingDown,
                "the hub is shutting down",
            )));
        }
    }

    /// Makes a verified spool file durable and visible at `path`, in a group commit. Resolves once
    /// the file and its directory entry are on stable storage and the index records it.
    ///
    /// # Errors
    /// The refusal (exists, storage full, shutting down...).
    pub async fn commit(
        &self,
        path: RemotePath,
        done: SpoolDone,
        overwrite: bool,
        sender: String,
    ) -> Result<StoredStatus, Refusal> {
        let (tx, rx) = oneshot::channel();
        self.submit(
            path,
            CommitSource::Spool(done),
            overwrite,
            sender,
            CommitNotify::Once(tx),
            None,
        );
        rx.await
            .unwrap_or_else(|_| Err(Refusal::new(ErrorCode::Internal, "the committer stopped")))
    }

    /// Keeps the bytes an interrupted in-memory upload received, as its partial upload, so that
    /// re-sending resumes from them. Blocking. Best effort: on failure the upload restarts at 0.
    pub fn keep_partial(&self, path: &RemotePath, size: u64, chunks: &[Bytes]) {
        let spool = self.spool_path(path, size);
        let written = (|| -> io::Result<()> {
            let mut f = File::create(&spool)?;
            for c in chunks {
                f.write_all(c)?;
            }
            Ok(())
        })();
        if written.is_err() {
            let _ = fs::remove_file(&spool);
        }
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
