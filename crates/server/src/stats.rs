//! Hub-wide counters, cheap to bump from any task (atomics), read by logs and later by metrics.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use framewire_proto::{ErrorCode, StoredStatus};

/// Counters of everything the hub did since it started.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections open now.
    pub connections_open: AtomicU64,
    /// Connections accepted since start.
    pub connections_total: AtomicU64,
    /// Bytes read from clients.
    pub bytes_in: AtomicU64,
    /// Bytes written to clients.
    pub bytes_out: AtomicU64,
    /// Files in the store now.
    pub files_stored: AtomicU64,
    /// Bytes in the store now.
    pub bytes_stored: AtomicU64,
    /// Uploads committed since start (new or replaced).
    pub uploads_committed: AtomicU64,
    /// Uploads answered "unchanged" since start.
    pub uploads_unchanged: AtomicU64,
    /// Files deleted since start, by a client.
    pub files_deleted: AtomicU64,
    /// Files removed since start by the retention rules.
    pub files_expired: AtomicU64,
    failures: Mutex<BTreeMap<&'static str, u64>>,
    http: Mutex<BTreeMap<u16, u64>>,
}

impl Stats {
    pub(crate) fn set_stored_totals(&self, files: u64, bytes: u64) {
        self.files_stored.store(files, Relaxed);
        self.bytes_stored.store(bytes, Relaxed);
    }

    pub(crate) fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Relaxed);
        self.connections_total.fetch_add(1, Relaxed);
    }

    pub(crate) fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Relaxed);
    }

    /// A file of `size` bytes was stored, replacing one of `replaced_size` bytes (0: none).
    pub(crate) fn file_stored(&self, size: u64, replaced_size: u64, status: StoredStatus) {
        self.uploads_committed.fetch_add(1, Relaxed);
        if status == StoredStatus::New {
            self.files_stored.fetch_add(1, Relaxed);
        }
        self.bytes_stored.fetch_add(size, Relaxed);
        let _ = self
            .bytes_stored
            .fetch_update(Relaxed, Relaxed, |b| Some(b.saturating_sub(replaced_size)));
    }

    /// A stored file of `size` bytes was removed; `expired`: by the retention rules.
    pub(crate) fn file_removed(&self, size: u64, expired: bool) {
        if expired {
            self.files_expired.fetch_add(1, Relaxed);
        } else {
            self.files_deleted.fetch_add(1, Relaxed);
        }
        let _ = self
            .files_stored
            .fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_sub(1)));
        let _ = self
            .bytes_stored
            .fetch_update(Relaxed, Relaxed, |b| Some(b.saturating_sub(size)));
    }

    pub(crate) fn file_unchanged(&self) {
        self.uploads_unchanged.fetch_add(1, Relaxed);
    }

    pub(crate) fn upload_failed(&self, code: ErrorCode) {
        *self
            .failures
            .lock()
            .unwrap()
            .entry(code.name())
            .or_default() += 1;
    }

    pub(crate) fn http_response(&self, status: u16) {
        *self.http.lock().unwrap().entry(status).or_default() += 1;
    }

    /// HTTP responses since start, by status code.
    pub fn http_responses(&self) -> BTreeMap<u16, u64> {
        self.http.lock().unwrap().clone()
    }

    /// Failed uploads since start, by reason.
    pub fn upload_failures(&self) -> BTreeMap<&'static str, u64> {
        self.failures.lock().unwrap().clone()
    }
}
