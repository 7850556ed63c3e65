//! The str0m client as Tandem Helper uses it, against the real SFU over the simulated network:
//! encoded screen video out (H.264 and VP8, byte for byte to a viewer), keyframe requests and
//! the bandwidth estimate back for its encoder, the `control` channel both ways, and an offer
//! without audio.

use std::time::{Duration, Instant};

use str0m::bwe::Bitrate;
use str0m::format::Codec;
use str0m::media::Mid;
use tandem_media::client::{
    BandwidthConfig, Client, ClientConfig, ClientError, ClientEvent, EncodedFrame, VideoConfig,
};
use tandem_media::policy::{ChannelKind, TrackPurpose};
use tandem_media::testkit::sim::World;

const CSR: u8 = 1;
const HELPER: u8 = 2;

/// A call with a viewer (the CSR, page-like, keeping what it receives) and a helper sending a
/// screen the caller encodes in `codecs`, allowed to share; run until both are connected.
fn call(codecs: Vec<Codec>) -> (World, Mid) {
    call_with(ClientConfig {
        video_codecs: codecs,
        ..ClientConfig::helper()
    })
}

/// The same call with the helper's client configured as `helper`.
fn call_with(helper: ClientConfig) -> (World, Mid) {
    let mut w = World::new();
    let viewer = ClientConfig {
        video_codecs: vec![Codec::Vp8, Codec::H264],
        keep_video: 1000,
        ..ClientConfig::default()
    };
    w.join_with(CSR, viewer, vec![]);
    w.join_with(
        HELPER,
        helper,
        vec![VideoConfig::from_caller(TrackPurpose::Screen)],
    );
    w.set_policy(|p| p.screens = [HELPER].into());
    w.run(Duration::from_millis(500));
    assert!(w.client(CSR).connected && w.client(HELPER).connected);
    let (mid, _) = w.client(HELPER).video_tracks().next().unwrap();
    (w, mid)
}

fn helper(w: &mut World) -> &mut Client {
    w.clients.get_mut(&HELPER).unwrap()
}

fn events(w: &mut World, key: u8) -> Vec<ClientEvent> {
    let c = w.clients.get_mut(&key).unwrap();
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// Bytes without a zero, so no start code appears inside a NAL unit.
fn filler(seed: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| ((seed * 131 + i * 7) % 255) as u8 + 1)
        .collect()
}

/// An H.264 access unit in Annex B: SPS, PPS and an IDR slice for a keyframe, else one slice;
/// some large enough to be split over several packets.
fn h264_frame(n: u64) -> Vec<u8> {
    let nal = |kind: u8, len: usize| {
        let mut v = vec![0, 0, 0, 1, kind];
        v.extend(filler(n * 10 + u64::from(kind), len));
        v
    };
    if n.is_multiple_of(10) {
        [nal(0x67, 12), nal(0x68, 4), nal(0x65, 4000)].concat()
    } else {
        nal(0x41, 300 + (n as usize * 97) % 2500)
    }
}

/// A VP8 frame: the frame tag (key-frame bit, and for a keyframe its start code), then data.
fn vp8_frame(n: u64) -> Vec<u8> {
    let key = n.is_multiple_of(10);
    let mut f = vec![if key { 0x10 } else { 0x11 }, 0x02, 0x00];
    if key {
        f.extend_from_slice(&[0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01]);
    }
    f.extend(filler(n, 200 + (n as usize * 331) % 4000));
    f
}

/// Sends `count` frames made by `make` at 30 a second, RTP times at 3000 ticks apart from an
/// arbitrary start, and returns them as (RTP time, bytes).
fn send_frames(
    w: &mut World,
    mid: Mid,
    codec: Codec,
    count: u64,
    make: fn(u64) -> Vec<u8>,
) -> Vec<(u64, Vec<u8>)> {
    let mut sent = Vec::new();
    for n in 0..count {
        let frame = EncodedFrame {
            codec,
            rtp_time: 1_000_000 + n * 3000,
            data: make(n),
        };
        sent.push((frame.rtp_time, frame.data.clone()));
        let now = w.now;
        helper(w).send_frame(now, mid, frame).unwrap();
        w.run(Duration::from_millis(33));
    }
    w.run(Duration::from_millis(200));
    sent
}

