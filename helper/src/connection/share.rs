//! The screen share's own thread: capture, pacing ([`crate::pace`]) and H.264 encoding, so that
//! a slow picture never holds up the connection. Commands come in on a channel; encoded pictures
//! go out on another, with the picture's size and where it was on the screen (control maps onto
//! that).

use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use crate::encode::{AccessUnit, Bgra, Encoder, EncoderSettings};
use crate::pace::{DisplayMode, Next, PaceConfig, Pacer};
use crate::picture::tiles::{Placement, lay_out};
use crate::picture::{PictureSize, Rect};
use crate::platform::{AppWindow, Capture, Frame, PlatformError, Source, Waker};

/// What the connection tells the share thread.
#[derive(Debug, Clone, PartialEq)]
pub enum ShareCommand {
    Start(Source),
    /// D6: share these windows only, in one picture ([`crate::picture::tiles`]).
    Windows(Vec<u64>),
    /// D6: list the application windows (answered with [`ShareOut::Windows`]).
    ListWindows,
    Stop,
    Keyframe,
    /// The bandwidth estimate, bits a second.
    Bandwidth(u64),
    Sampling(bool),
}

/// What the share thread tells the connection.
#[derive(Debug)]
pub enum ShareOut {
    Picture {
        unit: AccessUnit,
        /// It shows a change (not a repeat of a still screen, nor its keyframe again).
        fresh: bool,
        /// When it was taken, from the share's start, for the RTP timestamp.
        at: Duration,
        picture: PictureSize,
        shown: Rect,
    },
    /// The share cannot go on (the display went away, the window closed).
    Failed(String),
    /// D6: the application windows open now.
    Windows(Vec<AppWindow>),
    /// D6: where the chosen windows are in the picture and on the screen, when that changed;
    /// no tile: every chosen window closed, and the share stopped.
    Placed(Placement),
}

/// Set (to anything) to print where each picture's time went on stderr: from the damage seen to
/// the picture taken, encoded and handed to the connection (docs/performance.md, glass to glass).
pub const TIMING_ENV: &str = "TANDEM_HELPER_TIMING";

/// The connection's end of a running share thread. Dropping it ends the thread.
pub struct Share {
    commands: Option<Sender<ShareCommand>>,
    /// A command wakes the thread from its wait on the display ([`Capture::wait`]).
    waker: Option<Waker>,
    thread: Option<JoinHandle<()>>,
    /// Where its pictures' times count from (the RTP timestamps).
    origin: Instant,
}

impl Share {
    /// Where its pictures' times count from: a share that takes over the same video track
    /// (M4's other display) counts from here too, so the timestamps go on rising.
    pub fn origin(&self) -> Instant {
        self.origin
    }

    pub fn send(&self, command: ShareCommand) {
        if let Some(c) = &self.commands {
            let _ = c.send(command);
        }
        if let Some(wake) = &self.waker {
            wake();
        }
    }

