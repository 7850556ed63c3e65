//! `tandem-helper join` end to end, under Xvfb: a real Tandem server (in this process), a CSR
//! (WebSocket, and a WebRTC client over real UDP that decodes the H.264 it receives), a customer
//! (WebSocket) who pairs, and the real `tandem-helper` binary answering on its terminal as the
//! customer would. The test window (examples/test_window.rs) draws a known pattern and logs the
//! pointer and keys it receives.
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use openh264::formats::YUVSource;
use serde_json::{Value, json};
use str0m::format::Codec;
use tandem::config::Config;
use tandem::http::accounts::{NewUser, create_user};
use tandem::store::AccountRole;
use tandem_media::client::{Client, ClientConfig};
use tandem_media::policy::ChannelKind;
use tokio::net::UdpSocket;
use tokio_tungstenite::tungstenite::Message;

#[path = "join/give_control.rs"]
mod give_control;

/// A bound on every wait (never a measurement).
const WAIT: Duration = Duration::from_secs(30);

/// A child process killed when dropped, with its stdout's lines on a channel.
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Proc {
    fn spawn(mut command: Command) -> Proc {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Proc {
            child,
            stdin,
            lines,
        }
    }

    fn line(&self, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).expect("an expected line");
            if matches(&line) {
                return line;
            }
        }
    }

    fn event(&self, name: &str) -> Value {
        let line =
            self.line(|l| serde_json::from_str::<Value>(l).is_ok_and(|v| v["event"] == name));
        serde_json::from_str(&line).expect("json")
    }

    fn type_line(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{text}").expect("write");
        stdin.flush().expect("flush");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn xvfb() -> (Proc, String) {
    let mut c = Command::new("Xvfb");
    c.args([
        "-displayfd",
        "1",
        "-screen",
        "0",
        "1280x800x24",
        "-nolisten",
        "tcp",
        "-br",
    ])
    .stderr(Stdio::null());
    let x = Proc::spawn(c);
    let n = x.line(|l| l.trim().parse::<u32>().is_ok());
    (x, format!(":{}", n.trim()))
}

/// The example binary cargo built beside this test's.
fn test_window(display: &str) -> Proc {
    let deps = std::env::current_exe().expect("test binary");
    let exe: PathBuf = deps
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .join("examples/test_window");
    let mut c = Command::new(exe);
    c.args([
        "--display",
        display,
        "--title",
        "Window A",
        "--x",
        "100",
        "--y",
        "100",
        "--width",
        "400",
        "--height",
        "300",
    ]);
    let w = Proc::spawn(c);
    w.event("ready");
    w
}

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Ws(Stream);

impl Ws {
    async fn connect(base: &str, token: &str) -> Ws {
        let url = format!("{}/ws?token={token}", base.replace("http://", "ws://"));
        let mut ws = Ws(tokio_tungstenite::connect_async(url).await.expect("ws").0);
        ws.until(|v| v["type"] == "welcome").await;
        ws
    }

    async fn send(&mut self, v: Value) {
        self.0
            .send(Message::Text(v.to_string().into()))
            .await
            .expect("send");
    }

    /// The next frame that matches, skipping others.
    async fn until(&mut self, matches: impl Fn(&Value) -> bool) -> Value {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Some(Ok(Message::Text(t))) = self.0.next().await {
                    let v: Value = serde_json::from_str(&t).expect("json");
                    if matches(&v) {
                        return v;
                    }
                }
            }
        })
        .await
        .expect("an expected frame")
    }

    async fn event(&mut self, kind: &str, activity: &str) -> Value {
        self.until(|v| {
            v["type"] == "event"
                && v["event"]["type"] == kind
                && (activity.is_empty() || v["event"]["activity"] == activity)
        })
        .await["event"]
            .clone()
    }
}

/// The CSR's WebRTC client, driven over real UDP by a task of its own.
#[derive(Clone)]
struct Peer(Arc<Mutex<Client>>);

