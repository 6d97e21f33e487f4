//! `framewire send PATH... [--to REMOTE_DIR] [--overwrite]`

use std::path::PathBuf;
use std::process::ExitCode;

use framewire_client::{plan_upload, FileOutcome, ProgressEvent, SendOptions, SendReport};
use indicatif::ProgressStyle;
use tracing_indicatif::span_ext::IndicatifSpanExt;

use crate::cmd::UsageError;
use crate::logging::Progress;
use crate::{format, Global};

/// Arguments of `framewire send`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files and folders to send; folder `photos` is stored as `photos/...`.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Remote folder to store everything under.
    #[arg(long, value_name = "REMOTE_DIR")]
    to: Option<String>,
    /// Replace files stored at the same path with different content (otherwise they are
    /// refused and the stored version is kept).
    #[arg(long)]
    overwrite: bool,
}

/// Plans, uploads with a progress bar (or quietly), prints failures and a summary. Exits 0 only
/// if every file was stored and verified.
pub async fn run(global: &Global, args: Args, progress: Progress) -> anyhow::Result<ExitCode> {
    let plan = plan_upload(&args.paths, args.to.as_deref())
        .map_err(|e| UsageError(format!("--to: {e}")))?;
    let report = if plan.jobs.is_empty() {
        // Nothing to transfer: no need to bother (or wait for) the hub.
        SendReport {
            failed: plan
                .failed
                .into_iter()
                .map(|p| framewire_client::FailedFile {
                    local: p.local,
                    remote: None,
                    code: None,
                    reason: p.reason,
                })
                .collect(),
            ignored: plan.ignored,
            ..SendReport::default()
        }
    } else {
        let mut hub = global.connect().await?;
        let bar = progress.bars.then(Bar::new);
        let opts = SendOptions {
            overwrite: args.overwrite,
        };
        let report = hub
            .send_plan(plan, opts, |event| {
                if let Some(bar) = &bar {
                    bar.update(&event);
                }
            })
            .await?;
        drop(bar);
        report
    };

    if !global.quiet {
        for i in &report.ignored {
            eprintln!("skipped {}: {}", i.local.display(), i.reason);
        }
    }
    for f in &report.failed {
        match &f.remote {
            Some(r) => eprintln!("failed: {} → {r}: {}", f.local.display(), f.reason),
            None => eprintln!("failed: {}: {}", f.local.display(), f.reason),
        }
    }
    if !global.quiet {
        println!("{}", summary(&report));
    }
    if let Some(why) = &report.interrupted {
        eprintln!("error: upload interrupted: {why}");
        eprintln!("run the same command again to resume the files that were not acknowledged");
    }
    Ok(if report.all_stored() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `stored 300 files (12 unchanged), 45.2 MB in 1.23 s (36.7 MB/s, 243 files/s)`
fn summary(r: &SendReport) -> String {
    let n = (r.stored.len() + r.skipped.len()) as u64;
    let files = if n == 1 { "file" } else { "files" };
    if r.stored.is_empty() && r.failed.is_empty() && n > 0 {
        // What the README promises for a second send of the same folder.
        let all = if n == 1 {
            "the file was"
        } else {
            "every file was"
        };
        return format!(
            "{all} already there ({n} unchanged), nothing sent, in {}",
            format::seconds(r.elapsed)
        );
    }
    let resumed = r.stored.iter().filter(|f| f.resumed_from > 0).count();
    let resumed = if resumed > 0 {
        format!(", {resumed} resumed")
    } else {
        String::new()
    };
    let failed = if r.failed.is_empty() {
        String::new()
    } else {
        format!(", {} failed", r.failed.len())
    };
    format!(
        "stored {n} {files} ({} unchanged{resumed}){failed}, {} in {} ({}, {} files/s)",
        r.skipped.len(),
        format::bytes(r.bytes_sent),
        format::seconds(r.elapsed),
        format::rate(r.bytes_sent, r.elapsed),
        format::per_sec(n, r.elapsed),
    )
}

/// The progress bar: a tracing span drawn by tracing-indicatif, so log lines print above it
/// instead of through it. Dropping it removes the bar.
struct Bar {
    span: tracing::Span,
}

impl Bar {
    fn new() -> Bar {
        let span = tracing::info_span!("send", indicatif.pb_show = tracing::field::Empty);
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {decimal_bytes}/{decimal_total_bytes} \
             {decimal_bytes_per_sec} ETA {eta} {msg}",
        )
        .expect("valid progress template")
        .progress_chars("=> ");
        span.pb_set_style(&style);
        span.pb_start();
        Bar { span }
    }

    fn update(&self, event: &ProgressEvent<'_>) {
        match event {
            ProgressEvent::Planned(t) | ProgressEvent::Progress(t) => {
                self.span.pb_set_length(t.bytes_total);
                self.span.pb_set_position(t.bytes_done);
                self.span
                    .pb_set_message(&format!("{}/{} files", t.files_done, t.files_total));
            }
            ProgressEvent::FileFinished(FileOutcome::Failed(f)) => {
                tracing::debug!(file = %f.local.display(), reason = f.reason, "not stored");
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn summary_line() {
        let stored = framewire_client::StoredFile {
            local: "a".into(),
            remote: "a".into(),
            size: 1,
            hash: [0; 32],
            status: framewire_client::StoredStatus::New,
            resumed_from: 0,
        };
        let mut r = SendReport {
            stored: vec![stored.clone(); 288],
            skipped: vec![stored; 12],
            bytes_sent: 45_200_000,
            elapsed: Duration::from_millis(1230),
            ..SendReport::default()
        };
        assert_eq!(
            summary(&r),
            "stored 300 files (12 unchanged), 45.2 MB in 1.23 s (36.7 MB/s, 244 files/s)"
        );
        r.stored.truncate(1);
        r.skipped.clear();
        r.failed.push(framewire_client::FailedFile {
            local: "b".into(),
            remote: None,
            code: None,
            reason: "x".into(),
        });
        assert!(summary(&r).starts_with("stored 1 file (0 unchanged), 1 failed, "));
        // Issue 12: a second send of the same folder says every file was already there.
        r.failed.clear();
        r.skipped = std::mem::take(&mut r.stored);
        r.skipped.push(r.skipped[0].clone());
        assert_eq!(
            summary(&r),
            "every file was already there (2 unchanged), nothing sent, in 1.23 s"
        );
    }
}
