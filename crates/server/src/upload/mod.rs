//! The upload pipeline: the one place that decides whether an upload may happen and how it
//! ends, whichever door its bytes come through (native `Offer`, HTTP `PUT`, a raw connection).
//!
//! ```text
//! door ──admit(who, path, size, flags)──▶ Pipeline: permission, path rules, size limit,
//!                                         path lease, exists/overwrite, storage reservation,
//!                                         resume offset ──▶ Upload | Existing | Refusal
//! door ──write(bytes)…──────────────────▶ Upload: size check, hash, staged in batches on the
//!                                         blocking pool (or kept in memory if small)
//! door ──finish(hash)───────────────────▶ verify ──▶ Verified ──commit──▶ group committer
//!                                         ──▶ outcome: counters, event, log line, answer
//! ```
//!
//! Refusals and outcomes are counted and put in the event log here, once; doors only translate
//! them for their clients.

mod committer;
mod lease;
mod quota;
// `upload::Upload` is the pipeline's central type; the module is named for it.
#[allow(clippy::module_inception)]
mod upload;

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use framewire_proto::{ErrorCode, RemotePath, StoredStatus};
use tokio::sync::{mpsc, oneshot, Semaphore};

pub(crate) use upload::Upload;

use crate::auth::Perms;
use crate::events::EventLog;
use crate::gate::Work;
use crate::stats::Stats;
use crate::store::{Committed, PartialKey, Refusal, Storage};
use committer::Committer;
use lease::{Lease, Leases};
use quota::Quota;

/// Who is uploading: the name recorded as the file's sender, and what they may do.
#[derive(Debug, Clone)]
pub(crate) struct Uploader {
    pub(crate) sender: String,
    pub(crate) perms: Perms,
}

/// What a door asks for.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) path: RemotePath,
    /// `None`: not known until the bytes end (a raw upload, a chunked PUT).
    pub(crate) size: Option<u64>,
    /// Replace a different file at the path.
    pub(crate) overwrite: bool,
    /// Continue a kept partial upload, and answer an identical stored file with its hash
    /// ([`Admitted::Existing`]) instead of taking the bytes.
    pub(crate) resume: bool,
    /// Without `resume`: a stored file of the same size may be identical, so take the bytes and
    /// let the commit answer Unchanged or Exists (HTTP PUT). Otherwise any stored file refuses an
    /// upload without `overwrite` at once (a native offer with `NO_RESUME`).
    pub(crate) identical_ok: bool,
}

/// An admitted request.
pub(crate) enum Admitted {
    /// Send the bytes from [`Upload::offset`].
    Upload(Upload),
    /// A file of the same size is stored: the client compares hashes.
    Existing(Existing),
}

/// A stored file of the offered size; the upload ends with the client's hash.
pub(crate) struct Existing {
    pipeline: Arc<Pipeline>,
    path: RemotePath,
    size: u64,
    hash: [u8; 32],
    sender: String,
    _lease: Lease,
}

impl Existing {
    /// The stored file's hash.
    pub(crate) fn hash(&self) -> [u8; 32] {
        self.hash
    }

    /// The stored file's size.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Unchanged if the client's hash is the stored one; else refused as a different file.
    ///
    /// # Errors
    /// [`ErrorCode::Exists`].
    pub(crate) fn finish(self, client_hash: Option<[u8; 32]>) -> Result<Stored, Refusal> {
        if client_hash == Some(self.hash) {
            self.pipeline.stats.file_unchanged();
            return Ok(Stored {
                status: StoredStatus::Unchanged,
                size: self.size,
                hash: self.hash,
            });
        }
        let r = exists_refusal(&self.path, self.size);
        self.pipeline.refused(&self.sender, &r);
        Err(r)
    }
}

/// A stored upload, as a door reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stored {
    pub(crate) status: StoredStatus,
    pub(crate) size: u64,
    pub(crate) hash: [u8; 32],
}

