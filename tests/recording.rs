//! Network recording of a live session over real UDP (SPEC S9, R1, R2): nothing is recorded
//! before the customer agrees; then the shared screen, the voice call and the session's events
//! go into an ARF file that the recordings list shows, and the recording ends with its activity;
//! it is then exported to a fast-start MP4 (H.264, AAC) of the recorded length (SYS5).

mod common;

use std::time::Duration;

use common::TestServer;
use common::phone::{Phone, eventually};
use serde_json::json;
use tandem::store::{AccountRole, RecordingStatus};
use tandem_media::sim::screen;
use tandem_recording::{Reader, Record};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consented_recording_holds_the_share_the_voice_and_the_events() {
    let t = TestServer::start().await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let other = t.account("olga", AccountRole::Csr).await;
    let s = t.start_session(&carol, "Recorded").await;
    let mut csr = t.connect(&s).await;
    let c = t
        .join_by_number(s["session"]["number"].as_str().unwrap(), "Dave")
        .await;
    let mut dave = t.connect(&c).await;
    let dave_id = dave.id();

    // A voice call with both holding a microphone, and Dave's screen shared after his consent.
    csr.cmd(json!({"type": "start_voice_call"})).await.unwrap();
    dave.cmd(json!({"type": "join_voice"})).await.unwrap();
    csr.cmd(json!({"type": "pass_microphone", "to": dave_id}))
        .await
        .unwrap();
    let _csr_phone = Phone::connect(&mut csr, 440.0).await;
    let dave_phone = Phone::connect_with_video(&mut dave, 1000.0, vec![screen()]).await;
    eventually("Dave is connected", || dave_phone.connected()).await;
    let asked = common::ask(&mut csr, &mut dave, "view_desktop").await;
    common::allow(&mut csr, &mut dave, &asked).await;
    let asked = common::ask(&mut csr, &mut dave, "recording").await;
    // S9: until Dave answers, nothing is recorded.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        t.server().store.recordings(None).await.unwrap().is_empty(),
        "recorded before consent"
    );
    common::allow(&mut csr, &mut dave, &asked).await;

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
    let mut rows = Vec::new();
    eventually("the recording is closed", || {
        rows = futures_now(store.recordings(None));
        rows.first()
            .is_some_and(|r| r.status != RecordingStatus::Recording)
    })
    .await;
    let rec = &rows[0];
    assert_ne!(rec.status, RecordingStatus::Failed, "{:?}", rec.error);
    let duration = rec.duration_ms.unwrap();
    assert!((3000..10_000).contains(&duration), "duration {duration} ms");
    assert!(rec.arf_bytes > 10_000, "{} bytes", rec.arf_bytes);

    // What the file holds.
    let summary = tandem_recording::inspect(&rec.arf_path).unwrap();
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
    let mut reader = Reader::open(&rec.arf_path).unwrap();
    let events: Vec<(String, String)> = reader
        .records()
        .filter_map(|r| match r.unwrap() {
            Record::Event(e) => Some((e.kind, e.json)),
            _ => None,
        })
        .collect();
    assert_eq!(events[0].0, "session_view", "{events:?}");

    // Then exported (SYS5).
    eventually("the recording is exported", || {
        rows = futures_now(store.recordings(None));
        rows[0].status != RecordingStatus::Processing
    })
    .await;
    let rec = &rows[0];
    assert_eq!(rec.status, RecordingStatus::Ready, "{:?}", rec.error);
    let mp4 = rec.mp4_path.clone().unwrap();
    let probe = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
        ])
        .arg(&mp4)
        .output()
        .expect("ffprobe runs (scripts/system-packages.sh installs ffmpeg)");
    let probe: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
    let codecs: Vec<_> = probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["codec_name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        codecs.contains(&"h264".to_string()) && codecs.contains(&"aac".to_string()),
        "{probe}"
    );
    let seconds: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let recorded = rec.duration_ms.unwrap() as f64 / 1000.0;
    assert!(
        (seconds - recorded).abs() <= 0.5,
        "MP4 {seconds} s, recorded {recorded} s"
    );
    // Fast-start: the index (moov) before the media (mdat), so playback starts at once.
    let bytes = std::fs::read(&mp4).unwrap();
    let at = |tag: &[u8]| bytes.windows(4).position(|w| w == tag).unwrap();
    assert!(at(b"moov") < at(b"mdat"), "moov after mdat");
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

/// Runs a store call to completion from a synchronous condition.
fn futures_now<T>(f: impl std::future::Future<Output = Result<T, tandem::store::StoreError>>) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f)).unwrap()
}
