//! JPEG: probe dimensions, encode RGB, decode to RGB.
//!
//! [`probe`] walks marker segments by their lengths up to the frame header (SOF), so a pass-through
//! frame gets its size without decoding a single pixel: on a 1080p frame that is a few hundred
//! bytes read instead of milliseconds of IDCT. Encoding uses the pure-Rust `jpeg-encoder` (SIMD on
//! x86-64 with AVX2) so a default build needs no C toolchain; the `turbojpeg` cargo feature swaps in
//! libjpeg-turbo for RGB encoding where cmake and nasm are available. Decoding uses `zune-jpeg`.

use bytes::Bytes;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

use crate::image::RgbImage;

/// Why a JPEG could not be probed, encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum JpegError {
    /// The data does not start with the SOI marker `FF D8`.
    #[error("not a JPEG (no FF D8 start-of-image marker)")]
    NotJpeg,
    /// The data ended inside the marker segments, before the frame header.
    #[error("JPEG truncated before its frame header")]
    Truncated,
    /// The marker structure is broken at `offset`.
    #[error("malformed JPEG at byte {offset}: {reason}")]
    Malformed {
        /// Byte offset of the problem from the start of the data.
        offset: usize,
        /// What was wrong there.
        reason: &'static str,
    },
    /// A start-of-scan or end-of-image marker came before any frame header (SOF).
    #[error("JPEG has no frame header (SOF) before its scan")]
    NoFrameHeader,
    /// The frame header declares a zero width or height (height deferred to a DNL marker is not
    /// supported).
    #[error("JPEG frame header declares zero width or height")]
    ZeroDimension,
    /// Width or height is zero or above 65535, the largest a baseline JPEG can hold.
    #[error("cannot encode a {width}x{height} JPEG: each side must be 1..=65535")]
    InvalidDimensions {
        /// Requested width in pixels.
        width: u32,
        /// Requested height in pixels.
        height: u32,
    },
    /// Quality outside 1..=100.
    #[error("JPEG quality must be 1..=100, got {0}")]
    InvalidQuality(u8),
    /// The pixel buffer's length does not match width × height × bytes per pixel.
    #[error("pixel buffer holds {actual} bytes, {expected} expected")]
    BufferSize {
        /// width × height × bytes per pixel.
        expected: usize,
        /// Length of the buffer passed in.
        actual: usize,
    },
    /// The encoder failed.
    #[error("JPEG encoding failed")]
    Encode(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The decoder rejected the data.
    #[error("JPEG decoding failed")]
    Decode(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Start of image.
pub(crate) const SOI: u8 = 0xD8;
/// End of image.
pub(crate) const EOI: u8 = 0xD9;
/// Start of scan: entropy-coded data follows its header.
pub(crate) const SOS: u8 = 0xDA;
/// Define Huffman tables.
const DHT: u8 = 0xC4;

/// Markers that stand alone, without a length field: TEM and RST0–RST7 (SOI and EOI too, but
/// callers treat those specially).
pub(crate) fn is_standalone(marker: u8) -> bool {
    marker == 0x01 || (0xD0..=0xD7).contains(&marker)
}

/// Start-of-frame markers SOF0–SOF15, less DHT (C4), JPG (C8) and DAC (CC) which share the range.
fn is_sof(marker: u8) -> bool {
    (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
}

/// One marker segment found by [`segments`]: the marker byte, where its `FF` starts, and its
/// payload (after the length field; empty for standalone markers).
struct Segment<'a> {
    marker: u8,
    offset: usize,
    payload: &'a [u8],
}

/// Walks the marker segments after SOI, stopping after SOS or EOI (which are yielded) or at the
/// first error. Fill bytes (`FF FF`) before a marker are skipped.
fn segments(data: &[u8]) -> impl Iterator<Item = Result<Segment<'_>, JpegError>> {
    let mut pos = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        if pos == 0 {
            pos = 2;
            if !data.starts_with(&[0xFF, SOI]) {
                done = true;
                return Some(Err(JpegError::NotJpeg));
            }
        }
        let result = next_segment(data, &mut pos);
        done = !matches!(&result, Ok(seg) if seg.marker != SOS && seg.marker != EOI);
        Some(result)
    })
}

