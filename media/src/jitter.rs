//! A jitter buffer for one audio source: packets arrive out of order, late, twice or not at all;
//! the mixer takes exactly one frame every 20 ms.
//!
//! Sans-IO: `push` and `pop` take the time; nothing here sleeps or reads a clock.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct JitterConfig {
    /// How long the first packet waits before playout starts; absorbs that much jitter.
    /// 60 ms: three frames, enough for a typical home uplink, short enough for conversation.
    pub target_delay: Duration,
    /// Most packets held; beyond this the oldest are dropped (a source sending too fast, or a
    /// stalled mixer, must not grow memory).
    pub max_packets: usize,
    /// Consecutive frames with nothing to play before the buffer stops and re-buffers, so a
    /// source that paused (silence suppression, muted) restarts with the target delay.
    pub max_missing: u32,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self {
            target_delay: Duration::from_millis(60),
            max_packets: 50,
            max_missing: 10,
        }
    }
}

/// What to play for one frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Playout<T = Vec<u8>> {
    /// The packet for this frame.
    Packet(T),
    /// It never came (or came too late): conceal the loss.
    Lost,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JitterStats {
    pub received: u64,
    pub played: u64,
    pub concealed: u64,
    pub late: u64,
    pub duplicate: u64,
    pub overflow: u64,
}

/// Holds payloads of any kind `T`: Opus packets, or 20 ms of PCM a phone's codec gave.
#[derive(Clone, Debug)]
pub struct JitterBuffer<T = Vec<u8>> {
    config: JitterConfig,
    /// Extended (never wrapping) sequence number -> (arrival, payload).
    packets: BTreeMap<u64, (Instant, T)>,
    /// Highest extended sequence number seen, to extend the next 16-bit one.
    highest: Option<u64>,
    /// The sequence number to play next, once playing.
    next: Option<u64>,
    missing: u32,
    stats: JitterStats,
}

impl<T> JitterBuffer<T> {
    pub fn new(config: JitterConfig) -> Self {
        Self {
            config,
            packets: BTreeMap::new(),
            highest: None,
            next: None,
            missing: 0,
            stats: JitterStats::default(),
        }
    }

    pub fn stats(&self) -> &JitterStats {
        &self.stats
    }

