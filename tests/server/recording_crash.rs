//! A server killed with SIGKILL in the middle of a recording (SPEC R2; ARF's crash-safety): the
//! real `tandem` binary records a session with a screen share and a voice call, is killed, and
//! is started again on the same data. The recording is then closed from what its file holds
//! (everything up to about the last second before the kill), listed with that duration, and
//! exported to MP4.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::Ws;
use crate::common::phone::{Phone, eventually};
use serde_json::{Value, json};
use tandem_media::testkit::sim::screen;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const PASSWORD: &str = "correct horse battery";

pub(crate) fn tandem(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tandem"));
    c.current_dir(dir)
        .env("TANDEM_STORAGE_DATABASE", dir.join("tandem.db"))
        .env("TANDEM_AUTH_SECRET_FILE", dir.join("secret.key"))
        .env("TANDEM_RECORDING_DIR", dir.join("recordings"))
        .env("TANDEM_MEDIA_WORKERS", "1")
        .env("TANDEM_SIP_LISTEN", "127.0.0.1:0")
        .kill_on_drop(true);
    c
}

/// Starts `tandem serve` on a free port; answers the process and its base URL.
pub(crate) async fn serve(dir: &Path) -> (Child, String) {
    let mut child = tandem(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("Tandem is listening on ") {
                return url.to_string();
            }
        }
        panic!("the server said nothing");
    })
    .await
    .expect("the server starts");
    (child, base)
}

async fn post(base: &str, path: &str, token: Option<&str>, body: Value) -> Value {
    let mut r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

/// Carol's sign-in token on the server at `base`.
pub(crate) async fn login(base: &str) -> String {
    let login = post(
        base,
        "/api/login",
        None,
        json!({"username": "carol", "password": PASSWORD}),
    )
    .await;
    login["token"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_survives_kill_9_up_to_its_last_second() {
    let dir = tempfile::tempdir().unwrap();
    let add = tandem(dir.path())
        .args(["user", "add", "--username", "carol", "--role", "csr"])
        .args(["--email", "carol@example.com"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use tokio::io::AsyncWriteExt;
        let mut add = add;
        add.stdin
            .take()
            .unwrap()
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .await
            .unwrap();
        assert!(add.wait().await.unwrap().success());
    }

    let (mut server, base) = serve(dir.path()).await;
    let token = login(&base).await;
    let s = post(
        &base,
        "/api/sessions",
        Some(&token),
        json!({"topic": "Crash"}),
    )
    .await;
    let mut csr = Ws::connect(&base, s["token"].as_str().unwrap()).await;
    let c = post(
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
    let (mut server, base) = serve(dir.path()).await;
    // Closed from its file, then exported from it (the export notes the early end).
    let token = login(&base).await;
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
