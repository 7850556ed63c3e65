//! Whether Tandem may send to a phone: the rule that keeps its media port from being used to
//! flood a third party. An SDP names any address its sender likes, so an INVITE that is never
//! acknowledged (or a forged one) would otherwise aim about 540 times its own bytes of RTP at an
//! address of the sender's choosing.
//!
//! Like ICE's consent freshness (RFC 7675) for WebRTC, a phone must show it wants what it is
//! sent: media goes only once the SIP dialog is confirmed (the phone's ACK of our answer, or
//! our ACK of its answer to a call Tandem placed) and the phone has sent usable RTP or RTCP
//! from the address its SDP names (symmetric RTP, RFC 4961): a datagram from there is what a
//! sender who merely names a victim's address cannot make. It stops again once nothing has come
//! from the phone for [`CONSENT_LIFETIME`], and resumes when something does. docs/sip.md says
//! what this asks of phones behind NAT.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::PhoneMedia;

/// How long a phone's consent lasts after its last RTP or RTCP: two of the longest RTCP
/// intervals (RFC 3550 6.2: 5 s, randomised up to 7.5 s), so a phone that sends only RTCP
/// (silence suppression without comfort noise, or `a=recvonly`) keeps hearing the call. Past
/// it, what a forged address gets from one spoofed packet is bounded by this much audio.
pub const CONSENT_LIFETIME: Duration = Duration::from_secs(15);

/// Why something due to a phone was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Withheld {
    /// The dialog is not confirmed: no ACK yet.
    Unacknowledged,
    /// Nothing usable has come from the address the phone's SDP names.
    Unverified,
    /// Nothing has come from the phone for [`CONSENT_LIFETIME`].
    Expired,
}

impl Withheld {
    pub const ALL: [Self; 3] = [Self::Unacknowledged, Self::Unverified, Self::Expired];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unacknowledged => "unacknowledged",
            Self::Unverified => "unverified",
            Self::Expired => "expired",
        }
    }
}

/// One phone's consent to receive, as the phone's own packets show it.
#[derive(Clone, Debug)]
pub struct Consent {
    acknowledged: bool,
    remote: SocketAddr,
    rtcp: SocketAddr,
    /// Something usable came from `remote` (or from `rtcp` on the same host) since the
    /// address was agreed.
    verified: bool,
    /// When the last usable packet came from either of the phone's addresses.
    last_heard: Option<Instant>,
    /// Something usable came from `rtcp`.
    rtcp_heard: bool,
}

impl Consent {
    pub fn new(media: &PhoneMedia) -> Self {
        Self {
            acknowledged: media.confirmed,
            remote: media.remote,
            rtcp: media.rtcp,
            verified: false,
            last_heard: None,
            rtcp_heard: false,
        }
    }

    /// What was agreed changed (the ACK, a re-INVITE): a new address must show itself again.
    pub fn update(&mut self, media: &PhoneMedia) {
        self.acknowledged = media.confirmed;
        if media.remote != self.remote || media.rtcp != self.rtcp {
            *self = Self::new(media);
        }
    }

    /// A usable packet (RTP of an agreed payload type, or readable RTCP) came from `source`,
    /// one of the phone's addresses. The RTCP address proves the phone only on the RTP
    /// address's host: an SDP may name another host for it (RFC 3605), and a sender naming a
    /// victim for RTP and itself for RTCP must not pass.
    pub fn heard(&mut self, now: Instant, source: SocketAddr) {
        if source == self.rtcp {
            self.rtcp_heard = true;
        }
        if source == self.remote || (source == self.rtcp && source.ip() == self.remote.ip()) {
            self.verified = true;
            self.last_heard = Some(now);
        } else if self.verified && source == self.rtcp {
            self.last_heard = Some(now);
        }
    }

    /// Whether RTP may go to the phone's RTP address now, and why not.
    pub fn check(&self, now: Instant) -> Result<(), Withheld> {
        if !self.acknowledged {
            return Err(Withheld::Unacknowledged);
        }
        match self.last_heard {
            Some(t) if self.verified && now < t + CONSENT_LIFETIME => Ok(()),
            Some(_) if self.verified => Err(Withheld::Expired),
            _ => Err(Withheld::Unverified),
        }
    }

