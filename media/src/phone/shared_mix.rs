//! The listener mix in each phone codec, encoded once per tick for every phone that hears it
//! (issue 19): in a room of ten G.711 phones with two talking, eight listen to one mix, and
//! resampling it to 8 kHz and encoding it once instead of eight times is most of what such a
//! room costs. The encoder of a codec lives as long as the call, so its resampler and (for
//! G.722) its ADPCM state run on one stream; a phone that stops speaking joins that stream,
//! which a G.722 decoder follows within a few milliseconds.

use crate::pcm_frame::PcmFrame;
use crate::voice_codec::{CodecError, VoiceCodec, VoiceEncoder};

#[derive(Default)]
pub struct SharedMix {
    encoders: Vec<(VoiceCodec, VoiceEncoder)>,
    /// This tick's payload per codec, once asked.
    payloads: Vec<(VoiceCodec, Vec<u8>)>,
}

impl SharedMix {
    /// A new tick: what was encoded for the last is forgotten.
    pub fn next_tick(&mut self) {
        self.payloads.clear();
    }

    /// The listener mix `pcm` in `codec`, encoded on the first ask of this tick (at the codec's
    /// rate when the mix has it).
    pub fn payload(&mut self, codec: VoiceCodec, pcm: &PcmFrame) -> Result<&[u8], CodecError> {
        let at = match self.payloads.iter().position(|(c, _)| *c == codec) {
            Some(at) => at,
            None => {
                let encoder = match self.encoders.iter().position(|(c, _)| *c == codec) {
                    Some(e) => &mut self.encoders[e].1,
                    None => {
                        self.encoders.push((codec, VoiceEncoder::new(codec)?));
                        &mut self.encoders.last_mut().expect("just pushed").1
                    }
                };
                self.payloads.push((codec, encoder.encode_frame(pcm)));
                self.payloads.len() - 1
            }
        };
        Ok(&self.payloads[at].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tone::sine_frame;

    #[test]
    fn one_encode_per_codec_per_tick_the_same_as_a_phone_of_its_own_would_get() {
        let mut shared = SharedMix::default();
        let mut own = VoiceEncoder::new(VoiceCodec::Pcma).unwrap();
        for f in 0..5 {
            shared.next_tick();
            let pcm = PcmFrame::wide(Box::new(sine_frame(440.0, 8000.0, f)));
            let expected = own.encode(pcm.wide.as_ref().unwrap());
            assert_eq!(shared.payload(VoiceCodec::Pcma, &pcm).unwrap(), expected);
            // Asked again in the same tick (another phone): the same payload, not encoded anew
            // from other audio.
            let other = PcmFrame::silence();
            assert_eq!(shared.payload(VoiceCodec::Pcma, &other).unwrap(), expected);
            assert_eq!(shared.payload(VoiceCodec::Pcmu, &pcm).unwrap().len(), 160);
        }
    }
}
