//! A server killed with SIGKILL in the middle of a recording (SPEC R2; ARF's crash-safety): the
//! real `tandem` binary records a session with a screen share and a voice call, is killed, and
//! is started again on the same data. The recording is then closed from what its file holds
//! (everything up to about the last second before the kill), listed with that duration, and
//! exported to MP4.

use std::time::{Duration, Instant};

use crate::common::Ws;
use crate::common::phone::{Phone, eventually};
use crate::common::process::{add_csr, login, post, serve, tandem};
use serde_json::{Value, json};
use tandem_media::testkit::sim::screen;

/// POSTs and expects success.
async fn posted(base: &str, path: &str, token: Option<&str>, body: Value) -> Value {
    let (status, answer) = post(base, path, token, body).await;
    assert!((200..300).contains(&status), "{path}: {status} {answer}");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_survives_kill_9_up_to_its_last_second() {
    let dir = tempfile::tempdir().unwrap();
    add_csr(tandem(dir.path()), "carol").await;

    let (mut server, base) = serve(tandem(dir.path())).await;
    let token = login(&base, "carol").await;
    let s = posted(
        &base,
        "/api/sessions",
        Some(&token),
        json!({"topic": "Crash"}),
    )
    .await;
    let mut csr = Ws::connect(&base, s["token"].as_str().unwrap()).await;
    let c = posted(
        &base,
        "/api/join",
        None,
        json!({"number": s["session"]["number"], "name": "Dave"}),
    )
    .await;
    let mut dave = Ws::connect(&base, c["token"].as_str().unwrap()).await;
    csr.cmd(json!({"type": "start_voice_call"})).await.unwrap();
    dave.cmd(json!({"type": "join_voice"})).await.unwrap();
    let _csr_phone = Phone::connect(&mut csr, 440.0).await;
    let dave_phone = Phone::connect_with_video(&mut dave, 1000.0, vec![screen()]).await;
    eventually("Dave is connected", || dave_phone.connected()).await;
    for activity in ["view_desktop", "recording"] {
        let asked = crate::common::ask(&mut csr, &mut dave, activity).await;
        crate::common::allow(&mut csr, &mut dave, &asked).await;
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    server.start_kill().unwrap(); // SIGKILL
    let recorded = started.elapsed();
    server.wait().await.unwrap();
    drop((csr, dave, dave_phone));

    // The file as the killed server left it: no index, readable to its last block.
    let arf = std::fs::read_dir(dir.path().join("recordings"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "arf"))
        .expect("the recording's file");
    let summary = tandem_arf::inspect(&arf).unwrap();
    assert_eq!(summary.index, tandem_arf::IndexSource::Rebuilt, "{summary}");
    let screen = summary
        .tracks
        .iter()
        .find(|t| t.track.label.starts_with("screen-"))
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(screen.frames > 20, "{summary}");
    // Up to about the last second before the kill (a block is written at least every second).
    let kept = Duration::from_micros(summary.duration_us);
    assert!(
        kept + Duration::from_millis(1500) >= recorded,
        "only {kept:?} of {recorded:?} survived: {summary}"
    );

    // Started again: the recording is closed from its file and listed with that duration.
    let (mut server, base) = serve(tandem(dir.path())).await;
    // Closed from its file, then exported from it (the export notes the early end).
    let token = login(&base, "carol").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let rec = loop {
        let list: Value = reqwest::Client::new()
            .get(format!("{base}/api/recordings"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let rec = list["recordings"][0].clone();
        assert_ne!(rec["status"], "recording", "{list}");
        assert_ne!(rec["status"], "failed", "{list}");
        if rec["status"] == "ready" {
            break rec;
        }
        assert!(Instant::now() < deadline, "not exported: {list}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let duration = rec["duration_ms"].as_u64().unwrap();
    assert_eq!(duration, summary.duration_us / 1000, "{rec}");
    assert!(rec["mp4_bytes"].as_u64().unwrap() > 1000, "{rec}");
    server.start_kill().unwrap();
    server.wait().await.unwrap();
}
