//! Sample JPEG frames, made with `framewire-media` so that no test needs image files from outside
//! the repository.
//!
//! Two kinds:
//!
//! - **Sample frames** ([`sample_frames`], [`sample_frames_dir`]) stand in for camera frames: the
//!   pattern of [`Synthetic`] (colour bars, a grey ramp, a scrolling rainbow, a bouncing box, the
//!   frame number and a clock) at a fixed time, with seeded grain over it as a sensor would add.
//!   Without the grain a frame would compress far better than a photo and its thumbnail would be
//!   nearly as large as the frame. [`SAMPLE_COUNT`] frames of [`SAMPLE_WIDTH`]×[`SAMPLE_HEIGHT`],
//!   about 190 KB each, like the 1080p frames the benchmarks use. Made once per build (a few
//!   seconds) and kept as files in the target directory.
//! - **Light frames** ([`light_frame`]): a flat colour and a box, different for every index,
//!   encoded with optimised Huffman tables: about 13 KB at 1920×1080. Small enough to commit;
//!   `tests/data/frames-1080p/` holds eight of them for the Python client's tests and the shell
//!   tiers (`cargo run -p framewire-testkit --example write_frames` makes them again).
//!
//! The same index always gives the same bytes.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use framewire_media::jpeg;
use framewire_media::source::Synthetic;

use crate::data::Rng;

/// Frames in the sample set.
pub const SAMPLE_COUNT: usize = 39;
/// Width of the sample frames.
pub const SAMPLE_WIDTH: u32 = 1920;
/// Height of the sample frames.
pub const SAMPLE_HEIGHT: u32 = 1080;
/// JPEG quality of sample frames.
const QUALITY: u8 = 80;
/// Grain added to every pixel of a sample frame: a value in `-GRAIN..=GRAIN`.
const GRAIN: i16 = 6;
/// Bump when the frames' content changes, so that folders made before are not used.
const GENERATION: u32 = 1;

/// Frame `index` of the grainy synthetic pattern at `width`×`height`, as a JPEG.
///
/// # Panics
/// If a side is outside 32..=8192.
pub fn frame(width: u32, height: u32, index: u64) -> Vec<u8> {
    Painter::new(width, height).frame(index)
}

/// Frames `0..count` of the grainy synthetic pattern at `width`×`height`, made on several threads.
///
/// # Panics
/// As [`frame`].
pub fn frames(width: u32, height: u32, count: usize) -> Vec<Vec<u8>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let per_thread = count.div_ceil(threads).max(1);
    let mut out = vec![Vec::new(); count];
    std::thread::scope(|scope| {
        for (t, slots) in out.chunks_mut(per_thread).enumerate() {
            scope.spawn(move || {
                let mut painter = Painter::new(width, height);
                for (i, slot) in slots.iter_mut().enumerate() {
                    *slot = painter.frame((t * per_thread + i) as u64);
                }
            });
        }
    });
    out
}

