//! Live streams: per stream, only the newest frame, and figures about it.
//!
//! A publisher's frame replaces the stream's current one in a `watch` channel; each subscriber
//! (native connection, MJPEG viewer, dashboard tile) takes whatever is newest whenever it is ready
//! for the next frame. Nothing queues per subscriber, so a slow subscriber skips frames instead of
//! falling behind, and never slows the publisher or anyone else.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::auth::Claimant;

use framewire_proto::Frame;
use hdrhistogram::Histogram;
use tokio::sync::watch;

/// A frame as the hub holds it: shared by every subscriber, never copied.
#[derive(Debug)]
pub struct HubFrame {
    /// The frame (payload is reference-counted `Bytes`).
    pub frame: Frame,
    /// When it arrived at the hub, µs since the Unix epoch (hub clock).
    pub arrived_us: i64,
    /// Its payload's share of the hub's memory budget, held while anyone holds the frame.
    _charge: crate::gate::Charge,
}

/// Latency window: figures cover the most recent samples only, so they follow the stream's
/// current state rather than its whole history.
const LATENCY_WINDOW: usize = 2048;
/// Arrival times kept to compute frames per second over the last second.
const FPS_WINDOW_US: i64 = 1_000_000;

/// Upper bounds (µs) of the latency histogram buckets exported as metrics.
pub const LATENCY_BUCKETS_US: [u64; 11] = [
    1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 80_000, 100_000, 200_000, 500_000, 1_000_000,
];

/// A cumulative latency histogram over the stream's whole life (for Prometheus).
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// Count of samples ≤ each bound of [`LATENCY_BUCKETS_US`] (not cumulative; summed on export).
    pub buckets: [AtomicU64; LATENCY_BUCKETS_US.len()],
    /// Samples above the last bound.
    pub overflow: AtomicU64,
    /// Sum of all samples, µs.
    pub sum_us: AtomicU64,
    /// Number of samples.
    pub count: AtomicU64,
}

impl LatencyHistogram {
    fn record(&self, us: i64) {
        let us = us.max(0) as u64;
        match LATENCY_BUCKETS_US.iter().position(|&b| us <= b) {
            Some(i) => self.buckets[i].fetch_add(1, Relaxed),
            None => self.overflow.fetch_add(1, Relaxed),
        };
        self.sum_us.fetch_add(us, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }
}

/// One stream's frames and figures.
pub struct Stream {
    name: String,
    latest: watch::Sender<Option<Arc<HubFrame>>>,
    /// Frames accepted from publishers.
    pub frames_in: AtomicU64,
    /// Bytes accepted from publishers.
    pub bytes_in: AtomicU64,
    /// Frames sent to subscribers (all of them together).
    pub frames_out: AtomicU64,
    /// Bytes sent to subscribers.
    pub bytes_out: AtomicU64,
    /// Frames dropped on arrival for exceeding the publisher's max latency.
    pub dropped_late: AtomicU64,
    /// Frames a subscriber never got because a newer one replaced them first.
    pub skipped: AtomicU64,
    /// Frames publishers reported skipping before sending (network slower than capture).
    pub publisher_skipped: AtomicU64,
    /// Connected publishers.
    pub publishers: AtomicU64,
    /// Connected subscribers.
    pub subscribers: AtomicU64,
    /// Capture → hub latency, whole life.
    pub hist_to_hub: LatencyHistogram,
    /// Capture → sent to a subscriber, whole life.
    pub hist_to_subscriber: LatencyHistogram,
    windows: Mutex<Windows>,
    /// The connection publishing it, if any: the stream's name belongs to it.
    holder: Mutex<Option<Claimant>>,
    /// Last sign of life (created, a frame, its publisher leaving), µs: the TTL counts from it.
    last_active_us: AtomicI64,
}

struct Windows {
    arrivals: VecDeque<i64>,
    departures: VecDeque<i64>,
    to_hub: VecDeque<i64>,
    to_subscriber: VecDeque<i64>,
}

/// A consistent copy of a stream's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSnapshot {
    /// Stream name.
    pub name: String,
    /// Frames per second in, over the last second.
    pub fps_in: f64,
    /// Frames per second out (all subscribers), over the last second.
    pub fps_out: f64,
    /// Totals.
    pub frames_in: u64,
    /// Totals.
    pub frames_out: u64,
    /// Totals.
    pub bytes_in: u64,
    /// Totals.
    pub bytes_out: u64,
    /// Frames dropped as too old on arrival.
    pub dropped_late: u64,
    /// Frames superseded before a subscriber was ready for them.
    pub skipped: u64,
    /// Frames the publishers skipped before sending.
    pub publisher_skipped: u64,
    /// Connected publishers and subscribers.
    pub publishers: u64,
    /// Connected publishers and subscribers.
    pub subscribers: u64,
    /// Capture → hub latency, µs: (p50, p99), if any frame arrived recently.
    pub latency_to_hub_us: Option<(u64, u64)>,
    /// Capture → sent to a subscriber, µs: (p50, p99).
    pub latency_to_subscriber_us: Option<(u64, u64)>,
    /// Newest frame: sequence, size in pixels, and its format.
    pub last: Option<(u64, u32, u32, u8)>,
}

