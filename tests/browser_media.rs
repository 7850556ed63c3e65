//! The media path in a real browser: headless Chromium (Debian's /usr/bin/chromium, driven by
//! playwright-core) joins sessions through the real API, WebSocket and UDP media path. The
//! checks themselves are in tests/e2e/*.mjs; this starts the server and runs them.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::TestServer;
use tandem::store::AccountRole;

/// Runs one browser script against `t` and fails with its report unless every check passed.
async fn run_script(t: &TestServer, script: &str, users: &[&str]) -> serde_json::Value {
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is needed (./test.sh installs it)"
    );
    let e2e = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e");
    assert!(
        std::path::Path::new(e2e)
            .join("node_modules/playwright-core")
            .exists(),
        "run `npm ci` in tests/e2e (./test.sh does)"
    );
    let run = tokio::process::Command::new("node")
        .arg(script)
        .arg(&t.base)
        .args(users)
        .arg("correct horse battery")
        .current_dir(e2e)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(150), run)
        .await
        .expect("the browser test finished in time")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}"))
        .unwrap_or_else(|_| panic!("no report from the browser test:\n{stdout}\n{stderr}"));
    assert!(
        out.status.success() && report["failures"].as_array().is_some_and(|f| f.is_empty()),
        "browser checks failed: {}\n{stderr}",
        report["failures"]
    );
    report
}

/// SPEC V1-V3: who hears whom, and a participant outside the call receives nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_participants_hear_exactly_whom_the_microphone_rule_allows() {
    let t = TestServer::start().await;
    t.account("carol", AccountRole::Csr).await;
    run_script(&t, "voice.mjs", &["carol"]).await;
}

/// SPEC D1, D12, D13, VI1, VI2, V3: a screen share reaches the CSR and an assistant, two cameras
/// are seen and a third is refused, each page hears only the microphone holders, annotations
/// reach everyone else and control input without control reaches nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_sees_the_share_and_the_allowed_cameras_only() {
    let t = TestServer::start().await;
    t.account("carol", AccountRole::Csr).await;
    t.account("ann", AccountRole::Csr).await;
    let report = run_script(&t, "video.mjs", &["carol", "ann"]).await;
    // The server's own count agrees: the refused camera's frames were dropped by policy.
    let metrics = t.metrics().await;
    assert!(
        metrics.contains("tandem_media_dropped_by_policy_total{reason=\"no_camera_right\"}"),
        "{report}"
    );
    assert!(metrics.contains("tandem_media_forwarded_frames_total"));
}
