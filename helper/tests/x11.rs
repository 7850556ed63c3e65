//! The X11 backend against a real X server: each test starts its own Xvfb (on a display number
//! the server picks, reported when it is ready) and opens test windows (examples/test_window.rs,
//! run as this binary again) that log what they receive.
#![cfg(target_os = "linux")]

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::Value;
use tandem_helper::key::{Key, Modifiers, NamedKey};
use tandem_helper::picture::{PictureSize, Rect, picture_to_screen};
use tandem_helper::platform::x11::{Display, X11Capture, X11Input};
use tandem_helper::platform::{
    Button, Capture, Clipboard, ClipboardLimits, Frame, Input, PlatformError, Source,
};
use x11rb::connection::Connection as _;
use x11rb::protocol::Event;
use x11rb::protocol::xfixes::{ConnectionExt as _, SelectionEventMask};
use x11rb::protocol::xproto::{ConnectionExt as _, CreateWindowAux, WindowClass};
use x11rb::rust_connection::RustConnection;

#[path = "common/process.rs"]
mod process;
#[path = "common/xvfb.rs"]
mod xvfb;

use process::{Proc, WAIT};
use xvfb::Xvfb;

#[path = "../examples/test_window.rs"]
#[allow(dead_code)]
mod test_window;

/// Set in the environment of this binary run as a test window: its arguments, 0x1f-separated.
const WINDOW_ENV: &str = "TANDEM_TEST_WINDOW";

/// Not a test: the body of a test window, when this binary is run as one.
#[test]
fn test_window_process() {
    let Ok(argv) = std::env::var(WINDOW_ENV) else {
        return;
    };
    let argv = std::iter::once("test_window").chain(argv.split('\u{1f}'));
    test_window::run(test_window::Args::parse_from(argv)).expect("test window");
}

/// The display and the test windows on it.
trait Desktop {
    fn open(&self) -> (Display, X11Capture, X11Input);
    fn window(&self, args: &[&str]) -> TestWindow;
}

impl Desktop for Xvfb {
    fn open(&self) -> (Display, X11Capture, X11Input) {
        let display = Display::open(Some(&self.display)).expect("open display");
        let capture = display.capture().expect("capture");
        let input = display.input().expect("input");
        (display, capture, input)
    }

    fn window(&self, args: &[&str]) -> TestWindow {
        TestWindow::open(&self.display, args)
    }
}

/// A test window: this binary run again as one; its events are JSON lines.
struct TestWindow {
    proc: Proc,
    id: u64,
}

