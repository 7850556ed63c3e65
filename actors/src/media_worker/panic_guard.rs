//! A panic inside one call (a bug in the media stack; never expected) loses that call only: it
//! is dropped and counted, its session is told, and every other call on the worker goes on.

use super::call::{Call, Calls};
use crate::ids::SessionId;
use crate::ports::MediaNotice;
use crate::telemetry;

/// Runs `f` on the session's call, dropping the call if `f` panics.
pub(super) fn guarded<T>(
    calls: &mut Calls,
    session: SessionId,
    f: impl FnOnce(&mut Call) -> T,
) -> Option<T> {
    let call = calls.get_mut(&session)?;
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(call))) {
        Ok(v) => Some(v),
        Err(_) => {
            lose(calls, session);
            None
        }
    }
}

/// Drops a call that panicked, counts it and tells its session.
pub(super) fn lose(calls: &mut Calls, session: SessionId) {
    if let Some(call) = calls.remove(&session) {
        tracing::error!(%session, "a media call failed; dropped it and told its session");
        telemetry::media::call_failed();
        for participant in call.sfu.peers() {
            call.notify(MediaNotice::Disconnected { participant });
        }
        call.notify(MediaNotice::CallLost);
    }
}
