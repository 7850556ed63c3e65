//! What each command to a worker does.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use super::call::{Calls, call_for};
use super::lobby::Waiting;
use super::panic_guard::guarded;
use super::routing::Routes;
use super::{MediaError, WorkerCmd};
use crate::telemetry;

/// A refusal from the call, as the worker's error.
fn refused(e: tandem_media::sfu::SfuError) -> MediaError {
    MediaError::Refused {
        code: e.code(),
        detail: e.to_string(),
    }
}

/// Carries out one command from a session or the SIP endpoint.
pub(super) fn handle_command(
    calls: &mut Calls,
    routes: &mut Routes,
    lobby: &mut Waiting,
    address: SocketAddr,
    cmd: WorkerCmd,
) {
    let now = Instant::now();
    // Any command may add or drop a connection or a phone.
    routes.calls_changed();
    match cmd {
        WorkerCmd::Offer {
            session,
            participant,
            sdp,
            video,
            notices,
            reply,
        } => {
            let call = match call_for(calls, session, address) {
                Ok(c) => c,
                Err(e) => {
                    let _ = reply.send(Err(refused(e)));
                    return;
                }
            };
            call.notices = Some(notices);
            let answer = guarded(calls, session, |call| {
                call.sfu.accept_offer(now, participant, &sdp, &video)
            })
            .unwrap_or(Err(tandem_media::sfu::SfuError::CallFailed))
            .map_err(|e| {
                telemetry::media::offer_refused();
                refused(e)
            });
            let _ = reply.send(answer);
        }
        WorkerCmd::Phone {
            session,
            participant,
            media,
            reply,
        } => {
            routes.forget(media.remote);
            let result = match call_for(calls, session, address) {
                Ok(_) => guarded(calls, session, |call| {
                    call.sfu
                        .add_phone(now, SystemTime::now(), participant, media)
                })
                .unwrap_or(Err(tandem_media::sfu::SfuError::CallFailed))
                .map(|()| address)
                .map_err(refused),
                Err(e) => Err(refused(e)),
            };
            let _ = reply.send(result);
        }
        WorkerCmd::LobbyAdd {
            leg,
            media,
            prompt,
            keys,
            reply,
        } => {
            let r = lobby
                .lobby
                .add(now, SystemTime::now(), leg, media, prompt)
                .map(|()| {
                    lobby.keys.insert(leg, keys);
                    address
                })
                .map_err(|e| MediaError::Refused {
                    code: "media_error",
                    detail: e.to_string(),
                });
            let _ = reply.send(r);
        }
        WorkerCmd::LobbyRemove { leg } => {
            lobby.lobby.remove(leg);
            lobby.keys.remove(&leg);
        }
        WorkerCmd::Answer {
            session,
            participant,
            offer,
            sdp,
            reply,
        } => {
            let result = match guarded(calls, session, |call| {
                call.sfu.accept_answer(now, participant, offer, &sdp)
            }) {
                Some(r) => r.map_err(refused),
                None => Err(refused(tandem_media::sfu::SfuError::NotConnected)),
            };
            let _ = reply.send(result);
        }
        WorkerCmd::Remove {
            session,
            participant,
        } => {
            guarded(calls, session, |c| c.sfu.remove_peer(participant));
        }
        WorkerCmd::Policy {
            session,
            policy,
            notices,
            recorder,
        } => {
            let call = match call_for(calls, session, address) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(%session, error = %e, "could not set up the call");
                    return;
                }
            };
            call.notices = Some(notices);
            if recorder.is_none() || call.recorder.is_none() {
                call.lost = 0;
            }
            call.recorder = recorder;
            if let Some(Err(e)) = guarded(calls, session, |call| call.sfu.set_policy(now, policy)) {
                tracing::error!(%session, error = %e, "could not update the call");
            }
        }
        WorkerCmd::EndSession { session } => {
            routes.forget_session(session);
            // What it counted since the last report is kept (reports come at an interval).
            if let Some(mut call) = calls.remove(&session) {
                call.report();
            }
        }
        WorkerCmd::InjectPanic { session } => {
            guarded(calls, session, |_| {
                panic!("injected fault in the media call")
            });
        }
    }
}
