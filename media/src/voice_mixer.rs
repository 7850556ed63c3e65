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
//! decode of that voice per tick, shared by every phone that hears it. A phone's voice comes
//! at its codec's own rate ([`crate::pcm_frame`]): when every voice of a tick is a phone of one
//! rate, the tick's mixes are made at that rate, and at 48 kHz as well only if someone hears
//! that (a browser, the recorder, a phone of another rate) or a voice has no frame before to
//! mix at that rate (its first). In steady talk a room of phones of one rate resamples
//! nothing.
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
use crate::voice_codec::Widener;

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
    /// Phone frames resampled to 48 kHz: only in ticks someone hears at 48 kHz, or that
    /// cannot be made at the phones' own rate.
    pub widened: u64,
}

/// One speaker's 20 ms as it reaches the mixer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// An Opus packet as sent (a browser, an Opus phone).
    Opus(Vec<u8>),
    /// What a phone's codec gave (G.711, G.722), at the codec's own rate.
    Pcm(Native),
}

/// What a phone is to hear in one tick, decided before anything is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PcmOut<K> {
    /// It speaks alone.
    Silence,
    /// One other phone's voice, as sent.
    Voice(K),
    Mix,
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
    /// The frame before that: what the widener is primed with when it has fallen behind.
    before_native: Option<Native>,
    /// A phone's voice to 48 kHz, made when first needed.
    widener: Option<Widener>,
    /// The widener skipped frames (ticks in which nobody heard 48 kHz).
    behind: bool,
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
    /// The sample rates of those phones' codecs.
    pcm_rates: BTreeSet<u32>,
    /// The last tick made its mixes at 48 kHz.
    wide_last: bool,
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
            pcm_rates: BTreeSet::new(),
            wide_last: true,
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
                    before_native: None,
                    widener: None,
                    behind: false,
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

    /// The sample rates of the codecs of the phones that are sent the call: a tick is made at
    /// 48 kHz for a phone of a rate its voices cannot all be mixed at.
    pub fn set_pcm_rates(&mut self, rates: impl IntoIterator<Item = u32>) {
        self.pcm_rates = rates.into_iter().collect();
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
    pub fn push_pcm(&mut self, now: Instant, from: K, seq: u16, pcm: Native) {
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
        // Each phone voice at its own rate as heard this tick (its frame of the last tick), and
        // the frame before that.
        let mut natives: BTreeMap<K, Native> = BTreeMap::new();
        let mut befores: BTreeMap<K, Native> = BTreeMap::new();
        for (k, s) in &mut self.speakers {
            let last = s.last_native.take();
            let before = s.before_native.take();
            if let Some(p) = s.jitter.pop(now) {
                match &p {
                    Playout::Packet(Frame::Pcm(n)) => s.last_native = Some(n.clone()),
                    // A second frame missing in a row: when it comes again it starts afresh,
                    // with no tail of what it said before, whether or not it was resampled
                    // meanwhile.
                    Playout::Lost if s.pcm && last.is_none() => {
                        s.widener = None;
                        s.behind = false;
                    }
                    _ => {}
                }
                if let Some(n) = last {
                    natives.insert(*k, n.clone());
                    s.before_native = Some(n);
                }
                if let Some(n) = before {
                    befores.insert(*k, n);
                }
                frames.push((*k, p));
            } else {
                // Paused: it starts afresh, with no tail of what it said before.
                s.widener = None;
                s.behind = false;
            }
        }
        if frames.is_empty() {
            return Ok(None);
        }
        // The one rate every voice of this tick has, if there is one: then every mix can be
        // made at that rate as well. A phone whose frames stopped coming is silence at any
        // rate, as it is at 48 kHz.
        let native_rate = {
            let mut rate = None;
            let mut one = true;
            for (k, p) in &frames {
                match (natives.get(k), p) {
                    (Some(n), _) => {
                        one &= rate.is_none_or(|r| r == n.rate);
                        rate = Some(n.rate);
                    }
                    (None, Playout::Lost) if self.speakers[k].pcm => {}
                    (None, _) => one = false,
                }
            }
            rate.filter(|_| one)
        };
        // What can stand for its sender's voice as it is, at unity gain: an Opus packet of a
        // whole 20 ms (its own table of contents says how long: no decode needed), or PCM.
        let mut opus_as_sent: BTreeMap<K, &[u8]> = BTreeMap::new();
        let mut pcm_as_sent: BTreeSet<K> = BTreeSet::new();
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
                Playout::Packet(Frame::Pcm(_)) => {
                    pcm_as_sent.insert(*k);
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
        let single_pcm = |voice: Option<K>| -> PcmOut<K> {
            match voice {
                Some(k) if pcm_as_sent.contains(&k) => PcmOut::Voice(k),
                _ => PcmOut::Mix,
            }
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
        let pcm_listener = heard_pcm.then(|| single_pcm(one(&mut active.iter())));
        // Each speaker hears the others: nothing when they are alone, one voice as sent, or a
        // mix, in what they hear.
        let mut minus_as_sent: BTreeMap<K, Vec<u8>> = BTreeMap::new();
        let mut pcm_minus: BTreeMap<K, PcmOut<K>> = BTreeMap::new();
        for k in &active {
            let mut others = active.iter().filter(|a| *a != k);
            let pcm = self.pcm_hearers.contains(k);
            match (one(&mut others.clone()), others.next()) {
                (_, None) if pcm => {
                    pcm_minus.insert(*k, PcmOut::Silence);
                }
                (_, None) => {
                    minus_as_sent.insert(*k, self.silence.clone());
                }
                (voice, Some(_)) if pcm => {
                    pcm_minus.insert(*k, single_pcm(voice));
                }
                (voice, Some(_)) => {
                    if let Some(p) = single_opus(voice) {
                        minus_as_sent.insert(*k, p);
                    }
                }
            }
        }
        // Only a mix needs the voices decoded: in the usual call (the CSR and one customer,
        // both speaking) nothing is.
        let opus_mixed = (heard && listener_as_sent.is_none())
            || active
                .iter()
                .any(|k| !self.pcm_hearers.contains(k) && !minus_as_sent.contains_key(k));
        let pcm_mixed =
            pcm_listener == Some(PcmOut::Mix) || pcm_minus.values().any(|o| *o == PcmOut::Mix);
        let mixed = opus_mixed || pcm_mixed;
        // Whether this tick is made at 48 kHz: for whoever hears Opus and is not given a voice
        // as sent, and for phones unless every voice can be mixed at every phone's rate. A room
        // of phones of one rate is not: nothing in it is resampled.
        let pcm_heard = pcm_listener.is_some() || pcm_minus.values().any(|o| *o != PcmOut::Silence);
        let wide = opus_mixed
            || (pcm_heard && native_rate.is_none_or(|r| self.pcm_rates.iter().any(|h| *h != r)));
        let switching = wide && !self.wide_last;
        self.wide_last = wide;
        // Phone voices to 48 kHz, if the tick is made so. A widener that skipped frames (or is
        // new) is first put through the voice's two frames before this one, so it goes on as
        // one that never skipped would. In the first tick made at 48 kHz after ticks that were
        // not, the 48 kHz form of the frame before is kept too: from it each phone is given its
        // mix of the tick before at 48 kHz, for its encoder to go on from (PcmFrame::before).
        let mut before_wide: BTreeMap<K, Pcm> = BTreeMap::new();
        for (k, p) in &frames {
            let this = match p {
                Playout::Packet(Frame::Pcm(n)) => Some(n),
                Playout::Lost if self.speakers[k].pcm => None,
                _ => continue,
            };
            let s = self.speakers.get_mut(k).expect("a source per speaker");
            if !wide {
                s.behind |= this.is_some();
                continue;
            }
            let Some(rate) = this.or(natives.get(k)).or(befores.get(k)).map(|n| n.rate) else {
                continue;
            };
            if s.widener.as_ref().is_none_or(|w| w.rate() != rate) {
                s.widener = Widener::new(rate).ok();
                s.behind = true;
            }
            let buf = self.pcm.get_mut(k).expect("a buffer per speaker");
            let Some(widener) = s.widener.as_mut() else {
                buf.fill(0);
                continue;
            };
            if std::mem::take(&mut s.behind) {
                if let Some(b) = befores.get(k) {
                    widener.widen(&b.samples, buf);
                    self.stats.widened += 1;
                }
                if let Some(last) = natives.get(k)
                    && widener.widen(&last.samples, buf)
                {
                    self.stats.widened += 1;
                    if switching {
                        before_wide.insert(*k, buf.clone());
                    }
                }
            }
            if let Some(n) = this {
                self.stats.widened += 1;
                if !widener.widen(&n.samples, buf) {
                    buf.fill(0);
                }
            }
        }
        // Each phone's 48 kHz mix of the tick before: every voice that had a frame then (none
        // is silence), at today's volumes.
        let mut listener_before: Option<Pcm> = None;
        let mut minus_before: BTreeMap<K, Pcm> = BTreeMap::new();
        if switching {
            let voices: Vec<Voice<'_, K>> = before_wide
                .iter()
                .map(|(k, pcm)| Voice {
                    key: *k,
                    pcm: &pcm[..],
                    gain: self.speakers[k].gain,
                })
                .collect();
            let mut all = Box::new([0i16; FRAME_SAMPLES]);
            mix(&voices, &mut all[..], |k, pcm| {
                minus_before.insert(k, Box::new(pcm.try_into().expect("a whole frame")));
            });
            listener_before = Some(all);
        }
        let before_of = |k: &K| minus_before.get(k).or(listener_before.as_ref()).cloned();
        let mut listener = [0i16; FRAME_SAMPLES];
        let mut minus: Vec<(K, [i16; FRAME_SAMPLES])> = Vec::new();
        // The same mixes at the phones' own rate, when every voice has one.
        let mut listener_native: Option<Native> = None;
        let mut minus_native: BTreeMap<K, Native> = BTreeMap::new();
        if pcm_mixed && let Some(rate) = native_rate {
            // Only this tick's voices have a frame of the last tick here.
            let voices: Vec<Voice<'_, K>> = natives
                .iter()
                .map(|(k, n)| Voice {
                    key: *k,
                    pcm: &n.samples,
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
        if mixed && wide {
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
        // One voice as sent to a phone: at its rate, and at 48 kHz if the tick is made so.
        let voice = |v: K, before: Option<Pcm>| PcmFrame {
            wide: wide.then(|| self.pcm[&v].clone()),
            native: as_heard(natives.get(&v).cloned()),
            before,
        };
        let listeners_pcm = match pcm_listener {
            None => None,
            Some(PcmOut::Voice(v)) => Some(voice(v, listener_before.clone())),
            Some(_) => Some(PcmFrame {
                wide: wide.then(|| Box::new(listener)),
                native: as_heard(listener_native.clone()),
                before: listener_before.clone(),
            }),
        };
        let mut speakers = Vec::with_capacity(active.len());
        let mut speakers_pcm = Vec::new();
        for k in &active {
            if let Some(p) = minus_as_sent.remove(k) {
                self.stats.passed_through += 1;
                speakers.push((*k, p));
                continue;
            }
            // Its own frame did not decode (nothing of it is in the listener mix): the listener
            // mix is then exactly the others.
            let pcm = minus
                .iter()
                .find(|(m, _)| m == k)
                .map_or(&listener, |(_, p)| p);
            if let Some(out) = pcm_minus.remove(k) {
                let frame = match out {
                    PcmOut::Silence => PcmFrame::silence(),
                    PcmOut::Voice(v) => voice(v, before_of(k)),
                    PcmOut::Mix => PcmFrame {
                        wide: wide.then(|| Box::new(*pcm)),
                        // Not in the mix at its rate (its frames stopped): the mix is the others.
                        native: as_heard(minus_native.remove(k).or(listener_native.clone())),
                        before: before_of(k),
                    },
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
            // Widened already, in this tick's first pass.
            Playout::Packet(Frame::Pcm(_)) => return FRAME_SAMPLES,
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
    use crate::tone::{energy, power as tone_power, sine_frame, sine_frame_at};
    use crate::voice_codec::{VoiceCodec, VoiceDecoder, VoiceEncoder};

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
        m.set_pcm_rates([8_000]);
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
            m.push_pcm(now, 2, f as u16, phone_tone(1000.0, f));
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
                        Some((_, p)) => &p.wide.as_ref().unwrap()[..],
                        None => {
                            let mix = out.listeners_pcm.as_ref().expect("PCM for a phone");
                            &mix.wide.as_ref().unwrap()[..]
                        }
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

    /// 20 ms frame `f` of a phone's continuous tone at 8 kHz.
    fn phone_tone(freq: f64, f: usize) -> Native {
        Native {
            rate: 8_000,
            samples: sine_frame_at(8_000, freq, 8000.0, f).into(),
        }
    }

    /// A room of G.711 phones (2 and 3 talking by turns, 4 listening) and a CSR (1) holding a
    /// microphone whose page connects for a while and speaks, mixed twice: once as a room of
    /// phones alone is (nothing made at 48 kHz while the CSR has no connection), once with a
    /// browser listening all along, which makes every tick at 48 kHz too. What every phone is
    /// sent is the same, byte for byte, in every tick: the phones' streams go from their own
    /// rate to 48 kHz and back without a seam however the tick was made, and a speaker's volume
    /// applies alike. And what a phone hears at its own rate is what it would hear resampled
    /// from 48 kHz, at the same instant.
    #[test]
    fn a_room_of_phones_is_mixed_at_their_rate_and_each_phone_hears_what_it_would_at_48_khz() {
        let mixer = |browser_listening: bool| {
            let mut m = VoiceMixer::new(MixerConfig::default()).unwrap();
            m.set_speakers([1u8, 2, 3]).unwrap();
            m.set_pcm_hearers([2, 3, 4]);
            m.set_pcm_rates([8_000]);
            m.set_pcm_listening(true);
            m.set_listening(browser_listening);
            m.set_deaf([1]);
            m
        };
        let (mut lean, mut full) = (mixer(false), mixer(true));
        let encoders = || -> BTreeMap<u8, VoiceEncoder> {
            [2, 3, 4]
                .map(|k| (k, VoiceEncoder::new(VoiceCodec::Pcma).unwrap()))
                .into()
        };
        let (mut lean_enc, mut full_enc, mut resampled) = (encoders(), encoders(), encoders());
        let mut dec = [2u8, 3, 4].map(|_| {
            (
                VoiceDecoder::new(VoiceCodec::Pcma).unwrap(),
                VoiceDecoder::new(VoiceCodec::Pcma).unwrap(),
            )
        });
        let mut browser = Talker::new(440.0);
        let t0 = Instant::now();
        let (mut lean_ticks, mut wide_ticks) = (0, 0);
        for f in 0..120 {
            let now = t0 + TICK * f as u32;
            for m in [&mut lean, &mut full] {
                match f {
                    16 => m.set_deaf([]),
                    40 => m.set_deaf([1]),
                    50 => m.set_gain(3, Gain::new(0.5)),
                    _ => {}
                }
                // Phone 3 talks from 35 to 85; phone 2 pauses from 60 to 72 and loses one
                // packet at 95, when it talks alone. A voice's first frame, and a frame after
                // one lost, are not at the phones' rate yet, so those ticks are made at 48 kHz.
                // (Tones that are not whole cycles in 20 ms: no two frames alike.)
                if !(60..72).contains(&f) && f != 95 {
                    m.push_pcm(now, 2, f as u16, phone_tone(1013.0, f));
                }
                if (35..85).contains(&f) {
                    m.push_pcm(now, 3, f as u16, phone_tone(2477.0, f));
                }
            }
            if (20..30).contains(&f) {
                let (seq, p) = browser.packet();
                lean.push(now, 1, seq, p.clone());
                full.push(now, 1, seq, p);
            }
            let (Some(a), Some(b)) = (
                lean.handle_timeout(now).unwrap(),
                full.handle_timeout(now).unwrap(),
            ) else {
                continue;
            };
            let heard = |out: &MixOutput<u8>, k: u8| -> PcmFrame {
                match out.speakers_pcm.iter().find(|(s, _)| *s == k) {
                    Some((_, p)) => p.clone(),
                    None => out.listeners_pcm.clone().expect("PCM for a phone"),
                }
            };
            if heard(&a, 4).wide.is_none() {
                lean_ticks += 1;
            } else {
                wide_ticks += 1;
            }
            for (i, k) in [2u8, 3, 4].into_iter().enumerate() {
                let (x, y) = (heard(&a, k), heard(&b, k));
                let sent = lean_enc.get_mut(&k).unwrap().encode_frame(&x);
                assert_eq!(
                    sent,
                    full_enc.get_mut(&k).unwrap().encode_frame(&y),
                    "tick {f}, phone {k}"
                );
                // The 48 kHz mix resampled, against what was sent: alike, at the same instant.
                // (Silence is silence at once, where the resampled mix still has the tail of
                // what came before.)
                let silence = Box::new([0; FRAME_SAMPLES]);
                let wide = resampled
                    .get_mut(&k)
                    .unwrap()
                    .encode(y.wide.as_ref().unwrap_or(&silence));
                if x.native == NativeAudio::Silence {
                    continue;
                }
                let (mut got, mut due) = (Vec::new(), Vec::new());
                dec[i].0.decode_native(&sent, &mut got);
                dec[i].1.decode_native(&wide, &mut due);
                // In steady talk only: where a voice starts, pauses (its last frame is played
                // whole, where at 48 kHz only half of it would be) or changes volume (the whole
                // frame takes the new volume, at 48 kHz only its second half), the two ways
                // differ by half a frame.
                if matches!(f, 10..=30 | 45..=49 | 52..=59 | 80..=86 | 102..) {
                    let error = energy(got.iter().zip(&due).map(|(a, b)| f64::from(a - b)));
                    let signal = energy(due.iter().map(|s| f64::from(*s)));
                    assert!(
                        error < signal / 100.0,
                        "tick {f}, phone {k}: {error} of {signal}"
                    );
                }
            }
        }
        assert!(
            lean_ticks >= 60 && wide_ticks >= 20,
            "{lean_ticks} {wide_ticks}"
        );
        // Resampled up: in the lean room only around the starts, the pause and the lost
        // packet; with a browser listening, every frame.
        let (few, all) = (lean.stats().widened, full.stats().widened);
        assert!(few < 50 && all > 150, "{few} {all}");
    }
}
