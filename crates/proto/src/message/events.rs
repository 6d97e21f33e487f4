//! Programs that react to what arrives: following the hub's events (`Follow`, `Following`,
//! `Event`) and texts addressed to a named receiver (`TextTo`, `Delivery`, `TextFrom`).

use super::Body;
use crate::wire::{Reader, Writer};
use crate::DecodeError;

/// Client → hub: send me the hub's events that pass this filter, from now on; and, when `name` is
/// not empty, texts addressed to `name` (as [`TextFrom`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Follow {
    /// The name this connection receives texts under (empty: none).
    pub name: String,
    /// Only events whose `path` starts with this (events without a path pass); empty for all.
    pub prefix: String,
    /// Only these event kinds (`stored`, `message`, `device`, `stream`, `command`, ...); empty for
    /// all.
    pub kinds: Vec<String>,
}

impl Body for Follow {
    const KIND: u16 = 0x0050;
    const NAME: &'static str = "Follow";

    fn encode(&self, w: &mut impl Writer) {
        w.str16("name", &self.name);
        w.str16("prefix", &self.prefix);
        w.count16("kinds", self.kinds.len());
        for k in &self.kinds {
            w.str16("kinds", k);
        }
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let name = r.str16()?;
        let prefix = r.str16()?;
        let n = r.u16()?;
        // Each kind takes at least its 2-byte prefix: a lying count fails on the bytes present.
        let mut kinds = Vec::new();
        for _ in 0..n {
            kinds.push(r.str16()?);
        }
        Ok(Follow {
            name,
            prefix,
            kinds,
        })
    }
}

/// Hub → client: the [`Follow`] is in effect; events from now on come to this connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Following {
    /// The name texts are received under, as given (empty: none).
    pub name: String,
}

impl Body for Following {
    const KIND: u16 = 0x0051;
    const NAME: &'static str = "Following";

    fn encode(&self, w: &mut impl Writer) {
        w.str16("name", &self.name);
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Following { name: r.str16()? })
    }
}

/// Hub → client: one thing that happened, as named fields (all text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// When, µs since the Unix epoch (hub clock).
    pub time_us: i64,
    /// Events this follower missed just before this one because it read too slowly.
    pub dropped: u32,
    /// What happened: `stored`, `message`, `device`, `stream`, `command`, `connect`,
    /// `disconnect`, `reject`.
    pub kind: String,
    /// The details, as (name, value) pairs in a fixed order per kind.
    pub fields: Vec<(String, String)>,
}

impl Event {
    /// The value of field `name`, if present.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Body for Event {
    const KIND: u16 = 0x0052;
    const NAME: &'static str = "Event";

    fn encode(&self, w: &mut impl Writer) {
        w.i64(self.time_us);
        w.u32(self.dropped);
        w.str16("kind", &self.kind);
        w.count16("fields", self.fields.len());
        for (k, v) in &self.fields {
            w.str16("fields", k);
            w.str16("fields", v);
        }
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let time_us = r.i64()?;
        let dropped = r.u32()?;
        let kind = r.str16()?;
        let n = r.u16()?;
        let mut fields = Vec::new();
        for _ in 0..n {
            let k = r.str16()?;
            let v = r.str16()?;
            fields.push((k, v));
        }
        Ok(Event {
            time_us,
            dropped,
            kind,
            fields,
        })
    }
}

/// Client → hub: deliver `text` to whichever client holds the name `to` (a registered device, or
/// a program following events under that name). Answered with [`Delivery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextTo {
    /// Chosen by the sender; the [`Delivery`] carries the same id.
    pub id: u32,
    /// The receiver's name.
    pub to: String,
    /// The text (UTF-8), the rest of the payload.
    pub text: String,
}

impl Body for TextTo {
    const KIND: u16 = 0x0011;
    const NAME: &'static str = "TextTo";

    fn encode(&self, w: &mut impl Writer) {
        w.u32(self.id);
        w.str16("to", &self.to);
        w.slice(self.text.as_bytes());
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(TextTo {
            id: r.u32()?,
            to: r.str16()?,
            text: r.rest_str()?,
        })
    }
}

/// Status byte of a [`Delivery`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// The text is in the receiver's queue.
    Delivered = 0,
    /// Nobody holds that name.
    NoReceiver = 1,
    /// The receiver holds the name but is not reading (its queue is full); the text was dropped.
    ReceiverBusy = 2,
}

/// Hub → client: what became of a [`TextTo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The [`TextTo`]'s id.
    pub id: u32,
    /// Outcome.
    pub status: DeliveryStatus,
}

impl Body for Delivery {
    const KIND: u16 = 0x0012;
    const NAME: &'static str = "Delivery";

    fn encode(&self, w: &mut impl Writer) {
        w.u32(self.id);
        w.u8(self.status as u8);
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let id = r.u32()?;
        let status = match r.u8()? {
            0 => DeliveryStatus::Delivered,
            1 => DeliveryStatus::NoReceiver,
            2 => DeliveryStatus::ReceiverBusy,
            _ => {
                return Err(DecodeError::BadField {
                    message: Delivery::NAME,
                    field: "status",
                })
            }
        };
        Ok(Delivery { id, status })
    }
}

/// Hub → receiver: a text addressed to a name this connection holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextFrom {
    /// The sender: the device or follower name it holds, else its client name.
    pub from: String,
    /// The name it was addressed to.
    pub to: String,
    /// The text (UTF-8), the rest of the payload.
    pub text: String,
}

impl Body for TextFrom {
    const KIND: u16 = 0x0013;
    const NAME: &'static str = "TextFrom";

    fn encode(&self, w: &mut impl Writer) {
        w.str16("from", &self.from);
        w.str16("to", &self.to);
        w.slice(self.text.as_bytes());
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(TextFrom {
            from: r.str16()?,
            to: r.str16()?,
            text: r.rest_str()?,
        })
    }
}
