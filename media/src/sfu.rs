//! The media core of one session: one str0m `Rtc` per participant (ICE-lite, on the worker's UDP
//! address), datagrams routed to the `Rtc` that accepts them, and three paths through it:
//!
//! - voice: Opus from the microphone holders into the [`VoiceMixer`], the mixes back out to the
//!   call's members (SPEC V1-V4);
//! - video: camera and screen frames forwarded without decoding to every other participant, on a
//!   send-only track the server adds to each receiver's connection by renegotiating (an offer
//!   from the server, [`SfuEvent::Offer`]); keyframe requests relayed to the sender (D13, VI2).
//!   That routing and renegotiation is in `sfu/video.rs`;
//! - data channels: control input, pointer and annotation messages relayed as the
//!   [`MediaPolicy`] allows (D2, D12).
//!
//! Sans-IO in str0m's manner: the worker feeds [`Sfu::handle_receive`] and
//! [`Sfu::handle_timeout`] with the time, then drains [`Sfu::poll_transmit`] and
//! [`Sfu::poll_event`] and sleeps until [`Sfu::poll_timeout`].

mod claim;
mod video;

pub use crate::transmit::Transmit;
pub use claim::{Claim, Datagram, PhoneAddresses, Stun};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::{Debug, Display};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::{ChannelData, ChannelId};
use str0m::format::Codec;
use str0m::media::{Frequency, KeyframeRequestKind, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::Extension;
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

use crate::mix::{FRAME_SAMPLES, Gain};
use crate::phone::counts::PhoneCounts;
use crate::phone::shared_mix::SharedMix;
use crate::phone::{self, PhoneInput, PhoneLeg, PhoneMedia, WrongAddress};
use crate::policy::{ChannelKind, DropReason, MediaPolicy, TrackPurpose};
use crate::sdp_candidates::complete_candidates;
use crate::voice_mixer::{MixerConfig, MixerError, VoiceMixer};
use video::{OutState, TrackOut, void_pending};

/// Installs the process-wide crypto provider str0m needs (OpenSSL). Idempotent.
pub fn init_crypto() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| str0m::crypto::from_feature_flags().install_process_default());
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SfuError {
    #[error("the SDP could not be read: {0}")]
    BadSdp(String),
    #[error("the SDP offer was refused: {0}")]
    OfferRefused(String),
    #[error("the SDP answer was refused: {0}")]
    AnswerRefused(String),
    #[error("no offer from the server is waiting for an answer")]
    NoOfferPending,
    #[error("that offer was replaced; answer the server's latest offer")]
    StaleAnswer,
    #[error("this participant has no media connection; send an offer first")]
    NotConnected,
    #[error("the media call failed; connect again")]
    CallFailed,
    #[error(transparent)]
    Mixer(#[from] MixerError),
    #[error("the phone's codec could not be set up: {0}")]
    Codec(#[from] crate::voice_codec::CodecError),
}

impl SfuError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadSdp(_) => "malformed_sdp",
            Self::OfferRefused(_) | Self::AnswerRefused(_) => "sdp_refused",
            Self::NoOfferPending => "no_offer_pending",
            Self::StaleAnswer => "stale_answer",
            Self::NotConnected => "media_not_connected",
            Self::CallFailed => "media_call_failed",
            Self::Mixer(_) | Self::Codec(_) => "media_error",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum SfuEvent<P> {
    Connected(P),
    /// ICE or DTLS failed or timed out; the peer is gone from the SFU.
    Disconnected(P),
    /// The server renegotiates: send this SDP offer (numbered, per peer) to the peer, and its
    /// answer to [`Sfu::accept_answer`].
    Offer {
        peer: P,
        offer: u64,
        sdp: String,
    },
    /// A phone's key press (RFC 4733).
    Dtmf {
        peer: P,
        digit: char,
    },
    /// A phone's RTP came from another address than its SDP names (once per phone).
    WrongAddress {
        peer: P,
        report: WrongAddress,
    },
    /// Video from `origin` is not forwarded to `peer`, whose answer did not accept its codec
    /// (once per sender and receiver; each frame is counted as
    /// [`DropReason::CodecNotNegotiated`]).
    CodecNotNegotiated {
        peer: P,
        origin: P,
        codec: Codec,
    },
    /// What RTCP says of a peer's connection, every [`STATS_INTERVAL`].
    Stats {
        peer: P,
        rtt: Option<Duration>,
        /// Fractions lost, 0 to 1, of what the peer sent us and of what we sent it.
        loss_in: Option<f32>,
        loss_out: Option<f32>,
    },
}

/// What the session's recorder is given while the policy says it records (SPEC R1, R2): what
/// the SFU passes on, as passed on. The recorder is one more listener, never a peer: nothing
/// of it is negotiated and it cannot slow the call (the worker hands these on without waiting).
#[derive(Clone, Debug, PartialEq)]
pub enum Recorded<P> {
    /// A video frame as forwarded (depacketized, not decoded).
    Video {
        origin: P,
        purpose: TrackPurpose,
        codec: Codec,
        /// RTP time in the 90 kHz video clock.
        rtp_time: u64,
        keyframe: bool,
        /// Shared with the forwarded copies: recording costs no copy of the frame.
        data: std::sync::Arc<[u8]>,
        at: Instant,
    },
    /// One 20 ms Opus packet of the listener mix: what a call member without a microphone hears.
    Voice {
        /// Samples at 48 kHz since the mixer started; it counts through silences.
        rtp_time: u64,
        data: Vec<u8>,
        at: Instant,
    },
    /// A pointer or annotation message as relayed (D12).
    Channel {
        origin: P,
        kind: ChannelKind,
        data: Vec<u8>,
        at: Instant,
    },
}

/// The answer to a peer's offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub sdp: String,
    /// The server's own offers to this peer numbered up to this are void: answered already, or
    /// rolled back by the peer's offer (a page ignores any that reach it late).
    pub void_offers: u64,
}

/// Counters since the SFU was made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SfuStats {
    pub audio_in: u64,
    pub audio_out: u64,
    /// The mixer's Opus decodes and encodes, and mixes passed on as one sender's packet.
    pub voice_decodes: u64,
    pub voice_encodes: u64,
    pub voice_passed: u64,
    pub video_frames_in: u64,
    pub video_frames_out: u64,
    pub video_bytes_out: u64,
    pub keyframe_requests: u64,
    pub channel_messages_relayed: u64,
    /// Datagrams for a peer that its connection could not use.
    pub bad_datagrams: u64,
    pub dropped: BTreeMap<DropReason, u64>,
    /// What the phones (SIP legs) counted, those gone included.
    pub phone: PhoneCounts,
}

