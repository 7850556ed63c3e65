//! The helper's window, answered as a person would: the real GTK window (examples/window_demo.rs,
//! with a real consent record behind it) on a private desktop (tests/common/atspi.rs), read and
//! clicked through its accessible names over AT-SPI.
//!
//! Skips, saying so, only when Xvfb is missing outside CI; with CI=true a missing tool fails.
#![cfg(target_os = "linux")]

#[path = "common/atspi.rs"]
mod atspi;
#[path = "common/process.rs"]
mod process;
#[path = "common/xvfb.rs"]
mod xvfb;

use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};

use atspi::Desktop;
use process::Proc;

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

/// The desktop and the window on it.
struct Demo {
    // Dropped first: the window before its desktop, and the turn last.
    demo: Proc,
    d: Desktop,
    _turn: std::sync::MutexGuard<'static, ()>,
}

/// None when the test must skip (said on stderr). One desktop at a time: with three AT-SPI
/// desktops starting at once on two loaded cores, a window was at times never listed.
fn demo() -> Option<Demo> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let d = Desktop::start("1024x768")?;
    let demo = Proc::spawn(d.command(demo_path()));
    Some(Demo {
        demo,
        d,
        _turn: turn,
    })
}

impl std::ops::Deref for Demo {
    type Target = Desktop;
    fn deref(&self) -> &Desktop {
        &self.d
    }
}

impl std::ops::DerefMut for Demo {
    fn deref_mut(&mut self) -> &mut Desktop {
        &mut self.d
    }
}

impl Demo {
    /// Tells the helper's core something (as the server would).
    fn say(&mut self, command: Value) {
        self.demo.type_line(&command.to_string());
    }

    /// The next thing the helper printed: a UI event or a decision for the server.
    fn next(&mut self) -> Value {
        let line = self.demo.next_line("window_demo");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    fn expect(&mut self, want: Value) {
        let got = self.next();
        assert_eq!(got, want);
    }

    fn decision(&mut self, activity: &str, allowed: bool) {
        self.expect(json!({"decision": {"activity": activity, "allowed": allowed}}));
    }

    /// Waits for the helper to leave (the window is gone) and returns whether it exited cleanly.
    fn exited(&mut self) -> bool {
        self.demo.exited("the helper").success()
    }

    fn connect(&mut self) {
        self.say(
            json!({"connected": {"server": "support.example.com", "computer": "Dave's computer"}}),
        );
        self.find(json!({"role": "label", "name": "Connected to support.example.com as Dave's computer."}));
    }
}

const MAIN: &str = "Tandem Helper";

#[test]
fn the_customer_allows_and_denies_in_the_window_and_stops_control_from_the_indicator() {
    let Some(mut d) = demo() else { return };
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
    let Some(mut d) = demo() else { return };
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
    let Some(mut d) = demo() else { return };
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

/// The X11 top-level window titled `title` on `display`, and its size.
fn window_size(display: &str, title: &str) -> Option<(u16, u16)> {
    use x11rb::connection::Connection;
    use x11rb::protocol::xproto::{AtomEnum, ConnectionExt};
    let (conn, screen) = x11rb::connect(Some(display)).ok()?;
    let root = conn.setup().roots[screen].root;
    let tree = conn.query_tree(root).ok()?.reply().ok()?;
    tree.children.into_iter().find_map(|w| {
        let name = conn
            .get_property(false, w, AtomEnum::WM_NAME, AtomEnum::ANY, 0, 256)
            .ok()?
            .reply()
            .ok()?;
        if name.value != title.as_bytes() {
            return None;
        }
        let g = conn.get_geometry(w).ok()?.reply().ok()?;
        Some((g.width, g.height))
    })
}

/// M4: while the CSR is signed in as another user, a notice covers the customer's whole screen,
/// says so, and offers Stop; it goes when the session does.
#[test]
fn a_notice_covers_the_screen_while_the_csr_is_signed_in_as_another_user() {
    let Some(mut d) = demo() else { return };
    d.connect();
    d.say(json!({"ask": "login_as_user", "csr": "Carol"}));
    d.find(json!({"role": "label", "contains": "sign in to this computer as another user", "window": MAIN}));
    d.click("Allow", MAIN);
    assert_eq!(d.next()["answer"], "allow");
    d.decision("login_as_user", true);
    d.say(json!({"signed_in_as": "bob"}));
    let title = tandem_helper::status::NOTICE_TITLE;
    let text = d.find(json!({"role": "label", "contains": "signed in as bob", "window": title}));
    assert!(text.contains("Your desktop comes back"), "{text}");
    let display = d.display().to_owned();
    let deadline = std::time::Instant::now() + process::WAIT;
    while window_size(&display, title) != Some((1024, 768)) {
        assert!(
            std::time::Instant::now() < deadline,
            "the notice does not cover the 1024x768 screen: {:?}",
            window_size(&display, title)
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Stop in the notice is the customer's Stop.
    d.click("Stop", title);
    d.expect(json!({"event": "stop"}));
    d.decision("login_as_user", false);
    d.say(json!({"signed_in_as": ""}));
    let deadline = std::time::Instant::now() + process::WAIT;
    while window_size(&display, title).is_some() {
        assert!(std::time::Instant::now() < deadline, "the notice stays");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
