//! D11's colour modes for an H.264 stream.
//!
//! An H.264 picture always carries 8-bit YUV, so "256 colours" and "16-bit" cannot narrow the
//! stream itself. They narrow the picture before it is encoded: every pixel is rounded to the
//! nearest colour of a fixed palette (RGB 5-6-5 for 16-bit, RGB 3-3-2 for 256 colours), without
//! dithering. This is what the CSR sees (flat, banded colours, as with a VNC viewer in those
//! modes) and it makes the picture cheaper to encode: gradients, anti-aliasing and photo noise
//! collapse into flat areas, which cost few bits. The fixed palette costs one table look-up a
//! channel and no per-frame analysis.

/// How many colours the picture keeps (D11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColourMode {
    /// Every colour the screen shows (24-bit).
    #[default]
    Full,
    /// RGB 5-6-5: 65,536 colours.
    Bits16,
    /// RGB 3-3-2: 256 colours.
    Colours256,
}

impl ColourMode {
    /// The bits each of red, green and blue keeps.
    fn bits(self) -> Option<[u32; 3]> {
        match self {
            Self::Full => None,
            Self::Bits16 => Some([5, 6, 5]),
            Self::Colours256 => Some([3, 3, 2]),
        }
    }
}

/// One channel rounded to `bits` bits and spread back over 0..=255.
fn level_table(bits: u32) -> [u8; 256] {
    let steps = (1u32 << bits) - 1;
    let mut table = [0u8; 256];
    for (v, out) in table.iter_mut().enumerate() {
        let level = (v as u32 * steps + 127) / 255;
        *out = (level * 255 / steps) as u8;
    }
    table
}

/// Rounds the BGRA rows of `data` to `mode`'s palette in place (`width` pixels a row, `stride`
/// bytes apart). The caller has validated the sizes.
pub fn quantise(data: &mut [u8], width: usize, height: usize, stride: usize, mode: ColourMode) {
    let Some([r, g, b]) = mode.bits() else {
        return;
    };
    let (tr, tg, tb) = (level_table(r), level_table(g), level_table(b));
    for row in data.chunks_mut(stride).take(height) {
        for px in row[..width * 4].chunks_exact_mut(4) {
            px[0] = tb[usize::from(px[0])];
            px[1] = tg[usize::from(px[1])];
            px[2] = tr[usize::from(px[2])];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn every_colour_sample() -> Vec<u8> {
        (0..=255u8)
            .flat_map(|v| [v, v.wrapping_mul(7), v.wrapping_mul(13), 255])
            .collect()
    }

    fn distinct(data: &[u8]) -> usize {
        data.chunks_exact(4)
            .map(|p| (p[0], p[1], p[2]))
            .collect::<HashSet<_>>()
            .len()
    }

    #[test]
    fn modes_keep_at_most_their_number_of_colours_and_full_keeps_all() {
        let original = every_colour_sample();
        let mut full = original.clone();
        quantise(&mut full, 256, 1, 1024, ColourMode::Full);
        assert_eq!(full, original);

        let mut c256 = original.clone();
        quantise(&mut c256, 256, 1, 1024, ColourMode::Colours256);
        let blues: HashSet<u8> = c256.chunks_exact(4).map(|p| p[0]).collect();
        assert_eq!(blues, HashSet::from([0, 85, 170, 255]));
        assert!(distinct(&c256) <= 256);

        let mut c16 = original.clone();
        quantise(&mut c16, 256, 1, 1024, ColourMode::Bits16);
        let greens: HashSet<u8> = c16.chunks_exact(4).map(|p| p[1]).collect();
        assert!(greens.len() <= 64);
        // Rounding, not truncation: no channel moves by more than half a step.
        for (q, o) in c16.iter().zip(&original) {
            assert!(q.abs_diff(*o) <= 5, "{q} from {o}");
        }
    }

    #[test]
    fn black_and_white_survive_every_mode() {
        for mode in [ColourMode::Bits16, ColourMode::Colours256] {
            let mut px = [0, 0, 0, 255, 255, 255, 255, 255];
            quantise(&mut px, 2, 1, 8, mode);
            assert_eq!(px, [0, 0, 0, 255, 255, 255, 255, 255]);
        }
    }
}
