//! End-to-end exports of recordings made here with GStreamer, checked with ffprobe and by
//! decoding the MP4 back with ffmpeg.

use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tandem_arf::{Codec, Reader};
use tandem_export::testkit::{self, FPS, Recording, probe, top_level_boxes};

use tandem_export::{ExportError, ExportOptions, ExportReport, Stop, export, export_with};

fn run(input: &Path, output: &Path) -> Result<(ExportReport, Vec<f64>), ExportError> {
    let mut seen = Vec::new();
    let report = export(input, output, &ExportOptions::default(), &mut |p| {
        seen.push(p)
    })?;
    Ok((report, seen))
}

/// Files in `dir` other than the recording: an export leaves its MP4 and nothing else.
fn outputs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_none_or(|e| e != "arf"))
        .collect();
    v.sort();
    v
}

fn stream<'a>(info: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
    info["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} stream in {info}"))
}

fn seconds(v: &serde_json::Value) -> f64 {
    v.as_str().unwrap().parse().unwrap()
}

/// H.264 and AAC, each as long as the recording within 0.5 s, and the index before the media.
fn check_mp4(path: &Path, length_us: u64) -> serde_json::Value {
    let info = probe(path);
    let length = length_us as f64 / 1e6;
    let video = stream(&info, "video");
    let audio = stream(&info, "audio");
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(audio["codec_name"], "aac");
    for d in [
        &video["duration"],
        &audio["duration"],
        &info["format"]["duration"],
    ] {
        assert!((seconds(d) - length).abs() < 0.5, "{d} vs {length}: {info}");
    }
    let boxes = top_level_boxes(path);
    let pos = |k: &str| boxes.iter().position(|b| b == k).unwrap();
    assert!(pos("moov") < pos("mdat"), "not fast-start: {boxes:?}");
    info
}

fn is_red(px: &[u8]) -> bool {
    px[0] > 150 && px[1] < 90 && px[2] < 110
}

