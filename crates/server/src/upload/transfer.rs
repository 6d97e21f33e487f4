//! One admitted upload: takes bytes, checks the size, hashes, stages, verifies, commits.
//!
//! Small files (up to [`SMALL_FILE_MAX`], when the door lends a memory budget) are hashed as they
//! arrive and kept in memory until the commit writes them inside its batch: no thread hand-off
//! per file. Other uploads are staged: bytes are buffered up to [`STAGE_BATCH`] and written (and
//! hashed) on the blocking pool within the disk budget, one batch in flight while the next one
//! fills, so no thread waits on the network.

use std::sync::Arc;

use bytes::Bytes;
use framewire_proto::{ErrorCode, RemotePath};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use super::lease::Lease;
use super::quota::Reservation;
use super::{Notify, Pipeline, Stored};
use crate::store::{classify_io, CommitData, CommitItem, PartialKey, Refusal, Staged};

/// Files up to this size are received in memory when the door lends a budget. If the connection
/// drops mid-file, the bytes received are kept as a partial then, so the re-send resumes like a
/// large upload's (only a crash of the hub itself loses them).
pub(crate) const SMALL_FILE_MAX: u64 = 1 << 20;
/// Staged bytes are written in batches of about this size.
const STAGE_BATCH: usize = 1 << 20;

/// Everything [`Pipeline::admit`] decided.
pub(super) struct Start {
    pub(super) pipeline: Arc<Pipeline>,
    pub(super) path: RemotePath,
    /// Partial key (uploads of known size).
    pub(super) key: Option<PartialKey>,
    pub(super) offset: u64,
    /// The hash state of the `offset` bytes kept, and their hash.
    pub(super) resume: Option<(blake3::Hasher, [u8; 32])>,
    pub(super) overwrite: bool,
    pub(super) sender: String,
    pub(super) lease: Lease,
    pub(super) reservation: Reservation,
    pub(super) memory: Option<Arc<Semaphore>>,
}

enum Sink {
    /// No byte yet.
    NotStarted {
        memory: Option<Arc<Semaphore>>,
        hasher: Box<blake3::Hasher>,
    },
    Memory {
        chunks: Vec<Bytes>,
        hasher: Box<blake3::Hasher>,
        budget: OwnedSemaphorePermit,
    },
    Staged(Stage),
    /// Ended: the bytes were handed on or thrown away.
    Done,
}

/// Staged bytes: the staging target travels with its hasher to the blocking pool and back.
struct Stage {
    idle: Option<(Box<dyn Staged>, Box<blake3::Hasher>)>,
    writing: Option<JoinHandle<Written>>,
    buffer: Vec<Bytes>,
    buffered: usize,
}

type Written = (Box<dyn Staged>, Box<blake3::Hasher>, std::io::Result<()>);

/// An upload being received.
pub(crate) struct Upload {
    pipeline: Arc<Pipeline>,
    path: RemotePath,
    key: Option<PartialKey>,
    offset: u64,
    prefix_hash: [u8; 32],
    received: u64,
    overwrite: bool,
    sender: String,
    /// Held, not read: one upload per path until this one ends.
    _lease: Lease,
    reservation: Reservation,
    sink: Sink,
    /// Whether a resumed partial's bytes were taken over from "at rest".
    took_over: bool,
}

/// An upload whose bytes are all in and verified, ready to commit.
pub(crate) struct Verified {
    upload: Upload,
    data: CommitData,
    hash: [u8; 32],
    /// Memory lent for a small file, given back once it is committed.
    budget: Option<OwnedSemaphorePermit>,
}

impl Upload {
    pub(super) fn new(s: Start) -> Upload {
        let (hasher, prefix_hash) = match s.resume {
            Some((h, p)) => (Box::new(h), p),
            None => (Box::new(blake3::Hasher::new()), [0; 32]),
        };
        Upload {
            pipeline: s.pipeline,
            path: s.path,
            key: s.key,
            offset: s.offset,
            prefix_hash,
            received: s.offset,
            overwrite: s.overwrite,
            sender: s.sender,
            _lease: s.lease,
            reservation: s.reservation,
            sink: Sink::NotStarted {
                memory: s.memory,
                hasher,
            },
            took_over: false,
        }
    }

