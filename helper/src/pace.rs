//! When the helper takes and encodes a picture of the screen, and how (issue 16, item 5).
//!
//! Sans-IO: the shell reports what happened (the screen changed, a keyframe was asked for, a new
//! bandwidth estimate, the CSR's D11 choices) and asks [`Pacer::poll`] what to do now; it gets
//! either a [`Capture`] to do at once or the instant to ask again. The rules:
//!
//! - Nothing is captured or encoded until the screen changes: the shell learns of changes from
//!   the display server (damage), not by taking pictures to compare.
//! - A still screen's last picture is encoded again [`PaceConfig::settle_repeats`] times, once
//!   a second ([`PaceConfig::idle_interval`]): the screen-content rate control refines it, and the
//!   stream, the recorder's timeline and a viewer's decoder see it is alive. After those, once
//!   every [`PaceConfig::still_interval`] only: OpenH264 analyses an unchanged 1080p picture in
//!   full (some 15-35 ms), so once a second would cost 2-3% of a core for nothing to see. Not
//!   rarer than that: a browser that decodes no frame for 3 s asks for a keyframe (libwebrtc's
//!   receive stream), and a keyframe costs more than a repeat. A keyframe asked for on a still
//!   screen does not start the repeats over.
//!   A repeat re-encodes the picture already held ([`Capture::take_picture`] is false).
//! - A changing screen is sent up to [`PaceConfig::max_fps`] times a second.
//! - A keyframe request (PLI, someone joined) is answered at once, but keyframes are at least
//!   [`PaceConfig::min_keyframe_interval`] apart: several viewers asking together cost one.
//! - The bitrate follows the bandwidth estimate (a share of it, clamped to sane bounds). When it
//!   cannot give each picture enough bits, the frame rate drops before quality collapses: each
//!   picture keeps at least the mode's bits per pixel, down to the mode's lowest frame rate.
//! - D11 `standard` (sharp: full resolution, the frame rate gives way) and `sampling` (fast: half
//!   resolution and a lower quality floor, so the frame rate is kept), as the customers' pages do
//!   for browser shares. The colour mode ([`ColourMode`]) is passed to the encoder, which
//!   quantises the picture before encoding (see [`crate::encode::quantise`]).

use std::time::{Duration, Instant};

use crate::encode::{ColourMode, PictureOptions};

/// D11's display mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DisplayMode {
    /// Sharp: full resolution; the frame rate gives way when bandwidth is short.
    #[default]
    Standard,
    /// Fast ("screen sampling"): half resolution, lower quality; the frame rate is kept.
    Sampling,
}

/// The pacing's limits. The defaults suit a support session over a home connection.
#[derive(Debug, Clone, Copy)]
pub struct PaceConfig {
    /// A still screen is sent again this often, [`Self::settle_repeats`] times after a change.
    pub idle_interval: Duration,
    /// How many repeats a still screen gets at [`Self::idle_interval`] before it slows down.
    pub settle_repeats: u32,
    /// A screen still for longer is sent again this often only.
    pub still_interval: Duration,
    /// Most pictures a second while the screen changes.
    pub max_fps: f32,
    /// Keyframes are at least this far apart.
    pub min_keyframe_interval: Duration,
    /// The bitrate before the first estimate.
    pub start_bitrate_bps: u32,
    /// Bounds on the bitrate, whatever the estimate says.
    pub min_bitrate_bps: u32,
    pub max_bitrate_bps: u32,
    /// The share of the bandwidth estimate the screen may use (audio, data channels and packet
    /// overhead need the rest).
    pub estimate_share: f32,
    /// Standard mode: fewest bits a pixel a picture before the frame rate drops, and the lowest
    /// frame rate it drops to.
    pub standard_bits_per_pixel: f32,
    pub standard_min_fps: f32,
    /// Sampling mode: the same, lower quality, higher rate.
    pub sampling_bits_per_pixel: f32,
    pub sampling_min_fps: f32,
}

impl Default for PaceConfig {
    fn default() -> Self {
        Self {
            idle_interval: Duration::from_secs(1),
            settle_repeats: 2,
            still_interval: Duration::from_millis(2500),
            max_fps: 30.0,
            min_keyframe_interval: Duration::from_millis(250),
            start_bitrate_bps: 1_000_000,
            min_bitrate_bps: 150_000,
            max_bitrate_bps: 8_000_000,
            estimate_share: 0.85,
            // 1920x1080 at 30 a second: 2.5 Mbit/s; at 1 Mbit/s, 12 a second.
            standard_bits_per_pixel: 0.04,
            standard_min_fps: 2.0,
            // Half of 1920x1080 at 30 a second: 0.6 Mbit/s.
            sampling_bits_per_pixel: 0.02,
            sampling_min_fps: 10.0,
        }
    }
}

