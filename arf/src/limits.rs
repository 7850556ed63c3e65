//! Limits on what a recording may ask of whoever plays or converts it, checked record by
//! record before anything is decoded: its length (an exporter renders every second of it, so a
//! few hundred bytes with one event stamped days later would cost days of work), the longest
//! stretch with nothing recorded, and the picture size its video frames declare.

use std::collections::HashMap;

use crate::frame_size::frame_size;
use crate::record::{Codec, Record};

/// What a recording may hold. `Limits::default()` allows anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Latest arrival time of any record, in microseconds since the recording started.
    pub max_duration_us: u64,
    /// Longest time between two records (and from the start to the first), in microseconds.
    pub max_gap_us: u64,
    /// Largest picture a video frame may declare.
    pub max_width: u32,
    pub max_height: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_duration_us: u64::MAX,
            max_gap_us: u64::MAX,
            max_width: u32::MAX,
            max_height: u32::MAX,
        }
    }
}

/// The first limit a recording breaks, with a stable short code per variant.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    #[error("a record at {at_s} s is past the longest recording allowed ({max_s} s)", at_s = .at_us / 1_000_000, max_s = .max_us / 1_000_000)]
    TooLong { at_us: u64, max_us: u64 },
    #[error("nothing is recorded from {from_s} s to {to_s} s, longer than the {max_s} s allowed", from_s = .from_us / 1_000_000, to_s = .to_us / 1_000_000, max_s = .max_us / 1_000_000)]
    Gap {
        from_us: u64,
        to_us: u64,
        max_us: u64,
    },
    #[error(
        "a frame of track {track} at {at_us} us is {width}x{height}, larger than the {max_width}x{max_height} allowed"
    )]
    FrameTooLarge {
        track: u16,
        at_us: u64,
        width: u32,
        height: u32,
        max_width: u32,
        max_height: u32,
    },
}

impl LimitError {
    /// A short, stable identifier of the limit broken (never changes between releases).
    pub fn code(&self) -> &'static str {
        match self {
            LimitError::TooLong { .. } => "recording_too_long",
            LimitError::Gap { .. } => "recording_gap",
            LimitError::FrameTooLarge { .. } => "frame_too_large",
        }
    }
}

impl Limits {
    /// Whether a frame of `codec` is within the picture size allowed; frames whose header
    /// declares no size (interframes, other codecs) are.
    pub fn check_frame(
        &self,
        codec: Codec,
        track: u16,
        at_us: u64,
        payload: &[u8],
    ) -> Result<(), LimitError> {
        match frame_size(codec, payload) {
            Some((width, height)) => self.check_size(track, at_us, width, height),
            None => Ok(()),
        }
    }

    /// Whether a picture of `width` x `height` is within the size allowed.
    pub fn check_size(
        &self,
        track: u16,
        at_us: u64,
        width: u32,
        height: u32,
    ) -> Result<(), LimitError> {
        if width > self.max_width || height > self.max_height {
            return Err(LimitError::FrameTooLarge {
                track,
                at_us,
                width,
                height,
                max_width: self.max_width,
                max_height: self.max_height,
            });
        }
        Ok(())
    }
}

/// Checks a recording's records, in arrival order, against `Limits`.
#[derive(Debug)]
pub struct LimitCheck {
    limits: Limits,
    last_us: u64,
    codecs: HashMap<u16, Codec>,
}

impl LimitCheck {
    pub fn new(limits: Limits) -> Self {
        LimitCheck {
            limits,
            last_us: 0,
            codecs: HashMap::new(),
        }
    }

