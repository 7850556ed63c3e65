//! A private desktop for a test, answered as a person would: Xvfb, a session bus of the test's
//! own (what dbus-run-session gives, held by the test so the program under test and the driver
//! share it), a private `XDG_RUNTIME_DIR` (AT-SPI's bus launcher puts its socket there; else one
//! path in ~/.cache is shared by every test on the machine), and a small pyatspi script that
//! reads, clicks and types into windows through their accessible names (Debian's
//! /usr/bin/python3 with python3-pyatspi; scripts/system-packages.sh installs them).
#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::process::{Proc, WAIT};
use super::xvfb::Xvfb;

const PYTHON: &str = "/usr/bin/python3";

/// Finds, clicks and types into nodes of the AT-SPI tree. One JSON command a line on stdin, one JSON reply a
/// line on stdout. Every wait polls with a deadline. Hidden widgets are not in GTK's tree.
const DRIVER: &str = r#"
import json, sys, time
import pyatspi
from gi.repository import Atspi

# A program that has gone may still be listed for a while: asking it must fail fast rather
# than wait D-Bus's 25 s default.
Atspi.set_timeout(2000, 10000)

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
    deadline = time.time() + cmd.get("timeout", 25)
    started = time.time()
    while True:
        listed = nodes()
        # No program at all after 5 s: this driver's view of the registry may have missed the
        # programs' arrival; the test starts a new driver (its first look is fresh).
        if not listed and cmd["op"] != "gone" and time.time() - started > 5:
            return {"ok": False, "empty": True}
        found = [(r, n, f, node) for (r, n, f, node) in listed if matches(cmd, r, n, f)]
        if cmd["op"] == "gone" and not found:
            return {"ok": True}
        if cmd["op"] in ("find", "click", "press", "type") and len(found) == 1:
            role, name, frame, node = found[0]
            if cmd["op"] == "click":
                node.queryAction().doAction(0)
            if cmd["op"] == "press":
                # A pointer click at the node's middle, for widgets with no action (GTK 4.8's
                # check buttons). GTK 4 gives extents within its window, which a bare Xvfb puts
                # at the top left of the screen.
                e = node.queryComponent().getExtents(pyatspi.DESKTOP_COORDS)
                Atspi.generate_mouse_event(e.x + e.width // 2, e.y + e.height // 2, "b1c")
            if cmd["op"] == "type":
                node.queryEditableText().setTextContents(cmd["text"])
            return {"ok": True, "name": name, "window": frame}
        if time.time() > deadline:
            seen = [(r, n, f) for (r, n, f, _) in nodes() if n]
            return {"ok": False, "found": len(found), "seen": seen}
        time.sleep(0.1)

# The accessibility bus and its registry are up before the test starts a program: one that
# starts first may find no bus to register on.
pyatspi.Registry.getDesktop(0).childCount
print(json.dumps({"ok": True, "ready": True}), flush=True)

for line in sys.stdin:
    try:
        reply = handle(json.loads(line))
    except Exception as e:
        reply = {"ok": False, "error": repr(e)}
    print(json.dumps(reply), flush=True)
"#;

pub struct Desktop {
    // Dropped in this order: the driver before its bus and display.
    driver: Proc,
    _bus: Proc,
    _runtime: tempfile::TempDir,
    env: Vec<(&'static str, String)>,
    pub xvfb: Xvfb,
}

impl Desktop {
    /// None when the test must skip ([`Xvfb::missing`]).
    pub fn start(size: &str) -> Option<Desktop> {
        if Xvfb::missing() {
            return None;
        }
        let xvfb = Xvfb::start(size);
        let runtime = tempfile::tempdir().expect("a runtime directory");
        let runtime_dir = runtime
            .path()
            .to_str()
            .expect("a UTF-8 temporary path")
            .to_owned();
        let mut bus = Command::new("dbus-daemon");
        bus.args(["--session", "--nofork", "--print-address=1"])
            .env("XDG_RUNTIME_DIR", &runtime_dir)
            .env("DISPLAY", &xvfb.display);
        let bus = Proc::spawn(bus);
        let address = bus.next_line("dbus-daemon (package dbus)");
        let env = vec![
            ("DISPLAY", xvfb.display.clone()),
            ("DBUS_SESSION_BUS_ADDRESS", address.trim().to_owned()),
            ("GTK_A11Y", "atspi".to_owned()),
            ("NO_AT_BRIDGE", "0".to_owned()),
            ("GDK_BACKEND", "x11".to_owned()),
            ("XDG_RUNTIME_DIR", runtime_dir),
        ];
        let driver = start_driver(&env);
        Some(Desktop {
            driver,
            _bus: bus,
            _runtime: runtime,
            env,
            xvfb,
        })
    }

    pub fn display(&self) -> &str {
        &self.xvfb.display
    }

    /// `program`, to run on this desktop (its display, bus and AT-SPI).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.envs(self.env.iter().cloned()).stderr(Stdio::inherit());
        c
    }

    pub fn ask_driver(&mut self, command: Value) -> Value {
        let mut fresh_drivers = 2;
        loop {
            self.driver.type_line(&command.to_string());
            let line = self.driver.line(|_| true);
            let reply: Value = serde_json::from_str(&line).unwrap();
            if reply["empty"] == true && fresh_drivers > 0 {
                fresh_drivers -= 1;
                eprintln!("the AT-SPI registry lists no program: asking again with a new driver");
                self.driver = start_driver(&self.env);
                continue;
            }
            assert_eq!(reply["ok"], true, "{command} -> {reply}");
            return reply;
        }
    }

    /// Waits until exactly one node matches and returns its name.
    pub fn find(&mut self, mut what: Value) -> String {
        what["op"] = "find".into();
        self.ask_driver(what)["name"].as_str().unwrap().to_owned()
    }

    pub fn click(&mut self, button: &str, window: &str) {
        self.ask_driver(json!({
            "op": "click", "role": "push button", "name": button, "window": window
        }));
    }

    /// Clicks `what` with the pointer, at its middle (for widgets that have no action).
    pub fn press(&mut self, mut what: Value) {
        what["op"] = "press".into();
        self.ask_driver(what);
    }

    pub fn gone(&mut self, mut what: Value) {
        what["op"] = "gone".into();
        self.ask_driver(what);
    }

    /// The X connection, the X window titled `title` (a top-level window: there is no window
    /// manager to reparent it) and a way to name atoms.
    pub fn x_window(&self, title: &str) -> (x11rb::rust_connection::RustConnection, u32) {
        use x11rb::connection::Connection;
        use x11rb::protocol::xproto::ConnectionExt;
        let (conn, screen) = x11rb::connect(Some(&self.xvfb.display)).expect("X connects");
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
    pub fn close_window(&mut self, title: &str) {
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
    pub fn listen_to_wm_requests(&self) -> x11rb::rust_connection::RustConnection {
        use x11rb::connection::Connection;
        use x11rb::protocol::xproto::{ChangeWindowAttributesAux, ConnectionExt, EventMask};
        let (conn, screen) = x11rb::connect(Some(&self.xvfb.display)).expect("X connects");
        let root = conn.setup().roots[screen].root;
        let listen = ChangeWindowAttributesAux::new().event_mask(EventMask::SUBSTRUCTURE_NOTIFY);
        conn.change_window_attributes(root, &listen)
            .unwrap()
            .check()
            .expect("listening on the root window");
        conn
    }

    /// Waits until the window titled `title` asks to be kept above the others.
    pub fn asks_to_stay_above(&self, wm: &x11rb::rust_connection::RustConnection, title: &str) {
        use x11rb::connection::Connection;
        use x11rb::protocol::Event;
        let (conn, window) = self.x_window(title);
        let (state, above) = (
            atom(&conn, "_NET_WM_STATE"),
            atom(&conn, "_NET_WM_STATE_ABOVE"),
        );
        let deadline = std::time::Instant::now() + WAIT;
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

    /// Types `text` into the one node matching `what`, an entry (replacing what it held).
    pub fn type_into(&mut self, what: &Value, text: &str) {
        let mut what = what.clone();
        what["op"] = "type".into();
        what["text"] = text.into();
        self.ask_driver(what);
    }
}

/// The driver, once it has reached the accessibility registry.
fn start_driver(env: &[(&'static str, String)]) -> Proc {
    let mut driver = Command::new(PYTHON);
    driver.args(["-u", "-c", DRIVER]).envs(env.iter().cloned());
    let driver = Proc::spawn(driver);
    let ready = driver.line(|_| true);
    assert!(ready.contains("ready"), "the AT-SPI driver: {ready}");
    driver
}

pub fn atom(conn: &impl x11rb::connection::Connection, name: &str) -> u32 {
    use x11rb::protocol::xproto::ConnectionExt;
    conn.intern_atom(false, name.as_bytes())
        .unwrap()
        .reply()
        .unwrap()
        .atom
}
