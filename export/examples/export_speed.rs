//! How fast an export runs: generates a screen-share-like recording (1080p VP8 at 15 fps, a
//! mostly still desktop where a line of "text" grows and a window moves now and then, the voice
//! mix with a beep every 2 s, pointer moves and annotations), exports it with the default
//! options and prints minutes of recording exported per minute of wall time.
//!
//! `cargo run --release -p tandem-export --example export_speed [-- MINUTES [KEEP.mp4]]` (10
//! minutes by default; the MP4 is kept only if a path is given).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tandem_arf::{Codec, Header, SyncedFile, Track, Writer};
use tandem_export::{ExportOptions, export};

const W: usize = 1920;
const H: usize = 1080;
const FPS: u64 = 15;

struct Encoded {
    pts_us: u64,
    keyframe: bool,
    data: Vec<u8>,
}

/// Runs `appsrc ! ENCODER ! appsink`, feeding `count` raw buffers from `make` on another thread.
fn encode(
    caps: gst::Caps,
    encoder: &str,
    count: u64,
    step_ns: u64,
    make: impl FnMut(u64, &mut [u8]) + Send + 'static,
    size: usize,
) -> Vec<Encoded> {
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=src format=time block=true max-bytes={} ! {encoder} ! appsink name=sink sync=false",
        size * 4
    ))
    .expect("pipeline")
    .downcast::<gst::Pipeline>()
    .expect("a pipeline");
    let src = pipeline
        .by_name("src")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .expect("appsrc");
    let sink = pipeline
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .expect("appsink");
    src.set_caps(Some(&caps));
    let out = Arc::new(Mutex::new(Vec::new()));
    let collected = Arc::clone(&out);
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buf = sample.buffer().ok_or(gst::FlowError::Error)?;
                let data = buf.map_readable().map_err(|_| gst::FlowError::Error)?;
                collected.lock().expect("lock").push(Encoded {
                    pts_us: buf.pts().map_or(0, |t| t.useconds()),
                    keyframe: !buf.flags().contains(gst::BufferFlags::DELTA_UNIT),
                    data: data.to_vec(),
                });
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    pipeline.set_state(gst::State::Playing).expect("playing");
    let feeder = std::thread::spawn(move || {
        let mut make = make;
        let mut frame = vec![0u8; size];
        for i in 0..count {
            make(i, &mut frame);
            let mut buf = gst::Buffer::from_slice(frame.clone());
            let b = buf.get_mut().expect("writable");
            b.set_pts(gst::ClockTime::from_nseconds(i * step_ns));
            b.set_duration(gst::ClockTime::from_nseconds(step_ns));
            if src.push_buffer(buf).is_err() {
                break;
            }
        }
        let _ = src.end_of_stream();
    });
    let bus = pipeline.bus().expect("bus");
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::NONE,
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    if let Some(gst::MessageView::Error(e)) = msg.as_ref().map(|m| m.view()) {
        panic!("encoding failed: {e:?}");
    }
    feeder.join().expect("feeder");
    pipeline.set_state(gst::State::Null).expect("null");
    let mut out = std::mem::take(&mut *out.lock().expect("lock"));
    out.retain(|e| !e.data.starts_with(b"Opus"));
    out
}

/// A desktop: a light background, a dark title bar, "text" lines; frame `i` adds a character
/// to the current line and moves a window every 20 s.
fn desktop(i: u64, f: &mut [u8]) {
    let (y, uv) = f.split_at_mut(W * H);
    y.fill(225);
    uv.fill(128);
    y[..W * 40].fill(60);
    let chars = i as usize / 3; // five characters a second
    let (line_len, lines) = (150, 40);
    for c in 0..chars.min(line_len * lines) {
        let (row, col) = (c / line_len, c % line_len);
        let (x0, y0) = (40 + col * 12, 80 + row * 24);
        for yy in y0..y0 + 14 {
            let glyph = (c * 7 + yy) % 5;
            y[yy * W + x0..yy * W + x0 + 8 - glyph].fill(40);
        }
    }
    let wx = 1100 + ((i / (20 * FPS)) % 4) as usize * 100;
    for yy in 300..700 {
        y[yy * W + wx..yy * W + wx + 600].fill(180);
    }
}

/// Peak resident memory of this process in MB (Linux).
fn peak_memory_mb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, arf, mp4] = args.as_slice()
        && flag == "--export-only"
    {
        run_export(arf.as_ref(), mp4.as_ref());
        return;
    }
    let minutes: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    gst::init().expect("GStreamer");
    let dir = tempfile::tempdir().expect("temp dir");
    let arf = dir.path().join("speed.arf");
    let mp4 = args
        .get(2)
        .map_or_else(|| dir.path().join("speed.mp4"), Into::into);

    let started = Instant::now();
    generate(&arf, minutes * 60);
    let generated = started.elapsed();
    let arf_bytes = std::fs::metadata(&arf).map(|m| m.len()).unwrap_or(0);
    println!(
        "generated {minutes} min of 1920x1080 VP8 at {FPS} fps with voice in {:.1} s ({} MB of ARF)",
        generated.as_secs_f64(),
        arf_bytes / 1_000_000
    );
    // The export runs in a process of its own, so that its peak memory is its own.
    let status = std::process::Command::new(std::env::current_exe().expect("own path"))
        .arg("--export-only")
        .arg(&arf)
        .arg(&mp4)
        .status()
        .expect("export process");
    assert!(status.success(), "export failed");
}

