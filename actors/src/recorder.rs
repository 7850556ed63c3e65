//! A session's network recorder (SPEC R1, R2): what the media worker passes on while the
//! session records (screen and camera frames, the voice call's listener mix, pointer and
//! annotation messages) and the session's events, written to an ARF file.
//!
//! [`RecorderCore`] is the logic, with the time passed in: which ARF track each item goes on,
//! arrival times, when to flush. [`Recorder`] is the shell: one thread per recording that owns
//! the file, fed through a bounded queue that nobody ever waits on. The media worker hands items
//! over with `try_send`; when the queue is full (a disk slower than the session) the item is
//! counted as lost and the recording ends with [`RecorderError::Overflow`], never silently.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use metrics::{counter, gauge};
use tandem_arf::{ArfError, Codec, Header, SyncedFile, Track, Writer};
use tandem_media::policy::{ChannelKind, TrackPurpose};
use tandem_media::sfu::Recorded;

use crate::ids::ParticipantId;

/// Items the queue holds: about 10 s of a busy session (a share at 30 fps, the voice at 50
/// packets a second, annotations), so a disk stall shorter than that loses nothing.
pub const QUEUE: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    #[error("the recording could not be written: {0}")]
    Arf(#[from] ArfError),
    #[error("the disk did not keep up with the session, so the recording stopped")]
    Overflow,
    #[error("the recorder stopped unexpectedly")]
    Gone,
    #[error("a recording holds at most 65535 tracks")]
    TooManyTracks,
}

impl RecorderError {
    pub fn code(&self) -> &'static str {
        match self {
            RecorderError::Arf(e) => e.code(),
            RecorderError::Overflow => "recording_overflow",
            RecorderError::Gone => "recorder_gone",
            RecorderError::TooManyTracks => "too_many_tracks",
        }
    }
}

/// Which ARF track an item goes on: one per sender and purpose (and codec, should a sender
/// change it), and one for the voice mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum TrackKey {
    Video(ParticipantId, TrackPurpose, Codec),
    Voice,
}

/// What a recording came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    pub duration_ms: u64,
    pub bytes: u64,
    pub media_items: u64,
    pub events: u64,
}

/// The recorder's rules, without threads or clocks: items and events in, ARF records out.
pub struct RecorderCore<W: Write> {
    writer: Writer<W>,
    start: Instant,
    last_us: u64,
    tracks: HashMap<TrackKey, u16>,
    media_items: u64,
    events: u64,
}

impl<W: Write> RecorderCore<W> {
    /// Arrival time 0 is `start`.
    pub fn new(out: W, header: &Header, start: Instant) -> Result<Self, ArfError> {
        Ok(Self {
            writer: Writer::create(out, header)?,
            start,
            last_us: 0,
            tracks: HashMap::new(),
            media_items: 0,
            events: 0,
        })
    }

    /// Arrival time of `at`; never before the last one, as items from the worker and events
    /// from the session reach the recorder by different ways.
    fn at_us(&mut self, at: Instant) -> u64 {
        let us =
            u64::try_from(at.saturating_duration_since(self.start).as_micros()).unwrap_or(u64::MAX);
        self.last_us = self.last_us.max(us);
        self.last_us
    }

    fn track(&mut self, at_us: u64, key: TrackKey) -> Result<u16, RecorderError> {
        if let Some(id) = self.tracks.get(&key) {
            return Ok(*id);
        }
        let id = u16::try_from(self.tracks.len() + 1).map_err(|_| RecorderError::TooManyTracks)?;
        let track = match key {
            TrackKey::Video(origin, purpose, codec) => {
                let label = match purpose {
                    TrackPurpose::Screen => format!("screen-{origin}"),
                    TrackPurpose::Camera => format!("camera-{origin}"),
                };
                Track::new(id, codec, 90_000, label)
            }
            TrackKey::Voice => Track::new(id, Codec::Opus, 48_000, "voice-mix"),
        };
        self.writer.declare_track(at_us, &track)?;
        self.tracks.insert(key, id);
        Ok(id)
    }

