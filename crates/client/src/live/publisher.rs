//! Publishing a live stream: [`Publisher`] and the cloneable [`FrameSink`] that capture threads
//! publish into. Which frame goes out when is [`FrameWindow`]'s decision; the link's task only
//! writes it.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use framewire_proto::{encode_frame_head, frame_format, Frame, Message, Publish};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, Notify};

use super::command::CommandReply;
use super::device::{write_answer, DeviceCommand, DeviceDesk, COMMAND_QUEUE};
use super::link::{Link, LinkSnapshot, LinkState, Role};
use super::window::FrameWindow;
use crate::client::{now_us, Client, ConnectOptions};
use crate::error::Result;

/// How often [`Publisher::close`] looks whether everything went out.
const CLOSE_POLL: Duration = Duration::from_millis(5);

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

/// An encoded frame waiting for its turn.
struct PendingFrame {
    capture_local_us: i64,
    format: u8,
    width: u32,
    height: u32,
    payload: Bytes,
}

/// What the handles and the link's task share.
struct PublisherShared {
    window: Mutex<FrameWindow<PendingFrame>>,
    /// A frame was offered.
    wake: Notify,
    /// The hub confirmed the device registration (`Registered`) on the current connection.
    registered: AtomicBool,
}

impl PublisherShared {
    fn is_idle(&self) -> bool {
        self.window.lock().unwrap().is_idle()
    }
}

/// Publishes a live stream. Cheap to share: `publish_*` never blocks and never queues more than one
/// frame (the newest).
pub struct Publisher {
    sink: FrameSink,
    commands: Option<mpsc::Receiver<DeviceCommand>>,
    link: Link,
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
        let shared = Arc::new(PublisherShared {
            window: Mutex::new(FrameWindow::new(publish.in_flight)),
            wake: Notify::new(),
            registered: AtomicBool::new(false),
        });
        let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
        let device = publish.device;
        let role = PublishRole {
            publish: publish.clone(),
            shared: Arc::clone(&shared),
            desk: DeviceDesk::new(cmd_tx),
        };
        let link = Link::start(addr, opts, publish.stream, role).await?;
        Ok(Publisher {
            sink: FrameSink {
                shared,
                link: Arc::clone(link.state()),
            },
            commands: device.then_some(cmd_rx),
            link,
        })
    }

    /// Offers an encoded JPEG captured now. Returns its sequence number.
    pub fn publish_jpeg(&self, jpeg: Bytes, width: u32, height: u32) -> u64 {
        self.sink.publish_jpeg(jpeg, width, height)
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
        self.sink
            .publish(payload, format, width, height, capture_local_us)
    }

    /// A handle that publishes into this stream and reads its figures, for a capture thread or a
    /// status display, while the `Publisher` itself stays with whoever will [`close`] it.
    ///
    /// [`close`]: Publisher::close
    pub fn sink(&self) -> FrameSink {
        self.sink.clone()
    }

    /// Whether the hub confirmed (`Registered`) that commands for the device now come here, on
    /// the current connection. Always `false` without [`PublishOptions::device`], while
    /// reconnecting, and with a hub that speaks only protocol version 1 (which does not answer
    /// `RegisterDevice`).
    pub fn registered(&self) -> bool {
        self.sink.shared.registered.load(Relaxed) && self.link.state().snapshot().connected
    }

    /// Commands sent to this device (only with [`PublishOptions::device`]); take it once.
    pub fn commands(&mut self) -> Option<mpsc::Receiver<DeviceCommand>> {
        self.commands.take()
    }

    /// Figures so far.
    pub fn stats(&self) -> PublisherSnapshot {
        self.sink.stats()
    }

    /// Waits (at most `wait`) until the pending frame is sent and every frame sent on the current
    /// connection acknowledged, then stops.
    pub async fn close(self, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        while tokio::time::Instant::now() < deadline && !self.sink.shared.is_idle() {
            tokio::time::sleep(CLOSE_POLL).await;
        }
        self.link.close().await;
    }
}

/// A cloneable handle on a [`Publisher`]'s stream (see [`Publisher::sink`]). Frames published
/// after the publisher was closed or dropped are simply never sent.
#[derive(Clone)]
pub struct FrameSink {
    shared: Arc<PublisherShared>,
    link: Arc<LinkState>,
}

