//! Decoded pixels, format sniffing and thumbnails.
//!
//! The hub shows a small preview of every stored image and stream, so [`thumbnail`] must be cheap
//! on a 1080p camera frame: it decodes once, shrinks with a box filter (each output pixel is the
//! plain average of the source pixels it covers, which for large reductions looks as good as a
//! fancier kernel and costs one pass), and encodes the small result. Inputs are recognised by
//! their magic bytes, not by a file name.

use bytes::Bytes;

use crate::{jpeg, png};

/// Why an image could not be decoded or thumbnailed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The data is neither JPEG nor PNG.
    #[error("not a JPEG or PNG image")]
    Unrecognized,
    /// A thumbnail's longest side must be at least one pixel.
    #[error("thumbnail size must be at least 1 pixel")]
    ZeroSize,
    /// The pixel buffer's length does not match `width * height * 3`.
    #[error("RGB buffer holds {actual} bytes, {expected} expected")]
    BufferSize {
        /// `width * height * 3`.
        expected: usize,
        /// Length of the buffer passed in.
        actual: usize,
    },
    /// The image has more pixels than [`MAX_PIXELS`]; it was not decoded.
    #[error("{width}x{height} image exceeds the {MAX_PIXELS}-pixel decoding limit")]
    TooLarge {
        /// Width from the header.
        width: u32,
        /// Height from the header.
        height: u32,
    },
    /// Decoding or encoding a JPEG failed.
    #[error(transparent)]
    Jpeg(#[from] jpeg::JpegError),
    /// Decoding a PNG failed.
    #[error(transparent)]
    Png(#[from] png::PngError),
}

/// An image format this crate reads, recognised by its leading magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// JPEG/JFIF/EXIF: starts `FF D8 FF`.
    Jpeg,
    /// PNG: starts with the 8-byte PNG signature.
    Png,
}

impl ImageFormat {
    /// Recognises the format from the first bytes of `data`, or `None` for anything else.
    pub fn sniff(data: &[u8]) -> Option<ImageFormat> {
        if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(ImageFormat::Jpeg)
        } else if data.starts_with(png::SIGNATURE) {
            Some(ImageFormat::Png)
        } else {
            None
        }
    }
}

