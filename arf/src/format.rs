//! The byte layout of ARF (specified in docs/arf.md): constants, limits, and the encoding and
//! decoding of each part. No IO here; the writer and the reader move the bytes.
//!
//! All integers are little-endian and fixed-width. Every length read from a file is checked
//! against a limit and against the bytes actually present before anything is allocated for it.

use crate::error::ArfError;
use crate::index::{Index, IndexEntry, TrackEntry};
use crate::record::{Codec, Event, Header, Media, Record, Track, TrackKind};

/// PNG-style: the high byte and the CR LF / LF pair reveal 7-bit and newline-translating copies.
pub const FILE_MAGIC: [u8; 8] = *b"\x89ARF\r\n\x1a\n";
/// The only version this crate writes and reads. The magic and this field keep their place in
/// every future version, so any reader can tell which version it is looking at.
pub const VERSION: u16 = 1;
pub(crate) const BLOCK_TAG: [u8; 4] = *b"ARFB";
pub(crate) const TRAILER_TAG: [u8; 4] = *b"ARFI";
pub(crate) const FOOTER_MAGIC: [u8; 8] = *b"\x89ARFEND\n";

/// Magic, version, header body length.
pub(crate) const FILE_PREFIX_LEN: usize = 14;
/// Tag, body length, record count, first and last arrival time, body CRC, header CRC.
pub const BLOCK_HEADER_LEN: usize = 36;
/// Type, body length, arrival time.
pub(crate) const RECORD_HEADER_LEN: usize = 13;
/// Tag, body length, body CRC.
pub(crate) const TRAILER_HEADER_LEN: usize = 12;
/// Trailer offset, its CRC, footer magic.
pub(crate) const FOOTER_LEN: usize = 20;

/// Recording and session ids are UUIDs; 256 leaves room for other id schemes.
pub const MAX_ID: usize = 256;
pub const MAX_LABEL: usize = 256;
pub const MAX_EVENT_KIND: usize = 255;
/// Metadata is a small JSON object; 1 MiB bounds what a reader allocates for a header.
pub const MAX_METADATA: usize = 1 << 20;
pub(crate) const MAX_HEADER_BODY: usize = 2 + MAX_ID + 2 + MAX_ID + 8 + 4 + MAX_METADATA;
/// A record body: far above a 640x360 keyframe (tens of KiB) or a 4K one (a few MiB).
pub const MAX_RECORD_BODY: usize = 8 << 20;
/// A block body: one maximal record plus a full buffer fits, with room to spare.
pub const MAX_BLOCK_BODY: usize = 16 << 20;
/// The trailer's index: about 16 bytes per second plus 16 per keyframe block, so 64 MiB covers
/// days of recording.
pub(crate) const MAX_TRAILER_BODY: usize = 64 << 20;

pub(crate) mod kind {
    pub const TRACK: u8 = 0x01;
    pub const MEDIA: u8 = 0x02;
    pub const EVENT: u8 = 0x03;
    pub const TRACK_ENDED: u8 = 0x04;
    /// Types from here up may be skipped by a reader that does not know them (PNG's ancillary
    /// chunks): a writer can add optional information without a new version.
    pub const FIRST_OPTIONAL: u8 = 0x80;
}

const FLAG_KEYFRAME: u8 = 0x01;
/// `ended_us` of a track that has not ended, in the trailer.
const NOT_ENDED: u64 = u64::MAX;

pub(crate) fn crc(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

fn put_u16(buf: &mut Vec<u8>, v: u16) {
    buf.extend_from_slice(&v.to_le_bytes());
}
fn put_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_le_bytes());
}
fn put_u64(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(&v.to_le_bytes());
}

/// Checks a length against its limit, and makes it the width of its length field.
fn checked_len<T: TryFrom<usize>>(
    what: &'static str,
    len: usize,
    max: usize,
) -> Result<T, ArfError> {
    if len > max {
        return Err(ArfError::TooLarge { what, len, max });
    }
    T::try_from(len).map_err(|_| ArfError::TooLarge { what, len, max })
}

