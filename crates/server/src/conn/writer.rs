//! The writer task: owns the socket's write half and drains a bounded queue of encoded messages,
//! so answers produced elsewhere (group commits finishing, downloads streaming, frames fanned out)
//! never block the reader.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use framewire_proto::{ErrorMsg, Message};
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::Fatal;
use crate::clients::ClientEntry;
use crate::gate::Activity;
use crate::Hub;

/// What the writer task writes: an encoded message, or a frame's head and its shared payload.
pub(crate) enum Out {
    Msg(Bytes),
    Frame(Bytes, Bytes),
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

/// Writes queued messages until the queue closes, or until the socket takes no write for
/// `write_timeout` (a peer that stopped reading): then it returns, dropping the queue, so every
/// sender fails at once and the session closes instead of waiting on a full queue forever.
pub(super) async fn write_loop<W: AsyncWrite + Unpin>(
    wr: W,
    mut rx: mpsc::Receiver<Out>,
    write_timeout: Duration,
    hub: Arc<Hub>,
    client: Arc<ClientEntry>,
    activity: Arc<Activity>,
) {
    let mut w = BufWriter::with_capacity(256 * 1024, wr);
    while let Some(o) = rx.recv().await {
        let Ok(Ok(mut n)) = timeout(write_timeout, write_out(&mut w, &o)).await else {
            return;
        };
        while let Ok(o) = rx.try_recv() {
            match timeout(write_timeout, write_out(&mut w, &o)).await {
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
