//! The media core of one session's call: one str0m `Rtc` per participant (ICE-lite, on the
//! worker's UDP address), datagrams routed to the `Rtc` that accepts them, and the voice path:
//! Opus from the microphone holders into the [`VoiceMixer`], the mixes back out to everyone.
//!
//! Sans-IO in str0m's manner: the worker feeds [`Sfu::handle_receive`] and
//! [`Sfu::handle_timeout`] with the time, then drains [`Sfu::poll_transmit`] and
//! [`Sfu::poll_event`] and sleeps until [`Sfu::poll_timeout`]. Video forwarding and data channels
//! build on this next.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Debug;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::format::Codec;
use str0m::media::{Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

use crate::mix::FRAME_SAMPLES;
use crate::voice_mixer::{MixerConfig, MixerError, VoiceMixer};

/// Installs the process-wide crypto provider str0m needs (OpenSSL). Idempotent.
pub fn init_crypto() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| str0m::crypto::from_feature_flags().install_process_default());
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SfuError {
    #[error("the SDP offer could not be read: {0}")]
    BadOffer(String),
    #[error("the SDP offer was refused: {0}")]
    OfferRefused(String),
    #[error(transparent)]
    Mixer(#[from] MixerError),
}

impl SfuError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadOffer(_) => "malformed_sdp",
            Self::OfferRefused(_) => "sdp_refused",
            Self::Mixer(_) => "media_error",
        }
    }
}

/// A datagram to send from the worker's socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub contents: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SfuEvent<P> {
    Connected(P),
    /// ICE or DTLS failed or timed out; the peer is gone from the SFU.
    Disconnected(P),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SfuStats {
    pub audio_in: u64,
    pub audio_out: u64,
}

struct Peer {
    rtc: Rtc,
    audio: Option<Mid>,
    timeout: Instant,
}

pub struct Sfu<P> {
    local: SocketAddr,
    peers: BTreeMap<P, Peer>,
    mixer: VoiceMixer<P>,
    /// Who is in the voice call and so receives the mix (SPEC V2); others get no audio.
    members: BTreeSet<P>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<SfuEvent<P>>,
    stats: SfuStats,
}

/// How far ahead to schedule when nothing asks for a wake-up sooner.
const IDLE: Duration = Duration::from_millis(100);

impl<P: Copy + Ord + Debug> Sfu<P> {
    /// `local` is the worker's UDP address as peers reach it (the public address behind NAT).
    pub fn new(local: SocketAddr, mixer: MixerConfig) -> Result<Self, SfuError> {
        init_crypto();
        Ok(Self {
            local,
            peers: BTreeMap::new(),
            mixer: VoiceMixer::new(mixer)?,
            members: BTreeSet::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: SfuStats::default(),
        })
    }

    pub fn stats(&self) -> &SfuStats {
        &self.stats
    }