fn next_segment<'a>(data: &'a [u8], pos: &mut usize) -> Result<Segment<'a>, JpegError> {
    let marker = loop {
        match data.get(*pos..*pos + 2) {
            Some([0xFF, 0xFF]) => *pos += 1,
            Some([0xFF, 0x00]) => {
                return Err(JpegError::Malformed {
                    offset: *pos,
                    reason: "FF 00 where a marker was expected",
                })
            }
            Some([0xFF, m]) => break *m,
            Some(_) => {
                return Err(JpegError::Malformed {
                    offset: *pos,
                    reason: "expected a marker (FF xx)",
                })
            }
            None => return Err(JpegError::Truncated),
        }
    };
    let offset = *pos;
    *pos += 2;
    if is_standalone(marker) || marker == EOI || marker == SOI {
        return Ok(Segment {
            marker,
            offset,
            payload: &[],
        });
    }
    let len = match data.get(*pos..*pos + 2) {
        Some(&[hi, lo]) => usize::from(u16::from_be_bytes([hi, lo])),
        _ => return Err(JpegError::Truncated),
    };
    if len < 2 {
        return Err(JpegError::Malformed {
            offset,
            reason: "segment length below 2",
        });
    }
    let payload = data.get(*pos + 2..*pos + len).ok_or(JpegError::Truncated)?;
    *pos += len;
    Ok(Segment {
        marker,
        offset,
        payload,
    })
}

/// Reads a JPEG's `(width, height)` from its frame header (SOF) without decoding.
///
/// Only the marker segments before the frame header are read, so a truncated scan still probes.
///
/// # Errors
/// [`JpegError::NotJpeg`], [`JpegError::Truncated`], [`JpegError::Malformed`],
/// [`JpegError::NoFrameHeader`] or [`JpegError::ZeroDimension`].
pub fn probe(data: &[u8]) -> Result<(u32, u32), JpegError> {
    for segment in segments(data) {
        let segment = segment?;
        if segment.marker == SOS || segment.marker == EOI {
            return Err(JpegError::NoFrameHeader);
        }
        if is_sof(segment.marker) {
            // precision (1), height (2), width (2), components...
            let &[_, h1, h0, w1, w0, ..] = segment.payload else {
                return Err(JpegError::Malformed {
                    offset: segment.offset,
                    reason: "frame header too short",
                });
            };
            let height = u32::from(u16::from_be_bytes([h1, h0]));
            let width = u32::from(u16::from_be_bytes([w1, w0]));
            if width == 0 || height == 0 {
                return Err(JpegError::ZeroDimension);
            }
            return Ok((width, height));
        }
    }
    // `segments` always ends with SOS, EOI or an error, all handled above.
    Err(JpegError::Truncated)
}

fn check_encode_args(
    len: usize,
    width: u32,
    height: u32,
    quality: u8,
) -> Result<(u16, u16), JpegError> {
    if !(1..=100).contains(&quality) {
        return Err(JpegError::InvalidQuality(quality));
    }
    let (Ok(w), Ok(h)) = (u16::try_from(width), u16::try_from(height)) else {
        return Err(JpegError::InvalidDimensions { width, height });
    };
    if w == 0 || h == 0 {
        return Err(JpegError::InvalidDimensions { width, height });
    }
    let expected = usize::from(w) * usize::from(h) * 3;
    if len != expected {
        return Err(JpegError::BufferSize {
            expected,
            actual: len,
        });
    }
    Ok((w, h))
}

/// A guess at the encoded size, so the output buffer rarely grows: about 1.5 bits per pixel plus
/// headers covers typical camera content at quality 80–90.
fn output_capacity(width: u16, height: u16) -> usize {
    usize::from(width) * usize::from(height) / 5 + 1024
}

