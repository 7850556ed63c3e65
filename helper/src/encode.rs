//! The shared screen as H.264: BGRA pictures in, Annex-B access units out (issue 16, item 5).
//!
//! H.264 rather than VP8 (docs/helper.md, "Video"): the product's design names it, the exporter
//! and Chromium take it, and OpenH264 has a screen-content mode. The stream is WebRTC's
//! constrained baseline (no B-frames, one slice, CAVLC), so every browser decodes it; the SDP
//! carries [`SDP_FMTP`]. Keyframes come only on request ([`Encoder::request_keyframe`]: a PLI, a
//! late joiner), never on a timer; the pacing ([`crate::pace`]) decides when a picture is taken,
//! at what bitrate, size and colour depth.

// OpenH264's raw SetOption (run-time bitrate and frame rate), which the safe wrapper lacks.
#![allow(unsafe_code)]

pub mod convert;
pub mod quantise;

use openh264::Timestamp;
use openh264::encoder::{
    BitRate, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Profile, RateControlMode,
    SpsPpsStrategy, UsageType, VuiConfig,
};
use openh264::formats::YUVSlices;
use openh264_sys2::{
    ENCODER_OPTION_BITRATE, ENCODER_OPTION_FRAME_RATE, ENCODER_OPTION_MAX_BITRATE, SBitrateInfo,
    SPATIAL_LAYER_0, SPATIAL_LAYER_ALL,
};

pub use convert::Bgra;
pub use quantise::ColourMode;

use convert::I420;

/// The H.264 format parameters the helper's SDP offers and answers (RFC 6184): constrained
/// baseline, level 3.1 as every WebRTC browser offers it, non-interleaved packetization (FU-A for
/// large pictures), and level asymmetry allowed, because the stream's SPS names the level its
/// picture needs (4.0 for 1080p at 30 frames a second), above what 3.1 covers; Chromium decodes it.
pub const SDP_FMTP: &str = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";

/// What can go wrong encoding a picture. The encoder stays usable after each.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("bad frame {width}x{height} (stride {stride}, {len} bytes): {why}")]
    BadFrame {
        width: u32,
        height: u32,
        stride: u32,
        len: usize,
        why: &'static str,
    },
    #[error("colour conversion failed: {0}")]
    Convert(String),
    #[error("bad encoder setting: {0}")]
    Setting(&'static str),
    #[error("OpenH264: {0}")]
    Codec(#[from] openh264::Error),
}

/// How the encoder starts; the pacing changes bitrate and frame rate while it runs.
#[derive(Debug, Clone, Copy)]
pub struct EncoderSettings {
    /// Target bitrate, bits a second.
    pub bitrate_bps: u32,
    /// The frame rate the rate control budgets for (it spreads the bitrate over these frames).
    pub max_fps: f32,
    /// OpenH264's threads: 1 keeps the helper to one core; 0 lets OpenH264 choose (it then
    /// splits the picture into one slice a core).
    pub threads: u16,
    /// Whether the rate control may skip a picture to hold the bitrate (the product: yes; the
    /// benches turn it off to time every picture's encoding).
    pub skip_frames: bool,
}

impl Default for EncoderSettings {
    fn default() -> Self {
        Self {
            bitrate_bps: 1_500_000,
            max_fps: 30.0,
            threads: 1,
            skip_frames: true,
        }
    }
}

/// How one picture is to be encoded, as the pacing decided.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PictureOptions {
    /// Half width and height (D11 sampling).
    pub half: bool,
    /// The colour mode (D11).
    pub colour: ColourMode,
}

/// One encoded picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    /// Annex-B NAL units (start codes included); a keyframe starts with its SPS and PPS.
    pub data: Vec<u8>,
    /// An IDR picture: a decoder can start here.
    pub keyframe: bool,
    /// The encoded picture's size: even and at least 16, see [`convert`] for the padding.
    pub width: u32,
    pub height: u32,
}

/// An OpenH264 encoder for one screen share.
pub struct Encoder {
    settings: EncoderSettings,
    /// Created on the first picture and again when the picture size changes (a new SPS).
    inner: Option<(openh264::encoder::Encoder, u32, u32)>,
    picture: I420,
    /// The quantised copy of the picture, when a colour mode asks for one.
    quantised: Vec<u8>,
    /// Kept until a keyframe comes out: OpenH264 may skip a frame to hold the bitrate.
    keyframe_wanted: bool,
}

impl Encoder {
    pub fn new(settings: EncoderSettings) -> Result<Self, EncodeError> {
        check_settings(settings.bitrate_bps, settings.max_fps)?;
        Ok(Self {
            settings,
            inner: None,
            picture: I420::default(),
            quantised: Vec::new(),
            keyframe_wanted: true,
        })
    }

    /// The settings now in force.
    pub fn settings(&self) -> EncoderSettings {
        self.settings
    }

    /// The next access unit is a keyframe (a PLI or FIR arrived, someone joined).
    pub fn request_keyframe(&mut self) {
        self.keyframe_wanted = true;
    }

