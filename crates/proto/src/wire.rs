//! Field-level reading and writing shared by every message: little-endian integers, length-prefixed
//! strings, fixed hashes. Reading never allocates more than the bytes that are already present.

use bytes::{Buf, BufMut, Bytes};

use crate::{DecodeError, EncodeError};

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

/// Where a message's fields go when it is encoded: any [`BufMut`], or a [`Measure`] that only adds
/// up their sizes. Each message writes its fields once, through this trait, so the length in its
/// header is the length of what its encoder writes, by construction.
///
/// Writing never fails: a field that cannot be encoded (a string longer than its `u16` prefix can
/// say) is reported to [`Writer::refuse`]. A [`Measure`] keeps the first refusal, and every public
/// encoder measures before it writes, so nothing reaches a buffer in that case.
pub(crate) trait Writer {
    /// Raw bytes.
    fn slice(&mut self, b: &[u8]);

    /// `n` zero bytes.
    fn zeros(&mut self, n: usize);

    /// A field that cannot be encoded; see the trait's documentation.
    fn refuse(&mut self, error: EncodeError);

    fn u8(&mut self, v: u8) {
        self.slice(&[v]);
    }

    fn u16(&mut self, v: u16) {
        self.slice(&v.to_le_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.slice(&v.to_le_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.slice(&v.to_le_bytes());
    }

    fn i64(&mut self, v: i64) {
        self.slice(&v.to_le_bytes());
    }

    /// A string with a `u16` byte-length prefix; `field` names it if it is too long.
    fn str16(&mut self, field: &'static str, s: &str) {
        if s.len() > u16::MAX as usize {
            self.refuse(EncodeError::StringTooLong {
                field,
                len: s.len(),
            });
        }
        self.u16(s.len() as u16);
        self.slice(s.as_bytes());
    }

    /// The `u16` count of a list of `n` items named `field`.
    fn count16(&mut self, field: &'static str, n: usize) {
        if n > u16::MAX as usize {
            self.refuse(EncodeError::TooManyItems { field });
        }
        self.u16(n as u16);
    }

    /// The `u32` count of a list of `n` items named `field`.
    fn count32(&mut self, field: &'static str, n: usize) {
        if n > u32::MAX as usize {
            self.refuse(EncodeError::TooManyItems { field });
        }
        self.u32(n as u32);
    }
}

impl<B: BufMut + ?Sized> Writer for B {
    fn slice(&mut self, b: &[u8]) {
        self.put_slice(b);
    }

    fn zeros(&mut self, n: usize) {
        self.put_bytes(0, n);
    }

    fn refuse(&mut self, _: EncodeError) {
        // Unreachable from the public encoders, which measure first and stop on a refusal.
    }
}

/// A [`Writer`] that writes nothing and adds up how many bytes would have been written.
#[derive(Debug, Default)]
pub(crate) struct Measure {
    len: usize,
    refused: Option<EncodeError>,
}

impl Measure {
    /// Runs an encoder against a fresh `Measure`.
    pub(crate) fn of(encode: impl FnOnce(&mut Measure)) -> Measure {
        let mut m = Measure::default();
        encode(&mut m);
        m
    }

    /// The number of bytes counted, whether or not a field was refused.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The number of bytes counted, as a header's `len`.
    ///
    /// # Errors
    /// The first field refused, or [`EncodeError::PayloadTooLarge`] beyond `u32::MAX` bytes.
    pub(crate) fn checked_len(self) -> Result<u32, EncodeError> {
        if let Some(e) = self.refused {
            return Err(e);
        }
        u32::try_from(self.len).map_err(|_| EncodeError::PayloadTooLarge { len: self.len })
    }
}

impl Writer for Measure {
    fn slice(&mut self, b: &[u8]) {
        self.len += b.len();
    }

    fn zeros(&mut self, n: usize) {
        self.len += n;
    }

    fn refuse(&mut self, error: EncodeError) {
        self.refused.get_or_insert(error);
    }
}
