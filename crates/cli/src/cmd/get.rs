//! `framewire get REMOTE_PATH [-o LOCAL]` and `framewire get -r PREFIX [DIR]` (a folder, like
//! `scp -r`: `get -r holiday DIR` writes DIR/holiday/...).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use framewire_client::ListEntry;
use indicatif::ProgressStyle;
use tracing_indicatif::span_ext::IndicatifSpanExt;

use crate::logging::Progress;
use crate::{format, Global};

/// Arguments of `framewire get`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The stored file's path (with -r: a folder, or any path prefix).
    remote: String,
    /// With -r: the local folder to write into [default: the current folder].
    #[arg(value_name = "DIR", requires = "recursive")]
    dir: Option<PathBuf>,
    /// Where to write it: a file, or an existing folder [default: its name, in the current folder].
    #[arg(short, long, value_name = "LOCAL")]
    output: Option<PathBuf>,
    /// Download every file under REMOTE (a folder), each verified with BLAKE3; files already
    /// there with the same hash are skipped, and an interrupted file resumes from its `.part`.
    #[arg(short, long)]
    recursive: bool,
}

/// Downloads, verifies and renames into place.
pub async fn run(global: &Global, args: Args, progress: Progress) -> anyhow::Result<ExitCode> {
    if args.recursive {
        let dir = args
            .dir
            .or(args.output)
            .unwrap_or_else(|| PathBuf::from("."));
        return folder(global, &args.remote, &dir, progress).await;
    }
    let local = args.output.unwrap_or_else(|| PathBuf::from("."));
    let mut hub = global.connect().await?;
    let got = hub.get(&args.remote, &local).await?;
    if !global.quiet {
        eprintln!(
            "saved {} to {} ({}, blake3 {})",
            got.remote,
            got.local.display(),
            format::bytes(got.size),
            hex::encode(&got.hash[..8])
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Where each stored file under `prefix` goes below `dir`: the prefix's last folder and what
/// follows it (`trips/holiday` → `DIR/holiday/...`). Files whose path only starts with the same
/// letters (`holidays/`) are not under the folder `holiday`.
fn local_path(prefix: &str, dir: &Path, remote: &str) -> Option<PathBuf> {
    let folder = prefix.trim_end_matches('/');
    let under = remote == folder || remote.starts_with(&format!("{folder}/")) || folder.is_empty();
    if !under {
        return None;
    }
    let parent = folder.rsplit_once('/').map_or("", |(p, _)| p);
    let rel = if parent.is_empty() {
        remote
    } else {
        &remote[parent.len() + 1..]
    };
    Some(dir.join(rel))
}

/// Whether `path` holds exactly the listed file (same size, same BLAKE3).
fn already_there(path: &Path, e: &ListEntry) -> bool {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.len() == e.size => {}
        _ => return false,
    }
    let mut h = blake3::Hasher::new();
    std::fs::File::open(path)
        .and_then(|mut f| std::io::copy(&mut f, &mut h))
        .is_ok()
        && *h.finalize().as_bytes() == e.hash
}

async fn folder(
    global: &Global,
    prefix: &str,
    dir: &Path,
    progress: Progress,
) -> anyhow::Result<ExitCode> {
    let mut hub = global.connect().await?;
    let entries: Vec<(ListEntry, PathBuf)> = hub
        .list(prefix.trim_end_matches('/'))
        .await?
        .into_iter()
        .filter_map(|e| local_path(prefix, dir, &e.path).map(|p| (e, p)))
        .collect();
    if entries.is_empty() {
        anyhow::bail!("no file stored under {prefix:?}");
    }
    let total: u64 = entries.iter().map(|(e, _)| e.size).sum();
    let bar = progress.bars.then(|| {
        let span = tracing::info_span!("get", indicatif.pb_show = tracing::field::Empty);
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {decimal_bytes}/{decimal_total_bytes} \
             {decimal_bytes_per_sec} ETA {eta} {msg}",
        )
        .expect("valid progress template")
        .progress_chars("=> ");
        span.pb_set_style(&style);
        span.pb_set_length(total);
        span.pb_start();
        span
    });
    let (mut got, mut skipped, mut failed, mut resumed) = (0usize, 0usize, 0usize, 0u64);
    let n = entries.len();
    for (i, (e, path)) in entries.iter().enumerate() {
        let (e2, p2) = (e.clone(), path.clone());
        let same = tokio::task::spawn_blocking(move || already_there(&p2, &e2)).await?;
        if same {
            skipped += 1;
        } else {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            match hub.get_resumable(&e.path, path).await {
                Ok((_, kept)) => {
                    got += 1;
                    resumed += kept;
                }
                Err(err) => {
                    failed += 1;
                    eprintln!("error: {}: {err}", e.path);
                }
            }
        }
        if let Some(span) = &bar {
            span.pb_inc(e.size);
            span.pb_set_message(&format!("{}/{n} files", i + 1));
        }
    }
    drop(bar);
    if !global.quiet {
        let mut line = format!(
            "{got} downloaded, {skipped} already there, {failed} failed, into {}",
            dir.display()
        );
        if resumed > 0 {
            line.push_str(&format!(
                " (resumed {} from .part files)",
                format::bytes(resumed)
            ));
        }
        eprintln!("{line}");
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_paths_map_like_scp_r() {
        let d = Path::new("out");
        assert_eq!(
            local_path("holiday", d, "holiday/a/b.jpg"),
            Some(PathBuf::from("out/holiday/a/b.jpg"))
        );
        assert_eq!(
            local_path("trips/holiday/", d, "trips/holiday/x.jpg"),
            Some(PathBuf::from("out/holiday/x.jpg"))
        );
        assert_eq!(local_path("holiday", d, "holidays/x.jpg"), None);
    }
}