fn run_export(arf: &std::path::Path, mp4: &std::path::Path) {
    let mut last_shown = 0.0;
    let report = export(arf, mp4, &ExportOptions::default(), &mut |p| {
        if p - last_shown >= 0.1 {
            last_shown = p;
            eprint!("{:.0}% ", p * 100.0);
        }
    })
    .expect("export");
    eprintln!();
    println!("{report}");
    println!(
        "{:.2} minutes of recording per minute of export ({:.1} s of wall time for {:.1} min); \
         peak memory of the export process {} MB",
        report.speed,
        report.wall.as_secs_f64(),
        report.exported_us as f64 / 60e6,
        peak_memory_mb().map_or("unknown".into(), |m| m.to_string()),
    );
}

/// Writes the recording: all media encoded first, then written in arrival order.
fn generate(arf: &std::path::Path, seconds: u64) {
    let raw = gst::Caps::builder("video/x-raw")
        .field("format", "I420")
        .field("width", W as i32)
        .field("height", H as i32)
        .field("framerate", gst::Fraction::new(FPS as i32, 1))
        .build();
    let video = encode(
        raw,
        "vp8enc deadline=1 cpu-used=16 threads=2 target-bitrate=1500000 keyframe-max-dist=3000",
        seconds * FPS,
        1_000_000_000 / FPS,
        desktop,
        W * H * 3 / 2,
    );
    let pcm = gst::Caps::builder("audio/x-raw")
        .field("format", "S16LE")
        .field("rate", 48_000i32)
        .field("channels", 1i32)
        .field("layout", "interleaved")
        .build();
    let voice = encode(
        pcm,
        "opusenc frame-size=20 bitrate=32000",
        seconds * 50,
        20_000_000,
        |i, f| {
            for (s, out) in f.chunks_exact_mut(2).enumerate() {
                let n = i * 960 + s as u64;
                let v = if n % 96_000 < 4_800 {
                    (f64::sin(n as f64 * 2.0 * std::f64::consts::PI / 48.0) * 8000.0) as i16
                } else {
                    0
                };
                out.copy_from_slice(&v.to_le_bytes());
            }
        },
        960 * 2,
    );

    // Arrival times: media time plus 30 to 45 ms; events in between; all in arrival order.
    let mut records: Vec<(u64, u8, usize)> = Vec::new();
    let mut jitter = 1u64;
    let mut next = |max: u64| {
        jitter = jitter.wrapping_mul(6364136223846793005).wrapping_add(1);
        (jitter >> 33) % max
    };
    for (i, v) in video.iter().enumerate() {
        records.push((v.pts_us + 40_000 + next(15_000), 0, i));
    }
    for (i, a) in voice.iter().enumerate() {
        records.push((a.pts_us + 30_000 + next(10_000), 1, i));
    }
    for s in 0..seconds * 10 {
        records.push((s * 100_000 + 5_000, 2, s as usize));
    }
    records.sort();
    let header = Header {
        recording_id: "00000000-0000-4000-8000-00000000beef".into(),
        session_id: "00000000-0000-4000-8000-00000000cafe".into(),
        start_unix_ms: 1_700_000_000_000,
        metadata: "{}".into(),
    };
    let mut w = Writer::create(SyncedFile::create(arf).expect("arf"), &header).expect("writer");
    w.declare_track(0, &Track::new(1, Codec::Vp8, 90_000, "screen-p1"))
        .expect("track");
    w.declare_track(0, &Track::new(2, Codec::Opus, 48_000, "voice-mix"))
        .expect("track");
    let mut last = 0;
    for (at, kind, i) in records {
        let at = at.max(last);
        last = at;
        match kind {
            0 => {
                let v = &video[i];
                w.media(1, at, v.pts_us * 9 / 100, v.keyframe, &v.data)
                    .expect("media");
            }
            1 => {
                let a = &voice[i];
                w.media(2, at, a.pts_us * 48 / 1000, false, &a.data)
                    .expect("media");
            }
            _ => {
                // The pointer moves ten times a second; every 30 s a stroke, cleared 10 s later.
                let x = (i % 100) as f64 / 100.0;
                let json = format!(r#"{{"t":"move","at":[{x},0.5]}}"#);
                w.event(at, "pointer", &json).expect("event");
                if i % 300 == 0 {
                    let seg = r##"{"t":"seg","tool":"highlighter","c":"#f59e0b","a":[0.1,0.2],"b":[0.6,0.3]}"##;
                    w.event(at, "annotation", seg).expect("event");
                } else if i % 300 == 100 {
                    w.event(at, "annotation", r#"{"t":"clear"}"#)
                        .expect("event");
                }
            }
        }
    }
    w.close().expect("close");
}
