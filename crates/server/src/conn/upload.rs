//! One connection's uploads: Offer → Accept → Data… → End → group commit → Stored.
//!
//! Small files (up to [`SMALL_FILE_MAX`]) are hashed as they arrive and kept in memory until
//! their End, then handed whole to the committer, which writes them out inside its batch: no
//! thread hand-off per file, which is what dominated the cost of many small files. Large and
//! resumed uploads stream to a spool file on a blocking thread, so a dropped connection keeps
//! their bytes for resuming. Commit outcomes come back on one channel per connection and are
//! drained in batches.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use framewire_proto::{
    offer_flags, Accept, ErrorCode, Message, Rejected, RemotePath, Stored, StoredStatus,
};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::{Fatal, Session};
use crate::clients::role;
use crate::store::{
    CommitNotify, CommitSource, Committed, PathLease, Refusal, SpoolWriter, UploadPlan,
};

/// Files up to this size are received in memory. If the connection drops mid-file, the bytes
/// received are written to the spool then, so the re-send resumes like a large upload's (only a
/// crash of the hub itself loses them).
pub(super) const SMALL_FILE_MAX: u64 = 1 << 20;
/// Memory one connection may hold in small files not yet committed; past it, reading waits.
const MEMORY_BUDGET: usize = 64 << 20;

/// How an accepted offer starts.
enum Start {
    Fresh,
    Resume {
        offset: u64,
        hasher: Box<blake3::Hasher>,
    },
    CheckExisting {
        hash: [u8; 32],
    },
}

/// An offer that was accepted and whose bytes have not started.
struct Pending {
    path: RemotePath,
    size: u64,
    flags: u8,
    lease: PathLease,
    start: Start,
}

/// Where an open upload's bytes go.
enum Sink {
    Memory {
        chunks: Vec<Bytes>,
        hasher: Box<blake3::Hasher>,
        budget: OwnedSemaphorePermit,
    },
    Spool(SpoolWriter),
}

/// The upload whose bytes are arriving now (one at a time per connection).
struct OpenUpload {
    id: u32,
    path: RemotePath,
    size: u64,
    flags: u8,
    lease: PathLease,
    received: u64,
    sink: Sink,
}

/// An upload handed to the committer, waiting for its outcome.
struct Committing {
    path: RemotePath,
    size: u64,
    hash: [u8; 32],
    _lease: PathLease,
}

/// All upload state of a connection.
pub(super) struct Uploads {
    pending: HashMap<u32, Pending>,
    open: Option<OpenUpload>,
    /// Uploads refused mid-transfer: their remaining `Data`/`End` are ignored.
    dead: HashSet<u32>,
    committing: HashMap<u32, Committing>,
    results_tx: mpsc::UnboundedSender<Committed>,
    pub(super) results: mpsc::UnboundedReceiver<Committed>,
    budget: Arc<Semaphore>,
}

impl Uploads {
    pub(super) fn new() -> Self {
        let (results_tx, results) = mpsc::unbounded_channel();
        Uploads {
            pending: HashMap::new(),
            open: None,
            dead: HashSet::new(),
            committing: HashMap::new(),
            results_tx,
            results,
            budget: Arc::new(Semaphore::new(MEMORY_BUDGET)),
        }
    }

    /// Offers without a final answer yet.
    fn outstanding(&self) -> usize {
        self.pending.len() + self.open.is_some() as usize + self.committing.len()
    }

    fn in_use(&self, id: u32) -> bool {
        self.pending.contains_key(&id)
            || self.committing.contains_key(&id)
            || self.open.as_ref().is_some_and(|u| u.id == id)
    }

    pub(super) fn committing(&self) -> usize {
        self.committing.len()
    }
}

