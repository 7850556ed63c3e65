//! `/metrics` as Prometheus reads it: a server with the default configuration is used as people
//! use it (HTTP, a session over WebSocket with a WebRTC voice call, a softphone registering with
//! digest and a phone calling in, over sipp), then what it serves is checked by `promtool check
//! metrics` (Debian's `prometheus` package), which fails on any problem: a metric without HELP,
//! a histogram exported as a summary, a bad name. Also: every counter is there before its first
//! event, and the media workers' gauges are labelled by index, not address.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::json;
use tandem::store::AccountRole;

use crate::common::TestServer;
use crate::common::phone::{Phone, eventually};
use crate::sip::{assert_ok, finished, phone_joins, scenario, set_sip_password, sip_addr, sipp};

/// `promtool check metrics` on `text`: what it reported, if anything.
fn promtool_problems(text: &str) -> Option<String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(
            "promtool is missing: install Debian's `prometheus` package (scripts/system-packages.sh does)",
        );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (!out.status.success() || !said.trim().is_empty())
        .then(|| format!("promtool exited {:?}:\n{said}", out.status))
}

#[tokio::test(flavor = "multi_thread")]
async fn promtool_finds_nothing_wrong_in_metrics_of_a_server_in_use() {
    // The default configuration, digest algorithms included: sipp answers only MD5 and takes
    // the first challenge (as baresip 1.x takes none but MD5), so registering is also the
    // check that the default challenge is one such phones accept.
    let t = TestServer::start().await;

    // Before anything happened: counters are there at 0, labelled by every value they take.
    let at_start = t.metrics().await;
    for series in [
        "tandem_sip_auth_total{method=\"REGISTER\",result=\"wrong_password\"} ",
        "tandem_journal_failures_total ",
        "tandem_sip_rtp_dropped_total{reason=\"wrong_address\"} ",
        "tandem_media_dropped_by_policy_total{reason=\"not_in_control\"} ",
        "tandem_http_connections_refused_total{reason=\"full\"} ",
    ] {
        assert!(
            at_start.lines().any(|l| l.starts_with(series)),
            "{series}is not there at start:\n{at_start}"
        );
    }

    // HTTP, a session over WebSocket and a voice call over WebRTC.
    let carol = t.account("carol", AccountRole::Csr).await;
    let session = t.start_session(&carol, "Metrics").await;
    let number = session["session"]["number"].as_str().unwrap().to_string();
    let mut csr = t.connect(&session).await;
    csr.chat("hello", None).await.unwrap();
    csr.cmd(json!({"type": "start_voice_call"})).await.unwrap();
    let csr_phone = Phone::connect(&mut csr, 440.0).await;
    eventually("the CSR's media is connected", || csr_phone.connected()).await;

    // A softphone registers with the default digest challenge; a phone calls in and hangs up.
    let sip = sip_addr(&t);
    set_sip_password(&t, &carol, "carol softphone 42").await;
    let args = [
        "-key",
        "account",
        "carol",
        "-au",
        "carol",
        "-ap",
        "carol softphone 42",
    ];
    let register = sipp(sip, &scenario("register.xml"), "x", &args);
    assert_ok(
        "a softphone registers with the default challenge",
        sip,
        &finished(register).await,
    );
    let call = sipp(sip, &scenario("hangup.xml"), &number, &["-d", "500"]);
    let phone = phone_joins(&mut csr).await;
    assert_ok("a call", sip, &finished(call).await);
    csr.event_where("participant_left", |e| e["participant"] == phone.as_str())
        .await;

    let text = t.metrics().await;
    for name in [
        "tandem_http_request_duration_seconds_bucket",
        "tandem_sip_registrations_total{result=\"ok\"} 1",
        "tandem_sip_requests_total",
        "tandem_media_peers{worker=\"0\"}",
        "tandem_sip_rtp_packets_total",
    ] {
        assert!(text.contains(name), "{name} is not in /metrics:\n{text}");
    }
    if let Some(problems) = promtool_problems(&text) {
        panic!("{problems}\n-- /metrics --\n{text}");
    }
}
