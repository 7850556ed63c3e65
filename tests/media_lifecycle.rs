//! Media resources come and go with the participants (SPEC SYS2, SYS3): connections and tracks
//! are counted while people are in the call, freed when they leave and when the session ends,
//! and a STUN request for an unknown ICE user is refused without touching the call.
//!
//! One test in its own binary: the media gauges are process-wide, so no other server may run in
//! this process.

mod common;

use std::time::Duration;

use common::TestServer;
use common::phone::{eventually, two_party_call};
use serde_json::json;
use tandem::store::AccountRole;

/// A gauge summed over the media workers (labelled `worker`).
fn gauge(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix('{'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn media(t: &TestServer) -> (f64, f64, f64) {
    let m = t.metrics().await;
    (
        gauge(&m, "tandem_media_calls"),
        gauge(&m, "tandem_media_peers"),
        gauge(&m, "tandem_media_tracks"),
    )
}

/// Waits until the media gauges read (calls, peers, tracks).
async fn until(t: &TestServer, expected: (f64, f64, f64)) {
    let deadline = tokio::time::Instant::now() + common::PATIENCE;
    loop {
        let now = media(t).await;
        if now == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "media gauges {now:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A STUN binding request for an ICE user no connection has.
fn stun_for_unknown_user() -> Vec<u8> {
    let username = b"nobody00:nothing";
    let mut m = vec![0x00, 0x01];
    m.extend_from_slice(&((4 + username.len()) as u16).to_be_bytes());
    m.extend_from_slice(&0x2112_A442u32.to_be_bytes());
    m.extend_from_slice(&[7; 12]);
    m.extend_from_slice(&[0x00, 0x06]);
    m.extend_from_slice(&(username.len() as u16).to_be_bytes());
    m.extend_from_slice(username);
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_and_tracks_are_freed_when_people_leave_and_the_session_ends() {
    let t = TestServer::start().await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let mut call = two_party_call(&t, &carol, "Lifecycle").await;
    until(&t, (1.0, 2.0, 2.0)).await;

    // An unknown ICE user is refused and counted; the call goes on.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for worker in &t.server().media_addresses {
        udp.send_to(&stun_for_unknown_user(), worker).unwrap();
    }
    let heard = call.dave_phone.packets();
    eventually("Dave still receives the call", || {
        call.dave_phone.packets() > heard + 25
    })
    .await;
    assert!(
        t.metrics()
            .await
            .contains("tandem_media_unrouted_datagrams_total")
    );
    assert_eq!(media(&t).await, (1.0, 2.0, 2.0));

    // Dave leaves: his connection and track go; the CSR's stay.
    call.dave.cmd(json!({"type": "leave"})).await.unwrap();
    until(&t, (1.0, 1.0, 1.0)).await;
    // The session ends: nothing is left.
    call.csr
        .cmd(json!({"type": "end_session", "confirm": true}))
        .await
        .unwrap();
    until(&t, (0.0, 0.0, 0.0)).await;
}