/// What the viewer got is the sent frames from some point on, byte for byte, with the sender's
/// spacing of RTP times.
fn assert_received_as_sent(w: &World, sent: &[(u64, Vec<u8>)]) {
    let got: Vec<&(u64, Vec<u8>)> = w
        .client(CSR)
        .received(TrackPurpose::Screen)
        .flat_map(|v| v.kept.iter())
        .collect();
    assert!(got.len() > sent.len() / 2, "{} frames arrived", got.len());
    let first = sent
        .iter()
        .position(|(_, d)| *d == got[0].1)
        .expect("the first frame received is one sent");
    let expected = &sent[first..];
    assert_eq!(got.len(), expected.len(), "every frame from the first on");
    for (g, e) in got.iter().zip(expected) {
        assert!(g.1 == e.1, "a frame changed on the way");
        assert_eq!(
            g.0 - got[0].0,
            e.0 - expected[0].0,
            "RTP times keep spacing"
        );
    }
}

#[test]
fn h264_frames_from_the_caller_reach_a_viewer_byte_for_byte() {
    let (mut w, mid) = call(vec![Codec::H264]);
    assert_eq!(helper(&mut w).video_codec(mid), Some(Codec::H264));
    let sent = send_frames(&mut w, mid, Codec::H264, 60, h264_frame);
    assert_received_as_sent(&w, &sent);
}

#[test]
fn vp8_frames_from_the_caller_reach_a_viewer_byte_for_byte() {
    let (mut w, mid) = call(vec![Codec::Vp8]);
    assert_eq!(helper(&mut w).video_codec(mid), Some(Codec::Vp8));
    let sent = send_frames(&mut w, mid, Codec::Vp8, 60, vp8_frame);
    assert_received_as_sent(&w, &sent);
}

#[test]
fn frames_the_connection_cannot_carry_are_refused_with_a_reason() {
    let mut w = World::new();
    let config = ClientConfig {
        video_codecs: vec![Codec::Vp8],
        ..ClientConfig::helper()
    };
    w.join_with(
        HELPER,
        config,
        vec![VideoConfig::from_caller(TrackPurpose::Screen)],
    );
    let (mid, _) = w.client(HELPER).video_tracks().next().unwrap();
    let frame = |codec| EncodedFrame {
        codec,
        rtp_time: 0,
        data: vp8_frame(0),
    };
    let now = w.now;
    assert!(matches!(
        helper(&mut w).send_frame(now, mid, frame(Codec::Vp8)),
        Err(ClientError::NotConnected)
    ));
    w.run(Duration::from_millis(300));
    let now = w.now;
    assert!(matches!(
        helper(&mut w).send_frame(now, mid, frame(Codec::H264)),
        Err(ClientError::CodecNotNegotiated(Codec::H264))
    ));
    assert!(matches!(
        helper(&mut w).send_frame(now, Mid::from("zz"), frame(Codec::Vp8)),
        Err(ClientError::NoSuchTrack(_))
    ));
    assert!(
        helper(&mut w)
            .send_frame(now, mid, frame(Codec::Vp8))
            .is_ok()
    );
}

#[test]
fn the_helper_hears_when_a_keyframe_is_asked_for() {
    let (mut w, mid) = call(vec![Codec::H264]);
    send_frames(&mut w, mid, Codec::H264, 30, h264_frame);
    events(&mut w, HELPER);
    // A recording starts with a picture: the SFU asks every sender for a keyframe.
    w.set_policy(|p| p.recording = true);
    w.run(Duration::from_millis(50));
    let asked = events(&mut w, HELPER)
        .into_iter()
        .filter(|e| matches!(e, ClientEvent::KeyframeRequest { mid: m, .. } if *m == mid))
        .count();
    assert_eq!(asked, 1);
}

