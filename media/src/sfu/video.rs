//! Video through the SFU (SPEC D13, VI2): which peers receive which tracks (`route_video`), the
//! server's renegotiation that opens and stops them on the receivers' connections
//! (`negotiate`), frames forwarded without decoding, to those whose answer accepted their codec
//! (`forward_video`), and keyframe requests relayed to the sender (`request_keyframe`). Kept
//! apart from the connections and the voice path in [`super`]: these are the only parts that
//! touch the tracks the server sends.

use std::collections::BTreeMap;
use std::fmt::{Debug, Display};
use std::time::{Duration, Instant};

use str0m::media::{Direction, KeyframeRequestKind, MediaData, MediaKind, MediaTime, Mid};

use super::{Peer, Recorded, Sfu, SfuEvent};
use crate::policy::{DropReason, TrackPurpose};
use crate::sdp_candidates::complete_candidates;

/// At most one keyframe request per incoming track in this time; a late joiner, a lost packet
/// and a receiver's PLI often come together.
const KEYFRAME_REQUEST_GAP: Duration = Duration::from_millis(500);

/// The playout delay (min and max) a screen share is sent with: none, render at once.
const NO_DELAY: MediaTime = MediaTime::ZERO;

/// Where a track the server sends a peer stands: to be offered, offered, open, to be stopped,
/// stop offered. The mid is the track's on the receiver's connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum OutState {
    ToOpen,
    Negotiating(Mid),
    Open(Mid),
    ToStop(Mid),
    NegotiatingStop(Mid),
}

/// A track the server sends a peer: another peer's video, as it comes in.
#[derive(Clone, Debug)]
pub(super) struct TrackOut<P> {
    /// The sending peer and its track's mid.
    pub(super) source: (P, Mid),
    pub(super) purpose: TrackPurpose,
    pub(super) state: OutState,
    /// Its codec was found not to be one the receiver accepted, and the server was told.
    pub(super) codec_refused: bool,
}

impl<P: Copy + Ord + Debug + Display> Sfu<P> {
    /// A video frame from `origin`, passed to every receiver with an open track for it.
    pub(super) fn forward_video(&mut self, now: Instant, origin: P, data: MediaData) {
        self.stats.video_frames_in += 1;
        let purpose = self
            .peers
            .get(&origin)
            .and_then(|p| p.purposes.get(&data.mid).copied());
        if let Err(reason) = self.policy.video(origin, purpose) {
            self.count_drop(reason);
            return;
        }
        if !data.contiguous {
            // Loss the sender's side could not repair: receivers need a fresh keyframe.
            self.request_keyframe(now, origin, data.mid, KeyframeRequestKind::Fir);
        }
        if let (true, Some(purpose)) = (self.policy.recording, purpose) {
            self.recorded.push_back(Recorded::Video {
                origin,
                purpose,
                codec: data.params.spec().codec,
                rtp_time: data.time.numer(),
                keyframe: data.is_keyframe(),
                data: data.data.clone(),
                at: now,
            });
        }
        let source = (origin, data.mid);
        for (key, peer) in self.peers.iter_mut().filter(|(k, _)| **k != origin) {
            for t in &mut peer.video_out {
                let OutState::Open(mid) = t.state else {
                    continue;
                };
                if t.source != source {
                    continue;
                }
                let Some(writer) = peer.rtc.writer(mid) else {
                    continue;
                };
                // `match_params` knows the whole connection's codecs; the receiver decodes only
                // those its answer for this m-line accepted (`payload_params` are those).
                let Some(pt) = writer
                    .match_params(data.params)
                    .filter(|pt| writer.payload_params().any(|p| p.pt() == *pt))
                else {
                    *self
                        .stats
                        .dropped
                        .entry(DropReason::CodecNotNegotiated)
                        .or_default() += 1;
                    if !t.codec_refused {
                        t.codec_refused = true;
                        self.events.push_back(SfuEvent::CodecNotNegotiated {
                            peer: *key,
                            origin,
                            codec: data.params.spec().codec,
                        });
                    }
                    continue;
                };
                let writer = if t.purpose == TrackPurpose::Screen {
                    // A shared screen is shown as soon as it is decoded: a browser's render
                    // smoothing, made for cameras, holds a frame that comes alone (the
                    // helper sends one per change) until the next one.
                    writer.playout_delay(NO_DELAY, NO_DELAY)
                } else {
                    writer
                };
                if writer
                    .write(pt, data.network_time, data.time, data.data.clone())
                    .is_ok()
                {
                    self.stats.video_frames_out += 1;
                    self.stats.video_bytes_out += data.data.len() as u64;
                    self.dirty.insert(*key);
                }
            }
        }
    }