/// A bounds-checked little-endian cursor: every read returns `None` past the end, never panics.
pub(crate) struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Dec<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Dec { buf, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.bytes(N)?.try_into().ok()
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        Some(self.array::<1>()?[0])
    }
    pub(crate) fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.array()?))
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.array()?))
    }

    /// UTF-8 text of `len` bytes, refused over `max`.
    fn text(&mut self, len: usize, max: usize) -> Option<&'a str> {
        if len > max {
            return None;
        }
        std::str::from_utf8(self.bytes(len)?).ok()
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }
}

// ---- file header ----

pub(crate) fn encode_header(h: &Header) -> Result<Vec<u8>, ArfError> {
    let rec: u16 = checked_len("recording id", h.recording_id.len(), MAX_ID)?;
    let ses: u16 = checked_len("session id", h.session_id.len(), MAX_ID)?;
    let meta: u32 = checked_len("metadata", h.metadata.len(), MAX_METADATA)?;
    let mut body = Vec::new();
    put_u16(&mut body, rec);
    body.extend_from_slice(h.recording_id.as_bytes());
    put_u16(&mut body, ses);
    body.extend_from_slice(h.session_id.as_bytes());
    put_u64(&mut body, h.start_unix_ms);
    put_u32(&mut body, meta);
    body.extend_from_slice(h.metadata.as_bytes());

    let mut out = Vec::with_capacity(FILE_PREFIX_LEN + body.len() + 4);
    out.extend_from_slice(&FILE_MAGIC);
    put_u16(&mut out, VERSION);
    put_u32(
        &mut out,
        checked_len("header", body.len(), MAX_HEADER_BODY)?,
    );
    out.extend_from_slice(&body);
    let sum = crc(&out);
    put_u32(&mut out, sum);
    Ok(out)
}

/// What the first bytes of a file say: either the length of the header body that follows, or
/// why there is no usable header. `file_len` is the whole file's length.
pub(crate) fn decode_prefix(prefix: &[u8], file_len: u64) -> Result<usize, ArfError> {
    let magic_len = prefix.len().min(FILE_MAGIC.len());
    if prefix[..magic_len] != FILE_MAGIC[..magic_len] {
        return Err(ArfError::BadMagic);
    }
    let mut d = Dec::new(prefix);
    let (Some(_), Some(version)) = (d.bytes(FILE_MAGIC.len()), d.u16()) else {
        return Err(ArfError::Truncated { offset: file_len });
    };
    if version != VERSION {
        return Err(ArfError::UnsupportedVersion { found: version });
    }
    let Some(len) = d.u32() else {
        return Err(ArfError::Truncated { offset: file_len });
    };
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > MAX_HEADER_BODY {
        return Err(ArfError::BadHeader {
            reason: "header length over the limit",
        });
    }
    Ok(len)
}

/// Decodes the header from the prefix, body and CRC (`whole` = all of them, in file order).
pub(crate) fn decode_header(whole: &[u8]) -> Result<Header, ArfError> {
    let bad = |reason| ArfError::BadHeader { reason };
    let (covered, sum) = whole.split_at(whole.len().saturating_sub(4));
    let sum: [u8; 4] = sum.try_into().map_err(|_| bad("too short"))?;
    if crc(covered) != u32::from_le_bytes(sum) {
        return Err(bad("checksum mismatch"));
    }
    let mut d = Dec::new(covered.get(FILE_PREFIX_LEN..).ok_or(bad("too short"))?);
    let field = |d: &mut Dec<'_>, max: usize, wide: bool| -> Option<String> {
        let len = if wide {
            d.u32()? as usize
        } else {
            usize::from(d.u16()?)
        };
        d.text(len, max).map(str::to_owned)
    };
    let recording_id = field(&mut d, MAX_ID, false).ok_or(bad("bad recording id"))?;
    let session_id = field(&mut d, MAX_ID, false).ok_or(bad("bad session id"))?;
    let start_unix_ms = d.u64().ok_or(bad("no start time"))?;
    let metadata = field(&mut d, MAX_METADATA, true).ok_or(bad("bad metadata"))?;
    // Bytes after the known fields are left for future minor additions.
    Ok(Header {
        recording_id,
        session_id,
        start_unix_ms,
        metadata,
    })
}

