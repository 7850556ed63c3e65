//! SYS1: a crash restarts that actor and touches nothing else. Faults are injected into live
//! actors of a running server; the clients are real WebSockets.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use common::{TestServer, Ws};
use serde_json::{Value, json};
use tandem::store::AccountRole;
use tandem_actors::ids::{ParticipantId, SessionId};
use tandem_actors::participant::ParticipantMsg;
use tandem_actors::session::SessionMsg;
use tandem_actors::session_registry::{SessionHandle, SessionRegistryMsg};

/// Everything logged in this test binary, to check that restarts are logged.
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        tracing_subscriber::fmt()
            .with_env_filter("warn")
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .init();
        buf
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);
impl Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logged(needle: &str) -> bool {
    String::from_utf8_lossy(&logs().lock().unwrap()).contains(needle)
}

async fn handle(t: &TestServer, session: &Value) -> SessionHandle {
    let id: SessionId = session["session"]["id"].as_str().unwrap().parse().unwrap();
    ractor::call!(t.server().directory.sessions(), |reply| {
        SessionRegistryMsg::ById { id, reply }
    })
    .unwrap()
    .expect("session is live")
}

fn restarts(metrics: &str, actor: &str) -> u64 {
    let key = format!("tandem_actor_restarts_total{{actor=\"{actor}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&key))
        .map_or(0, |v| v.trim().parse().unwrap())
}

async fn two_party_session(t: &TestServer, csr: &common::Account) -> (Value, Ws, Ws) {
    let s = t.start_session(csr, "x").await;
    let c = t
        .join_by_number(s["session"]["number"].as_str().unwrap(), "Cy")
        .await;
    let a = t.connect(&s).await;
    let b = t.connect(&c).await;
    (s, a, b)
}

#[tokio::test]
async fn a_panicking_participant_is_restarted_and_nothing_else_notices() {
    logs();
    let t = TestServer::start().await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let (s1, mut csr1, mut cust1) = two_party_session(&t, &carol).await;
    let (_s2, mut csr2, mut cust2) = two_party_session(&t, &carol).await;
    let before = restarts(&t.metrics().await, "participant");

    let victim: ParticipantId = cust1.id().parse().unwrap();
    let h = handle(&t, &s1).await;
    let link = ractor::call!(h.actor, |reply| SessionMsg::ParticipantLink {
        participant: victim,
        reply
    })
    .unwrap()
    .unwrap();
    let old = link.read().unwrap().clone();
    old.cast(ParticipantMsg::InjectPanic).unwrap();

    // The same WebSocket keeps working both ways: the restarted actor took over the connection.
    csr1.chat("are you still there?", None).await.unwrap();
    cust1
        .event_where("chat", |e| e["text"] == "are you still there?")
        .await;
    cust1.chat("yes", None).await.unwrap();
    csr1.event_where("chat", |e| e["text"] == "yes").await;
    assert_ne!(link.read().unwrap().get_id(), old.get_id(), "a new actor");
    assert!(!cust1.closed);

    // The other session never noticed.
    cust2.chat("other session", None).await.unwrap();
    csr2.event_where("chat", |e| e["text"] == "other session")
        .await;
    assert!(!csr1.saw_event("participant_left", |_| true));

    // Counted and logged.
    assert_eq!(restarts(&t.metrics().await, "participant"), before + 1);
    assert!(
        logged(&format!("participant={victim}"))
            && logged("participant actor failed; restarting it")
    );
}

#[tokio::test]
async fn a_participant_that_keeps_failing_is_removed_and_the_session_goes_on() {
    logs();
    let t = TestServer::start().await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let (s, mut csr, cust) = two_party_session(&t, &carol).await;
    let victim: ParticipantId = cust.id().parse().unwrap();
    let h = handle(&t, &s).await;
    let link = ractor::call!(h.actor, |reply| SessionMsg::ParticipantLink {
        participant: victim,
        reply
    })
    .unwrap()
    .unwrap();
    // The policy allows five restarts a minute; the sixth failure removes the participant.
    for attempt in 0..6 {
        let current = link.read().unwrap().clone();
        current.cast(ParticipantMsg::InjectPanic).unwrap();
        if attempt == 5 {
            break;
        }
        // Wait for the restart before the next fault.
        let deadline = tokio::time::Instant::now() + common::PATIENCE;
        while link.read().unwrap().get_id() == current.get_id() {
            assert!(tokio::time::Instant::now() < deadline, "no restart");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    let left = csr.event("participant_left").await;
    assert_eq!(
        (left["participant"].as_str(), left["reason"].as_str()),
        (Some(cust.id().as_str()), Some("crashed"))
    );
    csr.chat("carry on", None).await.unwrap();
    assert!(logged(
        "participant actor keeps failing; removing the participant"
    ));
}

#[tokio::test]
async fn a_panicking_session_is_restored_from_its_journal() {
    logs();
    let t = TestServer::start().await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let (s1, mut csr1, mut cust1) = two_party_session(&t, &carol).await;
    let (_s2, mut csr2, mut cust2) = two_party_session(&t, &carol).await;
    csr1.cmd(json!({"type": "request_activity", "activity": "view_desktop"}))
        .await
        .unwrap();
    let asked = cust1.event("consent_requested").await;
    cust1.cmd(json!({"type": "consent_reply", "request": asked["request"], "grant": true, "allow_all": true}))
        .await
        .unwrap();
    csr1.cmd(json!({"type": "set_notes", "text": "before the crash"}))
        .await
        .unwrap();
    let before = restarts(&t.metrics().await, "session");

    let h = handle(&t, &s1).await;
    h.actor.cast(SessionMsg::InjectPanic).unwrap();

    // Its participants are told to reconnect; the other session is untouched.
    csr1.until_closed().await;
    cust1.until_closed().await;
    cust2.chat("unaffected", None).await.unwrap();
    csr2.event_where("chat", |e| e["text"] == "unaffected")
        .await;

    // Reconnecting with the same tokens finds the session as it was.
    let mut csr1 = Ws::connect(&t.base, s1["token"].as_str().unwrap()).await;
    let view = &csr1.welcome["session"];
    assert_eq!(view["notes"], "before the crash");
    assert_eq!(view["activities"][0]["activity"], "view_desktop");
    assert_eq!(view["allow_all"].as_array().unwrap().len(), 1);
    assert_eq!(view["participants"].as_array().unwrap().len(), 2);
    assert_eq!(restarts(&t.metrics().await, "session"), before + 1);
    assert!(logged(
        "session actor failed; restoring it from its journal"
    ));
    // And it carries on: the journal continues where it was.
    csr1.chat("back", None).await.unwrap();
    let handle_after = handle(&t, &s1).await;
    assert_ne!(handle_after.actor.get_id(), h.actor.get_id());
}
