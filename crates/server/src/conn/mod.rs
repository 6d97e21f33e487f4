//! One client connection: handshake, then a loop that decodes messages and acts on them.
//!
//! The socket is split: this task reads and decides; a writer task owns the write half and drains
//! a bounded queue of encoded messages, so answers produced elsewhere (group commits finishing,
//! downloads streaming) never block the reader. Memory per connection is bounded by the read
//! buffer (one message, at most `max_payload`), the outgoing queue and the spool queue.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use framewire_proto::{
    check_preface, decode, DecodeError, ErrorCode, ErrorMsg, Hello, Message, Pong, Preface,
    Rejected, Text, Welcome, HTTP_REFUSAL, MAX_HELLO_PAYLOAD, VERSION,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::auth::Perms;
use crate::clients::{role, ClientEntry};
use crate::store::Refusal;
use crate::Hub;

/// What the writer task writes: an encoded message, or a frame's head and its shared payload
/// (written one after the other, so the payload is never copied).
mod download;
mod live;
mod upload;

use live::{Publishing, Subscription};
use upload::Uploads;

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

/// What a client that spoke TLS to a plain port is told (its TLS library will not show it, but a
/// packet capture or a hand-written client does).
const PLAIN_PORT: &str = "this port is plain TCP (no TLS): connect without --tls";
/// What a plaintext client on a TLS port is told.
const TLS_PORT: &str =
    "this port requires TLS: connect with --tls (and --tls-fingerprint or --tls-ca)";

/// Serves one plain TCP client.
pub(crate) async fn serve_tcp(
    stream: TcpStream,
    peer: SocketAddr,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
) {
    let deadline = tokio::time::Instant::now() + hub.config.handshake_timeout;
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    serve_connection(rd, wr, peer, hub, shutdown, deadline).await;
}

/// Serves one client of a TLS port: the TLS handshake, then the framewire one, both within the
/// handshake timeout. A plaintext client is answered in plaintext: told to use TLS.
pub(crate) async fn serve_tls(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
) {
    let deadline = tokio::time::Instant::now() + hub.config.handshake_timeout;
    let _ = stream.set_nodelay(true);
    let opened = tokio::select! {
        o = open_tls(stream, &acceptor, deadline) => o,
        // Shutdown does not wait for a handshake that has not finished.
        _ = shutdown.cancelled() => return,
    };
    let stream = match opened {
        Opened::Tls(s) => s,
        Opened::Plain(stream) => {
            let (rd, wr) = stream.into_split();
            refuse_plaintext(rd, wr, peer, &hub, deadline).await;
            return;
        }
        Opened::Failed(why) => {
            tracing::debug!(%peer, reason = %why, "TLS handshake failed");
            return;
        }
    };
    let (rd, wr) = tokio::io::split(*stream);
    serve_connection(rd, wr, peer, hub, shutdown, deadline).await;
}

/// A TLS port's connection after its first byte.
enum Opened {
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// Not a TLS client: nothing was read.
    Plain(TcpStream),
    Failed(String),
}

/// Completes the TLS handshake by `deadline`, unless the peer is not speaking TLS at all.
async fn open_tls(
    stream: TcpStream,
    acceptor: &TlsAcceptor,
    deadline: tokio::time::Instant,
) -> Opened {
    let mut first = [0u8; 1];
    match tokio::time::timeout_at(deadline, stream.peek(&mut first)).await {
        Ok(Ok(1)) => {}
        Ok(Ok(_)) => return Opened::Failed("closed before the handshake".into()),
        Ok(Err(e)) => return Opened::Failed(e.to_string()),
        Err(_) => return Opened::Failed("no handshake within the time limit".into()),
    }
    if first[0] != crate::tls::TLS_HANDSHAKE_BYTE {
        return Opened::Plain(stream);
    }
    match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
        Ok(Ok(s)) => Opened::Tls(Box::new(s)),
        Ok(Err(e)) => Opened::Failed(e.to_string()),
        Err(_) => Opened::Failed("no TLS handshake within the time limit".into()),
    }
}

/// Tells a plaintext client on a TLS port to use TLS: a browser gets the HTTP 400 text, a
/// framewire client an `Error` after its whole `Hello` was read (so the close is clean and the
/// client reads the reason, instead of a reset).
async fn refuse_plaintext<R, W>(
    mut rd: R,
    mut wr: W,
    peer: SocketAddr,
    hub: &Hub,
    deadline: tokio::time::Instant,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = BytesMut::with_capacity(1024);
    let r = tokio::time::timeout_at(deadline, read_hello(&mut rd, &mut buf, hub)).await;
    tracing::info!(%peer, "refused: plaintext client on the TLS port");
    match r {
        Ok(Err(HandshakeEnd::Http)) => {
            let _ = wr.write_all(HTTP_REFUSAL).await;
            let _ = wr.shutdown().await;
        }
        Ok(Err(HandshakeEnd::Closed)) => {}
        Ok(Ok(_)) => send_fatal(&mut wr, Fatal::new(ErrorCode::UnsupportedVersion, TLS_PORT)).await,
        Ok(Err(HandshakeEnd::Fatal(_))) | Err(_) => {
            send_fatal(&mut wr, Fatal::new(ErrorCode::NotFramewire, TLS_PORT)).await
        }
    }
}