    /// One item the media worker passed on. Video in a codec ARF does not know is skipped.
    pub fn media(&mut self, item: &Recorded<ParticipantId>) -> Result<(), RecorderError> {
        match item {
            Recorded::Video {
                origin,
                purpose,
                codec,
                rtp_time,
                keyframe,
                data,
                at,
            } => {
                let codec = match codec {
                    str0m::format::Codec::Vp8 => Codec::Vp8,
                    str0m::format::Codec::H264 => Codec::H264,
                    _ => return Ok(()),
                };
                let at_us = self.at_us(*at);
                let track = self.track(at_us, TrackKey::Video(*origin, *purpose, codec))?;
                self.writer
                    .media(track, at_us, *rtp_time, *keyframe, data)?;
            }
            Recorded::Voice { rtp_time, data, at } => {
                let at_us = self.at_us(*at);
                let track = self.track(at_us, TrackKey::Voice)?;
                self.writer.media(track, at_us, *rtp_time, false, data)?;
            }
            Recorded::Channel {
                origin,
                kind,
                data,
                at,
            } => {
                // Kept as the page sent it, with who sent it; what is not a JSON object is not
                // an annotation or pointer message any page would draw.
                let Ok(serde_json::Value::Object(mut m)) =
                    serde_json::from_slice::<serde_json::Value>(data)
                else {
                    return Ok(());
                };
                m.insert("from".into(), serde_json::json!(origin));
                let kind = match kind {
                    ChannelKind::Annotation => "annotation",
                    ChannelKind::Pointer => "pointer",
                    ChannelKind::Control => return Ok(()),
                };
                let at = *at;
                return Ok(self.event(at, kind, &serde_json::Value::Object(m).to_string())?);
            }
        }
        self.media_items += 1;
        Ok(())
    }

    /// A session event (its kind and JSON).
    pub fn event(&mut self, at: Instant, kind: &str, json: &str) -> Result<(), ArfError> {
        let at_us = self.at_us(at);
        self.writer.event(at_us, kind, json)?;
        self.events += 1;
        Ok(())
    }

    /// Writes what is buffered once it is a second old (the crash-safety promise of ARF).
    pub fn tick(&mut self, now: Instant) -> Result<bool, ArfError> {
        if self.next_tick().is_none_or(|due| now < due) {
            return Ok(false);
        }
        self.writer.flush()?;
        Ok(true)
    }

    /// When [`Self::tick`] has work next.
    pub fn next_tick(&self) -> Option<Instant> {
        self.writer
            .flush_deadline()
            .map(|us| self.start + Duration::from_micros(us))
    }

    pub fn bytes_written(&self) -> u64 {
        self.writer.bytes_written()
    }

    /// Writes what is buffered now.
    pub fn flush(&mut self) -> Result<(), ArfError> {
        self.writer.flush()
    }

    /// Writes the rest and the index.
    pub fn close(self) -> Result<(W, Finished), ArfError> {
        let finished = Finished {
            duration_ms: self.last_us / 1000,
            bytes: 0,
            media_items: self.media_items,
            events: self.events,
        };
        let out = self.writer.close()?;
        Ok((out, finished))
    }
}

/// What reaches a recorder's thread.
pub enum RecorderInput {
    Media(Recorded<ParticipantId>),
    Event {
        at: Instant,
        kind: &'static str,
        json: String,
    },
    /// Close the file; `overflowed`: media items could not be queued, so the recording failed.
    Stop {
        overflowed: bool,
    },
}

/// Where the media worker hands a recording its items, without waiting.
#[derive(Clone, Debug)]
pub struct RecordSink(SyncSender<RecorderInput>);

impl RecordSink {
    /// Queues an item; false if the queue is full or the recorder is gone (the item is lost).
    pub fn offer(&self, item: Recorded<ParticipantId>) -> bool {
        match self.0.try_send(RecorderInput::Media(item)) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }

    /// Queues a session event; false if it could not be.
    pub fn event(&self, at: Instant, kind: &'static str, json: String) -> bool {
        self.0
            .try_send(RecorderInput::Event { at, kind, json })
            .is_ok()
    }
}

/// A running recording: the thread that owns its file.
pub struct Recorder {
    sink: RecordSink,
    thread: Option<JoinHandle<Result<Finished, RecorderError>>>,
    pub path: PathBuf,
}

impl Recorder {
    /// Creates the file (never over an existing one) and starts writing it.
    pub fn start(path: &Path, header: &Header, start: Instant) -> Result<Self, RecorderError> {
        let mut core = RecorderCore::new(SyncedFile::create(path)?, header, start)?;
        // The header on disk before anything else: a recording that exists can be read.
        core.flush()?;
        let (tx, rx) = sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || run(core, rx))
            .map_err(|e| RecorderError::Arf(ArfError::Io(e)))?;
        gauge!("tandem_arfs_active").increment(1.0);
        Ok(Self {
            sink: RecordSink(tx),
            thread: Some(thread),
            path: path.to_path_buf(),
        })
    }

    pub fn sink(&self) -> RecordSink {
        self.sink.clone()
    }

    /// Stops and closes the file: waits for the queue to drain, on a blocking thread.
    pub async fn stop(mut self, overflowed: bool) -> Result<Finished, RecorderError> {
        let sink = self.sink.0.clone();
        let thread = self.thread.take();
        let result = tokio::task::spawn_blocking(move || {
            // Blocking send: the queue is drained by the thread, so this waits only for the disk.
            if sink.send(RecorderInput::Stop { overflowed }).is_err() {
                return Err(RecorderError::Gone);
            }
            drop(sink);
            thread.map_or(Err(RecorderError::Gone), |t| {
                t.join().unwrap_or(Err(RecorderError::Gone))
            })
        })
        .await
        .unwrap_or(Err(RecorderError::Gone));
        gauge!("tandem_arfs_active").decrement(1.0);
        result
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if self.thread.is_some() {
            // Dropped without stop (the session went away): the thread closes the file when
            // the last sender is gone.
            gauge!("tandem_arfs_active").decrement(1.0);
        }
    }
}