/// A screen share with voice, pointer moves and a pen stroke: the streams, their sync (white
/// flashes against beeps at the same instants), and the ink where it was drawn.
#[test]
fn exports_a_screen_share_with_voice_and_annotations() {
    let dir = tempfile::tempdir().unwrap();
    let arf = dir.path().join("rec.arf");
    let mp4 = dir.path().join("rec.mp4");
    let seconds = 8.0;
    let mut rec = Recording::new();
    rec.track(
        1,
        Codec::Vp8,
        "screen-p1",
        testkit::video_at(0),
        &testkit::video(Codec::Vp8, 640, 360, seconds, 60, true),
    );
    rec.track(
        2,
        Codec::Opus,
        "voice-mix",
        testkit::voice_at(0),
        &testkit::voice(seconds),
    );
    for i in 0..6u64 {
        let x = 0.3 + 0.04 * i as f64;
        let json = format!(r#"{{"t":"move","at":[{x},0.3],"from":"p2"}}"#);
        rec.event(1_000_000 + i * 100_000, "pointer", &json);
    }
    let seg = |a: f64, b: f64| {
        format!(
            r##"{{"t":"seg","tool":"pen","c":"#ff0000","a":[{a},0.6],"b":[{b},0.6],"from":"p2"}}"##
        )
    };
    rec.event(3_000_000, "annotation", &seg(0.2, 0.5));
    rec.event(3_020_000, "annotation", &seg(0.5, 0.8));
    rec.event(3_040_000, "annotation", r#"{"t":"seg","tool":"pen"}"#);
    rec.event(5_000_000, "annotation", r#"{"t":"clear","from":"p2"}"#);
    let length = rec.write(&arf);

    let (report, progress) = run(&arf, &mp4).unwrap();
    println!("{report}");
    assert_eq!(report.duration_us, length);
    assert_eq!(report.frames_out, (length * FPS).div_ceil(1_000_000));
    assert_eq!((report.width, report.height), (640, 360));
    assert_eq!(report.source_switches, 0);
    assert_eq!((report.annotations, report.ignored_events), (3, 1));
    assert_eq!(report.pointer_moves, 6);
    assert!(report.voice && !report.truncated);
    assert_eq!(report.frames_in, report.frames_decoded);
    assert!(report.audio_packets >= 399);
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    assert_eq!(progress.last(), Some(&1.0));
    assert_eq!(outputs(dir.path()), vec![mp4.clone()]);
    assert_eq!(report.output_bytes, std::fs::metadata(&mp4).unwrap().len());
    check_mp4(&mp4, length);

    // Sync: each white flash starts within 100 ms of the beep recorded at the same instant.
    let flashes = testkit::flashes(&mp4);
    let beeps = testkit::beeps(&mp4);
    println!("flashes {flashes:?}, beeps {beeps:?}");
    assert_eq!(flashes.len(), 3, "{flashes:?}");
    assert_eq!(beeps.len(), 3, "{beeps:?}");
    for (f, b) in flashes.iter().zip(&beeps) {
        assert!((f - b).abs() < 0.1, "flash at {f} s, beep at {b} s");
    }

    // The pointer while it moves, the red stroke after it is drawn, nothing red after `clear`.
    let (frame, w, _) = testkit::rgb_frame(&mp4, 1.7);
    let at = |x: usize, y: usize| &frame[(y * w + x) * 3..][..3];
    assert!(is_red(at((0.5 * 640.0) as usize, (0.3 * 360.0) as usize)));
    let (frame, w, h) = testkit::rgb_frame(&mp4, 3.6);
    let at = |x: usize, y: usize| &frame[(y * w + x) * 3..][..3];
    for x in [0.25, 0.5, 0.75] {
        let px = at((x * 640.0) as usize, (0.6 * 360.0) as usize);
        assert!(is_red(px), "{x}: {px:?}");
    }
    assert!(!is_red(at(320, 100)) && !is_red(at(320, 300)));
    let (frame, _, _) = testkit::rgb_frame(&mp4, 5.6);
    let red = frame.chunks_exact(3).filter(|p| is_red(p)).count();
    assert_eq!(red, 0, "red pixels after clear ({w}x{h})");
}

/// A camera (H.264), then a shared screen whose resolution doubles mid-way (the customer shares
/// another screen: the same track, a new keyframe), another participant's square screen on top
/// for a second, then the camera again: one output size, letterboxed, and no voice (a silent
/// audio track).
#[test]
fn switches_sources_and_resolutions() {
    let dir = tempfile::tempdir().unwrap();
    let arf = dir.path().join("rec.arf");
    let mp4 = dir.path().join("rec.mp4");
    let mut rec = Recording::new();
    let camera = testkit::video(Codec::H264, 640, 480, 7.5, 120, false);
    rec.track(1, Codec::H264, "camera-p2", testkit::video_at(0), &camera);
    rec.declare(2_000_000, 2, Codec::Vp8, "screen-p1");
    let small = testkit::video(Codec::Vp8, 640, 360, 2.0, 60, false);
    rec.media(2, Codec::Vp8, testkit::video_at(2_000_000), &small);
    let large = testkit::video(Codec::Vp8, 1280, 720, 2.5, 60, false);
    let last = rec.media(2, Codec::Vp8, testkit::video_at(4_500_000), &large);
    rec.end(last + 1, 2);
    let square = testkit::video(Codec::Vp8, 480, 480, 1.0, 60, false);
    rec.track(
        3,
        Codec::Vp8,
        "screen-p3",
        testkit::video_at(5_500_000),
        &square,
    );
    let length = rec.write(&arf);

    let (report, _) = run(&arf, &mp4).unwrap();
    println!("{report}");
    assert_eq!((report.width, report.height), (640, 480));
    assert_eq!(
        report.source_switches, 4,
        "camera, screen p1, screen p3, screen p1, camera"
    );
    assert!(!report.voice);
    let info = check_mp4(&mp4, length);
    let video = stream(&info, "video");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(640), Some(480))
    );

    // The 16:9 screen in a 4:3 frame at both its sizes: black bars above and below.
    for t in [3.0, 5.0, 6.8] {
        let (frame, w, _) = testkit::rgb_frame(&mp4, t);
        let luma = |y: usize| frame[(y * w + 320) * 3] as i32;
        assert!(luma(20) < 30, "{t}: bar {}", luma(20));
        assert!((50..90).contains(&luma(240)), "{t}: picture {}", luma(240));
    }
    // The square screen: bars left and right.
    let (frame, w, _) = testkit::rgb_frame(&mp4, 6.0);
    let luma = |x: usize| frame[(240 * w + x) * 3] as i32;
    assert!(
        luma(20) < 30 && (50..90).contains(&luma(320)),
        "{} {}",
        luma(20),
        luma(320)
    );
    // The camera fills the frame.
    for t in [1.0, 7.3] {
        let (frame, w, _) = testkit::rgb_frame(&mp4, t);
        assert!(frame[(20 * w + 320) * 3] > 100, "{t}: the camera");
    }
    assert!(
        testkit::pcm(&mp4).iter().all(|&s| s.unsigned_abs() < 50),
        "silent"
    );
}

fn short_recording(dir: &Path) -> (PathBuf, u64) {
    let arf = dir.join("rec.arf");
    let mut rec = Recording::new();
    let video = testkit::video(Codec::Vp8, 320, 180, 4.0, 60, true);
    rec.track(1, Codec::Vp8, "screen-p1", testkit::video_at(0), &video);
    rec.track(
        2,
        Codec::Opus,
        "voice-mix",
        testkit::voice_at(0),
        &testkit::voice(4.0),
    );
    let length = rec.write(&arf);
    (arf, length)
}

/// Offsets of the blocks of an ARF file (not its trailer), with each block's last arrival time.
fn blocks(path: &Path) -> Vec<(usize, usize, u64)> {
    let start = Reader::open(path).unwrap().data_start() as usize;
    let data = std::fs::read(path).unwrap();
    let mut pos = start;
    let mut out = Vec::new();
    while data.get(pos..pos + 4) == Some(b"ARFB") {
        let len = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let last = u64::from_le_bytes(data[pos + 20..pos + 28].try_into().unwrap());
        out.push((pos, len, last));
        pos += 36 + len;
    }
    out
}

#[test]
fn truncated_recording_exports_what_it_can() {
    let dir = tempfile::tempdir().unwrap();
    let (arf, _) = short_recording(dir.path());
    let blocks = blocks(&arf);
    assert!(blocks.len() >= 3, "{blocks:?}");
    let (pos, len, _) = blocks[blocks.len() / 2];
    let readable = blocks[blocks.len() / 2 - 1].2;
    let data = std::fs::read(&arf).unwrap();
    std::fs::write(&arf, &data[..pos + 36 + len / 2]).unwrap();

    let mp4 = dir.path().join("rec.mp4");
    let (report, _) = run(&arf, &mp4).unwrap();
    assert!(report.truncated);
    assert!(report.to_string().contains("truncated"));
    assert_eq!(report.duration_us, readable);
    check_mp4(&mp4, readable);
}

#[test]
fn corrupt_recording_fails_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (arf, _) = short_recording(dir.path());
    let mut data = std::fs::read(&arf).unwrap();
    let mid = data.len() / 2;
    data[mid..mid + 16].iter_mut().for_each(|b| *b ^= 0xff);
    std::fs::write(&arf, &data).unwrap();

    let mp4 = dir.path().join("rec.mp4");
    let err = run(&arf, &mp4).unwrap_err();
    assert_eq!(err.code(), "corrupt_recording", "{err}");
    let arf_err = err.recording_error().unwrap();
    assert!(
        matches!(arf_err.code(), "corrupt_block" | "bad_record"),
        "{arf_err}"
    );
    assert!(err.to_string().contains("offset"), "{err}");
    assert_eq!(outputs(dir.path()), Vec::<PathBuf>::new());
}

