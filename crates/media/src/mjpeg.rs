//! Splitting a concatenated-JPEG ("MJPEG") byte stream into frames, without I/O.
//!
//! `ffmpeg -f mjpeg -`, `libcamera-vid --codec mjpeg -o -` and many cameras write JPEG after JPEG
//! with nothing in between. Looking for the next `FF D8` or `FF D9` is not enough to cut them
//! apart: an EXIF block can hold a whole thumbnail JPEG with its own SOI and EOI, and any segment's
//! payload may contain those bytes. So [`Splitter`] follows the JPEG structure itself: after SOI
//! it skips marker segments by their declared lengths, and after SOS it scans entropy-coded data,
//! where `FF 00` is a stuffed byte and `FF D0`–`FF D7` are restart markers, until a real marker
//! (another scan's tables, the next SOS of a progressive image, or EOI) appears.
//!
//! The splitter keeps its scan position between calls, so each byte is looked at once however the
//! stream is chunked, and a frame is returned as a zero-copy slice of the receive buffer. Memory is
//! bounded: a frame longer than the limit is reported, then parsed to its end without being kept.

use bytes::{Buf, Bytes, BytesMut};

use crate::jpeg::{is_standalone, EOI, SOI, SOS};

/// Why the splitter dropped bytes. Every error is recoverable: keep calling
/// [`Splitter::next_frame`] and later frames come out as usual.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MjpegError {
    /// A frame grew past the limit. Its bytes are parsed up to its EOI and dropped as they arrive,
    /// then splitting resumes with the next frame.
    #[error("MJPEG frame exceeds the {limit}-byte limit; dropped")]
    FrameTooLarge {
        /// The splitter's maximum frame length in bytes.
        limit: usize,
    },
    /// A frame was cut short: another SOI arrived before its EOI, or the input ended
    /// ([`Splitter::finish`]). The partial frame was dropped.
    #[error("MJPEG frame truncated after {len} bytes; dropped")]
    Truncated {
        /// How many bytes of the partial frame had arrived.
        len: usize,
    },
    /// The marker structure was broken. The frame was dropped and the splitter resynced at the
    /// next SOI after the broken frame's start.
    #[error("malformed MJPEG frame at byte {offset} of the frame: {reason}; dropped")]
    Malformed {
        /// Offset of the problem from the start of the frame.
        offset: usize,
        /// What was wrong there.
        reason: &'static str,
    },
}

/// Where the splitter is in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between frames, looking for SOI; everything before it is junk to drop.
    Seek,
    /// Inside a frame's marker segments. `pos` is where the next marker (or fill byte) is expected,
    /// and may lie past the buffered bytes while a segment's payload is still arriving.
    Markers,
    /// Inside entropy-coded data after an SOS header. `pos` is the next byte to scan.
    Entropy,
}

/// What one step of parsing produced.
enum Step {
    /// Needs more input.
    NeedMore,
    /// A complete frame ends at this offset in the buffer.
    Frame(usize),
    /// Bytes were dropped.
    Error(MjpegError),
}

/// Cuts a stream of concatenated JPEGs into one [`Bytes`] per frame.
///
/// Feed it with [`push`](Splitter::push), then call [`next_frame`](Splitter::next_frame) until it
/// returns `None` before pushing again (bytes are only parsed, and junk dropped, there). At end of
/// input, [`finish`](Splitter::finish) reports a frame left incomplete.
///
/// ```
/// use framewire_media::mjpeg::Splitter;
///
/// let mut splitter = Splitter::new();
/// // Two (degenerate) JPEGs with fill bytes between them, arriving in odd pieces.
/// for chunk in [&b"\xFF\xD8\xFF"[..], b"\xD9\xFF\xFF\xFF\xD8", b"\xFF\xD9"] {
///     splitter.push(chunk);
///     while let Some(frame) = splitter.next_frame() {
///         assert_eq!(&frame.unwrap()[..], b"\xFF\xD8\xFF\xD9");
///     }
/// }
/// ```
pub struct Splitter {
    buf: BytesMut,
    state: State,
    /// Scan position in `buf`. Inside a frame, `buf[0]` is its SOI, unless `discarding`.
    pos: usize,
    max_frame_len: usize,
    /// Dropping an oversized frame: it is parsed to its end, but its bytes are not kept.
    discarding: bool,
    /// Junk bytes dropped between frames, for diagnostics.
    skipped: u64,
}

impl std::fmt::Debug for Splitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the buffer itself: it may hold megabytes.
        f.debug_struct("Splitter")
            .field("buffered_len", &self.buf.len())
            .field("state", &self.state)
            .field("pos", &self.pos)
            .field("max_frame_len", &self.max_frame_len)
            .field("discarding", &self.discarding)
            .field("skipped", &self.skipped)
            .finish()
    }
}

