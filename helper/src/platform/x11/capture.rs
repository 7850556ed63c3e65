//! Capture on X11: the root window (whole screen or one RandR monitor) or one application window
//! through its Composite pixmap, read with MIT-SHM (core GetImage when the server is remote), the
//! changed parts from a Damage object, the cursor from XFixes.
//!
//! A still screen costs nothing: [`Capture::changed`] reads the Damage object's notify events
//! (no request, no pixel), and a capture into the frame captured last reads only the damaged
//! area (one MIT-SHM sub-image of its bounding box) and reports the parts whose pixels differ.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rustix::event::{EventfdFlags, PollFd, PollFlags, eventfd};

use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::Event;
use x11rb::protocol::composite::{self, ConnectionExt as _, Redirect};
use x11rb::protocol::damage::{self, ConnectionExt as _, ReportLevel};
use x11rb::protocol::randr::{self, ConnectionExt as _};
use x11rb::protocol::shm::ConnectionExt as _;
use x11rb::protocol::xfixes::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{
    ChangeWindowAttributesAux, ConnectionExt as _, Drawable, EventMask, ImageFormat, Window,
};

use super::shm::Segment;
use super::{Shared, windows};
use crate::picture::{Rect, damage_in_frame};
use crate::platform::{AppWindow, Capture, Cursor, Frame, Monitor, PlatformError, Source, Waker};

/// The largest picture captured (8192 x 8192 pixels, 256 MiB): a bound on memory, not a limit
/// any real screen reaches.
const MAX_PIXELS: u64 = 8192 * 8192;

/// Serials of filled frames, unique in the process (see [`Frame`]'s `serial`).
static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

pub struct X11Capture {
    d: Arc<Shared>,
    /// Shared memory for images; `None` when the server cannot share memory with us.
    shm: Option<Segment>,
    shm_supported: bool,
    composite: bool,
    redirected: bool,
    randr: bool,
    /// One XFixes region the damage is moved into to be read.
    region: xfixes::Region,
    /// The sources captured lately, oldest first, at most [`MAX_TRACKED`].
    tracked: Vec<Tracked>,
    /// The damaged area read into that frame, reused between captures.
    scratch: Vec<u8>,
    /// Written by the [`Capture::waker`] to end a [`Capture::wait`] early.
    wake: Arc<OwnedFd>,
}

/// How many sources' changes are followed at once (D6 shares several windows).
const MAX_TRACKED: usize = 16;

/// The Damage object of a source captured lately.
struct Tracked {
    source: Source,
    drawable: Drawable,
    damage: damage::Damage,
    /// A window's top-level, watched for moves and resizes (which damage nothing inside it).
    top: Option<Window>,
    size: (u32, u32),
    /// The serial of the frame filled last for this source.
    serial: u64,
    /// The sequence number of the last DamageSubtract: a notify from it on is new damage.
    subtracted_at: u64,
    /// New damage was notified since that subtract.
    notified: bool,
}

/// What to read for one capture.
struct Target {
    /// The drawable the image is read from (the root, or a window's Composite pixmap).
    image_drawable: Drawable,
    /// The part of `image_drawable` to read.
    image_area: Rect,
    /// The drawable whose changes are tracked, and the captured part in its coordinates.
    damage_drawable: Drawable,
    /// The top-level window to watch for moves, for a window.
    top: Option<Window>,
    damage_area: Rect,
    shown: Rect,
    /// A pixmap named for this capture, freed after it.
    pixmap: Option<u32>,
}

impl X11Capture {
    pub(super) fn new(d: Arc<Shared>) -> Result<X11Capture, PlatformError> {
        let conn = &d.conn;
        if conn
            .extension_information(xfixes::X11_EXTENSION_NAME)?
            .is_none()
        {
            return Err(PlatformError::MissingExtension("XFIXES"));
        }
        conn.xfixes_query_version(5, 0)?.reply()?;
        if conn
            .extension_information(damage::X11_EXTENSION_NAME)?
            .is_none()
        {
            return Err(PlatformError::MissingExtension("DAMAGE"));
        }
        conn.damage_query_version(1, 1)?.reply()?;
        let composite = conn
            .extension_information(composite::X11_EXTENSION_NAME)?
            .is_some()
            && conn
                .composite_query_version(0, 4)?
                .reply()
                .is_ok_and(|v| (v.major_version, v.minor_version) >= (0, 2));
        let randr = conn
            .extension_information(randr::X11_EXTENSION_NAME)?
            .is_some()
            && conn
                .randr_query_version(1, 5)?
                .reply()
                .is_ok_and(|v| (v.major_version, v.minor_version) >= (1, 5));
        let shm_supported = conn
            .extension_information(x11rb::protocol::shm::X11_EXTENSION_NAME)?
            .is_some()
            && Segment::supported(conn);
        let region = conn.generate_id()?;
        conn.xfixes_create_region(region, &[])?.check()?;
        let wake = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
            .map_err(|e| PlatformError::Protocol(format!("eventfd: {e}")))?;
        Ok(X11Capture {
            d,
            shm: None,
            shm_supported,
            composite,
            redirected: false,
            randr,
            region,
            tracked: Vec::new(),
            scratch: Vec::new(),
            wake: Arc::new(wake),
        })
    }