#[test]
fn unknown_codec_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let arf = dir.path().join("rec.arf");
    let mut rec = Recording::new();
    let video = testkit::video(Codec::Vp8, 160, 90, 1.0, 60, false);
    rec.track(1, Codec::Vp8, "screen-p1", testkit::video_at(0), &video);
    rec.write(&arf);
    // The track record is the first of the first block: patch its codec id (block header 36,
    // record header 13, track id 2, kind 1), then make the checksums right again.
    let start = Reader::open(&arf).unwrap().data_start() as usize;
    let mut data = std::fs::read(&arf).unwrap();
    assert_eq!(data[start + 36], 0x01, "a track record");
    data[start + 36 + 13 + 3] = 99;
    tandem_arf::fuzzing::fix_checksums(&mut data);
    std::fs::write(&arf, &data).unwrap();

    let mp4 = dir.path().join("rec.mp4");
    let err = run(&arf, &mp4).unwrap_err();
    assert_eq!(err.code(), "unsupported_codec", "{err}");
    assert!(err.to_string().contains("codec id 99"), "{err}");
    assert_eq!(outputs(dir.path()), Vec::<PathBuf>::new());
}

#[test]
fn unwritable_output_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (arf, _) = short_recording(dir.path());
    let mp4 = dir.path().join("missing").join("rec.mp4");
    let err = run(&arf, &mp4).unwrap_err();
    assert_eq!(err.code(), "output_io", "{err}");
    assert!(err.to_string().contains("missing/rec.mp4"), "{err}");
    assert_eq!(outputs(dir.path()), Vec::<PathBuf>::new());

    let err = run(&arf, dir.path()).unwrap_err();
    assert_eq!(err.code(), "output_io", "{err}");
}

