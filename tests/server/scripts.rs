//! SPEC M2, the script library over HTTP: admins keep the categories; CSRs add scripts with a
//! unique name (without regard to case), files of at most 1 MiB, published or private; only
//! the owner edits or deletes; what is refused says which field to fix.

use base64::Engine as _;
use serde_json::{Value, json};
use tandem::store::AccountRole;

use crate::common::TestServer;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn script(name: &str, category: &Value, content: &[u8], published: bool) -> Value {
    json!({
        "name": name,
        "category": category,
        "description": "Clears the print queue.",
        "published": published,
        "file": {"name": "clear.sh", "content_base64": b64(content)},
    })
}

async fn category(t: &TestServer, token: &str, name: &str) -> (u16, Value) {
    t.post(
        "/api/script-categories",
        Some(token),
        json!({ "name": name }),
    )
    .await
}

async fn send(
    t: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = t
        .http
        .request(method, format!("{}{path}", t.base))
        .bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    crate::common::response(r.send().await.unwrap()).await
}

#[tokio::test]
async fn scripts_are_added_listed_edited_and_deleted_by_their_owners_only() {
    let t = TestServer::start().await;
    let admin = t.account("admin", AccountRole::Admin).await;
    let carol = t.named_account("carol", "Carol", AccountRole::Csr).await;
    let bob = t.named_account("bob", "Bob", AccountRole::Agent).await;

    // Categories are the admins'.
    let (status, body) = category(&t, &carol.token, "Printing").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    let (status, printing) = category(&t, &admin.token, "Printing").await;
    assert_eq!(status, 201, "{printing}");
    let (status, body) = category(&t, &admin.token, "printing ").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("category_name_taken")),
        "{body}"
    );
    let (_, network) = category(&t, &admin.token, "Network").await;
    let printing_id = &printing["id"];

    // Carol adds a published script with an input file, and a private one.
    let mut body = script(
        "Clear print queue",
        printing_id,
        b"#!/bin/sh\nlpstat\n",
        true,
    );
    body["input"] = json!({"name": "printers.txt", "content_base64": b64(b"office\n")});
    let (status, clear) = t.post("/api/scripts", Some(&carol.token), body).await;
    assert_eq!(status, 201, "{clear}");
    assert_eq!(
        (
            clear["owner_name"].as_str(),
            clear["size"].as_i64(),
            clear["input_size"].as_i64()
        ),
        (Some("Carol"), Some(17), Some(7))
    );
    assert_eq!(clear["category_name"], "Printing");
    let (status, mine) = t
        .post(
            "/api/scripts",
            Some(&carol.token),
            script("My notes", &network["id"], b"echo", false),
        )
        .await;
    assert_eq!(status, 201, "{mine}");

    // A name taken, in any case, is refused with the field's code; so is each file over 1 MiB.
    let (status, body) = t
        .post(
            "/api/scripts",
            Some(&bob.token),
            script("clear PRINT queue", printing_id, b"x", true),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("script_name_taken")),
        "{body}"
    );
    let big = vec![b'a'; 1024 * 1024 + 1];
    let (status, body) = t
        .post(
            "/api/scripts",
            Some(&bob.token),
            script("Big", printing_id, &big, true),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("script_too_large")),
        "{body}"
    );
    let exact = vec![b'a'; 1024 * 1024];
    let mut body = script("Exactly one MiB", printing_id, &exact, true);
    body["input"] = json!({"name": "in.bin", "content_base64": b64(&big)});
    let (status, refused) = t.post("/api/scripts", Some(&bob.token), body.clone()).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (413, Some("input_too_large")),
        "{refused}"
    );
    body.as_object_mut().unwrap().remove("input");
    let (status, exact_one) = t.post("/api/scripts", Some(&bob.token), body).await;
    assert_eq!(
        (status, exact_one["size"].as_i64()),
        (201, Some(1024 * 1024)),
        "{exact_one}"
    );
    for (bad, code) in [
        (
            json!({"name": " ", "category": printing_id, "file": {"name": "a.sh", "content_base64": ""}}),
            "invalid_name",
        ),
        (
            json!({"name": "A", "category": "nope", "file": {"name": "a.sh", "content_base64": ""}}),
            "unknown_category",
        ),
        (
            json!({"name": "A", "category": printing_id}),
            "file_required",
        ),
        (
            json!({"name": "A", "category": printing_id, "file": {"name": "../a.sh", "content_base64": ""}}),
            "invalid_file_name",
        ),
        (
            json!({"name": "A", "category": printing_id, "file": {"name": "a.sh", "content_base64": "%%%"}}),
            "invalid_body",
        ),
        (
            json!({"name": "A", "category": printing_id, "file": {"name": "a.sh", "content_base64": ""},
                   "input": {"name": "a.sh", "content_base64": ""}}),
            "invalid_file_name",
        ),
    ] {
        let (status, body) = t.post("/api/scripts", Some(&bob.token), bad).await;
        assert_eq!(body["code"], code, "{status} {body}");
    }

    // Bob sees the published scripts, not Carol's private one; Carol sees hers.
    let names = |list: &Value| -> Vec<String> {
        list["scripts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, list) = t.get("/api/scripts", Some(&bob.token)).await;
    assert_eq!(names(&list), ["Clear print queue", "Exactly one MiB"]);
    let (_, list) = t.get("/api/scripts", Some(&carol.token)).await;
    assert_eq!(
        names(&list),
        ["Clear print queue", "Exactly one MiB", "My notes"]
    );
    let mine_path = format!("/api/scripts/{}", mine["id"].as_str().unwrap());
    assert_eq!(t.get(&mine_path, Some(&bob.token)).await.0, 404);

    // Only the owner edits or deletes.
    let clear_path = format!("/api/scripts/{}", clear["id"].as_str().unwrap());
    let edit = json!({"name": "Clear print queue", "category": network["id"], "description": "Now for the network printer.", "published": true, "remove_input": true});
    let (status, body) = send(
        &t,
        reqwest::Method::PATCH,
        &clear_path,
        &bob.token,
        Some(edit.clone()),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("not_owner")),
        "{body}"
    );
    let (status, body) = send(&t, reqwest::Method::DELETE, &clear_path, &bob.token, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("not_owner")),
        "{body}"
    );
    let (status, edited) = send(
        &t,
        reqwest::Method::PATCH,
        &clear_path,
        &carol.token,
        Some(edit),
    )
    .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(
        (
            edited["category_name"].as_str(),
            &edited["input_name"],
            edited["size"].as_i64()
        ),
        (Some("Network"), &Value::Null, Some(17)),
        "the file is kept, the input removed: {edited}"
    );
    // Renaming onto a taken name is refused; the script keeps its own.
    let onto = json!({"name": "EXACTLY one mib", "category": network["id"]});
    let (status, body) = send(
        &t,
        reqwest::Method::PATCH,
        &clear_path,
        &carol.token,
        Some(onto),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("script_name_taken")),
        "{body}"
    );

    // A category in use is not deleted; an empty one is.
    let network_path = format!("/api/script-categories/{}", network["id"].as_str().unwrap());
    let (status, body) = send(
        &t,
        reqwest::Method::DELETE,
        &network_path,
        &admin.token,
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("category_in_use")),
        "{body}"
    );
    let (status, _) = send(&t, reqwest::Method::DELETE, &clear_path, &carol.token, None).await;
    assert_eq!(status, 204);
    let (status, _) = send(&t, reqwest::Method::DELETE, &mine_path, &carol.token, None).await;
    assert_eq!(status, 204);
    let (status, body) = send(
        &t,
        reqwest::Method::DELETE,
        &network_path,
        &admin.token,
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (_, list) = t.get("/api/scripts", Some(&carol.token)).await;
    assert_eq!(names(&list), ["Exactly one MiB"]);
}

