//! The storage seam: what the upload pipeline, downloads and listings need from wherever files
//! live. [`Storage`] is the interface; [`LocalStorage`] (the data folder on a local disk) is its
//! one implementation. An object store would be a second one, and no door would change.
//!
//! Every method is blocking (the local disk is): callers run them on the blocking pool, bounded by
//! the hub's work budgets ([`crate::gate::Work`]), never on an async worker.

mod local;

use std::io::{self, Read};

use bytes::Bytes;
use framewire_proto::{ErrorCode, RemotePath, StoredStatus};

pub use local::{FileRecord, LocalStorage, ReconcileReport};

/// Longest side of thumbnails, in pixels.
pub const THUMBNAIL_SIDE: u32 = 320;

/// Where a stored file's bytes are durable: the local data folder, or (later) an object store.
pub trait Storage: Send + Sync + 'static {
    /// The record of the file stored at `path`.
    ///
    /// # Errors
    /// If the index cannot be read.
    fn record(&self, path: &str) -> Result<Option<FileRecord>, Refusal>;

    /// A page of stored files under `prefix`, after `after`, from `sender` (empty: anyone), and
    /// whether more follow.
    ///
    /// # Errors
    /// If the index cannot be read.
    fn list(
        &self,
        prefix: &str,
        after: &str,
        sender: &str,
        limit: usize,
    ) -> Result<(Vec<FileRecord>, bool), Refusal>;

    /// Opens a stored file for reading from byte `start`, with its record.
    ///
    /// # Errors
    /// [`ErrorCode::NotFound`] if nothing is stored there.
    fn open_read(
        &self,
        path: &RemotePath,
        start: u64,
    ) -> Result<(Box<dyn Read + Send>, FileRecord), Refusal>;

    /// Removes a stored file durably: once this returns `Ok(Some(size))`, the file is gone from
    /// the disk and the listing, even after a crash. `Ok(None)`: nothing was stored there.
    /// Callers hold the path's lease, so no upload to it commits meanwhile.
    ///
    /// # Errors
    /// If the file or its index row cannot be removed.
    fn delete(&self, path: &RemotePath) -> Result<Option<u64>, Refusal>;

    /// Refuses paths that cannot be stored because of what is already there: a folder at the
    /// path, a file where a folder is needed, a symbolic link.
    ///
    /// # Errors
    /// The [`Refusal`] the client should see.
    fn check_target(&self, path: &RemotePath) -> Result<(), Refusal>;

    /// Bytes held by the partial upload `key`, if any.
    fn partial_len(&self, key: &PartialKey) -> Option<u64>;

    /// Bytes held by partial uploads that no upload is writing now (they count against the
    /// storage limit until resumed or removed).
    fn partial_bytes(&self) -> u64;

    /// Hashes the first `len` bytes of partial `key`: their hash, and the state to continue from.
    ///
    /// # Errors
    /// If the partial cannot be read.
    fn hash_partial(
        &self,
        key: &PartialKey,
        len: u64,
    ) -> Result<(blake3::Hasher, [u8; 32]), Refusal>;

    /// Opens a place for an upload's bytes: partial `key` from `offset` (earlier bytes kept,
    /// anything after them dropped), or a fresh anonymous one for `None` (uploads that cannot
    /// resume; a crash leaves nothing visible and start-up removes it).
    ///
    /// # Errors
    /// If it cannot be created.
    fn stage(&self, key: Option<&PartialKey>, offset: u64) -> Result<Box<dyn Staged>, Refusal>;

    /// Keeps `chunks` as partial `key` (an interrupted in-memory upload), so that re-sending
    /// resumes from them. Best effort.
    fn keep_partial(&self, key: &PartialKey, chunks: &[Bytes]);

    /// Throws partial `key` away.
    fn discard_partial(&self, key: &PartialKey);

    /// Makes a batch of verified uploads durable and visible, and answers each in order. Only an
    /// `Ok` answer may be acknowledged to a client, and it must then be listed by
    /// [`Storage::record`] and [`Storage::list`].
    fn commit_batch(&self, batch: Vec<CommitItem>) -> Vec<Result<Committed, Refusal>>;

    /// Files and bytes stored now.
    fn totals(&self) -> (u64, u64);

    /// A cached derivative (thumbnail) by name, if one was kept.
    fn cached(&self, name: &str) -> Option<Bytes>;

    /// Keeps a derivative by name. Best effort.
    fn keep_cached(&self, name: &str, bytes: &[u8]);

    /// Flushes whatever is pending; called once, last, at shutdown.
    fn close(&self);
}

