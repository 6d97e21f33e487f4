//! Live video: publish frames ([`Publisher`]), receive them newest-first ([`Subscriber`]), answer
//! commands as a device ([`DeviceCommand`]) and send commands ([`Client::command`]).
//!
//! Publishers and subscribers own their connection in a background task that reconnects with
//! backoff when the hub goes away, so a camera loop or a processing loop never has to care: frames
//! produced while the hub is away replace each other (only the newest is kept), and a subscriber
//! simply waits for the next frame.
//!
//! Freshness comes from never queueing: a publisher keeps one pending frame (a newer one replaces
//! it, counted as skipped) and at most `in_flight` unacknowledged frames on the wire; a subscriber
//! acknowledges a frame only when its consumer asks for the next one, and the hub then sends the
//! newest frame it has.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use framewire_proto::{
    encode_frame_head, frame_format, ClockEstimate, ClockSample, Command, Frame, FrameAck, Message,
    Ping, Publish, RegisterDevice, Reply, ReplyStatus, Subscribe,
};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

use crate::client::{hub_error, now_us, Client, ConnectOptions};
use crate::error::Result;

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often a live connection re-measures the clock offset.
const PING_EVERY: Duration = Duration::from_secs(5);
/// Pings sent right after connecting, to get a tight clock estimate quickly.
const INITIAL_PINGS: u64 = 5;

/// A device's answer to a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandReply {
    /// Outcome.
    pub status: ReplyStatus,
    /// The device's output (usually text), or the hub's explanation.
    pub body: Bytes,
}

impl CommandReply {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Client {
    /// Sends `command args` to the device `target` through the hub and waits for its reply. The
    /// hub answers `UnknownDevice` or `Timeout` itself when the device is missing or silent.
    ///
    /// # Errors
    /// [`ClientError::Timeout`] if not even the hub answers within the I/O timeout, or any
    /// connection error. A device's refusal is a successful call with a non-`Ok` status.
    pub async fn command(
        &mut self,
        target: &str,
        command: &str,
        args: &[String],
    ) -> Result<CommandReply> {
        let id = self.alloc_id();
        self.send(&Message::Command(Command {
            id,
            target: target.to_owned(),
            command: command.to_owned(),
            args: args.to_vec(),
        }))
        .await?;
        loop {
            match self.recv("the command's Reply").await? {
                Message::Reply(r) if r.id == id => {
                    return Ok(CommandReply {
                        status: r.status,
                        body: r.body,
                    })
                }
                Message::Error(e) if e.id == id => return Err(hub_error(e)),
                other => self.stray(other),
            }
        }
    }
}

/// A command sent to this device; answer it with [`DeviceCommand::reply`] (dropping it answers
/// `Failed`).
#[derive(Debug)]
pub struct DeviceCommand {
    /// The verb, e.g. `capture`.
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// The hub's id for it on the connection it came in on.
    id: u32,
    /// That connection's reply queue. Answering puts the reply straight into it, so a reply given
    /// before [`Publisher::close`] is written before the connection closes (a `stop` command's
    /// answer, say).
    reply: Option<mpsc::UnboundedSender<(u32, CommandReply)>>,
}

impl DeviceCommand {
    /// Sends the answer.
    pub fn reply(mut self, status: ReplyStatus, body: impl Into<Bytes>) {
        if let Some(tx) = self.reply.take() {
            let _ = tx.send((
                self.id,
                CommandReply {
                    status,
                    body: body.into(),
                },
            ));
        }
    }

    /// Answers `Ok` with `text`.
    pub fn ok(self, text: impl Into<String>) {
        self.reply(ReplyStatus::Ok, Bytes::from(text.into()));
    }

