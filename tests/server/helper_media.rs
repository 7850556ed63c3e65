//! Tandem Helper on the media plane (issue 16, item 7), over real UDP: the customer's computer is
//! a WebRTC peer of the SFU on its customer's identity. Its screen share reaches the CSR as the
//! customer's while a sharing activity of that customer runs, and the primary CSR's control
//! input reaches it (not the customer's page) while control runs; an assistant's never does.
//! The questions are asked in the helper (item 4): the computer's WebSocket answers them.

use serde_json::{Value, json};
use tandem::store::AccountRole;
use tandem_media::client::{ClientConfig, Synthetic, VideoConfig};
use tandem_media::policy::{ChannelKind, TrackPurpose};

use crate::common::phone::{Phone, eventually};
use crate::common::{TestServer, Ws};

async fn until_dropped_more(s: &TestServer, reason: &str, than: f64) {
    let deadline = tokio::time::Instant::now() + crate::common::PATIENCE;
    while s.dropped_by_policy(reason).await <= than {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing dropped as {reason}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The computer is asked `activity` in the helper (the page is told so) and allows it.
async fn allowed_in_helper(csr: &mut Ws, dave: &mut Ws, computer: &mut Ws, activity: &str) {
    csr.cmd(json!({"type": "request_activity", "activity": activity}))
        .await
        .unwrap();
    let asked = computer.event("consent_requested").await;
    assert_eq!(asked["activity"], activity, "{asked}");
    assert_eq!(asked["computer"], json!(computer.id()), "{asked}");
    let on_page = dave.event("consent_requested").await;
    assert_eq!(on_page["computer"], json!(computer.id()), "{on_page}");
    // The page cannot say yes for the helper.
    assert_eq!(
        dave.cmd(json!({"type": "consent_reply", "request": asked["request"], "grant": true}))
            .await,
        Err("consent_in_helper".into())
    );
    computer
        .cmd(json!({"type": "consent_reply", "request": asked["request"], "grant": true}))
        .await
        .unwrap();
    csr.event_where("activity_started", |e| e["activity"] == activity)
        .await;
}

async fn pair_computer(s: &TestServer, joined: &Value) -> Ws {
    let (status, code) = s
        .post("/api/helper/codes", joined["token"].as_str(), json!({}))
        .await;
    assert_eq!(status, 201, "{code}");
    let (status, paired) = s
        .post("/api/helper/join", None, json!({"code": code["code"]}))
        .await;
    assert_eq!(status, 201, "{paired}");
    s.connect(&paired).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_computer_shares_and_takes_control_on_its_customers_identity_over_real_udp() {
    let s = TestServer::start().await;
    let carol = s.account("carol", AccountRole::Csr).await;
    let ann = s.account("ann", AccountRole::Csr).await;
    let started = s.start_session(&carol, "printer").await;
    let mut csr = s.connect(&started).await;
    let number = started["session"]["number"].as_str().unwrap();
    let assisting = s.assist(&ann, number).await;
    let mut asst = s.connect(&assisting).await;
    let joined = s.join_by_number(number, "Dave").await;
    let mut dave = s.connect(&joined).await;
    let dave_id = dave.id();
    let mut computer = pair_computer(&s, &joined).await;
    csr.event("computer_attached").await;

    // The pages connect as pages do; the helper as the helper does: a screen track, the
    // control channel, no audio.
    let csr_phone = Phone::listen(&mut csr).await;
    let asst_phone = Phone::listen(&mut asst).await;
    let dave_phone = Phone::listen(&mut dave).await;
    let screen = VideoConfig::synthetic(
        TrackPurpose::Screen,
        Synthetic {
            frame_bytes: 2000,
            fps: 15,
            keyframe_every: 30,
        },
    );
    let helper = Phone::connect_as(
        &mut computer,
        ClientConfig {
            // The CSR's page-like client takes VP8.
            video_codecs: vec![str0m::format::Codec::Vp8],
            ..ClientConfig::helper()
        },
        vec![screen],
    )
    .await;
    eventually("everyone is connected", || {
        csr_phone.connected()
            && asst_phone.connected()
            && dave_phone.connected()
            && helper.connected()
    })
    .await;

    // D1: no share runs, so the computer's screen reaches nobody.
    let before = s.dropped_by_policy("not_sharing").await;
    until_dropped_more(&s, "not_sharing", before).await;
    assert!(csr_phone.video_frames().is_empty());

    // The share runs: the CSR gets the computer's screen, as Dave's.
    allowed_in_helper(&mut csr, &mut dave, &mut computer, "view_desktop").await;
    csr_phone.answer_offer(&mut csr).await;
    let as_daves = format!("screen-{dave_id}");
    eventually("the CSR sees the computer's screen as Dave's", || {
        csr_phone
            .video_frames()
            .iter()
            .any(|(stream, frames)| *stream == as_daves && *frames > 5)
    })
    .await;
    assert_eq!(csr_phone.video_frames().len(), 1, "one share, Dave's");

    // D2: control input before control runs reaches nobody.
    let before = s.dropped_by_policy("not_in_control").await;
    eventually("the CSR's control channel is open", || {
        csr_phone.send_channel(ChannelKind::Control, "early")
    })
    .await;
    until_dropped_more(&s, "not_in_control", before).await;

    // Control runs: the primary CSR's input reaches the computer, not Dave's page; an
    // assistant's reaches nobody.
    allowed_in_helper(&mut csr, &mut dave, &mut computer, "control_desktop").await;
    assert!(csr_phone.send_channel(ChannelKind::Control, "key a"));
    eventually("the computer gets the CSR's key", || {
        helper.channel_texts(ChannelKind::Control) == ["key a"]
    })
    .await;
    let before = s.dropped_by_policy("not_in_control").await;
    eventually("the assistant's control channel is open", || {
        asst_phone.send_channel(ChannelKind::Control, "from ann")
    })
    .await;
    until_dropped_more(&s, "not_in_control", before).await;
    assert!(csr_phone.send_channel(ChannelKind::Control, "key b"));
    eventually("the computer gets the CSR's next key", || {
        helper.channel_texts(ChannelKind::Control).len() == 2
    })
    .await;
    assert_eq!(
        helper.channel_texts(ChannelKind::Control),
        ["key a", "key b"],
        "only the primary CSR's input, and only while control runs"
    );
    assert!(
        dave_phone.channel_texts(ChannelKind::Control).is_empty(),
        "Dave's page is not the one controlled"
    );

    // Stopped from Dave's page: input goes nowhere again.
    dave.cmd(json!({"type": "stop_activity", "activity": "control_desktop"}))
        .await
        .unwrap();
    csr.event_where("activity_stopped", |e| e["activity"] == "control_desktop")
        .await;
    let before = s.dropped_by_policy("not_in_control").await;
    assert!(csr_phone.send_channel(ChannelKind::Control, "late"));
    until_dropped_more(&s, "not_in_control", before).await;
    assert_eq!(helper.channel_texts(ChannelKind::Control).len(), 2);

    // The share stops: the server takes the track back and drops the screen again.
    csr.cmd(json!({"type": "stop_activity", "activity": "view_desktop"}))
        .await
        .unwrap();
    csr_phone.answer_offer(&mut csr).await;
    let before = s.dropped_by_policy("not_sharing").await;
    until_dropped_more(&s, "not_sharing", before).await;
}
