//! Field-level reading and writing shared by every message: little-endian integers, length-prefixed
//! strings, fixed hashes. Reading never allocates more than the bytes that are already present.

use bytes::{Buf, BufMut, Bytes};

use crate::DecodeError;

/// A cursor over one message's payload. Every read checks the remaining length first, so a lying
/// length field can only produce [`DecodeError::Truncated`], never an over-read or a large allocation.
pub(crate) struct Reader {
    buf: Bytes,
    kind: &'static str,
}

impl Reader {
    pub(crate) fn new(buf: Bytes, kind: &'static str) -> Self {
        Reader { buf, kind }
    }

    fn need(&self, n: usize) -> Result<(), DecodeError> {
        if self.buf.len() < n {
            Err(DecodeError::Truncated { message: self.kind })
        } else {
            Ok(())
        }
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        self.need(1)?;
        Ok(self.buf.get_u8())
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        self.need(2)?;
        Ok(self.buf.get_u16_le())
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        self.need(4)?;
        Ok(self.buf.get_u32_le())
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        self.need(8)?;
        Ok(self.buf.get_u64_le())
    }

    pub(crate) fn i64(&mut self) -> Result<i64, DecodeError> {
        self.need(8)?;
        Ok(self.buf.get_i64_le())
    }

    pub(crate) fn hash(&mut self) -> Result<[u8; 32], DecodeError> {
        self.need(32)?;
        let mut h = [0u8; 32];
        self.buf.copy_to_slice(&mut h);
        Ok(h)
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        self.need(n)?;
        Ok(self.buf.split_to(n))
    }

    /// A string with a `u16` byte-length prefix, which must be valid UTF-8.
    pub(crate) fn str16(&mut self) -> Result<String, DecodeError> {
        let n = self.u16()? as usize;
        let raw = self.bytes(n)?;
        self.utf8(raw)
    }

    /// Everything that is left, as UTF-8 text.
    pub(crate) fn rest_str(&mut self) -> Result<String, DecodeError> {
        let raw = self.rest();
        self.utf8(raw)
    }

    /// Everything that is left, without copying.
    pub(crate) fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf)
    }

    fn utf8(&self, raw: Bytes) -> Result<String, DecodeError> {
        String::from_utf8(raw.to_vec()).map_err(|_| DecodeError::InvalidUtf8 { message: self.kind })
    }

    /// Fails if the message carries bytes after its last field.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                message: self.kind,
                extra: self.buf.len(),
            })
        }
    }
}

/// Encoded size of a `u16`-prefixed string.
pub(crate) fn str16_len(s: &str) -> usize {
    2 + s.len()
}

/// Writes a `u16`-prefixed string. Callers validate lengths with [`check_str16`] before encoding.
pub(crate) fn put_str16(dst: &mut impl BufMut, s: &str) {
    dst.put_u16_le(s.len() as u16);
    dst.put_slice(s.as_bytes());
}

/// Whether `s` fits a `u16` length prefix.
pub(crate) fn check_str16(field: &'static str, s: &str) -> Result<(), crate::EncodeError> {
    if s.len() > u16::MAX as usize {
        Err(crate::EncodeError::StringTooLong {
            field,
            len: s.len(),
        })
    } else {
        Ok(())
    }
}
