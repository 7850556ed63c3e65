//! Tandem Helper's encoding cost per frame at 1920x1080 (docs/performance.md, "Tandem Helper:
//! encoding"): BGRA -> I420 conversion (the `yuv` crate against OpenH264's own), and conversion
//! plus encoding for a still screen, a moving window and scrolling text. Bytes per frame are
//! printed before each encoding benchmark (criterion measures time only).
//!
//! `cargo bench -p tandem-helper --bench encode`

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use openh264::formats::{BgraSliceU8, YUVBuffer};
use tandem_helper::encode::convert::{Bgra, I420};
use tandem_helper::encode::{ColourMode, Encoder, EncoderSettings, PictureOptions};

const W: u32 = 1920;
const H: u32 = 1080;
/// The standard mode's budget for 1920x1080 at 30 frames a second (crate::pace's defaults).
const BITRATE: u32 = 2_500_000;

/// A desktop: a grey background, a white window with rows of "text" (dark glyph-sized blocks,
/// deterministic), a title bar.
fn desktop() -> Vec<u8> {
    let mut px = vec![0u8; (W * H * 4) as usize];
    let mut seed = 0x2545_f491u32;
    for y in 0..H {
        for x in 0..W {
            let inside = (200..1700).contains(&x) && (100..1000).contains(&y);
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
        let top = 140 + line * 18;
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
fn moving_window(base: &[u8], frame: u32, out: &mut Vec<u8>) {
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

/// `base`'s text area scrolled up by 18 px (one line) a frame.
fn scrolled(base: &[u8], frame: u32, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(base);
    let (top, bottom) = (140u32, 1000u32);
    let height = bottom - top;
    let shift = (frame * 18) % height;
    for y in top..bottom {
        let src_y = top + (y - top + shift) % height;
        let (src, dst) = (((src_y * W) * 4) as usize, ((y * W) * 4) as usize);
        let (from, to) = (200 * 4, 1700 * 4);
        out[dst + from..dst + to].copy_from_slice(&base[src + from..src + to]);
    }
}

fn encoder() -> Encoder {
    Encoder::new(EncoderSettings {
        bitrate_bps: BITRATE,
        max_fps: 30.0,
        threads: 1,
    })
    .unwrap()
}

/// Draws picture number `i` of a scene into the buffer.
type Scene<'a> = dyn Fn(u32, &mut Vec<u8>) + 'a;

/// Encodes 90 frames (3 s at 30 a second) of `scene` and prints the bytes a frame.
fn report_bytes(name: &str, options: PictureOptions, scene: &Scene) {
    let mut enc = encoder();
    let mut frame = Vec::new();
    let (mut key, mut delta, mut deltas, mut skipped) = (0, 0, 0, 0);
    for i in 0..90 {
        scene(i, &mut frame);
        match enc
            .encode(Bgra::packed(&frame, W, H), options, u64::from(i) * 33)
            .unwrap()
        {
            Some(au) if au.keyframe => key = au.data.len(),
            Some(au) => {
                delta += au.data.len();
                deltas += 1;
            }
            None => skipped += 1,
        }
    }
    let avg = delta.checked_div(deltas).unwrap_or(0);
    println!(
        "bytes {name}: keyframe {key}, delta average {avg} over {deltas} frames ({skipped} skipped), {:.0} kbit/s at 30 a second",
        (key + delta) as f64 * 8.0 / 3.0 / 1000.0
    );
}

fn conversion(c: &mut Criterion) {
    let base = desktop();
    let mut group = c.benchmark_group("helper_convert_1080p");
    let mut pic = I420::default();
    group.bench_function("yuv_crate", |b| {
        b.iter(|| {
            pic.convert(Bgra::packed(black_box(&base), W, H), false)
                .unwrap()
        })
    });
    group.bench_function("yuv_crate_half", |b| {
        b.iter(|| {
            pic.convert(Bgra::packed(black_box(&base), W, H), true)
                .unwrap()
        })
    });
    let mut buffer = YUVBuffer::new(W as usize, H as usize);
    group.bench_function("openh264_own", |b| {
        b.iter(|| buffer.read_bgra8(BgraSliceU8::new(black_box(&base), (W as usize, H as usize))))
    });
    group.finish();
}

fn encoding(c: &mut Criterion) {
    let base = desktop();
    let still = |_: u32, out: &mut Vec<u8>| {
        if out.is_empty() {
            out.extend_from_slice(&base);
        }
    };
    let window = |i: u32, out: &mut Vec<u8>| moving_window(&base, i, out);
    let scroll = |i: u32, out: &mut Vec<u8>| scrolled(&base, i, out);
    let full = PictureOptions::default();
    let scenes: [(&str, &Scene, PictureOptions); 5] = [
        ("still", &still, full),
        ("moving_window", &window, full),
        ("scrolling_text", &scroll, full),
        (
            "scrolling_text_sampling",
            &scroll,
            PictureOptions { half: true, ..full },
        ),
        (
            "scrolling_text_256_colours",
            &scroll,
            PictureOptions {
                colour: ColourMode::Colours256,
                ..full
            },
        ),
    ];
    let mut group = c.benchmark_group("helper_encode_1080p");
    for (name, scene, options) in scenes {
        report_bytes(name, options, scene);
        let mut enc = encoder();
        let mut scratch = Vec::new();
        let mut i = 0u32;
        // Building the next picture (an 8 MB copy) is set-up, outside the timing.
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || {
                    scene(i, &mut scratch);
                    i += 1;
                    (scratch.clone(), i)
                },
                |(frame, at)| {
                    let au = enc.encode(Bgra::packed(frame, W, H), options, u64::from(*at) * 33);
                    black_box(au.unwrap())
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(8)).warm_up_time(Duration::from_secs(2));
    targets = conversion, encoding
}
criterion_main!(benches);
