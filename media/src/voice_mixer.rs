//! The voice mixer of one call (SPEC V3, SYS2): every 20 ms it decodes the Opus audio of the
//! microphone holders, mixes, and encodes one mix for all listeners plus one mix-minus per
//! speaker. Encoding work grows with the number of speakers (at most two, plus SIP legs), never
//! with the number of listeners.
//!
//! A mix that is one voice as it was sent (unity gain, a whole 20 ms packet, as the packet's
//! own table of contents says) is that packet: in the usual call of a CSR and one customer,
//! each hears the other's own packets and nothing is decoded or encoded (issue 19). Voices are
//! decoded only in a tick that mixes them; a speaker alone hears a silence frame encoded once.
//! The listener mix is encoded only when someone hears it.
//!
//! Phones speaking G.711 or G.722 come in and go out as PCM (issue 19): their voices are mixed
//! as their codec gave them and they are given their mix as PCM, never through Opus. A room
//! of such phones does no Opus work at all; a phone hearing a browser's voice alone costs one
//! decode of that voice per tick, shared by every phone that hears it. A phone's voice also
//! carries its samples at the codec's own rate ([`crate::pcm_frame`]): when everyone mixed is
//! a phone of one rate, that mix is made at that rate too, so a phone hearing phones is given
//! what it can send without resampling.
//!
//! Sans-IO: the media worker pushes RTP payloads with their arrival time and calls
//! [`VoiceMixer::handle_timeout`] when [`VoiceMixer::poll_timeout`] says so.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::time::{Duration, Instant};

use crate::jitter::{JitterBuffer, JitterConfig, Playout};
use crate::mix::{FRAME_SAMPLES, Gain, Voice, mix};
pub use crate::pcm_frame::Pcm;
use crate::pcm_frame::{Native, NativeAudio, PcmFrame};

