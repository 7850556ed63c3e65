//! The picture size a video frame declares in its codec header, read without decoding: a
//! decoder allocates whatever a keyframe claims (a 3 KB VP8 frame can claim 16383x16383, about
//! 400 MB a picture), so the size is checked against a limit before any decoder sees the frame.

use crate::record::Codec;

/// VP8's start code, after the 3-byte frame tag of a keyframe (RFC 6386 §9.1).
const VP8_START_CODE: [u8; 3] = [0x9d, 0x01, 0x2a];

/// The width and height a frame declares, when its codec header says: a VP8 keyframe does
/// (interframes keep the size of the keyframe before them); `None` for anything else,
/// including a frame too short or malformed to say.
pub fn frame_size(codec: Codec, payload: &[u8]) -> Option<(u32, u32)> {
    match codec {
        Codec::Vp8 => vp8_keyframe_size(payload),
        _ => None,
    }
}

/// RFC 6386 §9.1: the frame tag's lowest bit is 0 on a keyframe, which then carries the start
/// code and two little-endian 16-bit fields whose low 14 bits are the width and the height
/// (the top two bits ask for upscaling, which decoders leave to the application).
fn vp8_keyframe_size(payload: &[u8]) -> Option<(u32, u32)> {
    let head = payload.get(..10)?;
    if head[0] & 1 != 0 || head[3..6] != VP8_START_CODE {
        return None;
    }
    let field = |at: usize| u32::from(u16::from_le_bytes([head[at], head[at + 1]]) & 0x3fff);
    Some((field(6), field(8)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyframe(w: u16, h: u16) -> Vec<u8> {
        let mut f = vec![0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a];
        f.extend_from_slice(&w.to_le_bytes());
        f.extend_from_slice(&h.to_le_bytes());
        f.extend_from_slice(&[0; 8]);
        f
    }

    #[test]
    fn a_vp8_keyframe_says_its_size_and_nothing_else_does() {
        assert_eq!(
            frame_size(Codec::Vp8, &keyframe(640, 360)),
            Some((640, 360))
        );
        assert_eq!(
            frame_size(Codec::Vp8, &keyframe(0xffff, 0x3fff)),
            Some((16383, 16383)),
            "the scaling bits are not part of the size"
        );
        let mut inter = keyframe(640, 360);
        inter[0] |= 1;
        assert_eq!(frame_size(Codec::Vp8, &inter), None);
        let mut no_start = keyframe(640, 360);
        no_start[4] = 0;
        assert_eq!(frame_size(Codec::Vp8, &no_start), None);
        assert_eq!(frame_size(Codec::Vp8, &keyframe(640, 360)[..9]), None);
        assert_eq!(frame_size(Codec::Vp8, &[]), None);
        assert_eq!(frame_size(Codec::H264, &keyframe(640, 360)), None);
        assert_eq!(frame_size(Codec::Opus, &keyframe(640, 360)), None);
    }
}
