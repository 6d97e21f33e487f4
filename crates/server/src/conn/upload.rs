//! The native door's side of uploads: Offer → Accept → Data… → End → Stored, pipelined (many
//! offers outstanding, one file's bytes at a time). Every decision is the upload pipeline's; this
//! file keeps the per-connection bookkeeping (ids, the window, the outcomes channel).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use framewire_proto::{offer_flags, Accept, ErrorCode, Message, RemotePath, Stored as StoredMsg};
use tokio::sync::{mpsc, Semaphore};

use super::session::Session;
use super::Fatal;
use crate::clients::role;
use crate::store::Refusal;
use crate::upload::{Admitted, Notify, Request, Stored, Upload, Uploader};

/// Memory one connection may hold in small files not yet committed; past it, reading waits.
const MEMORY_BUDGET: usize = 64 << 20;

/// All upload state of a connection.
pub(super) struct Uploads {
    /// Accepted, bytes not started.
    pending: HashMap<u32, Admitted>,
    /// The upload whose bytes are arriving now (one at a time per connection).
    open: Option<(u32, Upload)>,
    /// Uploads refused mid-transfer: their remaining `Data`/`End` are ignored.
    dead: HashSet<u32>,
    /// Handed to the committer, waiting for the outcome.
    committing: HashSet<u32>,
    results_tx: mpsc::UnboundedSender<(u32, Result<Stored, Refusal>)>,
    pub(super) results: mpsc::UnboundedReceiver<(u32, Result<Stored, Refusal>)>,
    budget: Arc<Semaphore>,
}

impl Uploads {
    pub(super) fn new() -> Self {
        let (results_tx, results) = mpsc::unbounded_channel();
        Uploads {
            pending: HashMap::new(),
            open: None,
            dead: HashSet::new(),
            committing: HashSet::new(),
            results_tx,
            results,
            budget: Arc::new(Semaphore::new(MEMORY_BUDGET)),
        }
    }

    /// Offers without a final answer yet.
    fn outstanding(&self) -> usize {
        self.pending.len() + self.open.is_some() as usize + self.committing.len()
    }

    /// Whether an upload was accepted and has no final answer yet.
    pub(super) fn in_progress(&self) -> bool {
        self.outstanding() > 0
    }

    fn in_use(&self, id: u32) -> bool {
        self.pending.contains_key(&id)
            || self.committing.contains(&id)
            || self.open.as_ref().is_some_and(|(i, _)| *i == id)
    }

    pub(super) fn committing(&self) -> usize {
        self.committing.len()
    }

    /// Whether accepted offers are waiting for their data.
    pub(super) fn waiting_for_data(&self) -> bool {
        !self.pending.is_empty()
    }
}

impl Session {
    fn uploader(&self) -> Uploader {
        Uploader {
            sender: self.sender.clone(),
            perms: self.perms,
        }
    }

    pub(super) async fn offer(&mut self, o: framewire_proto::Offer) {
        self.client.add_role(role::FILES);
        if o.id == 0 {
            let r = Refusal::new(ErrorCode::ProtocolViolation, "file id 0 is reserved");
            return self.reject(o.id, r).await;
        }
        if self.uploads.in_use(o.id) {
            let r = Refusal::new(
                ErrorCode::ProtocolViolation,
                format!("file id {} is already in use", o.id),
            );
            return self.reject(o.id, r).await;
        }
        self.uploads.dead.remove(&o.id);
        let max = self.hub.config.max_inflight as usize;
        if self.uploads.outstanding() >= max {
            let r = Refusal::new(
                ErrorCode::Busy,
                format!("more than {max} offers in flight; wait for answers"),
            );
            return self.reject(o.id, r).await;
        }
        let path = match RemotePath::parse(&o.path) {
            Ok(p) => p,
            Err(e) => {
                let r = Refusal::new(ErrorCode::BadPath, format!("{:?}: {e}", o.path));
                return self.reject(o.id, r).await;
            }
        };
        let req = Request {
            path,
            size: Some(o.size),
            overwrite: o.flags & offer_flags::OVERWRITE != 0,
            resume: o.flags & offer_flags::NO_RESUME == 0,
            identical_ok: false,
        };
        let budget = Some(Arc::clone(&self.uploads.budget));
        let admitted = match self.hub.pipeline.admit(&self.uploader(), req, budget).await {
            Ok(a) => a,
            Err(r) => return self.rejected(o.id, r).await,
        };
        let (offset, prefix_hash) = match &admitted {
            Admitted::Upload(u) => (u.offset(), u.prefix_hash()),
            Admitted::Existing(e) => (e.size(), e.hash()),
        };
        if self.uploads.pending.is_empty() && self.uploads.open.is_none() {
            // The offer timeout counts from the first offer waiting for data.
            self.last_data = tokio::time::Instant::now();
        }
        self.uploads.pending.insert(o.id, admitted);
        self.send(Message::Accept(Accept {
            id: o.id,
            offset,
            prefix_hash,
        }))
        .await;
    }

