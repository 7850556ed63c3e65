//! The output pipeline: raw frames and samples in, H.264 and AAC in a fast-start MP4 out.

use std::path::{Path, PathBuf};

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::error::ExportError;
use crate::gst::{bus_error, drain_bus, make};

/// Sets a property from its text form (enums and flags by nick), checking that it exists.
fn set(element: &gst::Element, name: &str, value: &str) -> Result<(), ExportError> {
    let fail = |why: &str| ExportError::Pipeline {
        element: element.name().to_string(),
        message: format!("cannot set {name}={value}: {why}"),
        debug: None,
    };
    let pspec = element
        .find_property(name)
        .ok_or_else(|| fail("no such property"))?;
    let v = <glib::Value as GstValueExt>::deserialize(value, pspec.value_type())
        .map_err(|_| fail("invalid value"))?;
    element.set_property_from_value(name, &v);
    Ok(())
}

pub(crate) struct EncoderConfig<'a> {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub quality: u32,
    pub audio_bitrate: u32,
    /// Where the muxer writes (the temporary name beside the output).
    pub partial: &'a Path,
    /// The muxer's scratch file for fast-start (the media data until the index is known).
    pub scratch: &'a Path,
    /// The path the caller asked for, named in errors.
    pub output: &'a Path,
}

/// Frames waiting for the encoder: enough to keep it busy; the caller waits when the encoder is
/// slower than decoding, so memory stays flat however long the recording.
const VIDEO_QUEUE_FRAMES: u64 = 2;
/// Audio is pushed ahead of the video (`AUDIO_LEAD_US` in export.rs); ten seconds of room
/// covers that and any encoder's delay.
const AUDIO_QUEUE_BYTES: u64 = 10 * crate::audio::RATE * 2;
/// How often a caller waiting for room looks at the queue again; an error wakes it at once.
const ROOM_POLL: gst::ClockTime = gst::ClockTime::from_mseconds(2);
/// How long the encoders may take nothing before the export fails rather than waits on.
const STALL: std::time::Duration = std::time::Duration::from_secs(60);

pub(crate) struct Encoder {
    pipeline: gst::Pipeline,
    video: gst_app::AppSrc,
    audio: gst_app::AppSrc,
    bus: gst::Bus,
    output: PathBuf,
    pub(crate) warnings: u64,
    /// Both streams have ended and the muxer is done (or gave up).
    ended: bool,
}

/// How long an abandoned export (an error, or cancelled) may take to wind its streams down
/// before the pipeline is stopped anyway.
const WIND_DOWN: gst::ClockTime = gst::ClockTime::from_seconds(2);

impl Encoder {
    pub(crate) fn new(c: &EncoderConfig<'_>) -> Result<Self, ExportError> {
        let err = |e: glib::BoolError| ExportError::Pipeline {
            element: "encoder".into(),
            message: e.to_string(),
            debug: None,
        };
        let raw = gst::Caps::builder("video/x-raw")
            .field("format", "I420")
            .field("width", c.width as i32)
            .field("height", c.height as i32)
            .field("framerate", gst::Fraction::new(c.fps as i32, 1))
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            .build();
        let frame_bytes = u64::from(c.width) * u64::from(c.height) * 3 / 2;
        // The caller waits for room itself (`wait_for_room`) rather than blocking inside
        // appsrc, which an error downstream would never wake.
        let video = gst_app::AppSrc::builder()
            .name("video")
            .caps(&raw)
            .format(gst::Format::Time)
            .block(false)
            .max_bytes(VIDEO_QUEUE_FRAMES * frame_bytes)
            .build();
        let audio = gst_app::AppSrc::builder()
            .name("audio")
            .caps(&crate::decode::pcm_caps())
            .format(gst::Format::Time)
            .block(false)
            .max_bytes(AUDIO_QUEUE_BYTES)
            .build();

        let x264 = make("x264enc")?;
        set(&x264, "tune", "zerolatency")?;
        set(&x264, "speed-preset", "veryfast")?;
        set(&x264, "key-int-max", &(2 * c.fps).to_string())?;
        // Constant quality: a still screen costs almost nothing, a busy one gets what it needs.
        set(&x264, "pass", "qual")?;
        set(&x264, "quantizer", &c.quality.to_string())?;
        let aconv = make("audioconvert")?;
        let aac = make("avenc_aac")?;
        set(&aac, "bitrate", &c.audio_bitrate.to_string())?;
        let mux = make("mp4mux")?;
        set(&mux, "faststart", "true")?;
        mux.set_property("faststart-file", c.scratch.to_string_lossy().as_ref());
        let sink = make("filesink")?;
        sink.set_property("location", c.partial.to_string_lossy().as_ref());

        let pipeline = gst::Pipeline::with_name("export");
        pipeline
            .add_many([
                video.upcast_ref::<gst::Element>(),
                &x264,
                audio.upcast_ref(),
                &aconv,
                &aac,
                &mux,
                &sink,
            ])
            .map_err(err)?;
        gst::Element::link_many([video.upcast_ref::<gst::Element>(), &x264, &mux, &sink])
            .map_err(err)?;
        gst::Element::link_many([audio.upcast_ref::<gst::Element>(), &aconv, &aac, &mux])
            .map_err(err)?;
        let Some(bus) = pipeline.bus() else {
            return Err(ExportError::Pipeline {
                element: "export".into(),
                message: "pipeline without a bus".into(),
                debug: None,
            });
        };
        let enc = Encoder {
            pipeline,
            video,
            audio,
            bus,
            output: c.output.to_owned(),
            warnings: 0,
            ended: false,
        };
        if enc.pipeline.set_state(gst::State::Playing).is_err() {
            enc.check()?;
            return Err(ExportError::Output {
                path: c.output.to_owned(),
                message: "the output pipeline did not start".into(),
            });
        }
        Ok(enc)
    }

