//! Slows down token guessing over HTTP: per client IP, a few wrong tokens a minute are free, then
//! each one more locks that IP out for twice as long as the last (1 s, 2 s, 4 s… up to
//! [`MAX_LOCKOUT`]). A right token clears the IP's record. Pure state with time passed in, so it
//! is tested without a clock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Wrong tokens an IP may present within [`WINDOW`] before it is locked out.
pub(crate) const FREE_FAILURES: u32 = 5;
/// A run of failures is forgotten after this long without one.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// Longest lockout.
pub(crate) const MAX_LOCKOUT: Duration = Duration::from_secs(300);
/// Most IPs remembered; past it the one seen longest ago is forgotten, so memory stays bounded
/// whatever the number of addresses an attacker has.
pub(crate) const MAX_CLIENTS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last_failure: Instant,
    locked_until: Instant,
}

impl Record {
    fn stale(&self, now: Instant) -> bool {
        now >= self.locked_until && now.duration_since(self.last_failure) >= WINDOW
    }
}

/// Failed token checks by client IP.
#[derive(Debug, Default)]
pub(crate) struct LoginThrottle {
    clients: Mutex<HashMap<IpAddr, Record>>,
}

impl LoginThrottle {
    /// `Err(wait)` while `ip` is locked out.
    pub(crate) fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        match clients.get(&ip) {
            Some(r) if now < r.locked_until => Err(r.locked_until - now),
            _ => Ok(()),
        }
    }

    /// Records a wrong token from `ip`; returns the lockout it now has, if any.
    pub(crate) fn failed(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if clients.len() >= MAX_CLIENTS && !clients.contains_key(&ip) {
            clients.retain(|_, r| !r.stale(now));
            if clients.len() >= MAX_CLIENTS {
                let oldest = clients
                    .iter()
                    .min_by_key(|(_, r)| r.last_failure)
                    .map(|(ip, _)| *ip);
                if let Some(o) = oldest {
                    clients.remove(&o);
                }
            }
        }
        let r = clients.entry(ip).or_insert(Record {
            failures: 0,
            last_failure: now,
            locked_until: now,
        });
        if r.stale(now) {
            r.failures = 0;
        }
        r.failures += 1;
        r.last_failure = now;
        if r.failures < FREE_FAILURES {
            return None;
        }
        let doublings = (r.failures - FREE_FAILURES).min(16);
        let lockout = Duration::from_secs(1u64 << doublings).min(MAX_LOCKOUT);
        r.locked_until = now + lockout;
        Some(lockout)
    }

    /// A right token from `ip`: its record is cleared.
    pub(crate) fn succeeded(&self, ip: IpAddr) {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients.remove(&ip);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.clients.lock().unwrap().len()
    }
}

/// Seconds for `Retry-After`, rounded up so a client that waits that long is let in.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn lockouts_grow_and_a_success_clears_them() {
        let t = LoginThrottle::default();
        let t0 = Instant::now();
        for _ in 1..FREE_FAILURES {
            assert_eq!(t.failed(A, t0), None);
            assert!(t.check(A, t0).is_ok());
        }
        assert_eq!(t.failed(A, t0), Some(Duration::from_secs(1)));
        assert_eq!(t.check(A, t0), Err(Duration::from_secs(1)));
        assert!(t.check(B, t0).is_ok(), "other addresses are not affected");
        let t1 = t0 + Duration::from_secs(1);
        assert!(t.check(A, t1).is_ok());
        assert_eq!(t.failed(A, t1), Some(Duration::from_secs(2)));
        assert_eq!(t.failed(A, t1), Some(Duration::from_secs(4)));
        for _ in 0..20 {
            t.failed(A, t1);
        }
        assert_eq!(t.check(A, t1), Err(MAX_LOCKOUT));
        t.succeeded(A);
        assert!(t.check(A, t1).is_ok());
        assert_eq!(t.failed(A, t1), None, "counting starts over");
    }

    #[test]
    fn a_quiet_minute_forgets_failures() {
        let t = LoginThrottle::default();
        let t0 = Instant::now();
        for _ in 1..FREE_FAILURES {
            t.failed(A, t0);
        }
        assert_eq!(t.failed(A, t0 + WINDOW), None);
    }

    #[test]
    fn the_table_is_bounded() {
        let t = LoginThrottle::default();
        let t0 = Instant::now();
        for i in 0..MAX_CLIENTS as u32 + 10 {
            t.failed(IpAddr::V4(i.into()), t0 + Duration::from_millis(i.into()));
        }
        assert_eq!(t.len(), MAX_CLIENTS);
        assert!(t.check(IpAddr::V4(0.into()), t0).is_ok());
    }
}
