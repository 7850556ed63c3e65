//! A WebRTC peer of the SFU in str0m, for programs that are not browsers: Tandem Helper (the
//! customer's screen as encoded video, the `control` channel, the bandwidth estimate and
//! keyframe requests its encoder follows), and the page-like client of the tests and the load
//! generator (audio with a tone, the three data channels, synthetic video that carries its send
//! time, counts of what it hears and sees). [`ClientConfig`] chooses which.
//!
//! Sans-IO like the SFU and str0m: every call takes `now`, datagrams come in through
//! [`Client::handle_receive`] and go out through [`Client::poll_transmit`], signalling (SDP)
//! goes in and out as strings, and [`Client::poll_event`] says what happened. The helper and the
//! load generator drive it over UDP; tests drive it over memory under simulated time
//! (`testkit::sim`).
//!
//! For measuring audio/video sync end to end it can instead send a [`Pattern`]: real encoded
//! frames on one video track and beeps on the audio, both timed from the same instant.

mod config;
mod event;
mod pattern;
mod send_timing;
mod synthetic;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::bwe::{Bitrate, BweKind};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::ChannelId;
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::Extension;
use str0m::{Candidate, Event, IceConnectionState, Input, Output, PacerReason, Reason, Rtc};

pub use config::{BandwidthConfig, ClientConfig, Synthetic, VideoConfig};
pub use event::{ChannelMessage, ClientEvent};
pub use pattern::{Pattern, PatternFrame};
use send_timing::SendTiming;
pub use send_timing::{FrameLeft, pacing_delay};

