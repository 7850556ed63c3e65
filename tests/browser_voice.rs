//! SPEC V1-V3, SYS3 in a real browser: headless Chromium (Debian's /usr/bin/chromium, driven by
//! playwright-core) joins a voice call through the real API, WebSocket and UDP media path.
//! The checks themselves are in tests/e2e/voice.mjs; this starts the server and runs it.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::TestServer;
use tandem::store::AccountRole;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_participants_hear_exactly_whom_the_microphone_rule_allows() {
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
    let t = TestServer::start().await;
    t.account("carol", AccountRole::Csr).await;
    let run = tokio::process::Command::new("node")
        .arg("voice.mjs")
        .arg(&t.base)
        .arg("carol")
        .arg("correct horse battery")
        .current_dir(e2e)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the browser test finished within two minutes")
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
}
