//! One client connection: handshake, then a loop that decodes messages and acts on them.
//!
//! The socket is split: this task reads and decides; a writer task owns the write half and drains
//! a bounded queue of encoded messages, so answers produced elsewhere (group commits finishing,
//! downloads streaming) never block the reader. Memory per connection is bounded by the read
//! buffer (one message, at most `max_payload`), the outgoing queue and the spool queue.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use framewire_proto::{
    check_preface, decode, encode_data_head, offer_flags, Accept, DecodeError, ErrorCode, ErrorMsg,
    FileInfo, Hello, ListEntry, ListPage, Message, Pong, Preface, Rejected, RemotePath, Reply,
    Stored, StoredStatus, Text, Welcome, HTTP_REFUSAL, MAX_HELLO_PAYLOAD, VERSION,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clients::{role, ClientEntry};
use crate::live::{Publishing, Subscription};
use crate::store::{PathLease, Refusal, SpoolWriter, UploadPlan};
use crate::Hub;

/// What the writer task writes: an encoded message, or a frame's head and its shared payload
/// (written one after the other, so the payload is never copied).
pub(crate) enum Out {
    Msg(Bytes),
    Frame(Bytes, Bytes),
}

/// Encoded messages waiting for the writer task.
const OUT_QUEUE: usize = 64;
/// Socket reads go into at least this much free buffer.
const READ_CHUNK: usize = 256 * 1024;
/// Largest page of a listing.
const MAX_LIST_PAGE: usize = 1000;

pub(crate) fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Why a connection ended early; sent to the client as a connection-level `Error`.
struct Fatal {
    code: ErrorCode,
    message: String,
}

impl Fatal {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Fatal {
            code,
            message: message.into(),
        }
    }
}

impl From<DecodeError> for Fatal {
    fn from(e: DecodeError) -> Self {
        let code = match e {
            DecodeError::TooLarge { .. } => ErrorCode::TooLarge,
            DecodeError::BadMagic => ErrorCode::NotFramewire,
            _ => ErrorCode::Malformed,
        };
        Fatal::new(code, e.to_string())
    }
}

/// Serves one client until it leaves, breaks the protocol, or the hub shuts down.
pub(crate) async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let hello = match tokio::time::timeout(
        hub.config.handshake_timeout,
        read_hello(&mut rd, &mut buf, &hub),
    )
    .await
    {
        Ok(Ok(h)) => h,
        Ok(Err(HandshakeEnd::Http)) => {
            let _ = wr.write_all(HTTP_REFUSAL).await;
            let _ = wr.shutdown().await;
            return;
        }
        Ok(Err(HandshakeEnd::Closed)) => return,
        Ok(Err(HandshakeEnd::Fatal(f))) => {
            tracing::info!(%peer, reason = %f.message, "handshake refused");
            send_fatal(&mut wr, f).await;
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "handshake timed out");
            send_fatal(
                &mut wr,
                Fatal::new(ErrorCode::Timeout, "no handshake within the time limit"),
            )
            .await;
            return;
        }
    };
    let name = if hello.name.is_empty() {
        "anonymous".to_owned()
    } else {
        hello.name.clone()
    };
    let sender = format!("{name}@{}", peer.ip());
    let welcome = Message::Welcome(Welcome {
        version: VERSION.min(hello.version),
        hub_time_us: now_us(),
        max_payload: hub.config.max_payload,
        max_file_size: hub.config.max_file_size,
        chunk_size: hub.config.chunk_size,
        max_inflight: hub.config.max_inflight,
        hub_name: hub.config.hub_name.clone(),
    });
    if wr
        .write_all(&welcome.to_bytes().expect("welcome encodes"))
        .await
        .is_err()
    {
        return;
    }
    tracing::info!(%peer, client = %name, "client connected");
    let conn_id = hub.next_conn_id();
    let client = hub.clients.add(conn_id, &name, peer.to_string(), now_us());
    hub.events.emit(
        "connect",
        &sender,
        format!("connected (protocol v{})", VERSION.min(hello.version)),
    );

    let (out_tx, out_rx) = mpsc::channel(OUT_QUEUE);
    let writer = tokio::spawn(write_loop(
        wr,
        out_rx,
        Arc::clone(&hub),
        Arc::clone(&client),
    ));
    let mut session = Session {
        hub: Arc::clone(&hub),
        out: out_tx,
        sender: sender.clone(),
        client,
        conn_id,
        publishing: HashMap::new(),
        subscriptions: HashMap::new(),
        pending: HashMap::new(),
        open: None,
        dead: HashSet::new(),
        outstanding: Arc::new(AtomicUsize::new(0)),
        tasks: JoinSet::new(),
    };
    let end = session.run(&mut rd, buf, &shutdown).await;
    session.close(end).await;
    let _ = writer.await;
    hub.clients.remove(conn_id);
    hub.events.emit("disconnect", &sender, "disconnected");
    tracing::info!(%peer, client = %name, "client disconnected");
}