    /// Where the client starts sending: 0, or the length of a kept partial.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// BLAKE3 of the first [`Upload::offset`] bytes (zeros when 0), for the client to compare.
    pub(crate) fn prefix_hash(&self) -> [u8; 32] {
        self.prefix_hash
    }

    /// The remote path.
    pub(crate) fn path(&self) -> &RemotePath {
        &self.path
    }

    /// Bytes received so far, counting those kept from before.
    pub(crate) fn received(&self) -> u64 {
        self.received
    }

    fn size(&self) -> Option<u64> {
        self.key.as_ref().map(|k| k.size)
    }

    /// Takes the next bytes. On a refusal the upload is over: its bytes are thrown away and the
    /// refusal is counted; the door only reports it.
    ///
    /// # Errors
    /// `SizeMismatch` (more bytes than announced), `TooLarge`, `StorageFull` (unknown sizes grow
    /// their reservation as bytes arrive), or the disk's error.
    pub(crate) async fn write(&mut self, bytes: Bytes) -> Result<(), Refusal> {
        let r = self.write_inner(bytes).await;
        if let Err(e) = &r {
            self.fail(e).await;
        }
        r
    }

    async fn write_inner(&mut self, bytes: Bytes) -> Result<(), Refusal> {
        let n = bytes.len() as u64;
        self.received += n;
        match self.size() {
            Some(size) if self.received > size => {
                return Err(Refusal::new(
                    ErrorCode::SizeMismatch,
                    format!("{} was offered as {size} bytes but more arrived", self.path),
                ))
            }
            Some(_) => {}
            None => {
                let max = self.pipeline.max_file_size;
                if self.received > max {
                    return Err(Refusal::new(
                        ErrorCode::TooLarge,
                        format!(
                            "{} is larger than this hub's limit of {max} bytes",
                            self.path
                        ),
                    ));
                }
                let what = format!("{} ({} bytes so far)", self.path, self.received);
                self.reservation.grow(n, &what)?;
            }
        }
        self.start().await?;
        match &mut self.sink {
            Sink::Memory { chunks, hasher, .. } => {
                hasher.update(&bytes);
                chunks.push(bytes);
                Ok(())
            }
            Sink::Staged(stage) => {
                stage.buffered += bytes.len();
                stage.buffer.push(bytes);
                if stage.buffered >= STAGE_BATCH {
                    stage.flush(&self.pipeline).await?;
                }
                Ok(())
            }
            Sink::NotStarted { .. } | Sink::Done => unreachable!("started above"),
        }
    }

    /// Chooses memory or staging when the first byte arrives.
    async fn start(&mut self) -> Result<(), Refusal> {
        let small = self
            .size()
            .filter(|n| *n <= SMALL_FILE_MAX && self.offset == 0);
        let Sink::NotStarted { memory, .. } = &mut self.sink else {
            return Ok(());
        };
        if let (Some(size), Some(budget)) = (small, memory.take()) {
            // Waits (and so stops the door reading) while too many small files wait for their
            // commit: memory stays bounded.
            let permit = budget
                .acquire_many_owned(size as u32)
                .await
                .map_err(Refusal::internal)?;
            let Sink::NotStarted { hasher, .. } = std::mem::replace(&mut self.sink, Sink::Done)
            else {
                unreachable!("checked above")
            };
            self.sink = Sink::Memory {
                chunks: Vec::new(),
                hasher,
                budget: permit,
            };
            return Ok(());
        }
        let storage = Arc::clone(&self.pipeline.storage);
        let (key, offset) = (self.key.clone(), self.offset);
        let staged = self
            .pipeline
            .work
            .disk(move || storage.stage(key.as_ref(), offset))
            .await??;
        if offset > 0 && !self.took_over {
            self.reservation.take_over(offset);
            self.took_over = true;
        }
        let Sink::NotStarted { hasher, .. } = std::mem::replace(&mut self.sink, Sink::Done) else {
            unreachable!("checked above")
        };
        self.sink = Sink::Staged(Stage {
            idle: Some((staged, hasher)),
            ..Stage::empty()
        });
        Ok(())
    }