impl Peer {
    async fn connect(ws: &mut Ws) -> Peer {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let config = ClientConfig {
            video_codecs: vec![Codec::H264],
            keep_video: 1000,
            ..ClientConfig::default()
        };
        let (client, offer, video) =
            Client::new(Instant::now(), socket.local_addr().unwrap(), config, vec![]).unwrap();
        let peer = Peer(Arc::new(Mutex::new(client)));
        ws.send(json!({"type": "media_offer", "ref": 1, "sdp": offer, "video": video}))
            .await;
        let answer = ws.until(|v| v["type"] == "media_answer").await;
        peer.0
            .lock()
            .unwrap()
            .accept_answer(
                Instant::now(),
                answer["sdp"].as_str().unwrap(),
                answer["void_offers"].as_u64().unwrap_or(0),
            )
            .unwrap();
        let driven = peer.clone();
        tokio::spawn(async move {
            let mut buf = vec![0; 65_536];
            loop {
                let wake = tokio::time::Instant::from_std(driven.0.lock().unwrap().poll_timeout());
                tokio::select! {
                    got = socket.recv_from(&mut buf) => if let Ok((n, from)) = got {
                        let _ = driven.0.lock().unwrap().handle_receive(Instant::now(), from, &buf[..n]);
                    },
                    () = tokio::time::sleep_until(wake) => {
                        let _ = driven.0.lock().unwrap().handle_timeout(Instant::now());
                    }
                }
                let out: Vec<_> =
                    std::iter::from_fn(|| driven.0.lock().unwrap().poll_transmit()).collect();
                for t in out {
                    let _ = socket.send_to(&t.contents, t.destination).await;
                }
            }
        });
        peer
    }

    async fn answer_offer(&self, ws: &mut Ws) {
        let offer = ws.until(|v| v["type"] == "media_offer").await;
        let number = offer["offer"].as_u64().unwrap();
        let answer = self
            .0
            .lock()
            .unwrap()
            .accept_offer(Instant::now(), number, offer["sdp"].as_str().unwrap())
            .unwrap()
            .expect("an answer");
        ws.send(json!({"type": "media_answer", "offer": number, "sdp": answer}))
            .await;
    }

    /// The frames received so far, decoded in order: the last picture, as RGB, and its size.
    fn last_picture(&self) -> Option<(Vec<u8>, usize, usize)> {
        let c = self.0.lock().unwrap();
        let mut decoder = openh264::decoder::Decoder::new().ok()?;
        let mut last = None;
        for v in c.video_in.values() {
            for (_, data) in &v.kept {
                if let Ok(Some(yuv)) = decoder.decode(data) {
                    let (w, h) = yuv.dimensions();
                    let mut rgb = vec![0; w * h * 3];
                    yuv.write_rgb8(&mut rgb);
                    last = Some((rgb, w, h));
                }
            }
        }
        last
    }

    fn send_control(&self, v: Value) -> bool {
        self.0.lock().unwrap().send_channel(
            Instant::now(),
            ChannelKind::Control,
            v.to_string().as_bytes(),
        )
    }
}

