//! Runs the browser scripts of tests/e2e (playwright-core driving Debian's Chromium) against a
//! test server.

use std::process::Stdio;
use std::time::Duration;

use super::TestServer;

/// Runs one browser script against `t` and fails with its report unless every check passed.
pub async fn run_script(t: &TestServer, script: &str, users: &[&str]) -> serde_json::Value {
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
