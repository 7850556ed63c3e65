//! Phones in the SFU (SPEC V5, V3): a phone's RTP is its own, its voice is mixed only while it
//! holds a microphone, the mix reaches it in its codec, and its counts outlive it.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use rtp_types::{RtpPacket, RtpPacketBuilder};
use tandem_media::phone::counts::PhoneDrop;
use tandem_media::phone::{PhoneMedia, WrongAddress};
use tandem_media::policy::MediaPolicy;
use tandem_media::sfu::{Sfu, SfuEvent};
use tandem_media::tone::{power, sine_frame};
use tandem_media::voice_codec::{VoiceCodec, VoiceDecoder, VoiceEncoder};
use tandem_media::voice_mixer::MixerConfig;

const A: u8 = 1;
const B: u8 = 2;

fn phone(remote: &str) -> PhoneMedia {
    tandem_media::testkit::phone_media(remote.parse().unwrap())
}

fn policy(speakers: &[u8]) -> MediaPolicy<u8> {
    MediaPolicy {
        voice_members: BTreeSet::from([A, B]),
        speakers: speakers.iter().copied().collect(),
        ..MediaPolicy::default()
    }
}

/// The RTP packet of frame `i` of a phone sending a `freq` tone in PCMU.
fn pcmu_frame(enc: &mut VoiceEncoder, freq: f64, i: u64, ssrc: u32) -> Vec<u8> {
    let payload = enc.encode(&sine_frame(freq, 8000.0, i));
    RtpPacketBuilder::<&[u8], &[u8]>::new()
        .payload_type(0)
        .sequence_number(i as u16)
        .timestamp((i * 160) as u32)
        .ssrc(ssrc)
        .payload(payload.as_slice())
        .write_vec()
        .unwrap()
}

/// Two phones talk for `frames` x 20 ms: A a 440 Hz tone, B 1000 Hz. Answers what each heard.
fn talk(sfu: &mut Sfu<u8>, start: Instant, frames: u64) -> (Vec<i16>, Vec<i16>) {
    let local: SocketAddr = "192.0.2.1:7000".parse().unwrap();
    let (a, b): (SocketAddr, SocketAddr) = (
        "10.0.0.1:4000".parse().unwrap(),
        "10.0.0.2:4000".parse().unwrap(),
    );
    let mut enc = [
        VoiceEncoder::new(VoiceCodec::Pcmu).unwrap(),
        VoiceEncoder::new(VoiceCodec::Pcmu).unwrap(),
    ];
    let mut dec = [
        VoiceDecoder::new(VoiceCodec::Pcmu).unwrap(),
        VoiceDecoder::new(VoiceCodec::Pcmu).unwrap(),
    ];
    let mut heard = (Vec::new(), Vec::new());
    for i in 0..frames {
        let now = start + Duration::from_millis(20 * i);
        for (k, (from, freq)) in [(a, 440.0), (b, 1000.0)].into_iter().enumerate() {
            let rtp = pcmu_frame(&mut enc[k], freq, i, k as u32 + 1);
            assert!(
                sfu.handle_receive(now, from, local, &rtp),
                "the phone's packet is taken"
            );
        }
        sfu.handle_timeout(now).unwrap();
        while let Some(t) = sfu.poll_transmit() {
            let p = RtpPacket::parse(&t.contents).unwrap();
            if t.destination == a {
                dec[0].decode(p.payload(), &mut heard.0);
            } else if t.destination == b {
                dec[1].decode(p.payload(), &mut heard.1);
            }
        }
    }
    heard
}

