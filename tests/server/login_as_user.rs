//! SPEC M4 over real WebSockets: the primary CSR signs in on the customer's computer as another
//! user once the customer allowed it in Tandem Helper's window. The password reaches that
//! computer's WebSocket alone, in one `login_as_user` frame, and is nowhere else: not in
//! another participant's frames, the journal, the report, any file under the server's data
//! folder, or (run as the real binary, with its own code logging at trace) the server's log.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tandem::store::AccountRole;

use crate::common::process::{add_csr, get, login, post, tandem};
use crate::common::{TestServer, Ws};

/// The passwords the CSR types: each must reach Dave's computer and nothing else. Nothing in
/// them is escaped in JSON, so a copy anywhere is found as it is.
const RIGHT: &str = "Tr0ub4dor&3 𝄞 right-one";
const WRONG: &str = "w1ld-gu3ss wrong-one";
const PASSWORDS: [&str; 2] = [RIGHT, WRONG];

async fn posted(base: &str, path: &str, token: Option<&str>, body: Value) -> Value {
    let (status, answer) = post(base, path, token, body).await;
    assert!((200..300).contains(&status), "{path}: {status} {answer}");
    answer
}

/// `joined`'s Tandem Helper pairs, saying it `can` these, and connects as their computer.
async fn computer_of(base: &str, joined: &Value, can: &[&str]) -> Ws {
    let code = posted(
        base,
        "/api/helper/codes",
        joined["token"].as_str(),
        json!({}),
    )
    .await;
    let paired = posted(
        base,
        "/api/helper/join",
        None,
        json!({"code": code["code"], "can": can}),
    )
    .await;
    Ws::connect(base, paired["token"].as_str().unwrap()).await
}

fn sign_in(user: &str, password: &str) -> Value {
    json!({"type": "login_as_user", "user": user, "password": password})
}

fn answer(state: &str, code: Option<&str>, reason: Option<&str>) -> Value {
    json!({"type": "login_as_user_result", "state": state, "user": "bob", "code": code, "reason": reason})
}

/// Where a password turns up in `text`, if anywhere.
fn leaked(text: &str) -> Option<&'static str> {
    PASSWORDS.into_iter().find(|p| text.contains(p))
}

