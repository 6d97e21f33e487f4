//! Deleting a stored file: `Delete` asks, `Deleted` answers (or `Error{id}`: `NotFound`,
//! `Forbidden`, `Busy` while an upload to the path is in progress).

use super::Body;
use crate::wire::{Reader, Writer};
use crate::DecodeError;

/// Remove the file stored at `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    /// Chosen by the client.
    pub id: u32,
    /// Stored path.
    pub path: String,
}

impl Body for Delete {
    const KIND: u16 = 0x003C;
    const NAME: &'static str = "Delete";

    fn encode(&self, w: &mut impl Writer) {
        w.u32(self.id);
        w.str16("path", &self.path);
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Delete {
            id: r.u32()?,
            path: r.str16()?,
        })
    }
}

/// The file is gone from the hub's disk and index, durably.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    /// The delete's id.
    pub id: u32,
    /// Size of the removed file, in bytes.
    pub size: u64,
}

impl Body for Deleted {
    const KIND: u16 = 0x003D;
    const NAME: &'static str = "Deleted";

    fn encode(&self, w: &mut impl Writer) {
        w.u32(self.id);
        w.u64(self.size);
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Deleted {
            id: r.u32()?,
            size: r.u64()?,
        })
    }
}
