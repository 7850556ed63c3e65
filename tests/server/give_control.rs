//! The CSR gives control of their desktop to the customer through the CSR's own Tandem Helper
//! (SPEC D4), over real WebSockets and UDP: the primary CSR pairs a computer of their own (an
//! assistant may not), the question is asked in that helper only, the helper's screen reaches
//! the customer as the CSR's, and the customer's control input reaches the CSR's computer only
//! while give_control runs and the customer holds control. Either side takes control back
//! (take_control) and either side ends it (D5).

use serde_json::{Value, json};
use tandem::store::AccountRole;
use tandem_media::client::{ClientConfig, Synthetic, VideoConfig};
use tandem_media::policy::{ChannelKind, TrackPurpose};

use crate::common::TestServer;
use crate::common::phone::{Phone, eventually};

/// Sends `text` from `phone` on the control channel and waits until the SFU dropped it.
async fn dropped(s: &TestServer, phone: &Phone, text: &str) {
    let before = s.dropped_by_policy("not_in_control").await;
    assert!(phone.send_channel(ChannelKind::Control, text));
    let deadline = tokio::time::Instant::now() + crate::common::PATIENCE;
    while s.dropped_by_policy("not_in_control").await <= before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{text:?} was not dropped"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn code_for(s: &TestServer, joined: &Value) -> (u16, Value) {
    s.post("/api/helper/codes", joined["token"].as_str(), json!({}))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customer_controls_the_csrs_computer_only_while_given_and_holding_control() {
    let s = TestServer::start().await;
    let carol = s.account("carol", AccountRole::Csr).await;
    let ann = s.account("ann", AccountRole::Csr).await;
    let started = s.start_session(&carol, "printer").await;
    let mut csr = s.connect(&started).await;
    let carol_id = csr.id();
    let number = started["session"]["number"].as_str().unwrap();
    let assisting = s.assist(&ann, number).await;
    let mut asst = s.connect(&assisting).await;
    let mut dave = s.connect(&s.join_by_number(number, "Dave").await).await;
    let dave_id = dave.id();

    // Without her helper, Carol is told to run it.
    assert_eq!(
        csr.cmd(json!({"type": "request_activity", "activity": "give_control"}))
            .await,
        Err("csr_helper_needed".into())
    );
    // An assistant has no desktop to give here; Carol pairs her own computer.
    let (status, refused) = code_for(&s, &assisting).await;
    assert_eq!((status, &refused["code"]), (403, &json!("not_primary")));
    let (status, code) = code_for(&s, &started).await;
    assert_eq!(status, 201, "{code}");
    let (status, paired) = s
        .post("/api/helper/join", None, json!({"code": code["code"]}))
        .await;
    assert_eq!(status, 201, "{paired}");
    assert_eq!(paired["participant"]["name"], "carol (display)'s computer");
    assert_eq!(paired["participant"]["computer_of"], json!(carol_id));
    let mut mine = s.connect(&paired).await;
    let attached = dave.event("computer_attached").await;
    assert_eq!(attached["customer"], json!(carol_id));

    let dave_phone = Phone::listen(&mut dave).await;
    let asst_phone = Phone::listen(&mut asst).await;
    let csr_phone = Phone::listen(&mut csr).await;
    let screen = VideoConfig::synthetic(
        TrackPurpose::Screen,
        Synthetic {
            frame_bytes: 2000,
            fps: 15,
            keyframe_every: 30,
        },
    );
    let helper = Phone::connect_as(
        &mut mine,
        ClientConfig {
            video_codecs: vec![str0m::format::Codec::Vp8],
            ..ClientConfig::helper()
        },
        vec![screen],
    )
    .await;
    eventually("everyone is connected", || {
        dave_phone.connected()
            && asst_phone.connected()
            && csr_phone.connected()
            && helper.connected()
    })
    .await;
    eventually("Dave's control channel is open", || {
        dave_phone.send_channel(ChannelKind::Control, "too early")
    })
    .await;

    // Asked in Carol's helper only: neither Dave nor Carol's console answers it.
    csr.cmd(json!({"type": "request_activity", "activity": "give_control"}))
        .await
        .unwrap();
    let asked = mine.event("consent_requested").await;
    assert_eq!(
        (&asked["activity"], &asked["customer"], &asked["computer"]),
        (&json!("give_control"), &json!(dave_id), &json!(mine.id()))
    );
    for who in [&mut dave, &mut csr] {
        assert_eq!(
            who.cmd(json!({"type": "consent_reply", "request": asked["request"], "grant": true}))
                .await,
            Err("unknown_consent_request".into())
        );
    }
    dropped(&s, &dave_phone, "before it runs").await;
    mine.cmd(json!({"type": "consent_reply", "request": asked["request"], "grant": true}))
        .await
        .unwrap();
    dave.event_where("activity_started", |e| e["activity"] == "give_control")
        .await;

    // Dave sees Carol's screen (her helper's), as Carol's.
    dave_phone.answer_offer(&mut dave).await;
    let as_carols = format!("screen-{carol_id}");
    eventually("Dave sees Carol's screen", || {
        dave_phone
            .video_frames()
            .iter()
            .any(|(stream, frames)| *stream == as_carols && *frames > 5)
    })
    .await;

    // Dave holds control: his input reaches Carol's computer; nobody else's does.
    assert!(dave_phone.send_channel(ChannelKind::Control, "dave 1"));
    eventually("Carol's computer gets Dave's click", || {
        helper.channel_texts(ChannelKind::Control) == ["dave 1"]
    })
    .await;
    eventually("the assistant's control channel is open", || {
        asst_phone.send_channel(ChannelKind::Control, "from ann")
    })
    .await;
    dropped(&s, &asst_phone, "from ann again").await;

    // Carol takes control back from her console: Dave's input goes nowhere.
    csr.cmd(json!({"type": "take_control"})).await.unwrap();
    let taken = dave.event("control_taken").await;
    assert_eq!(taken["holder"], "csr");
    dropped(&s, &dave_phone, "dave while Carol holds it").await;
    // Dave clicks to take it again: it lands.
    dave.cmd(json!({"type": "take_control"})).await.unwrap();
    mine.event_where("control_taken", |e| e["holder"] == "customer")
        .await;
    assert!(dave_phone.send_channel(ChannelKind::Control, "dave 2"));
    eventually("Carol's computer gets Dave's next click", || {
        helper.channel_texts(ChannelKind::Control).len() == 2
    })
    .await;
    // Carol takes it back from her helper.
    mine.cmd(json!({"type": "take_control"})).await.unwrap();
    csr.event_where("control_taken", |e| e["by"] == json!(mine.id()))
        .await;
    dropped(&s, &dave_phone, "dave after the helper took it").await;
    dave.cmd(json!({"type": "take_control"})).await.unwrap();
    csr.event_where("control_taken", |e| e["holder"] == "customer")
        .await;

    // D5: Dave ends it; his input goes nowhere again.
    dave.cmd(json!({"type": "stop_activity", "activity": "give_control"}))
        .await
        .unwrap();
    csr.event_where("activity_stopped", |e| e["activity"] == "give_control")
        .await;
    dropped(&s, &dave_phone, "dave after the end").await;
    assert_eq!(
        helper.channel_texts(ChannelKind::Control),
        ["dave 1", "dave 2"],
        "only Dave's input while he held control"
    );
    assert!(csr_phone.channel_texts(ChannelKind::Control).is_empty());
}