    /// Whether an RTCP report may go to the phone's RTCP address: as for RTP, and, when that
    /// address is on another host, only once something came from it.
    pub fn check_rtcp(&self, now: Instant) -> Result<(), Withheld> {
        self.check(now)?;
        if self.rtcp.ip() == self.remote.ip() || self.rtcp_heard {
            Ok(())
        } else {
            Err(Withheld::Unverified)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::voice_codec::VoiceCodec;

    fn media(confirmed: bool, remote: &str, rtcp: &str) -> PhoneMedia {
        PhoneMedia {
            remote: remote.parse().unwrap(),
            rtcp: rtcp.parse().unwrap(),
            codec: VoiceCodec::Pcmu,
            payload_type: 0,
            dtmf_payload_type: None,
            send: true,
            receive: true,
            confirmed,
            signalling: None,
        }
    }

    #[test]
    fn nothing_goes_out_before_the_ack_and_the_phones_own_packet() {
        let t0 = Instant::now();
        let phone: SocketAddr = "10.0.0.9:4000".parse().unwrap();
        let mut c = Consent::new(&media(false, "10.0.0.9:4000", "10.0.0.9:4001"));
        assert_eq!(c.check(t0), Err(Withheld::Unacknowledged));
        // RTP before the ACK (phones start sending on the 200) counts once the ACK comes.
        c.heard(t0, phone);
        assert_eq!(c.check(t0), Err(Withheld::Unacknowledged));
        c.update(&media(true, "10.0.0.9:4000", "10.0.0.9:4001"));
        assert_eq!(c.check(t0), Ok(()));

        // Acknowledged, but never heard from: a forged SDP's victim never sends to us.
        let mut c = Consent::new(&media(true, "10.0.0.9:4000", "10.0.0.9:4001"));
        assert_eq!(c.check(t0), Err(Withheld::Unverified));
        // Another address, even on the same host, proves nothing.
        c.heard(t0, "10.0.0.9:5000".parse().unwrap());
        c.heard(t0, "192.0.2.7:4000".parse().unwrap());
        assert_eq!(c.check(t0), Err(Withheld::Unverified));
        c.heard(t0, phone);
        assert_eq!(c.check(t0), Ok(()));
    }

    #[test]
    fn consent_expires_without_packets_and_returns_with_them() {
        let t0 = Instant::now();
        let phone: SocketAddr = "10.0.0.9:4000".parse().unwrap();
        let mut c = Consent::new(&media(true, "10.0.0.9:4000", "10.0.0.9:4001"));
        c.heard(t0, phone);
        let almost = t0 + CONSENT_LIFETIME - Duration::from_millis(1);
        assert_eq!(c.check(almost), Ok(()));
        assert_eq!(c.check(t0 + CONSENT_LIFETIME), Err(Withheld::Expired));
        // Its RTCP alone (from its RTCP port) keeps it: a phone that only listens.
        let later = t0 + CONSENT_LIFETIME * 2;
        c.heard(later, "10.0.0.9:4001".parse().unwrap());
        assert_eq!(c.check(later + CONSENT_LIFETIME / 2), Ok(()));
    }

    #[test]
    fn an_rtcp_address_on_another_host_proves_nothing() {
        let t0 = Instant::now();
        // The victim for RTP, the sender's own address for RTCP.
        let mut c = Consent::new(&media(true, "192.0.2.50:4000", "203.0.113.9:9"));
        c.heard(t0, "203.0.113.9:9".parse().unwrap());
        assert_eq!(c.check(t0), Err(Withheld::Unverified));
        assert_eq!(c.check_rtcp(t0), Err(Withheld::Unverified));
        // Once the RTP address shows itself, reports go to that RTCP address only if it too
        // sent something.
        let mut c = Consent::new(&media(true, "192.0.2.50:4000", "203.0.113.9:9"));
        c.heard(t0, "192.0.2.50:4000".parse().unwrap());
        assert_eq!(c.check(t0), Ok(()));
        assert_eq!(c.check_rtcp(t0), Err(Withheld::Unverified));
        c.heard(t0, "203.0.113.9:9".parse().unwrap());
        assert_eq!(c.check_rtcp(t0), Ok(()));
        // Its RTCP port on the RTP host is fine unheard (phones without rtcp-mux).
        let mut c = Consent::new(&media(true, "10.0.0.9:4000", "10.0.0.9:4001"));
        c.heard(t0, "10.0.0.9:4000".parse().unwrap());
        assert_eq!(c.check_rtcp(t0), Ok(()));
    }

    #[test]
    fn a_new_address_must_show_itself_again() {
        let t0 = Instant::now();
        let mut c = Consent::new(&media(true, "10.0.0.9:4000", "10.0.0.9:4000"));
        c.heard(t0, "10.0.0.9:4000".parse().unwrap());
        assert_eq!(c.check(t0), Ok(()));
        // Hold and resume at the same address keep it.
        c.update(&media(true, "10.0.0.9:4000", "10.0.0.9:4000"));
        assert_eq!(c.check(t0), Ok(()));
        // A re-INVITE naming another address starts over.
        c.update(&media(true, "10.0.0.10:4000", "10.0.0.10:4000"));
        assert_eq!(c.check(t0), Err(Withheld::Unverified));
        c.heard(t0, "10.0.0.9:4000".parse().unwrap());
        assert_eq!(c.check(t0), Err(Withheld::Unverified));
        c.heard(t0, "10.0.0.10:4000".parse().unwrap());
        assert_eq!(c.check(t0), Ok(()));
    }
}
