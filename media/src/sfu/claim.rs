//! Whether a call could take a datagram from an address the worker has not routed yet, asked
//! without handling it. Anyone can send to the media port from any address, so such a datagram
//! may be asked of many calls (those the worker's index names, or all of them, rationed): the
//! answer must be cheap, and the datagram is parsed once for all of them ([`Datagram`]), not
//! once per call. Handling it is left to the call that
//! claims it ([`Sfu::handle_receive`], which parses it again). `claim` asks what
//! `handle_receive` asks, in the same order; a test holds the two to the same answers.

use std::fmt::{Debug, Display};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use str0m::Input;
use str0m::ice::StunMessage;
use str0m::net::{Protocol, Receive};

use super::Sfu;
use crate::phone;

/// A datagram as the calls are asked about it: parsed once for the WebRTC peers (`None` if
/// it is nothing str0m reads: then only a phone can take it).
pub struct Datagram<'a> {
    source: SocketAddr,
    data: &'a [u8],
    webrtc: Option<Input<'a>>,
    stun: Stun<'a>,
}

/// What a datagram is as STUN, which says which call it can be for without asking them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stun<'a> {
    /// Not STUN: a phone's, or media or DTLS of a peer.
    No,
    /// A Binding request (an ICE check) whose USERNAME starts with this: only the peer whose
    /// connection has that user fragment can take it ([`Sfu::local_ufrags`]).
    Check(&'a str),
    /// STUN nobody here takes: the server is ICE-lite, so it sends no checks and expects no
    /// answers, and a check without a USERNAME is refused.
    Other,
}

impl<'a> Datagram<'a> {
    pub fn new(now: Instant, source: SocketAddr, destination: SocketAddr, data: &'a [u8]) -> Self {
        let webrtc = Receive::new(Protocol::Udp, source, destination, data)
            .ok()
            .map(|r| Input::Receive(now, r));
        Self {
            source,
            data,
            webrtc,
            stun: stun(data),
        }
    }

    pub fn stun(&self) -> Stun<'a> {
        self.stun
    }
}

/// RFC 8489: the first two bits zero and the magic cookie mark STUN (RFC 7983's demultiplexing
/// looks only at the first byte; the cookie keeps RTP with an odd first byte out).
fn stun(data: &[u8]) -> Stun<'_> {
    const MAGIC_COOKIE: [u8; 4] = 0x2112_a442_u32.to_be_bytes();
    if data.len() < 20 || data[0] > 3 || data[4..8] != MAGIC_COOKIE {
        return Stun::No;
    }
    match StunMessage::parse(data) {
        Ok(m) if m.is_binding_request() => m
            .username()
            .and_then(|u| u.split_once(':'))
            .map_or(Stun::Other, |(local, _)| Stun::Check(local)),
        _ => Stun::Other,
    }
}

/// Where a phone sends from ([`Sfu::phone_addresses`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhoneAddresses {
    pub rtp: SocketAddr,
    pub rtcp: SocketAddr,
    /// The host its SIP came from, if another.
    pub signalling: Option<IpAddr>,
}

/// How a call would take a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    No,
    /// A phone of the call sends from its source address: asked before any other call, as
    /// the address may be another call's phone's implied RTCP port (docs/sip.md, NAT).
    PhoneHere,
    /// A phone's RTCP, or a WebRTC peer's (its ICE credentials, or an address its checks
    /// found).
    Yes,
}

impl<P: Copy + Ord + Debug + Display> Sfu<P> {
    /// Whether this call would take `datagram` ([`Self::handle_receive`] would return true),
    /// without changing anything.
    pub fn claim(&self, datagram: &Datagram<'_>) -> Claim {
        if self.has_phone_at(datagram.source) {
            return Claim::PhoneHere;
        }
        let phones = self.phones.iter().map(|(k, p)| (*k, p));
        if phone::owner(phones, datagram.source, datagram.data).is_some() {
            return Claim::Yes;
        }
        match &datagram.webrtc {
            Some(input) if self.peers.values().any(|p| p.rtc.accepts(input)) => Claim::Yes,
            _ => Claim::No,
        }
    }
}
