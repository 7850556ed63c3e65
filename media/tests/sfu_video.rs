//! Video forwarding and data channels through the SFU, in memory under simulated time: str0m
//! clients share screens and cameras and send control, pointer and annotation messages; the
//! media policy decides what passes (SPEC D2, D12, D13, VI2, S6).

use std::time::Duration;

use str0m::format::Codec;
use tandem_media::client::ClientConfig;
use tandem_media::policy::{ChannelKind, DropReason, TrackPurpose};
use tandem_media::sfu::SfuEvent;
use tandem_media::testkit::sim::{World, camera, screen};

const CSR: u8 = 1;
const CUSTOMER: u8 = 2;
const ASSISTANT: u8 = 3;

/// A CSR, a customer sharing a screen and an assistant, all connected.
fn session() -> World {
    let mut w = World::new();
    w.join(CSR, None, vec![]);
    w.join(CUSTOMER, None, vec![screen()]);
    w.join(ASSISTANT, None, vec![]);
    w.run(Duration::from_secs(2));
    assert!(w.clients.values().all(|c| c.connected));
    w
}

fn dropped(w: &World, reason: DropReason) -> u64 {
    w.sfu.stats().dropped.get(&reason).copied().unwrap_or(0)
}

#[test]
fn a_share_reaches_everyone_else_only_while_its_activity_runs() {
    let mut w = session();
    // No sharing activity: the customer's screen goes nowhere, and nobody gets a track for it.
    assert_eq!(w.client(CSR).video_in.len(), 0);
    assert!(dropped(&w, DropReason::NotSharing) > 10);

    w.set_policy(|p| p.screens = [CUSTOMER].into());
    w.run(Duration::from_secs(2));
    for viewer in [CSR, ASSISTANT] {
        let c = w.client(viewer);
        let tracks: Vec<_> = c.received(TrackPurpose::Screen).collect();
        assert_eq!(tracks.len(), 1, "D13: {viewer} sees the share");
        assert_eq!(tracks[0].stream, format!("screen-{CUSTOMER}"));
        assert!(
            tracks[0].frames > 20,
            "{viewer} got {} frames",
            tracks[0].frames
        );
        assert!(
            tracks[0].keyframes >= 1,
            "{viewer} got a picture to start from"
        );
        assert_eq!(tracks[0].lost, 0);
    }
    assert_eq!(
        w.client(CUSTOMER).video_in.len(),
        0,
        "the sharer is not sent its own screen"
    );

    // The activity stops (or the CSR selects another customer, S6): the track is taken off.
    w.set_policy(|p| p.screens.clear());
    w.run(Duration::from_millis(500));
    let frames = w.client(CSR).frames_received(TrackPurpose::Screen);
    w.run(Duration::from_secs(1));
    assert_eq!(
        w.client(CSR).frames_received(TrackPurpose::Screen),
        frames,
        "no frames after the share stopped"
    );
    // Tracks: three audio, the customer's screen coming in, nothing going out.
    assert_eq!(w.sfu.track_count(), 4);
}

#[test]
fn only_the_two_allowed_cameras_are_forwarded() {
    let mut w = session();
    w.add_video(CSR, camera());
    w.add_video(ASSISTANT, camera());
    // VI2: the CSR and the primary customer may send; the assistant is the third sender.
    w.set_policy(|p| p.cameras = [CSR, CUSTOMER].into());
    w.add_video(CUSTOMER, camera());
    w.run(Duration::from_secs(2));

    let cameras_seen = |k: u8| -> Vec<String> {
        w.client(k)
            .received(TrackPurpose::Camera)
            .filter(|v| v.frames > 10)
            .map(|v| v.stream.clone())
            .collect()
    };
    assert_eq!(cameras_seen(CSR), [format!("camera-{CUSTOMER}")]);
    assert_eq!(cameras_seen(CUSTOMER), [format!("camera-{CSR}")]);
    let mut both = cameras_seen(ASSISTANT);
    both.sort();
    assert_eq!(
        both,
        [format!("camera-{CSR}"), format!("camera-{CUSTOMER}")]
    );
    assert!(
        dropped(&w, DropReason::NoCameraRight) > 10,
        "the third camera is refused"
    );
}

