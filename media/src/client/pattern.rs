//! Media with a known pattern, to measure audio/video sync end to end: encoded frames and beeps
//! timed from one instant.

use std::time::{Duration, Instant};

use str0m::Rtc;
use str0m::format::Codec;
use str0m::media::{Frequency, MediaTime, Mid};

use crate::mix::FRAME_SAMPLES;
use crate::policy::TrackPurpose;

/// Media with a known pattern, to measure audio/video sync end to end (SPEC R1): encoded frames
/// (made by the caller, e.g. white flashes on black) sent on a video track in place of the
/// synthetic ones, and beeps on the audio in place of the tone, at the instants the caller
/// chose. Both are timed from one instant, the pattern's origin (the first time the client
/// sends after being given it), so the sender itself is exactly in sync. It repeats every
/// `period`.
#[derive(Clone, Debug)]
pub struct Pattern {
    /// The frames go on the first video track of this purpose.
    pub purpose: TrackPurpose,
    /// One period's frames in the track's codec (VP8), in order, each with its time from the
    /// period's start. Keyframe requests are answered by the keyframes among them, so they
    /// should come regularly.
    pub frames: Vec<PatternFrame>,
    pub period: Duration,
    /// When each beep starts, from the period's start; the audio is silent in between.
    pub beeps: Vec<Duration>,
    pub beep_length: Duration,
    /// The beeps' tone (Hz) and peak amplitude.
    pub beep_freq: f64,
    pub beep_amplitude: f64,
}

impl Pattern {
    /// `frames` on the first track of `purpose`, repeated every `period`, with a beep at each
    /// of `beeps`: 100 ms of 1 kHz, peak 12 000 (of 32 767).
    pub fn new(
        purpose: TrackPurpose,
        frames: Vec<PatternFrame>,
        period: Duration,
        beeps: Vec<Duration>,
    ) -> Self {
        Pattern {
            purpose,
            frames,
            period,
            beeps,
            beep_length: Duration::from_millis(100),
            beep_freq: 1000.0,
            beep_amplitude: 12_000.0,
        }
    }
}

#[derive(Clone, Debug)]
pub struct PatternFrame {
    pub at: Duration,
    pub keyframe: bool,
    pub data: Vec<u8>,
}

pub(super) struct PatternOut {
    pub(super) pattern: Pattern,
    pub(super) origin: Option<Instant>,
    /// The next frame to send: its index in `frames` and the period it is in.
    frame: usize,
    period: u64,
    encoder: opus::Encoder,
}

impl PatternOut {
    pub(super) fn new(pattern: Pattern) -> Result<Self, opus::Error> {
        let mut encoder =
            opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip)?;
        encoder.set_bitrate(opus::Bitrate::Bits(32_000))?;
        Ok(PatternOut {
            pattern,
            origin: None,
            frame: 0,
            period: 0,
            encoder,
        })
    }

    /// When the next frame is due, and its RTP time (90 kHz from the origin).
    fn next_frame(&self, origin: Instant) -> Option<(Instant, u64)> {
        let f = self.pattern.frames.get(self.frame)?;
        let t = self.pattern.period * u32::try_from(self.period).ok()? + f.at;
        Some((origin + t, (t.as_nanos() * 90_000 / 1_000_000_000) as u64))
    }

    fn advance(&mut self) {
        self.frame += 1;
        if self.frame >= self.pattern.frames.len() {
            self.frame = 0;
            self.period += 1;
        }
    }

    /// The 20 ms packet of audio that starts at `start`: silence, or a beep where the pattern
    /// has one (to the sample).
    pub(super) fn audio(&mut self, start: Instant) -> Result<Vec<u8>, opus::Error> {
        let origin = self.origin.unwrap_or(start);
        let samples = |d: Duration| (d.as_nanos() * 48_000 / 1_000_000_000) as u64;
        let first = samples(start.saturating_duration_since(origin));
        let period = samples(self.pattern.period).max(1);
        let length = samples(self.pattern.beep_length);
        let beeps: Vec<u64> = self.pattern.beeps.iter().map(|b| samples(*b)).collect();
        let p = &self.pattern;
        let pcm: Vec<i16> = (first..first + FRAME_SAMPLES as u64)
            .map(|n| {
                let phase = n % period;
                if beeps.iter().any(|b| (*b..b + length).contains(&phase)) {
                    let t = n as f64 / 48_000.0;
                    (p.beep_amplitude * (2.0 * std::f64::consts::PI * p.beep_freq * t).sin()) as i16
                } else {
                    0
                }
            })
            .collect();
        let mut out = vec![0; 1275];
        let len = self.encoder.encode(&pcm, &mut out)?;
        out.truncate(len);
        Ok(out)
    }
}