    /// Whether images travel through shared memory (false: through the socket).
    pub fn uses_shared_memory(&self) -> bool {
        self.shm_supported
    }

    /// Whether `source` may have changed, from the events read so far: true when it is not
    /// tracked (not captured lately).
    fn notified(&self, source: Source) -> bool {
        self.tracked
            .iter()
            .find(|t| t.source == source)
            .is_none_or(|t| t.notified)
    }

    fn root_rect(&self) -> Result<Rect, PlatformError> {
        let g = self.d.conn.get_geometry(self.d.root)?.reply()?;
        Ok(Rect::new(0, 0, g.width.into(), g.height.into()))
    }

    fn target(&mut self, source: Source) -> Result<Target, PlatformError> {
        let root = self.d.root;
        let on_root = |area: Rect| Target {
            image_drawable: root,
            image_area: area,
            damage_drawable: root,
            top: None,
            damage_area: area,
            shown: area,
            pixmap: None,
        };
        match source {
            Source::Screen => Ok(on_root(self.root_rect()?)),
            Source::Monitor(id) => {
                let monitor = self
                    .monitors()?
                    .into_iter()
                    .find(|m| m.id == id)
                    .ok_or(PlatformError::NoSuchMonitor(id))?;
                let area = monitor
                    .rect
                    .intersect(&self.root_rect()?)
                    .ok_or(PlatformError::NoSuchMonitor(id))?;
                Ok(on_root(area))
            }
            Source::Window(id) => self.window_target(id),
        }
    }

    fn window_target(&mut self, id: u64) -> Result<Target, PlatformError> {
        let window = Window::try_from(id).map_err(|_| PlatformError::NoSuchWindow(id))?;
        let app = self.app_window(window)?;
        if !self.composite {
            return Err(PlatformError::MissingExtension("Composite"));
        }
        self.redirect()?;
        let conn = &self.d.conn;
        let top = windows::top_level(&self.d, window)?;
        let border = conn.get_geometry(top)?.reply()?.border_width;
        let inside = conn.translate_coordinates(window, top, 0, 0)?.reply()?;
        let pixmap = conn.generate_id()?;
        conn.composite_name_window_pixmap(top, pixmap)?.check()?;
        let (w, h) = (app.rect.width, app.rect.height);
        Ok(Target {
            image_drawable: pixmap,
            image_area: Rect::new(
                i32::from(inside.dst_x) + i32::from(border),
                i32::from(inside.dst_y) + i32::from(border),
                w,
                h,
            ),
            damage_drawable: window,
            top: Some(top),
            damage_area: Rect::new(0, 0, w, h),
            shown: app.rect,
            pixmap: Some(pixmap),
        })
    }

    /// The window, if it is a mapped, titled application window (not the root, not a menu).
    fn app_window(&self, window: Window) -> Result<AppWindow, PlatformError> {
        let id = u64::from(window);
        if window == self.d.root {
            return Err(PlatformError::NoSuchWindow(id));
        }
        match windows::describe(&self.d, window) {
            Ok(Some(app)) if !app.rect.is_empty() => Ok(app),
            _ => Err(PlatformError::NoSuchWindow(id)),
        }
    }

    /// Gives every top-level window its own pixmap (automatic redirection: the server still
    /// draws the screen), so that a window's pixels can be read even where another covers it.
    /// Undone by the server when our connection closes.
    fn redirect(&mut self) -> Result<(), PlatformError> {
        if !self.redirected {
            self.d
                .conn
                .composite_redirect_subwindows(self.d.root, Redirect::AUTOMATIC)?
                .check()?;
            self.redirected = true;
        }
        Ok(())
    }

