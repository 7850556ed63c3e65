//! Test harness: a real server on a loopback port with its own SQLite file, and real HTTP and
//! WebSocket clients.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tandem::config::Config;
use tandem::http::accounts::{NewUser, create_user};
use tandem::server::Server;
use tandem::store::{AccountRole, Recording, RecordingStatus, Store};
use tokio_tungstenite::tungstenite::Message;

pub mod baresip;
pub mod browser;
pub mod flood;
/// The exporter's test helpers: media encoded with GStreamer, MP4s probed and decoded.
pub use tandem_export::testkit as media_files;
pub mod phone;
pub mod process;

/// How long to wait for something that should happen promptly before calling it a failure.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub server: Option<Server>,
    pub base: String,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub http: reqwest::Client,
}

pub fn config_in(dir: &Path, extra: &[(&str, &str)]) -> Config {
    let mut env = vec![
        (
            "TANDEM_SERVER_LISTEN".to_string(),
            "127.0.0.1:0".to_string(),
        ),
        (
            "TANDEM_STORAGE_DATABASE".to_string(),
            dir.join("tandem.db").display().to_string(),
        ),
        (
            "TANDEM_AUTH_SECRET_FILE".to_string(),
            dir.join("secret.key").display().to_string(),
        ),
        ("TANDEM_SIP_LISTEN".to_string(), "127.0.0.1:0".to_string()),
        (
            "TANDEM_RECORDING_DIR".to_string(),
            dir.join("recordings").display().to_string(),
        ),
        (
            "TANDEM_FILES_DIR".to_string(),
            dir.join("files").display().to_string(),
        ),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Config::load(None, env).expect("test config is valid")
}

impl TestServer {
    pub async fn start() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        let mut s = Self::start_in(&dir, &[]).await;
        s._tmp = Some(tmp);
        s
    }

    pub async fn start_with(extra: &[(&str, &str)]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        let mut s = Self::start_in(&dir, extra).await;
        s._tmp = Some(tmp);
        s
    }

    /// A server on an existing data folder (the caller keeps the folder alive).
    pub async fn start_in(dir: &Path, extra: &[(&str, &str)]) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_test_writer()
            .try_init();
        let server = tandem::server::start(config_in(dir, extra)).await.unwrap();
        let base = format!("http://{}", server.addr);
        Self {
            server: Some(server),
            base,
            dir: dir.to_owned(),
            _tmp: None,
            http: reqwest::Client::new(),
        }
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }

    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
    }

    /// Creates an account directly in the store and signs it in over HTTP.
    pub async fn account(&self, username: &str, role: AccountRole) -> Account {
        self.named_account(username, &format!("{username} (display)"), role)
            .await
    }

    /// An account whose display name is `name`, as people see it on the consoles.
    pub async fn named_account(&self, username: &str, name: &str, role: AccountRole) -> Account {
        let user = create_user(
            &self.server().store,
            NewUser {
                username: username.into(),
                password: "correct horse battery".into(),
                display_name: name.into(),
                email: format!("{username}@example.com"),
                role,
            },
        )
        .await
        .unwrap_or_else(|p| panic!("{}", p.detail));
        let (status, body) = self
            .post(
                "/api/login",
                None,
                json!({"username": username, "password": "correct horse battery"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        Account {
            id: user.id.to_string(),
            token: body["token"].as_str().unwrap().to_string(),
            name: user.display_name,
        }
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{}", self.base, path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        response(req.send().await.unwrap()).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = self.http.put(format!("{}{}", self.base, path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        response(req.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.get(format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        response(req.send().await.unwrap()).await
    }

    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// A CSR starts a session; returns the answer (session, token, invite).
    /// How many messages or frames the SFU has dropped for `reason`. The counter is
    /// process-wide, so tests running beside one can only make it larger: a wait on it is a
    /// lower bound.
    pub async fn dropped_by_policy(&self, reason: &str) -> f64 {
        let name = format!("tandem_media_dropped_by_policy_total{{reason=\"{reason}\"}} ");
        self.metrics()
            .await
            .lines()
            .find_map(|l| l.strip_prefix(&name)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// `account` (a CSR) assists the session `number`: the participant's join answer.
    pub async fn assist(&self, account: &Account, number: &str) -> Value {
        let (status, body) = self
            .post(
                "/api/assist",
                Some(&account.token),
                json!({"number": number}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    pub async fn start_session(&self, csr: &Account, topic: &str) -> Value {
        let (status, body) = self
            .post("/api/sessions", Some(&csr.token), json!({"topic": topic}))
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    pub async fn join_by_number(&self, number: &str, name: &str) -> Value {
        let (status, body) = self
            .post(
                "/api/join",
                None,
                json!({"number": number, "name": name, "email": format!("{}@example.org", name.to_lowercase())}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    pub async fn connect(&self, joined: &Value) -> Ws {
        Ws::connect(&self.base, joined["token"].as_str().unwrap()).await
    }
}

pub async fn response(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let ctype = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if status >= 400 {
        assert_eq!(
            ctype, "application/problem+json",
            "errors are problem documents: {body}"
        );
        assert!(body["code"].is_string() && body["type"].is_string() && body["status"] == status);
    }
    (status, body)
}

pub struct Account {
    pub id: String,
    pub token: String,
    pub name: String,
}

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One participant's WebSocket, remembering every frame it received.
pub struct Ws {
    stream: Stream,
    pending: VecDeque<Value>,
    pub seen: Vec<Value>,
    pub welcome: Value,
    pub closed: bool,
    next_ref: u64,
}

impl Ws {
    pub async fn connect(base: &str, token: &str) -> Ws {
        let url = format!("{}/ws?token={}", base.replace("http://", "ws://"), token);
        let (stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut ws = Ws {
            stream,
            pending: VecDeque::new(),
            seen: Vec::new(),
            welcome: Value::Null,
            closed: false,
            next_ref: 1,
        };
        let welcome = ws.next().await.expect("a welcome frame");
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        ws.welcome = welcome;
        ws
    }

    pub fn id(&self) -> String {
        self.welcome["you"].as_str().unwrap().to_string()
    }

    async fn read(&mut self) -> Option<Value> {
        loop {
            match tokio::time::timeout(PATIENCE, self.stream.next()).await {
                Err(_) => panic!(
                    "nothing arrived within {PATIENCE:?}; seen so far: {:#?}",
                    self.seen
                ),
                Ok(end @ (None | Some(Err(_)) | Some(Ok(Message::Close(_))))) => {
                    self.seen.push(json!({ "_closed": format!("{end:?}") }));
                    self.closed = true;
                    return None;
                }
                Ok(Some(Ok(Message::Text(t)))) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap();
                    self.seen.push(v.clone());
                    return Some(v);
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// The next frame, buffered or new.
    pub async fn next(&mut self) -> Option<Value> {
        if let Some(v) = self.pending.pop_front() {
            return Some(v);
        }
        self.read().await
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.stream
            .send(Message::Text(text.to_string().into()))
            .await
            .unwrap();
    }

    pub async fn send(&mut self, v: Value) {
        self.send_raw(&v.to_string()).await;
    }

    /// Sends a command and waits for its answer: Ok(()) or Err(code). Other frames are kept.
    pub async fn cmd(&mut self, v: Value) -> Result<(), String> {
        let f = self.request(v).await;
        match f["type"].as_str() {
            Some("ok") => Ok(()),
            Some("error") => Err(f["code"].as_str().unwrap().to_string()),
            _ => panic!("unexpected answer {f}"),
        }
    }

    /// Sends a request and returns the frame that answers it, whatever its type.
    pub async fn request(&mut self, mut v: Value) -> Value {
        let r = self.next_ref;
        self.next_ref += 1;
        v["ref"] = json!(r);
        self.send(v).await;
        loop {
            let Some(f) = self.read().await else {
                panic!(
                    "connection closed while waiting for the answer to ref {r}; last frames: {:#?}",
                    &self.seen[self.seen.len().saturating_sub(6)..]
                )
            };
            if f["ref"] == json!(r) {
                return f;
            }
            self.pending.push_back(f);
        }
    }

    /// Waits for an event of this type; returns the event (the inner object).
    pub async fn event(&mut self, kind: &str) -> Value {
        self.event_where(kind, |_| true).await
    }

    pub async fn event_where(&mut self, kind: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self
            .pending
            .iter()
            .position(|f| f["type"] == "event" && f["event"]["type"] == kind && pred(&f["event"]))
        {
            return self.pending.remove(i).unwrap()["event"].clone();
        }
        loop {
            let Some(f) = self.read().await else {
                panic!("closed while waiting for {kind}; seen: {:#?}", self.seen)
            };
            if f["type"] == "event" && f["event"]["type"] == kind && pred(&f["event"]) {
                return f["event"].clone();
            }
            self.pending.push_back(f);
        }
    }

    /// Waits for a frame of this top-level type (error, bye...).
    pub async fn frame(&mut self, kind: &str) -> Value {
        if let Some(i) = self.pending.iter().position(|f| f["type"] == kind) {
            return self.pending.remove(i).unwrap();
        }
        loop {
            let Some(f) = self.read().await else {
                panic!(
                    "closed while waiting for a {kind} frame; seen: {:#?}",
                    self.seen
                )
            };
            if f["type"] == kind {
                return f;
            }
            self.pending.push_back(f);
        }
    }

    /// Reads until the server closes the connection.
    pub async fn until_closed(&mut self) {
        while !self.closed {
            if self.read().await.is_none() {
                break;
            }
        }
    }

    /// Whether any frame received so far is an event matching `pred`.
    pub fn saw_event(&self, kind: &str, pred: impl Fn(&Value) -> bool) -> bool {
        self.seen
            .iter()
            .any(|f| f["type"] == "event" && f["event"]["type"] == kind && pred(&f["event"]))
    }

    pub async fn chat(&mut self, text: &str, to: Option<&str>) -> Result<(), String> {
        self.cmd(json!({"type": "chat", "text": text, "to": to}))
            .await
    }
}

/// The primary CSR asks for `activity`; answers the request as the customer got it (S9).
pub async fn ask(csr: &mut Ws, customer: &mut Ws, activity: &str) -> Value {
    csr.cmd(json!({"type": "request_activity", "activity": activity}))
        .await
        .unwrap();
    let asked = customer.event("consent_requested").await;
    assert_eq!(asked["activity"], activity, "{asked}");
    asked
}

/// The customer allows what they were `asked`; returns once it runs.
pub async fn allow(csr: &mut Ws, customer: &mut Ws, asked: &Value) {
    customer
        .cmd(json!({"type": "consent_reply", "request": asked["request"], "grant": true}))
        .await
        .unwrap();
    csr.event_where("activity_started", |e| e["activity"] == asked["activity"])
        .await;
}

/// The recordings, newest first, once the newest is no longer in `status`.
pub async fn newest_once_not(store: &Store, status: RecordingStatus) -> Vec<Recording> {
    let mut rows = Vec::new();
    phone::eventually(&format!("the recording is no longer {status:?}"), || {
        rows = futures_now(store.recordings(None));
        rows.first().is_some_and(|r| r.status != status)
    })
    .await;
    rows
}

/// Runs a store call to completion from a synchronous condition.
pub fn futures_now<T>(
    f: impl std::future::Future<Output = Result<T, tandem::store::StoreError>>,
) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f)).unwrap()
}

/// Checks a recording's MP4 as exported (SYS5) with ffprobe (scripts/system-packages.sh
/// installs it): H.264 and AAC, as long as the
/// recording within half a second, and fast-start: the index (moov) before the media (mdat), so
/// that playback starts at once.
pub fn check_exported_mp4(mp4: &Path, duration_ms: i64) {
    let probe = media_files::probe(mp4);
    let codecs: Vec<_> = probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["codec_name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        codecs.contains(&"h264".to_string()) && codecs.contains(&"aac".to_string()),
        "{probe}"
    );
    let seconds: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let recorded = duration_ms as f64 / 1000.0;
    assert!(
        (seconds - recorded).abs() <= 0.5,
        "MP4 {seconds} s, recorded {recorded} s"
    );
    let bytes = std::fs::read(mp4).unwrap();
    let at = |tag: &[u8]| bytes.windows(4).position(|w| w == tag).unwrap();
    assert!(at(b"moov") < at(b"mdat"), "moov after mdat");
}

/// A small filesystem mounted at a folder (tmpfs; the tests run as root, as CI does), for
/// filling the disk. Unmounted when dropped.
pub struct SmallDisk(PathBuf);

impl SmallDisk {
    pub fn mount(at: &Path, size: &str) -> Self {
        std::fs::create_dir_all(at).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "mounting a {size} tmpfs at {} takes root (CI runs as root)",
            at.display()
        );
        Self(at.to_owned())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}