/// Why a picture is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The first picture of the share.
    Start,
    /// A viewer asked for a keyframe.
    KeyframeRequest,
    /// The screen changed.
    Changed,
    /// Nothing changed for [`PaceConfig::idle_interval`] (or [`PaceConfig::still_interval`]).
    Repeat,
}

/// Take a picture now and encode it like this.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Capture {
    pub reason: Reason,
    /// Read the screen first. False for a [`Reason::Repeat`]: nothing changed, so the picture
    /// the shell already holds is the screen.
    pub take_picture: bool,
    /// Encode it even if its pixels turn out the same as the last picture's (a keyframe, a new
    /// size or mode). False when only damage asked for it: damage that redrew the same pixels is
    /// not encoded.
    pub even_if_same: bool,
    /// Ask the encoder for a keyframe.
    pub keyframe: bool,
    /// The screen changed since the last picture (or this is the first): not a repeat, nor a
    /// keyframe of the same picture.
    pub new_picture: bool,
    pub bitrate_bps: u32,
    /// The frame rate the encoder's rate control budgets for.
    pub fps: f32,
    pub options: PictureOptions,
}

/// What the shell does next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    Capture(Capture),
    /// Nothing before this instant (unless the shell reports something first).
    WaitUntil(Instant),
}

/// One screen share's pacing.
#[derive(Debug)]
pub struct Pacer {
    config: PaceConfig,
    mode: DisplayMode,
    colour: ColourMode,
    /// The shared screen's size in pixels.
    width: u32,
    height: u32,
    bitrate_bps: u32,
    last_capture: Option<Instant>,
    last_keyframe: Option<Instant>,
    changed: bool,
    /// A change of size or mode: the next picture is encoded whatever its pixels.
    reshaped: bool,
    keyframe_wanted: bool,
    /// Repeats since the last picture of a change.
    repeats: u32,
}

impl Pacer {
    pub fn new(config: PaceConfig, width: u32, height: u32) -> Self {
        let (lo, hi) = (
            config.min_bitrate_bps,
            config.max_bitrate_bps.max(config.min_bitrate_bps),
        );
        let bitrate_bps = config.start_bitrate_bps.clamp(lo, hi);
        Self {
            config,
            mode: DisplayMode::default(),
            colour: ColourMode::default(),
            width,
            height,
            bitrate_bps,
            last_capture: None,
            last_keyframe: None,
            changed: false,
            reshaped: false,
            keyframe_wanted: true,
            repeats: 0,
        }
    }

    /// The screen changed (damage, a new cursor picture, a moved window).
    pub fn on_change(&mut self) {
        self.changed = true;
    }

    /// A viewer needs a keyframe (PLI, FIR, a late joiner).
    pub fn on_keyframe_request(&mut self) {
        self.keyframe_wanted = true;
    }

    /// The shared area has a new size (another monitor, a resized window): a keyframe follows.
    pub fn on_resize(&mut self, width: u32, height: u32) {
        if (width, height) != (self.width, self.height) {
            (self.width, self.height) = (width, height);
            self.changed = true;
            self.reshaped = true;
        }
    }

    /// The congestion controller's estimate of the path's bandwidth, bits a second.
    pub fn on_bandwidth_estimate(&mut self, bps: u64) {
        let share = (bps as f64 * f64::from(self.config.estimate_share)) as u64;
        let (lo, hi) = (
            u64::from(self.config.min_bitrate_bps),
            u64::from(self.config.max_bitrate_bps),
        );
        self.bitrate_bps = share.clamp(lo, hi.max(lo)) as u32;
    }

    /// D11: standard or sampling. The next picture follows it.
    pub fn set_display_mode(&mut self, mode: DisplayMode) {
        if mode != self.mode {
            self.mode = mode;
            self.changed = true;
            self.reshaped = true;
        }
    }

    /// D11: the colour mode. The next picture follows it.
    pub fn set_colour_mode(&mut self, colour: ColourMode) {
        if colour != self.colour {
            self.colour = colour;
            self.changed = true;
            self.reshaped = true;
        }
    }

    /// The bitrate now in force.
    pub fn bitrate_bps(&self) -> u32 {
        self.bitrate_bps
    }