    /// The damage since the previous capture of this source, in frame pixels; everything when the
    /// source or its size changed.
    fn damage(&mut self, source: Source, target: &Target) -> Result<Vec<Rect>, PlatformError> {
        let conn = &self.d.conn;
        let size = (target.damage_area.width, target.damage_area.height);
        let at = self.tracked.iter().position(|t| t.source == source);
        let same = at.is_some_and(|i| self.tracked[i].drawable == target.damage_drawable);
        let at = match at {
            Some(i) if same => i,
            _ => {
                if let Some(i) = at {
                    forget(conn, self.tracked.remove(i));
                }
                if self.tracked.len() >= MAX_TRACKED {
                    forget(conn, self.tracked.remove(0));
                }
                let damage = conn.generate_id()?;
                conn.damage_create(damage, target.damage_drawable, ReportLevel::NON_EMPTY)?
                    .check()?;
                if let Some(top) = target.top {
                    let watch =
                        ChangeWindowAttributesAux::new().event_mask(EventMask::STRUCTURE_NOTIFY);
                    conn.change_window_attributes(top, &watch)?.check()?;
                }
                self.tracked.push(Tracked {
                    source,
                    drawable: target.damage_drawable,
                    damage,
                    top: target.top,
                    size,
                    serial: 0,
                    subtracted_at: 0,
                    notified: false,
                });
                self.tracked.len() - 1
            }
        };
        let tracked = &mut self.tracked[at];
        // Taken before the image: a change during the read shows again next time, never lost.
        let subtract = conn.damage_subtract(tracked.damage, x11rb::NONE, self.region)?;
        tracked.subtracted_at = subtract.sequence_number();
        tracked.notified = false;
        let rects = conn.xfixes_fetch_region(self.region)?.reply()?.rectangles;
        note_damage(conn, &mut self.tracked)?;
        let tracked = &mut self.tracked[at];
        let whole = Rect::new(0, 0, size.0, size.1);
        if !same || tracked.size != size {
            tracked.size = size;
            return Ok(vec![whole]);
        }
        let rects: Vec<Rect> = rects
            .iter()
            .map(|r| Rect::new(r.x.into(), r.y.into(), r.width.into(), r.height.into()))
            .collect();
        Ok(damage_in_frame(&rects, target.damage_area))
    }

    /// Reads `area` of `drawable` into `data` as BGRA.
    fn read(
        &mut self,
        drawable: Drawable,
        area: Rect,
        data: &mut Vec<u8>,
    ) -> Result<(), PlatformError> {
        let pixels = u64::from(area.width) * u64::from(area.height);
        if pixels > MAX_PIXELS || area.width > 32767 || area.height > 32767 {
            return Err(PlatformError::TooLarge(area.width, area.height));
        }
        let len = pixels as usize * 4;
        let (x, y) = (clamp16(area.x), clamp16(area.y));
        let (w, h) = (area.width as u16, area.height as u16);
        data.clear();
        if self.shm_supported && self.shm.as_ref().is_none_or(|s| s.len() < len) {
            if let Some(old) = self.shm.take() {
                old.detach(&self.d.conn);
            }
            // Grown by half again, so that a window being resized does not reallocate each frame.
            match Segment::new(&self.d.conn, len + len / 2) {
                Ok(seg) => self.shm = Some(seg),
                // The server is on another machine, or refuses the memory: use the socket.
                Err(_) => self.shm_supported = false,
            }
        }
        if let Some(seg) = self.shm.as_ref().filter(|_| self.shm_supported) {
            let reply = self
                .d
                .conn
                .shm_get_image(
                    drawable,
                    x,
                    y,
                    w,
                    h,
                    !0,
                    ImageFormat::Z_PIXMAP.into(),
                    seg.seg,
                    0,
                )?
                .reply()?;
            if reply.size as usize != len {
                return Err(PlatformError::PixelFormat(format!(
                    "{} bytes for {w}x{h} pixels",
                    reply.size
                )));
            }
            data.extend_from_slice(seg.bytes(len));
        } else {
            let reply = self
                .d
                .conn
                .get_image(ImageFormat::Z_PIXMAP, drawable, x, y, w, h, !0)?
                .reply()?;
            if reply.data.len() != len {
                return Err(PlatformError::PixelFormat(format!(
                    "{} bytes for {w}x{h} pixels",
                    reply.data.len()
                )));
            }
            data.extend_from_slice(&reply.data);
        }
        // Depth 24 leaves the fourth byte undefined: the picture is opaque.
        for px in data.chunks_exact_mut(4) {
            px[3] = 0xff;
        }
        Ok(())
    }
}

