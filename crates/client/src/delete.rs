//! Deleting stored files: `Delete` → `Deleted` (or `Error`). Many deletes are pipelined: up to
//! [`DELETES_IN_FLIGHT`] are outstanding at once, answered in the order sent.

use std::collections::VecDeque;

use framewire_proto::{Delete, Message, RemotePath};

use crate::client::{hub_error, Client};
use crate::error::{ClientError, Result};

/// Deletes sent before waiting for answers.
const DELETES_IN_FLIGHT: usize = 32;

impl Client {
    /// Deletes the stored file `remote`; returns its size. Once this returns, the file is gone
    /// from the hub's disk and listing, even if the hub crashes right after.
    ///
    /// # Errors
    /// [`ClientError::BadPath`] for an invalid path, [`ClientError::Hub`] if the hub refuses
    /// (code `NotFound`: nothing stored there; `Forbidden`: the token lacks `delete`; `Busy`: an
    /// upload to the path is in progress), or any connection error.
    pub async fn delete(&mut self, remote: &str) -> Result<u64> {
        let mut answer = None;
        self.delete_many(&[remote.to_owned()], |_, r| answer = Some(r))
            .await?;
        answer.expect("one answer per path")
    }

    /// Deletes each of `paths`, pipelined, calling `each(path, outcome)` as answers arrive (in
    /// order). A refused path does not stop the others.
    ///
    /// # Errors
    /// A connection error (lost, timed out); the outcomes of paths answered before it were
    /// already reported.
    pub async fn delete_many(
        &mut self,
        paths: &[String],
        mut each: impl FnMut(&str, Result<u64>),
    ) -> Result<()> {
        let mut waiting: VecDeque<(u32, &str)> = VecDeque::new();
        let mut next = paths.iter();
        loop {
            while waiting.len() < DELETES_IN_FLIGHT {
                let Some(path) = next.next() else { break };
                if let Err(error) = RemotePath::parse(path) {
                    each(
                        path,
                        Err(ClientError::BadPath {
                            path: path.clone(),
                            error,
                        }),
                    );
                    continue;
                }
                let id = self.alloc_id();
                self.send(&Message::Delete(Delete {
                    id,
                    path: path.clone(),
                }))
                .await?;
                waiting.push_back((id, path));
            }
            let Some(&(id, path)) = waiting.front() else {
                return Ok(());
            };
            match self.recv("a Deleted answer").await? {
                Message::Deleted(d) if d.id == id => {
                    waiting.pop_front();
                    each(path, Ok(d.size));
                }
                Message::Error(e) if e.id == id => {
                    waiting.pop_front();
                    each(path, Err(hub_error(e)));
                }
                other => self.stray(other),
            }
        }
    }
}
