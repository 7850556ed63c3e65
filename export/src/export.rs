//! The export itself: one pass over the recording in arrival order, decoding as it goes, and
//! one output frame per tick of the output frame rate.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::io::{BufReader, ErrorKind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;
use tandem_arf::{Codec, Index, Limits, Media, Reader, Record, Track, TrackKind};

use crate::audio::{RATE, TimeMap, Timeline, sample_at};
use crate::decode::{opus_decoder, scaler, video_decoder};
use crate::draw::{self, Annotation, Ink, Planes, Rect};
use crate::encode::{Encoder, EncoderConfig};
use crate::error::ExportError;
use crate::gst::SyncChain;
use crate::{ExportOptions, ExportReport, Stop};

/// Video and events are handled this long after they arrive: the encoded records wait in a
/// queue, so that audio can reach the muxer ahead of the video it goes with (`AUDIO_LEAD_US`).
const LOOKAHEAD_US: u64 = 1_000_000;
/// Audio is final this long after it arrives: a packet is placed on its media time, at most
/// `audio::LATE_US` before its arrival.
const AUDIO_SETTLE_US: u64 = 250_000;
/// Audio goes to the muxer this far ahead of the video. The muxer interleaves in chunks of
/// 250 ms and the AAC encoder holds back about 43 ms, so with less the muxer would wait for
/// audio while the caller waits for the video queue: a deadlock.
const AUDIO_LEAD_US: u64 = 700_000;
/// How long the pointer stays visible after it last moved.
const POINTER_US: u64 = 3_000_000;
/// Output size when the recording has no picture at all.
const FALLBACK_SIZE: (u32, u32) = (1280, 720);
/// Most video bytes waiting in the lookahead (one second of records) at once: a real 4K share
/// sends a few megabytes a second, and a file that packs more into one second would otherwise
/// be held in memory whole.
pub const MAX_LOOKAHEAD_BYTES: usize = 64 * 1024 * 1024;

/// When to give up: asked between records and between output frames.
struct Guard<'a> {
    stop: &'a Stop<'a>,
    started: Instant,
    allowed: Duration,
}

impl Guard<'_> {
    fn check(&self) -> Result<(), ExportError> {
        if (self.stop.cancelled)() {
            return Err(ExportError::Cancelled);
        }
        if self.started.elapsed() > self.allowed {
            return Err(ExportError::TimedOut {
                allowed: self.allowed,
            });
        }
        Ok(())
    }
}

/// The picture size limits of `options`, as the reader's limit check takes them.
fn source_limits(options: &ExportOptions) -> Limits {
    Limits {
        max_width: options.max_source_width,
        max_height: options.max_source_height,
        ..Limits::default()
    }
}

/// A decoded picture's size against the limits: a codec whose header the check cannot read
/// (H.264) is caught here, after its first frame.
fn check_decoded(
    limits: &Limits,
    track: u16,
    at_us: u64,
    caps: &gst::Caps,
) -> Result<(), ExportError> {
    match frame_size(caps) {
        Some((w, h)) => limits
            .check_size(track, at_us, w as u32, h as u32)
            .map_err(ExportError::OverLimit),
        None => Ok(()),
    }
}

type ArfReader = Reader<BufReader<File>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Camera,
    Screen,
}

fn role(track: &Track) -> Option<Role> {
    if track.kind != TrackKind::Video {
        return None;
    }
    if track.label.starts_with("screen-") {
        Some(Role::Screen)
    } else if track.label.starts_with("camera-") {
        Some(Role::Camera)
    } else {
        None
    }
}

fn is_voice(track: &Track) -> bool {
    track.kind == TrackKind::Audio && track.label == "voice-mix"
}

/// Refuses, before anything is written, a track this exporter would have to decode but cannot.
fn check_codecs(index: &Index) -> Result<(), ExportError> {
    for entry in &index.tracks {
        let t = &entry.track;
        let ok = match (role(t).is_some(), is_voice(t)) {
            (true, _) => matches!(t.codec, Codec::Vp8 | Codec::H264),
            (_, true) => matches!(t.codec, Codec::Opus),
            _ => true,
        };
        if !ok {
            return Err(ExportError::UnsupportedCodec(format!(
                "track {} ({:?}) uses {}",
                t.id, t.label, t.codec
            )));
        }
    }
    Ok(())
}