#[test]
fn the_helper_has_a_send_bandwidth_estimate_and_the_page_like_client_none() {
    let (mut w, mid) = call(vec![Codec::H264]);
    send_frames(&mut w, mid, Codec::H264, 90, h264_frame);
    let estimates = estimates(&mut w);
    let start = ClientConfig::helper().bandwidth.unwrap().start.as_u64();
    assert_eq!(
        estimates.first(),
        Some(&start),
        "it starts where configured"
    );
    let last = helper(&mut w).bitrate_estimate().unwrap().as_u64();
    assert_eq!(estimates.last(), Some(&last));
    assert!(w.client(CSR).bitrate_estimate().is_none());
}

/// A sender that starts low on an idle link probes its way up past what its video uses.
#[test]
fn probing_an_idle_link_raises_a_low_start_estimate() {
    let low = BandwidthConfig {
        start: Bitrate::kbps(300),
        desired: Bitrate::mbps(8),
    };
    let (mut w, mid) = call_with(ClientConfig {
        video_codecs: vec![Codec::H264],
        bandwidth: Some(low),
        ..ClientConfig::helper()
    });
    send_frames(&mut w, mid, Codec::H264, 90, h264_frame);
    let estimates = estimates(&mut w);
    assert_eq!(estimates.first(), Some(&low.start.as_u64()));
    let last = *estimates.last().unwrap();
    assert!(
        last > 2 * low.start.as_u64(),
        "probing an idle link raises the estimate: {estimates:?}"
    );
}

