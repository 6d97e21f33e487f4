//! A folder of images played as a looping stream.
//!
//! Useful for demos and for replaying captured frames. JPEG files are sent exactly as stored (the
//! whole point of a JPEG pipeline is to never re-encode); PNG files are decoded and encoded to
//! JPEG. The folder is listed again at the start of every loop, so files added or removed while
//! streaming take effect on the next pass.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{FrameSource, SourceError, SourceFrame, DEFAULT_QUALITY};
use crate::image::{ImageError, ImageFormat};
use crate::jpeg;

/// The images of a folder in file-name order, looping forever.
///
/// Files named `*.jpg`, `*.jpeg` or `*.png` (any case) are used; everything else, including
/// subfolders, is skipped. A file whose content is not what its name says yields a
/// [`SourceError::Image`] for that file, and the next call moves on.
#[derive(Debug)]
pub struct DirSource {
    path: PathBuf,
    quality: u8,
    files: Vec<PathBuf>,
    next: usize,
}

impl DirSource {
    /// Lists `path`; PNGs will be encoded at [`DEFAULT_QUALITY`].
    ///
    /// # Errors
    /// [`SourceError::Io`] if the folder cannot be read, [`SourceError::EmptyDir`] if it holds no
    /// JPEG or PNG files.
    pub fn new(path: impl AsRef<Path>) -> Result<DirSource, SourceError> {
        let path = path.as_ref().to_path_buf();
        let files = list_images(&path)?;
        Ok(DirSource {
            path,
            quality: DEFAULT_QUALITY,
            files,
            next: 0,
        })
    }

    /// Sets the JPEG quality for PNG files.
    ///
    /// # Errors
    /// [`SourceError::Jpeg`] if `quality` is outside 1..=100.
    pub fn with_quality(mut self, quality: u8) -> Result<DirSource, SourceError> {
        if !(1..=100).contains(&quality) {
            return Err(jpeg::JpegError::InvalidQuality(quality).into());
        }
        self.quality = quality;
        Ok(self)
    }

    /// The files of the current pass, in the order they are played.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    fn load(&self, path: &Path) -> Result<SourceFrame, SourceError> {
        let data = std::fs::read(path)
            .map_err(|e| SourceError::io(format!("reading {}", path.display()), e))?;
        let image_error = |source: ImageError| SourceError::Image {
            path: path.to_path_buf(),
            source,
        };
        match ImageFormat::sniff(&data) {
            Some(ImageFormat::Jpeg) => {
                let (width, height) =
                    jpeg::probe(&data).map_err(|e| image_error(ImageError::Jpeg(e)))?;
                Ok(SourceFrame {
                    jpeg: Bytes::from(data),
                    width,
                    height,
                })
            }
            Some(ImageFormat::Png) => {
                // Through `image::decode_rgb` for its size guard.
                let image = crate::image::decode_rgb(&data).map_err(image_error)?;
                let jpeg = image
                    .encode_jpeg(self.quality)
                    .map_err(|e| image_error(ImageError::Jpeg(e)))?;
                Ok(SourceFrame {
                    jpeg,
                    width: image.width(),
                    height: image.height(),
                })
            }
            None => Err(image_error(ImageError::Unrecognized)),
        }
    }
}

impl FrameSource for DirSource {
    fn next_frame(&mut self) -> Result<SourceFrame, SourceError> {
        if self.next >= self.files.len() {
            self.files = list_images(&self.path)?;
            self.next = 0;
        }
        let frame = self.load(&self.files[self.next]);
        self.next += 1;
        frame
    }
}

fn is_image_name(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        ["jpg", "jpeg", "png"]
            .iter()
            .any(|x| e.eq_ignore_ascii_case(x))
    })
}