#[test]
fn phones_are_heard_only_with_a_microphone_and_hear_the_mix() {
    let start = Instant::now();
    let mut sfu: Sfu<u8> =
        Sfu::new("192.0.2.1:7000".parse().unwrap(), MixerConfig::default()).unwrap();
    sfu.add_phone(start, SystemTime::now(), A, phone("10.0.0.1:4000"))
        .unwrap();
    sfu.add_phone(start, SystemTime::now(), B, phone("10.0.0.2:4000"))
        .unwrap();
    // Only A speaks: B hears A's tone, and none of its own.
    sfu.set_policy(start, policy(&[A])).unwrap();
    let (_, b_heard) = talk(&mut sfu, start, 100);
    let tail = &b_heard[b_heard.len() - 24_000..];
    assert!(
        power(tail, 440.0) > 100.0 * power(tail, 1000.0).max(1.0),
        "B hears A only"
    );
    // Both speak: each hears the other.
    let later = start + Duration::from_secs(3);
    sfu.set_policy(later, policy(&[A, B])).unwrap();
    let (a_heard, b_heard) = talk(&mut sfu, later, 100);
    let (a_tail, b_tail) = (
        &a_heard[a_heard.len() - 24_000..],
        &b_heard[b_heard.len() - 24_000..],
    );
    assert!(
        power(a_tail, 1000.0) > 100.0 * power(a_tail, 440.0).max(1.0),
        "A hears B"
    );
    assert!(
        power(b_tail, 440.0) > 100.0 * power(b_tail, 1000.0).max(1.0),
        "B hears A"
    );

    // A stranger on the phones' host is nobody's; garbage from a phone harms nothing.
    let local: SocketAddr = "192.0.2.1:7000".parse().unwrap();
    assert!(!sfu.handle_receive(later, "10.0.0.1:4001".parse().unwrap(), local, &[0x80; 40]));
    assert!(sfu.handle_receive(later, "10.0.0.1:4000".parse().unwrap(), local, b"junk"));
    // A's RTP (its SSRC, 1) from another port of its host is A's, from a wrong address:
    // dropped, counted, and reported once, with both addresses. Another stream from that
    // host, or A's from another host, is nobody's.
    let natted: SocketAddr = "10.0.0.1:4001".parse().unwrap();
    let voice = |ssrc| {
        RtpPacketBuilder::<&[u8], &[u8]>::new()
            .payload_type(0)
            .ssrc(ssrc)
            .payload(&[0xff; 160][..])
            .write_vec()
            .unwrap()
    };
    while sfu.poll_event().is_some() {}
    assert!(sfu.stray(natted, &voice(1)) && sfu.stray(natted, &voice(1)));
    assert!(!sfu.stray(natted, &voice(5)));
    assert!(!sfu.stray("10.0.0.3:4000".parse().unwrap(), &voice(1)));
    let report = WrongAddress {
        expected: "10.0.0.1:4000".parse().unwrap(),
        actual: natted,
    };
    assert_eq!(
        std::iter::from_fn(|| sfu.poll_event()).collect::<Vec<_>>(),
        vec![SfuEvent::WrongAddress { peer: A, report }]
    );
    assert_eq!(sfu.stats().phone.dropped(PhoneDrop::WrongAddress), 2);

    // Counts only grow, also when a phone leaves.
    let before = sfu.stats();
    assert!(
        before.phone.packets_in >= 400 && before.phone.packets_out > 0,
        "{before:?}"
    );
    sfu.remove_peer(A);
    let after = sfu.stats();
    assert_eq!(after.phone.packets_in, before.phone.packets_in);
    assert!(after.since(&before).phone.packets_in == 0);
    assert_eq!(sfu.peer_count(), 1);
}

/// Where phone `k` (0-based; participant `k + 1`) of a voice room is.
fn room_phone(k: usize) -> SocketAddr {
    format!("10.0.0.{}:4000", k + 1).parse().unwrap()
}

/// A voice room of `phones` phones, the first two holding the microphones, and the CSR (9) in
/// the call with no media connection, as when the CSR's page has not connected.
fn room(start: Instant, phones: usize) -> Sfu<u8> {
    let mut sfu: Sfu<u8> =
        Sfu::new("192.0.2.1:7000".parse().unwrap(), MixerConfig::default()).unwrap();
    for k in 0..phones {
        let media = phone(&room_phone(k).to_string());
        sfu.add_phone(start, SystemTime::now(), k as u8 + 1, media)
            .unwrap();
    }
    let members = (1..=phones as u8).chain([9]).collect();
    let policy = MediaPolicy {
        voice_members: members,
        speakers: BTreeSet::from([1, 2]),
        ..MediaPolicy::default()
    };
    sfu.set_policy(start, policy).unwrap();
    sfu
}

