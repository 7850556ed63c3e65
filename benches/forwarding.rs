//! The forwarding path: a customer's screen share (4 KB frames) through the SFU to three
//! receivers, over str0m with real SRTP on an in-memory wire. What is timed is the SFU's own
//! work per frame forwarded: decrypting and depacketizing the sender's packets, then
//! packetizing, encrypting and pacing them out to each receiver (its ICE/RTCP upkeep included).
//!
//! `cargo bench --bench forwarding`

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tandem_media::client::{Synthetic, VideoConfig};
use tandem_media::policy::TrackPurpose;
use tandem_media::testkit::sim::World;

const FPS: u32 = 50;

fn bench(c: &mut Criterion) {
    let mut w = World::new();
    w.join(1, None, vec![]);
    w.join(
        2,
        None,
        vec![VideoConfig::synthetic(
            TrackPurpose::Screen,
            Synthetic {
                frame_bytes: 4000,
                fps: FPS,
                keyframe_every: 150,
            },
        )],
    );
    w.join(3, None, vec![]);
    w.join(4, None, vec![]);
    w.set_policy(|p| p.screens = [2].into());
    w.run(Duration::from_secs(2));
    assert!(w.sfu.stats().video_frames_out > 0, "the share is forwarded");
    c.bench_function("forward one 4 KB video frame to 3 receivers", |b| {
        b.iter_custom(|iters| {
            let before = w.sfu_time;
            // One frame every 1000/FPS ms of simulated time.
            w.run(Duration::from_millis(1000 / u64::from(FPS)) * iters as u32);
            w.sfu_time - before
        })
    });
    let s = w.sfu.stats();
    println!(
        "frames in {}, out {} ({} per frame in)",
        s.video_frames_in,
        s.video_frames_out,
        s.video_frames_out as f64 / s.video_frames_in.max(1) as f64
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
