//! The ARF reader: records in order, seeking through the index, and the rules that tell a torn
//! tail (a crash: stop quietly) from damage in the middle (an error with its offset).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::ArfError;
use crate::format::{
    self, BLOCK_HEADER_LEN, BlockHeader, FILE_PREFIX_LEN, FOOTER_LEN, HeaderCheck,
    TRAILER_HEADER_LEN,
};
use crate::index::{Index, IndexBuilder};
use crate::limits::{LimitCheck, Limits};
use crate::record::{Header, Record, TrackKind};
use crate::summary::{Summary, SummaryBuilder};

/// Where the index came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexSource {
    /// The trailer of a cleanly closed file.
    Trailer,
    /// Rebuilt by scanning every block: the file has no valid trailer (the writer did not close
    /// it, or the trailer is damaged).
    Rebuilt,
}

/// Where the good data ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataEnd {
    /// Offset just past the last complete block.
    pub offset: u64,
    /// Something was dropped after it: a torn block or a torn or damaged trailer, as a crash
    /// leaves. `false` for a closed file, and for a crashed one that stopped between blocks.
    pub truncated: bool,
}

/// Reads an ARF stream from any `Read + Seek`.
///
/// Opening reads the header and, if the file was closed cleanly, the trailer's index; nothing
/// else. Without a trailer the index is rebuilt by scanning when first needed (`index`, `seek`,
/// `summary`), or as a side effect of reading all records from the start.
pub struct Reader<R> {
    io: BlockIo<R>,
    header: Header,
    data_start: u64,
    index: Option<Index>,
    index_source: Option<IndexSource>,
    end: Option<DataEnd>,
    seq: Seq,
    pending: VecDeque<Record>,
    done: bool,
}

impl Reader<BufReader<File>> {
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ArfError> {
        Reader::new(BufReader::with_capacity(64 * 1024, File::open(path)?))
    }
}

