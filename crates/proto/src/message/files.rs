//! Moving one file: the upload (`Offer`, `Accept`, `Data`, `End`, then `Stored` or `Rejected`, or
//! a `Cancel`) and the download (`Get`, `FileInfo`, then `Data` and `End`).

use bytes::{BufMut, Bytes};

use super::{Body, ErrorCode};
use crate::wire::{Measure, Reader, Writer};
use crate::{DecodeError, Header};

/// Flags of an [`Offer`].
pub mod offer_flags {
    /// Replace a different file already stored at the path (atomically).
    pub const OVERWRITE: u8 = 0x01;
    /// Ignore any partial upload of this path and start from byte 0.
    pub const NO_RESUME: u8 = 0x02;
}

/// I want to store `size` bytes at `path` (relative, `/`-separated, see [`crate::RemotePath`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// Chosen by the client, unique among its outstanding offers.
    pub id: u32,
    /// [`offer_flags`].
    pub flags: u8,
    /// Exact size of the file.
    pub size: u64,
    /// Where to store it.
    pub path: String,
}

impl Body for Offer {
    const KIND: u16 = 0x0030;
    const NAME: &'static str = "Offer";

    fn encode(&self, w: &mut impl Writer) {
        w.u32(self.id);
        w.u8(self.flags);
        w.u64(self.size);
        w.str16("path", &self.path);
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Offer {
            id: r.u32()?,
            flags: r.u8()?,
            size: r.u64()?,
            path: r.str16()?,
        })
    }
}

/// Send the file from `offset`. When `offset > 0`, the hub already holds bytes `[0, offset)`
/// (a partial upload, or the whole stored file when `offset == size`) and `prefix_hash` is their
/// BLAKE3 hash, so the client can check they match its own before going on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accept {
    /// The offer's id.
    pub id: u32,
    /// First byte the hub wants.
    pub offset: u64,
    /// BLAKE3 of the hub's bytes `[0, offset)`.
    pub prefix_hash: [u8; 32],
}

impl Body for Accept {
    const KIND: u16 = 0x0031;
    const NAME: &'static str = "Accept";

    fn encode(&self, w: &mut impl Writer) {
        w.u32(self.id);
        w.u64(self.offset);
        w.slice(&self.prefix_hash);
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Accept {
            id: r.u32()?,
            offset: r.u64()?,
            prefix_hash: r.hash()?,
        })
    }
}

/// A chunk of a file, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Data {
    /// The offer's (or get's) id.
    pub id: u32,
    /// The bytes, the rest of the payload.
    pub bytes: Bytes,
}

/// Encoded size of the fields of a [`Data`] payload before its bytes (the id), so a sender can
/// place the head in front of bytes it reads straight into the same buffer.
pub const DATA_PREFIX_LEN: usize = 4;

impl Data {
    /// The fields before the bytes: [`DATA_PREFIX_LEN`] bytes, which a test checks.
    fn encode_prefix(id: u32, w: &mut impl Writer) {
        w.u32(id);
    }
}

impl Body for Data {
    const KIND: u16 = 0x0032;
    const NAME: &'static str = "Data";

    fn encode(&self, w: &mut impl Writer) {
        Data::encode_prefix(self.id, w);
        w.slice(&self.bytes);
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Data {
            id: r.u32()?,
            bytes: r.rest(),
        })
    }
}

/// Writes the header and id of a [`Data`] message whose `len` bytes the caller writes right after,
/// e.g. read straight from a file into the same buffer.
pub fn encode_data_head(id: u32, len: u32, dst: &mut impl BufMut) {
    let prefix = Measure::of(|w| Data::encode_prefix(id, w)).len();
    Header {
        kind: Data::KIND,
        flags: 0,
        len: prefix as u32 + len,
    }
    .encode(dst);
    Data::encode_prefix(id, dst);
}

/// All bytes are sent; `hash` is the BLAKE3 of the whole file (from byte 0), if the sender computed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    /// The offer's (or get's) id.
    pub id: u32,
    /// BLAKE3 of the whole file; `None` for senders too small to hash (the hub then reports its hash
    /// in [`Stored`] and checks the size only).
    pub hash: Option<[u8; 32]>,
}

impl Body for End {
    const KIND: u16 = 0x0033;
    const NAME: &'static str = "End";

    fn encode(&self, w: &mut impl Writer) {
        w.u32(self.id);
        // The hash field is always present; a flag byte says whether it holds one.
        match &self.hash {
            Some(h) => {
                w.u8(1);
                w.slice(h);
            }
            None => {
                w.u8(0);
                w.zeros(32);
            }
        }
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let id = r.u32()?;
        let has = r.u8()?;
        let hash = r.hash()?;
        let hash = match has {
            0 => None,
            1 => Some(hash),
            _ => {
                return Err(DecodeError::BadField {
                    message: End::NAME,
                    field: "has_hash",
                })
            }
        };
        Ok(End { id, hash })
    }
}