    /// Asks `origin` for a keyframe on its track `mid`, at most once per
    /// [`KEYFRAME_REQUEST_GAP`].
    pub(super) fn request_keyframe(
        &mut self,
        now: Instant,
        origin: P,
        mid: Mid,
        kind: KeyframeRequestKind,
    ) {
        let Some(peer) = self.peers.get_mut(&origin) else {
            return;
        };
        let Some(last) = peer.video_in.get_mut(&mid) else {
            return;
        };
        if last.is_some_and(|t| now.saturating_duration_since(t) < KEYFRAME_REQUEST_GAP) {
            return;
        }
        let Some(mut writer) = peer.rtc.writer(mid) else {
            return;
        };
        if writer.request_keyframe(None, kind).is_ok() {
            *last = Some(now);
            self.stats.keyframe_requests += 1;
            self.dirty.insert(origin);
        }
    }

    /// Works out which video each peer should receive: every allowed incoming track of every
    /// other peer (SPEC D13). Tracks no longer allowed are marked to stop, new ones to open.
    pub(super) fn route_video(&mut self) {
        let sources: Vec<((P, Mid), TrackPurpose)> = self
            .peers
            .iter()
            .flat_map(|(origin, p)| {
                p.video_in.keys().filter_map(|mid| {
                    let purpose = p.purposes.get(mid).copied();
                    self.policy.video(*origin, purpose).ok()?;
                    Some(((*origin, *mid), purpose?))
                })
            })
            .collect();
        for (key, peer) in &mut self.peers {
            let wanted: BTreeMap<(P, Mid), TrackPurpose> = sources
                .iter()
                .filter(|((origin, _), _)| origin != key)
                .copied()
                .collect();
            for t in &mut peer.video_out {
                if let OutState::Open(m) = t.state
                    && !wanted.contains_key(&t.source)
                {
                    t.state = OutState::ToStop(m);
                }
            }
            peer.video_out
                .retain(|t| t.state != OutState::ToOpen || wanted.contains_key(&t.source));
            for (source, purpose) in wanted {
                let has = peer.video_out.iter().any(|t| {
                    t.source == source
                        && !matches!(t.state, OutState::ToStop(_) | OutState::NegotiatingStop(_))
                });
                if !has {
                    peer.video_out.push(TrackOut {
                        source,
                        purpose,
                        state: OutState::ToOpen,
                        codec_refused: false,
                    });
                }
            }
        }
    }

    /// Offers each peer with tracks to open or stop, unless an offer of ours is already waiting
    /// for its answer (the next is made when it comes).
    pub(super) fn negotiate(&mut self, now: Instant) {
        for (key, peer) in &mut self.peers {
            if peer.pending.is_some() {
                continue;
            }
            let mut change = peer.rtc.sdp_api();
            for t in &mut peer.video_out {
                match t.state {
                    OutState::ToOpen => {
                        // The stream id tells the page whose video this is, and what.
                        // A computer's share is its customer's (issue 16).
                        let stream = format!(
                            "{}-{}",
                            t.purpose.as_str(),
                            self.policy.identity(t.source.0)
                        );
                        let mid = change.add_media(
                            MediaKind::Video,
                            Direction::SendOnly,
                            Some(stream),
                            None,
                            None,
                        );
                        t.state = OutState::Negotiating(mid);
                    }
                    OutState::ToStop(m) => {
                        change.stop_media(m);
                        t.state = OutState::NegotiatingStop(m);
                    }
                    _ => {}
                }
            }
            if !change.has_changes() {
                continue;
            }
            if let Some((offer, pending)) = change.apply() {
                peer.offers += 1;
                peer.pending = Some((peer.offers, now, pending));
                self.events.push_back(SfuEvent::Offer {
                    peer: *key,
                    offer: peer.offers,
                    sdp: complete_candidates(&offer.to_sdp_string()),
                });
            }
        }
    }
}

/// Forgets the server's unanswered offer: tracks it was to add are added by the next one; a stop
/// str0m already applied to its session stays applied and goes out with the next SDP.
pub(super) fn void_pending<P>(peer: &mut Peer<P>) {
    peer.pending = None;
    peer.video_out.retain(|t| {
        !matches!(
            t.state,
            OutState::Negotiating(_) | OutState::NegotiatingStop(_) | OutState::ToOpen
        )
    });
}
