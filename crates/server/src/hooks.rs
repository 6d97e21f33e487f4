//! Hooks: a program run for each stored file (`--on-upload`) or text message (`--on-message`).
//!
//! The hooks follow the event log like any listener, so an upload's acknowledgement never waits
//! for them: a hook that fails, hangs or is slow is logged, killed after its time limit, and
//! changes nothing else. At most `concurrency` hook programs run at once; while all are busy,
//! events wait in the log's ring, and past it the oldest are skipped (logged with a count).
//! The program runs directly (no shell) with stdin from /dev/null; the event's fields are its
//! arguments and its `FRAMEWIRE_*` environment variables.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, Semaphore};

use crate::events::{Event, EventLog};
use crate::untrusted::shown;

/// The hook programs and their limits.
#[derive(Debug, Clone)]
pub struct Hooks {
    /// Run for each stored file: `PROGRAM PATH SIZE HASH SENDER`.
    pub on_upload: Option<PathBuf>,
    /// Run for each text message: `PROGRAM FROM TO TEXT`.
    pub on_message: Option<PathBuf>,
    /// Most hook programs running at once.
    pub concurrency: usize,
    /// A hook still running after this is killed.
    pub time_limit: Duration,
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks {
            on_upload: None,
            on_message: None,
            concurrency: 4,
            time_limit: Duration::from_secs(30),
        }
    }
}

impl Hooks {
    /// Whether any hook is set.
    pub fn any(&self) -> bool {
        self.on_upload.is_some() || self.on_message.is_some()
    }

    /// The program and its arguments for `e`, if a hook wants it.
    fn for_event(&self, e: &Event) -> Option<(PathBuf, &'static [&'static str])> {
        match e.kind {
            "stored" => self
                .on_upload
                .clone()
                .map(|p| (p, &["path", "size", "hash", "sender"][..])),
            "message" => self
                .on_message
                .clone()
                .map(|p| (p, &["from", "to", "text"][..])),
            _ => None,
        }
    }
}

/// Runs the hooks for every event from `log` until the hub's `stop`.
pub(crate) async fn run(
    hooks: Hooks,
    log: Arc<EventLog>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut rx = log.follow();
    let slots = Arc::new(Semaphore::new(hooks.concurrency.max(1)));
    loop {
        let e = tokio::select! {
            _ = stop.cancelled() => return,
            e = rx.recv() => e,
        };
        let e = match e {
            Ok(e) => e,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(skipped = n, "hooks are too slow: events skipped");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some((program, names)) = hooks.for_event(&e) else {
            continue;
        };
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let limit = hooks.time_limit;
        tokio::spawn(async move {
            run_one(&program, names, &e, limit).await;
            drop(permit);
        });
    }
}

async fn run_one(program: &std::path::Path, names: &[&str], e: &Event, limit: Duration) {
    let mut cmd = tokio::process::Command::new(program);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .env("FRAMEWIRE_EVENT", e.kind);
    for n in names {
        let v = e.field(n).unwrap_or("");
        cmd.arg(v);
        cmd.env(format!("FRAMEWIRE_{}", n.to_uppercase()), v);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(err) => {
            tracing::warn!(program = %program.display(), error = %err, "hook could not start");
            return;
        }
    };
    let what = e.field("path").or(e.field("text")).unwrap_or("");
    match tokio::time::timeout(limit, child.wait()).await {
        Ok(Ok(s)) if s.success() => {
            tracing::debug!(program = %program.display(), "hook done")
        }
        Ok(Ok(s)) => {
            tracing::warn!(program = %program.display(), event = e.kind, about = %shown(what), status = %s, "hook failed")
        }
        Ok(Err(err)) => {
            tracing::warn!(program = %program.display(), error = %err, "hook could not be waited for")
        }
        Err(_) => {
            let _ = child.kill().await;
            tracing::warn!(program = %program.display(), event = e.kind, about = %shown(what), limit_s = limit.as_secs_f64(), "hook killed: over its time limit");
        }
    }
}
