//! Short messages the hub relays or answers: texts, and commands run on named devices with their
//! replies, and the registration of a device.

use bytes::Bytes;

use super::Body;
use crate::wire::{Reader, Writer};
use crate::DecodeError;

/// A short text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    /// Chosen by the sender; the hub's answer carries the same id.
    pub id: u32,
    /// The text (UTF-8), the rest of the payload.
    pub text: String,
}

impl Body for Text {
    const KIND: u16 = 0x0010;
    const NAME: &'static str = "Text";

    fn encode(&self, w: &mut impl Writer) {
        w.u32(self.id);
        w.slice(self.text.as_bytes());
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Text {
            id: r.u32()?,
            text: r.rest_str()?,
        })
    }
}

/// Run `command` on the device named `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Chosen by the sender; the [`Reply`] carries the same id. Several may be in flight.
    pub id: u32,
    /// Device name.
    pub target: String,
    /// Command verb, e.g. `capture`.
    pub command: String,
    /// Arguments.
    pub args: Vec<String>,
}

impl Body for Command {
    const KIND: u16 = 0x0020;
    const NAME: &'static str = "Command";

    fn encode(&self, w: &mut impl Writer) {
        w.u32(self.id);
        w.str16("target", &self.target);
        w.str16("command", &self.command);
        w.count16("args", self.args.len());
        for a in &self.args {
            w.str16("args", a);
        }
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let id = r.u32()?;
        let target = r.str16()?;
        let command = r.str16()?;
        let n = r.u16()?;
        // Each argument takes at least its 2-byte prefix, so a lying count fails on the bytes
        // actually present, before `Vec` grows past them.
        let mut args = Vec::new();
        for _ in 0..n {
            args.push(r.str16()?);
        }
        Ok(Command {
            id,
            target,
            command,
            args,
        })
    }
}

/// Status byte of a [`Reply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyStatus {
    /// The command ran; the body is its output.
    Ok = 0,
    /// The device ran the command and it failed; the body says why.
    Failed = 1,
    /// No device of that name is connected.
    UnknownDevice = 2,
    /// The device does not know the command.
    UnknownCommand = 3,
    /// The device did not answer in time.
    Timeout = 4,
}

impl ReplyStatus {
    fn from_u8(v: u8) -> Result<Self, DecodeError> {
        Ok(match v {
            0 => ReplyStatus::Ok,
            1 => ReplyStatus::Failed,
            2 => ReplyStatus::UnknownDevice,
            3 => ReplyStatus::UnknownCommand,
            4 => ReplyStatus::Timeout,
            _ => {
                return Err(DecodeError::BadField {
                    message: Reply::NAME,
                    field: "status",
                })
            }
        })
    }
}

/// A command's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The command's id.
    pub id: u32,
    /// Outcome.
    pub status: ReplyStatus,
    /// Output or explanation (usually UTF-8 text), the rest of the payload.
    pub body: Bytes,
}

impl Body for Reply {
    const KIND: u16 = 0x0021;
    const NAME: &'static str = "Reply";

    fn encode(&self, w: &mut impl Writer) {
        w.u32(self.id);
        w.u8(self.status as u8);
        w.slice(&self.body);
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Reply {
            id: r.u32()?,
            status: ReplyStatus::from_u8(r.u8()?)?,
            body: r.rest(),
        })
    }
}

/// This connection answers [`Command`]s for device `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterDevice {
    /// Device name.
    pub name: String,
}

impl Body for RegisterDevice {
    const KIND: u16 = 0x0022;
    const NAME: &'static str = "RegisterDevice";

    fn encode(&self, w: &mut impl Writer) {
        w.str16("name", &self.name);
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(RegisterDevice { name: r.str16()? })
    }
}

/// The hub's answer to [`RegisterDevice`] (protocol version 2): this connection is now device `name`,
/// and commands for that name come here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// Device name, as registered.
    pub name: String,
}

impl Body for Registered {
    const KIND: u16 = 0x0023;
    const NAME: &'static str = "Registered";

    fn encode(&self, w: &mut impl Writer) {
        w.str16("name", &self.name);
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Registered { name: r.str16()? })
    }
}