fn encode_with_jpeg_encoder(
    pixels: &[u8],
    width: u16,
    height: u16,
    quality: u8,
    color: jpeg_encoder::ColorType,
) -> Result<Bytes, JpegError> {
    let mut out = Vec::with_capacity(output_capacity(width, height));
    jpeg_encoder::Encoder::new(&mut out, quality)
        .encode(pixels, width, height, color)
        .map_err(|e| JpegError::Encode(Box::new(e)))?;
    Ok(Bytes::from(out))
}

/// Encodes packed 8-bit RGB (`width * height * 3` bytes, rows top to bottom) as a baseline JPEG.
///
/// Quality below 90 subsamples chroma 2×2 (4:2:0), the usual choice for video; 90 and above keep
/// full chroma. With the `turbojpeg` feature this uses libjpeg-turbo, otherwise `jpeg-encoder`.
///
/// # Errors
/// [`JpegError::InvalidQuality`], [`JpegError::InvalidDimensions`], [`JpegError::BufferSize`], or
/// [`JpegError::Encode`] if the encoder fails.
pub fn encode_rgb(rgb: &[u8], width: u32, height: u32, quality: u8) -> Result<Bytes, JpegError> {
    let (w, h) = check_encode_args(rgb.len(), width, height, quality)?;
    #[cfg(feature = "turbojpeg")]
    {
        encode_with_turbojpeg(rgb, w, h, quality)
    }
    #[cfg(not(feature = "turbojpeg"))]
    {
        encode_with_jpeg_encoder(rgb, w, h, quality, jpeg_encoder::ColorType::Rgb)
    }
}

#[cfg(feature = "turbojpeg")]
fn encode_with_turbojpeg(
    rgb: &[u8],
    width: u16,
    height: u16,
    quality: u8,
) -> Result<Bytes, JpegError> {
    let image = turbojpeg::Image {
        pixels: rgb,
        width: usize::from(width),
        pitch: usize::from(width) * 3,
        height: usize::from(height),
        format: turbojpeg::PixelFormat::RGB,
    };
    let subsamp = if quality < 90 {
        turbojpeg::Subsamp::Sub2x2
    } else {
        turbojpeg::Subsamp::None
    };
    let buf = turbojpeg::compress(image, i32::from(quality), subsamp)
        .map_err(|e| JpegError::Encode(Box::new(e)))?;
    Ok(Bytes::copy_from_slice(&buf))
}

/// Encodes packed full-range YCbCr (`width * height * 3` bytes, one Y, Cb, Cr triple per pixel,
/// as JFIF defines it) as a baseline JPEG, skipping the colour conversion [`encode_rgb`] does.
///
/// Cameras deliver YCbCr already; converting it to RGB only for the encoder to convert it back
/// would waste a pass over every pixel. Always uses `jpeg-encoder`.
///
/// # Errors
/// As [`encode_rgb`].
pub fn encode_ycbcr(
    ycbcr: &[u8],
    width: u32,
    height: u32,
    quality: u8,
) -> Result<Bytes, JpegError> {
    let (w, h) = check_encode_args(ycbcr.len(), width, height, quality)?;
    encode_with_jpeg_encoder(ycbcr, w, h, quality, jpeg_encoder::ColorType::Ycbcr)
}

/// Decodes a JPEG (baseline or progressive; grayscale, YCbCr or CMYK) to packed 8-bit RGB.
///
/// # Errors
/// [`JpegError::Decode`] if `zune-jpeg` rejects the data (including images wider or taller than
/// 16384 pixels, its default limit).
pub fn decode_rgb(data: &[u8]) -> Result<RgbImage, JpegError> {
    let options = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(data), options);
    let pixels = decoder
        .decode()
        .map_err(|e| JpegError::Decode(Box::new(e)))?;
    let info = decoder
        .info()
        .ok_or_else(|| JpegError::Decode("decoder returned no image info".into()))?;
    RgbImage::new(u32::from(info.width), u32::from(info.height), pixels)
        .map_err(|_| JpegError::Decode("decoder returned a buffer of the wrong size".into()))
}