    /// All bytes are in: checks the size and the sender's hash (if given).
    ///
    /// # Errors
    /// `SizeMismatch`, `HashMismatch` (nothing is kept), or the disk's error.
    pub(crate) async fn finish(
        mut self,
        client_hash: Option<[u8; 32]>,
    ) -> Result<Verified, Refusal> {
        match self.finish_inner(client_hash).await {
            Ok((data, hash, budget)) => Ok(Verified {
                upload: self,
                data,
                hash,
                budget,
            }),
            Err(e) => {
                self.fail(&e).await;
                Err(e)
            }
        }
    }

    async fn finish_inner(
        &mut self,
        client_hash: Option<[u8; 32]>,
    ) -> Result<(CommitData, [u8; 32], Option<OwnedSemaphorePermit>), Refusal> {
        if let Some(size) = self.size() {
            if self.received != size {
                return Err(Refusal::new(
                    ErrorCode::SizeMismatch,
                    format!(
                        "{} was offered as {size} bytes but {} arrived",
                        self.path, self.received
                    ),
                ));
            }
        }
        self.start().await?;
        let (data, hash, budget) = match std::mem::replace(&mut self.sink, Sink::Done) {
            Sink::Memory {
                chunks,
                hasher,
                budget,
            } => (
                CommitData::Memory(chunks),
                *hasher.finalize().as_bytes(),
                Some(budget),
            ),
            Sink::Staged(mut stage) => {
                stage.flush(&self.pipeline).await?;
                let (staged, hasher) = stage.wait().await?;
                (
                    CommitData::Staged(staged),
                    *hasher.finalize().as_bytes(),
                    None,
                )
            }
            Sink::NotStarted { .. } | Sink::Done => unreachable!("started above"),
        };
        if let Some(h) = client_hash.filter(|h| *h != hash) {
            if let CommitData::Staged(s) = data {
                s.discard();
            }
            return Err(Refusal::new(
                ErrorCode::HashMismatch,
                format!(
                    "{}: the bytes received hash to {} but the sender announced {}; nothing was stored",
                    self.path,
                    &hex::encode(hash)[..16],
                    &hex::encode(h)[..16]
                ),
            ));
        }
        Ok((data, hash, budget))
    }

    /// Ends a refused upload: its bytes are thrown away and the refusal counted.
    async fn fail(&mut self, r: &Refusal) {
        self.drop_bytes(false).await;
        self.pipeline.refused(&self.sender, r);
    }

    /// The client cancelled: the bytes are thrown away.
    pub(crate) async fn cancel(mut self) {
        self.drop_bytes(false).await;
    }

    /// The door is going away mid-upload (the client disconnected, the hub shuts down): the
    /// bytes received are kept as a partial, so that re-sending resumes from them. An upload of
    /// unknown size cannot resume and keeps nothing.
    pub(crate) async fn park(mut self) {
        self.drop_bytes(true).await;
    }

    async fn drop_bytes(&mut self, keep: bool) {
        let storage = Arc::clone(&self.pipeline.storage);
        let key = self.key.clone();
        match std::mem::replace(&mut self.sink, Sink::Done) {
            Sink::NotStarted { .. } | Sink::Done => {}
            Sink::Memory { chunks, .. } => {
                if let (true, false, Some(key)) = (keep, chunks.is_empty(), key) {
                    let _ = self
                        .pipeline
                        .work
                        .disk(move || storage.keep_partial(&key, &chunks))
                        .await;
                }
            }
            Sink::Staged(mut stage) => {
                let flushed = if keep {
                    stage.flush(&self.pipeline).await
                } else {
                    Ok(())
                };
                if let Ok((staged, _)) = stage.wait().await {
                    let _ = self
                        .pipeline
                        .work
                        .disk(move || match (keep && flushed.is_ok(), key) {
                            (true, Some(_)) => staged.park(),
                            _ => staged.discard(),
                        })
                        .await;
                }
            }
        }
    }
}

