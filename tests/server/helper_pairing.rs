//! Tandem Helper's way in (issue 16): a customer's pairing code, the helper joining as their
//! computer with it, and the download (docs/helper.md "Getting the helper").

use serde_json::{Value, json};
use tandem::store::AccountRole;

use crate::common::{TestServer, Ws};

/// A session with its CSR connected and the customer `name` joined and connected.
async fn session_with_customer(s: &TestServer, name: &str) -> (Ws, Value, Ws) {
    let csr = s.account("carol", AccountRole::Csr).await;
    let started = s.start_session(&csr, "printer").await;
    let csr_ws = s.connect(&started).await;
    let number = started["session"]["number"].as_str().unwrap();
    let joined = s.join_by_number(number, name).await;
    let customer = s.connect(&joined).await;
    (csr_ws, joined, customer)
}

async fn code_for(s: &TestServer, joined: &Value) -> String {
    let (status, body) = s
        .post("/api/helper/codes", joined["token"].as_str(), json!({}))
        .await;
    assert_eq!(status, 201, "{body}");
    body["code"].as_str().unwrap().to_string()
}

async fn pair(s: &TestServer, code: &str) -> (u16, Value) {
    s.post("/api/helper/join", None, json!({ "code": code }))
        .await
}

/// [`pair`] for a helper that says what it `can` do (issue 17).
async fn pair_able(s: &TestServer, code: &str, can: &[&str]) -> (u16, Value) {
    s.post(
        "/api/helper/join",
        None,
        json!({ "code": code, "can": can }),
    )
    .await
}

#[tokio::test]
async fn a_customers_helper_pairs_with_a_code_beside_them_and_leaves_with_them() {
    let s = TestServer::start().await;
    let (mut csr, joined, mut dave) = session_with_customer(&s, "Dave").await;
    let dave_id = dave.id();

    let (status, body) = s
        .post("/api/helper/codes", joined["token"].as_str(), json!({}))
        .await;
    assert_eq!(status, 201, "{body}");
    let code = body["code"].as_str().unwrap().to_string();
    assert!(
        code.len() == 9 && code.chars().filter(char::is_ascii_digit).count() == 8,
        "{code}"
    );
    assert_eq!(body["expires_in_secs"], 600);
    assert_eq!(body["download"], "/download/tandem-helper");

    let (status, paired) = pair(&s, &code).await;
    assert_eq!(status, 201, "{paired}");
    assert_eq!(paired["participant"]["name"], "Dave's computer");
    assert_eq!(paired["participant"]["computer_of"], json!(dave_id));
    let mut computer = s.connect(&paired).await;
    let computer_id = computer.id();

    // Everyone sees "Dave's computer" beside Dave.
    let shown = csr
        .event_where("participant_joined", |e| {
            e["participant"]["id"] == json!(computer_id)
        })
        .await;
    assert_eq!(shown["participant"]["name"], "Dave's computer");
    let attached = dave.event("computer_attached").await;
    assert_eq!(
        (&attached["computer"], &attached["customer"]),
        (&json!(computer_id), &json!(dave_id))
    );

    // A code works once.
    let (status, again) = pair(&s, &code).await;
    assert_eq!(
        (status, again["code"].as_str()),
        (410, Some("pairing_code_used")),
        "{again}"
    );

    // Dave leaves: his computer is told why and closed.
    dave.cmd(json!({"type": "leave"})).await.unwrap();
    let bye = computer.frame("bye").await;
    assert_eq!(bye["reason"], "customer_left");
    computer.until_closed().await;
    csr.event_where("participant_left", |e| {
        e["participant"] == json!(computer_id) && e["reason"] == "customer_left"
    })
    .await;
}