/// A decoded image: packed 8-bit RGB, rows top to bottom, no padding between rows.
#[derive(Clone, PartialEq, Eq)]
pub struct RgbImage {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

impl std::fmt::Debug for RgbImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pixels would flood any log or test failure.
        f.debug_struct("RgbImage")
            .field("width", &self.width)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

impl RgbImage {
    /// Wraps `pixels` (`width * height * 3` bytes of packed RGB).
    ///
    /// # Errors
    /// [`ImageError::BufferSize`] if the length does not match.
    pub fn new(width: u32, height: u32, pixels: Vec<u8>) -> Result<RgbImage, ImageError> {
        let expected = rgb_len(width, height);
        if pixels.len() != expected {
            return Err(ImageError::BufferSize {
                expected,
                actual: pixels.len(),
            });
        }
        Ok(RgbImage {
            width,
            height,
            pixels,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The packed RGB bytes.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// Takes the packed RGB bytes out.
    pub fn into_pixels(self) -> Vec<u8> {
        self.pixels
    }

    /// Encodes the image as a JPEG (see [`jpeg::encode_rgb`]).
    ///
    /// # Errors
    /// As [`jpeg::encode_rgb`].
    pub fn encode_jpeg(&self, quality: u8) -> Result<Bytes, jpeg::JpegError> {
        jpeg::encode_rgb(&self.pixels, self.width, self.height, quality)
    }

    /// Shrinks the image so neither side exceeds `max_side`, keeping the aspect ratio (each side at
    /// least 1 pixel), with a box filter. An image that already fits is returned as a copy.
    pub fn downscale_to_fit(&self, max_side: u32) -> RgbImage {
        let (width, height) = fit_within(self.width, self.height, max_side.max(1));
        if (width, height) == (self.width, self.height) {
            return self.clone();
        }
        let pixels = box_downscale(&self.pixels, self.width, self.height, width, height);
        RgbImage {
            width,
            height,
            pixels,
        }
    }
}

fn rgb_len(width: u32, height: u32) -> usize {
    width as usize * height as usize * 3
}

/// The largest size with `width:height`'s aspect ratio whose sides are at most `max_side`, or the
/// size itself if it already fits. Never returns a zero side.
fn fit_within(width: u32, height: u32, max_side: u32) -> (u32, u32) {
    if width <= max_side && height <= max_side {
        return (width, height);
    }
    let scale = |side: u32, long: u32| {
        let scaled =
            (u64::from(side) * u64::from(max_side) + u64::from(long) / 2) / u64::from(long);
        u32::try_from(scaled).unwrap_or(max_side).clamp(1, max_side)
    };
    if width >= height {
        (max_side, scale(height, width))
    } else {
        (scale(width, height), max_side)
    }
}

/// Source index range `[start, end)` covered by output index `i` of `dst` when shrinking `src`
/// (`dst <= src`, so every range holds at least one source index).
fn box_range(i: u32, src: u32, dst: u32) -> (usize, usize) {
    let start = u64::from(i) * u64::from(src) / u64::from(dst);
    let end = (u64::from(i) + 1) * u64::from(src) / u64::from(dst);
    (start as usize, end.max(start + 1) as usize)
}

/// Box-filter downscale of packed RGB. Sums each output row's band of source rows column by column
/// first (sequential reads), then sums each output pixel's run of columns.
fn box_downscale(src: &[u8], sw: u32, sh: u32, dw: u32, dh: u32) -> Vec<u8> {
    let stride = sw as usize * 3;
    let columns: Vec<(usize, usize)> = (0..dw).map(|x| box_range(x, sw, dw)).collect();
    let mut column_sums = vec![0u32; stride];
    let mut out = Vec::with_capacity(rgb_len(dw, dh));
    for y in 0..dh {
        let (y0, y1) = box_range(y, sh, dh);
        column_sums.fill(0);
        for row in src[y0 * stride..y1 * stride].chunks_exact(stride) {
            for (sum, &v) in column_sums.iter_mut().zip(row) {
                *sum += u32::from(v);
            }
        }
        let rows = (y1 - y0) as u64;
        for &(x0, x1) in &columns {
            let count = rows * (x1 - x0) as u64;
            let mut rgb = [0u64; 3];
            for px in column_sums[x0 * 3..x1 * 3].chunks_exact(3) {
                rgb[0] += u64::from(px[0]);
                rgb[1] += u64::from(px[1]);
                rgb[2] += u64::from(px[2]);
            }
            // Averages of u8 values fit u8.
            out.extend(rgb.map(|s| ((s + count / 2) / count) as u8));
        }
    }
    out
}

/// The most pixels [`decode_rgb`] and [`thumbnail`] decode: 32 Mpx (an 8K frame, 7680×4320,
/// fits), about 100 MB as RGB. Beyond that an uploaded file could exhaust a small hub's memory
/// (191 KiB of PNG can declare 8192×8192).
pub const MAX_PIXELS: u64 = 1 << 25;

/// Bytes that decoding an image of `width`×`height` holds at its peak (the RGB image and the
/// decoder's working rows), for callers that budget memory.
pub fn decode_cost(width: u32, height: u32) -> usize {
    (u64::from(width) * u64::from(height) * 3 + (1 << 20)) as usize
}

/// Reads an image's format and `(width, height)` from its header, without decoding.
///
/// # Errors
/// [`ImageError::Unrecognized`] for data that is neither JPEG nor PNG, else the format's probe
/// error.
pub fn probe(data: &[u8]) -> Result<(ImageFormat, u32, u32), ImageError> {
    let format = ImageFormat::sniff(data).ok_or(ImageError::Unrecognized)?;
    let (width, height) = match format {
        ImageFormat::Jpeg => jpeg::probe(data)?,
        ImageFormat::Png => png::probe(data)?,
    };
    Ok((format, width, height))
}

/// Decodes a JPEG or PNG (recognised by its magic bytes) to RGB.
///
/// # Errors
/// [`ImageError::Unrecognized`] for other data, [`ImageError::TooLarge`] above [`MAX_PIXELS`],
/// else the decoder's error.
pub fn decode_rgb(data: &[u8]) -> Result<RgbImage, ImageError> {
    let (format, width, height) = probe(data)?;
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ImageError::TooLarge { width, height });
    }
    match format {
        ImageFormat::Jpeg => Ok(jpeg::decode_rgb(data)?),
        ImageFormat::Png => Ok(png::decode_rgb(data)?),
    }
}

/// JPEG quality of thumbnails: small files, artefacts invisible at preview size.
pub const THUMBNAIL_QUALITY: u8 = 80;

/// Makes a JPEG thumbnail of a JPEG or PNG image whose longest side is at most `max_side` pixels.
///
/// A JPEG that already fits is returned unchanged (copied); anything else is decoded, shrunk with a
/// box filter and encoded at [`THUMBNAIL_QUALITY`].
///
/// # Errors
/// [`ImageError::ZeroSize`] if `max_side` is 0, [`ImageError::Unrecognized`] for data that is
/// neither JPEG nor PNG, [`ImageError::TooLarge`] above [`MAX_PIXELS`], or the decoder's or
/// encoder's error.
pub fn thumbnail(data: &[u8], max_side: u32) -> Result<Bytes, ImageError> {
    if max_side == 0 {
        return Err(ImageError::ZeroSize);
    }
    let (format, width, height) = probe(data)?;
    if format == ImageFormat::Jpeg && width <= max_side && height <= max_side {
        return Ok(Bytes::copy_from_slice(data));
    }
    let image = decode_rgb(data)?;
    Ok(image
        .downscale_to_fit(max_side)
        .encode_jpeg(THUMBNAIL_QUALITY)?)
}

#[cfg(test)]
mod tests {
    use zune_png::zune_core::colorspace::ColorSpace;

    use super::*;
    use crate::test_images::{png, real_frames, rgb_pattern, small_jpeg};