/// Identifies a partial upload: one per (path, size), so a re-sent upload of the same file finds
/// its bytes, and a changed size starts afresh.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartialKey {
    /// The remote path.
    pub path: RemotePath,
    /// The announced size.
    pub size: u64,
}

/// An upload's bytes on their way to storage (a spool file, a multipart upload).
pub trait Staged: Send + Sync + 'static {
    /// Appends bytes. Blocking.
    ///
    /// # Errors
    /// The write error (a full disk is [`io::ErrorKind::StorageFull`]).
    fn write_all(&mut self, chunks: &[Bytes]) -> io::Result<()>;

    /// Bytes held, counting those kept from before (`offset`).
    fn len(&self) -> u64;

    /// Whether nothing is held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps the bytes for resuming (a partial) or, for anonymous staging, removes them.
    fn park(self: Box<Self>);

    /// Removes the bytes.
    fn discard(self: Box<Self>);

    /// For the storage that made it: its own type back.
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send>;
}

/// The bytes of a verified upload, handed to [`Storage::commit_batch`].
pub enum CommitData {
    /// Staged by [`Storage::stage`].
    Staged(Box<dyn Staged>),
    /// A small file held in memory, written out inside the batch.
    Memory(Vec<Bytes>),
}

/// One verified upload to make durable.
pub struct CommitItem {
    /// Where it goes.
    pub path: RemotePath,
    /// Its bytes.
    pub data: CommitData,
    /// Their length.
    pub size: u64,
    /// Their BLAKE3.
    pub hash: [u8; 32],
    /// Whether a different file at `path` may be replaced.
    pub overwrite: bool,
    /// Who sent it (recorded in the index).
    pub sender: String,
}

/// A successful commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// New, replaced or unchanged.
    pub status: StoredStatus,
    /// Size of the file it replaced (0 if none).
    pub replaced_size: u64,
}

/// Why an upload or a request was refused, for the `Rejected` message or the HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Machine-readable reason.
    pub code: ErrorCode,
    /// Human-readable reason.
    pub reason: String,
}

impl Refusal {
    /// A refusal with its code and reason.
    pub fn new(code: ErrorCode, reason: impl Into<String>) -> Self {
        Refusal {
            code,
            reason: reason.into(),
        }
    }

    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        Refusal::new(ErrorCode::Internal, format!("storage error: {e}"))
    }

    pub(crate) fn shutting_down() -> Self {
        Refusal::new(ErrorCode::ShuttingDown, "the hub is shutting down")
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.reason, self.code.name())
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

/// A JPEG thumbnail (at most [`THUMBNAIL_SIDE`] pixels a side) of a stored JPEG or PNG, made once
/// and kept by content hash. Blocking.
///
/// # Errors
/// [`ErrorCode::NotFound`] if nothing is stored there; [`ErrorCode::Malformed`] if it is not a
/// decodable image.
/// The decoding's memory (and the file's bytes) is charged to the hub's memory budget first; when
/// the budget does not have it, the answer is `Busy`.
pub(crate) fn thumbnail(
    storage: &dyn Storage,
    path: &RemotePath,
    memory: &crate::gate::Memory,
) -> Result<Bytes, Refusal> {
    let (mut file, rec) = storage.open_read(path, 0)?;
    let name = format!("{}-{THUMBNAIL_SIDE}.jpg", hex::encode(rec.hash));
    if let Some(b) = storage.cached(&name) {
        return Ok(b);
    }
    let busy = || {
        Refusal::new(
            ErrorCode::Busy,
            "the hub's memory budget is in use; try the thumbnail again later",
        )
    };
    let _file_charge = memory.try_charge(rec.size as usize).ok_or_else(busy)?;
    let mut data = Vec::with_capacity(rec.size.min(64 << 20) as usize);
    file.read_to_end(&mut data).map_err(|e| classify_io(&e))?;
    let unreadable = |e: framewire_media::ImageError| {
        Refusal::new(
            ErrorCode::Malformed,
            format!("{path} is not a readable image: {e}"),
        )
    };
    let (_, w, h) = framewire_media::probe(&data).map_err(unreadable)?;
    let _decode_charge = memory
        .try_charge(framewire_media::decode_cost(w, h))
        .ok_or_else(busy)?;
    let thumb = framewire_media::thumbnail(&data, THUMBNAIL_SIDE).map_err(unreadable)?;
    storage.keep_cached(&name, &thumb);
    Ok(thumb)
}
