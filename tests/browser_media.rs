//! The media path in a real browser: headless Chromium (Debian's /usr/bin/chromium, driven by
//! playwright-core) joins sessions through the real API, WebSocket and UDP media path. The
//! checks themselves are in tests/e2e/*.mjs; this starts the server and runs them.

mod common;

use common::TestServer;
use common::browser::run_script;
use tandem::store::AccountRole;

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
