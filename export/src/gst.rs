//! GStreamer plumbing: elements with the Debian package that ships them, bus errors turned into
//! `ExportError`, and `SyncChain`, a chain of elements driven from the caller's thread.

use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::error::ExportError;

/// Every element the export may use, with the Debian package that ships it, so that a missing
/// one is reported as something an administrator can install.
const ELEMENTS: &[(&str, &str)] = &[
    ("appsrc", "gstreamer1.0-plugins-base"),
    ("capsfilter", "libgstreamer1.0-0"),
    ("videoconvert", "gstreamer1.0-plugins-base"),
    ("videoscale", "gstreamer1.0-plugins-base"),
    ("audioconvert", "gstreamer1.0-plugins-base"),
    ("opusdec", "gstreamer1.0-plugins-base"),
    ("vp8dec", "gstreamer1.0-plugins-good"),
    ("mp4mux", "gstreamer1.0-plugins-good"),
    ("filesink", "libgstreamer1.0-0"),
    ("x264enc", "gstreamer1.0-plugins-ugly"),
    ("avdec_h264", "gstreamer1.0-libav"),
    ("avenc_aac", "gstreamer1.0-libav"),
];

fn package_of(element: &str) -> (&'static str, &'static str) {
    ELEMENTS
        .iter()
        .find(|(e, _)| *e == element)
        .copied()
        .unwrap_or(("unknown", "gstreamer1.0-plugins-base"))
}

/// Fails with the first element that is not installed, naming its Debian package.
pub(crate) fn require_all() -> Result<(), ExportError> {
    for (element, package) in ELEMENTS {
        if gst::ElementFactory::find(element).is_none() {
            return Err(ExportError::MissingElement { element, package });
        }
    }
    Ok(())
}

pub(crate) fn make(factory: &str) -> Result<gst::Element, ExportError> {
    gst::ElementFactory::make(factory).build().map_err(|_| {
        let (element, package) = package_of(factory);
        ExportError::MissingElement { element, package }
    })
}

pub(crate) fn capsfilter(caps: &gst::Caps) -> Result<gst::Element, ExportError> {
    let f = make("capsfilter")?;
    f.set_property("caps", caps);
    Ok(f)
}

/// The system's text for ENOSPC, as GLib puts it in an element's error detail.
static NO_SPACE: LazyLock<String> = LazyLock::new(|| {
    let text = std::io::Error::from_raw_os_error(28).to_string();
    // "No space left on device (os error 28)": the part GLib's g_strerror gives too.
    text.split(" (os error")
        .next()
        .unwrap_or("No space left")
        .to_owned()
});

/// Turns an error message from a bus into an `ExportError`; `output` is the file the pipeline
/// writes, if any, so that a full disk or a refused write names it.
pub(crate) fn bus_error(msg: &gst::message::Error, output: Option<&Path>) -> ExportError {
    let err = msg.error();
    let element = msg
        .src()
        .map(|s| s.path_string().to_string())
        .unwrap_or_else(|| "pipeline".into());
    let debug = msg.debug().map(|d| d.to_string());
    if let Some(path) = output {
        // Elements that write files report a full disk as NoSpaceLeft (filesink) or as a write
        // error whose detail is the system's message (the muxer's fast-start scratch file).
        let full = err.matches(gst::ResourceError::NoSpaceLeft)
            || debug.as_deref().is_some_and(|d| d.contains(&*NO_SPACE));
        if full {
            return ExportError::DiskFull {
                path: path.to_owned(),
            };
        }
        if err.is::<gst::ResourceError>() {
            let detail = debug.map(|d| format!(": {d}")).unwrap_or_default();
            return ExportError::Output {
                path: path.to_owned(),
                message: format!("{} ({element}){detail}", err.message()),
            };
        }
    }
    ExportError::Pipeline {
        element,
        message: err.message().to_string(),
        debug,
    }
}

/// The first error waiting on a bus, if any; warnings are counted (decoders report damaged
/// frames as warnings and carry on).
pub(crate) fn drain_bus(
    bus: &gst::Bus,
    output: Option<&Path>,
    warnings: &mut u64,
) -> Result<(), ExportError> {
    while let Some(msg) = bus.pop() {
        match msg.view() {
            gst::MessageView::Error(e) => return Err(bus_error(e, output)),
            gst::MessageView::Warning(_) => *warnings += 1,
            _ => {}
        }
    }
    Ok(())
}

fn pipeline_error(element: &str, message: impl Into<String>) -> ExportError {
    ExportError::Pipeline {
        element: element.to_owned(),
        message: message.into(),
        debug: None,
    }
}

/// Buffers that came out of a chain, each with the caps it was pushed under.
#[derive(Default)]
struct Collected {
    caps: Option<gst::Caps>,
    buffers: Vec<(gst::Buffer, gst::Caps)>,
}

/// A chain of elements fed and drained by the caller's own pads, with no queue or thread in
/// between: when `push` returns, everything the chain made from that buffer has been collected.
/// This keeps decoding in step with the recording's clock without timeouts or guessing how far
/// behind a decoder thread is.
pub(crate) struct SyncChain {
    name: String,
    bin: gst::Pipeline,
    src: gst::Pad,
    sink: gst::Pad,
    out: Arc<Mutex<Collected>>,
    pub(crate) warnings: u64,
}

