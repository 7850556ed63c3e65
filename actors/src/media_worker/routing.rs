//! Which call a datagram from the worker's socket is for.

use std::net::SocketAddr;
use std::time::Instant;

use super::call::Calls;
use super::lobby::Waiting;
use super::panic_guard::lose;
use crate::telemetry;

/// Hands the datagram to whoever it belongs to: a phone at the service prompt, a call's peer,
/// or else a phone whose RTP it is from a wrong address (counted and reported there). Counted
/// when nobody's.
pub(super) fn receive(
    calls: &mut Calls,
    lobby: &mut Waiting,
    address: SocketAddr,
    source: SocketAddr,
    data: &[u8],
) {
    if lobby.lobby.handle_receive(Instant::now(), source, data)
        || route(calls, address, source, data)
    {
        return;
    }
    // Rare (strays and NAT trouble), so worth a second look at every phone.
    let stray =
        lobby.lobby.stray(source, data) || calls.values_mut().any(|c| c.sfu.stray(source, data));
    if !stray {
        telemetry::media::unrouted_datagram();
    }
}

/// Hands the datagram to the call whose peer it belongs to: false if none took it. A call
/// that panics on it is lost alone (see [`super::panic_guard`]).
fn route(calls: &mut Calls, address: SocketAddr, source: SocketAddr, data: &[u8]) -> bool {
    let now = Instant::now();
    // Each call looks for the peer the datagram belongs to and, finding it, handles it: one
    // parse and one search per call asked, not a second for the call that takes it.
    let mut failed = None;
    for (session, call) in calls.iter_mut() {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            call.sfu.handle_receive(now, source, address, data)
        })) {
            Ok(false) => continue,
            Ok(true) => return true,
            Err(_) => {
                failed = Some(*session);
                break;
            }
        }
    }
    match failed {
        Some(session) => {
            lose(calls, session);
            true
        }
        None => false,
    }
}
