//! The offer/accept window of an upload, without I/O: which file to offer next, what each answer
//! of the hub means for its file, and the totals a progress display shows.
//!
//! Up to `window` offers are outstanding at once. An offer's id names a slot that lives until the
//! hub's final answer for it (`Stored`, or `Rejected` after a `Cancel`): an accepted file goes to
//! the pump, its last buffer carries the `End` and the hash the hub must confirm. A file whose
//! partial copy on the hub differs from ours (the pump finds out when it resumes) is offered once
//! more with `NO_RESUME`, before any new file.
//!
//! The upload loop feeds it the hub's messages and the pump's buffers, writes what it is told to,
//! and turns [`UploadEvent`]s into progress callbacks and the report.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;

use framewire_proto::{offer_flags, Accept, Cancel, ErrorCode, Offer, Stored, StoredStatus};

use super::pump::{PumpEnd, PumpRequest};
use super::{FailedFile, FileOutcome, StoredFile, Totals};
use crate::error::{ClientError, Result};

/// A file that passed the local checks.
#[derive(Debug)]
pub(super) struct FileJob {
    /// The local file.
    pub local: PathBuf,
    /// Where it goes.
    pub remote: String,
    /// Its size when it was checked.
    pub size: u64,
}

/// What the upload loop reports, in order.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum UploadEvent {
    /// File `file`'s bytes start going out; `offset` bytes were already on the hub.
    FileStarted {
        /// Index of the file (see [`UploadWindow::file`]).
        file: usize,
        /// Bytes the hub already held.
        offset: u64,
    },
    /// The totals changed.
    Progress(Totals),
    /// A file got its final result.
    Finished(FileOutcome),
}

/// What to do about an `Accept`.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum AcceptAction {
    /// Hand the file to the pump.
    Send(PumpRequest),
    /// Write this `Cancel`: the file cannot be sent as accepted (it already failed).
    Cancel(Cancel),
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
#[derive(Debug)]
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

/// The state of one upload's offers.
#[derive(Debug)]
pub(super) struct UploadWindow {
    window: usize,
    overwrite: bool,
    files: Vec<FileJob>,
    next_file: usize,
    /// Files to offer again with `NO_RESUME`, before new ones.
    retries: VecDeque<usize>,
    slots: HashMap<u32, Slot>,
    totals: Totals,
    events: VecDeque<UploadEvent>,
}

impl UploadWindow {
    /// An empty upload keeping at most `window` offers outstanding (at least 1).
    pub(super) fn new(window: usize, overwrite: bool) -> UploadWindow {
        UploadWindow {
            window: window.max(1),
            overwrite,
            files: Vec::new(),
            next_file: 0,
            retries: VecDeque::new(),
            slots: HashMap::new(),
            totals: Totals::default(),
            events: VecDeque::new(),
        }
    }

    /// Adds a file to send.
    pub(super) fn add_file(&mut self, local: PathBuf, remote: String, size: u64) {
        self.totals.files_total += 1;
        self.totals.bytes_total += size;
        self.files.push(FileJob {
            local,
            remote,
            size,
        });
    }

    /// Counts a file that failed before it could be offered.
    pub(super) fn fail_early(&mut self, local: PathBuf, remote: Option<String>, reason: String) {
        self.totals.files_total += 1;
        self.totals.files_done += 1;
        self.events
            .push_back(UploadEvent::Finished(FileOutcome::Failed(FailedFile {
                local,
                remote,
                code: None,
                reason,
            })));
    }

    /// The totals now.
    pub(super) fn totals(&self) -> Totals {
        self.totals
    }

    /// File `idx` as added.
    pub(super) fn file(&self, idx: usize) -> &FileJob {
        &self.files[idx]
    }

    /// Whether any file is to be sent at all.
    pub(super) fn has_files(&self) -> bool {
        !self.files.is_empty()
    }

    /// Every file has its final answer.
    pub(super) fn is_finished(&self) -> bool {
        self.slots.is_empty() && self.retries.is_empty() && self.next_file == self.files.len()
    }

    /// Whether `id` is an offer still waiting for its final answer.
    pub(super) fn is_outstanding(&self, id: u32) -> bool {
        self.slots.contains_key(&id)
    }