impl Default for Splitter {
    fn default() -> Self {
        Splitter::new()
    }
}

impl Splitter {
    /// Default maximum frame length: 16 MiB, well above an 8K JPEG at high quality.
    pub const DEFAULT_MAX_FRAME_LEN: usize = 16 << 20;

    /// A splitter with the [default frame limit](Splitter::DEFAULT_MAX_FRAME_LEN).
    pub fn new() -> Splitter {
        Splitter::with_max_frame_len(Splitter::DEFAULT_MAX_FRAME_LEN)
    }

    /// A splitter that drops frames longer than `max_frame_len` bytes (at least 4).
    pub fn with_max_frame_len(max_frame_len: usize) -> Splitter {
        Splitter {
            buf: BytesMut::new(),
            state: State::Seek,
            pos: 0,
            max_frame_len: max_frame_len.max(4),
            discarding: false,
            skipped: 0,
        }
    }

    /// The frame length limit in bytes.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes held: the incomplete frame so far plus anything pushed but not yet parsed.
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// Junk bytes dropped so far between frames (not counting dropped frames).
    pub fn skipped_bytes(&self) -> u64 {
        self.skipped
    }

    /// The next complete frame, an error for bytes that were dropped, or `None` when more input
    /// is needed.
    ///
    /// # Errors
    /// An [`MjpegError`] says a frame was dropped; splitting goes on after it.
    pub fn next_frame(&mut self) -> Option<Result<Bytes, MjpegError>> {
        loop {
            match self.step() {
                Step::NeedMore => {
                    if self.discarding {
                        let consumed = self.pos.min(self.buf.len());
                        self.buf.advance(consumed);
                        self.pos -= consumed;
                    }
                    return None;
                }
                Step::Frame(end) => {
                    let frame = self.buf.split_to(end);
                    self.state = State::Seek;
                    self.pos = 0;
                    if std::mem::take(&mut self.discarding) {
                        continue; // its error was reported when it crossed the limit
                    }
                    return Some(Ok(frame.freeze()));
                }
                Step::Error(error) => return Some(Err(error)),
            }
        }
    }

    /// Ends the input: drops whatever is buffered and reports a frame left incomplete.
    ///
    /// The splitter is then empty and can take a new stream.
    pub fn finish(&mut self) -> Option<MjpegError> {
        let partial = self.state != State::Seek && !self.discarding;
        let len = self.buf.len();
        self.buf.clear();
        self.state = State::Seek;
        self.pos = 0;
        self.discarding = false;
        partial.then_some(MjpegError::Truncated { len })
    }

    /// Parses from `pos` until a frame ends, an error occurs or the input runs out.
    fn step(&mut self) -> Step {
        loop {
            let next = match self.state {
                State::Seek => self.seek(),
                State::Markers => self.markers(),
                State::Entropy => self.entropy(),
            };
            if let Some(step) = next {
                return step;
            }
        }
    }

    /// Drops junk up to the next SOI and starts a frame there.
    fn seek(&mut self) -> Option<Step> {
        match self.buf.windows(2).position(|w| w == [0xFF, SOI]) {
            Some(start) => {
                self.skipped += start as u64;
                self.buf.advance(start);
                self.pos = 2;
                self.state = State::Markers;
                None
            }
            None => {
                // A trailing FF may be the first half of the next SOI.
                let keep = usize::from(self.buf.last() == Some(&0xFF));
                let junk = self.buf.len() - keep;
                self.skipped += junk as u64;
                self.buf.advance(junk);
                Some(Step::NeedMore)
            }
        }
    }

    /// Steps over marker segments by their lengths.
    fn markers(&mut self) -> Option<Step> {
        if let Some(step) = self.check_limit(self.pos) {
            return Some(step);
        }
        let Some(&ff) = self.buf.get(self.pos) else {
            return Some(Step::NeedMore);
        };
        if ff != 0xFF {
            return self.malformed("expected a marker (FF xx)");
        }
        let Some(&marker) = self.buf.get(self.pos + 1) else {
            return Some(Step::NeedMore);
        };
        match marker {
            0xFF => self.pos += 1, // fill byte before a marker
            0x00 => return self.malformed("FF 00 where a marker was expected"),
            SOI => {
                // The frame so far was cut short; a new one starts here.
                let len = self.pos;
                self.buf.advance(self.pos);
                self.pos = 2;
                if std::mem::take(&mut self.discarding) {
                    return None;
                }
                return Some(Step::Error(MjpegError::Truncated { len }));
            }
            EOI => {
                let end = self.pos + 2;
                return Some(self.check_limit(end).unwrap_or(Step::Frame(end)));
            }
            m if is_standalone(m) => self.pos += 2,
            _ => {
                let Some(&[hi, lo]) = self.buf.get(self.pos + 2..self.pos + 4) else {
                    return Some(Step::NeedMore);
                };
                let len = usize::from(u16::from_be_bytes([hi, lo]));
                if len < 2 {
                    return self.malformed("segment length below 2");
                }
                self.pos += 2 + len;
                if marker == SOS {
                    self.state = State::Entropy;
                }
            }
        }
        None
    }

