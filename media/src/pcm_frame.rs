//! 20 ms of a phone's audio as the mixer carries it: at the mixer's 48 kHz, and where it can be
//! had without resampling, at the phone codec's own rate (8 kHz for G.711, 16 kHz for G.722).
//!
//! Resampling a phone's voice up to 48 kHz and back down costs most of what a room of phones
//! costs (issue 19), and a phone that hears one other phone, or a mix of phones of its own
//! rate only, needs no resample down. (Every phone's voice is still resampled up, for whoever
//! hears 48 kHz and for the primer below.) The two FFT resamplers each delay by half a frame,
//! so a frame that went up and came
//! back down is the *previous* frame at the codec's rate; the mixer therefore hands on a
//! voice's native samples one tick late ([`crate::voice_mixer`]), and a phone hears the same
//! instant whichever way its frame was made. That is what lets a phone's stream switch between
//! the two ways, as voices come and go, without a seam.

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

/// One phone's voice for a tick, or the mix a phone is to hear.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcmFrame {
    /// At 48 kHz: what every hearer can be given.
    pub wide: Pcm,
    /// The same instant at a phone codec's rate. For a voice pushed to the mixer this is the
    /// frame itself (the mixer delays it a tick); for a mix it is already the hearer's instant.
    pub native: NativeAudio,
}

impl PcmFrame {
    /// 48 kHz audio with no native form (a voice decoded from Opus, a prompt made here).
    pub fn wide(wide: Pcm) -> Self {
        Self {
            wide,
            native: NativeAudio::Unknown,
        }
    }

    pub fn silence() -> Self {
        Self {
            wide: Box::new([0; FRAME_SAMPLES]),
            native: NativeAudio::Silence,
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
