//! The connection to a hub: handshake, the background reader, and the simple request/answer
//! operations (ping, text, list). Uploads live in `upload.rs`, downloads in `download.rs`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use framewire_proto::{
    decode, ClockSample, ErrorMsg, Hello, List, ListEntry, Message, Ping, Pong, Text, Welcome,
    DEFAULT_MAX_PAYLOAD, MIN_VERSION, VERSION,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio::time::timeout;

use crate::error::{ClientError, Result};
use crate::tls::TlsOptions;
use crate::transport::{self, HubReader, HubWriter};

/// Entries asked for per [`List`] page.
const LIST_PAGE_LIMIT: u32 = 1000;

/// How to connect and how long to wait.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// This client's name, stored by the hub as the sender of uploaded files.
    pub name: String,
    /// Access token; empty when the hub needs none.
    pub token: String,
    /// Longest wait for the TCP connection to open.
    pub connect_timeout: Duration,
    /// Longest wait for the hub's `Welcome` once connected.
    pub handshake_timeout: Duration,
    /// Longest time without any progress while waiting for an answer or writing (a stuck hub
    /// turns into [`ClientError::Timeout`] after this).
    pub io_timeout: Duration,
    /// Connect with TLS, checking the hub's certificate as these options say; `None`: plain TCP.
    pub tls: Option<TlsOptions>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            name: "framewire-client".into(),
            token: String::new(),
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(30),
            tls: None,
        }
    }
}

/// The answer to one [`Client::ping`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingResult {
    /// Round-trip time, measured with the local monotonic clock.
    pub rtt: Duration,
    /// The hub's wall clock minus ours, in µs (± rtt/2).
    pub clock_offset_us: i64,
    /// The exchange's timestamps, to feed a [`framewire_proto::ClockEstimate`].
    pub sample: ClockSample,
}

/// What the background reader hands over: a message, or why reading stopped.
pub(crate) type Incoming = Result<Message>;

/// Most download bytes the reader queues ahead of their consumer before it stops reading the
/// socket (letting TCP push back on the hub). Only `Data` counts: the hub's other messages are
/// small and bounded by the requests in flight, so the reader never stalls on them and an
/// upload, which writes while answers arrive, cannot deadlock.
const MAX_QUEUED_DATA: usize = 32 << 20;

/// Download bytes queued between the reader and the consumer.
#[derive(Default)]
struct Inflow {
    bytes: AtomicUsize,
    drained: Notify,
}