enum HandshakeEnd {
    Http,
    Closed,
    Fatal(Fatal),
}

async fn read_hello(
    rd: &mut OwnedReadHalf,
    buf: &mut BytesMut,
    hub: &Hub,
) -> Result<Hello, HandshakeEnd> {
    loop {
        match check_preface(buf) {
            Preface::NeedMore => {}
            Preface::Http => return Err(HandshakeEnd::Http),
            Preface::NotFramewire => {
                return Err(HandshakeEnd::Fatal(Fatal::new(
                    ErrorCode::NotFramewire,
                    "not a framewire client: the first message must be Hello (magic FWIR)",
                )))
            }
            Preface::Hello => match decode(buf, MAX_HELLO_PAYLOAD) {
                Ok(Some(Message::Hello(h))) => {
                    if h.version == 0 {
                        return Err(HandshakeEnd::Fatal(Fatal::new(
                            ErrorCode::UnsupportedVersion,
                            format!("protocol version {} is not supported; this hub speaks 1..={VERSION}", h.version),
                        )));
                    }
                    hub.stats
                        .bytes_in
                        .fetch_add(buf.len() as u64, Ordering::Relaxed);
                    return Ok(h);
                }
                Ok(Some(_)) => unreachable!("preface checked the type"),
                Ok(None) => {}
                Err(e) => return Err(HandshakeEnd::Fatal(e.into())),
            },
        }
        match rd.read_buf(buf).await {
            Ok(0) | Err(_) => return Err(HandshakeEnd::Closed),
            Ok(_) => {}
        }
    }
}