impl std::fmt::Debug for FrameSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let published = self.shared.window.lock().unwrap().counts().published;
        f.debug_struct("FrameSink")
            .field("published", &published)
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
        let seq = self.shared.window.lock().unwrap().offer(PendingFrame {
            capture_local_us,
            format,
            width,
            height,
            payload,
        });
        self.shared.wake.notify_one();
        seq
    }

    /// As [`Publisher::stats`].
    pub fn stats(&self) -> PublisherSnapshot {
        let c = self.shared.window.lock().unwrap().counts();
        PublisherSnapshot {
            published: c.published,
            sent: c.sent,
            acked: c.acked,
            last_acked_seq: c.last_acked_seq,
            skipped: c.skipped,
            link: self.link.snapshot(),
        }
    }
}

/// The publisher's part of each connection: announce the stream (and the device), write frames as
/// the window allows, count acknowledgements, pass commands and their answers.
struct PublishRole {
    publish: PublishOptions,
    shared: Arc<PublisherShared>,
    desk: DeviceDesk,
}

/// What a publishing session waits for besides the hub.
enum PublishEvent {
    /// A frame was offered.
    Offered,
    /// The device's consumer answered a command.
    Answered(Option<(u32, CommandReply)>),
}

impl Role for PublishRole {
    type Event = PublishEvent;

    async fn open(&mut self, c: &mut Client) -> Result<()> {
        self.shared.window.lock().unwrap().reset();
        self.shared.registered.store(false, Relaxed);
        c.send(&Message::Publish(Publish {
            stream: self.publish.stream.clone(),
            max_latency_ms: self.publish.max_latency_ms,
        }))
        .await?;
        if self.publish.device {
            self.desk.register(c, &self.publish.stream).await?;
        }
        Ok(())
    }

    async fn event(&mut self) -> PublishEvent {
        tokio::select! {
            _ = self.shared.wake.notified() => PublishEvent::Offered,
            a = self.desk.next_answer() => PublishEvent::Answered(a),
        }
    }

    async fn on_event(&mut self, c: &mut Client, event: PublishEvent) -> Result<ControlFlow<()>> {
        if let PublishEvent::Answered(Some((id, r))) = event {
            write_answer(c, id, r).await?;
        }
        // An offered frame goes out in `flush`.
        Ok(ControlFlow::Continue(()))
    }

    async fn on_message(
        &mut self,
        c: &mut Client,
        m: Message,
        _offset_us: i64,
    ) -> Result<ControlFlow<()>> {
        match m {
            Message::FrameAck(a) => self.shared.window.lock().unwrap().on_ack(a.seq),
            Message::Command(cmd) => self.desk.on_command(c, cmd).await?,
            Message::Registered(r) if self.publish.device && r.name == self.publish.stream => {
                self.shared.registered.store(true, Relaxed);
            }
            other => c.stray(other),
        }
        Ok(ControlFlow::Continue(()))
    }

    async fn flush(&mut self, c: &mut Client, offset_us: i64) -> Result<()> {
        loop {
            let next = self.shared.window.lock().unwrap().poll_send();
            let Some((seq, f)) = next else {
                return Ok(());
            };
            send_frame(c, &self.publish.stream, seq, &f, offset_us).await?;
        }
    }

    async fn close(&mut self, c: &mut Client) -> Result<()> {
        // Answers given before `close` still go out (a `stop` command's, say).
        self.desk.flush(c).await
    }
}

/// Writes frame `seq`, its capture time moved to the hub's clock. The payload goes out as it is,
/// behind its head, without a copy.
async fn send_frame(
    c: &mut Client,
    stream: &str,
    seq: u64,
    f: &PendingFrame,
    offset_us: i64,
) -> Result<()> {
    let frame = Frame {
        stream: stream.to_owned(),
        seq,
        capture_us: f.capture_local_us + offset_us,
        format: f.format,
        width: f.width,
        height: f.height,
        payload: f.payload.clone(),
    };
    let mut head = BytesMut::with_capacity(64);
    encode_frame_head(&frame, &mut head)?;
    c.flush_out().await?;
    c.writer.write_all(&head).await?;
    c.writer.write_all(&f.payload).await?;
    c.writer.flush().await?;
    Ok(())
}
