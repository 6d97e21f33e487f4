//! Being a device: registering under a name, receiving commands ([`DeviceCommand`]) and
//! answering them on the connection they came in on.

use bytes::Bytes;
use framewire_proto::{Command, Message, RegisterDevice, Reply, ReplyStatus};
use tokio::sync::mpsc;

use super::command::CommandReply;
use crate::client::Client;
use crate::error::Result;

/// Commands waiting for their consumer, at most; more are answered "busy".
pub(super) const COMMAND_QUEUE: usize = 16;

/// An answer on its way to the connection: the hub's command id and the reply.
type Answer = (u32, CommandReply);

/// A command sent to this device; answer it with [`DeviceCommand::reply`] (dropping it answers
/// `Failed`).
#[derive(Debug)]
pub struct DeviceCommand {
    /// The verb, e.g. `capture`.
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// The hub's id for it on the connection it came in on.
    id: u32,
    /// That connection's reply queue. Answering puts the reply straight into it, so a reply given
    /// before [`Publisher::close`](crate::Publisher::close) is written before the connection
    /// closes (a `stop` command's answer, say).
    reply: Option<mpsc::UnboundedSender<Answer>>,
}

impl DeviceCommand {
    /// Sends the answer.
    pub fn reply(mut self, status: ReplyStatus, body: impl Into<Bytes>) {
        self.answer(status, body.into());
    }

    /// Answers `Ok` with `text`.
    pub fn ok(self, text: impl Into<String>) {
        self.reply(ReplyStatus::Ok, Bytes::from(text.into()));
    }

    /// Answers `Failed` with `text`.
    pub fn fail(self, text: impl Into<String>) {
        self.reply(ReplyStatus::Failed, Bytes::from(text.into()));
    }

    /// Queues the answer, once.
    fn answer(&mut self, status: ReplyStatus, body: Bytes) {
        if let Some(tx) = self.reply.take() {
            let _ = tx.send((self.id, CommandReply { status, body }));
        }
    }
}

impl Drop for DeviceCommand {
    fn drop(&mut self) {
        self.answer(
            ReplyStatus::Failed,
            Bytes::from_static(b"the device dropped the command without answering"),
        );
    }
}

/// The connection's side of a device: hands commands to the consumer and writes its answers.
pub(super) struct DeviceDesk {
    commands: mpsc::Sender<DeviceCommand>,
    reply_tx: mpsc::UnboundedSender<Answer>,
    replies: mpsc::UnboundedReceiver<Answer>,
}

impl DeviceDesk {
    /// A desk handing commands to `commands`.
    pub(super) fn new(commands: mpsc::Sender<DeviceCommand>) -> DeviceDesk {
        let (reply_tx, replies) = mpsc::unbounded_channel();
        DeviceDesk {
            commands,
            reply_tx,
            replies,
        }
    }

    /// Registers as device `name` on a fresh connection. Answers still queued for the previous
    /// connection are dropped: their ids mean nothing on this one.
    pub(super) async fn register(&mut self, c: &mut Client, name: &str) -> Result<()> {
        *self = DeviceDesk::new(self.commands.clone());
        c.send(&Message::RegisterDevice(RegisterDevice {
            name: name.to_owned(),
        }))
        .await
    }

    /// The next answer the consumer gave. Cancel-safe.
    pub(super) async fn next_answer(&mut self) -> Option<(u32, CommandReply)> {
        self.replies.recv().await
    }

    /// Hands a command from the hub to the consumer, or answers "busy" if too many wait.
    pub(super) async fn on_command(&mut self, c: &mut Client, cmd: Command) -> Result<()> {
        let dc = DeviceCommand {
            command: cmd.command,
            args: cmd.args,
            id: cmd.id,
            reply: Some(self.reply_tx.clone()),
        };
        match self.commands.try_send(dc) {
            Ok(()) => Ok(()),
            Err(e) => {
                // Answer here, not through the dropped command's queue entry.
                let mut dc = e.into_inner();
                dc.reply = None;
                let busy = CommandReply {
                    status: ReplyStatus::Failed,
                    body: Bytes::from_static(b"the device is busy"),
                };
                write_answer(c, cmd.id, busy).await
            }
        }
    }

    /// Writes the answers given so far (before hanging up, say).
    pub(super) async fn flush(&mut self, c: &mut Client) -> Result<()> {
        while let Ok((id, r)) = self.replies.try_recv() {
            write_answer(c, id, r).await?;
        }
        Ok(())
    }
}

/// Writes the answer to command `id`.
pub(super) async fn write_answer(c: &mut Client, id: u32, r: CommandReply) -> Result<()> {
    c.send(&Message::Reply(Reply {
        id,
        status: r.status,
        body: r.body,
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(reply: mpsc::UnboundedSender<Answer>) -> DeviceCommand {
        DeviceCommand {
            command: "status".into(),
            args: vec![],
            id: 42,
            reply: Some(reply),
        }
    }

    #[test]
    fn a_command_is_answered_exactly_once() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        command(tx).ok("fine");
        let (id, r) = rx.try_recv().unwrap();
        assert_eq!(
            (id, r.status, r.text().as_str()),
            (42, ReplyStatus::Ok, "fine")
        );
        assert!(
            rx.try_recv().is_err(),
            "dropping after answering adds nothing"
        );
    }

    #[test]
    fn dropping_a_command_answers_failed() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        drop(command(tx));
        let (id, r) = rx.try_recv().unwrap();
        assert_eq!((id, r.status), (42, ReplyStatus::Failed));
        assert!(r.text().contains("without answering"));
    }
}
