//! The real `tandem` binary as a child process, for tests that kill it (SIGKILL) and start it
//! again on the same data.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

pub const PASSWORD: &str = "correct horse battery";

/// `tandem` with its data in `dir` (database, secret, recordings) and one media worker. A test
/// may override any of these with another `.env(...)`.
pub fn tandem(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tandem"));
    c.current_dir(dir)
        .env("TANDEM_STORAGE_DATABASE", dir.join("tandem.db"))
        .env("TANDEM_AUTH_SECRET_FILE", dir.join("secret.key"))
        .env("TANDEM_RECORDING_DIR", dir.join("recordings"))
        .env("TANDEM_FILES_DIR", dir.join("files"))
        .env("TANDEM_MEDIA_WORKERS", "1")
        .env("TANDEM_SIP_LISTEN", "127.0.0.1:0")
        .kill_on_drop(true);
    c
}

/// Adds a CSR account with [`PASSWORD`] through `tandem user add`.
pub async fn add_csr(mut tandem: Command, username: &str) {
    let mut add = tandem
        .args(["user", "add", "--username", username, "--role", "csr"])
        .args(["--email", &format!("{username}@example.com")])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .await
        .unwrap();
    assert!(add.wait().await.unwrap().success());
}

/// Starts `tandem serve` on a free port; answers the process and its base URL.
pub async fn serve(mut tandem: Command) -> (Child, String) {
    let mut child = tandem
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("Tandem is listening on ") {
                return url.to_string();
            }
        }
        panic!("the server said nothing");
    })
    .await
    .expect("the server starts");
    (child, base)
}

/// POSTs `body`; answers the status and the JSON answer (null when there is none).
pub async fn post(base: &str, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    crate::common::response(r.send().await.unwrap()).await
}

/// GETs `path` with `token`; answers the status and the JSON answer.
pub async fn get(base: &str, path: &str, token: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    crate::common::response(r).await
}

/// The sign-in token of `username` (with [`PASSWORD`]) on the server at `base`.
pub async fn login(base: &str, username: &str) -> String {
    let (status, login) = post(
        base,
        "/api/login",
        None,
        json!({"username": username, "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 200, "{login}");
    login["token"].as_str().unwrap().to_string()
}