    /// Pictures a second while the screen changes: as many as the bitrate gives enough bits a
    /// pixel, between the mode's floor and [`PaceConfig::max_fps`].
    pub fn fps(&self) -> f32 {
        let (bits_per_pixel, min_fps, pixels) = match self.mode {
            DisplayMode::Standard => (
                self.config.standard_bits_per_pixel,
                self.config.standard_min_fps,
                self.pixels(),
            ),
            DisplayMode::Sampling => (
                self.config.sampling_bits_per_pixel,
                self.config.sampling_min_fps,
                self.pixels() / 4.0,
            ),
        };
        // Settings come from configuration: a NaN or inverted bound must not stall or panic.
        let max = finite_or(self.config.max_fps, 30.0).clamp(0.5, 60.0);
        let min = finite_or(min_fps, max).clamp(0.5, max);
        let affordable = self.bitrate_bps as f32 / (pixels.max(1.0) * bits_per_pixel.max(1e-6));
        finite_or(affordable, max).clamp(min, max)
    }

    fn pixels(&self) -> f32 {
        self.width as f32 * self.height as f32
    }

    /// What to do at `now`. A returned [`Capture`] is taken to happen at `now`.
    pub fn poll(&mut self, now: Instant) -> Next {
        let Some(last) = self.last_capture else {
            return Next::Capture(self.capture(now, Reason::Start, true));
        };
        let keyframe_at = self
            .last_keyframe
            .map_or(now, |k| k + self.config.min_keyframe_interval);
        let frame_interval = Duration::from_secs_f32(1.0 / self.fps());
        let frame_at = last + frame_interval;
        let idle = if self.repeats < self.config.settle_repeats {
            self.config.idle_interval
        } else {
            self.config.still_interval.max(self.config.idle_interval)
        };
        let repeat_at = last + idle.max(frame_interval);
        let keyframe_due = self.keyframe_wanted && now >= keyframe_at;
        if keyframe_due {
            return Next::Capture(self.capture(now, Reason::KeyframeRequest, true));
        }
        if self.changed && now >= frame_at {
            return Next::Capture(self.capture(now, Reason::Changed, false));
        }
        if now >= repeat_at {
            return Next::Capture(self.capture(now, Reason::Repeat, false));
        }
        let mut wake = repeat_at;
        if self.changed {
            wake = wake.min(frame_at);
        }
        if self.keyframe_wanted {
            wake = wake.min(keyframe_at);
        }
        Next::WaitUntil(wake)
    }

    fn capture(&mut self, now: Instant, reason: Reason, keyframe: bool) -> Capture {
        self.last_capture = Some(now);
        let take_picture = reason != Reason::Repeat;
        // A new picture starts the settle repeats over; a keyframe of the same one does not.
        let new_picture = self.changed || reason == Reason::Start;
        self.changed = false;
        let even_if_same = reason != Reason::Changed || keyframe || self.reshaped;
        self.reshaped = false;
        self.repeats = if new_picture {
            0
        } else {
            self.repeats.saturating_add(1)
        };
        if keyframe {
            self.last_keyframe = Some(now);
            self.keyframe_wanted = false;
        }
        Capture {
            reason,
            take_picture,
            even_if_same,
            keyframe,
            new_picture,
            bitrate_bps: self.bitrate_bps,
            fps: self.fps(),
            options: PictureOptions {
                half: self.mode == DisplayMode::Sampling,
                colour: self.colour,
            },
        }
    }
}