#[tokio::test]
async fn only_a_customer_present_gets_a_code_and_only_for_themself() {
    let s = TestServer::start().await;
    let csr = s.account("carol", AccountRole::Csr).await;
    let started = s.start_session(&csr, "printer").await;
    let _csr_ws = s.connect(&started).await;
    let number = started["session"]["number"].as_str().unwrap();

    let (status, body) = s.post("/api/helper/codes", None, json!({})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    // An account's token is not a participant's. (The primary CSR's own participant token gets
    // a code for the CSR's computer, to give control of their desktop: tests/server/give_control.rs.)
    let (status, body) = s
        .post("/api/helper/codes", Some(csr.token.as_str()), json!({}))
        .await;
    assert!(
        matches!(
            (status, body["code"].as_str()),
            (401, Some("wrong_token_kind")) | (403, Some("not_a_customer"))
        ),
        "{status} {body}"
    );
    // Joined but not connected yet: no code.
    let erin = s.join_by_number(number, "Erin").await;
    let (status, body) = s
        .post("/api/helper/codes", erin["token"].as_str(), json!({}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("not_connected"))
    );
    // A computer cannot ask for a code for another computer.
    let _erin_ws = s.connect(&erin).await;
    let (_, paired) = pair(&s, &code_for(&s, &erin).await).await;
    let _computer = s.connect(&paired).await;
    let (status, body) = s
        .post("/api/helper/codes", paired["token"].as_str(), json!({}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("not_a_customer"))
    );
}

#[tokio::test]
async fn wrong_malformed_and_replaced_codes_pair_nothing() {
    let s = TestServer::start().await;
    let (_csr, joined, _dave) = session_with_customer(&s, "Dave").await;
    let old = code_for(&s, &joined).await;
    let new = code_for(&s, &joined).await;
    assert_ne!(old, new);
    let (status, body) = pair(&s, &old).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (410, Some("pairing_code_replaced"))
    );
    let wrong = if new == "0000 0000" {
        "0000 0001"
    } else {
        "0000 0000"
    };
    let (status, body) = pair(&s, wrong).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("pairing_code_unknown"))
    );
    let (status, body) = pair(&s, "12ab").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("pairing_code_malformed"))
    );
    let (status, body) = s
        .post("/api/helper/join", None, json!({"code": new, "extra": 1}))
        .await;
    assert_eq!(status, 422, "{body}");
    // The newest code still works: the wrong ones spent nothing of it.
    let (status, body) = pair(&s, &new).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn every_code_tried_counts_and_guessing_is_refused_even_a_right_code() {
    let s = TestServer::start_with(&[("TANDEM_HELPER_WRONG_CODES_PER_ADDRESS", "3")]).await;
    let (_csr, joined, _dave) = session_with_customer(&s, "Dave").await;
    let code = code_for(&s, &joined).await;
    let wrong = if code == "0000 0000" {
        "0000 0001"
    } else {
        "0000 0000"
    };
    for _ in 0..3 {
        assert_eq!(pair(&s, wrong).await.0, 404);
    }
    let r = s
        .http
        .post(format!("{}/api/helper/join", s.base))
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap();
    let retry_after = r.headers().get("retry-after").cloned();
    let (status, body) = crate::common::response(r).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("too_many_attempts"))
    );
    assert!(retry_after.is_some());
    assert!(
        s.metrics()
            .await
            .contains("tandem_pairing_code_tries_total{result=\"address\"} 1")
    );
}

#[tokio::test]
async fn a_second_computer_for_one_customer_is_refused() {
    let s = TestServer::start().await;
    let (_csr, joined, _dave) = session_with_customer(&s, "Dave").await;
    let (_, paired) = pair(&s, &code_for(&s, &joined).await).await;
    let _computer = s.connect(&paired).await;
    let (status, body) = pair(&s, &code_for(&s, &joined).await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("computer_attached")),
        "{body}"
    );
}

