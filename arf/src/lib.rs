//! ARF, Tandem's own recording format: an append-only, crash-safe container for everything a
//! network recording holds (screen and camera frames, the voice mix as Opus packets, session
//! events), with a seek index. The byte layout is specified in docs/arf.md.
//!
//! - [`Writer`] appends to any `Write` and takes all times from its caller; [`FileWriter`] is one
//!   on a [`SyncedFile`], whose flush is `sync_data`. A writer killed at any moment leaves a
//!   file that reads back up to its last written block.
//! - [`Reader`] reads records in order, seeks by time through the index (the trailer's, or one
//!   rebuilt by scanning a file that was never closed), and tells a torn tail (stop quietly,
//!   `truncated`) from damage in the middle (an error with its offset).
//! - [`inspect`] describes a file for `tandem arf inspect`; [`inspect_within`] also checks it
//!   against [`Limits`] (length, gaps, declared picture sizes) before anyone converts it.
//!
//! Nothing here panics on any input, and no length read from a file is trusted before it has
//! been checked against a limit and against the bytes present.

mod error;
mod format;
mod frame_size;
mod index;
mod limits;
mod reader;
mod record;
mod summary;
mod writer;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

use std::path::Path;

pub use error::ArfError;
pub use format::{
    BLOCK_HEADER_LEN, FILE_MAGIC, MAX_BLOCK_BODY, MAX_EVENT_KIND, MAX_ID, MAX_LABEL, MAX_METADATA,
    MAX_RECORD_BODY, VERSION,
};
pub use frame_size::frame_size;
pub use index::{Index, IndexEntry, TIME_INDEX_INTERVAL_US, TrackEntry};
pub use limits::{LimitCheck, LimitError, Limits};
pub use reader::{DataEnd, IndexSource, Reader, Records};
pub use record::{Codec, Event, Header, Media, Record, Track, TrackKind};
pub use summary::{Summary, TrackSummary};
pub use writer::{FileWriter, SyncedFile, Writer, WriterConfig};

/// Reads a whole recording and describes it; fails on damage in the middle of the file, not on
/// a torn tail (which the summary reports as `truncated`).
pub fn inspect(path: impl AsRef<Path>) -> Result<Summary, ArfError> {
    Reader::open(path)?.summary()
}

/// Like [`inspect`], and fails with [`ArfError::OverLimit`] at the first record that breaks
/// `limits`: what a server checks before it accepts a file to convert.
pub fn inspect_within(path: impl AsRef<Path>, limits: &Limits) -> Result<Summary, ArfError> {
    Reader::open(path)?.summary_within(limits)
}