/// A connection to a hub. One request runs at a time (methods take `&mut self`); an upload
/// pipelines many files inside one request.
///
/// Dropping the client closes the connection.
pub struct Client {
    pub(crate) addr: String,
    pub(crate) opts: ConnectOptions,
    pub(crate) welcome: Welcome,
    pub(crate) writer: HubWriter,
    pub(crate) incoming: mpsc::UnboundedReceiver<Incoming>,
    inflow: Arc<Inflow>,
    reader: JoinHandle<()>,
    next_id: u32,
    next_nonce: u64,
    /// Set once the connection is unusable; every later request fails with this reason.
    lost: Option<String>,
    /// Encoding buffer for small messages.
    pub(crate) out: BytesMut,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("addr", &self.addr)
            .field("hub", &self.welcome.hub_name)
            .field("lost", &self.lost)
            .finish_non_exhaustive()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Client {
    /// Connects to the hub at `addr` (`host:port`) and completes the handshake.
    ///
    /// # Errors
    /// [`ClientError::Connect`] or [`ClientError::ConnectTimeout`] if no TCP connection could be
    /// made, [`ClientError::Hub`] if the hub refused the handshake (bad token, unsupported
    /// version...), [`ClientError::Timeout`] if it did not answer within
    /// [`ConnectOptions::handshake_timeout`], [`ClientError::NotAHub`] if something else answered.
    /// With TLS: [`ClientError::NotTls`] if the port does not speak TLS,
    /// [`ClientError::FingerprintMismatch`] if the hub's certificate is not the pinned one,
    /// [`ClientError::Tls`] if it does not verify, [`ClientError::TlsSetup`] if the options cannot
    /// be used.
    pub async fn connect(addr: &str, opts: ConnectOptions) -> Result<Client> {
        let stream = match timeout(opts.connect_timeout, TcpStream::connect(addr)).await {
            Err(_) => {
                return Err(ClientError::ConnectTimeout {
                    addr: addr.to_owned(),
                    timeout: opts.connect_timeout,
                })
            }
            Ok(Err(error)) => {
                return Err(ClientError::Connect {
                    addr: addr.to_owned(),
                    error,
                })
            }
            Ok(Ok(s)) => s,
        };
        // Small control messages (offers, pings) must not wait for Nagle; data goes out in
        // whole chunks anyway.
        stream.set_nodelay(true)?;
        let deadline = Instant::now() + opts.handshake_timeout;
        let (mut rd, mut writer) = match &opts.tls {
            None => transport::plain(stream),
            Some(t) => transport::tls(
                crate::tls::handshake(stream, addr, t, deadline, opts.handshake_timeout).await?,
            ),
        };

        let hello = Message::Hello(Hello {
            version: VERSION,
            name: opts.name.clone(),
            token: opts.token.clone(),
        });
        let mut out = BytesMut::with_capacity(4096);
        hello.encode(&mut out)?;
        let timed_out = || ClientError::Timeout {
            what: "the hub's Welcome",
            after: opts.handshake_timeout,
        };
        tokio::time::timeout_at(deadline.into(), async {
            writer.write_all(&out).await?;
            writer.flush().await
        })
        .await
        .map_err(|_| timed_out())??;
        out.clear();

        let mut buf = BytesMut::with_capacity(64 << 10);
        let first = loop {
            match decode(&mut buf, DEFAULT_MAX_PAYLOAD) {
                Ok(Some(m)) => break m,
                Ok(None) => {}
                Err(e) => {
                    return Err(ClientError::NotAHub {
                        addr: addr.to_owned(),
                        reason: e.to_string(),
                    })
                }
            }
            let n = tokio::time::timeout_at(deadline.into(), rd.read_buf(&mut buf))
                .await
                .map_err(|_| timed_out())??;
            if n == 0 {
                return Err(ClientError::ConnectionLost(
                    "the hub closed the connection during the handshake".into(),
                ));
            }
        };
        let welcome = match first {
            Message::Welcome(w) => w,
            Message::Error(e) => {
                return Err(ClientError::Hub {
                    code: e.code,
                    message: e.message,
                })
            }
            other => {
                return Err(ClientError::NotAHub {
                    addr: addr.to_owned(),
                    reason: format!("it answered the handshake with {}", other.name()),
                })
            }
        };
        if !(MIN_VERSION..=VERSION).contains(&welcome.version) {
            return Err(ClientError::Protocol(format!(
                "the hub chose protocol version {}, this client speaks {MIN_VERSION} to {VERSION}",
                welcome.version
            )));
        }
        tracing::debug!(addr, hub = %welcome.hub_name, "connected");

        let (tx, incoming) = mpsc::unbounded_channel();
        // The hub never sends more than its own payload limit on purpose; allow at least the
        // default so a hub with a small limit can still send full chunks on downloads.
        let max_payload = welcome.max_payload.max(DEFAULT_MAX_PAYLOAD);
        let inflow = Arc::new(Inflow::default());
        let reader = tokio::spawn(read_messages(rd, buf, max_payload, tx, inflow.clone()));
        Ok(Client {
            addr: addr.to_owned(),
            opts,
            welcome,
            writer,
            incoming,
            inflow,
            reader,
            next_id: 1,
            next_nonce: 1,
            lost: None,
            out,
        })
    }

    /// The hub's handshake answer: its name, limits and clock.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// The address this client connected to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Measures the round trip to the hub and the offset between its clock and ours.
    ///
    /// # Errors
    /// [`ClientError::Timeout`] if no answer arrives within the I/O timeout, or any connection
    /// error.
    pub async fn ping(&mut self) -> Result<PingResult> {
        let nonce = self.next_nonce;
        self.next_nonce += 1;
        let sent_us = now_us();
        let started = Instant::now();
        self.send(&Message::Ping(Ping {
            nonce,
            time_us: sent_us,
        }))
        .await?;
        loop {
            match self.recv("Pong").await? {
                Message::Pong(p) if p.nonce == nonce => {
                    let rtt = started.elapsed();
                    let sample = ClockSample {
                        sent_us,
                        remote_us: p.time_us,
                        received_us: now_us(),
                    };
                    return Ok(PingResult {
                        rtt,
                        clock_offset_us: sample.offset_us(),
                        sample,
                    });
                }
                other => self.stray(other),
            }
        }
    }

    /// Sends a text message and returns the hub's answer (an echo of the text).
    ///
    /// # Errors
    /// [`ClientError::Hub`] if the hub answers with an error, [`ClientError::Timeout`] if it does
    /// not answer, or any connection error.
    pub async fn message(&mut self, text: &str) -> Result<String> {
        let id = self.alloc_id();
        self.send(&Message::Text(Text {
            id,
            text: text.to_owned(),
        }))
        .await?;
        loop {
            match self.recv("the Text answer").await? {
                Message::Text(t) if t.id == id => return Ok(t.text),
                Message::Error(e) if e.id == id => return Err(hub_error(e)),
                other => self.stray(other),
            }
        }
    }

    /// Lists every stored file whose path starts with `prefix` (empty for all), in path order.
    /// Large listings are fetched page by page.
    ///
    /// # Errors
    /// [`ClientError::Hub`] if the hub refuses the listing, [`ClientError::Timeout`] if a page
    /// does not arrive, or any connection error.
    pub async fn list(&mut self, prefix: &str) -> Result<Vec<ListEntry>> {
        let mut entries: Vec<ListEntry> = Vec::new();
        loop {
            let id = self.alloc_id();
            let after = entries.last().map(|e| e.path.clone()).unwrap_or_default();
            self.send(&Message::List(List {
                id,
                limit: LIST_PAGE_LIMIT,
                prefix: prefix.to_owned(),
                after: after.clone(),
            }))
            .await?;
            let page = loop {
                match self.recv("a ListPage").await? {
                    Message::ListPage(p) if p.id == id => break p,
                    Message::Error(e) if e.id == id => return Err(hub_error(e)),
                    other => self.stray(other),
                }
            };
            let more = page.more;
            let got = page.entries.len();
            entries.extend(page.entries);
            if !more {
                return Ok(entries);
            }
            if got == 0 || entries.last().map(|e| e.path.as_str()) <= Some(after.as_str()) {
                // A page that says "more" but does not advance would loop forever.
                return Err(self.lose(ClientError::Protocol(
                    "the hub's listing does not advance".into(),
                )));
            }
        }
    }

    /// Closes the connection politely (the hub sees an orderly end of stream).
    ///
    /// # Errors
    /// Only if shutting down the socket fails, which is harmless.
    pub async fn close(mut self) -> Result<()> {
        self.writer.shutdown().await?;
        Ok(())
    }

    // ---- plumbing shared by every operation ----

    /// A fresh request id: never 0 (that means "the connection"), unique among outstanding ones.
    pub(crate) fn alloc_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        id
    }

