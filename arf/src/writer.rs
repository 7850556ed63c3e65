//! The ARF writer. Sans-IO in spirit: it writes to any `Write`, takes every time from the caller
//! and never reads a clock; `FileWriter` adds the file and the fsync.
//!
//! Records are buffered into a block; each block goes to the output in one `write_all`, so a
//! process killed at any moment leaves whole blocks plus at most one torn one, which the reader
//! drops. The buffer is bounded by size and by arrival time, so a crash loses at most about a
//! second (or 256 KiB) of what was handed to the writer.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::ArfError;
use crate::format::{self, BLOCK_HEADER_LEN, MediaRef};
use crate::index::{IndexBuilder, TrackProblem};
use crate::record::{Header, Track};

/// When a block is cut without the caller asking.
#[derive(Clone, Debug)]
pub struct WriterConfig {
    /// A block is written once its records pass this many bytes. 256 KiB is about 4 s of a
    /// 640x360 screen share at 500 kbit/s, or a single large keyframe: big enough that block
    /// headers cost nothing, small enough to bound what a crash can lose.
    pub block_bytes: usize,
    /// A record arriving more than this after the block's first record starts a new block, so
    /// a crash loses at most this much arrival time even if the caller never flushes. Also the
    /// deadline returned by `flush_deadline`.
    pub block_span_us: u64,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            block_bytes: 256 * 1024,
            block_span_us: 1_000_000,
        }
    }
}

/// Appends an ARF stream to `W`. Times are arrival times in microseconds since the recording
/// started and must not go back.
///
/// Dropping a writer without `flush` or `close` loses the records still buffered (at most one
/// block); a file that was not closed has no trailer but reads back completely.
pub struct Writer<W: Write> {
    out: W,
    config: WriterConfig,
    written: u64,
    /// The pending block: `BLOCK_HEADER_LEN` bytes reserved for its header, then its records.
    block: Vec<u8>,
    block_count: u32,
    block_first_us: u64,
    last_us: u64,
    records_written: u64,
    index: IndexBuilder,
    failed: bool,
}

impl<W: Write> Writer<W> {
    /// Writes the file header and returns a writer for the stream after it.
    pub fn create(out: W, header: &Header) -> Result<Self, ArfError> {
        Self::with_config(out, header, WriterConfig::default())
    }

    pub fn with_config(
        mut out: W,
        header: &Header,
        config: WriterConfig,
    ) -> Result<Self, ArfError> {
        let head = format::encode_header(header)?;
        out.write_all(&head)?;
        out.flush()?;
        Ok(Writer {
            out,
            config,
            written: head.len() as u64,
            block: vec![0; BLOCK_HEADER_LEN],
            block_count: 0,
            block_first_us: 0,
            last_us: 0,
            records_written: 0,
            index: IndexBuilder::default(),
            failed: false,
        })
    }

    /// Declares a track; it must come before the track's first media record.
    pub fn declare_track(&mut self, at_us: u64, track: &Track) -> Result<(), ArfError> {
        self.check(at_us)?;
        if track.codec.kind() != track.kind {
            return Err(ArfError::InvalidTrack {
                track: track.id,
                reason: "codec does not match the kind",
            });
        }
        if track.clock_rate == 0 {
            return Err(ArfError::InvalidTrack {
                track: track.id,
                reason: "zero clock rate",
            });
        }
        if track.label.len() > format::MAX_LABEL {
            let (len, max) = (track.label.len(), format::MAX_LABEL);
            return Err(ArfError::TooLarge {
                what: "track label",
                len,
                max,
            });
        }
        self.index
            .check_declare(track.id)
            .map_err(|p| track_error(p, track.id))?;
        self.before_record(at_us)?;
        self.index.declare(at_us, track);
        format::encode_track(&mut self.block, at_us, track)?;
        self.after_record(at_us)
    }

    /// One media item: a whole video frame or one Opus packet.
    pub fn media(
        &mut self,
        track: u16,
        at_us: u64,
        media_ts: u64,
        keyframe: bool,
        payload: &[u8],
    ) -> Result<(), ArfError> {
        self.check(at_us)?;
        let body_len = format::media_body_len(payload.len())?;
        self.index
            .check_use(track)
            .map_err(|p| track_error(p, track))?;
        self.before_record(at_us)?;
        self.index.media(track, at_us, keyframe);
        let m = MediaRef {
            track,
            at_us,
            media_ts,
            keyframe,
            payload,
        };
        format::encode_media(&mut self.block, m, body_len);
        self.after_record(at_us)
    }

    /// A session event: a short kind (e.g. `chat`, `pointer`) and the caller's JSON text.
    pub fn event(&mut self, at_us: u64, kind: &str, json: &str) -> Result<(), ArfError> {
        self.check(at_us)?;
        let body_len = format::event_body_len(kind.len(), json.len())?;
        self.before_record(at_us)?;
        format::encode_event(&mut self.block, at_us, kind, json, body_len);
        self.after_record(at_us)
    }

    /// Marks the end of a track; it takes no media after this, and its id is not reused.
    pub fn end_track(&mut self, at_us: u64, track: u16) -> Result<(), ArfError> {
        self.check(at_us)?;
        self.index
            .check_use(track)
            .map_err(|p| track_error(p, track))?;
        self.before_record(at_us)?;
        self.index.end(at_us, track);
        format::encode_track_ended(&mut self.block, at_us, track);
        self.after_record(at_us)
    }

