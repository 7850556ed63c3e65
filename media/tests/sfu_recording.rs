//! What the SFU gives a session's recorder (SPEC R1, R2): nothing until the policy records;
//! then what it passes on, as passed on: the shared screen starting at a keyframe, the listener
//! mix of the voice call, annotations; never what the rules hold back; and the sender's sync
//! between its voice and its screen.

use std::time::{Duration, Instant};

use tandem_media::client::{Pattern, PatternFrame};
use tandem_media::policy::{ChannelKind, TrackPurpose};
use tandem_media::sfu::Recorded;
use tandem_media::testkit::sim::{World, camera, screen};

const CSR: u8 = 1;
const CUSTOMER: u8 = 2;
const ASSISTANT: u8 = 3;

fn video(w: &World, purpose: TrackPurpose) -> Vec<(u8, bool)> {
    w.recorded
        .iter()
        .filter_map(|r| match r {
            Recorded::Video {
                origin,
                purpose: p,
                keyframe,
                ..
            } if *p == purpose => Some((*origin, *keyframe)),
            _ => None,
        })
        .collect()
}

fn voice(w: &World) -> Vec<u64> {
    w.recorded
        .iter()
        .filter_map(|r| match r {
            Recorded::Voice { rtp_time, .. } => Some(*rtp_time),
            _ => None,
        })
        .collect()
}