/// A voice room of G.711 phones (issue 19): phones 1 to 4, phones 1 and 2 holding the
/// microphones, each phone sending its own tone, and the CSR (9) in the call with no media
/// connection, as when the CSR's page has not connected. Mixed as PCM, never through Opus.
#[test]
fn a_room_of_g711_phones_is_mixed_without_any_opus_work() {
    const TONES: [f64; 4] = [440.0, 1000.0, 2500.0, 3100.0];
    let start = Instant::now();
    let local: SocketAddr = "192.0.2.1:7000".parse().unwrap();
    let at = room_phone;
    let mut sfu = room(start, 4);
    let mut enc: Vec<_> = (0..4)
        .map(|_| VoiceEncoder::new(VoiceCodec::Pcmu).unwrap())
        .collect();
    let mut dec: Vec<_> = (0..4)
        .map(|_| VoiceDecoder::new(VoiceCodec::Pcmu).unwrap())
        .collect();
    let mut heard = vec![Vec::new(); 4];
    for i in 0..150u64 {
        let now = start + Duration::from_millis(20 * i);
        for (k, freq) in TONES.iter().enumerate() {
            let rtp = pcmu_frame(&mut enc[k], *freq, i, k as u32 + 1);
            assert!(sfu.handle_receive(now, at(k), local, &rtp));
        }
        sfu.handle_timeout(now).unwrap();
        while let Some(t) = sfu.poll_transmit() {
            if let Some(k) = (0..4).find(|k| at(*k) == t.destination) {
                let p = RtpPacket::parse(&t.contents).unwrap();
                dec[k].decode(p.payload(), &mut heard[k]);
            }
        }
    }
    let tail = |k: usize| &heard[k][heard[k].len() - 24_000..];
    let loud = |pcm: &[i16], f: f64| power(pcm, f) > 1e11;
    let quiet = |pcm: &[i16], f: f64| power(pcm, f) < 1e9;
    assert!(
        loud(tail(0), 1000.0) && quiet(tail(0), 440.0),
        "1 hears 2, not itself"
    );
    assert!(
        loud(tail(1), 440.0) && quiet(tail(1), 1000.0),
        "2 hears 1, not itself"
    );
    for k in [2, 3] {
        assert!(
            loud(tail(k), 440.0) && loud(tail(k), 1000.0),
            "listener {} hears both speakers",
            k + 1
        );
    }
    for k in 0..4 {
        assert!(
            quiet(tail(k), 2500.0) && quiet(tail(k), 3100.0),
            "nobody hears a phone without a microphone"
        );
    }
    let stats = sfu.stats();
    assert!(stats.audio_out > 4 * 100, "{stats:?}");
    assert_eq!(
        (stats.voice_decodes, stats.voice_encodes),
        (0, 0),
        "no Opus decode or encode in a room of G.711 phones"
    );
}

/// Phones in the chain below.
const CHAIN: u8 = 6;

/// Phone `k` of the chain: on one host, its RTP port 4000 + k, and so its implied RTCP port
/// (RTP's plus one) the next phone's RTP port.
fn chained(k: u8) -> SocketAddr {
    format!("10.0.0.9:{}", 4000 + u16::from(k)).parse().unwrap()
}