    /// Ends the thread and waits for it.
    pub fn stop(mut self) {
        self.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    fn close(&mut self) {
        self.commands = None;
        if let Some(wake) = &self.waker {
            wake();
        }
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        self.close();
    }
}

/// Starts the share thread with the platform's capture; it sends what it makes on `out`.
pub fn spawn(
    capture: impl Capture + Send + 'static,
    out: UnboundedSender<ShareOut>,
) -> std::io::Result<Share> {
    spawn_at(capture, out, Instant::now())
}

/// [`spawn`], with the pictures' times counted from `origin`.
pub fn spawn_at(
    capture: impl Capture + Send + 'static,
    out: UnboundedSender<ShareOut>,
    origin: Instant,
) -> std::io::Result<Share> {
    let (tx, rx) = std::sync::mpsc::channel();
    let waker = capture.waker();
    let thread = std::thread::Builder::new()
        .name("share".into())
        .spawn(move || run(capture, rx, out, origin))?;
    Ok(Share {
        commands: Some(tx),
        waker,
        thread: Some(thread),
        origin,
    })
}

/// Runs until the command channel closes.
fn run(
    mut capture: impl Capture,
    commands: Receiver<ShareCommand>,
    out: UnboundedSender<ShareOut>,
    origin: Instant,
) {
    let mut source: Option<Source> = None;
    let mut windows = Windows::default();
    let mut pacer = Pacer::new(PaceConfig::default(), 0, 0);
    let mut encoder: Option<Encoder> = None;
    let mut frame = Frame::default();
    let mut next_look = Instant::now();
    // Whether the wait until `next_look` ends early on a change of the display: not while a
    // change already seen waits for the pacing.
    let mut watch = true;
    let mut sampling = false;
    // The latest bandwidth estimate: a new share starts from it, not from the default.
    let mut bandwidth: Option<u64> = None;
    let timing = std::env::var_os(TIMING_ENV).is_some();
    // When the change the next picture shows was first seen.
    let mut seen: Option<Instant> = None;
    loop {
        let command = match source {
            None => commands.recv().map_err(|_| TryRecvError::Disconnected),
            Some(_) => commands.try_recv(),
        };
        match command {
            Ok(ShareCommand::Windows(chosen)) => {
                windows = Windows {
                    chosen,
                    ..Windows::default()
                };
                // The pacing and encoder start again, as for a new source.
                source = Some(WINDOWS);
                pacer = Pacer::new(PaceConfig::default(), 0, 0);
                pacer.set_display_mode(mode(sampling));
                encoder = None;
                next_look = Instant::now();
                continue;
            }
            Ok(ShareCommand::ListWindows) => {
                let list = capture.windows().unwrap_or_default();
                let _ = out.send(ShareOut::Windows(list));
                continue;
            }
            Ok(ShareCommand::Start(s)) => {
                windows = Windows::default();
                source = Some(s);
                // Its size now, so that the first picture's size is no change to send again.
                let size = capture
                    .shown_rect(s)
                    .map_or((0, 0), |r| (r.width, r.height));
                pacer = Pacer::new(PaceConfig::default(), size.0, size.1);
                if let Some(bps) = bandwidth {
                    pacer.on_bandwidth_estimate(bps);
                }
                pacer.set_display_mode(mode(sampling));
                encoder = None;
                next_look = Instant::now();
                continue;
            }
            Ok(ShareCommand::Stop) => {
                source = None;
                encoder = None;
                continue;
            }
            Ok(ShareCommand::Keyframe) => {
                pacer.on_keyframe_request();
                continue;
            }
            Ok(ShareCommand::Bandwidth(bps)) => {
                bandwidth = Some(bps);
                pacer.on_bandwidth_estimate(bps);
                continue;
            }
            Ok(ShareCommand::Sampling(s)) => {
                sampling = s;
                pacer.set_display_mode(mode(s));
                continue;
            }
            Err(TryRecvError::Disconnected) => return,
            Err(TryRecvError::Empty) => {}
        }
        let Some(src) = source else { continue };
        if Instant::now() < next_look {
            // Until the pacing's time, a command or (on a still screen) a change.
            let changes_of = match (watch, src == WINDOWS) {
                (false, _) => Vec::new(),
                (true, false) => vec![src],
                (true, true) => windows.sources(),
            };
            if let Err(e) = capture.wait(&changes_of, next_look) {
                source = None;
                let _ = out.send(ShareOut::Failed(e.to_string()));
                continue;
            }
            // Looked at again at once: the wait ended for a reason.
            next_look = Instant::now();
            continue;
        }
        let now = Instant::now();
        // A picture taken now is looked after again at once (the pacing then says until when
        // to wait).
        next_look = now;
        let windows_taken = src == WINDOWS;
        // A change is seen and waits for the pacing.
        let mut change_known = false;
        let changed = if windows_taken {
            // D6: the chosen windows are taken again (each from its own pixmap, only its damage
            // read) when one of them changed, moved or closed.
            windows.changed(&mut capture).and_then(|changed| {
                if !changed {
                    return Ok(false);
                }
                windows.capture(&mut capture, &mut frame, &out)?;
                pacer.on_resize(frame.width, frame.height);
                Ok(!frame.damage.is_empty())
            })
        } else {
            capture.changed(src)
        };
        match changed {
            Ok(true) => {
                seen.get_or_insert(now);
                pacer.on_change();
                change_known = true;
            }
            Ok(false) => {}
            Err(e) => {
                source = None;
                let _ = out.send(ShareOut::Failed(e.to_string()));
                continue;
            }
        }
        let c = match pacer.poll(now) {
            Next::Capture(c) => c,
            Next::WaitUntil(at) => {
                next_look = at;
                watch = !change_known;
                continue;
            }
        };
        if windows_taken {
            // Taken at this look already: the pacing said when to encode it.
        } else if c.take_picture || frame.data.is_empty() {
            let was_shown = frame.shown;
            if let Err(e) = capture.capture(src, &mut frame) {
                source = None;
                let _ = out.send(ShareOut::Failed(e.to_string()));
                continue;
            }
            pacer.on_resize(frame.width, frame.height);
            if frame.damage.is_empty() && !c.even_if_same && frame.shown == was_shown {
                // Damage that drew the same pixels again: nothing to encode. (A window that
                // moved is sent again: control maps onto where it is now.)
                continue;
            }
        } else if let Ok(shown) = capture.shown_rect(src) {
            // A repeat reads no pixels, but a window may have moved: control maps onto this.
            frame.shown = shown;
        }
        let enc = match &mut encoder {
            Some(e) => e,
            None => match Encoder::new(EncoderSettings {
                bitrate_bps: c.bitrate_bps,
                max_fps: c.fps,
                ..EncoderSettings::default()
            }) {
                Ok(e) => encoder.insert(e),
                Err(e) => {
                    source = None;
                    let _ = out.send(ShareOut::Failed(e.to_string()));
                    continue;
                }
            },
        };
        let settings = enc.settings();
        if settings.bitrate_bps != c.bitrate_bps {
            let _ = enc.set_bitrate(c.bitrate_bps);
        }
        if (settings.max_fps - c.fps).abs() > 0.5 {
            let _ = enc.set_max_frame_rate(c.fps);
        }
        if c.keyframe {
            enc.request_keyframe();
        }
        let at = now.duration_since(origin);
        let picture = Bgra::packed(&frame.data, frame.width, frame.height);
        let taken = Instant::now();
        match enc.encode(picture, c.options, at.as_millis() as u64) {
            Ok(Some(unit)) => {
                if timing {
                    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
                    let waited = seen
                        .take()
                        .map_or(0.0, |s| ms(now.saturating_duration_since(s)));
                    eprintln!(
                        "timing picture: seen to poll {waited:.1} ms, capture {:.1} ms, encode {:.1} ms, {} bytes, {} kbit/s",
                        ms(taken - now),
                        ms(taken.elapsed()),
                        unit.data.len(),
                        c.bitrate_bps / 1000,
                    );
                }
                let size = PictureSize {
                    width: unit.width,
                    height: unit.height,
                };
                let sent = out.send(ShareOut::Picture {
                    unit,
                    fresh: c.new_picture,
                    at,
                    picture: size,
                    shown: frame.shown,
                });
                if sent.is_err() {
                    return;
                }
            }
            Ok(None) => {
                if timing {
                    // The encoder's rate control skipped the picture: the change shows only
                    // with a later one.
                    eprintln!(
                        "timing picture: skipped by the encoder after {:.1} ms, {} kbit/s",
                        taken.elapsed().as_secs_f64() * 1000.0,
                        c.bitrate_bps / 1000
                    );
                }
            }
            Err(e) => {
                let _ = out.send(ShareOut::Failed(e.to_string()));
                source = None;
            }
        }
    }
}

/// The source the chosen windows are shared as (never captured as such: see [`Windows`]).
const WINDOWS: Source = Source::Window(u64::MAX);

/// D6: the chosen windows, each captured from its own Composite pixmap (so an unchosen window
/// lying over one is never in the picture), composed side by side into one picture.
#[derive(Default)]
struct Windows {
    chosen: Vec<u64>,
    frames: Vec<Frame>,
    placement: Placement,
}

impl Windows {
    fn sources(&self) -> Vec<Source> {
        self.chosen.iter().map(|&w| Source::Window(w)).collect()
    }