use crate::mix::FRAME_SAMPLES;
use crate::policy::{ChannelKind, TrackPurpose};
use crate::sfu::Transmit;
use crate::tone::sine_frame;
use event::Events;
use pattern::{PatternOut, send_pattern_frame};
use synthetic::{epoch, read_frame, video_frame};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("bad SDP from the server: {0}")]
    Sdp(String),
    #[error("the configuration offers nothing: no audio, video or data channel")]
    NothingToOffer,
    #[error("the connection failed: {0}")]
    Rtc(#[from] str0m::RtcError),
    #[error("opus: {0}")]
    Opus(#[from] opus::Error),
    #[error("the connection is not up yet")]
    NotConnected,
    #[error("no video track of ours has mid {0}")]
    NoSuchTrack(Mid),
    #[error("the server did not accept {0} on this track")]
    CodecNotNegotiated(Codec),
    #[error("no data channel labelled {0:?} is open")]
    ChannelNotOpen(String),
    #[error("the data channel {0:?} has no room for the message now")]
    ChannelFull(String),
}

/// One encoded video frame from the caller (an encoder's output).
#[derive(Clone, Debug)]
pub struct EncodedFrame {
    /// The codec it is encoded in: one [`Client::video_codec`] names for the track.
    pub codec: Codec,
    /// Its RTP time at 90 kHz, from the caller's clock (the capture time), so that receivers
    /// play frames at the pace they were captured.
    pub rtp_time: u64,
    /// VP8: the frame; H.264: its NAL units in Annex B (each after a start code).
    pub data: Vec<u8>,
}

struct VideoOut {
    mid: Mid,
    config: VideoConfig,
    next: Option<Instant>,
    seq: u64,
    keyframe_due: bool,
}

/// What arrived on one received video track.
#[derive(Clone, Debug, Default)]
pub struct VideoIn {
    /// The server's stream id: `<purpose>-<participant>`.
    pub stream: String,
    pub frames: u64,
    pub bytes: u64,
    pub keyframes: u64,
    /// Frames missing from the sender's sequence.
    pub lost: u64,
    last_seq: Option<u64>,
    /// Sender to receiver, through the server, per frame.
    pub latencies: Vec<Duration>,
    /// The last [`ClientConfig::keep_video`] frames: their RTP time (90 kHz) and bytes.
    pub kept: VecDeque<(u64, Vec<u8>)>,
    /// The playout delay (min, max) the last frame asked for, if it named one.
    pub playout_delay: Option<(Duration, Duration)>,
}

pub struct Client {
    addr: SocketAddr,
    rtc: Rtc,
    audio: Option<Mid>,
    tone: Vec<Vec<u8>>,
    dec: opus::Decoder,
    config: ClientConfig,
    audio_sent: u64,
    next_audio: Option<Instant>,
    /// Decoded audio heard, the last `keep_audio` samples.
    pub heard: Vec<i16>,
    pub audio_packets_in: u64,
    video_out: Vec<VideoOut>,
    pattern: Option<PatternOut>,
    pub video_in: BTreeMap<Mid, VideoIn>,
    pending: Option<SdpPendingOffer>,
    /// The server's offers numbered up to this are void (see `Answer::void_offers`).
    void_offers: u64,
    /// Open data channels and their labels.
    channels: Vec<(ChannelId, String)>,
    /// Messages on the channels the SFU relays, by kind (the page-like client's record; the
    /// helper reads [`ClientEvent::ChannelMessage`]).
    pub channel_in: Vec<(ChannelKind, Vec<u8>)>,
    pub connected: bool,
    /// ICE or DTLS gave up.
    pub failed: bool,
    pub keyframe_requests_in: u64,
    bitrate: Option<Bitrate>,
    events: Events,
    timeout: Instant,
    transmits: VecDeque<Transmit>,
    /// How long the pacer holds each frame, when asked for ([`Client::time_sends`]).
    send_timing: Option<SendTiming>,
}

const AUDIO_FRAME: Duration = Duration::from_millis(20);

impl Client {
    /// A client at `addr` and its first offer (audio, the data channels and `video`, as
    /// `config` says), with what each video track carries by mid, as a page sends in
    /// `media_offer`.
    pub fn new(
        now: Instant,
        addr: SocketAddr,
        config: ClientConfig,
        video: Vec<VideoConfig>,
    ) -> Result<(Self, String, BTreeMap<String, TrackPurpose>), ClientError> {
        let mut client = Self::answerer(now, addr, config)?;
        let mut change = client.rtc.sdp_api();
        client.audio = client
            .config
            .audio
            .then(|| change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None));
        for v in video {
            let mid = change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
            client.video_out.push(VideoOut {
                mid,
                config: v,
                next: None,
                seq: 0,
                keyframe_due: true,
            });
        }
        for label in &client.config.channels {
            change.add_channel(label.clone());
        }
        let (offer, pending) = change.apply().ok_or(ClientError::NothingToOffer)?;
        client.pending = Some(pending);
        let purposes = client
            .video_out
            .iter()
            .map(|v| (v.mid.to_string(), v.config.purpose))
            .collect();
        Ok((client, offer.to_sdp_string(), purposes))
    }

    /// A client at `addr` that waits for the other side's offer ([`Client::accept_offer`]):
    /// what it receives is what that offer sends. The load generator's subscriber to a Janus
    /// VideoRoom, where the server offers first; `config.audio` and `config.channels` are
    /// not used, and the first audio track offered is the one counted.
    pub fn answerer(
        now: Instant,
        addr: SocketAddr,
        config: ClientConfig,
    ) -> Result<Self, ClientError> {
        crate::sfu::init_crypto();
        epoch();
        let mut builder = Rtc::builder()
            .clear_codecs()
            .enable_opus(true, false)
            .set_extension(5, Extension::PlayoutDelay);
        for codec in &config.video_codecs {
            builder = match codec {
                Codec::Vp8 => builder.enable_vp8(true),
                Codec::H264 => builder.enable_h264(true),
                Codec::Vp9 => builder.enable_vp9(true),
                _ => builder,
            };
        }
        if let Some(b) = config.bandwidth {
            builder = builder.enable_bwe(Some(b.start));
        }
        let mut rtc = builder.build(now);
        if let Some(b) = config.bandwidth {
            rtc.bwe().set_desired_bitrate(b.desired);
        }
        rtc.add_local_candidate(
            Candidate::host(addr, "udp").map_err(|e| ClientError::Sdp(e.to_string()))?,
        );
        // One second of the tone, encoded once: the load generator runs many clients.
        let mut tone = Vec::new();
        if let Some(freq) = config.tone {
            let mut enc =
                opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip)?;
            for n in 0..50 {
                let pcm = sine_frame(freq, 8000.0, n);
                let mut out = vec![0; 1275];
                let len = enc.encode(&pcm, &mut out)?;
                out.truncate(len);
                tone.push(out);
            }
        }
        Ok(Client {
            addr,
            rtc,
            audio: None,
            tone,
            dec: opus::Decoder::new(48_000, opus::Channels::Mono)?,
            config,
            audio_sent: 0,
            next_audio: None,
            heard: Vec::new(),
            audio_packets_in: 0,
            video_out: Vec::new(),
            pattern: None,
            video_in: BTreeMap::new(),
            pending: None,
            void_offers: 0,
            channels: Vec::new(),
            channel_in: Vec::new(),
            connected: false,
            failed: false,
            keyframe_requests_in: 0,
            bitrate: None,
            events: Events::default(),
            timeout: now,
            transmits: VecDeque::new(),
            send_timing: None,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's answer to this client's offer, and the number of its own offers it made
    /// void by taking ours.
    pub fn accept_answer(
        &mut self,
        now: Instant,
        sdp: &str,
        void_offers: u64,
    ) -> Result<(), ClientError> {
        self.void_offers = self.void_offers.max(void_offers);
        let answer =
            SdpAnswer::from_sdp_string(sdp).map_err(|e| ClientError::Sdp(e.to_string()))?;
        let pending = self
            .pending
            .take()
            .ok_or_else(|| ClientError::Sdp("no offer of ours is waiting".into()))?;
        self.rtc.sdp_api().accept_answer(pending, answer)?;
        self.drain(now);
        Ok(())
    }

    /// Offer number `number` from the server; the answer to send back, or `None` when an offer
    /// of ours is still unanswered or the server's offer was made void (the page ignores it
    /// then; the server offers again).
    pub fn accept_offer(
        &mut self,
        now: Instant,
        number: u64,
        sdp: &str,
    ) -> Result<Option<String>, ClientError> {
        if self.pending.is_some() || number <= self.void_offers {
            return Ok(None);
        }
        let offer = SdpOffer::from_sdp_string(sdp).map_err(|e| ClientError::Sdp(e.to_string()))?;
        let answer = self.rtc.sdp_api().accept_offer(offer)?;
        self.drain(now);
        Ok(Some(answer.to_sdp_string()))
    }

    /// Adds a video track: the offer to send and what each of our video tracks carries, or
    /// `None` if an offer is still unanswered.
    pub fn add_video(
        &mut self,
        video: VideoConfig,
    ) -> Option<(String, BTreeMap<String, TrackPurpose>)> {
        if self.pending.is_some() {
            return None;
        }
        let mut change = self.rtc.sdp_api();
        let mid = change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
        let (offer, pending) = change.apply()?;
        self.pending = Some(pending);
        self.video_out.push(VideoOut {
            mid,
            config: video,
            next: None,
            seq: 0,
            keyframe_due: true,
        });
        let purposes = self
            .video_out
            .iter()
            .map(|v| (v.mid.to_string(), v.config.purpose))
            .collect();
        Some((offer.to_sdp_string(), purposes))
    }

    /// Sends `pattern` from now on: its frames on the first video track of its purpose and its
    /// beeps in place of the tone. Given before the media starts, it is all the client sends.
    pub fn send_pattern(&mut self, pattern: Pattern) -> Result<(), ClientError> {
        self.pattern = Some(PatternOut::new(pattern)?);
        Ok(())
    }

    /// When the pattern started (its time 0), once it has.
    pub fn pattern_origin(&self) -> Option<Instant> {
        self.pattern.as_ref().and_then(|p| p.origin)
    }

    /// Forgets our unanswered offer (the server refused it), as a page rolls back.
    pub fn rollback(&mut self) {
        self.pending = None;
    }

    /// Our video tracks, by mid, with what each carries (the mids [`Client::send_frame`] takes).
    pub fn video_tracks(&self) -> impl Iterator<Item = (Mid, TrackPurpose)> + '_ {
        self.video_out.iter().map(|v| (v.mid, v.config.purpose))
    }

    /// The codec to encode our video track `mid` in: the first the server's answer lists (its
    /// preference), as a browser picks; `None` before the answer.
    pub fn video_codec(&mut self, mid: Mid) -> Option<Codec> {
        send_codec(&mut self.rtc, mid).map(|(_, codec)| codec)
    }

    /// Sends one encoded frame on our video track `mid` (one made with
    /// [`VideoConfig::from_caller`]); str0m packetizes, paces and protects it.
    pub fn send_frame(
        &mut self,
        now: Instant,
        mid: Mid,
        frame: EncodedFrame,
    ) -> Result<(), ClientError> {
        if !self.video_out.iter().any(|v| v.mid == mid) {
            return Err(ClientError::NoSuchTrack(mid));
        }
        if !self.connected {
            return Err(ClientError::NotConnected);
        }
        let writer = self.rtc.writer(mid).ok_or(ClientError::NoSuchTrack(mid))?;
        let pt = pt_of(&writer, frame.codec).ok_or(ClientError::CodecNotNegotiated(frame.codec))?;
        let time = MediaTime::new(frame.rtp_time, Frequency::NINETY_KHZ);
        let bytes = frame.data.len();
        writer.write(pt, now, time, frame.data)?;
        if let Some(t) = &mut self.send_timing {
            t.written(now, bytes);
        }
        self.drain(now);
        Ok(())
    }

    /// From now on, time how long each frame from [`Client::send_frame`] waits in str0m's
    /// pacer (a diagnostic: see [`Client::poll_frame_left`]).
    pub fn time_sends(&mut self) {
        self.send_timing.get_or_insert_with(SendTiming::default);
    }

    /// A frame that left since the last poll and how long the pacer held it, oldest first
    /// (with [`Client::time_sends`]).
    pub fn poll_frame_left(&mut self) -> Option<FrameLeft> {
        self.send_timing.as_mut()?.pop()
    }

    /// The latest send-side bandwidth estimate (with [`ClientConfig::bandwidth`]): what the
    /// encoders may spend in all.
    pub fn bitrate_estimate(&self) -> Option<Bitrate> {
        self.bitrate
    }

    /// What happened since the last poll, oldest first.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop()
    }

    /// Sends `data` on the open data channel labelled `label`, as binary or as text.
    pub fn send(
        &mut self,
        now: Instant,
        label: &str,
        data: &[u8],
        binary: bool,
    ) -> Result<(), ClientError> {
        let id = self
            .channel_id(label)
            .ok_or_else(|| ClientError::ChannelNotOpen(label.to_string()))?;
        let mut channel = self
            .rtc
            .channel(id)
            .ok_or_else(|| ClientError::ChannelNotOpen(label.to_string()))?;
        let accepted = channel.write(binary, data)?;
        self.drain(now);
        if !accepted {
            return Err(ClientError::ChannelFull(label.to_string()));
        }
        Ok(())
    }

    /// Sends on one of the channels the SFU relays, if it is open (binary, as the page does).
    pub fn send_channel(&mut self, now: Instant, kind: ChannelKind, data: &[u8]) -> bool {
        self.send(now, kind.label(), data, true).is_ok()
    }

    pub fn channel_open(&self, kind: ChannelKind) -> bool {
        self.channel_id(kind.label()).is_some()
    }

    fn channel_id(&self, label: &str) -> Option<ChannelId> {
        self.channels
            .iter()
            .find(|(_, l)| l == label)
            .map(|(id, _)| *id)
    }

    pub fn handle_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        contents: &[u8],
    ) -> Result<(), ClientError> {
        let Ok(receive) = Receive::new(Protocol::Udp, source, self.addr, contents) else {
            return Ok(());
        };
        self.rtc.handle_input(Input::Receive(now, receive))?;
        self.drain(now);
        Ok(())
    }

    /// Advances the connection and sends whatever audio and synthetic video frames are due.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), ClientError> {
        if self.connected {
            self.send_due(now);
        }
        self.rtc.handle_input(Input::Timeout(now))?;
        self.drain(now);
        Ok(())
    }

    /// Whether the next deadline ([`Client::poll_timeout`]) is only for padding: str0m's pacer
    /// fills a sending track up to 50 kbit/s while no media is queued, a small packet every
    /// 5 ms. A sender may serve that later, and so more rarely (the helper with a still screen).
    pub fn next_is_padding(&self) -> bool {
        self.timeout_reason() == Some(Reason::Pacer(PacerReason::Padding))
    }

    /// The bitrate this client would like to send at: str0m probes for it (up to twice it),
    /// even while little is sent. Needs a bandwidth estimate ([`ClientConfig::bandwidth`]).
    pub fn set_desired_bitrate(&mut self, bitrate: Bitrate) {
        self.rtc.bwe().set_desired_bitrate(bitrate);
    }

    /// What str0m's next deadline is for, when [`Client::poll_timeout`] is str0m's (not this
    /// client's own audio or video pattern).
    pub fn timeout_reason(&self) -> Option<Reason> {
        (self.poll_timeout() >= self.timeout).then(|| self.rtc.last_timeout_reason())
    }

    pub fn poll_timeout(&self) -> Instant {
        let mut t = self.timeout;
        if self.connected {
            t = t.min(self.next_audio.unwrap_or(t));
            for v in &self.video_out {
                t = t.min(v.next.unwrap_or(t));
            }
        }
        t
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Video tracks received whose stream id starts with `purpose`.
    pub fn received(&self, purpose: TrackPurpose) -> impl Iterator<Item = &VideoIn> {
        self.video_in
            .values()
            .filter(move |v| v.stream.starts_with(purpose.as_str()))
    }

    pub fn frames_received(&self, purpose: TrackPurpose) -> u64 {
        self.received(purpose).map(|v| v.frames).sum()
    }

    fn send_due(&mut self, now: Instant) {
        if let Some(p) = &mut self.pattern {
            p.origin.get_or_insert(now);
        }
        if let Some(audio) = self.audio
            && (!self.tone.is_empty() || self.pattern.is_some())
        {
            let next = *self.next_audio.get_or_insert(now);
            if now >= next {
                let packet = match &mut self.pattern {
                    Some(p) => p.audio(next).ok(),
                    None => Some(self.tone[(self.audio_sent % 50) as usize].clone()),
                };
                let time = MediaTime::new(
                    self.audio_sent * FRAME_SAMPLES as u64,
                    Frequency::FORTY_EIGHT_KHZ,
                );
                if let Some(packet) = packet
                    && let Some(w) = self.rtc.writer(audio)
                    && let Some(pt) = pt_of(&w, Codec::Opus)
                {
                    let _ = w.write(pt, now, time, packet);
                }
                self.audio_sent += 1;
                self.next_audio = Some(next + AUDIO_FRAME);
            }
        }
        let patterned = self.pattern.as_ref().and_then(|p| {
            self.video_out
                .iter()
                .position(|v| v.config.purpose == p.pattern.purpose)
        });
        for (i, v) in self.video_out.iter_mut().enumerate() {
            if Some(i) == patterned
                && let Some(p) = &mut self.pattern
            {
                let (keyframe_sent, next) = send_pattern_frame(&mut self.rtc, now, v.mid, p);
                v.keyframe_due &= !keyframe_sent;
                v.next = next;
                continue;
            }
            let Some(synthetic) = v.config.synthetic else {
                continue;
            };
            let next = *v.next.get_or_insert(now);
            if now < next {
                continue;
            }
            let key = v.keyframe_due || v.seq.is_multiple_of(synthetic.keyframe_every.max(1));
            let time = MediaTime::new(
                v.seq * 90_000 / u64::from(synthetic.fps.max(1)),
                Frequency::NINETY_KHZ,
            );
            if let Some((pt, codec)) = send_codec(&mut self.rtc, v.mid)
                && let Some(w) = self.rtc.writer(v.mid)
                && w.write(
                    pt,
                    now,
                    time,
                    video_frame(codec, now, v.seq, key, synthetic.frame_bytes),
                )
                .is_ok()
            {
                v.keyframe_due &= !key;
            }
            v.seq += 1;
            v.next = Some(next + Duration::from_secs(1) / synthetic.fps.max(1));
        }
    }

    fn drain(&mut self, now: Instant) {
        loop {
            let out = match self.rtc.poll_output() {
                Ok(o) => o,
                Err(_) => {
                    self.fail();
                    return;
                }
            };
            match out {
                Output::Timeout(t) => {
                    self.timeout = t;
                    return;
                }
                Output::Transmit(t) => {
                    if let Some(timing) = &mut self.send_timing {
                        timing.transmitted(now, t.contents.len());
                    }
                    self.transmits.push_back(Transmit {
                        source: t.source,
                        destination: t.destination,
                        contents: t.contents.into(),
                    });
                }
                Output::Event(e) => self.handle_event(now, e),
            }
        }
    }

    fn fail(&mut self) {
        if !self.failed {
            self.failed = true;
            self.events.push(ClientEvent::Failed);
        }
    }

    fn handle_event(&mut self, now: Instant, event: Event) {
        match event {
            Event::Connected => {
                self.connected = true;
                self.events.push(ClientEvent::Connected);
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => self.fail(),
            Event::MediaAdded(m) if m.kind == MediaKind::Audio && self.audio.is_none() => {
                self.audio = Some(m.mid);
            }
            Event::MediaAdded(m) if m.kind == MediaKind::Video && m.direction.is_receiving() => {
                let stream = self
                    .rtc
                    .media(m.mid)
                    .map(|media| media.stream_id().to_string())
                    .unwrap_or_default();
                self.video_in.insert(
                    m.mid,
                    VideoIn {
                        stream,
                        ..VideoIn::default()
                    },
                );
            }
            Event::MediaData(d) if Some(d.mid) == self.audio => {
                self.audio_packets_in += 1;
                if self.config.decode_audio {
                    let mut pcm = [0i16; FRAME_SAMPLES];
                    if let Ok(n) = self.dec.decode(&d.data, &mut pcm, false) {
                        self.heard.extend_from_slice(&pcm[..n]);
                        let excess = self.heard.len().saturating_sub(self.config.keep_audio);
                        self.heard.drain(..excess);
                    }
                }
            }
            Event::MediaData(d) => {
                if let Some(v) = self.video_in.get_mut(&d.mid) {
                    v.frames += 1;
                    v.bytes += d.data.len() as u64;
                    if let (Some(min), Some(max)) =
                        (d.ext_vals.play_delay_min, d.ext_vals.play_delay_max)
                    {
                        v.playout_delay = Some((min.into(), max.into()));
                    }
                    if self.config.keep_video > 0 {
                        if v.kept.len() >= self.config.keep_video {
                            v.kept.pop_front();
                        }
                        v.kept.push_back((d.time.numer(), d.data.to_vec()));
                    }
                    if let Some((sent, seq, key)) = read_frame(&d.data) {
                        v.keyframes += u64::from(key);
                        v.latencies
                            .push(now.saturating_duration_since(epoch() + sent));
                        if let Some(last) = v.last_seq
                            && seq > last + 1
                        {
                            v.lost += seq - last - 1;
                        }
                        v.last_seq = Some(v.last_seq.map_or(seq, |l| l.max(seq)));
                    }
                }
            }
            Event::KeyframeRequest(req) => {
                self.keyframe_requests_in += 1;
                if let Some(v) = self.video_out.iter_mut().find(|v| v.mid == req.mid) {
                    v.keyframe_due = true;
                }
                self.events.push(ClientEvent::KeyframeRequest {
                    mid: req.mid,
                    kind: req.kind,
                });
            }
            Event::EgressBitrateEstimate(BweKind::Twcc { estimate, .. })
                if self.bitrate != Some(estimate) =>
            {
                self.bitrate = Some(estimate);
                self.events.push(ClientEvent::BitrateEstimate(estimate));
            }
            Event::ChannelOpen(id, label) => {
                self.channels.push((id, label.clone()));
                self.events.push(ClientEvent::ChannelOpen(label));
            }
            Event::ChannelClose(id) => self.channels.retain(|(c, _)| *c != id),
            Event::ChannelData(d) => {
                let Some((_, label)) = self.channels.iter().find(|(c, _)| *c == d.id) else {
                    return;
                };
                if let Some(kind) = ChannelKind::from_label(label) {
                    self.channel_in.push((kind, d.data.clone()));
                }
                self.events
                    .push(ClientEvent::ChannelMessage(ChannelMessage {
                        label: label.clone(),
                        binary: d.binary,
                        data: d.data,
                    }));
            }
            _ => {}
        }
    }
}

fn pt_of(w: &str0m::media::Writer<'_>, codec: Codec) -> Option<str0m::media::Pt> {
    w.payload_params()
        .find(|p| p.spec().codec == codec)
        .map(|p| p.pt())
}

/// The payload type and codec to send video on `mid` with: the first the server's answer lists
/// (its order of preference), as a browser picks.
fn send_codec(rtc: &mut Rtc, mid: Mid) -> Option<(str0m::media::Pt, Codec)> {
    let listed = rtc.media(mid)?.remote_pts().to_vec();
    let w = rtc.writer(mid)?;
    listed.iter().find_map(|pt| {
        w.payload_params()
            .find(|p| p.pt() == *pt && p.spec().codec.is_video())
            .map(|p| (p.pt(), p.spec().codec))
    })
}
