//! Sending a command to a device through the hub: [`Client::command`] and its [`CommandReply`].

use bytes::Bytes;
use framewire_proto::{Command, Message, ReplyStatus};

use crate::client::{hub_error, Client};
use crate::error::Result;

/// A device's answer to a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandReply {
    /// Outcome.
    pub status: ReplyStatus,
    /// The device's output (usually text), or the hub's explanation.
    pub body: Bytes,
}

impl CommandReply {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Client {
    /// Sends `command args` to the device `target` through the hub and waits for its reply. The
    /// hub answers `UnknownDevice` or `Timeout` itself when the device is missing or silent.
    ///
    /// # Errors
    /// [`ClientError::Timeout`](crate::ClientError::Timeout) if not even the hub answers within the
    /// I/O timeout, or any connection error. A device's refusal is a successful call with a
    /// non-`Ok` status.
    pub async fn command(
        &mut self,
        target: &str,
        command: &str,
        args: &[String],
    ) -> Result<CommandReply> {
        let id = self.alloc_id();
        self.send(&Message::Command(Command {
            id,
            target: target.to_owned(),
            command: command.to_owned(),
            args: args.to_vec(),
        }))
        .await?;
        loop {
            match self.recv("the command's Reply").await? {
                Message::Reply(r) if r.id == id => {
                    return Ok(CommandReply {
                        status: r.status,
                        body: r.body,
                    })
                }
                Message::Error(e) if e.id == id => return Err(hub_error(e)),
                other => self.stray(other),
            }
        }
    }
}