#[test]
fn the_recorder_gets_what_is_passed_on_while_the_session_records() {
    let mut w = World::new();
    w.join(CSR, Some(440.0), vec![]);
    w.join(CUSTOMER, Some(660.0), vec![screen()]);
    w.join(ASSISTANT, None, vec![camera()]);
    w.set_policy(|p| {
        p.voice_members = [CSR, CUSTOMER].into();
        p.speakers = [CSR, CUSTOMER].into();
        p.screens = [CUSTOMER].into();
    });
    w.run(Duration::from_secs(2));
    assert!(w.recorded.is_empty(), "nothing is recorded before consent");

    w.set_policy(|p| p.recording = true);
    w.run(Duration::from_secs(3));
    let frames = video(&w, TrackPurpose::Screen);
    assert!(frames.len() > 20, "the share is recorded: {}", frames.len());
    assert!(frames.iter().all(|(origin, _)| *origin == CUSTOMER));
    assert!(
        frames.iter().take(5).any(|(_, key)| *key),
        "a recording starts with a picture: a keyframe is asked for at once"
    );
    // The assistant's camera is not allowed (VI2): not passed on, not recorded.
    assert!(video(&w, TrackPurpose::Camera).is_empty());
    // Both voices are speakers, so nobody in the call hears the listener mix; the recorder does.
    let ticks = voice(&w);
    assert!(
        ticks.len() > 100,
        "about 50 voice packets a second: {}",
        ticks.len()
    );
    assert!(
        ticks.windows(2).all(|t| t[1] > t[0]),
        "voice in order, timed by the mixer"
    );
    assert!(w.send(CSR, ChannelKind::Annotation, br#"{"t":"clear"}"#));
    assert!(w.send(CSR, ChannelKind::Control, b"not while nobody controls"));
    w.run(Duration::from_millis(200));
    let channels: Vec<_> = w
        .recorded
        .iter()
        .filter_map(|r| match r {
            Recorded::Channel {
                origin, kind, data, ..
            } => Some((*origin, *kind, data.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        channels,
        [(CSR, ChannelKind::Annotation, br#"{"t":"clear"}"#.to_vec())]
    );

    // Recording stops: nothing more.
    w.set_policy(|p| p.recording = false);
    w.run(Duration::from_millis(100));
    let count = w.recorded.len();
    w.run(Duration::from_secs(1));
    assert_eq!(
        w.recorded.len(),
        count,
        "nothing after the recording stopped"
    );
}

/// A frame shaped as VP8 enough for the SFU, `marked` in its last byte.
fn marked_frame(key: bool, marked: bool) -> Vec<u8> {
    let mut f = vec![0u8; 200];
    f[0] = if key { 0x10 } else { 0x11 };
    f[3..6].copy_from_slice(&[0x9d, 0x01, 0x2a]);
    f[199] = u8::from(marked);
    f
}

/// Times in the recording of what the recorder got, as the exporter places them: video frames
/// at their arrival, the voice mix on its media time from its first packet's arrival.
/// Answers the arrival of each marked frame and the start of each beep (after half a second
/// of quiet), in seconds from `start`.
fn marks_and_beeps(recorded: &[Recorded<u8>], start: Instant) -> (Vec<f64>, Vec<f64>) {
    let secs = |at: &Instant| at.duration_since(start).as_secs_f64();
    let marks = recorded
        .iter()
        .filter_map(|r| match r {
            Recorded::Video { data, at, .. } if data[199] == 1 => Some(secs(at)),
            _ => None,
        })
        .collect();
    let mut dec = opus::Decoder::new(48_000, opus::Channels::Mono).unwrap();
    let mut anchor = None;
    let (mut beeps, mut quiet_since) = (Vec::new(), f64::MIN);
    for r in recorded {
        let Recorded::Voice { rtp_time, data, at } = r else {
            continue;
        };
        let (at0, ts0) = *anchor.get_or_insert((secs(at), *rtp_time));
        let mut pcm = [0i16; 960];
        let n = dec.decode(data, &mut pcm, false).unwrap();
        for (i, s) in pcm[..n].iter().enumerate() {
            let t = at0 + (*rtp_time - ts0 + i as u64) as f64 / 48_000.0;
            if s.unsigned_abs() > 3000 {
                if t - quiet_since > 0.5 {
                    beeps.push(t);
                }
                quiet_since = t;
            }
        }
    }
    (marks, beeps)
}

/// A customer speaks a beep at the instants their screen shows a marked frame (a [`Pattern`]
/// timed from one clock): the recorder gets the frame and, within 100 ms of it, the beep in the
/// listener mix. The mix comes later by the mixer's jitter buffer (its 60 ms target delay and
/// the phase of its 20 ms tick): the frame is recorded as it arrives, the mix as it is made.
#[test]
fn the_recorder_gets_voice_and_screen_in_the_senders_sync() {
    let mut w = World::new();
    let start = w.now;
    w.join(CSR, None, vec![]);
    w.join(CUSTOMER, None, vec![screen()]);
    let ms = Duration::from_millis;
    let frames = (0..25u64)
        .map(|i| PatternFrame {
            at: ms(40 * i),
            keyframe: i % 5 == 0,
            data: marked_frame(i % 5 == 0, i == 10),
        })
        .collect();
    let second = Duration::from_secs(1);
    let pattern = Pattern::new(TrackPurpose::Screen, frames, second, vec![ms(400)]);
    w.clients
        .get_mut(&CUSTOMER)
        .unwrap()
        .send_pattern(pattern)
        .unwrap();
    w.set_policy(|p| {
        p.voice_members = [CSR, CUSTOMER].into();
        p.speakers = [CUSTOMER].into();
        p.screens = [CUSTOMER].into();
        p.recording = true;
    });
    w.run(Duration::from_millis(4500));

    let (marks, beeps) = marks_and_beeps(&w.recorded, start);
    let offsets: Vec<i64> = marks
        .iter()
        .zip(&beeps)
        .map(|(m, b)| ((b - m) * 1000.0).round() as i64)
        .collect();
    println!("marked frames at {marks:?} s, beeps at {beeps:?} s: {offsets:?} ms");
    assert!(marks.len() >= 3, "{marks:?}");
    assert_eq!(beeps.len(), marks.len(), "{beeps:?}");
    for (m, b) in marks.iter().zip(&beeps) {
        assert!((b - m).abs() < 0.1, "marked frame at {m} s, beep at {b} s");
    }
}
