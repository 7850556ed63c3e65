//! A WebRTC client in str0m that behaves as Tandem's page does: it offers audio and the three
//! data channels (and video tracks, each declared camera or screen), answers the server's
//! renegotiation offers, speaks a tone, sends synthetic video frames that carry their send time
//! and a sequence number, and counts what it hears and sees. Sans-IO like the SFU: the tests
//! drive it over memory under simulated time or over real UDP, and the load generator runs many.
//!
//! For measuring audio/video sync end to end it can instead send a [`Pattern`]: real encoded
//! frames on one video track and beeps on the audio, both timed from the same instant.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::ChannelId;
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

use crate::mix::FRAME_SAMPLES;
use crate::policy::{ChannelKind, TrackPurpose};
use crate::sfu::Transmit;
use crate::tone::sine_frame;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("bad SDP from the server: {0}")]
    Sdp(String),
    #[error("the connection failed: {0}")]
    Rtc(#[from] str0m::RtcError),
    #[error("opus: {0}")]
    Opus(#[from] opus::Error),
}

#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The tone to speak (Hz), or silence.
    pub tone: Option<f64>,
    /// Decode what is heard and keep the last `keep_audio` samples; the load generator only
    /// counts packets.
    pub decode_audio: bool,
    pub keep_audio: usize,
    /// The video codecs it offers and accepts, in its order of preference (VP8, H.264, VP9).
    /// It sends the first the server's answer lists, as a browser does; an H.264 frame is
    /// one synthetic NAL unit, which a receiver counts but cannot read the send time of.
    pub video_codecs: Vec<Codec>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            tone: None,
            decode_audio: true,
            keep_audio: 48_000 * 5,
            video_codecs: vec![Codec::Vp8],
        }
    }
}

/// A video track this client sends.
#[derive(Clone, Debug)]
pub struct VideoConfig {
    pub purpose: TrackPurpose,
    pub frame_bytes: usize,
    pub fps: u32,
    /// Frames between keyframes (besides those asked for).
    pub keyframe_every: u64,
}

/// Media with a known pattern, to measure audio/video sync end to end (SPEC R1): encoded frames
/// (made by the caller, e.g. white flashes on black) sent on a video track in place of the
/// synthetic ones, and beeps on the audio in place of the tone, at the instants the caller
/// chose. Both are timed from one instant, the pattern's origin (the first time the client
/// sends after being given it), so the sender itself is exactly in sync. It repeats every
/// `period`.
#[derive(Clone, Debug)]
pub struct Pattern {
    /// The frames go on the first video track of this purpose.
    pub purpose: TrackPurpose,
    /// One period's frames in the track's codec (VP8), in order, each with its time from the
    /// period's start. Keyframe requests are answered by the keyframes among them, so they
    /// should come regularly.
    pub frames: Vec<PatternFrame>,
    pub period: Duration,
    /// When each beep starts, from the period's start; the audio is silent in between.
    pub beeps: Vec<Duration>,
    pub beep_length: Duration,
    /// The beeps' tone (Hz) and peak amplitude.
    pub beep_freq: f64,
    pub beep_amplitude: f64,
}

impl Pattern {
    /// `frames` on the first track of `purpose`, repeated every `period`, with a beep at each
    /// of `beeps`: 100 ms of 1 kHz, peak 12 000 (of 32 767).
    pub fn new(
        purpose: TrackPurpose,
        frames: Vec<PatternFrame>,
        period: Duration,
        beeps: Vec<Duration>,
    ) -> Self {
        Pattern {
            purpose,
            frames,
            period,
            beeps,
            beep_length: Duration::from_millis(100),
            beep_freq: 1000.0,
            beep_amplitude: 12_000.0,
        }
    }
}

#[derive(Clone, Debug)]
pub struct PatternFrame {
    pub at: Duration,
    pub keyframe: bool,
    pub data: Vec<u8>,
}

struct PatternOut {
    pattern: Pattern,
    origin: Option<Instant>,
    /// The next frame to send: its index in `frames` and the period it is in.
    frame: usize,
    period: u64,
    encoder: opus::Encoder,
}