    /// The next offer to write, if the window has room and a file is waiting; `alloc_id` gives
    /// it the connection's next request id.
    pub(super) fn poll_offer(&mut self, alloc_id: impl FnOnce() -> u32) -> Option<Offer> {
        if self.slots.len() >= self.window {
            return None;
        }
        let (file, retry) = if let Some(f) = self.retries.pop_front() {
            (f, true)
        } else if self.next_file < self.files.len() {
            self.next_file += 1;
            (self.next_file - 1, false)
        } else {
            return None;
        };
        let mut flags = 0;
        if self.overwrite {
            flags |= offer_flags::OVERWRITE;
        }
        if retry {
            flags |= offer_flags::NO_RESUME;
        }
        let id = alloc_id();
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
        let f = &self.files[file];
        Some(Offer {
            id,
            flags,
            size: f.size,
            path: f.remote.clone(),
        })
    }

    /// The hub accepted offer `a.id` from byte `a.offset`.
    ///
    /// # Errors
    /// [`ClientError::Protocol`] for an unknown id or a second `Accept`.
    pub(super) fn on_accept(&mut self, a: &Accept) -> Result<AcceptAction> {
        let slot = slot(&mut self.slots, a.id, "Accept")?;
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
            let why = format!(
                "hub offered to resume at byte {} of a {}-byte file",
                a.offset, file.size
            );
            let idx = slot.file;
            self.fail(idx, 0, None, why);
            return Ok(AcceptAction::Cancel(Cancel { id: a.id }));
        }
        slot.state = State::Sending;
        slot.offset = a.offset;
        Ok(AcceptAction::Send(PumpRequest {
            id: a.id,
            local: file.local.clone(),
            size: file.size,
            offset: a.offset,
            prefix_hash: a.prefix_hash,
        }))
    }

    /// The hub stored offer `s.id`: verified against our size and hash, the file is done.
    ///
    /// # Errors
    /// [`ClientError::Protocol`] for an unknown id or a `Stored` before the file's `End`.
    pub(super) fn on_stored(&mut self, s: &Stored) -> Result<()> {
        let State::Ended(hash) = slot(&mut self.slots, s.id, "Stored")?.state else {
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
            self.fail(slot.file, slot.accounted, None, why);
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
        self.totals.bytes_done += file.size.saturating_sub(slot.accounted);
        self.finished(FileOutcome::Stored(stored));
        Ok(())
    }

    /// `Rejected`, or an `Error` about an outstanding offer. Returns whether the pump must stop
    /// reading the file (it was being sent).
    pub(super) fn on_refused(&mut self, id: u32, code: ErrorCode, reason: String) -> bool {
        let Some(slot) = self.slots.remove(&id) else {
            tracing::debug!(id, %code, "refusal for an upload that is already settled");
            return false;
        };
        if slot.state == State::Cancelled {
            return false;
        }
        let why = if reason.is_empty() {
            format!("rejected by the hub ({code})")
        } else {
            format!("rejected by the hub ({code}): {reason}")
        };
        self.fail(slot.file, slot.accounted, Some(code), why);
        slot.state == State::Sending
    }

    /// The pump has a buffer of file `id` ready (its last one if `end` is set). Returns whether
    /// to write it: a file refused meanwhile sends nothing more.
    pub(super) fn chunk_ready(&mut self, id: u32, end: Option<&PumpEnd>) -> bool {
        let Some(slot) = self.slots.get_mut(&id) else {
            return false;
        };
        if slot.state != State::Sending {
            return false;
        }
        let sends_nothing = matches!(end, Some(PumpEnd::PrefixMismatch | PumpEnd::Abandoned));
        if !slot.started && !sends_nothing {
            slot.started = true;
            slot.accounted += slot.offset;
            self.totals.bytes_done += slot.offset;
            self.events.push_back(UploadEvent::FileStarted {
                file: slot.file,
                offset: slot.offset,
            });
        }
        true
    }

    /// A buffer of file `id` with `data` file bytes was written (after [`chunk_ready`] said so).
    ///
    /// [`chunk_ready`]: UploadWindow::chunk_ready
    pub(super) fn chunk_written(&mut self, id: u32, data: u64, end: Option<PumpEnd>) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        if data > 0 {
            slot.accounted += data;
            self.totals.bytes_sent += data;
            self.totals.bytes_done += data;
            self.events.push_back(UploadEvent::Progress(self.totals));
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
                    self.fail(file, 0, None, why);
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
                self.fail(file, accounted, None, why);
            }
            Some(PumpEnd::Abandoned) => slot.state = State::Cancelled,
        }
    }

    /// The connection is gone: every file without a final answer fails, to be resumed by sending
    /// again.
    pub(super) fn abort(&mut self, why: &str) {
        let mut pending: Vec<(usize, u64, bool)> = self
            .slots
            .drain()
            .map(|(_, s)| (s.file, s.accounted, s.state == State::Cancelled))
            .collect();
        pending.sort_unstable();
        for (idx, accounted, cancelled) in pending {
            // A cancelled file was already reported failed, or waits in `retries` (below).
            if !cancelled {
                let reason =
                    format!("not acknowledged by the hub ({why}); sending again resumes it");
                self.fail(idx, accounted, None, reason);
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
                self.fail(idx, 0, None, format!("not sent: {why}"));
            }
        }
        self.next_file = self.files.len();
    }

    /// The next thing to report.
    pub(super) fn poll_event(&mut self) -> Option<UploadEvent> {
        self.events.pop_front()
    }

    /// Records file `idx` as failed; `accounted` of its bytes were already counted as done.
    fn fail(&mut self, idx: usize, accounted: u64, code: Option<ErrorCode>, reason: String) {
        let file = &self.files[idx];
        self.totals.files_done += 1;
        self.totals.bytes_done += file.size.saturating_sub(accounted);
        self.finished(FileOutcome::Failed(FailedFile {
            local: file.local.clone(),
            remote: Some(file.remote.clone()),
            code,
            reason,
        }));
    }

    fn finished(&mut self, outcome: FileOutcome) {
        self.events.push_back(UploadEvent::Finished(outcome));
        self.events.push_back(UploadEvent::Progress(self.totals));
    }
}