impl<R: Read + Seek> Reader<R> {
    pub fn new(mut src: R) -> Result<Self, ArfError> {
        let file_len = src.seek(SeekFrom::End(0))?;
        src.seek(SeekFrom::Start(0))?;
        let mut prefix = [0u8; FILE_PREFIX_LEN];
        let n = usize::try_from(file_len).map_or(FILE_PREFIX_LEN, |l| l.min(FILE_PREFIX_LEN));
        src.read_exact(&mut prefix[..n])?;
        let body_len = format::decode_prefix(&prefix[..n], file_len)?;
        let header_len = FILE_PREFIX_LEN + body_len + 4;
        if header_len as u64 > file_len {
            return Err(ArfError::Truncated { offset: file_len });
        }
        // Bounded by MAX_HEADER_BODY (decode_prefix) and by the file's length.
        let mut whole = vec![0u8; header_len];
        whole[..FILE_PREFIX_LEN].copy_from_slice(&prefix);
        src.read_exact(&mut whole[FILE_PREFIX_LEN..])?;
        let header = format::decode_header(&whole)?;
        let data_start = header_len as u64;

        let mut io = BlockIo {
            src,
            src_pos: Some(data_start),
            file_len,
            data_end: None,
            buf: Vec::new(),
        };
        let index = io.read_trailer(data_start)?;
        let mut end = None;
        let mut index_source = None;
        if let Some(index) = &index {
            io.data_end = Some(index.data_end);
            end = Some(DataEnd {
                offset: index.data_end,
                truncated: false,
            });
            index_source = Some(IndexSource::Trailer);
        }
        Ok(Reader {
            io,
            header,
            data_start,
            index,
            index_source,
            end,
            seq: Seq::from_start(data_start),
            pending: VecDeque::new(),
            done: false,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Offset of the first block.
    pub fn data_start(&self) -> u64 {
        self.data_start
    }

    /// Where the good data ends, once known: at once for a closed file, otherwise after reading
    /// to the end or building the index.
    pub fn end(&self) -> Option<DataEnd> {
        self.end
    }

    /// `None` until an index exists.
    pub fn index_source(&self) -> Option<IndexSource> {
        self.index_source
    }

    /// The next record in arrival order; `None` at the end of the good data.
    ///
    /// The records of a block come out only once the whole block has been read and checked, so
    /// a torn block contributes nothing. After an error, the reader returns `None`.
    pub fn next_record(&mut self) -> Result<Option<Record>, ArfError> {
        loop {
            if let Some(r) = self.pending.pop_front() {
                return Ok(Some(r));
            }
            if self.done {
                return Ok(None);
            }
            match self.io.next_block(&mut self.seq) {
                Ok(Next::Records(records)) => self.pending.extend(records),
                Ok(Next::End(end)) => {
                    self.done = true;
                    self.end = Some(end);
                    // Read from the start with every check: that was a full scan, keep its index.
                    if self.index.is_none()
                        && let Some(builder) = self.seq.check.take()
                    {
                        self.index = Some(builder.finish(end.offset));
                        self.index_source = Some(IndexSource::Rebuilt);
                    }
                }
                Err(e) => {
                    self.done = true;
                    return Err(e);
                }
            }
        }
    }

    /// Iterates over the records from the current position (see `next_record`).
    pub fn records(&mut self) -> Records<'_, R> {
        Records { reader: self }
    }

    /// Back to the first record.
    pub fn rewind(&mut self) {
        self.reposition(self.data_start);
    }

    /// The seek index: the trailer's, or rebuilt by scanning the whole file if there is none.
    pub fn index(&mut self) -> Result<&Index, ArfError> {
        let index = match self.index.take() {
            Some(index) => index,
            None => {
                let (index, end) = self.scan(|_| Ok(()))?;
                self.end = Some(end);
                self.index_source = Some(IndexSource::Rebuilt);
                index
            }
        };
        Ok(self.index.insert(index))
    }

    /// Builds the index by scanning every block, ignoring the trailer: to verify a trailer, or
    /// to compare the two.
    pub fn rebuild_index(&mut self) -> Result<Index, ArfError> {
        Ok(self.scan(|_| Ok(()))?.0)
    }

    /// Positions the reader so that the next records start with a block at or before `time_us`
    /// and nothing at or after `time_us` is skipped. Returns the block's offset.
    ///
    /// For a video track, the block is the one holding the track's last keyframe at or before
    /// `time_us` (the start of the data if there is none), so that decoding can start there. For
    /// no track or an audio track, it is the first block with a record at or after `time_us`.
    /// Records before `time_us` may come first; the caller skips what it does not want.
    pub fn seek(&mut self, time_us: u64, track: Option<u16>) -> Result<u64, ArfError> {
        let data_start = self.data_start;
        let index = self.index()?;
        let keyframe_track = match track {
            None => None,
            Some(id) => match index.track(id) {
                None => return Err(ArfError::UnknownTrack(id)),
                Some(t) => (t.track.kind == TrackKind::Video).then_some(id),
            },
        };
        let data_end = index.data_end;
        let (mut offset, walk) = if let Some(id) = keyframe_track {
            let entries = index.keyframes.get(&id).map_or(&[][..], Vec::as_slice);
            let i = entries.partition_point(|e| e.at_us <= time_us);
            (
                i.checked_sub(1)
                    .and_then(|i| entries.get(i))
                    .map_or(data_start, |e| e.offset),
                false,
            )
        } else {
            // The last indexed block starting before `time_us`: every block before it ends
            // before `time_us`. From there, walk block headers to the first block reaching it.
            let i = index.time.partition_point(|e| e.at_us < time_us);
            (
                i.checked_sub(1)
                    .and_then(|i| index.time.get(i))
                    .map_or(data_start, |e| e.offset),
                true,
            )
        };
        while walk && offset < data_end {
            match self.io.peek_header(offset)? {
                Some((head, next)) if head.last_us < time_us => offset = next,
                _ => break,
            }
        }
        self.reposition(offset);
        Ok(offset)
    }

    /// Scans the whole file and describes it (for `tandem arf inspect`).
    pub fn summary(&mut self) -> Result<Summary, ArfError> {
        self.summary_within(&Limits::default())
    }

    /// Like `summary`, failing with `ArfError::OverLimit` at the first record that breaks
    /// `limits` (without reading further).
    pub fn summary_within(&mut self, limits: &Limits) -> Result<Summary, ArfError> {
        let mut stats = SummaryBuilder::default();
        let mut check = LimitCheck::new(*limits);
        let (index, end) = self.scan(|r| {
            check.record(r)?;
            stats.record(r);
            Ok(())
        })?;
        if self.index.is_none() {
            self.index = Some(index.clone());
            self.index_source = Some(IndexSource::Rebuilt);
            self.end = Some(end);
        }
        let source = self.index_source.unwrap_or(IndexSource::Rebuilt);
        Ok(stats.finish(self.header.clone(), self.io.file_len, &index, end, source))
    }

    fn reposition(&mut self, offset: u64) {
        self.pending.clear();
        self.done = false;
        self.seq = match offset == self.data_start {
            true => Seq::from_start(offset),
            // Track declarations before this point are not seen, so the track rules cannot be
            // checked; the checksums and the block structure still are.
            false => Seq {
                pos: offset,
                prev_last_us: None,
                check: None,
            },
        };
    }

    /// Reads every block from the start with all checks, independent of the iteration position.
    fn scan(
        &mut self,
        mut visit: impl FnMut(&Record) -> Result<(), ArfError>,
    ) -> Result<(Index, DataEnd), ArfError> {
        let mut seq = Seq::from_start(self.data_start);
        loop {
            match self.io.next_block(&mut seq)? {
                Next::Records(records) => records.iter().try_for_each(&mut visit)?,
                Next::End(end) => {
                    let index = seq.check.take().unwrap_or_default().finish(end.offset);
                    return Ok((index, end));
                }
            }
        }
    }
}

/// Iterator over records; yields an error at most once, then ends.
pub struct Records<'a, R> {
    reader: &'a mut Reader<R>,
}

impl<R: Read + Seek> Iterator for Records<'_, R> {
    type Item = Result<Record, ArfError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.reader.next_record().transpose()
    }
}