    /// Answers `Failed` with `text`.
    pub fn fail(self, text: impl Into<String>) {
        self.reply(ReplyStatus::Failed, Bytes::from(text.into()));
    }
}

impl Drop for DeviceCommand {
    fn drop(&mut self) {
        if let Some(tx) = self.reply.take() {
            let _ = tx.send((
                self.id,
                CommandReply {
                    status: ReplyStatus::Failed,
                    body: Bytes::from_static(b"the device dropped the command without answering"),
                },
            ));
        }
    }
}

/// Clock offset and connection state shared between a live task and its handle.
#[derive(Debug, Default)]
struct LinkState {
    connected: AtomicBool,
    reconnects: AtomicU64,
    offset_us: AtomicI64,
    rtt_us: AtomicI64,
    last_error: Mutex<Option<String>>,
}

/// A live connection's state, as seen from its handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSnapshot {
    /// Whether the connection is up now.
    pub connected: bool,
    /// Connections re-established after a loss.
    pub reconnects: u64,
    /// The hub's clock minus ours, µs (best estimate).
    pub clock_offset_us: i64,
    /// Round trip of the ping that estimate comes from, µs.
    pub rtt_us: i64,
    /// Why the connection was last lost, if it was.
    pub last_error: Option<String>,
}

impl LinkState {
    fn snapshot(&self) -> LinkSnapshot {
        LinkSnapshot {
            connected: self.connected.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            clock_offset_us: self.offset_us.load(Relaxed),
            rtt_us: self.rtt_us.load(Relaxed),
            last_error: self.last_error.lock().unwrap().clone(),
        }
    }

    fn lost(&self, why: String) {
        self.connected.store(false, Relaxed);
        *self.last_error.lock().unwrap() = Some(why);
    }
}

/// Pings sent on a live connection, to turn pongs into clock samples.
#[derive(Default)]
struct Clock {
    estimate: ClockEstimate,
    sent: HashMap<u64, i64>,
    next_nonce: u64,
}

impl Clock {
    async fn ping(&mut self, c: &mut Client) -> Result<()> {
        self.next_nonce += 1;
        let sent_us = now_us();
        self.sent.insert(self.next_nonce, sent_us);
        c.send(&Message::Ping(Ping {
            nonce: self.next_nonce,
            time_us: sent_us,
        }))
        .await
    }

    fn pong(&mut self, nonce: u64, remote_us: i64, link: &LinkState) {
        if let Some(sent_us) = self.sent.remove(&nonce) {
            self.estimate.add(ClockSample {
                sent_us,
                remote_us,
                received_us: now_us(),
            });
            link.offset_us
                .store(self.estimate.offset_us().unwrap_or(0), Relaxed);
            link.rtt_us
                .store(self.estimate.rtt_us().unwrap_or(0), Relaxed);
        }
    }
}

/// Connects, retrying with exponential backoff until it works or `stop` fires.
async fn connect_with_backoff(
    addr: &str,
    opts: &ConnectOptions,
    link: &LinkState,
    stop: &Notify,
) -> Option<Client> {
    let mut wait = Duration::from_millis(100);
    loop {
        match Client::connect(addr, opts.clone()).await {
            Ok(c) => return Some(c),
            Err(e) => {
                tracing::debug!(addr, error = %e, "reconnect failed");
                *link.last_error.lock().unwrap() = Some(e.to_string());
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.notified() => return None,
        }
        wait = (wait * 2).min(MAX_BACKOFF);
    }
}

/// How to publish.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// Stream name.
    pub stream: String,
    /// The hub drops frames older than this on arrival (0: no limit).
    pub max_latency_ms: u32,
    /// Frames sent but not yet acknowledged by the hub, at most. 2 keeps the link busy while the
    /// hub's acknowledgement of the previous frame travels back.
    pub in_flight: usize,
    /// Also register as the device named like the stream, answering commands (see
    /// [`Publisher::commands`]).
    pub device: bool,
}

impl PublishOptions {
    /// Defaults for stream `name`: no latency limit, 2 frames in flight, not a device.
    pub fn new(name: impl Into<String>) -> Self {
        PublishOptions {
            stream: name.into(),
            max_latency_ms: 0,
            in_flight: 2,
            device: false,
        }
    }
}

struct PendingFrame {
    seq: u64,
    capture_local_us: i64,
    format: u8,
    width: u32,
    height: u32,
    payload: Bytes,
}

