//! `Delete`: answered `Deleted` once the file is durably gone, or `Error{id}`. Handled in the
//! read loop, one after another: each costs one directory sync.

use framewire_proto::{Delete, Deleted, ErrorCode, ErrorMsg, Message, RemotePath};

use super::session::Session;
use crate::upload::Uploader;

impl Session {
    pub(super) async fn delete(&mut self, d: Delete) {
        let path = match RemotePath::parse(&d.path) {
            Ok(p) => p,
            Err(e) => {
                return self
                    .send(Message::Error(ErrorMsg {
                        code: ErrorCode::BadPath,
                        id: d.id,
                        message: format!("{:?}: {e}", d.path),
                    }))
                    .await
            }
        };
        let who = Uploader {
            sender: self.sender.clone(),
            perms: self.perms,
        };
        let answer = match self.hub.pipeline.delete(&who, path).await {
            Ok(size) => Message::Deleted(Deleted { id: d.id, size }),
            Err(r) => Message::Error(ErrorMsg {
                code: r.code,
                id: d.id,
                message: r.reason,
            }),
        };
        self.send(answer).await;
    }
}
