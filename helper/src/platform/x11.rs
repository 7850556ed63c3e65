//! The X11 backend, over x11rb's pure-Rust connection: MIT-SHM and Composite capture, Damage for
//! what changed, XFixes for the cursor, RandR for monitors, XTest for input and selections for
//! the clipboard.
//!
//! [`Display`] is one connection shared by the capture and input halves; the clipboard opens
//! connections of its own to the same display (its events must not mix with theirs).

use std::sync::Arc;
use std::time::Duration;

use rustix::event::{PollFd, Timespec, poll};
use x11rb::connection::Connection;
use x11rb::errors::{ConnectError, ConnectionError, ReplyError, ReplyOrIdError};
use x11rb::protocol::xproto::{ImageOrder, Window};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

use super::{ClipboardLimits, PlatformError};

mod capture;
mod clipboard;
mod input;
mod keymap;
mod shm;
mod windows;

pub use capture::X11Capture;
pub use clipboard::X11Clipboard;
pub use input::X11Input;

/// Sleeps in `poll` on `fds` for at most `left` (a signal ends it early, as an event would).
/// Events x11rb has read from a connection already do not wake it: read those first.
fn poll_for(fds: &mut [PollFd<'_>], left: Duration) -> rustix::io::Result<()> {
    let left = Timespec::try_from(left).unwrap_or(Timespec {
        tv_sec: i64::MAX,
        tv_nsec: 0,
    });
    match poll(fds, Some(&left)) {
        Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
        Err(e) => Err(e),
    }
}

x11rb::atom_manager! {
    pub(crate) Atoms: AtomsCookie {
        _NET_CLIENT_LIST_STACKING,
        _NET_CLIENT_LIST,
        _NET_WM_NAME,
        _NET_WM_PID,
        UTF8_STRING,
    }
}

/// One connection to an X display, shared by [`X11Capture`] and [`X11Input`].
#[derive(Clone)]
pub struct Display(Arc<Shared>);

pub(crate) struct Shared {
    pub(crate) conn: RustConnection,
    /// The display's name as given to [`Display::open`], for the clipboard's own connections.
    pub(crate) name: Option<String>,
    pub(crate) root: Window,
    pub(crate) width: u16,
    pub(crate) height: u16,
    pub(crate) atoms: Atoms,
}

impl Display {
    /// Connects to `name` (for example ":0"), or to $DISPLAY when `None`.
    pub fn open(name: Option<&str>) -> Result<Display, PlatformError> {
        let (conn, screen) = RustConnection::connect(name)?;
        Self::with(conn, screen, name.map(str::to_owned))
    }

    /// M4: connects to local display `name` (":N") with this MIT-MAGIC-COOKIE-1, the one
    /// tandem-helper-logon gave for the other user's session. No Xauthority file is read or
    /// written, and $XAUTHORITY is not changed. Its clipboard is not the customer's: none is
    /// made from it.
    pub fn open_with_cookie(name: &str, cookie: &[u8; 16]) -> Result<Display, PlatformError> {
        let number: u32 = name
            .strip_prefix(':')
            .and_then(|n| n.split('.').next())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| PlatformError::Connect(format!("not a local display: {name:?}")))?;
        let socket = std::os::unix::net::UnixStream::connect(format!("/tmp/.X11-unix/X{number}"))
            .map_err(|e| PlatformError::Connect(format!("display {name}: {e}")))?;
        let (stream, _) = x11rb::rust_connection::DefaultStream::from_unix_stream(socket)
            .map_err(|e| PlatformError::Connect(e.to_string()))?;
        let conn = RustConnection::connect_to_stream_with_auth_info(
            stream,
            0,
            crate::logon::xauth::COOKIE_NAME.to_vec(),
            cookie.to_vec(),
        )?;
        Self::with(conn, 0, None)
    }

    fn with(
        conn: RustConnection,
        screen: usize,
        name: Option<String>,
    ) -> Result<Display, PlatformError> {
        let setup = conn.setup();
        let screen = setup
            .roots
            .get(screen)
            .ok_or_else(|| PlatformError::Connect(format!("the display has no screen {screen}")))?;
        if setup.image_byte_order != ImageOrder::LSB_FIRST {
            return Err(PlatformError::PixelFormat(
                "most significant byte first".into(),
            ));
        }
        let bpp = setup
            .pixmap_formats
            .iter()
            .find(|f| f.depth == screen.root_depth)
            .map(|f| f.bits_per_pixel);
        if !matches!(screen.root_depth, 24 | 32) || bpp != Some(32) {
            return Err(PlatformError::PixelFormat(format!(
                "depth {} at {bpp:?} bits a pixel (24 or 32 at 32 are supported)",
                screen.root_depth
            )));
        }
        let (root, width, height) = (screen.root, screen.width_in_pixels, screen.height_in_pixels);
        let atoms = Atoms::new(&conn)?.reply()?;
        Ok(Display(Arc::new(Shared {
            conn,
            name,
            root,
            width,
            height,
            atoms,
        })))
    }

    pub fn capture(&self) -> Result<X11Capture, PlatformError> {
        X11Capture::new(self.0.clone())
    }

    pub fn input(&self) -> Result<X11Input, PlatformError> {
        X11Input::new(self.0.clone())
    }

    pub fn clipboard(&self, limits: ClipboardLimits) -> Result<X11Clipboard, PlatformError> {
        X11Clipboard::new(self.0.name.clone(), limits)
    }

    /// Sends everything queued and waits until the server has handled it.
    pub fn sync(&self) -> Result<(), PlatformError> {
        self.0.conn.sync()?;
        Ok(())
    }
}

impl From<ConnectError> for PlatformError {
    fn from(e: ConnectError) -> Self {
        PlatformError::Connect(e.to_string())
    }
}

impl From<ConnectionError> for PlatformError {
    fn from(e: ConnectionError) -> Self {
        PlatformError::Protocol(e.to_string())
    }
}

impl From<ReplyError> for PlatformError {
    fn from(e: ReplyError) -> Self {
        PlatformError::Protocol(e.to_string())
    }
}

impl From<ReplyOrIdError> for PlatformError {
    fn from(e: ReplyOrIdError) -> Self {
        PlatformError::Protocol(e.to_string())
    }
}