    /// Makes `id` the open upload if it is pending. `Ok(false)`: not pending.
    fn open_upload(&mut self, id: u32) -> Result<bool, Fatal> {
        if let Some((open, _)) = &self.uploads.open {
            if *open == id {
                return Ok(true);
            }
            return Err(Fatal::new(
                ErrorCode::ProtocolViolation,
                format!("data for file {id} arrived while file {open} is still being sent"),
            ));
        }
        match self.uploads.pending.remove(&id) {
            None => Ok(false),
            Some(Admitted::Upload(u)) => {
                self.uploads.open = Some((id, u));
                Ok(true)
            }
            Some(e @ Admitted::Existing(_)) => {
                self.uploads.pending.insert(id, e);
                Err(Fatal::new(
                    ErrorCode::ProtocolViolation,
                    format!("file {id} is already stored; the client must compare hashes and send End, not data"),
                ))
            }
        }
    }

    pub(super) async fn data(&mut self, id: u32, bytes: Bytes) -> Result<(), Fatal> {
        self.last_data = tokio::time::Instant::now();
        if !self.open_upload(id)? {
            if self.uploads.dead.contains(&id) {
                return Ok(());
            }
            return Err(Fatal::new(
                ErrorCode::ProtocolViolation,
                format!("data for file {id}, which was not accepted"),
            ));
        }
        let (_, upload) = self.uploads.open.as_mut().expect("opened above");
        if let Err(r) = upload.write(bytes).await {
            // The pipeline threw the bytes away and counted the refusal.
            self.uploads.open = None;
            self.uploads.dead.insert(id);
            self.rejected(id, r).await;
        }
        Ok(())
    }

    pub(super) async fn end(&mut self, id: u32, hash: Option<[u8; 32]>) -> Result<(), Fatal> {
        self.last_data = tokio::time::Instant::now();
        if let Some(Admitted::Existing(_)) = self.uploads.pending.get(&id) {
            let Some(Admitted::Existing(e)) = self.uploads.pending.remove(&id) else {
                unreachable!("checked above")
            };
            match e.finish(hash) {
                Ok(s) => self.stored(id, s).await,
                Err(r) => self.rejected(id, r).await,
            }
            return Ok(());
        }
        if !self.open_upload(id)? {
            if self.uploads.dead.remove(&id) {
                return Ok(());
            }
            return Err(Fatal::new(
                ErrorCode::ProtocolViolation,
                format!("end of file {id}, which was not accepted"),
            ));
        }
        let (_, upload) = self.uploads.open.take().expect("opened above");
        match upload.finish(hash).await {
            Ok(verified) => {
                verified.commit(Notify::Channel(self.uploads.results_tx.clone(), id));
                self.uploads.committing.insert(id);
            }
            Err(r) => self.rejected(id, r).await,
        }
        Ok(())
    }

    async fn stored(&self, id: u32, s: Stored) {
        self.send(Message::Stored(StoredMsg {
            id,
            status: s.status,
            size: s.size,
            hash: s.hash,
        }))
        .await;
    }

    /// Answers a finished commit.
    pub(super) async fn committed(&mut self, (id, result): (u32, Result<Stored, Refusal>)) {
        if !self.uploads.committing.remove(&id) {
            return;
        }
        match result {
            Ok(s) => self.stored(id, s).await,
            Err(r) => self.rejected(id, r).await,
        }
    }

    pub(super) async fn cancel(&mut self, id: u32) {
        let cancelled = match self.uploads.pending.remove(&id) {
            Some(Admitted::Upload(u)) => {
                u.cancel().await;
                true
            }
            Some(Admitted::Existing(_)) => true,
            None => match self.uploads.open.take() {
                Some((open, u)) if open == id => {
                    u.cancel().await;
                    true
                }
                other => {
                    self.uploads.open = other;
                    false
                }
            },
        };
        if cancelled {
            self.rejected(
                id,
                Refusal::new(ErrorCode::Cancelled, "cancelled by the client"),
            )
            .await;
        }
    }

    /// No file data arrived for `offer_timeout`: every accepted offer still waiting for its data is
    /// withdrawn (its path released for other clients, bytes already kept for resuming), and the
    /// client is told so; its late `Data`/`End` for them are ignored.
    pub(super) async fn withdraw_stale_offers(&mut self) {
        let secs = self.hub.config.offer_timeout.as_secs();
        let stale: Vec<(u32, Admitted)> = self.uploads.pending.drain().collect();
        tracing::info!(from = %self.sender, offers = stale.len(), "withdrew offers left without data for {secs} s");
        for (id, admitted) in stale {
            if let Admitted::Upload(u) = admitted {
                u.park().await;
            }
            self.uploads.dead.insert(id);
            let r = Refusal::new(
                ErrorCode::Timeout,
                format!("no file data for {secs} s after the offer was accepted; offer it again"),
            );
            self.reject(id, r).await;
        }
    }

    /// The connection is ending: the open upload keeps the bytes received so far, so a re-sent
    /// upload resumes from them.
    pub(super) async fn close_uploads(&mut self) {
        if let Some((_, u)) = self.uploads.open.take() {
            u.park().await;
        }
        self.uploads.pending.clear();
    }
}
