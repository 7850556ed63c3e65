//! What the helper needs from the computer, behind small traits: [`Capture`] (pixels and the
//! cursor), [`Input`] (pointer and keys) and [`Clipboard`] (text both ways). One module per
//! platform implements them; the rest of the helper sees only these traits and types.

use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::key::{Key, KeyError, Modifiers};
use crate::picture::{MapError, Rect};

#[cfg(target_os = "linux")]
pub mod x11;

/// A monitor: one part of the desktop, as the display server reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Monitor {
    /// Stable while the monitor exists (on X11, the atom of its RandR name).
    pub id: u32,
    pub name: String,
    pub primary: bool,
    pub rect: Rect,
}

/// A top-level application window the customer may choose to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppWindow {
    pub id: u64,
    pub title: String,
    /// The owning process, when the application says (on X11, `_NET_WM_PID`).
    pub pid: Option<u32>,
    /// The application's name, when it says (on X11, the class in `WM_CLASS`), else empty.
    pub app: String,
    /// Where the window's contents are on the screen now.
    pub rect: Rect,
}

/// What is captured and what control is confined to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The whole desktop.
    Screen,
    /// One monitor, by [`Monitor::id`].
    Monitor(u32),
    /// One application window, by [`AppWindow::id`]: only its own pixels, never those of a window
    /// over it.
    Window(u64),
}

/// A captured picture: BGRA, 4 bytes a pixel, rows of `width * 4` bytes, alpha 255.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
    /// The parts that changed since the previous frame of the same source, in frame pixels; the
    /// whole frame after a change of source or size.
    pub damage: Vec<Rect>,
    /// Where the frame was on the screen when it was taken.
    pub shown: Rect,
    /// Which capture filled it last: a capture given back the frame it filled last updates only
    /// the changed parts. Zero: none.
    pub(crate) serial: u64,
}

impl Frame {
    /// The BGRA bytes of one pixel, or `None` outside the frame.
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 4]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let at = (y as usize * self.width as usize + x as usize) * 4;
        self.data.get(at..at + 4)?.try_into().ok()
    }
}

/// The pointer's image and where its hot spot is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The hot spot, in screen pixels.
    pub x: i32,
    pub y: i32,
    pub hot_x: u32,
    pub hot_y: u32,
    pub width: u32,
    pub height: u32,
    /// Premultiplied BGRA, rows of `width * 4` bytes.
    pub image: Vec<u8>,
    /// Changes when the image does, so that an unchanged image need not be sent again.
    pub serial: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Button {
    Left,
    Middle,
    Right,
    Back,
    Forward,
}