    #[test]
    fn formats_are_sniffed_from_content() {
        assert_eq!(
            ImageFormat::sniff(&small_jpeg(8, 8, 1)),
            Some(ImageFormat::Jpeg)
        );
        let png = png(&[0; 3], 1, 1, ColorSpace::RGB);
        assert_eq!(ImageFormat::sniff(&png), Some(ImageFormat::Png));
        assert_eq!(ImageFormat::sniff(b"GIF89a"), None);
        assert_eq!(ImageFormat::sniff(b""), None);
    }

    #[test]
    fn fit_keeps_aspect_and_never_hits_zero() {
        assert_eq!(fit_within(1920, 1080, 320), (320, 180));
        assert_eq!(fit_within(1080, 1920, 320), (180, 320));
        assert_eq!(fit_within(100, 50, 320), (100, 50));
        assert_eq!(fit_within(10_000, 1, 100), (100, 1));
        assert_eq!(fit_within(1, 10_000, 100), (1, 100));
        assert_eq!(fit_within(333, 333, 100), (100, 100));
    }

    #[test]
    fn box_filter_averages_exactly() {
        // 4×2 → 2×1: each output pixel averages a 2×2 block.
        #[rustfmt::skip]
        let src = [
            0, 0, 0,   10, 20, 30,   100, 100, 100,   200, 200, 200,
            2, 2, 2,   12, 22, 32,   100, 100, 100,   0, 0, 0,
        ];
        let image = RgbImage::new(4, 2, src.to_vec()).unwrap();
        let small = image.downscale_to_fit(2);
        assert_eq!((small.width(), small.height()), (2, 1));
        assert_eq!(small.pixels(), &[6, 11, 16, 100, 100, 100]);
    }

    #[test]
    fn box_filter_handles_uneven_ratios_and_uniform_colour() {
        let image = RgbImage::new(7, 5, [9, 99, 199].repeat(35)).unwrap();
        let small = image.downscale_to_fit(3);
        assert_eq!((small.width(), small.height()), (3, 2));
        assert!(small.pixels().chunks(3).all(|p| p == [9, 99, 199]));
        assert_eq!(image.downscale_to_fit(100), image, "already fits");
    }

    #[test]
    fn rgb_image_checks_its_buffer() {
        assert!(matches!(
            RgbImage::new(2, 2, vec![0; 11]),
            Err(ImageError::BufferSize {
                expected: 12,
                actual: 11
            })
        ));
    }

    #[test]
    fn thumbnail_of_a_real_1080p_frame() {
        let (_, frame) = real_frames().swap_remove(0);
        let thumb = thumbnail(&frame, 320).unwrap();
        assert_eq!(jpeg::probe(&thumb).unwrap(), (320, 180));
        assert!(thumb.len() < frame.len() / 10);
        // The thumbnail looks like the frame: compare with a box-filtered decode.
        let expected = jpeg::decode_rgb(&frame).unwrap().downscale_to_fit(320);
        let got = jpeg::decode_rgb(&thumb).unwrap();
        let error = got
            .pixels()
            .iter()
            .zip(expected.pixels())
            .map(|(a, b)| u64::from(a.abs_diff(*b)))
            .sum::<u64>()
            / got.pixels().len() as u64;
        assert!(error < 10, "mean error {error}");
    }

    #[test]
    fn thumbnail_of_png_and_of_small_jpeg() {
        let rgb = rgb_pattern(300, 100, 1);
        let thumb = thumbnail(&png(&rgb, 300, 100, ColorSpace::RGB), 150).unwrap();
        assert_eq!(jpeg::probe(&thumb).unwrap(), (150, 50));

        let small = small_jpeg(40, 30, 1);
        assert_eq!(
            thumbnail(&small, 64).unwrap(),
            small,
            "fits: returned as is"
        );
    }

    #[test]
    fn huge_declared_sizes_are_refused_before_decoding() {
        // A PNG header declaring 16384x16384, with no pixel data at all.
        let mut data = png(&[0; 3], 1, 1, ColorSpace::RGB);
        data[16..24].copy_from_slice(&[0, 0, 0x40, 0, 0, 0, 0x40, 0]);
        assert_eq!(probe(&data).unwrap(), (ImageFormat::Png, 16384, 16384));
        assert!(matches!(
            thumbnail(&data, 320),
            Err(ImageError::TooLarge {
                width: 16384,
                height: 16384
            })
        ));
        assert!(matches!(
            decode_rgb(&data),
            Err(ImageError::TooLarge { .. })
        ));
    }

    #[test]
    fn thumbnail_errors() {
        assert!(matches!(
            thumbnail(&small_jpeg(8, 8, 1), 0),
            Err(ImageError::ZeroSize)
        ));
        assert!(matches!(
            thumbnail(b"GIF89a...", 64),
            Err(ImageError::Unrecognized)
        ));
        assert!(matches!(
            thumbnail(b"\xFF\xD8\xFF\xD9", 64),
            Err(ImageError::Jpeg(jpeg::JpegError::NoFrameHeader))
        ));
    }
}