// ---- blocks ----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockHeader {
    pub body_len: u32,
    pub count: u32,
    pub first_us: u64,
    pub last_us: u64,
    pub body_crc: u32,
}

/// Fills the header of a block whose body is `block[BLOCK_HEADER_LEN..]`. The header has its own
/// CRC so that a damaged length is recognised as damage rather than taken for a torn tail.
pub(crate) fn seal_block(block: &mut [u8], count: u32, first_us: u64, last_us: u64) {
    let body_len = (block.len() - BLOCK_HEADER_LEN) as u32;
    let body_crc = crc(&block[BLOCK_HEADER_LEN..]);
    let mut head = Vec::with_capacity(BLOCK_HEADER_LEN);
    head.extend_from_slice(&BLOCK_TAG);
    put_u32(&mut head, body_len);
    put_u32(&mut head, count);
    put_u64(&mut head, first_us);
    put_u64(&mut head, last_us);
    put_u32(&mut head, body_crc);
    let head_crc = crc(&head);
    put_u32(&mut head, head_crc);
    block[..BLOCK_HEADER_LEN].copy_from_slice(&head);
}

pub(crate) enum HeaderCheck {
    Ok(BlockHeader),
    BadTag,
    BadChecksum,
}

pub(crate) fn decode_block_header(head: &[u8; BLOCK_HEADER_LEN]) -> HeaderCheck {
    if head[..4] != BLOCK_TAG {
        return HeaderCheck::BadTag;
    }
    let mut d = Dec::new(&head[4..]);
    let (Some(body_len), Some(count), Some(first_us), Some(last_us), Some(body_crc), Some(sum)) =
        (d.u32(), d.u32(), d.u64(), d.u64(), d.u32(), d.u32())
    else {
        return HeaderCheck::BadTag;
    };
    if crc(&head[..BLOCK_HEADER_LEN - 4]) != sum {
        return HeaderCheck::BadChecksum;
    }
    HeaderCheck::Ok(BlockHeader {
        body_len,
        count,
        first_us,
        last_us,
        body_crc,
    })
}

// ---- records ----

fn put_record_header(buf: &mut Vec<u8>, kind: u8, body_len: u32, at_us: u64) {
    buf.push(kind);
    put_u32(buf, body_len);
    put_u64(buf, at_us);
}

pub(crate) fn encode_track(buf: &mut Vec<u8>, at_us: u64, t: &Track) -> Result<(), ArfError> {
    let label: u16 = checked_len("track label", t.label.len(), MAX_LABEL)?;
    put_record_header(buf, kind::TRACK, 10 + u32::from(label), at_us);
    put_u16(buf, t.id);
    buf.push(t.kind.id());
    buf.push(t.codec.id());
    put_u32(buf, t.clock_rate);
    put_u16(buf, label);
    buf.extend_from_slice(t.label.as_bytes());
    Ok(())
}

/// Size check for `encode_media`, separate so the writer can refuse before cutting a block.
pub(crate) fn media_body_len(payload: usize) -> Result<u32, ArfError> {
    checked_len("media payload", payload, MAX_RECORD_BODY - 11).map(|n: u32| n + 11)
}

pub(crate) fn encode_media(buf: &mut Vec<u8>, m: MediaRef<'_>, body_len: u32) {
    put_record_header(buf, kind::MEDIA, body_len, m.at_us);
    put_u16(buf, m.track);
    buf.push(if m.keyframe { FLAG_KEYFRAME } else { 0 });
    put_u64(buf, m.media_ts);
    buf.extend_from_slice(m.payload);
}

/// A media record borrowed from the caller, so the writer copies the payload only once.
#[derive(Clone, Copy)]
pub(crate) struct MediaRef<'a> {
    pub track: u16,
    pub at_us: u64,
    pub media_ts: u64,
    pub keyframe: bool,
    pub payload: &'a [u8],
}

pub(crate) fn event_body_len(kind_len: usize, json_len: usize) -> Result<u32, ArfError> {
    let k: u8 = checked_len("event kind", kind_len, MAX_EVENT_KIND)?;
    checked_len("event json", json_len, MAX_RECORD_BODY - 1 - usize::from(k))
        .map(|j: u32| j + 1 + u32::from(k))
}

