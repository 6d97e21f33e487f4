//! The HTTP door: the dashboard and API ([`crate::web::router`]) served by hyper on connections
//! the gate admitted, with a deadline for the request headers and an idle deadline; HTTPS when
//! the hub has a certificate (each handshake in its connection's own task, within the same
//! deadline). A browser that speaks plain HTTP to the HTTPS port is told to use `https://`.
//!
//! Shutdown: the port closes, live responses (MJPEG, WebSocket) end, requests in flight (an
//! upload) finish within the grace period, then connections are closed.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::gate::Activity;
use crate::tls::TLS_HANDSHAKE_BYTE;
use crate::web::ServedOverHttps;
use crate::{Hub, HubHandle};

/// Most bytes of a plain HTTP request read on the HTTPS port before answering it.
const MAX_PLAIN_REQUEST: usize = 16 * 1024;

/// Accepts HTTP (or, with `tls`, HTTPS) connections until the hub stops.
pub(crate) async fn accept(listener: TcpListener, tls: Option<TlsAcceptor>, hub: Arc<Hub>) {
    let mut app = crate::web::router(HubHandle(Arc::clone(&hub)));
    if tls.is_some() {
        app = app.layer(axum::Extension(ServedOverHttps));
    }
    while let Some((tcp, peer, admission)) = super::admitted(&listener, &hub, "http", refuse).await
    {
        let _ = tcp.set_nodelay(true);
        let (app, tls, h) = (app.clone(), tls.clone(), Arc::clone(&hub));
        hub.gate.tracker.spawn(async move {
            let _admission = admission;
            match tls {
                None => serve(tcp, peer, app, &h).await,
                Some(acceptor) => {
                    let deadline = h.gate.first_bytes_deadline();
                    let opened = tokio::select! {
                        r = tokio::time::timeout_at(deadline, handshake(tcp, &acceptor)) => r,
                        _ = h.gate.stop.cancelled() => return,
                    };
                    match opened {
                        Ok(Ok(Some(tls))) => serve(tls, peer, app, &h).await,
                        Ok(Ok(None)) => tracing::debug!(%peer, "plain HTTP on the HTTPS port"),
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "HTTPS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "HTTPS handshake timed out"),
                    }
                }
            }
        });
    }
}

/// Serves one admitted connection: closed if its request headers do not arrive in time, if it
/// moves no byte for the idle timeout, or (after finishing what is in flight) at shutdown.
async fn serve<I>(io: I, peer: SocketAddr, app: Router, hub: &Hub)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::default());
    let io = Watched {
        inner: io,
        activity: Arc::clone(&activity),
    };
    let svc = TowerToHyperService::new(app.map_request(
        move |mut req: axum::http::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req
        },
    ));
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(hub.gate.handshake_timeout())
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = activity.idle(hub.gate.idle_timeout()) => {
            tracing::debug!(%peer, "idle HTTP connection closed");
            return;
        }
        _ = hub.gate.stop.cancelled() => {}
    }
    // Shutting down: no new request on this connection; the one in flight may finish, and once
    // the grace period is over it has a moment to send its answer (an upload: "kept").
    conn.as_mut().graceful_shutdown();
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = hub.gate.abort.cancelled() => {}
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
}

/// Over a limit: a 503 with the reason, then close.
async fn refuse(mut tcp: TcpStream, why: String) {
    let body = format!("{why}\n");
    let res = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        tcp.write_all(res.as_bytes()).await?;
        tcp.shutdown().await
    })
    .await;
}

/// The TLS handshake, or `None` after telling a plain HTTP client to use `https://`.
async fn handshake(
    stream: TcpStream,
    acceptor: &TlsAcceptor,
) -> std::io::Result<Option<tokio_rustls::server::TlsStream<TcpStream>>> {
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

/// A socket that records when it last moved bytes, for the idle deadline.
struct Watched<I> {
    inner: I,
    activity: Arc<Activity>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
