//! Every state change is persisted: a restarted server lists past sessions and their reports,
//! and sessions that were live when it stopped are ended as interrupted.

use crate::common::TestServer;
use serde_json::json;
use tandem::store::AccountRole;

#[tokio::test]
async fn a_restarted_server_keeps_sessions_reports_accounts_and_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = TestServer::start_in(dir.path(), &[]).await;
    let carol = t.account("carol", AccountRole::Csr).await;

    // One session ended properly, with notes and chat.
    let s = t.start_session(&carol, "Finished one").await;
    let done = s["session"]["id"].as_str().unwrap().to_string();
    let mut csr = t.connect(&s).await;
    let c = t
        .join_by_number(s["session"]["number"].as_str().unwrap(), "Dora")
        .await;
    let mut dora = t.connect(&c).await;
    dora.chat("my screen is black", None).await.unwrap();
    csr.event_where("chat", |e| e["text"] == "my screen is black")
        .await;
    csr.cmd(json!({"type": "end_session", "confirm": true, "notes": "Loose cable."}))
        .await
        .unwrap();
    dora.until_closed().await;

    // One left live when the server stops.
    let s = t.start_session(&carol, "Left running").await;
    let live = s["session"]["id"].as_str().unwrap().to_string();
    let mut csr = t.connect(&s).await;
    csr.cmd(json!({"type": "set_notes", "text": "half way"}))
        .await
        .unwrap();
    drop(csr);
    t.stop().await;

    // A new server on the same data folder.
    let t = TestServer::start_in(dir.path(), &[]).await;
    // The old sign-in token is still valid: the signing key is kept on disk.
    let (status, list) = t.get("/api/sessions", Some(&carol.token)).await;
    assert_eq!(status, 200, "{list}");
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    let by_id = |id: &str| sessions.iter().find(|s| s["id"] == id).unwrap().clone();
    assert_eq!(by_id(&done)["end_reason"], "ended_by_csr");
    assert_eq!(by_id(&live)["status"], "ended");
    assert_eq!(by_id(&live)["end_reason"], "interrupted");

    let (status, report) = t
        .get(&format!("/api/sessions/{done}/report"), Some(&carol.token))
        .await;
    assert_eq!(status, 200);
    assert_eq!(report["notes"], "Loose cable.");
    assert_eq!(report["chat"][0]["text"], "my screen is black");
    assert_eq!(report["chat"][0]["from_name"], "Dora");
    let (_, report) = t
        .get(&format!("/api/sessions/{live}/report"), Some(&carol.token))
        .await;
    assert_eq!(report["notes"], "half way");

    // Search by keyword and date.
    let (_, found) = t.get("/api/sessions?q=cable", Some(&carol.token)).await;
    assert_eq!(found["sessions"].as_array().unwrap().len(), 1);
    let (_, found) = t.get("/api/sessions?q=Dora", Some(&carol.token)).await;
    assert_eq!(found["sessions"][0]["id"], json!(done));
    let (_, none) = t
        .get("/api/sessions?from=4102444800000", Some(&carol.token))
        .await;
    assert_eq!(none["sessions"].as_array().unwrap().len(), 0);

    // Numbers of ended sessions do not reopen them.
    let (status, _) = t
        .post(
            "/api/join",
            None,
            json!({"number": by_id(&live)["number"], "name": "Late"}),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn sessions_are_private_to_those_who_took_part() {
    let t = TestServer::start().await;
    let admin = t.account("root", AccountRole::Admin).await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let zed = t.account("zed", AccountRole::Csr).await;
    let s = t.start_session(&carol, "Private").await;
    let sid = s["session"]["id"].as_str().unwrap();
    let (_, mine) = t.get("/api/sessions", Some(&zed.token)).await;
    assert_eq!(mine["sessions"].as_array().unwrap().len(), 0);
    let (status, _) = t
        .get(&format!("/api/sessions/{sid}"), Some(&zed.token))
        .await;
    assert_eq!(status, 403);
    let (status, v) = t
        .get(&format!("/api/sessions/{sid}"), Some(&carol.token))
        .await;
    assert_eq!((status, v["live"].as_bool()), (200, Some(true)));
    let (_, all) = t.get("/api/sessions", Some(&admin.token)).await;
    assert_eq!(all["sessions"].as_array().unwrap().len(), 1);
}
