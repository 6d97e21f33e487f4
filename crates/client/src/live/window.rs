//! Flow control of live frames, without I/O: what makes a live stream fresh rather than queued.
//!
//! - [`FrameWindow`], the publisher's side: one pending frame (a newer one replaces it, counted as
//!   skipped) and at most `limit` frames sent but not yet acknowledged by the hub.
//! - [`AckOnNext`], the subscriber's side: a frame is acknowledged only when the consumer asks for
//!   the next one, so the hub, which sends a subscriber one frame at a time, then sends the newest.
//!
//! The tasks that own the sockets ask these what to do and only move bytes.

/// A publisher's figures, as counted by its [`FrameWindow`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct FrameCounts {
    /// Frames offered (the last sequence number handed out).
    pub published: u64,
    /// Frames handed out to be written.
    pub sent: u64,
    /// Acknowledgements received.
    pub acked: u64,
    /// Newest sequence number acknowledged (0: none yet).
    pub last_acked_seq: u64,
    /// Frames replaced by a newer one before they could be sent.
    pub skipped: u64,
}

/// The publisher's window: newest frame only, bounded frames in flight.
#[derive(Debug)]
pub(super) struct FrameWindow<F> {
    limit: usize,
    pending: Option<(u64, F)>,
    in_flight: usize,
    counts: FrameCounts,
}

impl<F> FrameWindow<F> {
    /// A window allowing `limit` unacknowledged frames (at least 1).
    pub(super) fn new(limit: usize) -> Self {
        FrameWindow {
            limit: limit.max(1),
            pending: None,
            in_flight: 0,
            counts: FrameCounts::default(),
        }
    }

    /// Takes a new frame and returns its sequence number (1, 2, ...). A frame still pending is
    /// dropped and counted as skipped.
    pub(super) fn offer(&mut self, frame: F) -> u64 {
        self.counts.published += 1;
        let seq = self.counts.published;
        if self.pending.replace((seq, frame)).is_some() {
            self.counts.skipped += 1;
        }
        seq
    }

    /// The frame to write now, if one is pending and the window has room; it counts as in flight
    /// from here on.
    pub(super) fn poll_send(&mut self) -> Option<(u64, F)> {
        if self.in_flight >= self.limit {
            return None;
        }
        let next = self.pending.take()?;
        self.in_flight += 1;
        self.counts.sent += 1;
        Some(next)
    }

    /// The hub acknowledged frame `seq`: one place in the window is free again.
    pub(super) fn on_ack(&mut self, seq: u64) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.counts.acked += 1;
        self.counts.last_acked_seq = self.counts.last_acked_seq.max(seq);
    }

    /// A new connection: frames in flight on the old one will never be acknowledged, so they no
    /// longer hold the window. The pending frame stays and goes out first.
    pub(super) fn reset(&mut self) {
        self.in_flight = 0;
    }

    /// Nothing pending and nothing waiting for an acknowledgement.
    pub(super) fn is_idle(&self) -> bool {
        self.pending.is_none() && self.in_flight == 0
    }

    /// The figures so far.
    pub(super) fn counts(&self) -> FrameCounts {
        self.counts
    }
}

/// The subscriber's acknowledgement: the frame handed to the consumer is acknowledged when the
/// consumer asks for the next one.
#[derive(Debug, Default)]
pub(super) struct AckOnNext {
    unacked: Option<u64>,
}

impl AckOnNext {
    /// Frame `seq` was handed to the consumer.
    pub(super) fn delivered(&mut self, seq: u64) {
        self.unacked = Some(seq);
    }

    /// The consumer is ready for the next frame: the acknowledgement to send, if any is owed.
    pub(super) fn consumer_ready(&mut self) -> Option<u64> {
        self.unacked.take()
    }

    /// A new connection: nothing is owed on it (a fresh subscription starts with the newest
    /// frame).
    pub(super) fn reset(&mut self) {
        self.unacked = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offers `frames` one after the other, then returns the sequence numbers the window lets out.
    fn offer(w: &mut FrameWindow<&'static str>, frames: &[&'static str]) -> Vec<u64> {
        for f in frames {
            w.offer(f);
        }
        std::iter::from_fn(|| w.poll_send().map(|(seq, _)| seq)).collect()
    }

    const NONE: [u64; 0] = [];

