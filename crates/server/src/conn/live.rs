//! A connection's live-video roles (publishing streams, subscribing to them) and the commands it
//! sends to devices.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use framewire_proto::encode_frame_head;
use tokio::sync::Semaphore;
use tokio::task::AbortHandle;

use super::session::Session;
use super::writer::Outbox;
use super::{now_us, Out};
use crate::clients::role;
use crate::streams::Stream;
use crate::untrusted::shown;
use framewire_proto::{Message, Registered, Reply, Subscribed};

/// The first protocol version whose clients are told `Registered` and `Subscribed`.
const ANSWERS_LIVE_ROLES: u16 = 2;

/// The largest window of unacknowledged frames the hub grants (a subscriber asking for more gets
/// this many, and `Subscribed` says so): beyond a few frames a window only adds latency, and a
/// peer that stops reading could otherwise pin that many frames.
pub(crate) const MAX_WINDOW: u16 = 64;

/// Frames smaller than this are copied out of the read buffer and not charged to the memory
/// budget (a thousand streams' newest frames at most this size stay within the budget's slack).
const SMALL_FRAME: usize = 64 * 1024;

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
    /// Starts sending `stream` with `window` (at least 1) frames unacknowledged at most.
    pub(crate) fn start(stream: Arc<Stream>, window: u16, out: Outbox) -> Subscription {
        let window = window.clamp(1, MAX_WINDOW) as usize;
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

async fn deliver(stream: Arc<Stream>, credits: Arc<Semaphore>, out: Outbox) {
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
        stream.delivered(&f, now_us(), skipped);
        if out.send(Out::Frame(Bytes::from(head), f)).await.is_err() {
            return;
        }
    }
}

/// Live video and device commands.
impl Session {
    pub(super) fn command(&mut self, c: framewire_proto::Command) {
        self.client.add_role(role::CONTROL);
        let hub = Arc::clone(&self.hub);
        let out = self.out.clone();
        let from = self.sender.clone();
        self.tasks.spawn(async move {
            tracing::info!(%from, device = %shown(&c.target), command = %shown(&c.command), args = %shown(&c.args.join(" ")), "command");
            let args = c.args.clone();
            let o = hub.devices.call(&c.target, &c.command, c.args, hub.config.command_timeout).await;
            hub.events.command(&from, &c.target, &c.command, &args, &o);
            let reply = Message::Reply(Reply { id: c.id, status: o.status, body: o.body });
            if let Ok(b) = reply.to_bytes() {
                let _ = out.send(Out::Msg(b)).await;
            }
        });
        while self.tasks.try_join_next().is_some() {}
    }

    /// Refuses a name this connection's token may not claim (the tokens file's `names=`).
    fn may_claim(&self, what: &str, name: &str) -> Result<(), super::Fatal> {
        if self.who.may_claim(name) {
            return Ok(());
        }
        Err(super::Fatal::new(
            framewire_proto::ErrorCode::Forbidden,
            format!("this token may not claim the {what} name {name:?}"),
        ))
    }

    /// Makes this connection the publisher of `p.stream`.
    ///
    /// # Errors
    /// `Forbidden` (fatal) when the name belongs to another connection or the token may not claim
    /// it; `Busy` (fatal) when the hub has its most streams.
    pub(super) fn publish(&mut self, p: framewire_proto::Publish) -> Result<(), super::Fatal> {
        let max_latency_us = p.max_latency_ms as i64 * 1000;
        if let Some(existing) = self.publishing.get_mut(&p.stream) {
            existing.max_latency_us = max_latency_us;
            return Ok(());
        }
        self.may_claim("stream", &p.stream)?;
        let stream = self
            .hub
            .streams
            .get_or_create(&p.stream, now_us())
            .map_err(|e| super::Fatal::new(framewire_proto::ErrorCode::Busy, e.to_string()))?;
        stream
            .claim(&self.claimant)
            .map_err(|why| super::Fatal::new(framewire_proto::ErrorCode::Forbidden, why))?;
        stream.publishers.fetch_add(1, Ordering::Relaxed);
        self.client.add_role(role::PUBLISHER);
        self.hub.events.stream(&self.sender, &p.stream, true);
        tracing::info!(stream = %shown(&p.stream), from = %self.sender, max_latency_ms = p.max_latency_ms, "publisher joined");
        self.publishing.insert(
            p.stream,
            Publishing {
                stream,
                max_latency_us,
                last_seq: None,
            },
        );
        Ok(())
    }

