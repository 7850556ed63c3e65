//! The voice codecs phones speak (SPEC V5): G.711 µ-law and A-law, G.722 and Opus, to and from
//! the 48 kHz mono PCM the voice mixer works in, 20 ms at a time. G.711 is
//! audio-codec-algorithms', G.722 ezk-g722's, resampling rubato's.
//!
//! A G.711 or G.722 frame resampled up and back down comes out exactly one frame late (each
//! FFT resampler delays by half a frame); [`crate::pcm_frame`] builds on that to skip the round
//! trip where it can.

use rubato::{FftFixedInOut, Resampler};

use crate::mix::FRAME_SAMPLES;
use crate::pcm_frame::{NativeSamples, Pcm, PcmFrame};

const MIX_RATE: usize = 48_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VoiceCodec {
    Pcmu,
    Pcma,
    G722,
    Opus,
}

impl VoiceCodec {
    /// The RTP clock (RFC 3551 gives G.722 an 8 kHz clock though it samples at 16 kHz).
    pub fn rtp_clock(self) -> u32 {
        match self {
            Self::Pcmu | Self::Pcma | Self::G722 => 8_000,
            Self::Opus => 48_000,
        }
    }

    /// Samples per second of the audio itself.
    pub fn sample_rate(self) -> usize {
        match self {
            Self::Pcmu | Self::Pcma => 8_000,
            Self::G722 => 16_000,
            Self::Opus => MIX_RATE,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Pcmu => "PCMU",
            Self::Pcma => "PCMA",
            Self::G722 => "G722",
            Self::Opus => "opus",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("opus: {0}")]
    Opus(#[from] opus::Error),
    #[error("resampler: {0}")]
    Resampler(String),
}

fn resampler(from: usize, to: usize, chunk: usize) -> Result<FftFixedInOut<f32>, CodecError> {
    FftFixedInOut::new(from, to, chunk, 1).map_err(|e| CodecError::Resampler(e.to_string()))
}

/// Changes the rate of a stream whose pieces come in any length: samples wait until a whole
/// chunk of the resampler's is there.
struct Rate {
    resampler: FftFixedInOut<f32>,
    pending: Vec<f32>,
    out: Vec<Vec<f32>>,
}

impl Rate {
    fn new(from: usize, to: usize) -> Result<Self, CodecError> {
        let resampler = resampler(from, to, from / 50)?;
        let out = vec![vec![0.0; resampler.output_frames_max()]];
        Ok(Self {
            resampler,
            pending: Vec::new(),
            out,
        })
    }

    fn push(&mut self, samples: impl IntoIterator<Item = i16>, into: &mut Vec<i16>) {
        self.pending
            .extend(samples.into_iter().map(|s| f32::from(s) / 32768.0));
        loop {
            let need = self.resampler.input_frames_next();
            if self.pending.len() < need {
                return;
            }
            let chunk = [&self.pending[..need]];
            match self
                .resampler
                .process_into_buffer(&chunk, &mut self.out, None)
            {
                Ok((_, written)) => into.extend(
                    self.out[0][..written]
                        .iter()
                        .map(|s| (s * 32768.0).clamp(-32768.0, 32767.0) as i16),
                ),
                Err(_) => {
                    self.pending.clear();
                    return;
                }
            }
            self.pending.drain(..need);
        }
    }
}

enum Dec {
    G711 { alaw: bool },
    G722(Box<ezk_g722::libg722::decoder::Decoder>),
    Opus(opus::Decoder),
}

/// A phone's RTP payloads to 48 kHz PCM.
pub struct VoiceDecoder {
    dec: Dec,
    up: Option<Rate>,
    scratch: Vec<i16>,
}

impl VoiceDecoder {
    pub fn new(codec: VoiceCodec) -> Result<Self, CodecError> {
        let dec = match codec {
            VoiceCodec::Pcmu => Dec::G711 { alaw: false },
            VoiceCodec::Pcma => Dec::G711 { alaw: true },
            VoiceCodec::G722 => Dec::G722(Box::new(ezk_g722::libg722::decoder::Decoder::new(
                ezk_g722::libg722::Bitrate::Mode1_64000,
                false,
                false,
            ))),
            VoiceCodec::Opus => Dec::Opus(opus::Decoder::new(48_000, opus::Channels::Mono)?),
        };
        let up = match codec {
            VoiceCodec::Opus => None,
            c => Some(Rate::new(c.sample_rate(), MIX_RATE)?),
        };
        Ok(Self {
            dec,
            up,
            scratch: Vec::new(),
        })
    }

    /// Appends the payload's audio at 48 kHz to `out` (the resampler may hold back a few
    /// milliseconds until it has a whole chunk). A payload that does not decode adds nothing.
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        let mut native = std::mem::take(&mut self.scratch);
        native.clear();
        self.decode_native(payload, &mut native);
        match &mut self.up {
            Some(rate) => rate.push(native.iter().copied(), out),
            None => out.extend_from_slice(&native),
        }
        self.scratch = native;
    }

    /// Appends the payload's audio at the codec's own rate to `out`, not resampled.
    pub fn decode_native(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        match &mut self.dec {
            Dec::G711 { alaw: false } => out.extend(
                payload
                    .iter()
                    .map(|b| audio_codec_algorithms::decode_ulaw(*b)),
            ),
            Dec::G711 { alaw: true } => out.extend(
                payload
                    .iter()
                    .map(|b| audio_codec_algorithms::decode_alaw(*b)),
            ),
            Dec::G722(d) => out.extend(d.decode(payload)),
            Dec::Opus(d) => {
                let at = out.len();
                out.resize(at + 5_760, 0);
                match d.decode(payload, &mut out[at..], false) {
                    Ok(n) => out.truncate(at + n),
                    Err(_) => out.truncate(at),
                }
            }
        }
    }
}

/// A phone's voice from its codec's rate to 48 kHz, 20 ms at a time, half a frame late. The
/// mixer widens a phone's voice only in a tick in which someone hears it at 48 kHz.
pub struct Widener {
    from: u32,
    rate: Rate,
    out: Vec<i16>,
}

impl Widener {
    /// For 20 ms frames at `rate` samples a second (a phone codec's: 8,000 or 16,000).
    pub fn new(rate: u32) -> Result<Self, CodecError> {
        Ok(Self {
            from: rate,
            rate: Rate::new(rate as usize, MIX_RATE)?,
            out: Vec::with_capacity(FRAME_SAMPLES),
        })
    }

