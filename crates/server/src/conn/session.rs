//! A native session after the handshake: the read loop (decode, dispatch, idle deadline), the
//! shutdown drain, and the close.
//!
//! Memory per connection is bounded: one message in the read buffer (a body over
//! [`UNCHARGED`] is charged to the hub's memory budget before it is read, and the read waits
//! for the budget), the outgoing queue (64 messages, [`OUT_BYTES`](super::writer::OUT_BYTES) bytes), the small files
//! awaiting commit (64 MiB), one staged batch in flight, and one commit outcome per outstanding
//! offer (at most `max_inflight`). A peer that stops reading cannot hold any of it: the writer
//! gives up after `write_timeout` without progress, every sender then fails at once, and the
//! session closes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{Ordering, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use framewire_proto::{decode, ErrorCode, ErrorMsg, Message, Rejected};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::live::{Publishing, Subscription};
use super::upload::Uploads;
use super::writer::{write_loop, NotSent, Out, Outbox};
use super::{now_us, Fatal};
use crate::auth::{Claimant, Identity, Perms};
use crate::clients::ClientEntry;
use crate::gate::{Activity, Charge, UNCHARGED};
use crate::store::Refusal;
use crate::Hub;

/// Socket reads go into at least this much free buffer.
const READ_CHUNK: usize = 256 * 1024;
/// A read buffer larger than this (it held a large message) is replaced by a small one once that
/// message is handled.
const SHRINK_ABOVE: usize = 4 << 20;

pub(super) struct Session {
    pub(super) hub: Arc<Hub>,
    pub(super) out: Outbox,
    pub(super) sender: String,
    /// What this connection's token allows.
    pub(super) perms: Perms,
    /// Its token (the names it may claim).
    pub(super) who: Identity,
    /// This connection as the holder of device and stream names.
    pub(super) claimant: Claimant,
    /// The protocol version negotiated in the handshake.
    pub(super) version: u16,
    pub(super) activity: Arc<Activity>,
    pub(super) client: Arc<ClientEntry>,
    pub(super) conn_id: u64,
    pub(super) publishing: HashMap<String, Publishing>,
    pub(super) subscriptions: HashMap<String, Subscription>,
    pub(super) uploads: Uploads,
    /// Downloads, served one after another in the order asked.
    pub(super) gets: Option<mpsc::Sender<framewire_proto::Get>>,
    pub(super) tasks: JoinSet<()>,
    /// The memory charged for the message being read (a large body), handed to whatever keeps
    /// its bytes (a live frame) or returned once the message is handled.
    pub(super) charge: Option<Charge>,
    /// An answer could not be queued for want of memory: close the connection.
    pub(super) starved: std::sync::atomic::AtomicBool,
    /// When this connection last sent file data (or its first offer): accepted offers left
    /// without data past `offer_timeout` are withdrawn.
    pub(super) last_data: Instant,
    /// The device or follower name this connection holds (the `from` of its texts).
    pub(super) own_name: Option<String>,
    /// The task forwarding the hub's events to this follower.
    pub(super) following: Option<tokio::task::AbortHandle>,
}

/// How the read loop ended.
enum End {
    Eof,
    Shutdown,
    Fatal(Fatal),
}

