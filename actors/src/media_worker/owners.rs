//! Which calls could take a datagram from an address the worker has not routed, found without
//! asking them all. Anyone can send to the media port from any address, so asking every call
//! about every such datagram would let a flood cost the worker in proportion to its calls.
//!
//! - Whatever comes from a phone's address (or its RTCP port) may be that phone's: those calls
//!   are always asked.
//! - An ICE check names the connection it is for: the first half of its USERNAME is the
//!   server's user fragment on that connection, so it goes to one more call at most.
//! - Other STUN is nobody else's: the server is ICE-lite and sends no checks of its own.
//! - Anything else, from where no phone is, can only be a WebRTC peer's media or DTLS. It comes
//!   from an address its checks came from, which the route map remembers; only if the map has
//!   forgotten it (when full it forgets one for each new one) must every call be asked, so that
//!   look is rationed ([`SCANS_PER_SECOND`]). A peer whose datagrams miss it is found again by
//!   its next check.
//!
//! The index is built from the calls when first needed after a command (only commands add
//! connections and phones, or change where phones send from).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tandem_media::sfu::{Datagram, Stun};

use super::call::Calls;
use crate::ids::SessionId;

/// Looks at every call for a non-STUN datagram from an address nobody is known at, at most
/// this many a second.
const SCANS_PER_SECOND: u32 = 1_000;

#[derive(Default)]
pub(super) struct Owners {
    built: bool,
    by_ufrag: HashMap<String, SessionId>,
    /// Every phone's RTP and RTCP address.
    by_phone: HashMap<SocketAddr, Vec<SessionId>>,
    /// Every phone's hosts (its RTP's and its SIP's), for RTP from a wrong port.
    by_phone_host: HashMap<IpAddr, Vec<SessionId>>,
    scans_left: u32,
    scans_refill: Option<Instant>,
}

impl Owners {
    /// A command may have added or removed a connection or a phone.
    pub(super) fn calls_changed(&mut self) {
        self.built = false;
    }

    fn build(&mut self, calls: &mut Calls) {
        if self.built {
            return;
        }
        self.built = true;
        self.by_ufrag.clear();
        self.by_phone.clear();
        self.by_phone_host.clear();
        for (session, call) in calls.iter_mut() {
            for ufrag in call.sfu.local_ufrags() {
                self.by_ufrag.insert(ufrag, *session);
            }
            for phone in call.sfu.phone_addresses() {
                for address in [phone.rtp, phone.rtcp] {
                    self.by_phone.entry(address).or_default().push(*session);
                }
                for host in [Some(phone.rtp.ip()), phone.signalling]
                    .into_iter()
                    .flatten()
                {
                    self.by_phone_host.entry(host).or_default().push(*session);
                }
            }
        }
        // Each call once, here rather than at every lookup (a phone's RTP and RTCP address, or
        // its RTP and SIP host, are often the same; a call may have several phones).
        for sessions in self
            .by_phone
            .values_mut()
            .chain(self.by_phone_host.values_mut())
        {
            sessions.sort_unstable();
            sessions.dedup();
        }
    }

    /// The calls that could take `datagram` from `source`, each once, in no order: those with a
    /// phone at that address (a phone takes whatever comes from there), and the one an ICE check
    /// names, or else (not STUN, no phone) every call while the ration lasts.
    pub(super) fn candidates(
        &mut self,
        calls: &mut Calls,
        now: Instant,
        source: SocketAddr,
        datagram: &Datagram<'_>,
    ) -> Vec<SessionId> {
        self.build(calls);
        let mut found = self.by_phone.get(&source).cloned().unwrap_or_default();
        match datagram.stun() {
            Stun::Check(ufrag) => {
                // The checked call may also be one with a phone here.
                if let Some(s) = self.by_ufrag.get(ufrag).filter(|s| !found.contains(s)) {
                    found.push(*s);
                }
            }
            Stun::Other => {}
            Stun::No if found.is_empty() && self.scan(now) => found.extend(calls.keys().copied()),
            Stun::No => {}
        }
        found
    }

    /// The calls with a phone on `host`, whose RTP from a port it did not agree may be that
    /// phone's, from behind a NAT.
    pub(super) fn phone_hosts(&mut self, calls: &mut Calls, host: IpAddr) -> &[SessionId] {
        self.build(calls);
        self.by_phone_host.get(&host).map_or(&[], Vec::as_slice)
    }

    /// Whether a look at every call is left this second.
    fn scan(&mut self, now: Instant) -> bool {
        if self.scans_refill.is_none_or(|at| now >= at) {
            self.scans_refill = Some(now + Duration::from_secs(1));
            self.scans_left = SCANS_PER_SECOND;
        }
        let left = self.scans_left > 0;
        self.scans_left = self.scans_left.saturating_sub(1);
        left
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_look_at_every_call_is_rationed_per_second() {
        let mut owners = Owners::default();
        let t0 = Instant::now();
        let given = (0..3 * SCANS_PER_SECOND)
            .filter(|_| owners.scan(t0))
            .count();
        assert_eq!(given, SCANS_PER_SECOND as usize);
        assert!(!owners.scan(t0 + Duration::from_millis(999)));
        assert!(
            owners.scan(t0 + Duration::from_secs(1)),
            "a new second, new looks"
        );
    }
}