impl SyncChain {
    pub(crate) fn new(
        name: &str,
        elements: &[gst::Element],
        caps: &gst::Caps,
    ) -> Result<Self, ExportError> {
        let (Some(first), Some(last)) = (elements.first(), elements.last()) else {
            return Err(pipeline_error(name, "empty chain"));
        };
        let bin = gst::Pipeline::with_name(name);
        bin.add_many(elements)
            .map_err(|e| pipeline_error(name, e.to_string()))?;
        gst::Element::link_many(elements).map_err(|e| pipeline_error(name, e.to_string()))?;

        let out = Arc::new(Mutex::new(Collected::default()));
        let chain_out = Arc::clone(&out);
        let event_out = Arc::clone(&out);
        // A template with ANY caps: without one, a pad answers caps queries with its current
        // caps, and a source that changes size mid-stream could not renegotiate.
        let any = gst::PadTemplate::new(
            "collect",
            gst::PadDirection::Sink,
            gst::PadPresence::Always,
            &gst::Caps::new_any(),
        )
        .map_err(|e| pipeline_error(name, e.to_string()))?;
        let sink = gst::Pad::builder_from_template(&any)
            .name(format!("{name}-collect"))
            .chain_function(move |_pad, _parent, buffer| {
                let mut out = chain_out.lock().unwrap_or_else(PoisonError::into_inner);
                let Some(caps) = out.caps.clone() else {
                    return Err(gst::FlowError::NotNegotiated);
                };
                out.buffers.push((buffer, caps));
                Ok(gst::FlowSuccess::Ok)
            })
            .event_function(move |_pad, _parent, event| {
                if let gst::EventView::Caps(c) = event.view() {
                    let mut out = event_out.lock().unwrap_or_else(PoisonError::into_inner);
                    out.caps = Some(c.caps_owned());
                }
                true
            })
            .build();
        let src = gst::Pad::builder(gst::PadDirection::Src)
            .name(format!("{name}-feed"))
            .build();

        let (Some(first_sink), Some(last_src)) = (first.static_pad("sink"), last.static_pad("src"))
        else {
            return Err(pipeline_error(name, "element without static pads"));
        };
        src.link(&first_sink)
            .map_err(|e| pipeline_error(name, format!("link: {e:?}")))?;
        last_src
            .link(&sink)
            .map_err(|e| pipeline_error(name, format!("link: {e:?}")))?;
        sink.set_active(true)
            .map_err(|e| pipeline_error(name, e.to_string()))?;
        src.set_active(true)
            .map_err(|e| pipeline_error(name, e.to_string()))?;

        let chain = SyncChain {
            name: name.to_owned(),
            bin,
            src,
            sink,
            out,
            warnings: 0,
        };
        if chain.bin.set_state(gst::State::Playing).is_err() {
            chain.check_bus()?;
            return Err(pipeline_error(name, "could not start"));
        }
        chain.event(gst::event::StreamStart::new(name))?;
        chain.event(gst::event::Caps::new(caps))?;
        let segment = gst::FormattedSegment::<gst::ClockTime>::new();
        chain.event(gst::event::Segment::new(&segment))?;
        Ok(chain)
    }

    fn event(&self, event: gst::Event) -> Result<(), ExportError> {
        // Sticky events are stored even when not forwarded yet; a refusal shows on the bus.
        self.src.push_event(event);
        self.check_bus()
    }

    fn check_bus(&self) -> Result<(), ExportError> {
        let mut ignored = 0;
        match self.bin.bus() {
            Some(bus) => drain_bus(&bus, None, &mut ignored),
            None => Ok(()),
        }
    }

    /// New caps for the buffers that follow (a resized source for the scaler).
    pub(crate) fn set_caps(&self, caps: &gst::Caps) -> Result<(), ExportError> {
        self.event(gst::event::Caps::new(caps))
    }

    /// Pushes one buffer through the chain and returns what came out of it.
    pub(crate) fn push(
        &mut self,
        buffer: gst::Buffer,
    ) -> Result<Vec<(gst::Buffer, gst::Caps)>, ExportError> {
        let flow = self.src.push(buffer);
        if let Some(bus) = self.bin.bus() {
            drain_bus(&bus, None, &mut self.warnings)?;
        }
        if let Err(e) = flow {
            return Err(pipeline_error(
                &self.name,
                format!("data flow stopped: {e:?}"),
            ));
        }
        Ok(self.take())
    }

    /// Drains what the elements still hold (a decoder's delayed frames).
    pub(crate) fn finish(&mut self) -> Result<Vec<(gst::Buffer, gst::Caps)>, ExportError> {
        self.src.push_event(gst::event::Eos::new());
        if let Some(bus) = self.bin.bus() {
            drain_bus(&bus, None, &mut self.warnings)?;
        }
        Ok(self.take())
    }

    fn take(&self) -> Vec<(gst::Buffer, gst::Caps)> {
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut out.buffers)
    }
}

impl Drop for SyncChain {
    fn drop(&mut self) {
        let _ = self.bin.set_state(gst::State::Null);
        let _ = self.src.set_active(false);
        let _ = self.sink.set_active(false);
    }
}
