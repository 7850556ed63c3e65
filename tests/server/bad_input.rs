//! Bad input gets a clear problem document (or error frame) with a stable code, and changes
//! nothing.

use crate::common::{TestServer, response};
use serde_json::json;
use tandem::auth::{Token, unix_secs};
use tandem::store::AccountRole;
use tandem_actors::ids::AccountId;

#[tokio::test]
async fn malformed_and_wrongly_typed_bodies_are_refused_and_create_nothing() {
    let t = TestServer::start().await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let url = format!("{}/api/sessions", t.base);

    let r = t
        .http
        .post(&url)
        .bearer_auth(&carol.token)
        .header("content-type", "application/json")
        .body("{\"topic\": ")
        .send()
        .await
        .unwrap();
    let (status, body) = response(r).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("malformed_json"))
    );

    let r = t
        .http
        .post(&url)
        .bearer_auth(&carol.token)
        .body("{}")
        .send()
        .await
        .unwrap();
    let (status, body) = response(r).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );

    let (status, body) = t
        .post("/api/sessions", Some(&carol.token), json!({"topic": 5}))
        .await;
    assert_eq!((status, body["code"].as_str()), (422, Some("invalid_body")));
    let (status, body) = t
        .post(
            "/api/sessions",
            Some(&carol.token),
            json!({"topic": "x", "colour": "red"}),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (422, Some("invalid_body")));
    let (status, body) = t
        .post(
            "/api/sessions",
            Some(&carol.token),
            json!({"topic": "t".repeat(201)}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid_topic"))
    );

    let r = t
        .http
        .post(&url)
        .bearer_auth(&carol.token)
        .header("content-type", "application/json")
        .body(format!("{{\"topic\": \"{}\"}}", "x".repeat(300 * 1024)))
        .send()
        .await
        .unwrap();
    let (status, body) = response(r).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("body_too_large"))
    );

    // Nothing was created by any of that.
    let (status, list) = t.get("/api/sessions", Some(&carol.token)).await;
    assert_eq!(status, 200);
    assert_eq!(list["sessions"].as_array().unwrap().len(), 0);

    let (status, body) = t.get("/api/no/such/thing", None).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let (status, body) = t.put("/api/join", None, json!({})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
}

#[tokio::test]
async fn unknown_or_malformed_session_numbers_and_ids() {
    let t = TestServer::start().await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let (status, body) = t
        .post(
            "/api/join",
            None,
            json!({"number": "123456789", "name": "Dave"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("unknown_session"))
    );
    let (status, body) = t
        .post(
            "/api/join",
            None,
            json!({"number": "12345", "name": "Dave"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid_session_number"))
    );
    let (status, body) = t.post("/api/join", None, json!({"name": "Dave"})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("number_or_invite"))
    );
    let s = t.start_session(&carol, "x").await;
    for name in ["", "   ", &"n".repeat(81), "bad\u{0007}name"] {
        let (status, body) = t
            .post(
                "/api/join",
                None,
                json!({"number": s["session"]["number"], "name": name}),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("invalid_name")),
            "{name:?}"
        );
    }
    let (status, body) = t
        .post(
            "/api/join",
            None,
            json!({"number": s["session"]["number"], "name": "D", "email": "not-an-address"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid_email"))
    );
    let (status, body) = t.get("/api/sessions/not-a-uuid", Some(&carol.token)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("unknown_session"))
    );
    let (status, body) = t
        .get(
            "/api/sessions/00000000-0000-4000-8000-000000000000/report",
            Some(&carol.token),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("unknown_session"))
    );
    let (status, _) = t.get("/api/sessions?limit=0", Some(&carol.token)).await;
    assert_eq!(status, 400);
    let (status, _) = t
        .get("/api/sessions?from=yesterday", Some(&carol.token))
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn guessing_session_numbers_is_throttled_per_address() {
    let t = TestServer::start().await;
    let mut last = 0;
    for i in 0..12 {
        let (status, _) = t
            .post(
                "/api/join",
                None,
                json!({"number": format!("1000000{i:02}"), "name": "Mallory"}),
            )
            .await;
        last = status;
        if status == 429 {
            break;
        }
        assert_eq!(status, 404);
    }
    assert_eq!(last, 429, "ten unknown numbers in a minute, then refused");
}

#[tokio::test]
async fn expired_tampered_and_wrong_kind_tokens_are_refused() {
    let t = TestServer::start().await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let (status, me) = t.get("/api/me", Some(&carol.token)).await;
    assert_eq!((status, me["username"].as_str()), (200, Some("carol")));
    assert!(me.get("password_hash").is_none());

    let account: AccountId = carol.id.parse().unwrap();
    let signer = &t.server().signer;
    let expired = signer.sign(
        &Token::Access {
            account,
            role: AccountRole::Csr,
            generation: 0,
        },
        unix_secs() - 7200,
        3600,
    );
    let (status, body) = t.get("/api/me", Some(&expired)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("token_expired"))
    );

    let mut tampered = carol.token.clone().into_bytes();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == b'a' { b'b' } else { b'a' };
    let tampered = String::from_utf8(tampered).unwrap();
    let (status, body) = t.get("/api/me", Some(&tampered)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_token"))
    );

    // A token signed by another server's key.
    let other = tandem::auth::Signer::from_secret(&[1; 32]);
    let foreign = other.sign(
        &Token::Access {
            account,
            role: AccountRole::Admin,
            generation: 0,
        },
        unix_secs(),
        60,
    );
    let (status, body) = t.get("/api/me", Some(&foreign)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_token"))
    );

    let (status, body) = t.get("/api/me", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("unauthenticated"))
    );

    // A participant token is not a sign-in token, and a sign-in token does not open a WebSocket.
    let s = t.start_session(&carol, "x").await;
    let (status, body) = t.get("/api/me", s["token"].as_str()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("wrong_token_kind"))
    );
    for (token, code) in [
        (carol.token.as_str(), "wrong_token_kind"),
        (tampered.as_str(), "invalid_token"),
        ("", "invalid_token"),
    ] {
        let url = format!("{}/ws?token={}", t.base.replace("http://", "ws://"), token);
        match tokio_tungstenite::connect_async(url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), 401);
                let body: serde_json::Value =
                    serde_json::from_slice(resp.body().as_deref().unwrap()).unwrap();
                assert_eq!(body["code"], code);
            }
            other => panic!("expected a 401, got {other:?}"),
        }
    }
    // An expired invite.
    let sid = s["session"]["id"].as_str().unwrap().parse().unwrap();
    let old_invite = signer.sign(
        &Token::Invite {
            session: sid,
            role: tandem_actors::protocol::Role::Customer,
        },
        unix_secs() - 7200,
        3600,
    );
    let (status, body) = t
        .post(
            "/api/join",
            None,
            json!({"invite": old_invite, "name": "Late"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("token_expired"))
    );
}

