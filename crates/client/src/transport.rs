//! The two halves of a connection to a hub, plain TCP or TLS.
//!
//! An enum rather than a boxed trait object: plain TCP goes straight to the socket's own halves
//! (no lock, no indirection beyond one match), TLS through `tokio::io::split`.

use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// The reading half of a connection.
pub(crate) enum HubReader {
    Plain(OwnedReadHalf),
    Tls(ReadHalf<TlsStream<TcpStream>>),
}

/// The writing half of a connection. Bytes written to a TLS stream may wait in its buffer until
/// flushed, so callers flush after each batch (a no-op on plain TCP).
pub(crate) enum HubWriter {
    Plain(OwnedWriteHalf),
    Tls(WriteHalf<TlsStream<TcpStream>>),
}

/// Splits a plain TCP connection.
pub(crate) fn plain(stream: TcpStream) -> (HubReader, HubWriter) {
    let (r, w) = stream.into_split();
    (HubReader::Plain(r), HubWriter::Plain(w))
}

/// Splits a TLS connection.
pub(crate) fn tls(stream: TlsStream<TcpStream>) -> (HubReader, HubWriter) {
    let (r, w) = tokio::io::split(stream);
    (HubReader::Tls(r), HubWriter::Tls(w))
}

impl AsyncRead for HubReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            HubReader::Plain(r) => Pin::new(r).poll_read(cx, buf),
            HubReader::Tls(r) => Pin::new(r).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for HubWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            HubWriter::Plain(w) => Pin::new(w).poll_write(cx, buf),
            HubWriter::Tls(w) => Pin::new(w).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            HubWriter::Plain(w) => Pin::new(w).poll_write_vectored(cx, bufs),
            HubWriter::Tls(w) => Pin::new(w).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            HubWriter::Plain(w) => w.is_write_vectored(),
            HubWriter::Tls(w) => w.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            HubWriter::Plain(w) => Pin::new(w).poll_flush(cx),
            HubWriter::Tls(w) => Pin::new(w).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            HubWriter::Plain(w) => Pin::new(w).poll_shutdown(cx),
            HubWriter::Tls(w) => Pin::new(w).poll_shutdown(cx),
        }
    }
}
