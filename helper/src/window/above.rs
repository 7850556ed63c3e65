//! Keeping the control indicator above other windows on X11. GTK 4 dropped keep-above, so the
//! helper asks the window manager itself, as EWMH says for a mapped window: a `_NET_WM_STATE`
//! client message to the root window adding `_NET_WM_STATE_ABOVE` and `_NET_WM_STATE_STICKY` (on
//! every desktop). Setting the property before mapping does not work: GDK rewrites
//! `_NET_WM_STATE` when it maps the window. Without a window manager (a bare Xvfb) nothing covers
//! the indicator anyway. On other GDK backends (Wayland) this does nothing:
//! there a compositor decides, and the indicator is an ordinary window.
//!
//! The indicator also shows without taking the keyboard ([`show_without_focus`]): the customer
//! goes on typing where they were, and so do the CSR's keys, which would otherwise land on the
//! indicator (Enter or Space pressing its focused "Take control back" button).

use gtk4::prelude::*;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ClientMessageEvent, ConnectionExt, EventMask, Window};

/// Why the window manager could not be asked (said on stderr; the indicator still shows).
type Error = Box<dyn std::error::Error>;

/// The X11 window of a realized GTK window, if GDK runs on X11.
fn xid(window: &gtk4::Window) -> Option<(String, Window)> {
    let surface = window.surface()?;
    let x11 = surface.downcast_ref::<gdk4_x11::X11Surface>()?;
    let display = surface.display().name().to_string();
    u32::try_from(x11.xid()).ok().map(|id| (display, id))
}

fn atoms(conn: &impl Connection, names: &[&str]) -> Result<Vec<u32>, Error> {
    let cookies = names
        .iter()
        .map(|n| conn.intern_atom(false, n.as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    cookies.into_iter().map(|c| Ok(c.reply()?.atom)).collect()
}

/// Shows `window` without giving it the keyboard. `present()` asks for the focus (and without
/// a window manager GDK takes it with `XSetInputFocus`); showing it only maps it, and a user time
/// of 0 tells a window manager not to focus it on map (EWMH `_NET_WM_USER_TIME`).
pub fn show_without_focus(window: &gtk4::Window) {
    window.connect_realize(|window| {
        if let Some(x11) = window
            .surface()
            .and_then(|s| s.downcast::<gdk4_x11::X11Surface>().ok())
        {
            x11.set_user_time(0);
        }
    });
    window.set_visible(true);
}

/// Asks the window manager to keep `window`, just mapped, above the others and on every desktop.
pub fn keep_above(window: &gtk4::Window) {
    let Some((display, id)) = xid(window) else {
        return;
    };
    if let Err(e) = ask(&display, id) {
        eprintln!("tandem-helper: the indicator could not ask to stay above other windows: {e}");
    }
}

fn ask(display: &str, window: Window) -> Result<(), Error> {
    let (conn, screen) = x11rb::connect(Some(display))?;
    let [state, above, sticky] = atoms(
        &conn,
        &[
            "_NET_WM_STATE",
            "_NET_WM_STATE_ABOVE",
            "_NET_WM_STATE_STICKY",
        ],
    )?[..] else {
        unreachable!("three names give three atoms")
    };
    let root = conn.setup().roots[screen].root;
    const ADD: u32 = 1;
    const FROM_APPLICATION: u32 = 1;
    let event =
        ClientMessageEvent::new(32, window, state, [ADD, above, sticky, FROM_APPLICATION, 0]);
    conn.send_event(
        false,
        root,
        EventMask::SUBSTRUCTURE_REDIRECT | EventMask::SUBSTRUCTURE_NOTIFY,
        event,
    )?
    .check()?;
    Ok(())
}