    /// The next record: the first limit it breaks, if any.
    pub fn record(&mut self, r: &Record) -> Result<(), LimitError> {
        let at_us = r.at_us();
        let max = &self.limits;
        if at_us > max.max_duration_us {
            return Err(LimitError::TooLong {
                at_us,
                max_us: max.max_duration_us,
            });
        }
        if at_us.saturating_sub(self.last_us) > max.max_gap_us {
            return Err(LimitError::Gap {
                from_us: self.last_us,
                to_us: at_us,
                max_us: max.max_gap_us,
            });
        }
        self.last_us = self.last_us.max(at_us);
        match r {
            Record::Track { track, .. } => {
                self.codecs.insert(track.id, track.codec);
            }
            Record::Media(m) => {
                if let Some(&codec) = self.codecs.get(&m.track) {
                    max.check_frame(codec, m.track, m.at_us, &m.payload)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Event, Media, Track};

    fn vp8_keyframe(w: u16, h: u16) -> Vec<u8> {
        let mut f = vec![0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a];
        f.extend_from_slice(&w.to_le_bytes());
        f.extend_from_slice(&h.to_le_bytes());
        f
    }

    fn event(at_us: u64) -> Record {
        Record::Event(Event {
            at_us,
            kind: "chat".into(),
            json: "{}".into(),
        })
    }

    fn media(at_us: u64, payload: Vec<u8>) -> Record {
        Record::Media(Media {
            track: 1,
            at_us,
            media_ts: 0,
            keyframe: true,
            payload,
        })
    }

    const LIMITS: Limits = Limits {
        max_duration_us: 10_000_000,
        max_gap_us: 4_000_000,
        max_width: 1920,
        max_height: 1080,
    };

    #[test]
    fn a_recording_within_the_limits_passes() {
        let mut c = LimitCheck::new(LIMITS);
        let track = Record::Track {
            at_us: 0,
            track: Track::new(1, Codec::Vp8, 90_000, "screen-x"),
        };
        for r in [
            track,
            media(0, vp8_keyframe(1920, 1080)),
            event(4_000_000),
            media(8_000_000, vec![1; 100]),
            event(10_000_000),
        ] {
            assert_eq!(c.record(&r), Ok(()), "{r:?}");
        }
        let mut any = LimitCheck::new(Limits::default());
        assert_eq!(any.record(&event(u64::MAX)), Ok(()));
    }

    #[test]
    fn a_record_past_the_length_a_long_gap_or_a_large_frame_is_refused() {
        let mut c = LimitCheck::new(Limits {
            max_gap_us: u64::MAX,
            ..LIMITS
        });
        let days = 3 * 86_400 * 1_000_000;
        assert_eq!(
            c.record(&event(days)).map_err(|e| e.code()),
            Err("recording_too_long")
        );
        let mut c = LimitCheck::new(LIMITS);
        assert_eq!(c.record(&event(3_000_000)), Ok(()));
        let e = c.record(&event(7_000_001)).unwrap_err();
        assert_eq!(
            e,
            LimitError::Gap {
                from_us: 3_000_000,
                to_us: 7_000_001,
                max_us: 4_000_000
            }
        );
        assert_eq!(e.code(), "recording_gap");
        // From the start to the first record counts as a gap too.
        let mut c = LimitCheck::new(LIMITS);
        assert!(c.record(&event(5_000_000)).is_err());

        let mut c = LimitCheck::new(LIMITS);
        let track = Track::new(1, Codec::Vp8, 90_000, "screen-x");
        c.record(&Record::Track { at_us: 0, track }).unwrap();
        let e = c.record(&media(0, vp8_keyframe(16383, 16383))).unwrap_err();
        assert_eq!(e.code(), "frame_too_large");
        assert!(e.to_string().contains("16383x16383"), "{e}");
        assert!(c.record(&media(0, vp8_keyframe(1921, 1080))).is_err());
        assert!(c.record(&media(0, vp8_keyframe(1920, 1081))).is_err());
        // A frame of an undeclared track is the reader's business, not a size to check.
        let mut c = LimitCheck::new(LIMITS);
        assert_eq!(c.record(&media(0, vp8_keyframe(16383, 16383))), Ok(()));
    }
}
