//! A live session's recording keeps its audio and video in sync (SPEC R1 "synchronised audio"),
//! end to end over real UDP: the customer's test client shares a screen that is black but for
//! white flashes, and speaks silence but for 1 kHz beeps at the same instants (its own media:
//! VP8 encoded here with GStreamer, the beeps encoded by the client, both timed from one clock).
//! The customer holds the call's microphone, so the listener mix the recorder keeps carries the
//! beeps. The CSR records with the customer's consent and stops; the server exports the
//! recording, and the MP4, decoded with ffmpeg, holds as many flashes as beeps, each flash
//! within 100 ms of its beep.

mod common;

use std::time::Duration;

use common::phone::{Phone, eventually, voice_call};
use common::{TestServer, media_files, newest_once_not};
use serde_json::json;
use tandem::store::{AccountRole, RecordingStatus};
use tandem_arf::Codec;
use tandem_media::client::{Pattern, PatternFrame};
use tandem_media::policy::TrackPurpose;
use tandem_media::testkit::sim::screen;

/// The pattern repeats every 4 s and flashes and beeps at these times in each period: gaps of
/// 1.2, 1.0 and 1.8 s, so that no shift by a gap pairs every flash with a beep. Flashes last
/// 120 ms and beeps 100 ms (1 kHz), as in the exporter's own sync test.
const PERIOD: Duration = Duration::from_secs(4);
const MARKS_MS: [u64; 3] = [1000, 2200, 3200];
const FLASH_US: u64 = 120_000;
/// The recording spans two whole periods.
const PERIODS: usize = 2;

/// One period of the customer's media.
fn pattern() -> Pattern {
    let flash = |t_us: u64| {
        MARKS_MS
            .iter()
            .any(|m| (m * 1000..m * 1000 + FLASH_US).contains(&t_us))
    };
    // Black (luma 16); a keyframe at least every 10 frames (0.4 s), which is what answers the
    // keyframe request made when the recording starts.
    let frames =
        media_files::video_flashing(Codec::Vp8, 640, 360, PERIOD.as_secs_f64(), 16, flash, 10);
    assert_eq!(
        frames.len() as u64,
        PERIOD.as_secs() * media_files::FPS,
        "one period of frames"
    );
    let frames = frames
        .into_iter()
        .map(|f| PatternFrame {
            at: Duration::from_micros(f.pts_us),
            keyframe: f.keyframe,
            data: f.data,
        })
        .collect();
    let beeps = MARKS_MS.map(Duration::from_millis).to_vec();
    Pattern::new(TrackPurpose::Screen, frames, PERIOD, beeps)
}

/// Waits until the pattern is 100 to 300 ms into a period: 0.7 s and more from any flash or
/// beep, so that a recording started or stopped then holds each one whole.
async fn at_a_quiet_moment(phone: &Phone) {
    let origin = phone.pattern_origin().expect("the pattern has started");
    while !(100..300).contains(&(origin.elapsed().as_millis() % PERIOD.as_millis())) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_share_and_call_keep_audio_and_video_in_sync() {
    let pattern = pattern();
    let t = TestServer::start().await;
    let carol = t.account("carol", AccountRole::Csr).await;
    // A voice call in which Dave holds a microphone (Carol keeps hers, but says nothing), and
    // Dave's screen shared after his consent: his flashes and beeps.
    let (_, mut csr, mut dave) = voice_call(&t, &carol, "In sync").await;
    let dave_id = dave.id();
    csr.cmd(json!({"type": "pass_microphone", "to": dave_id}))
        .await
        .unwrap();
    let _csr_phone = Phone::listen(&mut csr).await;
    let dave_phone = Phone::connect_with_pattern(&mut dave, vec![screen()], pattern).await;
    eventually("Dave's pattern runs", || {
        dave_phone.pattern_origin().is_some()
    })
    .await;
    let asked = common::ask(&mut csr, &mut dave, "view_desktop").await;
    common::allow(&mut csr, &mut dave, &asked).await;

    // Recorded for two whole periods: from early in one to early in the one after the next.
    let asked = common::ask(&mut csr, &mut dave, "recording").await;
    at_a_quiet_moment(&dave_phone).await;
    common::allow(&mut csr, &mut dave, &asked).await;
    tokio::time::sleep(PERIOD * PERIODS as u32 - Duration::from_millis(500)).await;
    at_a_quiet_moment(&dave_phone).await;
    csr.cmd(json!({"type": "stop_activity", "activity": "recording"}))
        .await
        .unwrap();

    let store = &t.server().store;
    newest_once_not(store, RecordingStatus::Recording).await;
    let rows = newest_once_not(store, RecordingStatus::Processing).await;
    let rec = &rows[0];
    assert_eq!(rec.status, RecordingStatus::Ready, "{:?}", rec.error);
    let mp4 = rec.mp4_path.clone().unwrap();

    common::check_exported_mp4(&mp4, rec.duration_ms.unwrap());

    // Every flash and every beep, and each flash within 100 ms of its beep.
    let flashes = media_files::flashes(&mp4);
    let beeps = media_files::beeps(&mp4);
    let offsets: Vec<i64> = flashes
        .iter()
        .zip(&beeps)
        .map(|(f, b)| ((b - f) * 1000.0).round() as i64)
        .collect();
    println!(
        "recorded {} ms; flashes at {flashes:?} s, beeps at {beeps:?} s; \
         audio after video by {offsets:?} ms",
        rec.duration_ms.unwrap()
    );
    assert_eq!(flashes.len(), MARKS_MS.len() * PERIODS, "{flashes:?}");
    assert_eq!(beeps.len(), flashes.len(), "{beeps:?}");
    for (f, b) in flashes.iter().zip(&beeps) {
        assert!((f - b).abs() < 0.1, "flash at {f} s, beep at {b} s");
    }
}