/// Reads the events that have come (no request): a Damage notify sent after the source's last
/// subtract, or a move or resize of its window, marks the source changed.
fn note_damage(conn: &impl Connection, tracked: &mut [Tracked]) -> Result<(), PlatformError> {
    while let Some((event, seq)) = conn.poll_for_event_with_sequence()? {
        let changed = match event {
            Event::DamageNotify(n) => tracked
                .iter_mut()
                .find(|t| t.damage == n.damage && seq >= t.subtracted_at),
            Event::ConfigureNotify(c) => tracked.iter_mut().find(|t| t.top == Some(c.window)),
            Event::UnmapNotify(u) => tracked.iter_mut().find(|t| t.top == Some(u.window)),
            Event::DestroyNotify(d) => tracked.iter_mut().find(|t| t.top == Some(d.window)),
            _ => None,
        };
        if let Some(t) = changed {
            t.notified = true;
        }
    }
    Ok(())
}

/// Stops following a source's changes. Its drawable may be gone already (a closed window):
/// nothing to undo then.
fn forget(conn: &impl Connection, t: Tracked) {
    let _ = conn.damage_destroy(t.damage);
    if let Some(top) = t.top {
        let quiet = ChangeWindowAttributesAux::new().event_mask(EventMask::NO_EVENT);
        let _ = conn.change_window_attributes(top, &quiet);
    }
}

/// The smallest rectangle holding every one of `rects`.
fn bounding(rects: &[Rect]) -> Option<Rect> {
    let first = rects.first()?;
    let (mut x0, mut y0) = (first.x, first.y);
    let (mut x1, mut y1) = (first.x + first.width as i32, first.y + first.height as i32);
    for r in &rects[1..] {
        x0 = x0.min(r.x);
        y0 = y0.min(r.y);
        x1 = x1.max(r.x + r.width as i32);
        y1 = y1.max(r.y + r.height as i32);
    }
    Some(Rect::new(x0, y0, (x1 - x0) as u32, (y1 - y0) as u32))
}

/// Copies the packed BGRA rows of `part` (at `area` of the frame) into `frame`; whether any
/// pixel differed.
fn paste(frame: &mut Frame, area: Rect, part: &[u8]) -> bool {
    let stride = frame.width as usize * 4;
    let row = area.width as usize * 4;
    let mut differs = false;
    for (i, src) in part.chunks_exact(row).enumerate() {
        let at = (area.y as usize + i) * stride + area.x as usize * 4;
        let dst = &mut frame.data[at..at + row];
        if dst != src {
            differs = true;
            dst.copy_from_slice(src);
        }
    }
    differs
}

fn clamp16(v: i32) -> i16 {
    v.clamp(i16::MIN.into(), i16::MAX.into()) as i16
}

impl Capture for X11Capture {
    fn monitors(&mut self) -> Result<Vec<Monitor>, PlatformError> {
        let conn = &self.d.conn;
        let mut out = Vec::new();
        if self.randr {
            for m in conn
                .randr_get_monitors(self.d.root, true)?
                .reply()?
                .monitors
            {
                let name = conn.get_atom_name(m.name)?.reply()?.name;
                out.push(Monitor {
                    id: m.name,
                    name: String::from_utf8_lossy(&name).into_owned(),
                    primary: m.primary,
                    rect: Rect::new(m.x.into(), m.y.into(), m.width.into(), m.height.into()),
                });
            }
        }
        if out.is_empty() {
            // No RandR 1.5, or no monitor reported: the screen is the one monitor.
            out.push(Monitor {
                id: 0,
                name: "screen".into(),
                primary: true,
                rect: self.root_rect()?,
            });
        }
        Ok(out)
    }

    fn windows(&mut self) -> Result<Vec<AppWindow>, PlatformError> {
        windows::app_windows(&self.d)
    }

    fn shown_rect(&mut self, source: Source) -> Result<Rect, PlatformError> {
        match source {
            Source::Window(id) => {
                let window = Window::try_from(id).map_err(|_| PlatformError::NoSuchWindow(id))?;
                Ok(self.app_window(window)?.rect)
            }
            other => {
                let target = self.target(other)?;
                Ok(target.shown)
            }
        }
    }