async fn send_fatal(wr: &mut OwnedWriteHalf, f: Fatal) {
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

async fn write_out(w: &mut BufWriter<OwnedWriteHalf>, o: &Out) -> std::io::Result<usize> {
    match o {
        Out::Msg(b) => w.write_all(b).await.map(|_| b.len()),
        Out::Frame(head, payload) => {
            w.write_all(head).await?;
            w.write_all(payload).await?;
            Ok(head.len() + payload.len())
        }
    }
}

async fn write_loop(
    wr: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Out>,
    hub: Arc<Hub>,
    client: Arc<ClientEntry>,
) {
    let mut w = BufWriter::with_capacity(256 * 1024, wr);
    while let Some(o) = rx.recv().await {
        let Ok(mut n) = write_out(&mut w, &o).await else {
            return;
        };
        while let Ok(o) = rx.try_recv() {
            match write_out(&mut w, &o).await {
                Ok(k) => n += k,
                Err(_) => return,
            }
        }
        if w.flush().await.is_err() {
            return;
        }
        hub.stats.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
        client.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
    }
    let _ = w.shutdown().await;
}

/// An offer that was accepted and whose bytes have not started.
struct Pending {
    path: RemotePath,
    size: u64,
    flags: u8,
    lease: PathLease,
    plan: UploadPlan,
}

/// The upload whose bytes are arriving now (one at a time per connection).
struct OpenUpload {
    id: u32,
    path: RemotePath,
    size: u64,
    flags: u8,
    lease: PathLease,
    received: u64,
    writer: SpoolWriter,
}

struct Session {
    hub: Arc<Hub>,
    out: mpsc::Sender<Out>,
    sender: String,
    client: Arc<ClientEntry>,
    conn_id: u64,
    publishing: HashMap<String, Publishing>,
    subscriptions: HashMap<String, Subscription>,
    pending: HashMap<u32, Pending>,
    open: Option<OpenUpload>,
    /// Uploads refused mid-transfer: their remaining `Data`/`End` are ignored.
    dead: HashSet<u32>,
    /// Offers without a final answer yet (pending, open, or committing).
    outstanding: Arc<AtomicUsize>,
    tasks: JoinSet<()>,
}

/// How the read loop ended.
enum End {
    Eof,
    Shutdown,
    Fatal(Fatal),
}

impl Session {
    async fn send(&self, msg: Message) {
        match msg.to_bytes() {
            Ok(b) => {
                let _ = self.out.send(Out::Msg(b)).await;
            }
            Err(e) => tracing::error!(error = %e, "could not encode a reply"),
        }
    }

    async fn reject(&self, id: u32, r: Refusal) {
        self.hub.stats.upload_failed(r.code);
        if r.code != ErrorCode::Cancelled {
            self.hub
                .events
                .emit("reject", &self.sender, r.reason.clone());
        }
        self.send(Message::Rejected(Rejected {
            id,
            code: r.code,
            reason: r.reason,
        }))
        .await;
    }

    async fn run(
        &mut self,
        rd: &mut OwnedReadHalf,
        mut buf: BytesMut,
        shutdown: &CancellationToken,
    ) -> End {
        loop {
            loop {
                match decode(&mut buf, self.hub.config.max_payload) {
                    Ok(Some(msg)) => {
                        if let Err(f) = self.handle(msg).await {
                            return End::Fatal(f);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return End::Fatal(e.into()),
                }
            }
            if buf.capacity() - buf.len() < READ_CHUNK / 4 {
                buf.reserve(READ_CHUNK);
            }
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return End::Shutdown,
                r = rd.read_buf(&mut buf) => match r {
                    Ok(0) | Err(_) => return End::Eof,
                    Ok(n) => {
                        self.hub.stats.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                        self.client.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                    }
                },
            }
        }
    }

    async fn handle(&mut self, msg: Message) -> Result<(), Fatal> {
        match msg {
            Message::Ping(p) => {
                self.send(Message::Pong(Pong {
                    nonce: p.nonce,
                    ping_time_us: p.time_us,
                    time_us: now_us(),
                }))
                .await
            }
            Message::Pong(_) => {}
            Message::Text(t) => {
                tracing::info!(from = %self.sender, text = %t.text, "message");
                self.client.add_role(role::CONTROL);
                self.hub
                    .events
                    .emit("message", &self.sender, t.text.clone());
                self.send(Message::Text(Text {
                    id: t.id,
                    text: t.text,
                }))
                .await;
            }
            Message::Offer(o) => self.offer(o).await,
            Message::Data(d) => self.data(d.id, d.bytes).await?,
            Message::End(e) => self.end(e.id, e.hash).await?,
            Message::Cancel(c) => self.cancel(c.id).await,
            Message::Get(g) => self.get(g).await,
            Message::List(l) => self.list(l).await,
            Message::Command(c) => self.command(c),
            Message::RegisterDevice(d) => {
                tracing::info!(device = %d.name, from = %self.sender, "device registered");
                self.client.add_role(role::DEVICE);
                self.hub.events.emit(
                    "device",
                    &self.sender,
                    format!("registered as device {}", d.name),
                );
                self.hub.devices.register(
                    &d.name,
                    self.conn_id,
                    self.out.clone(),
                    now_us(),
                    self.sender.clone(),
                );
            }
            Message::Reply(r) => {
                if !self.hub.devices.reply(self.conn_id, r) {
                    tracing::debug!(from = %self.sender, "late or unexpected reply ignored");
                }
            }
            Message::Publish(p) => self.publish(p),
            Message::Frame(f) => self.frame(f).await,
            Message::Subscribe(s) => self.subscribe(s),
            Message::Unsubscribe(u) => {
                if let Some(sub) = self.subscriptions.remove(&u.stream) {
                    sub.end();
                }
            }
            Message::FrameAck(a) => {
                if let Some(sub) = self.subscriptions.get(&a.stream) {
                    sub.ack();
                }
            }
            Message::Error(e) => {
                tracing::debug!(from = %self.sender, code = %e.code, message = %e.message, "client reported an error");
            }
            other => {
                return Err(Fatal::new(
                    ErrorCode::ProtocolViolation,
                    format!("a client may not send {}", other.name()),
                ))
            }
        }
        Ok(())
    }

    async fn offer(&mut self, o: framewire_proto::Offer) {
        self.client.add_role(role::FILES);
        if self.pending.contains_key(&o.id) || self.open.as_ref().is_some_and(|u| u.id == o.id) {
            return self
                .reject(
                    o.id,
                    Refusal::new(
                        ErrorCode::ProtocolViolation,
                        format!("file id {} is already in use", o.id),
                    ),
                )
                .await;
        }
        self.dead.remove(&o.id);
        if self.outstanding.load(Ordering::Relaxed) >= self.hub.config.max_inflight as usize {
            return self
                .reject(
                    o.id,
                    Refusal::new(
                        ErrorCode::Busy,
                        format!(
                            "more than {} offers in flight; wait for answers",
                            self.hub.config.max_inflight
                        ),
                    ),
                )
                .await;
        }
        let path = match RemotePath::parse(&o.path) {
            Ok(p) => p,
            Err(e) => {
                return self
                    .reject(
                        o.id,
                        Refusal::new(ErrorCode::BadPath, format!("{:?}: {e}", o.path)),
                    )
                    .await;
            }
        };
        if o.size > self.hub.config.max_file_size {
            return self
                .reject(
                    o.id,
                    Refusal::new(
                        ErrorCode::TooLarge,
                        format!(
                            "{path} is {} bytes; this hub stores files up to {} bytes",
                            o.size, self.hub.config.max_file_size
                        ),
                    ),
                )
                .await;
        }
        if !self
            .hub
            .stats
            .storage_has_room(o.size, self.hub.config.max_storage)
        {
            return self
                .reject(
                    o.id,
                    Refusal::new(
                        ErrorCode::StorageFull,
                        format!(
                            "storage full: {path} ({} bytes) does not fit the hub's storage limit",
                            o.size
                        ),
                    ),
                )
                .await;
        }
        let lease = match self.hub.store.lease(&path) {
            Ok(l) => l,
            Err(r) => return self.reject(o.id, r).await,
        };
        let store = Arc::clone(&self.hub.store);
        let (p, size, flags) = (path.clone(), o.size, o.flags);
        let plan = tokio::task::spawn_blocking(move || {
            store.plan_upload(
                &p,
                size,
                flags & offer_flags::OVERWRITE != 0,
                flags & offer_flags::NO_RESUME != 0,
            )
        })
        .await
        .unwrap_or_else(|e| Err(Refusal::new(ErrorCode::Internal, e.to_string())));
        match plan {
            Ok(plan) => {
                let (offset, prefix_hash) = match &plan {
                    UploadPlan::Spool {
                        offset,
                        prefix_hash,
                        ..
                    } => (*offset, *prefix_hash),
                    UploadPlan::CheckExisting { hash } => (o.size, *hash),
                };
                self.outstanding.fetch_add(1, Ordering::Relaxed);
                self.pending.insert(
                    o.id,
                    Pending {
                        path,
                        size: o.size,
                        flags: o.flags,
                        lease,
                        plan,
                    },
                );
                self.send(Message::Accept(Accept {
                    id: o.id,
                    offset,
                    prefix_hash,
                }))
                .await;
            }
            Err(r) => self.reject(o.id, r).await,
        }
    }

    /// Makes `id` the open upload, starting its spool writer, if it is pending.
    fn open_upload(&mut self, id: u32) -> Result<bool, Fatal> {
        if let Some(open) = &self.open {
            if open.id == id {
                return Ok(true);
            }
            return Err(Fatal::new(
                ErrorCode::ProtocolViolation,
                format!(
                    "data for file {id} arrived while file {} is still being sent",
                    open.id
                ),
            ));
        }
        let Some(p) = self.pending.remove(&id) else {
            return Ok(false);
        };
        let UploadPlan::Spool { offset, hasher, .. } = p.plan else {
            self.pending.insert(id, p);
            return Err(Fatal::new(
                ErrorCode::ProtocolViolation,
                format!("file {id} is already stored; the client must compare hashes and send End, not data"),
            ));
        };
        let writer = self.hub.store.open_spool(&p.path, p.size, offset, *hasher);
        self.open = Some(OpenUpload {
            id,
            path: p.path,
            size: p.size,
            flags: p.flags,
            lease: p.lease,
            received: offset,
            writer,
        });
        Ok(true)
    }

    async fn data(&mut self, id: u32, bytes: Bytes) -> Result<(), Fatal> {
        if !self.open_upload(id)? {
            if self.dead.contains(&id) {
                return Ok(());
            }
            return Err(Fatal::new(
                ErrorCode::ProtocolViolation,
                format!("data for file {id}, which was not accepted"),
            ));
        }
        let open = self.open.as_mut().expect("opened above");
        open.received += bytes.len() as u64;
        if open.received > open.size {
            let open = self.open.take().expect("open");
            let reason = format!(
                "{} was offered as {} bytes but more arrived",
                open.path, open.size
            );
            self.abandon(open, Refusal::new(ErrorCode::SizeMismatch, reason))
                .await;
            return Ok(());
        }
        if open.writer.write(bytes).await.is_err() {
            // The writer failed (e.g. disk full); its error is collected by `finish`.
            let open = self.open.take().expect("open");
            let refusal = match open.writer.finish().await {
                Err(r) => r,
                Ok(_) => Refusal::new(ErrorCode::Internal, "spool writer stopped"),
            };
            self.hub.store.discard_partial(&open.path, open.size);
            self.outstanding.fetch_sub(1, Ordering::Relaxed);
            self.dead.insert(open.id);
            self.reject(open.id, refusal).await;
        }
        Ok(())
    }

    /// Refuses the open upload mid-transfer and throws its bytes away.
    async fn abandon(&mut self, open: OpenUpload, r: Refusal) {
        if let Ok(done) = open.writer.finish().await {
            done.discard();
        }
        self.hub.store.discard_partial(&open.path, open.size);
        self.outstanding.fetch_sub(1, Ordering::Relaxed);
        self.dead.insert(open.id);
        drop(open.lease);
        self.reject(open.id, r).await;
    }

    async fn end(&mut self, id: u32, hash: Option<[u8; 32]>) -> Result<(), Fatal> {
        let existing = match self.pending.get(&id) {
            Some(Pending {
                plan: UploadPlan::CheckExisting { hash },
                ..
            }) => Some(*hash),
            _ => None,
        };
        if let Some(stored) = existing {
            {
                let p = self.pending.remove(&id).expect("present");
                self.outstanding.fetch_sub(1, Ordering::Relaxed);
                if hash == Some(stored) {
                    self.hub.stats.file_unchanged();
                    self.send(Message::Stored(Stored {
                        id,
                        status: StoredStatus::Unchanged,
                        size: p.size,
                        hash: stored,
                    }))
                    .await;
                } else {
                    let reason = format!(
                        "a different file ({} bytes) is already stored at {}; send with --overwrite to replace it",
                        p.size, p.path
                    );
                    self.reject(id, Refusal::new(ErrorCode::Exists, reason))
                        .await;
                }
                return Ok(());
            }
        }
        if !self.open_upload(id)? {
            if self.dead.remove(&id) {
                return Ok(());
            }
            return Err(Fatal::new(
                ErrorCode::ProtocolViolation,
                format!("end of file {id}, which was not accepted"),
            ));
        }
        let open = self.open.take().expect("opened above");
        if open.received != open.size {
            let reason = format!(
                "{} was offered as {} bytes but {} arrived",
                open.path, open.size, open.received
            );
            // Fewer bytes than offered is a client error; keep nothing of it.
            self.abandon(open, Refusal::new(ErrorCode::SizeMismatch, reason))
                .await;
            self.dead.remove(&id);
            return Ok(());
        }
        let done = match open.writer.finish().await {
            Ok(d) => d,
            Err(r) => {
                self.hub.store.discard_partial(&open.path, open.size);
                self.outstanding.fetch_sub(1, Ordering::Relaxed);
                return {
                    self.reject(id, r).await;
                    Ok(())
                };
            }
        };
        if let Some(h) = hash {
            if h != done.hash {
                let reason = format!(
                    "{}: the bytes received hash to {} but the sender announced {}; nothing was stored",
                    open.path,
                    &hex::encode(done.hash)[..16],
                    &hex::encode(h)[..16]
                );
                done.discard();
                self.outstanding.fetch_sub(1, Ordering::Relaxed);
                self.reject(id, Refusal::new(ErrorCode::HashMismatch, reason))
                    .await;
                return Ok(());
            }
        }
        // Commit in the background so the next file's bytes keep flowing meanwhile.
        let hub = Arc::clone(&self.hub);
        let out = self.out.clone();
        let outstanding = Arc::clone(&self.outstanding);
        let sender = self.sender.clone();
        let overwrite = open.flags & offer_flags::OVERWRITE != 0;
        let (hash, size, lease, path) = (done.hash, done.len, open.lease, open.path);
        self.tasks.spawn(async move {
            let result = hub.store.commit(path.clone(), done, overwrite, sender.clone()).await;
            drop(lease);
            outstanding.fetch_sub(1, Ordering::Relaxed);
            let msg = match result {
                Ok(status) => {
                    tracing::debug!(%path, size, from = %sender, ?status, "stored");
                    if status != StoredStatus::Unchanged {
                        hub.events.emit("upload", &sender, format!("stored {path} ({size} bytes)"));
                    }
                    Message::Stored(Stored { id, status, size, hash })
                }
                Err(r) => {
                    tracing::info!(%path, from = %sender, reason = %r.reason, "upload rejected at commit");
                    hub.events.emit("reject", &sender, r.reason.clone());
                    Message::Rejected(Rejected { id, code: r.code, reason: r.reason })
                }
            };
            if let Ok(b) = msg.to_bytes() {
                let _ = out.send(Out::Msg(b)).await;
            }
        });
        // Reap finished commit tasks so the set doesn't grow with the number of files.
        while self.tasks.try_join_next().is_some() {}
        Ok(())
    }

    async fn cancel(&mut self, id: u32) {
        let cancelled = if let Some(p) = self.pending.remove(&id) {
            self.hub.store.discard_partial(&p.path, p.size);
            true
        } else if self.open.as_ref().is_some_and(|o| o.id == id) {
            let open = self.open.take().expect("open");
            if let Ok(done) = open.writer.finish().await {
                done.discard();
            }
            self.hub.store.discard_partial(&open.path, open.size);
            true
        } else {
            false
        };
        if cancelled {
            self.outstanding.fetch_sub(1, Ordering::Relaxed);
            self.send(Message::Rejected(Rejected {
                id,
                code: ErrorCode::Cancelled,
                reason: "cancelled by the client".into(),
            }))
            .await;
        }
    }

    async fn get(&mut self, g: framewire_proto::Get) {
        let path = match RemotePath::parse(&g.path) {
            Ok(p) => p,
            Err(e) => {
                return self
                    .send(Message::Error(ErrorMsg {
                        code: ErrorCode::BadPath,
                        id: g.id,
                        message: format!("{:?}: {e}", g.path),
                    }))
                    .await
            }
        };
        let store = Arc::clone(&self.hub.store);
        let out = self.out.clone();
        let chunk = self.hub.config.chunk_size as usize;
        self.tasks.spawn(async move {
            let opened = tokio::task::spawn_blocking(move || store.open_stored(&path)).await;
            let (file, rec) = match opened {
                Ok(Ok(x)) => x,
                Ok(Err(r)) => {
                    let msg = Message::Error(ErrorMsg {
                        code: r.code,
                        id: g.id,
                        message: r.reason,
                    });
                    let _ = out.send(Out::Msg(msg.to_bytes().expect("encodes"))).await;
                    return;
                }
                Err(_) => return,
            };
            let info = Message::FileInfo(FileInfo {
                id: g.id,
                size: rec.size,
                hash: rec.hash,
            });
            if out
                .send(Out::Msg(info.to_bytes().expect("encodes")))
                .await
                .is_err()
            {
                return;
            }
            let mut file = tokio::fs::File::from_std(file);
            if g.offset > 0
                && tokio::io::AsyncSeekExt::seek(&mut file, std::io::SeekFrom::Start(g.offset))
                    .await
                    .is_err()
            {
                return;
            }
            let mut left = rec.size.saturating_sub(g.offset);
            while left > 0 {
                let n = (left as usize).min(chunk);
                let mut b = BytesMut::with_capacity(12 + n);
                encode_data_head(g.id, n as u32, &mut b);
                b.resize(12 + n, 0);
                if file.read_exact(&mut b[12..]).await.is_err() {
                    let msg = Message::Error(ErrorMsg {
                        code: ErrorCode::Internal,
                        id: g.id,
                        message: format!("{} changed on the hub while being read", rec.path),
                    });
                    let _ = out.send(Out::Msg(msg.to_bytes().expect("encodes"))).await;
                    return;
                }
                if out.send(Out::Msg(b.freeze())).await.is_err() {
                    return;
                }
                left -= n as u64;
            }
            let end = Message::End(framewire_proto::End {
                id: g.id,
                hash: Some(rec.hash),
            });
            let _ = out.send(Out::Msg(end.to_bytes().expect("encodes"))).await;
        });
        while self.tasks.try_join_next().is_some() {}
    }

    async fn list(&mut self, l: framewire_proto::List) {
        let limit = (l.limit as usize).clamp(1, MAX_LIST_PAGE);
        let store = Arc::clone(&self.hub.store);
        let (prefix, after) = (l.prefix, l.after);
        let res = tokio::task::spawn_blocking(move || store.list(&prefix, &after, "", limit)).await;
        match res {
            Ok(Ok((records, more))) => {
                let entries = records
                    .into_iter()
                    .map(|r| ListEntry {
                        path: r.path,
                        size: r.size,
                        hash: r.hash,
                        stored_us: r.stored_us,
                        sender: r.sender,
                    })
                    .collect();
                self.send(Message::ListPage(ListPage {
                    id: l.id,
                    more,
                    entries,
                }))
                .await;
            }
            Ok(Err(e)) => {
                self.send(Message::Error(ErrorMsg {
                    code: ErrorCode::Internal,
                    id: l.id,
                    message: format!("index: {e}"),
                }))
                .await
            }
            Err(_) => {}
        }
    }

    /// Ends the session: a partial upload is flushed and kept for resuming, commits already
    /// submitted finish (within the hub's grace period on shutdown), and the client is told why.
    async fn close(mut self, end: End) {
        for (_, sub) in self.subscriptions.drain() {
            sub.end();
        }
        for (_, p) in self.publishing.drain() {
            p.stream.publishers.fetch_sub(1, Ordering::Relaxed);
        }
        self.hub.devices.unregister_conn(self.conn_id);
        if let Some(open) = self.open.take() {
            // Keep the bytes received so far: a re-sent upload resumes from them.
            let _ = open.writer.finish().await;
            drop(open.lease);
        }
        self.pending.clear();
        let fatal = match end {
            End::Eof => None,
            End::Shutdown => Some(Fatal::new(
                ErrorCode::ShuttingDown,
                "the hub is shutting down",
            )),
            End::Fatal(f) => {
                tracing::info!(from = %self.sender, reason = %f.message, "closing connection after protocol error");
                Some(f)
            }
        };
        let grace = if matches!(
            fatal,
            Some(Fatal {
                code: ErrorCode::ShuttingDown,
                ..
            })
        ) {
            self.hub.config.shutdown_grace
        } else {
            Duration::from_secs(60)
        };
        let _ = tokio::time::timeout(grace, async {
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

/// Live video and device commands.
impl Session {
    fn command(&mut self, c: framewire_proto::Command) {
        self.client.add_role(role::CONTROL);
        let hub = Arc::clone(&self.hub);
        let out = self.out.clone();
        let from = self.sender.clone();
        self.tasks.spawn(async move {
            tracing::info!(%from, device = %c.target, command = %c.command, args = ?c.args, "command");
            let line = std::iter::once(c.command.as_str()).chain(c.args.iter().map(String::as_str)).collect::<Vec<_>>().join(" ");
            let o = hub.devices.call(&c.target, &c.command, c.args, hub.config.command_timeout).await;
            hub.events.emit("command", &from, format!("{} {line} → {:?}: {}", c.target, o.status, String::from_utf8_lossy(&o.body)));
            let reply = Message::Reply(Reply { id: c.id, status: o.status, body: o.body });
            if let Ok(b) = reply.to_bytes() {
                let _ = out.send(Out::Msg(b)).await;
            }
        });
        while self.tasks.try_join_next().is_some() {}
    }

    fn publish(&mut self, p: framewire_proto::Publish) {
        let max_latency_us = p.max_latency_ms as i64 * 1000;
        if let Some(existing) = self.publishing.get_mut(&p.stream) {
            existing.max_latency_us = max_latency_us;
            return;
        }
        let stream = self.hub.streams.get_or_create(&p.stream);
        stream.publishers.fetch_add(1, Ordering::Relaxed);
        self.client.add_role(role::PUBLISHER);
        self.hub
            .events
            .emit("stream", &self.sender, format!("publishing {}", p.stream));
        tracing::info!(stream = %p.stream, from = %self.sender, max_latency_ms = p.max_latency_ms, "publisher joined");
        self.publishing.insert(
            p.stream,
            Publishing {
                stream,
                max_latency_us,
                last_seq: None,
            },
        );
    }

    async fn frame(&mut self, f: framewire_proto::Frame) {
        if !self.publishing.contains_key(&f.stream) {
            self.publish(framewire_proto::Publish {
                stream: f.stream.clone(),
                max_latency_ms: 0,
            });
        }
        let p = self
            .publishing
            .get_mut(&f.stream)
            .expect("registered above");
        if let Some(prev) = p.last_seq {
            if f.seq > prev + 1 {
                p.stream
                    .publisher_skipped
                    .fetch_add(f.seq - prev - 1, Ordering::Relaxed);
            }
        }
        p.last_seq = Some(f.seq);
        let (stream_name, seq) = (f.stream.clone(), f.seq);
        p.stream.publish(f, now_us(), p.max_latency_us);
        // Acknowledge every frame, kept or dropped, so the publisher's window reopens.
        self.send(Message::FrameAck(framewire_proto::FrameAck {
            stream: stream_name,
            seq,
        }))
        .await;
    }

    fn subscribe(&mut self, s: framewire_proto::Subscribe) {
        if let Some(old) = self.subscriptions.remove(&s.stream) {
            old.end();
        }
        let stream = self.hub.streams.get_or_create(&s.stream);
        self.client.add_role(role::SUBSCRIBER);
        tracing::info!(stream = %s.stream, from = %self.sender, window = s.window, "subscriber joined");
        self.subscriptions.insert(
            s.stream,
            Subscription::start(stream, s.window, self.out.clone()),
        );
    }
}
