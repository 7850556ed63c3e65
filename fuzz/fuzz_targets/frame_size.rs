//! Any bytes as a video frame's codec header (the size check an upload and an export make
//! before decoding), and any records through the limit check: nothing may panic, and a size
//! read is within the 14 bits VP8 has for it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_arf::{Codec, Event, LimitCheck, Limits, Media, Record, Track, frame_size};

fuzz_target!(|data: &[u8]| {
    for codec in [Codec::Vp8, Codec::H264, Codec::Opus] {
        if let Some((w, h)) = frame_size(codec, data) {
            assert!(w < 1 << 14 && h < 1 << 14, "{w}x{h}");
        }
    }
    // The same bytes as frames and event times through a small set of limits.
    let mut check = LimitCheck::new(Limits {
        max_duration_us: 10_000_000,
        max_gap_us: 1_000_000,
        max_width: 640,
        max_height: 360,
    });
    let track = Track::new(1, Codec::Vp8, 90_000, "screen-fuzz");
    let _ = check.record(&Record::Track { at_us: 0, track });
    for (i, chunk) in data.chunks(16).enumerate() {
        let at_us = u64::from(chunk[0]) * 100_000 + i as u64;
        let r = if chunk.len() % 2 == 0 {
            Record::Media(Media {
                track: 1,
                at_us,
                media_ts: 0,
                keyframe: true,
                payload: chunk.to_vec(),
            })
        } else {
            Record::Event(Event {
                at_us,
                kind: "x".into(),
                json: "{}".into(),
            })
        };
        if check.record(&r).is_err() {
            break;
        }
    }
});