struct Frame {
    buffer: gst::Buffer,
    caps: gst::Caps,
    width: usize,
    height: usize,
    serial: u64,
}

fn frame_size(caps: &gst::Caps) -> Option<(usize, usize)> {
    let info = gst_video::VideoInfo::from_caps(caps).ok()?;
    Some((info.width() as usize, info.height() as usize))
}

struct VideoSource {
    id: u16,
    role: Role,
    codec: Codec,
    decoder: Option<SyncChain>,
    keyframe_seen: bool,
    latest: Option<Frame>,
    /// Arrival time of its first decoded frame: from then on it can be shown.
    live_since: Option<u64>,
    ended: bool,
}

struct Voice {
    decoder: SyncChain,
    map: TimeMap,
    /// The sample after the last one this track wrote: a re-anchored packet must not repeat
    /// what is already there.
    next: u64,
}

/// Where the output files go until the export succeeds.
struct Staging {
    output: PathBuf,
    partial: PathBuf,
    scratch: PathBuf,
    committed: bool,
}

fn io_error(path: &Path, e: &std::io::Error) -> ExportError {
    if e.kind() == ErrorKind::StorageFull {
        ExportError::DiskFull {
            path: path.to_owned(),
        }
    } else {
        ExportError::Output {
            path: path.to_owned(),
            message: e.to_string(),
        }
    }
}

