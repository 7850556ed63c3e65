//! The helper's window, answered as a person would: the real GTK window (examples/window_demo.rs,
//! with a real consent record behind it) on a private Xvfb display and a private session bus,
//! read and clicked through its accessible names over AT-SPI by a small pyatspi script
//! (Debian's /usr/bin/python3 with python3-pyatspi; scripts/system-packages.sh installs them).
//!
//! Skips, saying so, only when Xvfb is missing outside CI; with CI=true a missing tool fails.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::Duration;

use serde_json::{Value, json};

/// How long anything may take to appear on this (slow, shared) machine before the test fails.
const DEADLINE: Duration = Duration::from_secs(30);
const PYTHON: &str = "/usr/bin/python3";

/// Finds and clicks nodes of the AT-SPI tree. One JSON command a line on stdin, one JSON reply a
/// line on stdout. Every wait polls with a deadline. Hidden widgets are not in GTK's tree.
const DRIVER: &str = r#"
import json, sys, time
import pyatspi

def nodes():
    out = []
    def walk(node, frame, depth):
        if node is None or depth > 30:
            return
        try:
            role, name = node.getRoleName(), node.name or ""
            if role == "frame":
                frame = name
            out.append((role, name, frame, node))
            kids = [node.getChildAtIndex(i) for i in range(node.childCount)]
        except Exception:
            return
        for k in kids:
            walk(k, frame, depth + 1)
    desktop = pyatspi.Registry.getDesktop(0)
    for i in range(desktop.childCount):
        try:
            walk(desktop.getChildAtIndex(i), "", 0)
        except Exception:
            pass
    return out

def matches(cmd, role, name, frame):
    if cmd.get("role") and role != cmd["role"]:
        return False
    if "name" in cmd and name != cmd["name"]:
        return False
    if "contains" in cmd and cmd["contains"] not in name:
        return False
    if "window" in cmd and cmd["window"] not in frame:
        return False
    return True

def handle(cmd):
    deadline = time.time() + cmd.get("timeout", 30)
    while True:
        found = [(r, n, f, node) for (r, n, f, node) in nodes() if matches(cmd, r, n, f)]
        if cmd["op"] == "gone" and not found:
            return {"ok": True}
        if cmd["op"] in ("find", "click") and len(found) == 1:
            role, name, frame, node = found[0]
            if cmd["op"] == "click":
                node.queryAction().doAction(0)
            return {"ok": True, "name": name, "window": frame}
        if time.time() > deadline:
            seen = [(r, n, f) for (r, n, f, _) in nodes() if n]
            return {"ok": False, "found": len(found), "seen": seen}
        time.sleep(0.1)

for line in sys.stdin:
    try:
        reply = handle(json.loads(line))
    except Exception as e:
        reply = {"ok": False, "error": repr(e)}
    print(json.dumps(reply), flush=True)
"#;

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Lines a child prints, read on a thread so the test can wait for them with a deadline.
fn lines(out: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

fn first_line(rx: &mpsc::Receiver<String>, what: &str) -> String {
    rx.recv_timeout(DEADLINE)
        .unwrap_or_else(|e| panic!("{what} said nothing: {e}"))
}

/// An X display and a session bus of the test's own, the window on them, and the AT-SPI driver.
struct Desktop {
    // Dropped in this order: the window and the driver before their bus and display.
    demo: Killed,
    demo_in: ChildStdin,
    demo_out: mpsc::Receiver<String>,
    _driver: Killed,
    driver_in: ChildStdin,
    driver_out: mpsc::Receiver<String>,
    _bus: Killed,
    _xvfb: Killed,
    _runtime: tempfile::TempDir,
    display: String,
}

/// examples/window_demo, built beside this test (same target directory and profile) so it runs
/// the code under test: `cargo test --test window` alone does not build examples.
fn demo_path() -> std::path::PathBuf {
    static BUILT: OnceLock<std::path::PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let me = std::env::current_exe().expect("the test's own path");
            // <target>/<profile>/deps/window-<hash>
            let profile_dir = me
                .parent()
                .and_then(|d| d.parent())
                .expect("in <profile>/deps");
            let target = profile_dir.parent().expect("in <target>/<profile>");
            let mut build = Command::new(env!("CARGO"));
            build.args([
                "build",
                "--quiet",
                "-p",
                "tandem-helper",
                "--example",
                "window_demo",
            ]);
            build.arg("--target-dir").arg(target);
            if profile_dir.ends_with("release") {
                build.arg("--release");
            }
            let status = build.status().expect("cargo runs");
            assert!(status.success(), "cargo build --example window_demo failed");
            profile_dir.join("examples/window_demo")
        })
        .clone()
}

