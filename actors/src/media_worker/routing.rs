//! Which call a datagram from the worker's socket is for.

use std::net::SocketAddr;
use std::time::Instant;

use super::call::Calls;
use super::panic_guard::lose;
use crate::telemetry;

/// Hands the datagram to the call whose peer it belongs to; counts it when none takes it. A
/// call that panics on it is lost alone (see [`super::panic_guard`]).
pub(super) fn route(calls: &mut Calls, address: SocketAddr, source: SocketAddr, data: &[u8]) {
    let now = Instant::now();
    // Each call looks for the peer the datagram belongs to and, finding it, handles it: one
    // parse and one search per call asked, not a second for the call that takes it.
    let mut failed = None;
    for (session, call) in calls.iter_mut() {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            call.sfu.handle_receive(now, source, address, data)
        })) {
            Ok(false) => continue,
            Ok(true) => return,
            Err(_) => {
                failed = Some(*session);
                break;
            }
        }
    }
    match failed {
        Some(session) => lose(calls, session),
        None => telemetry::media::unrouted_datagram(),
    }
}