impl Drop for Upload {
    /// An upload dropped without an ending (its door's task was cancelled, say at the end of a
    /// shutdown): what it staged is kept as a partial if it can resume, else removed, so nothing
    /// is left behind in the spool.
    fn drop(&mut self) {
        let Sink::Staged(mut stage) = std::mem::replace(&mut self.sink, Sink::Done) else {
            return;
        };
        let keep = self.key.is_some();
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            if let Ok((staged, _)) = stage.wait().await {
                let _ = tokio::task::spawn_blocking(move || {
                    if keep {
                        staged.park()
                    } else {
                        staged.discard()
                    }
                })
                .await;
            }
        });
    }
}

impl Stage {
    fn empty() -> Stage {
        Stage {
            idle: None,
            writing: None,
            buffer: Vec::new(),
            buffered: 0,
        }
    }

    /// Waits for the batch in flight, if any, and takes the target back.
    async fn wait(&mut self) -> Result<(Box<dyn Staged>, Box<blake3::Hasher>), Refusal> {
        if let Some(w) = self.writing.take() {
            let (staged, hasher, r) = w.await.map_err(Refusal::internal)?;
            if let Err(e) = r {
                staged.discard();
                return Err(classify_io(&e));
            }
            self.idle = Some((staged, hasher));
        }
        self.idle
            .take()
            .ok_or_else(|| Refusal::internal("staging target lost"))
    }

    /// Starts writing the buffered bytes (after the batch in flight is done).
    async fn flush(&mut self, pipeline: &Pipeline) -> Result<(), Refusal> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let (mut staged, mut hasher) = self.wait().await?;
        let chunks = std::mem::take(&mut self.buffer);
        self.buffered = 0;
        self.writing = Some(
            pipeline
                .work
                .spawn_disk(move || {
                    for c in &chunks {
                        hasher.update(c);
                    }
                    let r = staged.write_all(&chunks);
                    (staged, hasher, r)
                })
                .await,
        );
        Ok(())
    }
}

impl Verified {
    /// The verified hash.
    pub(crate) fn hash(&self) -> [u8; 32] {
        self.hash
    }

    /// Hands the upload to the group committer; `notify` gets the outcome once it is durable and
    /// listed (or refused). The path stays leased and the storage reserved until then.
    pub(crate) fn commit(self, notify: Notify) {
        let Verified {
            upload,
            data,
            hash,
            budget,
        } = self;
        let item = CommitItem {
            path: upload.path.clone(),
            data,
            size: upload.received,
            hash,
            overwrite: upload.overwrite,
            sender: upload.sender.clone(),
        };
        let pipeline = Arc::clone(&upload.pipeline);
        pipeline.committer.submit(
            item,
            // The upload (its path lease and storage reservation) and the memory it was lent are
            // held until the outcome is known.
            Box::new(move |outcome| {
                let p = &upload.pipeline;
                let answer = match outcome {
                    Ok(c) => {
                        let s = Stored {
                            status: c.status,
                            size: upload.received,
                            hash,
                        };
                        p.stored(&upload.sender, &upload.path, &s, &c);
                        Ok(s)
                    }
                    Err(r) => {
                        p.refused(&upload.sender, &r);
                        Err(r)
                    }
                };
                drop((upload, budget));
                notify.send(answer);
            }),
        );
    }

    /// Commits and waits for the outcome.
    ///
    /// # Errors
    /// The commit's refusal (exists, storage full, shutting down…).
    pub(crate) async fn commit_and_wait(self) -> Result<Stored, Refusal> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.commit(Notify::Once(tx));
        rx.await
            .unwrap_or_else(|_| Err(Refusal::internal("the committer stopped")))
    }
}
