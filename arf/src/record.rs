//! What a recording holds: its header, its tracks, and the records of its stream.

use std::fmt;

/// The file header, written once at the start.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Header {
    /// The recording's own id (UUID text); at most 256 bytes.
    pub recording_id: String,
    /// The support session recorded (UUID text); at most 256 bytes.
    pub session_id: String,
    /// Wall-clock time of arrival time 0, in Unix milliseconds: arrival times are relative to it
    /// so that a clock step during the session cannot reorder records.
    pub start_unix_ms: u64,
    /// Free-form JSON chosen by the recorder (who started it, options); at most 1 MiB. The format
    /// does not parse it, so its schema can change without a format version.
    pub metadata: String,
}

/// Whether a track carries sound or pictures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum TrackKind {
    Audio,
    Video,
}

impl TrackKind {
    pub(crate) fn id(self) -> u8 {
        match self {
            TrackKind::Audio => 1,
            TrackKind::Video => 2,
        }
    }

    pub(crate) fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(TrackKind::Audio),
            2 => Some(TrackKind::Video),
            _ => None,
        }
    }
}

impl fmt::Display for TrackKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrackKind::Audio => "audio",
            TrackKind::Video => "video",
        })
    }
}

/// The codec of a track's payloads. The numeric ids are part of the format (docs/arf.md); a new
/// codec gets a new id, and an older reader reports `unknown_codec` rather than guessing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Codec {
    Opus,
    Vp8,
    H264,
}

impl Codec {
    pub(crate) fn id(self) -> u8 {
        match self {
            Codec::Opus => 1,
            Codec::Vp8 => 2,
            Codec::H264 => 3,
        }
    }

    pub(crate) fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(Codec::Opus),
            2 => Some(Codec::Vp8),
            3 => Some(Codec::H264),
            _ => None,
        }
    }

    /// The kind of track this codec belongs on.
    pub fn kind(self) -> TrackKind {
        match self {
            Codec::Opus => TrackKind::Audio,
            Codec::Vp8 | Codec::H264 => TrackKind::Video,
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Codec::Opus => "opus",
            Codec::Vp8 => "vp8",
            Codec::H264 => "h264",
        })
    }
}

/// A track, declared in the stream before its first media record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Track {
    /// Unique within the file; never reused, even after the track ends.
    pub id: u16,
    pub kind: TrackKind,
    pub codec: Codec,
    /// Units per second of `Media::media_ts` (48000 for Opus, 90000 for video over RTP).
    pub clock_rate: u32,
    /// What the track is, e.g. `screen-<participant id>`, `camera-<pid>`, `voice-mix`; at most
    /// 256 bytes.
    pub label: String,
}

impl Track {
    /// A track whose kind follows from its codec.
    pub fn new(id: u16, codec: Codec, clock_rate: u32, label: impl Into<String>) -> Self {
        Track {
            id,
            kind: codec.kind(),
            codec,
            clock_rate,
            label: label.into(),
        }
    }
}

/// One media item as the recorder received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Media {
    pub track: u16,
    /// Arrival time in microseconds since the recording started.
    pub at_us: u64,
    /// The sender's timestamp in the track's clock (RTP time, unwrapped to 64 bits by the caller).
    pub media_ts: u64,
    /// The frame can be decoded without earlier frames (video only; seeking lands on these).
    pub keyframe: bool,
    /// A whole video frame as depacketized from RTP, or one Opus packet.
    pub payload: Vec<u8>,
}

/// A session event (join, chat, annotation, pointer, consent, notes...). The JSON is the
/// caller's and is kept byte for byte: the format never parses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub at_us: u64,
    /// A short name for the kind of event (at most 255 bytes), used for counts and filtering
    /// without parsing the JSON.
    pub kind: String,
    pub json: String,
}

/// One record of the stream, in arrival order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Record {
    Track { at_us: u64, track: Track },
    Media(Media),
    Event(Event),
    TrackEnded { at_us: u64, track: u16 },
}

impl Record {
    /// Arrival time in microseconds since the recording started.
    pub fn at_us(&self) -> u64 {
        match self {
            Record::Track { at_us, .. } | Record::TrackEnded { at_us, .. } => *at_us,
            Record::Media(m) => m.at_us,
            Record::Event(e) => e.at_us,
        }
    }
}