/// The chain of phones in one call, `speakers` holding microphones, for 100 x 20 ms in which
/// `send(i, k)` is what phone `k` sends in frame `i`, if anything: how many datagrams each
/// phone was sent.
fn run_chain(
    speakers: &[u8],
    mut send: impl FnMut(u64, u8) -> Option<Vec<u8>>,
) -> [u32; CHAIN as usize] {
    let start = Instant::now();
    let local: SocketAddr = "192.0.2.1:7000".parse().unwrap();
    let mut sfu: Sfu<u8> = Sfu::new(local, MixerConfig::default()).unwrap();
    for k in 0..CHAIN {
        let media = PhoneMedia {
            rtcp: chained(k + 1),
            ..phone(&chained(k).to_string())
        };
        sfu.add_phone(start, SystemTime::now(), k + 1, media)
            .unwrap();
    }
    sfu.set_policy(
        start,
        MediaPolicy {
            voice_members: (1..=CHAIN).collect(),
            speakers: speakers.iter().copied().collect(),
            ..MediaPolicy::default()
        },
    )
    .unwrap();
    let mut got = [0u32; CHAIN as usize];
    for i in 0..100u64 {
        let now = start + Duration::from_millis(20 * i);
        for k in 0..CHAIN {
            if let Some(datagram) = send(i, k) {
                assert!(sfu.handle_receive(now, chained(k), local, &datagram));
            }
        }
        sfu.handle_timeout(now).unwrap();
        while let Some(t) = sfu.poll_transmit() {
            if let Some(k) = (0..CHAIN).find(|k| chained(*k) == t.destination) {
                got[usize::from(k)] += 1;
            }
        }
    }
    assert!(
        !std::iter::from_fn(|| sfu.poll_event())
            .any(|e| matches!(e, SfuEvent::WrongAddress { .. })),
        "no phone's RTP was taken for another's"
    );
    got
}

/// Phones on one host (a PBX, or callers behind one NAT) pick their own RTP ports, and a
/// phone's RTCP port is only implied (its RTP port plus one): here each phone's RTP comes from
/// the port its neighbour's RTCP is implied on. Every phone is heard as itself, so every one is
/// sent the call (before, a neighbour took its RTP as RTCP, and the phone, never heard, was sent
/// nothing: about 1 % of the phones in a load test of 400).
#[test]
fn a_phone_whose_rtp_port_is_another_phone_s_rtcp_port_is_still_heard() {
    let mut enc: Vec<_> = (0..CHAIN)
        .map(|_| VoiceEncoder::new(VoiceCodec::Pcmu).unwrap())
        .collect();
    let got = run_chain(&[1, 2], |i, k| {
        Some(pcmu_frame(
            &mut enc[usize::from(k)],
            440.0,
            i,
            u32::from(k) + 1,
        ))
    });
    assert!(
        got.iter().all(|n| *n > 80),
        "every phone is heard and sent the call: {got:?}"
    );
}

/// The same chain, each phone sending only RTCP, multiplexed on its RTP port (a phone that
/// only listens): each report is taken as its own phone's, which is then heard (consent) and
/// sent the call, not as the neighbour's whose implied RTCP port it is.
#[test]
fn a_phone_s_rtcp_from_its_own_port_is_its_own_even_where_a_neighbour_expects_rtcp() {
    let got = run_chain(&[], |i, k| {
        // A receiver report from the phone's SSRC with no report blocks, every 500 ms.
        let ssrc = (u32::from(k) + 1).to_be_bytes();
        (i % 25 == 0).then(|| vec![0x80, 201, 0, 1, ssrc[0], ssrc[1], ssrc[2], ssrc[3]])
    });
    assert!(
        got.iter().all(|n| *n > 50),
        "every phone is heard and sent the call: {got:?}"
    );
}

