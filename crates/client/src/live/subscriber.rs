//! Receiving a live stream: [`Subscriber`] hands its consumer the newest frame, paced by the
//! consumer ([`AckOnNext`] decides what to acknowledge when).

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU16, Ordering::Relaxed};
use std::sync::Arc;

use bytes::Bytes;
use framewire_proto::{Frame, FrameAck, Message, Subscribe};
use tokio::sync::{mpsc, Notify};

use super::link::{Link, LinkSnapshot, Role};
use super::window::AckOnNext;
use crate::client::{now_us, Client, ConnectOptions};
use crate::error::Result;

/// A frame received by a [`Subscriber`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedFrame {
    /// Stream name.
    pub stream: String,
    /// Publisher's sequence number (gaps: frames this subscriber skipped).
    pub seq: u64,
    /// Capture time on the hub's clock, µs since the Unix epoch.
    pub capture_hub_us: i64,
    /// Capture time converted to our clock.
    pub capture_local_us: i64,
    /// When it arrived here, our clock.
    pub received_local_us: i64,
    /// Image format ([`frame_format`](crate::frame_format)).
    pub format: u8,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The encoded image.
    pub payload: Bytes,
}

impl ReceivedFrame {
    /// Capture-to-arrival latency (age on arrival), µs.
    pub fn age_us(&self) -> i64 {
        self.received_local_us - self.capture_local_us
    }

    /// `f` as it arrived at `received_local_us`, with the hub's clock `offset_us` ahead of ours.
    fn arrived(f: Frame, offset_us: i64, received_local_us: i64) -> ReceivedFrame {
        ReceivedFrame {
            stream: f.stream,
            seq: f.seq,
            capture_hub_us: f.capture_us,
            capture_local_us: f.capture_us - offset_us,
            received_local_us,
            format: f.format,
            width: f.width,
            height: f.height,
            payload: f.payload,
        }
    }
}

/// Receives a stream's frames, newest first, paced by the consumer: the next frame is requested
/// only when [`Subscriber::next`] is called, so a slow consumer always gets a fresh frame.
pub struct Subscriber {
    frames: mpsc::Receiver<ReceivedFrame>,
    /// The consumer is ready for the next frame (it is done with the previous one).
    ready: Arc<Notify>,
    /// A frame was handed out, so asking for the next one acknowledges it.
    delivered: bool,
    /// The window the hub granted on the current connection; 0 until it says.
    granted: Arc<AtomicU16>,
    link: Link,
}

impl Subscriber {
    /// Connects (the first connection must succeed) and subscribes to `stream`; later losses are
    /// retried with backoff and the subscription renewed.
    ///
    /// # Errors
    /// As [`Client::connect`].
    pub async fn connect(addr: &str, opts: ConnectOptions, stream: &str) -> Result<Subscriber> {
        // Room for one frame: the hub sends the next only once this one is acknowledged.
        let (tx, frames) = mpsc::channel(1);
        let ready = Arc::new(Notify::new());
        let granted = Arc::new(AtomicU16::new(0));
        let role = SubscribeRole {
            stream: stream.to_owned(),
            ready: Arc::clone(&ready),
            frames: tx,
            acks: AckOnNext::default(),
            granted: Arc::clone(&granted),
        };
        let link = Link::start(addr, opts, stream.to_owned(), role).await?;
        Ok(Subscriber {
            frames,
            ready,
            delivered: false,
            granted,
            link,
        })
    }

    /// The next (newest) frame. Calling it tells the hub the previous frame is done with.
    /// Returns `None` once the subscriber is closed.
    pub async fn next(&mut self) -> Option<ReceivedFrame> {
        if self.delivered {
            self.ready.notify_one();
        }
        let f = self.frames.recv().await;
        self.delivered = f.is_some();
        f
    }

    /// Connection state.
    pub fn link(&self) -> LinkSnapshot {
        self.link.state().snapshot()
    }

    /// The window the hub granted (`Subscribed`): the subscription is in effect on the current
    /// connection. `None` before the hub's answer, while reconnecting, or from a hub that speaks
    /// only protocol version 1 (which does not answer `Subscribe`).
    pub fn granted_window(&self) -> Option<u16> {
        let w = self.granted.load(Relaxed);
        (w > 0 && self.link().connected).then_some(w)
    }

    /// Stops receiving.
    pub async fn close(self) {
        self.link.close().await;
    }

    /// The frames as an async stream (see [`Subscriber::next`]).
    pub fn into_stream(self) -> impl futures_util::Stream<Item = ReceivedFrame> {
        futures_util::stream::unfold(self, |mut s| async move { s.next().await.map(|f| (f, s)) })
    }
}

/// The subscriber's part of each connection: subscribe, hand frames over, acknowledge them when
/// the consumer is ready.
struct SubscribeRole {
    stream: String,
    ready: Arc<Notify>,
    frames: mpsc::Sender<ReceivedFrame>,
    acks: AckOnNext,
    /// Shared with the [`Subscriber`]: the window of the last `Subscribed`, 0 before one.
    granted: Arc<AtomicU16>,
}

impl Role for SubscribeRole {
    /// The consumer is ready for the next frame.
    type Event = ();

    async fn open(&mut self, c: &mut Client) -> Result<()> {
        self.acks.reset();
        self.granted.store(0, Relaxed);
        c.send(&Message::Subscribe(Subscribe {
            stream: self.stream.clone(),
            window: 1,
        }))
        .await
    }

    async fn event(&mut self) {
        self.ready.notified().await;
    }

    async fn on_event(&mut self, c: &mut Client, _ready: ()) -> Result<ControlFlow<()>> {
        if let Some(seq) = self.acks.consumer_ready() {
            c.send(&Message::FrameAck(FrameAck {
                stream: self.stream.clone(),
                seq,
            }))
            .await?;
        }
        Ok(ControlFlow::Continue(()))
    }

    async fn on_message(
        &mut self,
        c: &mut Client,
        m: Message,
        offset_us: i64,
    ) -> Result<ControlFlow<()>> {
        match m {
            Message::Frame(f) if f.stream == self.stream => {
                let rf = ReceivedFrame::arrived(f, offset_us, now_us());
                self.acks.delivered(rf.seq);
                if self.frames.send(rf).await.is_err() {
                    // The `Subscriber` is gone.
                    return Ok(ControlFlow::Break(()));
                }
            }
            Message::Subscribed(s) if s.stream == self.stream => {
                self.granted.store(s.window, Relaxed);
            }
            other => c.stray(other),
        }
        Ok(ControlFlow::Continue(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrival_moves_the_capture_time_to_our_clock() {
        let f = Frame {
            stream: "cam".into(),
            seq: 3,
            capture_us: 1_010_000,
            format: framewire_proto::frame_format::JPEG,
            width: 4,
            height: 2,
            payload: Bytes::from_static(b"jpeg"),
        };
        // The hub's clock is 10 ms ahead of ours.
        let rf = ReceivedFrame::arrived(f, 10_000, 1_030_000);
        assert_eq!(rf.capture_hub_us, 1_010_000);
        assert_eq!(rf.capture_local_us, 1_000_000);
        assert_eq!(rf.age_us(), 30_000);
        assert_eq!((rf.seq, rf.width, rf.height), (3, 4, 2));
    }
}