/// After telling a client why it is closed: read (and drop) what it is still sending, for a
/// moment, so that closing does not reset the connection and destroy the answer in flight.
async fn linger<R: AsyncRead + Unpin>(rd: &mut R) {
    let mut sink = vec![0u8; 64 * 1024];
    let _ = tokio::time::timeout(LINGER, async {
        while matches!(rd.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// The size of the message whose header is at the front of `buf`, if its body is over
/// [`UNCHARGED`] and not all here yet (the header was checked by `decode`).
/// The charge covers what the message costs: file data and frames are kept as read (zero-copy);
/// any other message (a text, a command) is copied when decoded and again when encoded for its
/// answer or its device, so it counts three times.
fn large_body(buf: &[u8]) -> Option<usize> {
    use framewire_proto::kind;
    let h = framewire_proto::Header::peek(buf)?;
    let total = framewire_proto::HEADER_LEN + h.len as usize;
    let copies = match h.kind {
        kind::DATA | kind::FRAME => 1,
        _ => 3,
    };
    (h.len as usize > UNCHARGED && buf.len() < total).then_some(total * copies)
}

/// How long [`linger`] reads at most.
const LINGER: Duration = Duration::from_millis(500);

impl Session {
    /// The session of a client that completed its handshake, and its writer task.
    pub(super) fn start<W: AsyncWrite + Unpin + Send + 'static>(
        hub: Arc<Hub>,
        wr: W,
        name: &str,
        peer: SocketAddr,
        sender: String,
        who: Identity,
        version: u16,
    ) -> (Session, JoinHandle<()>) {
        let conn_id = hub.next_conn_id();
        let client = hub.clients.add(conn_id, name, peer.to_string(), now_us());
        let (out, out_rx) = Outbox::new(hub.gate.memory.clone());
        let out = out.with_memory_wait(hub.config.write_timeout);
        let activity = Arc::new(Activity::default());
        let tokens = hub.config.tokens.enabled();
        let claimant = Claimant {
            conn: conn_id,
            token: if tokens {
                who.name.clone()
            } else {
                String::new()
            },
            admin: tokens && who.perms.allows(Perms::ADMIN),
        };
        let writer = tokio::spawn(write_loop(
            wr,
            out_rx,
            hub.config.write_timeout,
            Arc::clone(&hub),
            Arc::clone(&client),
            Arc::clone(&activity),
        ));
        let session = Session {
            hub,
            out,
            sender,
            perms: who.perms,
            who,
            claimant,
            version,
            activity,
            client,
            conn_id,
            publishing: HashMap::new(),
            subscriptions: HashMap::new(),
            uploads: Uploads::new(),
            gets: None,
            tasks: JoinSet::new(),
            charge: None,
            starved: Default::default(),
            last_data: Instant::now(),
            own_name: None,
            following: None,
        };
        (session, writer)
    }

    /// Reads and acts until the client leaves, breaks the protocol, or the hub shuts down.
    pub(super) async fn serve<R: AsyncRead + Unpin>(mut self, rd: &mut R, buf: BytesMut) {
        let end = self.run(rd, buf).await;
        let told = !matches!(end, End::Eof);
        self.close(end).await;
        if told {
            linger(rd).await;
        }
    }

    pub(super) async fn send(&self, msg: Message) {
        // The message is dropped once encoded: only the encoded bytes wait for room.
        let encoded = msg.to_bytes();
        drop(msg);
        match encoded {
            Ok(b) => {
                if self.out.send(Out::Msg(b)).await == Err(NotSent::Timeout) {
                    // The memory budget stayed in use: the answer is lost, so the connection
                    // must end (the read loop closes it with `Busy`).
                    self.starved.store(true, Relaxed);
                }
            }
            Err(e) => tracing::error!(error = %e, "could not encode a reply"),
        }
    }

    /// Refuses an upload for a reason of this door (its id, its window): counted like every
    /// pipeline refusal.
    pub(super) async fn reject(&self, id: u32, r: Refusal) {
        self.hub.pipeline.refused(&self.sender, &r);
        self.rejected(id, r).await;
    }

    /// Tells the client an upload was refused (already counted).
    pub(super) async fn rejected(&self, id: u32, r: Refusal) {
        self.send(Message::Rejected(Rejected {
            id,
            code: r.code,
            reason: r.reason,
        }))
        .await;
    }

    async fn run<R: AsyncRead + Unpin>(&mut self, rd: &mut R, mut buf: BytesMut) -> End {
        let stop = self.hub.gate.stop.clone();
        let abort = self.hub.gate.abort.clone();
        let idle = self.hub.config.idle_timeout;
        let mut draining = false;
        let offer_timeout = self.hub.config.offer_timeout;
        loop {
            loop {
                match decode(&mut buf, self.hub.config.max_payload) {
                    Ok(Some(msg)) => {
                        let r = self.handle(msg).await;
                        self.charge = None;
                        if let Err(f) = r {
                            return End::Fatal(f);
                        }
                        if self.starved.load(Relaxed) {
                            let secs = self.hub.config.write_timeout.as_secs();
                            tracing::warn!(from = %self.sender, "closing: no memory for an answer within {secs} s");
                            return End::Fatal(Fatal::new(
                                ErrorCode::Busy,
                                format!("the hub's memory budget stayed in use for {secs} s; try again later"),
                            ));
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return End::Fatal(e.into()),
                }
            }
            // The buffer that held a large message would otherwise be kept (reused for reading)
            // after its charge was returned: give it back and read into a small one.
            if buf.capacity() > SHRINK_ABOVE && large_body(&buf).is_none() {
                let mut small = BytesMut::with_capacity(READ_CHUNK.max(buf.len()));
                small.extend_from_slice(&buf);
                buf = small;
            }
            // A large body is charged to the hub's memory budget before its bytes are read.
            if let Some(need) = large_body(&buf) {
                if self.charge.as_ref().is_none_or(|c| c.bytes() < need) {
                    self.charge = None;
                    let wait = self.hub.config.write_timeout;
                    tokio::select! {
                        _ = abort.cancelled() => return End::Shutdown,
                        c = self.hub.gate.memory.charge(need, wait) => match c {
                            Ok(c) => self.charge = Some(c),
                            Err(e) => {
                                tracing::warn!(from = %self.sender, bytes = need, "closing: {e}");
                                return End::Fatal(Fatal::new(ErrorCode::Busy, e.to_string()));
                            }
                        },
                    }
                }
            }
            // Shutting down: keep reading only while this client's uploads are unfinished.
            if draining && !self.uploads.in_progress() {
                return End::Shutdown;
            }
            if buf.capacity() - buf.len() < READ_CHUNK / 4 {
                buf.reserve(READ_CHUNK);
            }
            tokio::select! {
                biased;
                _ = abort.cancelled() => return End::Shutdown,
                _ = stop.cancelled(), if !draining => {
                    draining = true;
                    self.end_live_roles();
                }
                // The writer gave up: the peer did not read for the write timeout.
                _ = self.out.closed() => {
                    let secs = self.hub.config.write_timeout.as_secs_f64();
                    tracing::info!(from = %self.sender, "closing: the peer did not read for {secs} s");
                    return End::Eof;
                }
                _ = tokio::time::sleep_until(self.last_data + offer_timeout), if self.uploads.waiting_for_data() => {
                    self.withdraw_stale_offers().await;
                }
                _ = self.activity.idle(idle) => {
                    let secs = idle.as_secs();
                    return End::Fatal(Fatal::new(ErrorCode::Timeout, format!("idle for {secs} s; closing")));
                }
                Some(c) = self.uploads.results.recv() => {
                    self.committed(c).await;
                    while let Ok(c) = self.uploads.results.try_recv() {
                        self.committed(c).await;
                    }
                }
                r = rd.read_buf(&mut buf) => match r {
                    Ok(0) | Err(_) => return End::Eof,
                    Ok(n) => {
                        self.activity.touch();
                        self.hub.stats.bytes_in.fetch_add(n as u64, Relaxed);
                        self.client.bytes_in.fetch_add(n as u64, Relaxed);
                    }
                },
            }
        }
    }

    fn end_live_roles(&mut self) {
        for (_, sub) in self.subscriptions.drain() {
            sub.end();
        }
        for (name, p) in self.publishing.drain() {
            p.stream.publishers.fetch_sub(1, Ordering::Relaxed);
            if p.stream.held_by(self.conn_id) {
                self.hub.events.stream(&self.sender, &name, false);
            }
            p.stream.release(self.conn_id, now_us());
        }
        for name in self.hub.devices.unregister_conn(self.conn_id) {
            self.hub.events.device(&self.sender, &name, false);
        }
        self.hub.receivers.release_conn(self.conn_id);
        if let Some(f) = self.following.take() {
            f.abort();
        }
    }

    /// Ends the session: an unfinished upload keeps its bytes for resuming, commits already
    /// submitted are answered (within the hub's grace period on shutdown), and the client is told
    /// why.
    async fn close(mut self, end: End) {
        self.end_live_roles();
        self.close_uploads().await;
        let fatal = match end {
            End::Eof => None,
            End::Shutdown => Some(Fatal::new(
                ErrorCode::ShuttingDown,
                "the hub is shutting down; unfinished uploads are kept: send again to resume",
            )),
            End::Fatal(f) => {
                tracing::info!(from = %self.sender, reason = %f.message, "closing connection after protocol error");
                Some(f)
            }
        };
        let grace = match &fatal {
            Some(Fatal {
                code: ErrorCode::ShuttingDown,
                ..
            }) => self.hub.config.shutdown_grace,
            _ => Duration::from_secs(60),
        };
        // Uploads already handed to the committer are answered when it is done with them.
        let _ = tokio::time::timeout(grace, async {
            while self.uploads.committing() > 0 {
                match self.uploads.results.recv().await {
                    Some(c) => self.committed(c).await,
                    None => break,
                }
            }
            self.gets = None;
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if let Some(f) = fatal {
            self.send(Message::Error(ErrorMsg {
                code: f.code,
                id: 0,
                message: f.message,
            }))
            .await;
        }
    }
}
