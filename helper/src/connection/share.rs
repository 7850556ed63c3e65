//! The screen share's own thread: capture, pacing ([`crate::pace`]) and H.264 encoding, so that
//! a slow picture never holds up the connection. Commands come in on a channel; encoded pictures
//! go out on another, with the picture's size and where it was on the screen (control maps onto
//! that).

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use crate::encode::{AccessUnit, Bgra, Encoder, EncoderSettings};
use crate::pace::{DisplayMode, Next, PaceConfig, Pacer};
use crate::picture::{PictureSize, Rect};
use crate::platform::{Capture, Frame, Source};

/// What the connection tells the share thread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ShareCommand {
    Start(Source),
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
        /// When it was taken, from the share's start, for the RTP timestamp.
        at: Duration,
        picture: PictureSize,
        shown: Rect,
    },
    /// The share cannot go on (the display went away, the window closed).
    Failed(String),
}

/// How often the display's damage reports are read while sharing (no picture is taken to look:
/// a look is a read of the X socket's pending events, microseconds). Short, so that a change
/// after a still period waits little; the pacing decides how often a picture is taken.
const LOOK_EVERY: Duration = Duration::from_millis(10);

/// Runs until the command channel closes. `capture` is the platform's capture.
pub fn run(
    mut capture: impl Capture,
    commands: Receiver<ShareCommand>,
    out: UnboundedSender<ShareOut>,
) {
    let origin = Instant::now();
    let mut source: Option<Source> = None;
    let mut pacer = Pacer::new(PaceConfig::default(), 0, 0);
    let mut encoder: Option<Encoder> = None;
    let mut frame = Frame::default();
    let mut next_look = Instant::now();
    let mut sampling = false;
    // The latest bandwidth estimate: a new share starts from it, not from the default.
    let mut bandwidth: Option<u64> = None;
    loop {
        let command = match source {
            None => commands.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(_) => commands.recv_timeout(next_look.saturating_duration_since(Instant::now())),
        };
        match command {
            Ok(ShareCommand::Start(s)) => {
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
            Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
        let Some(src) = source else { continue };
        let now = Instant::now();
        next_look = now + LOOK_EVERY;
        match capture.changed(src) {
            Ok(true) => pacer.on_change(),
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
                next_look = next_look.min(at);
                continue;
            }
        };
        if c.take_picture || frame.data.is_empty() {
            if let Err(e) = capture.capture(src, &mut frame) {
                source = None;
                let _ = out.send(ShareOut::Failed(e.to_string()));
                continue;
            }
            pacer.on_resize(frame.width, frame.height);
            if frame.damage.is_empty() && !c.even_if_same {
                // Damage that drew the same pixels again: nothing to encode.
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
        match enc.encode(picture, c.options, at.as_millis() as u64) {
            Ok(Some(unit)) => {
                let size = PictureSize {
                    width: unit.width,
                    height: unit.height,
                };
                let sent = out.send(ShareOut::Picture {
                    unit,
                    at,
                    picture: size,
                    shown: frame.shown,
                });
                if sent.is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => {
                let _ = out.send(ShareOut::Failed(e.to_string()));
                source = None;
            }
        }
    }
}

fn mode(sampling: bool) -> DisplayMode {
    if sampling {
        DisplayMode::Sampling
    } else {
        DisplayMode::Standard
    }
}
