//! One mixer tick with two speakers, the cost that bounds how many calls one core can mix:
//! - the usual call, a CSR and a customer both speaking, nobody else: each hears the other's
//!   own packets, nothing decoded or encoded (issue 19; before, two decodes);
//! - with a listener: two decodes and the listener mix encoded;
//! - with a listener and a volume changed (V4): two decodes, three encodes, the worst case.
//!
//! `cargo bench --bench voice_mixer`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tandem_media::mix::Gain;
use tandem_media::tone::sine_frame;
use tandem_media::voice_mixer::{MixerConfig, TICK, VoiceMixer};

fn packets(freq: f64, n: usize) -> Vec<Vec<u8>> {
    let mut enc =
        opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).unwrap();
    (0..n)
        .map(|k| {
            let pcm = sine_frame(freq, 8000.0, k as u64);
            let mut out = vec![0; 1275];
            let len = enc.encode(&pcm, &mut out).unwrap();
            out.truncate(len);
            out
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let a = packets(440.0, 500);
    let b = packets(1000.0, 500);
    let cases = [
        (
            "mixer tick, 2 speakers, no listener (0 decodes, 0 encodes)",
            false,
            false,
        ),
        (
            "mixer tick, 2 speakers, a listener (2 decodes, 1 encode)",
            true,
            false,
        ),
        (
            "mixer tick, 2 speakers, a listener, a volume set (2 decodes, 3 encodes)",
            true,
            true,
        ),
    ];
    for (name, listening, gain) in cases {
        let mut mixer = VoiceMixer::new(MixerConfig::default()).unwrap();
        mixer.set_speakers([1u32, 2]).unwrap();
        mixer.set_listening(listening);
        if gain {
            mixer.set_gain(2, Gain::new(0.8));
        }
        let t0 = Instant::now();
        let mut frame = 0usize;
        c.bench_function(name, |bench| {
            bench.iter(|| {
                let now = t0 + TICK * frame as u32 + Duration::from_millis(100);
                let i = frame % a.len();
                mixer.push(now, 1, frame as u16, a[i].clone());
                mixer.push(now, 2, frame as u16, b[i].clone());
                frame += 1;
                black_box(mixer.handle_timeout(now).unwrap())
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
