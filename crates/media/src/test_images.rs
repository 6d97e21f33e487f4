//! Images for unit tests: the test kit's 1080p sample frames, and small JPEGs and PNGs made on the
//! spot.

use std::path::PathBuf;

use zune_png::zune_core::bit_depth::BitDepth;
use zune_png::zune_core::colorspace::ColorSpace;
use zune_png::zune_core::options::EncoderOptions;

/// 39 camera-like 1920×1080 JPEGs (`f0001.jpg`...), made by `framewire-testkit` once per build.
pub fn real_frames_dir() -> PathBuf {
    framewire_testkit::frames::sample_frames_dir().to_path_buf()
}

/// Every `.jpg` in [`real_frames_dir`], in name order. Panics (failing the test rather than
/// skipping it) when the folder cannot be read.
pub fn real_frames() -> Vec<(String, Vec<u8>)> {
    let dir = real_frames_dir();
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("test data missing: cannot read {} ({e})", dir.display()));
    let mut names: Vec<PathBuf> = entries
        .map(|e| e.expect("read_dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 39,
        "expected 39 frames in {}, found {}",
        dir.display(),
        names.len()
    );
    names
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), bytes)
        })
        .collect()
}

/// A colourful RGB test image that differs with `seed`.
pub fn rgb_pattern(width: u32, height: u32, seed: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height {
        for x in 0..width {
            out.extend_from_slice(&[
                ((x * 255) / width.max(2)).wrapping_add(seed) as u8,
                ((y * 255) / height.max(2)) as u8,
                ((x ^ y).wrapping_mul(7).wrapping_add(seed * 13)) as u8,
            ]);
        }
    }
    out
}

/// Configures a `jpeg-encoder` encoder before it runs.
pub type Tweak = fn(&mut jpeg_encoder::Encoder<&mut Vec<u8>>);

/// A small baseline JPEG of [`rgb_pattern`].
pub fn small_jpeg(width: u16, height: u16, seed: u32) -> Vec<u8> {
    jpeg_with(width, height, seed, |_| {})
}

/// A JPEG of [`rgb_pattern`] with encoder options set by `tweak`.
pub fn jpeg_with(width: u16, height: u16, seed: u32, tweak: Tweak) -> Vec<u8> {
    let rgb = rgb_pattern(u32::from(width), u32::from(height), seed);
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, 75);
    tweak(&mut encoder);
    encoder
        .encode(&rgb, width, height, jpeg_encoder::ColorType::Rgb)
        .expect("encode test JPEG");
    out
}

/// A 64×48 JPEG whose APP1 EXIF block holds a complete 16×16 thumbnail JPEG (with its own SOI and
/// EOI), the way cameras write them: TIFF header, an empty IFD0, and IFD1 pointing at the
/// thumbnail through JPEGInterchangeFormat / JPEGInterchangeFormatLength.
pub fn jpeg_with_exif_thumbnail() -> Vec<u8> {
    let thumb = small_jpeg(16, 16, 99);
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"II*\0");
    tiff.extend_from_slice(&8u32.to_le_bytes()); // IFD0 at 8
    tiff.extend_from_slice(&0u16.to_le_bytes()); // IFD0: no entries
    tiff.extend_from_slice(&14u32.to_le_bytes()); // IFD1 at 14
    let thumb_offset = 14 + 2 + 2 * 12 + 4;
    tiff.extend_from_slice(&2u16.to_le_bytes()); // IFD1: two entries
    for (tag, value) in [(0x0201u16, thumb_offset), (0x0202, thumb.len() as u32)] {
        tiff.extend_from_slice(&tag.to_le_bytes());
        tiff.extend_from_slice(&4u16.to_le_bytes()); // LONG
        tiff.extend_from_slice(&1u32.to_le_bytes()); // count
        tiff.extend_from_slice(&value.to_le_bytes());
    }
    tiff.extend_from_slice(&0u32.to_le_bytes()); // no IFD2
    assert_eq!(tiff.len(), thumb_offset as usize);
    tiff.extend_from_slice(&thumb);

    let rgb = rgb_pattern(64, 48, 5);
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, 75);
    encoder.add_exif_metadata(&tiff).expect("EXIF fits APP1");
    encoder
        .encode(&rgb, 64, 48, jpeg_encoder::ColorType::Rgb)
        .expect("encode test JPEG");
    assert!(
        out.windows(2).filter(|w| *w == [0xFF, 0xD9]).count() >= 2,
        "the thumbnail's EOI must sit inside the outer JPEG"
    );
    out
}

/// A PNG of `samples` laid out as `colorspace`, 8 bits per sample.
pub fn png(samples: &[u8], width: usize, height: usize, colorspace: ColorSpace) -> Vec<u8> {
    let options = EncoderOptions::new(width, height, colorspace, BitDepth::Eight);
    let mut out = Vec::new();
    zune_png::PngEncoder::new(samples, options)
        .encode(&mut out)
        .expect("encode test PNG");
    out
}
