//! Round trips, torn tails at every cut, damage in the middle, seeking, and the index.

use std::io::Cursor;

use proptest::prelude::*;
use tandem_arf::{
    ArfError, Codec, DataEnd, Event, Header, IndexSource, Media, Reader, Record, Track, TrackKind,
    Writer, WriterConfig,
};

fn header() -> Header {
    Header {
        recording_id: "5f0c9a7e-8d7b-4c62-9a51-6a3f1c2b9e10".into(),
        session_id: "0b8e2a3c-1d4f-4e5a-8b6c-7d8e9f0a1b2c".into(),
        start_unix_ms: 1_764_000_000_000,
        metadata: r#"{"started_by":"carol","auto":false}"#.into(),
    }
}

/// One step of a generated recording.
#[derive(Clone, Debug)]
enum Op {
    Track(u8),
    Media {
        pick: u16,
        dt: u32,
        key: bool,
        len: u16,
    },
    Event {
        kind: u8,
        dt: u32,
        len: u16,
    },
    End(u16),
    Flush,
}

/// A recording written by `Writer`, with what a reader must find in it.
struct Built {
    file: Vec<u8>,
    /// Every record, in order.
    records: Vec<Record>,
    /// (offset just past a block, records in it and before it), starting with the header's end.
    boundaries: Vec<(u64, usize)>,
    /// Where the trailer starts (`None` if not closed).
    data_end: u64,
}

fn payload(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ seed) as u8)
        .collect()
}

fn build(ops: &[Op], config: WriterConfig, close: bool) -> Built {
    let mut w = Writer::with_config(Vec::new(), &header(), config).expect("create");
    let mut records = Vec::new();
    let data_start = w.bytes_written();
    let mut live: Vec<Track> = Vec::new();
    let mut next_id = 1u16;
    let mut now = 0u64;
    let mut media_ts = 0u64;
    for op in ops {
        match *op {
            Op::Track(sel) => {
                let (codec, rate, label) = match sel % 4 {
                    0 => (Codec::Opus, 48_000, "voice-mix".to_string()),
                    1 => (Codec::Vp8, 90_000, format!("screen-p{next_id}")),
                    2 => (Codec::H264, 90_000, format!("camera-p{next_id}")),
                    _ => (Codec::Vp8, 90_000, format!("camera-p{next_id}")),
                };
                let t = Track::new(next_id, codec, rate, label);
                next_id += 1;
                w.declare_track(now, &t).expect("declare");
                records.push(Record::Track {
                    at_us: now,
                    track: t.clone(),
                });
                live.push(t);
            }
            Op::Media { pick, dt, key, len } => {
                if live.is_empty() {
                    continue;
                }
                now += u64::from(dt);
                media_ts += 3000;
                let t = &live[usize::from(pick) % live.len()];
                let data = payload(records.len(), usize::from(len));
                w.media(t.id, now, media_ts, key, &data).expect("media");
                records.push(Record::Media(Media {
                    track: t.id,
                    at_us: now,
                    media_ts,
                    keyframe: key,
                    payload: data,
                }));
            }
            Op::Event { kind, dt, len } => {
                now += u64::from(dt);
                let kind = ["chat", "pointer", "annotation", "consent"][usize::from(kind) % 4];
                let json = format!(
                    r#"{{"n":{},"pad":"{}"}}"#,
                    records.len(),
                    "x".repeat(usize::from(len))
                );
                w.event(now, kind, &json).expect("event");
                records.push(Record::Event(Event {
                    at_us: now,
                    kind: kind.into(),
                    json,
                }));
            }
            Op::End(pick) => {
                if live.is_empty() {
                    continue;
                }
                let t = live.remove(usize::from(pick) % live.len());
                w.end_track(now, t.id).expect("end");
                records.push(Record::TrackEnded {
                    at_us: now,
                    track: t.id,
                });
            }
            Op::Flush => w.flush().expect("flush"),
        }
    }
    w.flush().expect("flush");
    assert_eq!(w.records_written() as usize, records.len());
    let data_end = w.bytes_written();
    let file = if close {
        w.close().expect("close")
    } else {
        w.get_ref().clone()
    };
    let boundaries = block_boundaries(&file, data_start, data_end);
    Built {
        file,
        records,
        boundaries,
        data_end,
    }
}

