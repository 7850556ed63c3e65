//! One error type for reading and writing, with a stable short code per variant so the CLI, the
//! HTTP API and logs can name a failure without parsing its message.

use crate::format::VERSION;
use crate::limits::LimitError;

/// Everything that can go wrong with an ARF file or a writer.
///
/// Offsets are byte offsets from the start of the file, so a damaged recording can be examined
/// with a hex dump. A torn tail (a crash while a block was being written) is not an error: the
/// reader stops at the last complete block and reports `truncated` instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArfError {
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The file does not start with the ARF magic bytes: not a recording at all.
    #[error("not an ARF file: bad magic bytes at offset 0")]
    BadMagic,
    /// Written by a newer (or unknown) version of the format; reading it could misinterpret data.
    #[error("unsupported ARF version {found} (this reader supports version {VERSION})")]
    UnsupportedVersion { found: u16 },
    /// The file ends inside its header: nothing in it is readable.
    #[error("file ends at offset {offset}, inside the ARF header")]
    Truncated { offset: u64 },
    /// The header is complete but damaged (checksum, lengths or text).
    #[error("bad ARF header: {reason}")]
    BadHeader { reason: &'static str },
    /// A block that is damaged and followed by more data, so this is not a torn tail.
    #[error("corrupt block at offset {offset}: {reason}")]
    CorruptBlock { offset: u64, reason: &'static str },
    /// A record inside a block with a valid checksum that breaks the format's rules.
    #[error("bad record at offset {offset}: {reason}")]
    BadRecord { offset: u64, reason: &'static str },
    /// A track uses a codec this reader does not know (written by a newer writer).
    #[error("unknown codec id {codec} in the track record at offset {offset}")]
    UnknownCodec { offset: u64, codec: u8 },
    /// A record type below 0x80 (one that readers must understand) that this reader does not know.
    #[error("unknown record type {kind:#04x} at offset {offset}")]
    UnknownRecord { offset: u64, kind: u8 },
    /// A track id that was never declared (writer use, or seeking on a track the file lacks).
    #[error("track {0} is not declared")]
    UnknownTrack(u16),
    #[error("track {0} is already declared")]
    DuplicateTrack(u16),
    #[error("track {0} has ended")]
    TrackEnded(u16),
    /// Arrival times must not go back: seeking and the index rely on it.
    #[error("arrival time {at_us} us is before the previous record's {last_us} us")]
    TimeOrder { at_us: u64, last_us: u64 },
    #[error("{what} is {len} bytes, over the limit of {max}")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    /// A track description the writer refuses (a codec of the wrong kind, a zero clock rate).
    #[error("invalid track {track}: {reason}")]
    InvalidTrack { track: u16, reason: &'static str },
    /// An earlier write failed part-way: appending after a torn block would turn a recoverable
    /// tail into corruption in the middle, so the writer refuses everything after that.
    #[error("an earlier write failed; this writer accepts nothing more")]
    WriterFailed,
    /// A well-formed recording that breaks a limit its reader was given (see `Limits`).
    #[error("{0}")]
    OverLimit(#[from] LimitError),
}

impl ArfError {
    /// A short, stable identifier of the kind of failure (never changes between releases).
    pub fn code(&self) -> &'static str {
        match self {
            ArfError::Io(_) => "io",
            ArfError::BadMagic => "bad_magic",
            ArfError::UnsupportedVersion { .. } => "unsupported_version",
            ArfError::Truncated { .. } => "truncated",
            ArfError::BadHeader { .. } => "bad_header",
            ArfError::CorruptBlock { .. } => "corrupt_block",
            ArfError::BadRecord { .. } => "bad_record",
            ArfError::UnknownCodec { .. } => "unknown_codec",
            ArfError::UnknownRecord { .. } => "unknown_record",
            ArfError::UnknownTrack(_) => "unknown_track",
            ArfError::DuplicateTrack(_) => "duplicate_track",
            ArfError::TrackEnded(_) => "track_ended",
            ArfError::TimeOrder { .. } => "time_order",
            ArfError::TooLarge { .. } => "too_large",
            ArfError::InvalidTrack { .. } => "invalid_track",
            ArfError::WriterFailed => "writer_failed",
            ArfError::OverLimit(e) => e.code(),
        }
    }

    /// The byte offset the error refers to, when it refers to a place in a file.
    pub fn offset(&self) -> Option<u64> {
        match self {
            ArfError::BadMagic => Some(0),
            ArfError::Truncated { offset }
            | ArfError::CorruptBlock { offset, .. }
            | ArfError::BadRecord { offset, .. }
            | ArfError::UnknownCodec { offset, .. }
            | ArfError::UnknownRecord { offset, .. } => Some(*offset),
            _ => None,
        }
    }
}
