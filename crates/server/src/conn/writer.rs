//! The writer task: owns the socket's write half and drains a bounded queue of encoded messages,
//! so answers produced elsewhere (group commits finishing, downloads streaming, frames fanned out)
//! never block the reader.
//!
//! The queue ([`Outbox`]) is bounded in messages and in bytes ([`OUT_BYTES`] per connection, one
//! larger message at a time), and every queued message of 64 KiB or more (not frames: a frame's bytes are charged
//! once, when it arrives, and shared by all its subscribers) is charged to the hub's memory budget
//! until written.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use framewire_proto::{ErrorMsg, Message};
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::timeout;

use super::Fatal;
use crate::clients::ClientEntry;
use crate::gate::{Activity, Charge, Memory};
use crate::streams::HubFrame;
use crate::Hub;

/// Messages waiting for the writer task.
const OUT_QUEUE: usize = 64;
/// Bytes waiting for the writer task, per connection (a message larger than this waits until the
/// queue is empty, then goes alone).
pub(crate) const OUT_BYTES: usize = 4 << 20;

/// Queued messages smaller than this are not charged to the memory budget.
const SMALL_MSG: usize = 64 * 1024;

/// What the writer task writes: an encoded message, or a frame's head and the frame (its payload
/// shared with every other subscriber, its memory charge held until the last one wrote it).
pub(crate) enum Out {
    Msg(Bytes),
    Frame(Bytes, Arc<HubFrame>),
}

impl Out {
    fn len(&self) -> usize {
        match self {
            Out::Msg(b) => b.len(),
            Out::Frame(head, f) => head.len() + f.frame.payload.len(),
        }
    }
}

/// A queued message and what it holds of the connection's and the hub's budgets.
pub(crate) struct Queued {
    pub(crate) out: Out,
    _room: OwnedSemaphorePermit,
    _charge: Charge,
}

/// The sending side of a connection's queue; cheap to clone.
#[derive(Clone)]
pub(crate) struct Outbox {
    tx: mpsc::Sender<Queued>,
    room: Arc<Semaphore>,
    memory: Memory,
    /// The longest a message waits for the memory budget (then `Timeout`: a sender holding
    /// memory itself must not wait for ever on others that do the same).
    memory_wait: Duration,
}

/// Why a message was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NotSent {
    /// The connection is closing (its writer is gone).
    Closed,
    /// No room within the time allowed (the peer is not reading, or the hub's memory is spent).
    Timeout,
}

/// A place in the queue taken in advance, for one small message (under 1 KiB).
pub(crate) struct Slot<'a> {
    permit: mpsc::Permit<'a, Queued>,
    room: OwnedSemaphorePermit,
}

impl Slot<'_> {
    pub(crate) fn send(self, out: Out) {
        self.permit.send(Queued {
            out,
            _room: self.room,
            _charge: Charge::none(),
        });
    }
}

impl Outbox {
    /// A queue charging `memory`, and its receiving end for the writer task.
    pub(crate) fn new(memory: Memory) -> (Outbox, mpsc::Receiver<Queued>) {
        let (tx, rx) = mpsc::channel(OUT_QUEUE);
        let room = Arc::new(Semaphore::new(OUT_BYTES));
        let memory_wait = Duration::from_secs(30);
        (
            Outbox {
                tx,
                room,
                memory,
                memory_wait,
            },
            rx,
        )
    }

    /// Sets the longest a message waits for the memory budget.
    pub(crate) fn with_memory_wait(mut self, wait: Duration) -> Outbox {
        self.memory_wait = wait;
        self
    }

    /// Queues `out`, waiting as long as it takes (until the writer gives up on a peer that does
    /// not read, which closes the queue).
    pub(crate) async fn send(&self, out: Out) -> Result<(), NotSent> {
        self.send_timeout(out, Duration::MAX).await
    }

