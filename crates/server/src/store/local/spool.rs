//! Staging files under `spool/`: a partial upload (`<key>.part`, kept for resuming when its
//! upload is interrupted) or an anonymous one (`fresh-*.tmp`, for uploads that cannot resume,
//! removed when abandoned and at start).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

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
                if let (true, Ok(m)) = (is_part, e.metadata()) {
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
    /// Anonymous staging: removed rather than kept when parked.
    anonymous: bool,
    parked: Arc<Parked>,
}

impl SpoolFile {
    /// Partial `path`, keeping its first `offset` bytes (dropping anything after them, such as a
    /// torn last write) and appending after them.
    pub(super) fn partial(path: PathBuf, offset: u64, parked: &Arc<Parked>) -> io::Result<Self> {
        parked.remove(&path);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(offset == 0)
            .write(true)
            .read(true)
            .open(&path)?;
        if offset > 0 {
            file.set_len(offset)?;
            file.seek(SeekFrom::Start(offset))?;
        }
        Ok(SpoolFile {
            file,
            path,
            len: offset,
            anonymous: false,
            parked: Arc::clone(parked),
        })
    }

    /// A fresh `fresh-<pid>-<n>.tmp`.
    pub(super) fn anonymous(spool: &Path, parked: &Arc<Parked>) -> io::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Relaxed);
        let path = spool.join(format!("fresh-{}-{n}.tmp", std::process::id()));
        let file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .read(true)
            .open(&path)?;
        Ok(SpoolFile {
            file,
            path,
            len: 0,
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
        let _ = fs::remove_file(&self.path);
        self.parked.remove(&self.path);
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }
}