    /// The rate it widens from.
    pub fn rate(&self) -> u32 {
        self.from
    }

    /// One whole frame (`rate / 50` samples) to 48 kHz in `into`; false, and `into` as it was,
    /// for anything else.
    pub fn widen(&mut self, frame: &[i16], into: &mut [i16; FRAME_SAMPLES]) -> bool {
        if frame.len() != self.rate.resampler.input_frames_next() {
            return false;
        }
        self.out.clear();
        self.rate.push(frame.iter().copied(), &mut self.out);
        match <&[i16; FRAME_SAMPLES]>::try_from(self.out.as_slice()) {
            Ok(wide) => {
                *into = *wide;
                true
            }
            Err(_) => false,
        }
    }
}

enum Enc {
    G711 { alaw: bool },
    G722(Box<ezk_g722::libg722::encoder::Encoder>),
    Opus(opus::Encoder),
}

/// Where a phone encoder's resampler stands against the stream it sends.
enum Primer {
    /// It ran on the last frame sent.
    Current,
    /// The last frame was sent at the codec's rate; this is its 48 kHz form.
    Known(Pcm),
    /// The last frame sent was silence, at the codec's rate.
    Silence,
    /// The last frame was sent at the codec's rate, with no 48 kHz form: the next 48 kHz
    /// frame brings it ([`PcmFrame::before`]).
    Wanted,
}

/// 48 kHz PCM, 20 ms at a time, to a phone's RTP payloads; or a frame already at the codec's
/// rate, not resampled ([`Self::encode_frame`]).
pub struct VoiceEncoder {
    enc: Enc,
    down: Option<Rate>,
    /// The codec's own sample rate.
    rate: u32,
    /// What to put through the resampler, unheard, before the next 48 kHz frame, so that it
    /// goes on from the instant the phone last heard rather than from whenever it last ran.
    primer: Primer,
    scratch: Vec<i16>,
    out: Vec<u8>,
}

impl VoiceEncoder {
    pub fn new(codec: VoiceCodec) -> Result<Self, CodecError> {
        let enc = match codec {
            VoiceCodec::Pcmu => Enc::G711 { alaw: false },
            VoiceCodec::Pcma => Enc::G711 { alaw: true },
            VoiceCodec::G722 => Enc::G722(Box::new(ezk_g722::libg722::encoder::Encoder::new(
                ezk_g722::libg722::Bitrate::Mode1_64000,
                false,
                false,
            ))),
            VoiceCodec::Opus => {
                let mut e =
                    opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip)?;
                e.set_bitrate(opus::Bitrate::Bits(32_000))?;
                Enc::Opus(e)
            }
        };
        let down = match codec {
            VoiceCodec::Opus => None,
            c => Some(Rate::new(MIX_RATE, c.sample_rate())?),
        };
        Ok(Self {
            enc,
            down,
            rate: codec.sample_rate() as u32,
            primer: Primer::Current,
            scratch: Vec::new(),
            out: vec![0; 1275],
        })
    }

