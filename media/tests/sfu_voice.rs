//! The voice path end to end without sockets or a clock: three str0m clients (full ICE, DTLS,
//! SRTP, as a browser) connect to the SFU; datagrams travel in memory under simulated time.
//! Two hold the microphone, one does not; each sends a different tone (SPEC V3, SYS2).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tandem_media::sfu::{Sfu, SfuEvent, init_crypto};
use tandem_media::tone::{power as tone_power, sine_frame};
use tandem_media::voice_mixer::MixerConfig;

const SFU: &str = "10.0.0.1:5000";
const FRAME: usize = 960;

struct Client {
    key: u8,
    addr: SocketAddr,
    rtc: Rtc,
    mid: Mid,
    tone: f64,
    enc: opus::Encoder,
    dec: opus::Decoder,
    heard: Vec<i16>,
    sent: u64,
    connected: bool,
    /// Stops sending and receiving (a peer that vanishes).
    gone: bool,
    timeout: Instant,
}

impl Client {
    fn new(key: u8, tone: f64, now: Instant) -> (Self, String, SdpPendingOffer) {
        let addr: SocketAddr = format!("10.0.0.{}:6000", key + 1).parse().unwrap();
        let mut rtc = Rtc::builder().build(now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = change.apply().unwrap();
        let client = Client {
            key,
            addr,
            rtc,
            mid,
            tone,
            enc: opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).unwrap(),
            dec: opus::Decoder::new(48_000, opus::Channels::Mono).unwrap(),
            heard: Vec::new(),
            sent: 0,
            connected: false,
            gone: false,
            timeout: now,
        };
        (client, offer.to_sdp_string(), pending)
    }

    fn speak(&mut self, now: Instant) {
        let pcm = sine_frame(self.tone, 8000.0, self.sent);
        let mut out = vec![0; 1275];
        let n = self.enc.encode(&pcm, &mut out).unwrap();
        out.truncate(n);
        let writer = self.rtc.writer(self.mid).unwrap();
        let pt = writer
            .payload_params()
            .find(|p| p.spec().codec == Codec::Opus)
            .unwrap()
            .pt();
        writer
            .write(
                pt,
                now,
                MediaTime::new(self.sent * FRAME as u64, Frequency::FORTY_EIGHT_KHZ),
                out,
            )
            .unwrap();
        self.sent += 1;
    }

    fn drain(&mut self, out: &mut VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>) {
        loop {
            match self.rtc.poll_output().unwrap() {
                Output::Timeout(t) => {
                    self.timeout = t;
                    return;
                }
                Output::Transmit(t) => {
                    out.push_back((t.source, t.destination, t.contents.to_vec()))
                }
                Output::Event(Event::Connected) => self.connected = true,
                Output::Event(Event::MediaData(d)) => {
                    let mut pcm = [0i16; FRAME];
                    let n = self.dec.decode(&d.data, &mut pcm, false).unwrap();
                    self.heard.extend_from_slice(&pcm[..n]);
                }
                Output::Event(_) => {}
            }
        }
    }
}

struct World {
    now: Instant,
    sfu: Sfu<u8>,
    clients: Vec<Client>,
    wire: VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>,
    events: Vec<SfuEvent<u8>>,
}

impl World {
    fn new(tones: &[f64]) -> Self {
        init_crypto();
        let now = Instant::now();
        let mut sfu = Sfu::new(SFU.parse().unwrap(), MixerConfig::default()).unwrap();
        let mut clients = Vec::new();
        for (i, tone) in tones.iter().enumerate() {
            let (mut c, offer, pending) = Client::new(i as u8 + 1, *tone, now);
            let answer = sfu.accept_offer(now, c.key, &offer).unwrap();
            c.rtc
                .sdp_api()
                .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
                .unwrap();
            clients.push(c);
        }
        Self {
            now,
            sfu,
            clients,
            wire: VecDeque::new(),
            events: Vec::new(),
        }
    }

    /// Runs `duration` of simulated time in 1 ms steps; connected clients speak every 20 ms.
    fn run(&mut self, duration: Duration) {
        let end = self.now + duration;
        let mut next_frame = self.now;
        while self.now < end {
            let now = self.now;
            if now >= next_frame {
                for c in self.clients.iter_mut().filter(|c| c.connected && !c.gone) {
                    c.speak(now);
                }
                next_frame += Duration::from_millis(20);
            }
            for c in self.clients.iter_mut().filter(|c| !c.gone) {
                if c.timeout <= now {
                    c.rtc.handle_input(Input::Timeout(now)).unwrap();
                }
                c.drain(&mut self.wire);
            }
            self.sfu.handle_timeout(now).unwrap();
            // Deliver everything on the wire (zero latency), including replies it causes.
            for _ in 0..1000 {
                while let Some(t) = self.sfu.poll_transmit() {
                    self.wire.push_back((t.source, t.destination, t.contents));
                }
                while let Some(e) = self.sfu.poll_event() {
                    self.events.push(e);
                }
                let Some((src, dst, data)) = self.wire.pop_front() else {
                    break;
                };
                if dst == SFU.parse::<SocketAddr>().unwrap() {
                    if !self.clients.iter().any(|c| c.addr == src && c.gone) {
                        self.sfu.handle_receive(now, src, dst, &data);
                    }
                } else if let Some(c) = self.clients.iter_mut().find(|c| c.addr == dst && !c.gone) {
                    let r = Receive::new(Protocol::Udp, src, dst, &data).unwrap();
                    c.rtc.handle_input(Input::Receive(now, r)).unwrap();
                    c.drain(&mut self.wire);
                }
            }
            self.now += Duration::from_millis(1);
        }
    }
}

