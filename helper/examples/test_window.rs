//! A test window for the helper's X11 tests: four quadrants of known colours with a marker
//! square in the middle, logging the pointer and key events it receives (window coordinates) as
//! JSON lines on stdout. Lines on stdin change it: `fill X Y W H RRGGBB`, `move X Y`, `raise`;
//! each is answered with a JSON line once the server has done it.
//!
//! `cargo run -p tandem-helper --example test_window -- --title A --colors ff0000,00ff00,0000ff,ffff00`

use std::error::Error;
use std::io::{BufRead, Write};
use std::sync::{Arc, Mutex};

use clap::Parser;
use serde_json::{Value, json};
use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::xproto::{
    AtomEnum, ChangeGCAux, ConfigureWindowAux, ConnectionExt as _, CreateGCAux, CreateWindowAux,
    EventMask, InputFocus, PropMode, Rectangle, StackMode, WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

#[derive(Parser, Debug, Clone)]
pub struct Args {
    #[arg(long, default_value = "Tandem test window")]
    pub title: String,
    /// Top left, top right, bottom left, bottom right, as RRGGBB.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "ff0000,00ff00,0000ff,ffff00"
    )]
    pub colors: Vec<String>,
    #[arg(long, default_value = "ffffff")]
    pub marker: String,
    #[arg(long, default_value_t = 100)]
    pub x: i16,
    #[arg(long, default_value_t = 100)]
    pub y: i16,
    #[arg(long, default_value_t = 400)]
    pub width: u16,
    #[arg(long, default_value_t = 300)]
    pub height: u16,
    /// The marker square's side, in pixels, centred in the window.
    #[arg(long, default_value_t = 20)]
    pub marker_size: u16,
    #[arg(long)]
    pub display: Option<String>,
    /// M4: run as a user's whole session (tandem-helper-logon's session program): stdin is not
    /// read, and Ctrl+Q quits, which is that user signing out.
    #[arg(long)]
    pub session: bool,
    /// Write the events to this file instead of stdout.
    #[arg(long)]
    pub events: Option<std::path::PathBuf>,
}

/// Where events go: stdout, or the `--events` file.
static EVENTS: std::sync::OnceLock<Mutex<Box<dyn Write + Send>>> = std::sync::OnceLock::new();

#[allow(dead_code)]
fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("test_window: {e}");
        std::process::exit(1);
    }
}

fn hex(s: &str) -> Result<u32, Box<dyn Error>> {
    Ok(u32::from_str_radix(s.trim_start_matches('#'), 16)?)
}

fn emit(v: Value) {
    let out = EVENTS.get_or_init(|| Mutex::new(Box::new(std::io::stdout())));
    if let Ok(mut out) = out.lock() {
        let _ = writeln!(out, "{v}");
        let _ = out.flush();
    }
}

/// The core keyboard mapping, to name the keys received.
struct Keys {
    min: u8,
    per: usize,
    syms: Vec<u32>,
}

impl Keys {
    fn fetch(conn: &RustConnection) -> Result<Keys, Box<dyn Error>> {
        let setup = conn.setup();
        let (min, max) = (setup.min_keycode, setup.max_keycode);
        let r = conn.get_keyboard_mapping(min, max - min + 1)?.reply()?;
        Ok(Keys {
            min,
            per: r.keysyms_per_keycode.into(),
            syms: r.keysyms,
        })
    }

    fn keysym(&self, code: u8, shift: bool) -> u32 {
        let base = usize::from(code.saturating_sub(self.min)) * self.per;
        let at = |i: usize| self.syms.get(base + i).copied().unwrap_or(0);
        let (lower, upper) = (at(0), if self.per > 1 { at(1) } else { 0 });
        match (shift, upper) {
            (false, _) => lower,
            (true, 0) => char::from_u32(lower)
                .filter(|c| c.is_ascii_lowercase())
                .map_or(lower, |c| c.to_ascii_uppercase().into()),
            (true, upper) => upper,
        }
    }
}

fn keysym_text(sym: u32) -> Option<String> {
    let cp = if sym >= 0x0100_0000 {
        sym - 0x0100_0000
    } else {
        sym
    };
    let printable =
        (0x20..=0x7e).contains(&sym) || (0xa0..=0xff).contains(&sym) || sym >= 0x0100_0000;
    printable
        .then(|| char::from_u32(cp))
        .flatten()
        .map(String::from)
}

