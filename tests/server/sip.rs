//! Phones over SIP (SPEC V5, V1-V3, SYS4), with sipp (Debian's sip-tester) as the real phone on
//! loopback: it dials a live session and sends recorded speech (sipp's pcap play, which needs
//! raw sockets: these tests run as root, as CI does); a WebRTC participant hears it only once
//! the CSR passes the phone the microphone; BYE, CANCEL, 404, hold by re-INVITE, TCP, DTMF
//! entry at the service number; and malformed SIP over UDP and TCP.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::common::phone::{Phone, eventually};
use crate::common::{TestServer, Ws};
use serde_json::json;
use tandem::store::AccountRole;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sip")
        .join(name)
}

/// A port of 127.0.0.1 free for both UDP and TCP at the moment: sipp binds its SIP port for
/// either transport, and a test that holds thousands of TCP connections has many ports that
/// UDP would call free taken as TCP's (sipp then fails with "Address already in use").
fn free_udp_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Runs sipp as one phone making one call of `scenario` to `number` at `sip`; `extra` adds
/// arguments (`-t t1` for TCP, `-d` for the pause). Bounded by sipp's own timeout.
pub(crate) fn sipp(
    sip: SocketAddr,
    scenario: &Path,
    number: &str,
    extra: &[&str],
) -> tokio::process::Child {
    sipp_on(free_udp_port(), sip, scenario, number, extra)
}

/// [`sipp`] on SIP port `port` (a softphone Tandem is to ring listens there).
fn sipp_on(
    port: u16,
    sip: SocketAddr,
    scenario: &Path,
    number: &str,
    extra: &[&str],
) -> tokio::process::Child {
    let mut cmd = tokio::process::Command::new("sipp");
    cmd.arg(sip.to_string())
        .arg("-sf")
        .arg(scenario)
        .args([
            "-s",
            number,
            "-m",
            "1",
            "-l",
            "1",
            "-i",
            "127.0.0.1",
            "-mi",
            "127.0.0.1",
        ])
        .args(["-p", &port.to_string()])
        .args(["-mp", &free_udp_port().to_string()])
        .args(["-timeout", "90s", "-timeout_error", "-nostdin"])
        .args(["-trace_err", "-error_file"])
        .arg(log(&sip, "errors"))
        .args(["-trace_msg", "-message_file"])
        .arg(log(&sip, "messages"))
        .args(extra)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    cmd.spawn()
        .expect("sipp is installed (scripts/system-packages.sh)")
}

/// Where sipp writes what it saw for the endpoint at `sip` (shown when a call fails).
fn log(sip: &SocketAddr, what: &str) -> PathBuf {
    std::env::temp_dir().join(format!("tandem-sipp-{}-{what}.log", sip.port()))
}

pub(crate) async fn finished(child: tokio::process::Child) -> Output {
    tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("sipp finishes")
        .unwrap()
}

