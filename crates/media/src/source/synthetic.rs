//! A moving test pattern, so streaming can be tried and measured without a camera.
//!
//! Colour bars show colour handling, a grey ramp shows levels, and three things prove the picture
//! is live rather than a frozen frame: a scrolling rainbow band, a bouncing box, and the frame
//! number with the wall-clock time (UTC, to the millisecond) written into the image. The clock in
//! the picture also lets a viewer read end-to-end latency off a screen next to a clock.
//!
//! Everything static is drawn once; each frame copies it, draws the moving parts over it in the
//! same reused buffer and encodes. Encoding is nearly all of the cost.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use super::font::{glyph, text_width, ADVANCE, GLYPH_HEIGHT, GLYPH_WIDTH};
use super::{FrameSource, SourceError, SourceFrame};
use crate::jpeg;

type Rgb = [u8; 3];

/// 75% colour bars, left to right.
const BARS: [Rgb; 7] = [
    [191, 191, 191],
    [191, 191, 0],
    [0, 191, 191],
    [0, 191, 0],
    [191, 0, 191],
    [191, 0, 0],
    [0, 0, 191],
];
const WHITE: Rgb = [255, 255, 255];
const BLACK: Rgb = [0, 0, 0];

/// Smallest and largest side accepted: the text needs some room, and two frame-sized buffers of
/// 8192×8192 are already 400 MB.
const MIN_SIDE: u32 = 16;
const MAX_SIDE: u32 = 8192;

/// The synthetic source: see the module documentation.
pub struct Synthetic {
    width: u32,
    height: u32,
    quality: u8,
    frame_number: u64,
    /// Font pixel size in image pixels.
    scale: u32,
    /// Rows of the scrolling band: `band.0..band.1`.
    band: (u32, u32),
    /// The static parts, drawn once.
    background: Vec<u8>,
    /// One row of the rainbow, two widths long, so any scroll offset is one contiguous copy.
    rainbow: Vec<u8>,
    /// The frame being drawn; reused.
    rgb: Vec<u8>,
    /// The text being drawn; reused.
    text: String,
}

impl std::fmt::Debug for Synthetic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Synthetic")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("quality", &self.quality)
            .field("frame_number", &self.frame_number)
            .finish_non_exhaustive()
    }
}

