//! The storage limit: bytes stored, bytes held by partial uploads at rest, and bytes reserved by
//! uploads in progress must together stay within `max_storage`.
//!
//! An upload of known size reserves all of it when it is admitted, so five parallel 8 MiB uploads
//! under a 10 MiB limit cannot all start; one of unknown size (a raw upload, a chunked PUT)
//! reserves as its bytes arrive. A reservation is released when its upload is committed (the
//! bytes are then counted as stored) or given up.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use framewire_proto::ErrorCode;

use crate::stats::Stats;
use crate::store::{Refusal, Storage};

/// The hub-wide storage account.
pub(crate) struct Quota {
    limit: u64,
    reserved: Mutex<u64>,
    stats: Arc<Stats>,
    storage: Arc<dyn Storage>,
}

impl Quota {
    /// `limit` 0: no limit besides the disk.
    pub(crate) fn new(limit: u64, stats: Arc<Stats>, storage: Arc<dyn Storage>) -> Arc<Quota> {
        Arc::new(Quota {
            limit,
            reserved: Mutex::new(0),
            stats,
            storage,
        })
    }

    /// Reserves `n` bytes, or refuses with [`ErrorCode::StorageFull`].
    pub(crate) fn reserve(self: &Arc<Self>, n: u64, what: &str) -> Result<Reservation, Refusal> {
        let r = Reservation {
            quota: Arc::clone(self),
            bytes: AtomicU64::new(0),
        };
        r.grow(n, what)?;
        Ok(r)
    }

    fn used(&self, reserved: u64) -> u64 {
        self.stats
            .bytes_stored
            .load(Relaxed)
            .saturating_add(self.storage.partial_bytes())
            .saturating_add(reserved)
    }
}

/// Bytes set aside for one upload; given back on drop.
pub(crate) struct Reservation {
    quota: Arc<Quota>,
    bytes: AtomicU64,
}

impl Reservation {
    /// Reserves `n` more bytes, or refuses with [`ErrorCode::StorageFull`] (reserving nothing).
    pub(crate) fn grow(&self, n: u64, what: &str) -> Result<(), Refusal> {
        let q = &self.quota;
        let mut reserved = q.reserved.lock().unwrap();
        if q.limit > 0 && q.used(*reserved).saturating_add(n) > q.limit {
            return Err(Refusal::new(
                ErrorCode::StorageFull,
                format!(
                    "storage full: {what} does not fit the hub's storage limit of {} bytes",
                    q.limit
                ),
            ));
        }
        *reserved += n;
        self.bytes.fetch_add(n, Relaxed);
        Ok(())
    }

    /// Reserves `n` more bytes that are already counted elsewhere until now (a resumed partial's
    /// bytes move from "at rest" to this upload), without a check.
    pub(crate) fn take_over(&self, n: u64) {
        *self.quota.reserved.lock().unwrap() += n;
        self.bytes.fetch_add(n, Relaxed);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut reserved = self.quota.reserved.lock().unwrap();
        *reserved = reserved.saturating_sub(self.bytes.load(Relaxed));
    }
}
