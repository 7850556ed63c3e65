//! Whole support sessions over real HTTP and WebSockets against a real server and SQLite file.

use crate::common::{TestServer, Ws};
use serde_json::json;
use tandem::store::AccountRole;

/// S1, S4, S5, S6, S7, S9, S10, S11, S12: an outbound session with two customers and an
/// assistant, from start to the stored report.
#[tokio::test]
async fn outbound_session_with_two_customers_an_assistant_consent_chat_handover_and_report() {
    let t = TestServer::start().await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let alex = t.account("alex", AccountRole::Csr).await;
    let zed = t.account("zed", AccountRole::Csr).await;

    // S1: a CSR starts a session and gets a unique 9-digit number.
    let s = t.start_session(&carol, "Printer offline").await;
    let sid = s["session"]["id"].as_str().unwrap().to_string();
    let number = s["session"]["number"].as_str().unwrap().to_string();
    assert_eq!(number.len(), 9);
    assert!(number.bytes().all(|b| b.is_ascii_digit()));
    let mut csr = t.connect(&s).await;
    assert_eq!(csr.welcome["role"], "csr");
    assert_eq!(csr.welcome["session"]["primary"], json!(csr.id()));

    // S1: a customer joins with the number.
    let d = t.join_by_number(&number, "Dave").await;
    let mut dave = t.connect(&d).await;
    assert_eq!(dave.welcome["role"], "customer");
    csr.event_where("participant_joined", |e| e["participant"]["name"] == "Dave")
        .await;

    // S4: a second customer through an invite link (with a ready mailto: link).
    let (status, inv) = t
        .post(
            &format!("/api/sessions/{sid}/invites"),
            Some(&carol.token),
            json!({"email": "erin@example.org"}),
        )
        .await;
    assert_eq!(status, 201, "{inv}");
    assert!(inv["link"].as_str().unwrap().contains("/join?invite="));
    // Issue 18 item 9: a short link, which leads to the long one; a wrong or unknown code
    // leads to the join page, which says so.
    let short = inv["short_link"].as_str().unwrap();
    assert!(short.len() < 60 && short.contains("/j/"), "{short}");
    let path = &short[short.find("/j/").unwrap()..];
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let follow = |path: String| {
        let c = no_redirects.clone();
        let url = format!("{}{path}", t.base);
        async move { c.get(url).send().await.unwrap() }
    };
    let res = follow(path.to_string()).await;
    assert_eq!(res.status(), 303);
    let long = inv["link"].as_str().unwrap();
    assert_eq!(
        res.headers()["location"],
        &long[long.find("/join?invite=").unwrap()..]
    );
    for wrong in ["/j/0000000000", "/j/short", "/j/ILOU%2F..%2F1234"] {
        let res = follow(wrong.to_string()).await;
        assert_eq!(res.status(), 303, "{wrong}");
        assert_eq!(res.headers()["location"], "/join?link=expired", "{wrong}");
    }
    assert!(
        inv["mailto"]
            .as_str()
            .unwrap()
            .starts_with("mailto:erin%40example.org?subject=")
    );
    assert_eq!(inv["emailed"], false);
    let (status, e) = t
        .post(
            "/api/join",
            None,
            json!({"invite": inv["token"], "name": "Erin", "email": "erin@example.org"}),
        )
        .await;
    assert_eq!(status, 201, "{e}");
    let mut erin = t.connect(&e).await;

    // S4: the customer already present is told; customers do not see each other's e-mail.
    let joined = dave
        .event_where("participant_joined", |e| e["participant"]["name"] == "Erin")
        .await;
    assert!(joined["participant"].get("email").is_none(), "{joined}");
    let joined = csr
        .event_where("participant_joined", |e| e["participant"]["name"] == "Erin")
        .await;
    assert_eq!(joined["participant"]["email"], "erin@example.org");

    // S5: another CSR joins as assistant by session number.
    let (status, a) = t
        .post("/api/assist", Some(&alex.token), json!({"number": number}))
        .await;
    assert_eq!(status, 201, "{a}");
    let mut asst = t.connect(&a).await;
    assert_eq!(
        asst.welcome["session"]["participants"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    // A CSR who is not in the session cannot invite to it.
    let (status, _) = t
        .post(
            &format!("/api/sessions/{sid}/invites"),
            Some(&zed.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 403);

    // S6: the participants list.
    let (status, view) = t
        .get(&format!("/api/sessions/{sid}"), Some(&carol.token))
        .await;
    assert_eq!(status, 200);
    let roles: Vec<_> = view["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["role"].as_str().unwrap().to_string(),
                p["primary"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        vec![
            ("carol (display)".into(), "csr".into(), true),
            ("Dave".into(), "customer".into(), false),
            ("Erin".into(), "customer".into(), false),
            ("alex (display)".into(), "csr".into(), false),
        ]
    );
    assert_eq!(view["selected_customer"], json!(dave.id()));

    // S10: chat to everyone, and to one.
    dave.chat("hello everyone", None).await.unwrap();
    for ws in [&mut csr, &mut erin, &mut asst] {
        ws.event_where("chat", |e| e["text"] == "hello everyone")
            .await;
    }
    let dave_id = dave.id();
    csr.chat("just for you, Dave", Some(&dave_id))
        .await
        .unwrap();
    let private = dave
        .event_where("chat", |e| e["text"] == "just for you, Dave")
        .await;
    assert_eq!(private["to"], json!(dave_id));
    erin.chat("marker", None).await.unwrap();
    asst.event_where("chat", |e| e["text"] == "marker").await;
    // Events arrive in order, so having seen the later marker, they would have seen the private one.
    for ws in [&erin, &asst] {
        assert!(!ws.saw_event("chat", |e| e["text"] == "just for you, Dave"));
    }

    // S9: consent asked, denied; asked again, granted with "allow all"; then not asked again.
    csr.cmd(json!({"type": "request_activity", "activity": "view_desktop"}))
        .await
        .unwrap();
    let asked = dave.event("consent_requested").await;
    assert_eq!(asked["activity"], "view_desktop");
    let request = asked["request"].clone();
    assert_eq!(
        erin.cmd(json!({"type": "consent_reply", "request": request, "grant": true}))
            .await,
        Err("unknown_consent_request".into()),
        "only the asked customer can answer"
    );
    dave.cmd(json!({"type": "consent_reply", "request": request, "grant": false}))
        .await
        .unwrap();
    let answered = csr.event("consent_answered").await;
    assert_eq!(answered["granted"], false);

    csr.cmd(json!({"type": "request_activity", "activity": "view_desktop"}))
        .await
        .unwrap();
    let asked = dave
        .event_where("consent_requested", |e| e["request"] != request)
        .await;
    dave.cmd(json!({"type": "consent_reply", "request": asked["request"], "grant": true, "allow_all": true}))
        .await
        .unwrap();
    let started = asst.event("activity_started").await;
    assert_eq!(
        (
            started["activity"].as_str(),
            started["pre_approved"].as_bool()
        ),
        (Some("view_desktop"), Some(false))
    );
    csr.cmd(json!({"type": "request_activity", "activity": "file_transfer"}))
        .await
        .unwrap();
    let started = csr
        .event_where("activity_started", |e| e["activity"] == "file_transfer")
        .await;
    assert_eq!(started["pre_approved"], true);
    assert!(!dave.saw_event("consent_requested", |e| e["activity"] == "file_transfer"));
    // Only the primary may ask; customers and assistants are refused.
    assert_eq!(
        asst.cmd(json!({"type": "request_activity", "activity": "control_desktop"}))
            .await,
        Err("not_primary".into())
    );
    assert_eq!(
        dave.cmd(json!({"type": "request_activity", "activity": "control_desktop"}))
            .await,
        Err("not_primary".into())
    );

    // S6: selecting the other customer ends the sharing on the first.
    let erin_id = erin.id();
    csr.cmd(json!({"type": "select_customer", "customer": erin_id}))
        .await
        .unwrap();
    let stopped = dave.event("activity_stopped").await;
    assert_eq!(
        (stopped["activity"].as_str(), stopped["cause"].as_str()),
        (Some("view_desktop"), Some("customer_changed"))
    );

    // V1, V3: a voice call with the CSR holding the microphone.
    csr.cmd(json!({"type": "start_voice_call"})).await.unwrap();
    let asst_id = asst.id();
    let csr_id = csr.id();

    // S7: control to the assistant: activities stop, the voice call goes on, the former
    // primary cannot end the session; then control comes back.
    csr.cmd(json!({"type": "hand_control", "to": asst_id}))
        .await
        .unwrap();
    let handed = dave.event("control_handed").await;
    assert_eq!(handed["to"], json!(asst_id));
    csr.event_where("activity_stopped", |e| {
        e["activity"] == "file_transfer" && e["cause"] == "control_handed_over"
    })
    .await;
    assert_eq!(
        csr.cmd(json!({"type": "end_session", "confirm": true}))
            .await,
        Err("not_primary".into())
    );
    asst.cmd(json!({"type": "hand_control", "to": csr_id}))
        .await
        .unwrap();
    csr.event_where("control_handed", |e| e["to"] == json!(csr_id))
        .await;
    assert!(
        !csr.saw_event("voice_call_ended", |_| true),
        "the voice call survived the hand-over"
    );

    // S12: a customer cannot end the session.
    assert_eq!(
        dave.cmd(json!({"type": "end_session", "confirm": true}))
            .await,
        Err("not_primary".into())
    );

    // S11: notes are for staff only.
    csr.cmd(json!({"type": "set_notes", "text": "draft"}))
        .await
        .unwrap();
    asst.event("notes_updated").await;

    // S12: the primary ends it after confirming, with the reviewed notes.
    assert_eq!(
        csr.cmd(json!({"type": "end_session"})).await,
        Err("confirmation_required".into())
    );
    csr.cmd(json!({"type": "end_session", "confirm": true, "notes": "Reinstalled the driver; printer online."}))
        .await
        .unwrap();
    for ws in [&mut dave, &mut erin, &mut asst, &mut csr] {
        let ended = ws.event("session_ended").await;
        assert_eq!(ended["reason"], "ended_by_csr");
        ws.frame("bye").await;
        ws.until_closed().await;
    }
    assert!(!dave.saw_event("notes_updated", |_| true));
    assert!(!erin.saw_event("consent_requested", |_| true));

    // The stored report.
    let (status, report) = t
        .get(&format!("/api/sessions/{sid}/report"), Some(&carol.token))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["notes"], "Reinstalled the driver; printer online.");
    assert_eq!(report["session"]["status"], "ended");
    let parts = report["participants"].as_array().unwrap();
    assert_eq!(parts.len(), 4);
    assert!(
        parts
            .iter()
            .all(|p| p["left_at"].is_i64() && p["joined_at"].is_i64())
    );
    let chat = report["chat"].as_array().unwrap();
    assert_eq!(chat.len(), 3);
    assert_eq!(chat[1]["to_name"], "Dave");
    let answers: Vec<_> = report["consent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["answer"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(answers, ["asked", "denied", "asked", "granted"]);
    // The assistant took part and may read it; another CSR may not; customers have no account.
    let (status, _) = t
        .get(&format!("/api/sessions/{sid}/report"), Some(&alex.token))
        .await;
    assert_eq!(status, 200);
    let (status, _) = t
        .get(&format!("/api/sessions/{sid}/report"), Some(&zed.token))
        .await;
    assert_eq!(status, 403);
    let (status, _) = t.get(&format!("/api/sessions/{sid}/report"), None).await;
    assert_eq!(status, 401);
    // The ended session takes no one any more.
    let (status, body) = t
        .post("/api/join", None, json!({"number": number, "name": "Late"}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("unknown_session"))
    );
}

/// S8: transfer to a queue with the 345-character limit; an agent of that queue takes over.
#[tokio::test]
async fn transfer_to_a_queue_enforces_the_message_limit_and_an_agent_takes_over() {
    let t = TestServer::start().await;
    let admin = t.account("root", AccountRole::Admin).await;
    let first = t.account("first", AccountRole::Agent).await;
    let second = t.account("second", AccountRole::Agent).await;
    let plain = t.account("plain", AccountRole::Csr).await;

    let (status, q) = t
        .post(
            "/api/queues",
            Some(&admin.token),
            json!({"name": "Tier 2", "agents": [second.id]}),
        )
        .await;
    assert_eq!(status, 201, "{q}");
    let queue = q["id"].as_str().unwrap().to_string();
    // Only agents can be queue members.
    let (status, body) = t
        .post(
            "/api/queues",
            Some(&admin.token),
            json!({"name": "Bad", "agents": [plain.id]}),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (422, Some("not_an_agent")));

    let s = t.start_session(&first, "Escalation").await;
    let sid = s["session"]["id"].as_str().unwrap().to_string();
    let mut csr = t.connect(&s).await;
    let c = t
        .join_by_number(s["session"]["number"].as_str().unwrap(), "Cathy")
        .await;
    let mut cathy = t.connect(&c).await;
    csr.cmd(json!({"type": "start_voice_call"})).await.unwrap();

    let target = json!({"kind": "queue", "queue": queue});
    assert_eq!(
        csr.cmd(json!({"type": "transfer", "target": target, "message": "m".repeat(346)}))
            .await,
        Err("transfer_message_too_long".into())
    );
    assert_eq!(
        csr.cmd(json!({"type": "transfer", "target": {"kind": "queue", "queue": uuid_like()}}))
            .await,
        Err("invalid_transfer_target".into())
    );
    // Refused transfers changed nothing: the CSR is still primary and can act.
    csr.chat("still here", None).await.unwrap();
    assert!(!cathy.saw_event("session_transferred", |_| true));

    let message = "é".repeat(345);
    csr.cmd(json!({"type": "transfer", "target": target, "message": message}))
        .await
        .unwrap();
    let transferred = cathy.event("session_transferred").await;
    // Issue 18 (S8): the message is for the agents who take it over, never for the customer.
    assert!(transferred["message"].is_null(), "{transferred}");
    // The transferring CSR leaves and the voice call they started ends.
    cathy.event("voice_call_ended").await;
    cathy
        .event_where("participant_left", |e| e["reason"] == "transferred")
        .await;
    csr.frame("bye").await;
    csr.until_closed().await;

    // The queue's agent sees the waiting session; others do not; non-agents cannot look.
    let (status, offers) = t.get("/api/transfers", Some(&second.token)).await;
    assert_eq!(status, 200);
    assert_eq!(offers.as_array().unwrap().len(), 1);
    assert_eq!(offers[0]["session"], json!(sid));
    assert_eq!(offers[0]["queue_name"], "Tier 2");
    let (_, none) = t.get("/api/transfers", Some(&first.token)).await;
    assert_eq!(none.as_array().unwrap().len(), 0);
    let (status, _) = t.get("/api/transfers", Some(&plain.token)).await;
    assert_eq!(status, 403);
    let (status, _) = t
        .post(
            &format!("/api/transfers/{sid}/accept"),
            Some(&first.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 409);

    let (status, taken) = t
        .post(
            &format!("/api/queues/{queue}/next"),
            Some(&second.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 201, "{taken}");
    assert_eq!(taken["message"], json!(message));
    let mut agent = t.connect(&taken).await;
    assert_eq!(agent.welcome["session"]["primary"], json!(agent.id()));
    assert_eq!(agent.welcome["session"]["status"], "active");
    cathy.event("transfer_accepted").await;
    // Now the agent runs the session.
    agent
        .cmd(json!({"type": "request_activity", "activity": "view_desktop"}))
        .await
        .unwrap();
    cathy.event("consent_requested").await;
    let (status, body) = t
        .post(
            &format!("/api/queues/{queue}/next"),
            Some(&second.token),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("nothing_waiting"))
    );
}

/// S8: a transfer offered to named agents is for them only.
#[tokio::test]
async fn transfer_to_named_agents() {
    let t = TestServer::start().await;
    let first = t.account("first", AccountRole::Agent).await;
    let named = t.account("named", AccountRole::Agent).await;
    let other = t.account("other", AccountRole::Agent).await;
    let plain = t.account("plain", AccountRole::Csr).await;
    let s = t.start_session(&first, "x").await;
    let sid = s["session"]["id"].as_str().unwrap().to_string();
    let mut csr = t.connect(&s).await;
    // Only real agent accounts can be named; a refused transfer changes nothing.
    for bad in [
        json!([named.id, plain.id]),
        json!(["00000000-0000-4000-8000-000000000000"]),
    ] {
        assert_eq!(
            csr.cmd(json!({"type": "transfer", "target": {"kind": "agents", "agents": bad}}))
                .await,
            Err("invalid_transfer_target".into())
        );
    }
    csr.chat("still primary", None).await.unwrap();
    csr.cmd(json!({"type": "transfer", "target": {"kind": "agents", "agents": [named.id]}}))
        .await
        .unwrap();
    let (status, _) = t
        .post(
            &format!("/api/transfers/{sid}/accept"),
            Some(&other.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 409);
    let (status, taken) = t
        .post(
            &format!("/api/transfers/{sid}/accept"),
            Some(&named.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 201, "{taken}");
    let agent = t.connect(&taken).await;
    assert_eq!(agent.welcome["session"]["primary"], json!(agent.id()));
}

/// S10: admin quick phrases reach chat only when enabled, and only from CSRs.
#[tokio::test]
async fn quick_phrases_follow_the_admin_setting() {
    let t = TestServer::start().await;
    let admin = t.account("root", AccountRole::Admin).await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let (status, _) = t
        .put("/api/settings", Some(&carol.token), json!({"quick_phrases": ["x"], "quick_phrases_enabled": true, "max_customers_per_session": 5}))
        .await;
    assert_eq!(status, 403, "only admins change settings");
    let s = t.start_session(&carol, "before").await;
    let mut csr = t.connect(&s).await;
    assert_eq!(
        csr.cmd(json!({"type": "chat", "phrase": 0})).await,
        Err("quick_phrases_disabled".into())
    );
    let (status, _) = t
        .put(
            "/api/settings",
            Some(&admin.token),
            json!({"quick_phrases": ["Please wait while I check."], "quick_phrases_enabled": true, "max_customers_per_session": 1}),
        )
        .await;
    assert_eq!(status, 200);
    let s = t.start_session(&carol, "after").await;
    let number = s["session"]["number"].as_str().unwrap().to_string();
    let mut csr = t.connect(&s).await;
    let c = t.join_by_number(&number, "Cy").await;
    let mut cy = t.connect(&c).await;
    csr.cmd(json!({"type": "chat", "phrase": 0})).await.unwrap();
    cy.event_where("chat", |e| e["text"] == "Please wait while I check.")
        .await;
    assert_eq!(
        cy.cmd(json!({"type": "chat", "phrase": 0})).await,
        Err("not_staff".into())
    );
    // The admin's customer limit applies to new sessions.
    let (status, body) = t
        .post(
            "/api/join",
            None,
            json!({"number": number, "name": "Second"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("customer_limit"))
    );
}

/// S12: a customer may leave at any time; the primary may not just leave.
#[tokio::test]
async fn customers_leave_and_the_session_goes_on() {
    let t = TestServer::start().await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let s = t.start_session(&carol, "x").await;
    let mut csr = t.connect(&s).await;
    let c = t
        .join_by_number(s["session"]["number"].as_str().unwrap(), "Cy")
        .await;
    let mut cy = t.connect(&c).await;
    assert_eq!(
        csr.cmd(json!({"type": "leave"})).await,
        Err("primary_cannot_leave".into())
    );
    cy.cmd(json!({"type": "leave"})).await.unwrap();
    cy.frame("bye").await;
    cy.until_closed().await;
    let left = csr.event("participant_left").await;
    assert_eq!(left["reason"], "left");
    csr.chat("anyone?", None).await.unwrap();
    // The customer's token no longer opens the session.
    let url = format!(
        "{}/ws?token={}",
        t.base.replace("http://", "ws://"),
        c["token"].as_str().unwrap()
    );
    let (mut again, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    use futures_util::StreamExt;
    let first = again.next().await.unwrap().unwrap();
    assert!(
        first.to_text().unwrap().contains("unknown_participant"),
        "{first}"
    );
    let _ = Ws::connect; // keep the import used when this test is alone
}

fn uuid_like() -> String {
    "00000000-0000-4000-8000-000000000000".into()
}

/// Issue 18: a participant whose connection drops is said to be away to the others (with the
/// grace they have), and back when the same token connects again within it; the page that
/// comes back gets the whole session again in its welcome, and the session goes on.
#[tokio::test]
async fn a_dropped_connection_is_away_then_back_and_the_session_goes_on() {
    let t = TestServer::start_with(&[("TANDEM_SESSIONS_RECONNECT_GRACE_SECS", "30")]).await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let s = t.start_session(&carol, "x").await;
    let csr = t.connect(&s).await;
    let c = t
        .join_by_number(s["session"]["number"].as_str().unwrap(), "Cy")
        .await;
    let mut cy = t.connect(&c).await;
    let (carol_id, cy_id) = (csr.id(), cy.id());
    // Carol's connection drops (no leave).
    drop(csr);
    let away = cy.frame("presence").await;
    assert_eq!(away["away"], true);
    assert_eq!(away["participant"], carol_id.as_str());
    assert_eq!(away["grace_secs"], 30);
    // Cy chats meanwhile; Carol comes back with the same token.
    cy.chat("still there?", None).await.unwrap();
    let mut csr = t.connect(&s).await;
    let back = cy.frame("presence").await;
    assert_eq!(back["away"], false);
    // The session did not end, and Carol can go on.
    csr.chat("back now", None).await.unwrap();
    let said = cy.event_where("chat", |e| e["text"] == "back now").await;
    assert_eq!(said["from"], carol_id.as_str());
    // Cy's connection drops: Carol is told, and her next welcome lists Cy as away.
    drop(cy);
    let away = csr.frame("presence").await;
    assert_eq!(away["participant"], cy_id.as_str());
    let again = Ws::connect(&t.base, s["token"].as_str().unwrap()).await;
    let welcome = again.welcome.clone();
    assert_eq!(welcome["limits"]["reconnect_grace_secs"], 30);
    assert_eq!(welcome["session"]["away"], json!([cy_id]));
}
