//! Mixing PCM frames: one mix for listeners and one mix-minus per speaker (everyone but
//! themselves), so a speaker never hears their own voice back.
//!
//! Integer arithmetic throughout, so results are exact and the same on every machine: gains are
//! fixed-point with 12 fractional bits, sums are 32-bit, and the result saturates to 16 bits.

/// Samples in one 20 ms frame at 48 kHz, mono.
pub const FRAME_SAMPLES: usize = 960;

/// Unity gain in the fixed-point format of [`Gain`].
const UNITY: i32 = 1 << 12;

/// A volume factor, 0.0 to 4.0 (+12 dB), in steps of 1/4096.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gain(i32);

impl Gain {
    pub const UNITY: Gain = Gain(UNITY);
    pub const MAX: f32 = 4.0;

    /// Clamped to 0.0..=4.0; not-a-number is silence.
    pub fn new(factor: f32) -> Self {
        let f = if factor.is_nan() {
            0.0
        } else {
            factor.clamp(0.0, Self::MAX)
        };
        Gain((f * UNITY as f32).round() as i32)
    }

    fn apply(self, s: i16) -> i32 {
        if self.0 == UNITY {
            i32::from(s)
        } else {
            (i32::from(s) * self.0) >> 12
        }
    }
}

impl Default for Gain {
    fn default() -> Self {
        Self::UNITY
    }
}

/// One speaker's decoded frame: 20 ms at 48 kHz, or at a phone codec's rate (every voice of
/// one mix at the same rate).
pub struct Voice<'a, K> {
    pub key: K,
    pub pcm: &'a [i16],
    pub gain: Gain,
}

fn saturate(v: i32) -> i16 {
    v.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

/// Mixes `voices` into `listener` (all of them) and, for each voice, a mix-minus (all the others)
/// written by `minus`. The work is one pass to sum plus one pass per voice, whatever the number
/// of listeners. `listener` is as long as every voice's frame, at most [`FRAME_SAMPLES`].
pub fn mix<K: Copy>(
    voices: &[Voice<'_, K>],
    listener: &mut [i16],
    mut minus: impl FnMut(K, &[i16]),
) {
    let n = listener.len().min(FRAME_SAMPLES);
    debug_assert!(voices.iter().all(|v| v.pcm.len() == n));
    let mut sum = [0i32; FRAME_SAMPLES];
    let sum = &mut sum[..n];
    for v in voices {
        for (acc, s) in sum.iter_mut().zip(v.pcm.iter()) {
            *acc += v.gain.apply(*s);
        }
    }
    for (out, acc) in listener.iter_mut().zip(sum.iter()) {
        *out = saturate(*acc);
    }
    let mut others = [0i16; FRAME_SAMPLES];
    let others = &mut others[..n];
    for v in voices {
        for ((out, acc), s) in others.iter_mut().zip(sum.iter()).zip(v.pcm.iter()) {
            *out = saturate(*acc - v.gain.apply(*s));
        }
        minus(v.key, others);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(f: impl Fn(usize) -> i16) -> [i16; FRAME_SAMPLES] {
        std::array::from_fn(f)
    }

    fn run(voices: &[Voice<'_, u8>]) -> ([i16; FRAME_SAMPLES], Vec<(u8, [i16; FRAME_SAMPLES])>) {
        let mut listener = [0; FRAME_SAMPLES];
        let mut minus = Vec::new();
        mix(voices, &mut listener, |k, pcm| {
            minus.push((k, pcm.try_into().expect("a whole frame")))
        });
        (listener, minus)
    }

    #[test]
    fn listeners_hear_the_exact_sum() {
        let a = frame(|i| i as i16);
        let b = frame(|i| -2 * i as i16);
        let (listener, _) = run(&[
            Voice {
                key: 1,
                pcm: &a,
                gain: Gain::UNITY,
            },
            Voice {
                key: 2,
                pcm: &b,
                gain: Gain::UNITY,
            },
        ]);
        assert_eq!(listener, frame(|i| -(i as i16)));
    }

    #[test]
    fn mix_minus_leaves_out_the_speakers_own_voice() {
        let a = frame(|_| 1000);
        let b = frame(|_| 30);
        let (_, minus) = run(&[
            Voice {
                key: 1,
                pcm: &a,
                gain: Gain::UNITY,
            },
            Voice {
                key: 2,
                pcm: &b,
                gain: Gain::UNITY,
            },
        ]);
        assert_eq!(
            minus[0],
            (1, frame(|_| 30)),
            "speaker 1 hears only speaker 2"
        );
        assert_eq!(
            minus[1],
            (2, frame(|_| 1000)),
            "speaker 2 hears only speaker 1"
        );
    }

    #[test]
    fn the_sum_saturates_instead_of_wrapping() {
        let loud = frame(|i| if i % 2 == 0 { 30_000 } else { -30_000 });
        let (listener, minus) = run(&[
            Voice {
                key: 1,
                pcm: &loud,
                gain: Gain::UNITY,
            },
            Voice {
                key: 2,
                pcm: &loud,
                gain: Gain::UNITY,
            },
        ]);
        assert_eq!(
            listener,
            frame(|i| if i % 2 == 0 { i16::MAX } else { i16::MIN })
        );
        // Each mix-minus is the other voice alone, not the clipped sum minus one.
        assert_eq!(minus[0].1, loud);
    }

    #[test]
    fn gains_scale_exactly_and_are_clamped() {
        let a = frame(|_| 4000);
        let (listener, _) = run(&[Voice {
            key: 1,
            pcm: &a,
            gain: Gain::new(0.5),
        }]);
        assert_eq!(listener, frame(|_| 2000));
        let (listener, _) = run(&[Voice {
            key: 1,
            pcm: &a,
            gain: Gain::new(100.0),
        }]);
        assert_eq!(listener, frame(|_| 16000), "clamped to 4x");
        let (listener, _) = run(&[Voice {
            key: 1,
            pcm: &a,
            gain: Gain::new(f32::NAN),
        }]);
        assert_eq!(listener, [0; FRAME_SAMPLES]);
    }

    #[test]
    fn one_speaker_gets_silence_back_and_none_gives_silence() {
        let a = frame(|i| (i * 7) as i16);
        let (listener, minus) = run(&[Voice {
            key: 9,
            pcm: &a,
            gain: Gain::UNITY,
        }]);
        assert_eq!(listener, a);
        assert_eq!(minus, vec![(9, [0; FRAME_SAMPLES])]);
        let (listener, minus) = run(&[]);
        assert_eq!(listener, [0; FRAME_SAMPLES]);
        assert!(minus.is_empty());
    }
}
