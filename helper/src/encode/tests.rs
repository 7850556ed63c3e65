//! The encoder proved by decoding: OpenH264's decoder turns each access unit back into pixels,
//! and the colours at known points must be the ones drawn.

use super::*;
use openh264::decoder::Decoder;
use openh264::formats::YUVSource;
use yuv::{YuvPlanarImage, yuv420_to_bgra};

const RED: [u8; 4] = [0, 0, 255, 255];
const GREEN: [u8; 4] = [0, 255, 0, 255];
const BLUE: [u8; 4] = [255, 0, 0, 255];
const WHITE: [u8; 4] = [255, 255, 255, 255];
const GREY: [u8; 4] = [128, 128, 128, 255];
/// Largest difference allowed per channel after encoding, decoding and two colour conversions.
const TOLERANCE: u8 = 16;

/// Four quadrants: red, green / blue, white; a grey bar across the middle rows.
fn pattern(w: u32, h: u32) -> Vec<u8> {
    let mut data = Vec::with_capacity((w * h * 4) as usize);
    for y in 0..h {
        for x in 0..w {
            let px = match (x < w / 2, y < h / 2) {
                _ if y >= h * 7 / 16 && y < h * 9 / 16 => GREY,
                (true, true) => RED,
                (false, true) => GREEN,
                (true, false) => BLUE,
                (false, false) => WHITE,
            };
            data.extend_from_slice(&px);
        }
    }
    data
}

/// The points to check in a `w`x`h` picture of [`pattern`]: the middle of each quadrant and the bar.
fn checkpoints(w: u32, h: u32) -> [((u32, u32), [u8; 4]); 5] {
    [
        ((w / 4, h / 4), RED),
        ((w * 3 / 4, h / 4), GREEN),
        ((w / 4, h * 3 / 4), BLUE),
        ((w * 3 / 4, h * 3 / 4), WHITE),
        ((w / 2, h / 2), GREY),
    ]
}

/// A grey picture where a quarter of the 16x16 blocks, different ones each frame, hold noise:
/// costly enough that the rate control's budget decides the size.
fn busy(w: u32, h: u32, frame: u32) -> Vec<u8> {
    let mut state = 0x9e37_79b9u32.wrapping_add(frame.wrapping_mul(0x85eb_ca6b));
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    let mut data = vec![128u8; (w * h * 4) as usize];
    for by in (0..h).step_by(16) {
        for bx in (0..w).step_by(16) {
            if next() % 4 != 0 {
                continue;
            }
            for y in by..(by + 16).min(h) {
                for x in bx..(bx + 16).min(w) {
                    let i = ((y * w + x) * 4) as usize;
                    let v = next().to_le_bytes();
                    data[i..i + 3].copy_from_slice(&v[..3]);
                }
            }
        }
    }
    data
}

/// Decodes `au` and returns its BGRA pixels and size.
fn decode(decoder: &mut Decoder, au: &AccessUnit) -> (Vec<u8>, u32, u32) {
    let yuv = decoder
        .decode(&au.data)
        .expect("decodes")
        .expect("a picture");
    let (w, h) = yuv.dimensions();
    let (ys, us, vs) = yuv.strides();
    let planar = YuvPlanarImage {
        y_plane: yuv.y(),
        y_stride: ys as u32,
        u_plane: yuv.u(),
        u_stride: us as u32,
        v_plane: yuv.v(),
        v_stride: vs as u32,
        width: w as u32,
        height: h as u32,
    };
    let mut bgra = vec![0u8; w * h * 4];
    yuv420_to_bgra(
        &planar,
        &mut bgra,
        w as u32 * 4,
        convert::RANGE,
        convert::MATRIX,
    )
    .unwrap();
    (bgra, w as u32, h as u32)
}

fn assert_colours(bgra: &[u8], w: u32, points: &[((u32, u32), [u8; 4])]) {
    for &((x, y), want) in points {
        let at = ((y * w + x) * 4) as usize;
        let got = &bgra[at..at + 3];
        for c in 0..3 {
            assert!(
                got[c].abs_diff(want[c]) <= TOLERANCE,
                "at ({x}, {y}): got BGR {got:?}, want {:?}",
                &want[..3]
            );
        }
    }
}

fn encoder() -> Encoder {
    Encoder::new(EncoderSettings::default()).unwrap()
}

fn encode_one(enc: &mut Encoder, data: &[u8], w: u32, h: u32, at_ms: u64) -> AccessUnit {
    enc.encode(Bgra::packed(data, w, h), PictureOptions::default(), at_ms)
        .unwrap()
        .expect("not skipped")
}

