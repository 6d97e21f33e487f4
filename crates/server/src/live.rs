//! A connection's live-video roles: publishing streams and subscribing to them.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use framewire_proto::encode_frame_head;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::AbortHandle;

use crate::conn::{now_us, Out};
use crate::streams::Stream;

/// A stream this connection publishes.
pub(crate) struct Publishing {
    pub(crate) stream: Arc<Stream>,
    pub(crate) max_latency_us: i64,
    pub(crate) last_seq: Option<u64>,
}

/// A stream this connection subscribes to: a task that sends the newest frame whenever the
/// client has room for one (its window of unacknowledged frames).
pub(crate) struct Subscription {
    stream: Arc<Stream>,
    credits: Arc<Semaphore>,
    window: usize,
    task: AbortHandle,
}

impl Subscription {
    pub(crate) fn start(stream: Arc<Stream>, window: u16, out: mpsc::Sender<Out>) -> Subscription {
        let window = window.max(1) as usize;
        let credits = Arc::new(Semaphore::new(window));
        stream.subscribers.fetch_add(1, Ordering::Relaxed);
        let task =
            tokio::spawn(deliver(Arc::clone(&stream), Arc::clone(&credits), out)).abort_handle();
        Subscription {
            stream,
            credits,
            window,
            task,
        }
    }

    /// The client consumed a frame: one more may be sent.
    pub(crate) fn ack(&self) {
        if self.credits.available_permits() < self.window {
            self.credits.add_permits(1);
        }
    }

    pub(crate) fn end(self) {
        self.task.abort();
        self.stream.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn deliver(stream: Arc<Stream>, credits: Arc<Semaphore>, out: mpsc::Sender<Out>) {
    let mut rx = stream.watch();
    // A frame that is already there goes out at once (a subscriber of a slow stream should not
    // wait for the next one).
    if rx.borrow().is_some() {
        rx.mark_changed();
    }
    let mut last_seq: Option<u64> = None;
    loop {
        let Ok(permit) = credits.acquire().await else {
            return;
        };
        permit.forget();
        // Wait for a frame newer than the last one sent; take the newest, skipping the rest.
        if rx.changed().await.is_err() {
            return;
        }
        let Some(f) = rx.borrow_and_update().clone() else {
            credits.add_permits(1);
            continue;
        };
        let mut head = Vec::with_capacity(64);
        if encode_frame_head(&f.frame, &mut head).is_err() {
            return;
        }
        let skipped = match last_seq {
            Some(prev) if f.frame.seq > prev => f.frame.seq - prev - 1,
            _ => 0,
        };
        last_seq = Some(f.frame.seq);
        if out
            .send(Out::Frame(Bytes::from(head), f.frame.payload.clone()))
            .await
            .is_err()
        {
            return;
        }
        stream.delivered(&f, now_us(), skipped);
    }
}