    /// Scans entropy-coded data for the next real marker.
    fn entropy(&mut self) -> Option<Step> {
        loop {
            if let Some(step) = self.check_limit(self.pos) {
                return Some(step);
            }
            let Some(rest) = self.buf.get(self.pos..) else {
                return Some(Step::NeedMore); // the SOS header itself is still arriving
            };
            let Some(ff) = rest.iter().position(|&b| b == 0xFF) else {
                self.pos = self.buf.len();
                return Some(Step::NeedMore);
            };
            let at = self.pos + ff;
            let Some(&next) = self.buf.get(at + 1) else {
                self.pos = at;
                return Some(Step::NeedMore);
            };
            match next {
                0x00 | 0xD0..=0xD7 => self.pos = at + 2, // stuffed FF, restart marker
                0xFF => self.pos = at + 1,               // fill byte; the marker follows
                _ => {
                    self.pos = at;
                    self.state = State::Markers;
                    return None;
                }
            }
        }
    }

    /// An error step if a frame reaching `end` would exceed the limit (once per frame).
    fn check_limit(&mut self, end: usize) -> Option<Step> {
        if self.discarding || end <= self.max_frame_len {
            return None;
        }
        self.discarding = true;
        Some(Step::Error(MjpegError::FrameTooLarge {
            limit: self.max_frame_len,
        }))
    }

    /// Drops the current frame and resyncs at the next SOI after its start. Reports it, unless the
    /// frame was already reported as oversized.
    fn malformed(&mut self, reason: &'static str) -> Option<Step> {
        let offset = self.pos;
        // An oversized frame's start is gone; resync from here instead.
        let drop = if self.discarding { self.pos } else { 2 };
        self.buf.advance(drop.min(self.buf.len()));
        self.state = State::Seek;
        self.pos = 0;
        if std::mem::take(&mut self.discarding) {
            return None;
        }
        Some(Step::Error(MjpegError::Malformed { offset, reason }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_images::{jpeg_with, jpeg_with_exif_thumbnail, real_frames, small_jpeg};

    /// Pushes `chunks` in order, draining after each, and returns everything that came out.
    fn split<'a>(
        splitter: &mut Splitter,
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> Vec<Result<Bytes, MjpegError>> {
        let mut out = Vec::new();
        for chunk in chunks {
            splitter.push(chunk);
            while let Some(item) = splitter.next_frame() {
                out.push(item);
            }
        }
        out
    }

    fn frames_of(results: Vec<Result<Bytes, MjpegError>>) -> Vec<Vec<u8>> {
        results
            .into_iter()
            .map(|r| r.expect("no errors expected").to_vec())
            .collect()
    }

    /// Deterministic chunk sizes in `1..=max`.
    fn chunk_sizes(seed: u64, max: usize) -> impl FnMut() -> usize {
        let mut state = seed;
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % max as u64) as usize + 1
        }
    }

    fn random_chunks(data: &[u8], seed: u64, max: usize) -> Vec<&[u8]> {
        let mut next = chunk_sizes(seed, max);
        let mut chunks = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(next().min(rest.len()));
            chunks.push(chunk);
            rest = tail;
        }
        chunks
    }

    /// Small JPEGs exercising the structure: restart markers, progressive scans (DHT between
    /// SOS segments), fill bytes before markers, an EXIF thumbnail, 4:4:4 and 4:2:0.
    fn small_frames() -> Vec<Vec<u8>> {
        let mut with_fill = small_jpeg(24, 16, 3);
        // Fill bytes are allowed before any marker: FF D8 FF FF FF E0 ...
        with_fill.splice(2..2, [0xFF, 0xFF]);
        vec![
            small_jpeg(32, 24, 1),
            jpeg_with(40, 24, 2, |e| e.set_restart_interval(1)),
            jpeg_with(32, 32, 4, |e| e.set_progressive(true)),
            with_fill,
            jpeg_with_exif_thumbnail(),
            jpeg_with(16, 8, 6, |e| {
                e.set_sampling_factor(jpeg_encoder::SamplingFactor::F_1_1)
            }),
        ]
    }