/// Sends the pattern's frame on `mid` if it is due; returns whether a keyframe went out and when
/// the next frame is due.
pub(super) fn send_pattern_frame(
    rtc: &mut Rtc,
    now: Instant,
    mid: Mid,
    p: &mut PatternOut,
) -> (bool, Option<Instant>) {
    let origin = *p.origin.get_or_insert(now);
    let mut keyframe_sent = false;
    if let Some((due, rtp)) = p.next_frame(origin)
        && now >= due
    {
        let f = &p.pattern.frames[p.frame];
        if let Some(w) = rtc.writer(mid)
            && let Some(pt) = super::pt_of(&w, Codec::Vp8)
            && w.write(
                pt,
                now,
                MediaTime::new(rtp, Frequency::NINETY_KHZ),
                f.data.clone(),
            )
            .is_ok()
        {
            keyframe_sent = f.keyframe;
        }
        p.advance();
    }
    (keyframe_sent, p.next_frame(origin).map(|(due, _)| due))
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUDIO_FRAME: Duration = Duration::from_millis(20);

    #[test]
    fn a_pattern_times_its_frames_and_beeps_from_one_origin() {
        let ms = Duration::from_millis;
        let frames = (0..5u8)
            .map(|i| PatternFrame {
                at: ms(200 * u64::from(i)),
                keyframe: i == 0,
                data: vec![i],
            })
            .collect();
        let second = Duration::from_secs(1);
        let pattern = Pattern::new(TrackPurpose::Screen, frames, second, vec![ms(400)]);
        let mut p = PatternOut::new(pattern).unwrap();
        let origin = Instant::now();
        p.origin = Some(origin);

        // Frames at their times, period after period, with RTP time from the origin.
        let mut due = Vec::new();
        for _ in 0..7 {
            due.push(p.next_frame(origin).unwrap());
            p.advance();
        }
        assert_eq!(due[2], (origin + ms(400), 36_000));
        assert_eq!(due[5], (origin + ms(1000), 90_000));
        assert_eq!(due[6], (origin + ms(1200), 108_000));

        // Beeps at 0.4 s and 1.4 s, 100 ms long, silence otherwise: the decoded audio's loud
        // stretches start there, but for the codec's few milliseconds of delay.
        let mut dec = opus::Decoder::new(48_000, opus::Channels::Mono).unwrap();
        let mut pcm = Vec::new();
        for n in 0..100 {
            let packet = p.audio(origin + AUDIO_FRAME * n).unwrap();
            let mut out = [0i16; FRAME_SAMPLES];
            let got = dec.decode(&packet, &mut out, false).unwrap();
            pcm.extend_from_slice(&out[..got]);
        }
        let loud: Vec<usize> = pcm
            .iter()
            .enumerate()
            .filter(|(_, s)| s.unsigned_abs() > 3000)
            .map(|(i, _)| i)
            .collect();
        let starts: Vec<usize> = loud
            .iter()
            .enumerate()
            .filter(|(k, i)| *k == 0 || **i - loud[k - 1] > 4800)
            .map(|(_, i)| *i)
            .collect();
        assert_eq!(starts.len(), 2, "{starts:?}");
        for (start, expected) in starts.iter().zip([19_200, 67_200]) {
            assert!(
                (expected..expected + 480).contains(start),
                "a beep starts at sample {start}, not {expected}"
            );
        }
        let ends = starts.iter().map(|s| loud.iter().rfind(|i| **i < s + 9600));
        for (start, end) in starts.iter().zip(ends) {
            let length = end.unwrap() - start;
            assert!(
                (4300..=4800).contains(&length),
                "a beep {length} samples long"
            );
        }
    }
}