/// The image files directly in `dir`, sorted by name.
fn list_images(dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| SourceError::io(format!("listing {}", dir.display()), e))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| SourceError::io(format!("listing {}", dir.display()), e))?;
        let path = entry.path();
        // `is_file` follows symlinks, so a folder of links to frames works.
        if is_image_name(&path) && path.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(SourceError::EmptyDir {
            path: dir.to_path_buf(),
        });
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use zune_png::zune_core::colorspace::ColorSpace;

    use super::*;
    use crate::test_images::{png, real_frames_dir, rgb_pattern, small_jpeg};

    #[test]
    fn jpegs_pass_through_pngs_are_encoded_others_skipped_in_name_order_looping() {
        let dir = tempfile::tempdir().unwrap();
        let a = small_jpeg(32, 16, 1);
        let c = small_jpeg(8, 8, 3);
        let rgb = rgb_pattern(24, 20, 2);
        std::fs::write(dir.path().join("b.png"), png(&rgb, 24, 20, ColorSpace::RGB)).unwrap();
        std::fs::write(dir.path().join("a.JPG"), &a).unwrap();
        std::fs::write(dir.path().join("c.jpeg"), &c).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not an image").unwrap();
        std::fs::write(dir.path().join("Makefile"), "").unwrap();
        std::fs::create_dir(dir.path().join("d.jpg")).unwrap(); // a folder named like an image

        let mut source = DirSource::new(dir.path()).unwrap();
        let names: Vec<_> = source
            .files()
            .iter()
            .map(|p| p.file_name().unwrap())
            .collect();
        assert_eq!(names, ["a.JPG", "b.png", "c.jpeg"]);

        for _pass in 0..2 {
            let first = source.next_frame().unwrap();
            assert_eq!(first.jpeg, a, "JPEG bytes unchanged");
            assert_eq!((first.width, first.height), (32, 16));

            let second = source.next_frame().unwrap();
            assert_eq!((second.width, second.height), (24, 20));
            let decoded = jpeg::decode_rgb(&second.jpeg).unwrap();
            let error = decoded
                .pixels()
                .iter()
                .zip(&rgb)
                .map(|(x, y)| x.abs_diff(*y) as u64)
                .sum::<u64>()
                / rgb.len() as u64;
            assert!(error < 12, "PNG re-encoded faithfully (mean error {error})");

            assert_eq!(source.next_frame().unwrap().jpeg, c);
        }
    }

    #[test]
    fn folder_changes_show_up_on_the_next_pass() {
        let dir = tempfile::tempdir().unwrap();
        let a = small_jpeg(8, 8, 1);
        let b = small_jpeg(8, 8, 2);
        std::fs::write(dir.path().join("a.jpg"), &a).unwrap();
        let mut source = DirSource::new(dir.path()).unwrap();
        assert_eq!(source.next_frame().unwrap().jpeg, a);
        std::fs::write(dir.path().join("b.jpg"), &b).unwrap();
        assert_eq!(source.next_frame().unwrap().jpeg, a);
        assert_eq!(source.next_frame().unwrap().jpeg, b);
        std::fs::remove_file(dir.path().join("a.jpg")).unwrap();
        std::fs::remove_file(dir.path().join("b.jpg")).unwrap();
        assert!(matches!(
            source.next_frame(),
            Err(SourceError::EmptyDir { .. })
        ));
    }

    #[test]
    fn a_bad_file_is_reported_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.jpg"), b"this is text").unwrap();
        std::fs::write(dir.path().join("b.png"), b"\x89PNG\r\n\x1a\nbroken").unwrap();
        let good = small_jpeg(8, 8, 1);
        std::fs::write(dir.path().join("c.jpg"), &good).unwrap();
        let mut source = DirSource::new(dir.path()).unwrap();
        let err = source.next_frame().unwrap_err();
        assert!(
            matches!(
                &err,
                SourceError::Image {
                    source: ImageError::Unrecognized,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.is_recoverable());
        assert!(err.to_string().contains("a.jpg"), "{err}");
        let err = source.next_frame().unwrap_err();
        assert!(
            matches!(
                &err,
                SourceError::Image {
                    source: ImageError::Png(_),
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(source.next_frame().unwrap().jpeg, good);
    }

    #[test]
    fn empty_or_missing_folder_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("readme.md"), "no images").unwrap();
        let err = DirSource::new(dir.path()).unwrap_err();
        assert!(matches!(err, SourceError::EmptyDir { .. }), "{err:?}");
        assert!(
            err.to_string().starts_with("no JPEG or PNG files in"),
            "{err}"
        );
        assert!(!err.is_recoverable());

        let err = DirSource::new(dir.path().join("missing")).unwrap_err();
        assert!(matches!(err, SourceError::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("missing"), "{err}");
    }

    #[test]
    fn shared_frames_play_in_order_with_their_sizes() {
        let mut source = DirSource::new(real_frames_dir()).expect("shared frames folder");
        assert_eq!(source.files().len(), 39);
        let first = std::fs::read(&source.files()[0]).unwrap();
        let frame = source.next_frame().unwrap();
        assert_eq!(frame.jpeg, first);
        assert_eq!((frame.width, frame.height), (1920, 1080));
    }

    #[test]
    fn quality_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.jpg"), small_jpeg(8, 8, 1)).unwrap();
        assert!(DirSource::new(dir.path()).unwrap().with_quality(0).is_err());
        assert!(DirSource::new(dir.path())
            .unwrap()
            .with_quality(100)
            .is_ok());
    }
}
