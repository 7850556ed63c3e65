//! Top-level application windows: the window manager's client list when there is one, else the
//! root's mapped children; each with its title, pid and place on the screen.

use x11rb::protocol::xproto::{
    AtomEnum, ConfigureWindowAux, ConnectionExt as _, InputFocus, MapState, StackMode, Window,
    WindowClass,
};

use super::Shared;
use crate::picture::Rect;
use crate::platform::{AppWindow, PlatformError};

/// Titles longer than this are cut (a property is read in 4-byte units).
const MAX_TITLE_WORDS: u32 = 256;

/// Application windows, bottom to top.
pub(super) fn app_windows(d: &Shared) -> Result<Vec<AppWindow>, PlatformError> {
    let candidates = match client_list(d)? {
        Some(list) => list,
        None => d.conn.query_tree(d.root)?.reply()?.children,
    };
    let mut out = Vec::new();
    for window in candidates {
        // A window may close while it is looked at: it is simply not listed.
        if let Ok(Some(w)) = describe(d, window) {
            out.push(w);
        }
    }
    Ok(out)
}

fn client_list(d: &Shared) -> Result<Option<Vec<Window>>, PlatformError> {
    for atom in [d.atoms._NET_CLIENT_LIST_STACKING, d.atoms._NET_CLIENT_LIST] {
        let reply = d
            .conn
            .get_property(false, d.root, atom, AtomEnum::WINDOW, 0, 4096)?
            .reply()?;
        if let Some(list) = reply.value32() {
            let list: Vec<Window> = list.collect();
            if !list.is_empty() {
                return Ok(Some(list));
            }
        }
    }
    Ok(None)
}

/// The window as an application window, or `None` when it is not one (unmapped, input-only,
/// override-redirect such as menus, or untitled).
pub(super) fn describe(d: &Shared, window: Window) -> Result<Option<AppWindow>, PlatformError> {
    let attrs = d.conn.get_window_attributes(window)?.reply()?;
    if attrs.map_state != MapState::VIEWABLE
        || attrs.class == WindowClass::INPUT_ONLY
        || attrs.override_redirect
    {
        return Ok(None);
    }
    let title = title(d, window)?;
    if title.is_empty() {
        return Ok(None);
    }
    let rect = screen_rect(d, window)?;
    let pid = d
        .conn
        .get_property(false, window, d.atoms._NET_WM_PID, AtomEnum::CARDINAL, 0, 1)?
        .reply()?
        .value32()
        .and_then(|mut v| v.next());
    // WM_CLASS is two NUL-terminated strings, instance then class: the class names the program.
    let class = d
        .conn
        .get_property(false, window, AtomEnum::WM_CLASS, AtomEnum::STRING, 0, 64)?
        .reply()?
        .value;
    let app = class
        .split(|b| *b == 0)
        .nth(1)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .unwrap_or_default();
    Ok(Some(AppWindow {
        id: window.into(),
        title,
        pid,
        app,
        rect,
    }))
}

fn title(d: &Shared, window: Window) -> Result<String, PlatformError> {
    let utf8 = d
        .conn
        .get_property(
            false,
            window,
            d.atoms._NET_WM_NAME,
            d.atoms.UTF8_STRING,
            0,
            MAX_TITLE_WORDS,
        )?
        .reply()?;
    if !utf8.value.is_empty() {
        return Ok(String::from_utf8_lossy(&utf8.value).into_owned());
    }
    let latin1 = d
        .conn
        .get_property(
            false,
            window,
            AtomEnum::WM_NAME,
            AtomEnum::STRING,
            0,
            MAX_TITLE_WORDS,
        )?
        .reply()?;
    Ok(latin1.value.iter().map(|&b| char::from(b)).collect())
}

/// Where the window's contents (inside its border) are on the screen.
pub(super) fn screen_rect(d: &Shared, window: Window) -> Result<Rect, PlatformError> {
    let geometry = d.conn.get_geometry(window)?.reply()?;
    let at = d
        .conn
        .translate_coordinates(window, d.root, 0, 0)?
        .reply()?;
    Ok(Rect::new(
        at.dst_x.into(),
        at.dst_y.into(),
        geometry.width.into(),
        geometry.height.into(),
    ))
}

/// The ancestor of `window` that is a child of the root (the window manager's frame, or the
/// window itself): the window Composite gives a pixmap.
pub(super) fn top_level(d: &Shared, window: Window) -> Result<Window, PlatformError> {
    let mut current = window;
    // Bounded: X trees are shallow, and a cycle cannot exist, but a bound costs nothing.
    for _ in 0..64 {
        let tree = d.conn.query_tree(current)?.reply()?;
        if tree.parent == d.root {
            return Ok(current);
        }
        if tree.parent == x11rb::NONE {
            break;
        }
        current = tree.parent;
    }
    Err(PlatformError::NoSuchWindow(window.into()))
}

/// Raises `id`'s top-level window and gives `id` the keyboard focus (D6: a click in a chosen
/// window makes it the one that gets the keys). Only a listed application window is touched.
pub(super) fn raise_and_focus(d: &Shared, id: u64) -> Result<(), PlatformError> {
    let window = Window::try_from(id).map_err(|_| PlatformError::NoSuchWindow(id))?;
    if window == d.root || describe(d, window)?.is_none() {
        return Err(PlatformError::NoSuchWindow(id));
    }
    let top = top_level(d, window)?;
    d.conn
        .configure_window(top, &ConfigureWindowAux::new().stack_mode(StackMode::ABOVE))?;
    d.conn
        .set_input_focus(InputFocus::PARENT, window, x11rb::CURRENT_TIME)?
        .check()?;
    Ok(())
}

/// Whether the keyboard's focus (or, when focus follows the pointer, the window under the
/// pointer) is one of `ids` or inside one of them.
pub(super) fn focus_within(d: &Shared, ids: &[u64]) -> Result<bool, PlatformError> {
    let focus = d.conn.get_input_focus()?.reply()?.focus;
    // 0 is None (keys go nowhere), 1 is PointerRoot (keys go to the window under the pointer).
    let mut current = match focus {
        0 => return Ok(false),
        1 => under_pointer(d)?,
        w => w,
    };
    for _ in 0..64 {
        if current == x11rb::NONE || current == d.root {
            return Ok(false);
        }
        if ids.contains(&u64::from(current)) {
            return Ok(true);
        }
        current = d.conn.query_tree(current)?.reply()?.parent;
    }
    Ok(false)
}

/// The deepest window under the pointer.
fn under_pointer(d: &Shared) -> Result<Window, PlatformError> {
    let mut current = d.root;
    for _ in 0..64 {
        let child = d.conn.query_pointer(current)?.reply()?.child;
        if child == x11rb::NONE {
            break;
        }
        current = child;
    }
    Ok(current)
}