async fn eventually(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !ok() {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether the picture shows `rgb` at screen point (x, y) (the picture is the 1280x800 screen).
fn shows(picture: &(Vec<u8>, usize, usize), x: usize, y: usize, rgb: [u8; 3]) -> bool {
    let (data, w, _) = picture;
    let at = (y * w + x) * 3;
    data[at..at + 3]
        .iter()
        .zip(rgb)
        .all(|(a, b)| a.abs_diff(b) < 48)
}

/// A Tandem server in this process, its files in `d`.
async fn start_server(d: &std::path::Path) -> tandem::server::Server {
    let env = [
        ("TANDEM_SERVER_LISTEN", "127.0.0.1:0".to_owned()),
        (
            "TANDEM_STORAGE_DATABASE",
            d.join("tandem.db").display().to_string(),
        ),
        (
            "TANDEM_AUTH_SECRET_FILE",
            d.join("secret.key").display().to_string(),
        ),
        ("TANDEM_SIP_LISTEN", "127.0.0.1:0".to_owned()),
        (
            "TANDEM_RECORDING_DIR",
            d.join("recordings").display().to_string(),
        ),
    ];
    let config = Config::load(
        None,
        env.iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    tandem::server::start(config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_helper_joins_shows_the_screen_takes_control_and_stops_when_told() {
    let (_x, display) = xvfb();
    let mut window = test_window(&display);

    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let post = |path: &str, token: Option<String>, body: Value| {
        let mut r = http.post(format!("{base}{path}")).json(&body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        async move {
            let r = r.send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };

    create_user(
        &server.store,
        NewUser {
            username: "carol".into(),
            password: "correct horse battery".into(),
            display_name: "Carol".into(),
            email: "carol@example.com".into(),
            role: AccountRole::Csr,
        },
    )
    .await
    .unwrap();
    let (_, login) = post(
        "/api/login",
        None,
        json!({"username": "carol", "password": "correct horse battery"}),
    )
    .await;
    let carol = login["token"].as_str().unwrap().to_owned();
    let (status, started) = post("/api/sessions", Some(carol), json!({"topic": "printer"})).await;
    assert_eq!(status, 201, "{started}");
    let mut csr = Ws::connect(&base, started["token"].as_str().unwrap()).await;
    let (status, joined) = post("/api/join", None, json!({"number": started["session"]["number"], "name": "Dave", "email": "dave@example.org"})).await;
    assert_eq!(status, 201, "{joined}");
    let dave_token = joined["token"].as_str().unwrap().to_owned();
    let _dave = Ws::connect(&base, &dave_token).await;
    let (status, code) = post("/api/helper/codes", Some(dave_token), json!({})).await;
    assert_eq!(status, 201, "{code}");

    // A wrong code is refused in words, and the right one still works after it.
    let wrong = Command::new(env!("CARGO_BIN_EXE_tandem-helper"))
        .args(["join", &base, "0000 0000", "--display", &display])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("the code is not right"),
        "{wrong:?}"
    );

    let mut helper_cmd = Command::new(env!("CARGO_BIN_EXE_tandem-helper"));
    helper_cmd.args([
        "join",
        &base,
        code["code"].as_str().unwrap(),
        "--display",
        &display,
    ]);
    let mut helper = Proc::spawn(helper_cmd);
    helper.line(|l| l.starts_with("joined the session as \"Dave's computer\""));
    csr.event("computer_attached", "").await;
    let peer = Peer::connect(&mut csr).await;

    // View: asked on the helper's terminal, answered "y"; the CSR decodes the window's pattern.
    csr.send(json!({"type": "request_activity", "activity": "view_desktop"}))
        .await;
    let q = helper.line(|l| l.starts_with("question:"));
    assert!(q.contains("Carol asks to see your screen"), "{q}");
    helper.type_line("y");
    csr.event("activity_started", "view_desktop").await;
    peer.answer_offer(&mut csr).await;
    helper.line(|l| l == "your screen is being shown");
    let pattern = [
        (200, 175, [255, 0, 0]),
        (400, 175, [0, 255, 0]),
        (200, 325, [0, 0, 255]),
        (400, 325, [255, 255, 0]),
    ];
    eventually("the CSR sees the test window's pattern in place", || {
        peer.last_picture().is_some_and(|p| {
            p.1 == 1280 && p.2 == 800 && pattern.iter().all(|(x, y, c)| shows(&p, *x, *y, *c))
        })
    })
    .await;

    // Control: asked, "y"; a click and text reach the window at the point.
    csr.send(json!({"type": "request_activity", "activity": "control_desktop"}))
        .await;
    let q = helper.line(|l| l.starts_with("question:"));
    assert!(q.contains("Carol asks to control your computer"), "{q}");
    helper.type_line("y");
    csr.event("activity_started", "control_desktop").await;
    let at = json!([300.0 / 1280.0, 250.0 / 800.0]);
    eventually("the CSR's control channel is open", || {
        peer.send_control(json!({"t": "move", "at": at}))
    })
    .await;
    assert!(peer.send_control(json!({"t": "down", "at": at, "button": 0})));
    assert!(peer.send_control(json!({"t": "up", "at": at, "button": 0})));
    assert!(peer.send_control(json!({"t": "text", "text": "hi"})));
    let press = window.event("button_press");
    let (x, y) = (press["x"].as_i64().unwrap(), press["y"].as_i64().unwrap());
    assert!(
        (x - 200).abs() <= 2 && (y - 150).abs() <= 2,
        "clicked at ({x}, {y})"
    );
    let h = window.event("key_press");
    let i = window.event("key_press");
    assert_eq!(
        (h["text"].as_str(), i["text"].as_str()),
        (Some("h"), Some("i"))
    );

    // Stop on the terminal ends viewing and control at once, in the helper and on the server:
    // the CSR's console is told both ended. (A server that relayed control anyway is refused by
    // the helper itself: session.rs's rogue-server tests.)
    helper.type_line("s");
    helper.line(|l| l == "your screen is no longer shown");
    let mut stopped = Vec::new();
    while stopped.len() < 2 {
        let e = csr.event("activity_stopped", "").await;
        stopped.push(e["activity"].as_str().unwrap_or_default().to_owned());
    }
    stopped.sort();
    assert_eq!(stopped, ["control_desktop", "view_desktop"]);
    // The CSR's console still sends what the CSR does; nothing of it reaches the window.
    peer.send_control(json!({"t": "text", "text": "x"}));
    // The window's own marker comes after anything the late message could have caused.
    window.type_line("fill 0 0 1 1 000000");
    let next = window.line(|l| {
        l.contains("\"key_press\"") || l.contains("\"filled\"") || l.contains("\"button_press\"")
    });
    assert!(next.contains("filled"), "injected after Stop: {next}");
}