#[test]
fn a_shared_screen_is_sent_to_be_shown_at_once_and_a_camera_is_not() {
    let mut w = session();
    w.set_policy(|p| {
        p.screens = [CUSTOMER].into();
        p.cameras = [CUSTOMER].into();
    });
    w.add_video(CUSTOMER, camera());
    w.run(Duration::from_secs(2));
    let csr = w.client(CSR);
    let screen: Vec<_> = csr.received(TrackPurpose::Screen).collect();
    let camera: Vec<_> = csr.received(TrackPurpose::Camera).collect();
    assert_eq!((screen.len(), camera.len()), (1, 1));
    assert!(screen[0].frames > 20 && camera[0].frames > 20);
    // A browser shows a frame with playout delay 0/0 as soon as it is decoded, not at the
    // time its render smoothing picks: a screen change alone otherwise waits for the next.
    assert_eq!(
        screen[0].playout_delay,
        Some((Duration::ZERO, Duration::ZERO))
    );
    assert_eq!(
        camera[0].playout_delay, None,
        "a camera keeps its smoothing"
    );
}

#[test]
fn a_late_joiner_gets_a_keyframe_at_once() {
    let mut w = session();
    w.set_policy(|p| p.screens = [CUSTOMER].into());
    w.run(Duration::from_secs(3));
    // The sharer sends a keyframe only every 1000 frames (67 s) unless asked.
    let asked = w.sfu.stats().keyframe_requests;
    w.join(4, None, vec![]);
    w.run(Duration::from_secs(2));
    let late = w.client(4);
    assert!(late.frames_received(TrackPurpose::Screen) > 0);
    assert!(
        late.received(TrackPurpose::Screen)
            .all(|v| v.keyframes >= 1),
        "the late joiner's first picture came without waiting a minute"
    );
    assert!(w.sfu.stats().keyframe_requests > asked);
    assert!(w.client(CUSTOMER).keyframe_requests_in > 0);
}

#[test]
fn control_input_goes_only_from_the_controller_to_the_controlled() {
    let mut w = session();
    assert!(w.client(CSR).channel_open(ChannelKind::Control));
    // Control is not running: input goes nowhere.
    w.send(CSR, ChannelKind::Control, b"key:a");
    w.run(Duration::from_millis(200));
    assert!(w.client(CUSTOMER).channel_in.is_empty());
    assert_eq!(dropped(&w, DropReason::NotInControl), 1);

    w.set_policy(|p| {
        p.screens = [CUSTOMER].into();
        p.control = Some((CSR, CUSTOMER));
    });
    w.send(CSR, ChannelKind::Control, b"key:b");
    // The assistant may watch but not type.
    w.send(ASSISTANT, ChannelKind::Control, b"key:c");
    w.run(Duration::from_millis(200));
    assert_eq!(
        w.client(CUSTOMER).channel_in,
        [(ChannelKind::Control, b"key:b".to_vec())]
    );
    assert!(w.client(ASSISTANT).channel_in.is_empty());
    assert_eq!(dropped(&w, DropReason::NotInControl), 2);
}

#[test]
fn pointer_and_annotations_reach_everyone_else_while_something_is_shared() {
    let mut w = session();
    w.send(ASSISTANT, ChannelKind::Annotation, b"pen 1,1");
    w.run(Duration::from_millis(200));
    assert_eq!(dropped(&w, DropReason::NothingShared), 1);

    w.set_policy(|p| p.screens = [CUSTOMER].into());
    w.send(CUSTOMER, ChannelKind::Pointer, b"12,34");
    w.send(ASSISTANT, ChannelKind::Annotation, b"pen 2,2");
    w.run(Duration::from_millis(200));
    assert_eq!(
        w.client(CSR).channel_in,
        [
            (ChannelKind::Pointer, b"12,34".to_vec()),
            (ChannelKind::Annotation, b"pen 2,2".to_vec())
        ]
    );
    assert_eq!(
        w.client(CUSTOMER).channel_in,
        [(ChannelKind::Annotation, b"pen 2,2".to_vec())]
    );
    assert_eq!(
        w.client(ASSISTANT).channel_in,
        [(ChannelKind::Pointer, b"12,34".to_vec())]
    );
}

#[test]
fn a_sharer_that_vanishes_frees_every_track() {
    let mut w = session();
    w.set_policy(|p| p.screens = [CUSTOMER].into());
    w.run(Duration::from_secs(1));
    assert_eq!(w.sfu.track_count(), 3 + 1 + 2);
    w.gone.insert(CUSTOMER);
    w.run(Duration::from_secs(40));
    assert_eq!(w.sfu.peer_count(), 2);
    assert_eq!(
        w.sfu.track_count(),
        2,
        "only the two remaining audio tracks"
    );
    assert!(w.client(CSR).connected && !w.client(CSR).failed);
    w.sfu.remove_peer(CSR);
    w.sfu.remove_peer(ASSISTANT);
    assert_eq!((w.sfu.peer_count(), w.sfu.track_count()), (0, 0));
}