    /// One 20 ms frame at 48 kHz to one payload (empty if it cannot be encoded).
    pub fn encode(&mut self, pcm: &[i16; FRAME_SAMPLES]) -> Vec<u8> {
        self.encode_wide(pcm, None)
    }

    /// `pcm` at 48 kHz; `before`, the 48 kHz form of the last frame sent at the codec's rate,
    /// if it was not known then.
    fn encode_wide(&mut self, pcm: &[i16; FRAME_SAMPLES], before: Option<&Pcm>) -> Vec<u8> {
        self.scratch.clear();
        match &mut self.down {
            Some(rate) => {
                // The primer's output was heard already, at the codec's rate: dropped.
                match std::mem::replace(&mut self.primer, Primer::Current) {
                    Primer::Known(p) => rate.push(p.iter().copied(), &mut self.scratch),
                    Primer::Wanted => {
                        if let Some(p) = before {
                            rate.push(p.iter().copied(), &mut self.scratch)
                        }
                    }
                    Primer::Silence => {
                        rate.push(std::iter::repeat_n(0, FRAME_SAMPLES), &mut self.scratch)
                    }
                    Primer::Current => {}
                }
                self.scratch.clear();
                rate.push(pcm.iter().copied(), &mut self.scratch)
            }
            None => self.scratch.extend_from_slice(pcm),
        }
        self.encode_scratch()
    }

    /// A mix to one payload: its samples at the codec's rate when it has them (nothing
    /// resampled), else its 48 kHz form; empty if it has neither.
    pub fn encode_frame(&mut self, frame: &PcmFrame) -> Vec<u8> {
        let Some(native) = frame.at(self.rate).filter(|_| self.down.is_some()) else {
            return match &frame.wide {
                Some(wide) => self.encode_wide(wide, frame.before.as_ref()),
                None => Vec::new(),
            };
        };
        self.scratch.clear();
        match native {
            NativeSamples::Samples(s) => self.scratch.extend_from_slice(s),
            NativeSamples::Silence => self.scratch.resize(self.rate as usize / 50, 0),
        }
        self.primer = match (native, &frame.wide) {
            (NativeSamples::Silence, _) => Primer::Silence,
            (_, Some(wide)) => Primer::Known(wide.clone()),
            (_, None) => Primer::Wanted,
        };
        self.encode_scratch()
    }

    /// 20 ms of silence, at the codec's rate where it has one of its own.
    pub fn encode_silence(&mut self) -> Vec<u8> {
        if self.down.is_none() {
            return self.encode(&[0; FRAME_SAMPLES]);
        }
        self.encode_frame(&PcmFrame::silence())
    }

