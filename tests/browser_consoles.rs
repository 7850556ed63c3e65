//! The consoles in a real browser, clicked through as a person would (tests/e2e/consoles.mjs):
//! sign in, start a session, invite, join by the link, chat both ways, consent declined then
//! given, end with notes. SPEC S1, S4, S9, S10, S11, S12.

mod common;

use common::TestServer;
use common::browser::run_script;
use tandem::store::AccountRole;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csr_and_a_customer_use_the_consoles_from_sign_in_to_the_end() {
    let t = TestServer::start().await;
    let carol = t.account("carol", AccountRole::Csr).await;
    run_script(&t, "consoles.mjs", &["carol"]).await;
    // What Carol wrote on ending is in the stored report.
    let (status, sessions) = t.get("/api/sessions", Some(&carol.token)).await;
    assert_eq!(status, 200, "{sessions}");
    let id = sessions["sessions"][0]["id"].as_str().unwrap().to_string();
    let (status, report) = t
        .get(&format!("/api/sessions/{id}/report"), Some(&carol.token))
        .await;
    assert_eq!(status, 200, "{report}");
    assert!(
        report.to_string().contains("Printer driver reinstalled"),
        "{report}"
    );
}