    /// Writes the pending block, if any, and flushes `W`. After this, a killed process leaves
    /// everything so far readable (a power cut too, if `W` is a `FileWriter`).
    pub fn flush(&mut self) -> Result<(), ArfError> {
        if self.failed {
            return Err(ArfError::WriterFailed);
        }
        self.write_block()?;
        self.out.flush().map_err(|e| self.fail(e))
    }

    /// Writes the pending block and the trailer with the seek index, and returns `W`.
    pub fn close(mut self) -> Result<W, ArfError> {
        self.flush()?;
        let index = std::mem::take(&mut self.index).finish(self.written);
        let trailer = format::encode_trailer(&index);
        self.out.write_all(&trailer).map_err(|e| self.fail(e))?;
        self.written += trailer.len() as u64;
        self.out.flush().map_err(|e| self.fail(e))?;
        Ok(self.out)
    }

    /// Bytes handed to `W` so far (header and whole blocks; not the pending block).
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Records in the blocks handed to `W` so far.
    pub fn records_written(&self) -> u64 {
        self.records_written
    }

    /// Records buffered in the pending block.
    pub fn pending_records(&self) -> u32 {
        self.block_count
    }

    /// The arrival time by which the caller should call `flush`, so that a crash loses at most
    /// `block_span_us` of data even when records stop coming. `None` when nothing is pending.
    pub fn flush_deadline(&self) -> Option<u64> {
        (self.block_count > 0).then(|| {
            self.block_first_us
                .saturating_add(self.config.block_span_us)
        })
    }

    pub fn get_ref(&self) -> &W {
        &self.out
    }

    fn check(&self, at_us: u64) -> Result<(), ArfError> {
        if self.failed {
            return Err(ArfError::WriterFailed);
        }
        if at_us < self.last_us {
            return Err(ArfError::TimeOrder {
                at_us,
                last_us: self.last_us,
            });
        }
        Ok(())
    }

    /// Cuts the pending block if this record would stretch it past `block_span_us`.
    fn before_record(&mut self, at_us: u64) -> Result<(), ArfError> {
        if self.block_count > 0 && at_us - self.block_first_us > self.config.block_span_us {
            self.write_block()?;
        }
        if self.block_count == 0 {
            self.block_first_us = at_us;
        }
        Ok(())
    }

    fn after_record(&mut self, at_us: u64) -> Result<(), ArfError> {
        self.block_count += 1;
        self.last_us = at_us;
        // Below this, one more record of the largest size still fits in a block.
        let hard_limit =
            format::MAX_BLOCK_BODY - format::MAX_RECORD_BODY - format::RECORD_HEADER_LEN;
        if self.block.len() - BLOCK_HEADER_LEN >= self.config.block_bytes.min(hard_limit) {
            self.write_block()?;
        }
        Ok(())
    }

    fn write_block(&mut self) -> Result<(), ArfError> {
        if self.block_count == 0 {
            return Ok(());
        }
        let (count, first, last) = (self.block_count, self.block_first_us, self.last_us);
        format::seal_block(&mut self.block, count, first, last);
        self.out.write_all(&self.block).map_err(|e| self.fail(e))?;
        self.index.block(self.written, first, last, count);
        self.written += self.block.len() as u64;
        self.records_written += u64::from(count);
        self.block_count = 0;
        // One huge frame should not pin megabytes for the rest of the recording.
        if self.block.capacity() > 2 * (self.config.block_bytes + BLOCK_HEADER_LEN) {
            self.block = Vec::with_capacity(self.config.block_bytes + BLOCK_HEADER_LEN);
        }
        self.block.clear();
        self.block.resize(BLOCK_HEADER_LEN, 0);
        Ok(())
    }

    fn fail(&mut self, e: std::io::Error) -> ArfError {
        self.failed = true;
        ArfError::Io(e)
    }
}

fn track_error(p: TrackProblem, id: u16) -> ArfError {
    match p {
        TrackProblem::Undeclared => ArfError::UnknownTrack(id),
        TrackProblem::Duplicate => ArfError::DuplicateTrack(id),
        TrackProblem::Ended => ArfError::TrackEnded(id),
    }
}

/// A new file whose `flush` is `sync_data`, so that `Writer::flush` makes what it wrote
/// survive a power cut and not only a killed process.
#[derive(Debug)]
pub struct SyncedFile(File);

impl SyncedFile {
    /// Creates the file; refuses to overwrite an existing one (it could be another recording).
    /// The new directory entry is made durable too, or a power cut could lose the whole file.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, ArfError> {
        let path = path.as_ref();
        let file = OpenOptions::new().write(true).create_new(true).open(path)?;
        #[cfg(unix)]
        if let Some(dir) = path.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            File::open(dir)?.sync_all()?;
        }
        Ok(SyncedFile(file))
    }
}

impl Write for SyncedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.0.write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.sync_data()
    }
}

/// A `Writer` on a new file, flushed to disk on every `flush` and on `close`.
pub type FileWriter = Writer<SyncedFile>;

impl Writer<SyncedFile> {
    /// Creates the file (never over an existing one) and writes the header to disk.
    pub fn create_file(path: impl AsRef<Path>, header: &Header) -> Result<Self, ArfError> {
        Self::create_file_with_config(path, header, WriterConfig::default())
    }

    pub fn create_file_with_config(
        path: impl AsRef<Path>,
        header: &Header,
        config: WriterConfig,
    ) -> Result<Self, ArfError> {
        let mut w = Writer::with_config(SyncedFile::create(path)?, header, config)?;
        w.out.flush().map_err(|e| w.fail(e))?;
        Ok(w)
    }
}
