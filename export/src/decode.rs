//! Decoding chains: a recorded track's payloads to raw frames or samples, and the scaler that
//! fits a source into the output frame.

use gstreamer as gst;
use gstreamer::prelude::*;
use tandem_arf::Codec;

use crate::error::ExportError;
use crate::gst::{SyncChain, capsfilter, make};

/// Decoders report a damaged frame as a warning and carry on instead of stopping the export:
/// one bad frame of a screen share must not lose the whole recording.
fn tolerate_errors(decoder: &gst::Element) {
    if let Some(p) = decoder.find_property("max-errors")
        && p.value_type() == i32::static_type()
    {
        decoder.set_property("max-errors", -1i32);
    }
}

/// A video track's frames (VP8 frames, or H.264 access units in Annex B) to I420.
pub(crate) fn video_decoder(name: &str, codec: Codec) -> Result<SyncChain, ExportError> {
    let (caps, decoder) = match codec {
        Codec::Vp8 => (gst::Caps::builder("video/x-vp8").build(), make("vp8dec")?),
        Codec::H264 => {
            let caps = gst::Caps::builder("video/x-h264")
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .build();
            let dec = make("avdec_h264")?;
            // Frame threads would hold frames back; a screen share decodes fast on one.
            if dec.find_property("max-threads").is_some() {
                dec.set_property("max-threads", 1i32);
            }
            (caps, dec)
        }
        other => {
            return Err(ExportError::UnsupportedCodec(format!(
                "{other} is not a video codec (track {name})"
            )));
        }
    };
    tolerate_errors(&decoder);
    let i420 = gst::Caps::builder("video/x-raw")
        .field("format", "I420")
        .build();
    SyncChain::new(
        name,
        &[decoder, make("videoconvert")?, capsfilter(&i420)?],
        &caps,
    )
}

/// The caps of the mono 16-bit PCM that the timeline holds.
pub(crate) fn pcm_caps() -> gst::Caps {
    gst::Caps::builder("audio/x-raw")
        .field("format", "S16LE")
        .field("rate", crate::audio::RATE as i32)
        .field("channels", 1i32)
        .field("layout", "interleaved")
        .build()
}

/// Opus packets (as RTP carries them: no Ogg headers) to mono 48 kHz PCM; the voice mix is mono,
/// and a stereo packet is downmixed by the decoder. Opus decodes at 48 kHz natively, so there is
/// no resampler.
pub(crate) fn opus_decoder(name: &str) -> Result<SyncChain, ExportError> {
    let caps = gst::Caps::builder("audio/x-opus")
        .field("channel-mapping-family", 0i32)
        .field("channels", 1i32)
        .field("rate", crate::audio::RATE as i32)
        .build();
    let decoder = make("opusdec")?;
    tolerate_errors(&decoder);
    SyncChain::new(
        name,
        &[decoder, make("audioconvert")?, capsfilter(&pcm_caps())?],
        &caps,
    )
}

/// I420 at any size to I420 at the output size, letterboxed with black.
pub(crate) fn scaler(width: u32, height: u32, first: &gst::Caps) -> Result<SyncChain, ExportError> {
    let scale = make("videoscale")?;
    scale.set_property("add-borders", true);
    let out = gst::Caps::builder("video/x-raw")
        .field("format", "I420")
        .field("width", width as i32)
        .field("height", height as i32)
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
        .build();
    SyncChain::new("scaler", &[scale, capsfilter(&out)?], first)
}