/// State of one sequential pass over the blocks.
struct Seq {
    pos: u64,
    prev_last_us: Option<u64>,
    /// Track rules and index building, for a pass that started at the first block.
    check: Option<IndexBuilder>,
}

impl Seq {
    fn from_start(data_start: u64) -> Self {
        Seq {
            pos: data_start,
            prev_last_us: None,
            check: Some(IndexBuilder::default()),
        }
    }
}

enum Next {
    Records(Vec<Record>),
    End(DataEnd),
}

enum Step {
    Block { head: BlockHeader, next: u64 },
    End(DataEnd),
}

/// Positioned reads of blocks, and the decisions about where the data ends.
struct BlockIo<R> {
    src: R,
    /// Where `src` is, to skip a seek (which empties a `BufReader`) on sequential reads.
    src_pos: Option<u64>,
    file_len: u64,
    /// From a valid trailer: everything before it was written by a clean close, so any damage
    /// there is an error, never a torn tail.
    data_end: Option<u64>,
    /// The last block's body, reused between blocks.
    buf: Vec<u8>,
}

impl<R: Read + Seek> BlockIo<R> {
    fn read_at(
        src: &mut R,
        src_pos: &mut Option<u64>,
        offset: u64,
        out: &mut [u8],
    ) -> std::io::Result<()> {
        if *src_pos != Some(offset) {
            *src_pos = None;
            src.seek(SeekFrom::Start(offset))?;
        }
        *src_pos = None;
        src.read_exact(out)?;
        *src_pos = Some(offset + out.len() as u64);
        Ok(())
    }

