//! Listing stored files, a page at a time: `List` asks, `ListPage` answers.

use super::Body;
use crate::wire::{Measure, Reader, Writer};
use crate::DecodeError;

/// List stored files whose path starts with `prefix`, in path order, after `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    /// Chosen by the client.
    pub id: u32,
    /// Most entries wanted in this page (the hub may send fewer).
    pub limit: u32,
    /// Path prefix filter; empty for all.
    pub prefix: String,
    /// Resume after this path (the last path of the previous page); empty to start.
    pub after: String,
}

impl Body for List {
    const KIND: u16 = 0x003A;
    const NAME: &'static str = "List";

    fn encode(&self, w: &mut impl Writer) {
        w.u32(self.id);
        w.u32(self.limit);
        w.str16("prefix", &self.prefix);
        w.str16("after", &self.after);
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(List {
            id: r.u32()?,
            limit: r.u32()?,
            prefix: r.str16()?,
            after: r.str16()?,
        })
    }
}

/// One stored file, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// Stored path.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 of the content.
    pub hash: [u8; 32],
    /// When it was stored, µs since the Unix epoch.
    pub stored_us: i64,
    /// The name of the client that stored it.
    pub sender: String,
}

impl ListEntry {
    fn encode(&self, w: &mut impl Writer) {
        w.str16("path", &self.path);
        w.u64(self.size);
        w.slice(&self.hash);
        w.i64(self.stored_us);
        w.str16("sender", &self.sender);
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ListEntry {
            path: r.str16()?,
            size: r.u64()?,
            hash: r.hash()?,
            stored_us: r.i64()?,
            sender: r.str16()?,
        })
    }
}

/// Encoded size of one [`ListEntry`] (measured from its encoder), for filling a page up to a size.
pub fn list_entry_len(e: &ListEntry) -> usize {
    Measure::of(|w| e.encode(w)).len()
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    /// The list request's id.
    pub id: u32,
    /// Whether more entries follow (ask again with `after` = last path).
    pub more: bool,
    /// The entries.
    pub entries: Vec<ListEntry>,
}

impl Body for ListPage {
    const KIND: u16 = 0x003B;
    const NAME: &'static str = "ListPage";

    fn encode(&self, w: &mut impl Writer) {
        w.u32(self.id);
        w.u8(self.more as u8);
        w.count32("entries", self.entries.len());
        for e in &self.entries {
            e.encode(w);
        }
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let id = r.u32()?;
        let more = match r.u8()? {
            0 => false,
            1 => true,
            _ => {
                return Err(DecodeError::BadField {
                    message: ListPage::NAME,
                    field: "more",
                })
            }
        };
        // As for `Command`'s arguments: every entry takes bytes that must be present, so a lying
        // count fails on the payload's end, not on an allocation.
        let n = r.u32()?;
        let mut entries = Vec::new();
        for _ in 0..n {
            entries.push(ListEntry::decode(r)?);
        }
        Ok(ListPage { id, more, entries })
    }
}
