//! `tandem-helper join` end to end, under Xvfb: a real Tandem server (in this process), a CSR
//! (WebSocket, and a WebRTC client over real UDP that decodes the H.264 it receives), a customer
//! (WebSocket) who pairs, and the real `tandem-helper` binary in its window, which the test
//! reads, types into and clicks over AT-SPI as the customer would (tests/common/atspi.rs). The
//! test window (examples/test_window.rs) draws a known pattern and logs the pointer and keys it
//! receives.
#![cfg(target_os = "linux")]

#[path = "common/atspi.rs"]
mod atspi;
#[path = "common/logon.rs"]
mod logon;
#[path = "common/process.rs"]
mod process;
#[path = "common/xvfb.rs"]
mod xvfb;

use std::path::PathBuf;
use std::process::{Command, Stdio};
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
use tokio::task::block_in_place;
use tokio_tungstenite::tungstenite::Message;

use atspi::Desktop;
use process::{Proc, WAIT};

#[path = "join/apps.rs"]
mod apps;
// The same, with the CSR's console and the customer's page in Chromium (tests/e2e).
#[path = "join/chromium.rs"]
mod chromium;
#[path = "join/clipboard.rs"]
mod clipboard;
// F2: files and folders both ways, and operations on the customer's files.
#[path = "join/files.rs"]
mod files;
// D4: Dave controls Carol's test window through Carol's own helper, in Chromium.
#[path = "join/give_control.rs"]
mod give_control;
// The connection to the server dropped and made again.
#[path = "join/reconnect.rs"]
mod reconnect;
// A fake server relaying control the customer did not allow in the helper.
#[path = "join/rogue.rs"]
mod rogue;
// M4: the CSR signs in as another user of the customer's computer.
#[path = "join/login_as.rs"]
mod login_as;
// M5: the computer restarts and its helper rejoins by itself.
#[path = "join/reboot.rs"]
mod reboot;
// M3: scripts from the library run after the customer's yes, in order.
#[path = "join/scripts.rs"]
mod scripts;
// M1: system information read after the customer's yes.
#[path = "join/system_info.rs"]
mod system_info;
// D6's pick answered in the helper's window.
#[path = "join/window_pick.rs"]
mod window_pick;

/// The helper's main window, by its title.
const MAIN: &str = "Tandem Helper";

/// The test window at (700, 100), 400x300: clear of the helper's windows, which a bare Xvfb
/// puts at the top left.
fn test_window(display: &str) -> (Proc, u32) {
    test_window_with(
        display,
        &[
            "--title", "Window A", "--x", "700", "--y", "100", "--width", "400", "--height", "300",
        ],
    )
}

/// The test window with these arguments (title, place, `--colors`...), once it is shown, and its
/// X window id.
fn test_window_with(display: &str, args: &[&str]) -> (Proc, u32) {
    let deps = std::env::current_exe().expect("test binary");
    let exe: PathBuf = deps
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .join("examples/test_window");
    let mut c = Command::new(exe);
    c.args(["--display", display]).args(args);
    let w = Proc::spawn(c);
    let ready = w.event("ready");
    let id = ready["window"].as_u64().expect("the window's id") as u32;
    (w, id)
}

/// A private 1280x800 display: the server (dropped with it) and its name.
fn xvfb() -> (xvfb::Xvfb, String) {
    let x = xvfb::Xvfb::start("1280x800");
    let display = x.display.clone();
    (x, display)
}

/// The test window at (100, 100), 400x300, for tests whose helper has no window of its own
/// (`--terminal`: the rogue server's).
fn corner_window(display: &str) -> Proc {
    test_window_with(
        display,
        &[
            "--title", "Window A", "--x", "100", "--y", "100", "--width", "400", "--height", "300",
        ],
    )
    .0
}

/// Nothing reached the test window: its own marker, asked for now, is the next thing it logs
/// (it comes after anything an earlier message could have caused).
fn nothing_injected(window: &mut Proc, when: &str) {
    window.type_line("fill 0 0 1 1 000000");
    let next = window.line(|l| {
        l.contains("\"key_press\"") || l.contains("\"filled\"") || l.contains("\"button_press\"")
    });
    assert!(next.contains("filled"), "injected {when}: {next}");
}

