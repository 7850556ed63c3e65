//! The voice path end to end without sockets or a clock: str0m clients (full ICE, DTLS, SRTP,
//! as a browser) connect to the SFU; datagrams travel in memory under simulated time. Two hold
//! the microphone, one does not; each sends a different tone (SPEC V3, SYS2).

use std::time::Duration;

use tandem_media::sfu::SfuEvent;
use tandem_media::testkit::sim::{SFU, World};
use tandem_media::tone::power as tone_power;

/// Clients 1, 2, 3... speaking these tones; members of the call and microphone holders as given.
fn world(tones: &[f64], members: &[u8], speakers: &[u8]) -> World {
    let mut w = World::new();
    for (i, tone) in tones.iter().enumerate() {
        w.join(i as u8 + 1, Some(*tone), vec![]);
    }
    call(&mut w, members, speakers);
    w
}

fn call(w: &mut World, members: &[u8], speakers: &[u8]) {
    w.set_policy(|p| {
        p.voice_members = members.iter().copied().collect();
        p.speakers = speakers.iter().copied().collect();
    });
}

#[test]
fn speakers_hear_each_other_listeners_hear_both_and_the_unmicrophoned_is_not_heard() {
    let mut w = world(&[440.0, 1000.0, 2500.0], &[1, 2, 3], &[1, 2]);
    w.run(Duration::from_secs(4));
    assert!(
        w.clients.values().all(|c| c.connected),
        "ICE + DTLS over the in-memory wire"
    );
    let connected = w
        .events
        .iter()
        .filter(|e| matches!(e, SfuEvent::Connected(_)))
        .count();
    assert_eq!(connected, 3);

    let heard = |k: u8| {
        let h = &w.client(k).heard;
        assert!(
            h.len() > 48_000 * 2,
            "client {k} heard only {} samples",
            h.len()
        );
        &h[h.len() - 48_000..] // the last second
    };
    let (present, absent) = (1e11, 1e7);
    let (a, b, c) = (heard(1), heard(2), heard(3));
    assert!(
        tone_power(a, 1000.0) > present,
        "the first speaker hears the second"
    );
    assert!(tone_power(a, 440.0) < absent, "but not itself");
    assert!(tone_power(b, 440.0) > present && tone_power(b, 1000.0) < absent);
    assert!(
        tone_power(c, 440.0) > present && tone_power(c, 1000.0) > present,
        "a listener hears both"
    );
    for pcm in [a, b, c] {
        assert!(
            tone_power(pcm, 2500.0) < absent,
            "nobody hears the participant without a microphone"
        );
    }
    assert!(w.sfu.mixer().stats().dropped_not_speaker > 100);
    assert!(
        w.sfu.stats().dropped[&tandem_media::policy::DropReason::NoMicrophone] > 100,
        "drops by the microphone rule are counted"
    );
}

#[test]
fn passing_the_microphone_changes_who_is_heard() {
    let mut w = world(&[440.0, 1000.0, 2500.0], &[1, 2, 3], &[1]);
    w.run(Duration::from_secs(3));
    call(&mut w, &[1, 2, 3], &[3]);
    w.run(Duration::from_secs(2));
    let h = &w.client(2).heard;
    let after = &h[h.len() - 48_000..]; // the last second, past the jitter buffer's start
    assert!(tone_power(after, 2500.0) > 1e11, "the new holder is heard");
    assert!(tone_power(after, 440.0) < 1e7, "the former holder is not");
}

#[test]
fn only_call_members_hear_the_mix_and_only_members_are_heard() {
    // Members 1 and 4; 1 and 3 hold microphones, but 3 is not in the call.
    let mut w = world(&[440.0, 1000.0, 2500.0, 3000.0], &[1, 4], &[1, 3]);
    w.run(Duration::from_secs(3));
    assert!(
        w.client(2).heard.is_empty(),
        "a participant outside the call gets no audio"
    );
    assert!(
        w.client(3).heard.is_empty(),
        "nor does a holder outside the call"
    );
    let d = &w.client(4).heard;
    let d = &d[d.len() - 48_000..];
    assert!(tone_power(d, 440.0) > 1e11, "a member hears the speaker");
    assert!(
        tone_power(d, 2500.0) < 1e7,
        "a holder outside the call is not heard"
    );
}

