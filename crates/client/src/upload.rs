//! Uploads: many files over one connection, pipelined.
//!
//! Up to `Welcome.max_inflight` offers are kept outstanding, so the hub's answers overlap with
//! the data of earlier files and there is no round trip per file. Accepted files go to the
//! [pump](crate::pump) in the order the hub accepted them; it reads, hashes and frames them on a
//! blocking thread while this loop writes its buffers to the socket and collects the hub's final
//! answers (`Stored`/`Rejected`), which arrive whenever the hub's group commit gets to them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use framewire_proto::{
    offer_flags, Accept, Cancel, ErrorCode, Message, Offer, RemotePath, Stored, StoredStatus,
};
use tokio::time::timeout;

use crate::client::{write_timed, Client};
use crate::error::{io_reason, ClientError, Result};
use crate::plan::{plan_upload, PlanProblem, UploadJob, UploadPlan};
use crate::pump::{self, PumpEnd, PumpOut, PumpRequest};

/// How to upload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendOptions {
    /// Replace files already stored at the same path with different content. Without it such
    /// files are rejected (code `Exists`) and the stored version is kept.
    pub overwrite: bool,
}

/// A file the hub has stored (or already had), verified against our size and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// The local file.
    pub local: PathBuf,
    /// Where it is stored.
    pub remote: String,
    /// Its size.
    pub size: u64,
    /// Its BLAKE3 hash (ours, equal to the hub's).
    pub hash: [u8; 32],
    /// New, replaced, or unchanged (already there; no bytes were sent).
    pub status: StoredStatus,
    /// Bytes the hub already held from an earlier, interrupted upload (0 if none).
    pub resumed_from: u64,
}

/// A file that was not stored, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedFile {
    /// The local file.
    pub local: PathBuf,
    /// Where it was to be stored, if it got that far.
    pub remote: Option<String>,
    /// The hub's code, if the hub refused it.
    pub code: Option<ErrorCode>,
    /// Why, for people.
    pub reason: String,
}

/// A file's final result, as passed to the progress callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOutcome {
    /// Stored (new, replaced or unchanged) and verified.
    Stored(StoredFile),
    /// Not stored.
    Failed(FailedFile),
}

/// Running totals of an upload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Files in the upload (including ones that failed before being offered).
    pub files_total: u64,
    /// Files with a final result.
    pub files_done: u64,
    /// Bytes of all files in the upload.
    pub bytes_total: u64,
    /// Bytes needing no more work: sent, already held by the hub, or belonging to failed files.
    pub bytes_done: u64,
    /// File bytes actually written to the socket.
    pub bytes_sent: u64,
}

/// What an upload reports while it runs, for progress displays.
#[derive(Debug)]
pub enum ProgressEvent<'a> {
    /// The upload is about to start.
    Planned(Totals),
    /// A file's bytes start going out; `offset` bytes were already on the hub.
    FileStarted {
        /// Remote path.
        remote: &'a str,
        /// File size.
        size: u64,
        /// Bytes the hub already held (resume), not sent again.
        offset: u64,
    },
    /// Totals changed (bytes went out or a file finished).
    Progress(Totals),
    /// A file got its final result.
    FileFinished(&'a FileOutcome),
}

/// The result of an upload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendReport {
    /// Files stored new or replaced, verified, in the order the hub confirmed them.
    pub stored: Vec<StoredFile>,
    /// Files skipped because the hub already held exactly these bytes (status `Unchanged`).
    pub skipped: Vec<StoredFile>,
    /// Files not stored, with reasons (including files left unacknowledged by a lost connection).
    pub failed: Vec<FailedFile>,
    /// Entries deliberately left out (symbolic links inside folders, special files).
    pub ignored: Vec<PlanProblem>,
    /// File bytes written to the socket.
    pub bytes_sent: u64,
    /// Bytes of all files in the upload.
    pub bytes_total: u64,
    /// Wall time of the upload.
    pub elapsed: Duration,
    /// Why the upload stopped early (connection lost, hub error, timeout), if it did. Files not
    /// yet confirmed are in `failed`; sending again resumes them.
    pub interrupted: Option<String>,
}

impl SendReport {
    /// Whether every file was stored (or already there) and verified.
    pub fn all_stored(&self) -> bool {
        self.failed.is_empty() && self.interrupted.is_none()
    }
}