pub(crate) fn encode_event(buf: &mut Vec<u8>, at_us: u64, kind_s: &str, json: &str, body_len: u32) {
    put_record_header(buf, kind::EVENT, body_len, at_us);
    buf.push(kind_s.len() as u8); // checked by event_body_len
    buf.extend_from_slice(kind_s.as_bytes());
    buf.extend_from_slice(json.as_bytes());
}

pub(crate) fn encode_track_ended(buf: &mut Vec<u8>, at_us: u64, track: u16) {
    put_record_header(buf, kind::TRACK_ENDED, 2, at_us);
    put_u16(buf, track);
}

/// Decodes the records of a block body whose CRC matched, each with its offset in the file
/// (`block_offset` is the block's). Optional record types this reader does not know are skipped.
pub(crate) fn decode_block(
    body: &[u8],
    block_offset: u64,
    head: &BlockHeader,
) -> Result<Vec<(u64, Record)>, ArfError> {
    let body_offset = block_offset + BLOCK_HEADER_LEN as u64;
    let corrupt = |reason| ArfError::CorruptBlock {
        offset: block_offset,
        reason,
    };
    let mut d = Dec::new(body);
    let mut out = Vec::new();
    let mut prev_us = head.first_us;
    for i in 0..head.count {
        let at = body_offset + d.pos() as u64;
        let bad = |reason| ArfError::BadRecord { offset: at, reason };
        let (Some(kind), Some(len), Some(at_us)) = (d.u8(), d.u32(), d.u64()) else {
            return Err(corrupt("fewer records than its count"));
        };
        let len = len as usize;
        if len > MAX_RECORD_BODY {
            return Err(bad("record length over the limit"));
        }
        let Some(rec_body) = d.bytes(len) else {
            return Err(bad("record runs past the end of its block"));
        };
        if at_us < prev_us || at_us > head.last_us {
            return Err(bad(
                "arrival time out of order or outside its block's range",
            ));
        }
        if i == 0 && at_us != head.first_us {
            return Err(corrupt("first arrival time differs from the block header"));
        }
        if i + 1 == head.count && at_us != head.last_us {
            return Err(corrupt("last arrival time differs from the block header"));
        }
        prev_us = at_us;
        if let Some(r) = decode_record(kind, at_us, rec_body, at)? {
            out.push((at, r));
        }
    }
    if d.remaining() != 0 {
        return Err(corrupt("bytes after its last record"));
    }
    Ok(out)
}

fn decode_record(
    kind: u8,
    at_us: u64,
    body: &[u8],
    offset: u64,
) -> Result<Option<Record>, ArfError> {
    let bad = |reason| ArfError::BadRecord { offset, reason };
    let mut d = Dec::new(body);
    let rec = match kind {
        kind::TRACK => Record::Track {
            at_us,
            track: decode_track(&mut d, offset)?,
        },
        kind::MEDIA => {
            let (Some(track), Some(flags), Some(media_ts)) = (d.u16(), d.u8(), d.u64()) else {
                return Err(bad("media record too short"));
            };
            Record::Media(Media {
                track,
                at_us,
                media_ts,
                keyframe: flags & FLAG_KEYFRAME != 0,
                payload: d.rest().to_vec(),
            })
        }
        kind::EVENT => {
            let len = d.u8().ok_or(bad("event record too short"))?;
            let kind_s = d
                .text(usize::from(len), MAX_EVENT_KIND)
                .ok_or(bad("bad event kind"))?;
            let json = std::str::from_utf8(d.rest()).map_err(|_| bad("event text is not UTF-8"))?;
            Record::Event(Event {
                at_us,
                kind: kind_s.to_owned(),
                json: json.to_owned(),
            })
        }
        kind::TRACK_ENDED => {
            let track = d.u16().ok_or(bad("track-ended record too short"))?;
            Record::TrackEnded { at_us, track }
        }
        k if k >= kind::FIRST_OPTIONAL => return Ok(None),
        k => return Err(ArfError::UnknownRecord { offset, kind: k }),
    };
    Ok(Some(rec))
}

