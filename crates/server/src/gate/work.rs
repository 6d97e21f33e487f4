//! Budgets for blocking work. Disk I/O and image decoding run on tokio's blocking pool; each kind
//! of work takes a permit from its own semaphore first, so no door can occupy the threads that
//! every other door needs (520 trickling raw uploads once held 512 threads and stalled everyone).
//! Nothing holds a thread while waiting for the network: an upload's bytes are buffered and
//! written in batches, one batch in flight at a time.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::store::Refusal;

/// Disk operations (spool writes, opens, hashing partials, index reads) at once.
const DISK: usize = 64;
/// Image decodes (thumbnails) at once: CPU-heavy, so few.
const IMAGES: usize = 2;

/// The hub's blocking-work budgets.
#[derive(Clone)]
pub(crate) struct Work {
    disk: Arc<Semaphore>,
    images: Arc<Semaphore>,
}

impl Default for Work {
    fn default() -> Self {
        Work {
            disk: Arc::new(Semaphore::new(DISK)),
            images: Arc::new(Semaphore::new(IMAGES)),
        }
    }
}

impl Work {
    /// Runs disk work `f` on the blocking pool within the disk budget.
    ///
    /// # Errors
    /// If the work panicked.
    pub(crate) async fn disk<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Refusal> {
        run(&self.disk, f).await
    }

    /// Runs image work `f` on the blocking pool within the image budget.
    ///
    /// # Errors
    /// If the work panicked.
    pub(crate) async fn image<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Refusal> {
        run(&self.images, f).await
    }

    /// Starts disk work `f` and returns at once; the permit is taken first (waiting if the budget
    /// is spent), and held until `f` is done.
    pub(crate) async fn spawn_disk<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        let permit = Arc::clone(&self.disk).acquire_owned().await;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
    }
}

async fn run<T: Send + 'static>(
    budget: &Arc<Semaphore>,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Refusal> {
    let permit = Arc::clone(budget).acquire_owned().await;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        f()
    })
    .await
    .map_err(Refusal::internal)
}
