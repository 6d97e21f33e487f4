//! Deleting a stored file, whichever door asks (native `Delete`, HTTP `DELETE`): the permission,
//! the path lease (so a delete never races an upload of the same path), the durable removal, then
//! counters, the log line and the event, here once.

use std::sync::Arc;

use framewire_proto::{ErrorCode, RemotePath};

use super::{Pipeline, Uploader};
use crate::auth::Perms;
use crate::store::Refusal;
use crate::untrusted::shown;

impl Pipeline {
    /// Removes the file stored at `path` for `who`; answers its size once it is gone from disk
    /// and index for good.
    ///
    /// # Errors
    /// `Forbidden` without the `delete` permission, `Busy` while an upload to the path is in
    /// progress, `NotFound` if nothing is stored there, `ShuttingDown`, or a storage error.
    pub(crate) async fn delete(
        self: &Arc<Self>,
        who: &Uploader,
        path: RemotePath,
    ) -> Result<u64, Refusal> {
        if !who.perms.allows(Perms::DELETE) {
            return Err(Refusal::new(
                ErrorCode::Forbidden,
                "this token may not delete",
            ));
        }
        self.remove(&who.sender, path, false).await
    }

    /// Removes `path` under its lease: a user's delete, or the retention sweep (`expired`).
    pub(crate) async fn remove(
        self: &Arc<Self>,
        sender: &str,
        path: RemotePath,
        expired: bool,
    ) -> Result<u64, Refusal> {
        if self.closing.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(Refusal::shutting_down());
        }
        let lease = self.leases.take(&path).map_err(|_| {
            Refusal::new(
                ErrorCode::Busy,
                format!("an upload to {path} is in progress; try again when it ends"),
            )
        })?;
        let storage = Arc::clone(&self.storage);
        let p = path.clone();
        let removed = self.work.disk(move || storage.delete(&p)).await??;
        drop(lease);
        let Some(size) = removed else {
            return Err(Refusal::new(
                ErrorCode::NotFound,
                format!("no file stored at {path}"),
            ));
        };
        self.stats.file_removed(size, expired);
        let (kind, verb) = if expired {
            ("expire", "expired")
        } else {
            ("delete", "deleted")
        };
        tracing::info!(path = %shown(path.as_str()), size, from = %sender, "{verb}");
        self.events
            .emit(kind, sender, format!("{verb} {path} ({size} bytes)"));
        Ok(size)
    }
}
