//! [`LocalStorage`]: the data folder on a local disk.
//!
//! ```text
//! DATA/files/<remote path>   stored files, exactly as uploaded
//! DATA/spool/*.part          partial uploads (resumable), never visible as stored files
//! DATA/spool/*.tmp           anonymous staging and in-memory files being written; removed at start
//! DATA/thumbs/               thumbnails, by content hash
//! DATA/index.sqlite          path, size, BLAKE3, sender, time, mtime: a fast view of files/
//! ```
//!
//! The disk is the truth: a file is renamed into `files/` only once its bytes are durable, and the
//! index is repaired from the disk at start ([`reconcile`]). If an index write fails after a
//! commit, the records stay in an in-memory overlay that listings read (and that is written out
//! with the next batch), so an acknowledged file is never unlisted.
//!
//! Symbolic links inside the data folder are never followed: `files/`, `spool/` and `thumbs/` are
//! held open and every path below them is resolved from those handles ([`beneath`]), so a link
//! planted while the hub runs is refused rather than written, truncated or served through.

mod beneath;
mod commit;
mod index;
mod reconcile;
mod spool;

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use framewire_proto::{ErrorCode, RemotePath};
use rustix::fs::{AtFlags, FileType, OFlags};

pub use index::FileRecord;
pub use reconcile::ReconcileReport;

use super::{classify_io, CommitItem, Committed, PartialKey, Refusal, Staged, Storage};
use crate::ServerError;
use beneath::{file_type, is_link, link_refusal, Beneath};
use index::Index;

/// The data folder: stored files, partial uploads, thumbnails and the index.
pub struct LocalStorage {
    files: Beneath,
    thumbs: Beneath,
    spool: Arc<Beneath>,
    spool_dir: PathBuf,
    reader: Mutex<Index>,
    writer: Mutex<Index>,
    /// Partial uploads at rest, and their sizes.
    parked: Arc<spool::Parked>,
    /// Index changes that could not be written yet: `Some` a stored record, `None` a deletion.
    overlay: Mutex<BTreeMap<String, Option<FileRecord>>>,
}

impl LocalStorage {
    /// Opens (creating if needed) the data folder and repairs the index from the disk. Blocking.
    ///
    /// # Errors
    /// If the folder or the index cannot be set up.
    pub fn open(data_dir: &Path) -> Result<(LocalStorage, ReconcileReport), ServerError> {
        let files_dir = data_dir.join("files");
        let spool_dir = data_dir.join("spool");
        let thumbs_dir = data_dir.join("thumbs");
        for d in [data_dir, &files_dir, &spool_dir, &thumbs_dir] {
            fs::create_dir_all(d).map_err(|e| ServerError::DataDir(d.to_path_buf(), e))?;
        }
        let held =
            |d: &Path| Beneath::open(d).map_err(|e| ServerError::DataDir(d.to_path_buf(), e));
        let (files, spool, thumbs) = (held(&files_dir)?, held(&spool_dir)?, held(&thumbs_dir)?);
        let index_path = data_dir.join("index.sqlite");
        let mut writer = Index::open(&index_path).map_err(ServerError::Index)?;
        let report = reconcile::reconcile(&files_dir, &files, &spool_dir, &mut writer)?;
        let reader = Index::open(&index_path).map_err(ServerError::Index)?;
        let parked = Arc::new(spool::Parked::scan(&spool_dir));
        Ok((
            LocalStorage {
                files,
                thumbs,
                spool: Arc::new(spool),
                spool_dir,
                reader: Mutex::new(reader),
                writer: Mutex::new(writer),
                parked,
                overlay: Mutex::default(),
            },
            report,
        ))
    }

    /// `spool/<blake3(path)>-<size>.part`.
    fn partial_path(&self, key: &PartialKey) -> PathBuf {
        let h = blake3::hash(key.path.as_str().as_bytes());
        self.spool_dir
            .join(format!("{}-{}.part", &h.to_hex()[..32], key.size))
    }

    /// Writes the overlay (and `records`) to the index. On failure everything stays in the
    /// overlay, which reads consult, and the next call tries again. Reads are not held up while
    /// the index is busy: the overlay is not locked during the write.
    fn write_index(&self, records: Vec<FileRecord>, deleted: Vec<String>) {
        let pending = {
            let mut overlay = self.overlay.lock().unwrap();
            for r in records {
                overlay.insert(r.path.clone(), Some(r));
            }
            for p in deleted {
                overlay.insert(p, None);
            }
            if overlay.is_empty() {
                return;
            }
            overlay.clone()
        };
        let upserts: Vec<FileRecord> = pending.values().flatten().cloned().collect();
        let deletes: Vec<String> = pending
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        match self.writer.lock().unwrap().apply(&upserts, &deletes) {
            Ok(()) => {
                let mut overlay = self.overlay.lock().unwrap();
                for (path, written) in pending {
                    if overlay.get(&path) == Some(&written) {
                        overlay.remove(&path);
                    }
                }
            }
            Err(e) => tracing::error!(
                error = %e,
                pending = pending.len(),
                "index write failed; the files are stored and listed from memory until it succeeds"
            ),
        }
    }
}