fn finite_or(value: f32, fallback: f32) -> f32 {
    if value.is_finite() { value } else { fallback }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives `pacer` for `secs` seconds of simulated time from `start`, calling `on_change`
    /// before every poll when `changing` (a screen in constant motion); returns the captures.
    fn run(
        pacer: &mut Pacer,
        start: Instant,
        secs: f32,
        changing: bool,
    ) -> Vec<(Duration, Capture)> {
        let end = start + Duration::from_secs_f32(secs);
        let mut now = start;
        let mut out = Vec::new();
        while now < end {
            if changing {
                pacer.on_change();
            }
            match pacer.poll(now) {
                Next::Capture(c) => {
                    let again = out.last().is_some_and(|(at, _)| *at == now - start);
                    assert!(!again, "two pictures at {:?}", now - start);
                    out.push((now - start, c));
                }
                Next::WaitUntil(t) => {
                    assert!(t > now, "a wait into the past at {:?}", now - start);
                    now = t;
                }
            }
        }
        out
    }

    fn hd() -> Pacer {
        Pacer::new(PaceConfig::default(), 1920, 1080)
    }

    #[test]
    fn a_still_screen_is_repeated_twice_a_second_apart_then_every_2_5_s_without_a_new_picture() {
        let mut pacer = hd();
        let caps = run(&mut pacer, Instant::now(), 10.0, false);
        assert_eq!(caps[0].1.reason, Reason::Start);
        assert!(caps[0].1.keyframe && caps[0].1.take_picture);
        let at: Vec<u128> = caps.iter().map(|(at, _)| at.as_millis()).collect();
        // Never 3 s without a picture: a browser would ask for a keyframe.
        assert_eq!(at, [0, 1000, 2000, 4500, 7000, 9500], "{caps:?}");
        for (_, c) in &caps[1..] {
            assert_eq!(c.reason, Reason::Repeat);
            assert!(!c.keyframe);
            assert!(!c.take_picture, "a repeat reads no pixels");
        }
    }

    #[test]
    fn a_keyframe_asked_for_on_a_still_screen_does_not_start_the_repeats_over() {
        let start = Instant::now();
        let mut pacer = hd();
        let caps = run(&mut pacer, start, 3.0, false);
        assert_eq!(caps.len(), 3, "{caps:?}");
        let asked = start + Duration::from_millis(3000);
        pacer.on_keyframe_request();
        let Next::Capture(c) = pacer.poll(asked) else {
            panic!("the keyframe waits")
        };
        assert_eq!((c.reason, c.keyframe), (Reason::KeyframeRequest, true));
        // The next is 2.5 s on, not a settle repeat 1 s on.
        let caps = run(&mut pacer, asked, 2.6, false);
        let at: Vec<u128> = caps.iter().map(|(at, _)| at.as_millis()).collect();
        assert_eq!(at, [2500], "{caps:?}");
    }

    #[test]
    fn nothing_is_captured_while_nothing_changes_and_a_change_is_captured_at_once() {
        let start = Instant::now();
        let mut pacer = hd();
        let _ = pacer.poll(start);
        // 100 polls over 0.9 s with no change: no capture at all (the shell takes no picture).
        for i in 1..=90 {
            let now = start + Duration::from_millis(i * 10);
            assert!(matches!(pacer.poll(now), Next::WaitUntil(_)), "at {i}0 ms");
        }
        pacer.on_change();
        let now = start + Duration::from_millis(905);
        let Next::Capture(c) = pacer.poll(now) else {
            panic!("the change waits")
        };
        assert_eq!((c.reason, c.take_picture), (Reason::Changed, true));
        assert!(!c.even_if_same, "damage alone: same pixels are not encoded");
        // After the change, the slow still cadence starts over: repeats at 1 s and 2 s.
        let caps = run(&mut pacer, now, 3.5, false);
        let at: Vec<u128> = caps.iter().map(|(at, _)| at.as_millis()).collect();
        assert_eq!(at, [1000, 2000], "{caps:?}");
    }

    #[test]
    fn a_changing_screen_is_sent_up_to_30_times_a_second_with_bandwidth() {
        let mut pacer = hd();
        pacer.on_bandwidth_estimate(20_000_000);
        let caps = run(&mut pacer, Instant::now(), 2.0, true);
        // The start picture, then one every 1/30 s.
        assert!((59..=61).contains(&caps.len()), "{}", caps.len());
        assert!(
            caps[1..]
                .iter()
                .all(|(_, c)| c.reason == Reason::Changed && !c.keyframe)
        );
        assert_eq!(caps[5].1.bitrate_bps, 8_000_000, "clamped to the maximum");
    }

    #[test]
    fn a_change_after_a_still_period_is_sent_at_once() {
        let start = Instant::now();
        let mut pacer = hd();
        run(&mut pacer, start, 0.5, false);
        pacer.on_change();
        let now = start + Duration::from_millis(500);
        assert!(matches!(
            pacer.poll(now),
            Next::Capture(Capture {
                reason: Reason::Changed,
                ..
            })
        ));
    }

    #[test]
    fn keyframe_requests_are_answered_at_once_but_spaced() {
        let start = Instant::now();
        let mut pacer = hd();
        let _ = pacer.poll(start);
        // 100 ms later: too soon after the start keyframe, so it waits until 250 ms.
        pacer.on_keyframe_request();
        let t100 = start + Duration::from_millis(100);
        assert_eq!(
            pacer.poll(t100),
            Next::WaitUntil(start + Duration::from_millis(250))
        );
        let Next::Capture(c) = pacer.poll(start + Duration::from_millis(250)) else {
            panic!()
        };
        assert_eq!((c.reason, c.keyframe), (Reason::KeyframeRequest, true));
        // Two seconds on: answered in the same instant, even right after another picture.
        let t2 = start + Duration::from_secs(2);
        pacer.on_change();
        assert!(matches!(
            pacer.poll(t2),
            Next::Capture(Capture {
                keyframe: false,
                ..
            })
        ));
        pacer.on_keyframe_request();
        pacer.on_keyframe_request();
        let Next::Capture(c) = pacer.poll(t2) else {
            panic!("not at once")
        };
        assert!(c.keyframe);
        assert!(
            matches!(pacer.poll(t2), Next::WaitUntil(_)),
            "two requests, one keyframe"
        );
    }

    #[test]
    fn the_bitrate_follows_the_estimate_within_bounds() {
        let mut pacer = hd();
        assert_eq!(pacer.bitrate_bps(), 1_000_000);
        pacer.on_bandwidth_estimate(2_000_000);
        assert_eq!(pacer.bitrate_bps(), 1_700_000);
        pacer.on_bandwidth_estimate(1_000);
        assert_eq!(pacer.bitrate_bps(), 150_000);
        pacer.on_bandwidth_estimate(u64::MAX);
        assert_eq!(pacer.bitrate_bps(), 8_000_000);
    }

    #[test]
    fn less_bandwidth_lowers_the_frame_rate_before_the_quality() {
        let mut pacer = hd();
        let mut last = f32::MAX;
        for bps in [
            20_000_000, 3_000_000, 1_500_000, 800_000, 400_000, 200_000, 100_000,
        ] {
            pacer.on_bandwidth_estimate(bps);
            let fps = pacer.fps();
            let bits_per_pixel = pacer.bitrate_bps() as f32 / fps / (1920.0 * 1080.0);
            assert!(fps <= last, "{bps}: {fps} after {last}");
            if fps > 2.0 {
                assert!(
                    bits_per_pixel >= 0.0399,
                    "{bps}: {bits_per_pixel} bits a pixel at {fps}"
                );
            }
            last = fps;
        }
        assert_eq!(last, 2.0, "the standard mode's floor");
        let caps = run(&mut pacer, Instant::now(), 3.0, true);
        assert!((6..=7).contains(&caps.len()), "{}", caps.len());
    }

    #[test]
    fn sampling_halves_the_picture_and_keeps_the_frame_rate() {
        let config = PaceConfig {
            min_bitrate_bps: 50_000,
            ..PaceConfig::default()
        };
        let mut pacer = Pacer::new(config, 1920, 1080);
        pacer.on_bandwidth_estimate(1_000_000);
        let standard = pacer.fps();
        pacer.set_display_mode(DisplayMode::Sampling);
        let sampling = pacer.fps();
        assert!(standard < 15.0, "{standard}");
        assert_eq!(sampling, 30.0);
        let Next::Capture(c) = pacer.poll(Instant::now()) else {
            panic!()
        };
        assert!(c.options.half);
        pacer.on_bandwidth_estimate(60_000);
        assert_eq!(pacer.fps(), 10.0, "the sampling mode's floor");
    }

    #[test]
    fn mode_changes_and_resizes_are_sent_at_the_next_frame_time() {
        let start = Instant::now();
        let mut pacer = hd();
        let _ = pacer.poll(start);
        let later = start + Duration::from_millis(100);
        assert!(matches!(pacer.poll(later), Next::WaitUntil(_)));
        pacer.set_colour_mode(ColourMode::Colours256);
        let Next::Capture(c) = pacer.poll(later) else {
            panic!()
        };
        assert_eq!(c.options.colour, ColourMode::Colours256);
        assert!(
            c.even_if_same,
            "a new mode is encoded even on a still screen"
        );
        pacer.on_resize(1280, 720);
        assert!(matches!(
            pacer.poll(later + Duration::from_millis(100)),
            Next::Capture(_)
        ));
        pacer.on_resize(1280, 720);
        assert!(matches!(
            pacer.poll(later + Duration::from_millis(200)),
            Next::WaitUntil(_)
        ));
    }

    #[test]
    fn degenerate_settings_never_stall_or_panic() {
        let config = PaceConfig {
            max_fps: 0.0,
            idle_interval: Duration::ZERO,
            min_keyframe_interval: Duration::ZERO,
            min_bitrate_bps: 10,
            max_bitrate_bps: 0,
            standard_bits_per_pixel: 0.0,
            standard_min_fps: f32::NAN,
            ..PaceConfig::default()
        };
        let mut pacer = Pacer::new(config, 0, 0);
        pacer.on_bandwidth_estimate(0);
        let caps = run(&mut pacer, Instant::now(), 5.0, true);
        assert!(!caps.is_empty());
        assert!(caps.iter().all(|(_, c)| c.fps.is_finite() && c.fps > 0.0));
    }
}
