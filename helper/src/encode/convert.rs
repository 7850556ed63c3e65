//! BGRA screen pixels to the I420 picture the encoder takes.
//!
//! H.264 4:2:0 pictures have even sizes (the SPS crops in steps of two), so an odd width or height
//! is **padded** by one column or row that repeats the edge pixels (and a side under 16 pixels,
//! OpenH264's least, up to 16): no pixel of the screen is lost, and picture coordinates stay the
//! screen's (the extra columns or rows map to nothing). Half
//! resolution (D11 sampling) averages each 2x2 block before conversion.

use yuv::{
    BufferStoreMut, YuvConversionMode, YuvPlanarImageMut, YuvRange, YuvStandardMatrix,
    bgra_to_yuv420,
};

use super::EncodeError;

/// Largest picture OpenH264 encodes (level 5.2): 3840x2160 either way round.
pub const MAX_LONG_SIDE: u32 = 3840;
/// See [`MAX_LONG_SIDE`].
pub const MAX_SHORT_SIDE: u32 = 2160;

/// The colour matrix and range of the stream; the SPS says the same (VUI), so decoders agree.
pub const MATRIX: YuvStandardMatrix = YuvStandardMatrix::Bt709;
/// See [`MATRIX`].
pub const RANGE: YuvRange = YuvRange::Limited;

/// One captured picture: BGRA (X11's ZPixmap on little-endian, alpha ignored), `stride` bytes a row.
#[derive(Debug, Clone, Copy)]
pub struct Bgra<'a> {
    pub data: &'a [u8],
    pub width: u32,
    pub height: u32,
    pub stride: u32,
}

impl<'a> Bgra<'a> {
    /// A tightly packed picture (`stride` = 4 x `width`).
    pub fn packed(data: &'a [u8], width: u32, height: u32) -> Self {
        Self {
            data,
            width,
            height,
            stride: width.saturating_mul(4),
        }
    }

    /// Checks the sizes against the buffer, so no later step indexes out of it.
    pub fn validate(&self) -> Result<(), EncodeError> {
        let bad = |why: &'static str| EncodeError::BadFrame {
            width: self.width,
            height: self.height,
            stride: self.stride,
            len: self.data.len(),
            why,
        };
        if self.width == 0 || self.height == 0 {
            return Err(bad("the picture is empty"));
        }
        if self.width.max(self.height) > MAX_LONG_SIDE
            || self.width.min(self.height) > MAX_SHORT_SIDE
        {
            return Err(bad("the picture is larger than 3840x2160"));
        }
        if u64::from(self.stride) < u64::from(self.width) * 4 {
            return Err(bad("the stride is shorter than a row"));
        }
        if !self.stride.is_multiple_of(4) {
            return Err(bad("the stride is not whole pixels"));
        }
        if (self.data.len() as u64) < self.byte_len() {
            return Err(bad("the buffer is shorter than the picture"));
        }
        Ok(())
    }
}

impl Bgra<'_> {
    /// The bytes the picture covers: `height` whole rows of `stride` (the last one too, as an
    /// X11 image has it). Only meaningful for a picture with sane sizes.
    pub fn byte_len(&self) -> u64 {
        u64::from(self.stride) * u64::from(self.height)
    }
}

/// An I420 picture with even sizes, reused from frame to frame.
#[derive(Debug, Default)]
pub struct I420 {
    pub width: u32,
    pub height: u32,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
    /// The half-resolution BGRA picture, when sampling.
    half: Vec<u8>,
}

impl I420 {
    /// Converts `frame` (validated here), halving it first if `half`. The result has even sizes.
    pub fn convert(&mut self, frame: Bgra<'_>, half: bool) -> Result<(), EncodeError> {
        frame.validate()?;
        if half {
            let mut half_buf = std::mem::take(&mut self.half);
            let halved = halve(frame, &mut half_buf);
            let result = self.convert_full(halved);
            self.half = half_buf;
            result
        } else {
            self.convert_full(frame)
        }
    }

    fn convert_full(&mut self, frame: Bgra<'_>) -> Result<(), EncodeError> {
        let (w, h) = (frame.width, frame.height);
        let (pw, ph) = (padded(w), padded(h));
        let (cw, ch) = (pw / 2, ph / 2);
        self.width = pw;
        self.height = ph;
        self.y.resize((pw * ph) as usize, 0);
        self.u.resize((cw * ch) as usize, 0);
        self.v.resize((cw * ch) as usize, 0);
        let (chroma_w, chroma_h) = (w.div_ceil(2), h.div_ceil(2));
        {
            // The converter writes the w x h picture into planes laid out for the padded size
            // (the padding is not its business); its chroma for an odd last column or row comes
            // from the pixels that exist. It wants exactly `h` rows of input.
            let mut planar = YuvPlanarImageMut {
                y_plane: BufferStoreMut::Borrowed(&mut self.y[..(pw * h) as usize]),
                y_stride: pw,
                u_plane: BufferStoreMut::Borrowed(&mut self.u[..(cw * chroma_h) as usize]),
                u_stride: cw,
                v_plane: BufferStoreMut::Borrowed(&mut self.v[..(cw * chroma_h) as usize]),
                v_stride: cw,
                width: w,
                height: h,
            };
            bgra_to_yuv420(
                &mut planar,
                &frame.data[..frame.byte_len() as usize],
                frame.stride,
                RANGE,
                MATRIX,
                YuvConversionMode::Balanced,
            )
            .map_err(|e| EncodeError::Convert(e.to_string()))?;
        }
        pad(&mut self.y, pw, w, h);
        pad(&mut self.u, cw, chroma_w, chroma_h);
        pad(&mut self.v, cw, chroma_w, chroma_h);
        Ok(())
    }
}