    #[test]
    fn sends_up_to_the_limit_then_waits_for_acks() {
        let mut w = FrameWindow::new(2);
        assert_eq!(w.offer("a"), 1);
        assert_eq!(w.poll_send(), Some((1, "a")));
        assert_eq!(w.offer("b"), 2);
        assert_eq!(w.poll_send(), Some((2, "b")));
        assert_eq!(offer(&mut w, &["c"]), NONE, "window full: c waits");
        assert!(!w.is_idle());
        w.on_ack(1);
        assert_eq!(w.poll_send(), Some((3, "c")));
        assert_eq!(w.poll_send(), None, "nothing pending");
        let c = w.counts();
        assert_eq!((c.published, c.sent, c.acked, c.skipped), (3, 3, 1, 0));
    }

    #[test]
    fn a_newer_frame_replaces_the_pending_one_and_counts_it_skipped() {
        let mut w = FrameWindow::new(1);
        assert_eq!(offer(&mut w, &["a"]), [1]);
        // Window full: b, c and d arrive; only d survives.
        assert_eq!(offer(&mut w, &["b", "c", "d"]), NONE);
        assert_eq!(w.counts().skipped, 2);
        w.on_ack(1);
        assert_eq!(w.poll_send(), Some((4, "d")));
        let c = w.counts();
        assert_eq!((c.published, c.sent, c.skipped), (4, 2, 2));
        assert_eq!(
            c.published,
            c.sent + c.skipped,
            "every frame is sent or skipped"
        );
    }

    #[test]
    fn a_limit_of_zero_still_lets_one_frame_out() {
        let mut w = FrameWindow::new(0);
        assert_eq!(offer(&mut w, &["a", "b"]), [2]);
        assert_eq!(offer(&mut w, &["c"]), NONE);
    }

    #[test]
    fn reconnecting_frees_the_window_but_keeps_the_pending_frame_and_figures() {
        let mut w = FrameWindow::new(2);
        assert_eq!(offer(&mut w, &["a", "b"]), [2]);
        assert_eq!(offer(&mut w, &["c"]), [3]);
        assert_eq!(offer(&mut w, &["d"]), NONE, "2 in flight");
        // The connection drops: 2 and 3 will never be acknowledged.
        w.reset();
        assert_eq!(offer(&mut w, &[]), [4], "the pending frame goes out first");
        w.on_ack(4);
        assert!(w.is_idle(), "lost frames do not hold up closing");
        let c = w.counts();
        assert_eq!((c.sent, c.acked, c.last_acked_seq, c.skipped), (3, 1, 4, 1));
    }

    #[test]
    fn acks_keep_the_newest_sequence_number_and_never_underflow() {
        let mut w = FrameWindow::new(2);
        assert_eq!(offer(&mut w, &["a", "b", "c"]), [3]);
        assert_eq!(offer(&mut w, &["d"]), [4]);
        w.on_ack(4);
        w.on_ack(3);
        assert_eq!(
            w.counts().last_acked_seq,
            4,
            "an older ack does not go back"
        );
        // A stray ack (for a frame sent before a reset, say) cannot open the window wider.
        w.on_ack(1);
        assert_eq!(offer(&mut w, &["e", "f"]), [6]);
        assert_eq!(offer(&mut w, &["g"]), [7]);
        assert_eq!(offer(&mut w, &["h"]), NONE);
    }

    #[test]
    fn idle_only_with_nothing_pending_and_nothing_in_flight() {
        let mut w = FrameWindow::new(2);
        assert!(w.is_idle());
        w.offer("a");
        assert!(!w.is_idle(), "pending");
        w.poll_send();
        assert!(!w.is_idle(), "in flight");
        w.on_ack(1);
        assert!(w.is_idle());
    }

    #[test]
    fn the_subscriber_acknowledges_a_frame_when_the_next_is_asked_for() {
        let mut a = AckOnNext::default();
        assert_eq!(a.consumer_ready(), None, "nothing delivered yet");
        a.delivered(7);
        assert_eq!(a.consumer_ready(), Some(7));
        assert_eq!(a.consumer_ready(), None, "acknowledged once");
        a.delivered(9);
        a.reset();
        assert_eq!(
            a.consumer_ready(),
            None,
            "a frame from the old connection is not acknowledged on the new one"
        );
    }
}