impl Storage for LocalStorage {
    fn record(&self, path: &str) -> Result<Option<FileRecord>, Refusal> {
        if let Some(o) = self.overlay.lock().unwrap().get(path) {
            return Ok(o.clone());
        }
        self.reader.lock().unwrap().get(path).map_err(index_error)
    }

    fn list(
        &self,
        prefix: &str,
        after: &str,
        sender: &str,
        limit: usize,
    ) -> Result<(Vec<FileRecord>, bool), Refusal> {
        let (mut page, mut more) = self
            .reader
            .lock()
            .unwrap()
            .list(prefix, after, sender, limit)
            .map_err(index_error)?;
        let overlay = self.overlay.lock().unwrap();
        if overlay.is_empty() {
            return Ok((page, more));
        }
        // Merge what the index could not take yet: replace, drop or add, then cut the page again.
        let mut merged: BTreeMap<String, FileRecord> =
            page.drain(..).map(|r| (r.path.clone(), r)).collect();
        let last = if more {
            merged.keys().next_back().cloned()
        } else {
            None
        };
        for (path, rec) in overlay.iter() {
            let in_range = path.starts_with(prefix)
                && path.as_str() > after
                && last.as_ref().is_none_or(|l| path <= l);
            if !in_range {
                continue;
            }
            match rec {
                Some(r) if sender.is_empty() || r.sender == sender => {
                    merged.insert(path.clone(), r.clone());
                }
                _ => {
                    merged.remove(path);
                }
            }
        }
        let mut page: Vec<FileRecord> = merged.into_values().collect();
        if page.len() > limit {
            page.truncate(limit);
            more = true;
        }
        Ok((page, more))
    }

    fn open_read(
        &self,
        path: &RemotePath,
        start: u64,
    ) -> Result<(Box<dyn Read + Send>, FileRecord), Refusal> {
        let not_found = || Refusal::new(ErrorCode::NotFound, format!("no file stored at {path}"));
        let rec = self.record(path.as_str())?.ok_or_else(not_found)?;
        let mut file = self
            .files
            .open_file(path.as_str(), OFlags::RDONLY)
            .map_err(|e| {
                if is_link(&e) {
                    link_refusal(path)
                } else {
                    not_found()
                }
            })?;
        if start > 0 {
            file.seek(SeekFrom::Start(start))
                .map_err(|e| classify_io(&e))?;
        }
        Ok((Box::new(file), rec))
    }

    fn delete(&self, path: &RemotePath) -> Result<Option<u64>, Refusal> {
        let size = match self.files.stat(path.as_str()) {
            Ok(st) if file_type(&st) == FileType::RegularFile => st.st_size as u64,
            Err(e) if is_link(&e) => return Err(link_refusal(path)),
            _ => {
                // Not on disk (the disk is the truth): drop a stale row, if any.
                if self.record(path.as_str())?.is_some() {
                    self.write_index(Vec::new(), vec![path.as_str().to_owned()]);
                }
                return Ok(None);
            }
        };
        let dir = self
            .files
            .remove(path.as_str())
            .map_err(|e| classify_io(&e))?;
        // The directory entry's removal is durable before the answer; the index row follows
        // (and if it were lost, start-up's reconcile drops rows whose file is gone).
        rustix::fs::fsync(&dir).map_err(|e| classify_io(&e.into()))?;
        self.write_index(Vec::new(), vec![path.as_str().to_owned()]);
        Ok(Some(size))
    }