    /// `scratch`, at the codec's rate, to a payload.
    fn encode_scratch(&mut self) -> Vec<u8> {
        if self.scratch.is_empty() {
            return Vec::new();
        }
        match &mut self.enc {
            Enc::G711 { alaw: false } => self
                .scratch
                .iter()
                .map(|s| audio_codec_algorithms::encode_ulaw(*s))
                .collect(),
            Enc::G711 { alaw: true } => self
                .scratch
                .iter()
                .map(|s| audio_codec_algorithms::encode_alaw(*s))
                .collect(),
            Enc::G722(e) => e.encode(&self.scratch),
            Enc::Opus(e) => match e.encode(&self.scratch, &mut self.out) {
                Ok(n) => self.out[..n].to_vec(),
                Err(_) => Vec::new(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pcm_frame::{Native, NativeAudio, Pcm};
    use crate::tone::{energy, power, sine_frame, sine_frame_at};

    /// A 1 kHz tone through each codec and back keeps its pitch and most of its power.
    #[test]
    fn every_codec_carries_a_tone_through() {
        for codec in [
            VoiceCodec::Pcmu,
            VoiceCodec::Pcma,
            VoiceCodec::G722,
            VoiceCodec::Opus,
        ] {
            let mut enc = VoiceEncoder::new(codec).unwrap();
            let mut dec = VoiceDecoder::new(codec).unwrap();
            let mut heard = Vec::new();
            let mut bytes = 0;
            for i in 0..50 {
                let frame = sine_frame(1000.0, 8000.0, i);
                let payload = enc.encode(&frame);
                bytes += payload.len();
                dec.decode(&payload, &mut heard);
            }
            assert!(
                heard.len() > 40 * FRAME_SAMPLES,
                "{codec:?}: {}",
                heard.len()
            );
            let tail = &heard[heard.len() - 24_000..];
            let (at_1k, at_3k) = (power(tail, 1000.0), power(tail, 3000.0));
            assert!(
                at_1k > 100.0 * at_3k.max(1.0),
                "{codec:?}: 1k {at_1k} 3k {at_3k}"
            );
            let sent = power(&sine_frame(1000.0, 8000.0, 0), 1000.0);
            assert!(at_1k > sent * 0.3, "{codec:?}: {at_1k} of {sent}");
            if codec != VoiceCodec::Opus {
                // 20 ms of 8 kHz (G.711) or of two 4-bit sub-bands at 16 kHz (G.722).
                assert_eq!(bytes, 50 * 160, "{codec:?}");
            }
        }
    }

    /// Frame `i` of a tone at a codec's own rate.
    fn native_tone(rate: usize, freq: f64, i: usize) -> Vec<i16> {
        sine_frame_at(rate, freq, 8000.0, i)
    }

    /// The premise of sending phones their mix at their own rate (crate::pcm_frame): a frame
    /// resampled up to 48 kHz and back down is, to within the resamplers' ripple, the frame
    /// before it. Were it not exactly one frame, a phone's stream would jump when it changes
    /// between the two ways.
    #[test]
    fn a_frame_resampled_up_and_back_down_is_the_frame_before_it() {
        for codec in [VoiceCodec::Pcma, VoiceCodec::G722] {
            let rate = codec.sample_rate();
            let mut up = Widener::new(rate as u32).unwrap();
            let mut down = Rate::new(MIX_RATE, rate).unwrap();
            let frames: Vec<Vec<i16>> = (0..20).map(|i| native_tone(rate, 730.0, i)).collect();
            for (i, frame) in frames.iter().enumerate() {
                let mut wide = [0; FRAME_SAMPLES];
                assert!(up.widen(frame, &mut wide), "a whole frame widens");
                let mut back = Vec::new();
                down.push(wide.iter().copied(), &mut back);
                assert_eq!(back.len(), frame.len());
                if i < 2 {
                    continue;
                }
                let before = &frames[i - 1];
                let error = energy(back.iter().zip(before).map(|(a, b)| f64::from(a - b)));
                let signal = energy(before.iter().map(|s| f64::from(*s)));
                assert!(
                    error < signal / 1000.0,
                    "{codec:?} frame {i}: {error} of {signal}"
                );
            }
            let mut untouched = [7; FRAME_SAMPLES];
            assert!(
                !up.widen(&frames[0][..10], &mut untouched),
                "only whole frames"
            );
            assert_eq!(untouched, [7; FRAME_SAMPLES]);
        }
    }

    /// A phone's encoder given frames at its own rate for a while and then 48 kHz frames again
    /// (voices coming and going) sends, once back, what an encoder given 48 kHz frames all
    /// along sends: the resampler goes on from the last frame heard, not from when it last ran.
    /// That holds whether the mixer gave the 48 kHz form with each frame at the phone's rate or
    /// only, once back, with the first 48 kHz frame (`before`: a room of phones makes no 48 kHz
    /// form). G.711 frames at its own rate go out exactly as they came; G.722's are heard as
    /// the resampled ones are, to within its ADPCM.
    #[test]
    fn a_phone_s_stream_changes_between_native_and_resampled_frames_without_a_seam() {
        for codec in [VoiceCodec::Pcma, VoiceCodec::Pcmu, VoiceCodec::G722] {
            let rate = codec.sample_rate();
            let mut widen = Widener::new(rate as u32).unwrap();
            let mut always_wide = VoiceEncoder::new(codec).unwrap();
            let mut switching = VoiceEncoder::new(codec).unwrap();
            let mut told_after = VoiceEncoder::new(codec).unwrap();
            let mut last_wide: Option<(bool, Pcm)> = None;
            let mut heard = [
                VoiceDecoder::new(codec).unwrap(),
                VoiceDecoder::new(codec).unwrap(),
            ];
            let mut previous: Option<Native> = None;
            let mut as_they_came = 0;
            for i in 0..60 {
                let frame = native_tone(rate, 440.0 + 7.0 * i as f64, i);
                let mut wide = Box::new([0; FRAME_SAMPLES]);
                assert!(widen.widen(&frame, &mut wide));
                // Its own rate at ticks 10-19 and 30-44 (the frame before, as the mixer gives
                // it), silence at 25, 48 kHz otherwise.
                let (mix, reference) = match (i, &previous) {
                    (25, _) => (PcmFrame::silence(), always_wide.encode(&[0; FRAME_SAMPLES])),
                    (10..=19 | 30..=44, Some(n)) => {
                        let mix = PcmFrame {
                            wide: Some(wide.clone()),
                            native: NativeAudio::At(n.clone()),
                            before: None,
                        };
                        (mix, always_wide.encode(&wide))
                    }
                    _ => (PcmFrame::wide(wide.clone()), always_wide.encode(&wide)),
                };
                let sent = switching.encode_frame(&mix);
                assert_eq!(sent.len(), reference.len(), "{codec:?} tick {i}");
                // The same frames with no 48 kHz form at the phone's rate, and the tick
                // before's with the first 48 kHz frame after them.
                let lean = match (&mix.native, &last_wide) {
                    (NativeAudio::Unknown, Some((true, before))) => PcmFrame {
                        before: Some(before.clone()),
                        ..mix.clone()
                    },
                    (NativeAudio::At(_), _) => PcmFrame {
                        wide: None,
                        ..mix.clone()
                    },
                    _ => mix.clone(),
                };
                assert_eq!(told_after.encode_frame(&lean), sent, "{codec:?} tick {i}");
                last_wide = Some((lean.wide.is_none(), wide.clone()));
                let native = matches!(mix.native, NativeAudio::At(_));
                if codec != VoiceCodec::G722 {
                    if i == 25 {
                        // Silence at the codec's rate: none of the last frame's tail, which
                        // the 48 kHz path would still give.
                        let zero = switching.encode_frame(&PcmFrame::silence());
                        assert!(sent.iter().all(|b| *b == zero[0]), "{codec:?}");
                    } else if native {
                        let as_came = previous.as_ref().unwrap().samples.iter();
                        let expected: Vec<u8> = match codec {
                            VoiceCodec::Pcma => as_came
                                .map(|s| audio_codec_algorithms::encode_alaw(*s))
                                .collect(),
                            _ => as_came
                                .map(|s| audio_codec_algorithms::encode_ulaw(*s))
                                .collect(),
                        };
                        assert_eq!(sent, expected, "{codec:?} tick {i}");
                        as_they_came += 1;
                    } else {
                        assert_eq!(sent, reference, "{codec:?} tick {i}: a seam");
                    }
                }
                let (mut a, mut b) = (Vec::new(), Vec::new());
                heard[0].decode_native(&sent, &mut a);
                heard[1].decode_native(&reference, &mut b);
                if i > 2 && i != 25 {
                    let error = energy(a.iter().zip(&b).map(|(x, y)| f64::from(x - y)));
                    let signal = energy(b.iter().map(|s| f64::from(*s)));
                    assert!(
                        error < signal / 50.0,
                        "{codec:?} tick {i}: {error} of {signal}"
                    );
                }
                previous = Some(Native {
                    rate: rate as u32,
                    samples: frame.into(),
                });
            }
            if codec != VoiceCodec::G722 {
                assert_eq!(as_they_came, 25, "{codec:?}");
            }
        }
    }

    /// A mix that has its samples at the phone's own rate is sent as those samples, not as its
    /// 48 kHz form; one at another rate is resampled from 48 kHz; silence is silence. Each frame
    /// here carries a tone in one form and silence in the other, so what is heard says which was
    /// sent.
    #[test]
    fn a_mix_at_the_phone_s_own_rate_is_sent_as_it_is_and_another_rate_s_is_resampled() {
        for codec in [VoiceCodec::Pcma, VoiceCodec::Pcmu, VoiceCodec::G722] {
            let rate = codec.sample_rate();
            let other = if rate == 8_000 { 16_000 } else { 8_000 };
            let mut enc = VoiceEncoder::new(codec).unwrap();
            let mut heard = VoiceDecoder::new(codec).unwrap();
            let mut listen = |frames: &mut dyn FnMut(usize) -> PcmFrame| {
                let mut pcm = Vec::new();
                for i in 0..25 {
                    heard.decode(&enc.encode_frame(&frames(i)), &mut pcm);
                }
                let tail = pcm[pcm.len() - 12_000..].to_vec();
                (power(&tail, 730.0), power(&tail, 1000.0))
            };
            let at = |rate: usize, i: usize| {
                NativeAudio::At(Native {
                    rate: rate as u32,
                    samples: native_tone(rate, 730.0, i).into(),
                })
            };
            // The tone at the phone's rate, silence at 48 kHz: the tone is heard.
            let (own, _) = listen(&mut |i| PcmFrame {
                wide: Some(Box::new([0; FRAME_SAMPLES])),
                native: at(rate, i),
                before: None,
            });
            // The tone at another rate, 1 kHz at 48 kHz: the 48 kHz form is heard.
            let (stray, wide) = listen(&mut |i| PcmFrame {
                wide: Some(Box::new(sine_frame(1000.0, 8000.0, i as u64))),
                native: at(other, i),
                before: None,
            });
            // Silence at every rate, 1 kHz at 48 kHz (never so in the mixer): silence.
            let (_, silent) = listen(&mut |i| PcmFrame {
                wide: Some(Box::new(sine_frame(1000.0, 8000.0, i as u64))),
                native: NativeAudio::Silence,
                before: None,
            });
            assert!(
                own > 1e11 && stray < 1e9 && wide > 1e11,
                "{codec:?}: {own} {stray} {wide}"
            );
            assert!(silent < 1e7, "{codec:?}: {silent}");
        }
        // Silence made for a phone with nothing to hear primes the resampler with silence too:
        // the next 48 kHz frame is what it is after 48 kHz silence.
        let (mut a, mut b) = (
            VoiceEncoder::new(VoiceCodec::Pcma).unwrap(),
            VoiceEncoder::new(VoiceCodec::Pcma).unwrap(),
        );
        let tone = sine_frame(440.0, 8000.0, 3);
        let _ = (a.encode(&tone), b.encode(&tone));
        let silence = a.encode_silence();
        let _ = b.encode(&[0; FRAME_SAMPLES]);
        let zero = audio_codec_algorithms::encode_alaw(0);
        assert!(silence.len() == 160 && silence.iter().all(|s| *s == zero));
        assert_eq!(a.encode(&tone), b.encode(&tone));
    }

    #[test]
    fn odd_packet_sizes_and_garbage_decode_without_panicking() {
        let mut dec = VoiceDecoder::new(VoiceCodec::Pcma).unwrap();
        let mut out = Vec::new();
        for n in [0, 1, 240, 7, 160] {
            dec.decode(&vec![0x55; n], &mut out);
        }
        // 408 samples at 8 kHz: 2448 at 48 kHz, less what the resampler holds back.
        assert!(out.len() >= 1920 && out.len() <= 2448, "{}", out.len());
        let mut opus = VoiceDecoder::new(VoiceCodec::Opus).unwrap();
        opus.decode(&[0xff; 40], &mut out);
        let mut g722 = VoiceDecoder::new(VoiceCodec::G722).unwrap();
        g722.decode(&[0xff; 333], &mut out);
    }
}
