//! The 1920x1080 test pictures the encoding bench and `examples/share_cost.rs` share: a desktop
//! with a window of text, the same with a window moving over it, and its text scrolling.

use tandem_helper::encode::{Encoder, EncoderSettings};

/// The standard mode's budget for 1920x1080 at 30 frames a second (crate::pace's defaults).
pub const BITRATE: u32 = 2_500_000;

/// The encoder the measurements use. `skip_frames` off for timing, so that every timed call
/// encodes a picture (with it on, the rate control skips most pictures after a 1080p keyframe
/// and the mean mixes in skips of ~2 ms); on to count what the product sends.
pub fn encoder(skip_frames: bool) -> Encoder {
    Encoder::new(EncoderSettings {
        bitrate_bps: BITRATE,
        max_fps: 30.0,
        threads: 1,
        skip_frames,
    })
    .unwrap()
}

/// Width and height of every scene.
pub const W: u32 = 1920;
pub const H: u32 = 1080;
/// The text area that scrolls: rows `TEXT_TOP..TEXT_BOTTOM`, columns `TEXT_LEFT..TEXT_RIGHT`.
pub const TEXT_TOP: u32 = 140;
pub const TEXT_BOTTOM: u32 = 1000;
pub const TEXT_LEFT: u32 = 200;
pub const TEXT_RIGHT: u32 = 1700;
/// One line of text, the scroll step.
pub const LINE: u32 = 18;

/// A desktop: a grey background, a white window with rows of "text" (dark glyph-sized blocks,
/// deterministic), a title bar. BGRA, packed.
pub fn desktop() -> Vec<u8> {
    let mut px = vec![0u8; (W * H * 4) as usize];
    let mut seed = 0x2545_f491u32;
    for y in 0..H {
        for x in 0..W {
            let inside = (TEXT_LEFT..TEXT_RIGHT).contains(&x) && (100..TEXT_BOTTOM).contains(&y);
            let colour = if !inside {
                [90, 80, 70, 255]
            } else if y < 130 {
                [180, 120, 40, 255]
            } else {
                [255, 255, 255, 255]
            };
            let i = ((y * W + x) * 4) as usize;
            px[i..i + 4].copy_from_slice(&colour);
        }
    }
    // Text: 8x14 glyph cells on 18-pixel lines, each cell a few random dark strokes.
    for line in 0..48 {
        let top = TEXT_TOP + line * LINE;
        for cell in 0..180 {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            if seed.is_multiple_of(7) {
                continue; // a space
            }
            for dy in 0..14 {
                for dx in 0..8 {
                    if (seed >> ((dy * 8 + dx) % 31)) & 3 == 0 {
                        let (x, y) = (220 + cell * 8 + dx, top + dy);
                        let i = ((y * W + x) * 4) as usize;
                        px[i..i + 4].copy_from_slice(&[30, 30, 30, 255]);
                    }
                }
            }
        }
    }
    px
}

/// `base` with a 300x200 blue window at a position that moves 8 px a frame.
pub fn moving_window(base: &[u8], frame: u32, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(base);
    let (x0, y0) = ((frame * 8) % (W - 300), (frame * 4) % (H - 200));
    for y in y0..y0 + 200 {
        let row = ((y * W + x0) * 4) as usize;
        for px in out[row..row + 300 * 4].chunks_exact_mut(4) {
            px.copy_from_slice(&[200, 90, 20, 255]);
        }
    }
}

/// The source row of text row `y` once the text has scrolled `frame` lines up.
pub fn scrolled_row(y: u32, frame: u32) -> u32 {
    let height = TEXT_BOTTOM - TEXT_TOP;
    let shift = (frame * LINE) % height;
    TEXT_TOP + (y - TEXT_TOP + shift) % height
}

/// `base`'s text area scrolled up by one line a frame.
pub fn scrolled(base: &[u8], frame: u32, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(base);
    for y in TEXT_TOP..TEXT_BOTTOM {
        let src_y = scrolled_row(y, frame);
        let (src, dst) = (((src_y * W) * 4) as usize, ((y * W) * 4) as usize);
        let (from, to) = ((TEXT_LEFT * 4) as usize, (TEXT_RIGHT * 4) as usize);
        out[dst + from..dst + to].copy_from_slice(&base[src + from..src + to]);
    }
}