impl SfuStats {
    /// What was counted between `earlier` and this.
    pub fn since(&self, earlier: &SfuStats) -> SfuStats {
        SfuStats {
            audio_in: self.audio_in - earlier.audio_in,
            audio_out: self.audio_out - earlier.audio_out,
            voice_decodes: self.voice_decodes - earlier.voice_decodes,
            voice_encodes: self.voice_encodes - earlier.voice_encodes,
            voice_passed: self.voice_passed - earlier.voice_passed,
            video_frames_in: self.video_frames_in - earlier.video_frames_in,
            video_frames_out: self.video_frames_out - earlier.video_frames_out,
            video_bytes_out: self.video_bytes_out - earlier.video_bytes_out,
            keyframe_requests: self.keyframe_requests - earlier.keyframe_requests,
            channel_messages_relayed: self.channel_messages_relayed
                - earlier.channel_messages_relayed,
            bad_datagrams: self.bad_datagrams - earlier.bad_datagrams,
            phone: self.phone.since(&earlier.phone),
            dropped: self
                .dropped
                .iter()
                .map(|(r, n)| (*r, n - earlier.dropped.get(r).copied().unwrap_or(0)))
                .collect(),
        }
    }
}

/// How often str0m reports RTT and loss.
pub const STATS_INTERVAL: Duration = Duration::from_secs(5);
/// An offer of the server's unanswered this long is void, and made again.
pub const OFFER_TIMEOUT: Duration = Duration::from_secs(10);
/// How far ahead to schedule when nothing asks for a wake-up sooner.
const IDLE: Duration = Duration::from_millis(100);

struct Peer<P> {
    rtc: Rtc,
    /// The browser's ICE user fragment: the same in a re-offer on one connection, new when the
    /// page made a new connection.
    ice_ufrag: String,
    audio: Option<Mid>,
    /// What the client said each of its video tracks carries.
    purposes: BTreeMap<Mid, TrackPurpose>,
    /// Video the peer sends us, with when a keyframe was last asked of it.
    video_in: BTreeMap<Mid, Option<Instant>>,
    video_out: Vec<TrackOut<P>>,
    /// The server's offer waiting for the peer's answer, with its number and when it was made.
    pending: Option<(u64, Instant, SdpPendingOffer)>,
    /// Offers the server made this peer.
    offers: u64,
    channels: Vec<(ChannelId, ChannelKind)>,
    timeout: Instant,
}