/// What a call says it would take from an address the worker has not routed yet (the worker
/// offers such a datagram only to calls that claim it, so a flood from new addresses costs
/// each call a look, not a parse): a phone's RTP from its address, its RTCP from its RTCP
/// port, a WebRTC peer's STUN check from wherever it moved and anything from the address its
/// checks found; not garbage, not a stranger's RTP, not a STUN check for someone else.
#[test]
fn a_call_claims_from_a_new_address_only_what_it_would_take() {
    use tandem_media::sfu::{Claim, Datagram, Stun};
    use tandem_media::testkit::sim::World;

    let mut w = World::new();
    w.join(A, None, vec![]);
    w.run(Duration::from_secs(2));
    assert!(w.client(A).connected);
    let server: SocketAddr = "192.0.2.1:7000".parse().unwrap();
    w.sfu
        .add_phone(
            w.now,
            SystemTime::now(),
            B,
            PhoneMedia {
                rtcp: "10.0.0.7:4001".parse().unwrap(),
                ..phone("10.0.0.7:4000")
            },
        )
        .unwrap();
    let now = w.now;
    let claim = |w: &World, from: &str, data: &[u8]| {
        w.sfu
            .claim(&Datagram::new(now, from.parse().unwrap(), server, data))
    };

    let mut enc = VoiceEncoder::new(VoiceCodec::Pcmu).unwrap();
    let rtp = pcmu_frame(&mut enc, 440.0, 1, 7);
    let mut rtcp = rtp.clone();
    rtcp[1] = 200; // a sender report's packet type

    // The peer's own STUN check (a Binding request with its credentials), as its client sends
    // it.
    let client = w.clients.get_mut(&A).unwrap();
    let mut at = now;
    let check = loop {
        at += Duration::from_millis(10);
        assert!(
            at < now + Duration::from_secs(30),
            "the client sent no STUN check"
        );
        client.handle_timeout(at).unwrap();
        if let Some(t) = std::iter::from_fn(|| client.poll_transmit())
            .find(|t| t.contents.len() > 20 && t.contents[..2] == [0, 1])
        {
            break t.contents;
        }
    };
    // A byte of its MESSAGE-INTEGRITY's HMAC (FINGERPRINT comes last, 8 bytes): it still
    // parses, and fails only the integrity check.
    let mut forged = check.clone();
    let in_hmac = forged.len() - 20;
    forged[in_hmac] ^= 0x20;
    let peer = w.client(A).addr().to_string();
    let moved = "10.9.9.9:5555";
    let cases: [(&str, &[u8], Claim, &str); 10] = [
        ("10.0.0.7:4000", &rtp, Claim::PhoneHere, "the phone's RTP"),
        (
            "10.0.0.7:4001",
            &rtcp,
            Claim::Yes,
            "its RTCP from its RTCP port",
        ),
        ("10.0.0.7:4001", &rtp, Claim::No, "RTP from its RTCP port"),
        ("10.0.0.8:4000", &rtp, Claim::No, "a stranger's RTP"),
        (moved, &check, Claim::Yes, "a moved peer's check"),
        (&peer, &rtp, Claim::Yes, "anything from the peer's address"),
        (
            moved,
            &rtp,
            Claim::No,
            "RTP from where the peer moved, before its check",
        ),
        (moved, &forged, Claim::No, "a forged check"),
        (&peer, b"\x00\x01\x00\x00garbage", Claim::No, "garbage"),
        (moved, b"", Claim::No, "nothing"),
    ];
    for (from, data, expected, what) in cases {
        assert_eq!(claim(&w, from, data), expected, "{what}");
    }
    // What the worker finds the call by, before asking it: the check names the server's user
    // fragment on the peer's connection; media names nobody.
    fn stun<'a>(now: Instant, from: SocketAddr, to: SocketAddr, data: &'a [u8]) -> Stun<'a> {
        Datagram::new(now, from, to, data).stun()
    }
    let stun = |data| stun(now, moved.parse().unwrap(), server, data);
    let Stun::Check(ufrag) = stun(&check) else {
        panic!("the check is not read as one: {:?}", stun(&check));
    };
    assert_eq!(w.sfu.local_ufrags().collect::<Vec<_>>(), [ufrag]);
    assert_eq!(stun(&rtp), Stun::No);
    assert_eq!(
        stun(b"\x00\x01\x00\x00garbage"),
        Stun::No,
        "no magic cookie"
    );
    // What it claims is what it takes: those it does not claim first, as a declined datagram
    // changes nothing.
    let (no, yes): (Vec<_>, Vec<_>) = cases.iter().partition(|c| c.2 == Claim::No);
    for &(from, data, expected, what) in no.into_iter().chain(yes) {
        let took = w
            .sfu
            .handle_receive(now, from.parse().unwrap(), server, data);
        assert_eq!(took, expected != Claim::No, "{what}");
    }
}