impl Session {
    pub(super) async fn offer(&mut self, o: framewire_proto::Offer) {
        self.client.add_role(role::FILES);
        if self.uploads.in_use(o.id) {
            let r = Refusal::new(
                ErrorCode::ProtocolViolation,
                format!("file id {} is already in use", o.id),
            );
            return self.reject(o.id, r).await;
        }
        self.uploads.dead.remove(&o.id);
        let config = &self.hub.config;
        if self.uploads.outstanding() >= config.max_inflight as usize {
            let r = Refusal::new(
                ErrorCode::Busy,
                format!(
                    "more than {} offers in flight; wait for answers",
                    config.max_inflight
                ),
            );
            return self.reject(o.id, r).await;
        }
        let path = match RemotePath::parse(&o.path) {
            Ok(p) => p,
            Err(e) => {
                return self
                    .reject(
                        o.id,
                        Refusal::new(ErrorCode::BadPath, format!("{:?}: {e}", o.path)),
                    )
                    .await
            }
        };
        if o.size > config.max_file_size {
            let r = Refusal::new(
                ErrorCode::TooLarge,
                format!(
                    "{path} is {} bytes; this hub stores files up to {} bytes",
                    o.size, config.max_file_size
                ),
            );
            return self.reject(o.id, r).await;
        }
        if !self.hub.stats.storage_has_room(o.size, config.max_storage) {
            let r = Refusal::new(
                ErrorCode::StorageFull,
                format!(
                    "storage full: {path} ({} bytes) does not fit the hub's storage limit",
                    o.size
                ),
            );
            return self.reject(o.id, r).await;
        }
        let lease = match self.hub.store.lease(&path) {
            Ok(l) => l,
            Err(r) => return self.reject(o.id, r).await,
        };
        let overwrite = o.flags & offer_flags::OVERWRITE != 0;
        let no_resume = o.flags & offer_flags::NO_RESUME != 0;
        let plan = match self
            .hub
            .store
            .plan_upload(&path, o.size, overwrite, no_resume)
        {
            Ok(p) => p,
            Err(r) => return self.reject(o.id, r).await,
        };
        let (start, offset, prefix_hash) = match plan {
            UploadPlan::Fresh => (Start::Fresh, 0, [0; 32]),
            UploadPlan::CheckExisting { hash } => (Start::CheckExisting { hash }, o.size, hash),
            UploadPlan::Resume { offset } => {
                // Rare (an interrupted large upload), and reading the bytes held takes time.
                let store = Arc::clone(&self.hub.store);
                let (p, size) = (path.clone(), o.size);
                let hashed =
                    tokio::task::spawn_blocking(move || store.hash_partial(&p, size, offset))
                        .await
                        .unwrap_or_else(|e| Err(Refusal::new(ErrorCode::Internal, e.to_string())));
                match hashed {
                    Ok((hasher, prefix)) => (
                        Start::Resume {
                            offset,
                            hasher: Box::new(hasher),
                        },
                        offset,
                        prefix,
                    ),
                    Err(r) => return self.reject(o.id, r).await,
                }
            }
        };
        self.uploads.pending.insert(
            o.id,
            Pending {
                path,
                size: o.size,
                flags: o.flags,
                lease,
                start,
            },
        );
        self.send(Message::Accept(Accept {
            id: o.id,
            offset,
            prefix_hash,
        }))
        .await;
    }

    /// Makes `id` the open upload if it is pending. `Ok(false)`: not pending.
    async fn open_upload(&mut self, id: u32) -> Result<bool, Fatal> {
        if let Some(open) = &self.uploads.open {
            if open.id == id {
                return Ok(true);
            }
            return Err(Fatal::new(
                ErrorCode::ProtocolViolation,
                format!(
                    "data for file {id} arrived while file {} is still being sent",
                    open.id
                ),
            ));
        }
        let Some(p) = self.uploads.pending.remove(&id) else {
            return Ok(false);
        };
        let (sink, received) = match p.start {
            Start::CheckExisting { .. } => {
                self.uploads.pending.insert(id, p);
                return Err(Fatal::new(
                    ErrorCode::ProtocolViolation,
                    format!("file {id} is already stored; the client must compare hashes and send End, not data"),
                ));
            }
            Start::Fresh if p.size <= SMALL_FILE_MAX => {
                // Waits (and so stops reading this connection) while too many small files are
                // waiting for their commit: memory per connection stays bounded.
                let budget = Arc::clone(&self.uploads.budget)
                    .acquire_many_owned(p.size as u32)
                    .await
                    .expect("budget semaphore is never closed");
                (
                    Sink::Memory {
                        chunks: Vec::new(),
                        hasher: Box::new(blake3::Hasher::new()),
                        budget,
                    },
                    0,
                )
            }
            Start::Fresh => (
                Sink::Spool(
                    self.hub
                        .store
                        .open_spool(&p.path, p.size, 0, blake3::Hasher::new()),
                ),
                0,
            ),
            Start::Resume { offset, hasher } => (
                Sink::Spool(self.hub.store.open_spool(&p.path, p.size, offset, *hasher)),
                offset,
            ),
        };
        self.uploads.open = Some(OpenUpload {
            id,
            path: p.path,
            size: p.size,
            flags: p.flags,
            lease: p.lease,
            received,
            sink,
        });
        Ok(true)
    }

