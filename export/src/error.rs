//! One error type for an export, with a stable short code per variant so the server, the CLI and
//! logs can name a failure without parsing its message.

use std::path::PathBuf;

use std::time::Duration;

use tandem_arf::{ArfError, LimitError};

/// Everything that can make an export fail. An export that fails leaves nothing at the output
/// path: the MP4 is written beside it under a temporary name and renamed only on success.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// GStreamer itself could not start (no plugin registry, broken installation).
    #[error("GStreamer could not be initialised: {0}")]
    Init(String),
    /// A GStreamer element the export needs is not installed.
    #[error("GStreamer element `{element}` is missing: install the Debian package {package}")]
    MissingElement {
        element: &'static str,
        package: &'static str,
    },
    /// The recording could not be opened or read at all.
    #[error("cannot read the recording {}: {source}", path.display())]
    Input {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The recording is damaged in the middle (or is not an ARF file): the reader's error, with
    /// its offset. A torn tail is not an error; the report says `truncated` instead.
    #[error("damaged recording ({code}): {0}", code = .0.code())]
    Recording(#[source] ArfError),
    /// A track uses a codec this exporter cannot decode.
    #[error("unsupported codec: {0}")]
    UnsupportedCodec(String),
    /// The recording holds no audio or video (none at all, or only session events), so there is
    /// nothing to put in an MP4.
    #[error("the recording holds no audio or video")]
    Empty,
    /// The options make no sense (a zero frame rate, a size too small).
    #[error("invalid export options: {0}")]
    Options(&'static str),
    /// The output (or its temporary file) could not be created, written or renamed.
    #[error("cannot write the output {}: {message}", path.display())]
    Output { path: PathBuf, message: String },
    /// The disk holding the output is full.
    #[error("no space left on the device for {}", path.display())]
    DiskFull { path: PathBuf },
    /// A frame larger than the export allows (`ExportOptions::max_source_width` and height).
    #[error("{0}")]
    OverLimit(LimitError),
    /// More video arrived within the lookahead (one second) than an export holds at once.
    #[error("more than {max} bytes of video arrive within one second at {at_us} us")]
    TooDense { at_us: u64, max: usize },
    /// The export took longer than it was allowed (see `Stop::time_allowed`).
    #[error("the export took longer than the {} s allowed for this recording", .allowed.as_secs())]
    TimedOut { allowed: Duration },
    /// The caller no longer wanted the export (see `Stop::cancelled`).
    #[error("the export was cancelled")]
    Cancelled,
    /// GStreamer failed while converting (a decoder or encoder error, a negotiation failure).
    #[error("GStreamer error in {element}: {message}{}", debug_suffix(.debug))]
    Pipeline {
        element: String,
        message: String,
        debug: Option<String>,
    },
}

fn debug_suffix(debug: &Option<String>) -> String {
    debug
        .as_deref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default()
}

impl ExportError {
    /// A short, stable identifier of the kind of failure (never changes between releases).
    pub fn code(&self) -> &'static str {
        match self {
            ExportError::Init(_) => "gstreamer_init",
            ExportError::MissingElement { .. } => "missing_element",
            ExportError::Input { .. } => "input_io",
            ExportError::Recording(_) => "corrupt_recording",
            ExportError::UnsupportedCodec(_) => "unsupported_codec",
            ExportError::Empty => "empty_recording",
            ExportError::Options(_) => "bad_options",
            ExportError::Output { .. } => "output_io",
            ExportError::DiskFull { .. } => "disk_full",
            ExportError::Pipeline { .. } => "pipeline",
            ExportError::OverLimit(e) => e.code(),
            ExportError::TooDense { .. } => "too_dense",
            ExportError::TimedOut { .. } => "export_timeout",
            ExportError::Cancelled => "cancelled",
        }
    }

    /// The reader's own error, when the recording is damaged: its `code()` and `offset()` say
    /// what and where.
    pub fn recording_error(&self) -> Option<&ArfError> {
        match self {
            ExportError::Recording(e) => Some(e),
            _ => None,
        }
    }

    /// Sorts the reader's errors: failing to read the file is not damage, and a codec id from a
    /// newer writer is a limit of this exporter rather than a broken file.
    pub(crate) fn from_arf(path: &std::path::Path, e: ArfError) -> Self {
        match e {
            ArfError::Io(source) => ExportError::Input {
                path: path.to_owned(),
                source,
            },
            ArfError::UnknownCodec { offset, codec } => ExportError::UnsupportedCodec(format!(
                "codec id {codec} in the track record at offset {offset} of {}",
                path.display()
            )),
            e => ExportError::Recording(e),
        }
    }
}
