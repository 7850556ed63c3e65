//! S4: invitations by e-mail through a real SMTP server (Python's standard-library smtpd,
//! listening on loopback), and the clear errors when mail is off or the relay is down.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::TestServer;
use serde_json::json;
use tandem::store::AccountRole;
use tokio::io::{AsyncBufReadExt, BufReader};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn the_server_sends_invitations_when_mail_is_configured() {
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
    let deadline = tokio::time::Instant::now() + common::PATIENCE;
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
    let port_s = port.to_string();
    let t = TestServer::start_with(&[
        ("TANDEM_MAIL_ENABLED", "true"),
        ("TANDEM_MAIL_SMTP_HOST", "127.0.0.1"),
        ("TANDEM_MAIL_SMTP_PORT", &port_s),
        ("TANDEM_MAIL_FROM", "Tandem <support@example.com>"),
    ])
    .await;
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

    // The relay received a message to Dave carrying the invite link. smtpd prints each line as
    // a Python bytes literal; the body is quoted-printable, decoded here as a mail client would.
    let token = inv["token"].as_str().unwrap().to_string();
    let mut lines = BufReader::new(smtpd.stdout.take().unwrap()).lines();
    let mut raw = String::new();
    tokio::time::timeout(common::PATIENCE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
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
    let message = raw.replace("=\n", "").replace("=3D", "=");
    assert!(
        message.contains(&format!("/join?invite={token}")),
        "{message}"
    );
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
    smtpd.kill().await.unwrap();
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
    assert!(mailto.contains(&urlencode(inv["link"].as_str().unwrap())));
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