/// Where a commit's outcome goes.
pub(crate) enum Notify {
    /// One waiter (HTTP, raw).
    Once(oneshot::Sender<Result<Stored, Refusal>>),
    /// A connection's results channel, drained in batches; `tag` names the upload. Unbounded,
    /// but never holds more than the connection's outstanding offers (`max_inflight`).
    Channel(mpsc::UnboundedSender<(u32, Result<Stored, Refusal>)>, u32),
}

impl Notify {
    fn send(self, r: Result<Stored, Refusal>) {
        match self {
            Notify::Once(tx) => {
                let _ = tx.send(r);
            }
            Notify::Channel(tx, tag) => {
                let _ = tx.send((tag, r));
            }
        }
    }
}

/// The upload pipeline of a hub.
pub(crate) struct Pipeline {
    storage: Arc<dyn Storage>,
    committer: Committer,
    quota: Arc<Quota>,
    leases: Arc<Leases>,
    work: Work,
    stats: Arc<Stats>,
    events: Arc<EventLog>,
    max_file_size: u64,
    closing: AtomicBool,
}

impl Pipeline {
    /// A pipeline over `storage`, with its committer thread started.
    ///
    /// # Errors
    /// If the committer thread cannot be started.
    pub(crate) fn start(
        storage: Arc<dyn Storage>,
        config: &crate::Config,
        work: Work,
        stats: Arc<Stats>,
        events: Arc<EventLog>,
    ) -> std::io::Result<Arc<Pipeline>> {
        let (files, bytes) = storage.totals();
        stats.set_stored_totals(files, bytes);
        Ok(Arc::new(Pipeline {
            committer: Committer::start(Arc::clone(&storage))?,
            quota: Quota::new(config.max_storage, Arc::clone(&stats), Arc::clone(&storage)),
            leases: Arc::default(),
            storage,
            work,
            stats,
            events,
            max_file_size: config.max_file_size,
            closing: AtomicBool::new(false),
        }))
    }

    /// Admits a request, or refuses it (counted and logged as an event here).
    ///
    /// `memory`: a door that reads many small files on one connection passes its budget for
    /// holding them in memory until their commit; without one, bytes are always staged.
    ///
    /// # Errors
    /// The refusal, with its code: `Forbidden`, `TooLarge`, `Busy` (another upload to the path),
    /// `BadPath`/`Exists` (what is on the hub), `StorageFull`, `ShuttingDown`.
    pub(crate) async fn admit(
        self: &Arc<Self>,
        who: &Uploader,
        req: Request,
        memory: Option<Arc<Semaphore>>,
    ) -> Result<Admitted, Refusal> {
        let r = self.admit_inner(who, req, memory).await;
        if let Err(e) = &r {
            self.refused(&who.sender, e);
        }
        r
    }

    async fn admit_inner(
        self: &Arc<Self>,
        who: &Uploader,
        req: Request,
        memory: Option<Arc<Semaphore>>,
    ) -> Result<Admitted, Refusal> {
        if !who.perms.allows(Perms::UPLOAD) {
            return Err(Refusal::new(
                ErrorCode::Forbidden,
                "this token may not upload",
            ));
        }
        if self.closing.load(Relaxed) {
            return Err(Refusal::shutting_down());
        }
        let path = req.path.clone();
        if let Some(n) = req.size.filter(|n| *n > self.max_file_size) {
            return Err(Refusal::new(
                ErrorCode::TooLarge,
                format!(
                    "{path} is {n} bytes; this hub stores files up to {} bytes",
                    self.max_file_size
                ),
            ));
        }
        let lease = self.leases.take(&path)?;
        let key = req.size.map(|size| PartialKey {
            path: path.clone(),
            size,
        });
        let plan = {
            let storage = Arc::clone(&self.storage);
            let (p, k, r) = (path.clone(), key.clone(), req.clone());
            self.work
                .disk(move || plan(&*storage, &p, k.as_ref(), &r))
                .await??
        };
        let (offset, resume) = match plan {
            Plan::Existing { hash, size } => {
                return Ok(Admitted::Existing(Existing {
                    pipeline: Arc::clone(self),
                    path,
                    size,
                    hash,
                    sender: who.sender.clone(),
                    _lease: lease,
                }))
            }
            Plan::Fresh => (0, None),
            Plan::Resume { offset } => {
                let storage = Arc::clone(&self.storage);
                let k = key.clone().expect("resume needs a size");
                let hashed = self
                    .work
                    .disk(move || storage.hash_partial(&k, offset))
                    .await??;
                (offset, Some(hashed))
            }
        };
        let what = match req.size {
            Some(n) => format!("{path} ({n} bytes)"),
            None => path.to_string(),
        };
        let reservation = self
            .quota
            .reserve(req.size.unwrap_or(0).saturating_sub(offset), &what)?;
        Ok(Admitted::Upload(Upload::new(upload::Start {
            pipeline: Arc::clone(self),
            path,
            key,
            offset,
            resume,
            overwrite: req.overwrite,
            sender: who.sender.clone(),
            lease,
            reservation,
            memory,
        })))
    }

