//! One native client connection, in rooms by job:
//!
//! - `transport.rs`: TLS or plain, and refusals before the handshake;
//! - `handshake.rs`: `Hello` → token → `Welcome`;
//! - `writer.rs`: the writer task and its bounded queue;
//! - `session.rs`: the read loop, idle deadline, shutdown drain and close;
//! - `dispatch.rs`: permissions and which handler a message goes to;
//! - `upload.rs`, `download.rs`, `delete.rs`, `live.rs`: the handlers (uploads and deletes go to
//!   the hub's pipeline).

mod delete;
mod dispatch;
mod download;
mod follow;
mod handshake;
mod live;
mod session;
mod transport;
mod upload;
mod writer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use framewire_proto::{DecodeError, ErrorCode, Message, Welcome, HTTP_REFUSAL, VERSION};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use handshake::{read_hello, HandshakeEnd};
use session::Session;
use transport::{open_tls, refuse_plaintext, Opened};
use writer::send_fatal;

pub(crate) use transport::refuse;
pub(crate) use writer::{NotSent, Out, Outbox};

use crate::Hub;

pub(crate) fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Why a connection ended early; sent to the client as a connection-level `Error`.
pub(super) struct Fatal {
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

/// Serves one plain TCP client.
pub(crate) async fn serve_tcp(stream: TcpStream, peer: SocketAddr, hub: Arc<Hub>) {
    let deadline = hub.gate.first_bytes_deadline();
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    serve_connection(rd, wr, peer, hub, deadline).await;
}

/// Serves one client of a TLS port: the TLS handshake, then the framewire one, both within the
/// handshake timeout. A plaintext client is answered in plaintext: told to use TLS.
pub(crate) async fn serve_tls(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    hub: Arc<Hub>,
) {
    let deadline = hub.gate.first_bytes_deadline();
    let _ = stream.set_nodelay(true);
    let opened = tokio::select! {
        o = open_tls(stream, &acceptor, deadline) => o,
        // Shutdown does not wait for a handshake that has not finished.
        _ = hub.gate.stop.cancelled() => return,
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
    serve_connection(rd, wr, peer, hub, deadline).await;
}

/// Serves one client until it leaves, breaks the protocol, or the hub shuts down; the handshake
/// must be complete by `deadline`.
async fn serve_connection<R, W>(
    mut rd: R,
    mut wr: W,
    peer: SocketAddr,
    hub: Arc<Hub>,
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
        tracing::warn!(%peer, client = %crate::untrusted::shown(&hello.name), "refused: missing or wrong token");
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
        crate::untrusted::clean_name(&hello.name)
    };
    // With tokens, uploads are attributed to the token's name, which the client cannot choose.
    let sender = if who.name.is_empty() {
        format!("{name}@{}", peer.ip())
    } else {
        format!("{}@{}", who.name, peer.ip())
    };
    let version = VERSION.min(hello.version);
    let welcome = Message::Welcome(Welcome {
        version,
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
    hub.events.emit(
        "connect",
        &sender,
        format!("connected (protocol v{version})"),
    );
    let (session, writer) = Session::start(
        Arc::clone(&hub),
        wr,
        &name,
        peer,
        sender.clone(),
        who,
        version,
    );
    let conn_id = session.conn_id;
    session.serve(&mut rd, buf).await;
    let _ = writer.await;
    hub.clients.remove(conn_id);
    hub.events.emit("disconnect", &sender, "disconnected");
    tracing::info!(%peer, client = %name, "client disconnected");
}