pub(crate) fn assert_ok(what: &str, sip: SocketAddr, out: &Output) {
    let tail = |what: &str| {
        let text = std::fs::read_to_string(log(&sip, what)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    };
    assert!(
        out.status.success(),
        "{what}: sipp failed ({:?})\n-- errors --\n{}\n-- messages --\n{}\n-- screen --\n{}\n{}",
        out.status,
        tail("errors"),
        tail("messages"),
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub(crate) fn sip_addr(t: &TestServer) -> SocketAddr {
    t.server().sip.as_ref().expect("SIP is enabled").addr
}

/// The sum of a metric's samples whose labels contain all of `labels`.
fn metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.split(['{', ' ']).next() == Some(name) && labels.iter().all(|x| l.contains(x))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Gives `account` (signed in with the test password) the SIP password `password`.
pub(crate) async fn set_sip_password(
    t: &TestServer,
    account: &crate::common::Account,
    password: &str,
) {
    let (status, body) = t
        .put(
            &format!("/api/users/{}/sip", account.id),
            Some(&account.token),
            json!({"password": password, "current_password": "correct horse battery"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// Waits for the phone to join the session; answers its participant id.
pub(crate) async fn phone_joins(ws: &mut Ws) -> String {
    let joined = ws
        .event_where("participant_joined", |e| {
            e["participant"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("(phone)"))
        })
        .await;
    joined["participant"]["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_phone_in_the_call_is_heard_only_once_it_holds_the_microphone() {
    let t = TestServer::start_with(&[("TANDEM_MEDIA_WORKERS", "1")]).await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let session = t.start_session(&carol, "Phone support").await;
    let number = session["session"]["number"].as_str().unwrap().to_string();
    let mut csr = t.connect(&session).await;
    csr.cmd(json!({"type": "start_voice_call"})).await.unwrap();
    let csr_phone = Phone::connect(&mut csr, 440.0).await;
    eventually("the CSR's media is connected", || csr_phone.connected()).await;

    let sip = sip_addr(&t);
    let call = sipp(sip, &scenario("call_until_bye.xml"), &number, &[]);
    let phone = phone_joins(&mut csr).await;
    // V2: the phone joins the call that is running.
    csr.event_where("voice_joined", |e| e["participant"] == phone.as_str())
        .await;
    // The phone's speech reaches the server...
    let before = metric(&t.metrics().await, "tandem_sip_rtp_packets_total", &["in"]);
    let mut m = 0.0;
    for _ in 0..100 {
        m = metric(&t.metrics().await, "tandem_sip_rtp_packets_total", &["in"]);
        if m > before + 50.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        m > before + 50.0,
        "the phone's RTP arrives ({before} -> {m})"
    );
    // ...but without the microphone nobody hears it (V3).
    assert!(
        csr_phone.loudness() < 100.0,
        "the CSR hears the phone before it holds a microphone: {}",
        csr_phone.loudness()
    );
    // The phone hears the CSR (who holds the microphone): Tandem sends it audio.
    let out_before = metric(&t.metrics().await, "tandem_sip_rtp_packets_total", &["out"]);
    let mut out = out_before;
    for _ in 0..100 {
        out = metric(&t.metrics().await, "tandem_sip_rtp_packets_total", &["out"]);
        if out > out_before + 25.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(out > out_before + 25.0, "the phone is sent the CSR's voice");

    csr.cmd(json!({"type": "pass_microphone", "to": phone}))
        .await
        .unwrap();
    eventually("the CSR hears the phone", || csr_phone.loudness() > 300.0).await;

    // The CSR ends the session: Tandem hangs up the phone with BYE, which sipp answers.
    csr.cmd(json!({"type": "end_session", "confirm": true}))
        .await
        .unwrap();
    assert_ok("the call until BYE", sip, &finished(call).await);
    let mut active = f64::MAX;
    for _ in 0..100 {
        active = metric(&t.metrics().await, "tandem_sip_calls_active", &[]);
        if active == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(active, 0.0, "no call is left");
}

#[tokio::test(flavor = "multi_thread")]
async fn phones_hang_up_hold_cancel_and_get_404_for_unknown_sessions() {
    let t = TestServer::start_with(&[("TANDEM_SIP_RING_MS", "4000")]).await;
    let sip = sip_addr(&t);
    let carol = t.account("carol", AccountRole::Csr).await;
    let session = t.start_session(&carol, "Phones").await;
    let number = session["session"]["number"].as_str().unwrap().to_string();
    let mut csr = t.connect(&session).await;

    // A call over UDP that puts Tandem on hold and back (the answers' directions are checked
    // by the scenario), then hangs up: the phone joins and leaves the session.
    let call = sipp(sip, &scenario("hangup.xml"), &number, &["-d", "1000"]);
    let phone = phone_joins(&mut csr).await;
    assert_ok("a call over UDP", sip, &finished(call).await);
    csr.event_where("participant_left", |e| e["participant"] == phone.as_str())
        .await;

    // The same over TCP.
    let call = sipp(
        sip,
        &scenario("hangup.xml"),
        &number,
        &["-d", "500", "-t", "t1"],
    );
    let phone = phone_joins(&mut csr).await;
    assert_ok("a call over TCP", sip, &finished(call).await);
    csr.event_where("participant_left", |e| e["participant"] == phone.as_str())
        .await;

    // Given up while ringing: 200 for the CANCEL, 487 for the INVITE; nobody joined.
    let call = sipp(sip, &scenario("cancel.xml"), &number, &[]);
    assert_ok("CANCEL while ringing", sip, &finished(call).await);

    // No live session has this number: 404.
    let call = sipp(sip, &scenario("refused.xml"), "999999999", &[]);
    assert_ok("an unknown session", sip, &finished(call).await);
    let (_, view) = t
        .get(
            &format!(
                "/api/sessions/{}",
                session["session"]["id"].as_str().unwrap()
            ),
            Some(&carol.token),
        )
        .await;
    let phones = view["participants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"].as_str().is_some_and(|n| n.ends_with("(phone)")))
        .count();
    assert_eq!(phones, 0, "the cancelled call never joined: {view}");
}

/// The service number's scenario for this session number: keyed in by RFC 4733 events (sipp's
/// play_dtmf), then
/// the call stays until Tandem hangs up (answering a re-INVITE that moves its audio).
pub(crate) fn dtmf_scenario(dir: &Path, digits: &str) -> PathBuf {
    let base = std::fs::read_to_string(scenario("call_until_bye.xml")).unwrap();
    let keyed = base.replace(
        "<label id=\"1\"/>\n  <nop><action><exec play_pcap_audio=\"/usr/share/sip-tester/g711a.pcap\"/></action></nop>",
        &format!(
            "<pause milliseconds=\"1500\"/>\n  <nop><action><exec play_dtmf=\"{digits}#\"/></action></nop>\n  <label id=\"1\"/>"
        ),
    );
    assert_ne!(base, keyed, "the scenario has its media step");
    // sipp's play_dtmf sends telephone events as payload type 96.
    let keyed = keyed
        .replace("RTP/AVP 8 101", "RTP/AVP 8 96")
        .replace(
            "a=rtpmap:101 telephone-event/8000",
            "a=rtpmap:96 telephone-event/8000",
        )
        .replace("a=fmtp:101 0-15", "a=fmtp:96 0-15");
    let path = dir.join("dtmf.xml");
    std::fs::write(&path, keyed).unwrap();
    path
}

/// A session of `csr` whose call is on another media worker than the first (the service
/// number's prompt's), so a phone that keys its number in has its audio moved there (Tandem
/// re-INVITEs it). The server needs two workers.
pub(crate) async fn session_off_the_first_worker(
    t: &TestServer,
    csr: &crate::common::Account,
    topic: &str,
) -> serde_json::Value {
    let first = t.server().media.first().address;
    loop {
        let s = t.start_session(csr, topic).await;
        let id: tandem_actors::ids::SessionId =
            s["session"]["id"].as_str().unwrap().parse().unwrap();
        if t.server().media.for_session(id).address != first {
            return s;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_service_number_takes_the_session_number_by_keypad() {
    let t = TestServer::start_with(&[("TANDEM_MEDIA_WORKERS", "2")]).await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let session = session_off_the_first_worker(&t, &carol, "Keyed in").await;
    let number = session["session"]["number"].as_str().unwrap().to_string();
    let mut csr = t.connect(&session).await;
    csr.cmd(json!({"type": "start_voice_call"})).await.unwrap();
    let sent_invites = metric(
        &t.metrics().await,
        "tandem_sip_requests_sent_total",
        &["INVITE"],
    );

    let scenario = dtmf_scenario(&t.dir, &number);
    let sip = sip_addr(&t);
    let call = sipp(sip, &scenario, "100", &[]);
    let phone = phone_joins(&mut csr).await;
    csr.event_where("voice_joined", |e| e["participant"] == phone.as_str())
        .await;
    let moved = metric(
        &t.metrics().await,
        "tandem_sip_requests_sent_total",
        &["INVITE"],
    );
    assert!(
        moved > sent_invites,
        "Tandem moved the phone's audio with a re-INVITE"
    );
    csr.cmd(json!({"type": "end_session", "confirm": true}))
        .await
        .unwrap();
    assert_ok("the keyed-in call", sip, &finished(call).await);
}

fn options(branch: &str, call_id: &str) -> String {
    format!(
        "OPTIONS sip:100@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK{branch}\r\n\
         From: <sip:probe@127.0.0.1>;tag=1\r\n\
         To: <sip:100@127.0.0.1>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

async fn udp_exchange(sock: &tokio::net::UdpSocket, to: SocketAddr, msg: &[u8]) -> Option<String> {
    sock.send_to(msg, to).await.unwrap();
    let mut buf = vec![0u8; 65_536];
    match tokio::time::timeout(Duration::from_millis(1500), sock.recv_from(&mut buf)).await {
        Ok(Ok((n, _))) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_sip_is_refused_or_dropped_counted_and_harms_no_call() {
    let t = TestServer::start().await;
    let sip = sip_addr(&t);
    let carol = t.account("carol", AccountRole::Csr).await;
    let session = t.start_session(&carol, "Under fire").await;
    let number = session["session"]["number"].as_str().unwrap().to_string();
    let mut csr = t.connect(&session).await;
    // A call in progress all along.
    let call = sipp(sip, &scenario("hangup.xml"), &number, &["-d", "4000"]);
    phone_joins(&mut csr).await;

    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let ok = udp_exchange(&sock, sip, options("a1", "ok-1").as_bytes())
        .await
        .expect("OPTIONS is answered");
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert!(
        ok.contains("Allow: INVITE, ACK, BYE, CANCEL, OPTIONS"),
        "{ok}"
    );

    let before = metric(&t.metrics().await, "tandem_sip_malformed_total", &[]);
    // A Content-Length longer than the body: 400.
    let long = options("a2", "bad-len").replace("Content-Length: 0", "Content-Length: 999");
    let r = udp_exchange(&sock, sip, long.as_bytes())
        .await
        .expect("answered");
    assert!(r.starts_with("SIP/2.0 400"), "{r}");
    // Without a Call-ID it cannot be answered: dropped.
    let no_call_id = options("a3", "x").replace("Call-ID: x\r\n", "");
    assert_eq!(udp_exchange(&sock, sip, no_call_id.as_bytes()).await, None);
    // Garbage and a huge datagram: dropped.
    assert_eq!(
        udp_exchange(&sock, sip, b"\x16\x03\x01 not sip at all").await,
        None
    );
    let mut huge = options("a4", "huge").into_bytes();
    huge.resize(60_000, b'x');
    assert_eq!(udp_exchange(&sock, sip, &huge).await, None);
    // An INVITE whose From has no tag: 400.
    let untagged = options("a5", "no-tag")
        .replace("OPTIONS", "INVITE")
        .replace(";tag=1", "");
    let r = udp_exchange(&sock, sip, untagged.as_bytes())
        .await
        .expect("answered");
    assert!(r.starts_with("SIP/2.0 400"), "{r}");

    // Over TCP: a bad Content-Length ends that connection only.
    let mut tcp = tokio::net::TcpStream::connect(sip).await.unwrap();
    let bad = options("t1", "tcp-bad").replace("Content-Length: 0", "Content-Length: many");
    tcp.write_all(bad.as_bytes()).await.unwrap();
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .expect("the connection is closed")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
    // A well-formed request on a new connection is answered.
    let mut tcp = tokio::net::TcpStream::connect(sip).await.unwrap();
    let good = options("t2", "tcp-ok").replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    tcp.write_all(good.as_bytes()).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("SIP/2.0 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );

    let after = metric(&t.metrics().await, "tandem_sip_malformed_total", &[]);
    assert!(
        after >= before + 5.0,
        "malformed messages are counted ({before} -> {after})"
    );
    // The call in progress went on to its end.
    assert_ok("the call during the attack", sip, &finished(call).await);
}

mod baresip;
mod consent;
mod limits;
mod softphone;
