//! One mixer tick with two speakers, the cost that bounds how many calls one core can mix:
//! - the usual call, a CSR and a customer both speaking, nobody else: each hears the other's
//!   own packets, nothing decoded or encoded (issue 19; before, two decodes);
//! - with a listener: two decodes and the listener mix encoded;
//! - with a listener and a volume changed (V4): two decodes, three encodes, the worst case.
//!
//! And one 20 ms of a voice room of phones (the Janus AudioBridge comparison of issue 19): ten
//! G.711 A-law phones in one call, two holding the microphone, every phone sending a packet;
//! what the server does for them in that time, from their datagrams in to the ten it sends.
//!
//! And a phone's codec path alone, A-law to and from 48 kHz.
//!
//! `cargo bench --bench voice_mixer`

use std::collections::BTreeSet;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use rtp_types::RtpPacketBuilder;
use tandem_media::mix::Gain;
use tandem_media::phone::PhoneMedia;
use tandem_media::policy::MediaPolicy;
use tandem_media::sfu::Sfu;
use tandem_media::tone::sine_frame;
use tandem_media::voice_codec::{VoiceCodec, VoiceDecoder, VoiceEncoder};
use tandem_media::voice_mixer::{MixerConfig, TICK, VoiceMixer};

fn packets(freq: f64, n: usize) -> Vec<Vec<u8>> {
    let mut enc =
        opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).unwrap();
    (0..n)
        .map(|k| {
            let pcm = sine_frame(freq, 8000.0, k as u64);
            let mut out = vec![0; 1275];
            let len = enc.encode(&pcm, &mut out).unwrap();
            out.truncate(len);
            out
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let a = packets(440.0, 500);
    let b = packets(1000.0, 500);
    let cases = [
        (
            "mixer tick, 2 speakers, no listener (0 decodes, 0 encodes)",
            false,
            false,
        ),
        (
            "mixer tick, 2 speakers, a listener (2 decodes, 1 encode)",
            true,
            false,
        ),
        (
            "mixer tick, 2 speakers, a listener, a volume set (2 decodes, 3 encodes)",
            true,
            true,
        ),
    ];
    for (name, listening, gain) in cases {
        let mut mixer = VoiceMixer::new(MixerConfig::default()).unwrap();
        mixer.set_speakers([1u32, 2]).unwrap();
        mixer.set_listening(listening);
        if gain {
            mixer.set_gain(2, Gain::new(0.8));
        }
        let t0 = Instant::now();
        let mut frame = 0usize;
        c.bench_function(name, |bench| {
            bench.iter(|| {
                let now = t0 + TICK * frame as u32 + Duration::from_millis(100);
                let i = frame % a.len();
                mixer.push(now, 1, frame as u16, a[i].clone());
                mixer.push(now, 2, frame as u16, b[i].clone());
                frame += 1;
                black_box(mixer.handle_timeout(now).unwrap())
            })
        });
    }
}

/// 20 ms of A-law speech-like audio per frame: a sine, so the mix is not silence.
fn alaw_frames(freq: f64, n: usize) -> Vec<Vec<u8>> {
    let mut enc = VoiceEncoder::new(VoiceCodec::Pcma).unwrap();
    (0..n)
        .map(|k| enc.encode(&sine_frame(freq, 8000.0, k as u64)))
        .collect()
}

fn voice_room(c: &mut Criterion) {
    const PHONES: u32 = 10;
    let server: SocketAddr = "127.0.0.1:20000".parse().unwrap();
    let phone = |k: u32| -> SocketAddr { format!("127.0.0.1:{}", 30_000 + 2 * k).parse().unwrap() };
    let t0 = Instant::now();
    let mut sfu = Sfu::<u32>::new(server, MixerConfig::default()).unwrap();
    for k in 0..PHONES {
        let media = PhoneMedia {
            remote: phone(k),
            rtcp: phone(k),
            codec: VoiceCodec::Pcma,
            payload_type: 8,
            dtmf_payload_type: None,
            send: true,
            receive: true,
            confirmed: true,
            signalling: None,
        };
        sfu.add_phone(t0, SystemTime::now(), k, media).unwrap();
    }
    let policy = MediaPolicy {
        voice_members: (0..PHONES).collect(),
        speakers: BTreeSet::from([0, 1]),
        ..MediaPolicy::default()
    };
    sfu.set_policy(t0, policy).unwrap();
    let talk = [alaw_frames(440.0, 500), alaw_frames(1000.0, 500)];
    let quiet = alaw_frames(0.0, 1).remove(0);
    let mut frame = 0usize;
    let mut sent = 0u64;
    c.bench_function(
        "voice room: 10 G.711 phones, 2 talking, 20 ms of it (10 in, 10 out)",
        |bench| {
            bench.iter(|| {
                let now = t0 + TICK * frame as u32;
                for k in 0..PHONES {
                    let payload = match k {
                        0 | 1 => &talk[k as usize][frame % 500],
                        _ => &quiet,
                    };
                    let datagram = RtpPacketBuilder::<&[u8], &[u8]>::new()
                        .payload_type(8)
                        .sequence_number(frame as u16)
                        .timestamp(160 * frame as u32)
                        .ssrc(k)
                        .payload(payload.as_slice())
                        .write_vec()
                        .unwrap();
                    sfu.handle_receive(now, phone(k), server, &datagram);
                }
                sfu.handle_timeout(now).unwrap();
                while let Some(t) = sfu.poll_transmit() {
                    sent += black_box(t.contents.len()) as u64;
                }
                frame += 1;
            })
        },
    );
    // Only if it ran (a filter may have left it out).
    assert!(frame == 0 || sent > 0, "the room sent nothing");
}

/// A phone's codec path alone: 20 ms of A-law to the mixer's 48 kHz (decode, 8 to 48 kHz),
/// and 20 ms of a 48 kHz mix to A-law (48 to 8 kHz, encode). Resampling is most of both.
fn phone_codec(c: &mut Criterion) {
    let alaw = alaw_frames(440.0, 500);
    let mut dec = VoiceDecoder::new(VoiceCodec::Pcma).unwrap();
    let mut pcm = Vec::new();
    let mut frame = 0usize;
    c.bench_function("phone codec: 20 ms of A-law to 48 kHz", |bench| {
        bench.iter(|| {
            pcm.clear();
            dec.decode(&alaw[frame % alaw.len()], &mut pcm);
            frame += 1;
            black_box(pcm.len())
        })
    });
    let mix: Vec<_> = (0..500).map(|k| sine_frame(440.0, 8000.0, k)).collect();
    let mut enc = VoiceEncoder::new(VoiceCodec::Pcma).unwrap();
    c.bench_function("phone codec: 20 ms of 48 kHz to A-law", |bench| {
        bench.iter(|| {
            frame += 1;
            black_box(enc.encode(&mix[frame % mix.len()]))
        })
    });
}

criterion_group!(benches, bench, voice_room, phone_codec);
criterion_main!(benches);