/// Returns `frame` with the standard Huffman tables (ITU T.81 Annex K.3) inserted before its first
/// scan if it has no DHT segment, else `frame` unchanged.
///
/// Many USB cameras send "motion JPEG" frames without Huffman tables, relying on the decoder to
/// assume the standard ones. Browsers cope; stricter decoders (Go's `image/jpeg`, for one) do not.
/// Inserting the tables makes every frame a complete JPEG file.
///
/// # Errors
/// Whatever [`probe`] would report for a broken marker structure before the first scan.
pub fn with_default_huffman_tables(frame: Bytes) -> Result<Bytes, JpegError> {
    let mut sos_offset = None;
    for segment in segments(&frame) {
        let segment = segment?;
        match segment.marker {
            DHT => break,
            SOS => sos_offset = Some(segment.offset),
            _ => {}
        }
    }
    let Some(at) = sos_offset else {
        // Either the tables are there (DHT came first) or there is no scan to decode anyway.
        return Ok(frame);
    };
    let mut out = Vec::with_capacity(frame.len() + STANDARD_DHT_LEN);
    out.extend_from_slice(&frame[..at]);
    out.extend_from_slice(&standard_dht_segment());
    out.extend_from_slice(&frame[at..]);
    Ok(Bytes::from(out))
}

/// Length of the DHT segment [`standard_dht_segment`] builds: marker, length, and four tables of
/// class/id byte + 16 code counts + values.
const STANDARD_DHT_LEN: usize = 2 + 2 + 4 * (1 + 16) + 12 + 12 + 162 + 162;

fn standard_dht_segment() -> Vec<u8> {
    let tables: [(u8, &[u8; 16], &[u8]); 4] = [
        (0x00, &LUMA_DC_COUNTS, &DC_VALUES),
        (0x10, &LUMA_AC_COUNTS, &LUMA_AC_VALUES),
        (0x01, &CHROMA_DC_COUNTS, &DC_VALUES),
        (0x11, &CHROMA_AC_COUNTS, &CHROMA_AC_VALUES),
    ];
    let mut seg = Vec::with_capacity(STANDARD_DHT_LEN);
    seg.extend_from_slice(&[0xFF, DHT]);
    let len = u16::try_from(STANDARD_DHT_LEN - 2).expect("DHT segment fits u16");
    seg.extend_from_slice(&len.to_be_bytes());
    for (class_id, counts, values) in tables {
        seg.push(class_id);
        seg.extend_from_slice(counts);
        seg.extend_from_slice(values);
    }
    seg
}