impl TestWindow {
    fn open(display: &str, args: &[&str]) -> TestWindow {
        let exe = std::env::current_exe().expect("test binary");
        let mut argv = vec!["--display", display];
        argv.extend_from_slice(args);
        let mut c = Command::new(exe);
        c.args([
            "--exact",
            "test_window_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(WINDOW_ENV, argv.join("\u{1f}"));
        // The test harness's own words are not JSON: skipped (the first event shares a line
        // with its "test test_window_process ... ").
        let proc = Proc::spawn(c);
        let ready = proc.event("ready");
        let id = ready["window"].as_u64().expect("window id");
        TestWindow { proc, id }
    }

    /// The next event that matches, skipping others.
    fn next(&self, matches: impl Fn(&Value) -> bool) -> Value {
        self.proc.json(matches)
    }

    /// Sends a command and waits until the window has carried it out.
    fn command(&mut self, line: &str) {
        self.proc.type_line(line);
        let answer = self.next(|e| {
            ["filled", "moved", "raised", "error"].contains(&e["event"].as_str().unwrap_or(""))
        });
        assert_ne!(answer["event"], "error", "{answer}");
    }

    fn source(&self) -> Source {
        Source::Window(self.id)
    }
}

/// The BGRA bytes of an RRGGBB colour.
fn bgra(rgb: u32) -> [u8; 4] {
    [rgb as u8, (rgb >> 8) as u8, (rgb >> 16) as u8, 0xff]
}

fn grab(capture: &mut X11Capture, source: Source) -> Frame {
    let mut frame = Frame::default();
    capture.capture(source, &mut frame).expect("capture");
    frame
}

const RED: u32 = 0xff0000;
const GREEN: u32 = 0x00ff00;
const BLUE: u32 = 0x0000ff;
const YELLOW: u32 = 0xffff00;
const WHITE: u32 = 0xffffff;
const MAGENTA: u32 = 0xff00ff;

/// Window A: 400x300 at (100, 100), red, green, blue and yellow quadrants, a white marker.
const A: &[&str] = &[
    "--title", "Window A", "--x", "100", "--y", "100", "--width", "400", "--height", "300",
];

/// The pattern of window A, at (x, y) in its own coordinates.
fn assert_pattern(frame: &Frame, x: u32, y: u32) {
    for (dx, dy, color) in [
        (100, 75, RED),
        (300, 75, GREEN),
        (100, 225, BLUE),
        (300, 225, YELLOW),
        (200, 150, WHITE),
        (189, 139, RED),
        (211, 161, YELLOW),
    ] {
        assert_eq!(
            frame.pixel(x + dx, y + dy),
            Some(bgra(color)),
            "at ({}, {})",
            x + dx,
            y + dy
        );
    }
}

#[test]
fn screens_lists_monitors_and_windows_and_refuses_unknown_ones() {
    let xvfb = Xvfb::start("1280x800");
    let a = xvfb.window(A);
    let (_display, mut capture, _input) = xvfb.open();
    let monitors = capture.monitors().expect("monitors");
    assert_eq!(monitors.len(), 1, "{monitors:?}");
    assert_eq!(monitors[0].rect, Rect::new(0, 0, 1280, 800));
    let windows = capture.windows().expect("windows");
    let listed = windows
        .iter()
        .find(|w| w.id == a.id)
        .expect("window A listed");
    assert_eq!(listed.title, "Window A");
    assert_eq!(listed.pid, Some(a.proc.child.id()));
    assert_eq!(listed.rect, Rect::new(100, 100, 400, 300));

    let mut frame = Frame::default();
    for (source, expected) in [
        (Source::Window(u64::MAX), "no window"),
        (Source::Window(0), "no window"),
        (Source::Window(0x7fff_ffff), "no window"),
        (Source::Monitor(12345), "no monitor"),
    ] {
        let err = capture
            .capture(source, &mut frame)
            .expect_err("unknown source");
        assert!(err.to_string().starts_with(expected), "{source:?}: {err}");
    }
    let all = capture.windows().expect("windows");
    assert!(all.iter().all(|w| !w.title.is_empty()));

    let out = Command::new(env!("CARGO_BIN_EXE_tandem-helper"))
        .args(["screens", "--display", &xvfb.display])
        .output()
        .expect("tandem-helper screens");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("\"Window A\"") && text.contains("400x300+100+100"),
        "{text}"
    );
}

#[test]
fn whole_screen_monitor_and_window_captures_show_the_pattern_in_place() {
    let xvfb = Xvfb::start("1280x800");
    let a = xvfb.window(A);
    let (_display, mut capture, _input) = xvfb.open();

    let screen = grab(&mut capture, Source::Screen);
    assert_eq!((screen.width, screen.height), (1280, 800));
    assert_pattern(&screen, 100, 100);
    assert_eq!(screen.pixel(50, 50), Some(bgra(0)));

    let window = grab(&mut capture, a.source());
    assert_eq!((window.width, window.height), (400, 300));
    assert_eq!(window.shown, Rect::new(100, 100, 400, 300));
    assert_pattern(&window, 0, 0);
    assert_eq!(window.damage, vec![Rect::new(0, 0, 400, 300)]);

    let monitor = capture.monitors().expect("monitors")[0].id;
    let frame = grab(&mut capture, Source::Monitor(monitor));
    assert_pattern(&frame, 100, 100);
}

#[test]
fn window_capture_never_contains_the_window_over_it() {
    let xvfb = Xvfb::start("1280x800");
    let a = xvfb.window(A);
    // B covers A's right and bottom parts, on top of it.
    let _b = xvfb.window(&[
        "--title",
        "Window B",
        "--x",
        "200",
        "--y",
        "150",
        "--width",
        "400",
        "--height",
        "300",
        "--colors",
        "ff00ff,ff00ff,ff00ff,ff00ff",
        "--marker",
        "ff00ff",
    ]);
    let (_display, mut capture, _input) = xvfb.open();
    let screen = grab(&mut capture, Source::Screen);
    assert_eq!(
        screen.pixel(250, 200),
        Some(bgra(MAGENTA)),
        "B is over A on the screen"
    );

    // The first window capture gives windows their own pixmaps: the parts of A under B start
    // black (never B's pixels) and the server asks A to paint them.
    let magenta = |f: &Frame| {
        f.data
            .chunks_exact(4)
            .filter(|p| *p == bgra(MAGENTA))
            .count()
    };
    let first = grab(&mut capture, a.source());
    assert_eq!(magenta(&first), 0, "pixels of B in the first capture of A");
    a.next(|e| e["event"] == "exposed");
    let frame = grab(&mut capture, a.source());
    assert_eq!(magenta(&frame), 0, "pixels of B in the capture of A");
    // A's own pixels where B covers it.
    assert_pattern(&frame, 0, 0);
}

#[test]
fn a_click_at_a_picture_point_reaches_the_window_at_that_point() {
    let xvfb = Xvfb::start("1280x800");
    let mut a = xvfb.window(A);
    let (_display, mut capture, mut input) = xvfb.open();
    let mut click =
        |capture: &mut X11Capture, source: Source, picture: PictureSize, at: (f64, f64)| {
            let shown = capture.shown_rect(source).expect("shown");
            let (x, y) = picture_to_screen(at, picture, shown).expect("maps");
            input.pointer_move(x, y).expect("move");
            input.button(Button::Left, true).expect("press");
            input.button(Button::Left, false).expect("release");
            (x, y)
        };
    let near = |event: &Value, x: i64, y: i64| {
        let (ex, ey) = (
            event["x"].as_i64().expect("x"),
            event["y"].as_i64().expect("y"),
        );
        assert!(
            (ex - x).abs() <= 2 && (ey - y).abs() <= 2,
            "clicked at ({ex}, {ey}), wanted ({x}, {y})"
        );
    };

    // The whole screen, sent at half size: picture (150, 100) is screen (300, 200), window (200, 100).
    let half = PictureSize {
        width: 640,
        height: 400,
    };
    let at = click(&mut capture, Source::Screen, half, (150.0, 100.0));
    assert_eq!(at, (300, 200));
    let press = a.next(|e| e["event"] == "button_press");
    assert_eq!(press["button"], 1);
    near(&press, 200, 100);
    assert_eq!(a.next(|e| e["event"] == "button_release")["button"], 1);
    let cursor = capture.cursor().expect("cursor");
    assert_eq!((cursor.x, cursor.y), (300, 200));

    // The window alone, sent at half size, then again after it moved: the same picture point
    // lands on the same point of the window.
    let picture = PictureSize {
        width: 200,
        height: 150,
    };
    click(&mut capture, a.source(), picture, (55.5, 30.25));
    near(&a.next(|e| e["event"] == "button_press"), 111, 60);
    a.command("move 700 400");
    let at = click(&mut capture, a.source(), picture, (55.5, 30.25));
    assert_eq!(at, (811, 460));
    near(&a.next(|e| e["event"] == "button_press"), 111, 60);

    // A point beyond the picture is clamped to the window's edge.
    click(&mut capture, a.source(), picture, (1e6, -1e6));
    near(&a.next(|e| e["event"] == "button_press"), 399, 0);

    // Wheel notches are buttons 4 (up) and 5 (down).
    input.wheel(0, -2).expect("wheel");
    assert_eq!(a.next(|e| e["event"] == "button_press")["button"], 4);
    assert_eq!(a.next(|e| e["event"] == "button_press")["button"], 4);
    input.wheel(0, 1).expect("wheel");
    assert_eq!(a.next(|e| e["event"] == "button_press")["button"], 5);
}

#[test]
fn typed_text_and_keys_with_modifiers_arrive_as_those_keys() {
    let xvfb = Xvfb::start("1280x800");
    let a = xvfb.window(A);
    let (_display, _capture, mut input) = xvfb.open();
    let typed_key = |a: &TestWindow| a.next(|e| e["event"] == "key_press" && !e["text"].is_null());

    // ASCII with and without Shift, Latin-1 and a character no US key has (spare key codes).
    let text = "Hi, w\u{f6}rld \u{20ac}!";
    input.text(text).expect("text");
    let got: String = text
        .chars()
        .map(|_| typed_key(&a)["text"].as_str().expect("text").to_owned())
        .collect();
    assert_eq!(got, text);

    input
        .key(
            Key::Char('a'),
            Modifiers {
                control: true,
                ..Default::default()
            },
        )
        .expect("ctrl+a");
    let e = typed_key(&a);
    assert_eq!(
        (e["keysym"].as_u64(), e["state"].clone()),
        (Some(0x61), serde_json::json!(["control"]))
    );

    let shift = Modifiers {
        shift: true,
        ..Default::default()
    };
    input
        .key(Key::parse("ArrowLeft").expect("key"), shift)
        .expect("shift+left");
    let e = a.next(|e| e["event"] == "key_press" && e["keysym"] == 0xff51);
    assert_eq!(e["state"], serde_json::json!(["shift"]));

    let alt = Modifiers {
        alt: true,
        ..Default::default()
    };
    input.key(Key::Named(NamedKey::F(4)), alt).expect("alt+f4");
    let e = a.next(|e| e["event"] == "key_press" && e["keysym"] == 0xffc1);
    assert_eq!(e["state"], serde_json::json!(["mod1"]));

    // Bad text types nothing at all: the next key seen is the one typed after it.
    let err = input.text("x\u{1b}").expect_err("escape character");
    assert!(matches!(err, PlatformError::Key(_)), "{err}");
    input.text("z").expect("z");
    assert_eq!(typed_key(&a)["text"], "z");
}

#[test]
fn damage_reports_only_the_area_the_window_repainted() {
    let xvfb = Xvfb::start("1280x800");
    let mut a = xvfb.window(A);
    let (_display, mut capture, _input) = xvfb.open();

    for source in [Source::Screen, a.source()] {
        let first = grab(&mut capture, source);
        assert_eq!(
            first.damage,
            vec![Rect::new(0, 0, first.width, first.height)]
        );
        let still = grab(&mut capture, source);
        assert_eq!(still.damage, vec![], "{source:?}: nothing changed");

        let (x, y) = if source == Source::Screen {
            (110, 120)
        } else {
            (10, 20)
        };
        a.command("fill 10 20 30 40 00ffff");
        let changed = grab(&mut capture, source);
        assert_eq!(changed.pixel(x + 5, y + 5), Some(bgra(0x00ffff)));
        let area: u64 = changed
            .damage
            .iter()
            .map(|r| u64::from(r.width) * u64::from(r.height))
            .sum();
        let fill = Rect::new(x as i32, y as i32, 30, 40);
        assert!(
            changed
                .damage
                .iter()
                .all(|r| r.intersect(&fill) == Some(*r)),
            "{source:?}: damage {:?} outside the fill {fill:?}",
            changed.damage
        );
        assert_eq!(area, 30 * 40, "{source:?}: damage {:?}", changed.damage);
        assert_eq!(grab(&mut capture, source).damage, vec![]);
    }
}

/// Debian's xclip holding text on the clipboard, in the foreground (-quiet) until it is dropped
/// (killed) or another program claims the clipboard.
struct Xclip(Child);

impl Drop for Xclip {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn clipboard_atom(conn: &RustConnection) -> u32 {
    conn.intern_atom(false, b"CLIPBOARD")
        .expect("atom")
        .reply()
        .expect("atom")
        .atom
}

/// Starts xclip with `text` and returns once it has claimed the clipboard (XFixes reports the
/// new owner).
fn xclip_in(display: &str, text: &[u8]) -> Xclip {
    let (conn, screen) = RustConnection::connect(Some(display)).expect("connect");
    let root = conn.setup().roots[screen].root;
    conn.xfixes_query_version(5, 0)
        .expect("xfixes")
        .reply()
        .expect("xfixes");
    let clipboard = clipboard_atom(&conn);
    conn.xfixes_select_selection_input(root, clipboard, SelectionEventMask::SET_SELECTION_OWNER)
        .expect("select")
        .check()
        .expect("select");
    let mut child = Command::new("xclip")
        .args(["-quiet", "-i", "-selection", "clipboard"])
        .env("DISPLAY", display)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("xclip (Debian package xclip: scripts/system-packages.sh)");
    let mut stdin = child.stdin.take().expect("stdin");
    let text = text.to_vec();
    std::thread::spawn(move || stdin.write_all(&text));
    let (tx, claimed) = channel();
    std::thread::spawn(move || {
        while let Ok(event) = conn.wait_for_event() {
            // Any claim from now on is xclip's (the test makes no other); not compared with the
            // owner before, as X may give a new client the ids of one that left.
            if let Event::XfixesSelectionNotify(e) = event
                && e.owner != x11rb::NONE
            {
                let _ = tx.send(());
                return;
            }
        }
    });
    claimed
        .recv_timeout(WAIT)
        .expect("xclip claims the clipboard");
    Xclip(child)
}

/// The clipboard's text as another program (xclip) reads it.
fn xclip_out(display: &str) -> String {
    let out = Command::new("xclip")
        .args(["-o", "-selection", "clipboard"])
        .env("DISPLAY", display)
        .output()
        .expect("xclip -o");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 from xclip")
}

#[test]
fn clipboard_text_goes_both_ways_between_the_helper_and_other_programs() {
    let xvfb = Xvfb::start("1280x800");
    let (display, _capture, _input) = xvfb.open();
    let mut clipboard = display
        .clipboard(ClipboardLimits::default())
        .expect("clipboard");
    assert_eq!(clipboard.get_text().expect("no owner"), None);

    // Set by the helper, read by xclip and by another connection of the helper.
    let text = "Gr\u{fc}\u{df}e \u{f6} \u{20ac} \u{1f600}\nsecond line";
    clipboard.set_text(text).expect("set");
    assert_eq!(xclip_out(&xvfb.display), text);
    let mut other = display
        .clipboard(ClipboardLimits::default())
        .expect("clipboard");
    assert_eq!(other.get_text().expect("get").as_deref(), Some(text));
    clipboard.set_text("again").expect("set again");
    assert_eq!(xclip_out(&xvfb.display), "again");

    // Set by xclip (which claims the clipboard from the helper), read by the helper.
    let from_xclip = "from xclip: \u{f6} \u{20ac} \u{1f389}";
    let mut xclip = xclip_in(&xvfb.display, from_xclip.as_bytes());
    assert_eq!(
        clipboard.get_text().expect("get").as_deref(),
        Some(from_xclip)
    );

    // The helper claims it back; xclip, told so, leaves.
    clipboard.set_text("back").expect("set back");
    assert!(xclip.0.wait().expect("xclip ends").success());
    assert_eq!(xclip_out(&xvfb.display), "back");
}

#[test]
fn clipboard_refuses_oversized_or_non_utf8_text_and_a_silent_owner_times_out() {
    let xvfb = Xvfb::start("1280x800");
    let (display, _capture, _input) = xvfb.open();
    let small = ClipboardLimits {
        max_bytes: 1000,
        ..Default::default()
    };
    let mut clipboard = display.clipboard(small).expect("clipboard");
    fn too_large<T: std::fmt::Debug>(r: Result<T, PlatformError>, max: usize) {
        match r {
            Err(PlatformError::ClipboardTooLarge(m)) => assert_eq!(m, max),
            other => panic!("wanted too large, got {other:?}"),
        }
    }

    // Oversized text from the helper changes nothing.
    clipboard.set_text("kept").expect("set");
    too_large(clipboard.set_text(&"x".repeat(1001)), 1000);
    assert_eq!(xclip_out(&xvfb.display), "kept");

    // Oversized text from another program, in one piece and in an INCR transfer.
    let xclip = xclip_in(&xvfb.display, &[b'y'; 1001]);
    too_large(clipboard.get_text(), 1000);
    drop(xclip);
    // (xclip sends text this large in INCR chunks, and serves no one else while a transfer it
    // began is left unfinished: the refused read comes last.)
    let big = "\u{20ac}".repeat(2 << 20);
    let xclip = xclip_in(&xvfb.display, big.as_bytes());
    let mut roomy = display
        .clipboard(ClipboardLimits {
            max_bytes: 8 << 20,
            ..Default::default()
        })
        .expect("clipboard");
    assert!(roomy.get_text().expect("get") == Some(big), "big text");
    too_large(clipboard.get_text(), 1000);
    drop(xclip);

    // Bytes that are not UTF-8.
    let xclip = xclip_in(&xvfb.display, b"caf\xe9");
    let err = clipboard.get_text().expect_err("Latin-1 bytes");
    assert!(matches!(err, PlatformError::ClipboardNotText), "{err}");
    drop(xclip);

    // An owner that never answers.
    let (conn, screen) = RustConnection::connect(Some(&xvfb.display)).expect("connect");
    let window = conn.generate_id().expect("id");
    conn.create_window(
        0,
        window,
        conn.setup().roots[screen].root,
        0,
        0,
        1,
        1,
        0,
        WindowClass::INPUT_ONLY,
        0,
        &CreateWindowAux::new(),
    )
    .expect("window");
    conn.set_selection_owner(window, clipboard_atom(&conn), x11rb::CURRENT_TIME)
        .expect("own");
    x11rb::wrapper::ConnectionExt::sync(&conn).expect("sync");
    let mut impatient = display
        .clipboard(ClipboardLimits {
            timeout: Duration::from_millis(200),
            ..Default::default()
        })
        .expect("clipboard");
    let err = impatient.get_text().expect_err("no answer");
    assert!(matches!(err, PlatformError::ClipboardTimeout(_)), "{err}");
    assert!(err.to_string().contains("did not answer"), "{err}");
}

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use tandem_helper::connection::share::{self, ShareCommand, ShareOut};
use tandem_helper::platform::{AppWindow, Cursor, Monitor};

/// The real capture; counts pictures and reports each look (a picture or a damage check).
struct Counted {
    inner: X11Capture,
    pictures: Arc<AtomicUsize>,
    looks: Sender<()>,
}
impl Capture for Counted {
    fn monitors(&mut self) -> Result<Vec<Monitor>, PlatformError> {
        self.inner.monitors()
    }
    fn windows(&mut self) -> Result<Vec<AppWindow>, PlatformError> {
        self.inner.windows()
    }
    fn shown_rect(&mut self, source: Source) -> Result<Rect, PlatformError> {
        self.inner.shown_rect(source)
    }
    fn capture(&mut self, source: Source, frame: &mut Frame) -> Result<(), PlatformError> {
        self.pictures.fetch_add(1, Ordering::SeqCst);
        let _ = self.looks.send(());
        self.inner.capture(source, frame)
    }
    fn changed(&mut self, source: Source) -> Result<bool, PlatformError> {
        let _ = self.looks.send(());
        self.inner.changed(source)
    }
    fn wait(&mut self, changes_of: &[Source], until: Instant) -> Result<(), PlatformError> {
        self.inner.wait(changes_of, until)
    }
    fn waker(&self) -> Option<tandem_helper::platform::Waker> {
        self.inner.waker()
    }
    fn cursor(&mut self) -> Result<Cursor, PlatformError> {
        self.inner.cursor()
    }
}

/// Issue 16, idle CPU: the share thread takes no picture while the screen is still (it reads
/// the display's damage reports instead) and takes one after something is drawn.
/// Self-contained: its own Xvfb and a capture that counts what the
/// share thread asks of the real X11 capture.
#[test]
fn the_share_thread_takes_no_picture_of_a_still_screen_and_one_after_a_draw() {
    use x11rb::protocol::xproto::ChangeWindowAttributesAux;

    let x = Xvfb::start("640x480");
    let name = x.display.clone();

    let pictures = Arc::new(AtomicUsize::new(0));
    let (looks_tx, looks) = channel();
    let capture = Counted {
        inner: Display::open(Some(&name))
            .expect("open")
            .capture()
            .expect("capture"),
        pictures: pictures.clone(),
        looks: looks_tx,
    };
    let (out_tx, mut out) = tokio::sync::mpsc::unbounded_channel();
    let share = share::spawn(capture, out_tx).expect("share thread");
    share.send(ShareCommand::Start(Source::Screen));
    let next_picture = |out: &mut tokio::sync::mpsc::UnboundedReceiver<ShareOut>| loop {
        looks.recv_timeout(WAIT).expect("the share thread looks");
        match out.try_recv() {
            Ok(ShareOut::Picture { unit, .. }) => return unit,
            Ok(ShareOut::Failed(e)) => panic!("{e}"),
            Ok(ShareOut::Windows(_) | ShareOut::Placed(_)) | Err(_) => {}
        }
    };
    assert!(next_picture(&mut out).keyframe);
    let after_start = pictures.load(Ordering::SeqCst);

    // Still: the share thread sleeps until the pacing repeats the picture (a second on), takes
    // no picture for it, and does not look in between (it waits on the display, not polls it
    // every few milliseconds: the customer's CPU when nothing moves).
    let mut still_looks = 0;
    loop {
        looks.recv_timeout(WAIT).expect("the share thread looks");
        still_looks += 1;
        match out.try_recv() {
            Ok(ShareOut::Picture { .. }) => break,
            Ok(ShareOut::Failed(e)) => panic!("{e}"),
            Ok(_) | Err(_) => {}
        }
    }
    assert_eq!(
        pictures.load(Ordering::SeqCst),
        after_start,
        "pictures of a still screen"
    );
    assert!(
        still_looks <= 5,
        "{still_looks} looks at a still screen before its repeat"
    );

    // A draw: the root turns green; the next picture is taken and sent.
    let (conn, screen) = RustConnection::connect(Some(&name)).expect("connect");
    let root = conn.setup().roots[screen].root;
    let aux = ChangeWindowAttributesAux::new().background_pixel(GREEN);
    conn.change_window_attributes(root, &aux).unwrap();
    conn.clear_area(false, root, 0, 0, 0, 0).unwrap();
    x11rb::wrapper::ConnectionExt::sync(&conn).expect("sync");
    // (A repeat of the still picture may come first: it takes no picture.)
    while pictures.load(Ordering::SeqCst) == after_start {
        next_picture(&mut out);
    }
    assert_eq!(pictures.load(Ordering::SeqCst), after_start + 1);

    share.stop();

    // The capture itself: given back its frame, it reads only the damage into it, and damage
    // that drew the same pixels again is no change.
    let mut capture = Display::open(Some(&name))
        .expect("open")
        .capture()
        .expect("capture");
    let mut frame = Frame::default();
    capture
        .capture(Source::Screen, &mut frame)
        .expect("capture");
    assert!(!capture.changed(Source::Screen).expect("changed"));
    let gc = conn.generate_id().unwrap();
    let fill = |colour: u32| {
        use x11rb::protocol::xproto::{ChangeGCAux, Rectangle};
        conn.change_gc(gc, &ChangeGCAux::new().foreground(colour))
            .unwrap();
        let r = Rectangle {
            x: 100,
            y: 50,
            width: 20,
            height: 10,
        };
        conn.poly_fill_rectangle(root, gc, &[r]).unwrap();
        x11rb::wrapper::ConnectionExt::sync(&conn).expect("sync");
    };
    use x11rb::protocol::xproto::CreateGCAux;
    conn.create_gc(gc, root, &CreateGCAux::new()).unwrap();
    for (colour, damage) in [
        (MAGENTA, vec![Rect::new(100, 50, 20, 10)]),
        (MAGENTA, vec![]),
    ] {
        fill(colour);
        while !capture.changed(Source::Screen).expect("changed") {
            std::thread::yield_now();
        }
        capture
            .capture(Source::Screen, &mut frame)
            .expect("capture");
        assert_eq!(frame.damage, damage, "after a fill in {colour:06x}");
        assert_eq!(frame.pixel(105, 55), Some(bgra(MAGENTA)));
        assert_eq!(frame.pixel(99, 55), Some(bgra(GREEN)), "outside the damage");
        assert_eq!(frame.pixel(400, 300), Some(bgra(GREEN)));
    }
}

/// D6 and idle CPU: chosen windows are taken again only when one changes or moves (their own
/// damage and move reports), not looked at by taking them; a move is told at once (control maps
/// onto where the window is now), and a draw in the window is a new picture.
#[test]
fn chosen_windows_are_taken_again_only_when_they_change_or_move() {
    let x = Xvfb::start("640x480");
    let mut a = x.window(&[
        "--title", "Window A", "--x", "20", "--y", "30", "--width", "200", "--height", "150",
    ]);
    let _b = x.window(&[
        "--title", "Window B", "--x", "300", "--y", "200", "--width", "200", "--height", "150",
    ]);
    let pictures = Arc::new(AtomicUsize::new(0));
    let (looks_tx, _looks) = channel();
    let capture = Counted {
        inner: x.open().1,
        pictures: pictures.clone(),
        looks: looks_tx,
    };
    let (out_tx, mut out) = tokio::sync::mpsc::unbounded_channel();
    let share = share::spawn(capture, out_tx).expect("share thread");
    share.send(ShareCommand::Windows(vec![a.id]));
    let next = |out: &mut tokio::sync::mpsc::UnboundedReceiver<ShareOut>| {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            match out.try_recv() {
                Ok(ShareOut::Failed(e)) => panic!("{e}"),
                Ok(o) => return o,
                Err(_) => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "nothing from the share"
                    );
                    std::thread::sleep(Duration::from_millis(10)); // polling, with the deadline
                }
            }
        }
    };
    let placed = |o: &ShareOut| match o {
        ShareOut::Placed(p) => Some(p.tiles[0].shown),
        _ => None,
    };
    // First the placement, then the picture.
    let first = loop {
        if let Some(shown) = placed(&next(&mut out)) {
            break shown;
        }
    };
    assert_eq!((first.x, first.y), (20, 30));
    while !matches!(next(&mut out), ShareOut::Picture { .. }) {}
    let taken = pictures.load(Ordering::SeqCst);

    // Still: the repeats a second on take no picture of the window.
    while !matches!(next(&mut out), ShareOut::Picture { .. }) {}
    assert_eq!(
        pictures.load(Ordering::SeqCst),
        taken,
        "the still window was taken"
    );

    // Moved (no pixel of it changes): its new place is told.
    a.command("move 240 60");
    let moved = loop {
        if let Some(shown) = placed(&next(&mut out)) {
            break shown;
        }
    };
    assert_eq!((moved.x, moved.y), (240, 60));

    // A draw in it: a new picture.
    let before = pictures.load(Ordering::SeqCst);
    a.command("fill 0 0 50 50 00ff00");
    while !matches!(next(&mut out), ShareOut::Picture { .. }) {}
    assert!(
        pictures.load(Ordering::SeqCst) > before,
        "the drawn window was not taken"
    );
    share.stop();
}
