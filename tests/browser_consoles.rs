//! The consoles in a real browser, clicked through as people would (tests/e2e/consoles.mjs, which
//! lists every step): sign in and start with the keyboard, invite, join by the link, chat,
//! consent declined then given, the shared screen on the CSR's and the assistant's pages, the
//! microphone passed, annotations seen by all, cameras, refusals shown with their reasons, a
//! second session in its own tab with control handed over, end with reviewed notes. SPEC S1,
//! S3-S5, S7, S9-S13, V1-V3, VI1, VI2, D1, D10, D12, D13.

mod common;

use common::TestServer;
use common::browser::run_script;
use tandem::store::AccountRole;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csr_and_a_customer_use_the_consoles_from_sign_in_to_the_end() {
    let t = TestServer::start().await;
    let carol = t.named_account("carol", "Carol", AccountRole::Csr).await;
    t.named_account("ann", "Ann", AccountRole::Csr).await;
    run_script(&t, "consoles.mjs", &["carol", "ann"]).await;
    // What Carol wrote on ending is in the stored report.
    let (status, sessions) = t.get("/api/sessions", Some(&carol.token)).await;
    assert_eq!(status, 200, "{sessions}");
    // Newest first: the second session (ended by Ann), then the first (ended by Carol).
    assert_eq!(
        sessions["sessions"].as_array().map(Vec::len),
        Some(2),
        "{sessions}"
    );
    let id = sessions["sessions"][1]["id"].as_str().unwrap().to_string();
    let (status, report) = t
        .get(&format!("/api/sessions/{id}/report"), Some(&carol.token))
        .await;
    assert_eq!(status, 200, "{report}");
    assert!(
        report["notes"] == "Printer driver reinstalled; test page printed",
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_join_by_number_an_application_is_shared_and_the_session_is_transferred() {
    let t = TestServer::start().await;
    let admin = t.account("admin", AccountRole::Admin).await;
    t.named_account("carol", "Carol", AccountRole::Agent).await;
    let bob = t.named_account("bob", "Bob", AccountRole::Agent).await;
    let (status, queue) = t
        .post(
            "/api/queues",
            Some(&admin.token),
            serde_json::json!({"name": "Tier 2", "agents": [bob.id]}),
        )
        .await;
    assert_eq!(status, 201, "{queue}");
    run_script(&t, "transfer.mjs", &["carol", "bob"]).await;
    // Bob took it over: the stored session is active with Bob's account as a participant.
    let (status, sessions) = t.get("/api/sessions", Some(&bob.token)).await;
    assert_eq!(status, 200, "{sessions}");
    assert_eq!(sessions["sessions"][0]["status"], "active", "{sessions}");
}