    pub fn mixer(&self) -> &VoiceMixer<P> {
        &self.mixer
    }

    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// A participant's SDP offer; returns the answer. Only Opus audio is accepted for now. An
    /// offer from a participant already connected replaces that connection, but only once the new
    /// offer has been accepted: a bad re-offer leaves the working connection alone.
    pub fn accept_offer(&mut self, now: Instant, peer: P, offer: &str) -> Result<String, SfuError> {
        let offer =
            SdpOffer::from_sdp_string(offer).map_err(|e| SfuError::BadOffer(e.to_string()))?;
        let mut rtc = Rtc::builder()
            .set_ice_lite(true)
            .clear_codecs()
            .enable_opus(true, false)
            .build(now);
        let candidate = Candidate::host(self.local, "udp")
            .map_err(|e| SfuError::OfferRefused(e.to_string()))?;
        rtc.add_local_candidate(candidate);
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| SfuError::OfferRefused(e.to_string()))?;
        let replaced = self.peers.insert(
            peer,
            Peer {
                rtc,
                audio: None,
                timeout: now,
            },
        );
        if let Some(mut old) = replaced {
            old.rtc.disconnect();
            self.mixer.forget(peer)?;
        }
        self.drain(now, peer);
        Ok(answer.to_sdp_string())
    }

    pub fn remove_peer(&mut self, peer: P) {
        if let Some(mut p) = self.peers.remove(&peer) {
            p.rtc.disconnect();
            // Whatever it had buffered or decoded belongs to the old connection.
            let _ = self.mixer.forget(peer);
        }
    }

    /// The voice call as the session's rules have it: who is in it (and hears the mix) and who
    /// holds a microphone (and is heard, SPEC V2, V3). Speakers outside the call are not heard.
    pub fn set_call(
        &mut self,
        members: impl IntoIterator<Item = P>,
        speakers: impl IntoIterator<Item = P>,
    ) -> Result<(), SfuError> {
        self.members = members.into_iter().collect();
        let members = &self.members;
        Ok(self
            .mixer
            .set_speakers(speakers.into_iter().filter(|s| members.contains(s)))?)
    }

    /// Whether a datagram belongs to one of this call's peers.
    pub fn accepts(&self, source: SocketAddr, destination: SocketAddr, contents: &[u8]) -> bool {
        let Ok(receive) = Receive::new(Protocol::Udp, source, destination, contents) else {
            return false;
        };
        let input = Input::Receive(Instant::now(), receive);
        self.peers.values().any(|p| p.rtc.accepts(&input))
    }

    /// A datagram that arrived on the worker's socket. Returns false if no peer took it.
    pub fn handle_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) -> bool {
        let Ok(receive) = Receive::new(Protocol::Udp, source, destination, contents) else {
            return false;
        };
        let input = Input::Receive(now, receive);
        let Some((&key, peer)) = self.peers.iter_mut().find(|(_, p)| p.rtc.accepts(&input)) else {
            return false;
        };
        if peer.rtc.handle_input(input).is_err() {
            self.fail(key);
            return true;
        }
        self.drain(now, key);
        true
    }

    /// Advances every peer and the mixer to `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), SfuError> {
        let keys: Vec<P> = self.peers.keys().copied().collect();
        for key in keys {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            if peer.timeout <= now {
                if peer.rtc.handle_input(Input::Timeout(now)).is_err() {
                    self.fail(key);
                    continue;
                }
                self.drain(now, key);
            }
        }
        while let Some(out) = self.mixer.handle_timeout(now)? {
            // RTP time follows the mixer's ticks, so it keeps pace with the clock across the
            // silences in which nothing is sent.
            let rtp_time = MediaTime::new(
                self.mixer.stats().ticks * FRAME_SAMPLES as u64,
                Frequency::FORTY_EIGHT_KHZ,
            );
            for (key, peer) in self
                .peers
                .iter_mut()
                .filter(|(k, _)| self.members.contains(k))
            {
                let packet = out
                    .speakers
                    .iter()
                    .find(|(k, _)| k == key)
                    .map_or(&out.listeners, |(_, p)| p);
                if write_audio(peer, now, rtp_time, packet.clone()) {
                    self.stats.audio_out += 1;
                }
            }
            let keys: Vec<P> = self.peers.keys().copied().collect();
            for key in keys {
                self.drain(now, key);
            }
        }
        Ok(())
    }

    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<SfuEvent<P>> {
        self.events.pop_front()
    }

    /// When to call [`Self::handle_timeout`] next.
    pub fn poll_timeout(&self, now: Instant) -> Instant {
        let peers = self.peers.values().map(|p| p.timeout);
        peers
            .chain(self.mixer.poll_timeout())
            .min()
            .unwrap_or(now + IDLE)
    }

    fn fail(&mut self, key: P) {
        self.remove_peer(key);
        self.events.push_back(SfuEvent::Disconnected(key));
    }

    /// Takes everything a peer's `Rtc` has to say until it asks for a timeout.
    fn drain(&mut self, now: Instant, key: P) {
        loop {
            let Some(peer) = self.peers.get_mut(&key) else {
                return;
            };
            match peer.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    peer.timeout = t;
                    return;
                }
                Ok(Output::Transmit(t)) => self.transmits.push_back(Transmit {
                    source: t.source,
                    destination: t.destination,
                    contents: t.contents.to_vec(),
                }),
                Ok(Output::Event(e)) => match e {
                    Event::Connected => self.events.push_back(SfuEvent::Connected(key)),
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        self.fail(key);
                        return;
                    }
                    Event::MediaAdded(m) if m.kind == MediaKind::Audio => {
                        peer.audio = Some(m.mid);
                    }
                    Event::MediaData(d) if Some(d.mid) == peer.audio => {
                        self.stats.audio_in += 1;
                        let seq: u64 = **d.seq_range.start();
                        self.mixer.push(now, key, seq as u16, d.data.to_vec());
                    }
                    _ => {}
                },
                Err(_) => {
                    self.fail(key);
                    return;
                }
            }
        }
    }
}

/// Writes one 20 ms Opus frame on a peer's audio track, if it has one that is open.
fn write_audio(peer: &mut Peer, now: Instant, rtp_time: MediaTime, packet: Vec<u8>) -> bool {
    let Some(mid) = peer.audio else { return false };
    let Some(writer) = peer.rtc.writer(mid) else {
        return false;
    };
    let Some(pt) = writer
        .payload_params()
        .find(|p| p.spec().codec == Codec::Opus)
        .map(|p| p.pt())
    else {
        return false;
    };
    writer.write(pt, now, rtp_time, packet).is_ok()
}
