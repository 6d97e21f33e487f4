//! Estimating the offset between two clocks from ping/pong exchanges (as NTP does), so frame
//! ages can be measured across machines whose clocks differ.

/// One ping/pong exchange, all times in µs since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockSample {
    /// Local clock when the ping was sent.
    pub sent_us: i64,
    /// Remote clock when it answered.
    pub remote_us: i64,
    /// Local clock when the pong arrived.
    pub received_us: i64,
}

impl ClockSample {
    /// Round-trip time.
    pub fn rtt_us(&self) -> i64 {
        (self.received_us - self.sent_us).max(0)
    }

    /// Remote clock minus local clock, assuming the two legs took equally long.
    pub fn offset_us(&self) -> i64 {
        self.remote_us - (self.sent_us + self.received_us) / 2
    }
}

/// Keeps the sample with the smallest round trip: its offset has the tightest error bound
/// (± rtt/2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClockEstimate {
    best: Option<ClockSample>,
}

impl ClockEstimate {
    /// Takes a sample into account.
    pub fn add(&mut self, s: ClockSample) {
        if self.best.is_none_or(|b| s.rtt_us() <= b.rtt_us()) {
            self.best = Some(s);
        }
    }

    /// Remote minus local, if any sample was taken.
    pub fn offset_us(&self) -> Option<i64> {
        self.best.map(|s| s.offset_us())
    }

    /// The round trip of the sample the offset comes from.
    pub fn rtt_us(&self) -> Option<i64> {
        self.best.map(|s| s.rtt_us())
    }

    /// Converts a local timestamp to the remote clock (unchanged if no sample was taken).
    pub fn to_remote(&self, local_us: i64) -> i64 {
        local_us + self.offset_us().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_from_symmetric_exchange() {
        // remote is 5 s ahead, each leg takes 1 ms
        let s = ClockSample {
            sent_us: 1_000_000,
            remote_us: 6_001_000,
            received_us: 1_002_000,
        };
        assert_eq!(s.rtt_us(), 2_000);
        assert_eq!(s.offset_us(), 5_000_000);
    }

    #[test]
    fn keeps_tightest_sample() {
        let mut e = ClockEstimate::default();
        e.add(ClockSample {
            sent_us: 0,
            remote_us: 100,
            received_us: 1000,
        });
        e.add(ClockSample {
            sent_us: 2000,
            remote_us: 2060,
            received_us: 2100,
        });
        e.add(ClockSample {
            sent_us: 3000,
            remote_us: 9999,
            received_us: 9000,
        });
        assert_eq!(e.rtt_us(), Some(100));
        assert_eq!(e.offset_us(), Some(10));
        assert_eq!(e.to_remote(50), 60);
    }
}