    fn check(&self) -> Result<(), ExportError> {
        let mut w = 0;
        drain_bus(&self.bus, Some(&self.output), &mut w)
    }

    /// The audio is complete: no more will be pushed.
    pub(crate) fn end_audio(&mut self) {
        let _ = self.audio.end_of_stream();
    }

    /// Waits until `src` has room, or fails with the pipeline's error; a pipeline that takes
    /// nothing for [`STALL`] is an error too, never a wait without end.
    fn wait_for_room(&mut self, video: bool) -> Result<(), ExportError> {
        let (src, max) = match video {
            true => (&self.video, self.video.max_bytes()),
            false => (&self.audio, AUDIO_QUEUE_BYTES),
        };
        let since = std::time::Instant::now();
        while src.current_level_bytes() >= max {
            if since.elapsed() > STALL {
                return Err(ExportError::Pipeline {
                    element: if video { "video" } else { "audio" }.into(),
                    message: format!("the encoders took nothing for {} s", STALL.as_secs()),
                    debug: None,
                });
            }
            let msg = self.bus.timed_pop_filtered(
                ROOM_POLL,
                &[gst::MessageType::Error, gst::MessageType::Warning],
            );
            match msg.as_ref().map(|m| m.view()) {
                Some(gst::MessageView::Error(e)) => return Err(bus_error(e, Some(&self.output))),
                Some(gst::MessageView::Warning(_)) => self.warnings += 1,
                _ => {}
            }
        }
        drain_bus(&self.bus, Some(&self.output), &mut self.warnings)
    }

    /// After a refused push the reason is on the bus, possibly a moment later.
    fn refused(&self, what: &str, flow: gst::FlowError) -> ExportError {
        let msg = self
            .bus
            .timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error]);
        match msg.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Error(e)) => bus_error(e, Some(&self.output)),
            _ => ExportError::Pipeline {
                element: what.into(),
                message: format!("the encoder refused data: {flow:?}"),
                debug: None,
            },
        }
    }

    pub(crate) fn push_video(&mut self, buffer: gst::Buffer) -> Result<(), ExportError> {
        self.wait_for_room(true)?;
        self.video
            .push_buffer(buffer)
            .map_err(|f| self.refused("video", f))?;
        Ok(())
    }

    pub(crate) fn push_audio(&mut self, buffer: gst::Buffer) -> Result<(), ExportError> {
        self.wait_for_room(false)?;
        self.audio
            .push_buffer(buffer)
            .map_err(|f| self.refused("audio", f))?;
        Ok(())
    }

    /// Ends both streams and waits until the muxer has written the whole file.
    pub(crate) fn finish(mut self) -> Result<(), ExportError> {
        let _ = self.video.end_of_stream();
        let _ = self.audio.end_of_stream();
        self.ended = true;
        let msg = self.bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(STALL.as_secs() * 2),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        match msg.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Eos(_)) => Ok(()),
            Some(gst::MessageView::Error(e)) => Err(bus_error(e, Some(&self.output))),
            _ => Err(ExportError::Pipeline {
                element: "export".into(),
                message: "the pipeline stopped without finishing".into(),
                debug: None,
            }),
        }
    }
}

impl Drop for Encoder {
    /// An export abandoned mid-stream ends its streams first and lets them drain (briefly):
    /// stopping the pipeline while its streaming threads still push can deadlock inside
    /// GStreamer (the muxer posting a message while the bin changes state), which left a
    /// cancelled export's thread stuck for good.
    fn drop(&mut self) {
        if !self.ended {
            let _ = self.video.end_of_stream();
            let _ = self.audio.end_of_stream();
            let _ = self
                .bus
                .timed_pop_filtered(WIND_DOWN, &[gst::MessageType::Eos, gst::MessageType::Error]);
        }
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
