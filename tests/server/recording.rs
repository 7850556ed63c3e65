//! Network recording of a live session over real UDP (SPEC S9, R1, R2): nothing is recorded
//! before the customer agrees; then the shared screen, the voice call and the session's events
//! go into an ARF file that the recordings list shows, and the recording ends with its activity;
//! it is then exported to a fast-start MP4 (H.264, AAC) of the recorded length (SYS5). With the
//! admin's automatic recording on (R3), every session asks its customer on joining, records
//! after the OK, and its CSR cannot stop it.

use std::time::Duration;

use crate::common::phone::{Phone, eventually, voice_call};
use crate::common::{TestServer, futures_now, newest_once_not};
use serde_json::json;
use tandem::store::{AccountRole, RecordingStatus};
use tandem_arf::{Reader, Record};
use tandem_media::testkit::sim::screen;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consented_recording_holds_the_share_the_voice_and_the_events() {
    let t = TestServer::start().await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let other = t.account("olga", AccountRole::Csr).await;
    // A voice call with both holding a microphone, and Dave's screen shared after his consent.
    let (_, mut csr, mut dave) = voice_call(&t, &carol, "Recorded").await;
    let dave_id = dave.id();
    csr.cmd(json!({"type": "pass_microphone", "to": dave_id}))
        .await
        .unwrap();
    let _csr_phone = Phone::connect(&mut csr, 440.0).await;
    let dave_phone = Phone::connect_with_video(&mut dave, 1000.0, vec![screen()]).await;
    eventually("Dave is connected", || dave_phone.connected()).await;
    let asked = crate::common::ask(&mut csr, &mut dave, "view_desktop").await;
    crate::common::allow(&mut csr, &mut dave, &asked).await;
    let asked = crate::common::ask(&mut csr, &mut dave, "recording").await;
    // S9: until Dave answers, nothing is recorded.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        t.server().store.recordings(None).await.unwrap().is_empty(),
        "recorded before consent"
    );
    crate::common::allow(&mut csr, &mut dave, &asked).await;

    // The recording is listed, as running, for its owner and nobody else but admins. Its row
    // is made just after the activity starts, so it may take a moment to appear.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let list = loop {
        let (status, list) = t.get("/api/recordings", Some(&carol.token)).await;
        assert_eq!(status, 200, "{list}");
        if !list["recordings"][0].is_null() || tokio::time::Instant::now() > deadline {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(list["recordings"][0]["status"], "recording", "{list}");
    // Issue 18: the list says which session it is and who was in it.
    assert_eq!(list["recordings"][0]["topic"], "Recorded", "{list}");
    assert_eq!(
        list["recordings"][0]["customers"],
        json!(["Dave"]),
        "{list}"
    );
    assert_eq!(list["recordings"][0]["csr"], carol.name.as_str(), "{list}");
    let (_, theirs) = t.get("/api/recordings", Some(&other.token)).await;
    assert_eq!(theirs["recordings"], json!([]), "{theirs}");

    tokio::time::sleep(Duration::from_secs(3)).await;
    csr.cmd(json!({"type": "chat", "text": "this is on the record"}))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    csr.cmd(json!({"type": "stop_activity", "activity": "recording"}))
        .await
        .unwrap();

    // Closed with its activity; the row says how long and how big.
    let store = &t.server().store;
    let rows = newest_once_not(store, RecordingStatus::Recording).await;
    let rec = &rows[0];
    assert_ne!(rec.status, RecordingStatus::Failed, "{:?}", rec.error);
    let duration = rec.duration_ms.unwrap();
    assert!((3000..10_000).contains(&duration), "duration {duration} ms");
    assert!(rec.arf_bytes > 10_000, "{} bytes", rec.arf_bytes);

    // What the file holds.
    let summary = tandem_arf::inspect(&rec.arf_path).unwrap();
    assert!(!summary.truncated, "closed cleanly, with its index");
    let track = |label: &str| {
        summary
            .tracks
            .iter()
            .find(|t| t.track.label == label)
            .unwrap_or_else(|| panic!("no {label} track in {summary}"))
    };
    let screen = track(&format!("screen-{dave_id}"));
    assert!(screen.frames > 30, "{summary}");
    assert!(screen.keyframes >= 1, "{summary}");
    let voice = track("voice-mix");
    assert!(
        voice.frames > 100,
        "about 50 voice packets a second: {summary}"
    );
    let events = arf_events(&rec.arf_path);
    assert_eq!(events[0].0, "session_view", "{events:?}");

    // Then exported (SYS5).
    let rows = newest_once_not(store, RecordingStatus::Processing).await;
    let rec = &rows[0];
    assert_eq!(rec.status, RecordingStatus::Ready, "{:?}", rec.error);
    let mp4 = rec.mp4_path.clone().unwrap();
    crate::common::check_exported_mp4(&mp4, rec.duration_ms.unwrap());
    let bytes = std::fs::read(&mp4).unwrap();
    // And served to its owner with byte ranges.
    let r = reqwest::Client::new()
        .get(format!("{}/api/recordings/{}/mp4", t.base, rec.id))
        .bearer_auth(&carol.token)
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &bytes[..100]);
    assert!(
        events
            .iter()
            .any(|(k, j)| k == "chat" && j.contains("this is on the record")),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_automatic_recording_every_session_records_after_consent_and_csrs_cannot_stop_it() {
    let t = TestServer::start().await;
    let admin = t.account("admin", AccountRole::Admin).await;
    let carol = t.account("carol", AccountRole::Csr).await;

    // R3: the admin's settings say which recorder and whether recording is automatic.
    let (status, settings) = t.get("/api/settings", Some(&carol.token)).await;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(settings["automatic_recording"], false, "{settings}");
    assert_eq!(settings["default_recorder"], "network", "{settings}");
    let mut local = settings.clone();
    local["default_recorder"] = json!("local");
    let (status, body) = t.put("/api/settings", Some(&admin.token), local).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("recorder_not_available"))
    );
    assert!(
        body["detail"].as_str().unwrap().contains("not available"),
        "{body}"
    );
    let mut automatic = settings.clone();
    automatic["automatic_recording"] = json!(true);
    let (status, body) = t
        .put("/api/settings", Some(&carol.token), automatic.clone())
        .await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    let (status, body) = t.put("/api/settings", Some(&admin.token), automatic).await;
    assert_eq!(status, 200, "{body}");
    let (_, settings) = t.get("/api/settings", Some(&admin.token)).await;
    assert_eq!(settings["automatic_recording"], true, "{settings}");
    assert_eq!(settings["default_recorder"], "network", "{settings}");

    // A new session says so, and asks Dave as he joins; nothing records before he answers.
    let s = t.start_session(&carol, "Automatic").await;
    let sid = s["session"]["id"].as_str().unwrap().to_string();
    let mut csr = t.connect(&s).await;
    assert_eq!(csr.welcome["session"]["automatic_recording"], true);
    let c = t
        .join_by_number(s["session"]["number"].as_str().unwrap(), "Dave")
        .await;
    let mut dave = t.connect(&c).await;
    let asked = dave.welcome["session"]["pending_consents"][0].clone();
    assert_eq!(asked["activity"], "recording", "{}", dave.welcome);
    assert_eq!(asked["customer"], dave.id());
    assert_eq!(dave.welcome["session"]["activities"], json!([]));
    assert!(
        t.server().store.recordings(None).await.unwrap().is_empty(),
        "recorded before consent"
    );
    csr.event_where("consent_requested", |e| e["activity"] == "recording")
        .await;
    crate::common::allow(&mut csr, &mut dave, &asked).await;

    // Recording now, and the CSR cannot stop it.
    let store = &t.server().store;
    let mut rows = Vec::new();
    eventually("the recording is listed", || {
        rows = futures_now(store.recordings(None));
        !rows.is_empty()
    })
    .await;
    assert_eq!(rows[0].status, RecordingStatus::Recording);
    assert_eq!(rows[0].session_id.map(|s| s.to_string()), Some(sid.clone()));
    let refused = csr
        .request(json!({"type": "stop_activity", "activity": "recording"}))
        .await;
    assert_eq!(refused["code"], "recording_automatic", "{refused}");
    assert!(
        refused["detail"].as_str().unwrap().contains("automatic"),
        "{refused}"
    );
    csr.cmd(json!({"type": "chat", "text": "still on the record"}))
        .await
        .unwrap();
    let (_, listed) = t.get("/api/recordings", Some(&carol.token)).await;
    assert_eq!(listed["recordings"][0]["status"], "recording", "{listed}");

    // It ends with the session and is stored, owned by Carol, holding what was said. Nothing
    // was shared and nobody spoke, so there is no MP4 to make of it, and the row says why.
    csr.cmd(json!({"type": "end_session", "confirm": true}))
        .await
        .unwrap();
    newest_once_not(store, RecordingStatus::Recording).await;
    let rows = newest_once_not(store, RecordingStatus::Processing).await;
    let rec = &rows[0];
    assert_eq!(rec.status, RecordingStatus::Failed, "{:?}", rec.error);
    assert!(
        rec.error
            .as_deref()
            .is_some_and(|e| e.contains("no audio or video")),
        "{:?}",
        rec.error
    );
    assert_eq!(rec.owner.to_string(), carol.id);
    let (status, got) = t
        .get(&format!("/api/recordings/{}", rec.id), Some(&carol.token))
        .await;
    assert_eq!(status, 200, "{got}");
    let events = arf_events(&rec.arf_path);
    assert!(
        events
            .iter()
            .any(|(k, j)| k == "chat" && j.contains("still on the record")),
        "{events:?}"
    );
    assert!(
        events.iter().any(|(k, j)| k == "activity_stopped"
            && j.contains("recording")
            && j.contains("session_ended")),
        "{events:?}"
    );
}

/// The session events an ARF file holds, as (kind, JSON).
fn arf_events(path: &std::path::Path) -> Vec<(String, String)> {
    let mut reader = Reader::open(path).unwrap();
    reader
        .records()
        .filter_map(|r| match r.unwrap() {
            Record::Event(e) => Some((e.kind, e.json)),
            _ => None,
        })
        .collect()
}