#[tokio::test]
async fn the_helper_binary_is_served_with_its_digest_and_a_clear_404_without_one() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("helper-build");
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &bytes).unwrap();
    let s = TestServer::start_with(&[("TANDEM_HELPER_BINARY", file.to_str().unwrap())]).await;

    let (status, info) = s.get("/api/helper/download", None).await;
    assert_eq!(status, 200, "{info}");
    use sha2::Digest as _;
    let expected = hex::encode(sha2::Sha256::digest(&bytes));
    assert_eq!(info["sha256"], json!(expected));
    assert_eq!(info["bytes"], json!(bytes.len()));

    let r = s
        .http
        .get(format!("{}/download/tandem-helper", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(
        h["content-disposition"],
        "attachment; filename=\"tandem-helper\""
    );
    assert_eq!(h["content-type"], "application/octet-stream");
    assert_eq!(h["x-tandem-sha256"], expected.as_str());
    assert_eq!(r.bytes().await.unwrap().as_ref(), &bytes[..]);

    let missing = tmp.path().join("not-built");
    let s = TestServer::start_with(&[("TANDEM_HELPER_BINARY", missing.to_str().unwrap())]).await;
    for path in ["/download/tandem-helper", "/api/helper/download"] {
        let (status, body) = s.get(path, None).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("helper_not_built")),
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customers_page_offers_the_helper_for_control_and_then_says_the_question_is_there() {
    // Issue 16, items 4 and 9: tests/e2e/helper.mjs in Chromium; the journal holds what the
    // page showed.
    let s = TestServer::start().await;
    let carol = s.named_account("carol", "Carol", AccountRole::Csr).await;
    crate::common::browser::run_script(&s, "helper.mjs", &["carol"]).await;
    let (status, sessions) = s.get("/api/sessions", Some(&carol.token)).await;
    assert_eq!(status, 200, "{sessions}");
    let id = sessions["sessions"][0]["id"].as_str().unwrap().to_string();
    let (status, detail) = s
        .get(&format!("/api/sessions/{id}"), Some(&carol.token))
        .await;
    assert_eq!(status, 200, "{detail}");
    let names: Vec<&str> = detail["participants"]
        .as_array()
        .map(|p| p.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(names.contains(&"Dave's computer"), "{detail}");
}

#[tokio::test]
async fn control_waits_for_the_helper_and_its_question_moves_there_when_it_connects() {
    // Issue 16, items 4 and 9, over the WebSocket.
    let s = TestServer::start().await;
    let (mut csr, joined, mut dave) = session_with_customer(&s, "Dave").await;
    csr.cmd(json!({"type": "request_activity", "activity": "control_desktop"}))
        .await
        .unwrap();
    let asked = dave.event("consent_requested").await;
    assert_eq!(asked["helper_needed"], true, "{asked}");
    assert!(asked.get("computer").is_none(), "{asked}");
    // The page cannot say yes to what only the helper can do; it may say no.
    assert_eq!(
        dave.cmd(json!({"type": "consent_reply", "request": asked["request"], "grant": true}))
            .await,
        Err("helper_needed".into())
    );

    let code = code_for(&s, &joined).await;
    let (status, paired) = pair(&s, &code).await;
    assert_eq!(status, 201, "{paired}");
    let mut computer = s.connect(&paired).await;
    let computer_id = computer.id();
    dave.event_where("consent_withdrawn", |e| e["request"] == asked["request"])
        .await;
    let moved = dave.event("consent_requested").await;
    assert_eq!(
        (&moved["activity"], &moved["computer"]),
        (&json!("control_desktop"), &json!(computer_id)),
        "{moved}"
    );
    assert!(moved.get("helper_needed").is_none(), "{moved}");
    // The helper finds it in its welcome, and its yes starts control.
    let pending = &computer.welcome["session"]["pending_consents"];
    assert_eq!(pending[0]["request"], moved["request"], "{pending}");
    computer
        .cmd(json!({"type": "consent_reply", "request": moved["request"], "grant": true}))
        .await
        .unwrap();
    csr.event_where("activity_started", |e| e["activity"] == "control_desktop")
        .await;

    // The helper closes: control stops, and Dave stays.
    computer.cmd(json!({"type": "leave"})).await.unwrap();
    let stopped = csr
        .event_where("activity_stopped", |e| e["activity"] == "control_desktop")
        .await;
    assert_eq!(stopped["cause"], "computer_left", "{stopped}");
}

#[tokio::test]
async fn what_only_a_helper_does_is_refused_until_a_helper_that_can_connects() {
    // Issue 17, item 1 (no phantom activities), over HTTP and the WebSocket.
    let s = TestServer::start().await;
    let (mut csr, joined, mut dave) = session_with_customer(&s, "Dave").await;
    for activity in ["system_info", "run_script", "reboot", "login_as_user"] {
        assert_eq!(
            csr.cmd(json!({"type": "request_activity", "activity": activity}))
                .await,
            Err("helper_required".into()),
            "{activity} without a helper"
        );
    }
    // A name that is not an activity is refused; the code is not spent by it.
    let code = code_for(&s, &joined).await;
    let (status, body) = pair_able(&s, &code, &["make_coffee"]).await;
    assert_eq!(status, 422, "{body}");
    let (status, paired) = pair_able(&s, &code, &["system_info"]).await;
    assert_eq!(status, 201, "{paired}");
    let mut computer = s.connect(&paired).await;
    let computer_id = computer.id();
    let attached = dave.event("computer_attached").await;
    assert_eq!(attached["abilities"], json!(["system_info"]), "{attached}");
    // What it can is asked in its window; what it did not say stays refused.
    assert_eq!(
        csr.cmd(json!({"type": "request_activity", "activity": "run_script"}))
            .await,
        Err("helper_required".into())
    );
    csr.cmd(json!({"type": "request_activity", "activity": "system_info"}))
        .await
        .unwrap();
    let asked = computer.event("consent_requested").await;
    assert_eq!(
        (&asked["activity"], &asked["computer"]),
        (&json!("system_info"), &json!(computer_id)),
        "{asked}"
    );
}

/// POSTs system information as `token`.
async fn provide(s: &TestServer, session: &str, token: &str, info: Value) -> (u16, Value) {
    s.post(
        &format!("/api/sessions/{session}/system-info"),
        Some(token),
        json!({ "info": info }),
    )
    .await
}

#[tokio::test]
async fn system_information_is_taken_only_from_the_computer_while_its_customer_allowed_it() {
    // SPEC M1, RP2: what the helper sends, checked, journaled and in the report.
    let s = TestServer::start().await;
    let carol = s.account("carol", AccountRole::Csr).await;
    let started = s.start_session(&carol, "Slow laptop").await;
    let session = started["session"]["id"].as_str().unwrap().to_string();
    let mut csr = s.connect(&started).await;
    let joined = s
        .join_by_number(started["session"]["number"].as_str().unwrap(), "Dave")
        .await;
    let mut dave = s.connect(&joined).await;
    let code = code_for(&s, &joined).await;
    let (_, paired) = pair_able(&s, &code, &["system_info"]).await;
    let computer_token = paired["token"].as_str().unwrap().to_string();
    let mut computer = s.connect(&paired).await;
    dave.event("computer_attached").await;
    let info = json!({"system": {"hostname": "daves-laptop"}, "memory": {"total_bytes": 8}});

    // Before the customer's yes, nothing is taken.
    let (status, body) = provide(&s, &session, &computer_token, info.clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("activity_not_running")),
        "{body}"
    );
    csr.cmd(json!({"type": "request_activity", "activity": "system_info"}))
        .await
        .unwrap();
    let asked = computer.event("consent_requested").await;
    computer
        .cmd(json!({"type": "consent_reply", "request": asked["request"], "grant": true}))
        .await
        .unwrap();
    csr.event_where("activity_started", |e| e["activity"] == "system_info")
        .await;

    // Only the computer provides it, in known sections.
    let customer_token = joined["token"].as_str().unwrap();
    let (status, body) = provide(&s, &session, customer_token, info.clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("not_a_computer")),
        "{body}"
    );
    let (status, body) = provide(&s, &session, &computer_token, json!({"secrets": {}})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid_body")),
        "{body}"
    );
    let (status, body) = provide(&s, &session, &carol.token, info.clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("wrong_token_kind")),
        "{body}"
    );
    // Larger than a WebSocket frame: a busy computer's lists.
    let big = json!({"system": {"hostname": "daves-laptop"},
        "software": (0..20_000).map(|i| json!({"name": format!("package-{i}"), "version": "1.0"})).collect::<Vec<_>>()});
    let (status, body) = provide(&s, &session, &computer_token, big).await;
    assert_eq!(status, 204, "{body}");
    let seen = csr.event("system_info_provided").await;
    assert_eq!(seen["info"]["software"].as_array().unwrap().len(), 20_000);
    // One reading per asking: another is taken only after a refresh.
    let (status, body) = provide(&s, &session, &computer_token, info.clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("system_info_not_asked")),
        "{body}"
    );
    csr.cmd(json!({"type": "refresh_system_info"}))
        .await
        .unwrap();
    let (status, _) = provide(&s, &session, &computer_token, info.clone()).await;
    assert_eq!(status, 204);
    let seen = dave
        .event_where("system_info_provided", |e| e["info"] == info)
        .await;
    assert_eq!(seen["customer"], json!(dave.id()));
    // The staff view has the latest, and the report all of it as Dave's (RP2).
    let (_, view) = s
        .get(&format!("/api/sessions/{session}"), Some(&carol.token))
        .await;
    assert_eq!(view["system_info"][dave.id()]["info"], info, "{view}");
    let (_, report) = s
        .get(
            &format!("/api/sessions/{session}/report"),
            Some(&carol.token),
        )
        .await;
    let provided = report["system_info"].as_array().unwrap();
    assert_eq!(provided.len(), 2);
    assert_eq!(provided[1]["customer_name"], "Dave");
    assert_eq!(provided[1]["info"], info);
}