    /// The small frames with junk between them that a real pipe can carry: fill bytes, a
    /// multipart boundary, a lone FF, stray FF D9.
    fn small_stream() -> (Vec<u8>, Vec<Vec<u8>>) {
        let frames = small_frames();
        let junk: [&[u8]; 6] = [
            b"",
            b"\xFF\xFF\xFF",
            b"\r\n--frame\r\nContent-Type: image/jpeg\r\n\r\n",
            b"\xFF",
            b"\xFF\xD9\x00\x00",
            b"",
        ];
        let mut stream = Vec::new();
        for (frame, junk) in frames.iter().zip(junk) {
            stream.extend_from_slice(junk);
            stream.extend_from_slice(frame);
        }
        (stream, frames)
    }

    #[test]
    fn test_frames_have_the_features_they_claim() {
        let frames = small_frames();
        let has = |f: &[u8], pat: &[u8]| f.windows(pat.len()).any(|w| w == pat);
        assert!(has(&frames[1], &[0xFF, 0xD0]), "restart markers");
        assert!(
            frames[2].windows(2).filter(|w| *w == [0xFF, SOS]).count() > 1,
            "progressive: several scans"
        );
        let entropy_stuffing = frames.iter().any(|f| has(f, &[0xFF, 0x00]));
        assert!(entropy_stuffing, "some frame has stuffed FF 00 bytes");
    }

    #[test]
    fn real_frames_come_out_identical_whole_and_byte_by_byte() {
        let files = real_frames();
        let stream: Vec<u8> = files.iter().flat_map(|(_, b)| b.iter().copied()).collect();
        let expected: Vec<Vec<u8>> = files.into_iter().map(|(_, b)| b).collect();

        let whole = frames_of(split(&mut Splitter::new(), [&stream[..]]));
        assert_eq!(whole.len(), expected.len());
        assert!(whole == expected, "whole stream at once");

        let mut splitter = Splitter::new();
        let bytewise = frames_of(split(&mut splitter, stream.chunks(1)));
        assert!(bytewise == expected, "one byte at a time");
        assert_eq!(splitter.buffered_len(), 0);
        assert_eq!(splitter.skipped_bytes(), 0);

        for seed in 1..=3 {
            let chunks = random_chunks(&stream, seed, 70_000);
            let got = frames_of(split(&mut Splitter::new(), chunks));
            assert!(got == expected, "random chunks, seed {seed}");
        }
    }

    #[test]
    fn real_frame_two_way_splits_at_every_marker_and_stuffing_byte() {
        // Splitting inside a run of plain entropy bytes cannot change anything the parser does, so
        // every position next to an FF (markers, stuffing, fill), the whole header region and the
        // frame's ends are the positions that matter.
        let (_, frame) = real_frames().swap_remove(0);
        let header_end = frame
            .windows(2)
            .position(|w| w == [0xFF, SOS])
            .expect("SOS")
            + 64;
        let mut positions: Vec<usize> = (0..=header_end).collect();
        positions.extend(frame.len() - 8..=frame.len());
        for (i, _) in frame.iter().enumerate().filter(|(_, &b)| b == 0xFF) {
            positions.extend([i, i + 1, i + 2]);
        }
        positions.sort_unstable();
        positions.dedup();
        let mut stream = frame.clone();
        stream.extend_from_slice(&frame);
        for at in positions {
            let got = frames_of(split(&mut Splitter::new(), [&stream[..at], &stream[at..]]));
            assert!(
                got.len() == 2 && got[0] == frame && got[1] == frame,
                "split at {at}"
            );
        }
    }

    #[test]
    fn small_frames_survive_every_two_way_split_and_byte_by_byte() {
        let (stream, expected) = small_stream();
        for at in 0..=stream.len() {
            let got = frames_of(split(&mut Splitter::new(), [&stream[..at], &stream[at..]]));
            assert!(got == expected, "split at {at}");
        }
        let mut splitter = Splitter::new();
        assert!(frames_of(split(&mut splitter, stream.chunks(1))) == expected);
        assert_eq!(splitter.finish(), None);
        let junk_len = stream.len() - expected.iter().map(Vec::len).sum::<usize>();
        assert_eq!(splitter.skipped_bytes(), junk_len as u64);
    }

