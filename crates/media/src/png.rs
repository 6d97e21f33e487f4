//! PNG decoding to RGB.
//!
//! PNG matters here only as an input: screenshots and rendered images dropped into a folder that is
//! streamed, or uploaded to the hub and thumbnailed. Every PNG flavour (palette, grey, 16-bit,
//! alpha) is flattened to 8-bit RGB, because everything downstream is JPEG, which has no alpha.
//! Transparent pixels are composited over white, the way a browser shows them on a plain page.

use zune_png::zune_core::bytestream::ZCursor;
use zune_png::zune_core::colorspace::ColorSpace;
use zune_png::zune_core::options::DecoderOptions;
use zune_png::zune_core::result::DecodingResult;
use zune_png::PngDecoder;

use crate::image::RgbImage;

/// The 8 bytes every PNG file starts with.
pub const SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

/// Why a PNG could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum PngError {
    /// The decoder rejected the data.
    #[error("PNG decoding failed")]
    Decode(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The data does not start with a PNG signature and IHDR chunk.
    #[error("not a PNG (no signature and IHDR header)")]
    NotPng,
    /// The decoder produced a colour layout this crate does not flatten.
    #[error("PNG decoded to an unsupported colour layout ({0})")]
    UnsupportedLayout(String),
}

/// Reads a PNG's `(width, height)` from its IHDR chunk without decoding.
///
/// # Errors
/// [`PngError::NotPng`] if the signature or IHDR chunk is missing.
pub fn probe(data: &[u8]) -> Result<(u32, u32), PngError> {
    // Signature, then the IHDR chunk: length 13, type, width, height (big-endian).
    let header = data.get(..24).ok_or(PngError::NotPng)?;
    if !header.starts_with(SIGNATURE) || &header[12..16] != b"IHDR" {
        return Err(PngError::NotPng);
    }
    let be = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    Ok((be(16), be(20)))
}

/// Decodes a PNG to 8-bit RGB: palettes expanded, grey replicated, 16-bit samples reduced to 8,
/// alpha composited over white.
///
/// # Errors
/// [`PngError::Decode`] if `zune-png` rejects the data (including images wider or taller than
/// 16384 pixels, its default limit).
pub fn decode_rgb(data: &[u8]) -> Result<RgbImage, PngError> {
    let options = DecoderOptions::default().png_set_strip_to_8bit(true);
    let mut decoder = PngDecoder::new_with_options(ZCursor::new(data), options);
    let decoded = decoder
        .decode()
        .map_err(|e| PngError::Decode(Box::new(e)))?;
    let DecodingResult::U8(samples) = decoded else {
        return Err(PngError::UnsupportedLayout(
            "samples wider than 8 bits".into(),
        ));
    };
    let (Some((width, height)), Some(colorspace)) = (decoder.dimensions(), decoder.colorspace())
    else {
        return Err(PngError::Decode("decoder returned no image info".into()));
    };
    let pixels = match colorspace {
        ColorSpace::RGB => samples,
        ColorSpace::RGBA => samples
            .chunks_exact(4)
            .flat_map(|p| {
                let a = p[3];
                [
                    over_white(p[0], a),
                    over_white(p[1], a),
                    over_white(p[2], a),
                ]
            })
            .collect(),
        ColorSpace::Luma => samples.iter().flat_map(|&l| [l, l, l]).collect(),
        ColorSpace::LumaA => samples
            .chunks_exact(2)
            .flat_map(|p| {
                let l = over_white(p[0], p[1]);
                [l, l, l]
            })
            .collect(),
        other => return Err(PngError::UnsupportedLayout(format!("{other:?}"))),
    };
    let (width, height) = (
        u32::try_from(width).map_err(|_| PngError::Decode("width exceeds u32".into()))?,
        u32::try_from(height).map_err(|_| PngError::Decode("height exceeds u32".into()))?,
    );
    RgbImage::new(width, height, pixels)
        .map_err(|_| PngError::Decode("decoder returned a buffer of the wrong size".into()))
}

/// `value` with opacity `alpha` composited over white, rounded.
fn over_white(value: u8, alpha: u8) -> u8 {
    let (v, a) = (u32::from(value), u32::from(alpha));
    // v*a + 255*(255-a), divided by 255 with rounding; at most 255.
    ((v * a + 255 * (255 - a) + 127) / 255) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_images::{png, rgb_pattern};

    #[test]
    fn rgb_png_decodes_exactly() {
        let rgb = rgb_pattern(13, 7, 1);
        let image = decode_rgb(&png(&rgb, 13, 7, ColorSpace::RGB)).unwrap();
        assert_eq!((image.width(), image.height()), (13, 7));
        assert_eq!(image.pixels(), &rgb[..]);
    }

    #[test]
    fn grey_and_alpha_are_flattened_to_rgb() {
        let luma = [0u8, 128, 255, 7];
        let image = decode_rgb(&png(&luma, 2, 2, ColorSpace::Luma)).unwrap();
        assert_eq!(
            image.pixels(),
            &[0, 0, 0, 128, 128, 128, 255, 255, 255, 7, 7, 7]
        );

        // Opaque red, transparent (shows white), half-transparent black (mid grey).
        let rgba = [255, 0, 0, 255, 0, 0, 0, 0, 0, 0, 0, 128];
        let image = decode_rgb(&png(&rgba, 3, 1, ColorSpace::RGBA)).unwrap();
        assert_eq!(image.pixels(), &[255, 0, 0, 255, 255, 255, 127, 127, 127]);

        let luma_alpha = [200, 255, 0, 0];
        let image = decode_rgb(&png(&luma_alpha, 2, 1, ColorSpace::LumaA)).unwrap();
        assert_eq!(image.pixels(), &[200, 200, 200, 255, 255, 255]);
    }

    #[test]
    fn broken_png_is_an_error() {
        let mut data = png(&rgb_pattern(8, 8, 1), 8, 8, ColorSpace::RGB);
        data.truncate(40);
        assert!(matches!(decode_rgb(&data), Err(PngError::Decode(_))));
        assert!(matches!(decode_rgb(b"not a png"), Err(PngError::Decode(_))));
    }

    #[test]
    fn probe_reads_the_header() {
        let data = png(&rgb_pattern(13, 7, 1), 13, 7, ColorSpace::RGB);
        assert_eq!(probe(&data).unwrap(), (13, 7));
        assert!(matches!(probe(&data[..20]), Err(PngError::NotPng)));
        assert!(matches!(probe(&[0; 32]), Err(PngError::NotPng)));
    }

    #[test]
    fn compositing_over_white() {
        assert_eq!(over_white(0, 255), 0);
        assert_eq!(over_white(0, 0), 255);
        assert_eq!(over_white(100, 0), 255);
        assert_eq!(over_white(255, 128), 255);
        assert_eq!(over_white(0, 128), 127);
    }
}