impl Staging {
    /// Creates the temporary file beside the output: same directory, so the final rename is
    /// atomic, and an unwritable or missing directory fails here, before any work.
    fn create(output: &Path) -> Result<Self, ExportError> {
        let Some(name) = output.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            return Err(ExportError::Output {
                path: output.to_owned(),
                message: "not a file name".into(),
            });
        };
        let partial = output.with_file_name(format!("{name}.partial"));
        let scratch = output.with_file_name(format!(".{name}.mdat.partial"));
        File::create(&partial).map_err(|e| io_error(output, &e))?;
        Ok(Staging {
            output: output.to_owned(),
            partial,
            scratch,
            committed: false,
        })
    }

    /// Makes the MP4 durable, then gives it its name; returns its size.
    fn commit(mut self) -> Result<u64, ExportError> {
        let out = &self.output;
        let file = File::open(&self.partial).map_err(|e| io_error(out, &e))?;
        file.sync_all().map_err(|e| io_error(out, &e))?;
        let size = file.metadata().map_err(|e| io_error(out, &e))?.len();
        std::fs::rename(&self.partial, out).map_err(|e| io_error(out, &e))?;
        self.committed = true;
        Ok(size)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.scratch);
        if !self.committed {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

/// The size of the first source that will be shown: the video track whose first keyframe comes
/// first (a screen before a camera at the same instant), decoded to learn its size.
fn probe_size(
    reader: &mut ArfReader,
    index: &Index,
    input: &Path,
    limits: &Limits,
) -> Result<Option<(u32, u32)>, ExportError> {
    let mut candidates: Vec<(u64, std::cmp::Reverse<Role>, u16, Codec)> = index
        .tracks
        .iter()
        .filter_map(|e| {
            let role = role(&e.track)?;
            let first = index.keyframes.get(&e.track.id)?.first()?;
            Some((
                first.at_us,
                std::cmp::Reverse(role),
                e.track.id,
                e.track.codec,
            ))
        })
        .collect();
    candidates.sort();
    let mut found = None;
    for (at_us, _, id, codec) in candidates.into_iter().take(3) {
        reader
            .seek(at_us, Some(id))
            .map_err(|e| ExportError::from_arf(input, e))?;
        let mut keyframe = None;
        while let Some(rec) = reader
            .next_record()
            .map_err(|e| ExportError::from_arf(input, e))?
        {
            if let Record::Media(m) = rec
                && m.track == id
                && m.keyframe
            {
                keyframe = Some(m);
                break;
            }
        }
        let Some(m) = keyframe else { continue };
        limits
            .check_frame(codec, id, m.at_us, &m.payload)
            .map_err(ExportError::OverLimit)?;
        let mut decoder = video_decoder("probe", codec)?;
        let mut out = decoder.push(gst::Buffer::from_mut_slice(m.payload))?;
        out.extend(decoder.finish()?);
        if let Some((_, caps)) = out.first() {
            check_decoded(limits, id, at_us, caps)?;
        }
        if let Some((w, h)) = out.first().and_then(|(_, caps)| frame_size(caps)) {
            found = Some((w as u32, h as u32));
            break;
        }
    }
    reader.rewind();
    Ok(found)
}

fn even(v: f64) -> u32 {
    ((v.round() as u32) & !1).max(2)
}

fn output_size(options: &ExportOptions, probed: Option<(u32, u32)>) -> (u32, u32) {
    if let Some((w, h)) = options.size {
        return (even(f64::from(w)), even(f64::from(h)));
    }
    let (w, h) = probed.unwrap_or(FALLBACK_SIZE);
    let (w, h) = (f64::from(w.max(1)), f64::from(h.max(1)));
    let s = (f64::from(options.max_width) / w)
        .min(f64::from(options.max_height) / h)
        .min(1.0);
    (even(w * s), even(h * s))
}

pub(crate) fn run(
    input: &Path,
    output: &Path,
    options: &ExportOptions,
    progress: &mut dyn FnMut(f64),
    stop: &Stop<'_>,
) -> Result<ExportReport, ExportError> {
    let started = Instant::now();
    options.validate()?;
    let limits = source_limits(options);
    crate::init()?;
    let arf = |e| ExportError::from_arf(input, e);
    let mut reader = Reader::open(input).map_err(arf)?;
    let index = reader.index().map_err(arf)?.clone();
    let truncated = reader.end().is_some_and(|e| e.truncated);
    // Nothing to play: no records, no time, or no picture and no sound at all (a session
    // recorded while nothing was shared and nobody spoke holds only events).
    if index.records == 0 || index.last_us == 0 || index.tracks.is_empty() {
        return Err(ExportError::Empty);
    }
    check_codecs(&index)?;
    let guard = Guard {
        stop,
        started,
        allowed: (stop.time_allowed)(Duration::from_micros(index.last_us)),
    };
    guard.check()?;
    let probed = probe_size(&mut reader, &index, input, &limits)?;
    let (width, height) = output_size(options, probed);

    let staging = Staging::create(output)?;
    let encoder = Encoder::new(&EncoderConfig {
        width,
        height,
        fps: options.fps,
        quality: options.quality,
        audio_bitrate: options.audio_bitrate,
        partial: &staging.partial,
        scratch: &staging.scratch,
        output,
    })?;
    let mut ex = Exporter::new(encoder, width, height, options.fps, index.last_us, limits)?;
    ex.report.truncated = truncated;
    ex.report.width = width;
    ex.report.height = height;

    while let Some(rec) = reader.next_record().map_err(arf)? {
        guard.check()?;
        ex.record(rec)?;
        if ex.lookahead_bytes > MAX_LOOKAHEAD_BYTES {
            return Err(ExportError::TooDense {
                at_us: ex.read_us,
                max: MAX_LOOKAHEAD_BYTES,
            });
        }
        let read = ex.read_us;
        ex.emit(
            read.saturating_sub(LOOKAHEAD_US),
            read.saturating_sub(AUDIO_SETTLE_US),
            progress,
            &guard,
        )?;
    }
    ex.emit(u64::MAX, u64::MAX, progress, &guard)?;
    // Frames that arrived after the last output frame: decoded for the report's counts only.
    while let Some(rec) = ex.pop_lookahead() {
        ex.apply(rec)?;
    }
    let chains = ex.video.values().filter_map(|v| v.decoder.as_ref());
    let warnings: u64 = chains.map(|d| d.warnings).sum::<u64>()
        + ex.voices.values().map(|v| v.decoder.warnings).sum::<u64>();
    ex.report.decode_warnings += warnings;
    let Exporter {
        encoder,
        mut report,
        ..
    } = ex;
    report.decode_warnings += encoder.warnings;
    encoder.finish()?;
    report.output_bytes = staging.commit()?;
    report.wall = started.elapsed();
    report.speed = report.exported_us as f64 / 1e6 / report.wall.as_secs_f64().max(1e-9);
    progress(1.0);
    Ok(report)
}

struct Scaled {
    track: u16,
    serial: u64,
    buffer: gst::Buffer,
    rect: Rect,
}

struct Exporter {
    encoder: Encoder,
    info: gst_video::VideoInfo,
    fps: u64,
    duration_us: u64,
    frames: u64,
    next_frame: u64,
    last_progress: f64,
    /// Arrival time of the last record read.
    read_us: u64,
    kinds: HashMap<u16, TrackKind>,
    video: BTreeMap<u16, VideoSource>,
    voices: HashMap<u16, Voice>,
    timeline: Timeline,
    lookahead: VecDeque<Record>,
    /// Payload bytes of the video frames in `lookahead`.
    lookahead_bytes: usize,
    limits: Limits,
    shown: Option<u16>,
    ever_shown: bool,
    scaler: Option<(SyncChain, gst::Caps)>,
    scaled: Option<Scaled>,
    black: gst::Buffer,
    ink: Ink,
    pointer: Option<([f32; 2], u64)>,
    serial: u64,
    report: ExportReport,
}

fn buffer_error(what: &str) -> ExportError {
    ExportError::Pipeline {
        element: "export".into(),
        message: format!("cannot {what}"),
        debug: None,
    }
}

/// The planes of a mapped I420 frame, or `None` for a layout this code does not draw on.
fn planes<'a>(frame: &'a mut gst_video::VideoFrameRef<&mut gst::BufferRef>) -> Option<Planes<'a>> {
    let (width, height) = (frame.width() as usize, frame.height() as usize);
    let strides = frame.plane_stride();
    let y_stride = usize::try_from(*strides.first()?).ok()?;
    let uv_stride = usize::try_from(*strides.get(1)?).ok()?;
    let [y, u, v, _] = frame.planes_data_mut();
    Some(Planes {
        y,
        u,
        v,
        y_stride,
        uv_stride,
        width,
        height,
    })
}

