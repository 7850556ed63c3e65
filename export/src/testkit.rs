//! Test recordings, for this crate's tests and the server's (behind the `testkit` feature, so
//! the shipped server does not build it): media encoded with GStreamer here and now, written as
//! ARF with arrival times from their timestamps plus a little network jitter, and helpers to look
//! at an MP4 with ffprobe and ffmpeg. The server's end-to-end sync test (tests/recording_sync.rs)
//! uses them to encode its flashing screen and find the flashes and beeps in the exported MP4.

use std::path::Path;
use std::process::Command;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tandem_arf::{Codec, Header, SyncedFile, Track, Writer};

pub const FPS: u64 = 25;
/// Flashes and beeps start at these whole seconds: every 2 s from 2 s.
pub fn flash_at(t_us: u64) -> bool {
    t_us >= 2_000_000 && t_us % 2_000_000 < 120_000
}
pub fn beep_at(t_us: u64) -> bool {
    t_us >= 2_000_000 && t_us % 2_000_000 < 100_000
}

/// One encoded frame or packet.
pub struct Encoded {
    pub pts_us: u64,
    pub keyframe: bool,
    pub data: Vec<u8>,
}

/// Feeds raw buffers made by `make(i)` into `appsrc ! <encoder> ! appsink` and returns what
/// comes out.
pub fn encode(
    raw: &gst::Caps,
    encoder: &str,
    count: u64,
    duration_ns: u64,
    mut make: impl FnMut(u64) -> Vec<u8>,
) -> Vec<Encoded> {
    gst::init().unwrap();
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=src format=time ! {encoder} ! appsink name=sink sync=false"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    src.set_caps(Some(raw));
    pipeline.set_state(gst::State::Playing).unwrap();
    for i in 0..count {
        let mut buf = gst::Buffer::from_mut_slice(make(i));
        let b = buf.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_nseconds(i * duration_ns));
        b.set_duration(gst::ClockTime::from_nseconds(duration_ns));
        src.push_buffer(buf).unwrap();
    }
    src.end_of_stream().unwrap();
    let mut out = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        let buf = sample.buffer().unwrap();
        let data = buf.map_readable().unwrap().to_vec();
        if data.starts_with(b"OpusHead") || data.starts_with(b"OpusTags") {
            continue;
        }
        out.push(Encoded {
            pts_us: buf.pts().map_or(0, |t| t.useconds()),
            keyframe: !buf.flags().contains(gst::BufferFlags::DELTA_UNIT),
            data,
        });
    }
    pipeline.set_state(gst::State::Null).unwrap();
    // x264enc shifts its timestamps by 1000 hours (room for negative DTS): back to 0.
    let first = out.iter().map(|e| e.pts_us).min().unwrap_or(0);
    out.iter_mut().for_each(|e| e.pts_us -= first);
    out
}

/// A screen-like picture: a flat grey of `shade`, a small square moving along the top, and a
/// white flash for 120 ms every 2 s (when `flashes`).
pub fn video(codec: Codec, w: u32, h: u32, seconds: f64, shade: u8, flashes: bool) -> Vec<Encoded> {
    let flash = |t_us| flashes && flash_at(t_us);
    video_flashing(codec, w, h, seconds, shade, flash, 250)
}

/// As [`video`], white whenever `flash(t_us)` says, with a keyframe at least every
/// `keyframe_every` frames.
pub fn video_flashing(
    codec: Codec,
    w: u32,
    h: u32,
    seconds: f64,
    shade: u8,
    flash: impl Fn(u64) -> bool,
    keyframe_every: u32,
) -> Vec<Encoded> {
    gst::init().unwrap();
    let caps = gst::Caps::builder("video/x-raw")
        .field("format", "I420")
        .field("width", w as i32)
        .field("height", h as i32)
        .field("framerate", gst::Fraction::new(FPS as i32, 1))
        .build();
    let encoder = match codec {
        Codec::Vp8 => format!(
            "vp8enc deadline=1 cpu-used=8 target-bitrate=1500000 \
             keyframe-max-dist={keyframe_every}"
        ),
        Codec::H264 => format!(
            "x264enc tune=zerolatency speed-preset=ultrafast key-int-max={keyframe_every} ! \
             video/x-h264,stream-format=byte-stream,alignment=au,profile=constrained-baseline"
        ),
        _ => unreachable!(),
    };
    let (w, h) = (w as usize, h as usize);
    let count = (seconds * FPS as f64) as u64;
    encode(&caps, &encoder, count, 1_000_000_000 / FPS, |i| {
        let t_us = i * 1_000_000 / FPS;
        let mut f = vec![128u8; w * h * 3 / 2];
        let y = if flash(t_us) { 235 } else { shade };
        f[..w * h].fill(y);
        let x0 = (i as usize * 8) % (w - 32);
        for row in 8..40 {
            f[row * w + x0..row * w + x0 + 32].fill(200);
        }
        f
    })
}

