//! Converts an ARF recording (docs/arf.md) to an MP4 that any player opens: H.264 video of the
//! shared screen (or, while nothing is shared, a camera) with the annotations and the remote
//! pointer drawn in, and the voice mix as AAC, in sync on the recording's arrival clock.
//!
//! - Video: the newest shared screen (`screen-*` tracks), else the newest camera (`camera-*`),
//!   each starting at its first keyframe; one fixed output size (the first shown source's,
//!   capped at `max_width` x `max_height`), later sources and resolution changes letterboxed
//!   into it; the last picture while a source sends nothing, black while nothing is shown.
//! - Audio: the `voice-mix` track, silence wherever nothing was recorded. A recording without
//!   voice still gets a silent AAC track, so that players and editors treat all exports alike.
//! - The file is written beside the output as `NAME.partial` (fast-start: the index before the
//!   media) and renamed only once complete, so a failed export never leaves a partial MP4.
//!
//! GStreamer does the decoding, scaling and encoding; the caller's thread drives it record by
//! record, so memory stays flat whatever the recording's length. What one export may take is
//! bounded: no frame larger than `max_source_width` x `max_source_height` reaches a decoder
//! (its header is read first), at most `MAX_LOOKAHEAD_BYTES` of video wait in the lookahead,
//! and [`export_with`] stops between frames when its caller cancels it or its time is up.

mod audio;
mod decode;
mod draw;
mod encode;
mod error;
mod export;
mod gst;
#[cfg(feature = "testkit")]
pub mod testkit;

use std::fmt;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

pub use error::ExportError;
pub use export::MAX_LOOKAHEAD_BYTES;

/// How to export; `Default` suits a screen share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportOptions {
    /// The output size is the first shown source's, scaled down to fit in these (even sizes).
    pub max_width: u32,
    pub max_height: u32,
    /// A fixed output size instead (rounded down to even).
    pub size: Option<(u32, u32)>,
    /// Output frames per second (1 to 60).
    pub fps: u32,
    /// x264's constant-quality factor (0 best to 50); 23 keeps screen text sharp.
    pub quality: u32,
    /// AAC bit rate in bits per second; the voice mix is mono.
    pub audio_bitrate: u32,
    /// Largest picture a source frame may declare (16x16 to 16384x16384); a larger one fails
    /// the export before it is decoded, since a decoder allocates what a keyframe claims.
    pub max_source_width: u32,
    pub max_source_height: u32,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            max_width: 1920,
            max_height: 1080,
            size: None,
            fps: 25,
            quality: 23,
            audio_bitrate: 64_000,
            max_source_width: 3840,
            max_source_height: 2160,
        }
    }
}

impl ExportOptions {
    fn validate(&self) -> Result<(), ExportError> {
        if !(1..=60).contains(&self.fps) {
            return Err(ExportError::Options("fps must be 1 to 60"));
        }
        if self.quality > 50 {
            return Err(ExportError::Options("quality must be 0 to 50"));
        }
        if !(16_000..=320_000).contains(&self.audio_bitrate) {
            return Err(ExportError::Options(
                "audio_bitrate must be 16000 to 320000",
            ));
        }
        let sizes = [Some((self.max_width, self.max_height)), self.size];
        if sizes
            .into_iter()
            .flatten()
            .any(|(w, h)| !(16..=7680).contains(&w) || !(16..=4320).contains(&h))
        {
            return Err(ExportError::Options("sizes must be 16x16 to 7680x4320"));
        }
        let source = 16..=16384;
        if !source.contains(&self.max_source_width) || !source.contains(&self.max_source_height) {
            return Err(ExportError::Options(
                "source limits must be 16x16 to 16384x16384",
            ));
        }
        Ok(())
    }
}

/// What an export did.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct ExportReport {
    /// The recording's length: the arrival time of its last record.
    pub duration_us: u64,
    /// The length of the MP4's streams (the recording's, rounded up to a whole frame).
    pub exported_us: u64,
    pub wall: Duration,
    /// Seconds of recording exported per second of wall time.
    pub speed: f64,
    pub output_bytes: u64,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Video frames in the recording, of all video tracks.
    pub frames_in: u64,
    pub frames_decoded: u64,
    /// Frames before a track's first keyframe, which cannot be decoded.
    pub frames_skipped: u64,
    pub frames_out: u64,
    pub audio_packets: u64,
    /// Whether the recording has a voice track (otherwise the audio is silent).
    pub voice: bool,
    /// Times the picture changed to another source after the first one.
    pub source_switches: u32,
    pub annotations: u64,
    pub pointer_moves: u64,
    /// Annotation or pointer events that were malformed (the viewer ignores them too).
    pub ignored_events: u64,
    /// Damaged frames or packets that the decoders skipped.
    pub decode_warnings: u64,
    /// The recording ended in a torn block (the recorder crashed): everything before it was
    /// exported, the torn part could not be.
    pub truncated: bool,
}

impl fmt::Display for ExportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exported {:.1} s of {:.1} s in {:.1} s ({:.1}x realtime), {}x{} at {} fps, {} bytes; \
             video frames {} in, {} decoded, {} out; {} audio packets; {} source switches{}",
            self.exported_us as f64 / 1e6,
            self.duration_us as f64 / 1e6,
            self.wall.as_secs_f64(),
            self.speed,
            self.width,
            self.height,
            self.fps,
            self.output_bytes,
            self.frames_in,
            self.frames_decoded,
            self.frames_out,
            self.audio_packets,
            self.source_switches,
            if self.truncated {
                "; the recording is truncated"
            } else {
                ""
            },
        )
    }
}

/// Initialises GStreamer and checks that every element the export uses is installed, so that a
/// server can refuse to start (or disable exports) with a message naming the missing package.
/// Called by `export` too; cheap after the first call.
pub fn init() -> Result<(), ExportError> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| gstreamer::init().map_err(|e| e.to_string()))
        .clone()
        .map_err(ExportError::Init)?;
    gst::require_all()
}

/// Converts the ARF recording at `input` to an MP4 at `output`, reporting the fraction of the
/// recording done (0 to 1) through `progress`. Blocking: it runs on the caller's thread (a
/// server calls it from a blocking task) and starts GStreamer threads of its own.
///
/// On failure nothing is left at `output` (an existing file there is kept as it was).
pub fn export(
    input: &Path,
    output: &Path,
    options: &ExportOptions,
    progress: &mut dyn FnMut(f64),
) -> Result<ExportReport, ExportError> {
    let never = || false;
    let stop = Stop {
        cancelled: &never,
        time_allowed: &|_| Duration::MAX,
    };
    export::run(input, output, options, progress, &stop)
}

/// What ends an export early; both are asked between records and between output frames, so an
/// export stops within one frame's work.
pub struct Stop<'a> {
    /// True once the export is no longer wanted (its recording was deleted, the server is
    /// stopping): it fails with `ExportError::Cancelled`.
    pub cancelled: &'a (dyn Fn() -> bool + Sync),
    /// The wall-clock time the export may take, given the recording's length; past it, it
    /// fails with `ExportError::TimedOut`.
    pub time_allowed: &'a (dyn Fn(Duration) -> Duration + Sync),
}

/// `export`, stopped early as `stop` says. On any failure, cancellation included, nothing is
/// left at `output`.
pub fn export_with(
    input: &Path,
    output: &Path,
    options: &ExportOptions,
    progress: &mut dyn FnMut(f64),
    stop: &Stop<'_>,
) -> Result<ExportReport, ExportError> {
    export::run(input, output, options, progress, stop)
}
