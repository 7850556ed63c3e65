//! Interoperability with a WebRTC stack other than the browsers' and str0m: aiortc (Python, from
//! PyPI, pinned in tests/interop/requirements.txt and installed by scripts/python-packages.sh)
//! as a customer with max-bundle, through the real HTTP and WebSocket signalling. aiortc reads
//! ICE candidates per m-section; before the server named its candidate in every m-section and
//! ended them (media/src/sdp_candidates.rs), it never connected.

use std::path::PathBuf;
use std::process::Stdio;

use crate::common::phone::{Phone, eventually};
use crate::common::{PATIENCE, TestServer};
use serde_json::{Value, json};
use tandem::store::AccountRole;
use tandem_media::testkit::sim::camera;
use tokio::process::Command;

/// The Python of the environment scripts/python-packages.sh makes.
fn interop_python() -> PathBuf {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/interop-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/python-packages.sh (test.sh does)",
        python.display()
    );
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aiortc_customer_with_max_bundle_connects_and_receives_voice_and_video() {
    let python = interop_python();
    let t = TestServer::start().await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let s = t.start_session(&carol, "Interop").await;
    let mut csr = t.connect(&s).await;
    // The CSR speaks in the voice call with her camera on: audio and video for the customer.
    csr.cmd(json!({"type": "start_voice_call"})).await.unwrap();
    csr.cmd(json!({"type": "start_camera"})).await.unwrap();
    let csr_phone = Phone::connect_with_video(&mut csr, 440.0, vec![camera()]).await;
    eventually("the CSR is connected", || csr_phone.connected()).await;

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/aiortc_customer.py"
    );
    let number = s["session"]["number"].as_str().unwrap();
    let run = Command::new(python)
        .args([script, &t.base, number, &PATIENCE.as_secs().to_string()])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    // Its own patience, and time to start Python and load aiortc.
    let out = tokio::time::timeout(PATIENCE * 3, run)
        .await
        .expect("the aiortc customer ends")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the aiortc customer failed: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("no report ({e}): {stdout}\n{stderr}"));
    let summary = json!({
        "connection_state": report["connection_state"],
        "ice_connection_state": report["ice_connection_state"],
        "dtls_states": report["dtls_states"],
        "packets": report["packets"],
        "frames": report["frames"],
        "channels_open": report["channels_open"],
        "server_offers_answered": report["server_offers_answered"],
        "errors": report["errors"],
        "stderr": stderr,
    });
    println!("the aiortc customer's report: {summary:#}");

    // What a user notices: connected (ICE and DTLS), hearing and seeing the CSR, data channels
    // open.
    assert_eq!(report["connection_state"], "connected", "{summary:#}");
    assert_eq!(report["dtls_states"], json!(["connected"]), "{summary:#}");
    assert!(
        report["packets"]["audio"].as_u64().unwrap() >= 50,
        "{summary:#}"
    );
    assert!(
        report["packets"]["video"].as_u64().unwrap() >= 10,
        "{summary:#}"
    );
    assert_eq!(
        report["channels_open"],
        json!(["annotation", "control", "pointer"]),
        "{summary:#}"
    );
    // Why: each SDP of the server's names its candidate in every m-section and ends them, the
    // answer and the offer that brought the CSR's video alike.
    let answer = report["answer_sdp"].as_str().unwrap();
    assert_candidates_everywhere(answer);
    assert!(answer.matches("\nm=").count() >= 3, "{answer}");
    let offers = report["server_offer_sdps"].as_array().unwrap();
    assert!(!offers.is_empty(), "{summary:#}");
    for offer in offers {
        assert_candidates_everywhere(offer.as_str().unwrap());
    }
}

/// Every m-section of `sdp` that is not rejected (port 0) has a candidate and ends them.
fn assert_candidates_everywhere(sdp: &str) {
    for section in sdp.split("\r\nm=").skip(1) {
        if section.split_ascii_whitespace().nth(1) == Some("0") {
            continue;
        }
        let lines: Vec<&str> = section.lines().collect();
        assert!(
            lines.iter().any(|l| l.starts_with("a=candidate:")),
            "an m-section without the server's candidate: m={section}\n\nin:\n{sdp}"
        );
        assert!(
            lines.contains(&"a=end-of-candidates"),
            "an m-section without a=end-of-candidates: m={section}\n\nin:\n{sdp}"
        );
    }
}