/// Mono 48 kHz Opus in 20 ms packets: a 1 kHz beep for 100 ms every 2 s from 2 s, silence
/// otherwise.
pub fn voice(seconds: f64) -> Vec<Encoded> {
    gst::init().unwrap();
    let caps = gst::Caps::builder("audio/x-raw")
        .field("format", "S16LE")
        .field("rate", 48_000i32)
        .field("channels", 1i32)
        .field("layout", "interleaved")
        .build();
    let count = (seconds * 50.0) as u64;
    encode(
        &caps,
        "opusenc frame-size=20 bitrate=32000",
        count,
        20_000_000,
        |i| {
            let mut out = Vec::with_capacity(960 * 2);
            for s in 0..960u64 {
                let n = i * 960 + s;
                let t_us = n * 1_000_000 / 48_000;
                let v = if beep_at(t_us) {
                    (f64::sin(2.0 * std::f64::consts::PI * 1000.0 * n as f64 / 48_000.0) * 12_000.0)
                        as i16
                } else {
                    0
                };
                out.extend(v.to_le_bytes());
            }
            out
        },
    )
}

/// A deterministic stand-in for network jitter, 0 to `max_us`.
pub struct Jitter(u64);
impl Jitter {
    pub fn new(seed: u64) -> Self {
        Jitter(seed)
    }
    pub fn next(&mut self, max_us: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % (max_us + 1)
    }
}

enum Item {
    Track(Track),
    Media {
        track: u16,
        ts: u64,
        keyframe: bool,
        data: Vec<u8>,
    },
    Event {
        kind: String,
        json: String,
    },
    End(u16),
}

/// When a track's media arrives: from `start_us` of the recording, each item `delay_us` plus up
/// to `jitter_us` after its timestamp.
#[derive(Clone, Copy)]
pub struct Arrival {
    pub start_us: u64,
    pub delay_us: u64,
    pub jitter_us: u64,
}

/// Video over the network: 40 ms late, give or take 15.
pub fn video_at(start_us: u64) -> Arrival {
    Arrival {
        start_us,
        delay_us: 40_000,
        jitter_us: 15_000,
    }
}

/// The voice mix, made on the server: 30 ms late, give or take 10.
pub fn voice_at(start_us: u64) -> Arrival {
    Arrival {
        start_us,
        delay_us: 30_000,
        jitter_us: 10_000,
    }
}

/// Collects records in any order and writes them sorted by arrival time.
#[derive(Default)]
pub struct Recording {
    items: Vec<(u64, Item)>,
    jitter: Option<Jitter>,
}

impl Recording {
    pub fn new() -> Self {
        Recording {
            items: Vec::new(),
            jitter: Some(Jitter::new(7)),
        }
    }

    /// A track whose media arrives as `arrival` says; the track ends after its last frame.
    pub fn track(
        &mut self,
        id: u16,
        codec: Codec,
        label: &str,
        arrival: Arrival,
        media: &[Encoded],
    ) {
        self.declare(arrival.start_us, id, codec, label);
        let last = self.media(id, codec, arrival, media);
        self.items.push((last + 1, Item::End(id)));
    }

    /// More media on a declared track (a resolution change: the same track, a new keyframe).
    /// Returns the last arrival time.
    pub fn media(&mut self, id: u16, codec: Codec, arrival: Arrival, media: &[Encoded]) -> u64 {
        let Arrival {
            start_us,
            delay_us,
            jitter_us,
        } = arrival;
        let clock: u64 = if codec == Codec::Opus { 48_000 } else { 90_000 };
        let jitter = self.jitter.as_mut().unwrap();
        let mut last = start_us;
        let base_ts = 1_000_000 * u64::from(id) + start_us * clock / 1_000_000;
        for m in media {
            let at = (start_us + m.pts_us + delay_us + jitter.next(jitter_us)).max(last);
            last = at;
            self.items.push((
                at,
                Item::Media {
                    track: id,
                    ts: base_ts + m.pts_us * clock / 1_000_000,
                    keyframe: m.keyframe,
                    data: m.data.clone(),
                },
            ));
        }
        last
    }

    /// Declares a track without media yet.
    pub fn declare(&mut self, at_us: u64, id: u16, codec: Codec, label: &str) {
        let clock = if codec == Codec::Opus { 48_000 } else { 90_000 };
        self.items
            .push((at_us, Item::Track(Track::new(id, codec, clock, label))));
    }