impl Synthetic {
    /// A `width`×`height` pattern encoded at JPEG `quality`.
    ///
    /// # Errors
    /// [`SourceError::InvalidSpec`] for a side outside 16..=8192, [`SourceError::Jpeg`] for a
    /// quality outside 1..=100.
    pub fn new(width: u32, height: u32, quality: u8) -> Result<Synthetic, SourceError> {
        if !(MIN_SIDE..=MAX_SIDE).contains(&width) || !(MIN_SIDE..=MAX_SIDE).contains(&height) {
            return Err(SourceError::InvalidSpec {
                spec: format!("synthetic:{width}x{height}"),
                reason: format!("each side must be {MIN_SIDE}..={MAX_SIDE} pixels"),
            });
        }
        if !(1..=100).contains(&quality) {
            return Err(jpeg::JpegError::InvalidQuality(quality).into());
        }
        let bars_bottom = height * 2 / 3;
        let band = (bars_bottom, bars_bottom + (height - bars_bottom) / 2);
        let mut synthetic = Synthetic {
            width,
            height,
            quality,
            frame_number: 0,
            scale: (height / 160).max(1),
            band,
            background: vec![0; width as usize * height as usize * 3],
            rainbow: (0..2 * width).flat_map(|x| hue(x % width, width)).collect(),
            rgb: vec![0; width as usize * height as usize * 3],
            text: String::new(),
        };
        synthetic.draw_background();
        Ok(synthetic)
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The number the next [`next_frame`](FrameSource::next_frame) call draws (starts at 0).
    pub fn frame_number(&self) -> u64 {
        self.frame_number
    }

    /// The RGB pixels of the frame last rendered.
    pub fn pixels(&self) -> &[u8] {
        &self.rgb
    }

    /// Draws frame `frame_number` stamped with wall-clock time `now` and encodes it. The frame
    /// counter of [`next_frame`](FrameSource::next_frame) is not touched, so tests can pick both.
    ///
    /// # Errors
    /// [`SourceError::Jpeg`] if encoding fails.
    pub fn render(
        &mut self,
        frame_number: u64,
        now: SystemTime,
    ) -> Result<SourceFrame, SourceError> {
        self.draw(frame_number, now);
        let jpeg = jpeg::encode_rgb(&self.rgb, self.width, self.height, self.quality)?;
        Ok(SourceFrame {
            jpeg,
            width: self.width,
            height: self.height,
        })
    }

    fn draw_background(&mut self) {
        let (w, h) = (self.width, self.height);
        let canvas = &mut Canvas::new(&mut self.background, w, h);
        let bar_width = w.div_ceil(BARS.len() as u32);
        for (i, colour) in BARS.iter().enumerate() {
            canvas.fill(i as u32 * bar_width, 0, bar_width, self.band.0, *colour);
        }
        // Grey ramp under the band, black to white.
        for x in 0..w {
            let level = (x * 255 / (w - 1)) as u8;
            canvas.fill(x, self.band.1, 1, h - self.band.1, [level; 3]);
        }
    }

    fn draw(&mut self, frame_number: u64, now: SystemTime) {
        let (w, h) = (self.width, self.height);
        self.rgb.copy_from_slice(&self.background);

        // Rainbow band scrolling left, one screen width every ~4 s at 30 fps.
        let step = u64::from((w / 120).max(1));
        let offset = ((frame_number * step) % u64::from(w)) as usize * 3;
        let row = w as usize * 3;
        let source = &self.rainbow[offset..offset + row];
        for y in self.band.0..self.band.1 {
            let start = y as usize * row;
            self.rgb[start..start + row].copy_from_slice(source);
        }

        let scale = self.scale;
        let canvas = &mut Canvas::new(&mut self.rgb, w, h);

        // A box bouncing across the bars, framed so it shows on every bar colour.
        let side = (h / 6).max(4);
        let travel = u64::from(w.saturating_sub(side).max(1));
        let phase = (frame_number * step * 2) % (2 * travel);
        let x = if phase < travel {
            phase
        } else {
            2 * travel - phase
        } as u32;
        // Low in the bars, clear of the text panel.
        let y = self.band.0.saturating_sub(side + side / 4);
        let border = (side / 10).max(1);
        canvas.fill(x, y, side, side, WHITE);
        canvas.fill(
            x + border,
            y + border,
            side - 2 * border,
            side - 2 * border,
            BLACK,
        );

        // Three lines of text on a black panel, top left.
        let millis = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() % 86_400_000);
        let (hours, minutes) = (millis / 3_600_000, millis / 60_000 % 60);
        let (seconds, millis) = (millis / 1000 % 60, millis % 1000);
        self.text.clear();
        // Writing to a String cannot fail.
        let _ = write!(
            self.text,
            "FRAMEWIRE {w}X{h}\nFRAME {frame_number:06}\n{hours:02}:{minutes:02}:{seconds:02}.{millis:03} UTC"
        );
        let line_height = (GLYPH_HEIGHT + 3) * scale;
        let pad = 2 * scale;
        let widest = self.text.lines().map(text_width).max().unwrap_or(0) * scale;
        let lines = self.text.lines().count() as u32;
        let (left, top) = (pad, pad);
        canvas.fill(
            left,
            top,
            widest + 2 * pad,
            lines * line_height + pad,
            BLACK,
        );
        for (i, line) in self.text.lines().enumerate() {
            let y = top + pad + i as u32 * line_height;
            canvas.text(left + pad, y, line, scale, WHITE);
        }
    }
}

impl FrameSource for Synthetic {
    fn next_frame(&mut self) -> Result<SourceFrame, SourceError> {
        let frame = self.render(self.frame_number, SystemTime::now())?;
        self.frame_number += 1;
        Ok(frame)
    }
}

/// A fully saturated hue for column `x` of `width`, red → yellow → green → cyan → blue → magenta.
fn hue(x: u32, width: u32) -> Rgb {
    let h = x * 6 * 255 / width; // 0..6*255
    let (sector, f) = (h / 255, (h % 255) as u8);
    match sector {
        0 => [255, f, 0],
        1 => [255 - f, 255, 0],
        2 => [0, 255, f],
        3 => [0, 255 - f, 255],
        4 => [f, 0, 255],
        _ => [255, 0, 255 - f],
    }
}

/// Drawing on a packed RGB buffer, clipped to its bounds.
struct Canvas<'a> {
    pixels: &'a mut [u8],
    width: u32,
    height: u32,
}