/// A session recorded while nothing was shared and nobody talked holds only events: there is no
/// MP4 to make of it, which is said, and nothing is left behind. (Exporting it as black silence
/// once stalled the encoders for good.)
#[test]
fn a_recording_with_no_media_is_refused_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    let arf = dir.path().join("quiet.arf");
    let mut rec = Recording::new();
    rec.event(0, "session_view", "{}");
    rec.event(250_000, "activity_stopped", "{}");
    rec.event(488_000, "session_ended", "{}");
    rec.write(&arf);
    let mp4 = dir.path().join("quiet.mp4");
    let err = run(&arf, &mp4).unwrap_err();
    assert_eq!(err.code(), "empty_recording", "{err}");
    assert_eq!(outputs(dir.path()), Vec::<PathBuf>::new());
}

#[test]
fn missing_input_and_empty_recording_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mp4 = dir.path().join("rec.mp4");
    let err = run(&dir.path().join("none.arf"), &mp4).unwrap_err();
    assert_eq!(err.code(), "input_io", "{err}");
    let arf = dir.path().join("empty.arf");
    Recording::default().write(&arf);
    let err = run(&arf, &mp4).unwrap_err();
    assert_eq!(err.code(), "empty_recording", "{err}");
    let not_arf = dir.path().join("x.arf");
    std::fs::write(&not_arf, b"this is not a recording at all, not even close").unwrap();
    let err = run(&not_arf, &mp4).unwrap_err();
    assert_eq!(err.code(), "corrupt_recording", "{err}");
    assert_eq!(err.recording_error().map(|e| e.code()), Some("bad_magic"));
    assert_eq!(outputs(dir.path()), Vec::<PathBuf>::new());
}