impl PatternOut {
    fn new(pattern: Pattern) -> Result<Self, opus::Error> {
        let mut encoder =
            opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip)?;
        encoder.set_bitrate(opus::Bitrate::Bits(32_000))?;
        Ok(PatternOut {
            pattern,
            origin: None,
            frame: 0,
            period: 0,
            encoder,
        })
    }

    /// When the next frame is due, and its RTP time (90 kHz from the origin).
    fn next_frame(&self, origin: Instant) -> Option<(Instant, u64)> {
        let f = self.pattern.frames.get(self.frame)?;
        let t = self.pattern.period * u32::try_from(self.period).ok()? + f.at;
        Some((origin + t, (t.as_nanos() * 90_000 / 1_000_000_000) as u64))
    }

    fn advance(&mut self) {
        self.frame += 1;
        if self.frame >= self.pattern.frames.len() {
            self.frame = 0;
            self.period += 1;
        }
    }

    /// The 20 ms packet of audio that starts at `start`: silence, or a beep where the pattern
    /// has one (to the sample).
    fn audio(&mut self, start: Instant) -> Result<Vec<u8>, opus::Error> {
        let origin = self.origin.unwrap_or(start);
        let samples = |d: Duration| (d.as_nanos() * 48_000 / 1_000_000_000) as u64;
        let first = samples(start.saturating_duration_since(origin));
        let period = samples(self.pattern.period).max(1);
        let length = samples(self.pattern.beep_length);
        let beeps: Vec<u64> = self.pattern.beeps.iter().map(|b| samples(*b)).collect();
        let p = &self.pattern;
        let pcm: Vec<i16> = (first..first + FRAME_SAMPLES as u64)
            .map(|n| {
                let phase = n % period;
                if beeps.iter().any(|b| (*b..b + length).contains(&phase)) {
                    let t = n as f64 / 48_000.0;
                    (p.beep_amplitude * (2.0 * std::f64::consts::PI * p.beep_freq * t).sin()) as i16
                } else {
                    0
                }
            })
            .collect();
        let mut out = vec![0; 1275];
        let len = self.encoder.encode(&pcm, &mut out)?;
        out.truncate(len);
        Ok(out)
    }
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
}

pub struct Client {
    addr: SocketAddr,
    rtc: Rtc,
    audio: Mid,
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
    channels: Vec<(ChannelId, ChannelKind)>,
    pub channel_in: Vec<(ChannelKind, Vec<u8>)>,
    pub connected: bool,
    /// ICE or DTLS gave up.
    pub failed: bool,
    pub keyframe_requests_in: u64,
    timeout: Instant,
    transmits: VecDeque<Transmit>,
}

/// Video frames carry their send time relative to this, so a receiver in the same process can
/// tell how long the trip took.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

const AUDIO_FRAME: Duration = Duration::from_millis(20);
const HEADER: usize = 30;
/// Marks a synthetic frame, so that real frames (a [`Pattern`]'s) are not read as one.
const MAGIC: &[u8; 4] = b"TNDM";

