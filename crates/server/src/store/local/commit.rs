//! One group commit on the local disk: make a batch of verified uploads durable and visible.
//!
//! Per batch: sync the file data (one `syncfs` for the whole batch on Linux, one `fsync` when the
//! batch holds a single file), rename each spool file into place, sync again so the renames and
//! any new folders are durable, then hand back the index records. While a batch is being synced
//! the next one queues up (in the pipeline's committer), so the number of syncs per file falls as
//! the load rises.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use framewire_proto::{ErrorCode, StoredStatus};

use super::index::FileRecord;
use super::spool::SpoolFile;
use crate::store::{classify_io, CommitData, CommitItem, Committed, Refusal};

/// An item whose bytes are in a spool file, ready to be synced and renamed.
struct OnDisk {
    slot: usize,
    item: CommitItem,
    file: File,
    spool_path: PathBuf,
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

pub(crate) fn mtime_ns(meta: &fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

type Answer = Result<Committed, Refusal>;

/// Commits `batch`: its answers in order, and the index records of what was stored.
pub(super) fn commit_batch(
    batch: Vec<CommitItem>,
    files_dir: &Path,
    spool_dir: &Path,
) -> (Vec<Answer>, Vec<FileRecord>) {
    let mut answers: Vec<Option<Answer>> = (0..batch.len()).map(|_| None).collect();
    // 0. Small files held in memory are written out now, inside the batch.
    let mut on_disk = Vec::with_capacity(batch.len());
    for (slot, item) in batch.into_iter().enumerate() {
        match materialize(slot, item, spool_dir) {
            Ok(d) => on_disk.push(d),
            Err(r) => answers[slot] = Some(Err(r)),
        }
    }
    let records = durable(on_disk, files_dir, &mut answers);
    let answers = answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|| Err(Refusal::internal("commit gave no answer"))))
        .collect();
    (answers, records)
}

fn durable(
    on_disk: Vec<OnDisk>,
    files_dir: &Path,
    answers: &mut [Option<Answer>],
) -> Vec<FileRecord> {
    if on_disk.is_empty() {
        return Vec::new();
    }
    // 1. File data durable before any rename can make it visible.
    let synced = if on_disk.len() == 1 {
        on_disk[0].file.sync_all()
    } else {
        sync_filesystem(&on_disk[0].file)
    };
    if let Err(e) = synced {
        let r = classify_io(&e);
        for d in on_disk {
            let _ = fs::remove_file(&d.spool_path);
            answers[d.slot] = Some(Err(r.clone()));
        }
        return Vec::new();
    }

    // 2. Rename into place, refusing anything that would silently replace a different file.
    let mut renamed = Vec::with_capacity(on_disk.len());
    let mut dirs = BTreeSet::new();
    for d in on_disk {
        let target = files_dir.join(d.item.path.as_str());
        match place(&d, &target, files_dir, &mut dirs) {
            Ok(Placed::Renamed(c)) => renamed.push((d, target, c)),
            Ok(Placed::Unchanged) => {
                let _ = fs::remove_file(&d.spool_path);
                answers[d.slot] = Some(Ok(Committed {
                    status: StoredStatus::Unchanged,
                    replaced_size: 0,
                }));
            }
            Err(refusal) => {
                let _ = fs::remove_file(&d.spool_path);
                answers[d.slot] = Some(Err(refusal));
            }
        }
    }
    if renamed.is_empty() {
        return Vec::new();
    }

    // 3. The renames (and new folders) durable.
    let synced = if renamed.len() == 1 {
        dirs.iter().try_for_each(|d| sync_dir(d))
    } else {
        sync_filesystem(&renamed[0].0.file)
    };
    if let Err(e) = synced {
        // Whether the renames survive a crash is unknown: say so rather than claim durability.
        tracing::error!(error = %e, "sync after rename failed");
        let refusal = classify_io(&e);
        for (d, target, _) in renamed {
            let _ = fs::remove_file(&target);
            answers[d.slot] = Some(Err(refusal.clone()));
        }
        return Vec::new();
    }

    // 4. The index records; the caller writes them before anyone is answered.
    let stored_us = now_us();
    renamed
        .into_iter()
        .map(|(d, target, committed)| {
            answers[d.slot] = Some(Ok(committed));
            FileRecord {
                path: d.item.path.as_str().to_owned(),
                size: d.item.size,
                hash: d.item.hash,
                sender: d.item.sender.clone(),
                stored_us,
                mtime_ns: fs::metadata(&target).map(|m| mtime_ns(&m)).unwrap_or(0),
            }
        })
        .collect()
}

