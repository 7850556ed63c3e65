//! An SFU and str0m clients (full ICE, DTLS, SRTP, SCTP, as a browser) joined by an in-memory
//! wire under simulated time: no sockets, no clock, the same run every time. For tests and
//! benches; it panics on anything unexpected.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::client::{Client, ClientConfig, Synthetic, VideoConfig};
use crate::policy::{ChannelKind, MediaPolicy, TrackPurpose};
use crate::sfu::{Recorded, Sfu, SfuEvent};
use crate::voice_mixer::MixerConfig;

pub const SFU: &str = "10.0.0.1:5000";

pub struct World {
    pub now: Instant,
    pub sfu: Sfu<u8>,
    pub clients: BTreeMap<u8, Client>,
    /// Clients that stopped sending and receiving (a peer that vanishes).
    pub gone: BTreeSet<u8>,
    /// Clients that do not answer the server's offers for now (a slow or stuck page); what
    /// they got is kept in `held`.
    pub hold: BTreeSet<u8>,
    pub held: Vec<(u8, u64, String)>,
    /// The server's answers to the clients' offers, as sent.
    pub answers: Vec<(u8, String)>,
    pub events: Vec<SfuEvent<u8>>,
    /// What the SFU gave the recorder while the policy recorded.
    pub recorded: Vec<Recorded<u8>>,
    pub policy: MediaPolicy<u8>,
    /// Wall time spent inside the SFU's receive and timeout handling.
    pub sfu_time: Duration,
    /// UDP payload bytes each client has sent (media, padding, RTCP, DTLS, STUN).
    pub sent_bytes: BTreeMap<u8, u64>,
    wire: VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    pub fn new() -> Self {
        let now = Instant::now();
        Self {
            now,
            sfu: Sfu::new(SFU.parse().unwrap(), MixerConfig::default()).unwrap(),
            clients: BTreeMap::new(),
            gone: BTreeSet::new(),
            hold: BTreeSet::new(),
            held: Vec::new(),
            answers: Vec::new(),
            events: Vec::new(),
            recorded: Vec::new(),
            policy: MediaPolicy::default(),
            sfu_time: Duration::ZERO,
            sent_bytes: BTreeMap::new(),
            wire: VecDeque::new(),
        }
    }

    /// A client `key` at 10.0.0.(key+1) speaking `tone` (if any) and sending `video`.
    pub fn join(&mut self, key: u8, tone: Option<f64>, video: Vec<VideoConfig>) {
        let config = ClientConfig {
            tone,
            keep_audio: 48_000 * 60,
            ..ClientConfig::default()
        };
        self.join_with(key, config, video);
    }

    /// A client `key` at 10.0.0.(key+1) as `config` says (its codecs, say), sending `video`.
    pub fn join_with(&mut self, key: u8, config: ClientConfig, video: Vec<VideoConfig>) {
        let addr: SocketAddr = format!("10.0.0.{}:6000", key + 1).parse().unwrap();
        let (c, offer, purposes) = Client::new(self.now, addr, config, video).unwrap();
        self.clients.insert(key, c);
        self.negotiate(key, &offer, &purposes);
    }

    /// The client's offer goes to the SFU, the answer back.
    fn negotiate(&mut self, key: u8, offer: &str, purposes: &BTreeMap<String, TrackPurpose>) {
        let answer = self
            .sfu
            .accept_offer(self.now, key, offer, purposes)
            .unwrap();
        self.answers.push((key, answer.sdp.clone()));
        self.clients
            .get_mut(&key)
            .unwrap()
            .accept_answer(self.now, &answer.sdp, answer.void_offers)
            .unwrap();
    }

    /// The client sends on a data channel.
    pub fn send(&mut self, key: u8, kind: ChannelKind, data: &[u8]) -> bool {
        let now = self.now;
        self.clients
            .get_mut(&key)
            .unwrap()
            .send_channel(now, kind, data)
    }