impl Client {
    /// A client at `addr` and its first offer (audio, the three data channels and `video`), with
    /// what each video track carries by mid, as a page sends in `media_offer`.
    pub fn new(
        now: Instant,
        addr: SocketAddr,
        config: ClientConfig,
        video: Vec<VideoConfig>,
    ) -> Result<(Self, String, BTreeMap<String, TrackPurpose>), ClientError> {
        crate::sfu::init_crypto();
        epoch();
        let mut builder = Rtc::builder().clear_codecs().enable_opus(true, false);
        for codec in &config.video_codecs {
            builder = match codec {
                Codec::Vp8 => builder.enable_vp8(true),
                Codec::H264 => builder.enable_h264(true),
                Codec::Vp9 => builder.enable_vp9(true),
                _ => builder,
            };
        }
        let mut rtc = builder.build(now);
        rtc.add_local_candidate(
            Candidate::host(addr, "udp").map_err(|e| ClientError::Sdp(e.to_string()))?,
        );
        let mut change = rtc.sdp_api();
        let audio = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let mut video_out = Vec::new();
        for v in video {
            let mid = change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
            video_out.push(VideoOut {
                mid,
                config: v,
                next: None,
                seq: 0,
                keyframe_due: true,
            });
        }
        for kind in [
            ChannelKind::Control,
            ChannelKind::Pointer,
            ChannelKind::Annotation,
        ] {
            change.add_channel(kind.label().to_string());
        }
        let (offer, pending) = change.apply().expect("an offer with media");
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
        let purposes = video_out
            .iter()
            .map(|v| (v.mid.to_string(), v.config.purpose))
            .collect();
        let client = Client {
            addr,
            rtc,
            audio,
            tone,
            dec: opus::Decoder::new(48_000, opus::Channels::Mono)?,
            config,
            audio_sent: 0,
            next_audio: None,
            heard: Vec::new(),
            audio_packets_in: 0,
            video_out,
            pattern: None,
            video_in: BTreeMap::new(),
            pending: Some(pending),
            void_offers: 0,
            channels: Vec::new(),
            channel_in: Vec::new(),
            connected: false,
            failed: false,
            keyframe_requests_in: 0,
            timeout: now,
            transmits: VecDeque::new(),
        };
        Ok((client, offer.to_sdp_string(), purposes))
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

    /// Sends on one of the data channels, if it is open.
    pub fn send_channel(&mut self, now: Instant, kind: ChannelKind, data: &[u8]) -> bool {
        let Some(id) = crate::sfu::channel_of(&self.channels, kind) else {
            return false;
        };
        let sent = self
            .rtc
            .channel(id)
            .is_some_and(|mut c| c.write(true, data).is_ok());
        self.drain(now);
        sent
    }

    pub fn channel_open(&self, kind: ChannelKind) -> bool {
        crate::sfu::channel_of(&self.channels, kind).is_some()
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

    /// Advances the connection and sends whatever audio and video frames are due.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), ClientError> {
        if self.connected {
            self.send_due(now);
        }
        self.rtc.handle_input(Input::Timeout(now))?;
        self.drain(now);
        Ok(())
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
        if !self.tone.is_empty() || self.pattern.is_some() {
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
                    && let Some(w) = self.rtc.writer(self.audio)
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
                send_pattern_frame(&mut self.rtc, now, v, p);
                continue;
            }
            let next = *v.next.get_or_insert(now);
            if now < next {
                continue;
            }
            let key = v.keyframe_due || v.seq.is_multiple_of(v.config.keyframe_every.max(1));
            let time = MediaTime::new(
                v.seq * 90_000 / u64::from(v.config.fps),
                Frequency::NINETY_KHZ,
            );
            if let Some((pt, codec)) = send_codec(&mut self.rtc, v.mid)
                && let Some(w) = self.rtc.writer(v.mid)
                && w.write(
                    pt,
                    now,
                    time,
                    video_frame(codec, now, v.seq, key, v.config.frame_bytes),
                )
                .is_ok()
            {
                v.keyframe_due &= !key;
            }
            v.seq += 1;
            v.next = Some(next + Duration::from_secs(1) / v.config.fps);
        }
    }

    fn drain(&mut self, now: Instant) {
        loop {
            let out = match self.rtc.poll_output() {
                Ok(o) => o,
                Err(_) => {
                    self.failed = true;
                    return;
                }
            };
            match out {
                Output::Timeout(t) => {
                    self.timeout = t;
                    return;
                }
                Output::Transmit(t) => self.transmits.push_back(Transmit {
                    source: t.source,
                    destination: t.destination,
                    contents: t.contents.to_vec(),
                }),
                Output::Event(e) => self.handle_event(now, e),
            }
        }
    }

    fn handle_event(&mut self, now: Instant, event: Event) {
        match event {
            Event::Connected => self.connected = true,
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => self.failed = true,
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
            Event::MediaData(d) if d.mid == self.audio => {
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
            }
            Event::ChannelOpen(id, label) => {
                if let Some(kind) = ChannelKind::from_label(&label) {
                    self.channels.push((id, kind));
                }
            }
            Event::ChannelData(d) => {
                if let Some((_, kind)) = self.channels.iter().find(|(c, _)| *c == d.id) {
                    self.channel_in.push((*kind, d.data));
                }
            }
            _ => {}
        }
    }
}