    /// Changes the target bitrate from the next picture on, without a keyframe.
    pub fn set_bitrate(&mut self, bps: u32) -> Result<(), EncodeError> {
        check_settings(bps, self.settings.max_fps)?;
        let previous = std::mem::replace(&mut self.settings.bitrate_bps, bps);
        let Some((encoder, _, _)) = &mut self.inner else {
            return Ok(());
        };
        let raising = bps > previous;
        // OpenH264 checks the target against the maximum, so the one that makes room goes first.
        let mut options = [
            (ENCODER_OPTION_MAX_BITRATE, SPATIAL_LAYER_ALL),
            (ENCODER_OPTION_MAX_BITRATE, SPATIAL_LAYER_0),
            (ENCODER_OPTION_BITRATE, SPATIAL_LAYER_ALL),
        ];
        if !raising {
            options.reverse();
        }
        for (option, layer) in options {
            let mut info = SBitrateInfo {
                iLayer: layer,
                iBitrate: bps as i32,
            };
            // SAFETY: the encoder is initialised (it has encoded a picture); SetOption reads an
            // SBitrateInfo for these options and keeps no pointer to it.
            check_rc(unsafe { encoder.raw_api().set_option(option, (&raw mut info).cast()) })?;
        }
        Ok(())
    }

    /// Changes the frame rate the rate control budgets for.
    pub fn set_max_frame_rate(&mut self, fps: f32) -> Result<(), EncodeError> {
        check_settings(self.settings.bitrate_bps, fps)?;
        self.settings.max_fps = fps;
        if let Some((encoder, _, _)) = &mut self.inner {
            let mut rate = fps;
            // SAFETY: as in set_bitrate; the option is a float.
            unsafe {
                let raw = encoder.raw_api();
                check_rc(raw.set_option(ENCODER_OPTION_FRAME_RATE, (&raw mut rate).cast()))?;
            }
        }
        Ok(())
    }

    /// Encodes one picture taken at `at_ms` (milliseconds on any steady clock). `None` when the
    /// rate control skipped it to hold the bitrate (the next picture is encoded normally).
    pub fn encode(
        &mut self,
        frame: Bgra<'_>,
        options: PictureOptions,
        at_ms: u64,
    ) -> Result<Option<AccessUnit>, EncodeError> {
        frame.validate()?;
        let frame = if options.colour == ColourMode::Full {
            frame
        } else {
            let (w, h, stride) = (
                frame.width as usize,
                frame.height as usize,
                frame.stride as usize,
            );
            let len = frame.byte_len() as usize;
            self.quantised.clear();
            self.quantised.extend_from_slice(&frame.data[..len]);
            quantise::quantise(&mut self.quantised, w, h, stride, options.colour);
            Bgra {
                data: &self.quantised,
                ..frame
            }
        };
        self.picture.convert(frame, options.half)?;
        let (width, height) = (self.picture.width, self.picture.height);
        let encoder = match &mut self.inner {
            Some((encoder, w, h)) if (*w, *h) == (width, height) => encoder,
            _ => {
                let config = self.config();
                let api = openh264::OpenH264API::from_source();
                let encoder = openh264::encoder::Encoder::with_api_config(api, config)?;
                self.keyframe_wanted = true;
                &mut self.inner.insert((encoder, width, height)).0
            }
        };
        if self.keyframe_wanted {
            encoder.force_intra_frame();
        }
        let (cw, w) = (width as usize / 2, width as usize);
        let source = YUVSlices::new(
            (&self.picture.y, &self.picture.u, &self.picture.v),
            (w, height as usize),
            (w, cw, cw),
        );
        let stream = encoder.encode_at(&source, Timestamp::from_millis(at_ms))?;
        let keyframe = match stream.frame_type() {
            FrameType::Skip | FrameType::Invalid => return Ok(None),
            FrameType::IDR => true,
            FrameType::I | FrameType::P | FrameType::IPMixed => false,
        };
        let data = stream.to_vec();
        if data.is_empty() {
            return Ok(None);
        }
        if keyframe {
            self.keyframe_wanted = false;
        }
        Ok(Some(AccessUnit {
            data,
            keyframe,
            width,
            height,
        }))
    }

    fn config(&self) -> EncoderConfig {
        EncoderConfig::new()
            .usage_type(UsageType::ScreenContentRealTime)
            .profile(Profile::Baseline)
            // Timestamp mode: the rate control's buffer drains by the time between pictures. In
            // bitrate mode it drains by one frame's share a picture, so after a keyframe a
            // still screen sent once a second was skipped for as many seconds as the keyframe
            // is worth in frames at `max_fps` (about 47 for 1080p at 2.5 Mbit/s).
            .rate_control_mode(RateControlMode::Timestamp)
            .bitrate(BitRate::from_bps(self.settings.bitrate_bps))
            .max_frame_rate(FrameRate::from_hz(self.settings.max_fps))
            .skip_frames(self.settings.skip_frames)
            // Both are camera features OpenH264 turns off for screen content (with a warning).
            .adaptive_quantization(false)
            .background_detection(false)
            .intra_frame_period(IntraFramePeriod::from_num_frames(0))
            .sps_pps_strategy(SpsPpsStrategy::ConstantId)
            .num_threads(self.settings.threads)
            .vui(VuiConfig::bt709())
    }
}

/// Bounds that keep OpenH264's integer fields and rate control sane.
fn check_settings(bps: u32, fps: f32) -> Result<(), EncodeError> {
    if !(10_000..=100_000_000).contains(&bps) {
        return Err(EncodeError::Setting(
            "bitrate must be 10 kbit/s to 100 Mbit/s",
        ));
    }
    if !(fps.is_finite() && (0.5..=60.0).contains(&fps)) {
        return Err(EncodeError::Setting(
            "frame rate must be 0.5 to 60 a second",
        ));
    }
    Ok(())
}

fn check_rc(rc: std::os::raw::c_int) -> Result<(), EncodeError> {
    if rc == 0 {
        Ok(())
    } else {
        Err(EncodeError::Setting("OpenH264 refused the option"))
    }
}

#[cfg(test)]
mod tests;