/// The track fields shared by track records and the trailer. Extra bytes after them are
/// allowed, for future additions.
fn decode_track(d: &mut Dec<'_>, offset: u64) -> Result<Track, ArfError> {
    let bad = |reason| ArfError::BadRecord { offset, reason };
    let (Some(id), Some(kind_id), Some(codec_id), Some(clock_rate), Some(label_len)) =
        (d.u16(), d.u8(), d.u8(), d.u32(), d.u16())
    else {
        return Err(bad("track record too short"));
    };
    let label = d
        .text(usize::from(label_len), MAX_LABEL)
        .ok_or(bad("bad track label"))?;
    let kind = TrackKind::from_id(kind_id).ok_or(bad("unknown track kind"))?;
    let codec = Codec::from_id(codec_id).ok_or(ArfError::UnknownCodec {
        offset,
        codec: codec_id,
    })?;
    if codec.kind() != kind {
        return Err(bad("codec does not match the track kind"));
    }
    if clock_rate == 0 {
        return Err(bad("zero clock rate"));
    }
    Ok(Track {
        id,
        kind,
        codec,
        clock_rate,
        label: label.to_owned(),
    })
}

// ---- trailer and footer ----

/// The trailer (tag, length, CRC, index) followed by the footer that points back at it.
pub(crate) fn encode_trailer(index: &Index) -> Vec<u8> {
    let mut body = Vec::new();
    put_u64(&mut body, index.data_end);
    put_u64(&mut body, index.blocks);
    put_u64(&mut body, index.records);
    put_u64(&mut body, index.last_us);
    put_u32(&mut body, index.tracks.len() as u32);
    for t in &index.tracks {
        put_u16(&mut body, t.track.id);
        body.push(t.track.kind.id());
        body.push(t.track.codec.id());
        put_u32(&mut body, t.track.clock_rate);
        // The writer refused longer labels.
        put_u16(&mut body, t.track.label.len() as u16);
        body.extend_from_slice(t.track.label.as_bytes());
        put_u64(&mut body, t.declared_us);
        put_u64(&mut body, t.ended_us.unwrap_or(NOT_ENDED));
    }
    let put_entries = |body: &mut Vec<u8>, entries: &[IndexEntry]| {
        put_u32(body, entries.len() as u32);
        for e in entries {
            put_u64(body, e.at_us);
            put_u64(body, e.offset);
        }
    };
    put_entries(&mut body, &index.time);
    put_u32(&mut body, index.keyframes.len() as u32);
    for (track, entries) in &index.keyframes {
        put_u16(&mut body, *track);
        put_entries(&mut body, entries);
    }

    let mut out = Vec::with_capacity(TRAILER_HEADER_LEN + body.len() + FOOTER_LEN);
    out.extend_from_slice(&TRAILER_TAG);
    put_u32(&mut out, body.len() as u32);
    put_u32(&mut out, crc(&body));
    out.extend_from_slice(&body);
    let offset = index.data_end.to_le_bytes();
    out.extend_from_slice(&offset);
    put_u32(&mut out, crc(&offset));
    out.extend_from_slice(&FOOTER_MAGIC);
    out
}

/// The trailer offset a footer points at, if it is a footer.
pub(crate) fn decode_footer(footer: &[u8; FOOTER_LEN]) -> Option<u64> {
    let mut d = Dec::new(footer);
    let offset_bytes = d.bytes(8)?;
    let sum = d.u32()?;
    if d.rest() != FOOTER_MAGIC || crc(offset_bytes) != sum {
        return None;
    }
    Some(u64::from_le_bytes(offset_bytes.try_into().ok()?))
}

/// The trailer body length from its header, if the header is a trailer header.
pub(crate) fn decode_trailer_header(head: &[u8; TRAILER_HEADER_LEN]) -> Option<(usize, u32)> {
    let mut d = Dec::new(head);
    if d.bytes(4)? != TRAILER_TAG {
        return None;
    }
    let len = d.u32()? as usize;
    let sum = d.u32()?;
    (len <= MAX_TRAILER_BODY).then_some((len, sum))
}