#[test]
fn bad_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let opts = ExportOptions {
        fps: 0,
        ..ExportOptions::default()
    };
    let err = export(
        &dir.path().join("a.arf"),
        &dir.path().join("a.mp4"),
        &opts,
        &mut |_| {},
    )
    .unwrap_err();
    assert_eq!(err.code(), "bad_options");
}

/// A VP8 keyframe whose header claims 16383x16383 (a decoder would allocate about 400 MB a
/// picture for it, from a few bytes): refused before any decoder sees it, with the limit's
/// code, and nothing is left behind. A real frame above a lower limit is refused the same way.
#[test]
fn frames_larger_than_the_limit_are_refused_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let arf = dir.path().join("rec.arf");
    let mut video = testkit::video(Codec::Vp8, 160, 90, 1.0, 60, false);
    assert!(video[0].keyframe);
    video[0].data[6..10].copy_from_slice(&[0xff, 0x3f, 0xff, 0x3f]);
    assert_eq!(
        tandem_arf::frame_size(Codec::Vp8, &video[0].data),
        Some((16383, 16383))
    );
    let mut rec = Recording::new();
    rec.track(1, Codec::Vp8, "screen-p1", testkit::video_at(0), &video);
    rec.write(&arf);
    let mp4 = dir.path().join("rec.mp4");
    let err = run(&arf, &mp4).unwrap_err();
    assert_eq!(err.code(), "frame_too_large", "{err}");
    assert!(err.to_string().contains("16383x16383"), "{err}");
    assert_eq!(outputs(dir.path()), Vec::<PathBuf>::new());

    std::fs::remove_file(&arf).unwrap();
    let (arf, _) = short_recording(dir.path());
    let small = ExportOptions {
        max_source_width: 160,
        max_source_height: 90,
        ..ExportOptions::default()
    };
    let err = export(&arf, &mp4, &small, &mut |_| {}).unwrap_err();
    assert_eq!(err.code(), "frame_too_large", "{err}");
    assert_eq!(outputs(dir.path()), Vec::<PathBuf>::new());
}

/// An export stops between frames when its caller cancels it or its time is up, and leaves
/// nothing behind either way.
#[test]
fn an_export_stops_when_cancelled_or_out_of_time() {
    let dir = tempfile::tempdir().unwrap();
    let (arf, _) = short_recording(dir.path());
    let mp4 = dir.path().join("rec.mp4");
    let cancelled = AtomicBool::new(false);
    let is_cancelled = || cancelled.load(Ordering::Relaxed);
    let stop = Stop {
        cancelled: &is_cancelled,
        time_allowed: &|_| Duration::MAX,
    };
    let mut seen = Vec::new();
    let err = export_with(
        &arf,
        &mp4,
        &ExportOptions::default(),
        &mut |p| {
            seen.push(p);
            if p > 0.2 {
                cancelled.store(true, Ordering::Relaxed);
            }
        },
        &stop,
    )
    .unwrap_err();
    assert_eq!(err.code(), "cancelled", "{err}");
    assert!(seen.iter().all(|p| *p < 0.5), "went on after: {seen:?}");
    assert_eq!(outputs(dir.path()), Vec::<PathBuf>::new());

    let never = || false;
    let length = std::sync::Mutex::new(None);
    let no_time = |recorded: Duration| {
        *length.lock().unwrap() = Some(recorded);
        Duration::ZERO
    };
    let stop = Stop {
        cancelled: &never,
        time_allowed: &no_time,
    };
    let err = export_with(&arf, &mp4, &ExportOptions::default(), &mut |_| {}, &stop).unwrap_err();
    assert_eq!(err.code(), "export_timeout", "{err}");
    let recorded = length.lock().unwrap().unwrap();
    assert!(
        recorded > Duration::from_secs(3) && recorded < Duration::from_secs(5),
        "the allowance is asked for with the recording's length: {recorded:?}"
    );
    assert_eq!(outputs(dir.path()), Vec::<PathBuf>::new());
}
