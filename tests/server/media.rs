//! The voice call over real UDP on loopback: str0m clients (ICE, DTLS, SRTP, Opus, as a browser
//! would) negotiate over their participant WebSocket, and the session's microphone rule decides
//! who is heard (SPEC V1, V2, V3, SYS2, SYS3).

use std::net::SocketAddr;
use std::time::Duration;

use crate::common::TestServer;
use crate::common::phone::{Phone, eventually, two_party_call};
use serde_json::json;
use tandem::store::AccountRole;

const PRESENT: f64 = 1e11;
const ABSENT: f64 = 1e7;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_microphone_rule_decides_who_is_heard_over_real_udp() {
    let t = TestServer::start().await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let s = t.start_session(&carol, "Voice").await;
    let mut csr = t.connect(&s).await;
    let c = t
        .join_by_number(s["session"]["number"].as_str().unwrap(), "Dave")
        .await;
    let mut dave = t.connect(&c).await;
    let e = t
        .join_by_number(s["session"]["number"].as_str().unwrap(), "Erin")
        .await;
    let mut erin = t.connect(&e).await;

    // V1: the CSR starts the call and holds the microphone; Dave joins it (V2); Erin does not.
    csr.cmd(json!({"type": "start_voice_call"})).await.unwrap();
    dave.cmd(json!({"type": "join_voice"})).await.unwrap();
    let csr_phone = Phone::connect(&mut csr, 440.0).await;
    let dave_phone = Phone::connect(&mut dave, 1000.0).await;
    let erin_phone = Phone::connect(&mut erin, 2500.0).await;

    eventually("Dave hears the CSR", || dave_phone.recent(440.0) > PRESENT).await;
    assert!(csr_phone.connected());
    // Dave has no microphone: the CSR hears silence, not Dave (V3).
    eventually("the CSR receives audio", || csr_phone.packets() > 50).await;
    assert!(
        csr_phone.recent(1000.0) < ABSENT,
        "Dave is heard without the microphone"
    );
    assert!(dave_phone.recent(1000.0) < ABSENT, "Dave hears himself");
    // Erin is not in the call: connected, but she gets no call audio (V2).
    eventually("Erin is connected", || erin_phone.connected()).await;
    assert_eq!(erin_phone.packets(), 0);

    // The CSR passes the microphone to Dave: now each hears the other.
    csr.cmd(json!({"type": "pass_microphone", "to": dave.id()}))
        .await
        .unwrap();
    eventually("the CSR hears Dave", || csr_phone.recent(1000.0) > PRESENT).await;
    assert!(dave_phone.recent(440.0) > PRESENT);
    assert!(csr_phone.recent(440.0) < ABSENT, "the CSR hears herself");

    // Dave leaves the call: he is no longer heard, nor does he hear the call.
    dave.cmd(json!({"type": "leave_voice"})).await.unwrap();
    let dave_packets = dave_phone.packets();
    eventually("the CSR no longer hears Dave", || {
        csr_phone.recent(1000.0) < ABSENT
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        dave_phone.packets() <= dave_packets + 2,
        "audio after leaving the call"
    );

    // The gauge is process-wide (tests run servers side by side); that it is reported is what
    // can be checked here.
    let metrics = t.metrics().await;
    for name in [
        "tandem_media_calls",
        "tandem_media_peers",
        "tandem_media_audio_packets_total{direction=\"in\"}",
        "tandem_media_audio_packets_total{direction=\"out\"}",
        "tandem_media_dropped_by_policy_total{reason=\"no_microphone\"}",
        "tandem_media_call_tick_seconds",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
}

#[tokio::test]
async fn malformed_sdp_gets_a_clear_error_and_harms_nothing() {
    let t = TestServer::start().await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let s = t.start_session(&carol, "x").await;
    let mut csr = t.connect(&s).await;
    let answer = csr
        .request(json!({"type": "media_offer", "sdp": "v=0\r\nnot an offer"}))
        .await;
    assert_eq!(
        (answer["type"].as_str(), answer["code"].as_str()),
        (Some("error"), Some("malformed_sdp"))
    );
    let answer = csr.request(json!({"type": "media_offer"})).await;
    assert_eq!(answer["code"], "invalid_command");
    // Garbage datagrams at the media port are dropped and counted.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let workers: Vec<SocketAddr> = t.server().media_addresses.clone();
    for media in workers {
        for _ in 0..10 {
            udp.send_to(b"\x00\x01\x00\x00garbage", media).unwrap();
        }
    }
    let deadline = tokio::time::Instant::now() + crate::common::PATIENCE;
    while !t
        .metrics()
        .await
        .contains("tandem_media_unrouted_datagrams_total")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "garbage datagrams were not counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    csr.chat("still fine", None).await.unwrap();
    let phone = Phone::connect(&mut csr, 440.0).await;
    eventually("a good offer still connects", || phone.connected()).await;
}

/// SYS1 for media: a call that fails inside its worker is dropped alone. Its participants are
/// told and connect again; another call on the same worker never notices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_media_call_is_dropped_alone_and_its_participants_connect_again() {
    let t = TestServer::start_with(&[("TANDEM_MEDIA_WORKERS", "1")]).await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let mut sessions = Vec::new();
    for topic in ["first", "second"] {
        let call = two_party_call(&t, &carol, topic).await;
        eventually("Dave hears the CSR", || {
            call.dave_phone.recent(440.0) > PRESENT
        })
        .await;
        sessions.push(call);
    }
    let id: tandem_actors::ids::SessionId =
        serde_json::from_value(sessions[0].session["session"]["id"].clone()).unwrap();
    t.server()
        .media
        .for_session(id)
        .inject_panic(id)
        .await
        .unwrap();

    let [first, second] = &mut sessions[..] else {
        unreachable!()
    };
    for ws in [&mut first.csr, &mut first.dave] {
        let closed = ws.frame("media_closed").await;
        assert!(closed["reason"].as_str().unwrap().contains("connect again"));
    }
    let heard = second.dave_phone.packets();
    eventually("the other call goes on", || {
        second.dave_phone.packets() > heard + 50
    })
    .await;
    assert!(second.dave_phone.recent(440.0) > PRESENT);
    assert!(
        t.metrics()
            .await
            .contains("tandem_media_call_failures_total")
    );

    // The first session's pages connect again, and its call works as before.
    let again = (
        Phone::connect(&mut first.csr, 440.0).await,
        Phone::connect(&mut first.dave, 1000.0).await,
    );
    eventually("Dave hears the CSR again", || {
        again.1.recent(440.0) > PRESENT
    })
    .await;
    assert!(
        again.0.recent(1000.0) < ABSENT,
        "Dave still has no microphone"
    );
}
