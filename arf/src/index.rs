//! The seek index, and the one builder that both the writer (for the trailer) and the reader (when
//! rebuilding by scanning) feed record by record, so the two indexes agree by construction.

use std::collections::BTreeMap;

use crate::record::{Track, TrackKind};

/// Granularity of the time index: one entry per second of arrival time that starts a block.
/// A seek then reads at most about a second's worth of block headers.
pub const TIME_INDEX_INTERVAL_US: u64 = 1_000_000;

/// Where to find the stream by time, without scanning it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Index {
    /// Every track, in declaration order.
    pub tracks: Vec<TrackEntry>,
    /// The first block starting in each second of arrival time that has one (by `first_us`).
    pub time: Vec<IndexEntry>,
    /// Per video track, every block holding one of its keyframes, with that block's first
    /// keyframe time for that track.
    pub keyframes: BTreeMap<u16, Vec<IndexEntry>>,
    pub blocks: u64,
    /// Records in all blocks, optional ones included.
    pub records: u64,
    /// Arrival time of the last record, 0 if there is none.
    pub last_us: u64,
    /// Offset just past the last block: where the trailer starts, or where good data ends.
    pub data_end: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub at_us: u64,
    /// Offset of a block's first byte.
    pub offset: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackEntry {
    pub track: Track,
    pub declared_us: u64,
    pub ended_us: Option<u64>,
}

impl Index {
    pub fn track(&self, id: u16) -> Option<&TrackEntry> {
        self.tracks.iter().find(|t| t.track.id == id)
    }
}

/// How a record breaks the track rules (declared once, used only between declaration and end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TrackProblem {
    Undeclared,
    Duplicate,
    Ended,
}

impl TrackProblem {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            TrackProblem::Undeclared => "record for an undeclared track",
            TrackProblem::Duplicate => "track declared twice",
            TrackProblem::Ended => "record for a track that has ended",
        }
    }
}

/// Checks the track rules and collects the index. Checks are separate from updates so the writer
/// can refuse a record before it touches any state.
#[derive(Default)]
pub(crate) struct IndexBuilder {
    index: Index,
    /// Position in `index.tracks` by id.
    by_id: BTreeMap<u16, usize>,
    /// First keyframe per video track in the block being filled, in order of appearance.
    block_keyframes: Vec<(u16, u64)>,
}

impl IndexBuilder {
    pub(crate) fn check_declare(&self, id: u16) -> Result<(), TrackProblem> {
        match self.by_id.contains_key(&id) {
            true => Err(TrackProblem::Duplicate),
            false => Ok(()),
        }
    }

    pub(crate) fn declare(&mut self, at_us: u64, track: &Track) {
        self.by_id.insert(track.id, self.index.tracks.len());
        self.index.tracks.push(TrackEntry {
            track: track.clone(),
            declared_us: at_us,
            ended_us: None,
        });
    }

    /// The kind of a track that may carry media now.
    pub(crate) fn check_use(&self, id: u16) -> Result<TrackKind, TrackProblem> {
        let entry = self.entry(id).ok_or(TrackProblem::Undeclared)?;
        match entry.ended_us {
            Some(_) => Err(TrackProblem::Ended),
            None => Ok(entry.track.kind),
        }
    }

    pub(crate) fn media(&mut self, track: u16, at_us: u64, keyframe: bool) {
        let video = self
            .entry(track)
            .is_some_and(|e| e.track.kind == TrackKind::Video);
        if keyframe && video && !self.block_keyframes.iter().any(|&(t, _)| t == track) {
            self.block_keyframes.push((track, at_us));
        }
    }

    pub(crate) fn end(&mut self, at_us: u64, track: u16) {
        if let Some(&i) = self.by_id.get(&track) {
            self.index.tracks[i].ended_us = Some(at_us);
        }
    }

    /// Closes the block whose records were fed since the last call.
    pub(crate) fn block(&mut self, offset: u64, first_us: u64, last_us: u64, count: u32) {
        let second = first_us / TIME_INDEX_INTERVAL_US;
        if self
            .index
            .time
            .last()
            .is_none_or(|e| e.at_us / TIME_INDEX_INTERVAL_US < second)
        {
            self.index.time.push(IndexEntry {
                at_us: first_us,
                offset,
            });
        }
        for (track, at_us) in self.block_keyframes.drain(..) {
            self.index
                .keyframes
                .entry(track)
                .or_default()
                .push(IndexEntry { at_us, offset });
        }
        self.index.blocks += 1;
        self.index.records += u64::from(count);
        self.index.last_us = last_us;
    }

    /// The index of the blocks closed so far, which end at `data_end`.
    pub(crate) fn finish(mut self, data_end: u64) -> Index {
        self.index.data_end = data_end;
        self.index
    }

    fn entry(&self, id: u16) -> Option<&TrackEntry> {
        self.by_id.get(&id).and_then(|&i| self.index.tracks.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Codec;

    #[test]
    fn one_time_entry_per_second_and_keyframes_per_video_track() {
        let mut b = IndexBuilder::default();
        b.declare(0, &Track::new(1, Codec::Vp8, 90_000, "screen"));
        b.declare(0, &Track::new(2, Codec::Opus, 48_000, "voice-mix"));
        assert_eq!(b.check_declare(1), Err(TrackProblem::Duplicate));
        assert_eq!(b.check_use(9), Err(TrackProblem::Undeclared));
        // Blocks starting at 0.0, 0.4, 0.9, 1.2, 3.5 s; keyframes in the first and fourth.
        for (i, (first, key)) in [
            (0, true),
            (400_000, false),
            (900_000, false),
            (1_200_000, true),
            (3_500_000, false),
        ]
        .into_iter()
        .enumerate()
        {
            b.media(2, first, true); // audio: never indexed as a keyframe
            b.media(1, first + 1, key);
            b.media(1, first + 2, key);
            b.block(i as u64 * 100, first, first + 2, 3);
        }
        b.end(3_600_000, 1);
        assert_eq!(b.check_use(1), Err(TrackProblem::Ended));
        let index = b.finish(500);
        let at: Vec<(u64, u64)> = index.time.iter().map(|e| (e.at_us, e.offset)).collect();
        assert_eq!(at, vec![(0, 0), (1_200_000, 300), (3_500_000, 400)]);
        let keys: Vec<(u64, u64)> = index.keyframes[&1]
            .iter()
            .map(|e| (e.at_us, e.offset))
            .collect();
        assert_eq!(keys, vec![(1, 0), (1_200_001, 300)]);
        assert!(!index.keyframes.contains_key(&2));
        assert_eq!(
            (index.blocks, index.records, index.last_us),
            (5, 15, 3_500_002)
        );
        assert_eq!(index.track(1).and_then(|t| t.ended_us), Some(3_600_000));
    }
}
