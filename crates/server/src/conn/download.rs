//! Downloads and listings: `Get` streams a stored file, `List` pages through the index.

use std::sync::Arc;

use bytes::BytesMut;
use framewire_proto::{
    encode_data_head, ErrorCode, ErrorMsg, FileInfo, ListEntry, ListPage, Message, RemotePath,
};
use tokio::io::AsyncReadExt;

use super::{Out, Session, MAX_LIST_PAGE};

impl Session {
    pub(super) async fn get(&mut self, g: framewire_proto::Get) {
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

    pub(super) async fn list(&mut self, l: framewire_proto::List) {
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
}
