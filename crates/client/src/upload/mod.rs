//! Uploads: many files over one connection, pipelined.
//!
//! Up to `Welcome.max_inflight` offers are kept outstanding, so the hub's answers overlap with
//! the data of earlier files and there is no round trip per file. Three parts:
//!
//! - [`window`]: the offer/accept window, pure state: what to offer next and what each answer
//!   means for its file and for the totals.
//! - [`pump`]: a blocking thread that reads, hashes and frames accepted files, in the order the
//!   hub accepted them.
//! - [`run`]: the loop that owns the socket: it writes offers and the pump's buffers and feeds
//!   the hub's answers (`Stored`/`Rejected`, which arrive whenever the hub's group commit gets to
//!   them) to the window.
//!
//! This file holds the public types and the [`Client`] methods.

mod pump;
mod run;
mod window;

use std::path::{Path, PathBuf};
use std::time::Duration;

use framewire_proto::{ErrorCode, StoredStatus};

use crate::client::Client;
use crate::error::{ClientError, Result};
use crate::plan::{plan_upload, PlanProblem, UploadJob, UploadPlan};

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
    /// Every job's remote path is checked against the [`RemotePath`](framewire_proto::RemotePath) rules and every local file
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
        progress: F,
    ) -> Result<SendReport>
    where
        F: FnMut(ProgressEvent<'_>),
    {
        self.check_alive()?;
        Ok(run::send_plan(self, plan, opts, progress).await)
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
