//! Issue 15 item 9: a stranger who knows a session number cannot keep customers out. A join
//! holds no customer slot until its WebSocket connects, joins per session are rate-limited, and
//! the primary CSR can remove a participant, whose token then no longer connects.

use futures_util::StreamExt;
use serde_json::{Value, json};
use tandem::store::AccountRole;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{PATIENCE, TestServer};

/// Connects a token the server is expected to refuse: the first frame it sends, and the close
/// code and reason that follow.
async fn refused(t: &TestServer, joined: &Value) -> (Value, u16, String) {
    let url = format!(
        "{}/ws?token={}",
        t.base.replace("http://", "ws://"),
        joined["token"].as_str().unwrap()
    );
    let (mut stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut first = Value::Null;
    loop {
        match tokio::time::timeout(PATIENCE, stream.next()).await.unwrap() {
            Some(Ok(Message::Text(text))) if first.is_null() => {
                first = serde_json::from_str(text.as_str()).unwrap();
            }
            Some(Ok(Message::Close(Some(frame)))) => {
                return (first, frame.code.into(), frame.reason.to_string());
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected a refusal and a close, got {other:?} after {first}"),
        }
    }
}

async fn one_customer_per_session(t: &TestServer) {
    let admin = t.account("root", AccountRole::Admin).await;
    let (status, body) = t
        .put(
            "/api/settings",
            Some(&admin.token),
            json!({"quick_phrases": [], "quick_phrases_enabled": false, "max_customers_per_session": 1}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn joins_that_never_connect_do_not_keep_a_customer_out() {
    let t = TestServer::start().await;
    one_customer_per_session(&t).await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let s = t.start_session(&carol, "printer").await;
    let number = s["session"]["number"].as_str().unwrap().to_string();
    let mut csr = t.connect(&s).await;

    // A stranger joins again and again and never connects.
    let mut strangers = Vec::new();
    for i in 0..5 {
        strangers.push(t.join_by_number(&number, &format!("Stranger{i}")).await);
    }
    // The real customer still gets in.
    let d = t.join_by_number(&number, "Dave").await;
    let mut dave = t.connect(&d).await;
    assert_eq!(dave.welcome["role"], "customer");
    csr.event_where("participant_joined", |e| e["participant"]["name"] == "Dave")
        .await;

    // Now the session is full: a stranger's token connecting is refused with a clear frame,
    // and new joins are refused at once.
    let (frame, code, reason) = refused(&t, &strangers[0]).await;
    assert_eq!(frame["type"], "error", "{frame}");
    assert_eq!(frame["code"], "customer_limit", "{frame}");
    assert_eq!((code, reason.as_str()), (4001, "customer_limit"));
    let (status, body) = t
        .post("/api/join", None, json!({"number": number, "name": "Late"}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("customer_limit"))
    );
    // Dave is still in the session.
    assert!(dave.chat("thanks", None).await.is_ok());
}

#[tokio::test]
async fn joins_per_session_are_rate_limited() {
    let t = TestServer::start_with(&[("TANDEM_SESSIONS_JOINS_PER_MINUTE", "3")]).await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let s = t.start_session(&carol, "printer").await;
    let number = s["session"]["number"].as_str().unwrap().to_string();
    for i in 0..3 {
        t.join_by_number(&number, &format!("Guest{i}")).await;
    }
    let res = t
        .http
        .post(format!("{}/api/join", t.base))
        .json(&json!({"number": number, "name": "Guest3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 429);
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "too_many_joins", "{body}");
    // The limit is per session: another session takes joins.
    let other = t.start_session(&carol, "other").await;
    t.join_by_number(other["session"]["number"].as_str().unwrap(), "Erin")
        .await;
}

#[tokio::test]
async fn the_primary_csr_removes_a_participant_who_cannot_come_back() {
    let t = TestServer::start().await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let alex = t.account("alex", AccountRole::Csr).await;
    let s = t.start_session(&carol, "printer").await;
    let number = s["session"]["number"].as_str().unwrap().to_string();
    let mut csr = t.connect(&s).await;
    let (status, a) = t
        .post("/api/assist", Some(&alex.token), json!({"number": number}))
        .await;
    assert_eq!(status, 201, "{a}");
    let mut asst = t.connect(&a).await;
    let d = t.join_by_number(&number, "Dave").await;
    let mut dave = t.connect(&d).await;
    let dave_id = dave.id();

    // Only the primary CSR may remove someone.
    assert_eq!(
        asst.cmd(json!({"type": "remove_participant", "participant": dave_id}))
            .await,
        Err("not_primary".into())
    );
    csr.cmd(json!({"type": "remove_participant", "participant": dave_id}))
        .await
        .unwrap();
    let bye = dave.frame("bye").await;
    assert_eq!(bye["reason"], "removed");
    dave.until_closed().await;
    let removed = csr.event("participant_removed").await;
    assert_eq!(removed["participant"], json!(dave_id));
    assert_eq!(removed["by"], json!(csr.id()));
    csr.event_where("participant_left", |e| e["reason"] == "removed")
        .await;

    // The same token does not connect again.
    let (frame, code, reason) = refused(&t, &d).await;
    assert_eq!(frame["code"], "removed", "{frame}");
    assert_eq!((code, reason.as_str()), (4001, "removed"));
}
