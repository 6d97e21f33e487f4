//! One group commit on the local disk: make a batch of verified uploads durable and visible.
//!
//! Per batch: sync the file data (one `syncfs` for the whole batch on Linux, one `fsync` when the
//! batch holds a single file), rename each spool file into place, sync again so the renames and
//! any new folders are durable, then hand back the index records. While a batch is being synced
//! the next one queues up (in the pipeline's committer), so the number of syncs per file falls as
//! the load rises.

//!
//! Every path is resolved from the held `files/` and `spool/` handles without following a symbolic
//! link ([`Beneath`]): a folder swapped for a link between an offer and its commit refuses the
//! commit instead of writing outside the data folder.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use framewire_proto::{ErrorCode, StoredStatus};
use rustix::fd::OwnedFd;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::beneath::{self, file_type, is_link, link_refusal, Beneath};
use super::index::FileRecord;
use super::spool::SpoolFile;
use crate::store::{classify_io, CommitData, CommitItem, Committed, Refusal};

/// An item whose bytes are in a spool file, ready to be synced and renamed.
struct OnDisk {
    slot: usize,
    item: CommitItem,
    file: File,
    /// Its name in `spool/`.
    spool_name: String,
}

/// Folders below `files/` (by relative path, `""` for `files/` itself) whose entries changed,
/// held open so that they can be synced.
type ChangedDirs = BTreeMap<String, OwnedFd>;

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

/// [`mtime_ns`] from a `stat` (whose field types differ between platforms).
#[allow(clippy::unnecessary_cast)]
fn stat_mtime_ns(st: &rustix::fs::Stat) -> i64 {
    (st.st_mtime as i64) * 1_000_000_000 + st.st_mtime_nsec as i64
}

type Answer = Result<Committed, Refusal>;

/// Commits `batch`: its answers in order, and the index records of what was stored.
pub(super) fn commit_batch(
    batch: Vec<CommitItem>,
    files: &Beneath,
    spool: &Beneath,
) -> (Vec<Answer>, Vec<FileRecord>) {
    let mut answers: Vec<Option<Answer>> = (0..batch.len()).map(|_| None).collect();
    // 0. Small files held in memory are written out now, inside the batch.
    let mut on_disk = Vec::with_capacity(batch.len());
    for (slot, item) in batch.into_iter().enumerate() {
        match materialize(slot, item, spool) {
            Ok(d) => on_disk.push(d),
            Err(r) => answers[slot] = Some(Err(r)),
        }
    }
    let records = durable(on_disk, files, spool, &mut answers);
    let answers = answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|| Err(Refusal::internal("commit gave no answer"))))
        .collect();
    (answers, records)
}

fn durable(
    on_disk: Vec<OnDisk>,
    files: &Beneath,
    spool: &Beneath,
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
            let _ = spool.remove(&d.spool_name);
            answers[d.slot] = Some(Err(r.clone()));
        }
        return Vec::new();
    }

    // 2. Rename into place, refusing anything that would silently replace a different file.
    let mut renamed = Vec::with_capacity(on_disk.len());
    let mut dirs = ChangedDirs::new();
    for d in on_disk {
        match place(&d, files, spool, &mut dirs) {
            Ok(Placed::Renamed(c)) => renamed.push((d, c)),
            Ok(Placed::Unchanged) => {
                let _ = spool.remove(&d.spool_name);
                answers[d.slot] = Some(Ok(Committed {
                    status: StoredStatus::Unchanged,
                    replaced_size: 0,
                }));
            }
            Err(refusal) => {
                let _ = spool.remove(&d.spool_name);
                answers[d.slot] = Some(Err(refusal));
            }
        }
    }
    if renamed.is_empty() {
        return Vec::new();
    }

    // 3. The renames (and new folders) durable.
    let synced = if renamed.len() == 1 {
        dirs.values().try_for_each(|d| Ok(rustix::fs::fsync(d)?))
    } else {
        sync_filesystem(&renamed[0].0.file)
    };
    if let Err(e) = synced {
        // Whether the renames survive a crash is unknown: say so rather than claim durability.
        tracing::error!(error = %e, "sync after rename failed");
        let refusal = classify_io(&e);
        for (d, _) in renamed {
            let (parent, name) = beneath::split(d.item.path.as_str());
            if let Some(dir) = dirs.get(parent) {
                let _ = rustix::fs::unlinkat(dir, name, AtFlags::empty());
            }
            answers[d.slot] = Some(Err(refusal.clone()));
        }
        return Vec::new();
    }

    // 4. The index records; the caller writes them before anyone is answered.
    let stored_us = now_us();
    renamed
        .into_iter()
        .map(|(d, committed)| {
            let (parent, name) = beneath::split(d.item.path.as_str());
            let mtime = dirs
                .get(parent)
                .and_then(|dir| rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).ok())
                .map(|st| stat_mtime_ns(&st))
                .unwrap_or(0);
            answers[d.slot] = Some(Ok(committed));
            FileRecord {
                path: d.item.path.as_str().to_owned(),
                size: d.item.size,
                hash: d.item.hash,
                sender: d.item.sender.clone(),
                stored_us,
                mtime_ns: mtime,
            }
        })
        .collect()
}