/// The encoded size for a side of `n` pixels: even, and at least OpenH264's 16.
fn padded(n: u32) -> u32 {
    n.next_multiple_of(2).max(16)
}

/// Fills a plane of `stride` columns beyond its first `w` x `h` samples by repeating the last
/// column and then the last row.
fn pad(plane: &mut [u8], stride: u32, w: u32, h: u32) {
    let (stride, w, h) = (stride as usize, w as usize, h as usize);
    if w < stride {
        for row in plane.chunks_exact_mut(stride).take(h) {
            let edge = row[w - 1];
            row[w..].fill(edge);
        }
    }
    let (done, rest) = plane.split_at_mut(h * stride);
    let last = &done[(h - 1) * stride..];
    for row in rest.chunks_exact_mut(stride) {
        row.copy_from_slice(last);
    }
}

/// Averages each 2x2 block of `frame` into `out` (an odd last column or row averages what it has).
fn halve<'b>(frame: Bgra<'_>, out: &'b mut Vec<u8>) -> Bgra<'b> {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let (hw, hh) = (w.div_ceil(2), h.div_ceil(2));
    out.resize(hw * hh * 4, 0);
    let stride = frame.stride as usize;
    let pairs = w / 2;
    for (oy, dst) in out.chunks_exact_mut(hw * 4).enumerate() {
        let y0 = oy * 2;
        let y1 = (y0 + 1).min(h - 1);
        let r0 = &frame.data[y0 * stride..y0 * stride + w * 4];
        let r1 = &frame.data[y1 * stride..y1 * stride + w * 4];
        let (whole, odd) = dst.split_at_mut(pairs * 4);
        halve_row(&r0[..pairs * 8], &r1[..pairs * 8], whole);
        if let Some(last) = odd.get_mut(..4) {
            let (a, b) = (&r0[pairs * 8..], &r1[pairs * 8..]);
            for c in 0..4 {
                last[c] = (u16::from(a[c]) + u16::from(b[c])).div_ceil(2) as u8;
            }
        }
    }
    Bgra::packed(out, hw as u32, hh as u32)
}