    fn capture(&mut self, source: Source, frame: &mut Frame) -> Result<(), PlatformError> {
        let target = self.target(source)?;
        let (w, h) = (target.image_area.width, target.image_area.height);
        // The frame holds this source's last picture: only the damage needs reading.
        let last = self.tracked.iter().find(|t| t.source == source);
        let in_place = last.is_some_and(|t| t.serial != 0 && t.serial == frame.serial)
            && (frame.width, frame.height) == (w, h)
            && frame.data.len() == w as usize * h as usize * 4;
        // Until this capture succeeds, the frame is nobody's last picture.
        frame.serial = 0;
        let result = self.damage(source, &target).and_then(|damage| {
            let whole = damage.len() == 1 && damage[0] == Rect::new(0, 0, w, h);
            match bounding(&damage).filter(|_| in_place && !whole) {
                Some(area) => {
                    let mut part = std::mem::take(&mut self.scratch);
                    let read = self.read(
                        target.image_drawable,
                        area.translated(target.image_area.x, target.image_area.y),
                        &mut part,
                    );
                    let differs = read.is_ok() && paste(frame, area, &part);
                    self.scratch = part;
                    read?;
                    frame.damage = if differs { damage } else { Vec::new() };
                }
                None if in_place && damage.is_empty() => frame.damage = damage,
                None => {
                    self.read(target.image_drawable, target.image_area, &mut frame.data)?;
                    frame.damage = damage;
                }
            }
            frame.width = w;
            frame.height = h;
            frame.shown = target.shown;
            frame.serial = NEXT_SERIAL.fetch_add(1, Ordering::Relaxed);
            if let Some(t) = self.tracked.iter_mut().find(|t| t.source == source) {
                t.serial = frame.serial;
            }
            Ok(())
        });
        if let Some(pixmap) = target.pixmap {
            let _ = self.d.conn.free_pixmap(pixmap);
        }
        result
    }

    fn changed(&mut self, source: Source) -> Result<bool, PlatformError> {
        note_damage(&self.d.conn, &mut self.tracked)?;
        Ok(self.notified(source))
    }

    /// Sleeps in `poll` on the X socket (for damage) and the waker's eventfd.
    fn wait(&mut self, changes_of: &[Source], until: Instant) -> Result<(), PlatformError> {
        // Events x11rb has read already would not wake `poll`.
        note_damage(&self.d.conn, &mut self.tracked)?;
        if changes_of.iter().any(|s| self.notified(*s)) {
            return Ok(());
        }
        let watch_display = !changes_of.is_empty();
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        let mut fds = [
            PollFd::new(&*self.wake, PollFlags::IN),
            PollFd::new(self.d.conn.stream(), PollFlags::IN),
        ];
        let watched = if watch_display { 2 } else { 1 };
        super::poll_for(&mut fds[..watched], left)
            .map_err(|e| PlatformError::Protocol(format!("poll: {e}")))?;
        // Reset the eventfd (nothing to read is fine: it was not the waker).
        let _ = rustix::io::read(&*self.wake, &mut [0u8; 8]);
        Ok(())
    }

    fn waker(&self) -> Option<Waker> {
        let wake = self.wake.clone();
        Some(Arc::new(move || {
            let _ = rustix::io::write(&*wake, &1u64.to_ne_bytes());
        }))
    }

    fn cursor(&mut self) -> Result<Cursor, PlatformError> {
        let c = self.d.conn.xfixes_get_cursor_image()?.reply()?;
        let image = c
            .cursor_image
            .iter()
            .flat_map(|p| p.to_le_bytes())
            .collect();
        Ok(Cursor {
            x: c.x.into(),
            y: c.y.into(),
            hot_x: c.xhot.into(),
            hot_y: c.yhot.into(),
            width: c.width.into(),
            height: c.height.into(),
            image,
            serial: c.cursor_serial,
        })
    }
}

impl Drop for X11Capture {
    fn drop(&mut self) {
        let conn = &self.d.conn;
        for t in std::mem::take(&mut self.tracked) {
            forget(conn, t);
        }
        if let Some(seg) = self.shm.take() {
            seg.detach(conn);
        }
        let _ = conn.xfixes_destroy_region(self.region);
        if self.redirected {
            let _ = conn.composite_unredirect_subwindows(self.d.root, Redirect::AUTOMATIC);
        }
        let _ = conn.flush();
    }
}