impl Exporter {
    fn new(
        encoder: Encoder,
        width: u32,
        height: u32,
        fps: u32,
        duration_us: u64,
        limits: Limits,
    ) -> Result<Self, ExportError> {
        let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, width, height)
            .fps(gst::Fraction::new(fps as i32, 1))
            .par(gst::Fraction::new(1, 1))
            .build()
            .map_err(|_| buffer_error("describe the output frame"))?;
        let mut black =
            gst::Buffer::with_size(info.size()).map_err(|_| buffer_error("allocate a frame"))?;
        {
            let buf = black.make_mut();
            let mut frame = gst_video::VideoFrameRef::from_buffer_ref_writable(buf, &info)
                .map_err(|_| buffer_error("map a frame"))?;
            if let Some(mut p) = planes(&mut frame) {
                draw::black(&mut p);
            }
        }
        let fps = u64::from(fps);
        let frames = (duration_us * fps).div_ceil(1_000_000).max(1);
        Ok(Exporter {
            encoder,
            info,
            fps,
            duration_us,
            frames,
            next_frame: 0,
            last_progress: 0.0,
            read_us: 0,
            kinds: HashMap::new(),
            video: BTreeMap::new(),
            voices: HashMap::new(),
            timeline: Timeline::default(),
            lookahead: VecDeque::new(),
            lookahead_bytes: 0,
            limits,
            shown: None,
            ever_shown: false,
            scaler: None,
            scaled: None,
            black,
            ink: Ink::default(),
            pointer: None,
            serial: 0,
            report: ExportReport {
                duration_us,
                fps: fps as u32,
                ..ExportReport::default()
            },
        })
    }

    fn frame_us(&self, k: u64) -> u64 {
        k * 1_000_000 / self.fps
    }

    /// Audio is decoded as soon as it is read (it is placed by its own media time); the rest
    /// waits in the lookahead until the frame it belongs to.
    fn record(&mut self, rec: Record) -> Result<(), ExportError> {
        self.read_us = rec.at_us();
        match rec {
            Record::Track { ref track, .. } => {
                self.kinds.insert(track.id, track.kind);
                if is_voice(track) {
                    let decoder = opus_decoder(&format!("voice{}", track.id))?;
                    self.report.voice = true;
                    let map = TimeMap::new(track.clock_rate);
                    let voice = Voice {
                        decoder,
                        map,
                        next: 0,
                    };
                    self.voices.insert(track.id, voice);
                } else if track.kind == TrackKind::Video {
                    self.lookahead.push_back(rec);
                }
            }
            Record::Media(m) => match self.kinds.get(&m.track) {
                Some(TrackKind::Audio) => self.audio(m)?,
                Some(TrackKind::Video) => {
                    self.report.frames_in += 1;
                    self.lookahead_bytes += m.payload.len();
                    self.lookahead.push_back(Record::Media(m));
                }
                _ => {}
            },
            Record::TrackEnded { track, .. } => match self.kinds.get(&track) {
                Some(TrackKind::Audio) => {
                    if let Some(mut v) = self.voices.remove(&track) {
                        let rest = v.decoder.finish()?;
                        let next = v.next;
                        self.place_audio(&mut v, next, rest);
                        self.report.decode_warnings += v.decoder.warnings;
                    }
                }
                Some(TrackKind::Video) => self.lookahead.push_back(rec),
                _ => {}
            },
            Record::Event(_) => self.lookahead.push_back(rec),
            _ => {}
        }
        Ok(())
    }

    fn audio(&mut self, m: Media) -> Result<(), ExportError> {
        let Some(mut voice) = self.voices.remove(&m.track) else {
            return Ok(());
        };
        self.report.audio_packets += 1;
        let at = voice.map.map(m.at_us, m.media_ts);
        let mut buffer = gst::Buffer::from_mut_slice(m.payload);
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::from_useconds(at));
        }
        let out = voice.decoder.push(buffer);
        let result = out.map(|out| self.place_audio(&mut voice, sample_at(at), out));
        self.voices.insert(m.track, voice);
        result
    }

    /// Writes decoded samples at `start`, minus any part this track already wrote.
    fn place_audio(&mut self, voice: &mut Voice, start: u64, out: Vec<(gst::Buffer, gst::Caps)>) {
        let mut pcm = Vec::new();
        for (buf, _) in out {
            if let Ok(map) = buf.map_readable() {
                pcm.extend(
                    map.chunks_exact(2)
                        .map(|b| i16::from_le_bytes([b[0], b[1]])),
                );
            }
        }
        let skip = usize::try_from(voice.next.saturating_sub(start)).unwrap_or(usize::MAX);
        if let Some(rest) = pcm.get(skip..).filter(|r| !r.is_empty()) {
            let from = start.max(voice.next);
            self.timeline.add(from, rest);
            voice.next = from + rest.len() as u64;
        }
    }

    /// Emits every output frame up to `video_us`, and audio up to `audio_us` but never more
    /// than `AUDIO_LEAD_US` ahead of the video (nor past the end).
    /// The lookahead's first record, keeping its byte count.
    fn pop_lookahead(&mut self) -> Option<Record> {
        let rec = self.lookahead.pop_front()?;
        if let Record::Media(m) = &rec {
            self.lookahead_bytes = self.lookahead_bytes.saturating_sub(m.payload.len());
        }
        Some(rec)
    }

    fn emit(
        &mut self,
        video_us: u64,
        audio_us: u64,
        progress: &mut dyn FnMut(f64),
        guard: &Guard<'_>,
    ) -> Result<(), ExportError> {
        let end_sample = self.frames * RATE / self.fps;
        let audio_limit = sample_at(audio_us).min(end_sample);
        while self.next_frame < self.frames && self.frame_us(self.next_frame) <= video_us {
            guard.check()?;
            let k = self.next_frame;
            let t = self.frame_us(k);
            self.push_audio(audio_limit.min(sample_at(t + AUDIO_LEAD_US)))?;
            while self.lookahead.front().is_some_and(|r| r.at_us() <= t) {
                if let Some(rec) = self.pop_lookahead() {
                    self.apply(rec)?;
                }
            }
            let mut picture = self.picture(t)?;
            let b = picture.make_mut();
            let pts = gst::ClockTime::from_nseconds(k * 1_000_000_000 / self.fps);
            let end = gst::ClockTime::from_nseconds((k + 1) * 1_000_000_000 / self.fps);
            b.set_pts(pts);
            b.set_dts(pts);
            b.set_duration(end - pts);
            self.encoder.push_video(picture)?;
            self.report.frames_out += 1;
            self.next_frame += 1;
            self.report.exported_us = self.frame_us(self.next_frame);
            let done = t as f64 / self.duration_us as f64;
            if done - self.last_progress >= 0.01 {
                self.last_progress = done;
                progress(done.min(1.0));
            }
        }
        let lead = sample_at(self.frame_us(self.next_frame) + AUDIO_LEAD_US);
        self.push_audio(audio_limit.min(lead))
    }

    /// Sends the timeline's samples up to `until`, in buffers of at least 20 ms except the last.
    fn push_audio(&mut self, until: u64) -> Result<(), ExportError> {
        let first = self.timeline.emitted();
        let end_sample = self.frames * RATE / self.fps;
        if until <= first || (until < end_sample && until - first < RATE / 50) {
            return Ok(());
        }
        let pcm = self.timeline.take(until);
        let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut audio = gst::Buffer::from_mut_slice(bytes);
        if let Some(b) = audio.get_mut() {
            let pts = gst::ClockTime::from_nseconds(first * 1_000_000_000 / RATE);
            let end = gst::ClockTime::from_nseconds(until * 1_000_000_000 / RATE);
            b.set_pts(pts);
            b.set_duration(end - pts);
        }
        self.encoder.push_audio(audio)?;
        if until >= end_sample {
            // All of it is there: let the AAC encoder give up what it holds back, or the muxer
            // waits for audio past the last frames while they wait for room (a recording
            // shorter than the encoders' queues stalled so).
            self.encoder.end_audio();
        }
        Ok(())
    }

    /// A record whose time has come for the picture.
    fn apply(&mut self, rec: Record) -> Result<(), ExportError> {
        match rec {
            Record::Track { track, .. } => {
                if let Some(role) = role(&track) {
                    self.video.insert(
                        track.id,
                        VideoSource {
                            id: track.id,
                            role,
                            codec: track.codec,
                            decoder: None,
                            keyframe_seen: false,
                            latest: None,
                            live_since: None,
                            ended: false,
                        },
                    );
                }
            }
            Record::Media(m) => self.video_frame(m)?,
            Record::TrackEnded { track, .. } => {
                if let Some(src) = self.video.get_mut(&track) {
                    src.ended = true;
                    src.latest = None;
                    if let Some(d) = src.decoder.take() {
                        self.report.decode_warnings += d.warnings;
                    }
                    self.update_shown();
                }
            }
            Record::Event(e) => match e.kind.as_str() {
                "annotation" => match draw::parse_annotation(&e.json) {
                    Some(Annotation::Clear) => {
                        self.report.annotations += 1;
                        self.ink.clear();
                    }
                    Some(Annotation::Segment(seg)) => {
                        self.report.annotations += 1;
                        if self.shown.is_some() {
                            self.ink.add(seg);
                        }
                    }
                    None => self.report.ignored_events += 1,
                },
                "pointer" => match draw::parse_pointer(&e.json) {
                    Some(at) => {
                        self.report.pointer_moves += 1;
                        self.pointer = Some((at, e.at_us));
                    }
                    None => self.report.ignored_events += 1,
                },
                _ => {}
            },
            _ => {}
        }
        Ok(())
    }

    fn video_frame(&mut self, m: Media) -> Result<(), ExportError> {
        let Some(src) = self.video.get_mut(&m.track) else {
            return Ok(());
        };
        if src.ended {
            return Ok(());
        }
        // A source starts at its first keyframe: nothing before it can be decoded.
        if !src.keyframe_seen && !m.keyframe {
            self.report.frames_skipped += 1;
            return Ok(());
        }
        // Read from the frame's header before a decoder allocates what it claims.
        self.limits
            .check_frame(src.codec, m.track, m.at_us, &m.payload)
            .map_err(ExportError::OverLimit)?;
        src.keyframe_seen = true;
        if src.decoder.is_none() {
            src.decoder = Some(video_decoder(&format!("track{}", src.id), src.codec)?);
        }
        let Some(decoder) = src.decoder.as_mut() else {
            return Ok(());
        };
        let mut buffer = gst::Buffer::from_mut_slice(m.payload);
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::from_useconds(m.at_us));
        }
        let out = decoder.push(buffer)?;
        let mut started = false;
        for (buffer, caps) in out {
            let Some((width, height)) = frame_size(&caps) else {
                continue;
            };
            self.limits
                .check_size(m.track, m.at_us, width as u32, height as u32)
                .map_err(ExportError::OverLimit)?;
            self.serial += 1;
            self.report.frames_decoded += 1;
            src.latest = Some(Frame {
                buffer,
                caps,
                width,
                height,
                serial: self.serial,
            });
            if src.live_since.is_none() {
                src.live_since = Some(m.at_us);
                started = true;
            }
        }
        if started {
            self.update_shown();
        }
        Ok(())
    }

    /// Shows the newest shared screen; with no screen, the newest camera. A change of source
    /// clears the annotations, as the viewer does when its stream changes.
    fn update_shown(&mut self) {
        let best = self
            .video
            .values()
            .filter(|s| !s.ended && s.latest.is_some())
            .filter_map(|s| Some((s.role, s.live_since?, s.id)))
            .max()
            .map(|(_, _, id)| id);
        if best != self.shown {
            if best.is_some() && self.ever_shown {
                self.report.source_switches += 1;
            }
            self.ever_shown |= best.is_some();
            self.shown = best;
            self.ink.clear();
        }
    }

    /// The output frame at `t`: the shown source's latest frame fitted into the output, with the
    /// ink and the pointer on it; black when nothing is shown.
    fn picture(&mut self, t: u64) -> Result<gst::Buffer, ExportError> {
        let Some((base, rect)) = self.scaled_frame()? else {
            return Ok(self.black.clone());
        };
        let pointer = self
            .pointer
            .filter(|(_, at)| t.saturating_sub(*at) <= POINTER_US)
            .map(|(p, _)| p);
        if self.ink.is_empty() && pointer.is_none() {
            return Ok(base);
        }
        let mut out = base.copy_deep().map_err(|_| buffer_error("copy a frame"))?;
        {
            let buf = out.make_mut();
            let mut frame = gst_video::VideoFrameRef::from_buffer_ref_writable(buf, &self.info)
                .map_err(|_| buffer_error("map a frame"))?;
            if let Some(mut p) = planes(&mut frame) {
                self.ink.paint(&mut p, rect);
                if let Some(at) = pointer {
                    draw::pointer(&mut p, rect, at);
                }
            }
        }
        Ok(out)
    }

    fn scaled_frame(&mut self) -> Result<Option<(gst::Buffer, Rect)>, ExportError> {
        let Some(id) = self.shown else {
            return Ok(None);
        };
        let Some(frame) = self.video.get(&id).and_then(|s| s.latest.as_ref()) else {
            return Ok(None);
        };
        if let Some(s) = &self.scaled
            && s.track == id
            && s.serial == frame.serial
        {
            return Ok(Some((s.buffer.clone(), s.rect)));
        }
        let mut caps = frame.caps.copy();
        caps.make_mut()
            .set("pixel-aspect-ratio", gst::Fraction::new(1, 1));
        match &mut self.scaler {
            Some((_, current)) if *current == caps => {}
            Some((chain, current)) => {
                chain.set_caps(&caps)?;
                *current = caps;
            }
            None => {
                let chain = scaler(self.info.width(), self.info.height(), &caps)?;
                self.scaler = Some((chain, caps));
            }
        }
        let Some((chain, _)) = self.scaler.as_mut() else {
            return Ok(None);
        };
        let out = chain.push(frame.buffer.clone())?;
        let Some((buffer, _)) = out.into_iter().last() else {
            return Ok(self.scaled.as_ref().map(|s| (s.buffer.clone(), s.rect)));
        };
        let (fw, fh) = (self.info.width() as usize, self.info.height() as usize);
        let rect = Rect::fit(frame.width, frame.height, fw, fh);
        self.scaled = Some(Scaled {
            track: id,
            serial: frame.serial,
            buffer: buffer.clone(),
            rect,
        });
        Ok(Some((buffer, rect)))
    }
}