    /// # Errors
    /// As [`Session::publish`] for a stream not announced; `Forbidden` (fatal) when another
    /// connection (same token, or admin) took the stream over.
    pub(super) async fn frame(&mut self, f: framewire_proto::Frame) -> Result<(), super::Fatal> {
        if !self.publishing.contains_key(&f.stream) {
            self.publish(framewire_proto::Publish {
                stream: f.stream.clone(),
                max_latency_ms: 0,
            })?;
        }
        let p = self
            .publishing
            .get_mut(&f.stream)
            .expect("registered above");
        if !p.stream.held_by(self.conn_id) {
            return Err(super::Fatal::new(
                framewire_proto::ErrorCode::Forbidden,
                format!("stream {:?} was taken over by a newer connection", f.stream),
            ));
        }
        if let Some(prev) = p.last_seq {
            if f.seq > prev.saturating_add(1) {
                p.stream
                    .publisher_skipped
                    .fetch_add(f.seq - prev - 1, Ordering::Relaxed);
            }
        }
        p.last_seq = Some(f.seq);
        let (stream_name, seq) = (f.stream.clone(), f.seq);
        // The frame stays in memory as the stream's newest: its bytes are charged to the memory
        // budget (a large body already was, before it was read), and a small one is copied out of
        // the read buffer so that it does not pin the whole buffer.
        let mut f = f;
        let charge = match self.charge.take() {
            Some(c) => c,
            None if f.payload.len() >= SMALL_FRAME => {
                let wait = self.hub.config.write_timeout;
                self.hub
                    .gate
                    .memory
                    .charge(f.payload.len(), wait)
                    .await
                    .map_err(|e| {
                        super::Fatal::new(framewire_proto::ErrorCode::Busy, e.to_string())
                    })?
            }
            None => {
                f.payload = Bytes::copy_from_slice(&f.payload);
                crate::gate::Charge::none()
            }
        };
        p.stream
            .publish_charged(f, charge, now_us(), p.max_latency_us);
        // Acknowledge every frame, kept or dropped, so the publisher's window reopens.
        self.send(Message::FrameAck(framewire_proto::FrameAck {
            stream: stream_name,
            seq,
        }))
        .await;
        Ok(())
    }

    /// Makes this connection device `d.name`, then (version 2) says so with `Registered`.
    ///
    /// # Errors
    /// `Forbidden` (fatal) when the name belongs to another connection or the token may not claim
    /// it.
    pub(super) async fn register_device(
        &mut self,
        d: framewire_proto::RegisterDevice,
    ) -> Result<(), super::Fatal> {
        self.may_claim("device", &d.name)?;
        // A slot in the writer's queue, taken before registering and filled under the registry's
        // lock: `Registered` goes out after the registration took effect, and before any command
        // routed to it.
        let registered = Message::Registered(Registered {
            name: d.name.clone(),
        });
        let announce = if self.version >= ANSWERS_LIVE_ROLES {
            self.out
                .reserve()
                .await
                .ok()
                .zip(registered.to_bytes().ok())
        } else {
            None
        };
        self.hub
            .devices
            .register(
                &d.name,
                &self.claimant,
                self.out.clone(),
                now_us(),
                self.sender.clone(),
                || {
                    if let Some((slot, b)) = announce {
                        slot.send(Out::Msg(b));
                    }
                },
            )
            .map_err(|why| super::Fatal::new(framewire_proto::ErrorCode::Forbidden, why))?;
        tracing::info!(device = %shown(&d.name), from = %self.sender, "device registered");
        self.client.add_role(role::DEVICE);
        self.hub.events.device(&self.sender, &d.name, true);
        self.own_name = Some(d.name);
        Ok(())
    }

    /// Subscribes to `s.stream` (replacing an earlier subscription to it), after telling the
    /// client (version 2) the window granted with `Subscribed`, so that it precedes the frames.
    ///
    /// # Errors
    /// `Busy` (fatal) when the stream has as many subscribers as it may have, or is new and the
    /// hub has its most streams.
    pub(super) async fn subscribe(
        &mut self,
        s: framewire_proto::Subscribe,
    ) -> Result<(), super::Fatal> {
        if let Some(old) = self.subscriptions.remove(&s.stream) {
            old.end();
        }
        let stream = self
            .hub
            .streams
            .get_or_create(&s.stream, now_us())
            .map_err(|e| super::Fatal::new(framewire_proto::ErrorCode::Busy, e.to_string()))?;
        let limit = self.hub.config.max_subscribers_per_stream;
        if stream.subscribers.load(Ordering::Relaxed) as usize >= limit {
            return Err(super::Fatal::new(
                framewire_proto::ErrorCode::Busy,
                format!(
                    "stream {} already has {limit} subscribers, the most it may have",
                    s.stream
                ),
            ));
        }
        self.client.add_role(role::SUBSCRIBER);
        let window = s.window.clamp(1, MAX_WINDOW);
        tracing::info!(stream = %shown(&s.stream), from = %self.sender, window, "subscriber joined");
        if self.version >= ANSWERS_LIVE_ROLES {
            self.send(Message::Subscribed(Subscribed {
                stream: s.stream.clone(),
                window,
            }))
            .await;
        }
        self.subscriptions.insert(
            s.stream,
            Subscription::start(stream, window, self.out.clone()),
        );
        Ok(())
    }
}