fn push_window(q: &mut VecDeque<i64>, v: i64) {
    if q.len() == LATENCY_WINDOW {
        q.pop_front();
    }
    q.push_back(v);
}

fn percentiles(q: &VecDeque<i64>) -> Option<(u64, u64)> {
    if q.is_empty() {
        return None;
    }
    // Bounds up to a minute: `saturating_record` clamps to them instead of losing the sample.
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    for &v in q {
        h.saturating_record(v.max(0) as u64);
    }
    Some((h.value_at_quantile(0.5), h.value_at_quantile(0.99)))
}

fn rate(q: &mut VecDeque<i64>, now_us: i64) -> f64 {
    while q.front().is_some_and(|&t| now_us - t > FPS_WINDOW_US) {
        q.pop_front();
    }
    q.len() as f64 * 1_000_000.0 / FPS_WINDOW_US as f64
}

impl Stream {
    fn new(name: &str) -> Self {
        Stream {
            name: name.to_owned(),
            latest: watch::channel(None).0,
            frames_in: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            frames_out: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            dropped_late: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            publisher_skipped: AtomicU64::new(0),
            publishers: AtomicU64::new(0),
            subscribers: AtomicU64::new(0),
            hist_to_hub: LatencyHistogram::default(),
            hist_to_subscriber: LatencyHistogram::default(),
            windows: Mutex::new(Windows {
                arrivals: VecDeque::new(),
                departures: VecDeque::new(),
                to_hub: VecDeque::new(),
                to_subscriber: VecDeque::new(),
            }),
            holder: Mutex::new(None),
            last_active_us: AtomicI64::new(0),
        }
    }

    /// Makes `who` the stream's publisher, unless another connection holds it and `who` may not
    /// take it over (see [`Claimant`]).
    ///
    /// # Errors
    /// Why the name may not be claimed.
    pub(crate) fn claim(&self, who: &Claimant) -> Result<(), String> {
        let mut holder = self.holder.lock().unwrap();
        if let Some(h) = holder.as_ref() {
            if !who.may_take_from(h) {
                return Err(format!(
                    "stream {:?} belongs to another connection; only the same token or an admin token may take it over",
                    self.name
                ));
            }
        }
        *holder = Some(who.clone());
        Ok(())
    }