/// The slot of offer `id`, which the hub's `what` is about.
fn slot<'a>(slots: &'a mut HashMap<u32, Slot>, id: u32, what: &str) -> Result<&'a mut Slot> {
    slots
        .get_mut(&id)
        .ok_or_else(|| ClientError::Protocol(format!("{what} for unknown upload id {id}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: [u8; 32] = [7; 32];

    /// A window over files of the given sizes, named `f0`, `f1`..., with ids handed out from 1.
    struct Upload {
        w: UploadWindow,
        next_id: u32,
    }

    impl Upload {
        fn new(window: usize, sizes: &[u64]) -> Upload {
            let mut w = UploadWindow::new(window, false);
            for (i, size) in sizes.iter().enumerate() {
                w.add_file(format!("/l/f{i}").into(), format!("f{i}"), *size);
            }
            Upload { w, next_id: 1 }
        }

        /// One file of `size`, offered as id 1 and accepted from byte 0.
        fn accepted(size: u64) -> Upload {
            let mut u = Upload::new(1, &[size]);
            u.offers();
            u.accept(1, 0).unwrap();
            u
        }

        /// Every offer the window lets out now: (id, path, flags).
        fn offers(&mut self) -> Vec<(u32, String, u8)> {
            let mut out = Vec::new();
            while let Some(o) = self.w.poll_offer(|| {
                self.next_id += 1;
                self.next_id - 1
            }) {
                out.push((o.id, o.path, o.flags));
            }
            out
        }

        fn accept(&mut self, id: u32, offset: u64) -> Result<AcceptAction> {
            self.w.on_accept(&Accept {
                id,
                offset,
                prefix_hash: [0; 32],
            })
        }

        /// The pump sends `data` bytes of `id` in one buffer, ending as `end`.
        fn pump(&mut self, id: u32, data: u64, end: Option<PumpEnd>) -> bool {
            let write = self.w.chunk_ready(id, end.as_ref());
            if write {
                self.w.chunk_written(id, data, end);
            }
            write
        }

        fn stored(&mut self, id: u32, size: u64, status: StoredStatus) -> Result<()> {
            self.w.on_stored(&Stored {
                id,
                status,
                size,
                hash: H,
            })
        }

        fn events(&mut self) -> Vec<UploadEvent> {
            std::iter::from_fn(|| self.w.poll_event()).collect()
        }

        /// The final results reported so far, as (remote, stored?, reason or resumed_from).
        fn outcomes(&mut self) -> Vec<(String, Result<u64, String>)> {
            self.events()
                .into_iter()
                .filter_map(|e| match e {
                    UploadEvent::Finished(FileOutcome::Stored(s)) => {
                        Some((s.remote, Ok(s.resumed_from)))
                    }
                    UploadEvent::Finished(FileOutcome::Failed(f)) => {
                        Some((f.remote.unwrap_or_default(), Err(f.reason)))
                    }
                    _ => None,
                })
                .collect()
        }
    }

    impl Upload {
        /// Why the first file reported since the last look failed.
        fn first_failure(&mut self) -> String {
            match self.outcomes().into_iter().next() {
                Some((_, Err(why))) => why,
                other => panic!("no failure first: {other:?}"),
            }
        }
    }

    fn ok(remote: &str, resumed_from: u64) -> (String, Result<u64, String>) {
        (remote.to_owned(), Ok(resumed_from))
    }

    #[test]
    fn offers_fill_the_window_and_each_final_answer_frees_a_place() {
        let mut u = Upload::new(2, &[10, 20, 30]);
        let offers = u.offers();
        assert_eq!(
            offers.iter().map(|o| o.1.as_str()).collect::<Vec<_>>(),
            ["f0", "f1"]
        );
        assert!(offers.iter().all(|o| o.2 == 0), "no flags by default");
        assert!(u.offers().is_empty(), "window full");
        assert!(matches!(u.accept(1, 0), Ok(AcceptAction::Send(r)) if r.size == 10));
        assert!(u.offers().is_empty(), "accepted is still outstanding");
        assert!(u.pump(1, 10, Some(PumpEnd::Finished(H))));
        assert!(u.offers().is_empty(), "ended is still outstanding");
        u.stored(1, 10, StoredStatus::New).unwrap();
        assert_eq!(u.outcomes(), [ok("f0", 0)]);
        assert_eq!(u.offers()[0].1, "f2");
        assert!(!u.w.is_finished());
    }

    #[test]
    fn overwrite_is_flagged_on_every_offer() {
        let mut w = UploadWindow::new(4, true);
        w.add_file("/l/a".into(), "a".into(), 1);
        let o = w.poll_offer(|| 5).unwrap();
        assert_eq!((o.id, o.flags), (5, offer_flags::OVERWRITE));
    }

    #[test]
    fn a_resumed_file_counts_the_hubs_bytes_as_done() {
        let mut u = Upload::new(1, &[1000]);
        u.offers();
        let Ok(AcceptAction::Send(req)) = u.accept(1, 600) else {
            panic!("not sent")
        };
        assert_eq!((req.offset, req.local.to_str()), (600, Some("/l/f0")));
        assert!(u.pump(1, 400, Some(PumpEnd::Finished(H))));
        assert_eq!(
            u.events(),
            [
                UploadEvent::FileStarted {
                    file: 0,
                    offset: 600
                },
                UploadEvent::Progress(Totals {
                    files_total: 1,
                    files_done: 0,
                    bytes_total: 1000,
                    bytes_done: 1000,
                    bytes_sent: 400,
                }),
            ]
        );
        u.stored(1, 1000, StoredStatus::New).unwrap();
        assert_eq!(u.outcomes(), [ok("f0", 600)]);
        let t = u.w.totals();
        assert_eq!((t.files_done, t.bytes_done, t.bytes_sent), (1, 1000, 400));
        assert!(u.w.is_finished());
    }

    #[test]
    fn an_unchanged_file_was_not_resumed() {
        let mut u = Upload::new(1, &[1000]);
        u.offers();
        u.accept(1, 1000).unwrap();
        assert!(u.pump(1, 0, Some(PumpEnd::Finished(H))));
        u.stored(1, 1000, StoredStatus::Unchanged).unwrap();
        assert_eq!(u.outcomes(), [ok("f0", 0)]);
    }

    #[test]
    fn an_offset_beyond_the_file_cancels_only_that_file() {
        let mut u = Upload::new(1, &[100]);
        u.offers();
        assert_eq!(
            u.accept(1, 101).unwrap(),
            AcceptAction::Cancel(Cancel { id: 1 })
        );
        assert!(u.first_failure().contains("resume at byte 101"));
        assert!(!u.w.is_finished(), "the slot waits for the hub's Rejected");
        assert!(!u.w.on_refused(1, ErrorCode::Cancelled, String::new()));
        assert!(u.outcomes().is_empty(), "reported once");
        assert!(u.w.is_finished());
        assert_eq!(u.w.totals().bytes_done, 100);
    }

    #[test]
    fn answers_out_of_turn_are_protocol_errors() {
        let mut u = Upload::new(1, &[100]);
        u.offers();
        assert!(u.accept(9, 0).is_err(), "unknown id");
        assert!(
            u.stored(1, 100, StoredStatus::New).is_err(),
            "Stored before End"
        );
        u.accept(1, 0).unwrap();
        assert!(u.accept(1, 0).is_err(), "second Accept");
        assert!(
            u.stored(1, 100, StoredStatus::New).is_err(),
            "still before End"
        );
    }

    #[test]
    fn a_stored_copy_that_differs_fails_the_file() {
        let mut u = Upload::accepted(100);
        u.pump(1, 100, Some(PumpEnd::Finished(H)));
        u.stored(1, 99, StoredStatus::New).unwrap();
        assert!(u.first_failure().contains("hub stored 99 bytes"));
    }

    #[test]
    fn a_refusal_while_sending_stops_the_pump_and_its_buffers() {
        let mut u = Upload::accepted(100);
        assert!(u.pump(1, 50, None));
        assert!(u
            .w
            .on_refused(1, ErrorCode::StorageFull, "disk full".into()));
        assert!(!u.pump(1, 50, None), "the rest is not written");
        let why = u.first_failure();
        assert!(
            why.starts_with("rejected by the hub (") && why.ends_with("): disk full"),
            "{why}"
        );
        assert_eq!(
            u.w.totals().bytes_done,
            100,
            "a failed file's bytes need no more work"
        );
        assert!(u.w.is_finished());
        assert!(
            !u.w.on_refused(1, ErrorCode::StorageFull, String::new()),
            "settled already"
        );
    }

    #[test]
    fn a_prefix_mismatch_is_retried_once_without_resume_before_new_files() {
        let mut u = Upload::new(1, &[100, 5]);
        u.offers();
        u.accept(1, 40).unwrap();
        assert!(u.pump(1, 0, Some(PumpEnd::PrefixMismatch)));
        assert!(u.events().is_empty(), "not started, not failed");
        assert!(
            u.offers().is_empty(),
            "the Cancel's Rejected frees the place"
        );
        u.w.on_refused(1, ErrorCode::Cancelled, String::new());
        assert_eq!(
            u.offers(),
            [(2, "f0".to_owned(), offer_flags::NO_RESUME)],
            "the retry comes before f1"
        );
        u.accept(2, 40).unwrap();
        u.pump(2, 0, Some(PumpEnd::PrefixMismatch));
        assert!(u.first_failure().contains("even after"));
    }

    #[test]
    fn losing_the_connection_fails_everything_unsettled_once() {
        let mut u = Upload::new(3, &[10, 20, 30, 40, 50]);
        u.offers(); // f0, f1, f2
        u.accept(1, 0).unwrap();
        u.pump(1, 10, Some(PumpEnd::Finished(H)));
        u.stored(1, 10, StoredStatus::New).unwrap(); // f0 done
        u.accept(2, 5).unwrap();
        u.pump(2, 7, None); // f1 half sent
        u.accept(3, 8).unwrap();
        u.pump(3, 0, Some(PumpEnd::PrefixMismatch)); // f2 waits for its retry
        u.events();
        u.w.abort("connection reset");
        let out = u.outcomes();
        let names: Vec<&str> = out.iter().map(|o| o.0.as_str()).collect();
        assert_eq!(names, ["f1", "f2", "f3", "f4"], "each once, in order");
        assert!(matches!(&out[0].1, Err(w) if w.starts_with("not acknowledged")));
        assert!(out[1..]
            .iter()
            .all(|o| matches!(&o.1, Err(w) if w.starts_with("not sent"))));
        let t = u.w.totals();
        assert_eq!((t.files_done, t.files_total), (5, 5));
        assert_eq!((t.bytes_done, t.bytes_total, t.bytes_sent), (150, 150, 17));
        assert!(u.w.is_finished());
    }

    #[test]
    fn early_failures_count_without_bytes() {
        let mut w = UploadWindow::new(1, false);
        w.fail_early("/l/x".into(), None, "missing".into());
        assert!(!w.has_files());
        assert!(w.is_finished());
        let t = w.totals();
        assert_eq!((t.files_total, t.files_done, t.bytes_total), (1, 1, 0));
        assert!(matches!(
            w.poll_event(),
            Some(UploadEvent::Finished(FileOutcome::Failed(f))) if f.reason == "missing"
        ));
        assert_eq!(
            w.poll_event(),
            None,
            "no progress event for an early failure"
        );
    }
}