/// Sends the pattern's frame on `v` if it is due, and keeps `v.next` at the next one's time.
fn send_pattern_frame(rtc: &mut Rtc, now: Instant, v: &mut VideoOut, p: &mut PatternOut) {
    let origin = *p.origin.get_or_insert(now);
    if let Some((due, rtp)) = p.next_frame(origin)
        && now >= due
    {
        let f = &p.pattern.frames[p.frame];
        if let Some(w) = rtc.writer(v.mid)
            && let Some(pt) = pt_of(&w, Codec::Vp8)
            && w.write(
                pt,
                now,
                MediaTime::new(rtp, Frequency::NINETY_KHZ),
                f.data.clone(),
            )
            .is_ok()
        {
            v.keyframe_due &= !f.keyframe;
        }
        p.advance();
    }
    v.next = p.next_frame(origin).map(|(due, _)| due);
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

/// A synthetic frame in `codec` (see [`vp8_frame`]); for H.264, one NAL unit (IDR slice for a
/// keyframe) of filler after an Annex B start code.
fn video_frame(codec: Codec, now: Instant, seq: u64, key: bool, bytes: usize) -> Vec<u8> {
    if codec != Codec::H264 {
        return vp8_frame(now, seq, key, bytes);
    }
    let mut f = vec![0xab; bytes.max(HEADER)];
    f[..5].copy_from_slice(&[0, 0, 0, 1, if key { 0x65 } else { 0x41 }]);
    f
}

/// A frame shaped as VP8 enough for the SFU (which never decodes it): the frame tag's key-frame
/// bit, the key frame start code, then the send time, the sequence number and [`MAGIC`], then
/// filler.
fn vp8_frame(now: Instant, seq: u64, key: bool, bytes: usize) -> Vec<u8> {
    let mut f = vec![0u8; bytes.max(HEADER)];
    f[0] = if key { 0x10 } else { 0x11 };
    f[3..6].copy_from_slice(&[0x9d, 0x01, 0x2a]);
    f[6..8].copy_from_slice(&640u16.to_le_bytes());
    f[8..10].copy_from_slice(&360u16.to_le_bytes());
    let sent = now.saturating_duration_since(epoch()).as_nanos() as u64;
    f[10..18].copy_from_slice(&sent.to_be_bytes());
    f[18..26].copy_from_slice(&seq.to_be_bytes());
    f[26..30].copy_from_slice(MAGIC);
    f
}

fn read_frame(f: &[u8]) -> Option<(Duration, u64, bool)> {
    if f.len() < HEADER || &f[26..30] != MAGIC {
        return None;
    }
    let sent = u64::from_be_bytes(f[10..18].try_into().ok()?);
    let seq = u64::from_be_bytes(f[18..26].try_into().ok()?);
    Some((Duration::from_nanos(sent), seq, f[0] & 1 == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_times_its_frames_and_beeps_from_one_origin() {
        let ms = Duration::from_millis;
        let frames = (0..5u8)
            .map(|i| PatternFrame {
                at: ms(200 * u64::from(i)),
                keyframe: i == 0,
                data: vec![i],
            })
            .collect();
        let second = Duration::from_secs(1);
        let pattern = Pattern::new(TrackPurpose::Screen, frames, second, vec![ms(400)]);
        let mut p = PatternOut::new(pattern).unwrap();
        let origin = Instant::now();
        p.origin = Some(origin);

        // Frames at their times, period after period, with RTP time from the origin.
        let mut due = Vec::new();
        for _ in 0..7 {
            due.push(p.next_frame(origin).unwrap());
            p.advance();
        }
        assert_eq!(due[2], (origin + ms(400), 36_000));
        assert_eq!(due[5], (origin + ms(1000), 90_000));
        assert_eq!(due[6], (origin + ms(1200), 108_000));

        // Beeps at 0.4 s and 1.4 s, 100 ms long, silence otherwise: the decoded audio's loud
        // stretches start there, but for the codec's few milliseconds of delay.
        let mut dec = opus::Decoder::new(48_000, opus::Channels::Mono).unwrap();
        let mut pcm = Vec::new();
        for n in 0..100 {
            let packet = p.audio(origin + AUDIO_FRAME * n).unwrap();
            let mut out = [0i16; FRAME_SAMPLES];
            let got = dec.decode(&packet, &mut out, false).unwrap();
            pcm.extend_from_slice(&out[..got]);
        }
        let loud: Vec<usize> = pcm
            .iter()
            .enumerate()
            .filter(|(_, s)| s.unsigned_abs() > 3000)
            .map(|(i, _)| i)
            .collect();
        let starts: Vec<usize> = loud
            .iter()
            .enumerate()
            .filter(|(k, i)| *k == 0 || **i - loud[k - 1] > 4800)
            .map(|(_, i)| *i)
            .collect();
        assert_eq!(starts.len(), 2, "{starts:?}");
        for (start, expected) in starts.iter().zip([19_200, 67_200]) {
            assert!(
                (expected..expected + 480).contains(start),
                "a beep starts at sample {start}, not {expected}"
            );
        }
        let ends = starts.iter().map(|s| loud.iter().rfind(|i| **i < s + 9600));
        for (start, end) in starts.iter().zip(ends) {
            let length = end.unwrap() - start;
            assert!(
                (4300..=4800).contains(&length),
                "a beep {length} samples long"
            );
        }
    }
}