// ITU T.81 Annex K.3, tables K.3–K.6: the "typical" Huffman tables.
const LUMA_DC_COUNTS: [u8; 16] = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const CHROMA_DC_COUNTS: [u8; 16] = [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0];
const DC_VALUES: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const LUMA_AC_COUNTS: [u8; 16] = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D];
const LUMA_AC_VALUES: [u8; 162] = [
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
    0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xA1, 0x08, 0x23, 0x42, 0xB1, 0xC1, 0x15, 0x52, 0xD1, 0xF0,
    0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0A, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2A, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
    0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
    0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
    0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7,
    0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3, 0xC4, 0xC5,
    0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xE1, 0xE2,
    0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8,
    0xF9, 0xFA,
];
const CHROMA_AC_COUNTS: [u8; 16] = [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77];
const CHROMA_AC_VALUES: [u8; 162] = [
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
    0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xA1, 0xB1, 0xC1, 0x09, 0x23, 0x33, 0x52, 0xF0,
    0x15, 0x62, 0x72, 0xD1, 0x0A, 0x16, 0x24, 0x34, 0xE1, 0x25, 0xF1, 0x17, 0x18, 0x19, 0x1A, 0x26,
    0x27, 0x28, 0x29, 0x2A, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
    0x49, 0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
    0x69, 0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
    0x88, 0x89, 0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5,
    0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3,
    0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA,
    0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8,
    0xF9, 0xFA,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_images::{jpeg_with, jpeg_with_exif_thumbnail, real_frames, small_jpeg};

    /// Mean absolute difference per sample.
    fn mean_error(a: &[u8], b: &[u8]) -> f64 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(x.abs_diff(*y)))
            .sum::<f64>()
            / a.len() as f64
    }

    #[test]
    fn probe_reads_real_frames_without_decoding() {
        for (name, bytes) in real_frames() {
            assert_eq!(probe(&bytes).unwrap(), (1920, 1080), "{name}");
            // Only the headers are needed: the first kilobyte is enough.
            assert_eq!(probe(&bytes[..1024]).unwrap(), (1920, 1080), "{name}");
        }
    }

    #[test]
    fn probe_handles_every_kind_of_frame_header() {
        assert_eq!(probe(&small_jpeg(33, 17, 1)).unwrap(), (33, 17));
        let progressive = jpeg_with(40, 30, 1, |e| e.set_progressive(true));
        assert_eq!(probe(&progressive).unwrap(), (40, 30));
        assert!(progressive.windows(2).any(|w| w == [0xFF, 0xC2]), "SOF2");
        assert_eq!(probe(&jpeg_with_exif_thumbnail()).unwrap(), (64, 48));
        // Hand-made: fill bytes, a restart-interval segment and a 12-bit extended SOF1.
        let header = [
            0xFF, 0xD8, 0xFF, 0xFF, 0xFF, 0xDD, 0x00, 0x04, 0x00, 0x10, // SOI, fill, DRI
            0xFF, 0xC1, 0x00, 0x0B, 0x0C, 0x01, 0x02, 0x03, 0x04, 0x01, 0x01, 0x11, 0x00,
        ];
        assert_eq!(probe(&header).unwrap(), (0x0304, 0x0102));
    }

    #[test]
    fn probe_explains_what_is_wrong() {
        assert!(matches!(probe(b""), Err(JpegError::NotJpeg)));
        assert!(matches!(
            probe(b"\x89PNG\r\n\x1a\n"),
            Err(JpegError::NotJpeg)
        ));
        assert!(matches!(probe(b"\xFF\xD8"), Err(JpegError::Truncated)));
        assert!(matches!(
            probe(b"\xFF\xD8\xFF\xE0\x00\x10JFIF"),
            Err(JpegError::Truncated)
        ));
        assert!(matches!(
            probe(b"\xFF\xD8\xFF\xD9"),
            Err(JpegError::NoFrameHeader)
        ));
        assert!(matches!(
            probe(b"\xFF\xD8\xFF\xDA\x00\x02"),
            Err(JpegError::NoFrameHeader)
        ));
        assert!(matches!(
            probe(b"\xFF\xD8\x00\x00"),
            Err(JpegError::Malformed { offset: 2, .. })
        ));
        assert!(matches!(
            probe(b"\xFF\xD8\xFF\xE0\x00\x01"),
            Err(JpegError::Malformed { offset: 2, .. })
        ));
        let zero_height = [
            0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x00, 0x00, 0x10, 0x01, 0x01, 0x11,
            0x00,
        ];
        assert!(matches!(probe(&zero_height), Err(JpegError::ZeroDimension)));
    }

    #[test]
    fn encode_then_decode_round_trips() {
        // Smooth content, like most of a camera picture.
        let (w, h) = (96, 64);
        let rgb: Vec<u8> = (0..h)
            .flat_map(|y| {
                (0..w).flat_map(move |x| [(x * 2) as u8, (y * 3) as u8, ((x + y) * 2) as u8])
            })
            .collect();
        for quality in [60, 95] {
            let jpeg = encode_rgb(&rgb, w, h, quality).unwrap();
            assert_eq!(probe(&jpeg).unwrap(), (w, h));
            let decoded = decode_rgb(&jpeg).unwrap();
            assert_eq!((decoded.width(), decoded.height()), (w, h));
            let error = mean_error(decoded.pixels(), &rgb);
            assert!(error < 8.0, "quality {quality}: mean error {error}");
        }
    }

    #[test]
    fn encode_ycbcr_matches_encode_rgb() {
        // Mid grey is the same in both spaces: Y=128, Cb=Cr=128.
        let grey = vec![128u8; 16 * 16 * 3];
        let from_ycbcr = decode_rgb(&encode_ycbcr(&grey, 16, 16, 90).unwrap()).unwrap();
        let from_rgb = decode_rgb(&encode_rgb(&grey, 16, 16, 90).unwrap()).unwrap();
        assert!(mean_error(from_ycbcr.pixels(), from_rgb.pixels()) < 1.0);
    }

    #[test]
    fn encode_refuses_bad_arguments() {
        let rgb = vec![0u8; 12];
        assert!(matches!(
            encode_rgb(&rgb, 2, 2, 0),
            Err(JpegError::InvalidQuality(0))
        ));
        assert!(matches!(
            encode_rgb(&rgb, 2, 2, 101),
            Err(JpegError::InvalidQuality(101))
        ));
        assert!(matches!(
            encode_rgb(&rgb, 0, 2, 80),
            Err(JpegError::InvalidDimensions { .. })
        ));
        assert!(matches!(
            encode_rgb(&rgb, 70_000, 1, 80),
            Err(JpegError::InvalidDimensions { .. })
        ));
        assert!(matches!(
            encode_rgb(&rgb, 2, 3, 80),
            Err(JpegError::BufferSize {
                expected: 18,
                actual: 12
            })
        ));
    }

    #[test]
    fn decode_reads_real_frames_and_rejects_garbage() {
        let (_, bytes) = real_frames().swap_remove(0);
        let image = decode_rgb(&bytes).unwrap();
        assert_eq!((image.width(), image.height()), (1920, 1080));
        assert!(matches!(
            decode_rgb(b"\xFF\xD8\xFF\xD9"),
            Err(JpegError::Decode(_))
        ));
    }

    /// `jpeg` with every DHT segment cut out, as some USB cameras send it.
    fn without_huffman_tables(jpeg: &[u8]) -> Vec<u8> {
        let mut out = jpeg[..2].to_vec();
        for segment in segments(jpeg) {
            let segment = segment.unwrap();
            let end =
                segment.payload.as_ptr() as usize - jpeg.as_ptr() as usize + segment.payload.len();
            if segment.marker == SOS {
                out.extend_from_slice(&jpeg[segment.offset..]);
                break;
            }
            if segment.marker != DHT {
                out.extend_from_slice(&jpeg[segment.offset..end]);
            }
        }
        out
    }

    #[test]
    fn standard_huffman_tables_are_added_when_missing() {
        // jpeg-encoder writes the standard tables, so stripping and re-adding them must decode to
        // the same pixels.
        let original = small_jpeg(48, 32, 3);
        let stripped = without_huffman_tables(&original);
        assert!(stripped.len() < original.len());
        assert!(!stripped.windows(2).any(|w| w == [0xFF, DHT]));
        let fixed = with_default_huffman_tables(Bytes::from(stripped)).unwrap();
        assert_eq!(fixed.windows(2).filter(|w| *w == [0xFF, DHT]).count(), 1);
        assert_eq!(
            decode_rgb(&fixed).unwrap().pixels(),
            decode_rgb(&original).unwrap().pixels()
        );
    }

    #[test]
    fn frames_with_huffman_tables_are_left_alone() {
        let original = Bytes::from(small_jpeg(16, 16, 1));
        let same = with_default_huffman_tables(original.clone()).unwrap();
        assert_eq!(same.as_ptr(), original.as_ptr(), "no copy");
        assert!(matches!(
            with_default_huffman_tables(Bytes::from_static(b"junk")),
            Err(JpegError::NotJpeg)
        ));
    }

    #[test]
    fn standard_dht_segment_is_well_formed() {
        let seg = standard_dht_segment();
        assert_eq!(seg.len(), STANDARD_DHT_LEN);
        assert_eq!(
            usize::from(u16::from_be_bytes([seg[2], seg[3]])),
            seg.len() - 2
        );
        for (counts, values) in [
            (LUMA_DC_COUNTS, &DC_VALUES[..]),
            (CHROMA_DC_COUNTS, &DC_VALUES[..]),
            (LUMA_AC_COUNTS, &LUMA_AC_VALUES[..]),
            (CHROMA_AC_COUNTS, &CHROMA_AC_VALUES[..]),
        ] {
            let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
            assert_eq!(total, values.len());
        }
    }
}