/// Block ends and record counts read straight from the block headers (length at byte 4, count
/// at byte 8), so the expectation does not depend on when the writer chose to cut a block.
fn block_boundaries(file: &[u8], data_start: u64, data_end: u64) -> Vec<(u64, usize)> {
    let u32_at =
        |o: usize| u32::from_le_bytes(file[o..o + 4].try_into().expect("4 bytes")) as usize;
    let mut out = vec![(data_start, 0)];
    let mut at = data_start as usize;
    while at < data_end as usize {
        let (len, count) = (u32_at(at + 4), u32_at(at + 8));
        at += 36 + len;
        out.push((at as u64, out[out.len() - 1].1 + count));
    }
    assert_eq!(at as u64, data_end);
    out
}

fn read_all(bytes: &[u8]) -> Result<(Vec<Record>, Option<DataEnd>), ArfError> {
    let mut r = Reader::new(Cursor::new(bytes))?;
    let records = r.records().collect::<Result<Vec<_>, _>>()?;
    Ok((records, r.end()))
}

fn small_blocks() -> WriterConfig {
    WriterConfig {
        block_bytes: 2048,
        block_span_us: 1_000_000,
    }
}

/// A fixed recording of about 15 s: a screen share with a keyframe every 2 s, a camera that
/// joins later and ends, the voice mix, and events.
fn session_ops() -> Vec<Op> {
    let mut ops = vec![Op::Track(1), Op::Track(0)];
    for i in 0..400u16 {
        // pick 0 = screen, 1 = voice, then the camera (2) while it lives.
        ops.push(Op::Media {
            pick: 0,
            dt: 25_000,
            key: i.is_multiple_of(80),
            len: 300 + (i % 7) * 100,
        });
        ops.push(Op::Media {
            pick: 1,
            dt: 10_000,
            key: false,
            len: 60,
        });
        if i == 100 {
            ops.push(Op::Track(2));
        }
        if (100..300).contains(&i) {
            ops.push(Op::Media {
                pick: 2,
                dt: 5_000,
                key: i % 50 == 1,
                len: 500,
            });
        }
        if i == 300 {
            ops.push(Op::End(2));
        }
        if i.is_multiple_of(30) {
            ops.push(Op::Event {
                kind: (i / 30) as u8,
                dt: 1_000,
                len: 20,
            });
        }
        if i.is_multiple_of(97) {
            ops.push(Op::Flush);
        }
    }
    ops
}

#[test]
fn round_trip_of_tracks_media_and_events() {
    let built = build(&session_ops(), WriterConfig::default(), true);
    let mut r = Reader::new(Cursor::new(&built.file)).expect("open");
    assert_eq!(r.header(), &header());
    assert_eq!(r.index_source(), Some(IndexSource::Trailer));
    let records = r.records().collect::<Result<Vec<_>, _>>().expect("read");
    assert_eq!(records, built.records);
    assert_eq!(
        r.end(),
        Some(DataEnd {
            offset: built.data_end,
            truncated: false
        })
    );

    let summary = r.summary().expect("summary");
    assert_eq!(summary.records, built.records.len() as u64);
    assert_eq!(summary.tracks.len(), 3);
    assert_eq!(summary.tracks[0].track.kind, TrackKind::Video);
    assert_eq!(summary.tracks[0].frames, 400);
    assert_eq!(summary.tracks[0].keyframes, 5);
    assert_eq!(summary.tracks[2].frames, 200);
    assert!(summary.tracks[2].ended_us.is_some());
    assert_eq!(summary.events.values().sum::<u64>(), 14);
    assert_eq!(summary.index, IndexSource::Trailer);
    assert!(!summary.truncated);
    assert_eq!(
        summary.duration_us,
        built.records.last().map_or(0, Record::at_us)
    );
    let text = summary.to_string();
    assert!(text.contains("\"screen-p1\""), "{text}");
    assert!(text.contains("from the trailer"), "{text}");
}

#[test]
fn inspect_reads_a_file_and_reports_a_crash() {
    let built = build(&session_ops(), WriterConfig::default(), false);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("crashed.arf");
    // Cut inside the last block, as a crash while writing it would.
    let cut = built.boundaries[built.boundaries.len() - 2].0 as usize + 10;
    std::fs::write(&path, &built.file[..cut]).expect("write");
    let summary = tandem_arf::inspect(&path).expect("inspect");
    assert!(summary.truncated);
    assert_eq!(summary.index, IndexSource::Rebuilt);
    assert_eq!(summary.data_end, cut as u64 - 10);
    let text = summary.to_string();
    assert!(
        text.contains("rebuilt by scanning") && text.contains("truncated"),
        "{text}"
    );
}

