//! Any bytes as an ARF recording: read every record, the index, a summary and seeks. Three
//! modes: the raw bytes; the bytes with magic, tags and checksums made valid (so the fuzzer
//! reaches the record and index parsers, which a CRC would otherwise hide); and a recording
//! written by `Writer` from decoded operations, then cut, which must read back exactly as
//! written up to the cut. Nothing may panic; no error on a cut file.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use tandem_arf::{
    Codec, Event, Header, Media, Reader, Record, Track, TrackKind, Writer, WriterConfig,
};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => read_everything(rest),
        1 => {
            let mut file = rest.to_vec();
            tandem_arf::fuzzing::fix_checksums(&mut file);
            read_everything(&file);
        }
        _ => write_then_read(rest),
    }
});

fn read_everything(file: &[u8]) {
    let Ok(mut r) = Reader::new(Cursor::new(file)) else {
        return;
    };
    let mut last_us = 0;
    for rec in r.records() {
        let Ok(rec) = rec else { break };
        // Read from the start, arrival times never go back.
        assert!(rec.at_us() >= last_us);
        last_us = rec.at_us();
    }
    if let Ok(summary) = r.summary() {
        let _ = summary.to_string();
    }
    let Ok(index) = r.index().cloned() else {
        return;
    };
    for t in [0, index.last_us / 2, index.last_us, u64::MAX] {
        let tracks = index.tracks.iter().map(|t| Some(t.track.id)).take(4);
        for track in std::iter::once(None).chain(tracks) {
            if r.seek(t, track).is_ok() {
                r.records().take(50).for_each(drop);
            }
        }
    }
}

/// Reads the fuzzer's bytes as parameters, with zeros once they run out.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn u8(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (out, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        out
    }
}

fn write_then_read(data: &[u8]) {
    let mut input = Input(data);
    let config = WriterConfig {
        block_bytes: usize::from(input.u16()),
        block_span_us: u64::from(input.u16()) * 100,
    };
    let (flags, cut_at) = (input.u8(), usize::from(input.u16()));
    let header = Header {
        recording_id: "r".into(),
        session_id: "s".into(),
        start_unix_ms: 1,
        metadata: "{}".into(),
    };
    let Ok(mut w) = Writer::with_config(Vec::new(), &header, config) else {
        return;
    };
    let mut records: Vec<Record> = Vec::new();
    let data_start = w.bytes_written() as usize;
    let mut now = 0u64;
    let mut steps = 0;
    while !input.0.is_empty() && steps < 200 {
        steps += 1;
        let op = input.u8();
        let at = match op & 0x80 {
            0 => now + u64::from(input.u16()),
            _ => now.saturating_sub(u64::from(input.u8())),
        };
        // Refused records (writer rules) must leave the stream as it was.
        match op % 6 {
            0 => {
                let codec = [Codec::Opus, Codec::Vp8, Codec::H264][usize::from(input.u8() % 3)];
                let mut track =
                    Track::new(u16::from(input.u8() % 8), codec, u32::from(input.u16()), "");
                if op & 0x40 != 0 {
                    track.kind = TrackKind::Video;
                }
                let len = usize::from(input.u8() % 40);
                track.label = String::from_utf8_lossy(input.take(len)).into_owned();
                if w.declare_track(at, &track).is_ok() {
                    records.push(Record::Track { at_us: at, track });
                }
            }
            1 | 2 => {
                let track = u16::from(input.u8() % 8);
                let keyframe = op & 0x40 != 0;
                let len = usize::from(input.u8()) * 8;
                let payload = input.take(len).to_vec();
                let media_ts = u64::from(input.u16());
                if w.media(track, at, media_ts, keyframe, &payload).is_ok() {
                    records.push(Record::Media(Media {
                        track,
                        at_us: at,
                        media_ts,
                        keyframe,
                        payload,
                    }));
                }
            }
            3 => {
                let len = usize::from(input.u8() % 8);
                let kind = String::from_utf8_lossy(input.take(len)).into_owned();
                let len = usize::from(input.u8());
                let json = String::from_utf8_lossy(input.take(len)).into_owned();
                if w.event(at, &kind, &json).is_ok() {
                    records.push(Record::Event(Event {
                        at_us: at,
                        kind,
                        json,
                    }));
                }
            }
            4 => {
                let track = u16::from(input.u8() % 8);
                if w.end_track(at, track).is_ok() {
                    records.push(Record::TrackEnded { at_us: at, track });
                }
            }
            _ => w.flush().expect("flush to a Vec"),
        }
        now = now.max(records.last().map_or(0, Record::at_us));
    }
    w.flush().expect("flush to a Vec");
    let data_end = w.bytes_written() as usize;
    assert_eq!(w.records_written() as usize, records.len());
    let closed = flags & 1 == 1;
    let file = if closed {
        w.close().expect("close to a Vec")
    } else {
        w.get_ref().clone()
    };
    // Cut anywhere after the header.
    let cut = match flags & 2 {
        0 => file.len(),
        _ => data_start + cut_at % (file.len() - data_start + 1),
    };
    let mut r = Reader::new(Cursor::new(&file[..cut])).expect("the header is whole");
    let got: Vec<Record> = r
        .records()
        .collect::<Result<_, _>>()
        .expect("a cut file reads without error");
    // The records of the whole blocks before the cut, walking the block headers (body length
    // at byte 4, record count at byte 8).
    let u32_at = |o: usize| u32::from_le_bytes([file[o], file[o + 1], file[o + 2], file[o + 3]]);
    let (mut at, mut kept) = (data_start, 0);
    while at < data_end {
        let next = at + 36 + u32_at(at + 4) as usize;
        if next > cut {
            break;
        }
        kept += u32_at(at + 8) as usize;
        at = next;
    }
    assert_eq!(got, records[..kept]);
    if cut == file.len() && closed {
        let from_trailer = r.index().expect("index").clone();
        assert_eq!(from_trailer, r.rebuild_index().expect("rebuild"));
    }
}