impl<'a> Canvas<'a> {
    fn new(pixels: &'a mut [u8], width: u32, height: u32) -> Canvas<'a> {
        Canvas {
            pixels,
            width,
            height,
        }
    }

    fn fill(&mut self, x: u32, y: u32, w: u32, h: u32, colour: Rgb) {
        let x1 = x.saturating_add(w).min(self.width);
        let y1 = y.saturating_add(h).min(self.height);
        if x >= x1 || y >= y1 {
            return;
        }
        let row = self.width as usize * 3;
        for y in y..y1 {
            let start = y as usize * row + x as usize * 3;
            let end = y as usize * row + x1 as usize * 3;
            for px in self.pixels[start..end].chunks_exact_mut(3) {
                px.copy_from_slice(&colour);
            }
        }
    }

    /// Draws `text` with its top-left corner at (`x`, `y`), each font pixel `scale` pixels square.
    fn text(&mut self, x: u32, y: u32, text: &str, scale: u32, colour: Rgb) {
        for (i, c) in text.chars().enumerate() {
            let gx = x + i as u32 * ADVANCE * scale;
            for (row, bits) in glyph(c).iter().enumerate() {
                for col in 0..GLYPH_WIDTH {
                    if bits >> (GLYPH_WIDTH - 1 - col) & 1 == 1 {
                        let px = gx + col * scale;
                        let py = y + row as u32 * scale;
                        self.fill(px, py, scale, scale, colour);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(hms_millis: u64) -> SystemTime {
        // 2024-01-01T00:00:00Z plus the offset.
        UNIX_EPOCH + Duration::from_secs(1_704_067_200) + Duration::from_millis(hms_millis)
    }

    /// The pixel at (x, y).
    fn pixel(s: &Synthetic, x: u32, y: u32) -> Rgb {
        let i = (y * s.width + x) as usize * 3;
        s.pixels()[i..i + 3].try_into().unwrap()
    }

    /// Reads back text drawn by the pattern: matches each character cell against the font.
    fn read_line(s: &Synthetic, line: u32, chars: usize) -> String {
        let scale = s.scale;
        let pad = 2 * scale;
        let top = pad + pad + line * (GLYPH_HEIGHT + 3) * scale;
        let candidates = "0123456789:. ACEFIMRSTUWX";
        (0..chars as u32)
            .map(|i| {
                let left = pad + pad + i * ADVANCE * scale;
                let mut rows = [0u8; 7];
                for (r, bits) in rows.iter_mut().enumerate() {
                    for col in 0..GLYPH_WIDTH {
                        // Sample the centre of each font pixel.
                        let p = pixel(
                            s,
                            left + col * scale + scale / 2,
                            top + r as u32 * scale + scale / 2,
                        );
                        if p == WHITE {
                            *bits |= 1 << (GLYPH_WIDTH - 1 - col);
                        }
                    }
                }
                candidates
                    .chars()
                    .find(|&c| glyph(c) == rows)
                    .unwrap_or('?')
            })
            .collect()
    }

    #[test]
    fn frame_number_and_clock_are_drawn_into_the_picture() {
        let mut s = Synthetic::new(640, 480, 80).unwrap();
        let time = (13 * 3600 + 4 * 60 + 5) * 1000 + 67;
        let frame = s.render(1234, at(time)).unwrap();
        assert_eq!((frame.width, frame.height), (640, 480));
        assert_eq!(jpeg::probe(&frame.jpeg).unwrap(), (640, 480));
        assert_eq!(read_line(&s, 0, 17), "FRAMEWIRE 640X480");
        assert_eq!(read_line(&s, 1, 12), "FRAME 001234");
        assert_eq!(read_line(&s, 2, 16), "13:04:05.067 UTC");
    }

    #[test]
    fn picture_moves_between_frames() {
        let mut s = Synthetic::new(320, 240, 80).unwrap();
        s.render(0, at(0)).unwrap();
        let first = s.pixels().to_vec();
        s.render(0, at(0)).unwrap();
        assert_eq!(s.pixels(), &first[..], "same inputs, same picture");
        s.render(1, at(0)).unwrap();
        let changed = first.iter().zip(s.pixels()).filter(|(a, b)| a != b).count();
        // Band scroll + box move + digits: a good part of the picture, not just the counter.
        assert!(changed > first.len() / 20, "only {changed} bytes changed");
    }

    #[test]
    fn next_frame_counts_up_and_encodes_decodable_jpegs() {
        let mut s = Synthetic::new(64, 48, 75).unwrap();
        for n in 0..3 {
            assert_eq!(s.frame_number(), n);
            let frame = s.next_frame().unwrap();
            let decoded = jpeg::decode_rgb(&frame.jpeg).unwrap();
            assert_eq!((decoded.width(), decoded.height()), (64, 48));
        }
        assert_eq!(s.frame_number(), 3);
    }

    #[test]
    fn decoded_frame_shows_the_bars() {
        let mut s = Synthetic::new(700, 300, 90).unwrap();
        let frame = s.render(0, at(0)).unwrap();
        let decoded = jpeg::decode_rgb(&frame.jpeg).unwrap();
        // Middle of the bottom-right bar (blue), below the box's path.
        let (x, y) = (650, 190);
        let i = (y * 700 + x) * 3;
        let px = &decoded.pixels()[i..i + 3];
        assert!(px[0] < 30 && px[1] < 30 && px[2] > 160, "{px:?}");
    }

    #[test]
    fn odd_and_tiny_sizes_work_and_bad_ones_are_refused() {
        for (w, h) in [(16, 16), (17, 33), (1000, 17)] {
            let mut s = Synthetic::new(w, h, 50).unwrap();
            let frame = s.next_frame().unwrap();
            assert_eq!(jpeg::probe(&frame.jpeg).unwrap(), (w, h));
        }
        assert!(matches!(
            Synthetic::new(15, 100, 80),
            Err(SourceError::InvalidSpec { .. })
        ));
        assert!(matches!(
            Synthetic::new(100, 9000, 80),
            Err(SourceError::InvalidSpec { .. })
        ));
        assert!(matches!(
            Synthetic::new(100, 100, 0),
            Err(SourceError::Jpeg(jpeg::JpegError::InvalidQuality(0)))
        ));
    }
}