    /// Whether one of the chosen windows changed, moved or closed since it was taken (true
    /// before the first time).
    fn changed(&self, capture: &mut impl Capture) -> Result<bool, PlatformError> {
        if self.frames.len() != self.chosen.len() {
            return Ok(true);
        }
        for &w in &self.chosen {
            if capture.changed(Source::Window(w))? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Captures each chosen window and composes them into `frame`. A window that closed leaves
    /// the picture; when none is left the share ends (an error, after [`ShareOut::Placed`] says
    /// so).
    fn capture(
        &mut self,
        capture: &mut impl Capture,
        frame: &mut Frame,
        out: &UnboundedSender<ShareOut>,
    ) -> Result<(), PlatformError> {
        self.frames.resize_with(self.chosen.len(), Frame::default);
        let mut i = 0;
        while i < self.chosen.len() {
            match capture.capture(Source::Window(self.chosen[i]), &mut self.frames[i]) {
                Ok(()) => i += 1,
                Err(PlatformError::NoSuchWindow(_)) => {
                    self.chosen.remove(i);
                    self.frames.remove(i);
                }
                Err(e) => return Err(e),
            }
        }
        let placed: Vec<(u64, Rect)> = self
            .chosen
            .iter()
            .zip(&self.frames)
            .map(|(w, f)| (*w, Rect::new(f.shown.x, f.shown.y, f.width, f.height)))
            .collect();
        let placement = lay_out(&placed);
        let moved = placement != self.placement;
        if moved {
            let _ = out.send(ShareOut::Placed(placement.clone()));
        }
        let Some(size) = placement.size else {
            self.placement = placement;
            return Err(PlatformError::NoSuchWindow(0));
        };
        let resized = self.placement.size != placement.size
            || self
                .placement
                .tiles
                .iter()
                .map(|t| t.at)
                .ne(placement.tiles.iter().map(|t| t.at));
        frame.width = size.width;
        frame.height = size.height;
        frame.shown = Rect::new(0, 0, size.width, size.height);
        let row = size.width as usize * 4;
        if resized {
            frame.data.clear();
            // Black where no window is: alpha 255, as every captured pixel.
            frame.data.extend(
                std::iter::repeat_n([0, 0, 0, 0xff], row / 4 * size.height as usize).flatten(),
            );
        }
        frame.damage.clear();
        for (tile, f) in placement.tiles.iter().zip(&self.frames) {
            let (x, y) = (tile.at.x as usize, tile.at.y as usize);
            let width = f.width as usize * 4;
            for r in 0..f.height as usize {
                let to = (y + r) * row + x * 4;
                frame.data[to..to + width].copy_from_slice(&f.data[r * width..(r + 1) * width]);
            }
            frame
                .damage
                .extend(f.damage.iter().map(|d| d.translated(tile.at.x, tile.at.y)));
        }
        if resized {
            frame.damage = vec![frame.shown];
        }
        self.placement = placement;
        Ok(())
    }
}

fn mode(sampling: bool) -> DisplayMode {
    if sampling {
        DisplayMode::Sampling
    } else {
        DisplayMode::Standard
    }
}