/// The recorder's thread: writes what comes, flushes each second, closes on Stop or when every
/// sender is gone.
fn run(
    mut core: RecorderCore<SyncedFile>,
    rx: Receiver<RecorderInput>,
) -> Result<Finished, RecorderError> {
    let mut overflowed = false;
    loop {
        let wait = core.next_tick().map_or(Duration::from_secs(1), |t| {
            t.saturating_duration_since(Instant::now())
        });
        match rx.recv_timeout(wait) {
            Ok(RecorderInput::Media(item)) => core.media(&item)?,
            Ok(RecorderInput::Event { at, kind, json }) => core.event(at, kind, &json)?,
            Ok(RecorderInput::Stop { overflowed: o }) => {
                overflowed = o;
                break;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let before = core.bytes_written();
        core.tick(Instant::now())?;
        counter!("tandem_arf_bytes_total").increment(core.bytes_written() - before);
    }
    let bytes = core.bytes_written();
    let (_, mut finished) = core.close()?;
    finished.bytes = bytes;
    if overflowed {
        return Err(RecorderError::Overflow);
    }
    Ok(finished)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;
    use std::sync::Arc;

    use tandem_arf::{Reader, Record};

    use super::*;

    fn header() -> Header {
        Header {
            recording_id: "rec".into(),
            session_id: "sess".into(),
            start_unix_ms: 1_700_000_000_000,
            metadata: "{}".into(),
        }
    }

    fn screen(origin: ParticipantId, at: Instant, key: bool) -> Recorded<ParticipantId> {
        Recorded::Video {
            origin,
            purpose: TrackPurpose::Screen,
            codec: str0m::format::Codec::Vp8,
            rtp_time: 9000,
            keyframe: key,
            data: Arc::from(&[1u8, 2, 3][..]),
            at,
        }
    }

    fn read(bytes: Vec<u8>) -> Vec<Record> {
        let mut r = Reader::new(Cursor::new(bytes)).unwrap();
        r.records().collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn items_land_on_one_track_per_sender_and_purpose_with_arrival_times() {
        let t0 = Instant::now();
        let dave = ParticipantId::random();
        let carol = ParticipantId::random();
        let mut core = RecorderCore::new(Vec::new(), &header(), t0).unwrap();
        let ms = |n| t0 + Duration::from_millis(n);
        core.media(&screen(dave, ms(10), true)).unwrap();
        core.media(&Recorded::Voice {
            rtp_time: 960,
            data: vec![9; 40],
            at: ms(20),
        })
        .unwrap();
        core.media(&screen(dave, ms(40), false)).unwrap();
        // An event that reached the recorder late is not put before what was written.
        core.event(ms(30), "chat", r#"{"text":"hi"}"#).unwrap();
        core.media(&Recorded::Channel {
            origin: carol,
            kind: ChannelKind::Annotation,
            data: br#"{"t":"clear"}"#.to_vec(),
            at: ms(50),
        })
        .unwrap();
        // Not JSON, or control input: not recorded.
        core.media(&Recorded::Channel {
            origin: carol,
            kind: ChannelKind::Pointer,
            data: b"x".to_vec(),
            at: ms(60),
        })
        .unwrap();
        core.media(&Recorded::Channel {
            origin: carol,
            kind: ChannelKind::Control,
            data: b"{}".to_vec(),
            at: ms(60),
        })
        .unwrap();
        let (out, finished) = core.close().unwrap();
        assert_eq!(finished.media_items, 3);
        assert_eq!(finished.events, 2);
        assert_eq!(finished.duration_ms, 50);

        let records = read(out);
        let labels: Vec<_> = records
            .iter()
            .filter_map(|r| match r {
                Record::Track { track, .. } => Some(track.label.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(labels, [format!("screen-{dave}"), "voice-mix".to_string()]);
        let times: Vec<u64> = records.iter().map(Record::at_us).collect();
        assert!(times.windows(2).all(|t| t[0] <= t[1]), "{times:?}");
        let events: Vec<_> = records
            .iter()
            .filter_map(|r| match r {
                Record::Event(e) => Some((e.kind.clone(), e.at_us, e.json.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            events[0],
            ("chat".to_string(), 40_000, r#"{"text":"hi"}"#.to_string())
        );
        assert_eq!(events[1].0, "annotation");
        let ann: serde_json::Value = serde_json::from_str(&events[1].2).unwrap();
        assert_eq!(ann["t"], "clear");
        assert_eq!(ann["from"], serde_json::json!(carol));
    }

    #[test]
    fn a_recording_thread_writes_the_file_and_reports_lost_items() {
        let dir = std::env::temp_dir().join(format!("tandem-recorder-{}", ParticipantId::random()));
        std::fs::create_dir_all(&dir).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dave = ParticipantId::random();
        let t0 = Instant::now();
        for (name, lost) in [("ok.arf", false), ("lost.arf", true)] {
            let path = dir.join(name);
            let rec = Recorder::start(&path, &header(), t0).unwrap();
            let sink = rec.sink();
            for i in 0..100 {
                assert!(sink.offer(screen(
                    dave,
                    t0 + Duration::from_millis(i * 33),
                    i % 30 == 0
                )));
            }
            assert!(sink.event(t0, "chat", "{}".into()));
            let result = rt.block_on(rec.stop(lost));
            let summary = tandem_arf::inspect(&path).unwrap();
            assert!(!summary.truncated, "closed with its index");
            assert_eq!(summary.tracks[0].frames, 100);
            match (lost, result) {
                (false, Ok(f)) => assert_eq!(f.media_items, 100),
                (true, Err(RecorderError::Overflow)) => {}
                (_, other) => panic!("{lost}: {other:?}"),
            }
            // An existing recording is never overwritten.
            assert!(Recorder::start(&path, &header(), t0).is_err());
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