    pub fn end(&mut self, at_us: u64, id: u16) {
        self.items.push((at_us, Item::End(id)));
    }

    pub fn event(&mut self, at_us: u64, kind: &str, json: &str) {
        self.items.push((
            at_us,
            Item::Event {
                kind: kind.into(),
                json: json.into(),
            },
        ));
    }

    /// Writes the file; returns the recording's length (the last arrival time).
    pub fn write(mut self, path: &Path) -> u64 {
        self.items.sort_by_key(|(at, _)| *at);
        let header = Header {
            recording_id: "00000000-0000-4000-8000-000000000001".into(),
            session_id: "00000000-0000-4000-8000-000000000002".into(),
            start_unix_ms: 1_700_000_000_000,
            metadata: "{}".into(),
        };
        let mut w = Writer::create(SyncedFile::create(path).unwrap(), &header).unwrap();
        let mut last = 0;
        for (at, item) in self.items {
            match item {
                Item::Track(t) => w.declare_track(at, &t).unwrap(),
                Item::Media {
                    track,
                    ts,
                    keyframe,
                    data,
                } => w.media(track, at, ts, keyframe, &data).unwrap(),
                Item::Event { kind, json } => w.event(at, &kind, &json).unwrap(),
                Item::End(id) => w.end_track(at, id).unwrap(),
            }
            last = at;
        }
        w.close().unwrap();
        last
    }
}

/// `ffprobe`'s JSON description of a file.
pub fn probe(path: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe (Debian package ffmpeg) runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn ffmpeg(args: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin"])
        .args(args)
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Every video frame's mean luma, decoded at a small size.
pub fn frame_brightness(path: &Path) -> Vec<f64> {
    let p = path.to_str().unwrap();
    let raw = ffmpeg(&[
        "-i",
        p,
        "-an",
        "-vf",
        "scale=64:36",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "gray",
        "-",
    ]);
    raw.chunks_exact(64 * 36)
        .map(|f| f.iter().map(|&v| f64::from(v)).sum::<f64>() / f.len() as f64)
        .collect()
}

/// When the picture turns white (its mean luma rises past 150), in seconds: the output frame's
/// time, at the export's frame rate.
pub fn flashes(path: &Path) -> Vec<f64> {
    let luma = frame_brightness(path);
    (1..luma.len())
        .filter(|&i| luma[i] > 150.0 && luma[i - 1] <= 150.0)
        .map(|i| i as f64 / FPS as f64)
        .collect()
}

/// When each sound starts (a sample louder than 3000) after at least half a second of quiet,
/// in seconds.
pub fn beeps(path: &Path) -> Vec<f64> {
    let mut beeps = Vec::new();
    let mut quiet_since = 0usize;
    for (i, s) in pcm(path).iter().enumerate() {
        if s.unsigned_abs() > 3000 {
            if i - quiet_since > 24_000 {
                beeps.push(i as f64 / 48_000.0);
            }
            quiet_since = i;
        }
    }
    beeps
}

/// The decoded audio, mono 48 kHz.
pub fn pcm(path: &Path) -> Vec<i16> {
    let p = path.to_str().unwrap();
    let raw = ffmpeg(&[
        "-i", p, "-vn", "-f", "s16le", "-ac", "1", "-ar", "48000", "-",
    ]);
    raw.chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// The frame shown at `t` seconds as RGB, with its width and height.
pub fn rgb_frame(path: &Path, t: f64) -> (Vec<u8>, usize, usize) {
    let info = probe(path);
    let video = info["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == "video")
        .unwrap();
    let (w, h) = (
        video["width"].as_u64().unwrap() as usize,
        video["height"].as_u64().unwrap() as usize,
    );
    let p = path.to_str().unwrap();
    let t = format!("{t}");
    let raw = ffmpeg(&[
        "-ss",
        &t,
        "-i",
        p,
        "-frames:v",
        "1",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-",
    ]);
    assert_eq!(raw.len(), w * h * 3);
    (raw, w, h)
}

/// The MP4's top-level box types, in file order.
pub fn top_level_boxes(path: &Path) -> Vec<String> {
    let data = std::fs::read(path).unwrap();
    let mut pos = 0usize;
    let mut boxes = Vec::new();
    while pos + 8 <= data.len() {
        let size = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as u64;
        let kind = String::from_utf8_lossy(&data[pos + 4..pos + 8]).into_owned();
        let size = match size {
            0 => (data.len() - pos) as u64,
            1 => u64::from_be_bytes(data[pos + 8..pos + 16].try_into().unwrap()),
            s => s,
        };
        boxes.push(kind);
        assert!(size >= 8, "box size {size} at {pos}");
        pos += size as usize;
    }
    boxes
}