/// Makes grainy frames: the synthetic pattern is drawn at half size (its own JPEG is thrown away,
/// so the smaller the cheaper), doubled, grained and encoded.
struct Painter {
    synthetic: Synthetic,
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl Painter {
    fn new(width: u32, height: u32) -> Painter {
        assert!(
            (32..=8192).contains(&width) && (32..=8192).contains(&height),
            "frame sides must be 32..=8192, not {width}x{height}"
        );
        let synthetic = Synthetic::new(width.div_ceil(2), height.div_ceil(2), QUALITY)
            .unwrap_or_else(|e| panic!("synthetic {width}x{height}: {e}"));
        Painter {
            synthetic,
            width,
            height,
            rgb: vec![0; width as usize * height as usize * 3],
        }
    }

    fn frame(&mut self, index: u64) -> Vec<u8> {
        // Noon on the first day, 25 frames per second: the clock in the picture moves with the
        // index.
        let at = UNIX_EPOCH + Duration::from_secs(12 * 3600) + Duration::from_millis(40 * index);
        self.synthetic
            .render(index, at)
            .expect("the synthetic pattern renders");
        let half = self.synthetic.pixels();
        let half_row = self.synthetic.width() as usize * 3;
        for (y, row) in self
            .rgb
            .chunks_exact_mut(self.width as usize * 3)
            .enumerate()
        {
            let src = &half[y / 2 * half_row..][..half_row];
            for (x, pixel) in row.chunks_exact_mut(3).enumerate() {
                pixel.copy_from_slice(&src[x / 2 * 3..][..3]);
            }
        }
        add_grain(&mut self.rgb, index);
        jpeg::encode_rgb(&self.rgb, self.width, self.height, QUALITY)
            .expect("the synthetic pattern encodes")
            .to_vec()
    }
}

/// Adds seeded noise, the same to the three channels of a pixel (luminance noise).
fn add_grain(rgb: &mut [u8], seed: u64) {
    let mut rng = Rng::new(seed);
    let span = (2 * GRAIN + 1) as u64;
    for pixels in rgb.chunks_mut(3 * 8) {
        let mut bits = rng.next_u64();
        for pixel in pixels.chunks_exact_mut(3) {
            let noise = ((bits & 0xFF) % span) as i16 - GRAIN;
            bits >>= 8;
            for c in pixel {
                *c = (i16::from(*c) + noise).clamp(0, 255) as u8;
            }
        }
    }
}

/// The file name of frame `index` (from 0) in a folder of frames: `f0001.jpg` for 0.
pub fn frame_name(index: usize) -> String {
    format!("f{:04}.jpg", index + 1)
}

/// The sample set: [`SAMPLE_COUNT`] frames of 1920×1080 in order (read from
/// [`sample_frames_dir`] once per process).
pub fn sample_frames() -> &'static [Vec<u8>] {
    static FRAMES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    FRAMES.get_or_init(|| {
        let dir = sample_frames_dir();
        (0..SAMPLE_COUNT)
            .map(|i| {
                let path = dir.join(frame_name(i));
                std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
            })
            .collect()
    })
}

/// Frame `index` (from 0) of the sample set.
///
/// # Panics
/// If `index` is not below [`SAMPLE_COUNT`].
pub fn sample_frame(index: usize) -> Vec<u8> {
    sample_frames()[index].clone()
}

/// A folder holding the sample set as `f0001.jpg` to `f0039.jpg` and nothing else, for tests that
/// read frames from disk. It lives in the target directory, is made by the first test that asks
/// (a few seconds) and is shared by every later one. Read it, never write into it.
///
/// # Panics
/// If the folder cannot be made.
pub fn sample_frames_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("OUT_DIR")).join(format!(
            "sample-frames-{SAMPLE_WIDTH}x{SAMPLE_HEIGHT}-{SAMPLE_COUNT}-g{GENERATION}"
        ));
        if !dir.is_dir() {
            make_dir(&dir, || frames(SAMPLE_WIDTH, SAMPLE_HEIGHT, SAMPLE_COUNT));
        }
        dir
    })
}

/// Makes `dir` with the frames `make` returns, atomically: written aside, then renamed, so that a
/// test process that stops half-way, or another one making the same folder, never leaves a
/// folder with missing frames. A folder that exists is complete.
fn make_dir(dir: &Path, make: impl FnOnce() -> Vec<Vec<u8>>) {
    let parent = dir.parent().expect("a folder inside OUT_DIR");
    let aside = parent.join(format!(
        ".{}.{}",
        dir.file_name().unwrap().to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&aside);
    write_frames(&aside, &make());
    if std::fs::rename(&aside, dir).is_err() {
        // Someone else finished first: theirs is as good.
        let _ = std::fs::remove_dir_all(&aside);
        assert!(dir.is_dir(), "cannot make {}", dir.display());
    }
}

/// Writes `frames` into `dir` (created if missing) as `f0001.jpg`, `f0002.jpg`...
///
/// # Panics
/// If `dir` cannot be written.
pub fn write_frames(dir: &Path, frames: &[Vec<u8>]) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    frames
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let path = dir.join(frame_name(i));
            std::fs::write(&path, bytes)
                .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
            path
        })
        .collect()
}