/// Gets an item's bytes into a spool file (writing them out if they are in memory).
fn materialize(slot: usize, mut item: CommitItem, spool_dir: &Path) -> Result<OnDisk, Refusal> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    match std::mem::replace(&mut item.data, CommitData::Memory(Vec::new())) {
        CommitData::Staged(staged) => {
            let spool = staged
                .into_any()
                .downcast::<SpoolFile>()
                .map_err(|_| Refusal::internal("staged elsewhere than the local spool"))?;
            let SpoolFile { file, path, .. } = *spool;
            Ok(OnDisk {
                slot,
                item,
                file,
                spool_path: path,
            })
        }
        CommitData::Memory(chunks) => {
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let spool_path = spool_dir.join(format!("mem-{}-{n}.tmp", std::process::id()));
            let written = (|| {
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&spool_path)?;
                for c in &chunks {
                    f.write_all(c)?;
                }
                Ok::<_, io::Error>(f)
            })();
            match written {
                Ok(file) => Ok(OnDisk {
                    slot,
                    item,
                    file,
                    spool_path,
                }),
                Err(e) => {
                    let _ = fs::remove_file(&spool_path);
                    Err(classify_io(&e))
                }
            }
        }
    }
}

enum Placed {
    Renamed(Committed),
    Unchanged,
}

fn place(
    d: &OnDisk,
    target: &Path,
    files_dir: &Path,
    dirs: &mut BTreeSet<PathBuf>,
) -> Result<Placed, Refusal> {
    let item = &d.item;
    let committed = match fs::symlink_metadata(target) {
        Ok(m) if m.is_dir() => {
            return Err(Refusal::new(
                ErrorCode::Exists,
                format!("{} is a folder on the hub", item.path),
            ))
        }
        Ok(m) => {
            if m.len() == item.size && hash_of(target)? == item.hash {
                return Ok(Placed::Unchanged);
            }
            if !item.overwrite {
                return Err(Refusal::new(
                    ErrorCode::Exists,
                    format!(
                        "a different file ({} bytes) is already stored at {}; send with --overwrite to replace it",
                        m.len(),
                        item.path
                    ),
                ));
            }
            Committed {
                status: StoredStatus::Replaced,
                replaced_size: m.len(),
            }
        }
        Err(_) => Committed {
            status: StoredStatus::New,
            replaced_size: 0,
        },
    };
    let parent = target.parent().unwrap_or(files_dir);
    create_dirs(parent, files_dir, dirs).map_err(|e| {
        if e.kind() == io::ErrorKind::NotADirectory || e.kind() == io::ErrorKind::AlreadyExists {
            Refusal::new(
                ErrorCode::Exists,
                format!(
                    "a file on the hub is in the way of the folders of {}",
                    item.path
                ),
            )
        } else {
            classify_io(&e)
        }
    })?;
    fs::rename(&d.spool_path, target).map_err(|e| classify_io(&e))?;
    dirs.insert(parent.to_path_buf());
    Ok(Placed::Renamed(committed))
}

/// Creates `dir` and its missing parents below `root`, remembering every folder whose entries
/// changed (so they can be synced).
fn create_dirs(dir: &Path, root: &Path, dirs: &mut BTreeSet<PathBuf>) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if dir != root {
        if let Some(parent) = dir.parent() {
            create_dirs(parent, root, dirs)?;
            dirs.insert(parent.to_path_buf());
        }
    }
    match fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Hash of a stored file (to tell an identical re-upload from a different one).
fn hash_of(path: &Path) -> Result<[u8; 32], Refusal> {
    let mut hasher = blake3::Hasher::new();
    hasher
        .update_reader(File::open(path).map_err(|e| classify_io(&e))?)
        .map_err(|e| classify_io(&e))?;
    Ok(*hasher.finalize().as_bytes())
}

pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// One sync of the whole file system holding `file`: every dirty page and inode of the batch in a
/// single journal commit, instead of one per file.
#[cfg(target_os = "linux")]
fn sync_filesystem(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `syncfs` only reads the descriptor number, which `file` keeps open for the call.
    let rc = unsafe { libc::syncfs(file.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn sync_filesystem(file: &File) -> io::Result<()> {
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use framewire_proto::RemotePath;

    fn item(path: &str, body: &[u8], overwrite: bool) -> CommitItem {
        CommitItem {
            path: RemotePath::parse(path).unwrap(),
            data: CommitData::Memory(vec![Bytes::copy_from_slice(body)]),
            size: body.len() as u64,
            hash: *blake3::hash(body).as_bytes(),
            overwrite,
            sender: "t".into(),
        }
    }

    fn dirs() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let (files, spool) = (d.path().join("files"), d.path().join("spool"));
        fs::create_dir_all(&files).unwrap();
        fs::create_dir_all(&spool).unwrap();
        (d, files, spool)
    }

    fn status(a: &Answer) -> Result<StoredStatus, ErrorCode> {
        a.as_ref().map(|c| c.status).map_err(|r| r.code)
    }

    #[test]
    fn a_batch_answers_each_item_in_order() {
        let (_d, files, spool) = dirs();
        let (answers, records) = commit_batch(
            vec![
                item("a/1.txt", b"one", false),
                item("a/2.txt", b"two", false),
                item("b.txt", b"bee", false),
            ],
            &files,
            &spool,
        );
        assert!(answers.iter().all(|a| status(a) == Ok(StoredStatus::New)));
        assert_eq!(records.len(), 3);
        assert_eq!(fs::read(files.join("a/2.txt")).unwrap(), b"two");
        assert!(
            fs::read_dir(&spool).unwrap().next().is_none(),
            "nothing left in the spool"
        );

        // Identical, different without overwrite, different with overwrite, a file in the way
        // of a folder, and a folder in the way of a file — in one batch.
        let (answers, records) = commit_batch(
            vec![
                item("a/1.txt", b"one", false),
                item("a/2.txt", b"TWO", false),
                item("b.txt", b"longer bee", true),
                item("b.txt/c.txt", b"under a file", false),
                item("a", b"a folder is there", true),
            ],
            &files,
            &spool,
        );
        assert_eq!(status(&answers[0]), Ok(StoredStatus::Unchanged));
        assert_eq!(status(&answers[1]), Err(ErrorCode::Exists));
        assert_eq!(status(&answers[2]), Ok(StoredStatus::Replaced));
        assert_eq!(answers[2].as_ref().unwrap().replaced_size, 3);
        assert_eq!(status(&answers[3]), Err(ErrorCode::Exists));
        assert_eq!(status(&answers[4]), Err(ErrorCode::Exists));
        assert_eq!(records.len(), 1, "only the replaced file is recorded");
        assert_eq!(fs::read(files.join("a/2.txt")).unwrap(), b"two", "kept");
        assert_eq!(fs::read(files.join("b.txt")).unwrap(), b"longer bee");
        assert!(fs::read_dir(&spool).unwrap().next().is_none());
    }

    #[test]
    fn staged_and_memory_items_commit_together() {
        let (_d, files, spool) = dirs();
        let parked = std::sync::Arc::new(super::super::spool::Parked::default());
        let mut staged = SpoolFile::partial(spool.join("k-5.part"), 0, &parked).unwrap();
        use crate::store::Staged;
        staged.write_all(&[Bytes::from_static(b"stage")]).unwrap();
        let mut big = item("big.bin", b"stage", false);
        big.data = CommitData::Staged(Box::new(staged));
        let (answers, records) =
            commit_batch(vec![big, item("small.txt", b"s", false)], &files, &spool);
        assert!(answers.iter().all(|a| status(a) == Ok(StoredStatus::New)));
        assert_eq!(records[0].path, "big.bin");
        assert_eq!(fs::read(files.join("big.bin")).unwrap(), b"stage");
        assert!(
            !spool.join("k-5.part").exists(),
            "the partial became the file"
        );
    }
}
