//! Which call a datagram from the worker's socket is for.
//!
//! Issue 19: a datagram goes first to the call that took the last one from its address (a
//! map from address to call), and only when that call does not take it are the others asked,
//! a call with a phone at that address first. A peer's address rarely changes, so nearly every
//! datagram asks one call, not all of them. For a datagram from an address it does not know,
//! an index says which calls could take it ([`Owners`]: by its ICE check's user fragment, or
//! a phone's address), and those say cheaply whether they would ([`Claim`]): a flood from new
//! addresses costs the worker a lookup, not a look at every call.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use tandem_media::sfu::{Claim, Datagram};

use super::call::Calls;
use super::lobby::Waiting;
use super::owners::Owners;
use super::panic_guard::lose;
use crate::ids::SessionId;
use crate::telemetry;

/// Most addresses remembered; past it one is forgotten for each new one. Not all at once: a
/// forgotten peer's media is found again only by a rationed look at every call, or by its next
/// ICE check ([`Owners`]).
const MAX_ROUTES: usize = 16_384;

/// Which call took the last datagram from each address, and which calls could take one from
/// an address it does not know ([`Owners`]).
#[derive(Default)]
pub(super) struct Routes {
    last: HashMap<SocketAddr, SessionId>,
    owners: Owners,
}

impl Routes {
    fn remember(&mut self, source: SocketAddr, session: SessionId) {
        if self.last.len() >= MAX_ROUTES
            && !self.last.contains_key(&source)
            && let Some(any) = self.last.keys().next().copied()
        {
            self.last.remove(&any);
        }
        self.last.insert(source, session);
    }

    /// A phone now sends from `source` (it joined a call, or moved): where datagrams from
    /// there went before is no guide (another call's phone may have taken them as RTCP).
    pub(super) fn forget(&mut self, source: SocketAddr) {
        self.last.remove(&source);
    }

    /// The session's call ended: nothing comes from its addresses any more, so they make no
    /// room for others' when the map is full.
    pub(super) fn forget_session(&mut self, session: SessionId) {
        self.last.retain(|_, s| *s != session);
    }

    /// A command may have changed the calls' connections or phones.
    pub(super) fn calls_changed(&mut self) {
        self.owners.calls_changed();
    }
}

/// Which calls a datagram gave something to do.
pub(super) enum Touched {
    /// None (the lobby took it, or nobody did).
    None,
    One(SessionId),
}

/// Hands the datagram to whoever it belongs to: a phone at the service prompt, a call's peer,
/// or else a phone whose RTP it is from a wrong address (counted and reported there). Counted
/// when nobody's.
pub(super) fn receive(
    calls: &mut Calls,
    routes: &mut Routes,
    lobby: &mut Waiting,
    address: SocketAddr,
    source: SocketAddr,
    data: &[u8],
) -> Touched {
    if lobby.lobby.handle_receive(Instant::now(), source, data) {
        return Touched::None;
    }
    if let Some(session) = route(calls, routes, address, source, data) {
        return Touched::One(session);
    }
    // Rare (strays and NAT trouble), so worth a second look at the phones on its host.
    if lobby.lobby.stray(source, data) {
        return Touched::None;
    }
    for session in routes.owners.phone_hosts(calls, source.ip()) {
        if calls
            .get_mut(session)
            .is_some_and(|c| c.sfu.stray(source, data))
        {
            return Touched::One(*session);
        }
    }
    telemetry::media::unrouted_datagram();
    Touched::None
}

/// Hands the datagram to the call whose peer it belongs to: which took it, if one did. The call
/// that took the last datagram from this address is asked first. A call that panics on it is
/// lost alone (see [`super::panic_guard`]).
fn route(
    calls: &mut Calls,
    routes: &mut Routes,
    address: SocketAddr,
    source: SocketAddr,
    data: &[u8],
) -> Option<SessionId> {
    let now = Instant::now();
    let known = routes.last.get(&source).copied();
    // Each call looks for the peer the datagram belongs to and, finding it, handles it: one
    // parse and one search per call asked, not a second for the call that takes it.
    let offer = |calls: &mut Calls, session: SessionId| -> Asked {
        let Some(call) = calls.get_mut(&session) else {
            return Asked::Declined;
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            call.sfu.handle_receive(now, source, address, data)
        })) {
            Ok(true) => Asked::Taken(session),
            Ok(false) => Asked::Declined,
            Err(_) => Asked::Panicked(session),
        }
    };
    let mut asked = known.map_or(Asked::Declined, |s| offer(calls, s));
    if asked == Asked::Declined {
        // Rare in use (a new address, or a stray), but anyone can send them. The datagram is
        // parsed once; the index names the calls that could take it ([`Owners`]), each says
        // whether it would, and only those are offered it, first any whose phone sends from
        // this address, so that a neighbouring phone in another call, whose implied RTCP port
        // it is, does not take its datagrams as RTCP (docs/sip.md, NAT). Parsing and claiming
        // are guarded as handling is: a panic in the media stack loses the call it happened in
        // (a parse that panics: the datagram), never the worker.
        let guard = |f: &mut dyn FnMut() -> Claim| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok()
        };
        let Ok(datagram) = std::panic::catch_unwind(|| Datagram::new(now, source, address, data))
        else {
            return None;
        };
        let mut panicked = Vec::new();
        let mut claimed: Vec<(Claim, SessionId)> = Vec::new();
        for session in routes.owners.candidates(calls, now, source, &datagram) {
            if Some(session) == known {
                continue;
            }
            let Some(call) = calls.get(&session) else {
                continue;
            };
            match guard(&mut || call.sfu.claim(&datagram)) {
                None => panicked.push(session),
                Some(Claim::No) => {}
                Some(claim) => claimed.push((claim, session)),
            }
        }
        for session in panicked {
            lose(calls, session);
        }
        claimed.sort_by_key(|(claim, _)| *claim != Claim::PhoneHere);
        for (_, session) in claimed {
            asked = offer(calls, session);
            if asked != Asked::Declined {
                break;
            }
        }
    }
    match asked {
        Asked::Declined => None,
        Asked::Panicked(session) => {
            lose(calls, session);
            Some(session)
        }
        Asked::Taken(session) => {
            if known != Some(session) {
                routes.remember(source, session);
            }
            Some(session)
        }
    }
}

/// What a call did with a datagram it was offered.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Asked {
    Taken(SessionId),
    Declined,
    /// Handling it panicked: the call is to be dropped.
    Panicked(SessionId),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_route_map_forgets_one_address_for_each_new_one() {
        let mut routes = Routes::default();
        let session = SessionId::random();
        let at = |i: usize| SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 4000));
        for i in 0..MAX_ROUTES + 10 {
            routes.remember(at(i), session);
        }
        assert_eq!(routes.last.len(), MAX_ROUTES);
        let first_kept = (0..MAX_ROUTES)
            .filter(|i| routes.last.contains_key(&at(*i)))
            .count();
        assert_eq!(first_kept, MAX_ROUTES - 10, "ten forgotten, not all");
    }

    #[test]
    fn an_ended_session_s_addresses_are_forgotten() {
        let mut routes = Routes::default();
        let (ended, going_on) = (SessionId::random(), SessionId::random());
        let at = |port: u16| SocketAddr::from(([10, 0, 0, 1], port));
        routes.remember(at(1), ended);
        routes.remember(at(2), going_on);
        routes.remember(at(3), ended);
        routes.forget_session(ended);
        assert_eq!(routes.last.keys().collect::<Vec<_>>(), [&at(2)]);
    }
}