impl Client {
    /// Uploads `jobs`, pipelined over this connection, and reports what became of each file.
    ///
    /// Every job's remote path is checked against the [`RemotePath`] rules and every local file
    /// is looked at before anything is sent; problems become failures in the report. Files are
    /// verified: a file counts as stored only when the hub's size and BLAKE3 hash equal ours.
    ///
    /// # Errors
    /// Only [`ClientError::ConnectionLost`] if the connection was already unusable. Anything that
    /// goes wrong during the upload, including losing the connection, is in the report (see
    /// [`SendReport::interrupted`]).
    pub async fn send_files<F>(
        &mut self,
        jobs: Vec<UploadJob>,
        opts: SendOptions,
        progress: F,
    ) -> Result<SendReport>
    where
        F: FnMut(ProgressEvent<'_>),
    {
        self.send_plan(
            UploadPlan {
                jobs,
                ..UploadPlan::default()
            },
            opts,
            progress,
        )
        .await
    }

    /// Uploads a plan made by [`plan_upload`]: its jobs, with its failures and ignored entries
    /// carried into the report.
    ///
    /// # Errors
    /// As [`Client::send_files`].
    pub async fn send_plan<F>(
        &mut self,
        plan: UploadPlan,
        opts: SendOptions,
        mut progress: F,
    ) -> Result<SendReport>
    where
        F: FnMut(ProgressEvent<'_>),
    {
        self.check_alive()?;
        let started = Instant::now();
        let mut run = Run::new(self, opts);
        for p in plan.failed {
            run.fail_early(p.local, None, p.reason);
        }
        run.report.ignored = plan.ignored;
        run.prepare(plan.jobs);
        progress(ProgressEvent::Planned(run.totals));
        for f in std::mem::take(&mut run.early) {
            progress(ProgressEvent::FileFinished(&f));
        }
        if !run.files.is_empty() {
            if let Err(e) = run.drive(self, &mut progress).await {
                let e = self.lose(e);
                run.abort(&e.to_string(), &mut progress);
            }
        }
        let mut report = run.report;
        report.bytes_sent = run.totals.bytes_sent;
        report.bytes_total = run.totals.bytes_total;
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// Uploads one file to `remote`.
    ///
    /// # Errors
    /// [`ClientError::Rejected`] if the file was not stored (refused by the hub, unreadable,
    /// changed while sending, connection lost...), or [`ClientError::ConnectionLost`] if the
    /// connection was already unusable.
    pub async fn send_file(
        &mut self,
        local: impl AsRef<Path>,
        remote: &str,
        opts: SendOptions,
    ) -> Result<StoredFile> {
        let job = UploadJob {
            local: local.as_ref().to_owned(),
            remote: remote.to_owned(),
        };
        let mut report = self.send_files(vec![job], opts, |_| {}).await?;
        if let Some(f) = report.failed.pop() {
            return Err(ClientError::Rejected {
                remote: remote.to_owned(),
                code: f.code,
                reason: f.reason,
            });
        }
        report
            .stored
            .pop()
            .or_else(|| report.skipped.pop())
            .ok_or_else(|| ClientError::Protocol("upload ended without a result".into()))
    }

    /// Uploads a folder recursively, named like `scp -r`: folder `photos` is stored as
    /// `photos/...`, under `remote_dir` if given (the same as `framewire send DIR --to REMOTE_DIR`).
    ///
    /// # Errors
    /// [`ClientError::BadPath`] if `remote_dir` is not a valid remote folder; otherwise as
    /// [`Client::send_files`].
    pub async fn send_dir<F>(
        &mut self,
        local_dir: impl AsRef<Path>,
        remote_dir: Option<&str>,
        opts: SendOptions,
        progress: F,
    ) -> Result<SendReport>
    where
        F: FnMut(ProgressEvent<'_>),
    {
        let plan = plan_upload(&[local_dir.as_ref()], remote_dir)?;
        self.send_plan(plan, opts, progress).await
    }
}

/// A file that passed the local checks.
struct FileJob {
    local: PathBuf,
    remote: String,
    size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Offer sent, no answer yet.
    Offered,
    /// Accepted; the pump has (or will get) it.
    Sending,
    /// `End` sent with this hash; waiting for `Stored`.
    Ended([u8; 32]),
    /// `Cancel` sent (or the pump abandoned it); waiting for the hub's `Rejected`, which only
    /// frees the slot: the file's fate was decided when it was cancelled.
    Cancelled,
}

/// One outstanding offer (its id is the map key).
struct Slot {
    file: usize,
    state: State,
    offset: u64,
    started: bool,
    /// Bytes of this file counted in `bytes_done` so far.
    accounted: u64,
    /// This offer is the `NO_RESUME` retry after a prefix mismatch.
    retry: bool,
}

enum Event {
    Hub(Option<crate::client::Incoming>),
    Pump(Option<PumpOut>),
}

/// The state of one upload.
struct Run {
    opts: SendOptions,
    window: usize,
    chunk: usize,
    max_file_size: u64,
    io_timeout: Duration,
    files: Vec<FileJob>,
    next_file: usize,
    /// Files to offer again with `NO_RESUME`, before new ones.
    retries: VecDeque<usize>,
    slots: HashMap<u32, Slot>,
    totals: Totals,
    report: SendReport,
    /// Failures found before the upload started, for the progress callback.
    early: Vec<FileOutcome>,
}

impl Run {
    fn new(client: &Client, opts: SendOptions) -> Run {
        let w = client.welcome();
        // A chunk must fit the hub's payload limit next to the 4-byte id.
        let chunk = (w.chunk_size as usize)
            .min(w.max_payload.saturating_sub(4) as usize)
            .clamp(4 << 10, 16 << 20);
        Run {
            opts,
            window: usize::from(w.max_inflight.max(1)),
            chunk,
            max_file_size: w.max_file_size,
            io_timeout: client.opts.io_timeout,
            files: Vec::new(),
            next_file: 0,
            retries: VecDeque::new(),
            slots: HashMap::new(),
            totals: Totals::default(),
            report: SendReport::default(),
            early: Vec::new(),
        }
    }

    fn fail_early(&mut self, local: PathBuf, remote: Option<String>, reason: String) {
        let f = FailedFile {
            local,
            remote,
            code: None,
            reason,
        };
        self.totals.files_total += 1;
        self.totals.files_done += 1;
        self.early.push(FileOutcome::Failed(f.clone()));
        self.report.failed.push(f);
    }

    /// Checks every job locally (path rules, duplicates, readable regular file, hub's size
    /// limit) so the user hears about problems before any byte moves.
    fn prepare(&mut self, jobs: Vec<UploadJob>) {
        let mut seen = HashSet::new();
        for job in jobs {
            if let Err(e) = RemotePath::parse(&job.remote) {
                let why = format!("invalid remote path {:?}: {e}", job.remote);
                self.fail_early(job.local, Some(job.remote), why);
                continue;
            }
            if !seen.insert(job.remote.clone()) {
                let why = format!("another file is also sent as {:?}", job.remote);
                self.fail_early(job.local, Some(job.remote), why);
                continue;
            }
            let meta = match fs::metadata(&job.local) {
                Ok(m) => m,
                Err(e) => {
                    self.fail_early(job.local, Some(job.remote), io_reason(&e));
                    continue;
                }
            };
            if !meta.is_file() {
                let why = "not a regular file".to_owned();
                self.fail_early(job.local, Some(job.remote), why);
                continue;
            }
            if meta.len() > self.max_file_size {
                let why = format!(
                    "file is {} bytes; the hub stores files of at most {} bytes",
                    meta.len(),
                    self.max_file_size
                );
                self.fail_early(job.local, Some(job.remote), why);
                continue;
            }
            self.totals.files_total += 1;
            self.totals.bytes_total += meta.len();
            self.files.push(FileJob {
                local: job.local,
                remote: job.remote,
                size: meta.len(),
            });
        }
    }

    fn finished(&self) -> bool {
        self.slots.is_empty() && self.retries.is_empty() && self.next_file == self.files.len()
    }

    /// Queues offers until the window is full.
    fn fill_window(&mut self, client: &mut Client) -> Result<()> {
        while self.slots.len() < self.window {
            let (file, retry) = if let Some(f) = self.retries.pop_front() {
                (f, true)
            } else if self.next_file < self.files.len() {
                self.next_file += 1;
                (self.next_file - 1, false)
            } else {
                break;
            };
            let mut flags = 0;
            if self.opts.overwrite {
                flags |= offer_flags::OVERWRITE;
            }
            if retry {
                flags |= offer_flags::NO_RESUME;
            }
            let id = client.alloc_id();
            let f = &self.files[file];
            Message::Offer(Offer {
                id,
                flags,
                size: f.size,
                path: f.remote.clone(),
            })
            .encode(&mut client.out)?;
            self.slots.insert(
                id,
                Slot {
                    file,
                    state: State::Offered,
                    offset: 0,
                    started: false,
                    accounted: 0,
                    retry,
                },
            );
        }
        Ok(())
    }

    /// The upload loop. Returns when every file has its final answer, or with the error that
    /// ended the connection.
    async fn drive<F>(&mut self, client: &mut Client, progress: &mut F) -> Result<()>
    where
        F: FnMut(ProgressEvent<'_>),
    {
        let mut pump = pump::start(self.chunk);
        let result = self.drive_with(client, &mut pump, progress).await;
        // Closing our ends wakes the pump wherever it waits; it then exits.
        let pump::PumpHandle {
            requests,
            outputs,
            free,
            thread,
            ..
        } = pump;
        drop((requests, outputs, free));
        let _ = thread.await;
        result
    }

    async fn drive_with<F>(
        &mut self,
        client: &mut Client,
        pump: &mut pump::PumpHandle,
        progress: &mut F,
    ) -> Result<()>
    where
        F: FnMut(ProgressEvent<'_>),
    {
        loop {
            self.fill_window(client)?;
            if self.finished() {
                return client.flush_out().await;
            }
            client.flush_out().await?;
            let event = {
                let wait = async {
                    tokio::select! {
                        biased;
                        m = client.incoming.recv() => Event::Hub(m),
                        p = pump.outputs.recv() => Event::Pump(p),
                    }
                };
                match timeout(self.io_timeout, wait).await {
                    Ok(e) => e,
                    Err(_) => {
                        return Err(ClientError::Timeout {
                            what: "the hub to answer",
                            after: self.io_timeout,
                        })
                    }
                }
            };
            match event {
                Event::Hub(m) => {
                    self.on_incoming(client, pump, m, progress).await?;
                    // Answers come in bursts (group commit): take all that are here before
                    // writing, so the offers they free go out in one write. Stop after the last
                    // file's answer: what follows it (a hub shutting down says so right after its
                    // last answers) does not concern this upload.
                    while !self.finished() {
                        let Ok(m) = client.incoming.try_recv() else {
                            break;
                        };
                        self.on_incoming(client, pump, Some(m), progress).await?;
                    }
                }
                Event::Pump(Some(out)) => self.on_pump(client, pump, out, progress).await?,
                Event::Pump(None) => {
                    return Err(ClientError::Protocol(
                        "the file reader stopped unexpectedly".into(),
                    ))
                }
            }
        }
    }

    async fn on_incoming<F>(
        &mut self,
        client: &mut Client,
        pump: &pump::PumpHandle,
        next: Option<crate::client::Incoming>,
        progress: &mut F,
    ) -> Result<()>
    where
        F: FnMut(ProgressEvent<'_>),
    {
        let Some(msg) = client.accept_incoming(next)? else {
            return Ok(());
        };
        match msg {
            Message::Accept(a) => self.on_accept(client, pump, a, progress),
            Message::Stored(s) => self.on_stored(s, progress),
            Message::Rejected(r) => {
                self.on_refused(pump, r.id, r.code, r.reason, progress);
                Ok(())
            }
            Message::Error(e) if self.slots.contains_key(&e.id) => {
                self.on_refused(pump, e.id, e.code, e.message, progress);
                Ok(())
            }
            Message::Ping(p) => {
                client.flush_out().await?;
                client.answer_ping(p).await
            }
            other => {
                client.stray(other);
                Ok(())
            }
        }
    }

    fn slot(&mut self, id: u32, what: &str) -> Result<&mut Slot> {
        self.slots
            .get_mut(&id)
            .ok_or_else(|| ClientError::Protocol(format!("{what} for unknown upload id {id}")))
    }

    fn on_accept<F>(
        &mut self,
        client: &mut Client,
        pump: &pump::PumpHandle,
        a: Accept,
        progress: &mut F,
    ) -> Result<()>
    where
        F: FnMut(ProgressEvent<'_>),
    {
        self.slot(a.id, "Accept")?;
        let slot = self.slots.get_mut(&a.id).expect("slot exists");
        if slot.state != State::Offered {
            return Err(ClientError::Protocol(format!(
                "second Accept for upload id {}",
                a.id
            )));
        }
        let file = &self.files[slot.file];
        if a.offset > file.size {
            // Not worth dropping the connection for: give up on this file only.
            slot.state = State::Cancelled;
            Message::Cancel(Cancel { id: a.id }).encode(&mut client.out)?;
            let why = format!(
                "hub offered to resume at byte {} of a {}-byte file",
                a.offset, file.size
            );
            let idx = slot.file;
            self.fail(idx, 0, None, why, progress);
            return Ok(());
        }
        slot.state = State::Sending;
        slot.offset = a.offset;
        let req = PumpRequest {
            id: a.id,
            local: file.local.clone(),
            size: file.size,
            offset: a.offset,
            prefix_hash: a.prefix_hash,
        };
        pump.requests
            .send(req)
            .map_err(|_| ClientError::Protocol("the file reader stopped unexpectedly".into()))
    }

    fn on_stored<F>(&mut self, s: Stored, progress: &mut F) -> Result<()>
    where
        F: FnMut(ProgressEvent<'_>),
    {
        let slot = self.slot(s.id, "Stored")?;
        let State::Ended(hash) = slot.state else {
            return Err(ClientError::Protocol(format!(
                "Stored for upload id {} before its End",
                s.id
            )));
        };
        let slot = self.slots.remove(&s.id).expect("slot exists");
        let file = &self.files[slot.file];
        if s.size != file.size || s.hash != hash {
            let why = format!(
                "hub stored {} bytes with hash {}, but the file has {} bytes with hash {}",
                s.size,
                hex::encode(&s.hash[..8]),
                file.size,
                hex::encode(&hash[..8])
            );
            self.fail(slot.file, slot.accounted, None, why, progress);
            return Ok(());
        }
        let stored = StoredFile {
            local: file.local.clone(),
            remote: file.remote.clone(),
            size: file.size,
            hash,
            status: s.status,
            resumed_from: if s.status == StoredStatus::Unchanged {
                0
            } else {
                slot.offset
            },
        };
        self.totals.files_done += 1;
        self.totals.bytes_done += file.size - slot.accounted;
        let outcome = FileOutcome::Stored(stored);
        progress(ProgressEvent::FileFinished(&outcome));
        progress(ProgressEvent::Progress(self.totals));
        let FileOutcome::Stored(stored) = outcome else {
            unreachable!()
        };
        if stored.status == StoredStatus::Unchanged {
            self.report.skipped.push(stored);
        } else {
            self.report.stored.push(stored);
        }
        Ok(())
    }

    /// `Rejected`, or an `Error` about an outstanding upload.
    fn on_refused<F>(
        &mut self,
        pump: &pump::PumpHandle,
        id: u32,
        code: ErrorCode,
        reason: String,
        progress: &mut F,
    ) where
        F: FnMut(ProgressEvent<'_>),
    {
        let Some(slot) = self.slots.remove(&id) else {
            tracing::debug!(id, %code, "refusal for an upload that is already settled");
            return;
        };
        match slot.state {
            State::Cancelled => {}
            state => {
                if state == State::Sending {
                    // Stop reading it; anything already framed is dropped unsent.
                    pump.abandoned.lock().expect("pump lock").insert(id);
                }
                let why = if reason.is_empty() {
                    format!("rejected by the hub ({code})")
                } else {
                    format!("rejected by the hub ({code}): {reason}")
                };
                self.fail(slot.file, slot.accounted, Some(code), why, progress);
            }
        }
    }

    async fn on_pump<F>(
        &mut self,
        client: &mut Client,
        pump: &pump::PumpHandle,
        out: PumpOut,
        progress: &mut F,
    ) -> Result<()>
    where
        F: FnMut(ProgressEvent<'_>),
    {
        let PumpOut {
            id,
            buf,
            len,
            data,
            end,
        } = out;
        let wanted = matches!(self.slots.get(&id), Some(s) if s.state == State::Sending);
        if !wanted {
            // Rejected while it was being read: nothing more of it goes out.
            let _ = pump.free.send(buf);
            return Ok(());
        }
        let slot = self.slots.get_mut(&id).expect("slot exists");
        let file = &self.files[slot.file];
        if !slot.started && !matches!(end, Some(PumpEnd::PrefixMismatch | PumpEnd::Abandoned)) {
            slot.started = true;
            slot.accounted += slot.offset;
            self.totals.bytes_done += slot.offset;
            progress(ProgressEvent::FileStarted {
                remote: &file.remote,
                size: file.size,
                offset: slot.offset,
            });
        }
        if len > 0 {
            client.flush_out().await?;
            let r = write_timed(&mut client.writer, &buf[..len], self.io_timeout).await;
            let _ = pump.free.send(buf);
            r?;
        } else {
            let _ = pump.free.send(buf);
        }
        let slot = self.slots.get_mut(&id).expect("slot exists");
        if data > 0 {
            slot.accounted += data;
            self.totals.bytes_sent += data;
            self.totals.bytes_done += data;
            progress(ProgressEvent::Progress(self.totals));
        }
        match end {
            None => {}
            Some(PumpEnd::Finished(hash)) => slot.state = State::Ended(hash),
            Some(PumpEnd::PrefixMismatch) => {
                slot.state = State::Cancelled;
                let (file, retry) = (slot.file, slot.retry);
                if retry {
                    let why = "the hub's partial copy differs from this file even after \
                               asking to start over"
                        .to_owned();
                    self.fail(file, 0, None, why, progress);
                } else {
                    tracing::debug!(
                        remote = self.files[file].remote,
                        "hub holds different bytes; starting over"
                    );
                    self.retries.push_back(file);
                }
            }
            Some(PumpEnd::Failed(why)) => {
                slot.state = State::Cancelled;
                let (file, accounted) = (slot.file, slot.accounted);
                self.fail(file, accounted, None, why, progress);
            }
            Some(PumpEnd::Abandoned) => slot.state = State::Cancelled,
        }
        Ok(())
    }

    /// Records file `idx` as failed; `accounted` of its bytes were already counted as done.
    fn fail<F>(
        &mut self,
        idx: usize,
        accounted: u64,
        code: Option<ErrorCode>,
        reason: String,
        progress: &mut F,
    ) where
        F: FnMut(ProgressEvent<'_>),
    {
        let file = &self.files[idx];
        self.totals.files_done += 1;
        self.totals.bytes_done += file.size.saturating_sub(accounted);
        let outcome = FileOutcome::Failed(FailedFile {
            local: file.local.clone(),
            remote: Some(file.remote.clone()),
            code,
            reason,
        });
        progress(ProgressEvent::FileFinished(&outcome));
        progress(ProgressEvent::Progress(self.totals));
        if let FileOutcome::Failed(f) = outcome {
            self.report.failed.push(f);
        }
    }

    /// The connection is gone: every file without a final answer is reported unacknowledged.
    fn abort<F>(&mut self, why: &str, progress: &mut F)
    where
        F: FnMut(ProgressEvent<'_>),
    {
        self.report.interrupted = Some(why.to_owned());
        let mut pending: Vec<(usize, u64, bool)> = self
            .slots
            .drain()
            .map(|(_, s)| (s.file, s.accounted, s.state == State::Cancelled))
            .collect();
        pending.sort_unstable();
        for (idx, accounted, cancelled) in pending {
            // A cancelled file was already reported failed, or waits in `retries` (below).
            if !cancelled {
                self.fail(idx, accounted, None, unacked(why), progress);
            }
        }
        let rest: Vec<usize> = self
            .retries
            .drain(..)
            .chain(self.next_file..self.files.len())
            .collect();
        let mut seen = HashSet::new();
        for idx in rest {
            if seen.insert(idx) {
                self.fail(idx, 0, None, format!("not sent: {why}"), progress);
            }
        }
        self.next_file = self.files.len();
    }
}

fn unacked(why: &str) -> String {
    format!("not acknowledged by the hub ({why}); sending again resumes it")
}
