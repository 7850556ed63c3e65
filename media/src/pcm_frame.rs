//! 20 ms of a phone's audio as the mixer carries it: at the phone codec's own rate (8 kHz for
//! G.711, 16 kHz for G.722), and at the mixer's 48 kHz when anyone hears that.
//!
//! Resampling a phone's voice up to 48 kHz and back down costs most of what a room of phones
//! costs (issue 19), and a phone that hears one other phone, or a mix of phones of its own
//! rate only, needs no resample at all: a room of such phones is mixed at their rate, and a
//! voice is resampled up only in a tick in which someone hears 48 kHz (or that cannot be made
//! at the phones' rate: a talker's first frame, a browser's voice). The two FFT resamplers
//! each delay by half a frame, so a frame that went up and came back down is the *previous*
//! frame at the codec's rate; the mixer therefore mixes a voice's native samples one tick late
//! ([`crate::voice_mixer`]), and a phone hears the same instant whichever way its frame was
//! made. That is what lets a phone's stream switch between the two ways, as voices come and
//! go, without a seam.

use crate::mix::FRAME_SAMPLES;

/// 20 ms of 48 kHz audio.
pub type Pcm = Box<[i16; FRAME_SAMPLES]>;

/// 20 ms at a codec's own sample rate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Native {
    /// Samples per second: 8,000 or 16,000.
    pub rate: u32,
    /// `rate / 50` samples.
    pub samples: Box<[i16]>,
}

/// The same 20 ms at a codec's own rate, where it is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NativeAudio {
    /// Only the 48 kHz frame stands: it is resampled for whoever hears another rate.
    Unknown,
    /// Silence, at every rate.
    Silence,
    /// The samples at one rate (a phone's voice, or a mix of phones of that rate).
    At(Native),
}

/// The mix a phone is to hear in one tick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcmFrame {
    /// At 48 kHz; made only in a tick in which someone hears 48 kHz (a browser, the recorder),
    /// or a phone hears a rate the mix was not made at.
    pub wide: Option<Pcm>,
    /// The same instant at a phone codec's rate, where it could be made so.
    pub native: NativeAudio,
    /// In the first tick with a 48 kHz form after ticks without one: this hearer's mix of the
    /// tick before at 48 kHz, made then, for its encoder's resampler to go on from.
    pub before: Option<Pcm>,
}

impl PcmFrame {
    /// 48 kHz audio with no native form (a prompt made here).
    pub fn wide(wide: Pcm) -> Self {
        Self {
            wide: Some(wide),
            native: NativeAudio::Unknown,
            before: None,
        }
    }

    pub fn silence() -> Self {
        Self {
            wide: None,
            native: NativeAudio::Silence,
            before: None,
        }
    }

    /// The samples at `rate`, if this frame has them.
    pub fn at(&self, rate: u32) -> Option<NativeSamples<'_>> {
        match &self.native {
            NativeAudio::At(n) if n.rate == rate => Some(NativeSamples::Samples(&n.samples)),
            NativeAudio::Silence => Some(NativeSamples::Silence),
            _ => None,
        }
    }
}

/// What [`PcmFrame::at`] found.
#[derive(Clone, Copy, Debug)]
pub enum NativeSamples<'a> {
    Samples(&'a [i16]),
    Silence,
}