#[test]
fn an_offer_the_page_never_answers_is_made_again() {
    let mut w = session();
    w.hold.insert(ASSISTANT);
    w.set_policy(|p| p.screens = [CUSTOMER].into());
    w.run(Duration::from_secs(1));
    assert_eq!(
        w.held.len(),
        1,
        "the assistant's page sat on the server's offer"
    );
    w.hold.clear();
    w.run(tandem_media::sfu::OFFER_TIMEOUT + Duration::from_secs(1));
    assert!(
        w.client(ASSISTANT).frames_received(TrackPurpose::Screen) > 0,
        "after the deadline the server offered again and the share arrived"
    );
}

/// The page's offer, with its m-sections in another order: str0m refuses it, after voiding the
/// server's own unanswered offer.
fn reordered(offer: &str) -> String {
    let mut parts: Vec<&str> = offer.split("\r\nm=").collect();
    parts.swap(1, 2);
    parts.join("\r\nm=")
}

#[test]
fn a_refused_page_offer_does_not_block_renegotiation() {
    let mut w = session();
    w.hold.insert(ASSISTANT);
    w.set_policy(|p| p.screens = [CUSTOMER].into());
    w.run(Duration::from_millis(200));
    let (_, stale, _) = w.held[0].clone();
    // The page offers (a camera) across the server's offer, and the offer is refused.
    let c = w.clients.get_mut(&ASSISTANT).unwrap();
    let (offer, purposes) = c.add_video(camera()).unwrap();
    let now = w.now;
    let e = w
        .sfu
        .accept_offer(now, ASSISTANT, &reordered(&offer), &purposes)
        .unwrap_err();
    assert_eq!(e.code(), "sdp_refused");
    w.clients.get_mut(&ASSISTANT).unwrap().rollback();
    w.hold.clear();
    w.run(Duration::from_secs(1));
    assert!(
        w.client(ASSISTANT).frames_received(TrackPurpose::Screen) > 0,
        "the server offered again at once and the share arrived"
    );
    // An answer to the void offer, arriving late, is refused and changes nothing.
    let (_, _, sdp) = w.held[0].clone();
    let now = w.now;
    let e = w
        .sfu
        .accept_answer(now, ASSISTANT, stale, &sdp)
        .unwrap_err();
    assert!(
        ["stale_answer", "no_offer_pending"].contains(&e.code()),
        "{e}"
    );
    w.run(Duration::from_millis(500));
    assert!(w.client(ASSISTANT).connected && !w.client(ASSISTANT).failed);
}

#[test]
fn a_stop_crossed_by_the_pages_offer_leaves_no_track_behind() {
    let mut w = session();
    w.set_policy(|p| p.screens = [CUSTOMER].into());
    w.run(Duration::from_secs(1));
    w.hold.insert(ASSISTANT);
    w.set_policy(|p| p.screens.clear());
    w.run(Duration::from_millis(100));
    assert_eq!(w.held.len(), 1, "the stop is on its way to the assistant");
    w.hold.clear();
    // The assistant's page offers a camera across it.
    w.add_video(ASSISTANT, camera());
    w.run(Duration::from_secs(1));
    // Three audio tracks, the customer's screen and the assistant's camera coming in; nothing
    // going out (the share stopped, the camera is not allowed).
    assert_eq!(w.sfu.track_count(), 5);
}

/// Each m-section that is not rejected names the server's candidate and ends its candidates:
/// clients that read candidates per m-section (aiortc with max-bundle) need both.
fn assert_candidates_everywhere(sdp: &str) {
    let sections: Vec<&str> = sdp.split("\r\nm=").skip(1).collect();
    assert!(!sections.is_empty(), "{sdp}");
    for m in sections {
        if m.split(' ').nth(1) == Some("0") {
            continue;
        }
        assert_eq!(m.matches("a=candidate:").count(), 1, "m={m}");
        assert_eq!(m.matches("a=end-of-candidates").count(), 1, "m={m}");
    }
}

#[test]
fn the_servers_answers_and_offers_name_its_candidate_in_every_m_section() {
    let mut w = session();
    w.set_policy(|p| p.screens = [CUSTOMER].into());
    w.run(Duration::from_millis(500));
    assert_eq!(w.answers.len(), 3);
    let (_, customer) = &w.answers[1];
    assert_eq!(
        customer.matches("\r\nm=").count(),
        3,
        "audio, the screen, data"
    );
    for (_, sdp) in &w.answers {
        assert_candidates_everywhere(sdp);
    }
    let offers: Vec<&String> = w
        .events
        .iter()
        .filter_map(|e| match e {
            SfuEvent::Offer { sdp, .. } => Some(sdp),
            _ => None,
        })
        .collect();
    assert_eq!(
        offers.len(),
        2,
        "the share offered to the CSR and the assistant"
    );
    for sdp in offers {
        assert_candidates_everywhere(sdp);
    }
    // The clients took both and see the share.
    assert!(w.client(CSR).frames_received(TrackPurpose::Screen) > 0);
}

