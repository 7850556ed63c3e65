//! One session's call on a worker: its [`Sfu`], where its notices and recorded media go, and
//! what it has counted.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::{MixerConfig, Sfu, SfuEvent, SfuStats};
use crate::ids::{ParticipantId, SessionId};
use crate::ports::{MediaNotice, NoticeSink};
use crate::recorder::RecordSink;
use crate::telemetry;

pub(super) struct Call {
    pub(super) sfu: Sfu<ParticipantId>,
    /// Where the session takes notices; the latest it gave (a restored session gives a new one).
    pub(super) notices: Option<NoticeSink>,
    /// Counters as last reported, to report only what is new.
    reported: SfuStats,
    /// Where what the call passes on goes while the session records.
    pub(super) recorder: Option<RecordSink>,
    /// Items the recorder's queue had no room for (the recording has failed once this is not 0).
    pub(super) lost: u64,
}

/// The calls on one worker, by session.
pub(super) type Calls = HashMap<SessionId, Call>;

/// The session's call, set up on first use.
pub(super) fn call_for(
    calls: &mut Calls,
    session: SessionId,
    address: SocketAddr,
) -> Result<&mut Call, tandem_media::sfu::SfuError> {
    Ok(match calls.entry(session) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(e) => e.insert(Call {
            sfu: Sfu::new(address, MixerConfig::default())?,
            notices: None,
            reported: SfuStats::default(),
            recorder: None,
            lost: 0,
        }),
    })
}

impl Call {
    pub(super) fn notify(&self, notice: MediaNotice) {
        if let Some(n) = &self.notices {
            n(notice);
        }
    }

    /// Tells the session what it must pass on (offers, lost connections) and logs the rest.
    pub(super) fn pass_on_events(&mut self, session: SessionId) {
        while let Some(e) = self.sfu.poll_event() {
            match e {
                SfuEvent::Dtmf { peer, digit } => {
                    // Keys pressed in a session mean nothing yet.
                    tracing::debug!(%session, participant = %peer, %digit, "key pressed on a phone");
                }
                SfuEvent::WrongAddress { peer, report } => {
                    telemetry::media::log_wrong_address(
                        &format!("session {session}, participant {peer}"),
                        report,
                    );
                }
                SfuEvent::CodecNotNegotiated {
                    peer,
                    origin,
                    codec,
                } => tracing::warn!(
                    %session, receiver = %peer, sender = %origin, %codec,
                    "video not forwarded: the receiver did not accept its codec (docs/protocol.md 5.4a)"
                ),
                SfuEvent::Connected(p) => {
                    tracing::debug!(%session, participant = %p, "media connected")
                }
                SfuEvent::Disconnected(participant) => {
                    tracing::info!(%session, %participant, "media disconnected");
                    telemetry::media::disconnected();
                    self.notify(MediaNotice::Disconnected { participant });
                }
                SfuEvent::Offer {
                    peer: participant,
                    offer,
                    sdp,
                } => {
                    self.notify(MediaNotice::Offer {
                        participant,
                        offer,
                        sdp,
                    });
                }
                SfuEvent::Stats {
                    rtt,
                    loss_in,
                    loss_out,
                    ..
                } => telemetry::media::connection_stats(rtt, loss_in, loss_out),
            }
        }
    }

    /// Hands the recorder what the call passed on, never waiting: a full queue loses the item,
    /// and the first loss tells the session, which ends the recording with an error.
    pub(super) fn record(&mut self) {
        while let Some(item) = self.sfu.poll_recorded() {
            let Some(sink) = &self.recorder else {
                continue;
            };
            if !sink.offer(item) {
                self.lost += 1;
                telemetry::media::recorder_item_lost();
                if self.lost == 1 {
                    self.notify(MediaNotice::RecordingLost);
                }
            }
        }
    }

    /// Adds what the call counted since the last report to the process's counters.
    pub(super) fn report(&mut self) {
        let now = self.sfu.stats();
        let d = now.since(&self.reported);
        telemetry::media::call_counted(d, self.sfu.phone_jitters());
        self.reported = now;
    }
}
