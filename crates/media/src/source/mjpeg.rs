//! Frames from any byte stream of concatenated JPEGs: a file, a pipe, standard input.
//!
//! This is how a Raspberry Pi camera or ffmpeg feeds framewire without framewire linking any
//! camera stack: `libcamera-vid --codec mjpeg -o - | framewire stream mjpeg:-`. Frames are cut
//! out by [`Splitter`] and passed on as they are, never re-encoded.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::Path;

use super::{FrameSource, SourceError, SourceFrame};
use crate::jpeg;
use crate::mjpeg::Splitter;

/// How much is read from the stream at a time.
const READ_CHUNK: usize = 64 * 1024;

/// Frames split from a reader. The reader's end of input ends the source with
/// [`SourceError::End`]; a frame left incomplete there is first reported as
/// [`SourceError::Mjpeg`].
pub struct MjpegSource<R> {
    reader: R,
    splitter: Splitter,
    chunk: Box<[u8]>,
    at_end: bool,
}

impl<R> std::fmt::Debug for MjpegSource<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MjpegSource")
            .field("splitter", &self.splitter)
            .field("at_end", &self.at_end)
            .finish_non_exhaustive()
    }
}

impl MjpegSource<File> {
    /// Reads the file at `path`.
    ///
    /// # Errors
    /// [`SourceError::Io`] if it cannot be opened.
    pub fn open(path: impl AsRef<Path>) -> Result<MjpegSource<File>, SourceError> {
        let path = path.as_ref();
        let file = File::open(path)
            .map_err(|e| SourceError::io(format!("opening {}", path.display()), e))?;
        Ok(MjpegSource::new(file))
    }
}

impl<R: Read> MjpegSource<R> {
    /// Reads from `reader`, dropping frames above [`Splitter::DEFAULT_MAX_FRAME_LEN`].
    pub fn new(reader: R) -> MjpegSource<R> {
        MjpegSource::with_splitter(reader, Splitter::new())
    }

    /// Reads from `reader` through a splitter configured by the caller (e.g. another frame limit).
    pub fn with_splitter(reader: R, splitter: Splitter) -> MjpegSource<R> {
        MjpegSource {
            reader,
            splitter,
            chunk: vec![0; READ_CHUNK].into_boxed_slice(),
            at_end: false,
        }
    }

    /// The splitter, e.g. for [`Splitter::skipped_bytes`].
    pub fn splitter(&self) -> &Splitter {
        &self.splitter
    }
}

impl<R: Read> FrameSource for MjpegSource<R> {
    fn next_frame(&mut self) -> Result<SourceFrame, SourceError> {
        loop {
            if let Some(frame) = self.splitter.next_frame() {
                let jpeg = frame?;
                let (width, height) = jpeg::probe(&jpeg)?;
                return Ok(SourceFrame {
                    jpeg,
                    width,
                    height,
                });
            }
            if self.at_end {
                return Err(SourceError::End);
            }
            match self.reader.read(&mut self.chunk) {
                Ok(0) => {
                    self.at_end = true;
                    if let Some(error) = self.splitter.finish() {
                        return Err(error.into());
                    }
                }
                Ok(n) => self.splitter.push(&self.chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(SourceError::io("reading the MJPEG stream", e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mjpeg::MjpegError;
    use crate::test_images::{real_frames, small_jpeg};

    /// A reader that hands out at most `step` bytes per read, like a pipe.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn real_frames_pass_through_unchanged_then_end() {
        let files = real_frames();
        let stream: Vec<u8> = files.iter().flat_map(|(_, b)| b.iter().copied()).collect();
        let mut source = MjpegSource::new(Trickle {
            data: &stream,
            step: 4093,
        });
        for (name, bytes) in &files {
            let frame = source.next_frame().unwrap();
            assert!(frame.jpeg == bytes[..], "{name} changed");
            assert_eq!((frame.width, frame.height), (1920, 1080));
        }
        assert!(matches!(source.next_frame(), Err(SourceError::End)));
        assert!(
            matches!(source.next_frame(), Err(SourceError::End)),
            "stays ended"
        );
    }

    #[test]
    fn incomplete_last_frame_is_reported_before_the_end() {
        let a = small_jpeg(16, 16, 1);
        let stream = [&a[..], &a[..a.len() / 2]].concat();
        let mut source = MjpegSource::new(&stream[..]);
        assert_eq!(source.next_frame().unwrap().jpeg, a);
        let err = source.next_frame().unwrap_err();
        assert!(
            matches!(err, SourceError::Mjpeg(MjpegError::Truncated { .. })),
            "{err:?}"
        );
        assert!(err.is_recoverable());
        assert!(matches!(source.next_frame(), Err(SourceError::End)));
    }

    #[test]
    fn read_errors_are_reported() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("cable pulled"))
            }
        }
        let err = MjpegSource::new(Failing).next_frame().unwrap_err();
        assert!(matches!(err, SourceError::Io { .. }), "{err:?}");
        assert!(!err.is_recoverable());
    }
}
