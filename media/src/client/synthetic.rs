//! Synthetic video frames, as the page-like client sends when nobody gives it real ones: shaped
//! enough for the SFU (which never decodes them), and carrying their send time and a sequence
//! number so that a receiver in the same process can measure latency and loss.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use str0m::format::Codec;

const HEADER: usize = 30;
/// Marks a synthetic frame, so that real frames (a pattern's, a caller's) are not read as one.
const MAGIC: &[u8; 4] = b"TNDM";

/// Frames carry their send time relative to this, so a receiver in the same process can tell
/// how long the trip took.
pub(super) fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// A synthetic frame in `codec` (see [`vp8_frame`]); for H.264, one NAL unit (IDR slice for a
/// keyframe) of filler after an Annex B start code.
pub(super) fn video_frame(
    codec: Codec,
    now: Instant,
    seq: u64,
    key: bool,
    bytes: usize,
) -> Vec<u8> {
    if codec != Codec::H264 {
        return vp8_frame(now, seq, key, bytes);
    }
    let mut f = vec![0xab; bytes.max(HEADER)];
    f[..5].copy_from_slice(&[0, 0, 0, 1, if key { 0x65 } else { 0x41 }]);
    f
}

/// A frame shaped as VP8 enough for the SFU: the frame tag's key-frame bit, the key frame start
/// code, then the send time, the sequence number and [`MAGIC`], then filler.
fn vp8_frame(now: Instant, seq: u64, key: bool, bytes: usize) -> Vec<u8> {
    let mut f = vec![0u8; bytes.max(HEADER)];
    f[0] = if key { 0x10 } else { 0x11 };
    f[3..6].copy_from_slice(&[0x9d, 0x01, 0x2a]);
    f[6..8].copy_from_slice(&640u16.to_le_bytes());
    f[8..10].copy_from_slice(&360u16.to_le_bytes());
    let sent = now.saturating_duration_since(epoch()).as_nanos() as u64;
    f[10..18].copy_from_slice(&sent.to_be_bytes());
    f[18..26].copy_from_slice(&seq.to_be_bytes());
    f[26..30].copy_from_slice(MAGIC);
    f
}

/// A synthetic frame's send time (from [`epoch`]), sequence number and keyframe flag; `None`
/// for any other frame.
pub(super) fn read_frame(f: &[u8]) -> Option<(Duration, u64, bool)> {
    if f.len() < HEADER || &f[26..30] != MAGIC {
        return None;
    }
    let sent = u64::from_be_bytes(f[10..18].try_into().ok()?);
    let seq = u64::from_be_bytes(f[18..26].try_into().ok()?);
    Some((Duration::from_nanos(sent), seq, f[0] & 1 == 0))
}