    #[test]
    fn exif_thumbnail_does_not_end_the_frame() {
        let outer = jpeg_with_exif_thumbnail();
        let got = frames_of(split(&mut Splitter::new(), [&outer[..]]));
        assert_eq!(got, vec![outer.clone()]);
        // The outer JPEG is a real image whose size is the outer one, not the thumbnail's.
        assert_eq!(crate::jpeg::probe(&got[0]).unwrap(), (64, 48));
    }

    #[test]
    fn oversized_frame_is_reported_dropped_and_memory_stays_bounded() {
        let small = small_jpeg(16, 16, 1);
        let big = small_jpeg(256, 256, 2);
        let limit = small.len() + 100;
        assert!(big.len() > limit);
        let stream = [&small[..], &big, &small].concat();
        let expected = vec![
            Ok(Bytes::from(small.clone())),
            Err(MjpegError::FrameTooLarge { limit }),
            Ok(Bytes::from(small.clone())),
        ];

        assert_eq!(
            split(&mut Splitter::with_max_frame_len(limit), [&stream[..]]),
            expected
        );

        let mut splitter = Splitter::with_max_frame_len(limit);
        let mut got = Vec::new();
        for chunk in stream.chunks(7) {
            got.extend(split(&mut splitter, [chunk]));
            assert!(
                splitter.buffered_len() <= limit + 7,
                "buffer bounded by the limit"
            );
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn oversized_frame_with_exif_thumbnail_is_skipped_by_structure_not_by_soi() {
        // While dropping an oversized frame the splitter still follows its segments, so the
        // thumbnail inside it is not mistaken for the next frame.
        let outer = jpeg_with_exif_thumbnail();
        let next = small_jpeg(8, 8, 7);
        let limit = next.len() + 50;
        assert!(outer.len() > limit);
        let stream = [&outer[..], &next].concat();
        for chunk_len in [1, 5, stream.len()] {
            let got = split(
                &mut Splitter::with_max_frame_len(limit),
                stream.chunks(chunk_len),
            );
            assert_eq!(
                got,
                vec![
                    Err(MjpegError::FrameTooLarge { limit }),
                    Ok(Bytes::from(next.clone()))
                ],
                "chunks of {chunk_len}"
            );
        }
    }

    #[test]
    fn frame_cut_in_its_scan_is_reported_and_the_next_one_kept() {
        let a = small_jpeg(32, 32, 1);
        let b = small_jpeg(32, 32, 2);
        let cut = a.len() - 20;
        let stream = [&a[..cut], &b].concat();
        let got = split(&mut Splitter::new(), stream.chunks(3));
        assert_eq!(
            got,
            vec![
                Err(MjpegError::Truncated { len: cut }),
                Ok(Bytes::from(b.clone()))
            ]
        );
    }

    #[test]
    fn broken_marker_structure_resyncs_at_the_next_soi() {
        let b = small_jpeg(16, 16, 2);
        // SOI, then garbage where a marker must be.
        let stream = [&b"\xFF\xD8\x12\x34"[..], &b].concat();
        let got = split(&mut Splitter::new(), stream.chunks(1));
        assert_eq!(
            got,
            vec![
                Err(MjpegError::Malformed {
                    offset: 2,
                    reason: "expected a marker (FF xx)"
                }),
                Ok(Bytes::from(b.clone()))
            ]
        );
        // A segment length below 2.
        let stream = [&b"\xFF\xD8\xFF\xE0\x00\x01"[..], &b].concat();
        let got = split(&mut Splitter::new(), [&stream[..]]);
        assert!(matches!(
            got[0],
            Err(MjpegError::Malformed { offset: 2, .. })
        ));
        assert_eq!(got[1], Ok(Bytes::from(b)));
    }

    #[test]
    fn finish_reports_an_incomplete_frame_once() {
        let a = small_jpeg(16, 16, 1);
        let mut splitter = Splitter::new();
        assert!(split(&mut splitter, [&a[..a.len() - 1]]).is_empty());
        assert_eq!(
            splitter.finish(),
            Some(MjpegError::Truncated { len: a.len() - 1 })
        );
        assert_eq!(splitter.finish(), None);
        assert_eq!(splitter.buffered_len(), 0);
        // Usable again afterwards.
        assert_eq!(frames_of(split(&mut splitter, [&a[..]])), vec![a]);
    }

    #[test]
    fn junk_only_is_dropped_as_it_arrives() {
        let mut splitter = Splitter::new();
        let junk = vec![0x42u8; 100_000];
        assert!(split(&mut splitter, [&junk[..], b"\xFF"]).is_empty());
        assert_eq!(splitter.buffered_len(), 1, "only a trailing FF is kept");
        assert_eq!(splitter.skipped_bytes(), 100_000);
        assert_eq!(splitter.finish(), None);
    }
}