/// Publisher figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherSnapshot {
    /// Frames handed to [`Publisher::publish_jpeg`] and friends.
    pub published: u64,
    /// Frames written to the hub.
    pub sent: u64,
    /// Frames the hub acknowledged.
    pub acked: u64,
    /// Sequence number of the newest frame the hub acknowledged (0: none yet).
    pub last_acked_seq: u64,
    /// Frames replaced by a newer one before they could be sent.
    pub skipped: u64,
    /// Connection state.
    pub link: LinkSnapshot,
}

#[derive(Default)]
struct PublisherShared {
    pending: Mutex<Option<PendingFrame>>,
    wake: Notify,
    stop: Notify,
    stopped: AtomicBool,
    next_seq: AtomicU64,
    sent: AtomicU64,
    acked: AtomicU64,
    last_acked_seq: AtomicU64,
    skipped: AtomicU64,
    link: LinkState,
}

/// Publishes a live stream. Cheap to share: `publish_*` never blocks and never queues more than one
/// frame (the newest).
pub struct Publisher {
    shared: Arc<PublisherShared>,
    commands: Option<mpsc::Receiver<DeviceCommand>>,
    task: JoinHandle<()>,
}

impl Publisher {
    /// Connects (the first connection must succeed, so a wrong address is a clear error) and
    /// starts publishing in the background; later losses are retried with backoff.
    ///
    /// # Errors
    /// As [`Client::connect`].
    pub async fn connect(
        addr: &str,
        opts: ConnectOptions,
        publish: PublishOptions,
    ) -> Result<Publisher> {
        let first = Client::connect(addr, opts.clone()).await?;
        let shared = Arc::new(PublisherShared::default());
        let (cmd_tx, cmd_rx) = mpsc::channel(16);
        let task = tokio::spawn(run_publisher(
            addr.to_owned(),
            opts,
            publish.clone(),
            first,
            Arc::clone(&shared),
            cmd_tx,
        ));
        Ok(Publisher {
            shared,
            commands: publish.device.then_some(cmd_rx),
            task,
        })
    }

    /// Offers an encoded JPEG captured now. Returns its sequence number.
    pub fn publish_jpeg(&self, jpeg: Bytes, width: u32, height: u32) -> u64 {
        self.sink().publish_jpeg(jpeg, width, height)
    }

    /// Offers an encoded frame of `format` captured at `capture_local_us` (our clock, µs since the
    /// Unix epoch). If the previous frame has not gone out yet, this one replaces it.
    pub fn publish(
        &self,
        payload: Bytes,
        format: u8,
        width: u32,
        height: u32,
        capture_local_us: i64,
    ) -> u64 {
        self.sink()
            .publish(payload, format, width, height, capture_local_us)
    }