#[test]
fn a_colour_pattern_decodes_to_the_same_colours() {
    let (w, h) = (320, 240);
    let data = pattern(w, h);
    let mut enc = encoder();
    let mut dec = Decoder::new().unwrap();
    let first = encode_one(&mut enc, &data, w, h, 0);
    assert!(first.keyframe);
    assert!(first.data.starts_with(&[0, 0, 0, 1]), "Annex-B start code");
    let (bgra, dw, dh) = decode(&mut dec, &first);
    assert_eq!((dw, dh), (w, h));
    assert_colours(&bgra, w, &checkpoints(w, h));
    // A repeat of a still screen is a small delta picture that decodes to the same colours.
    let repeat = encode_one(&mut enc, &data, w, h, 1000);
    assert!(!repeat.keyframe);
    assert!(
        repeat.data.len() < first.data.len() / 4,
        "{} vs {}",
        repeat.data.len(),
        first.data.len()
    );
    let (bgra, _, _) = decode(&mut dec, &repeat);
    assert_colours(&bgra, w, &checkpoints(w, h));
}

#[test]
fn odd_sizes_are_padded_by_one_and_keep_their_colours() {
    for (w, h) in [(321, 241), (1, 1), (3, 2), (17, 9)] {
        let data = pattern(w, h);
        let mut enc = encoder();
        let au = encode_one(&mut enc, &data, w, h, 0);
        assert_eq!(
            (au.width, au.height),
            (w.next_multiple_of(2).max(16), h.next_multiple_of(2).max(16))
        );
        let (bgra, dw, dh) = decode(&mut Decoder::new().unwrap(), &au);
        assert_eq!((dw, dh), (au.width, au.height), "{w}x{h}");
        if w >= 16 && h >= 16 {
            assert_colours(&bgra, dw, &checkpoints(w, h));
        }
    }
}

#[test]
fn a_keyframe_request_makes_the_next_picture_a_keyframe() {
    let (w, h) = (160, 120);
    let mut enc = encoder();
    let mut kinds = Vec::new();
    for i in 0..6u32 {
        if i == 3 {
            enc.request_keyframe();
        }
        let au = encode_one(&mut enc, &pattern(w, h), w, h, u64::from(i) * 33);
        kinds.push(au.keyframe);
    }
    assert_eq!(kinds, [true, false, false, true, false, false]);
}

#[test]
fn keyframes_are_constrained_baseline_with_parameter_sets() {
    let au = encode_one(&mut encoder(), &pattern(64, 64), 64, 64, 0);
    let nal_types: Vec<u8> = openh264::nal_units(&au.data)
        .map(|n| nal_header(n) & 0x1f)
        .collect();
    assert_eq!(&nal_types[..2], &[7, 8], "SPS and PPS first: {nal_types:?}");
    assert!(nal_types.contains(&5), "an IDR slice: {nal_types:?}");
    let sps = openh264::nal_units(&au.data).next().unwrap();
    let body = &sps[sps.iter().position(|&b| b == 1).unwrap() + 2..];
    assert_eq!(body[0], 66, "profile_idc baseline");
    assert_ne!(
        body[1] & 0x40,
        0,
        "constraint_set1_flag: constrained baseline ({:#04x})",
        body[1]
    );
}

fn nal_header(nal: &[u8]) -> u8 {
    nal[nal.iter().position(|&b| b == 1).unwrap() + 1]
}

#[test]
fn a_higher_bitrate_makes_larger_pictures() {
    let (w, h) = (320, 240);
    let mut enc = Encoder::new(EncoderSettings {
        bitrate_bps: 100_000,
        ..Default::default()
    })
    .unwrap();
    let sizes = |enc: &mut Encoder, from: u32| -> usize {
        (from..from + 20)
            .filter_map(|i| {
                enc.encode(
                    Bgra::packed(&busy(w, h, i), w, h),
                    PictureOptions::default(),
                    u64::from(i) * 33,
                )
                .unwrap()
            })
            .filter(|au| !au.keyframe)
            .map(|au| au.data.len())
            .sum()
    };
    let low = sizes(&mut enc, 0);
    enc.set_bitrate(2_000_000).unwrap();
    let high = sizes(&mut enc, 20);
    assert!(
        high > low * 3,
        "2 Mbit/s made {high} bytes, 100 kbit/s {low}"
    );
    enc.set_bitrate(100_000).unwrap();
    let low_again = sizes(&mut enc, 40);
    assert!(
        low_again * 3 < high,
        "back to 100 kbit/s made {low_again} bytes, 2 Mbit/s {high}"
    );
}