    /// Queues `out` if there is room within `wait`.
    pub(crate) async fn send_timeout(&self, out: Out, wait: Duration) -> Result<(), NotSent> {
        let deadline = tokio::time::Instant::now()
            .checked_add(wait)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400 * 365));
        let n = out.len();
        let room = Arc::clone(&self.room).acquire_many_owned(n.clamp(1, OUT_BYTES) as u32);
        let room = tokio::select! {
            r = room => r.map_err(|_| NotSent::Closed)?,
            _ = self.tx.closed() => return Err(NotSent::Closed),
            _ = tokio::time::sleep_until(deadline) => return Err(NotSent::Timeout),
        };
        let charge = match &out {
            // Small answers (pongs, accepts, acknowledgements) never wait behind large charges:
            // the queue's message count bounds them.
            Out::Frame(..) => Charge::none(),
            Out::Msg(_) if n < SMALL_MSG => Charge::none(),
            Out::Msg(_) => {
                let left = deadline
                    .saturating_duration_since(tokio::time::Instant::now())
                    .min(self.memory_wait);
                tokio::select! {
                    c = self.memory.charge(n, left) => c.map_err(|_| NotSent::Timeout)?,
                    _ = self.tx.closed() => return Err(NotSent::Closed),
                }
            }
        };
        let q = Queued {
            out,
            _room: room,
            _charge: charge,
        };
        match tokio::time::timeout_at(deadline, self.tx.send(q)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(NotSent::Closed),
            Err(_) => Err(NotSent::Timeout),
        }
    }

    /// Queues `out` only if there is room now (`Timeout` when there is not).
    pub(crate) fn try_send(&self, out: Out) -> Result<(), NotSent> {
        if self.tx.is_closed() {
            return Err(NotSent::Closed);
        }
        let n = out.len();
        let room = Arc::clone(&self.room)
            .try_acquire_many_owned(n.clamp(1, OUT_BYTES) as u32)
            .map_err(|_| NotSent::Timeout)?;
        let charge = match &out {
            Out::Msg(_) if n >= SMALL_MSG => self.memory.try_charge(n).ok_or(NotSent::Timeout)?,
            _ => Charge::none(),
        };
        self.tx
            .try_send(Queued {
                out,
                _room: room,
                _charge: charge,
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => NotSent::Timeout,
                mpsc::error::TrySendError::Closed(_) => NotSent::Closed,
            })
    }

    /// Takes a place for one small message now (waiting for the queue, not for memory).
    pub(crate) async fn reserve(&self) -> Result<Slot<'_>, NotSent> {
        let room = Arc::clone(&self.room)
            .acquire_many_owned(1024)
            .await
            .map_err(|_| NotSent::Closed)?;
        let permit = self.tx.reserve().await.map_err(|_| NotSent::Closed)?;
        Ok(Slot { permit, room })
    }

    /// Completes when the writer is gone.
    pub(crate) async fn closed(&self) {
        self.tx.closed().await
    }
}

/// Sends a connection-level `Error` and closes the write side.
pub(super) async fn send_fatal<W: AsyncWrite + Unpin>(wr: &mut W, f: Fatal) {
    let msg = Message::Error(ErrorMsg {
        code: f.code,
        id: 0,
        message: f.message,
    });
    if let Ok(b) = msg.to_bytes() {
        let _ = wr.write_all(&b).await;
    }
    let _ = wr.shutdown().await;
}

async fn write_out<W: AsyncWrite + Unpin>(
    w: &mut BufWriter<W>,
    q: Queued,
) -> std::io::Result<usize> {
    match &q.out {
        Out::Msg(b) => w.write_all(b).await.map(|_| b.len()),
        Out::Frame(head, f) => {
            w.write_all(head).await?;
            w.write_all(&f.frame.payload).await?;
            Ok(head.len() + f.frame.payload.len())
        }
    }
}

/// Writes queued messages until the queue closes, or until the socket takes no write for
/// `write_timeout` (a peer that stopped reading): then it returns, dropping the queue, so every
/// sender fails at once and the session closes instead of waiting on a full queue forever.
pub(super) async fn write_loop<W: AsyncWrite + Unpin>(
    wr: W,
    mut rx: mpsc::Receiver<Queued>,
    write_timeout: Duration,
    hub: Arc<Hub>,
    client: Arc<ClientEntry>,
    activity: Arc<Activity>,
) {
    let mut w = BufWriter::with_capacity(256 * 1024, wr);
    while let Some(o) = rx.recv().await {
        let Ok(Ok(mut n)) = timeout(write_timeout, write_out(&mut w, o)).await else {
            return;
        };
        while let Ok(o) = rx.try_recv() {
            match timeout(write_timeout, write_out(&mut w, o)).await {
                Ok(Ok(k)) => n += k,
                _ => return,
            }
        }
        if !matches!(timeout(write_timeout, w.flush()).await, Ok(Ok(()))) {
            return;
        }
        hub.stats.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
        client.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
        activity.touch();
    }
    let _ = timeout(write_timeout, w.shutdown()).await;
}