    pub(super) async fn data(&mut self, id: u32, bytes: Bytes) -> Result<(), Fatal> {
        if !self.open_upload(id).await? {
            if self.uploads.dead.contains(&id) {
                return Ok(());
            }
            return Err(Fatal::new(
                ErrorCode::ProtocolViolation,
                format!("data for file {id}, which was not accepted"),
            ));
        }
        let open = self.uploads.open.as_mut().expect("opened above");
        open.received += bytes.len() as u64;
        if open.received > open.size {
            let open = self.uploads.open.take().expect("open");
            let reason = format!(
                "{} was offered as {} bytes but more arrived",
                open.path, open.size
            );
            self.abandon(open, Refusal::new(ErrorCode::SizeMismatch, reason))
                .await;
            return Ok(());
        }
        let failed = match &mut open.sink {
            Sink::Memory { chunks, hasher, .. } => {
                hasher.update(&bytes);
                chunks.push(bytes);
                false
            }
            Sink::Spool(writer) => writer.write(bytes).await.is_err(),
        };
        if failed {
            // The spool writer stopped (e.g. disk full); `finish` says why.
            let open = self.uploads.open.take().expect("open");
            let refusal = match open.sink {
                Sink::Spool(w) => match w.finish().await {
                    Err(r) => r,
                    Ok(done) => {
                        done.discard();
                        Refusal::new(ErrorCode::Internal, "spool writer stopped")
                    }
                },
                Sink::Memory { .. } => unreachable!("memory sinks do not fail"),
            };
            self.hub.store.discard_partial(&open.path, open.size);
            self.uploads.dead.insert(open.id);
            self.reject(open.id, refusal).await;
        }
        Ok(())
    }

    /// Refuses the open upload mid-transfer and throws its bytes away.
    async fn abandon(&mut self, open: OpenUpload, r: Refusal) {
        if let Sink::Spool(w) = open.sink {
            if let Ok(done) = w.finish().await {
                done.discard();
            }
        }
        self.hub.store.discard_partial(&open.path, open.size);
        self.uploads.dead.insert(open.id);
        self.reject(open.id, r).await;
    }

    pub(super) async fn end(&mut self, id: u32, hash: Option<[u8; 32]>) -> Result<(), Fatal> {
        let existing = match self.uploads.pending.get(&id) {
            Some(Pending {
                start: Start::CheckExisting { hash },
                ..
            }) => Some(*hash),
            _ => None,
        };
        if let Some(stored) = existing {
            let p = self.uploads.pending.remove(&id).expect("present");
            if hash == Some(stored) {
                self.hub.stats.file_unchanged();
                self.send(Message::Stored(Stored {
                    id,
                    status: StoredStatus::Unchanged,
                    size: p.size,
                    hash: stored,
                }))
                .await;
            } else {
                let reason = format!(
                    "a different file ({} bytes) is already stored at {}; send with --overwrite to replace it",
                    p.size, p.path
                );
                self.reject(id, Refusal::new(ErrorCode::Exists, reason))
                    .await;
            }
            return Ok(());
        }
        if !self.open_upload(id).await? {
            if self.uploads.dead.remove(&id) {
                return Ok(());
            }
            return Err(Fatal::new(
                ErrorCode::ProtocolViolation,
                format!("end of file {id}, which was not accepted"),
            ));
        }
        let open = self.uploads.open.take().expect("opened above");
        if open.received != open.size {
            let reason = format!(
                "{} was offered as {} bytes but {} arrived",
                open.path, open.size, open.received
            );
            // Fewer bytes than offered is a client error; keep nothing of it.
            self.abandon(open, Refusal::new(ErrorCode::SizeMismatch, reason))
                .await;
            self.uploads.dead.remove(&id);
            return Ok(());
        }
        let (source, budget) = match open.sink {
            Sink::Memory {
                chunks,
                hasher,
                budget,
            } => {
                let hash = *hasher.finalize().as_bytes();
                (
                    CommitSource::Memory {
                        chunks,
                        len: open.size,
                        hash,
                    },
                    Some(budget),
                )
            }
            Sink::Spool(w) => match w.finish().await {
                Ok(done) => (CommitSource::Spool(done), None),
                Err(r) => {
                    self.hub.store.discard_partial(&open.path, open.size);
                    self.reject(id, r).await;
                    return Ok(());
                }
            },
        };
        if let Some(h) = hash {
            if h != source.hash() {
                let reason = format!(
                    "{}: the bytes received hash to {} but the sender announced {}; nothing was stored",
                    open.path,
                    &hex::encode(source.hash())[..16],
                    &hex::encode(h)[..16]
                );
                if let CommitSource::Spool(done) = source {
                    done.discard();
                }
                self.reject(id, Refusal::new(ErrorCode::HashMismatch, reason))
                    .await;
                return Ok(());
            }
        }
        let (size, hash) = (source.len(), source.hash());
        let overwrite = open.flags & offer_flags::OVERWRITE != 0;
        let notify = CommitNotify::Channel {
            tx: self.uploads.results_tx.clone(),
            tag: id,
        };
        self.hub.store.submit(
            open.path.clone(),
            source,
            overwrite,
            self.sender.clone(),
            notify,
            budget,
        );
        self.uploads.committing.insert(
            id,
            Committing {
                path: open.path,
                size,
                hash,
                _lease: open.lease,
            },
        );
        Ok(())
    }