/// Every file under `dir` that holds a password, as raw bytes (SQLite pages, the WAL, logs).
fn files_with_a_password(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
                continue;
            }
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            if PASSWORDS
                .iter()
                .any(|p| bytes.windows(p.len()).any(|w| w == p.as_bytes()))
            {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

/// The whole M4 exchange on the server at `base`, with the CSR `carol` in charge and `alex`
/// assisting; answers the session's id once it has ended.
async fn sign_in_on_daves_computer(base: &str, carol: &str, alex: &str) -> String {
    let started = posted(
        base,
        "/api/sessions",
        Some(carol),
        json!({"topic": "Bob's files"}),
    )
    .await;
    let session = started["session"]["id"].as_str().unwrap().to_string();
    let number = started["session"]["number"].clone();
    let mut csr = Ws::connect(base, started["token"].as_str().unwrap()).await;
    let assisting = posted(base, "/api/assist", Some(alex), json!({"number": number})).await;
    let mut alex = Ws::connect(base, assisting["token"].as_str().unwrap()).await;
    let join = |name: &str| json!({"number": number, "name": name});
    let dave_joined = posted(base, "/api/join", None, join("Dave")).await;
    let mut dave = Ws::connect(base, dave_joined["token"].as_str().unwrap()).await;
    let erin_joined = posted(base, "/api/join", None, join("Erin")).await;
    let mut erin = Ws::connect(base, erin_joined["token"].as_str().unwrap()).await;
    // Dave's helper can sign in as another user; Erin's cannot.
    let mut daves = computer_of(base, &dave_joined, &["login_as_user", "system_info"]).await;
    let mut erins = computer_of(base, &erin_joined, &["system_info"]).await;
    for pc in [&daves, &erins] {
        let id = json!(pc.id());
        csr.event_where("computer_attached", |e| e["computer"] == id)
            .await;
    }
    let (dave_id, daves_id) = (dave.id(), daves.id());

    // Not before Dave allowed it; not on Erin's computer, whose helper cannot.
    assert_eq!(
        csr.cmd(sign_in("bob", RIGHT)).await,
        Err("activity_not_running".into())
    );
    csr.cmd(json!({"type": "select_customer", "customer": erin.id()}))
        .await
        .unwrap();
    assert_eq!(
        csr.cmd(json!({"type": "request_activity", "activity": "login_as_user"}))
            .await,
        Err("helper_required".into())
    );
    assert_eq!(
        csr.cmd(sign_in("bob", RIGHT)).await,
        Err("activity_not_running".into())
    );
    csr.cmd(json!({"type": "select_customer", "customer": dave_id}))
        .await
        .unwrap();

    // Dave allows it in his helper's window.
    csr.cmd(json!({"type": "request_activity", "activity": "login_as_user"}))
        .await
        .unwrap();
    let asked = daves.event("consent_requested").await;
    assert_eq!(
        (&asked["activity"], &asked["computer"]),
        (&json!("login_as_user"), &json!(daves_id)),
        "{asked}"
    );
    daves
        .cmd(json!({"type": "consent_reply", "request": asked["request"], "grant": true}))
        .await
        .unwrap();
    csr.event_where("activity_started", |e| e["activity"] == "login_as_user")
        .await;

    // Only the primary; a name the helper would not take is refused without echoing anything.
    assert_eq!(
        alex.cmd(sign_in("bob", RIGHT)).await,
        Err("not_primary".into())
    );
    let refused = csr.request(sign_in("bob; reboot", RIGHT)).await;
    assert_eq!(refused["code"], "bad_login", "{refused}");

    // The attempt: Dave's computer gets the credentials, exactly this frame.
    csr.cmd(sign_in("bob", WRONG)).await.unwrap();
    let frame = daves.frame("login_as_user").await;
    assert_eq!(
        frame,
        json!({"type": "login_as_user", "user": "bob", "password": WRONG, "by": csr.id()})
    );
    let attempted = csr.event("login_as_user_attempted").await;
    assert_eq!(
        attempted,
        json!({"type": "login_as_user_attempted", "customer": dave_id, "computer": daves_id,
               "by": csr.id(), "user": "bob"})
    );
    dave.event("login_as_user_attempted").await;
    // One at a time, until the computer answers.
    assert_eq!(
        csr.cmd(sign_in("bob", RIGHT)).await,
        Err("login_pending".into())
    );
    // Only the computer answers, in known words.
    assert_eq!(
        dave.cmd(answer("failed", Some("auth_failed"), None)).await,
        Err("not_a_computer".into())
    );
    assert_eq!(
        daves.cmd(answer("dancing", None, None)).await,
        Err("bad_login".into())
    );
    daves
        .cmd(answer("failed", Some("auth_failed"), None))
        .await
        .unwrap();
    let failed = csr.event("login_as_user_failed").await;
    assert_eq!(
        (&failed["user"], &failed["code"]),
        (&json!("bob"), &json!("auth_failed"))
    );

    csr.cmd(sign_in("bob", RIGHT)).await.unwrap();
    let frame = daves.frame("login_as_user").await;
    assert_eq!(frame["password"], RIGHT);
    daves.cmd(answer("started", None, None)).await.unwrap();
    for ws in [&mut csr, &mut alex, &mut dave] {
        let started = ws.event("login_as_user_started").await;
        assert_eq!(
            (&started["customer"], &started["user"]),
            (&json!(dave_id), &json!("bob"))
        );
    }
    daves
        .cmd(answer("ended", None, Some("logged_out")))
        .await
        .unwrap();
    let ended = csr.event("login_as_user_ended").await;
    assert_eq!(ended["reason"], "logged_out", "{ended}");

    // "Sign out": the CSR stops the activity; the helper ends that session and says so.
    csr.cmd(json!({"type": "stop_activity", "activity": "login_as_user"}))
        .await
        .unwrap();
    daves
        .event_where("activity_stopped", |e| e["activity"] == "login_as_user")
        .await;
    daves
        .cmd(answer("ended", None, Some("ended")))
        .await
        .unwrap();
    csr.event_where("login_as_user_ended", |e| e["reason"] == "ended")
        .await;

    // Everything up to here has reached everyone once this chat has.
    csr.chat("all caught up", None).await.unwrap();
    for ws in [&mut alex, &mut dave, &mut erin, &mut daves, &mut erins] {
        ws.event_where("chat", |e| e["text"] == "all caught up")
            .await;
    }
    // Erin and her computer heard nothing of it; Dave's computer got frames, not events.
    for ws in [&erin, &erins, &daves] {
        for kind in ["attempted", "started", "failed", "ended"] {
            assert!(!ws.saw_event(&format!("login_as_user_{kind}"), |_| true));
        }
    }
    // The passwords are in Dave's computer's two login_as_user frames and nowhere else.
    let mut carried = 0;
    for (who, ws) in [
        ("the CSR", &csr),
        ("the assistant", &alex),
        ("Dave", &dave),
        ("Erin", &erin),
        ("Dave's computer", &daves),
        ("Erin's computer", &erins),
    ] {
        for f in &ws.seen {
            let text = f.to_string();
            if leaked(&text).is_none() {
                continue;
            }
            assert!(
                who == "Dave's computer" && f["type"] == "login_as_user",
                "{who} got a password: {text}"
            );
            carried += 1;
        }
        assert!(
            ws.seen.iter().all(|f| f["type"] != "login_as_user") || who == "Dave's computer",
            "{who} got a login_as_user frame"
        );
    }
    assert_eq!(carried, 2);

    csr.cmd(json!({"type": "end_session", "confirm": true, "notes": "Signed in as bob."}))
        .await
        .unwrap();
    session
}

/// The report says who was signed in as whom and how it went, and holds no password.
async fn check_report(base: &str, carol: &str, session: &str) {
    let (status, report) = get(base, &format!("/api/sessions/{session}/report"), carol).await;
    assert_eq!(status, 200, "{report}");
    let text = report.to_string();
    assert_eq!(leaked(&text), None, "the report holds a password: {text}");
    let logins: Vec<(&str, &str)> = report["logins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["what"].as_str().unwrap(), l["user"].as_str().unwrap()))
        .collect();
    assert_eq!(
        logins,
        [
            ("attempted", "bob"),
            ("failed", "bob"),
            ("attempted", "bob"),
            ("started", "bob"),
            ("ended", "bob"),
            ("ended", "bob"),
        ],
        "{report}"
    );
    assert_eq!(report["logins"][0]["customer_name"], "Dave");
    assert_eq!(report["logins"][1]["code"], "auth_failed");
    assert_eq!(report["logins"][4]["reason"], "logged_out");
}

#[tokio::test]
async fn the_password_reaches_the_customers_computer_alone_and_is_kept_nowhere() {
    let s = TestServer::start().await;
    let carol = s.account("carol", AccountRole::Csr).await;
    let alex = s.account("alex", AccountRole::Csr).await;
    let session = sign_in_on_daves_computer(&s.base, &carol.token, &alex.token).await;
    check_report(&s.base, &carol.token, &session).await;
    // The journal, as the store reads it back.
    let records = s
        .server()
        .store
        .records(session.parse().unwrap())
        .await
        .unwrap();
    let journal = serde_json::to_string(&records).unwrap();
    assert!(journal.contains("login_as_user_attempted"), "{journal}");
    assert_eq!(leaked(&journal), None, "the journal holds a password");
    assert_eq!(files_with_a_password(&s.dir), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_server_logs_no_password_even_at_trace() {
    let dir = tempfile::tempdir().unwrap();
    add_csr(tandem(dir.path()), "carol").await;
    add_csr(tandem(dir.path()), "alex").await;
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    // Tandem's own code at trace, everything else at debug. The WebSocket library is kept at
    // info: at trace it prints every message it reads (docs/protocol.md says so).
    let mut server = tandem(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env(
            "RUST_LOG",
            "debug,tandem=trace,tandem_actors=trace,tungstenite=info,tokio_tungstenite=info,sqlx=warn",
        )
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let base = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(url) = text
                .lines()
                .find_map(|l| l.strip_prefix("Tandem is listening on "))
            {
                return url.to_string();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the server starts");
    let carol = login(&base, "carol").await;
    let alex = login(&base, "alex").await;
    let session = sign_in_on_daves_computer(&base, &carol, &alex).await;
    check_report(&base, &carol, &session).await;
    server.start_kill().unwrap();
    server.wait().await.unwrap();
    let logged = std::fs::read_to_string(&log_path).unwrap();
    // What the server printed was captured (Tandem's own code logs little below info).
    assert!(logged.contains("tandem listening"), "{logged}");
    assert_eq!(leaked(&logged), None, "the log holds a password");
    assert_eq!(files_with_a_password(dir.path()), Vec::<String>::new());
}