    /// A handle that publishes into this stream and reads its figures, for a capture thread or a
    /// status display, while the `Publisher` itself stays with whoever will [`close`] it.
    ///
    /// [`close`]: Publisher::close
    pub fn sink(&self) -> FrameSink {
        FrameSink {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Commands sent to this device (only with [`PublishOptions::device`]); take it once.
    pub fn commands(&mut self) -> Option<mpsc::Receiver<DeviceCommand>> {
        self.commands.take()
    }

    /// Figures so far.
    pub fn stats(&self) -> PublisherSnapshot {
        self.sink().stats()
    }

    /// Waits (at most `wait`) until the pending frame is sent and every sent frame acknowledged,
    /// then stops.
    pub async fn close(mut self, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        while tokio::time::Instant::now() < deadline {
            let s = &self.shared;
            let idle = s.pending.lock().unwrap().is_none()
                && s.acked.load(Relaxed) >= s.sent.load(Relaxed);
            if idle {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.shared.stopped.store(true, Relaxed);
        self.shared.stop.notify_waiters();
        self.shared.stop.notify_one();
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.task).await;
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A cloneable handle on a [`Publisher`]'s stream (see [`Publisher::sink`]). Frames published
/// after the publisher was closed or dropped are simply never sent.
#[derive(Clone)]
pub struct FrameSink {
    shared: Arc<PublisherShared>,
}

impl std::fmt::Debug for FrameSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameSink")
            .field("published", &self.shared.next_seq.load(Relaxed))
            .finish_non_exhaustive()
    }
}

impl FrameSink {
    /// As [`Publisher::publish_jpeg`].
    pub fn publish_jpeg(&self, jpeg: Bytes, width: u32, height: u32) -> u64 {
        self.publish(jpeg, frame_format::JPEG, width, height, now_us())
    }

    /// As [`Publisher::publish`].
    pub fn publish(
        &self,
        payload: Bytes,
        format: u8,
        width: u32,
        height: u32,
        capture_local_us: i64,
    ) -> u64 {
        let seq = self.shared.next_seq.fetch_add(1, Relaxed) + 1;
        let old = self.shared.pending.lock().unwrap().replace(PendingFrame {
            seq,
            capture_local_us,
            format,
            width,
            height,
            payload,
        });
        if old.is_some() {
            self.shared.skipped.fetch_add(1, Relaxed);
        }
        self.shared.wake.notify_one();
        seq
    }

    /// As [`Publisher::stats`].
    pub fn stats(&self) -> PublisherSnapshot {
        let s = &self.shared;
        PublisherSnapshot {
            published: s.next_seq.load(Relaxed),
            sent: s.sent.load(Relaxed),
            acked: s.acked.load(Relaxed),
            last_acked_seq: s.last_acked_seq.load(Relaxed),
            skipped: s.skipped.load(Relaxed),
            link: s.link.snapshot(),
        }
    }
}

async fn send_frame(c: &mut Client, stream: &str, f: &PendingFrame, offset_us: i64) -> Result<()> {
    let frame = Frame {
        stream: stream.to_owned(),
        seq: f.seq,
        capture_us: f.capture_local_us + offset_us,
        format: f.format,
        width: f.width,
        height: f.height,
        payload: Bytes::new(),
    };
    let mut head = BytesMut::with_capacity(64);
    let with_payload = Frame {
        payload: f.payload.clone(),
        ..frame
    };
    encode_frame_head(&with_payload, &mut head)?;
    c.flush_out().await?;
    c.writer.write_all(&head).await?;
    c.writer.write_all(&f.payload).await?;
    c.writer.flush().await?;
    Ok(())
}

async fn run_publisher(
    addr: String,
    opts: ConnectOptions,
    publish: PublishOptions,
    first: Client,
    shared: Arc<PublisherShared>,
    commands: mpsc::Sender<DeviceCommand>,
) {
    let s = Arc::clone(&shared);
    let stream = publish.stream.clone();
    keep_connected(
        &addr,
        &opts,
        first,
        &shared.link,
        &shared.stop,
        &shared.stopped,
        &stream,
        move |c| {
            // Each session owns what it uses, so its future borrows only the connection.
            let (publish, s, commands) = (publish.clone(), Arc::clone(&s), commands.clone());
            Box::pin(async move { publish_session(c, &publish, &s, &commands).await })
        },
    )
    .await;
}

/// A session on one connection; `Ok` means stop was asked for.
type Session<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + 'a>>;

/// Runs `session` on `first`, then on a new connection (made with backoff) each time the session
/// fails, until a session ends normally or the handle asks to stop.
#[allow(clippy::too_many_arguments)]
async fn keep_connected(
    addr: &str,
    opts: &ConnectOptions,
    first: Client,
    link: &LinkState,
    stop: &Notify,
    stopped: &AtomicBool,
    stream: &str,
    mut session: impl for<'a> FnMut(&'a mut Client) -> Session<'a>,
) {
    let mut client = Some(first);
    loop {
        let mut c = match client.take() {
            Some(c) => c,
            None => {
                if stopped.load(Relaxed) {
                    return;
                }
                match connect_with_backoff(addr, opts, link, stop).await {
                    Some(c) => {
                        link.reconnects.fetch_add(1, Relaxed);
                        c
                    }
                    None => return,
                }
            }
        };
        link.connected.store(true, Relaxed);
        match session(&mut c).await {
            Ok(()) => return,
            Err(e) => {
                tracing::info!(%stream, error = %e, "connection to the hub lost; reconnecting");
                link.lost(e.to_string());
            }
        }
    }
}

/// One connection's worth of publishing. `Ok` means stop was asked for.
async fn publish_session(
    c: &mut Client,
    publish: &PublishOptions,
    shared: &PublisherShared,
    commands: &mpsc::Sender<DeviceCommand>,
) -> Result<()> {
    let mut clock = Clock::default();
    c.send(&Message::Publish(Publish {
        stream: publish.stream.clone(),
        max_latency_ms: publish.max_latency_ms,
    }))
    .await?;
    if publish.device {
        c.send(&Message::RegisterDevice(RegisterDevice {
            name: publish.stream.clone(),
        }))
        .await?;
    }
    for _ in 0..INITIAL_PINGS {
        clock.ping(c).await?;
    }
    let (reply_tx, mut replies) = mpsc::unbounded_channel::<(u32, CommandReply)>();
    let mut in_flight = 0usize;
    let mut ping_tick = tokio::time::interval(PING_EVERY);
    ping_tick.tick().await;
    loop {
        // Send the pending frame as soon as the window allows.
        if in_flight < publish.in_flight.max(1) {
            let next = shared.pending.lock().unwrap().take();
            if let Some(f) = next {
                // Until the first pong, frames go out on our own clock (offset 0).
                send_frame(
                    c,
                    &publish.stream,
                    &f,
                    clock.estimate.offset_us().unwrap_or(0),
                )
                .await?;
                in_flight += 1;
                shared.sent.fetch_add(1, Relaxed);
                continue;
            }
        }
        tokio::select! {
            _ = shared.stop.notified() => {
                // Answers given before `close` still go out (a `stop` command's, say).
                while let Ok((id, r)) = replies.try_recv() {
                    c.send(&Message::Reply(Reply { id, status: r.status, body: r.body })).await?;
                }
                return Ok(());
            }
            _ = shared.wake.notified() => {}
            _ = ping_tick.tick() => clock.ping(c).await?,
            r = replies.recv() => {
                if let Some((id, r)) = r {
                    c.send(&Message::Reply(Reply { id, status: r.status, body: r.body })).await?;
                }
            }
            m = c.incoming.recv() => {
                let Some(m) = c.accept_incoming(m)? else { continue };
                match m {
                    Message::FrameAck(a) => {
                        in_flight = in_flight.saturating_sub(1);
                        shared.acked.fetch_add(1, Relaxed);
                        shared.last_acked_seq.fetch_max(a.seq, Relaxed);
                    }
                    Message::Pong(p) => clock.pong(p.nonce, p.time_us, &shared.link),
                    Message::Ping(p) => c.answer_ping(p).await?,
                    Message::Command(cmd) => {
                        let dc = DeviceCommand {
                            command: cmd.command,
                            args: cmd.args,
                            id: cmd.id,
                            reply: Some(reply_tx.clone()),
                        };
                        if let Err(e) = commands.try_send(dc) {
                            // Answer here, not through the dropped command's queue entry.
                            let mut dc = e.into_inner();
                            dc.reply = None;
                            c.send(&Message::Reply(Reply {
                                id: cmd.id,
                                status: ReplyStatus::Failed,
                                body: Bytes::from_static(b"the device is busy"),
                            }))
                            .await?;
                        }
                    }
                    Message::Error(e) if e.id == 0 => return Err(hub_error(e)),
                    other => c.stray(other),
                }
            }
        }
    }
}

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
    /// Image format ([`frame_format`]).
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
}

#[derive(Default)]
struct SubscriberShared {
    stop: Notify,
    stopped: AtomicBool,
    /// The consumer is ready for the next frame (acknowledges the previous one).
    ready: Notify,
    link: LinkState,
}

/// Receives a stream's frames, newest first, paced by the consumer: the next frame is requested
/// only when [`Subscriber::next`] is called, so a slow consumer always gets a fresh frame.
pub struct Subscriber {
    shared: Arc<SubscriberShared>,
    frames: mpsc::Receiver<ReceivedFrame>,
    delivered: bool,
    task: JoinHandle<()>,
}

impl Subscriber {
    /// Connects (the first connection must succeed) and subscribes to `stream`; later losses are
    /// retried with backoff and the subscription renewed.
    ///
    /// # Errors
    /// As [`Client::connect`].
    pub async fn connect(addr: &str, opts: ConnectOptions, stream: &str) -> Result<Subscriber> {
        let first = Client::connect(addr, opts.clone()).await?;
        let shared = Arc::new(SubscriberShared::default());
        let (tx, frames) = mpsc::channel(1);
        let task = tokio::spawn(run_subscriber(
            addr.to_owned(),
            opts,
            stream.to_owned(),
            first,
            Arc::clone(&shared),
            tx,
        ));
        Ok(Subscriber {
            shared,
            frames,
            delivered: false,
            task,
        })
    }