/// Status byte of a [`Stored`] message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredStatus {
    /// The path did not exist before; the file is new.
    New = 0,
    /// The path held a different file, which was replaced atomically (overwrite was asked for).
    Replaced = 1,
    /// The path already held exactly these bytes; nothing was transferred or written.
    Unchanged = 2,
}

impl StoredStatus {
    fn from_u8(v: u8) -> Result<Self, DecodeError> {
        Ok(match v {
            0 => StoredStatus::New,
            1 => StoredStatus::Replaced,
            2 => StoredStatus::Unchanged,
            _ => {
                return Err(DecodeError::BadField {
                    message: Stored::NAME,
                    field: "status",
                })
            }
        })
    }
}

/// The file is stored and durable (fsynced and renamed into place).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The offer's id.
    pub id: u32,
    /// New, replaced or unchanged.
    pub status: StoredStatus,
    /// Size stored.
    pub size: u64,
    /// BLAKE3 of the stored bytes, computed by the hub.
    pub hash: [u8; 32],
}

impl Body for Stored {
    const KIND: u16 = 0x0034;
    const NAME: &'static str = "Stored";

    fn encode(&self, w: &mut impl Writer) {
        w.u32(self.id);
        w.u8(self.status as u8);
        w.u64(self.size);
        w.slice(&self.hash);
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Stored {
            id: r.u32()?,
            status: StoredStatus::from_u8(r.u8()?)?,
            size: r.u64()?,
            hash: r.hash()?,
        })
    }
}

/// The file was not stored; nothing of it is visible on the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The offer's id.
    pub id: u32,
    /// Why, as a code.
    pub code: ErrorCode,
    /// Why, for people.
    pub reason: String,
}

impl Body for Rejected {
    const KIND: u16 = 0x0035;
    const NAME: &'static str = "Rejected";

    fn encode(&self, w: &mut impl Writer) {
        w.u32(self.id);
        w.u16(self.code.to_u16());
        w.slice(self.reason.as_bytes());
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Rejected {
            id: r.u32()?,
            code: ErrorCode::from_u16(r.u16()?),
            reason: r.rest_str()?,
        })
    }
}

/// Abandon upload `id`; the hub answers with [`Rejected`] (code `Cancelled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancel {
    /// The offer's id.
    pub id: u32,
}

impl Body for Cancel {
    const KIND: u16 = 0x0036;
    const NAME: &'static str = "Cancel";

    fn encode(&self, w: &mut impl Writer) {
        w.u32(self.id);
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Cancel { id: r.u32()? })
    }
}

/// Send me the file at `path`, starting at `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Get {
    /// Chosen by the client.
    pub id: u32,
    /// First byte wanted.
    pub offset: u64,
    /// Stored path.
    pub path: String,
}

impl Body for Get {
    const KIND: u16 = 0x0038;
    const NAME: &'static str = "Get";

    fn encode(&self, w: &mut impl Writer) {
        w.u32(self.id);
        w.u64(self.offset);
        w.str16("path", &self.path);
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Get {
            id: r.u32()?,
            offset: r.u64()?,
            path: r.str16()?,
        })
    }
}

/// The file about to be sent for a [`Get`]: [`Data`] chunks and an [`End`] with the same id follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// The get's id.
    pub id: u32,
    /// Whole size of the stored file.
    pub size: u64,
    /// BLAKE3 of the whole stored file.
    pub hash: [u8; 32],
}

impl Body for FileInfo {
    const KIND: u16 = 0x0039;
    const NAME: &'static str = "FileInfo";

    fn encode(&self, w: &mut impl Writer) {
        w.u32(self.id);
        w.u64(self.size);
        w.slice(&self.hash);
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(FileInfo {
            id: r.u32()?,
            size: r.u64()?,
            hash: r.hash()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Message, HEADER_LEN};

    #[test]
    fn data_prefix_len_is_what_the_prefix_encoder_writes() {
        assert_eq!(
            Measure::of(|w| Data::encode_prefix(u32::MAX, w)).len(),
            DATA_PREFIX_LEN
        );
    }

    #[test]
    fn data_head_into_a_fixed_slice_matches_the_whole_message() {
        // As the client's pump does: the head goes into the front of a buffer the file fills.
        let mut buf = [0u8; HEADER_LEN + DATA_PREFIX_LEN + 3];
        encode_data_head(7, 3, &mut &mut buf[..HEADER_LEN + DATA_PREFIX_LEN]);
        buf[HEADER_LEN + DATA_PREFIX_LEN..].copy_from_slice(b"xyz");
        let whole = Message::from(Data {
            id: 7,
            bytes: Bytes::from_static(b"xyz"),
        })
        .to_bytes()
        .unwrap();
        assert_eq!(&buf[..], &whole[..]);
    }
}
