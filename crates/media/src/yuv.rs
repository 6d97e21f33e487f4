//! YUYV (YUY2) camera pixels to JPEG.
//!
//! USB cameras that offer no MJPEG send YUYV 4:2:2: `Y0 U Y1 V` for each pair of pixels, with
//! luma in the "limited" video range 16–235 and chroma in 16–240. A JPEG (JFIF) holds full-range
//! YCbCr, so the conversion is a per-sample range stretch through lookup tables and a chroma
//! duplication; going through RGB and back, as a generic path would, costs two colour-matrix
//! passes for nothing.

use bytes::Bytes;

use crate::jpeg::{self, JpegError};

/// Why YUYV pixels could not be converted or encoded.
#[derive(Debug, thiserror::Error)]
pub enum YuvError {
    /// YUYV pairs pixels, so the width must be even and non-zero, and the height non-zero.
    #[error("YUYV needs an even, non-zero width and a non-zero height, got {width}x{height}")]
    BadDimensions {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// The row stride is below `width * 2` or the buffer is shorter than `stride * height`.
    #[error("YUYV buffer of {len} bytes with stride {stride} is too small for {width}x{height}")]
    BufferTooSmall {
        /// Length of the buffer given.
        len: usize,
        /// Bytes per row given.
        stride: usize,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// Encoding the converted pixels failed.
    #[error(transparent)]
    Jpeg(#[from] JpegError),
}

/// The sample range of YUYV input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YuvRange {
    /// Video range (Y 16–235, Cb/Cr 16–240): what cameras send unless they say otherwise.
    Limited,
    /// Full range (0–255), as JPEG stores it.
    Full,
}

/// Lookup tables from camera samples to full-range JFIF samples.
struct RangeTables {
    luma: [u8; 256],
    chroma: [u8; 256],
}

impl RangeTables {
    const fn new(range: YuvRange) -> RangeTables {
        let mut luma = [0u8; 256];
        let mut chroma = [0u8; 256];
        let mut i = 0;
        while i < 256 {
            let v = i as i32;
            let (l, c) = match range {
                YuvRange::Full => (v, v),
                YuvRange::Limited => (
                    div_round((v - 16) * 255, 219),
                    div_round((v - 128) * 255, 224) + 128,
                ),
            };
            luma[i] = clamp(l);
            chroma[i] = clamp(c);
            i += 1;
        }
        RangeTables { luma, chroma }
    }
}

/// `n / d` rounded to nearest, halves away from zero (`d > 0`).
const fn div_round(n: i32, d: i32) -> i32 {
    if n >= 0 {
        (2 * n + d) / (2 * d)
    } else {
        -((-2 * n + d) / (2 * d))
    }
}

const fn clamp(v: i32) -> u8 {
    if v < 0 {
        0
    } else if v > 255 {
        255
    } else {
        v as u8
    }
}

static LIMITED: RangeTables = RangeTables::new(YuvRange::Limited);
static FULL: RangeTables = RangeTables::new(YuvRange::Full);

/// Converts YUYV rows (`stride` bytes apart) to packed full-range YCbCr 4:4:4 in `out` (resized to
/// `width * height * 3`), ready for [`jpeg::encode_ycbcr`].
///
/// # Errors
/// [`YuvError::BadDimensions`] or [`YuvError::BufferTooSmall`].
pub fn yuyv_to_ycbcr(
    yuyv: &[u8],
    width: u32,
    height: u32,
    stride: usize,
    range: YuvRange,
    out: &mut Vec<u8>,
) -> Result<(), YuvError> {
    if width == 0 || !width.is_multiple_of(2) || height == 0 {
        return Err(YuvError::BadDimensions { width, height });
    }
    let row_bytes = width as usize * 2;
    let needed = stride
        .checked_mul(height as usize - 1)
        .and_then(|n| n.checked_add(row_bytes));
    if stride < row_bytes || needed.is_none_or(|n| yuyv.len() < n) {
        return Err(YuvError::BufferTooSmall {
            len: yuyv.len(),
            stride,
            width,
            height,
        });
    }
    let tables = match range {
        YuvRange::Limited => &LIMITED,
        YuvRange::Full => &FULL,
    };
    out.clear();
    out.reserve(width as usize * height as usize * 3);
    for y in 0..height as usize {
        let row = &yuyv[y * stride..y * stride + row_bytes];
        for quad in row.chunks_exact(4) {
            let (y0, u, y1, v) = (quad[0], quad[1], quad[2], quad[3]);
            let (cb, cr) = (tables.chroma[usize::from(u)], tables.chroma[usize::from(v)]);
            out.extend_from_slice(&[
                tables.luma[usize::from(y0)],
                cb,
                cr,
                tables.luma[usize::from(y1)],
                cb,
                cr,
            ]);
        }
    }
    Ok(())
}

/// Converts YUYV to JPEG, using `scratch` for the intermediate pixels so a capture loop
/// allocates only the output.
///
/// # Errors
/// As [`yuyv_to_ycbcr`] and [`jpeg::encode_ycbcr`].
pub fn yuyv_to_jpeg(
    yuyv: &[u8],
    width: u32,
    height: u32,
    stride: usize,
    range: YuvRange,
    quality: u8,
    scratch: &mut Vec<u8>,
) -> Result<Bytes, YuvError> {
    yuyv_to_ycbcr(yuyv, width, height, stride, range, scratch)?;
    Ok(jpeg::encode_ycbcr(scratch, width, height, quality)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limited_range_is_stretched_to_full() {
        assert_eq!(LIMITED.luma[16], 0);
        assert_eq!(LIMITED.luma[235], 255);
        assert_eq!(LIMITED.luma[0], 0, "below black clamps");
        assert_eq!(LIMITED.luma[255], 255, "above white clamps");
        assert_eq!(LIMITED.luma[126], 128);
        assert_eq!(LIMITED.chroma[128], 128);
        assert_eq!(LIMITED.chroma[16], 0);
        assert_eq!(LIMITED.chroma[240], 255);
        assert!((0..=255).all(|i| FULL.luma[i] as usize == i && FULL.chroma[i] as usize == i));
    }

    /// A YUYV image whose left half is one colour and right half another, with `pad` bytes of
    /// padding at the end of each row.
    fn two_colours(width: u32, height: u32, pad: usize, left: [u8; 3], right: [u8; 3]) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..height {
            for x in (0..width).step_by(2) {
                let [y, u, v] = if x < width / 2 { left } else { right };
                out.extend_from_slice(&[y, u, y, v]);
            }
            out.extend(std::iter::repeat_n(0xAA, pad));
        }
        out
    }

    #[test]
    fn yuyv_pairs_become_ycbcr_triples() {
        let yuyv = [16, 128, 235, 128, 81, 90, 81, 240];
        let mut out = Vec::new();
        yuyv_to_ycbcr(&yuyv, 4, 1, 8, YuvRange::Limited, &mut out).unwrap();
        assert_eq!(out, [0, 128, 128, 255, 128, 128, 76, 85, 255, 76, 85, 255]);
        yuyv_to_ycbcr(&yuyv, 4, 1, 8, YuvRange::Full, &mut out).unwrap();
        assert_eq!(out, [16, 128, 128, 235, 128, 128, 81, 90, 240, 81, 90, 240]);
    }

    #[test]
    fn camera_red_and_grey_come_out_right_after_jpeg() {
        // BT.601 video-range red and mid grey, with row padding as drivers add.
        let (w, h, pad) = (32, 16, 8);
        let red = [81, 90, 240];
        let grey = [126, 128, 128];
        let yuyv = two_colours(w, h, pad, red, grey);
        let stride = w as usize * 2 + pad;
        let mut scratch = Vec::new();
        let jpeg = yuyv_to_jpeg(&yuyv, w, h, stride, YuvRange::Limited, 95, &mut scratch).unwrap();
        let rgb = jpeg::decode_rgb(&jpeg).unwrap();
        let at = |x: u32, y: u32| {
            let i = (y * w + x) as usize * 3;
            [rgb.pixels()[i], rgb.pixels()[i + 1], rgb.pixels()[i + 2]]
        };
        let near =
            |got: [u8; 3], want: [u8; 3]| got.iter().zip(want).all(|(g, w)| g.abs_diff(w) <= 6);
        assert!(near(at(4, 8), [255, 0, 0]), "red: {:?}", at(4, 8));
        assert!(near(at(27, 8), [128, 128, 128]), "grey: {:?}", at(27, 8));
    }

    #[test]
    fn bad_sizes_are_refused() {
        let mut out = Vec::new();
        let buf = [0u8; 64];
        assert!(matches!(
            yuyv_to_ycbcr(&buf, 3, 2, 8, YuvRange::Full, &mut out),
            Err(YuvError::BadDimensions { .. })
        ));
        assert!(matches!(
            yuyv_to_ycbcr(&buf, 4, 0, 8, YuvRange::Full, &mut out),
            Err(YuvError::BadDimensions { .. })
        ));
        assert!(matches!(
            yuyv_to_ycbcr(&buf, 4, 2, 7, YuvRange::Full, &mut out),
            Err(YuvError::BufferTooSmall { .. })
        ));
        assert!(matches!(
            yuyv_to_ycbcr(&buf, 8, 5, 16, YuvRange::Full, &mut out),
            Err(YuvError::BufferTooSmall { .. })
        ));
        // The last row needs no padding after it.
        assert!(yuyv_to_ycbcr(&buf[..56], 4, 4, 16, YuvRange::Full, &mut out).is_ok());
        assert!(yuyv_to_ycbcr(&buf[..55], 4, 4, 16, YuvRange::Full, &mut out).is_err());
    }
}
