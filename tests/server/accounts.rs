//! Issue 15: an admin disables and re-enables accounts, and anyone's tokens can be revoked ("sign
//! out everywhere"): a disabled account cannot sign in, its tokens stop working at once over
//! HTTP and its open WebSockets close, and its softphone's SIP password stops working. And the
//! e-mail the server sends is bounded per sender, per recipient and in all.

use serde_json::{Value, json};
use tandem::store::{AccountRole, RecordingStatus};

use crate::common::{Account, PATIENCE, TestServer, Ws, response};
use crate::mail::{Relay, recording};

async fn patch(t: &TestServer, path: &str, token: &str, body: Value) -> (u16, Value) {
    let req = t
        .http
        .patch(format!("{}{}", t.base, path))
        .bearer_auth(token)
        .json(&body);
    response(req.send().await.unwrap()).await
}

async fn sign_in(t: &TestServer, username: &str, password: &str) -> (u16, Value) {
    t.post(
        "/api/login",
        None,
        json!({"username": username, "password": password}),
    )
    .await
}

/// The status a WebSocket upgrade with `token` is refused with.
async fn ws_refused(t: &TestServer, token: &str) -> u16 {
    let url = format!("{}/ws?token={token}", t.base.replace("http://", "ws://"));
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => res.status().as_u16(),
        Err(e) => panic!("the upgrade failed otherwise: {e}"),
        Ok(_) => panic!("the upgrade was accepted"),
    }
}

/// Waits for the server to close `ws`; the close frame, as the harness saw it.
async fn closed(ws: &mut Ws) -> String {
    tokio::time::timeout(PATIENCE, ws.until_closed())
        .await
        .expect("the WebSocket was closed");
    ws.seen.last().unwrap()["_closed"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_disabled_account_cannot_sign_in_and_its_tokens_and_websockets_stop_at_once() {
    let t = TestServer::start().await;
    let admin = t.account("root", AccountRole::Admin).await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let s = t.start_session(&carol, "Disable me").await;
    let mut ws = t.connect(&s).await;
    let participant_token = s["token"].as_str().unwrap().to_string();
    let (status, sip) = t
        .put(
            &format!("/api/users/{}/sip", carol.id),
            Some(&admin.token),
            json!({"password": "softphone secret 1"}),
        )
        .await;
    assert_eq!((status, &sip["configured"]), (200, &json!(true)), "{sip}");

    // Only an admin disables.
    let (status, body) = patch(
        &t,
        &format!("/api/users/{}", admin.id),
        &carol.token,
        json!({"disabled": true}),
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));

    let (status, user) = patch(
        &t,
        &format!("/api/users/{}", carol.id),
        &admin.token,
        json!({"disabled": true}),
    )
    .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["disabled"], true);
    let (_, users) = t.get("/api/users", Some(&admin.token)).await;
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["username"] == "carol" && u["disabled"] == true),
        "{users}"
    );

    // Her open WebSocket is closed, saying why.
    let close = closed(&mut ws).await;
    assert!(
        close.contains("4003") && close.contains("account_disabled"),
        "{close}"
    );
    // Her tokens are refused, over HTTP and for the WebSocket.
    let (status, body) = t.get("/api/me", Some(&carol.token)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("account_disabled"))
    );
    let (status, body) = t
        .post("/api/queues/any/next", Some(&carol.token), json!({}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("account_disabled"))
    );
    assert_eq!(ws_refused(&t, &participant_token).await, 403);
    // Her softphone's SIP password no longer works.
    let (_, sip) = t
        .get(&format!("/api/users/{}/sip", carol.id), Some(&admin.token))
        .await;
    assert_eq!(sip["configured"], false, "{sip}");

    // Signing in: the right password learns the account is disabled; a wrong one learns
    // nothing more than for any account.
    let (status, body) = sign_in(&t, "carol", "correct horse battery").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("account_disabled"))
    );
    let (status, wrong) = sign_in(&t, "carol", "not her password").await;
    let (status_nobody, nobody) = sign_in(&t, "nobody-here", "not her password").await;
    assert_eq!((status, &wrong), (status_nobody, &nobody));
    assert_eq!(wrong["code"], "invalid_credentials");

    // Re-enabled, she signs in again; the old token stays dead.
    let (status, user) = patch(
        &t,
        &format!("/api/users/{}", carol.id),
        &admin.token,
        json!({"disabled": false}),
    )
    .await;
    assert_eq!((status, &user["disabled"]), (200, &json!(false)), "{user}");
    let (status, body) = sign_in(&t, "carol", "correct horse battery").await;
    assert_eq!(status, 200, "{body}");
    let (status, me) = t.get("/api/me", body["token"].as_str()).await;
    assert_eq!((status, &me["username"]), (200, &json!("carol")));
    let (status, body) = t.get("/api/me", Some(&carol.token)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("token_revoked"))
    );
    let (_, sip) = t
        .get(&format!("/api/users/{}/sip", carol.id), Some(&admin.token))
        .await;
    assert_eq!(sip["configured"], true, "{sip}");
}

