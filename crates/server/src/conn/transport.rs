//! What arrives on a native port before the framewire handshake: a TLS handshake on a TLS port,
//! a plaintext client on a TLS port (told to use TLS), a TLS client on a plain port (told not to),
//! and connections over a limit (told why).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use framewire_proto::{ErrorCode, HTTP_REFUSAL};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use super::handshake::{read_hello, HandshakeEnd};
use super::writer::send_fatal;
use super::Fatal;
use crate::Hub;

/// What a client that spoke TLS to a plain port is told (its TLS library will not show it, but a
/// packet capture or a hand-written client does).
pub(super) const PLAIN_PORT: &str = "this port is plain TCP (no TLS): connect without --tls";
/// What a plaintext client on a TLS port is told.
const TLS_PORT: &str =
    "this port requires TLS: connect with --tls (and --tls-fingerprint or --tls-ca)";

/// A TLS port's connection after its first byte.
pub(super) enum Opened {
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// Not a TLS client: nothing was read.
    Plain(TcpStream),
    Failed(String),
}

/// Completes the TLS handshake by `deadline`, unless the peer is not speaking TLS at all.
pub(super) async fn open_tls(
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
pub(super) async fn refuse_plaintext<R, W>(
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

/// Reads the rest of a TLS client's first record (its ClientHello), for a moment at most, so that
/// closing after the answer does not reset the connection under it.
pub(super) async fn read_client_hello<R: AsyncRead + Unpin>(rd: &mut R, buf: &mut BytesMut) {
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
