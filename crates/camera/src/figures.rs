//! The camera's figures on standard error: a line every few seconds (rates since the previous
//! line) and a summary at the end.

use std::time::{Duration, Instant};

use framewire_client::PublisherSnapshot;

/// The figures of one camera's stream, made from its publisher's snapshots.
pub(crate) struct Figures {
    name: String,
    started: Instant,
    /// When the previous line was made, and the frames sent by then.
    at: Instant,
    sent: u64,
}

impl Figures {
    pub(crate) fn new(name: &str) -> Figures {
        let now = Instant::now();
        Figures {
            name: name.to_owned(),
            started: now,
            at: now,
            sent: 0,
        }
    }

    /// `cam: 29.9 fps sent, 3 skipped, rtt 0.214 ms` (+ `, reconnecting (why)` while the hub is
    /// away).
    pub(crate) fn line(&mut self, s: PublisherSnapshot) -> String {
        self.line_at(s, Instant::now())
    }

    /// `cam: published 300 frames in 10.01 s (sent 298, skipped 2, acknowledged 298, reconnects 1)`
    pub(crate) fn summary(&self, s: &PublisherSnapshot) -> String {
        summary(&self.name, s, self.started.elapsed())
    }

    fn line_at(&mut self, s: PublisherSnapshot, now: Instant) -> String {
        let fps = (s.sent - self.sent) as f64 / (now - self.at).as_secs_f64().max(1e-3);
        (self.at, self.sent) = (now, s.sent);
        let rtt = Duration::from_micros(s.link.rtt_us.max(0) as u64);
        let mut line = format!(
            "{}: {fps:.1} fps sent, {} skipped, rtt {:.3} ms",
            self.name,
            s.skipped,
            rtt.as_secs_f64() * 1000.0
        );
        if !s.link.connected {
            let why = s
                .link
                .last_error
                .unwrap_or_else(|| "connection lost".into());
            line.push_str(&format!(", reconnecting ({why})"));
        }
        line
    }
}

fn summary(name: &str, s: &PublisherSnapshot, elapsed: Duration) -> String {
    format!(
        "{name}: published {} frames in {:.2} s (sent {}, skipped {}, acknowledged {}, reconnects {})",
        s.published,
        elapsed.as_secs_f64(),
        s.sent,
        s.skipped,
        s.acked,
        s.link.reconnects
    )
}

#[cfg(test)]
mod tests {
    use framewire_client::LinkSnapshot;

    use super::*;

    fn snapshot(sent: u64, connected: bool) -> PublisherSnapshot {
        PublisherSnapshot {
            published: sent + 2,
            sent,
            acked: sent,
            last_acked_seq: sent,
            skipped: 2,
            link: LinkSnapshot {
                connected,
                reconnects: 1,
                clock_offset_us: 0,
                rtt_us: 214,
                last_error: (!connected).then(|| "the hub closed the connection".into()),
            },
        }
    }

    #[test]
    fn lines_give_the_rate_since_the_previous_line() {
        let mut f = Figures::new("cam");
        let t = f.at + Duration::from_secs(5);
        assert_eq!(
            f.line_at(snapshot(150, true), t),
            "cam: 30.0 fps sent, 2 skipped, rtt 0.214 ms"
        );
        assert_eq!(
            f.line_at(snapshot(200, false), t + Duration::from_secs(10)),
            "cam: 5.0 fps sent, 2 skipped, rtt 0.214 ms, reconnecting (the hub closed the connection)"
        );
    }

    #[test]
    fn the_summary_counts_everything() {
        assert_eq!(
            summary("cam", &snapshot(298, true), Duration::from_millis(10_012)),
            "cam: published 300 frames in 10.01 s (sent 298, skipped 2, acknowledged 298, reconnects 1)"
        );
    }
}