/// Phones that hear only phones hear them as sent (issue 19): a speaker hearing one other
/// phone of its codec is given that phone's own samples, one for one, and a listener the
/// mix of the two made at 8 kHz, nothing resampled to 48 kHz and back. Each phone sends noise,
/// so no two frames are alike and a frame out of place would show.
#[test]
fn phones_hear_phones_as_they_were_sent_and_the_mix_of_them_made_at_8_khz() {
    let start = Instant::now();
    let local: SocketAddr = "192.0.2.1:7000".parse().unwrap();
    let at = room_phone;
    let mut sfu = room(start, 3);
    let mut seed = 0x2545_f491_u32;
    let mut noise = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        (seed % 12_000) as i16 - 6_000
    };
    // Phone 3 holds no microphone; it sends too (a phone is sent nothing until heard).
    let mut sent: [Vec<Vec<u8>>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    // What each phone was sent, with the frame in which it was sent.
    let mut heard: [Vec<(u64, Vec<u8>)>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for i in 0..100u64 {
        let now = start + Duration::from_millis(20 * i);
        for (k, sent) in sent.iter_mut().enumerate() {
            let payload: Vec<u8> = (0..160)
                .map(|_| audio_codec_algorithms::encode_ulaw(noise()))
                .collect();
            let rtp = RtpPacketBuilder::<&[u8], &[u8]>::new()
                .payload_type(0)
                .sequence_number(i as u16)
                .timestamp((i * 160) as u32)
                .ssrc(k as u32 + 1)
                .payload(payload.as_slice())
                .write_vec()
                .unwrap();
            assert!(sfu.handle_receive(now, at(k), local, &rtp));
            sent.push(payload);
        }
        sfu.handle_timeout(now).unwrap();
        while let Some(t) = sfu.poll_transmit() {
            let rtp = RtpPacket::parse(&t.contents)
                .ok()
                .filter(|p| p.payload_type() == 0);
            if let (Some(k), Some(p)) = ((0..3).find(|k| at(*k) == t.destination), rtp) {
                heard[k].push((i, p.payload().to_vec()));
            }
        }
    }
    // How many frames after `from` the stream `got` runs, unbroken from its 20th packet on,
    // sample for sample (µ-law's two zeros are one sample).
    let samples = |p: &[u8]| -> Vec<i16> {
        p.iter()
            .map(|b| audio_codec_algorithms::decode_ulaw(*b))
            .collect()
    };
    let lag_of = |got: &[(u64, Vec<u8>)], from: &[Vec<u8>]| -> u64 {
        assert!(got.len() > 90, "{} packets", got.len());
        let (at, first) = &got[20];
        let lag = at
            - from
                .iter()
                .position(|p| samples(p) == samples(first))
                .expect("as sent") as u64;
        for (at, p) in &got[20..] {
            assert_eq!(
                samples(p),
                samples(&from[(at - lag) as usize]),
                "frame {at} out of place"
            );
        }
        lag
    };
    let one = lag_of(&heard[0], &sent[1]);
    assert_eq!(lag_of(&heard[1], &sent[0]), one, "2 hears 1 as sent");
    let mixed: Vec<Vec<u8>> = sent[0]
        .iter()
        .zip(&sent[1])
        .map(|(a, b)| {
            a.iter()
                .zip(b)
                .map(|(a, b)| {
                    let sum = i32::from(audio_codec_algorithms::decode_ulaw(*a))
                        + i32::from(audio_codec_algorithms::decode_ulaw(*b));
                    audio_codec_algorithms::encode_ulaw(sum.clamp(-32768, 32767) as i16)
                })
                .collect()
        })
        .collect();
    assert_eq!(lag_of(&heard[2], &mixed), one, "3 hears the sum at 8 kHz");
    // The jitter buffer's 60 ms, and the one frame by which the resamplers' round trip would
    // be late: a phone's stream is where it would be resampled, so it can change to that.
    assert_eq!(one, 4, "1 hears 2 as sent");
    // Nothing resampled to 48 kHz but the talkers' first frames (the tick of a voice's first
    // frame is made at 48 kHz: it has no frame before to mix at 8 kHz).
    let widened = sfu.mixer().stats().widened;
    assert!(widened <= 2, "{widened} frames resampled of 200");
}