    /// The client adds a video track by renegotiating.
    pub fn add_video(&mut self, key: u8, video: VideoConfig) {
        let c = self.clients.get_mut(&key).unwrap();
        let (offer, purposes) = c.add_video(video).expect("no offer outstanding");
        self.negotiate(key, &offer, &purposes);
    }

    pub fn set_policy(&mut self, change: impl FnOnce(&mut MediaPolicy<u8>)) {
        change(&mut self.policy);
        self.sfu.set_policy(self.now, self.policy.clone()).unwrap();
    }

    pub fn client(&self, key: u8) -> &Client {
        &self.clients[&key]
    }

    /// Runs `duration` of simulated time in 1 ms steps.
    pub fn run(&mut self, duration: Duration) {
        let end = self.now + duration;
        while self.now < end {
            let now = self.now;
            for (key, c) in &mut self.clients {
                if self.gone.contains(key) {
                    continue;
                }
                if c.poll_timeout() <= now {
                    c.handle_timeout(now).unwrap();
                }
                while let Some(t) = c.poll_transmit() {
                    *self.sent_bytes.entry(*key).or_default() += t.contents.len() as u64;
                    self.wire.push_back((t.source, t.destination, t.contents));
                }
            }
            if self.sfu.poll_timeout(now) <= now {
                let started = Instant::now();
                self.sfu.handle_timeout(now).unwrap();
                self.sfu_time += started.elapsed();
            }
            self.deliver(now);
            self.now += Duration::from_millis(1);
        }
    }

    /// Delivers everything on the wire (zero latency), with the replies and offers it causes.
    fn deliver(&mut self, now: Instant) {
        let sfu: SocketAddr = SFU.parse().unwrap();
        for _ in 0..100_000 {
            while let Some(t) = self.sfu.poll_transmit() {
                self.wire.push_back((t.source, t.destination, t.contents));
            }
            while let Some(e) = self.sfu.poll_event() {
                if let SfuEvent::Offer { peer, offer, sdp } = &e
                    && self.hold.contains(peer)
                {
                    self.held.push((*peer, *offer, sdp.clone()));
                } else if let SfuEvent::Offer { peer, offer, sdp } = &e
                    && !self.gone.contains(peer)
                    && let Some(c) = self.clients.get_mut(peer)
                    && let Some(answer) = c.accept_offer(now, *offer, sdp).unwrap()
                {
                    self.sfu.accept_answer(now, *peer, *offer, &answer).unwrap();
                }
                self.events.push(e);
            }
            self.recorded
                .extend(std::iter::from_fn(|| self.sfu.poll_recorded()));
            let Some((src, dst, data)) = self.wire.pop_front() else {
                return;
            };
            if dst == sfu {
                let from_gone = self
                    .clients
                    .iter()
                    .any(|(k, c)| c.addr() == src && self.gone.contains(k));
                if !from_gone {
                    let started = Instant::now();
                    self.sfu.handle_receive(now, src, dst, &data);
                    self.sfu_time += started.elapsed();
                }
            } else if let Some((key, c)) = self
                .clients
                .iter_mut()
                .find(|(k, c)| c.addr() == dst && !self.gone.contains(*k))
            {
                c.handle_receive(now, src, &data).unwrap();
                while let Some(t) = c.poll_transmit() {
                    *self.sent_bytes.entry(*key).or_default() += t.contents.len() as u64;
                    self.wire.push_back((t.source, t.destination, t.contents));
                }
            }
        }
        panic!("the wire never went quiet");
    }
}

pub fn screen() -> VideoConfig {
    VideoConfig::synthetic(
        TrackPurpose::Screen,
        Synthetic {
            frame_bytes: 6000,
            fps: 15,
            keyframe_every: 1000,
        },
    )
}

pub fn camera() -> VideoConfig {
    VideoConfig::synthetic(
        TrackPurpose::Camera,
        Synthetic {
            frame_bytes: 3000,
            fps: 30,
            keyframe_every: 1000,
        },
    )
}
