//! How long each video frame written to str0m took to leave as datagrams: the time str0m's
//! pacer held it. A diagnostic for the helper's glass-to-glass figures (docs/performance.md),
//! approximate by design: a frame counts as gone once as many bytes as it had have been handed
//! out since it was written (RTP headers make that a packet early; str0m sends padding only when
//! no media is queued, so padding hardly counts).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A frame that left: its size and how long after it was written its last byte went out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameLeft {
    pub bytes: usize,
    pub held: Duration,
}

/// Frames written and not yet gone, by the total of bytes out at which each is gone.
#[derive(Debug, Default)]
pub struct SendTiming {
    /// (written at, bytes, total out when gone).
    waiting: VecDeque<(Instant, usize, u64)>,
    out: u64,
    left: VecDeque<FrameLeft>,
}

/// At most this many frames are remembered (a diagnostic must not grow without bound).
const KEEP: usize = 64;

impl SendTiming {
    /// A frame of `bytes` was written at `now`.
    pub fn written(&mut self, now: Instant, bytes: usize) {
        let after = self.waiting.back().map_or(self.out, |w| w.2.max(self.out));
        if self.waiting.len() == KEEP {
            self.waiting.pop_front();
        }
        self.waiting.push_back((now, bytes, after + bytes as u64));
    }

    /// A datagram of `bytes` went out at `now`.
    pub fn transmitted(&mut self, now: Instant, bytes: usize) {
        self.out += bytes as u64;
        while let Some(&(at, size, gone)) = self.waiting.front()
            && self.out >= gone
        {
            self.waiting.pop_front();
            if self.left.len() == KEEP {
                self.left.pop_front();
            }
            self.left.push_back(FrameLeft {
                bytes: size,
                held: now.saturating_duration_since(at),
            });
        }
    }

    pub fn pop(&mut self) -> Option<FrameLeft> {
        self.left.pop_front()
    }
}

/// How long str0m's pacer takes to send `bytes` at a bandwidth `estimate_bps`: it paces video
/// at 1.1 times the estimate (str0m 0.24 `pacer/control.rs`, `PACING_FACTOR`).
pub fn pacing_delay(bytes: usize, estimate_bps: u64) -> Duration {
    const PACING_FACTOR: f64 = 1.1;
    Duration::from_secs_f64(bytes as f64 * 8.0 / (estimate_bps.max(1) as f64 * PACING_FACTOR))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_gone_when_its_bytes_are_out() {
        let t0 = Instant::now();
        let mut t = SendTiming::default();
        t.written(t0, 3000);
        t.written(t0 + Duration::from_millis(5), 1000);
        t.transmitted(t0 + Duration::from_millis(10), 1200);
        assert_eq!(t.pop(), None);
        t.transmitted(t0 + Duration::from_millis(20), 1800);
        assert_eq!(
            t.pop(),
            Some(FrameLeft {
                bytes: 3000,
                held: Duration::from_millis(20)
            })
        );
        t.transmitted(t0 + Duration::from_millis(30), 1000);
        assert_eq!(t.pop().map(|f| f.held), Some(Duration::from_millis(25)));
    }

    #[test]
    fn bytes_sent_before_a_frame_do_not_count_for_it() {
        let t0 = Instant::now();
        let mut t = SendTiming::default();
        t.transmitted(t0, 5000);
        t.written(t0, 1000);
        t.transmitted(t0 + Duration::from_millis(1), 500);
        assert_eq!(t.pop(), None);
    }
}