/// Averages the pixel pairs of two rows into one row of half the width: each pixel is a `u32`
/// whose 4 channels are summed two at a time in 16-bit lanes (at most 4 x 255 + 2, no carry
/// between lanes), rounded as `(sum + 2) / 4`. Whole chunks and no index arithmetic, so the loop
/// checks no bounds: a fifth of the instructions of a per-channel loop (docs/performance.md).
fn halve_row(r0: &[u8], r1: &[u8], dst: &mut [u8]) {
    const LANES: u32 = 0x00ff_00ff;
    const HALF: u32 = 0x0002_0002;
    let px = |s: &[u8]| u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
    for ((a, b), d) in r0
        .chunks_exact(8)
        .zip(r1.chunks_exact(8))
        .zip(dst.chunks_exact_mut(4))
    {
        let (p, q, r, s) = (px(&a[..4]), px(&a[4..]), px(&b[..4]), px(&b[4..]));
        let even = (p & LANES) + (q & LANES) + (r & LANES) + (s & LANES) + HALF;
        let odd = ((p >> 8) & LANES)
            + ((q >> 8) & LANES)
            + ((r >> 8) & LANES)
            + ((s >> 8) & LANES)
            + HALF;
        let out = ((even >> 2) & LANES) | (((odd >> 2) & LANES) << 8);
        d.copy_from_slice(&out.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(w: u32, h: u32, bgra: [u8; 4]) -> Vec<u8> {
        bgra.iter()
            .copied()
            .cycle()
            .take((w * h * 4) as usize)
            .collect()
    }

    #[test]
    fn odd_sizes_are_padded_to_even_with_the_edge_repeated() {
        let (w, h) = (17, 19);
        let mut data = solid(w, h, [0, 0, 0, 255]);
        // A white last column: the padding column repeats it.
        for row in 0..h as usize {
            let at = (row * w as usize + w as usize - 1) * 4;
            data[at..at + 4].copy_from_slice(&[255; 4]);
        }
        let mut pic = I420::default();
        pic.convert(Bgra::packed(&data, w, h), false).unwrap();
        assert_eq!((pic.width, pic.height), (18, 20));
        assert_eq!((pic.y.len(), pic.u.len()), (360, 90));
        for row in 0..20 {
            assert_eq!(pic.y[row * 18 + 17], pic.y[row * 18 + 16], "row {row}");
            assert!(pic.y[row * 18 + 17] > 200);
            assert!(pic.y[row * 18] < 30);
        }
    }

    #[test]
    fn tiny_pictures_are_padded_to_16() {
        let data = solid(1, 1, [0, 0, 255, 255]);
        let mut pic = I420::default();
        pic.convert(Bgra::packed(&data, 1, 1), false).unwrap();
        assert_eq!((pic.width, pic.height), (16, 16));
        assert!(pic.y.iter().all(|&y| y == pic.y[0]));
        assert!(
            pic.v.iter().all(|&v| v == pic.v[0] && v > 200),
            "red: {:?}",
            pic.v
        );
    }

    #[test]
    fn garbage_sizes_are_errors() {
        let data = vec![0u8; 64];
        let cases = [
            Bgra::packed(&data, 0, 4),
            Bgra::packed(&data, 4, 0),
            Bgra::packed(&data, 4, 5),
            Bgra {
                data: &data,
                width: 4,
                height: 2,
                stride: 8,
            },
            Bgra {
                data: &data,
                width: 4,
                height: 4,
                stride: 17,
            },
            // The last row without its stride's slack.
            Bgra {
                data: &data[..60],
                width: 2,
                height: 2,
                stride: 32,
            },
            Bgra {
                data: &data,
                width: 2,
                height: 2,
                stride: 9,
            },
            Bgra {
                data: &data,
                width: u32::MAX,
                height: u32::MAX,
                stride: u32::MAX,
            },
            Bgra::packed(&data, 4000, 1),
        ];
        let mut pic = I420::default();
        for case in cases {
            assert!(pic.convert(case, false).is_err(), "{case:?}");
            assert!(pic.convert(case, true).is_err(), "{case:?}");
        }
    }

    #[test]
    fn a_stride_with_slack_is_honoured() {
        // 2x2 grey picture in rows of 3 pixels, the slack filled with white.
        let mut data = vec![255u8; 3 * 4 * 2];
        for row in 0..2 {
            data[row * 12..row * 12 + 8].copy_from_slice(&[128, 128, 128, 255, 128, 128, 128, 255]);
        }
        let mut pic = I420::default();
        pic.convert(
            Bgra {
                data: &data,
                width: 2,
                height: 2,
                stride: 12,
            },
            false,
        )
        .unwrap();
        assert!(
            pic.y.iter().all(|&y| (120..=130).contains(&y)),
            "{:?}",
            pic.y
        );
    }

    #[test]
    fn halving_averages_blocks() {
        // 3x1: black, white, grey -> 2x1 (avg of black+white, grey alone), padded to 2x2.
        let data = [0, 0, 0, 0, 255, 255, 255, 255, 100, 100, 100, 100];
        let mut out = Vec::new();
        let half = halve(Bgra::packed(&data, 3, 1), &mut out);
        assert_eq!((half.width, half.height), (2, 1));
        assert_eq!(&out[..4], &[128, 128, 128, 128]);
        assert_eq!(&out[4..], &[100, 100, 100, 100]);
    }

    #[test]
    fn halving_averages_rows_and_keeps_the_stride() {
        // 3x3 in rows of 4 pixels (slack 9s): each 2x2 block, the odd column, row and corner.
        #[rustfmt::skip]
        let rows: [[u8; 4]; 3] = [[0, 100, 10, 9], [200, 40, 30, 9], [60, 80, 255, 9]];
        let data: Vec<u8> = rows
            .iter()
            .flatten()
            .flat_map(|&v| [v, v, v, 255])
            .collect();
        let mut out = Vec::new();
        let frame = Bgra {
            data: &data,
            width: 3,
            height: 3,
            stride: 16,
        };
        let half = halve(frame, &mut out);
        assert_eq!((half.width, half.height), (2, 2));
        let grey: Vec<u8> = out.chunks_exact(4).map(|p| p[0]).collect();
        // (0+100+200+40+2)/4, (10+30+1)/2, (60+80+1)/2, 255.
        assert_eq!(grey, [85, 20, 70, 255]);
    }

    #[test]
    fn halving_rounds_every_channel_alone() {
        // Channels far apart in one pixel pair: no lane carries into the next.
        let data = [
            255, 0, 255, 1, 255, 0, 254, 2, 255, 3, 0, 255, 254, 0, 0, 255,
        ];
        let mut out = Vec::new();
        halve(Bgra::packed(&data, 2, 2), &mut out);
        // (255*3+254+2)/4, (0+0+3+0+2)/4, (255+254+0+0+2)/4, (1+2+255+255+2)/4.
        assert_eq!(out, [255, 1, 127, 128]);
    }
}
