//! The dashboard over TLS: a listener for `axum::serve` that hands over connections whose TLS
//! handshake is done.
//!
//! A background task accepts TCP connections and runs each handshake in a task of its own, within
//! the hub's handshake timeout, so one slow or silent client never holds up the others. A browser
//! that speaks plain HTTP to this port is told to use `https://`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::tls::TLS_HANDSHAKE_BYTE;

/// Handshakes in progress at once; past that, accepting waits (the kernel's backlog queues).
const MAX_HANDSHAKES: usize = 256;
/// Connections ready for axum but not yet taken.
const READY_QUEUE: usize = 64;
/// Most bytes of a plain HTTP request read before answering it.
const MAX_PLAIN_REQUEST: usize = 16 * 1024;

/// A TLS listener for [`axum::serve`].
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accepting: JoinHandle<()>,
}

impl TlsListener {
    /// Starts accepting on `listener`; each handshake must finish within `handshake_timeout`.
    ///
    /// # Errors
    /// The listener's address cannot be read.
    pub fn new(
        listener: TcpListener,
        acceptor: TlsAcceptor,
        handshake_timeout: Duration,
    ) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(READY_QUEUE);
        let accepting = tokio::spawn(accept_loop(listener, acceptor, handshake_timeout, tx));
        Ok(TlsListener {
            ready,
            local,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        // Closes the port: axum drops the listener when it shuts down.
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accept task ended (it never does on its own): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// The peer's address on a [`TlsListener`] connection, for `ConnectInfo` (axum provides
/// `ConnectInfo<SocketAddr>` for plain TCP listeners only).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, TlsListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

/// Marks requests that came over HTTPS (so the login cookie can be `Secure`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServedOverHttps;

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = Arc::clone(&handshakes).acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "HTTPS accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            let done = tokio::time::timeout(handshake_timeout, handshake(stream, &acceptor)).await;
            drop(permit);
            match done {
                Ok(Ok(Some(tls))) => {
                    let _ = ready.send((tls, peer)).await;
                }
                Ok(Ok(None)) => tracing::debug!(%peer, "plain HTTP on the HTTPS port"),
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "HTTPS handshake failed"),
                Err(_) => tracing::debug!(%peer, "HTTPS handshake timed out"),
            }
        });
    }
}

/// The TLS handshake, or `None` after telling a plain HTTP client to use `https://`.
async fn handshake(
    stream: TcpStream,
    acceptor: &TlsAcceptor,
) -> std::io::Result<Option<TlsStream<TcpStream>>> {
    let _ = stream.set_nodelay(true);
    let mut first = [0u8; 1];
    if stream.peek(&mut first).await? == 0 {
        return Ok(None);
    }
    if first[0] == TLS_HANDSHAKE_BYTE {
        return acceptor.accept(stream).await.map(Some);
    }
    refuse_plain_http(stream).await?;
    Ok(None)
}

/// Reads the request head (so closing does not reset the connection under the answer) and
/// answers 400 with the reason.
async fn refuse_plain_http(mut stream: TcpStream) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_PLAIN_REQUEST {
        if stream.read_buf(&mut head).await? == 0 {
            break;
        }
    }
    let host = std::str::from_utf8(&head)
        .ok()
        .and_then(|h| {
            h.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("host").then(|| v.trim().to_owned())
            })
        })
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        });
    let body = match host {
        Some(h) => format!("This is the hub's HTTPS port: open https://{h}/ instead.\n"),
        None => "This is the hub's HTTPS port: use https:// instead of http://.\n".to_owned(),
    };
    let res = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(res.as_bytes()).await?;
    stream.shutdown().await
}