/// Decodes a trailer body whose CRC matched. Anything inconsistent makes it `None`: the reader
/// then rebuilds the index by scanning, which is slower but needs no trust in the trailer.
pub(crate) fn decode_trailer(body: &[u8], data_start: u64, data_end: u64) -> Option<Index> {
    let mut d = Dec::new(body);
    let mut index = Index {
        data_end: d.u64()?,
        blocks: d.u64()?,
        records: d.u64()?,
        last_us: d.u64()?,
        ..Index::default()
    };
    if index.data_end != data_end {
        return None;
    }
    let in_data = |offset: u64| offset >= data_start && offset < data_end;
    let n_tracks = d.u32()? as usize;
    for _ in 0..n_tracks {
        let track = decode_track(&mut d, 0).ok()?;
        let declared_us = d.u64()?;
        let ended_us = Some(d.u64()?).filter(|&t| t != NOT_ENDED);
        if index.tracks.iter().any(|t| t.track.id == track.id) {
            return None;
        }
        index.tracks.push(TrackEntry {
            track,
            declared_us,
            ended_us,
        });
    }
    let entries = |d: &mut Dec<'_>| -> Option<Vec<IndexEntry>> {
        let n = d.u32()? as usize;
        // Checked against the bytes present before allocating.
        if n.checked_mul(16)? > d.remaining() {
            return None;
        }
        let mut out: Vec<IndexEntry> = Vec::with_capacity(n);
        for _ in 0..n {
            let e = IndexEntry {
                at_us: d.u64()?,
                offset: d.u64()?,
            };
            let ordered = out
                .last()
                .is_none_or(|p| p.at_us <= e.at_us && p.offset < e.offset);
            if !in_data(e.offset) || !ordered {
                return None;
            }
            out.push(e);
        }
        Some(out)
    };
    index.time = entries(&mut d)?;
    let n_kf = d.u32()? as usize;
    for _ in 0..n_kf {
        let track = d.u16()?;
        let list = entries(&mut d)?;
        let is_video = index
            .tracks
            .iter()
            .any(|t| t.track.id == track && t.track.kind == TrackKind::Video);
        if !is_video || index.keyframes.insert(track, list).is_some() {
            return None;
        }
    }
    (d.remaining() == 0).then_some(index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::IndexBuilder;

    fn header() -> Header {
        Header {
            recording_id: "rec".into(),
            session_id: "ses".into(),
            start_unix_ms: 42,
            metadata: "{\"a\":1}".into(),
        }
    }

    #[test]
    fn header_round_trips_and_every_prefix_is_truncated() {
        let bytes = encode_header(&header()).expect("encode");
        let len = decode_prefix(&bytes[..FILE_PREFIX_LEN], bytes.len() as u64).expect("prefix");
        assert_eq!(FILE_PREFIX_LEN + len + 4, bytes.len());
        assert_eq!(decode_header(&bytes).expect("decode"), header());
        for cut in 0..FILE_PREFIX_LEN {
            let err = decode_prefix(&bytes[..cut], cut as u64).expect_err("short");
            assert_eq!(err.code(), "truncated", "cut {cut}");
        }
    }

    #[test]
    fn header_limits_are_enforced_on_write() {
        let mut h = header();
        h.session_id = "s".repeat(MAX_ID + 1);
        assert_eq!(encode_header(&h).expect_err("long").code(), "too_large");
        let mut h = header();
        h.metadata = "m".repeat(MAX_METADATA);
        assert!(encode_header(&h).is_ok());
    }

    #[test]
    fn decoder_returns_none_past_the_end() {
        let mut d = Dec::new(&[1, 2, 3]);
        assert_eq!(d.u16(), Some(0x0201));
        assert_eq!(d.u16(), None);
        assert_eq!(d.u8(), Some(3));
        assert_eq!(d.bytes(usize::MAX), None);
        assert_eq!(d.rest(), &[] as &[u8]);
    }

    #[test]
    fn block_header_checks_tag_and_checksum() {
        let mut block = vec![0u8; BLOCK_HEADER_LEN];
        encode_event(
            &mut block,
            5,
            "chat",
            "{}",
            event_body_len(4, 2).expect("len"),
        );
        seal_block(&mut block, 1, 5, 5);
        let head: [u8; BLOCK_HEADER_LEN] = block[..BLOCK_HEADER_LEN].try_into().expect("36 bytes");
        let HeaderCheck::Ok(h) = decode_block_header(&head) else {
            panic!("valid header")
        };
        assert_eq!((h.count, h.first_us, h.last_us), (1, 5, 5));
        let records = decode_block(&block[BLOCK_HEADER_LEN..], 100, &h).expect("decode");
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].0, 100 + BLOCK_HEADER_LEN as u64);
        let mut bad = head;
        bad[0] = b'X';
        assert!(matches!(decode_block_header(&bad), HeaderCheck::BadTag));
        let mut bad = head;
        bad[5] ^= 1;
        assert!(matches!(
            decode_block_header(&bad),
            HeaderCheck::BadChecksum
        ));
    }

    #[test]
    fn block_body_must_match_its_header() {
        let mut block = vec![0u8; BLOCK_HEADER_LEN];
        encode_track_ended(&mut block, 7, 1);
        encode_track_ended(&mut block, 9, 1);
        let body = block[BLOCK_HEADER_LEN..].to_vec();
        let head = |count, first_us, last_us| BlockHeader {
            body_len: 0,
            count,
            first_us,
            last_us,
            body_crc: 0,
        };
        assert!(decode_block(&body, 0, &head(2, 7, 9)).is_ok());
        let code = |h| decode_block(&body, 0, &h).expect_err("mismatch").code();
        assert_eq!(code(head(3, 7, 9)), "corrupt_block");
        assert_eq!(code(head(1, 7, 7)), "corrupt_block");
        assert_eq!(code(head(2, 6, 9)), "corrupt_block");
        assert_eq!(code(head(2, 7, 8)), "bad_record");
    }

    #[test]
    fn optional_records_are_skipped_and_unknown_required_ones_refused() {
        let mut body = Vec::new();
        put_record_header(&mut body, 0x90, 3, 1);
        body.extend_from_slice(b"abc");
        let head = BlockHeader {
            body_len: 0,
            count: 1,
            first_us: 1,
            last_us: 1,
            body_crc: 0,
        };
        assert_eq!(decode_block(&body, 0, &head).expect("skipped").len(), 0);
        body[0] = 0x10;
        let err = decode_block(&body, 0, &head).expect_err("unknown");
        assert_eq!(err.code(), "unknown_record");
        assert_eq!(err.offset(), Some(BLOCK_HEADER_LEN as u64));
    }

    #[test]
    fn trailer_round_trips_and_refuses_inconsistent_indexes() {
        let mut b = IndexBuilder::default();
        let screen = Track::new(3, Codec::Vp8, 90_000, "screen-x");
        b.declare(0, &screen);
        b.media(3, 10, true);
        b.block(100, 0, 10, 2);
        b.end(2_500_000, 3);
        b.block(200, 2_500_000, 2_500_000, 1);
        let index = b.finish(300);
        let bytes = encode_trailer(&index);
        let body = &bytes[TRAILER_HEADER_LEN..bytes.len() - FOOTER_LEN];
        assert_eq!(decode_trailer(body, 100, 300), Some(index.clone()));
        assert_eq!(
            decode_trailer(body, 100, 299),
            None,
            "data end must be the trailer's offset"
        );
        assert_eq!(
            decode_trailer(body, 150, 300),
            None,
            "offsets inside the data"
        );
        let footer: [u8; FOOTER_LEN] = bytes[bytes.len() - FOOTER_LEN..]
            .try_into()
            .expect("20 bytes");
        assert_eq!(decode_footer(&footer), Some(300));
        let mut unsorted = index;
        unsorted.time.reverse();
        let bytes = encode_trailer(&unsorted);
        assert_eq!(
            decode_trailer(
                &bytes[TRAILER_HEADER_LEN..bytes.len() - FOOTER_LEN],
                100,
                300
            ),
            None
        );
    }
}
