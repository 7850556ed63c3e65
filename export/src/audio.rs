//! The voice: Opus packets placed on the recording's clock, and a timeline of PCM samples with
//! silence wherever nothing was recorded.

use std::collections::VecDeque;

/// Output sample rate: Opus's own, so the decoder never resamples.
pub(crate) const RATE: u64 = 48_000;

/// A packet this much later than its media time says is taken as a new start (the sender
/// paused, or its clock drifted) rather than network delay.
const LATE_US: i128 = 200_000;
/// A packet this much earlier than its media time says means the anchor itself came late: the
/// mapping moves earlier, to the least delayed packet seen.
const EARLY_US: i128 = 20_000;

/// Maps a track's media time to the recording's clock. Packets are placed by their media time
/// (so consecutive packets join without gaps or overlaps whatever the network jitter), anchored
/// on an arrival time and re-anchored when the two drift apart.
#[derive(Debug)]
pub(crate) struct TimeMap {
    clock: u32,
    anchor: Option<(u64, u64)>,
}

impl TimeMap {
    pub(crate) fn new(clock: u32) -> Self {
        TimeMap {
            clock: clock.max(1),
            anchor: None,
        }
    }

    /// The recording time, in microseconds, of a packet with media time `ts` that arrived at
    /// `at_us`. Never later than `at_us + EARLY_US` nor earlier than `at_us - LATE_US`.
    pub(crate) fn map(&mut self, at_us: u64, ts: u64) -> u64 {
        if let Some((anchor_at, anchor_ts)) = self.anchor {
            let dt = (i128::from(ts) - i128::from(anchor_ts)) * 1_000_000 / i128::from(self.clock);
            let mapped = i128::from(anchor_at) + dt;
            let late = i128::from(at_us) - mapped;
            if (-EARLY_US..=LATE_US).contains(&late) && mapped >= 0 {
                return u64::try_from(mapped).unwrap_or(at_us);
            }
        }
        self.anchor = Some((at_us, ts));
        at_us
    }
}

/// The first sample at or after a time in microseconds.
pub(crate) fn sample_at(us: u64) -> u64 {
    us.saturating_mul(RATE).div_ceil(1_000_000)
}

/// Mono PCM from `emitted` on, not yet handed to the encoder. Voice tracks are mixed into it
/// (a recording may hold more than one voice mix if the mixer restarted); whatever is never
/// written stays silent.
#[derive(Debug, Default)]
pub(crate) struct Timeline {
    emitted: u64,
    pending: VecDeque<i16>,
}

/// Refuses to place audio further ahead than this: media times are bounded by arrival times,
/// so only a bug could ask for more, and it must not become an allocation.
const MAX_AHEAD: u64 = 30 * RATE;

impl Timeline {
    /// Mixes `pcm` in from sample `start`; whatever falls before the samples already emitted is
    /// dropped (it came too late).
    pub(crate) fn add(&mut self, start: u64, pcm: &[i16]) {
        let skip = usize::try_from(self.emitted.saturating_sub(start)).unwrap_or(usize::MAX);
        let Some(pcm) = pcm.get(skip..).filter(|p| !p.is_empty()) else {
            return;
        };
        let from = start.max(self.emitted) - self.emitted;
        if from > MAX_AHEAD {
            return;
        }
        let from = from as usize;
        let end = from + pcm.len();
        if self.pending.len() < end {
            self.pending.resize(end, 0);
        }
        for (d, s) in self.pending.range_mut(from..end).zip(pcm) {
            *d = d.saturating_add(*s);
        }
    }

    /// Samples from the last call up to `until` (exclusive), silence where nothing was added.
    pub(crate) fn take(&mut self, until: u64) -> Vec<i16> {
        let n = usize::try_from(until.saturating_sub(self.emitted)).unwrap_or(0);
        let mut out: Vec<i16> = self.pending.drain(..n.min(self.pending.len())).collect();
        out.resize(n, 0);
        self.emitted += n as u64;
        out
    }

    /// The first sample not yet emitted.
    pub(crate) fn emitted(&self) -> u64 {
        self.emitted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_join_on_media_time_despite_jitter() {
        let mut m = TimeMap::new(48_000);
        assert_eq!(m.map(1_000_000, 480_000), 1_000_000);
        // 20 ms later in media time, arrived 5 ms late: placed on media time.
        assert_eq!(m.map(1_025_000, 480_960), 1_020_000);
        // Arrived 30 ms before the mapping says: the anchor was late, re-anchor.
        assert_eq!(m.map(1_010_000, 481_920), 1_010_000);
        // A pause of the sender: media time jumps less than arrival time.
        assert_eq!(m.map(5_000_000, 482_880), 5_000_000);
    }

    #[test]
    fn timeline_fills_silence_and_drops_late_audio() {
        let mut t = Timeline::default();
        t.add(10, &[1, 2, 3]);
        assert_eq!(t.take(5), vec![0; 5]);
        t.add(3, &[9, 9, 9, 9]); // all before 5 but the last two at 5 and 6
        assert_eq!(t.take(14), vec![9, 9, 0, 0, 0, 1, 2, 3, 0]);
        assert_eq!(t.emitted(), 14);
        t.add(14, &[i16::MAX]);
        t.add(14, &[5]);
        assert_eq!(t.take(15), vec![i16::MAX]);
    }
}