    /// Answers a finished commit (the committer's outcome for upload `c.tag`).
    pub(super) async fn committed(&mut self, c: Committed) {
        let Some(done) = self.uploads.committing.remove(&c.tag) else {
            return;
        };
        let msg = match c.result {
            Ok(status) => {
                tracing::debug!(path = %done.path, size = done.size, from = %self.sender, ?status, "stored");
                if status != StoredStatus::Unchanged {
                    self.hub.events.emit(
                        "upload",
                        &self.sender,
                        format!("stored {} ({} bytes)", done.path, done.size),
                    );
                }
                Message::Stored(Stored {
                    id: c.tag,
                    status,
                    size: done.size,
                    hash: done.hash,
                })
            }
            Err(r) => {
                tracing::info!(path = %done.path, from = %self.sender, reason = %r.reason, "upload rejected at commit");
                self.hub
                    .events
                    .emit("reject", &self.sender, r.reason.clone());
                Message::Rejected(Rejected {
                    id: c.tag,
                    code: r.code,
                    reason: r.reason,
                })
            }
        };
        self.send(msg).await;
    }

    pub(super) async fn cancel(&mut self, id: u32) {
        let cancelled = if let Some(p) = self.uploads.pending.remove(&id) {
            if !matches!(p.start, Start::CheckExisting { .. }) {
                self.hub.store.discard_partial(&p.path, p.size);
            }
            true
        } else if self.uploads.open.as_ref().is_some_and(|o| o.id == id) {
            let open = self.uploads.open.take().expect("open");
            if let Sink::Spool(w) = open.sink {
                if let Ok(done) = w.finish().await {
                    done.discard();
                }
            }
            self.hub.store.discard_partial(&open.path, open.size);
            true
        } else {
            false
        };
        if cancelled {
            self.send(Message::Rejected(Rejected {
                id,
                code: ErrorCode::Cancelled,
                reason: "cancelled by the client".into(),
            }))
            .await;
        }
    }

    /// The connection is ending: the open upload keeps the bytes received so far, so a re-sent
    /// upload resumes from them.
    pub(super) async fn close_uploads(&mut self) {
        if let Some(open) = self.uploads.open.take() {
            match open.sink {
                Sink::Spool(w) => {
                    let _ = w.finish().await;
                }
                Sink::Memory { chunks, .. } if !chunks.is_empty() => {
                    let store = Arc::clone(&self.hub.store);
                    let (path, size) = (open.path.clone(), open.size);
                    let _ = tokio::task::spawn_blocking(move || {
                        store.keep_partial(&path, size, &chunks)
                    })
                    .await;
                }
                Sink::Memory { .. } => {}
            }
            drop(open.lease);
        }
        self.uploads.pending.clear();
    }
}