#[test]
fn garbage_frames_are_errors_and_the_encoder_carries_on() {
    let mut enc = encoder();
    let data = vec![0u8; 1000];
    for frame in [
        Bgra::packed(&data, 0, 0),
        Bgra::packed(&data, 100, 100),
        Bgra {
            data: &data,
            width: 10,
            height: 10,
            stride: 3,
        },
        Bgra {
            data: &data,
            width: u32::MAX,
            height: 1,
            stride: u32::MAX,
        },
        Bgra::packed(&[], 3840, 2160),
        Bgra::packed(&data, 5000, 1),
    ] {
        let err = enc.encode(frame, PictureOptions::default(), 0).unwrap_err();
        assert!(matches!(err, EncodeError::BadFrame { .. }), "{err}");
    }
    let au = encode_one(&mut enc, &pattern(16, 16), 16, 16, 0);
    assert!(au.keyframe);
    assert!(enc.set_bitrate(0).is_err());
    assert!(enc.set_max_frame_rate(f32::NAN).is_err());
    assert!(enc.set_max_frame_rate(1000.0).is_err());
    assert!(
        Encoder::new(EncoderSettings {
            bitrate_bps: u32::MAX,
            ..Default::default()
        })
        .is_err()
    );
}

#[test]
fn a_new_size_starts_with_a_keyframe_of_that_size() {
    let mut enc = encoder();
    encode_one(&mut enc, &pattern(64, 48), 64, 48, 0);
    encode_one(&mut enc, &pattern(64, 48), 64, 48, 33);
    let au = encode_one(&mut enc, &pattern(96, 64), 96, 64, 66);
    assert!(au.keyframe);
    assert_eq!((au.width, au.height), (96, 64));
    let (bgra, w, h) = decode(&mut Decoder::new().unwrap(), &au);
    assert_eq!((w, h), (96, 64));
    assert_colours(&bgra, w, &checkpoints(96, 64));
}

#[test]
fn half_resolution_and_colour_modes_keep_the_pattern() {
    let (w, h) = (320, 240);
    let data = pattern(w, h);
    for colour in [ColourMode::Full, ColourMode::Bits16, ColourMode::Colours256] {
        for half in [false, true] {
            let mut enc = encoder();
            let au = enc
                .encode(
                    Bgra::packed(&data, w, h),
                    PictureOptions { half, colour },
                    0,
                )
                .unwrap()
                .unwrap();
            let (bgra, dw, dh) = decode(&mut Decoder::new().unwrap(), &au);
            let want = if half { (w / 2, h / 2) } else { (w, h) };
            assert_eq!((dw, dh), want);
            // RGB 3-3-2 rounds grey 128 to 170 in blue (4 levels) and 145 in red and green (8 levels).
            let mut points = checkpoints(dw, dh);
            if colour == ColourMode::Colours256 {
                points[4].1 = [170, 145, 145, 255];
            }
            assert_colours(&bgra, dw, &points);
        }
    }
}

/// The pacing sends a still screen once a second to keep every decoder alive: after a large
/// keyframe those pictures must come out once the keyframe's bits have had their time at the
/// bitrate, not be skipped for as many *pictures* as the keyframe is worth at the full frame rate
/// (at one picture a second, that was most of a minute).
#[test]
fn a_still_screen_at_one_picture_a_second_is_sent_after_a_keyframe() {
    let (w, h) = (320, 240);
    let data = busy(w, h, 0);
    let mut enc = Encoder::new(EncoderSettings {
        bitrate_bps: 100_000,
        ..Default::default()
    })
    .unwrap();
    let key = encode_one(&mut enc, &data, w, h, 0);
    assert!(key.keyframe);
    // The keyframe's bits take this many seconds at the bitrate; every picture after that is sent.
    let seconds = (key.data.len() * 8).div_ceil(100_000) as u64;
    assert!(seconds < 5, "keyframe of {} bytes", key.data.len());
    let sent: Vec<u64> = (1..=10u64)
        .filter(|s| {
            enc.encode(
                Bgra::packed(&data, w, h),
                PictureOptions::default(),
                s * 1000,
            )
            .unwrap()
            .is_some()
        })
        .collect();
    let due: Vec<u64> = (seconds + 2..=10).collect();
    assert!(
        due.iter().all(|s| sent.contains(s)),
        "sent at seconds {sent:?}; the {} byte keyframe took {seconds} s of bitrate",
        key.data.len()
    );
}
