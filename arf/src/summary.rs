//! What `tandem arf inspect FILE` prints: the header, each track, event counts, and the state of
//! the file (index from the trailer or rebuilt, truncated or not).

use std::collections::BTreeMap;
use std::fmt;

use crate::format::VERSION;
use crate::index::Index;
use crate::reader::{DataEnd, IndexSource};
use crate::record::{Header, Record, Track};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub header: Header,
    pub version: u16,
    pub file_bytes: u64,
    /// Offset just past the last complete block.
    pub data_end: u64,
    pub truncated: bool,
    pub index: IndexSource,
    pub blocks: u64,
    pub records: u64,
    /// Arrival time of the last record, in microseconds since the recording started.
    pub duration_us: u64,
    /// In declaration order.
    pub tracks: Vec<TrackSummary>,
    /// Number of events by kind.
    pub events: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackSummary {
    pub track: Track,
    pub declared_us: u64,
    pub ended_us: Option<u64>,
    /// Media records: video frames or Opus packets.
    pub frames: u64,
    pub bytes: u64,
    pub keyframes: u64,
    pub first_us: Option<u64>,
    pub last_us: Option<u64>,
}

#[derive(Default, Clone, Copy)]
struct TrackStats {
    frames: u64,
    bytes: u64,
    keyframes: u64,
    first_us: Option<u64>,
    last_us: u64,
}

#[derive(Default)]
pub(crate) struct SummaryBuilder {
    tracks: BTreeMap<u16, TrackStats>,
    events: BTreeMap<String, u64>,
}

impl SummaryBuilder {
    pub(crate) fn record(&mut self, r: &Record) {
        match r {
            Record::Media(m) => {
                let s = self.tracks.entry(m.track).or_default();
                s.frames += 1;
                s.bytes += m.payload.len() as u64;
                s.keyframes += u64::from(m.keyframe);
                s.first_us.get_or_insert(m.at_us);
                s.last_us = m.at_us;
            }
            Record::Event(e) => *self.events.entry(e.kind.clone()).or_default() += 1,
            Record::Track { .. } | Record::TrackEnded { .. } => {}
        }
    }

    pub(crate) fn finish(
        self,
        header: Header,
        file_bytes: u64,
        index: &Index,
        end: DataEnd,
        source: IndexSource,
    ) -> Summary {
        let tracks = index
            .tracks
            .iter()
            .map(|t| {
                let s = self.tracks.get(&t.track.id).copied().unwrap_or_default();
                TrackSummary {
                    track: t.track.clone(),
                    declared_us: t.declared_us,
                    ended_us: t.ended_us,
                    frames: s.frames,
                    bytes: s.bytes,
                    keyframes: s.keyframes,
                    first_us: s.first_us,
                    last_us: s.first_us.map(|_| s.last_us),
                }
            })
            .collect();
        Summary {
            header,
            version: VERSION,
            file_bytes,
            data_end: end.offset,
            truncated: end.truncated,
            index: source,
            blocks: index.blocks,
            records: index.records,
            duration_us: index.last_us,
            tracks,
            events: self.events,
        }
    }
}

/// Seconds with millisecond precision, from microseconds.
struct Secs(u64);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:03} s",
            self.0 / 1_000_000,
            self.0 % 1_000_000 / 1000
        )
    }
}

/// Text from the file is printed with `{:?}`: quoted and escaped, so a crafted label cannot
/// send control sequences to the terminal.
impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.header;
        writeln!(f, "ARF version {}, {} bytes", self.version, self.file_bytes)?;
        writeln!(f, "recording  {:?}", h.recording_id)?;
        writeln!(f, "session    {:?}", h.session_id)?;
        writeln!(f, "started    {} (unix ms)", h.start_unix_ms)?;
        const SHOWN: usize = 200;
        let meta: String = h.metadata.chars().take(SHOWN).collect();
        let more = if h.metadata.chars().nth(SHOWN).is_some() {
            " (cut)"
        } else {
            ""
        };
        writeln!(f, "metadata   {meta:?}{more}")?;
        writeln!(f, "duration   {}", Secs(self.duration_us))?;
        writeln!(f, "blocks     {} ({} records)", self.blocks, self.records)?;
        match self.index {
            IndexSource::Trailer => writeln!(f, "index      from the trailer")?,
            IndexSource::Rebuilt => {
                writeln!(f, "index      rebuilt by scanning (no valid trailer)")?
            }
        }
        match self.truncated {
            false => writeln!(f, "end        clean, data ends at byte {}", self.data_end)?,
            true => writeln!(
                f,
                "end        truncated: good data ends at byte {}",
                self.data_end
            )?,
        }
        writeln!(f, "tracks     {}", self.tracks.len())?;
        for t in &self.tracks {
            let tr = &t.track;
            write!(
                f,
                "  #{} {} {}/{} {:?}: {} frames, {} keyframes, {} bytes",
                tr.id, tr.kind, tr.codec, tr.clock_rate, tr.label, t.frames, t.keyframes, t.bytes
            )?;
            if let (Some(first), Some(last)) = (t.first_us, t.last_us) {
                write!(f, ", {} to {}", Secs(first), Secs(last))?;
            }
            if let Some(ended) = t.ended_us {
                write!(f, ", ended at {}", Secs(ended))?;
            }
            writeln!(f)?;
        }
        writeln!(f, "events     {}", self.events.values().sum::<u64>())?;
        for (kind, n) in &self.events {
            writeln!(f, "  {kind:?}: {n}")?;
        }
        Ok(())
    }
}