#[tokio::test]
async fn signing_out_everywhere_revokes_old_tokens_and_a_new_sign_in_works() {
    let t = TestServer::start().await;
    let admin = t.account("root", AccountRole::Admin).await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let dave = t.account("dave", AccountRole::Csr).await;
    let s = t.start_session(&carol, "Revoke").await;
    let mut ws = t.connect(&s).await;

    // Nobody else signs carol out; she can.
    let (status, _) = t
        .post(
            &format!("/api/users/{}/revoke", carol.id),
            Some(&dave.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = t
        .post(
            &format!("/api/users/{}/revoke", carol.id),
            Some(&carol.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let close = closed(&mut ws).await;
    assert!(
        close.contains("4003") && close.contains("token_revoked"),
        "{close}"
    );
    let (status, body) = t.get("/api/me", Some(&carol.token)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("token_revoked"))
    );
    assert_eq!(ws_refused(&t, s["token"].as_str().unwrap()).await, 401);
    // Dave was not touched.
    assert_eq!(t.get("/api/me", Some(&dave.token)).await.0, 200);

    // A new sign-in works, until an admin revokes that one too.
    let (status, body) = sign_in(&t, "carol", "correct horse battery").await;
    assert_eq!(status, 200, "{body}");
    let fresh = body["token"].as_str().unwrap().to_string();
    assert_eq!(t.get("/api/me", Some(&fresh)).await.0, 200);
    let (status, _) = t
        .post(
            &format!("/api/users/{}/revoke", carol.id),
            Some(&admin.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(t.get("/api/me", Some(&fresh)).await.0, 401);
}

#[tokio::test]
async fn an_admin_cannot_disable_themself_or_the_last_enabled_admin() {
    let t = TestServer::start().await;
    let root = t.account("root", AccountRole::Admin).await;
    let (status, body) = patch(
        &t,
        &format!("/api/users/{}", root.id),
        &root.token,
        json!({"disabled": true}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("cannot_disable_self"))
    );

    // With a second admin, each may disable the other, but never both: asked at once, one
    // wins and the other is refused (its caller disabled, or the last admin).
    let ann = t.account("ann", AccountRole::Admin).await;
    let (ann_path, root_path) = (
        format!("/api/users/{}", ann.id),
        format!("/api/users/{}", root.id),
    );
    let off = json!({"disabled": true});
    let (a, b) = tokio::join!(
        patch(&t, &ann_path, &root.token, off.clone()),
        patch(&t, &root_path, &ann.token, off.clone())
    );
    let mut answers = [a, b].map(|(status, body)| (status, body["code"].clone()));
    answers.sort_by_key(|a| a.0);
    assert_eq!(answers[0].0, 200, "{answers:?}");
    assert!(
        [(403, json!("account_disabled")), (409, json!("last_admin"))].contains(&answers[1]),
        "{answers:?}"
    );
    let enabled: Vec<_> = t
        .server()
        .store
        .users()
        .await
        .unwrap()
        .into_iter()
        .filter(|u| !u.disabled)
        .collect();
    assert_eq!(enabled.len(), 1);
    let last = &enabled[0];
    let refused = t.server().store.set_disabled(last.id, true).await.unwrap();
    assert!(refused.is_err(), "the last enabled admin was disabled");
    let last = if last.username == "ann" { &ann } else { &root };
    let (status, body) = patch(
        &t,
        "/api/users/not-an-id",
        &last.token,
        json!({"disabled": true}),
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (404, Some("unknown_user")));
}

#[tokio::test]
async fn e_mail_past_the_hourly_limits_is_refused_with_429_and_not_sent() {
    let mut relay = Relay::start().await;
    let port = relay.port.to_string();
    let t = TestServer::start_with(&[
        ("TANDEM_MAIL_ENABLED", "true"),
        ("TANDEM_MAIL_SMTP_HOST", "127.0.0.1"),
        ("TANDEM_MAIL_SMTP_PORT", &port),
        ("TANDEM_MAIL_FROM", "Tandem <support@example.com>"),
        ("TANDEM_MAIL_MAX_PER_SENDER_PER_HOUR", "2"),
        ("TANDEM_MAIL_MAX_PER_RECIPIENT_PER_HOUR", "1"),
    ])
    .await;
    let carol: Account = t.account("carol", AccountRole::Csr).await;
    let s = t.start_session(&carol, "Mail limits").await;
    let invites = format!(
        "/api/sessions/{}/invites",
        s["session"]["id"].as_str().unwrap()
    );
    let invite = |to: &str| json!({"email": to, "send": true});

    let (status, body) = t
        .post(&invites, Some(&carol.token), invite("dave@example.org"))
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(relay.message().await.contains("To: dave@example.org"));

    // A second e-mail to dave within the hour is past the recipient limit.
    let req = t
        .http
        .post(format!("{}{invites}", t.base))
        .bearer_auth(&carol.token)
        .json(&invite("dave@example.org"));
    let res = req.send().await.unwrap();
    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    let (status, body) = response(res).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("too_many_emails"))
    );

    // Carol's second e-mail (to erin) goes, and it is the next the relay sees: the refused
    // one was never sent.
    let (status, body) = t
        .post(&invites, Some(&carol.token), invite("erin@example.org"))
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(relay.message().await.contains("To: erin@example.org"));

    // A third from her, a recording link this time, is past the sender limit.
    let (id, _) = recording(&t, &carol, RecordingStatus::Ready).await;
    let (status, body) = t
        .post(
            &format!("/api/recordings/{id}/email"),
            Some(&carol.token),
            json!({"to": "frank@example.org"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("too_many_emails"))
    );

    let metrics = t.metrics().await;
    for limit in ["recipient", "sender"] {
        assert!(
            metrics.contains(&format!("tandem_mail_refused_total{{limit=\"{limit}\"}}")),
            "{metrics}"
        );
    }
}

#[tokio::test]
async fn the_console_disables_enables_and_signs_out_everywhere() {
    let t = TestServer::start().await;
    t.account("root", AccountRole::Admin).await;
    t.account("carol", AccountRole::Csr).await;
    let report = crate::common::browser::run_script(&t, "accounts.mjs", &["root", "carol"]).await;
    assert!(
        report["results"]["disabled"]
            .as_str()
            .is_some_and(|r| r.contains("disabled")),
        "{report}"
    );
}

#[tokio::test]
async fn signing_out_ends_that_sign_in_only_and_a_restart_keeps_it_ended() {
    // Issue 18 item 2: the console's Sign out ends the sign-in on the server, not only in the
    // tab; the account's other sign-ins go on.
    let dir = tempfile::tempdir().unwrap();
    let mut t = TestServer::start_in(dir.path(), &[]).await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let (status, other) = t
        .post(
            "/api/login",
            None,
            json!({"username": "carol", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(status, 200, "{other}");
    let other = other["token"].as_str().unwrap().to_string();

    let (status, body) = t.post("/api/logout", None, json!({})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let (status, _) = t.post("/api/logout", Some(&carol.token), json!({})).await;
    assert_eq!(status, 204);
    // The signed-out token is refused and the other sign-in goes on; after a restart too.
    async fn only_the_other_works(t: &TestServer, signed_out: &str, other: &str) {
        let (status, body) = t.get("/api/me", Some(signed_out)).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("signed_out")),
            "{body}"
        );
        let (status, _) = t.get("/api/me", Some(other)).await;
        assert_eq!(status, 200, "another sign-in of the account goes on");
    }
    only_the_other_works(&t, &carol.token, &other).await;
    t.stop().await;
    let t = TestServer::start_in(dir.path(), &[]).await;
    only_the_other_works(&t, &carol.token, &other).await;
}