/// None when the test must skip (said on stderr): Xvfb missing and not in CI.
fn desktop() -> Option<Desktop> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if Command::new("Xvfb").arg("-help").output().is_err() {
        assert!(!ci, "Xvfb is missing: run scripts/system-packages.sh");
        eprintln!("SKIPPED: Xvfb is missing (scripts/system-packages.sh installs it)");
        return None;
    }
    // -displayfd 1: Xvfb picks a free display and prints its number when it is ready.
    let mut xvfb = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1024x768x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb starts");
    let number = first_line(&lines(xvfb.stdout.take().unwrap()), "Xvfb");
    let xvfb = Killed(xvfb);
    let display = format!(":{}", number.trim());

    // AT-SPI's bus launcher puts its socket in $XDG_RUNTIME_DIR (else one path in ~/.cache,
    // shared by every test and desktop on the machine): one of the test's own.
    let runtime = tempfile::tempdir().expect("a runtime directory");
    let runtime_dir = runtime
        .path()
        .to_str()
        .expect("a UTF-8 temporary path")
        .to_owned();

    // The session bus dbus-run-session would give, held by the test so both the window and the
    // driver join it; AT-SPI's own bus is started on it on demand (at-spi2-core).
    let mut bus = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address=1"])
        .env("XDG_RUNTIME_DIR", &runtime_dir)
        .env("DISPLAY", &display)
        .stdout(Stdio::piped())
        .spawn()
        .expect("dbus-daemon starts (package dbus)");
    let address = first_line(&lines(bus.stdout.take().unwrap()), "dbus-daemon");
    let bus = Killed(bus);

    let display_env = display.clone();
    let env = [
        ("DISPLAY", display_env.as_str()),
        ("DBUS_SESSION_BUS_ADDRESS", address.trim()),
        ("GTK_A11Y", "atspi"),
        ("NO_AT_BRIDGE", "0"),
        ("GDK_BACKEND", "x11"),
        ("XDG_RUNTIME_DIR", runtime_dir.as_str()),
    ];
    let mut demo = Command::new(demo_path())
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("window_demo starts");
    let demo_in = demo.stdin.take().unwrap();
    let demo_out = lines(demo.stdout.take().unwrap());
    let mut driver = Command::new(PYTHON)
        .args(["-u", "-c", DRIVER])
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 starts (with python3-pyatspi)");
    let driver_in = driver.stdin.take().unwrap();
    let driver_out = lines(driver.stdout.take().unwrap());
    Some(Desktop {
        demo: Killed(demo),
        demo_in,
        demo_out,
        _driver: Killed(driver),
        driver_in,
        driver_out,
        _bus: bus,
        _xvfb: xvfb,
        _runtime: runtime,
        display,
    })
}

impl Desktop {
    /// Tells the helper's core something (as the server would).
    fn say(&mut self, command: Value) {
        writeln!(self.demo_in, "{command}").expect("window_demo reads");
    }

    /// The next thing the helper printed: a UI event or a decision for the server.
    fn next(&mut self) -> Value {
        let line = self
            .demo_out
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|e| panic!("window_demo printed nothing: {e}"));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    fn expect(&mut self, want: Value) {
        let got = self.next();
        assert_eq!(got, want);
    }

    fn decision(&mut self, activity: &str, allowed: bool) {
        self.expect(json!({"decision": {"activity": activity, "allowed": allowed}}));
    }

    fn ask_driver(&mut self, command: Value) -> Value {
        writeln!(self.driver_in, "{command}").expect("the driver reads");
        let line = self
            .driver_out
            .recv_timeout(DEADLINE + Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("the AT-SPI driver did not answer {command}: {e}"));
        let reply: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(reply["ok"], true, "{command} -> {reply}");
        reply
    }

    /// Waits until exactly one node matches and returns its name.
    fn find(&mut self, mut what: Value) -> String {
        what["op"] = "find".into();
        self.ask_driver(what)["name"].as_str().unwrap().to_owned()
    }

    fn click(&mut self, button: &str, window: &str) {
        self.ask_driver(json!({
            "op": "click", "role": "push button", "name": button, "window": window
        }));
    }

