//! The upload loop: checks the files locally, then moves bytes between the socket, the pump and
//! the [`UploadWindow`], which decides everything. Its events become progress callbacks and the
//! report.

use std::collections::HashSet;
use std::fs;
use std::time::{Duration, Instant};

use framewire_proto::{ErrorCode, Message, RemotePath, StoredStatus};
use tokio::time::timeout;

use super::pump::{self, PumpHandle, PumpOut};
use super::window::{AcceptAction, UploadEvent, UploadWindow};
use super::{FileOutcome, ProgressEvent, SendOptions, SendReport};
use crate::client::{write_timed, Client, Incoming};
use crate::error::{io_reason, ClientError, Result};
use crate::plan::{UploadJob, UploadPlan};

/// Uploads `plan` over `client` (see [`Client::send_plan`]); anything that goes wrong is in the
/// report.
pub(super) async fn send_plan<F>(
    client: &mut Client,
    plan: UploadPlan,
    opts: SendOptions,
    mut progress: F,
) -> SendReport
where
    F: FnMut(ProgressEvent<'_>),
{
    let started = Instant::now();
    let mut run = Run::new(client, opts);
    for p in plan.failed {
        run.window.fail_early(p.local, None, p.reason);
    }
    run.report.ignored = plan.ignored;
    run.prepare(plan.jobs);
    progress(ProgressEvent::Planned(run.window.totals()));
    run.report_events(&mut progress);
    if run.window.has_files() {
        if let Err(e) = run.drive(client, &mut progress).await {
            let why = client.lose(e).to_string();
            run.window.abort(&why);
            run.report_events(&mut progress);
            run.report.interrupted = Some(why);
        }
    }
    let totals = run.window.totals();
    let mut report = run.report;
    report.bytes_sent = totals.bytes_sent;
    report.bytes_total = totals.bytes_total;
    report.elapsed = started.elapsed();
    report
}

enum Event {
    Hub(Option<Incoming>),
    Pump(Option<PumpOut>),
}

/// One upload on one connection.
struct Run {
    window: UploadWindow,
    chunk: usize,
    max_file_size: u64,
    io_timeout: Duration,
    report: SendReport,
}

impl Run {
    fn new(client: &Client, opts: SendOptions) -> Run {
        let w = client.welcome();
        // A chunk must fit the hub's payload limit next to the 4-byte id.
        let chunk = (w.chunk_size as usize)
            .min(w.max_payload.saturating_sub(4) as usize)
            .clamp(4 << 10, 16 << 20);
        Run {
            window: UploadWindow::new(usize::from(w.max_inflight), opts.overwrite),
            chunk,
            max_file_size: w.max_file_size,
            io_timeout: client.opts.io_timeout,
            report: SendReport::default(),
        }
    }

    /// Checks every job locally (path rules, duplicates, readable regular file, hub's size
    /// limit) so the user hears about problems before any byte moves.
    fn prepare(&mut self, jobs: Vec<UploadJob>) {
        let mut seen = HashSet::new();
        for job in jobs {
            let problem = if let Err(e) = RemotePath::parse(&job.remote) {
                Err(format!("invalid remote path {:?}: {e}", job.remote))
            } else if !seen.insert(job.remote.clone()) {
                Err(format!("another file is also sent as {:?}", job.remote))
            } else {
                match fs::metadata(&job.local) {
                    Err(e) => Err(io_reason(&e)),
                    Ok(m) if !m.is_file() => Err("not a regular file".to_owned()),
                    Ok(m) if m.len() > self.max_file_size => Err(format!(
                        "file is {} bytes; the hub stores files of at most {} bytes",
                        m.len(),
                        self.max_file_size
                    )),
                    Ok(m) => Ok(m.len()),
                }
            };
            match problem {
                Ok(size) => self.window.add_file(job.local, job.remote, size),
                Err(why) => self.window.fail_early(job.local, Some(job.remote), why),
            }
        }
    }

    /// Hands what the window has to report to the progress callback and the report.
    fn report_events<F>(&mut self, progress: &mut F)
    where
        F: FnMut(ProgressEvent<'_>),
    {
        while let Some(event) = self.window.poll_event() {
            match event {
                UploadEvent::FileStarted { file, offset } => {
                    let f = self.window.file(file);
                    progress(ProgressEvent::FileStarted {
                        remote: &f.remote,
                        size: f.size,
                        offset,
                    });
                }
                UploadEvent::Progress(totals) => progress(ProgressEvent::Progress(totals)),
                UploadEvent::Finished(outcome) => {
                    progress(ProgressEvent::FileFinished(&outcome));
                    match outcome {
                        FileOutcome::Stored(s) if s.status == StoredStatus::Unchanged => {
                            self.report.skipped.push(s)
                        }
                        FileOutcome::Stored(s) => self.report.stored.push(s),
                        FileOutcome::Failed(f) => self.report.failed.push(f),
                    }
                }
            }
        }
    }

    /// Queues offers until the window is full.
    fn fill_window(&mut self, client: &mut Client) -> Result<()> {
        while let Some(offer) = self.window.poll_offer(|| client.alloc_id()) {
            Message::Offer(offer).encode(&mut client.out)?;
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
        let PumpHandle {
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
        pump: &mut PumpHandle,
        progress: &mut F,
    ) -> Result<()>
    where
        F: FnMut(ProgressEvent<'_>),
    {
        loop {
            self.fill_window(client)?;
            if self.window.is_finished() {
                return client.flush_out().await;
            }
            client.flush_out().await?;
            let wait = async {
                tokio::select! {
                    biased;
                    m = client.incoming.recv() => Event::Hub(m),
                    p = pump.outputs.recv() => Event::Pump(p),
                }
            };
            let event = timeout(self.io_timeout, wait)
                .await
                .map_err(|_| ClientError::Timeout {
                    what: "the hub to answer",
                    after: self.io_timeout,
                })?;
            match event {
                Event::Hub(m) => {
                    self.on_incoming(client, pump, m).await?;
                    // Answers come in bursts (group commit): take all that are here before
                    // writing, so the offers they free go out in one write. Stop after the last
                    // file's answer: what follows it (a hub shutting down says so right after its
                    // last answers) does not concern this upload.
                    while !self.window.is_finished() {
                        let Ok(m) = client.incoming.try_recv() else {
                            break;
                        };
                        self.on_incoming(client, pump, Some(m)).await?;
                    }
                }
                Event::Pump(Some(out)) => self.on_pump(client, pump, out, progress).await?,
                Event::Pump(None) => return Err(pump_stopped()),
            }
            self.report_events(progress);
        }
    }

    async fn on_incoming(
        &mut self,
        client: &mut Client,
        pump: &PumpHandle,
        next: Option<Incoming>,
    ) -> Result<()> {
        let Some(msg) = client.accept_incoming(next)? else {
            return Ok(());
        };
        match msg {
            Message::Accept(a) => match self.window.on_accept(&a)? {
                AcceptAction::Send(req) => pump.requests.send(req).map_err(|_| pump_stopped())?,
                AcceptAction::Cancel(c) => Message::Cancel(c).encode(&mut client.out)?,
            },
            Message::Stored(s) => self.window.on_stored(&s)?,
            Message::Rejected(r) => self.on_refused(pump, r.id, r.code, r.reason),
            Message::Error(e) if self.window.is_outstanding(e.id) => {
                self.on_refused(pump, e.id, e.code, e.message)
            }
            Message::Ping(p) => {
                client.flush_out().await?;
                client.answer_ping(p).await?;
            }
            other => client.stray(other),
        }
        Ok(())
    }

    fn on_refused(&mut self, pump: &PumpHandle, id: u32, code: ErrorCode, reason: String) {
        if self.window.on_refused(id, code, reason) {
            // Stop reading it; anything already framed is dropped unsent.
            pump.abandoned.lock().expect("pump lock").insert(id);
        }
    }

    async fn on_pump<F>(
        &mut self,
        client: &mut Client,
        pump: &PumpHandle,
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
        if !self.window.chunk_ready(id, end.as_ref()) {
            // Refused while it was being read: nothing more of it goes out.
            let _ = pump.free.send(buf);
            return Ok(());
        }
        // "Started" before its bytes go out, as a progress display expects.
        self.report_events(progress);
        let written = if len > 0 {
            client.flush_out().await?;
            write_timed(&mut client.writer, &buf[..len], self.io_timeout).await
        } else {
            Ok(())
        };
        let _ = pump.free.send(buf);
        written?;
        self.window.chunk_written(id, data, end);
        Ok(())
    }
}

fn pump_stopped() -> ClientError {
    ClientError::Protocol("the file reader stopped unexpectedly".into())
}