/// A session of `csr` with Dave and his computer (able to run scripts), all connected: the
/// session id, the CSR's participant token and socket, the computer's token and socket.
async fn session_with_computer(
    t: &TestServer,
    csr: &crate::common::Account,
) -> (String, String, crate::common::Ws, String, crate::common::Ws) {
    let started = t.start_session(csr, "Printer").await;
    let csr_ws = t.connect(&started).await;
    let joined = t
        .join_by_number(started["session"]["number"].as_str().unwrap(), "Dave")
        .await;
    let mut dave = t.connect(&joined).await;
    let (_, code) = t
        .post("/api/helper/codes", joined["token"].as_str(), json!({}))
        .await;
    let (status, paired) = t
        .post(
            "/api/helper/join",
            None,
            json!({"code": code["code"], "can": ["run_script"]}),
        )
        .await;
    assert_eq!(status, 201, "{paired}");
    let computer = t.connect(&paired).await;
    dave.event("computer_attached").await;
    (
        started["session"]["id"].as_str().unwrap().to_owned(),
        started["token"].as_str().unwrap().to_owned(),
        csr_ws,
        paired["token"].as_str().unwrap().to_owned(),
        computer,
    )
}

#[tokio::test]
async fn one_script_runs_in_two_sessions_at_once_and_only_the_allowed_computer_fetches_it() {
    // SPEC M3 over HTTP, as two helpers would: proposed, asked, fetched, reported.
    let t = TestServer::start().await;
    let admin = t.account("admin", AccountRole::Admin).await;
    let carol = t.named_account("carol", "Carol", AccountRole::Csr).await;
    let erin = t.named_account("erin", "Erin", AccountRole::Csr).await;
    let (_, category) = category(&t, &admin.token, "Printing").await;
    let (_, shared) = t
        .post(
            "/api/scripts",
            Some(&carol.token),
            script("Shared", &category["id"], b"echo hi", true),
        )
        .await;
    let (_, private) = t
        .post(
            "/api/scripts",
            Some(&carol.token),
            script("Carol's own", &category["id"], b"echo me", false),
        )
        .await;
    let mut runs = Vec::new();
    for csr in [&carol, &erin] {
        runs.push(session_with_computer(&t, csr).await);
    }
    // Erin cannot run Carol's private script.
    let (session, csr_token, ..) = &runs[1];
    let (status, body) = t
        .post(
            &format!("/api/sessions/{session}/script-runs"),
            Some(csr_token),
            json!({"scripts": [private["id"]]}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("unknown_script")),
        "{body}"
    );

    for (session, csr_token, csr_ws, computer_token, computer) in &mut runs {
        let (status, run) = t
            .post(
                &format!("/api/sessions/{session}/script-runs"),
                Some(csr_token),
                json!({"scripts": [shared["id"]]}),
            )
            .await;
        assert_eq!(status, 201, "{run}");
        assert_eq!(run["scripts"][0]["sha256"], shared["sha256"]);
        let item = format!("/api/sessions/{session}/script-runs/{}/0", run["request"]);
        // Not before the customer's yes; never for the CSR.
        let (status, body) = t.get(&item, Some(computer_token)).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (409, Some("activity_not_running")),
            "{body}"
        );
        let asked = computer.event("consent_requested").await;
        computer
            .cmd(json!({"type": "consent_reply", "request": asked["request"], "grant": true}))
            .await
            .unwrap();
        csr_ws
            .event_where("activity_started", |e| e["activity"] == "run_script")
            .await;
        let (status, body) = t.get(&item, Some(csr_token)).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("not_a_computer")),
            "{body}"
        );
        let (status, files) = t.get(&item, Some(computer_token)).await;
        assert_eq!(status, 200, "{files}");
        assert_eq!(files["file"]["content_base64"], b64(b"echo hi"));
        let (status, _) = t
            .post(
                &item,
                Some(computer_token),
                json!({"exit_code": 0, "output": "hi\n", "duration_ms": 3}),
            )
            .await;
        assert_eq!(status, 204);
        let done = csr_ws.event("script_finished").await;
        assert_eq!(done["outcome"]["output"], "hi\n");
        csr_ws
            .event_where("activity_stopped", |e| {
                e["activity"] == "run_script" && e["cause"] == "finished"
            })
            .await;
    }
}