fn state_names(state: u16) -> Vec<&'static str> {
    [(1, "shift"), (4, "control"), (8, "mod1"), (64, "mod4")]
        .into_iter()
        .filter(|(bit, _)| state & bit != 0)
        .map(|(_, name)| name)
        .collect()
}

pub fn run(args: Args) -> Result<(), Box<dyn Error>> {
    if let Some(path) = &args.events {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let _ = EVENTS.set(Mutex::new(Box::new(file)));
    }
    let colors = args
        .colors
        .iter()
        .map(|c| hex(c))
        .collect::<Result<Vec<_>, _>>()?;
    if colors.len() != 4 {
        return Err("--colors takes four colours".into());
    }
    let marker = hex(&args.marker)?;
    let (conn, screen) = RustConnection::connect(args.display.as_deref())?;
    let conn = Arc::new(conn);
    let root = conn.setup().roots[screen].root;
    let window = conn.generate_id()?;
    conn.create_window(
        x11rb::COPY_DEPTH_FROM_PARENT,
        window,
        root,
        args.x,
        args.y,
        args.width,
        args.height,
        0,
        WindowClass::INPUT_OUTPUT,
        x11rb::COPY_FROM_PARENT,
        &CreateWindowAux::new().background_pixel(0).event_mask(
            EventMask::EXPOSURE
                | EventMask::BUTTON_PRESS
                | EventMask::BUTTON_RELEASE
                | EventMask::POINTER_MOTION
                | EventMask::KEY_PRESS
                | EventMask::KEY_RELEASE
                | EventMask::STRUCTURE_NOTIFY,
        ),
    )?;
    let utf8 = conn.intern_atom(false, b"UTF8_STRING")?.reply()?.atom;
    let net_name = conn.intern_atom(false, b"_NET_WM_NAME")?.reply()?.atom;
    let net_pid = conn.intern_atom(false, b"_NET_WM_PID")?.reply()?.atom;
    conn.change_property8(
        PropMode::REPLACE,
        window,
        AtomEnum::WM_NAME,
        AtomEnum::STRING,
        args.title.as_bytes(),
    )?;
    conn.change_property8(
        PropMode::REPLACE,
        window,
        net_name,
        utf8,
        args.title.as_bytes(),
    )?;
    conn.change_property32(
        PropMode::REPLACE,
        window,
        net_pid,
        AtomEnum::CARDINAL,
        &[std::process::id()],
    )?;
    let gc = conn.generate_id()?;
    conn.create_gc(gc, window, &CreateGCAux::new().graphics_exposures(0))?;
    conn.map_window(window)?;
    conn.flush()?;

    // Fills asked for on stdin, drawn again on every expose.
    let fills: Arc<Mutex<Vec<(Rectangle, u32)>>> = Arc::default();
    let (w, h) = (args.width, args.height);
    let draw = {
        let conn = conn.clone();
        let fills = fills.clone();
        move || -> Result<(), Box<dyn Error>> {
            let (hw, hh) = (w / 2, h / 2);
            let quads = [
                (0, 0, hw, hh),
                (hw as i16, 0, w - hw, hh),
                (0, hh as i16, hw, h - hh),
                (hw as i16, hh as i16, w - hw, h - hh),
            ];
            for ((x, y, width, height), color) in quads.into_iter().zip(&colors) {
                conn.change_gc(gc, &ChangeGCAux::new().foreground(*color))?;
                conn.poly_fill_rectangle(
                    window,
                    gc,
                    &[Rectangle {
                        x,
                        y,
                        width,
                        height,
                    }],
                )?;
            }
            let m = args.marker_size;
            conn.change_gc(gc, &ChangeGCAux::new().foreground(marker))?;
            let (mx, my) = (
                (w / 2).saturating_sub(m / 2) as i16,
                (h / 2).saturating_sub(m / 2) as i16,
            );
            conn.poly_fill_rectangle(
                window,
                gc,
                &[Rectangle {
                    x: mx,
                    y: my,
                    width: m,
                    height: m,
                }],
            )?;
            for (rect, color) in fills.lock().map_err(|_| "poisoned")?.iter() {
                conn.change_gc(gc, &ChangeGCAux::new().foreground(*color))?;
                conn.poly_fill_rectangle(window, gc, &[*rect])?;
            }
            conn.sync()?;
            Ok(())
        }
    };

    {
        let conn = conn.clone();
        let fills = fills.clone();
        let fill_gc = conn.generate_id()?;
        conn.create_gc(fill_gc, window, &CreateGCAux::new().graphics_exposures(0))?;
        let session = args.session;
        std::thread::spawn(move || {
            if session {
                return;
            }
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                let words: Vec<&str> = line.split_whitespace().collect();
                let done = match words.as_slice() {
                    ["fill", x, y, w, h, color] => (|| -> Result<Value, Box<dyn Error>> {
                        let rect = Rectangle {
                            x: x.parse()?,
                            y: y.parse()?,
                            width: w.parse()?,
                            height: h.parse()?,
                        };
                        let color = hex(color)?;
                        fills.lock().map_err(|_| "poisoned")?.push((rect, color));
                        // Only the filled part is drawn: what a capture must report as changed.
                        conn.change_gc(fill_gc, &ChangeGCAux::new().foreground(color))?;
                        conn.poly_fill_rectangle(window, fill_gc, &[rect])?;
                        conn.sync()?;
                        Ok(json!({"event": "filled"}))
                    })(),
                    ["move", x, y] => (|| -> Result<Value, Box<dyn Error>> {
                        conn.configure_window(
                            window,
                            &ConfigureWindowAux::new()
                                .x(x.parse::<i32>()?)
                                .y(y.parse::<i32>()?),
                        )?;
                        conn.sync()?;
                        Ok(json!({"event": "moved"}))
                    })(),
                    ["raise"] => (|| -> Result<Value, Box<dyn Error>> {
                        conn.configure_window(
                            window,
                            &ConfigureWindowAux::new().stack_mode(StackMode::ABOVE),
                        )?;
                        conn.sync()?;
                        Ok(json!({"event": "raised"}))
                    })(),
                    _ => Err(format!("unknown command {line:?}").into()),
                };
                emit(done.unwrap_or_else(|e| json!({"event": "error", "message": e.to_string()})));
            }
            // The test closed stdin: it is done with this window.
            std::process::exit(0);
        });
    }

    let mut keys = Keys::fetch(&conn)?;
    let mut ready = false;
    loop {
        match conn.wait_for_event()? {
            Event::Expose(e) if e.count == 0 => {
                draw()?;
                if !ready {
                    ready = true;
                    conn.set_input_focus(InputFocus::PARENT, window, x11rb::CURRENT_TIME)?;
                    conn.sync()?;
                    emit(json!({"event": "ready", "window": window}));
                } else {
                    emit(json!({"event": "exposed"}));
                }
            }
            Event::ButtonPress(e) => emit(json!({
                "event": "button_press", "button": e.detail, "x": e.event_x, "y": e.event_y,
                "state": state_names(u16::from(e.state)),
            })),
            Event::ButtonRelease(e) => emit(
                json!({"event": "button_release", "button": e.detail, "x": e.event_x, "y": e.event_y}),
            ),
            Event::MotionNotify(e) => {
                emit(json!({"event": "motion", "x": e.event_x, "y": e.event_y}))
            }
            Event::KeyPress(e) | Event::KeyRelease(e) => {
                let pressed = e.response_type & 0x7f == x11rb::protocol::xproto::KEY_PRESS_EVENT;
                let state = u16::from(e.state);
                let sym = keys.keysym(e.detail, state & 1 != 0);
                // Ctrl+Q in a session: the user signs out.
                if args.session
                    && pressed
                    && state & 4 != 0
                    && (sym == 'q' as u32 || sym == 'Q' as u32)
                {
                    emit(json!({"event": "signed_out"}));
                    std::process::exit(0);
                }
                emit(json!({
                    "event": if pressed { "key_press" } else { "key_release" },
                    "keycode": e.detail,
                    "keysym": sym,
                    "text": keysym_text(sym),
                    "state": state_names(state),
                }));
            }
            // A client remapped keys (the helper's spare key codes): read the mapping again
            // before the key events that follow.
            Event::MappingNotify(_) => keys = Keys::fetch(&conn)?,
            _ => {}
        }
    }
}