    /// Fails if the connection was lost earlier.
    pub(crate) fn check_alive(&self) -> Result<()> {
        match &self.lost {
            Some(why) => Err(ClientError::ConnectionLost(why.clone())),
            None => Ok(()),
        }
    }

    /// Records that the connection is unusable and passes the error on.
    pub(crate) fn lose(&mut self, e: ClientError) -> ClientError {
        if self.lost.is_none() {
            self.lost = Some(e.to_string());
        }
        e
    }

    /// Encodes and writes one message, bounded by the I/O timeout.
    pub(crate) async fn send(&mut self, msg: &Message) -> Result<()> {
        self.check_alive()?;
        self.out.clear();
        msg.encode(&mut self.out)?;
        self.flush_out().await
    }

    /// Writes whatever is in the small-message buffer.
    pub(crate) async fn flush_out(&mut self) -> Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let r = write_timed(&mut self.writer, &self.out, self.opts.io_timeout).await;
        self.out.clear();
        r.map_err(|e| self.lose(e))
    }

    /// The next message from the hub, bounded by the I/O timeout. Pings from the hub are
    /// answered here; a connection-level error ends the connection.
    pub(crate) async fn recv(&mut self, what: &'static str) -> Result<Message> {
        self.check_alive()?;
        loop {
            let next = match timeout(self.opts.io_timeout, self.incoming.recv()).await {
                Err(_) => {
                    return Err(ClientError::Timeout {
                        what,
                        after: self.opts.io_timeout,
                    })
                }
                Ok(n) => n,
            };
            match self.accept_incoming(next)? {
                Some(Message::Ping(p)) => self.answer_ping(p).await?,
                Some(m) => return Ok(m),
                None => {}
            }
        }
    }

    /// Turns what the reader delivered into a message, or the error that ends the connection.
    /// `Ok(None)`: nothing to act on.
    pub(crate) fn accept_incoming(&mut self, next: Option<Incoming>) -> Result<Option<Message>> {
        match next {
            None => Err(self.lose(ClientError::ConnectionLost(
                "the connection's reader stopped".into(),
            ))),
            Some(Err(e)) => Err(self.lose(e)),
            Some(Ok(Message::Error(e))) if e.id == 0 => Err(self.lose(hub_error(e))),
            Some(Ok(m)) => {
                if let Message::Data(d) = &m {
                    self.inflow.bytes.fetch_sub(d.bytes.len(), Ordering::AcqRel);
                    self.inflow.drained.notify_one();
                }
                Ok(Some(m))
            }
        }
    }

    pub(crate) async fn answer_ping(&mut self, p: Ping) -> Result<()> {
        self.send(&Message::Pong(Pong {
            nonce: p.nonce,
            ping_time_us: p.time_us,
            time_us: now_us(),
        }))
        .await
    }

    /// A message nobody is waiting for (a late answer to a request that timed out, say).
    pub(crate) fn stray(&self, m: Message) {
        tracing::debug!(
            message = m.name(),
            "ignoring a message no request is waiting for"
        );
    }
}