/// Gives the keyboard to `window`, as a customer does by clicking it (without a window manager,
/// the helper's windows take the focus when they show).
fn focus(display: &str, window: u32) {
    use x11rb::protocol::xproto::{ConnectionExt, InputFocus};
    use x11rb::wrapper::ConnectionExt as _;
    let (conn, _) = x11rb::connect(Some(display)).expect("X connects");
    conn.set_input_focus(InputFocus::PARENT, window, x11rb::CURRENT_TIME)
        .expect("focus");
    conn.sync().expect("sync");
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

    /// Every picture received so far, decoded in order, as RGB with its size.
    fn pictures(&self) -> Vec<(Vec<u8>, usize, usize)> {
        let c = self.0.lock().unwrap();
        let Ok(mut decoder) = openh264::decoder::Decoder::new() else {
            return Vec::new();
        };
        let mut all = Vec::new();
        for v in c.video_in.values() {
            for (_, data) in &v.kept {
                if let Ok(Some(yuv)) = decoder.decode(data) {
                    let (w, h) = yuv.dimensions();
                    let mut rgb = vec![0; w * h * 3];
                    yuv.write_rgb8(&mut rgb);
                    all.push((rgb, w, h));
                }
            }
        }
        all
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

/// Carol's password: the CSR account every test here signs in with.
const CAROL_PASSWORD: &str = "correct horse battery";

/// A Tandem server in this process, its files in `dir`, with Carol (a CSR) as an account.
async fn start_server(dir: &std::path::Path, extra: &[(&str, &str)]) -> tandem::server::Server {
    let mut env = vec![
        ("TANDEM_SERVER_LISTEN", "127.0.0.1:0".to_owned()),
        (
            "TANDEM_STORAGE_DATABASE",
            dir.join("tandem.db").display().to_string(),
        ),
        (
            "TANDEM_AUTH_SECRET_FILE",
            dir.join("secret.key").display().to_string(),
        ),
        ("TANDEM_SIP_LISTEN", "127.0.0.1:0".to_owned()),
        (
            "TANDEM_RECORDING_DIR",
            dir.join("recordings").display().to_string(),
        ),
        ("TANDEM_FILES_DIR", dir.join("files").display().to_string()),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let config = Config::load(
        None,
        env.iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let server = tandem::server::start(config).await.unwrap();
    create_user(
        &server.store,
        NewUser {
            username: "carol".into(),
            password: CAROL_PASSWORD.into(),
            display_name: "Carol".into(),
            email: "carol@example.com".into(),
            role: AccountRole::Csr,
        },
    )
    .await
    .unwrap();
    server
}

/// A real server in this process, with Carol's session and Dave in it: the CSR's and Dave's
/// connections, and a pairing code for Dave's computer.
struct Session {
    _dir: tempfile::TempDir,
    base: String,
    /// Carol's sign-in token and her participant token in this session.
    carol: String,
    csr_token: String,
    session_id: String,
    csr: Ws,
    dave: Ws,
    code: String,
    _server: tandem::server::Server,
}

async fn session() -> Session {
    session_with(&[]).await
}

/// A session on a server configured with `extra` (environment, as `TANDEM_...` variables).
async fn session_with(extra: &[(&str, &str)]) -> Session {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), extra).await;
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
    let (_, login) = post(
        "/api/login",
        None,
        json!({"username": "carol", "password": CAROL_PASSWORD}),
    )
    .await;
    let carol = login["token"].as_str().unwrap().to_owned();
    let (status, started) = post(
        "/api/sessions",
        Some(carol.clone()),
        json!({"topic": "printer"}),
    )
    .await;
    assert_eq!(status, 201, "{started}");
    let csr = Ws::connect(&base, started["token"].as_str().unwrap()).await;
    let (status, joined) = post("/api/join", None, json!({"number": started["session"]["number"], "name": "Dave", "email": "dave@example.org"})).await;
    assert_eq!(status, 201, "{joined}");
    let dave_token = joined["token"].as_str().unwrap().to_owned();
    let dave = Ws::connect(&base, &dave_token).await;
    let (status, code) = post("/api/helper/codes", Some(dave_token), json!({})).await;
    assert_eq!(status, 201, "{code}");
    Session {
        _dir: dir,
        base,
        carol,
        csr_token: started["token"].as_str().unwrap().to_owned(),
        session_id: started["session"]["id"].as_str().unwrap().to_owned(),
        csr,
        dave,
        code: code["code"].as_str().unwrap().to_owned(),
        _server: server,
    }
}

/// `tandem-helper join --terminal` for Dave on `display`, answering on its terminal (the tests
/// of what lies beyond the window); joined when this returns.
fn join_helper(s: &Session, display: &str) -> Proc {
    join_helper_with(s, display, &[])
}

/// [`join_helper`] with these environment variables set.
fn join_helper_with(s: &Session, display: &str, env: &[(&str, &std::ffi::OsStr)]) -> Proc {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tandem-helper"));
    c.args(["join", &s.base, &s.code, "--terminal", "--display", display])
        .envs(env.iter().copied());
    let helper = Proc::spawn(c);
    helper.line(|l| l.starts_with("joined the session as \"Dave's computer\""));
    helper
}

/// Dave's helper joins on `display` (terminal), the CSR connects its WebRTC client, asks to see
/// the screen, and the helper's terminal says yes: the screen is being shown when this returns.
async fn viewing(s: &mut Session, display: &str) -> (Proc, Peer) {
    let (helper, peer, _) = viewing_with(s, display, &[]).await;
    (helper, peer)
}

/// [`viewing`] with these environment variables for the helper; also what the server said the
/// computer can do when it attached.
async fn viewing_with(
    s: &mut Session,
    display: &str,
    env: &[(&str, &std::ffi::OsStr)],
) -> (Proc, Peer, Value) {
    let mut helper = join_helper_with(s, display, env);
    let attached = s.csr.event("computer_attached", "").await;
    let peer = Peer::connect(&mut s.csr).await;
    allowed(
        &mut s.csr,
        &mut helper,
        "view_desktop",
        "Carol asks to see your screen",
    )
    .await;
    peer.answer_offer(&mut s.csr).await;
    helper.line(|l| l == "your screen is being shown");
    (helper, peer, attached)
}

/// The CSR asks for `activity`; the helper's terminal shows `question` and is answered "y".
async fn allowed(csr: &mut Ws, helper: &mut Proc, activity: &str, question: &str) {
    csr.send(json!({"type": "request_activity", "activity": activity}))
        .await;
    let q = helper.line(|l| l.starts_with("question:"));
    assert!(q.contains(question), "{q}");
    helper.type_line("y");
    csr.event("activity_started", activity).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_customer_pairs_and_answers_in_the_window_and_stop_there_ends_viewing_and_control() {
    let Some(mut desk) = Desktop::start("1280x800") else {
        return;
    };
    let display = desk.display().to_owned();
    let (mut window, window_id) = test_window(&display);
    // Held to the end: the server, and Dave's page (his computer leaves when he does).
    let mut s = session().await;
    let (base, code, csr) = (s.base.clone(), s.code.clone(), &mut s.csr);

    // On a terminal (--terminal), a wrong code is refused in words and the helper exits 1.
    let wrong = Command::new(env!("CARGO_BIN_EXE_tandem-helper"))
        .args([
            "join",
            &base,
            "0000 0000",
            "--terminal",
            "--display",
            &display,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("the code is not right"),
        "{wrong:?}"
    );

    // In the window, opened with no arguments as a double-click opens the downloaded file: the
    // customer types the server's address and the code.
    let mut helper_cmd = desk.command(env!("CARGO_BIN_EXE_tandem-helper"));
    helper_cmd.args(["--display", &display]);
    let mut helper = Proc::spawn(helper_cmd);
    let entry = json!({"role": "text", "name": "Pairing code", "window": MAIN});
    let server = json!({"role": "text", "name": "Support server", "window": MAIN});
    block_in_place(|| {
        desk.find(entry.clone());
        // An address that is none is said in words; both entries stay for another try.
        desk.type_into(&server, "support example com");
        desk.type_into(&entry, "0000 0000");
        desk.click("Join", MAIN);
        desk.find(
            json!({"role": "label", "contains": "is not a server's address", "window": MAIN}),
        );
        // A wrong code is said in the table's words, and the entry stays for another try.
        desk.type_into(&server, &base);
        desk.click("Join", MAIN);
        desk.find(json!({"role": "label", "contains": "the code is not right", "window": MAIN}));
        // The right code, typed as the page shows it: two groups of four.
        desk.type_into(&entry, &format!("{} {}", &code[..4], &code[4..]));
        desk.click("Join", MAIN);
        desk.find(json!({"role": "label", "contains": "as Dave's computer.", "window": MAIN}));
        desk.find(
            json!({"role": "label", "name": "Carol is in the session with you.", "window": MAIN}),
        );
    });
    csr.event("computer_attached", "").await;
    let peer = Peer::connect(csr).await;

    // View: asked in the window, Allow clicked; the CSR decodes the test window's pattern.
    csr.send(json!({"type": "request_activity", "activity": "view_desktop"}))
        .await;
    block_in_place(|| {
        desk.find(
            json!({"role": "label", "name": "Carol asks to see your screen.", "window": MAIN}),
        );
        desk.click("Allow", MAIN);
    });
    csr.event("activity_started", "view_desktop").await;
    peer.answer_offer(csr).await;
    let pattern = [
        (800, 175, [255, 0, 0]),
        (1000, 175, [0, 255, 0]),
        (800, 325, [0, 0, 255]),
        (1000, 325, [255, 255, 0]),
    ];
    eventually("the CSR sees the test window's pattern in place", || {
        peer.last_picture().is_some_and(|p| {
            p.1 == 1280 && p.2 == 800 && pattern.iter().all(|(x, y, c)| shows(&p, *x, *y, *c))
        })
    })
    .await;

    // Control: asked, Allow; the indicator says who controls; a click and text reach the window.
    csr.send(json!({"type": "request_activity", "activity": "control_desktop"}))
        .await;
    let indicator = "Carol is controlling this computer";
    block_in_place(|| {
        desk.find(json!({"role": "label", "name": "Carol asks to control your computer: to move your mouse and type.", "window": MAIN}));
        desk.click("Allow", MAIN);
        desk.find(json!({"role": "frame", "name": indicator}));
        desk.find(json!({"role": "push button", "name": "Stop", "window": indicator}));
    });
    csr.event("activity_started", "control_desktop").await;
    focus(&display, window_id);
    let at = json!([900.0 / 1280.0, 250.0 / 800.0]);
    eventually("the CSR's control channel is open", || {
        peer.send_control(json!({"t": "move", "at": at}))
    })
    .await;
    assert!(peer.send_control(json!({"t": "down", "at": at, "button": 0})));
    assert!(peer.send_control(json!({"t": "up", "at": at, "button": 0})));
    assert!(peer.send_control(json!({"t": "text", "text": "hi"})));
    let press = block_in_place(|| window.event("button_press"));
    let (x, y) = (press["x"].as_i64().unwrap(), press["y"].as_i64().unwrap());
    assert!(
        (x - 200).abs() <= 2 && (y - 150).abs() <= 2,
        "clicked at ({x}, {y})"
    );
    let (h, i) = block_in_place(|| (window.event("key_press"), window.event("key_press")));
    assert_eq!(
        (h["text"].as_str(), i["text"].as_str()),
        (Some("h"), Some("i"))
    );

    // Carol asks for the text Dave copied: asked in the window beside the rest, sent on Send.
    let _copied = clipboard::xclip_in(&display, "Dave's serial: 4711-XY");
    assert!(peer.send_control(json!({"t": "clipboard_get"})));
    block_in_place(|| {
        desk.find(json!({"role": "label", "name": "Carol asks for the text you copied: send it?", "window": MAIN}));
        desk.find(json!({"role": "push button", "name": "Don't send", "window": MAIN}));
    });
    assert!(
        clipboard::control_in(&peer).is_empty(),
        "nothing is sent before the customer answers"
    );
    block_in_place(|| desk.click("Send", MAIN));
    eventually("Carol receives the copied text", || {
        !clipboard::control_in(&peer).is_empty()
    })
    .await;
    assert_eq!(
        clipboard::control_in(&peer),
        [json!({"t": "clipboard", "text": "Dave's serial: 4711-XY"})]
    );
    block_in_place(|| {
        desk.gone(json!({"role": "push button", "name": "Don't send", "window": MAIN}));
    });

    // Stop in the window ends viewing and control at once, in the helper and on the server:
    // the CSR's console is told both ended, and the indicator goes.
    block_in_place(|| desk.click("Stop", MAIN));
    let mut stopped = Vec::new();
    while stopped.len() < 2 {
        let e = csr.event("activity_stopped", "").await;
        stopped.push(e["activity"].as_str().unwrap_or_default().to_owned());
    }
    stopped.sort();
    assert_eq!(stopped, ["control_desktop", "view_desktop"]);
    block_in_place(|| {
        desk.gone(json!({"role": "frame", "name": indicator}));
        desk.find(json!({"role": "label", "name": "Nobody can see or control this computer.", "window": MAIN}));
    });
    // The CSR's console still sends what the CSR does; nothing of it reaches the window.
    peer.send_control(json!({"t": "text", "text": "x"}));
    block_in_place(|| nothing_injected(&mut window, "after Stop"));

    // When Dave leaves, the server's bye is said in the window, which stays with Close until
    // the customer closes it (Close is the window's own close: Stop, then leave); then nothing
    // of the helper is left running.
    s.dave.send(json!({"type": "leave"})).await;
    block_in_place(|| {
        desk.find(json!({"role": "label", "contains": "The session has ended: the customer left the session", "window": MAIN}));
        assert!(
            helper.child.try_wait().unwrap().is_none(),
            "the window waits for Close"
        );
        desk.click("Close", MAIN);
    });
    let status = block_in_place(|| helper.exited("the helper"));
    assert!(status.success(), "{status:?}");
}
