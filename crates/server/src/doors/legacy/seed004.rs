//! Seed 004 ("毕设记录python利用socket进行文件传输"): an STM32 behind a serial-to-Wi-Fi module
//! sends images and commands. The server greets (`hello client`; the article's first version
//! said `Welcome from server!`, option `greeting`), and then reads:
//!
//! - `hello server`: the client's answer to the greeting (nothing to do);
//! - `begin to send` or `f`: every byte after it until the client closes is one file;
//! - `c`: the text after it (in the same read, or else the next read) is a command.
//!
//! The hub stores the file with nothing prepended as `DIR/<ip>/<time>-<n>.<ext>` (option `dir`,
//! default `seed004`; the extension from the content), and makes the command a command to device
//! `device` (first word the command, the rest its arguments) when that option is set, else a
//! message from the client in the event log. The seed's server answers neither.
//!
//! The seed's server compares whole reads (`recv(1024) == 'c'`), so it loses a marker that
//! arrives in one read with what follows it; the hub matches the markers at the start of a read
//! and takes the rest of the read as what follows.

use bytes::{Bytes, BytesMut};

use super::{dated_path, Conn, Ended};
use crate::auth::Perms;
use crate::conn::now_us;
use crate::doors::raw::sniff_extension;
use crate::upload::Upload;

/// What a read means.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// A command text (`c` + text).
    Command(String),
    /// Bytes of the file (all bytes after `f` or `begin to send`).
    File(Bytes),
    /// A read the seed's server ignores too.
    Ignored(Bytes),
}

/// The conversation after the greeting, fed one read at a time.
#[derive(Debug, Default)]
pub(crate) struct Stm32 {
    state: State,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum State {
    #[default]
    Idle,
    /// `c` came alone: the next read is the command.
    AwaitCommand,
    /// Everything from here is the file.
    File,
}

impl Stm32 {
    /// What one read means (several things, when markers and data share a read).
    pub(crate) fn feed(&mut self, mut read: Bytes) -> Vec<Action> {
        let mut out = Vec::new();
        while !read.is_empty() {
            match self.state {
                State::File => {
                    out.push(Action::File(read));
                    return out;
                }
                State::AwaitCommand => {
                    self.state = State::Idle;
                    out.push(Action::Command(text(&read)));
                    return out;
                }
                State::Idle => {
                    if read.starts_with(b"hello server") {
                        let _ = read.split_to(b"hello server".len());
                    } else if read.starts_with(b"begin to send") {
                        let _ = read.split_to(b"begin to send".len());
                        self.state = State::File;
                    } else if read.starts_with(b"f") {
                        let _ = read.split_to(1);
                        self.state = State::File;
                    } else if read.starts_with(b"c") {
                        let _ = read.split_to(1);
                        if read.is_empty() {
                            self.state = State::AwaitCommand;
                        } else {
                            out.push(Action::Command(text(&read)));
                            return out;
                        }
                    } else {
                        out.push(Action::Ignored(read));
                        return out;
                    }
                }
            }
        }
        out
    }