/// A small JPEG at `width`×`height` (each 1..=65535): a flat colour with a white box, both
/// changing with `index`; about 13 KB at 1920×1080.
///
/// # Panics
/// If a side is 0 or above 65535.
pub fn light_frame(width: u32, height: u32, index: u64) -> Vec<u8> {
    let (w, h) = (
        u16::try_from(width).expect("width fits JPEG"),
        u16::try_from(height).expect("height fits JPEG"),
    );
    assert!(w > 0 && h > 0, "a frame has pixels");
    let hue = (index * 47 % 256) as u8;
    let background = [hue, 255 - hue, (hue / 2).wrapping_add(64)];
    let side = (width.min(height) / 5).max(1);
    let step = index.wrapping_mul(u64::from(side));
    let x0 = (step / 2 % u64::from(width - side + 1)) as u32;
    let y0 = (step / 3 % u64::from(height - side + 1)) as u32;
    let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height {
        for x in 0..width {
            let inside = (x0..x0 + side).contains(&x) && (y0..y0 + side).contains(&y);
            rgb.extend_from_slice(if inside { &[250; 3] } else { &background });
        }
    }
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, 50);
    encoder.set_optimized_huffman_tables(true);
    encoder
        .encode(&rgb, w, h, jpeg_encoder::ColorType::Rgb)
        .expect("encode a light frame");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_frames_look_like_camera_frames() {
        let frames = sample_frames();
        assert_eq!(frames.len(), SAMPLE_COUNT);
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(jpeg::probe(f).unwrap(), (1920, 1080), "frame {i}");
            assert!(
                (100_000..400_000).contains(&f.len()),
                "frame {i}: {} bytes",
                f.len()
            );
        }
        assert!(
            frames.windows(2).all(|w| w[0] != w[1]),
            "every frame differs"
        );
        // Like a photo: the thumbnail is far smaller than the frame.
        let thumb = framewire_media::thumbnail(&frames[0], 320).unwrap();
        assert!(thumb.len() * 10 < frames[0].len());
        assert_eq!(sample_frame(3), frames[3]);
        assert_eq!(
            frame(SAMPLE_WIDTH, SAMPLE_HEIGHT, 3),
            frames[3],
            "deterministic"
        );
    }

    #[test]
    fn the_sample_folder_holds_the_frames_and_nothing_else() {
        let dir = sample_frames_dir();
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), SAMPLE_COUNT);
        assert_eq!(
            (names[0].as_str(), names[38].as_str()),
            ("f0001.jpg", "f0039.jpg")
        );
        assert_eq!(
            std::fs::read(dir.join("f0002.jpg")).unwrap(),
            sample_frames()[1]
        );
    }

    #[test]
    fn a_folder_is_made_once_and_atomically() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("frames");
        make_dir(&dir, || {
            vec![light_frame(32, 16, 0), light_frame(32, 16, 1)]
        });
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        assert_eq!(
            std::fs::read(dir.join("f0002.jpg")).unwrap(),
            light_frame(32, 16, 1)
        );
        // Someone else made it meanwhile: theirs stays, ours goes.
        make_dir(&dir, || vec![light_frame(32, 16, 5)]);
        assert_eq!(
            std::fs::read(dir.join("f0001.jpg")).unwrap(),
            light_frame(32, 16, 0)
        );
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            1,
            "nothing left aside"
        );
    }

    #[test]
    fn light_frames_are_small_distinct_jpegs() {
        let a = light_frame(1920, 1080, 0);
        let b = light_frame(1920, 1080, 1);
        assert_ne!(a, b);
        assert!(a.len() < 20_000, "{} bytes", a.len());
        let image = jpeg::decode_rgb(&b).unwrap();
        assert_eq!((image.width(), image.height()), (1920, 1080));
        assert_eq!(light_frame(1920, 1080, 1), b, "deterministic");
        assert_eq!(jpeg::probe(&light_frame(17, 5, 9)).unwrap(), (17, 5));
    }

    /// The frames committed in `tests/data/frames-1080p` are light frames 0..8 at 1920×1080.
    #[test]
    fn committed_frames_are_valid_1080p_jpegs() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/frames-1080p");
        for i in 0..8 {
            let path = dir.join(frame_name(i));
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let image = jpeg::decode_rgb(&bytes).unwrap();
            assert_eq!(
                (image.width(), image.height()),
                (1920, 1080),
                "{}",
                path.display()
            );
        }
    }
}