    /// Counts a refusal and puts it in the event log (a client's own cancel is not an event).
    pub(crate) fn refused(&self, sender: &str, r: &Refusal) {
        self.stats.upload_failed(r.code);
        if r.code != ErrorCode::Cancelled {
            tracing::info!(from = %sender, code = r.code.name(), reason = %r.reason, "upload refused");
            self.events.emit("reject", sender, r.reason.clone());
        }
    }

    /// What happens once an upload is stored: counters, the log line, the event.
    fn stored(&self, sender: &str, path: &RemotePath, s: &Stored, c: &Committed) {
        match s.status {
            StoredStatus::Unchanged => self.stats.file_unchanged(),
            _ => {
                self.stats.file_stored(s.size, c.replaced_size, s.status);
                tracing::info!(%path, size = s.size, from = %sender, status = ?s.status, "stored");
                self.events.emit(
                    "upload",
                    sender,
                    format!("stored {path} ({} bytes)", s.size),
                );
            }
        }
    }

    /// Refuses new uploads from now on (shutdown); uploads already admitted may finish.
    pub(crate) fn stop_admitting(&self) {
        self.closing.store(true, Relaxed);
    }

    /// Waits for every commit submitted so far, stops the committer and flushes the storage.
    pub(crate) fn close(&self) {
        self.stop_admitting();
        self.committer.close();
        self.storage.close();
    }
}

enum Plan {
    Fresh,
    Resume { offset: u64 },
    Existing { hash: [u8; 32], size: u64 },
}

/// Decides how an admitted upload starts, from what is on the hub. Blocking.
fn plan(
    storage: &dyn Storage,
    path: &RemotePath,
    key: Option<&PartialKey>,
    req: &Request,
) -> Result<Plan, Refusal> {
    storage.check_target(path)?;
    if let Some(rec) = storage.record(path.as_str())? {
        if req.resume && Some(rec.size) == req.size {
            return Ok(Plan::Existing {
                hash: rec.hash,
                size: rec.size,
            });
        }
        let maybe_identical = req.identical_ok && req.size.is_none_or(|n| n == rec.size);
        if !req.overwrite && !maybe_identical {
            return Err(exists_refusal(path, rec.size));
        }
    }
    let Some(key) = key else {
        return Ok(Plan::Fresh);
    };
    if !req.resume {
        storage.discard_partial(key);
        return Ok(Plan::Fresh);
    }
    Ok(match storage.partial_len(key) {
        Some(n) if n > 0 && n <= key.size => Plan::Resume { offset: n },
        _ => Plan::Fresh,
    })
}

fn exists_refusal(path: &RemotePath, stored_size: u64) -> Refusal {
    Refusal::new(
        ErrorCode::Exists,
        format!("a different file ({stored_size} bytes) is already stored at {path}; send with --overwrite to replace it"),
    )
}