/// Serves one client until it leaves, breaks the protocol, or the hub shuts down; the handshake
/// must be complete by `deadline`.
pub(crate) async fn serve_connection<R, W>(
    mut rd: R,
    mut wr: W,
    peer: SocketAddr,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
    deadline: tokio::time::Instant,
) where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let hello = match tokio::time::timeout_at(deadline, read_hello(&mut rd, &mut buf, &hub)).await {
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
    let Some(who) = hub.config.tokens.check(&hello.token) else {
        tracing::warn!(%peer, client = %hello.name, "refused: missing or wrong token");
        let msg = if hello.token.is_empty() {
            "this hub requires a token (--token or FRAMEWIRE_TOKEN)"
        } else {
            "wrong token"
        };
        send_fatal(&mut wr, Fatal::new(ErrorCode::Unauthorized, msg)).await;
        return;
    };
    let name = if hello.name.is_empty() {
        "anonymous".to_owned()
    } else {
        hello.name.clone()
    };
    // With tokens, uploads are attributed to the token's name, which the client cannot choose.
    let sender = if who.name.is_empty() {
        format!("{name}@{}", peer.ip())
    } else {
        format!("{}@{}", who.name, peer.ip())
    };
    let welcome = Message::Welcome(Welcome {
        version: VERSION.min(hello.version),
        hub_time_us: now_us(),
        max_payload: hub.config.max_payload,
        max_file_size: hub.config.max_file_size,
        chunk_size: hub.config.chunk_size,
        max_inflight: hub.config.max_inflight,
        hub_name: hub.config.hub_name.clone(),
    });
    // Flush: a TLS stream holds written bytes until flushed (plain TCP's flush does nothing).
    let sent = async {
        wr.write_all(&welcome.to_bytes().expect("welcome encodes"))
            .await?;
        wr.flush().await
    };
    if sent.await.is_err() {
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
    let activity = Arc::new(Activity::new());
    let writer = tokio::spawn(write_loop(
        wr,
        out_rx,
        Arc::clone(&hub),
        Arc::clone(&client),
        Arc::clone(&activity),
    ));
    let mut session = Session {
        hub: Arc::clone(&hub),
        out: out_tx,
        sender: sender.clone(),
        perms: who.perms,
        activity: Arc::clone(&activity),
        client,
        conn_id,
        publishing: HashMap::new(),
        subscriptions: HashMap::new(),
        uploads: Uploads::new(),
        tasks: JoinSet::new(),
    };
    let end = session.run(&mut rd, buf, &shutdown).await;
    session.close(end).await;
    let _ = writer.await;
    hub.clients.remove(conn_id);
    hub.events.emit("disconnect", &sender, "disconnected");
    tracing::info!(%peer, client = %name, "client disconnected");
}

/// Tells a connection over a limit why it is closed (an `Error{Busy}`), within a second (two
/// for a TLS port, whose handshake comes first).
pub(crate) async fn refuse(stream: TcpStream, tls: Option<TlsAcceptor>, why: String) {
    let busy = Fatal::new(ErrorCode::Busy, why);
    let Some(acceptor) = tls else {
        let (_rd, mut wr) = stream.into_split();
        let _ = tokio::time::timeout(Duration::from_secs(1), send_fatal(&mut wr, busy)).await;
        return;
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    match open_tls(stream, &acceptor, deadline).await {
        Opened::Tls(mut s) => {
            let _ = tokio::time::timeout_at(deadline, send_fatal(&mut s, busy)).await;
        }
        Opened::Plain(s) => {
            let (_rd, mut wr) = s.into_split();
            let _ = tokio::time::timeout_at(deadline, send_fatal(&mut wr, busy)).await;
        }
        Opened::Failed(_) => {}
    }
}

enum HandshakeEnd {
    Http,
    Closed,
    Fatal(Fatal),
}

async fn read_hello<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    hub: &Hub,
) -> Result<Hello, HandshakeEnd> {
    loop {
        if buf.first() == Some(&crate::tls::TLS_HANDSHAKE_BYTE) {
            // A TLS client on a plain port (a framewire Hello starts 01 00).
            read_client_hello(rd, buf).await;
            return Err(HandshakeEnd::Fatal(Fatal::new(
                ErrorCode::NotFramewire,
                PLAIN_PORT,
            )));
        }
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

/// Reads the rest of a TLS client's first record (its ClientHello), for a moment at most, so that
/// closing after the answer does not reset the connection under it.
async fn read_client_hello<R: AsyncRead + Unpin>(rd: &mut R, buf: &mut BytesMut) {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(250);
    loop {
        let record = match buf.get(3..5) {
            Some(n) => 5 + usize::from(u16::from_be_bytes([n[0], n[1]])),
            None => 5,
        };
        if buf.len() >= record {
            return;
        }
        match tokio::time::timeout_at(deadline, rd.read_buf(buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return,
        }
    }
}

async fn send_fatal<W: AsyncWrite + Unpin>(wr: &mut W, f: Fatal) {
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

async fn write_out<W: AsyncWrite + Unpin>(w: &mut BufWriter<W>, o: &Out) -> std::io::Result<usize> {
    match o {
        Out::Msg(b) => w.write_all(b).await.map(|_| b.len()),
        Out::Frame(head, payload) => {
            w.write_all(head).await?;
            w.write_all(payload).await?;
            Ok(head.len() + payload.len())
        }
    }
}

/// When a connection last moved bytes either way (for the idle timeout): a long download or a
/// busy subscriber is not idle even if the client sends nothing.
struct Activity {
    start: std::time::Instant,
    last_ms: std::sync::atomic::AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: std::time::Instant::now(),
            last_ms: Default::default(),
        }
    }

    fn touch(&self) {
        self.last_ms
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// When the connection becomes idle, if nothing happens before.
    fn deadline(&self, idle: Duration) -> tokio::time::Instant {
        let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        tokio::time::Instant::from_std(last + idle)
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    wr: W,
    mut rx: mpsc::Receiver<Out>,
    hub: Arc<Hub>,
    client: Arc<ClientEntry>,
    activity: Arc<Activity>,
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
        activity.touch();
    }
    let _ = w.shutdown().await;
}

struct Session {
    hub: Arc<Hub>,
    out: mpsc::Sender<Out>,
    sender: String,
    /// What this connection's token allows.
    perms: Perms,
    activity: Arc<Activity>,
    client: Arc<ClientEntry>,
    conn_id: u64,
    publishing: HashMap<String, Publishing>,
    subscriptions: HashMap<String, Subscription>,
    uploads: Uploads,
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

    async fn run<R: AsyncRead + Unpin>(
        &mut self,
        rd: &mut R,
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
                _ = tokio::time::sleep_until(self.activity.deadline(self.hub.config.idle_timeout)) => {
                    // The deadline may have moved (the writer was busy) while we slept.
                    if tokio::time::Instant::now() >= self.activity.deadline(self.hub.config.idle_timeout) {
                        let secs = self.hub.config.idle_timeout.as_secs();
                        return End::Fatal(Fatal::new(ErrorCode::Timeout, format!("idle for {secs} s; closing")));
                    }
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
                        self.hub.stats.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                        self.client.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                    }
                },
            }
        }
    }

    /// Refuses what this connection's token does not allow: requests with an id get an answer
    /// for that id, live roles end the connection.
    async fn permitted(&self, msg: &Message) -> Result<bool, Fatal> {
        let (need, id) = match msg {
            Message::Offer(o) => (Perms::UPLOAD, Some(o.id)),
            Message::Get(g) => (Perms::DOWNLOAD, Some(g.id)),
            Message::List(l) => (Perms::DOWNLOAD, Some(l.id)),
            Message::Command(c) => (Perms::COMMAND, Some(c.id)),
            Message::RegisterDevice(_)
            | Message::Publish(_)
            | Message::Frame(_)
            | Message::Reply(_) => (Perms::PUBLISH, None),
            Message::Subscribe(_) => (Perms::SUBSCRIBE, None),
            _ => return Ok(true),
        };
        if self.perms.allows(need) {
            return Ok(true);
        }
        let why = format!("this token may not {}", need.name());
        match (msg, id) {
            (Message::Offer(_), Some(id)) => {
                self.reject(id, Refusal::new(ErrorCode::Forbidden, why))
                    .await;
                Ok(false)
            }
            (_, Some(id)) => {
                self.send(Message::Error(ErrorMsg {
                    code: ErrorCode::Forbidden,
                    id,
                    message: why,
                }))
                .await;
                Ok(false)
            }
            _ => Err(Fatal::new(ErrorCode::Forbidden, why)),
        }
    }

    async fn handle(&mut self, msg: Message) -> Result<(), Fatal> {
        if !self.permitted(&msg).await? {
            return Ok(());
        }
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
            Message::Subscribe(s) => self.subscribe(s)?,
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
        self.close_uploads().await;
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
        // Uploads already handed to the committer are answered when it is done with them.
        let _ = tokio::time::timeout(grace, async {
            while self.uploads.committing() > 0 {
                match self.uploads.results.recv().await {
                    Some(c) => self.committed(c).await,
                    None => break,
                }
            }
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