pub struct Sfu<P: Ord> {
    local: SocketAddr,
    peers: BTreeMap<P, Peer<P>>,
    /// Phones (SIP legs): plain RTP, in the call under the same policy as browsers.
    phones: BTreeMap<P, PhoneLeg>,
    /// The listener mix in each codec its phones speak, encoded once per tick for them all.
    shared_mix: SharedMix,
    mixer: VoiceMixer<P>,
    policy: MediaPolicy<P>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<SfuEvent<P>>,
    stats: SfuStats,
    /// Peers whose `Rtc` has output to take.
    dirty: BTreeSet<P>,
    /// Tracks or policy changed: work out who should get which video again.
    reroute: bool,
    recorded: VecDeque<Recorded<P>>,
}

impl<P: Copy + Ord + Debug + Display> Sfu<P> {
    /// `local` is the worker's UDP address as peers reach it (the public address behind NAT).
    pub fn new(local: SocketAddr, mixer: MixerConfig) -> Result<Self, SfuError> {
        init_crypto();
        Ok(Self {
            local,
            peers: BTreeMap::new(),
            phones: BTreeMap::new(),
            shared_mix: SharedMix::default(),
            mixer: VoiceMixer::new(mixer)?,
            policy: MediaPolicy::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: SfuStats::default(),
            dirty: BTreeSet::new(),
            reroute: false,
            recorded: VecDeque::new(),
        })
    }

    /// Counters so far, the mixer's included.
    pub fn stats(&self) -> SfuStats {
        let mut stats = self.stats.clone();
        for p in self.phones.values() {
            stats.phone.add(p.counts());
        }
        let mixer = self.mixer.stats();
        stats.voice_decodes = mixer.decodes;
        stats.voice_encodes = mixer.encodes;
        stats.voice_passed = mixer.passed_through;
        let not_speaker = mixer.dropped_not_speaker;
        if not_speaker > 0 {
            stats.dropped.insert(DropReason::NoMicrophone, not_speaker);
        }
        stats
    }

    pub fn mixer(&self) -> &VoiceMixer<P> {
        &self.mixer
    }

    pub fn policy(&self) -> &MediaPolicy<P> {
        &self.policy
    }

    /// Browsers and phones with media in this call.
    pub fn peer_count(&self) -> usize {
        self.peers.len() + self.phones.len()
    }