    /// Whether a file has begun.
    pub(crate) fn in_file(&self) -> bool {
        self.state == State::File
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim().to_owned()
}

/// Bytes to see before naming the file by its type (a BMP header is 14).
const SNIFF: usize = 16;

/// The seed server's side.
pub(crate) async fn serve(mut c: Conn) -> Result<(), Ended> {
    let greeting = c.option("greeting").unwrap_or("hello client").to_owned();
    c.say(greeting.as_bytes()).await?;
    let mut talk = Stm32::default();
    let mut head = BytesMut::new();
    let mut upload: Option<Upload> = None;
    let result = async {
        while let Some(read) = c.recv(64 * 1024).await? {
            for action in talk.feed(read) {
                match action {
                    Action::Command(t) => command(&c, t).await,
                    Action::Ignored(b) => {
                        tracing::debug!(from = %c.sender(), len = b.len(), "seed004: read ignored")
                    }
                    Action::File(b) => match upload.as_mut() {
                        Some(u) => u.write(b).await.map_err(Ended::Refused)?,
                        None => {
                            head.extend_from_slice(&b);
                            if head.len() >= SNIFF {
                                upload = Some(begin(&c, &mut head).await?);
                            }
                        }
                    },
                }
            }
        }
        Ok(())
    }
    .await;
    match (result, upload) {
        (Ok(()), Some(u)) => super::finish(u).await.map(drop),
        (Ok(()), None) if !head.is_empty() => {
            let u = begin(&c, &mut head).await?;
            super::finish(u).await.map(drop)
        }
        (Ok(()), None) => {
            if talk.in_file() {
                tracing::info!(from = %c.sender(), "seed004: an empty file; nothing stored");
            }
            Ok(())
        }
        (Err(e), Some(u)) => {
            u.cancel().await;
            Err(e)
        }
        (Err(e), None) => Err(e),
    }
}

/// Starts the file's upload with the bytes seen so far.
async fn begin(c: &Conn, head: &mut BytesMut) -> Result<Upload, Ended> {
    let dir = c.option("dir").unwrap_or("seed004");
    let path = dated_path(dir, c.peer, now_us(), sniff_extension(head));
    let mut u = c.begin_upload(path, None).await?;
    u.write(head.split().freeze())
        .await
        .map_err(Ended::Refused)?;
    Ok(u)
}

/// A `c` text: a command to the configured device, else a message.
async fn command(c: &Conn, text: String) {
    let Some(device) = c.option("device") else {
        tracing::info!(from = %c.sender(), text = %crate::untrusted::shown(&text), "message");
        c.hub.events.emit("message", c.sender(), text);
        return;
    };
    if !c.access.identity.perms.allows(Perms::COMMAND) {
        tracing::info!(from = %c.sender(), "seed004: command refused: the door's identity may not send commands");
        return;
    }
    let mut words = text.split_whitespace().map(str::to_owned);
    let Some(command) = words.next() else { return };
    let outcome = c
        .hub
        .devices
        .call(
            device,
            &command,
            words.collect(),
            c.hub.config.command_timeout,
        )
        .await;
    tracing::info!(from = %c.sender(), device, text = %crate::untrusted::shown(&text), status = ?outcome.status, "legacy command");
    c.hub.events.emit(
        "command",
        c.sender(),
        format!("{device} {text}: {:?}", outcome.status),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(reads: &[&[u8]]) -> Vec<Action> {
        let mut t = Stm32::default();
        reads
            .iter()
            .flat_map(|r| t.feed(Bytes::copy_from_slice(r)))
            .collect()
    }

    #[test]
    fn the_reads_of_the_articles_clients() {
        // The advanced client: `hello server`, `c`, `weeding`, `f`, the file's lines.
        assert_eq!(
            feed_all(&[
                b"hello server",
                b"c",
                b"weeding",
                b"f",
                b"BM\x01\n",
                b"rest"
            ]),
            vec![
                Action::Command("weeding".into()),
                Action::File(Bytes::from_static(b"BM\x01\n")),
                Action::File(Bytes::from_static(b"rest")),
            ]
        );
        // The same, with TCP joining the sends.
        assert_eq!(
            feed_all(&[b"hello servercweeding", b"fBM\x01\n"]),
            vec![
                Action::Command("weeding".into()),
                Action::File(Bytes::from_static(b"BM\x01\n")),
            ]
        );
        // The first client: `begin to send` then the file, nothing prepended.
        assert_eq!(
            feed_all(&[b"begin to sendBM", b"c is data here"]),
            vec![
                Action::File(Bytes::from_static(b"BM")),
                Action::File(Bytes::from_static(b"c is data here")),
            ]
        );
        assert_eq!(
            feed_all(&[b"?"]),
            vec![Action::Ignored(Bytes::from_static(b"?"))]
        );
    }
}