    /// Whether connection `conn` holds the stream's name.
    pub(crate) fn held_by(&self, conn: u64) -> bool {
        self.holder
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|h| h.conn == conn)
    }

    /// Whether a connection holds the stream's name (then UDP may not publish to it).
    pub(crate) fn is_held(&self) -> bool {
        self.holder.lock().unwrap().is_some()
    }

    /// Connection `conn` stops publishing: the name is free again (if it still held it), and the
    /// TTL starts counting.
    pub(crate) fn release(&self, conn: u64, now_us: i64) {
        let mut holder = self.holder.lock().unwrap();
        if holder.as_ref().is_some_and(|h| h.conn == conn) {
            *holder = None;
        }
        self.last_active_us.fetch_max(now_us, Relaxed);
    }

    /// Whether the stream may be forgotten at `now_us`: nobody publishes it and it had no sign of
    /// life for `ttl_us`. Subscribers alone do not keep it.
    fn expired(&self, now_us: i64, ttl_us: i64) -> bool {
        self.publishers.load(Relaxed) == 0
            && !self.is_held()
            && now_us.saturating_sub(self.last_active_us.load(Relaxed)) > ttl_us
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Offers a frame from a publisher at hub time `now_us`. Returns `false` (and counts it) if it
    /// is older than `max_latency_us` (0: no limit) and was dropped.
    pub fn publish(&self, frame: Frame, now_us: i64, max_latency_us: i64) -> bool {
        self.publish_charged(frame, crate::gate::Charge::none(), now_us, max_latency_us)
    }

    /// As [`Stream::publish`], for a frame whose bytes hold `charge` of the memory budget.
    pub(crate) fn publish_charged(
        &self,
        frame: Frame,
        charge: crate::gate::Charge,
        now_us: i64,
        max_latency_us: i64,
    ) -> bool {
        let age = now_us.saturating_sub(frame.capture_us);
        if max_latency_us > 0 && age > max_latency_us {
            self.dropped_late.fetch_add(1, Relaxed);
            return false;
        }
        self.last_active_us.fetch_max(now_us, Relaxed);
        self.frames_in.fetch_add(1, Relaxed);
        self.bytes_in.fetch_add(frame.payload.len() as u64, Relaxed);
        self.hist_to_hub.record(age);
        {
            let mut w = self.windows.lock().unwrap();
            push_window(&mut w.to_hub, age);
            w.arrivals.push_back(now_us);
            rate(&mut w.arrivals, now_us);
        }
        self.latest.send_replace(Some(Arc::new(HubFrame {
            frame,
            arrived_us: now_us,
            _charge: charge,
        })));
        true
    }

    /// A receiver that sees the newest frame whenever asked.
    pub fn watch(&self) -> watch::Receiver<Option<Arc<HubFrame>>> {
        self.latest.subscribe()
    }

    /// The newest frame, if any.
    pub fn latest(&self) -> Option<Arc<HubFrame>> {
        self.latest.borrow().clone()
    }

    /// Records that `f` went to a subscriber at hub time `now_us`, and how many frames that
    /// subscriber missed since its previous one (`skipped`).
    pub fn delivered(&self, f: &HubFrame, now_us: i64, skipped: u64) {
        self.frames_out.fetch_add(1, Relaxed);
        self.bytes_out
            .fetch_add(f.frame.payload.len() as u64, Relaxed);
        self.skipped.fetch_add(skipped, Relaxed);
        let age = now_us.saturating_sub(f.frame.capture_us);
        self.hist_to_subscriber.record(age);
        let mut w = self.windows.lock().unwrap();
        push_window(&mut w.to_subscriber, age);
        w.departures.push_back(now_us);
        rate(&mut w.departures, now_us);
    }

    /// The stream's figures now.
    pub fn snapshot(&self, now_us: i64) -> StreamSnapshot {
        let mut w = self.windows.lock().unwrap();
        let fps_in = rate(&mut w.arrivals, now_us);
        let fps_out = rate(&mut w.departures, now_us);
        let last = self
            .latest()
            .map(|f| (f.frame.seq, f.frame.width, f.frame.height, f.frame.format));
        StreamSnapshot {
            name: self.name.clone(),
            fps_in,
            fps_out,
            frames_in: self.frames_in.load(Relaxed),
            frames_out: self.frames_out.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            dropped_late: self.dropped_late.load(Relaxed),
            skipped: self.skipped.load(Relaxed),
            publisher_skipped: self.publisher_skipped.load(Relaxed),
            publishers: self.publishers.load(Relaxed),
            subscribers: self.subscribers.load(Relaxed),
            latency_to_hub_us: percentiles(&w.to_hub),
            latency_to_subscriber_us: percentiles(&w.to_subscriber),
            last,
        }
    }
}

/// Every stream the hub knows, by name. Streams are created on first publish or subscribe, at
/// most `max_streams` of them; one without a publisher is forgotten once it had no frame for the
/// TTL (a subscriber of a forgotten stream gets nothing more: it subscribes again). Whatever
/// lists them (`/api/streams`, `/metrics`, the dashboard) is bounded by the cap.
pub struct StreamHub {
    streams: Mutex<HashMap<String, Arc<Stream>>>,
    max_streams: usize,
    ttl_us: i64,
}

impl Default for StreamHub {
    fn default() -> Self {
        StreamHub::new(1_000, Duration::from_secs(300))
    }
}

/// A new stream refused: the hub has its most streams.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the hub has {0} streams, the most it may have")]
pub struct StreamsFull(pub usize);

impl StreamHub {
    /// At most `max_streams` streams; one without a publisher is forgotten after `ttl`.
    pub fn new(max_streams: usize, ttl: Duration) -> Self {
        StreamHub {
            streams: Mutex::new(HashMap::new()),
            max_streams,
            ttl_us: ttl.as_micros().min(i64::MAX as u128) as i64,
        }
    }

    /// The stream called `name`, created if new (at hub time `now_us`).
    ///
    /// # Errors
    /// [`StreamsFull`] when it is new and the hub has its most streams (after forgetting the
    /// expired ones).
    pub fn get_or_create(&self, name: &str, now_us: i64) -> Result<Arc<Stream>, StreamsFull> {
        let mut s = self.streams.lock().unwrap();
        if let Some(st) = s.get(name) {
            return Ok(Arc::clone(st));
        }
        if s.len() >= self.max_streams {
            s.retain(|_, st| !st.expired(now_us, self.ttl_us));
            if s.len() >= self.max_streams {
                return Err(StreamsFull(self.max_streams));
            }
        }
        let st = Arc::new(Stream::new(name));
        st.last_active_us.store(now_us, Relaxed);
        s.insert(name.to_owned(), Arc::clone(&st));
        Ok(st)
    }