    fn read_exact_at(&mut self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        Self::read_at(&mut self.src, &mut self.src_pos, offset, out)
    }

    /// Whether the file holds only zero bytes from `offset` on: what a power cut can leave
    /// after the last block when the file's size was updated but its data was not.
    fn zeros_from(&mut self, offset: u64) -> std::io::Result<bool> {
        let mut chunk = [0u8; 8192];
        let mut at = offset;
        while at < self.file_len {
            let n = usize::try_from(self.file_len - at).map_or(chunk.len(), |r| r.min(chunk.len()));
            self.read_exact_at(at, &mut chunk[..n])?;
            if chunk[..n].iter().any(|&b| b != 0) {
                return Ok(false);
            }
            at += n as u64;
        }
        Ok(true)
    }

    fn read_trailer(&mut self, data_start: u64) -> std::io::Result<Option<Index>> {
        let overhead = (TRAILER_HEADER_LEN + FOOTER_LEN) as u64;
        if self.file_len < data_start + overhead {
            return Ok(None);
        }
        let footer_at = self.file_len - FOOTER_LEN as u64;
        let mut footer = [0u8; FOOTER_LEN];
        self.read_exact_at(footer_at, &mut footer)?;
        let Some(trailer_at) = format::decode_footer(&footer) else {
            return Ok(None);
        };
        if trailer_at < data_start || trailer_at > footer_at - TRAILER_HEADER_LEN as u64 {
            return Ok(None);
        }
        let mut head = [0u8; TRAILER_HEADER_LEN];
        self.read_exact_at(trailer_at, &mut head)?;
        let Some((len, sum)) = format::decode_trailer_header(&head) else {
            return Ok(None);
        };
        if trailer_at + (TRAILER_HEADER_LEN + len) as u64 != footer_at {
            return Ok(None);
        }
        // `len` is at most MAX_TRAILER_BODY and matches the bytes present.
        let mut body = vec![0u8; len];
        self.read_exact_at(trailer_at + TRAILER_HEADER_LEN as u64, &mut body)?;
        if format::crc(&body) != sum {
            return Ok(None);
        }
        Ok(format::decode_trailer(&body, data_start, trailer_at))
    }

    /// Reads the block at `offset` into `buf`, or finds that the good data ends there.
    ///
    /// Without a trailer, these count as a torn tail (the end, with `truncated`): a file that
    /// ends inside a block, a block followed only by zero bytes whose header or body checksum
    /// fails, a complete last block whose body checksum fails, and a trailer without a valid
    /// footer. Anything else that fails a check is damage in the middle: an error.
    fn read_block(&mut self, offset: u64) -> Result<Step, ArfError> {
        let trusted = self.data_end.is_some();
        let limit = self.data_end.unwrap_or(self.file_len);
        let corrupt = |reason| ArfError::CorruptBlock { offset, reason };
        let torn = Ok(Step::End(DataEnd {
            offset,
            truncated: true,
        }));
        if offset >= limit {
            return match offset == limit {
                true => Ok(Step::End(DataEnd {
                    offset,
                    truncated: false,
                })),
                false => Err(corrupt("block runs past the trailer")),
            };
        }
        let mut head = [0u8; BLOCK_HEADER_LEN];
        let n =
            usize::try_from(limit - offset).map_or(BLOCK_HEADER_LEN, |r| r.min(BLOCK_HEADER_LEN));
        self.read_exact_at(offset, &mut head[..n])?;
        if !trusted && n >= 4 && head[..4] == format::TRAILER_TAG {
            // A trailer whose footer did not check out: killed while closing, or damaged.
            return torn;
        }
        if n < BLOCK_HEADER_LEN {
            return if trusted {
                Err(corrupt("block header runs past the trailer"))
            } else {
                torn
            };
        }
        let head = match format::decode_block_header(&head) {
            HeaderCheck::Ok(head) => head,
            bad => {
                if !trusted && self.zeros_from(offset)? {
                    return torn;
                }
                return Err(corrupt(match bad {
                    HeaderCheck::BadTag => "bad block tag",
                    _ => "block header checksum mismatch",
                }));
            }
        };
        // The header checksum matched, so these were written this way: not a torn tail.
        if head.body_len as usize > format::MAX_BLOCK_BODY {
            return Err(corrupt("block length over the limit"));
        }
        if head.count == 0 || head.first_us > head.last_us {
            return Err(corrupt("inconsistent block header"));
        }
        let next = offset + (BLOCK_HEADER_LEN as u64) + u64::from(head.body_len);
        if next > limit {
            return if trusted {
                Err(corrupt("block runs past the trailer"))
            } else {
                torn
            };
        }
        // Bounded by MAX_BLOCK_BODY and by the bytes present in the file.
        self.buf.resize(head.body_len as usize, 0);
        Self::read_at(
            &mut self.src,
            &mut self.src_pos,
            offset + BLOCK_HEADER_LEN as u64,
            &mut self.buf,
        )?;
        if format::crc(&self.buf) != head.body_crc {
            if !trusted && (next == limit || self.zeros_from(next)?) {
                return torn;
            }
            return Err(corrupt("block checksum mismatch"));
        }
        Ok(Step::Block { head, next })
    }