#[test]
fn empty_recordings_read_back() {
    let closed = build(&[], WriterConfig::default(), true);
    assert_eq!(read_all(&closed.file).expect("read").0, vec![]);
    let open = build(&[], WriterConfig::default(), false);
    let (records, end) = read_all(&open.file).expect("read");
    assert!(records.is_empty());
    assert_eq!(
        end,
        Some(DataEnd {
            offset: open.data_end,
            truncated: false
        })
    );
    let mut r = Reader::new(Cursor::new(&open.file)).expect("open");
    assert_eq!(r.seek(5_000_000, None).expect("seek"), open.data_end);
}

/// Every cut of one small recording, byte by byte.
#[test]
fn every_cut_reads_back_the_blocks_before_it() {
    let mut ops = vec![Op::Track(1), Op::Track(0)];
    for i in 0..60u16 {
        ops.push(Op::Media {
            pick: i % 3,
            dt: 40_000,
            key: i.is_multiple_of(20),
            len: 10 + i * 3,
        });
        match i {
            10 => ops.push(Op::Track(2)),
            40 => ops.push(Op::End(2)),
            _ if i.is_multiple_of(7) => ops.push(Op::Event {
                kind: i as u8,
                dt: 500,
                len: i,
            }),
            _ if i.is_multiple_of(13) => ops.push(Op::Flush),
            _ => {}
        }
    }
    let built = build(
        &ops,
        WriterConfig {
            block_bytes: 600,
            block_span_us: 1_000_000,
        },
        true,
    );
    assert!(
        built.boundaries.len() > 8,
        "several blocks: {}",
        built.boundaries.len()
    );
    check_cuts(&built, 0..=built.file.len());
}