    pub fn len(&self) -> usize {
        self.packets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// The 64-bit sequence number nearest to the highest seen (RFC 3550 A.1 style).
    fn extend(&self, seq: u16) -> u64 {
        let Some(highest) = self.highest else {
            // Start high enough that a few reordered packets before the first stay positive.
            return (1 << 16) + u64::from(seq);
        };
        let cycle = highest & !0xffff;
        let candidates = [
            cycle.wrapping_sub(1 << 16) | u64::from(seq),
            cycle | u64::from(seq),
            (cycle + (1 << 16)) | u64::from(seq),
        ];
        *candidates
            .iter()
            .min_by_key(|c| c.abs_diff(highest))
            .expect("three candidates")
    }

    pub fn push(&mut self, now: Instant, seq: u16, payload: T) {
        let ext = self.extend(seq);
        self.stats.received += 1;
        if self.next.is_some_and(|n| ext < n) {
            self.stats.late += 1;
            return;
        }
        if self.packets.contains_key(&ext) {
            self.stats.duplicate += 1;
            return;
        }
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        self.packets.insert(ext, (now, payload));
        while self.packets.len() > self.config.max_packets {
            let (&oldest, _) = self.packets.iter().next().expect("non-empty");
            self.packets.remove(&oldest);
            self.stats.overflow += 1;
            if let Some(n) = &mut self.next {
                *n = (*n).max(oldest + 1);
            }
        }
    }

    /// The frame to play at `now`; `None` while buffering (nothing to play yet, not a loss).
    pub fn pop(&mut self, now: Instant) -> Option<Playout<T>> {
        let next = match self.next {
            Some(n) => n,
            None => {
                let (&first, (arrival, _)) = self.packets.iter().next()?;
                if now < *arrival + self.config.target_delay {
                    return None;
                }
                self.next = Some(first);
                first
            }
        };
        self.next = Some(next + 1);
        if let Some((_, payload)) = self.packets.remove(&next) {
            self.missing = 0;
            self.stats.played += 1;
            return Some(Playout::Packet(payload));
        }
        self.missing += 1;
        if self.packets.is_empty() && self.missing >= self.config.max_missing {
            // The source paused; start over with the target delay when it resumes.
            self.next = None;
            self.missing = 0;
            return None;
        }
        self.stats.concealed += 1;
        Some(Playout::Lost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Duration = Duration::from_millis(20);

    fn buffer() -> (JitterBuffer, Instant) {
        (JitterBuffer::new(JitterConfig::default()), Instant::now())
    }

    fn p(n: u8) -> Vec<u8> {
        vec![n]
    }

    #[test]
    fn waits_for_the_target_delay_then_plays_in_order() {
        let (mut jb, t0) = buffer();
        for i in 0..5u16 {
            jb.push(t0 + FRAME * u32::from(i), i, p(i as u8));
        }
        assert_eq!(
            jb.pop(t0 + Duration::from_millis(59)),
            None,
            "still buffering"
        );
        let t = t0 + Duration::from_millis(60);
        for i in 0..5u8 {
            assert_eq!(
                jb.pop(t + FRAME * u32::from(i)),
                Some(Playout::Packet(p(i)))
            );
        }
        assert_eq!(jb.stats().played, 5);
    }

    #[test]
    fn reordered_packets_play_in_sequence_order() {
        let (mut jb, t0) = buffer();
        for (k, seq) in [0u16, 2, 1, 4, 3].into_iter().enumerate() {
            jb.push(t0 + Duration::from_millis(k as u64), seq, p(seq as u8));
        }
        let t = t0 + Duration::from_millis(100);
        let out: Vec<_> = (0..5).map(|_| jb.pop(t).unwrap()).collect();
        assert_eq!(
            out,
            (0..5).map(|i| Playout::Packet(p(i))).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_missing_packet_is_concealed_and_a_late_one_dropped() {
        let (mut jb, t0) = buffer();
        jb.push(t0, 10, p(10));
        jb.push(t0, 12, p(12));
        let t = t0 + Duration::from_millis(60);
        assert_eq!(jb.pop(t), Some(Playout::Packet(p(10))));
        assert_eq!(jb.pop(t + FRAME), Some(Playout::Lost));
        jb.push(t + FRAME, 11, p(11)); // Too late: its slot has been played.
        assert_eq!(jb.pop(t + FRAME * 2), Some(Playout::Packet(p(12))));
        assert_eq!(jb.stats().late, 1);
        assert_eq!(jb.stats().concealed, 1);
    }

    #[test]
    fn duplicates_are_dropped() {
        let (mut jb, t0) = buffer();
        jb.push(t0, 1, p(1));
        jb.push(t0, 1, p(99));
        assert_eq!(jb.len(), 1);
        assert_eq!(jb.stats().duplicate, 1);
        assert_eq!(
            jb.pop(t0 + Duration::from_secs(1)),
            Some(Playout::Packet(p(1)))
        );
    }

    #[test]
    fn sequence_numbers_wrap_around() {
        let (mut jb, t0) = buffer();
        for seq in [65534u16, 65535, 0, 1] {
            jb.push(t0, seq, p(seq as u8));
        }
        let t = t0 + Duration::from_millis(60);
        let out: Vec<_> = (0..4).map(|_| jb.pop(t).unwrap()).collect();
        assert_eq!(
            out,
            [254u8, 255, 0, 1].map(|b| Playout::Packet(p(b))).to_vec()
        );
    }

    #[test]
    fn memory_is_bounded_and_playout_skips_what_was_dropped() {
        let mut jb = JitterBuffer::new(JitterConfig {
            max_packets: 3,
            ..JitterConfig::default()
        });
        let t0 = Instant::now();
        for seq in 0..6u16 {
            jb.push(t0, seq, p(seq as u8));
        }
        assert_eq!(jb.len(), 3);
        assert_eq!(jb.stats().overflow, 3);
        assert_eq!(
            jb.pop(t0 + Duration::from_secs(1)),
            Some(Playout::Packet(p(3)))
        );
    }

    #[test]
    fn a_paused_source_rebuffers_when_it_resumes() {
        let (mut jb, t0) = buffer();
        jb.push(t0, 0, p(0));
        let mut t = t0 + Duration::from_millis(60);
        assert_eq!(jb.pop(t), Some(Playout::Packet(p(0))));
        let mut lost = 0;
        loop {
            t += FRAME;
            match jb.pop(t) {
                Some(Playout::Lost) => lost += 1,
                None => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(lost, 9, "concealed up to max_missing, then stopped");
        // It resumes 2 s later with new numbers: buffered again for the target delay.
        jb.push(t, 100, p(100));
        assert_eq!(jb.pop(t + Duration::from_millis(20)), None);
        assert_eq!(
            jb.pop(t + Duration::from_millis(60)),
            Some(Playout::Packet(p(100)))
        );
    }
}
