//! Staging files under `spool/`: a partial upload (`<key>.part`, kept for resuming when its
//! upload is interrupted) or an anonymous one (`fresh-*.tmp`, for uploads that cannot resume,
//! removed when abandoned and at start). Each is opened from the held `spool/` handle with
//! `O_NOFOLLOW`: a link planted as a partial is removed, never truncated or appended through.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rustix::fs::{AtFlags, OFlags};

use super::beneath::{is_link, Beneath};
use crate::store::Staged;

/// Partial uploads at rest (no upload writing them) and their sizes: they count against the
/// storage limit.
#[derive(Default)]
pub(super) struct Parked {
    files: Mutex<HashMap<PathBuf, u64>>,
    total: AtomicU64,
}

impl Parked {
    /// The partials found in `spool` at start.
    pub(super) fn scan(spool: &Path) -> Parked {
        let parked = Parked::default();
        if let Ok(dir) = fs::read_dir(spool) {
            for e in dir.flatten() {
                let is_part = e.file_name().to_string_lossy().ends_with(".part");
                // `metadata` does not follow a link; a link is no partial.
                if let (true, Ok(m)) = (is_part, e.metadata()) {
                    if !m.is_file() {
                        continue;
                    }
                    parked.set(&e.path(), m.len());
                }
            }
        }
        parked
    }

    pub(super) fn set(&self, path: &Path, len: u64) {
        let mut files = self.files.lock().unwrap();
        let old = files.insert(path.to_path_buf(), len).unwrap_or(0);
        self.total.fetch_add(len, Relaxed);
        self.total.fetch_sub(old, Relaxed);
    }

    pub(super) fn remove(&self, path: &Path) {
        if let Some(old) = self.files.lock().unwrap().remove(path) {
            self.total.fetch_sub(old, Relaxed);
        }
    }

    pub(super) fn total(&self) -> u64 {
        self.total.load(Relaxed)
    }
}

/// An upload's bytes in a spool file.
pub(crate) struct SpoolFile {
    pub(super) file: File,
    pub(super) path: PathBuf,
    pub(super) len: u64,
    spool: Arc<Beneath>,
    /// Anonymous staging: removed rather than kept when parked.
    anonymous: bool,
    parked: Arc<Parked>,
}

impl SpoolFile {
    /// Partial `path`, keeping its first `offset` bytes (dropping anything after them, such as a
    /// torn last write) and appending after them.
    ///
    /// # Errors
    /// `ELOOP` if the partial is a symbolic link and `offset` is not 0 (a link with nothing to
    /// keep is removed and the partial started afresh).
    pub(super) fn partial(
        spool: &Arc<Beneath>,
        path: PathBuf,
        offset: u64,
        parked: &Arc<Parked>,
    ) -> io::Result<Self> {
        parked.remove(&path);
        let name = spool_name(&path)?;
        let flags = OFlags::CREATE | OFlags::RDWR;
        let opened = match spool.open_file(name, flags | truncate(offset)) {
            Err(e) if is_link(&e) && offset == 0 => {
                tracing::warn!(
                    partial = name,
                    "a symbolic link stood in the spool; removed"
                );
                rustix::fs::unlinkat(spool.fd(), name, AtFlags::empty())?;
                spool.open_file(name, flags | OFlags::EXCL)
            }
            other => other,
        };
        let mut file = opened?;
        if offset > 0 {
            file.set_len(offset)?;
            file.seek(SeekFrom::Start(offset))?;
        }
        Ok(SpoolFile {
            file,
            path,
            len: offset,
            spool: Arc::clone(spool),
            anonymous: false,
            parked: Arc::clone(parked),
        })
    }

    /// A fresh `fresh-<pid>-<n>.tmp`.
    pub(super) fn anonymous(
        spool: &Arc<Beneath>,
        spool_dir: &Path,
        parked: &Arc<Parked>,
    ) -> io::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Relaxed);
        let name = format!("fresh-{}-{n}.tmp", std::process::id());
        let file = spool.open_file(&name, OFlags::CREATE | OFlags::EXCL | OFlags::RDWR)?;
        let path = spool_dir.join(name);
        Ok(SpoolFile {
            file,
            path,
            len: 0,
            spool: Arc::clone(spool),
            anonymous: true,
            parked: Arc::clone(parked),
        })
    }
}

impl Staged for SpoolFile {
    fn write_all(&mut self, chunks: &[Bytes]) -> io::Result<()> {
        for c in chunks {
            self.file.write_all(c)?;
            self.len += c.len() as u64;
        }
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn park(self: Box<Self>) {
        if self.anonymous || self.len == 0 {
            return self.discard();
        }
        self.parked.set(&self.path, self.len);
    }

    fn discard(self: Box<Self>) {
        drop(self.file);
        if let Ok(name) = spool_name(&self.path) {
            let _ = rustix::fs::unlinkat(self.spool.fd(), name, AtFlags::empty());
        }
        self.parked.remove(&self.path);
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }
}

/// `O_TRUNC` when nothing of the partial is kept.
fn truncate(offset: u64) -> OFlags {
    if offset == 0 {
        OFlags::TRUNC
    } else {
        OFlags::empty()
    }
}

/// A spool file's name (all of them are directly in `spool/`).
pub(super) fn spool_name(path: &Path) -> io::Result<&str> {
    path.file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::other("a spool file without a name"))
}
