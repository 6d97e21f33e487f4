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

/// A time in µs since the Unix epoch, broken down in UTC (proleptic Gregorian calendar), for
/// names of files that sort by time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    /// Year.
    pub year: i64,
    /// Month, 1..=12.
    pub month: u32,
    /// Day of the month, 1..=31.
    pub day: u32,
    /// Hour, 0..=23.
    pub hour: u32,
    /// Minute, 0..=59.
    pub minute: u32,
    /// Second, 0..=59.
    pub second: u32,
    /// Microseconds, 0..1_000_000.
    pub micros: u32,
}

impl UtcTime {
    /// Breaks `us` (µs since 1970-01-01T00:00:00Z) down.
    pub fn from_unix_us(us: i64) -> UtcTime {
        let secs = us.div_euclid(1_000_000);
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Days since 1970-01-01 to a date: Howard Hinnant's `civil_from_days`.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        UtcTime {
            year: yoe + era * 400 + i64::from(month <= 2),
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
            micros: us.rem_euclid(1_000_000) as u32,
        }
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

    #[test]
    fn utc_times() {
        let t = super::UtcTime::from_unix_us(1_709_210_096_789_012);
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.minute, t.second, t.micros),
            (2024, 2, 29, 12, 34, 56, 789_012)
        );
        let before = super::UtcTime::from_unix_us(-1);
        assert_eq!((before.year, before.month, before.day), (1969, 12, 31));
        assert_eq!(before.micros, 999_999);
    }
}