#[tokio::test]
async fn wrong_roles_are_refused() {
    let t = TestServer::start().await;
    let admin = t.account("root", AccountRole::Admin).await;
    let carol = t.account("carol", AccountRole::Csr).await;

    let (status, _) = t
        .post("/api/users", Some(&carol.token), json!({"username": "eve", "password": "0123456789ab", "display_name": "Eve", "email": "e@x.org", "role": "admin"}))
        .await;
    assert_eq!(status, 403, "a CSR cannot make accounts");
    let (status, body) = t.post("/api/sessions", Some(&admin.token), json!({})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden")),
        "admins administer; CSRs support"
    );
    let (status, _) = t
        .post("/api/queues", Some(&carol.token), json!({"name": "q"}))
        .await;
    assert_eq!(status, 403);
    let (status, _) = t.get("/api/users", Some(&carol.token)).await;
    assert_eq!(status, 403);

    // Customers have no account: nothing staff-only is open to them.
    let s = t.start_session(&carol, "x").await;
    let sid = s["session"]["id"].as_str().unwrap();
    let c = t
        .join_by_number(s["session"]["number"].as_str().unwrap(), "Cy")
        .await;
    let customer_token = c["token"].as_str().unwrap();
    for path in [
        format!("/api/sessions/{sid}/invites"),
        "/api/sessions".to_string(),
        "/api/assist".to_string(),
    ] {
        let (status, _) = t
            .post(
                &path,
                Some(customer_token),
                json!({"number": s["session"]["number"]}),
            )
            .await;
        assert_eq!(status, 401, "{path}");
    }
    // An assistant invite needs a signed-in CSR.
    let (status, inv) = t
        .post(
            &format!("/api/sessions/{sid}/invites"),
            Some(&carol.token),
            json!({"role": "assistant"}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, body) = t
        .post(
            "/api/join",
            None,
            json!({"invite": inv["token"], "name": "Sneaky"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    // A signed-in CSR uses it without giving a name: their account names them.
    let alex = t.account("alex", AccountRole::Csr).await;
    let (status, joined) = t
        .post(
            "/api/join",
            Some(&alex.token),
            json!({"invite": inv["token"]}),
        )
        .await;
    assert_eq!(
        (status, joined["participant"]["role"].as_str()),
        (201, Some("csr"))
    );

    // Inside the session a customer cannot act as a CSR.
    let mut cy = t.connect(&c).await;
    let mut csr = t.connect(&s).await;
    for cmd in [
        json!({"type": "request_activity", "activity": "control_desktop"}),
        json!({"type": "start_voice_call"}),
        json!({"type": "hand_control", "to": cy.id()}),
        json!({"type": "end_session", "confirm": true}),
        json!({"type": "select_customer", "customer": cy.id()}),
    ] {
        assert_eq!(
            cy.cmd(cmd.clone()).await,
            Err("not_primary".into()),
            "{cmd}"
        );
    }
    assert_eq!(
        cy.cmd(json!({"type": "set_notes", "text": "mine"})).await,
        Err("not_staff".into())
    );
    csr.chat("still fine", None).await.unwrap();
    cy.event_where("chat", |e| e["text"] == "still fine").await;
    assert!(!csr.saw_event("notes_updated", |_| true));
}

#[tokio::test]
async fn bad_websocket_frames_get_error_frames_and_change_nothing() {
    let t = TestServer::start_with(&[("TANDEM_SERVER_MAX_FRAME_BYTES", "4096")]).await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let s = t.start_session(&carol, "x").await;
    let mut csr = t.connect(&s).await;
    let c = t
        .join_by_number(s["session"]["number"].as_str().unwrap(), "Cy")
        .await;
    let mut cy = t.connect(&c).await;

    cy.send_raw("{not json").await;
    assert_eq!(cy.frame("error").await["code"], "malformed_json");
    cy.send(json!({"type": "launch_rockets", "ref": 7})).await;
    let e = cy.frame("error").await;
    assert_eq!(
        (e["code"].as_str(), e["ref"].as_u64()),
        (Some("invalid_command"), Some(7))
    );
    cy.send(json!({"type": "chat"})).await;
    assert_eq!(cy.frame("error").await["code"], "bad_chat_text");
    // Oversized chat text (over the 2000-character limit) but within the frame limit.
    assert_eq!(
        cy.chat(&"x".repeat(2001), None).await,
        Err("bad_chat_text".into())
    );
    // A frame over the configured 4096 bytes.
    cy.send(json!({"type": "chat", "text": "y".repeat(5000)}))
        .await;
    assert_eq!(cy.frame("error").await["code"], "message_too_large");

    // The session is unaffected and nobody saw any of it.
    cy.chat("after all that", None).await.unwrap();
    csr.event_where("chat", |e| e["text"] == "after all that")
        .await;
    assert_eq!(
        csr.seen
            .iter()
            .filter(|f| f["event"]["type"] == "chat")
            .count(),
        1
    );

    // A client that only sends garbage is cut off; the session goes on without it.
    for _ in 0..60 {
        cy.send_raw("garbage").await;
    }
    cy.until_closed().await;
    let last = cy.seen.last().unwrap()["_closed"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(last.contains("too many bad frames"), "{last}");
    csr.chat("CSR unaffected", None).await.unwrap();
}

#[tokio::test]
async fn a_participant_flooding_commands_is_rate_limited_without_harming_others() {
    let t = TestServer::start_with(&[
        ("TANDEM_SESSIONS_COMMANDS_PER_SECOND", "1"),
        ("TANDEM_SESSIONS_COMMAND_BURST", "5"),
    ])
    .await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let s = t.start_session(&carol, "x").await;
    let mut csr = t.connect(&s).await;
    let c = t
        .join_by_number(s["session"]["number"].as_str().unwrap(), "Cy")
        .await;
    let mut cy = t.connect(&c).await;
    let mut refused = 0;
    for i in 0..20 {
        if cy.chat(&format!("spam {i}"), None).await == Err("rate_limited".into()) {
            refused += 1;
        }
    }
    assert!(refused >= 10, "only {refused} of 20 refused");
    csr.chat("the CSR is not slowed down", None).await.unwrap();
    let metrics = t.metrics().await;
    assert!(metrics.contains("tandem_commands_rate_limited_total"));
}

#[tokio::test]
async fn login_failures_are_throttled() {
    let t = TestServer::start().await;
    t.account("carol", AccountRole::Csr).await;
    for _ in 0..5 {
        let (status, body) = t
            .post(
                "/api/login",
                None,
                json!({"username": "carol", "password": "wrong password!"}),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("invalid_credentials"))
        );
    }
    let (status, body) = t
        .post(
            "/api/login",
            None,
            json!({"username": "carol", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("too_many_attempts"))
    );
    // Unknown users get the same answer as wrong passwords.
    let (status, body) = t
        .post(
            "/api/login",
            None,
            json!({"username": "nobody", "password": "whatever123"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_credentials"))
    );
}

#[tokio::test]
async fn the_websocket_endpoint_refuses_plain_http() {
    let t = TestServer::start().await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let s = t.start_session(&carol, "x").await;
    let (status, body) = t
        .get(&format!("/ws?token={}", s["token"].as_str().unwrap()), None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("not_a_websocket"))
    );
}

#[tokio::test]
async fn metrics_need_the_configured_token() {
    let token = "scrape-0123456789abcdef";
    let t = TestServer::start_with(&[("TANDEM_SERVER_METRICS_TOKEN", token)]).await;
    let url = format!("{}/metrics", t.base);
    for wrong in [None, Some("not the token at all")] {
        let mut req = t.http.get(&url);
        if let Some(w) = wrong {
            req = req.bearer_auth(w);
        }
        let (status, body) = response(req.send().await.unwrap()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("metrics_token_required")),
            "{body}"
        );
    }
    let r = t.http.get(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("tandem_http_requests_total")
    );
}