#[derive(Debug, Error)]
pub enum PlatformError {
    #[error("cannot connect to the display: {0}")]
    Connect(String),
    #[error("the display lacks the {0} extension")]
    MissingExtension(&'static str),
    #[error("no monitor with id {0}")]
    NoSuchMonitor(u32),
    #[error("no window with id {0} (closed, or not an application window)")]
    NoSuchWindow(u64),
    #[error("the display's pixel format is not supported: {0}")]
    PixelFormat(String),
    #[error("the picture is too large: {0}x{1}")]
    TooLarge(u32, u32),
    #[error("{0}")]
    Key(#[from] KeyError),
    #[error("the key {0:?} has no key code on this keyboard and no spare key code is left")]
    Unmappable(Key),
    #[error("{0}")]
    Map(#[from] MapError),
    #[error("more than {0} characters of text at once")]
    TooMuchText(usize),
    #[error("the display server refused or failed: {0}")]
    Protocol(String),
    #[error("the clipboard's text is over {0} bytes")]
    ClipboardTooLarge(usize),
    #[error("the clipboard holds no UTF-8 text")]
    ClipboardNotText,
    #[error("the program that holds the clipboard did not answer within {0:?}")]
    ClipboardTimeout(Duration),
}

/// Wakes a thread waiting in [`Capture::wait`], from any thread.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// How long [`Capture::wait`] sleeps at most on a backend that cannot wait on the display: such
/// a backend is looked at this often.
pub const LOOK_EVERY: Duration = Duration::from_millis(10);

/// Pixels and the cursor.
pub trait Capture {
    fn monitors(&mut self) -> Result<Vec<Monitor>, PlatformError>;
    /// Application windows, bottom to top in stacking order.
    fn windows(&mut self) -> Result<Vec<AppWindow>, PlatformError>;
    /// Where `source` is on the screen now (control maps picture points into this).
    fn shown_rect(&mut self, source: Source) -> Result<Rect, PlatformError>;
    /// Captures `source` into `frame`, reusing its buffer, with the damage since the previous
    /// capture of the same source. Given back the frame it filled last, it may read only the
    /// damaged parts into it; damage whose pixels turn out unchanged is left out of
    /// [`Frame::damage`] (so empty damage means the picture is the same).
    fn capture(&mut self, source: Source, frame: &mut Frame) -> Result<(), PlatformError>;
    /// Whether `source` may have changed since its last capture, without reading any pixel: a
    /// still screen then costs no capture and no encoding. A window that moved or was resized
    /// has changed (what control maps onto). True when the backend cannot tell, or `source` was
    /// not captured lately.
    fn changed(&mut self, _source: Source) -> Result<bool, PlatformError> {
        Ok(true)
    }
    /// Waits until `until`, until [`Capture::waker`]'s waker is called, or until one of
    /// `changes_of` may have changed ([`Capture::changed`] then says so; a window that moved
    /// counts), whichever comes first: a still screen then costs no wake-up at all. A backend
    /// that cannot wait on the display sleeps at most [`LOOK_EVERY`].
    fn wait(&mut self, _changes_of: &[Source], until: Instant) -> Result<(), PlatformError> {
        std::thread::sleep(
            until
                .saturating_duration_since(Instant::now())
                .min(LOOK_EVERY),
        );
        Ok(())
    }
    /// What ends a [`Capture::wait`] early, from another thread; `None` when `wait` only sleeps
    /// briefly anyway.
    fn waker(&self) -> Option<Waker> {
        None
    }
    fn cursor(&mut self) -> Result<Cursor, PlatformError>;
}

/// Pointer and keyboard injection. Points are screen pixels: map picture points with
/// [`crate::picture::picture_to_screen`] and [`Capture::shown_rect`] first.
pub trait Input {
    fn pointer_move(&mut self, x: i32, y: i32) -> Result<(), PlatformError>;
    fn button(&mut self, button: Button, pressed: bool) -> Result<(), PlatformError>;
    /// Wheel notches: positive `dy` scrolls down, positive `dx` right.
    fn wheel(&mut self, dx: i32, dy: i32) -> Result<(), PlatformError>;
    /// Presses and releases `key` with `modifiers` held around it.
    fn key(&mut self, key: Key, modifiers: Modifiers) -> Result<(), PlatformError>;
    /// Presses (`true`) or releases one key alone, for keys held across messages.
    fn key_state(&mut self, key: Key, pressed: bool) -> Result<(), PlatformError>;
    /// Types `text`, character by character, whatever the keyboard layout.
    fn text(&mut self, text: &str) -> Result<(), PlatformError>;
    /// D6: raises application window `window` ([`AppWindow::id`]) and gives it the keyboard
    /// focus, so that a click and the keys after it go to the window the CSR may control.
    fn raise_and_focus(&mut self, window: u64) -> Result<(), PlatformError>;
    /// D6: whether keys pressed now go to one of `windows` (the focus, or with focus following
    /// the pointer the window under it, is one of them or inside one).
    fn focus_within(&mut self, windows: &[u64]) -> Result<bool, PlatformError>;
}

/// The most clipboard text moved at once, either way, by default (bytes of UTF-8).
pub const MAX_CLIPBOARD_BYTES: usize = 1 << 20;

/// Bounds on one clipboard transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClipboardLimits {
    /// Text over this many bytes is refused, read or written, before it is held in full.
    pub max_bytes: usize,
    /// How long a read waits for the program that holds the clipboard to hand it over.
    pub timeout: Duration,
}

impl Default for ClipboardLimits {
    fn default() -> Self {
        ClipboardLimits {
            max_bytes: MAX_CLIPBOARD_BYTES,
            timeout: Duration::from_secs(5),
        }
    }
}

/// Clipboard text, on request (the caller asks the customer first). Text only, UTF-8 only.
pub trait Clipboard {
    /// The clipboard's text, or `None` when no program holds the clipboard or what it holds is
    /// not text.
    fn get_text(&mut self) -> Result<Option<String>, PlatformError>;
    /// Puts `text` on the clipboard. The helper offers it until another program takes the
    /// clipboard over or this clipboard is dropped; text over the bound changes nothing.
    fn set_text(&mut self, text: &str) -> Result<(), PlatformError>;
}
