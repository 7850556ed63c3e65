//! S4: invitations by e-mail, and R4: recording links by e-mail, through a real SMTP server
//! (Python's standard-library smtpd, listening on loopback), and the clear errors when mail is
//! off or the relay is down.

use std::process::Stdio;
use std::time::Duration;

use crate::common::{Account, TestServer};
use serde_json::{Value, json};
use tandem::store::{AccountRole, NewRecording, RecordingStatus};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An SMTP relay on loopback that prints every message it receives.
pub(crate) struct Relay {
    process: Child,
    lines: Lines<BufReader<ChildStdout>>,
    pub(crate) port: u16,
}

impl Relay {
    pub(crate) async fn start() -> Relay {
        let port = free_port();
        let mut smtpd = tokio::process::Command::new("python3")
            .args([
                "-u",
                "-W",
                "ignore",
                "-m",
                "smtpd",
                "-n",
                "-c",
                "DebuggingServer",
            ])
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 with its smtpd module (Debian's python3 3.11)");
        // Wait until it accepts connections.
        let deadline = tokio::time::Instant::now() + crate::common::PATIENCE;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "smtpd did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let lines = BufReader::new(smtpd.stdout.take().unwrap()).lines();
        Relay {
            process: smtpd,
            lines,
            port,
        }
    }

    /// A test server that sends its mail through this relay.
    async fn server(&self) -> TestServer {
        let port = self.port.to_string();
        TestServer::start_with(&[
            ("TANDEM_MAIL_ENABLED", "true"),
            ("TANDEM_MAIL_SMTP_HOST", "127.0.0.1"),
            ("TANDEM_MAIL_SMTP_PORT", &port),
            ("TANDEM_MAIL_FROM", "Tandem <support@example.com>"),
        ])
        .await
    }

    /// The next message the relay received, headers and body. smtpd prints each line as a
    /// Python bytes literal; the body is quoted-printable, decoded here as a mail client would.
    pub(crate) async fn message(&mut self) -> String {
        let mut raw = String::new();
        tokio::time::timeout(crate::common::PATIENCE, async {
            while let Some(line) = self.lines.next_line().await.unwrap() {
                if line.contains("END MESSAGE") {
                    break;
                }
                let line = line
                    .strip_prefix("b'")
                    .and_then(|l| l.strip_suffix('\''))
                    .unwrap_or(&line);
                raw.push_str(line);
                raw.push('\n');
            }
        })
        .await
        .expect("the relay printed the whole message");
        raw.replace("=\n", "").replace("=3D", "=")
    }
}

#[tokio::test]
async fn the_server_sends_invitations_when_mail_is_configured() {
    let mut relay = Relay::start().await;
    let t = relay.server().await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let s = t.start_session(&carol, "Mail").await;
    let sid = s["session"]["id"].as_str().unwrap();
    let (status, inv) = t
        .post(
            &format!("/api/sessions/{sid}/invites"),
            Some(&carol.token),
            json!({"email": "dave@example.org", "send": true}),
        )
        .await;
    assert_eq!(status, 201, "{inv}");
    assert_eq!(inv["emailed"], true);

    // The relay received a message to Dave carrying the (short) invite link.
    let short = inv["short_link"].as_str().unwrap().to_string();
    let message = relay.message().await;
    assert!(message.contains(&format!("Join: {short}\n")), "{message}");
    assert!(message.contains("To: dave@example.org"), "{message}");
    assert!(
        message.contains("invites you to a Tandem support session"),
        "{message}"
    );

    // A bad address is refused before anything is sent.
    let (status, body) = t
        .post(
            &format!("/api/sessions/{sid}/invites"),
            Some(&carol.token),
            json!({"email": "dave at example", "send": true}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid_email"))
    );

    // With the relay gone, the CSR is told, and still has the link to pass on.
    relay.process.kill().await.unwrap();
    let (status, body) = t
        .post(
            &format!("/api/sessions/{sid}/invites"),
            Some(&carol.token),
            json!({"email": "erin@example.org", "send": true}),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (502, Some("mail_failed")));
}

#[tokio::test]
async fn with_mail_off_the_csr_gets_a_mailto_link_instead() {
    let t = TestServer::start().await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let s = t.start_session(&carol, "No mail").await;
    let sid = s["session"]["id"].as_str().unwrap();
    let (status, body) = t
        .post(
            &format!("/api/sessions/{sid}/invites"),
            Some(&carol.token),
            json!({"email": "dave@example.org", "send": true}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("mail_disabled"))
    );
    let (status, inv) = t
        .post(
            &format!("/api/sessions/{sid}/invites"),
            Some(&carol.token),
            json!({"email": "dave@example.org"}),
        )
        .await;
    assert_eq!(status, 201);
    let mailto = inv["mailto"].as_str().unwrap();
    assert!(mailto.starts_with("mailto:dave%40example.org?subject="));
    // Issue 18: the invitation gives the short link.
    assert!(mailto.contains(&urlencode(inv["short_link"].as_str().unwrap())));
}

/// A recording of `owner` in `status`; a ready one has a small file as its MP4.
pub(crate) async fn recording(
    t: &TestServer,
    owner: &Account,
    status: RecordingStatus,
) -> (String, Vec<u8>) {
    let store = &t.server().store;
    let dir = t.dir.join("recordings");
    std::fs::create_dir_all(&dir).unwrap();
    let id = uuid::Uuid::new_v4();
    let arf = dir.join(format!("{id}.arf"));
    std::fs::write(&arf, b"not read by this test").unwrap();
    store
        .create_recording(NewRecording {
            id,
            session_id: None,
            owner: owner.id.parse().unwrap(),
            name: "Printer fix".into(),
            arf_path: arf,
            created_at: 1,
        })
        .await
        .unwrap();
    // Straight to `status`: a `processing` step would have the exporter try this junk file.
    store
        .finish_recording(id, 2, 4000, 21, status, None)
        .await
        .unwrap();
    let bytes = b"the MP4 as served".to_vec();
    if status == RecordingStatus::Ready {
        let mp4 = dir.join(format!("{id}.mp4"));
        std::fs::write(&mp4, &bytes).unwrap();
        store
            .set_recording_mp4(id, Some(&mp4), Some(bytes.len() as i64), status, None)
            .await
            .unwrap();
    }
    (id.to_string(), bytes)
}

/// Asks the server to e-mail a link to recording `id`: the status and the answer.
async fn email_link(t: &TestServer, id: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    t.post(&format!("/api/recordings/{id}/email"), token, body)
        .await
}

/// A refused request's status and problem code.
fn refusal((status, body): (u16, Value)) -> (u16, String) {
    (status, body["code"].as_str().unwrap_or("").to_string())
}

fn to(address: &str) -> Value {
    json!({ "to": address })
}

#[tokio::test]
async fn a_recordings_owner_or_an_admin_e_mails_a_streaming_link() {
    // SPEC R4 "e-mail a link": a signed, expiring link that plays without an account.
    let mut relay = Relay::start().await;
    let t = relay.server().await;
    let carol = t.named_account("carol", "Carol", AccountRole::Csr).await;
    let ann = t.account("ann", AccountRole::Csr).await;
    let admin = t.account("admin", AccountRole::Admin).await;
    let (id, mp4) = recording(&t, &carol, RecordingStatus::Ready).await;

    let (status, sent) = email_link(&t, &id, Some(&carol.token), to("dave@example.org")).await;
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["to"], "dave@example.org");
    let message = relay.message().await;
    assert!(message.contains("To: dave@example.org"), "{message}");
    assert!(
        message.contains("Carol shares the recording \"Printer fix\""),
        "{message}"
    );
    assert!(message.contains("The link works until"), "{message}");
    // The link in the message plays the recording, with no account.
    let marker = format!("/api/recordings/{id}/mp4?link=");
    let at = message.find(&marker).unwrap_or_else(|| panic!("{message}"));
    let link: String = message[at..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '\'')
        .collect();
    assert!(sent["url"].as_str().unwrap().ends_with(&link), "{sent}");
    let played = t
        .http
        .get(format!("{}{link}", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(played.status(), 200);
    assert_eq!(played.bytes().await.unwrap().as_ref(), &mp4[..]);
    let expires = sent["expires_at"].as_u64().unwrap();
    let now = tandem::auth::unix_secs() * 1000;
    assert!(expires > now && expires <= now + 3_600_000, "{sent}");

    // Admins may send it too; other accounts and strangers may not.
    let (status, _) = email_link(&t, &id, Some(&admin.token), to("erin@example.org")).await;
    assert_eq!(status, 201);
    assert!(relay.message().await.contains("To: erin@example.org"));
    let dave = || to("dave@example.org");
    let refused = refusal(email_link(&t, &id, Some(&ann.token), dave()).await);
    assert_eq!(refused, (403, "forbidden".into()));
    let refused = refusal(email_link(&t, &id, None, dave()).await);
    assert_eq!(refused, (401, "unauthenticated".into()));

    // A bad address, or a recording with nothing to play, is refused before anything is sent.
    for bad in [
        "dave at example",
        "",
        "a@b@c",
        "dave@example.org\r\nBcc: x@y.z",
    ] {
        let refused = refusal(email_link(&t, &id, Some(&carol.token), to(bad)).await);
        assert_eq!(refused, (422, "invalid_email".into()), "{bad:?}");
    }
    let refused = refusal(email_link(&t, &id, Some(&carol.token), json!({})).await);
    assert_eq!(refused, (422, "invalid_body".into()));
    let (converting, _) = recording(&t, &carol, RecordingStatus::Processing).await;
    let refused = refusal(email_link(&t, &converting, Some(&carol.token), dave()).await);
    assert_eq!(refused, (409, "recording_not_ready".into()));
    let unknown = uuid::Uuid::new_v4().to_string();
    let refused = refusal(email_link(&t, &unknown, Some(&carol.token), dave()).await);
    assert_eq!(refused, (404, "unknown_recording".into()));

    // With the relay gone, the owner is told.
    relay.process.kill().await.unwrap();
    let refused = refusal(email_link(&t, &id, Some(&carol.token), dave()).await);
    assert_eq!(refused, (502, "mail_failed".into()));
}

#[tokio::test]
async fn with_mail_off_a_recording_link_is_not_e_mailed() {
    let t = TestServer::start().await;
    let carol = t.account("carol", AccountRole::Csr).await;
    let (id, _) = recording(&t, &carol, RecordingStatus::Ready).await;
    let refused = refusal(email_link(&t, &id, Some(&carol.token), to("dave@example.org")).await);
    assert_eq!(refused, (409, "mail_disabled".into()));
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