    pub fn peers(&self) -> impl Iterator<Item = P> + '_ {
        self.peers.keys().chain(self.phones.keys()).copied()
    }

    /// Whether one of the call's phones sends from `source` by its SDP: datagrams from there are
    /// first this call's, before another call's phone that expects RTCP there (a neighbour on
    /// the same host, whose implied RTCP port it is; see [`crate::phone::owner`]).
    pub fn has_phone_at(&self, source: SocketAddr) -> bool {
        self.phones.values().any(|leg| leg.remote() == source)
    }

    /// The server's ICE user fragment on each peer's connection: a STUN check from a new
    /// address can be for this call only if its USERNAME starts with one of them. Read from
    /// the connection, as an offer that restarts ICE gives it new credentials.
    pub fn local_ufrags(&mut self) -> impl Iterator<Item = String> + '_ {
        self.peers
            .values_mut()
            .map(|p| p.rtc.direct_api().local_ice_credentials().ufrag)
    }

    /// Where each phone sends from: its RTP and RTCP addresses, the only ones it takes datagrams
    /// from, and the hosts whose RTP from a wrong port it reports ([`Self::stray`]).
    pub fn phone_addresses(&self) -> impl Iterator<Item = PhoneAddresses> + '_ {
        self.phones.values().map(|leg| PhoneAddresses {
            rtp: leg.remote(),
            rtcp: leg.media().rtcp,
            signalling: leg.media().signalling,
        })
    }

    /// Each phone's RFC 3550 interarrival jitter, in seconds.
    pub fn phone_jitters(&self) -> impl Iterator<Item = f64> + '_ {
        self.phones.values().map(PhoneLeg::jitter)
    }

    /// A phone's audio joins the call (SPEC V5), or what was agreed for it changes (a re-INVITE:
    /// hold, resume, a new address or codec). Its voice is mixed only while the policy gives
    /// it a microphone, like anyone's (V3); it hears the mix while a voice member. `wall` is
    /// `now` on the wall clock, for a new phone's RTCP sender reports.
    pub fn add_phone(
        &mut self,
        now: Instant,
        wall: SystemTime,
        peer: P,
        media: PhoneMedia,
    ) -> Result<(), SfuError> {
        match self.phones.get_mut(&peer) {
            Some(leg) => {
                let codec = leg.media().codec;
                leg.update(media)?;
                if leg.media().codec != codec {
                    // Its voice comes numbered and coded anew: nothing buffered is of use.
                    self.mixer.forget(peer)?;
                }
            }
            None => {
                self.phones.insert(peer, PhoneLeg::new(now, wall, media)?);
            }
        }
        self.set_hearing();
        Ok(())
    }

    /// Media tracks open in this call: each peer's audio, the video it sends, and the video the
    /// server sends it.
    pub fn track_count(&self) -> usize {
        self.peers
            .values()
            .map(|p| usize::from(p.audio.is_some()) + p.video_in.len() + p.video_out.len())
            .sum()
    }

    /// A peer's SDP offer, with what each of its video tracks carries (by mid); returns the
    /// answer. An offer on the peer's current connection renegotiates it (a track added or
    /// removed) and takes precedence over an offer of the server's own still unanswered, which
    /// is made again afterwards. An offer from a new connection (a reloaded page) replaces the
    /// old one, but only once it has been accepted: a bad offer leaves the working connection.
    pub fn accept_offer(
        &mut self,
        now: Instant,
        peer: P,
        offer: &str,
        purposes: &BTreeMap<String, TrackPurpose>,
    ) -> Result<Answer, SfuError> {
        let purposes: BTreeMap<Mid, TrackPurpose> = purposes
            .iter()
            .map(|(mid, p)| (Mid::from(mid.as_str()), *p))
            .collect();
        let ufrag = ice_ufrag(offer).ok_or_else(|| SfuError::BadSdp("no a=ice-ufrag".into()))?;
        let parsed =
            SdpOffer::from_sdp_string(offer).map_err(|e| SfuError::BadSdp(e.to_string()))?;
        if let Some(existing) = self.peers.get_mut(&peer)
            && existing.ice_ufrag == ufrag
        {
            let answer = existing.rtc.sdp_api().accept_offer(parsed);
            // str0m voids our unanswered offer as soon as it takes up the page's, accepted or
            // not; whatever it was to do is offered again below.
            void_pending(existing);
            if answer.is_ok() {
                existing.purposes = purposes;
            }
            let void_offers = existing.offers;
            self.dirty.insert(peer);
            self.reroute = true;
            self.flush(now);
            let answer = answer.map_err(|e| SfuError::OfferRefused(e.to_string()))?;
            return Ok(Answer {
                sdp: complete_candidates(&answer.to_sdp_string()),
                void_offers,
            });
        }

        let mut rtc = Rtc::builder()
            .set_ice_lite(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .enable_h264(true)
            // Chromium's own id for it; the offer's id wins anyway.
            .set_extension(5, Extension::PlayoutDelay)
            .set_stats_interval(Some(STATS_INTERVAL))
            .build(now);
        let candidate = Candidate::host(self.local, "udp")
            .map_err(|e| SfuError::OfferRefused(e.to_string()))?;
        rtc.add_local_candidate(candidate);
        let answer = rtc
            .sdp_api()
            .accept_offer(parsed)
            .map_err(|e| SfuError::OfferRefused(e.to_string()))?;
        let mut fresh = Peer {
            rtc,
            ice_ufrag: ufrag,
            audio: None,
            purposes,
            video_in: BTreeMap::new(),
            video_out: Vec::new(),
            pending: None,
            offers: 0,
            channels: Vec::new(),
            timeout: now,
        };
        if let Some(mut old) = self.peers.remove(&peer) {
            // Numbers go on from the old connection's, so its late offers stay void.
            fresh.offers = old.offers;
            old.rtc.disconnect();
            // Whatever it had buffered or decoded belongs to the old connection.
            self.mixer.forget(peer)?;
        }
        let void_offers = fresh.offers;
        self.peers.insert(peer, fresh);
        self.set_hearing();
        self.dirty.insert(peer);
        self.reroute = true;
        self.flush(now);
        Ok(Answer {
            sdp: complete_candidates(&answer.to_sdp_string()),
            void_offers,
        })
    }

    /// The peer's answer to the server's offer number `offer` ([`SfuEvent::Offer`]).
    pub fn accept_answer(
        &mut self,
        now: Instant,
        peer: P,
        offer: u64,
        answer: &str,
    ) -> Result<(), SfuError> {
        let parsed =
            SdpAnswer::from_sdp_string(answer).map_err(|e| SfuError::BadSdp(e.to_string()))?;
        let p = self.peers.get_mut(&peer).ok_or(SfuError::NotConnected)?;
        match &p.pending {
            None => return Err(SfuError::NoOfferPending),
            Some((n, _, _)) if *n != offer => return Err(SfuError::StaleAnswer),
            Some(_) => {}
        }
        let (_, _, pending) = p.pending.take().ok_or(SfuError::NoOfferPending)?;
        let result = p.rtc.sdp_api().accept_answer(pending, parsed);
        let mut opened = Vec::new();
        if result.is_ok() {
            for t in &mut p.video_out {
                if let OutState::Negotiating(m) = t.state {
                    opened.push(t.source);
                    t.state = OutState::Open(m);
                }
            }
            p.video_out
                .retain(|t| !matches!(t.state, OutState::NegotiatingStop(_)));
        } else {
            void_pending(p);
        }
        // A receiver that just got a track gets a picture at once, not at the sender's next
        // keyframe.
        for (origin, mid) in opened {
            self.request_keyframe(now, origin, mid, KeyframeRequestKind::Pli);
        }
        self.dirty.insert(peer);
        self.reroute = true;
        self.flush(now);
        result.map_err(|e| SfuError::AnswerRefused(e.to_string()))
    }

    pub fn remove_peer(&mut self, peer: P) {
        if let Some(phone) = self.phones.remove(&peer) {
            // Its counts stay in the call's, which only grow.
            self.stats.phone.add(phone.counts());
            let _ = self.mixer.forget(peer);
            self.set_hearing();
        }
        if let Some(mut p) = self.peers.remove(&peer) {
            p.rtc.disconnect();
            // Whatever it had buffered or decoded belongs to the old connection.
            let _ = self.mixer.forget(peer);
            self.set_hearing();
            self.dirty.remove(&peer);
            self.reroute = true;
        }
    }

    /// Tells the mixer who hears it in what: phones of G.711 and G.722 hear PCM, browsers, Opus
    /// phones and the recorder Opus, members with no connection nothing. After a change of
    /// policy, of phones or of connections.
    fn set_hearing(&mut self) {
        // Whether a member hears PCM, Opus, or nothing (no connection to hear on yet).
        let pcm = |m: &P| -> Option<bool> {
            match self.phones.get(m) {
                // On hold: it is sent nothing.
                Some(phone) if !phone.media().send => None,
                Some(phone) => Some(phone.hears_pcm()),
                None => self.peers.contains_key(m).then_some(false),
            }
        };
        let policy = &self.policy;
        let listening: Vec<Option<bool>> = policy
            .voice_members
            .iter()
            .filter(|m| !policy.speakers.contains(m))
            .map(pcm)
            .collect();
        // The recorder hears the listener mix, so it is encoded while recording.
        self.mixer
            .set_listening(policy.recording || listening.contains(&Some(false)));
        self.mixer
            .set_pcm_listening(listening.contains(&Some(true)));
        self.mixer.set_pcm_hearers(
            self.phones
                .iter()
                .filter(|(_, p)| p.hears_pcm())
                .map(|(k, _)| *k),
        );
        // Only the phones in the call that are sent audio: one of another rate elsewhere (on
        // hold, not in the call) does not make the call's ticks at 48 kHz.
        self.mixer.set_pcm_rates(
            self.phones
                .iter()
                .filter(|(k, p)| p.hears_pcm() && pcm(k).is_some())
                .filter(|(k, _)| policy.voice_members.contains(k))
                .map(|(_, p)| p.media().codec.sample_rate() as u32),
        );
        self.mixer
            .set_deaf(policy.speakers.iter().copied().filter(|s| pcm(s).is_none()));
    }

    /// What the session's rules allow now: who hears and is heard in the call (SPEC V2, V3),
    /// whose video is passed on, who controls whom. Video that stops being allowed is taken off
    /// its receivers' connections by renegotiating.
    pub fn set_policy(&mut self, now: Instant, policy: MediaPolicy<P>) -> Result<(), SfuError> {
        let members = &policy.voice_members;
        self.mixer.set_speakers(
            policy
                .speakers
                .iter()
                .copied()
                .filter(|s| members.contains(s)),
        )?;
        let starts_recording = policy.recording && !self.policy.recording;
        for speaker in &policy.speakers {
            let percent = policy.volumes.get(speaker).copied().unwrap_or(100);
            self.mixer
                .set_gain(*speaker, Gain::new(f32::from(percent) / 100.0));
        }
        self.policy = policy;
        self.set_hearing();
        if starts_recording {
            // A recording starts with a picture: ask every sender for a keyframe.
            let tracks: Vec<(P, Mid)> = self
                .peers
                .iter()
                .flat_map(|(k, p)| p.video_in.keys().map(move |m| (*k, *m)))
                .collect();
            for (origin, mid) in tracks {
                self.request_keyframe(now, origin, mid, KeyframeRequestKind::Pli);
            }
        }
        self.reroute = true;
        self.flush(now);
        Ok(())
    }

    /// A datagram that arrived on the worker's socket. Returns false if it belongs to none of
    /// this call's peers (and then nothing changed).
    pub fn handle_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) -> bool {
        let own = phone::owner(self.phones.iter().map(|(k, p)| (*k, p)), source, contents);
        if let Some((key, phone)) = own.and_then(|k| Some((k, self.phones.get_mut(&k)?))) {
            let wanted =
                self.policy.speakers.contains(&key) && self.policy.voice_members.contains(&key);
            for input in phone.receive(now, source, contents, wanted) {
                match input {
                    PhoneInput::Voice { seq, opus } => {
                        self.stats.audio_in += 1;
                        self.mixer.push(now, key, seq, opus);
                    }
                    PhoneInput::Pcm { seq, pcm } => {
                        self.stats.audio_in += 1;
                        self.mixer.push_pcm(now, key, seq, pcm);
                    }
                    PhoneInput::Dtmf(digit) => {
                        self.events.push_back(SfuEvent::Dtmf { peer: key, digit })
                    }
                }
            }
            if let Some(report) = phone.take_report() {
                self.events
                    .push_back(SfuEvent::WrongAddress { peer: key, report });
            }
            return true;
        }
        let Ok(receive) = Receive::new(Protocol::Udp, source, destination, contents) else {
            return false;
        };
        let input = Input::Receive(now, receive);
        let Some((&key, peer)) = self.peers.iter_mut().find(|(_, p)| p.rtc.accepts(&input)) else {
            return false;
        };
        // A datagram str0m cannot use is dropped; only a connection that died with it (DTLS
        // failed) is ended. Anyone can send garbage from a peer's address, and that must not
        // cut the peer off.
        if peer.rtc.handle_input(input).is_err() {
            self.stats.bad_datagrams += 1;
        }
        if peer.rtc.is_alive() {
            self.dirty.insert(key);
        } else {
            self.fail(key);
        }
        self.flush(now);
        true
    }

    /// A datagram no call on the worker took: true if it is one of this call's phones' RTP
    /// from a wrong address, which that phone counts and reports ([`PhoneLeg::stray`]).
    pub fn stray(&mut self, source: SocketAddr, contents: &[u8]) -> bool {
        let Some((&peer, phone)) = self
            .phones
            .iter_mut()
            .find_map(|(k, p)| p.stray(source, contents).then_some((k, p)))
        else {
            return false;
        };
        if let Some(report) = phone.take_report() {
            self.events
                .push_back(SfuEvent::WrongAddress { peer, report });
        }
        true
    }

    /// Advances every peer and the mixer to `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), SfuError> {
        for peer in self.peers.values_mut() {
            if peer
                .pending
                .as_ref()
                .is_some_and(|(_, at, _)| now >= *at + OFFER_TIMEOUT)
            {
                // Lost, or ignored by a page in a state it could not get out of: offer anew.
                void_pending(peer);
                self.reroute = true;
            }
        }
        let due: Vec<P> = self
            .peers
            .iter()
            .filter(|(_, p)| p.timeout <= now)
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            if peer.rtc.handle_input(Input::Timeout(now)).is_err() {
                self.fail(key);
            } else {
                self.dirty.insert(key);
            }
        }
        while let Some(out) = self.mixer.handle_timeout(now)? {
            // RTP time follows the mixer's ticks, so it keeps pace with the clock across the
            // silences in which nothing is sent.
            let samples = self.mixer.stats().ticks * FRAME_SAMPLES as u64;
            let rtp_time = MediaTime::new(samples, Frequency::FORTY_EIGHT_KHZ);
            if self.policy.recording && !out.listeners.is_empty() {
                self.recorded.push_back(Recorded::Voice {
                    rtp_time: samples,
                    data: out.listeners.clone(),
                    at: now,
                });
            }
            let members = &self.policy.voice_members;
            for (key, peer) in self.peers.iter_mut().filter(|(k, _)| members.contains(k)) {
                let packet = out.for_member(key);
                if !packet.is_empty() && write_audio(peer, now, rtp_time, packet.to_vec()) {
                    self.stats.audio_out += 1;
                    self.dirty.insert(*key);
                }
            }
            self.shared_mix.next_tick();
            for (key, phone) in self.phones.iter_mut().filter(|(k, _)| members.contains(k)) {
                let own = out.speakers_pcm.iter().find(|(k, _)| k == key);
                let datagram = if let Some((_, pcm)) = own {
                    phone.send_frame(now, pcm)
                } else if phone.hears_pcm() {
                    let codec = phone.media().codec;
                    let shared = &mut self.shared_mix;
                    out.listeners_pcm
                        .as_ref()
                        .and_then(|pcm| phone.send_payload(now, || shared.payload(codec, pcm).ok()))
                } else {
                    phone.send_mix(now, out.for_member(key))
                };
                if let Some(datagram) = datagram {
                    self.stats.audio_out += 1;
                    self.transmits.push_back(Transmit {
                        source: self.local,
                        destination: phone.remote(),
                        contents: datagram,
                    });
                }
            }
        }
        // Phones: silence when there was no mix for them, and their RTCP reports.
        for phone in self.phones.values_mut() {
            if phone.poll_timeout() <= now {
                for (destination, contents) in phone.handle_timeout(now) {
                    self.transmits.push_back(Transmit {
                        source: self.local,
                        destination,
                        contents,
                    });
                }
            }
        }
        self.flush(now);
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

    /// What the recorder is to get, oldest first (nothing unless the policy records).
    #[must_use]
    pub fn poll_recorded(&mut self) -> Option<Recorded<P>> {
        self.recorded.pop_front()
    }

    /// When to call [`Self::handle_timeout`] next.
    pub fn poll_timeout(&self, now: Instant) -> Instant {
        let offers = self
            .peers
            .values()
            .filter_map(|p| p.pending.as_ref().map(|(_, at, _)| *at + OFFER_TIMEOUT));
        let peers = self.peers.values().map(|p| p.timeout).chain(offers);
        peers
            .chain(self.mixer.poll_timeout())
            .chain(self.phones.values().map(PhoneLeg::poll_timeout))
            .min()
            .unwrap_or(now + IDLE)
    }

    fn fail(&mut self, key: P) {
        self.remove_peer(key);
        self.events.push_back(SfuEvent::Disconnected(key));
    }

    /// Takes the output of every peer that has some, rerouting video first if anything changed;
    /// output of one peer (a frame, a keyframe request) can give another output to take.
    fn flush(&mut self, now: Instant) {
        loop {
            // Output first: a new connection's tracks (MediaAdded) must be known before video
            // is rerouted, or its receivers would be told to stop and re-add them.
            if let Some(key) = self.dirty.pop_first() {
                self.drain(now, key);
                continue;
            }
            if !self.reroute {
                return;
            }
            self.reroute = false;
            self.route_video();
            self.negotiate(now);
        }
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
                    // Moved, not copied: str0m hands over the buffer it encrypted into (issue 19).
                    contents: t.contents.into(),
                }),
                Ok(Output::Event(e)) => {
                    if !self.handle_event(now, key, e) {
                        return;
                    }
                }
                Err(_) => {
                    self.fail(key);
                    return;
                }
            }
        }
    }

    /// One event from `key`'s `Rtc`; false if the peer is gone.
    fn handle_event(&mut self, now: Instant, key: P, event: Event) -> bool {
        let Some(peer) = self.peers.get_mut(&key) else {
            return false;
        };
        match event {
            Event::Connected => self.events.push_back(SfuEvent::Connected(key)),
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.fail(key);
                return false;
            }
            Event::MediaAdded(m) => match m.kind {
                MediaKind::Audio if peer.audio.is_none() => peer.audio = Some(m.mid),
                MediaKind::Video if m.direction.is_receiving() => {
                    peer.video_in.insert(m.mid, None);
                    self.reroute = true;
                }
                _ => {}
            },
            Event::MediaChanged(c) => {
                let ours = peer.video_out.iter().any(|t| match t.state {
                    OutState::Negotiating(m) | OutState::Open(m) => m == c.mid,
                    _ => false,
                });
                if !ours && Some(c.mid) != peer.audio {
                    // A track of the peer's own started or stopped sending.
                    if c.direction.is_receiving() {
                        peer.video_in.entry(c.mid).or_insert(None);
                    } else {
                        peer.video_in.remove(&c.mid);
                    }
                    self.reroute = true;
                }
            }
            Event::MediaData(d) if Some(d.mid) == peer.audio => {
                self.stats.audio_in += 1;
                let seq: u64 = **d.seq_range.start();
                self.mixer.push(now, key, seq as u16, d.data.to_vec());
            }
            Event::MediaData(d) if peer.video_in.contains_key(&d.mid) => {
                self.forward_video(now, key, d);
            }
            Event::KeyframeRequest(req) => {
                let source = peer
                    .video_out
                    .iter()
                    .find(|t| t.state == OutState::Open(req.mid))
                    .map(|t| t.source);
                if let Some((origin, mid)) = source {
                    self.request_keyframe(now, origin, mid, req.kind);
                }
            }
            Event::ChannelOpen(id, label) => {
                if let Some(kind) = ChannelKind::from_label(&label) {
                    peer.channels.push((id, kind));
                }
            }
            Event::ChannelClose(id) => {
                peer.channels.retain(|(c, _)| *c != id);
            }
            Event::ChannelData(d) => self.relay_channel(now, key, d),
            Event::PeerStats(s) => self.events.push_back(SfuEvent::Stats {
                peer: key,
                rtt: s.rtt,
                loss_in: s.ingress_loss_fraction,
                loss_out: s.egress_loss_fraction,
            }),
            _ => {}
        }
        true
    }

    fn count_drop(&mut self, reason: DropReason) {
        *self.stats.dropped.entry(reason).or_default() += 1;
    }

    fn relay_channel(&mut self, now: Instant, from: P, data: ChannelData) {
        let Some(kind) = self.peers.get(&from).and_then(|p| {
            p.channels
                .iter()
                .find(|(c, _)| *c == data.id)
                .map(|(_, k)| *k)
        }) else {
            return;
        };
        let targets =
            match self
                .policy
                .channel_targets(kind, from, &data.data, self.peers.keys().copied())
            {
                Ok(t) => t,
                Err(reason) => {
                    self.count_drop(reason);
                    return;
                }
            };
        if self.policy.recording && kind != ChannelKind::Control {
            self.recorded.push_back(Recorded::Channel {
                origin: from,
                kind,
                data: data.data.clone(),
                at: now,
            });
        }
        for target in targets {
            let Some(peer) = self.peers.get_mut(&target) else {
                continue;
            };
            let Some(id) = channel_of(&peer.channels, kind) else {
                continue;
            };
            let Some(mut channel) = peer.rtc.channel(id) else {
                continue;
            };
            if channel.write(data.binary, &data.data).is_ok() {
                self.stats.channel_messages_relayed += 1;
                self.dirty.insert(target);
            }
        }
    }
}

/// The id of the open channel of this kind.
pub(crate) fn channel_of(
    channels: &[(ChannelId, ChannelKind)],
    kind: ChannelKind,
) -> Option<ChannelId> {
    channels.iter().find(|(_, k)| *k == kind).map(|(id, _)| *id)
}

/// The session-level (or first) `a=ice-ufrag` of an SDP.
fn ice_ufrag(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix("a=ice-ufrag:"))
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
}

/// Writes one 20 ms Opus frame on a peer's audio track, if it has one that is open.
fn write_audio<P>(peer: &mut Peer<P>, now: Instant, rtp_time: MediaTime, packet: Vec<u8>) -> bool {
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
