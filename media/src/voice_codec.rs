//! The voice codecs phones speak (SPEC V5): G.711 µ-law and A-law, G.722 and Opus, to and from
//! the 48 kHz mono PCM the voice mixer works in, 20 ms at a time. G.711 is
//! audio-codec-algorithms', G.722 ezk-g722's, resampling rubato's.

use rubato::{FftFixedInOut, Resampler};

use crate::mix::FRAME_SAMPLES;

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
    fn sample_rate(self) -> usize {
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
        self.scratch.clear();
        match &mut self.dec {
            Dec::G711 { alaw: false } => self.scratch.extend(
                payload
                    .iter()
                    .map(|b| audio_codec_algorithms::decode_ulaw(*b)),
            ),
            Dec::G711 { alaw: true } => self.scratch.extend(
                payload
                    .iter()
                    .map(|b| audio_codec_algorithms::decode_alaw(*b)),
            ),
            Dec::G722(d) => self.scratch.extend(d.decode(payload)),
            Dec::Opus(d) => {
                self.scratch.resize(5_760, 0);
                match d.decode(payload, &mut self.scratch, false) {
                    Ok(n) => self.scratch.truncate(n),
                    Err(_) => self.scratch.clear(),
                }
            }
        }
        match &mut self.up {
            Some(rate) => rate.push(self.scratch.iter().copied(), out),
            None => out.extend_from_slice(&self.scratch),
        }
    }
}

enum Enc {
    G711 { alaw: bool },
    G722(Box<ezk_g722::libg722::encoder::Encoder>),
    Opus(opus::Encoder),
}

/// 48 kHz PCM, 20 ms at a time, to a phone's RTP payloads.
pub struct VoiceEncoder {
    enc: Enc,
    down: Option<Rate>,
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
            scratch: Vec::new(),
            out: vec![0; 1275],
        })
    }

    /// One 20 ms frame at 48 kHz to one payload (empty if it cannot be encoded).
    pub fn encode(&mut self, pcm: &[i16; FRAME_SAMPLES]) -> Vec<u8> {
        self.scratch.clear();
        match &mut self.down {
            Some(rate) => rate.push(pcm.iter().copied(), &mut self.scratch),
            None => self.scratch.extend_from_slice(pcm),
        }
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
    use crate::tone::{power, sine_frame};

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