fn check_cuts(built: &Built, cuts: impl Iterator<Item = usize>) {
    let data_start = built.boundaries[0].0 as usize;
    for cut in cuts {
        let result = read_all(&built.file[..cut]);
        if cut < data_start {
            let err = result.expect_err("a cut header is an error");
            assert_eq!(err.code(), "truncated", "cut {cut}: {err}");
            continue;
        }
        let (records, end) = result.unwrap_or_else(|e| panic!("cut {cut}: {e}"));
        let (good_end, n) = built
            .boundaries
            .iter()
            .rev()
            .find(|b| b.0 as usize <= cut)
            .copied()
            .expect("boundary");
        assert_eq!(records, built.records[..n], "cut {cut}");
        let end = end.expect("end known after reading");
        let clean = cut == built.file.len() || cut == good_end as usize;
        assert_eq!(end.truncated, !clean, "cut {cut}");
        let expected_end = if cut == built.file.len() {
            built.data_end
        } else {
            good_end
        };
        assert_eq!(end.offset, expected_end, "cut {cut}");
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => any::<u8>().prop_map(Op::Track),
        10 => (any::<u16>(), 0u32..300_000, any::<bool>(), 0u16..1500)
            .prop_map(|(pick, dt, key, len)| Op::Media { pick, dt, key, len }),
        3 => (any::<u8>(), 0u32..300_000, 0u16..300)
            .prop_map(|(kind, dt, len)| Op::Event { kind, dt, len }),
        1 => any::<u16>().prop_map(Op::End),
        1 => Just(Op::Flush),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// For any recording and any cut: exactly the records of the whole blocks before the cut,
    /// no error, and `truncated` when the cut is inside a block or the trailer.
    #[test]
    fn any_cut_reads_back_the_blocks_before_it(
        ops in prop::collection::vec(op(), 0..80),
        block_bytes in 64usize..8192,
        close: bool,
        cut in any::<prop::sample::Index>(),
    ) {
        let built = build(&ops, WriterConfig { block_bytes, block_span_us: 1_000_000 }, close);
        let cut = cut.index(built.file.len() + 1);
        check_cuts(&built, std::iter::once(cut));
        // The index rebuilt from the cut file covers exactly the blocks kept.
        let cut = cut.max(built.boundaries[0].0 as usize);
        let mut r = Reader::new(Cursor::new(&built.file[..cut])).expect("open");
        let index = r.index().expect("index").clone();
        let kept = built.boundaries.iter().filter(|b| b.0 as usize <= cut).count() - 1;
        prop_assert_eq!(index.blocks as usize, kept);
        prop_assert_eq!(index.records as usize, built.boundaries[kept].1);
    }

    /// Whatever the writer writes, the trailer's index is the one a scan rebuilds.
    #[test]
    fn trailer_index_equals_rebuilt_index(
        ops in prop::collection::vec(op(), 0..120),
        block_bytes in 64usize..8192,
    ) {
        let built = build(&ops, WriterConfig { block_bytes, block_span_us: 1_000_000 }, true);
        let mut r = Reader::new(Cursor::new(&built.file)).expect("open");
        prop_assert_eq!(r.index_source(), Some(IndexSource::Trailer));
        let from_trailer = r.index().expect("index").clone();
        prop_assert_eq!(&from_trailer, &r.rebuild_index().expect("rebuild"));
        // And a copy without the trailer (a crash just before closing) rebuilds the same.
        let unclosed = &built.file[..built.data_end as usize];
        let mut crashed = Reader::new(Cursor::new(unclosed)).expect("open");
        prop_assert_eq!(&from_trailer, crashed.index().expect("index"));
        prop_assert_eq!(crashed.index_source(), Some(IndexSource::Rebuilt));
    }
}

#[test]
fn trailer_index_equals_rebuilt_index_for_a_session() {
    let built = build(&session_ops(), small_blocks(), true);
    let mut r = Reader::new(Cursor::new(&built.file)).expect("open");
    let from_trailer = r.index().expect("index").clone();
    assert_eq!(from_trailer, r.rebuild_index().expect("rebuild"));
    assert!(from_trailer.time.len() >= 15, "{:?}", from_trailer.time);
    assert_eq!(from_trailer.keyframes.len(), 2);
    // Reading everything from the start also leaves the index behind, for a crashed file.
    let mut crashed =
        Reader::new(Cursor::new(&built.file[..built.data_end as usize])).expect("open");
    assert_eq!(crashed.index_source(), None);
    while crashed.next_record().expect("read").is_some() {}
    assert_eq!(crashed.index_source(), Some(IndexSource::Rebuilt));
    assert_eq!(crashed.index().expect("index"), &from_trailer);
}

/// Flipping any byte of a block that is followed by more blocks is an error at that block's
/// offset, whether or not the file was closed.
#[test]
fn flipped_byte_in_a_middle_block_is_corrupt_block() {
    for close in [true, false] {
        let built = build(&session_ops()[..200], small_blocks(), close);
        assert!(built.boundaries.len() > 5);
        for b in [1, built.boundaries.len() / 2, built.boundaries.len() - 3] {
            let (start, end) = (
                built.boundaries[b].0 as usize,
                built.boundaries[b + 1].0 as usize,
            );
            for at in start..end {
                let mut file = built.file.clone();
                file[at] ^= 0x5a;
                let err = read_all(&file).expect_err("damage is an error");
                assert_eq!(err.code(), "corrupt_block", "byte {at}: {err}");
                assert_eq!(err.offset(), Some(start as u64), "byte {at}: {err}");
            }
        }
    }
}

#[test]
fn records_before_the_damage_still_come_out() {
    let built = build(&session_ops()[..200], small_blocks(), true);
    let (start, n) = built.boundaries[3];
    let mut file = built.file.clone();
    file[start as usize + 40] ^= 1;
    let mut r = Reader::new(Cursor::new(&file)).expect("open");
    let mut got = Vec::new();
    let err = loop {
        match r.next_record() {
            Ok(Some(rec)) => got.push(rec),
            Ok(None) => panic!("no error"),
            Err(e) => break e,
        }
    };
    assert_eq!(got, built.records[..n]);
    assert_eq!(err.offset(), Some(start));
    assert!(matches!(r.next_record(), Ok(None)), "ends after an error");
    assert_eq!(
        tandem_arf::Reader::new(Cursor::new(&file))
            .expect("open")
            .summary()
            .map(|_| ())
            .unwrap_err()
            .code(),
        "corrupt_block"
    );
}

/// A power cut can leave the file's new size with zeros in it: that is a torn tail, not damage.
#[test]
fn zeros_after_the_last_block_are_a_torn_tail() {
    let built = build(&session_ops()[..200], small_blocks(), false);
    let mut file = built.file.clone();
    file.extend_from_slice(&[0; 5000]);
    let (records, end) = read_all(&file).expect("read");
    assert_eq!(records, built.records);
    assert_eq!(
        end,
        Some(DataEnd {
            offset: built.data_end,
            truncated: true
        })
    );
    // The same zeros over the last block's second half.
    let last = built.boundaries[built.boundaries.len() - 2];
    let mut file = built.file.clone();
    let body = last.0 as usize + 36;
    let mid = body + (file.len() - body) / 2;
    file[mid..].fill(0);
    let (records, end) = read_all(&file).expect("read");
    assert_eq!(records, built.records[..last.1]);
    assert_eq!(
        end,
        Some(DataEnd {
            offset: last.0,
            truncated: true
        })
    );
}

#[test]
fn bad_magic_version_and_codec() {
    let built = build(&session_ops()[..50], small_blocks(), true);
    let mut file = built.file.clone();
    file[1] = b'Z';
    assert_eq!(read_all(&file).unwrap_err().code(), "bad_magic");
    assert_eq!(read_all(b"hello, world").unwrap_err().code(), "bad_magic");
    assert_eq!(read_all(&[]).unwrap_err().code(), "truncated");

    let mut file = built.file.clone();
    file[8] = 2;
    let err = read_all(&file).unwrap_err();
    assert_eq!(err.code(), "unsupported_version");
    assert!(err.to_string().contains("version 2"), "{err}");

    let mut file = built.file.clone();
    file[20] ^= 1;
    assert_eq!(read_all(&file).unwrap_err().code(), "bad_header");

    // The first record is the screen track: patch its codec id and make the checksums valid.
    let d = built.boundaries[0].0 as usize;
    let (end, _) = built.boundaries[1];
    let mut file = built.file[..end as usize].to_vec();
    file[d + 36 + 13 + 3] = 99;
    let body_crc = crc32fast::hash(&file[d + 36..]);
    file[d + 28..d + 32].copy_from_slice(&body_crc.to_le_bytes());
    let head_crc = crc32fast::hash(&file[d..d + 32]);
    file[d + 32..d + 36].copy_from_slice(&head_crc.to_le_bytes());
    let err = read_all(&file).unwrap_err();
    assert_eq!(err.code(), "unknown_codec");
    assert_eq!(err.offset(), Some(d as u64 + 36));
}

#[test]
fn writer_refuses_what_breaks_the_rules() {
    let mut w = Writer::create(Vec::new(), &header()).expect("create");
    let screen = Track::new(1, Codec::Vp8, 90_000, "screen-p1");
    assert_eq!(
        w.media(1, 0, 0, true, b"x").unwrap_err().code(),
        "unknown_track"
    );
    w.declare_track(0, &screen).expect("declare");
    assert_eq!(
        w.declare_track(0, &screen).unwrap_err().code(),
        "duplicate_track"
    );
    let mut wrong = Track::new(2, Codec::Opus, 48_000, "voice-mix");
    wrong.kind = TrackKind::Video;
    assert_eq!(
        w.declare_track(0, &wrong).unwrap_err().code(),
        "invalid_track"
    );
    w.media(1, 10, 0, true, b"frame").expect("media");
    assert_eq!(
        w.media(1, 9, 0, true, b"frame").unwrap_err().code(),
        "time_order"
    );
    let huge = vec![0u8; tandem_arf::MAX_RECORD_BODY];
    assert_eq!(
        w.media(1, 10, 0, true, &huge).unwrap_err().code(),
        "too_large"
    );
    assert_eq!(
        w.event(10, &"k".repeat(256), "{}").unwrap_err().code(),
        "too_large"
    );
    w.end_track(20, 1).expect("end");
    assert_eq!(
        w.media(1, 30, 0, false, b"late").unwrap_err().code(),
        "track_ended"
    );
    assert_eq!(w.end_track(30, 1).unwrap_err().code(), "track_ended");
    // Refusals change nothing: the file holds exactly the accepted records.
    let file = w.close().expect("close");
    let (records, _) = read_all(&file).expect("read");
    assert_eq!(records.len(), 3);
}

#[test]
fn blocks_are_cut_by_size_and_by_arrival_time() {
    let mut w = Writer::with_config(
        Vec::new(),
        &header(),
        WriterConfig {
            block_bytes: 1000,
            block_span_us: 1_000_000,
        },
    )
    .expect("create");
    let start = w.bytes_written();
    w.event(0, "chat", "{}").expect("event");
    assert_eq!(w.flush_deadline(), Some(1_000_000));
    w.event(1_000_000, "chat", "{}").expect("event");
    assert_eq!(w.bytes_written(), start, "exactly 1 s later still fits");
    w.event(1_000_001, "chat", "{}").expect("event");
    assert_eq!(
        w.records_written(),
        2,
        "more than 1 s after the first record cuts the block"
    );
    assert_eq!(w.pending_records(), 1);
    w.event(1_000_002, "chat", &"x".repeat(1000))
        .expect("event");
    assert_eq!(w.records_written(), 4, "a full buffer is written at once");
    assert_eq!(w.flush_deadline(), None);
}

#[test]
fn huge_frames_round_trip() {
    let mut w = Writer::create(Vec::new(), &header()).expect("create");
    w.declare_track(0, &Track::new(7, Codec::H264, 90_000, "screen-4k"))
        .expect("declare");
    let max = tandem_arf::MAX_RECORD_BODY - 11;
    for (i, len) in [max, 10, max, 300_000].into_iter().enumerate() {
        w.media(7, i as u64, 0, i == 0, &payload(i, len))
            .expect("media");
    }
    let file = w.close().expect("close");
    let (records, _) = read_all(&file).expect("read");
    let lens: Vec<usize> = records
        .iter()
        .filter_map(|r| {
            if let Record::Media(m) = r {
                Some(m.payload.len())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(lens, vec![max, 10, max, 300_000]);
}

/// After a seek, the first keyframe of the track that comes out is its last one at or before
/// the time, and a time seek skips nothing at or after the time. With the trailer's index and
/// with a rebuilt one.
#[test]
fn seek_lands_on_the_keyframe_block_at_or_before_the_time() {
    let built = build(&session_ops(), small_blocks(), true);
    let keyframes = |track: u16| -> Vec<u64> {
        built
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Media(m) if m.track == track && m.keyframe => Some(m.at_us),
                _ => None,
            })
            .collect()
    };
    for file in [&built.file[..], &built.file[..built.data_end as usize]] {
        let mut r = Reader::new(Cursor::new(file)).expect("open");
        let data_start = r.data_start();
        for t in (0..17_000_000u64).step_by(61_000) {
            for track in [1u16, 3] {
                let offset = r.seek(t, Some(track)).expect("seek");
                let expected = keyframes(track).into_iter().rfind(|&k| k <= t);
                let yielded: Vec<u64> = r
                    .records()
                    .map(|x| x.expect("read"))
                    .filter_map(|rec| match rec {
                        Record::Media(m) if m.track == track && m.keyframe => Some(m.at_us),
                        _ => None,
                    })
                    .take_while(|&k| k <= t)
                    .collect();
                match expected {
                    // This session never has two keyframes of a track in one block, so the
                    // block holding the last keyframe yields exactly that one before `t`.
                    Some(k) => assert_eq!(yielded, vec![k], "track {track} at {t}"),
                    None => assert_eq!(offset, data_start, "track {track} at {t}"),
                }
            }
            // By time (and on the audio track, which seeks by time too).
            for track in [None, Some(2)] {
                r.seek(t, track).expect("seek");
                let got: Vec<Record> = r.records().map(|x| x.expect("read")).collect();
                let wanted: Vec<&Record> =
                    built.records.iter().filter(|x| x.at_us() >= t).collect();
                let skip = got.len() - wanted.len();
                assert!(got[..skip].iter().all(|x| x.at_us() < t), "at {t}");
                assert_eq!(got[skip..].iter().collect::<Vec<_>>(), wanted, "at {t}");
                // It lands close: less than a block span before the time.
                assert!(
                    got.first().is_none_or(|x| x.at_us() + 2_000_000 > t),
                    "at {t}"
                );
            }
        }
        assert_eq!(r.seek(0, Some(99)).unwrap_err().code(), "unknown_track");
        r.rewind();
        assert_eq!(
            r.records().map(|x| x.expect("read")).collect::<Vec<_>>(),
            built.records
        );
    }
}
