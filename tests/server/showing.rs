//! The CSR shows their own screen (SPEC D3, D7) over real WebSockets and UDP: the primary CSR
//! starts it without asking the customer (S9 asks only for the customer's computer), everyone
//! is told (D13), an assistant and a customer are refused, either side ends it (D5), and
//! selecting another customer ends it (S6). On the media plane the CSR's screen track reaches
//! the customer and the assistant while it runs, and is dropped before and after.

use serde_json::{Value, json};
use tandem::store::AccountRole;
use tandem_media::client::{Synthetic, VideoConfig};
use tandem_media::policy::TrackPurpose;

use crate::common::phone::{Phone, eventually};
use crate::common::{TestServer, Ws};

async fn show(csr: &mut Ws, activity: &str) -> Result<(), String> {
    csr.cmd(json!({"type": "request_activity", "activity": activity}))
        .await
}

async fn stop(who: &mut Ws, activity: &str) -> Result<(), String> {
    who.cmd(json!({"type": "stop_activity", "activity": activity}))
        .await
}

fn is(activity: &'static str) -> impl Fn(&Value) -> bool {
    move |e: &Value| e["activity"] == activity
}

/// Frames of `csr`'s screen that `phone` received so far.
fn screen_frames(phone: &Phone, csr: &str) -> u64 {
    let stream = format!("screen-{csr}");
    phone
        .video_frames()
        .iter()
        .filter(|(s, _)| *s == stream)
        .map(|(_, n)| *n)
        .sum()
}

async fn until_not_sharing_grows(s: &TestServer) {
    let before = s.dropped_by_policy("not_sharing").await;
    let deadline = tokio::time::Instant::now() + crate::common::PATIENCE;
    while s.dropped_by_policy("not_sharing").await <= before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the CSR's screen was not dropped"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_csr_shows_their_screen_to_everyone_and_either_side_ends_it() {
    let s = TestServer::start().await;
    let carol = s.account("carol", AccountRole::Csr).await;
    let ann = s.account("ann", AccountRole::Csr).await;
    let started = s.start_session(&carol, "printer").await;
    let mut csr = s.connect(&started).await;
    let csr_id = csr.id();
    let number = started["session"]["number"].as_str().unwrap();
    let assisting = s.assist(&ann, number).await;
    let mut asst = s.connect(&assisting).await;
    let mut dave = s.connect(&s.join_by_number(number, "Dave").await).await;
    let dave_id = dave.id();
    let mut erin = s.connect(&s.join_by_number(number, "Erin").await).await;
    csr.event_where("participant_joined", |e| e["participant"]["name"] == "Erin")
        .await;

    // The CSR's console sends a screen track; the others only receive.
    let screen = VideoConfig::synthetic(
        TrackPurpose::Screen,
        Synthetic {
            frame_bytes: 2000,
            fps: 15,
            keyframe_every: 30,
        },
    );
    let csr_phone = Phone::connect_with_video(&mut csr, 440.0, vec![screen]).await;
    let dave_phone = Phone::listen(&mut dave).await;
    let asst_phone = Phone::listen(&mut asst).await;
    eventually("everyone is connected", || {
        csr_phone.connected() && dave_phone.connected() && asst_phone.connected()
    })
    .await;

    // Before showing, the CSR's screen reaches nobody.
    until_not_sharing_grows(&s).await;
    assert_eq!(screen_frames(&dave_phone, &csr_id), 0);

    // Only the primary CSR shows; nobody is asked; everyone is told.
    assert_eq!(
        show(&mut asst, "show_desktop").await,
        Err("not_primary".into())
    );
    assert_eq!(
        show(&mut dave, "show_desktop").await,
        Err("not_primary".into())
    );
    show(&mut csr, "show_desktop").await.unwrap();
    for ws in [&mut dave, &mut erin, &mut asst] {
        let e = ws.event_where("activity_started", is("show_desktop")).await;
        assert_eq!(e["customer"], json!(dave_id), "{e}");
        assert_eq!(e["pre_approved"], false, "{e}");
    }
    assert!(!dave.saw_event("consent_requested", |_| true));
    assert_eq!(
        show(&mut csr, "show_applications").await,
        Err("already_showing".into())
    );
    assert_eq!(
        show(&mut csr, "show_desktop").await,
        Err("activity_running".into())
    );

    // D3, D13: the screen reaches Dave and the assistant, as the CSR's.
    dave_phone.answer_offer(&mut dave).await;
    asst_phone.answer_offer(&mut asst).await;
    eventually("Dave and the assistant see the CSR's screen", || {
        screen_frames(&dave_phone, &csr_id) > 5 && screen_frames(&asst_phone, &csr_id) > 5
    })
    .await;

    // D5 from the customer's side: another customer cannot end it; Dave stops watching.
    assert_eq!(
        stop(&mut erin, "show_desktop").await,
        Err("activity_not_running".into())
    );
    stop(&mut dave, "show_desktop").await.unwrap();
    let e = csr
        .event_where("activity_stopped", is("show_desktop"))
        .await;
    assert_eq!(e["cause"], "stopped", "{e}");
    dave_phone.answer_offer(&mut dave).await;
    until_not_sharing_grows(&s).await;

    // D7, and D5 from the CSR's side; the assistant may not stop it.
    show(&mut csr, "show_applications").await.unwrap();
    dave.event_where("activity_started", is("show_applications"))
        .await;
    assert_eq!(
        stop(&mut asst, "show_applications").await,
        Err("not_primary".into())
    );
    stop(&mut csr, "show_applications").await.unwrap();
    let e = dave
        .event_where("activity_stopped", is("show_applications"))
        .await;
    assert_eq!(e["cause"], "stopped", "{e}");
    assert_eq!(
        stop(&mut csr, "show_applications").await,
        Err("activity_not_running".into())
    );

    // S6: selecting another customer ends it.
    show(&mut csr, "show_desktop").await.unwrap();
    csr.cmd(json!({"type": "select_customer", "customer": erin.id()}))
        .await
        .unwrap();
    let e = dave
        .event_where("activity_stopped", |e| {
            e["activity"] == "show_desktop" && e["cause"] == "customer_changed"
        })
        .await;
    assert_eq!(e["customer"], json!(dave_id), "{e}");
    let (status, session) = s
        .get(
            &format!(
                "/api/sessions/{}",
                started["session"]["id"].as_str().unwrap()
            ),
            Some(&carol.token),
        )
        .await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["activities"], json!([]), "{session}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customer_sees_the_csrs_screen_and_windows_in_chromium_and_either_side_stops() {
    // D3, D5, D7, D13 clicked through: tests/e2e/show.mjs checks the colours of the video's
    // pixels on the customer's page.
    let s = TestServer::start().await;
    s.named_account("carol", "Carol", AccountRole::Csr).await;
    let report = crate::common::browser::run_script(&s, "show.mjs", &["carol"]).await;
    assert!(report["results"]["desktop"].is_array(), "{report}");
    assert_eq!(
        report["results"]["windows"].as_array().map(Vec::len),
        Some(2),
        "{report}"
    );
}