    fn gone(&mut self, mut what: Value) {
        what["op"] = "gone".into();
        self.ask_driver(what);
    }

    /// The X connection, the X window titled `title` (a top-level window: there is no window
    /// manager to reparent it) and a way to name atoms.
    fn x_window(&self, title: &str) -> (x11rb::rust_connection::RustConnection, u32) {
        use x11rb::connection::Connection;
        use x11rb::protocol::xproto::ConnectionExt;
        let (conn, screen) = x11rb::connect(Some(&self.display)).expect("X connects");
        let (net_name, utf8) = (atom(&conn, "_NET_WM_NAME"), atom(&conn, "UTF8_STRING"));
        let root = conn.setup().roots[screen].root;
        let titled = |w| {
            let p = conn
                .get_property(false, w, net_name, utf8, 0, 64)
                .ok()?
                .reply()
                .ok()?;
            (p.value == title.as_bytes()).then_some(w)
        };
        let window = conn
            .query_tree(root)
            .unwrap()
            .reply()
            .unwrap()
            .children
            .into_iter()
            .find_map(titled)
            .unwrap_or_else(|| panic!("no X window titled {title:?}"));
        (conn, window)
    }

    /// Closes the window titled `title` as a window manager does when a person clicks its close
    /// button: a WM_DELETE_WINDOW message (a bare Xvfb has no window manager to do it).
    fn close_window(&mut self, title: &str) {
        use x11rb::protocol::xproto::{ClientMessageEvent, ConnectionExt, EventMask};
        let (conn, window) = self.x_window(title);
        let (protocols, delete) = (atom(&conn, "WM_PROTOCOLS"), atom(&conn, "WM_DELETE_WINDOW"));
        let event = ClientMessageEvent::new(32, window, protocols, [delete, 0, 0, 0, 0]);
        conn.send_event(false, window, EventMask::NO_EVENT, event)
            .unwrap()
            .check()
            .expect("the close message is sent");
    }

    /// Listens on the root window for what clients ask the window manager (EWMH client
    /// messages are sent to the root with SubstructureNotify, so a listener sees them too).
    fn listen_to_wm_requests(&self) -> x11rb::rust_connection::RustConnection {
        use x11rb::connection::Connection;
        use x11rb::protocol::xproto::{ChangeWindowAttributesAux, ConnectionExt, EventMask};
        let (conn, screen) = x11rb::connect(Some(&self.display)).expect("X connects");
        let root = conn.setup().roots[screen].root;
        let listen = ChangeWindowAttributesAux::new().event_mask(EventMask::SUBSTRUCTURE_NOTIFY);
        conn.change_window_attributes(root, &listen)
            .unwrap()
            .check()
            .expect("listening on the root window");
        conn
    }

    /// Waits until the window titled `title` asks to be kept above the others.
    fn asks_to_stay_above(&self, wm: &x11rb::rust_connection::RustConnection, title: &str) {
        use x11rb::connection::Connection;
        use x11rb::protocol::Event;
        let (conn, window) = self.x_window(title);
        let (state, above) = (
            atom(&conn, "_NET_WM_STATE"),
            atom(&conn, "_NET_WM_STATE_ABOVE"),
        );
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            while let Some(event) = wm.poll_for_event().expect("X events") {
                if let Event::ClientMessage(m) = event {
                    let data = m.data.as_data32();
                    if m.window == window && m.type_ == state && data[0] == 1 && data[1] == above {
                        return;
                    }
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{title:?} did not ask to stay above"
            );
            std::thread::sleep(Duration::from_millis(50)); // polling, with the deadline above
        }
    }

    /// Waits for the helper to leave (the window is gone) and returns whether it exited cleanly.
    fn exited(&mut self) -> bool {
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.demo.0.try_wait().expect("window_demo is ours") {
                return status.success();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the helper did not leave"
            );
            std::thread::sleep(Duration::from_millis(50)); // polling, with the deadline above
        }
    }

    fn connect(&mut self) {
        self.say(
            json!({"connected": {"server": "support.example.com", "computer": "Dave's computer"}}),
        );
        self.find(json!({"role": "label", "name": "Connected to support.example.com as Dave's computer."}));
    }
}

const MAIN: &str = "Tandem Helper";

