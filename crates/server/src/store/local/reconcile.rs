//! Start-up repair: make the index agree with the files on disk.
//!
//! The disk is the truth (a file is only renamed into `files/` once its bytes are durable), so:
//! files the index doesn't know, or whose size or modification time changed, are hashed and
//! (re-)indexed; index rows whose file is gone are dropped; stray temporary files are removed and
//! partial uploads older than a week are cleaned up.
//!
//! Symbolic links are never followed: the walk skips them (a link in `files/` is neither indexed
//! nor hashed through), files are opened from the held `files/` handle with `O_NOFOLLOW`, and a
//! link in `spool/` is removed like any stray file.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use framewire_proto::RemotePath;
use rustix::fs::OFlags;

use super::beneath::Beneath;
use super::index::{FileRecord, Index};
use crate::ServerError;

/// Partial uploads untouched this long are deleted at start-up.
const PARTIAL_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// What start-up repair found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Files on disk, in the index now.
    pub files: u64,
    /// Files found on disk that the index did not know (or knew with other content).
    pub reindexed: u64,
    /// Index rows dropped because their file was gone.
    pub dropped: u64,
    /// Partial uploads kept for resuming.
    pub partials_kept: u64,
    /// Old partial uploads removed.
    pub partials_removed: u64,
    /// Files under `files/` that are not valid remote paths (left alone, not indexed).
    pub ignored: u64,
}

pub(crate) fn reconcile(
    files_dir: &Path,
    files: &Beneath,
    spool_dir: &Path,
    index: &mut Index,
) -> Result<ReconcileReport, ServerError> {
    let mut report = ReconcileReport::default();
    let known: HashMap<String, FileRecord> = index
        .all()
        .map_err(ServerError::Index)?
        .into_iter()
        .map(|r| (r.path.clone(), r))
        .collect();
    let mut seen = Vec::new();
    let mut fresh = Vec::new();
    walk(files_dir, files_dir, &mut |rel, meta| {
        let Ok(path) = RemotePath::parse(rel) else {
            report.ignored += 1;
            return Ok(());
        };
        report.files += 1;
        let mtime = super::commit::mtime_ns(meta);
        seen.push(path.as_str().to_owned());
        match known.get(path.as_str()) {
            Some(r) if r.size == meta.len() && r.mtime_ns == mtime => {}
            old => {
                let mut hasher = blake3::Hasher::new();
                hasher.update_reader(files.open_file(path.as_str(), OFlags::RDONLY)?)?;
                fresh.push(FileRecord {
                    path: path.as_str().to_owned(),
                    size: meta.len(),
                    hash: *hasher.finalize().as_bytes(),
                    sender: old
                        .map(|r| r.sender.clone())
                        .unwrap_or_else(|| "(found on disk)".into()),
                    stored_us: mtime / 1000,
                    mtime_ns: mtime,
                });
            }
        }
        Ok(())
    })
    .map_err(|e| ServerError::DataDir(files_dir.to_path_buf(), e))?;
    report.reindexed = fresh.len() as u64;
    index.upsert_many(&fresh).map_err(ServerError::Index)?;
    let seen: std::collections::HashSet<String> = seen.into_iter().collect();
    let gone: Vec<String> = known
        .keys()
        .filter(|p| !seen.contains(*p))
        .cloned()
        .collect();
    report.dropped = gone.len() as u64;
    index.delete_many(&gone).map_err(ServerError::Index)?;

    let now = SystemTime::now();
    for entry in
        fs::read_dir(spool_dir).map_err(|e| ServerError::DataDir(spool_dir.to_path_buf(), e))?
    {
        let Ok(entry) = entry else { continue };
        // `metadata` does not follow links: a link (or folder) is never a partial.
        let meta = entry.metadata();
        let old = meta
            .as_ref()
            .map_err(|_| ())
            .and_then(|m| m.modified().map_err(|_| ()))
            .map(|t| now.duration_since(t).unwrap_or_default() > PARTIAL_MAX_AGE)
            .unwrap_or(true);
        let is_part = entry.file_name().to_string_lossy().ends_with(".part")
            && meta.is_ok_and(|m| m.is_file());
        if old || !is_part {
            let _ = fs::remove_file(entry.path());
            report.partials_removed += 1;
        } else {
            report.partials_kept += 1;
        }
    }
    if report.reindexed + report.dropped > 0 {
        tracing::warn!(
            reindexed = report.reindexed,
            dropped = report.dropped,
            "index repaired from disk"
        );
    }
    Ok(report)
}

/// Calls `f(relative_path, metadata)` for every regular file below `dir` (symbolic links are not
/// followed).
fn walk(
    root: &Path,
    dir: &Path,
    f: &mut dyn FnMut(&str, &fs::Metadata) -> std::io::Result<()>,
) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let path = entry.path();
        if meta.is_dir() {
            walk(root, &path, f)?;
        } else if meta.is_file() {
            let rel = path.strip_prefix(root).expect("below root");
            // A name that is not UTF-8 cannot be a remote path; it is reported as ignored.
            f(rel.to_str().unwrap_or("\0"), &meta)?;
        }
    }
    Ok(())
}