/// Gets an item's bytes into a spool file (writing them out if they are in memory).
fn materialize(slot: usize, mut item: CommitItem, spool: &Beneath) -> Result<OnDisk, Refusal> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    match std::mem::replace(&mut item.data, CommitData::Memory(Vec::new())) {
        CommitData::Staged(staged) => {
            let spool = staged
                .into_any()
                .downcast::<SpoolFile>()
                .map_err(|_| Refusal::internal("staged elsewhere than the local spool"))?;
            let SpoolFile { file, path, .. } = *spool;
            let spool_name = path
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| Refusal::internal("a spool file without a name"))?
                .to_owned();
            Ok(OnDisk {
                slot,
                item,
                file,
                spool_name,
            })
        }
        CommitData::Memory(chunks) => {
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let spool_name = format!("mem-{}-{n}.tmp", std::process::id());
            let written = (|| {
                let mut f =
                    spool.open_file(&spool_name, OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL)?;
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
                    spool_name,
                }),
                Err(e) => {
                    let _ = spool.remove(&spool_name);
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
    files: &Beneath,
    spool: &Beneath,
    dirs: &mut ChangedDirs,
) -> Result<Placed, Refusal> {
    let item = &d.item;
    let (parent_rel, name) = beneath::split(item.path.as_str());
    // The folder is resolved once, without following links; the checks and the rename below are
    // relative to that handle, so nothing swapped in meanwhile can lead them outside.
    let parent = match files.dir(parent_rel) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => create_dirs(files, parent_rel, dirs),
        found => found,
    }
    .map_err(|e| {
        if is_link(&e) {
            link_refusal(format_args!("a folder on the way to {}", item.path))
        } else if e.kind() == io::ErrorKind::NotADirectory
            || e.kind() == io::ErrorKind::AlreadyExists
        {
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
    let committed = match rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => match file_type(&st) {
            FileType::Directory => {
                return Err(Refusal::new(
                    ErrorCode::Exists,
                    format!("{} is a folder on the hub", item.path),
                ))
            }
            FileType::Symlink => return Err(link_refusal(&item.path)),
            FileType::RegularFile => {
                let len = st.st_size as u64;
                if len == item.size && hash_of(&parent, name)? == item.hash {
                    return Ok(Placed::Unchanged);
                }
                if !item.overwrite {
                    return Err(Refusal::new(
                        ErrorCode::Exists,
                        format!(
                            "a different file ({len} bytes) is already stored at {}; send with --overwrite to replace it",
                            item.path
                        ),
                    ));
                }
                Committed {
                    status: StoredStatus::Replaced,
                    replaced_size: len,
                }
            }
            _ => {
                return Err(Refusal::new(
                    ErrorCode::Exists,
                    format!("{} is not a regular file on the hub", item.path),
                ))
            }
        },
        Err(_) => Committed {
            status: StoredStatus::New,
            replaced_size: 0,
        },
    };
    rustix::fs::renameat(spool.fd(), d.spool_name.as_str(), &parent, name)
        .map_err(|e| classify_io(&e.into()))?;
    dirs.entry(parent_rel.to_owned()).or_insert(parent);
    Ok(Placed::Renamed(committed))
}

/// Creates the folder `rel` below `files` and its missing parents, none through a link, and hands
/// it back open; remembers every folder whose entries changed (so they can be synced).
fn create_dirs(files: &Beneath, rel: &str, dirs: &mut ChangedDirs) -> io::Result<OwnedFd> {
    let mut cur = files.dir("")?;
    let mut cur_rel = String::new();
    for seg in rel.split('/') {
        let open = |at: &OwnedFd| {
            beneath::resolve(
                rustix::fd::AsFd::as_fd(at),
                seg,
                OFlags::DIRECTORY | OFlags::RDONLY,
                Mode::empty(),
            )
        };
        let next = match open(&cur) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match rustix::fs::mkdirat(&cur, seg, Mode::from_raw_mode(0o777)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                let next = open(&cur)?;
                let changed = std::mem::replace(&mut cur, next);
                dirs.entry(cur_rel.clone()).or_insert(changed);
                push_segment(&mut cur_rel, seg);
                continue;
            }
            other => other?,
        };
        cur = next;
        push_segment(&mut cur_rel, seg);
    }
    Ok(cur)
}

fn push_segment(rel: &mut String, seg: &str) {
    if !rel.is_empty() {
        rel.push('/');
    }
    rel.push_str(seg);
}

/// Hash of a stored file (to tell an identical re-upload from a different one).
fn hash_of(dir: &OwnedFd, name: &str) -> Result<[u8; 32], Refusal> {
    let file = beneath::resolve(
        rustix::fd::AsFd::as_fd(dir),
        name,
        OFlags::RDONLY,
        Mode::empty(),
    )
    .map_err(|e| classify_io(&e))?;
    let mut hasher = blake3::Hasher::new();
    hasher
        .update_reader(File::from(file))
        .map_err(|e| classify_io(&e))?;
    Ok(*hasher.finalize().as_bytes())
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

    use std::path::PathBuf;

    fn dirs() -> (tempfile::TempDir, PathBuf, PathBuf, Beneath, Beneath) {
        let d = tempfile::tempdir().unwrap();
        let (files, spool) = (d.path().join("files"), d.path().join("spool"));
        fs::create_dir_all(&files).unwrap();
        fs::create_dir_all(&spool).unwrap();
        let (f, s) = (
            Beneath::open(&files).unwrap(),
            Beneath::open(&spool).unwrap(),
        );
        (d, files, spool, f, s)
    }

    fn status(a: &Answer) -> Result<StoredStatus, ErrorCode> {
        a.as_ref().map(|c| c.status).map_err(|r| r.code)
    }

    #[test]
    fn a_batch_answers_each_item_in_order() {
        let (_d, files, spool, fb, sb) = dirs();
        let (answers, records) = commit_batch(
            vec![
                item("a/1.txt", b"one", false),
                item("a/2.txt", b"two", false),
                item("b.txt", b"bee", false),
            ],
            &fb,
            &sb,
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
            &fb,
            &sb,
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
        let (_d, files, spool, fb, sb) = dirs();
        let parked = std::sync::Arc::new(super::super::spool::Parked::default());
        let sb = std::sync::Arc::new(sb);
        let mut staged = SpoolFile::partial(&sb, spool.join("k-5.part"), 0, &parked).unwrap();
        use crate::store::Staged;
        staged.write_all(&[Bytes::from_static(b"stage")]).unwrap();
        let mut big = item("big.bin", b"stage", false);
        big.data = CommitData::Staged(Box::new(staged));
        let (answers, records) = commit_batch(vec![big, item("small.txt", b"s", false)], &fb, &sb);
        assert!(answers.iter().all(|a| status(a) == Ok(StoredStatus::New)));
        assert_eq!(records[0].path, "big.bin");
        assert_eq!(fs::read(files.join("big.bin")).unwrap(), b"stage");
        assert!(
            !spool.join("k-5.part").exists(),
            "the partial became the file"
        );
    }

    /// Issue 10: a folder swapped for a link between the offer and the commit.
    #[test]
    fn a_folder_swapped_for_a_link_refuses_the_commit() {
        let (_d, files, _spool, fb, sb) = dirs();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), files.join("dir")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("y"), files.join("y")).unwrap();
        let (answers, records) = commit_batch(
            vec![
                item("dir/x.bin", b"x", false),
                item("dir/sub/x.bin", b"x", false),
                item("y", b"y", true),
            ],
            &fb,
            &sb,
        );
        assert!(
            answers.iter().all(|a| status(a) == Err(ErrorCode::BadPath)),
            "{answers:?}"
        );
        assert!(records.is_empty());
        assert!(fs::read_dir(outside.path()).unwrap().next().is_none());
    }
}
