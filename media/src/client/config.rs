//! What a [`Client`](super::Client) offers and does: the page-like client of the tests and the
//! load generator (audio, three data channels, synthetic video) or Tandem Helper (screen video
//! the caller encodes, the `control` channel, no audio).

use str0m::bwe::Bitrate;
use str0m::format::Codec;

use crate::policy::{ChannelKind, TrackPurpose};

#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Offer an audio track (send and receive), as the page does; the helper has no audio.
    pub audio: bool,
    /// The tone to speak (Hz), or silence.
    pub tone: Option<f64>,
    /// Decode what is heard and keep the last `keep_audio` samples; the load generator only
    /// counts packets.
    pub decode_audio: bool,
    pub keep_audio: usize,
    /// Keep the last `keep_video` frames of each received video track (see
    /// [`VideoIn::kept`](super::VideoIn::kept)), for tests that compare what arrived with what
    /// was sent; 0 keeps none.
    pub keep_video: usize,
    /// The video codecs it offers and accepts, in its order of preference (VP8, H.264, VP9).
    /// It sends the first the server's answer lists, as a browser does; a synthetic H.264
    /// frame is one NAL unit, which a receiver counts but cannot read the send time of.
    pub video_codecs: Vec<Codec>,
    /// The labels of the data channels it opens (the server relays `control`, `pointer` and
    /// `annotation`).
    pub channels: Vec<String>,
    /// Estimate the bandwidth available for sending (str0m's TWCC-based estimator), so that an
    /// encoder can fit its bitrate to the network; `None` leaves it off (the load generator's
    /// many clients need not pay for it).
    pub bandwidth: Option<BandwidthConfig>,
}

impl Default for ClientConfig {
    /// The page-like client: audio, the three data channels, VP8.
    fn default() -> Self {
        Self {
            audio: true,
            tone: None,
            decode_audio: true,
            keep_audio: 48_000 * 5,
            keep_video: 0,
            video_codecs: vec![Codec::Vp8],
            channels: [
                ChannelKind::Control,
                ChannelKind::Pointer,
                ChannelKind::Annotation,
            ]
            .iter()
            .map(|k| k.label().to_string())
            .collect(),
            bandwidth: None,
        }
    }
}

impl ClientConfig {
    /// What Tandem Helper offers: video it sends (H.264 or VP8: the server's answer picks, see
    /// [`Client::video_codec`](super::Client::video_codec)), the `control` channel, no audio,
    /// and the bandwidth estimate its encoder sets its bitrate from.
    pub fn helper() -> Self {
        Self {
            audio: false,
            decode_audio: false,
            keep_audio: 0,
            video_codecs: vec![Codec::H264, Codec::Vp8],
            channels: vec![ChannelKind::Control.label().to_string()],
            bandwidth: Some(BandwidthConfig::screen_share()),
            ..Self::default()
        }
    }
}

/// Where the send-side bandwidth estimate starts and how far it probes.
#[derive(Clone, Copy, Debug)]
pub struct BandwidthConfig {
    /// The estimate before any feedback arrives.
    pub start: Bitrate,
    /// What the sender would like to reach: str0m probes with padding up to it, so the estimate
    /// can rise past what the video happens to use.
    pub desired: Bitrate,
}

impl Default for BandwidthConfig {
    /// 300 kbit/s to start (a still screen fits), up to 4 Mbit/s (1080p with motion): the
    /// page-like client of the tests and the load generator.
    fn default() -> Self {
        Self {
            start: Bitrate::kbps(300),
            desired: Bitrate::mbps(4),
        }
    }
}

impl BandwidthConfig {
    /// Tandem Helper's screen share. str0m paces video at 1.1 times the estimate, so the start
    /// estimate is also how fast a changed picture leaves: a full-screen change of a few KB took
    /// 100-150 ms at 300 kbit/s, most of the glass-to-glass goal (p50 under 100 ms). A support
    /// session's customer is mostly on a LAN or broadband: 2.5 Mbit/s lets 5 KB leave in 15 ms.
    /// It stays adaptive: str0m's delay- and loss-based estimate lowers it within a few feedback
    /// reports on a slower link (the pacer's queue is bounded too), and probes up to `desired`
    /// (the helper's most, 8 Mbit/s: 1080p at 30 a second with motion) when the video needs it.
    /// While little is sent it settles between the two: about 1.8 Mbit/s under 400 kbit/s of
    /// video in media/tests/client.rs.
    pub fn screen_share() -> Self {
        Self {
            start: Bitrate::kbps(2_500),
            desired: Bitrate::mbps(8),
        }
    }
}

/// A video track this client sends.
#[derive(Clone, Debug)]
pub struct VideoConfig {
    pub purpose: TrackPurpose,
    /// Frames the client makes itself, or `None`: the caller sends encoded frames with
    /// [`Client::send_frame`](super::Client::send_frame).
    pub synthetic: Option<Synthetic>,
}

impl VideoConfig {
    /// A track of `purpose` whose frames the caller encodes and sends.
    pub fn from_caller(purpose: TrackPurpose) -> Self {
        Self {
            purpose,
            synthetic: None,
        }
    }

    /// A track of `purpose` with synthetic frames (see [`Synthetic`]).
    pub fn synthetic(purpose: TrackPurpose, synthetic: Synthetic) -> Self {
        Self {
            purpose,
            synthetic: Some(synthetic),
        }
    }
}

/// Synthetic frames that carry their send time and a sequence number (to measure latency and
/// loss), sent at a steady rate.
#[derive(Clone, Copy, Debug)]
pub struct Synthetic {
    pub frame_bytes: usize,
    pub fps: u32,
    /// Frames between keyframes (besides those asked for).
    pub keyframe_every: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::send_timing::pacing_delay;

    /// A full-screen change of flat colours is a 4-6 KB H.264 picture: at the start estimate it
    /// must leave the helper in a small part of the 100 ms glass-to-glass goal.
    #[test]
    fn a_changed_screen_leaves_the_helper_quickly_at_the_start_estimate() {
        let start = ClientConfig::helper().bandwidth.map(|b| b.start.as_u64());
        let delay = pacing_delay(6_000, start.unwrap_or(0));
        assert!(delay <= std::time::Duration::from_millis(20), "{delay:?}");
    }

    /// The estimate still adapts: the helper asks str0m to probe above where it starts.
    #[test]
    fn the_helper_probes_above_its_start() {
        let b = ClientConfig::helper().bandwidth;
        assert!(b.is_some_and(|b| b.desired > b.start));
    }
}