    /// The next (newest) frame. Calling it tells the hub the previous frame is done with.
    /// Returns `None` once the subscriber is closed.
    pub async fn next(&mut self) -> Option<ReceivedFrame> {
        if self.delivered {
            self.shared.ready.notify_one();
        }
        let f = self.frames.recv().await;
        self.delivered = f.is_some();
        f
    }

    /// Connection state.
    pub fn link(&self) -> LinkSnapshot {
        self.shared.link.snapshot()
    }

    /// Stops receiving.
    pub async fn close(mut self) {
        self.shared.stopped.store(true, Relaxed);
        self.shared.stop.notify_one();
        self.shared.stop.notify_waiters();
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.task).await;
    }

    /// The frames as an async stream (see [`Subscriber::next`]).
    pub fn into_stream(self) -> impl futures_util::Stream<Item = ReceivedFrame> {
        futures_util::stream::unfold(self, |mut s| async move { s.next().await.map(|f| (f, s)) })
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run_subscriber(
    addr: String,
    opts: ConnectOptions,
    stream: String,
    first: Client,
    shared: Arc<SubscriberShared>,
    frames: mpsc::Sender<ReceivedFrame>,
) {
    let (s, name) = (Arc::clone(&shared), stream.clone());
    keep_connected(
        &addr,
        &opts,
        first,
        &shared.link,
        &shared.stop,
        &shared.stopped,
        &stream,
        move |c| {
            let (name, s, frames) = (name.clone(), Arc::clone(&s), frames.clone());
            Box::pin(async move { subscribe_session(c, &name, &s, &frames).await })
        },
    )
    .await;
}

async fn subscribe_session(
    c: &mut Client,
    stream: &str,
    shared: &SubscriberShared,
    frames: &mpsc::Sender<ReceivedFrame>,
) -> Result<()> {
    let mut clock = Clock::default();
    for _ in 0..INITIAL_PINGS {
        clock.ping(c).await?;
    }
    c.send(&Message::Subscribe(Subscribe {
        stream: stream.to_owned(),
        window: 1,
    }))
    .await?;
    let mut ping_tick = tokio::time::interval(PING_EVERY);
    ping_tick.tick().await;
    // The frame handed to the consumer and not yet acknowledged.
    let mut unacked: Option<u64> = None;
    loop {
        tokio::select! {
            _ = shared.stop.notified() => return Ok(()),
            _ = shared.ready.notified() => {
                if let Some(seq) = unacked.take() {
                    c.send(&Message::FrameAck(FrameAck { stream: stream.to_owned(), seq })).await?;
                }
            }
            _ = ping_tick.tick() => clock.ping(c).await?,
            m = c.incoming.recv() => {
                let Some(m) = c.accept_incoming(m)? else { continue };
                match m {
                    Message::Frame(f) if f.stream == stream => {
                        let offset = clock.estimate.offset_us().unwrap_or(0);
                        let received_local_us = now_us();
                        let rf = ReceivedFrame {
                            stream: f.stream,
                            seq: f.seq,
                            capture_hub_us: f.capture_us,
                            capture_local_us: f.capture_us - offset,
                            received_local_us,
                            format: f.format,
                            width: f.width,
                            height: f.height,
                            payload: f.payload,
                        };
                        unacked = Some(rf.seq);
                        if frames.send(rf).await.is_err() {
                            return Ok(());
                        }
                    }
                    Message::Pong(p) => clock.pong(p.nonce, p.time_us, &shared.link),
                    Message::Ping(p) => c.answer_ping(p).await?,
                    Message::Error(e) if e.id == 0 => return Err(hub_error(e)),
                    other => c.stray(other),
                }
            }
        }
    }
}