#[test]
fn garbage_and_malformed_offers_are_refused_without_harm() {
    let mut w = world(&[440.0], &[], &[]);
    let now = w.now;
    let none = Default::default();
    assert!(!w.sfu.handle_receive(
        now,
        "10.9.9.9:1".parse().unwrap(),
        SFU.parse().unwrap(),
        b"\x00\x01garbage"
    ));
    assert!(!w.sfu.handle_receive(
        now,
        "10.9.9.9:1".parse().unwrap(),
        SFU.parse().unwrap(),
        &[]
    ));
    let e = w
        .sfu
        .accept_offer(now, 9, "v=0\r\nthis is not sdp", &none)
        .unwrap_err();
    assert_eq!(e.code(), "malformed_sdp");
    call(&mut w, &[1], &[1]);
    w.run(Duration::from_secs(2));
    assert!(w.client(1).connected);
    // A malformed re-offer from a connected participant leaves the working connection alone.
    assert_eq!(
        w.sfu
            .accept_offer(w.now, 1, "garbage", &none)
            .unwrap_err()
            .code(),
        "malformed_sdp"
    );
    assert_eq!(w.sfu.peer_count(), 1);
    // Garbage from the participant's own address (anyone can forge it): RTP-, RTCP-, DTLS- and
    // STUN-looking bytes are dropped and the connection goes on.
    let from = w.client(1).addr();
    for junk in [
        &b"\x80\x6f\x00\x01garbage-rtp-payload"[..],
        b"\x80\xc8\x00\x06garbage-rtcp",
        b"\x16\xfe\xfd\x00\x00garbage-dtls",
        b"\x00\x01\x00\x08\x21\x12\xa4\x42garbage-stun",
    ] {
        w.sfu
            .handle_receive(w.now, from, SFU.parse().unwrap(), junk);
    }
    assert_eq!(
        w.sfu.peer_count(),
        1,
        "forged garbage cut a participant off"
    );
    let received = w.sfu.stats().audio_in;
    w.run(Duration::from_secs(1));
    assert!(
        w.sfu.stats().audio_in > received,
        "the old connection still carries audio"
    );
}

#[test]
fn a_peer_that_vanishes_is_disconnected_and_freed_while_others_go_on() {
    let mut w = world(&[440.0, 1000.0], &[1, 2, 3], &[1, 2]);
    w.run(Duration::from_secs(2));
    w.gone.insert(2);
    let before = w.client(1).audio_packets_in;
    w.run(Duration::from_secs(40));
    assert!(
        w.events.contains(&SfuEvent::Disconnected(2)),
        "{:?}",
        w.events
    );
    assert_eq!(w.sfu.peer_count(), 1);
    // The remaining client is still connected and still receives (silence suppression aside,
    // the call goes on for it).
    assert!(w.client(1).connected);
    assert!(w.client(1).audio_packets_in > before);
}

#[test]
fn a_speakers_microphone_volume_changes_how_loud_the_others_hear_them() {
    let mut w = world(&[440.0, 1000.0], &[1, 2], &[1]);
    w.run(Duration::from_secs(3));
    let last_second = |w: &World| {
        let h = &w.client(2).heard;
        tone_power(&h[h.len() - 48_000..], 440.0)
    };
    let full = last_second(&w);
    // SPEC V4: at 50 % the speaker's voice reaches the others at half the amplitude, a quarter
    // of the power.
    w.set_policy(|p| {
        p.volumes.insert(1, 50);
    });
    w.run(Duration::from_secs(2));
    let half = last_second(&w);
    let ratio = half / full;
    assert!((0.15..0.35).contains(&ratio), "power ratio {ratio}");
}

/// Issue 19: in the usual call, two speakers and nobody else, each hears the other's own
/// packets, so the voice that a page's speaking indicator and level meter measure arrives as
/// loud as it was sent, with nothing decoded or encoded on the server; a volume set (V4) needs
/// a mix, and then the server decodes.
#[test]
fn two_speakers_alone_hear_each_other_as_sent_with_nothing_decoded() {
    let mut w = world(&[440.0, 1000.0], &[1, 2], &[1, 2]);
    w.run(Duration::from_secs(3));
    fn last(w: &World, k: u8) -> Vec<i16> {
        let h = &w.client(k).heard;
        assert!(
            h.len() > 48_000,
            "client {k} heard only {} samples",
            h.len()
        );
        h[h.len() - 48_000..].to_vec()
    }
    let (a, b) = (last(&w, 1), last(&w, 2));
    assert!(tone_power(&a, 1000.0) > 1e11 && tone_power(&a, 440.0) < 1e7);
    assert!(tone_power(&b, 440.0) > 1e11 && tone_power(&b, 1000.0) < 1e7);
    let stats = w.sfu.stats();
    assert!(stats.voice_passed > 2 * 100, "{stats:?}");
    assert_eq!((stats.voice_decodes, stats.voice_encodes), (0, 0));
    // The volume of 1 set to half: its voice is mixed now, so decoded.
    w.set_policy(|p| {
        p.volumes.insert(1, 50);
    });
    w.run(Duration::from_secs(1));
    let stats = w.sfu.stats();
    assert!(
        stats.voice_decodes > 25 && stats.voice_encodes > 25,
        "{stats:?}"
    );
    let b = last(&w, 2);
    assert!(tone_power(&b, 440.0) > 1e10, "2 still hears 1, softer");
}
