//! Seed 002 ("Python实现socket通信"): a control process drives the OpenCV process over a socket.
//! The OpenCV server greets with `Welcome`, then for each read: `exit` ends the conversation
//! (the server closes without answering); `c` takes a picture; anything else is acknowledged.
//! Every read but `exit` is answered `Received`.
//!
//! The hub plays that server, the camera being a framewire device (option `device`, default
//! `cam`: a running `framewire stream --name cam`). Each text becomes a command to it: its first
//! word is the command (`c` mapped to option `c`, default `capture`; `exit` to option `exit`,
//! default `stop`, as the seed's process ends), the rest its arguments. The answer is `Received`
//! when the device answers OK, else the reason in words (no device, unknown command, timeout) so
//! that the person at the control process sees it.

use bytes::Bytes;
use framewire_proto::ReplyStatus;

use super::{Conn, Ended};
use crate::auth::Perms;
use crate::devices::CommandOutcome;

/// What the server says first.
pub(crate) const GREETING: &[u8] = b"Welcome";
/// What it answers to every read but `exit`.
pub(crate) const RECEIVED: &[u8] = b"Received";

/// One read of the control process, as a command: `None` for blank text. `exit` tells whether
/// the conversation ends with it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Control {
    pub(crate) command: Option<(String, Vec<String>)>,
    pub(crate) exit: bool,
}

/// Maps one read to a command with the door's aliases for `c` and `exit`.
pub(crate) fn to_command(data: &[u8], c: &str, exit: &str) -> Control {
    let text = String::from_utf8_lossy(data);
    // The seed compares the whole read with `exit` and `c`.
    let is_exit = text == "exit";
    let mut words = text.split_whitespace().map(str::to_owned);
    let command = words.next().map(|first| {
        let command = match first.as_str() {
            "c" => c.to_owned(),
            "exit" => exit.to_owned(),
            _ => first,
        };
        (command, words.collect())
    });
    Control {
        command,
        exit: is_exit,
    }
}

/// The answer to a command's outcome: `Received`, or why not.
pub(crate) fn reply_for(outcome: &CommandOutcome) -> Bytes {
    if outcome.status == ReplyStatus::Ok {
        Bytes::from_static(RECEIVED)
    } else {
        outcome.body.clone()
    }
}

/// The OpenCV server's side.
pub(crate) async fn serve(mut c: Conn) -> Result<(), Ended> {
    let device = c.option("device").unwrap_or("cam").to_owned();
    let c_alias = c.option("c").unwrap_or("capture").to_owned();
    let exit_alias = c.option("exit").unwrap_or("stop").to_owned();
    c.say(GREETING).await?;
    while let Some(data) = c.recv(1024).await? {
        let control = to_command(&data, &c_alias, &exit_alias);
        let reply = match control.command {
            None => Bytes::from_static(RECEIVED),
            Some(_) if !c.access.identity.perms.allows(Perms::COMMAND) => {
                Bytes::from_static(b"refused: the door's identity may not send commands")
            }
            Some((command, args)) => {
                let line = format!("{command} {}", args.join(" "));
                let outcome = c
                    .hub
                    .devices
                    .call(&device, &command, args, c.hub.config.command_timeout)
                    .await;
                tracing::info!(from = %c.sender(), device = %device, command = %crate::untrusted::shown(line.trim_end()), status = ?outcome.status, "legacy command");
                c.hub.events.emit(
                    "command",
                    c.sender(),
                    format!("{device} {}: {:?}", line.trim_end(), outcome.status),
                );
                reply_for(&outcome)
            }
        };
        if control.exit {
            return Ok(());
        }
        c.say(&reply).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_become_commands() {
        let cmd = |d: &[u8]| to_command(d, "capture", "stop");
        assert_eq!(
            cmd(b"c"),
            Control {
                command: Some(("capture".into(), vec![])),
                exit: false
            }
        );
        assert_eq!(
            cmd(b"exit"),
            Control {
                command: Some(("stop".into(), vec![])),
                exit: true
            }
        );
        assert_eq!(
            cmd(b"set fps 5"),
            Control {
                command: Some(("set".into(), vec!["fps".into(), "5".into()])),
                exit: false
            }
        );
        assert_eq!(cmd(b"  ").command, None);
        let ok = CommandOutcome {
            status: ReplyStatus::Ok,
            body: Bytes::from_static(b"captures/x.jpg"),
        };
        assert_eq!(reply_for(&ok), &b"Received"[..]);
        let none = CommandOutcome {
            status: ReplyStatus::UnknownDevice,
            body: Bytes::from_static(b"no device named \"cam\" is connected"),
        };
        assert_eq!(reply_for(&none), none.body);
    }
}