#[test]
fn speakers_hear_each_other_listeners_hear_both_and_the_unmicrophoned_is_not_heard() {
    let mut w = World::new(&[440.0, 1000.0, 2500.0]);
    w.sfu.set_call([1, 2, 3], [1, 2]).unwrap();
    w.run(Duration::from_secs(4));
    assert!(
        w.clients.iter().all(|c| c.connected),
        "ICE + DTLS over the in-memory wire"
    );
    let connected = w
        .events
        .iter()
        .filter(|e| matches!(e, SfuEvent::Connected(_)))
        .count();
    assert_eq!(connected, 3);

    let heard = |k: usize| {
        let h = &w.clients[k].heard;
        assert!(
            h.len() > 48_000 * 2,
            "client {} heard only {} samples",
            k + 1,
            h.len()
        );
        &h[h.len() - 48_000..] // the last second
    };
    let (present, absent) = (1e11, 1e7);
    let (a, b, c) = (heard(0), heard(1), heard(2));
    assert!(
        tone_power(a, 1000.0) > present,
        "the first speaker hears the second"
    );
    assert!(tone_power(a, 440.0) < absent, "but not itself");
    assert!(tone_power(b, 440.0) > present && tone_power(b, 1000.0) < absent);
    assert!(
        tone_power(c, 440.0) > present && tone_power(c, 1000.0) > present,
        "a listener hears both"
    );
    for pcm in [a, b, c] {
        assert!(
            tone_power(pcm, 2500.0) < absent,
            "nobody hears the participant without a microphone"
        );
    }
    assert!(w.sfu.mixer().stats().dropped_not_speaker > 100);
}

#[test]
fn passing_the_microphone_changes_who_is_heard() {
    let mut w = World::new(&[440.0, 1000.0, 2500.0]);
    w.sfu.set_call([1, 2, 3], [1]).unwrap();
    w.run(Duration::from_secs(3));
    w.sfu.set_call([1, 2, 3], [3]).unwrap();
    let before = w.clients[1].heard.len();
    w.run(Duration::from_secs(2));
    let after = &w.clients[1].heard[before + 9600..]; // past the jitter buffer's start
    assert!(tone_power(after, 2500.0) > 1e11, "the new holder is heard");
    assert!(tone_power(after, 440.0) < 1e7, "the former holder is not");
}

#[test]
fn only_call_members_hear_the_mix_and_only_members_are_heard() {
    let mut w = World::new(&[440.0, 1000.0, 2500.0, 3000.0]);
    // Members 1 and 4; 1 and 3 hold microphones, but 3 is not in the call.
    w.sfu.set_call([1, 4], [1, 3]).unwrap();
    w.run(Duration::from_secs(3));
    assert!(
        w.clients[1].heard.is_empty(),
        "a participant outside the call gets no audio"
    );
    assert!(
        w.clients[2].heard.is_empty(),
        "nor does a holder outside the call"
    );
    let d = &w.clients[3].heard;
    let d = &d[d.len() - 48_000..];
    assert!(tone_power(d, 440.0) > 1e11, "a member hears the speaker");
    assert!(
        tone_power(d, 2500.0) < 1e7,
        "a holder outside the call is not heard"
    );
}

#[test]
fn garbage_and_malformed_offers_are_refused_without_harm() {
    let mut w = World::new(&[440.0]);
    let now = w.now;
    assert!(!w.sfu.handle_receive(
        now,
        "10.9.9.9:1".parse().unwrap(),
        SFU.parse().unwrap(),
        b"\x00\x01garbage"
    ));
    assert!(!w.sfu.handle_receive(
        now,
        "10.9.9.9:1".parse().unwrap(),
        SFU.parse().unwrap(),
        &[]
    ));
    let e = w
        .sfu
        .accept_offer(now, 9, "v=0\r\nthis is not sdp")
        .unwrap_err();
    assert_eq!(e.code(), "malformed_sdp");
    w.sfu.set_call([1], [1]).unwrap();
    w.run(Duration::from_secs(2));
    assert!(w.clients[0].connected);
    // A malformed re-offer from a connected participant leaves the working connection alone.
    assert_eq!(
        w.sfu.accept_offer(w.now, 1, "garbage").unwrap_err().code(),
        "malformed_sdp"
    );
    assert_eq!(w.sfu.peer_count(), 1);
    let received = w.sfu.stats().audio_in;
    w.run(Duration::from_secs(1));
    assert!(
        w.sfu.stats().audio_in > received,
        "the old connection still carries audio"
    );
}

#[test]
fn a_peer_that_vanishes_is_disconnected_and_freed_while_others_go_on() {
    let mut w = World::new(&[440.0, 1000.0]);
    w.sfu.set_call([1, 2, 3], [1, 2]).unwrap();
    w.run(Duration::from_secs(2));
    w.clients[1].gone = true;
    let before = w.clients[0].heard.len();
    w.run(Duration::from_secs(40));
    assert!(
        w.events.contains(&SfuEvent::Disconnected(2)),
        "{:?}",
        w.events
    );
    assert_eq!(w.sfu.peer_count(), 1);
    // The remaining client is still connected and still receives (silence suppression aside,
    // the call goes on for it).
    assert!(w.clients[0].connected);
    assert!(w.clients[0].heard.len() > before);
}
