//! Downloads and listings: `Get` streams a stored file, `List` pages through the index.
//!
//! A connection's Gets are answered one after another, in the order asked, so one file's `Data`
//! never interleaves with another's.

use std::io::Read;
use std::sync::Arc;

use bytes::BytesMut;
use framewire_proto::{
    encode_data_head, ErrorCode, ErrorMsg, FileInfo, Get, ListEntry, ListPage, Message, RemotePath,
};
use tokio::sync::mpsc;

use super::session::Session;
use super::writer::Outbox;
use super::Out;
use crate::store::Refusal;
use crate::Hub;

/// Largest page of a listing; also the page size of a `List` with limit 0.
const MAX_LIST_PAGE: usize = 1000;
/// Gets waiting behind the one being answered.
const GET_QUEUE: usize = 64;

impl Session {
    pub(super) async fn get(&mut self, g: Get) {
        if self.gets.is_none() {
            let (tx, mut rx) = mpsc::channel::<Get>(GET_QUEUE);
            let (hub, out) = (Arc::clone(&self.hub), self.out.clone());
            self.tasks.spawn(async move {
                while let Some(g) = rx.recv().await {
                    if serve_get(&hub, &out, g).await.is_err() {
                        return;
                    }
                }
            });
            self.gets = Some(tx);
        }
        let id = g.id;
        if let Err(mpsc::error::TrySendError::Full(_)) =
            self.gets.as_ref().expect("started above").try_send(g)
        {
            self.send(Message::Error(ErrorMsg {
                code: ErrorCode::Busy,
                id,
                message: format!("more than {GET_QUEUE} downloads queued; wait for answers"),
            }))
            .await;
        }
    }

    pub(super) async fn list(&mut self, l: framewire_proto::List) {
        let limit = match l.limit {
            0 => MAX_LIST_PAGE,
            n => (n as usize).min(MAX_LIST_PAGE),
        };
        let storage = Arc::clone(&self.hub.storage);
        let (prefix, after) = (l.prefix, l.after);
        let res = self
            .hub
            .gate
            .work
            .disk(move || storage.list(&prefix, &after, "", limit))
            .await
            .and_then(|r| r);
        match res {
            Ok((records, more)) => {
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
            Err(r) => {
                self.send(Message::Error(ErrorMsg {
                    code: r.code,
                    id: l.id,
                    message: r.reason,
                }))
                .await
            }
        }
    }
}

fn error(id: u32, r: Refusal) -> Out {
    let msg = Message::Error(ErrorMsg {
        code: r.code,
        id,
        message: r.reason,
    });
    Out::Msg(msg.to_bytes().expect("encodes"))
}

/// Answers one Get: FileInfo, Data from the offset, End with the hash; or an Error.
/// `Err(())`: the connection is gone.
async fn serve_get(hub: &Hub, out: &Outbox, g: Get) -> Result<(), ()> {
    let send = |o: Out| async move { out.send(o).await.map_err(|_| ()) };
    let path = match RemotePath::parse(&g.path) {
        Ok(p) => p,
        Err(e) => {
            let r = Refusal::new(ErrorCode::BadPath, format!("{:?}: {e}", g.path));
            return send(error(g.id, r)).await;
        }
    };
    let storage = Arc::clone(&hub.storage);
    let offset = g.offset;
    let opened = hub
        .gate
        .work
        .disk(move || storage.open_read(&path, offset))
        .await
        .and_then(|r| r);
    let (mut reader, rec) = match opened {
        Ok(x) => x,
        Err(r) => return send(error(g.id, r)).await,
    };
    if g.offset > rec.size {
        let r = Refusal::new(
            ErrorCode::Malformed,
            format!(
                "offset {} is past the end of {} ({} bytes)",
                g.offset, rec.path, rec.size
            ),
        );
        return send(error(g.id, r)).await;
    }
    let info = Message::FileInfo(FileInfo {
        id: g.id,
        size: rec.size,
        hash: rec.hash,
    });
    send(Out::Msg(info.to_bytes().expect("encodes"))).await?;
    let chunk = hub.config.chunk_size as usize;
    let mut left = rec.size - g.offset;
    while left > 0 {
        let n = (left as usize).min(chunk);
        let (id, path) = (g.id, rec.path.clone());
        let read = hub
            .gate
            .work
            .disk(move || {
                let mut b = BytesMut::with_capacity(12 + n);
                encode_data_head(id, n as u32, &mut b);
                b.resize(12 + n, 0);
                reader
                    .read_exact(&mut b[12..])
                    .map(|_| (reader, b))
                    .map_err(|_| {
                        Refusal::new(
                            ErrorCode::Internal,
                            format!("{path} changed on the hub while being read"),
                        )
                    })
            })
            .await
            .and_then(|r| r);
        let b = match read {
            Ok((r, b)) => {
                reader = r;
                b
            }
            Err(r) => return send(error(g.id, r)).await,
        };
        send(Out::Msg(b.freeze())).await?;
        left -= n as u64;
    }
    let end = Message::End(framewire_proto::End {
        id: g.id,
        hash: Some(rec.hash),
    });
    send(Out::Msg(end.to_bytes().expect("encodes"))).await
}