    /// The header of the block at `offset` and the next block's offset, if a valid header is
    /// there; for walking blocks without reading their bodies.
    fn peek_header(&mut self, offset: u64) -> Result<Option<(BlockHeader, u64)>, ArfError> {
        let limit = self.data_end.unwrap_or(self.file_len);
        if limit.saturating_sub(offset) < BLOCK_HEADER_LEN as u64 {
            return Ok(None);
        }
        let mut head = [0u8; BLOCK_HEADER_LEN];
        self.read_exact_at(offset, &mut head)?;
        Ok(match format::decode_block_header(&head) {
            HeaderCheck::Ok(h) => Some((
                h,
                offset + (BLOCK_HEADER_LEN as u64) + u64::from(h.body_len),
            )),
            _ => None,
        })
    }

    fn next_block(&mut self, seq: &mut Seq) -> Result<Next, ArfError> {
        let offset = seq.pos;
        let (head, next) = match self.read_block(offset)? {
            Step::End(end) => return Ok(Next::End(end)),
            Step::Block { head, next } => (head, next),
        };
        if seq.prev_last_us.is_some_and(|prev| head.first_us < prev) {
            return Err(ArfError::CorruptBlock {
                offset,
                reason: "arrival time goes back from the previous block",
            });
        }
        let records = format::decode_block(&self.buf, offset, &head)?;
        if let Some(check) = &mut seq.check {
            check_tracks(check, &records)?;
            check.block(offset, head.first_us, head.last_us, head.count);
        }
        seq.pos = next;
        seq.prev_last_us = Some(head.last_us);
        Ok(Next::Records(records.into_iter().map(|(_, r)| r).collect()))
    }
}

/// Applies the track rules to a block's records, in order, feeding the index builder.
fn check_tracks(check: &mut IndexBuilder, records: &[(u64, Record)]) -> Result<(), ArfError> {
    for (offset, record) in records {
        let bad = |p: crate::index::TrackProblem| ArfError::BadRecord {
            offset: *offset,
            reason: p.reason(),
        };
        match record {
            Record::Track { at_us, track } => {
                check.check_declare(track.id).map_err(bad)?;
                check.declare(*at_us, track);
            }
            Record::Media(m) => {
                check.check_use(m.track).map_err(bad)?;
                check.media(m.track, m.at_us, m.keyframe);
            }
            Record::TrackEnded { at_us, track } => {
                check.check_use(*track).map_err(bad)?;
                check.end(*at_us, *track);
            }
            Record::Event(_) => {}
        }
    }
    Ok(())
}
