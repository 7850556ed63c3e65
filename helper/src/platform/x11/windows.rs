//! Top-level application windows: the window manager's client list when there is one, else the
//! root's mapped children; each with its title, pid and place on the screen.

use x11rb::protocol::xproto::{AtomEnum, ConnectionExt as _, MapState, Window, WindowClass};

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
    Ok(Some(AppWindow {
        id: window.into(),
        title,
        pid,
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