fn atom(conn: &impl x11rb::connection::Connection, name: &str) -> u32 {
    use x11rb::protocol::xproto::ConnectionExt;
    conn.intern_atom(false, name.as_bytes())
        .unwrap()
        .reply()
        .unwrap()
        .atom
}

#[test]
fn the_customer_allows_and_denies_in_the_window_and_stops_control_from_the_indicator() {
    let Some(mut d) = desktop() else { return };
    d.connect();
    let wm = d.listen_to_wm_requests();
    d.say(json!({"ask": "control_desktop", "csr": "Carol"}));
    let question = d.find(json!({"role": "label", "contains": "asks to control", "window": MAIN}));
    assert_eq!(
        question,
        "Carol asks to control your computer: to move your mouse and type."
    );
    d.click("Allow", MAIN);
    let answer = d.next();
    assert_eq!(answer["event"], "answer");
    assert_eq!(answer["answer"], "allow");
    d.decision("control_desktop", true);

    // While control is allowed, the indicator names the CSR, in a window of its own.
    let indicator = "Carol is controlling this computer";
    d.find(json!({"role": "frame", "name": indicator}));
    d.find(json!({"role": "label", "name": indicator, "window": indicator}));
    d.asks_to_stay_above(&wm, indicator);
    d.find(json!({"role": "label", "name": "Carol can control your mouse and keyboard.", "window": MAIN}));

    d.say(json!({"ask": "view_desktop", "csr": "Carol"}));
    d.find(json!({"role": "label", "name": "Carol asks to see your screen.", "window": MAIN}));
    d.click("Deny", MAIN);
    assert_eq!(d.next()["answer"], "deny");
    d.decision("view_desktop", false);

    // The indicator's own Stop ends control at once, and the indicator goes.
    d.click("Stop", indicator);
    d.expect(json!({"event": "stop"}));
    d.decision("control_desktop", false);
    d.gone(json!({"role": "frame", "name": indicator}));
    d.find(json!({"role": "label", "name": "Nobody can see or control this computer.", "window": MAIN}));
}

#[test]
fn allow_everything_answers_the_waiting_question_and_the_next_request_until_stop() {
    let Some(mut d) = desktop() else { return };
    d.connect();
    d.say(json!({"ask": "view_desktop", "csr": "Carol"}));
    d.say(json!({"ask": "control_desktop", "csr": "Carol"}));
    d.find(json!({"role": "label", "name": "Carol asks to see your screen.", "window": MAIN}));
    d.click("Allow everything this session", MAIN);
    assert_eq!(d.next()["answer"], "allow_all");
    d.decision("view_desktop", true);
    d.decision("control_desktop", true);
    d.find(json!({"role": "frame", "name": "Carol is controlling this computer"}));

    // A later request is allowed at once, without a question.
    d.say(json!({"ask": "view_application", "csr": "Carol"}));
    d.decision("view_application", true);
    d.gone(json!({"role": "label", "contains": "asks to", "window": MAIN}));

    // Stop in the main window ends everything, withdraws "allow all", and the indicator goes.
    d.click("Stop", MAIN);
    d.expect(json!({"event": "stop"}));
    let mut ended: Vec<Value> = (0..3).map(|_| d.next()).collect();
    ended.sort_by_key(|v| v["decision"]["activity"].as_str().unwrap().to_owned());
    assert_eq!(
        ended,
        ["control_desktop", "view_application", "view_desktop"]
            .map(|a| json!({"decision": {"activity": a, "allowed": false}}))
    );
    d.gone(json!({"role": "frame", "name": "Carol is controlling this computer"}));
    d.say(json!({"ask": "control_desktop", "csr": "Carol"}));
    d.find(json!({"role": "label", "contains": "Carol asks to control", "window": MAIN}));
}

#[test]
fn closing_the_window_stops_control_and_leaves() {
    let Some(mut d) = desktop() else { return };
    d.connect();
    d.find(json!({"role": "label", "name": "Closing this window stops everything and leaves the session.", "window": MAIN}));
    d.say(json!({"ask": "control_desktop", "csr": "Carol"}));
    d.click("Allow", MAIN);
    assert_eq!(d.next()["answer"], "allow");
    d.decision("control_desktop", true);
    d.find(json!({"role": "frame", "name": "Carol is controlling this computer"}));

    d.close_window(MAIN);
    d.expect(json!({"event": "close"}));
    d.decision("control_desktop", false);
    assert!(
        d.exited(),
        "the helper leaves cleanly when its window is closed"
    );
}
