//! One mixer tick with two speakers: two Opus decodes, the mix, and three encodes (listener mix
//! and two mix-minus). Its cost bounds how many calls one core can mix.
//! `cargo bench --bench voice_mixer`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
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
    let mut mixer = VoiceMixer::new(MixerConfig::default()).unwrap();
    mixer.set_speakers([1u32, 2]).unwrap();
    let t0 = Instant::now();
    let mut frame = 0usize;
    c.bench_function("mixer tick, 2 speakers (2 decodes, 3 encodes)", |bench| {
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

criterion_group!(benches, bench);
criterion_main!(benches);