pub(crate) fn hub_error(e: ErrorMsg) -> ClientError {
    ClientError::Hub {
        code: e.code,
        message: e.message,
    }
}

/// Writes all of `buf` and flushes it (TLS buffers; plain TCP does not), failing if the hub stops
/// reading for longer than `limit`.
pub(crate) async fn write_timed(w: &mut HubWriter, buf: &[u8], limit: Duration) -> Result<()> {
    let write = async {
        w.write_all(buf).await?;
        w.flush().await
    };
    match timeout(limit, write).await {
        Err(_) => Err(ClientError::Timeout {
            what: "the hub to take our data",
            after: limit,
        }),
        Ok(r) => Ok(r?),
    }
}

/// Wall clock in µs since the Unix epoch (for clock comparisons with the hub).
pub(crate) fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Decodes messages from the socket and hands them over until the stream ends or breaks; the
/// last thing sent is always the reason it stopped.
async fn read_messages(
    mut rd: HubReader,
    mut buf: BytesMut,
    max_payload: u32,
    tx: mpsc::UnboundedSender<Incoming>,
    inflow: Arc<Inflow>,
) {
    loop {
        match decode(&mut buf, max_payload) {
            Ok(Some(m)) => {
                if let Message::Data(d) = &m {
                    inflow.bytes.fetch_add(d.bytes.len(), Ordering::AcqRel);
                }
                if tx.send(Ok(m)).is_err() {
                    return;
                }
                // `notify_one` keeps a permit when nobody waits, so no wake-up is lost.
                while inflow.bytes.load(Ordering::Acquire) > MAX_QUEUED_DATA {
                    inflow.drained.notified().await;
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                let _ = tx.send(Err(ClientError::Decode(e)));
                return;
            }
        }
        if buf.capacity() - buf.len() < 16 << 10 {
            buf.reserve(256 << 10);
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) => {
                let why = if buf.is_empty() {
                    "the hub closed the connection"
                } else {
                    "the hub closed the connection in the middle of a message"
                };
                let _ = tx.send(Err(ClientError::ConnectionLost(why.into())));
                return;
            }
            Ok(_) => {}
            Err(e) => {
                let _ = tx.send(Err(ClientError::Io(e)));
                return;
            }
        }
    }
}
