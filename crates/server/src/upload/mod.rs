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
mod delete;
mod lease;
mod quota;
mod transfer;

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use framewire_proto::{ErrorCode, RemotePath, StoredStatus};
use tokio::sync::{mpsc, oneshot, Semaphore};

pub(crate) use transfer::Upload;

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
        // Inline, not on the blocking pool: a few `stat`s and one index lookup, microseconds,
        // and a thread hand-off per file cost small files 30% of their throughput.
        let plan = plan(&*self.storage, &path, key.as_ref(), &req)?;
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
        Ok(Admitted::Upload(Upload::new(transfer::Start {
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
                tracing::debug!(%path, size = s.size, from = %sender, status = ?s.status, "stored");
                self.events.stored(sender, path.as_str(), s.size, &s.hash);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LocalStorage;
    use bytes::Bytes;

    struct Fixture {
        pipeline: Arc<Pipeline>,
        stats: Arc<Stats>,
        _dir: tempfile::TempDir,
    }

    fn fixture(tweak: impl FnOnce(&mut crate::Config)) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::Config::new(dir.path());
        tweak(&mut config);
        let (storage, _) = LocalStorage::open(dir.path()).unwrap();
        let stats = Arc::<Stats>::default();
        let pipeline = Pipeline::start(
            Arc::new(storage),
            &config,
            Work::default(),
            Arc::clone(&stats),
            Arc::default(),
        )
        .unwrap();
        Fixture {
            pipeline,
            stats,
            _dir: dir,
        }
    }

    fn who(perms: Perms) -> Uploader {
        Uploader {
            sender: "t@127.0.0.1".into(),
            perms,
        }
    }

    fn req(path: &str, size: Option<u64>) -> Request {
        Request {
            path: RemotePath::parse(path).unwrap(),
            size,
            overwrite: false,
            resume: true,
            identical_ok: false,
        }
    }

    async fn upload(f: &Fixture, r: Request, body: &[u8]) -> Result<Stored, Refusal> {
        let mut u = match f.pipeline.admit(&who(Perms::ALL), r, None).await? {
            Admitted::Upload(u) => u,
            Admitted::Existing(e) => return e.finish(Some(*blake3::hash(body).as_bytes())),
        };
        let start = u.offset() as usize;
        for c in body[start..].chunks(100_000) {
            u.write(Bytes::copy_from_slice(c)).await?;
        }
        u.finish(Some(*blake3::hash(body).as_bytes()))
            .await?
            .commit_and_wait()
            .await
    }

    /// Admits `r` and expects an upload to send bytes to (not an existing file, not a refusal).
    async fn open(p: &Arc<Pipeline>, r: Request) -> Upload {
        match p.admit(&who(Perms::ALL), r, None).await {
            Ok(Admitted::Upload(u)) => u,
            Ok(Admitted::Existing(_)) => panic!("expected an upload, got an existing file"),
            Err(e) => panic!("expected an upload, got {e}"),
        }
    }

    fn code<T>(r: Result<T, Refusal>) -> ErrorCode {
        match r {
            Ok(_) => panic!("expected a refusal"),
            Err(e) => e.code,
        }
    }

    #[tokio::test]
    async fn admission_checks_permission_size_lease_and_shutdown() {
        let f = fixture(|c| c.max_file_size = 1000);
        let p = &f.pipeline;
        let r = p
            .admit(&who(Perms::DOWNLOAD), req("a", Some(1)), None)
            .await;
        assert_eq!(code(r), ErrorCode::Forbidden);
        let r = p.admit(&who(Perms::ALL), req("a", Some(1001)), None).await;
        assert_eq!(code(r), ErrorCode::TooLarge);
        let held = p.admit(&who(Perms::ALL), req("a", Some(10)), None).await;
        assert!(held.is_ok());
        let r = p.admit(&who(Perms::ALL), req("a", Some(10)), None).await;
        assert_eq!(code(r), ErrorCode::Busy, "one upload per path");
        drop(held);
        assert!(p
            .admit(&who(Perms::ALL), req("a", Some(10)), None)
            .await
            .is_ok());
        p.stop_admitting();
        let r = p.admit(&who(Perms::ALL), req("b", Some(10)), None).await;
        assert_eq!(code(r), ErrorCode::ShuttingDown);
        let failures = f.stats.upload_failures();
        assert_eq!(failures.get("forbidden"), Some(&1), "{failures:?}");
    }

    #[tokio::test]
    async fn existing_files_are_skipped_refused_or_replaced() {
        let f = fixture(|_| {});
        let s = upload(&f, req("doc", Some(5)), b"hello").await.unwrap();
        assert_eq!(s.status, StoredStatus::New);
        // Same size, resume on: the client compares hashes.
        let s = upload(&f, req("doc", Some(5)), b"hello").await.unwrap();
        assert_eq!(s.status, StoredStatus::Unchanged);
        assert_eq!(
            code(upload(&f, req("doc", Some(5)), b"HELLO").await),
            ErrorCode::Exists
        );
        // Another size without overwrite: refused at once.
        assert_eq!(
            code(upload(&f, req("doc", Some(2)), b"hi").await),
            ErrorCode::Exists
        );
        let mut over = req("doc", Some(2));
        over.overwrite = true;
        assert_eq!(
            upload(&f, over, b"hi").await.unwrap().status,
            StoredStatus::Replaced
        );
        assert_eq!(
            f.stats.bytes_stored.load(Relaxed),
            2,
            "the replaced bytes are gone"
        );
        // HTTP-style: same size may be identical, decided at commit.
        let mut put = req("doc", Some(2));
        put.resume = false;
        put.identical_ok = true;
        assert_eq!(
            upload(&f, put.clone(), b"hi").await.unwrap().status,
            StoredStatus::Unchanged
        );
        assert_eq!(code(upload(&f, put, b"ho").await), ErrorCode::Exists);
    }

    #[tokio::test]
    async fn sizes_and_hashes_are_checked_and_bad_bytes_kept_nowhere() {
        let f = fixture(|_| {});
        let mut u = open(&f.pipeline, req("x", Some(3))).await;
        assert_eq!(
            code(u.write(Bytes::from_static(b"four")).await),
            ErrorCode::SizeMismatch
        );
        drop(u);
        let mut u = open(&f.pipeline, req("x", Some(3))).await;
        assert_eq!(u.offset(), 0, "nothing of the refused upload was kept");
        u.write(Bytes::from_static(b"abc")).await.unwrap();
        assert_eq!(code(u.finish(Some([9; 32])).await), ErrorCode::HashMismatch);
        let (files, _) = f.pipeline.storage.list("", "", "", 10).unwrap();
        assert!(files.is_empty());
    }

    #[tokio::test]
    async fn an_interrupted_upload_resumes_from_its_partial() {
        let f = fixture(|_| {});
        let body: Vec<u8> = (0..3_000_000u32).map(|i| i as u8).collect();
        let mut u = open(&f.pipeline, req("big", Some(body.len() as u64))).await;
        u.write(Bytes::copy_from_slice(&body[..1_200_000]))
            .await
            .unwrap();
        u.park().await;
        let u = open(&f.pipeline, req("big", Some(body.len() as u64))).await;
        assert_eq!(u.offset(), 1_200_000);
        assert_eq!(
            u.prefix_hash(),
            *blake3::hash(&body[..1_200_000]).as_bytes()
        );
        drop(u);
        let s = upload(&f, req("big", Some(body.len() as u64)), &body)
            .await
            .unwrap();
        assert_eq!(s.hash, *blake3::hash(&body).as_bytes());
        // Without resume, the partial is thrown away.
        let mut u = open(&f.pipeline, req("other", Some(10))).await;
        u.write(Bytes::from_static(b"12345")).await.unwrap();
        u.park().await;
        let mut fresh = req("other", Some(10));
        fresh.resume = false;
        let u = open(&f.pipeline, fresh).await;
        assert_eq!(u.offset(), 0);
    }

    #[tokio::test]
    async fn the_storage_limit_counts_reservations_partials_and_growth() {
        let f = fixture(|c| c.max_storage = 1000);
        let p = &f.pipeline;
        let a = p
            .admit(&who(Perms::ALL), req("a", Some(600)), None)
            .await
            .unwrap();
        let r = p.admit(&who(Perms::ALL), req("b", Some(600)), None).await;
        assert_eq!(code(r), ErrorCode::StorageFull, "600 are reserved");
        drop(a);
        // Unknown sizes grow their reservation as bytes arrive.
        let mut u = open(p, req("raw", None)).await;
        u.write(Bytes::from(vec![1u8; 900])).await.unwrap();
        assert_eq!(
            code(u.write(Bytes::from(vec![1u8; 200])).await),
            ErrorCode::StorageFull
        );
        drop(u);
        // A kept partial counts until resumed.
        let mut u = open(p, req("p", Some(800))).await;
        u.write(Bytes::from(vec![2u8; 700])).await.unwrap();
        u.park().await;
        let r = p.admit(&who(Perms::ALL), req("q", Some(400)), None).await;
        assert_eq!(
            code(r),
            ErrorCode::StorageFull,
            "700 are held by the partial"
        );
        let u = open(p, req("p", Some(800))).await;
        assert_eq!(u.offset(), 700, "resuming needs only the 100 bytes left");
    }

    #[tokio::test]
    async fn a_dropped_upload_leaves_nothing_behind_but_a_partial() {
        let f = fixture(|_| {});
        let spool = f._dir.path().join("spool");
        let files_in_spool = || std::fs::read_dir(&spool).unwrap().count();
        // Unknown size (raw, chunked PUT): cannot resume, so nothing is kept.
        let mut u = open(&f.pipeline, req("raw", None)).await;
        u.write(Bytes::from(vec![1u8; 3 << 20])).await.unwrap();
        drop(u);
        // Known size: the bytes written are kept for resuming.
        let mut u = open(&f.pipeline, req("known", Some(4 << 20))).await;
        u.write(Bytes::from(vec![2u8; 3 << 20])).await.unwrap();
        drop(u);
        let kept = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                let u = open(&f.pipeline, req("known", Some(4 << 20))).await;
                if u.offset() > 0 && files_in_spool() == 1 {
                    return u.offset();
                }
                drop(u);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the partial is kept and the anonymous staging removed");
        assert!((1 << 20..=3 << 20).contains(&kept), "{kept}");
    }
}