    /// The stream called `name`, if it exists (and has not expired).
    pub fn get(&self, name: &str) -> Option<Arc<Stream>> {
        let now = crate::conn::now_us();
        let mut s = self.streams.lock().unwrap();
        if s.get(name)?.expired(now, self.ttl_us) {
            s.remove(name);
            return None;
        }
        s.get(name).cloned()
    }

    /// Forgets the streams expired at `now_us`.
    pub fn sweep(&self, now_us: i64) {
        self.streams
            .lock()
            .unwrap()
            .retain(|_, st| !st.expired(now_us, self.ttl_us));
    }

    /// How many streams the hub holds now.
    pub fn len(&self) -> usize {
        self.streams.lock().unwrap().len()
    }

    /// Whether the hub holds no stream.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every stream (not expired), by name.
    pub fn all(&self) -> Vec<Arc<Stream>> {
        self.sweep(crate::conn::now_us());
        let mut v: Vec<_> = self.streams.lock().unwrap().values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Figures of every stream (not expired), by name.
    pub fn snapshots(&self, now_us: i64) -> Vec<StreamSnapshot> {
        self.sweep(now_us);
        let streams: Vec<_> = self.streams.lock().unwrap().values().cloned().collect();
        let mut out: Vec<_> = streams.iter().map(|s| s.snapshot(now_us)).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn frame(seq: u64, capture_us: i64) -> Frame {
        Frame {
            stream: "s".into(),
            seq,
            capture_us,
            format: 1,
            width: 2,
            height: 2,
            payload: Bytes::from_static(b"x"),
        }
    }

    #[test]
    fn streams_are_capped_and_expire() {
        let hub = StreamHub::new(2, Duration::from_secs(10));
        let a = hub.get_or_create("a", 0).unwrap();
        hub.get_or_create("b", 0).unwrap();
        assert_eq!(
            hub.get_or_create("c", 1_000_000).err(),
            Some(StreamsFull(2))
        );
        assert!(
            hub.get_or_create("a", 1_000_000).is_ok(),
            "existing ones still"
        );
        // A held stream never expires; a free one after the TTL since its last frame.
        a.claim(&Claimant {
            conn: 1,
            token: String::new(),
            admin: false,
        })
        .unwrap();
        hub.get_or_create("b", 0)
            .unwrap()
            .publish(frame(1, 0), 5_000_000, 0);
        assert_eq!(
            hub.get_or_create("c", 14_000_000).err(),
            Some(StreamsFull(2))
        );
        assert!(hub.get_or_create("c", 16_000_000).is_ok(), "b expired");
        a.release(1, 16_000_000);
        hub.get_or_create("c", 0)
            .unwrap()
            .publish(frame(1, 0), 20_000_000, 0);
        hub.sweep(26_000_001);
        assert_eq!(hub.len(), 1, "a expired 10 s after its publisher left");
    }

    #[test]
    fn late_frames_are_dropped_and_counted() {
        let s = Stream::new("s");
        assert!(s.publish(frame(1, 1_000_000), 1_050_000, 80_000));
        assert!(!s.publish(frame(2, 1_000_000), 1_100_000, 80_000));
        assert!(
            s.publish(frame(3, 1_000_000), 9_000_000, 0),
            "0 means no limit"
        );
        let snap = s.snapshot(9_000_000);
        assert_eq!((snap.frames_in, snap.dropped_late), (2, 1));
        assert_eq!(snap.last.unwrap().0, 3);
    }

    #[test]
    fn watcher_sees_only_the_newest() {
        let s = Stream::new("s");
        let mut rx = s.watch();
        for i in 0..10 {
            s.publish(frame(i, 0), 0, 0);
        }
        assert!(rx.has_changed().unwrap());
        assert_eq!(rx.borrow_and_update().as_ref().unwrap().frame.seq, 9);
        assert!(!rx.has_changed().unwrap());
    }

    #[test]
    fn figures_over_the_last_second() {
        let s = Stream::new("s");
        for i in 0..30 {
            s.publish(frame(i, i as i64 * 33_333), i as i64 * 33_333 + 1_000, 0);
        }
        let snap = s.snapshot(29 * 33_333 + 1_000);
        assert!((snap.fps_in - 30.0).abs() < 1.5, "{}", snap.fps_in);
        assert_eq!(snap.latency_to_hub_us.unwrap().0, 1_000);
        // Larger latencies are kept as they are (within the histogram's 3 significant digits).
        let s = Stream::new("t");
        for (i, age) in [5_000i64, 40_000, 70_000, 250_000].iter().enumerate() {
            s.publish(frame(i as u64, 0), *age, 0);
        }
        let (p50, p99) = s.snapshot(250_000).latency_to_hub_us.unwrap();
        assert!((39_900..=40_100).contains(&p50), "{p50}");
        assert!((249_000..=251_000).contains(&p99), "{p99}");
    }
}