/// One mixer tick.
pub const TICK: Duration = Duration::from_millis(20);
const SAMPLE_RATE: u32 = 48_000;
/// Largest Opus packet we produce (RFC 6716 allows 1275 bytes per frame).
const MAX_PACKET: usize = 1275;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MixerError {
    #[error("opus: {0}")]
    Opus(#[from] opus::Error),
}

#[derive(Clone, Debug)]
pub struct MixerConfig {
    pub jitter: JitterConfig,
    /// Opus bitrate of the mixes, bits per second. 32 kb/s is transparent for mono speech.
    pub bitrate: i32,
}

impl Default for MixerConfig {
    fn default() -> Self {
        Self {
            jitter: JitterConfig::default(),
            bitrate: 32_000,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MixerStats {
    pub ticks: u64,
    /// Opus encodes done; at most 1 + speakers per tick.
    pub encodes: u64,
    /// Mixes that were one sender's packet, passed on without encoding.
    pub passed_through: u64,
    /// Packets from participants without a microphone, dropped by policy (V3).
    pub dropped_not_speaker: u64,
    /// Packets that did not decode as Opus.
    pub decode_errors: u64,
    /// Frames concealed because a packet was lost or late.
    pub concealed: u64,
    /// Opus decodes done: only for voices that are mixed, never for one passed on as sent.
    pub decodes: u64,
}

/// One speaker's 20 ms as it reaches the mixer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// An Opus packet as sent (a browser, an Opus phone).
    Opus(Vec<u8>),
    /// What a phone's codec gave (G.711, G.722): at 48 kHz, and at the codec's own rate.
    Pcm(PcmFrame),
}

/// What one tick produced: 20 ms Opus packets for those who hear Opus, 20 ms of PCM for the
/// phones that hear PCM ([`VoiceMixer::set_pcm_hearers`]).
#[derive(Debug, PartialEq, Eq)]
pub struct MixOutput<K> {
    /// For everyone in the call who is not speaking (and hears Opus).
    pub listeners: Vec<u8>,
    /// For each speaker who hears Opus: everyone but themselves.
    pub speakers: Vec<(K, Vec<u8>)>,
    /// For everyone not speaking who hears PCM; `None` when nobody does.
    pub listeners_pcm: Option<PcmFrame>,
    /// For each speaker who hears PCM: everyone but themselves.
    pub speakers_pcm: Vec<(K, PcmFrame)>,
}

impl<K: PartialEq> MixOutput<K> {
    /// What `who`, hearing Opus, hears: its mix-minus if it speaks, else the listener mix.
    /// Empty when nobody was to hear this mix or its one voice is missing this tick.
    pub fn for_member(&self, who: &K) -> &[u8] {
        self.speakers
            .iter()
            .find(|(k, _)| k == who)
            .map_or(&self.listeners, |(_, p)| p)
    }
}

struct Source {
    jitter: JitterBuffer<Frame>,
    decoder: opus::Decoder,
    encoder: opus::Encoder,
    gain: Gain,
    /// The last packet passed on without being decoded.
    undecoded: Option<Vec<u8>>,
    /// Its voice comes as PCM (a phone of G.711 or G.722).
    pcm: bool,
    /// Its last frame at its codec's own rate: what a mix at that rate takes of this voice in
    /// the next tick, which is when that frame, resampled up and down again, would be heard.
    /// A mix is made at a phone's rate only when every voice in the tick has such a frame of
    /// one rate (not on a voice's first frame, nor when a browser speaks).
    last_native: Option<Native>,
}

pub struct VoiceMixer<K> {
    config: MixerConfig,
    speakers: BTreeMap<K, Source>,
    gains: BTreeMap<K, Gain>,
    listener_encoder: opus::Encoder,
    /// Someone in the call holds no microphone and hears Opus (a browser, the recorder), so
    /// hears the listener mix.
    listening: bool,
    /// Someone in the call holds no microphone and hears PCM (a G.711 or G.722 phone).
    pcm_listening: bool,
    /// Who hears PCM when they speak or are silent.
    pcm_hearers: BTreeSet<K>,
    /// Speakers with no connection to hear anything on: no mix is made for them.
    deaf: BTreeSet<K>,
    next_tick: Option<Instant>,
    stats: MixerStats,
    /// Scratch buffers reused every tick.
    pcm: BTreeMap<K, Box<[i16; FRAME_SAMPLES]>>,
    out: Vec<u8>,
    /// 20 ms of silence, encoded once: what a speaker alone in the call hears, never encoded
    /// again.
    silence: Vec<u8>,
}

fn encoder(bitrate: i32) -> Result<opus::Encoder, opus::Error> {
    let mut e = opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip)?;
    e.set_bitrate(opus::Bitrate::Bits(bitrate))?;
    Ok(e)
}

impl<K: Copy + Ord + Debug> VoiceMixer<K> {
    pub fn new(config: MixerConfig) -> Result<Self, MixerError> {
        let mut out = vec![0; MAX_PACKET];
        let n = encoder(config.bitrate)?.encode(&[0i16; FRAME_SAMPLES], &mut out)?;
        let silence = out[..n].to_vec();
        Ok(Self {
            silence,
            listener_encoder: encoder(config.bitrate)?,
            listening: true,
            pcm_listening: false,
            pcm_hearers: BTreeSet::new(),
            deaf: BTreeSet::new(),
            config,
            speakers: BTreeMap::new(),
            gains: BTreeMap::new(),
            next_tick: None,
            stats: MixerStats::default(),
            pcm: BTreeMap::new(),
            out,
        })
    }

    pub fn stats(&self) -> &MixerStats {
        &self.stats
    }

    pub fn speakers(&self) -> impl Iterator<Item = K> + '_ {
        self.speakers.keys().copied()
    }

    /// Who holds a microphone now (from the VoiceCall rules). Audio from anyone else is dropped;
    /// a former speaker's buffered audio goes with them.
    pub fn set_speakers(
        &mut self,
        speakers: impl IntoIterator<Item = K>,
    ) -> Result<(), MixerError> {
        let wanted: BTreeSet<K> = speakers.into_iter().collect();
        self.speakers.retain(|k, _| wanted.contains(k));
        self.pcm.retain(|k, _| wanted.contains(k));
        for k in wanted {
            if !self.speakers.contains_key(&k) {
                let source = Source {
                    jitter: JitterBuffer::new(self.config.jitter.clone()),
                    decoder: opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono)?,
                    encoder: encoder(self.config.bitrate)?,
                    gain: self.gains.get(&k).copied().unwrap_or_default(),
                    undecoded: None,
                    pcm: false,
                    last_native: None,
                };
                self.speakers.insert(k, source);
                self.pcm.insert(k, Box::new([0; FRAME_SAMPLES]));
            }
        }
        Ok(())
    }

    /// Whether anyone in the call who hears Opus holds no microphone (and so hears the
    /// listener mix).
    pub fn set_listening(&mut self, listening: bool) {
        self.listening = listening;
    }

    /// Whether anyone in the call who hears PCM holds no microphone.
    pub fn set_pcm_listening(&mut self, listening: bool) {
        self.pcm_listening = listening;
    }

    /// Who hears PCM rather than Opus (phones of G.711 and G.722): given their mix as
    /// [`MixOutput::speakers_pcm`] and [`MixOutput::listeners_pcm`].
    pub fn set_pcm_hearers(&mut self, hearers: impl IntoIterator<Item = K>) {
        self.pcm_hearers = hearers.into_iter().collect();
    }

    /// Who has no connection to hear on (a CSR in the call with no media yet): a silent
    /// speaker among them needs no listener mix.
    pub fn set_deaf(&mut self, deaf: impl IntoIterator<Item = K>) {
        self.deaf = deaf.into_iter().collect();
    }

    /// Drops a participant's buffered and decoder state (their connection was replaced or
    /// closed); a speaker stays a speaker, starting afresh.
    pub fn forget(&mut self, who: K) -> Result<(), MixerError> {
        if self.speakers.remove(&who).is_some() {
            let speakers: Vec<K> = self.speakers.keys().copied().chain([who]).collect();
            self.set_speakers(speakers)?;
        }
        Ok(())
    }

    /// A participant's microphone volume (SPEC V4), kept across losing and regaining the
    /// microphone.
    pub fn set_gain(&mut self, who: K, gain: Gain) {
        self.gains.insert(who, gain);
        if let Some(s) = self.speakers.get_mut(&who) {
            s.gain = gain;
        }
    }

    /// An Opus RTP payload from `from`, with its RTP sequence number.
    pub fn push(&mut self, now: Instant, from: K, seq: u16, payload: Vec<u8>) {
        self.push_frame(now, from, seq, Frame::Opus(payload));
    }

    /// 20 ms of a phone's voice as its codec gave it, numbered for the jitter buffer.
    pub fn push_pcm(&mut self, now: Instant, from: K, seq: u16, pcm: PcmFrame) {
        self.push_frame(now, from, seq, Frame::Pcm(pcm));
    }

    fn push_frame(&mut self, now: Instant, from: K, seq: u16, frame: Frame) {
        match self.speakers.get_mut(&from) {
            Some(s) => {
                s.pcm = matches!(frame, Frame::Pcm(_));
                s.jitter.push(now, seq, frame);
            }
            None => self.stats.dropped_not_speaker += 1,
        }
        if self.next_tick.is_none() {
            self.next_tick = Some(now + TICK);
        }
    }

    /// When to call [`Self::handle_timeout`] next; `None` until audio has arrived.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_tick
    }

    /// Runs the tick that is due, if one is. Ticks missed (a stalled worker) are skipped rather
    /// than run in a burst: stale audio is worth less than no audio.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<Option<MixOutput<K>>, MixerError> {
        let Some(due) = self.next_tick else {
            return Ok(None);
        };
        if now < due {
            return Ok(None);
        }
        let mut next = due + TICK;
        while next <= now {
            next += TICK;
        }
        self.next_tick = Some(next);
        self.tick(now)
    }

    fn tick(&mut self, now: Instant) -> Result<Option<MixOutput<K>>, MixerError> {
        self.stats.ticks += 1;
        // What each speaker has for this tick, before anything is decoded.
        let mut frames: Vec<(K, Playout<Frame>)> = Vec::with_capacity(self.speakers.len());
        // Each phone voice at its own rate, as heard this tick: its frame of the last tick.
        let mut natives: BTreeMap<K, Native> = BTreeMap::new();
        for (k, s) in &mut self.speakers {
            let last = s.last_native.take();
            if let Some(mut p) = s.jitter.pop(now) {
                if let Playout::Packet(Frame::Pcm(f)) = &mut p
                    && let NativeAudio::At(n) =
                        std::mem::replace(&mut f.native, NativeAudio::Unknown)
                {
                    s.last_native = Some(n);
                }
                if let Some(n) = last {
                    natives.insert(*k, n);
                }
                frames.push((*k, p));
            }
        }
        if frames.is_empty() {
            return Ok(None);
        }
        // The one rate every voice of this tick has, if there is one: then every mix can be
        // made at that rate as well.
        let native_rate = {
            let mut rates = frames.iter().map(|(k, _)| natives.get(k).map(|n| n.rate));
            let first = rates.next().flatten();
            first.filter(|r| rates.all(|o| o == Some(*r)))
        };
        // What can stand for its sender's voice as it is, at unity gain: an Opus packet of a
        // whole 20 ms (its own table of contents says how long: no decode needed), or PCM.
        let mut opus_as_sent: BTreeMap<K, &[u8]> = BTreeMap::new();
        let mut pcm_as_sent: BTreeMap<K, &Pcm> = BTreeMap::new();
        // Opus voices at unity gain whose packet is missing this tick (left to the receiver).
        let mut missing: BTreeSet<K> = BTreeSet::new();
        for (k, p) in &frames {
            if self.speakers[k].gain != Gain::UNITY {
                continue;
            }
            match p {
                Playout::Packet(Frame::Opus(p))
                    if opus::packet::get_nb_samples(p, SAMPLE_RATE).ok() == Some(FRAME_SAMPLES) =>
                {
                    opus_as_sent.insert(*k, p);
                }
                Playout::Packet(Frame::Pcm(p)) => {
                    pcm_as_sent.insert(*k, &p.wide);
                }
                Playout::Lost if !self.speakers[k].pcm => {
                    missing.insert(*k);
                }
                _ => {}
            }
        }
        let active: Vec<K> = frames.iter().map(|(k, _)| *k).collect();
        // A mix of exactly one voice is that voice as sent. When its Opus packet is missing
        // this tick nothing is sent: the receiver conceals the gap (with the sender's own
        // redundancy), rather than hearing a second, idle encoder cut in for one frame.
        let one = |voices: &mut dyn Iterator<Item = &K>| -> Option<K> {
            let first = voices.next()?;
            voices.next().is_none().then_some(*first)
        };
        let single_opus = |voice: Option<K>| -> Option<Vec<u8>> {
            let k = voice?;
            if missing.contains(&k) {
                return Some(Vec::new());
            }
            opus_as_sent.get(&k).map(|p| p.to_vec())
        };
        let single_pcm = |voice: Option<K>| -> Option<PcmFrame> {
            let k = voice?;
            let wide = (*pcm_as_sent.get(&k)?).clone();
            let native = natives
                .get(&k)
                .map_or(NativeAudio::Unknown, |n| NativeAudio::At(n.clone()));
            Some(PcmFrame { wide, native })
        };
        // Silent speakers get the listener mix, so it is needed unless everyone speaks now.
        let silent = || {
            self.speakers
                .keys()
                .filter(|k| !active.contains(k) && !self.deaf.contains(k))
        };
        let heard = self.listening || silent().any(|k| !self.pcm_hearers.contains(k));
        let heard_pcm = self.pcm_listening || silent().any(|k| self.pcm_hearers.contains(k));
        let listener_as_sent = if heard {
            single_opus(one(&mut active.iter()))
        } else {
            None
        };
        let listener_pcm_as_sent = if heard_pcm {
            single_pcm(one(&mut active.iter()))
        } else {
            None
        };
        // Each speaker hears the others: nothing when they are alone, one voice as sent, or a
        // mix, in what they hear.
        let mut minus_as_sent: BTreeMap<K, Vec<u8>> = BTreeMap::new();
        let mut minus_pcm_as_sent: BTreeMap<K, PcmFrame> = BTreeMap::new();
        for k in &active {
            let mut others = active.iter().filter(|a| *a != k);
            let pcm = self.pcm_hearers.contains(k);
            match (one(&mut others.clone()), others.next()) {
                (_, None) if pcm => {
                    minus_pcm_as_sent.insert(*k, PcmFrame::silence());
                }
                (_, None) => {
                    minus_as_sent.insert(*k, self.silence.clone());
                }
                (voice, Some(_)) if pcm => {
                    if let Some(p) = single_pcm(voice) {
                        minus_pcm_as_sent.insert(*k, p);
                    }
                }
                (voice, Some(_)) => {
                    if let Some(p) = single_opus(voice) {
                        minus_as_sent.insert(*k, p);
                    }
                }
            }
        }
        // Only a mix needs the voices decoded: in the usual call (the CSR and one customer,
        // both speaking) nothing is, nor in a room of G.711 phones.
        let mixed = (heard && listener_as_sent.is_none())
            || (heard_pcm && listener_pcm_as_sent.is_none())
            || minus_as_sent.len() + minus_pcm_as_sent.len() < active.len();
        let mut listener = [0i16; FRAME_SAMPLES];
        let mut minus: Vec<(K, [i16; FRAME_SAMPLES])> = Vec::new();
        // The same mixes at the phones' own rate, when every voice has one.
        let mut listener_native: Option<Native> = None;
        let mut minus_native: BTreeMap<K, Native> = BTreeMap::new();
        let native_heard = heard_pcm || active.iter().any(|k| self.pcm_hearers.contains(k));
        if mixed {
            if let Some(rate) = native_rate.filter(|_| native_heard) {
                let voices: Vec<Voice<'_, K>> = frames
                    .iter()
                    .map(|(k, _)| Voice {
                        key: *k,
                        pcm: &natives[k].samples,
                        gain: self.speakers[k].gain,
                    })
                    .collect();
                let mut out = vec![0i16; rate as usize / 50];
                mix(&voices, &mut out, |k, pcm| {
                    let samples = pcm.into();
                    minus_native.insert(k, Native { rate, samples });
                });
                listener_native = Some(Native {
                    rate,
                    samples: out.into(),
                });
            }
            let mut decoded_any = Vec::with_capacity(frames.len());
            for (k, playout) in &frames {
                if self.decode(*k, playout) > 0 {
                    decoded_any.push(*k);
                }
            }
            let voices: Vec<Voice<'_, K>> = decoded_any
                .iter()
                .map(|k| Voice {
                    key: *k,
                    pcm: &self.pcm[k][..],
                    gain: self.speakers[k].gain,
                })
                .collect();
            mix(&voices, &mut listener, |k, pcm| {
                minus.push((k, pcm.try_into().expect("a whole frame")))
            });
        } else {
            // Not decoded: the next decode of these voices starts from their last packet.
            for (k, playout) in frames {
                if let (Playout::Packet(Frame::Opus(p)), Some(s)) =
                    (playout, self.speakers.get_mut(&k))
                {
                    s.undecoded = Some(p);
                }
            }
        }

        let listeners = if !heard {
            Vec::new()
        } else if let Some(p) = listener_as_sent {
            self.stats.passed_through += 1;
            p
        } else {
            let n = self.listener_encoder.encode(&listener, &mut self.out)?;
            self.stats.encodes += 1;
            self.out[..n].to_vec()
        };
        let as_heard =
            |native: Option<Native>| native.map_or(NativeAudio::Unknown, NativeAudio::At);
        let listeners_pcm = if !heard_pcm {
            None
        } else if listener_pcm_as_sent.is_some() {
            listener_pcm_as_sent
        } else {
            Some(PcmFrame {
                wide: Box::new(listener),
                native: as_heard(listener_native),
            })
        };
        let mut speakers = Vec::with_capacity(active.len());
        let mut speakers_pcm = Vec::new();
        for k in &active {
            if let Some(p) = minus_as_sent.remove(k) {
                self.stats.passed_through += 1;
                speakers.push((*k, p));
                continue;
            }
            if let Some(p) = minus_pcm_as_sent.remove(k) {
                speakers_pcm.push((*k, p));
                continue;
            }
            // Its own frame did not decode (nothing of it is in the listener mix): the listener
            // mix is then exactly the others.
            let pcm = minus
                .iter()
                .find(|(m, _)| m == k)
                .map_or(&listener, |(_, p)| p);
            if self.pcm_hearers.contains(k) {
                let frame = PcmFrame {
                    wide: Box::new(*pcm),
                    native: as_heard(minus_native.remove(k)),
                };
                speakers_pcm.push((*k, frame));
                continue;
            }
            let enc = &mut self.speakers.get_mut(k).expect("active speaker").encoder;
            let n = enc.encode(pcm, &mut self.out)?;
            speakers.push((*k, self.out[..n].to_vec()));
            self.stats.encodes += 1;
        }
        Ok(Some(MixOutput {
            listeners,
            speakers,
            listeners_pcm,
            speakers_pcm,
        }))
    }

    /// Decodes `who`'s frame for this tick into their PCM buffer; the samples it holds (0 when
    /// nothing could be made of it). A voice passed on undecoded for a while first decodes its
    /// last packet, so its decoder's state is recent rather than from long ago. PCM is copied
    /// as it is; a missing PCM frame is silence.
    fn decode(&mut self, who: K, playout: &Playout<Frame>) -> usize {
        let s = self.speakers.get_mut(&who).expect("a source per speaker");
        let pcm = self.pcm.get_mut(&who).expect("a buffer per speaker");
        match playout {
            Playout::Packet(Frame::Pcm(p)) => {
                **pcm = *p.wide;
                return FRAME_SAMPLES;
            }
            Playout::Lost if s.pcm => {
                pcm.fill(0);
                return 0;
            }
            _ => {}
        }
        if let Some(prev) = s.undecoded.take() {
            let _ = s.decoder.decode(&prev, &mut pcm[..], false);
            self.stats.decodes += 1;
        }
        self.stats.decodes += 1;
        let n = match playout {
            Playout::Packet(Frame::Opus(p)) => match s.decoder.decode(p, &mut pcm[..], false) {
                Ok(n) => n,
                Err(_) => {
                    self.stats.decode_errors += 1;
                    // Conceal instead, so one bad packet is not a click.
                    s.decoder.decode(&[], &mut pcm[..], false).unwrap_or(0)
                }
            },
            _ => {
                self.stats.concealed += 1;
                s.decoder.decode(&[], &mut pcm[..], false).unwrap_or(0)
            }
        };
        // A sender using 10 ms frames fills half; the rest stays silent.
        pcm[n.min(FRAME_SAMPLES)..].fill(0);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tone::{power as tone_power, sine_frame};

    /// A talker: a sine encoded as 20 ms Opus packets.
    struct Talker {
        freq: f64,
        phase: usize,
        enc: opus::Encoder,
        seq: u16,
    }

    impl Talker {
        fn new(freq: f64) -> Self {
            Self {
                freq,
                phase: 0,
                enc: encoder(32_000).unwrap(),
                seq: 0,
            }
        }
        fn packet(&mut self) -> (u16, Vec<u8>) {
            let pcm = sine_frame(self.freq, 8000.0, (self.phase / FRAME_SAMPLES) as u64);
            self.phase += FRAME_SAMPLES;
            let mut out = vec![0; MAX_PACKET];
            let n = self.enc.encode(&pcm, &mut out).unwrap();
            out.truncate(n);
            self.seq = self.seq.wrapping_add(1);
            (self.seq, out)
        }
    }

    /// Runs `frames` ticks with talkers a (440 Hz, key 1), b (1000 Hz, key 2) and an
    /// unmicrophoned c (2500 Hz, key 3) all sending; decodes what each party would hear.
    fn call(
        frames: usize,
        lose_every: Option<usize>,
    ) -> (VoiceMixer<u8>, Vec<i16>, Vec<i16>, Vec<i16>) {
        let mut m = VoiceMixer::new(MixerConfig::default()).unwrap();
        m.set_speakers([1, 2]).unwrap();
        let mut talkers = [
            (1u8, Talker::new(440.0)),
            (2, Talker::new(1000.0)),
            (3, Talker::new(2500.0)),
        ];
        let mut dec: BTreeMap<&str, opus::Decoder> = ["listener", "a", "b"]
            .into_iter()
            .map(|n| {
                (
                    n,
                    opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono).unwrap(),
                )
            })
            .collect();
        let mut heard: BTreeMap<&str, Vec<i16>> = BTreeMap::new();
        let t0 = Instant::now();
        for f in 0..frames {
            let now = t0 + TICK * f as u32;
            for (k, t) in &mut talkers {
                let (seq, p) = t.packet();
                if lose_every.is_some_and(|n| *k == 1 && f % n == n - 1) {
                    continue;
                }
                m.push(now, *k, seq, p);
            }
            while m.poll_timeout().is_some_and(|t| t <= now) {
                if let Some(out) = m.handle_timeout(now).unwrap() {
                    let mut pcm = [0i16; FRAME_SAMPLES];
                    for (name, packet) in std::iter::once(("listener", &out.listeners)).chain(
                        out.speakers
                            .iter()
                            .map(|(k, p)| (if *k == 1 { "a" } else { "b" }, p)),
                    ) {
                        let n = dec
                            .get_mut(name)
                            .unwrap()
                            .decode(packet, &mut pcm, false)
                            .unwrap();
                        heard.entry(name).or_default().extend_from_slice(&pcm[..n]);
                    }
                }
            }
        }
        let mut take = |n| heard.remove(n).unwrap_or_default();
        let (l, a, b) = (take("listener"), take("a"), take("b"));
        (m, l, a, b)
    }

    #[test]
    fn listeners_hear_both_speakers_and_each_speaker_hears_only_the_other() {
        let (m, listener, a, b) = call(100, None);
        // Skip the codec's warm-up.
        let (listener, a, b) = (&listener[4800..], &a[4800..], &b[4800..]);
        // An 8000-amplitude tone measures about 1.4e12 here; codec noise at other frequencies
        // stays below 1e6, so these bounds mean "clearly there" and "not there" (60 dB apart).
        let (present, absent) = (1e11, 1e6);
        let p = tone_power;
        assert!(p(listener, 440.0) > present && p(listener, 1000.0) > present);
        assert!(p(a, 1000.0) > present, "a hears b");
        assert!(p(a, 440.0) < absent, "a does not hear itself");
        assert!(p(b, 440.0) > present, "b hears a");
        assert!(p(b, 1000.0) < absent, "b does not hear itself");
        // The participant without a microphone is heard by nobody (V3).
        for pcm in [listener, a, b] {
            assert!(p(pcm, 2500.0) < absent);
        }
        assert_eq!(m.stats().dropped_not_speaker, 100);
        // One listener encode and one per speaker, per tick: never one per listener.
        assert!(m.stats().encodes <= 3 * m.stats().ticks);
    }

    #[test]
    fn a_one_voice_mix_is_the_senders_own_packet_and_nothing_unheard_is_encoded() {
        let mut m = VoiceMixer::new(MixerConfig::default()).unwrap();
        m.set_speakers([1u8, 2]).unwrap();
        // The usual call: the CSR and one customer, both holding a microphone.
        m.set_listening(false);
        let (mut a, mut b) = (Talker::new(440.0), Talker::new(1000.0));
        let t0 = Instant::now();
        let mut checked = 0;
        let mut sent: BTreeMap<u8, Vec<Vec<u8>>> = BTreeMap::new();
        for f in 0..50u32 {
            let now = t0 + TICK * f;
            let (pa, pb) = (a.packet(), b.packet());
            sent.entry(1).or_default().push(pa.1.clone());
            sent.entry(2).or_default().push(pb.1.clone());
            m.push(now, 1, pa.0, pa.1);
            m.push(now, 2, pb.0, pb.1);
            if let Some(out) = m.handle_timeout(now).unwrap() {
                assert!(out.listeners.is_empty(), "nobody hears the listener mix");
                for (k, p) in &out.speakers {
                    // Each hears one of the other's packets as it was sent (the jitter buffer
                    // decides which).
                    let other = if *k == 1 { 2 } else { 1 };
                    assert!(
                        sent[&other].contains(p),
                        "speaker {k} got a packet not {other}'s"
                    );
                }
                checked += 1;
            }
        }
        assert!(checked > 40);
        assert_eq!(m.stats().encodes, 0, "{:?}", m.stats());
        assert_eq!(m.stats().decodes, 0, "a voice passed on is not decoded");
        assert_eq!(m.stats().passed_through, 2 * checked);

        // Someone listens: the two-voice listener mix is encoded, the mix-minus still are not.
        m.set_listening(true);
        let before = m.stats().clone();
        let now = t0 + TICK * 50;
        let (pa, pb) = (a.packet(), b.packet());
        m.push(now, 1, pa.0, pa.1);
        m.push(now, 2, pb.0, pb.1);
        let out = m.handle_timeout(now).unwrap().unwrap();
        assert!(!out.listeners.is_empty());
        assert_eq!(m.stats().encodes - before.encodes, 1);
        // Mixed now: each voice decodes its last packet passed on, then this one.
        assert_eq!(m.stats().decodes - before.decodes, 4);
        // A volume other than unity needs the audio changed, so encoded.
        m.set_gain(2, Gain::new(0.5));
        let before = m.stats().clone();
        let now = now + TICK;
        let (pa, pb) = (a.packet(), b.packet());
        m.push(now, 1, pa.0, pa.1);
        m.push(now, 2, pb.0, pb.1);
        m.handle_timeout(now).unwrap().unwrap();
        assert_eq!(
            m.stats().encodes - before.encodes,
            2,
            "listener mix and 1's mix-minus"
        );
    }

    #[test]
    fn a_speaker_alone_hears_silence_encoded_once_and_listeners_their_packets() {
        let mut m = VoiceMixer::new(MixerConfig::default()).unwrap();
        m.set_speakers([1u8]).unwrap();
        let mut a = Talker::new(440.0);
        let t0 = Instant::now();
        let mut outputs = 0;
        for f in 0..20u32 {
            let now = t0 + TICK * f;
            let (seq, p) = a.packet();
            m.push(now, 1, seq, p.clone());
            if let Some(out) = m.handle_timeout(now).unwrap() {
                assert_eq!(out.speakers, [(1, m.silence.clone())]);
                assert!(!out.listeners.is_empty());
                outputs += 1;
            }
        }
        assert!(outputs > 15);
        let stats = m.stats();
        assert_eq!((stats.encodes, stats.decodes), (0, 0), "{stats:?}");
        // The silence frame decodes to silence.
        let mut pcm = [1i16; FRAME_SAMPLES];
        let mut dec = opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono).unwrap();
        let n = dec.decode(&m.silence, &mut pcm, false).unwrap();
        assert_eq!(n, FRAME_SAMPLES);
        assert!(pcm.iter().all(|s| s.abs() < 4));
    }

    #[test]
    fn a_lost_packet_in_a_one_voice_mix_is_left_to_the_receiver_to_conceal() {
        let mut m = VoiceMixer::new(MixerConfig::default()).unwrap();
        m.set_speakers([1u8, 2]).unwrap();
        m.set_listening(false);
        let (mut a, mut b) = (Talker::new(440.0), Talker::new(1000.0));
        let t0 = Instant::now();
        let mut gaps = 0;
        for f in 0..60u32 {
            let now = t0 + TICK * f;
            let (pa, pb) = (a.packet(), b.packet());
            // Every tenth packet of a's is lost on the way.
            if f % 10 != 5 {
                m.push(now, 1, pa.0, pa.1);
            }
            m.push(now, 2, pb.0, pb.1);
            if let Some(out) = m.handle_timeout(now).unwrap() {
                let to_b = &out.speakers.iter().find(|(k, _)| *k == 2).unwrap().1;
                gaps += usize::from(to_b.is_empty());
            }
        }
        assert!(
            gaps >= 4,
            "b is sent nothing where a's packet is missing ({gaps})"
        );
        assert_eq!(m.stats().encodes, 0, "no encoder cuts in for a lost frame");
    }

    #[test]
    fn losses_are_concealed_and_the_stream_goes_on() {
        let (m, listener, _, _) = call(100, Some(5));
        assert!(m.stats().concealed >= 15, "{:?}", m.stats());
        // 20 ms of output per tick once started, loss or not.
        assert!(listener.len() >= 90 * FRAME_SAMPLES);
    }

    #[test]
    fn garbage_payloads_are_counted_not_fatal() {
        let mut m = VoiceMixer::new(MixerConfig::default()).unwrap();
        m.set_speakers([1u8]).unwrap();
        let t0 = Instant::now();
        m.push(t0, 1, 1, vec![0xff; 3]);
        m.push(t0, 1, 2, vec![]);
        let mut outputs = 0;
        for f in 1..10 {
            if m.handle_timeout(t0 + TICK * f).unwrap().is_some() {
                outputs += 1;
            }
        }
        assert!(m.stats().decode_errors >= 1);
        assert!(outputs >= 1);
    }

    #[test]
    fn losing_the_microphone_stops_the_voice_and_gain_is_remembered() {
        let mut m = VoiceMixer::new(MixerConfig::default()).unwrap();
        m.set_gain(1u8, Gain::new(0.5));
        m.set_speakers([1]).unwrap();
        assert_eq!(m.speakers[&1].gain, Gain::new(0.5));
        m.set_speakers([]).unwrap();
        let mut t = Talker::new(440.0);
        let (seq, p) = t.packet();
        m.push(Instant::now(), 1, seq, p);
        assert_eq!(m.stats().dropped_not_speaker, 1);
        m.set_speakers([1]).unwrap();
        assert_eq!(m.speakers[&1].gain, Gain::new(0.5));
    }

    #[test]
    fn a_stalled_worker_skips_missed_ticks() {
        let mut m = VoiceMixer::new(MixerConfig::default()).unwrap();
        m.set_speakers([1u8]).unwrap();
        let t0 = Instant::now();
        let mut t = Talker::new(440.0);
        let (seq, p) = t.packet();
        m.push(t0, 1, seq, p);
        m.handle_timeout(t0 + Duration::from_secs(1)).unwrap();
        assert_eq!(m.stats().ticks, 1);
        assert!(m.poll_timeout().unwrap() > t0 + Duration::from_secs(1));
    }

    /// A browser (key 1, Opus, 440 Hz) and a G.711 phone (key 2, PCM, 1000 Hz) speak; two
    /// phones (keys 3, 4) and a browser (the Opus listener mix) listen.
    #[test]
    fn phones_of_other_codecs_hear_and_are_heard_as_pcm_with_one_decode_per_opus_voice() {
        let mut m = VoiceMixer::new(MixerConfig::default()).unwrap();
        m.set_speakers([1u8, 2]).unwrap();
        m.set_pcm_hearers([2, 3, 4]);
        m.set_pcm_listening(true);
        m.set_listening(true);
        let mut browser = Talker::new(440.0);
        let mut dec = BTreeMap::from([
            (
                1u8,
                opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono).unwrap(),
            ),
            (
                0,
                opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono).unwrap(),
            ),
        ]);
        let mut heard: BTreeMap<u8, Vec<i16>> = BTreeMap::new();
        let t0 = Instant::now();
        let frames = 100;
        for f in 0..frames {
            let now = t0 + TICK * f as u32;
            let (seq, p) = browser.packet();
            m.push(now, 1, seq, p);
            m.push_pcm(
                now,
                2,
                f as u16,
                PcmFrame::wide(Box::new(sine_frame(1000.0, 8000.0, f as u64))),
            );
            if let Some(out) = m.handle_timeout(now).unwrap() {
                let mut pcm = [0i16; FRAME_SAMPLES];
                // The browsers: the speaker's mix-minus, and the listener mix.
                for (k, packet) in [(1, out.for_member(&1)), (0, &out.listeners[..])] {
                    let n = dec
                        .get_mut(&k)
                        .unwrap()
                        .decode(packet, &mut pcm, false)
                        .unwrap();
                    heard.entry(k).or_default().extend_from_slice(&pcm[..n]);
                }
                for k in [2, 3, 4] {
                    // As the SFU sends a phone: its mix-minus if it speaks, else the
                    // listener mix.
                    let pcm = match out.speakers_pcm.iter().find(|(s, _)| *s == k) {
                        Some((_, p)) => &p.wide[..],
                        None => &out.listeners_pcm.as_ref().expect("PCM for a phone").wide[..],
                    };
                    heard.entry(k).or_default().extend_from_slice(pcm);
                }
                assert!(out.speakers_pcm.iter().all(|(k, _)| *k == 2));
            }
        }
        let last = |k: u8| {
            let h = &heard[&k];
            h[h.len() - 24_000..].to_vec()
        };
        let (loud, quiet) = (1e11, 1e9);
        assert!(tone_power(&last(1), 1000.0) > loud && tone_power(&last(1), 440.0) < quiet);
        assert!(tone_power(&last(2), 440.0) > loud && tone_power(&last(2), 1000.0) < quiet);
        for k in [0, 3, 4] {
            let h = last(k);
            assert!(
                tone_power(&h, 440.0) > loud && tone_power(&h, 1000.0) > loud,
                "{k}"
            );
        }
        // One decode per tick for the one Opus voice, whoever hears it; encodes only for the
        // browsers: the speaker's mix-minus and the listener mix.
        let st = m.stats().clone();
        assert!(st.decodes <= st.ticks + 1, "{st:?}");
        assert!(st.encodes <= 2 * st.ticks, "{st:?}");
    }

    /// Phones hearing only phones are given their mix at the phones' own rate too (issue 19),
    /// a tick late: at each tick, what the 48 kHz mix of the tick before was, which is the
    /// instant the 48 kHz mix resampled down would be. A browser's voice in a mix leaves it at
    /// 48 kHz only; a speaker's volume applies at either rate.
    #[test]
    fn phones_hearing_phones_get_their_mix_at_their_own_rate_a_tick_late() {
        let mut m = VoiceMixer::new(MixerConfig::default()).unwrap();
        m.set_speakers([1u8, 2, 3]).unwrap();
        m.set_pcm_hearers([2, 3, 4]);
        m.set_pcm_listening(true);
        m.set_listening(false);
        let mut browser = Talker::new(440.0);
        // Phone k's frame f: every sample f * 10 + k, at 48 kHz and at 8 kHz.
        let frame = |f: usize, k: usize| {
            let v = (f * 10 + k) as i16;
            PcmFrame {
                wide: Box::new([v; FRAME_SAMPLES]),
                native: NativeAudio::At(Native {
                    rate: 8_000,
                    samples: vec![v; 160].into(),
                }),
            }
        };
        let native_of = |p: &PcmFrame| match &p.native {
            NativeAudio::At(n) => {
                assert!(n.samples.iter().all(|s| *s == n.samples[0]));
                Some(n.samples[0])
            }
            _ => None,
        };
        let t0 = Instant::now();
        let mut last: Option<(bool, i16, i16, i16)> = None;
        let (mut native_ticks, mut wide_ticks) = (0, 0);
        for f in 0..60 {
            let now = t0 + TICK * f as u32;
            if (20..30).contains(&f) {
                let (seq, p) = browser.packet();
                m.push(now, 1, seq, p);
            }
            if f == 40 {
                m.set_gain(3, Gain::new(0.5));
            }
            m.push_pcm(now, 2, f as u16, frame(f, 2));
            m.push_pcm(now, 3, f as u16, frame(f, 3));
            let Some(out) = m.handle_timeout(now).unwrap() else {
                continue;
            };
            let browser_speaks = out.speakers.iter().any(|(k, _)| *k == 1);
            let minus = |k| &out.speakers_pcm.iter().find(|(s, _)| *s == k).unwrap().1;
            let listeners = out.listeners_pcm.as_ref().unwrap();
            if browser_speaks {
                assert_eq!(native_of(listeners), None, "tick {f}");
                assert_eq!(native_of(minus(2)), None, "tick {f}");
                wide_ticks += 1;
            } else if let Some((false, two, three, all)) = last
                && f != 40
            {
                assert_eq!(native_of(minus(2)), Some(two), "tick {f}: 2 hears 3");
                assert_eq!(native_of(minus(3)), Some(three), "tick {f}: 3 hears 2");
                assert_eq!(
                    native_of(listeners),
                    Some(all),
                    "tick {f}: the listener mix"
                );
                native_ticks += 1;
            }
            last = Some((
                browser_speaks,
                minus(2).wide[0],
                minus(3).wide[0],
                listeners.wide[0],
            ));
        }
        assert!(
            native_ticks > 30 && wide_ticks >= 8,
            "{native_ticks} {wide_ticks}"
        );
        // The volume applies: 3 at half, in what 2 and the listeners hear.
        let (_, two, three, all) = last.unwrap();
        assert_eq!((two, all), ((three + 1) / 2, three + (three + 1) / 2));
    }
}
