//! What one address, or a crowd, can make the SIP endpoint spend (issue 15, items 3 and 11):
//! TCP connections bounded per address and in all, idle and trickling ones closed while a real
//! phone (sipp) registers and calls over TCP, messages a second per address, and the cap on
//! transactions. Attackers use other loopback addresses (127.0.0.2...) than the phone.

use tokio::net::UdpSocket;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::*;
use crate::common::flood::{connect_from, open_files_for};

/// Reads until the server closes the connection (bounded: a hang guard, not a measurement).
async fn closed_by_server(mut read: OwnedReadHalf) {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the server closes the connection");
}

/// Polls the metrics until `name{labels}` is at least `at_least` (bounded); answers its value.
async fn metric_reaches(t: &TestServer, name: &str, labels: &[&str], at_least: f64) -> f64 {
    let mut value = 0.0;
    for _ in 0..250 {
        value = metric(&t.metrics().await, name, labels);
        if value >= at_least {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    value
}

/// The SIP/TCP connections one address may hold in the flood tests.
const SIP_SHARE: usize = 500;
/// The flood tests' attacking addresses.
const ATTACKERS: [&str; 4] = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"];
/// Of each attacking address's connections, the first this many trickle.
const TRICKLING: usize = 25;

/// A server with these TCP limits, and Carol (a CSR with a softphone password) in a session,
/// on her WebSocket; answers the session's number too.
async fn siege_server(limits: &[(&str, &str)]) -> (TestServer, String, Ws) {
    let mut settings = vec![("TANDEM_SIP_DIGEST_ALGORITHMS", "MD5")];
    settings.extend_from_slice(limits);
    let t = TestServer::start_with(&settings).await;
    let carol = t.named_account("carol", "Carol", AccountRole::Csr).await;
    set_sip_password(&t, &carol, "carol softphone 7").await;
    let session = t.start_session(&carol, "Under siege").await;
    let number = session["session"]["number"].as_str().unwrap().to_string();
    let csr = t.connect(&session).await;
    (t, number, csr)
}

/// `count` connections from each of [`ATTACKERS`]: the first [`TRICKLING`] of each trickle a
/// request a byte at a time from the start (slowloris), the others say nothing. Answers the
/// connections' reading halves, and the writing halves of the silent ones (dropping those
/// would end their connections cleanly).
async fn besiege(sip: SocketAddr, count: usize) -> (Vec<OwnedReadHalf>, Vec<OwnedWriteHalf>) {
    let (mut readers, mut quiet) = (Vec::new(), Vec::new());
    for from in ATTACKERS {
        for i in 0..count {
            let (read, mut write) = connect_from(from, sip).await.into_split();
            if i < TRICKLING {
                tokio::spawn(async move {
                    for b in options("slow", "slowloris").bytes().take(80) {
                        if write.write_all(&[b]).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                });
            } else {
                quiet.push(write);
            }
            readers.push(read);
        }
    }
    (readers, quiet)
}

/// Carol's softphone registers over TCP and stays registered for 4.5 s, quiet, and a phone
/// calls session `number` over TCP and stays as long; both from 127.0.0.1, with sipp.
async fn phone_registers_and_calls(sip: SocketAddr, number: &str, csr: &mut Ws) {
    let register = sipp(
        sip,
        &scenario("register_and_stay.xml"),
        "x",
        &[
            "-key",
            "account",
            "carol",
            "-au",
            "carol",
            "-ap",
            "carol softphone 7",
            "-t",
            "t1",
            "-d",
            "4500",
        ],
    );
    let call = sipp(
        sip,
        &scenario("hangup.xml"),
        number,
        &["-t", "t1", "-d", "4500"],
    );
    let phone = phone_joins(csr).await;
    let (registered, called) = tokio::join!(finished(register), finished(call));
    assert_ok("a softphone registered over TCP", sip, &registered);
    assert_ok("a call over TCP", sip, &called);
    csr.event_where("participant_left", |e| e["participant"] == phone.as_str())
        .await;
}

/// 2,080 connections from four addresses, idle or trickling: each address's share (500) is let
/// in and the rest closed at once, while a softphone registers over TCP and a phone calls in
/// over TCP from another address; past the total, more connections are closed at once.
#[tokio::test(flavor = "multi_thread")]
async fn thousands_of_tcp_connections_are_bounded_while_a_phone_registers_and_calls() {
    // Both ends of every connection are in this process: about 4,500 at once.
    open_files_for(8192);
    let share = SIP_SHARE.to_string();
    let (t, number, mut csr) = siege_server(&[
        ("TANDEM_SIP_MAX_TCP_CONNECTIONS", "2100"),
        ("TANDEM_SIP_MAX_TCP_PER_ADDRESS", &share),
        // Longer than the test: here nothing is closed for waiting.
        ("TANDEM_SIP_TCP_IDLE_SECS", "300"),
        ("TANDEM_SIP_TCP_MESSAGE_SECS", "300"),
    ])
    .await;
    let sip = sip_addr(&t);

    let (_held, _quiet) = besiege(sip, SIP_SHARE + 20).await;
    let turned_away = 20.0 * ATTACKERS.len() as f64;
    let refused = metric_reaches(
        &t,
        "tandem_sip_connections_refused_total",
        &["per_address"],
        turned_away,
    )
    .await;
    assert_eq!(
        refused, turned_away,
        "past 500 from one address are refused"
    );

    phone_registers_and_calls(sip, &number, &mut csr).await;

    // In all at most 2,100: of 200 more from another address, at least 100 are refused (the
    // phones' connections may still be closing).
    let mut crowd = Vec::new();
    for _ in 0..200 {
        crowd.push(connect_from("127.0.0.6", sip).await);
    }
    let full = metric_reaches(&t, "tandem_sip_connections_refused_total", &["full"], 100.0).await;
    assert!(
        (100.0..=102.0).contains(&full),
        "past 2,100 in all are refused: {full}"
    );
}

/// 2,000 connections from four addresses: the silent ones are closed after the idle timeout
/// and those trickling a request at its message's deadline, while a softphone registered over
/// TCP and a phone calling over TCP are kept past the idle timeout for their registration and
/// call.
#[tokio::test(flavor = "multi_thread")]
async fn idle_and_slow_tcp_connections_are_closed_while_a_phone_registers_and_calls() {
    open_files_for(8192);
    let share = SIP_SHARE.to_string();
    let (t, number, mut csr) = siege_server(&[
        ("TANDEM_SIP_MAX_TCP_CONNECTIONS", "2100"),
        ("TANDEM_SIP_MAX_TCP_PER_ADDRESS", &share),
        ("TANDEM_SIP_TCP_IDLE_SECS", "3"),
        ("TANDEM_SIP_TCP_MESSAGE_SECS", "1"),
    ])
    .await;
    let sip = sip_addr(&t);

    let (readers, _quiet) = besiege(sip, SIP_SHARE).await;
    phone_registers_and_calls(sip, &number, &mut csr).await;

    // Every attacking connection is closed by the server: idle ones after the idle timeout,
    // trickling ones at their message's deadline.
    for read in readers {
        closed_by_server(read).await;
    }
    let trickled = (TRICKLING * ATTACKERS.len()) as f64;
    let let_in = (SIP_SHARE * ATTACKERS.len()) as f64;
    let m = t.metrics().await;
    assert!(
        metric(&m, "tandem_sip_connections_closed_total", &["slow_message"]) >= trickled,
        "{m}"
    );
    assert!(
        metric(&m, "tandem_sip_connections_closed_total", &["\"idle\""]) >= let_in - trickled,
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_from_one_address_is_limited_and_another_is_still_served() {
    let t = TestServer::start_with(&[
        ("TANDEM_SIP_REQUESTS_PER_SECOND", "20"),
        ("TANDEM_SIP_REQUEST_BURST", "20"),
    ])
    .await;
    let sip = sip_addr(&t);
    let flooder = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let phone = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // 300 requests in batches of 30; after each, a request from another address is answered.
    // The endpoint reads datagrams in order, so by then the batch has been handled and its
    // answers are waiting at the flooder, which takes them before the next batch (no socket
    // buffer overflows: without the limit every request is answered).
    let (mut sent, mut answered) = (0, 0);
    let mut buf = vec![0u8; 65_536];
    for batch in 0..10 {
        for i in 0..30 {
            let n = batch * 30 + i;
            let m = options(&format!("f{n}"), &format!("flood-{n}"));
            flooder.send_to(m.as_bytes(), sip).await.unwrap();
            sent += 1;
        }
        let answer = udp_exchange(
            &phone,
            sip,
            options(&format!("p{batch}"), &format!("phone-{batch}")).as_bytes(),
        )
        .await
        .unwrap_or_else(|| panic!("the other address is answered (batch {batch})"));
        assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
        while flooder.try_recv(&mut buf).is_ok() {
            answered += 1;
        }
    }
    assert!(
        answered < sent / 2,
        "{answered} of {sent} flooding requests were answered"
    );
    let limited = metric(
        &t.metrics().await,
        "tandem_sip_rate_limited_total",
        &["UDP"],
    );
    assert!(
        limited >= f64::from(sent - answered),
        "dropped datagrams are counted: {limited}"
    );

    // Over TCP the address is proven and nothing is retransmitted: requests past the rate wait
    // their turn and are all answered.
    let mut tcp = connect_from("127.0.0.2", sip).await;
    let pipelined: String = (0..30)
        .map(|i| {
            options(&format!("t{i}"), &format!("tcp-{i}")).replace("SIP/2.0/UDP", "SIP/2.0/TCP")
        })
        .collect();
    tcp.write_all(pipelined.as_bytes()).await.unwrap();
    let answer = udp_exchange(&phone, sip, options("p-tcp", "phone-tcp").as_bytes())
        .await
        .expect("the other address is answered");
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
    let mut got = String::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while got.matches("SIP/2.0 200").count() < 30 {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed early: {got}");
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
    .await
    .expect("every request over TCP is answered");
    assert!(
        metric(
            &t.metrics().await,
            "tandem_sip_rate_limited_total",
            &["TCP"]
        ) >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn past_max_transactions_new_requests_get_503_with_retry_after() {
    let t = TestServer::start_with(&[
        ("TANDEM_SIP_MAX_TRANSACTIONS", "20"),
        ("TANDEM_SIP_REQUESTS_PER_SECOND", "0"),
    ])
    .await;
    let sip = sip_addr(&t);
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // Each OPTIONS over UDP keeps its transaction for 32 s (to answer retransmissions).
    for i in 0..20 {
        let r = udp_exchange(&sock, sip, options(&format!("k{i}"), "cap").as_bytes())
            .await
            .expect("answered");
        assert!(r.starts_with("SIP/2.0 200"), "{r}");
    }
    for i in 20..25 {
        let r = udp_exchange(&sock, sip, options(&format!("k{i}"), "cap").as_bytes())
            .await
            .expect("answered");
        assert!(r.starts_with("SIP/2.0 503"), "{r}");
        assert!(r.contains("Retry-After: 5"), "{r}");
    }
    // A retransmission of a kept one is still answered from its transaction.
    let r = udp_exchange(&sock, sip, options("k3", "cap").as_bytes())
        .await
        .expect("answered");
    assert!(r.starts_with("SIP/2.0 200"), "{r}");
    let m = t.metrics().await;
    assert_eq!(
        metric(&m, "tandem_sip_transactions_full_total", &[]),
        5.0,
        "{m}"
    );
    assert!(
        metric(&m, "tandem_sip_responses_total", &["OPTIONS", "503"]) >= 5.0,
        "{m}"
    );
}
