//! A 5×7 bitmap font with just the characters the synthetic pattern writes.
//!
//! A font crate would be a large dependency for a frame counter and a clock; thirty glyphs as
//! constants are enough, and drawing them is a few rectangle fills per lit pixel.

/// Glyph width in font pixels.
pub const GLYPH_WIDTH: u32 = 5;
/// Glyph height in font pixels.
pub const GLYPH_HEIGHT: u32 = 7;
/// Horizontal advance per character in font pixels (one blank column between glyphs).
pub const ADVANCE: u32 = GLYPH_WIDTH + 1;

/// The rows of `c`'s glyph, top to bottom; bit 4 of each row is the leftmost pixel. Characters
/// without a glyph (including lowercase) draw as a hollow box so a missing one is obvious.
pub fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        ' ' => [0x00; 7],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        _ => [0x1F, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1F],
    }
}

/// Width in font pixels of `text` drawn on one line (no trailing blank column).
pub fn text_width(text: &str) -> u32 {
    match text.chars().count() as u32 {
        0 => 0,
        n => n * ADVANCE - 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The glyph as rows of `#` and `.`.
    fn picture(c: char) -> Vec<String> {
        glyph(c)
            .iter()
            .map(|row| {
                (0..GLYPH_WIDTH)
                    .map(|x| {
                        if row >> (GLYPH_WIDTH - 1 - x) & 1 == 1 {
                            '#'
                        } else {
                            '.'
                        }
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn digits_look_like_digits() {
        assert_eq!(
            picture('1'),
            ["..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."]
        );
        assert_eq!(
            picture('7'),
            ["#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."]
        );
        assert_eq!(
            picture(':'),
            [".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."]
        );
    }

    #[test]
    fn every_character_the_pattern_uses_has_its_own_glyph() {
        let missing = glyph('\u{1}');
        for c in "0123456789:.- FRAMEWIRE UTC X FPS".chars() {
            assert!(c == ' ' || glyph(c) != missing, "{c:?} has no glyph");
            assert!(
                glyph(c).iter().all(|row| row >> GLYPH_WIDTH == 0),
                "{c:?} too wide"
            );
        }
        let distinct: std::collections::HashSet<[u8; 7]> =
            "0123456789".chars().map(glyph).collect();
        assert_eq!(distinct.len(), 10);
    }

    #[test]
    fn text_width_counts_gaps_between_glyphs() {
        assert_eq!(text_width(""), 0);
        assert_eq!(text_width("1"), 5);
        assert_eq!(text_width("12:34"), 29);
    }
}