    fn check_target(&self, path: &RemotePath) -> Result<(), Refusal> {
        let mut cur = self.files.dir("").map_err(|e| classify_io(&e))?;
        let segments: Vec<&str> = path.segments().collect();
        for (i, seg) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            let st =
                rustix::fs::statat(&cur, *seg, AtFlags::SYMLINK_NOFOLLOW).map(|st| file_type(&st));
            match st {
                Err(_) => return Ok(()),
                Ok(FileType::Symlink) => {
                    return Err(Refusal::new(
                        ErrorCode::BadPath,
                        format!(
                            "{} is a symbolic link on the hub; refusing to follow it",
                            segments[..=i].join("/")
                        ),
                    ))
                }
                Ok(FileType::Directory) if last => {
                    return Err(Refusal::new(
                        ErrorCode::Exists,
                        format!("{path} is a folder on the hub"),
                    ))
                }
                Ok(t) if !last && t != FileType::Directory => {
                    return Err(Refusal::new(
                        ErrorCode::Exists,
                        format!(
                            "{} is a file on the hub, but {path} needs it to be a folder",
                            segments[..=i].join("/")
                        ),
                    ))
                }
                Ok(_) if last => {}
                Ok(_) => {
                    cur = beneath::resolve(
                        rustix::fd::AsFd::as_fd(&cur),
                        seg,
                        OFlags::DIRECTORY | OFlags::RDONLY,
                        rustix::fs::Mode::empty(),
                    )
                    .map_err(|e| {
                        if is_link(&e) {
                            link_refusal(segments[..=i].join("/"))
                        } else {
                            classify_io(&e)
                        }
                    })?;
                }
            }
        }
        Ok(())
    }

    fn partial_len(&self, key: &PartialKey) -> Option<u64> {
        let path = self.partial_path(key);
        let st = rustix::fs::statat(
            self.spool.fd(),
            spool::spool_name(&path).ok()?,
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .ok()?;
        (file_type(&st) == FileType::RegularFile).then_some(st.st_size as u64)
    }

    fn partial_bytes(&self) -> u64 {
        self.parked.total()
    }

    fn hash_partial(
        &self,
        key: &PartialKey,
        len: u64,
    ) -> Result<(blake3::Hasher, [u8; 32]), Refusal> {
        let path = self.partial_path(key);
        let name = spool::spool_name(&path).map_err(|e| classify_io(&e))?;
        let mut f = self
            .spool
            .open_file(name, OFlags::RDONLY)
            .map_err(|e| spool_refusal(&e))?
            .take(len);
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).map_err(|e| classify_io(&e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let h = *hasher.finalize().as_bytes();
        Ok((hasher, h))
    }

    fn stage(&self, key: Option<&PartialKey>, offset: u64) -> Result<Box<dyn Staged>, Refusal> {
        let staged = match key {
            Some(k) => {
                spool::SpoolFile::partial(&self.spool, self.partial_path(k), offset, &self.parked)
            }
            None => spool::SpoolFile::anonymous(&self.spool, &self.spool_dir, &self.parked),
        };
        staged
            .map(|s| Box::new(s) as Box<dyn Staged>)
            .map_err(|e| spool_refusal(&e))
    }

    fn keep_partial(&self, key: &PartialKey, chunks: &[Bytes]) {
        let path = self.partial_path(key);
        let Ok(name) = spool::spool_name(&path) else {
            return;
        };
        let written = (|| -> io::Result<()> {
            let mut f = self
                .spool
                .open_file(name, OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC)?;
            for c in chunks {
                f.write_all(c)?;
            }
            Ok(())
        })();
        match written {
            Ok(()) => self
                .parked
                .set(&path, chunks.iter().map(|c| c.len() as u64).sum()),
            Err(_) => {
                let _ = self.spool.remove(name);
            }
        }
    }

    fn discard_partial(&self, key: &PartialKey) {
        let path = self.partial_path(key);
        if let Ok(name) = spool::spool_name(&path) {
            let _ = self.spool.remove(name);
        }
        self.parked.remove(&path);
    }

    fn commit_batch(&self, batch: Vec<CommitItem>) -> Vec<Result<Committed, Refusal>> {
        let (answers, records) = commit::commit_batch(batch, &self.files, &self.spool);
        if !records.is_empty() {
            self.write_index(records, Vec::new());
        }
        answers
    }

    fn totals(&self) -> (u64, u64) {
        self.reader.lock().unwrap().totals().unwrap_or((0, 0))
    }

    fn cached(&self, name: &str) -> Option<Bytes> {
        let mut file = self.thumbs.open_file(name, OFlags::RDONLY).ok()?;
        let mut bytes = Vec::with_capacity(file.metadata().map_or(0, |m| m.size() as usize));
        file.read_to_end(&mut bytes).ok()?;
        Some(Bytes::from(bytes))
    }

    fn keep_cached(&self, name: &str, bytes: &[u8]) {
        // Best effort: a cache write that fails (disk full) just means making it again next time.
        let tmp = format!("{}.tmp", name.strip_suffix(".jpg").unwrap_or(name));
        let written = self
            .thumbs
            .open_file(&tmp, OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC)
            .and_then(|mut f| f.write_all(bytes));
        if written.is_ok() {
            let _ = rustix::fs::renameat(self.thumbs.fd(), tmp.as_str(), self.thumbs.fd(), name);
        }
    }

    fn close(&self) {
        self.write_index(Vec::new(), Vec::new());
    }
}

/// A spool file that could not be opened: a symbolic link there is said so.
fn spool_refusal(e: &io::Error) -> Refusal {
    if is_link(e) {
        link_refusal("a partial upload")
    } else {
        classify_io(e)
    }
}

fn index_error(e: rusqlite::Error) -> Refusal {
    Refusal::new(ErrorCode::Internal, format!("index: {e}"))
}