fn codecs(video_codecs: Vec<Codec>) -> ClientConfig {
    ClientConfig {
        video_codecs,
        ..ClientConfig::default()
    }
}

/// A receiver gets only the codecs its answer accepted: a track in a codec it cannot decode is
/// not forwarded to it (an SFU does not transcode), each frame is counted, and the server hears
/// of it once per sender and receiver. What it can decode still reaches it.
#[test]
fn video_in_a_codec_the_receiver_did_not_accept_is_not_forwarded_to_it() {
    const H264_SENDER: u8 = 4;
    let mut w = World::new();
    w.join_with(CSR, codecs(vec![Codec::Vp8]), vec![]);
    w.join_with(ASSISTANT, codecs(vec![Codec::H264, Codec::Vp8]), vec![]);
    w.join_with(H264_SENDER, codecs(vec![Codec::H264]), vec![camera()]);
    w.join_with(CUSTOMER, codecs(vec![Codec::Vp8]), vec![camera()]);
    w.set_policy(|p| p.cameras = [H264_SENDER, CUSTOMER].into());
    w.run(Duration::from_secs(2));
    assert!(w.clients.values().all(|c| c.connected));

    let from = |viewer: u8, sender: u8| -> u64 {
        w.client(viewer)
            .video_in
            .values()
            .filter(|v| v.stream == format!("camera-{sender}"))
            .map(|v| v.frames)
            .sum()
    };
    // The H.264 camera reaches the receiver that accepts H.264, so it was sent ...
    assert!(from(ASSISTANT, H264_SENDER) > 20);
    // ... but not the one that accepted VP8 only.
    assert_eq!(from(CSR, H264_SENDER), 0, "VP8-only receiver got H.264");
    assert_eq!(from(CUSTOMER, H264_SENDER), 0);
    // Nothing sent in vain: a receiver's str0m (as a browser) throws away what it did not accept.
    let received: u64 = w
        .clients
        .values()
        .map(|c| c.frames_received(TrackPurpose::Camera))
        .sum();
    assert_eq!(w.sfu.stats().video_frames_out, received);
    assert!(dropped(&w, DropReason::CodecNotNegotiated) > 20);
    let mut reports: Vec<_> = w
        .events
        .iter()
        .filter_map(|e| match e {
            SfuEvent::CodecNotNegotiated {
                peer,
                origin,
                codec,
            } => Some((*peer, *origin, *codec)),
            _ => None,
        })
        .collect();
    reports.sort_by_key(|(peer, origin, _)| (*peer, *origin));
    // Receiver, sender, codec: the customer takes VP8 only too, and the H.264 sender cannot
    // take the customer's VP8. Once per pair, however many frames.
    let expected = [
        (CSR, H264_SENDER, Codec::H264),
        (CUSTOMER, H264_SENDER, Codec::H264),
        (H264_SENDER, CUSTOMER, Codec::Vp8),
    ];
    assert_eq!(reports, expected);
    // VP8 reaches every receiver that takes it, the one that prefers H.264 included.
    for viewer in [CSR, ASSISTANT] {
        assert!(from(viewer, CUSTOMER) > 20, "{viewer} sees the customer");
    }
}

/// The server's answer lists VP8 before H.264, so a browser that offers both sends VP8, which
/// every receiver takes.
#[test]
fn a_sender_offering_h264_first_is_asked_for_vp8() {
    let mut w = World::new();
    w.join_with(CSR, codecs(vec![Codec::Vp8]), vec![]);
    w.join_with(
        CUSTOMER,
        codecs(vec![Codec::H264, Codec::Vp8]),
        vec![camera()],
    );
    w.set_policy(|p| p.cameras = [CUSTOMER].into());
    w.run(Duration::from_secs(2));
    let (_, answer) = &w.answers[1];
    let video = answer.split("\r\nm=video ").nth(1).unwrap();
    let first_pt = video.split(' ').nth(2).unwrap();
    assert!(
        video.contains(&format!("a=rtpmap:{first_pt} VP8/90000")),
        "VP8 first: {video}"
    );
    assert!(w.client(CSR).frames_received(TrackPurpose::Camera) > 20);
    assert_eq!(dropped(&w, DropReason::CodecNotNegotiated), 0);
}
