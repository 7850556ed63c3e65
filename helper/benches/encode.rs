//! Tandem Helper's encoding cost per frame at 1920x1080 (docs/performance.md, "Tandem Helper:
//! capture and encoding"): BGRA -> I420 conversion (the `yuv` crate against OpenH264's own), and
//! conversion plus encoding for a still screen, a moving window and scrolling text, every picture
//! encoded (frame skipping off). Bytes per frame and skipped pictures with skipping on, as the
//! product runs, are printed before each encoding benchmark (criterion measures time only).
//! Capture and CPU: `examples/share_cost.rs`.
//!
//! `cargo bench -p tandem-helper --bench encode`

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use openh264::formats::{BgraSliceU8, YUVBuffer};
use tandem_helper::encode::convert::{Bgra, I420};
use tandem_helper::encode::{ColourMode, PictureOptions};

#[path = "support/scenes.rs"]
mod scenes;
use scenes::{H, W, desktop, encoder, moving_window, scrolled};

/// Draws picture number `i` of a scene into the buffer.
type Scene<'a> = dyn Fn(u32, &mut Vec<u8>) + 'a;

/// Encodes 90 frames (3 s at 30 a second) of `scene` as the product does (frame skipping on) and
/// prints the bytes a frame and the pictures the rate control skipped.
fn report_bytes(name: &str, options: PictureOptions, scene: &Scene) {
    let mut enc = encoder(true);
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
        let mut enc = encoder(false);
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
