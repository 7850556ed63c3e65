//! Pure tones: making them and measuring them. The audio set-up check (SPEC V4) and the tests
//! use them to tell who is heard: a tone at a frequency nobody else uses either is in a signal or
//! is not, by tens of decibels.

use std::f64::consts::PI;

use crate::mix::FRAME_SAMPLES;

const RATE: f64 = 48_000.0;

/// Frame number `n` (20 ms, 48 kHz) of a continuous sine of `freq` Hz and peak `amplitude`.
pub fn sine_frame(freq: f64, amplitude: f64, n: u64) -> [i16; FRAME_SAMPLES] {
    std::array::from_fn(|i| {
        sample(
            RATE,
            freq,
            amplitude,
            n as f64 * FRAME_SAMPLES as f64 + i as f64,
        )
    })
}

/// The same at `rate` samples a second (a phone codec's own): `rate / 50` samples.
pub fn sine_frame_at(rate: usize, freq: f64, amplitude: f64, n: usize) -> Vec<i16> {
    let len = rate / 50;
    (0..len)
        .map(|i| sample(rate as f64, freq, amplitude, (n * len + i) as f64))
        .collect()
}

/// Sample number `i` of the sine.
fn sample(rate: f64, freq: f64, amplitude: f64, i: f64) -> i16 {
    let t = i / rate;
    (amplitude * (2.0 * PI * freq * t).sin()) as i16
}

/// The energy of a signal (or of the difference of two): the sum of its squares.
#[cfg(test)]
pub(crate) fn energy(samples: impl Iterator<Item = f64>) -> f64 {
    samples.map(|v| v * v).sum()
}

/// Power of `pcm` at one frequency (Goertzel), per sample. An 8000-peak tone of a full second
/// measures about 1.6e12 at its frequency; other frequencies and codec noise stay below 1e7.
pub fn power(pcm: &[i16], freq: f64) -> f64 {
    if pcm.is_empty() {
        return 0.0;
    }
    let w = 2.0 * PI * freq / RATE;
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in pcm {
        let s = f64::from(x) + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2) / pcm.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tone_is_found_at_its_frequency_only() {
        let pcm: Vec<i16> = (0..50).flat_map(|n| sine_frame(440.0, 8000.0, n)).collect();
        assert!(power(&pcm, 440.0) > 1e11);
        assert!(power(&pcm, 1000.0) < 1e7);
        assert_eq!(power(&[], 440.0), 0.0);
    }

    #[test]
    fn frames_continue_the_same_sine() {
        let a = sine_frame(1000.0, 8000.0, 0);
        let b = sine_frame(1000.0, 8000.0, 1);
        let joined: Vec<i16> = a.iter().chain(b.iter()).copied().collect();
        let whole: Vec<i16> = (0..2 * FRAME_SAMPLES)
            .map(|i| (8000.0 * (2.0 * PI * 1000.0 * i as f64 / RATE).sin()) as i16)
            .collect();
        // Equal but for float rounding (at most one step): no jump at the frame boundary.
        assert!(joined.iter().zip(&whole).all(|(a, b)| (a - b).abs() <= 1));
    }
}
