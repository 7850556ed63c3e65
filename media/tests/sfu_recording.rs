//! What the SFU gives a session's recorder (SPEC R1, R2): nothing until the policy records;
//! then what it passes on, as passed on: the shared screen starting at a keyframe, the listener
//! mix of the voice call, annotations; never what the rules hold back.

use std::time::Duration;

use tandem_media::policy::{ChannelKind, TrackPurpose};
use tandem_media::sfu::Recorded;
use tandem_media::sim::{World, camera, screen};

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
