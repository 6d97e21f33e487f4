//! The hub's memory budget for buffered payload: message bodies being read, encoded messages
//! queued for a peer, live frames kept for subscribers, images being decoded. Whoever is about to
//! hold such bytes takes a [`Charge`] for them first (before a read allocates), and the charge
//! goes back when the bytes are written, stored or dropped. When the budget is spent, readers wait
//! (up to a deadline, then their connection is refused with `Busy`) instead of allocating: the
//! hub's memory stays near the budget however many peers send large messages and never read.
//!
//! Small things are not charged: a message body of at most [`UNCHARGED`] bytes is covered by its
//! connection's read buffer, which the connection limits already bound.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Message bodies up to this size are read without a charge.
pub(crate) const UNCHARGED: usize = 256 * 1024;

/// The budget: a semaphore counting bytes.
#[derive(Clone)]
pub(crate) struct Memory {
    bytes: Arc<Semaphore>,
    total: usize,
}

/// Bytes held against the budget; returned on drop.
#[derive(Debug)]
pub(crate) struct Charge {
    _permit: Option<OwnedSemaphorePermit>,
    bytes: usize,
}

/// The budget stayed spent for the whole wait.
#[derive(Debug, thiserror::Error)]
#[error("the hub's memory budget for buffered data ({total} bytes) stayed in use for {secs} s; try again later")]
pub(crate) struct Exhausted {
    total: usize,
    secs: u64,
}

impl Memory {
    /// A budget of `total` bytes (at least one maximal message is always possible: a charge larger
    /// than the whole budget takes all of it).
    pub(crate) fn new(total: usize) -> Memory {
        let total = total.clamp(1, Semaphore::MAX_PERMITS);
        Memory {
            bytes: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    fn permits(&self, n: usize) -> u32 {
        n.min(self.total).min(u32::MAX as usize) as u32
    }

    /// Charges `n` bytes now, or `None` if the budget does not have them.
    pub(crate) fn try_charge(&self, n: usize) -> Option<Charge> {
        if n == 0 {
            return Some(Charge::none());
        }
        let permit = Arc::clone(&self.bytes)
            .try_acquire_many_owned(self.permits(n))
            .ok()?;
        Some(Charge {
            _permit: Some(permit),
            bytes: n,
        })
    }

    /// Charges `n` bytes, waiting up to `wait` for them to be returned.
    ///
    /// # Errors
    /// [`Exhausted`] if they were not available within `wait`.
    pub(crate) async fn charge(&self, n: usize, wait: Duration) -> Result<Charge, Exhausted> {
        if let Some(c) = self.try_charge(n) {
            return Ok(c);
        }
        let acquire = Arc::clone(&self.bytes).acquire_many_owned(self.permits(n));
        match tokio::time::timeout(wait, acquire).await {
            Ok(Ok(permit)) => Ok(Charge {
                _permit: Some(permit),
                bytes: n,
            }),
            _ => Err(Exhausted {
                total: self.total,
                secs: wait.as_secs(),
            }),
        }
    }

    /// Bytes charged now.
    pub(crate) fn used(&self) -> usize {
        self.total - self.bytes.available_permits()
    }

    /// The budget.
    pub(crate) fn total(&self) -> usize {
        self.total
    }
}

impl Charge {
    /// A charge of nothing (for bytes small enough to go uncharged).
    pub(crate) fn none() -> Charge {
        Charge {
            _permit: None,
            bytes: 0,
        }
    }

    /// Bytes this charge covers.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn charges_are_returned_on_drop_and_waiters_time_out() {
        let m = Memory::new(1000);
        let a = m.try_charge(600).unwrap();
        assert_eq!(m.used(), 600);
        assert!(m.try_charge(500).is_none());
        let err = m.charge(500, Duration::from_millis(20)).await.unwrap_err();
        assert!(err.to_string().contains("1000 bytes"), "{err}");
        let waiter = {
            let m = m.clone();
            tokio::spawn(async move { m.charge(500, Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(a);
        let b = waiter.await.unwrap().unwrap();
        assert_eq!((b.bytes(), m.used()), (500, 500));
        drop(b);
        assert_eq!(m.used(), 0);
    }

    #[tokio::test]
    async fn a_charge_larger_than_the_budget_takes_all_of_it() {
        let m = Memory::new(100);
        let c = m.try_charge(1_000_000).unwrap();
        assert_eq!((c.bytes(), m.used()), (1_000_000, 100));
        assert!(m.try_charge(1).is_none());
        drop(c);
        assert!(m.try_charge(0).is_some());
    }
}
