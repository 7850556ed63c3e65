//! Guessing session numbers (issue 15, item 8): one budget of wrong numbers per address (an
//! IPv6 /64 as one) for every way a number is tried (join, assist, a phone's keypad at the
//! service number, dialling sip:<number>@), a ceiling from everywhere, and the client's address
//! behind a trusted reverse proxy. Other clients come from other loopback addresses
//! (127.0.0.2...); IPv6 clients are named by a proxy on loopback in X-Forwarded-For.

use std::net::IpAddr;

use serde_json::{Value, json};
use tandem::store::AccountRole;

use crate::common::{TestServer, response};
use crate::sip::{assert_ok, dtmf_scenario, finished, scenario, sip_addr, sipp};

/// A client whose connections come from loopback address `from`.
fn client_from(from: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(from.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// What a join by number answers: status, body and Retry-After.
struct Answer {
    status: u16,
    body: Value,
    retry_after: Option<u64>,
}

impl Answer {
    /// Refused for too many wrong numbers, with a Retry-After of at most a minute.
    fn assert_throttled(&self, what: &str) {
        assert_eq!(
            (self.status, self.body["code"].as_str()),
            (429, Some("too_many_attempts")),
            "{what}: {}",
            self.body
        );
        assert!(
            self.retry_after.is_some_and(|s| (1..=60).contains(&s)),
            "{what}: Retry-After {:?}",
            self.retry_after
        );
    }
}

/// POSTs `body` to `path` from `client`, through a proxy that names `forwarded_for`.
async fn post(
    t: &TestServer,
    client: &reqwest::Client,
    path: &str,
    token: Option<&str>,
    forwarded_for: Option<&str>,
    body: Value,
) -> Answer {
    let mut req = client.post(format!("{}{path}", t.base)).json(&body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(xff) = forwarded_for {
        req = req.header("x-forwarded-for", xff);
    }
    let r = req.send().await.unwrap();
    let retry_after = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let (status, body) = response(r).await;
    Answer {
        status,
        body,
        retry_after,
    }
}

async fn join(
    t: &TestServer,
    client: &reqwest::Client,
    number: &str,
    forwarded_for: Option<&str>,
) -> Answer {
    let body = json!({"number": number, "name": "Guess"});
    post(t, client, "/api/join", None, forwarded_for, body).await
}

/// A wrong number: 9 digits no live session has (`i` apart from the others).
fn wrong(i: usize) -> String {
    format!("{:09}", 900_000_000 + i * 7919)
}

/// A live session's number.
async fn live_number(t: &TestServer) -> String {
    let carol = t.account("carol", AccountRole::Csr).await;
    let session = t.start_session(&carol, "Guessing").await;
    session["session"]["number"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_numbers_through_join_and_assist_count_in_one_budget() {
    let t = TestServer::start().await;
    let number = live_number(&t).await;
    let dave = t.account("dave", AccountRole::Csr).await;
    let here = &t.http;
    // Ten wrong numbers a minute from one address (the default), five each way...
    for i in 0..5 {
        assert_eq!(join(&t, here, &wrong(i), None).await.status, 404);
        let a = post(
            &t,
            here,
            "/api/assist",
            Some(&dave.token),
            None,
            json!({"number": wrong(100 + i)}),
        )
        .await;
        assert_eq!(
            (a.status, a.body["code"].as_str()),
            (404, Some("unknown_session"))
        );
    }
    // ...and the next try is refused either way, even with the right number.
    join(&t, here, &number, None)
        .await
        .assert_throttled("a join after ten wrong numbers");
    post(
        &t,
        here,
        "/api/assist",
        Some(&dave.token),
        None,
        json!({"number": number}),
    )
    .await
    .assert_throttled("an assist after ten wrong numbers");
    // Another address has its own budget.
    let elsewhere = client_from("127.0.0.2");
    assert_eq!(join(&t, &elsewhere, &number, None).await.status, 201);
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_a_trusted_proxy_each_client_is_limited_and_ipv6_by_its_64() {
    let t = TestServer::start_with(&[("TANDEM_SERVER_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let number = live_number(&t).await;
    let proxy = &t.http;
    // Ten wrong numbers from ten addresses of one IPv6 /64...
    for i in 0..10 {
        let from = format!("2001:db8:1:2::{:x}", i + 1);
        assert_eq!(join(&t, proxy, &wrong(i), Some(&from)).await.status, 404);
    }
    // ...use up that /64's budget, whichever of its addresses tries next, and whatever the
    // client put left of what the proxy appended.
    join(&t, proxy, &number, Some("2001:db8:1:2:ffff::1"))
        .await
        .assert_throttled("another address of the /64");
    join(
        &t,
        proxy,
        &number,
        Some("2001:db8:9:9::9, 2001:db8:1:2::77"),
    )
    .await
    .assert_throttled("a client naming another address itself");
    // Another /64 behind the same proxy, and the proxy's own address, are not held up.
    assert_eq!(
        join(&t, proxy, &number, Some("2001:db8:1:3::1"))
            .await
            .status,
        201
    );
    assert_eq!(join(&t, proxy, &number, None).await.status, 201);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_peer_is_limited_by_its_own_address_whatever_it_forwards() {
    // A proxy is trusted, but not the peer that sends X-Forwarded-For.
    let t = TestServer::start_with(&[("TANDEM_SERVER_TRUSTED_PROXIES", "127.0.0.9")]).await;
    let number = live_number(&t).await;
    let peer = client_from("127.0.0.3");
    for i in 0..10 {
        let from = format!("2001:db8:{:x}::1", i + 1);
        assert_eq!(join(&t, &peer, &wrong(i), Some(&from)).await.status, 404);
    }
    join(&t, &peer, &number, Some("2001:db8:ffff::1"))
        .await
        .assert_throttled("a new forwarded address from an untrusted peer");
    // The trusted proxy's clients are counted by the address it names.
    let proxy = client_from("127.0.0.9");
    assert_eq!(
        join(&t, &proxy, &number, Some("127.0.0.3")).await.status,
        429,
        "the proxy's client 127.0.0.3 is the same client"
    );
    assert_eq!(
        join(&t, &proxy, &number, Some("2001:db8:ffff::1"))
            .await
            .status,
        201
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_ceiling_only_addresses_that_guessed_wrong_are_refused() {
    let t = TestServer::start_with(&[("TANDEM_SESSIONS_WRONG_NUMBERS_TOTAL", "3")]).await;
    let number = live_number(&t).await;
    // A scan spread over three addresses, one wrong number each, reaches the ceiling.
    let scanners: Vec<_> = (2..=4)
        .map(|i| client_from(&format!("127.0.0.{i}")))
        .collect();
    for (i, c) in scanners.iter().enumerate() {
        assert_eq!(join(&t, c, &wrong(i), None).await.status, 404);
    }
    // The scanners are refused, far below their own limit; a customer from an address
    // without a wrong number still joins with the right number.
    join(&t, &scanners[0], &number, None)
        .await
        .assert_throttled("a scanner past the ceiling");
    let customer = client_from("127.0.0.5");
    assert_eq!(join(&t, &customer, &number, None).await.status, 201);
}

#[tokio::test(flavor = "multi_thread")]
async fn numbers_keyed_in_by_phone_count_in_the_same_budget_as_the_api() {
    let t = TestServer::start().await;
    let number = live_number(&t).await;
    let sip = sip_addr(&t);
    // Three wrong numbers keyed in at the service number (all from 127.0.0.1): Tandem hangs
    // up after the third.
    let keyed = dtmf_scenario(&t.dir, &format!("{}{}{}", wrong(0), wrong(1), wrong(2)));
    let call = sipp(sip, &keyed, "100", &[]);
    assert_ok("three wrong numbers keyed in", sip, &finished(call).await);
    // Seven more over HTTP from the same address make ten.
    for i in 3..10 {
        assert_eq!(join(&t, &t.http, &wrong(i), None).await.status, 404);
    }
    join(&t, &t.http, &number, None)
        .await
        .assert_throttled("a join after ten wrong numbers, three by phone");
    // Phones from that address are refused too: the service number is not answered and the
    // session's own number is refused, both 403 with Retry-After.
    let refused = std::fs::read_to_string(scenario("refused.xml"))
        .unwrap()
        .replace(
            "<recv response=\"404\"/>",
            "<recv response=\"403\"><action><ereg regexp=\"[0-9]+\" search_in=\"hdr\" header=\"Retry-After:\" check_it=\"true\" assign_to=\"1\"/></action></recv>",
        )
        .replace("</scenario>", "  <Reference variables=\"1\"/>\n</scenario>");
    let refused_path = t.dir.join("throttled.xml");
    std::fs::write(&refused_path, refused).unwrap();
    for dialled in ["100", number.as_str()] {
        let call = sipp(sip, &refused_path, dialled, &[]);
        assert_ok(&format!("dialling {dialled}"), sip, &finished(call).await);
    }
}