fn estimates(w: &mut World) -> Vec<u64> {
    events(w, HELPER)
        .into_iter()
        .filter_map(|e| match e {
            ClientEvent::BitrateEstimate(b) => Some(b.as_u64()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_control_channel_carries_text_and_bytes_with_its_label_both_ways() {
    let (mut w, _) = call(vec![Codec::H264]);
    let opened: Vec<ClientEvent> = events(&mut w, HELPER)
        .into_iter()
        .filter(|e| matches!(e, ClientEvent::ChannelOpen(_)))
        .collect();
    assert_eq!(opened, vec![ClientEvent::ChannelOpen("control".into())]);

    w.set_policy(|p| p.control = Some((CSR, HELPER)));
    let now = w.now;
    let csr = w.clients.get_mut(&CSR).unwrap();
    csr.send(now, "control", br#"{"t":"key","key":"a"}"#, false)
        .unwrap();
    assert!(w.send(CSR, ChannelKind::Control, &[1, 2, 3]));
    w.run(Duration::from_millis(20));
    let got: Vec<_> = events(&mut w, HELPER)
        .into_iter()
        .filter_map(|e| match e {
            ClientEvent::ChannelMessage(m) => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|m| m.label == "control"));
    assert_eq!(got[0].text(), Some(r#"{"t":"key","key":"a"}"#));
    assert_eq!(
        (got[1].binary, got[1].data.as_slice()),
        (true, &[1, 2, 3][..])
    );

    // The helper sends too (here the SFU's policy lets its control through, to show it).
    w.set_policy(|p| p.control = Some((HELPER, CSR)));
    let now = w.now;
    helper(&mut w)
        .send(now, "control", b"clipboard", false)
        .unwrap();
    w.run(Duration::from_millis(20));
    assert_eq!(
        w.client(CSR).channel_in,
        vec![(ChannelKind::Control, b"clipboard".to_vec())]
    );
    let now = w.now;
    assert!(matches!(
        helper(&mut w).send(now, "pointer", b"1,2", false),
        Err(ClientError::ChannelNotOpen(label)) if label == "pointer"
    ));
}

#[test]
fn the_helper_offers_video_and_control_without_audio() {
    let addr = "10.0.0.9:6000".parse().unwrap();
    let video = vec![VideoConfig::from_caller(TrackPurpose::Screen)];
    let (_, helper, _) =
        Client::new(Instant::now(), addr, ClientConfig::helper(), video.clone()).unwrap();
    let (_, page, _) = Client::new(Instant::now(), addr, ClientConfig::default(), video).unwrap();
    let sections = |sdp: &str| {
        sdp.lines()
            .filter_map(|l| l.strip_prefix("m="))
            .map(|m| m.split(' ').next().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(sections(&helper), ["video", "application"]);
    assert_eq!(sections(&page), ["audio", "video", "application"]);

    let nothing = ClientConfig {
        channels: vec![],
        ..ClientConfig::helper()
    };
    assert!(matches!(
        Client::new(Instant::now(), addr, nothing, vec![]),
        Err(ClientError::NothingToOffer)
    ));
}

/// A support session's screen is mostly still: one changed picture after a quiet spell must
/// reach the viewer at once, not when the next change comes (glass-to-glass, issue 16). The
/// helper's bandwidth probing sends padding in the quiet spells.
#[test]
fn a_lone_change_after_a_quiet_spell_reaches_the_viewer_at_once() {
    let (mut w, mid) = call(vec![Codec::H264]);
    let warm = send_frames(&mut w, mid, Codec::H264, 30, h264_frame);
    let mut rtp_time = warm.last().unwrap().0;
    let kept = |w: &World| {
        w.client(CSR)
            .received(TrackPurpose::Screen)
            .map(|v| v.kept.len())
            .sum::<usize>()
    };
    let mut delays = Vec::new();
    for n in 31..51u64 {
        w.run(Duration::from_millis(500));
        rtp_time += 45_000;
        let before = kept(&w);
        let now = w.now;
        let frame = EncodedFrame {
            codec: Codec::H264,
            rtp_time,
            data: h264_frame(n * 10 + 1),
        };
        helper(&mut w).send_frame(now, mid, frame).unwrap();
        let sent = w.now;
        while kept(&w) == before && w.now - sent < Duration::from_secs(2) {
            w.run(Duration::from_millis(1));
        }
        delays.push((w.now - sent).as_millis());
    }
    assert!(
        delays.iter().all(|d| *d < 100),
        "ms from send to the viewer: {delays:?}"
    );
}

/// The helper serves padding deadlines late on a still screen (helper/src/connection.rs): it
/// must know which deadlines are padding, and never take a frame's for one.
#[test]
fn a_still_senders_wait_is_for_padding_and_a_frame_ends_it() {
    let (mut w, mid) = call(vec![Codec::H264]);
    send_frames(&mut w, mid, Codec::H264, 30, h264_frame);
    w.run(Duration::from_secs(2));
    let mut padding_seen = false;
    for _ in 0..100 {
        if helper(&mut w).next_is_padding() {
            padding_seen = true;
            break;
        }
        w.run(Duration::from_millis(5));
    }
    assert!(
        padding_seen,
        "a still sender's next deadline is padding at times"
    );
    let frame = EncodedFrame {
        codec: Codec::H264,
        rtp_time: 5_000_000,
        data: h264_frame(99),
    };
    let now = w.now;
    helper(&mut w).send_frame(now, mid, frame).unwrap();
    assert!(
        !helper(&mut w).next_is_padding(),
        "a frame waiting to be sent is not padding"
    );
}

/// The helper wants nothing more while its screen is still (helper/src/connection.rs): a sender
/// that desires no bitrate sends no bandwidth probes, only the padding, and one that wants the
/// full rate again is probed for at once.
#[test]
fn a_still_sender_that_wants_nothing_more_sends_no_probes() {
    let (mut w, mid) = call(vec![Codec::H264]);
    send_frames(&mut w, mid, Codec::H264, 30, h264_frame);
    w.run(Duration::from_secs(2));
    let kbit_s = |w: &mut World, secs: u64| {
        let before = w.sent_bytes[&HELPER];
        w.run(Duration::from_secs(secs));
        (w.sent_bytes[&HELPER] - before) * 8 / 1000 / secs
    };
    let probing = kbit_s(&mut w, 20);
    helper(&mut w).set_desired_bitrate(Bitrate::ZERO);
    w.run(Duration::from_secs(1));
    let still = kbit_s(&mut w, 20);
    // What is left is str0m's padding (50 kbit/s of payload, and the packets' headers); the
    // probes (a burst every 5 s at twice the desired 8 Mbit/s) were some 40 kbit/s more.
    assert!(
        still + 20 <= probing,
        "{still} kbit/s while wanting nothing, {probing} while probing"
    );
}

/// While the screen is still, the helper's probing for bandwidth (padding, up to the 8 Mbit/s it
/// would like) must not fill the customer's upload: about 100 kbit/s, with a probe burst every
/// few seconds.
#[test]
fn a_still_screen_costs_the_customers_upload_little() {
    let (mut w, mid) = call(vec![Codec::H264]);
    send_frames(&mut w, mid, Codec::H264, 30, h264_frame);
    let before = w.sent_bytes[&HELPER];
    w.run(Duration::from_secs(20));
    let kbit_s = (w.sent_bytes[&HELPER] - before) * 8 / 1000 / 20;
    assert!(kbit_s < 250, "{kbit_s} kbit/s sent while nothing changed");
}

/// A client that waits for the other side's offer (the load generator's subscriber to a Janus
/// VideoRoom, where the server offers first) hears the offerer's voice and receives every
/// frame of its screen, with no SFU between them.
#[test]
fn an_answering_client_receives_what_the_offer_sends() {
    let start = Instant::now();
    let (a, b) = (
        "10.0.0.1:5000".parse().unwrap(),
        "10.0.0.2:5000".parse().unwrap(),
    );
    let sender = ClientConfig {
        tone: Some(440.0),
        ..ClientConfig::default()
    };
    let screen = tandem_media::testkit::sim::screen();
    let (mut offerer, offer, _) = Client::new(start, a, sender, vec![screen]).unwrap();
    let mut answerer = Client::answerer(start, b, ClientConfig::default()).unwrap();
    let answer = answerer.accept_offer(start, 1, &offer).unwrap().unwrap();
    offerer.accept_answer(start, &answer, 0).unwrap();

    let mut now = start;
    while now < start + Duration::from_secs(3) {
        for c in [&mut offerer, &mut answerer] {
            if c.poll_timeout() <= now {
                c.handle_timeout(now).unwrap();
            }
        }
        let mut moved = true;
        while moved {
            moved = false;
            while let Some(t) = offerer.poll_transmit() {
                answerer.handle_receive(now, t.source, &t.contents).unwrap();
                moved = true;
            }
            while let Some(t) = answerer.poll_transmit() {
                offerer.handle_receive(now, t.source, &t.contents).unwrap();
                moved = true;
            }
        }
        now = offerer
            .poll_timeout()
            .min(answerer.poll_timeout())
            .max(now + Duration::from_millis(1));
    }
    assert!(offerer.connected && answerer.connected);
    // Two seconds and more of 20 ms packets, and of 15 frames a second, after connecting.
    assert!(
        answerer.audio_packets_in > 100,
        "{}",
        answerer.audio_packets_in
    );
    assert!(
        !answerer.heard.is_empty() && answerer.heard.iter().any(|s| s.abs() > 1000),
        "the tone was not heard"
    );
    let video: Vec<_> = answerer.video_in.values().collect();
    assert_eq!(video.len(), 1);
    assert!(video[0].frames > 30, "{}", video[0].frames);
    assert_eq!(video[0].lost, 0);
}
