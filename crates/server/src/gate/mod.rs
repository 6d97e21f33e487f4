//! The gate every connection of every door passes: one budget of connections (global and per
//! address) shared by the native port, HTTP and the raw door; the deadlines; the budgets for
//! blocking work and for buffered bytes (memory.rs); and, for doors that cannot present a token, the identity they act as.
//!
//! A door accepts a socket, asks [`Gate::admit`], and holds the [`Admission`] for the
//! connection's life. Over a limit, the door tells the client why in its own language (`Error
//! {Busy}`, HTTP 503, a text line) and closes at once: nobody waits in a queue.

mod door;
mod memory;
mod work;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub(crate) use door::DoorAccess;
pub use door::{Cidr, DoorPolicy};
pub(crate) use memory::{Charge, Memory, UNCHARGED};
pub(crate) use work::Work;

use crate::Config;

/// Admission, deadlines and shutdown signals shared by every door.
pub(crate) struct Gate {
    max_connections: usize,
    max_per_ip: usize,
    handshake_timeout: Duration,
    idle_timeout: Duration,
    limit: Arc<Semaphore>,
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
    /// Shutdown has begun: finish what is in flight, start nothing new.
    pub(crate) stop: CancellationToken,
    /// The grace period is over: park what is unfinished and close.
    pub(crate) abort: CancellationToken,
    /// Every connection task of every door.
    pub(crate) tracker: TaskTracker,
    pub(crate) work: Work,
    /// The memory budget for buffered payload.
    pub(crate) memory: Memory,
}

/// A connection's claim on the global and per-address budgets; released on drop.
pub(crate) struct Admission {
    _permit: OwnedSemaphorePermit,
    _slot: IpSlot,
}

impl Gate {
    pub(crate) fn new(config: &Config) -> Gate {
        Gate {
            max_connections: config.max_connections,
            max_per_ip: config.max_connections_per_ip,
            handshake_timeout: config.handshake_timeout,
            idle_timeout: config.idle_timeout,
            limit: Arc::new(Semaphore::new(config.max_connections)),
            per_ip: Arc::default(),
            stop: CancellationToken::new(),
            abort: CancellationToken::new(),
            tracker: TaskTracker::new(),
            work: Work::default(),
            memory: Memory::new(config.memory_budget),
        }
    }

    /// Admits a connection from `peer`, or says why not.
    ///
    /// # Errors
    /// The reason, for the client: the hub or this address is at its limit, or shutting down.
    pub(crate) fn admit(&self, peer: SocketAddr) -> Result<Admission, String> {
        if self.stop.is_cancelled() {
            return Err("the hub is shutting down".into());
        }
        let Ok(permit) = Arc::clone(&self.limit).try_acquire_owned() else {
            return Err(format!(
                "the hub is serving its limit of {} connections",
                self.max_connections
            ));
        };
        match IpSlot::take(&self.per_ip, peer.ip(), self.max_per_ip) {
            Some(slot) => Ok(Admission {
                _permit: permit,
                _slot: slot,
            }),
            None => Err(format!(
                "{} already has {} connections, the most one address may have",
                peer.ip(),
                self.max_per_ip
            )),
        }
    }

    /// When a connection accepted now must have sent its handshake or request headers.
    pub(crate) fn first_bytes_deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.handshake_timeout
    }

    /// Time to send a handshake or request headers.
    pub(crate) fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// A connection with no traffic either way for this long is closed.
    pub(crate) fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// Connections admitted now.
    pub(crate) fn open_connections(&self) -> usize {
        self.max_connections - self.limit.available_permits()
    }
}

/// One connection's claim on its IP address's share of connections; released on drop.
struct IpSlot {
    ip: IpAddr,
    table: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl IpSlot {
    fn take(table: &Arc<Mutex<HashMap<IpAddr, usize>>>, ip: IpAddr, max: usize) -> Option<IpSlot> {
        let mut t = table.lock().unwrap();
        let n = t.entry(ip).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            ip,
            table: Arc::clone(table),
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut t = self.table.lock().unwrap();
        if let Some(n) = t.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                t.remove(&self.ip);
            }
        }
    }
}

/// When a connection last moved bytes either way, for its idle deadline: a long download or a
/// busy subscriber is not idle even if the client sends nothing.
pub(crate) struct Activity {
    start: std::time::Instant,
    last_ms: std::sync::atomic::AtomicU64,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            start: std::time::Instant::now(),
            last_ms: Default::default(),
        }
    }
}

impl Activity {
    /// Bytes moved now.
    pub(crate) fn touch(&self) {
        self.last_ms.store(
            self.start.elapsed().as_millis() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// When the connection becomes idle, if nothing happens before.
    pub(crate) fn deadline(&self, idle: Duration) -> tokio::time::Instant {
        let last = self.start
            + Duration::from_millis(self.last_ms.load(std::sync::atomic::Ordering::Relaxed));
        tokio::time::Instant::from_std(last + idle)
    }

    /// Completes once nothing has moved for `idle`.
    pub(crate) async fn idle(&self, idle: Duration) {
        loop {
            let d = self.deadline(idle);
            tokio::time::sleep_until(d).await;
            // The deadline may have moved while we slept.
            if tokio::time::Instant::now() >= self.deadline(idle) {
                return;
            }
        }
    }
}
