//! Resource control (issue 15): what a stranger can make the server spend is bounded, and
//! what is refused for load is refused clearly (a problem document with its code and when to
//! try again), while the people using it go on.

use futures_util::future::join_all;
use serde_json::json;
use tandem::store::AccountRole;

use crate::common::TestServer;

/// A burst of sign-ins cannot take the server's memory (argon2 takes about 19 MiB a check):
/// with one check at a time and two waiting, forty sign-ins at once are each either checked
/// (401 here: wrong passwords for unknown names, so the per-name limit plays no part) or
/// refused at once with 503 `sign_in_busy` and Retry-After. None is lost or stuck, and a
/// sign-in right after works.
#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_sign_ins_is_bounded_and_the_excess_refused_with_retry_after() {
    let t = TestServer::start_with(&[
        ("TANDEM_AUTH_MAX_CONCURRENT_HASHES", "1"),
        ("TANDEM_AUTH_MAX_WAITING_HASHES", "2"),
    ])
    .await;
    t.account("carol", AccountRole::Csr).await;
    let answers = join_all((0..40).map(|i| {
        let http = t.http.clone();
        let url = format!("{}/api/login", t.base);
        async move {
            let res = http
                .post(url)
                .json(&json!({"username": format!("nobody{i}"), "password": "a wrong guess 1"}))
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let retry_after = res
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            let body: serde_json::Value = res.json().await.unwrap();
            (status, retry_after, body)
        }
    }))
    .await;
    let checked = answers.iter().filter(|(s, ..)| *s == 401).count();
    let busy: Vec<_> = answers.iter().filter(|(s, ..)| *s == 503).collect();
    assert_eq!(checked + busy.len(), 40, "{answers:?}");
    assert!(checked >= 1, "some were checked: {answers:?}");
    assert!(
        !busy.is_empty(),
        "with one check at a time and two waiting, a burst of 40 is not all let in"
    );
    for (_, retry_after, body) in &busy {
        assert_eq!(body["code"], "sign_in_busy", "{body}");
        assert_eq!(retry_after.as_deref(), Some("1"), "{body}");
    }
    let m = t.metrics().await;
    assert!(m.contains("tandem_password_hashing_refused_total"), "{m}");
    // Nothing was left holding a turn.
    let (status, body) = t
        .post(
            "/api/login",
            None,
            json!({"username": "carol", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// Signs in as `username` from `client`'s address; answers the status.
async fn sign_in(t: &TestServer, client: &reqwest::Client, username: &str, password: &str) -> u16 {
    client
        .post(format!("{}/api/login", t.base))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A client whose connections come from `ip` (any 127.x address reaches the server).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// Five wrong passwords make one address wait for one account; they do not lock the account:
/// its owner signs in from elsewhere at once, admin included. An account guessed at from
/// several addresses is slowed, never locked.
#[tokio::test(flavor = "multi_thread")]
async fn wrong_passwords_make_an_address_wait_but_never_lock_the_account() {
    let t = TestServer::start().await;
    t.account("boss", AccountRole::Admin).await;
    let guesser = client_from("127.0.0.2");
    for _ in 0..5 {
        assert_eq!(sign_in(&t, &guesser, "boss", "a wrong guess 1").await, 401);
    }
    assert_eq!(
        sign_in(&t, &guesser, "boss", "a wrong guess 1").await,
        429,
        "that address now waits"
    );
    assert_eq!(
        sign_in(&t, &guesser, "boss", "correct horse battery").await,
        429,
        "even with the right password"
    );
    let owner = client_from("127.0.0.3");
    assert_eq!(
        sign_in(&t, &owner, "boss", "correct horse battery").await,
        200,
        "the owner is not locked out by someone else's guesses"
    );
    // Guesses from two more addresses: the account is slowed down, and still opens.
    for ip in ["127.0.0.4", "127.0.0.5"] {
        let c = client_from(ip);
        for _ in 0..3 {
            assert_eq!(sign_in(&t, &c, "boss", "a wrong guess 1").await, 401);
        }
    }
    assert_eq!(
        sign_in(&t, &owner, "boss", "correct horse battery").await,
        200
    );
}

/// Made-up HTTP methods are counted as `other`: a client cannot add label values, and with
/// them memory, to the metrics without end.
#[tokio::test]
async fn made_up_methods_are_one_label() {
    let t = TestServer::start().await;
    for i in 0..5 {
        let method = reqwest::Method::from_bytes(format!("BREW{i}").as_bytes()).unwrap();
        let res = t
            .http
            .request(method, format!("{}/api/login", t.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 405);
    }
    let m = t.metrics().await;
    assert!(!m.contains("BREW"), "{m}");
    assert!(
        m.lines()
            .any(|l| l.starts_with("tandem_http_requests_total") && l.contains("method=\"other\"")),
        "{m}"
    );
}

/// Every answer, API documents and problems included, tells browsers not to guess its type.
#[tokio::test]
async fn every_answer_says_nosniff() {
    let t = TestServer::start().await;
    let carol = t.account("carol", AccountRole::Csr).await;
    for (path, token) in [
        ("/api/me", Some(carol.token.as_str())),
        ("/api/me", None),
        ("/api/nothing-here", None),
        ("/healthz", None),
        ("/", None),
    ] {
        let mut req = t.http.get(format!("{}{path}", t.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let res = req.send().await.unwrap();
        assert_eq!(
            res.headers()
                .get("x-content-type-options")
                .map(|v| v.to_str().unwrap()),
            Some("nosniff"),
            "{path} ({})",
            res.status()
        );
    }
}

/// A participant whose WebSocket goes silent (it vanished without closing: a closed laptop, a
/// dead network) is pinged, and closed once nothing has come back for `ws_silence_secs`, so
/// its seat is held only for the reconnect grace. The client here completes the handshake
/// over plain TCP and then neither reads (so answers no ping) nor writes.
#[tokio::test]
async fn a_silent_websocket_is_pinged_and_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = TestServer::start_with(&[
        ("TANDEM_SERVER_WS_PING_SECS", "1"),
        ("TANDEM_SERVER_WS_SILENCE_SECS", "2"),
    ])
    .await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let session = t.start_session(&carol, "Silence").await;
    let token = session["token"].as_str().unwrap();
    let addr = t.base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /ws?token={token} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    // Read (never answer) until the server closes the connection.
    let mut got = Vec::new();
    let closed = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        let mut buf = [0u8; 4096];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server kept a silent WebSocket open");
    assert!(
        got.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    // Its pings (opcode 0x9) and its close frame (0x8, code 1001) came before.
    assert!(got.windows(2).any(|w| w == [0x89, 0x00]), "pinged");
    assert!(
        got.windows(4)
            .any(|w| w[0] == 0x88 && w[2..] == [0x03, 0xe9]),
        "closed with 1001"
    );
    let m = t.metrics().await;
    assert!(m.contains("tandem_ws_silent_closed_total"), "{m}");
}

#[tokio::test]
async fn a_keyword_search_is_bounded_in_length_and_finds_notes_and_names() {
    // Issue 15 item 10; SPEC A2.
    let t = TestServer::start().await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let s = t.start_session(&carol, "printer jam").await;
    let joined = t
        .join_by_number(s["session"]["number"].as_str().unwrap(), "Quigley")
        .await;
    let _dave = t.connect(&joined).await;
    let search = |q: String| {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/api/sessions", t.base),
            [("q", q.as_str())],
        )
        .unwrap();
        let r = t.http.get(url).bearer_auth(&carol.token);
        async move { crate::common::response(r.send().await.unwrap()).await }
    };
    let (status, found) = search("quigley".into()).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["sessions"][0]["topic"], "printer jam", "{found}");
    let (status, found) = search("x".repeat(200)).await;
    assert_eq!(
        (status, found["sessions"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let (status, problem) = search("x".repeat(201)).await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["code"], "invalid_query");
}
