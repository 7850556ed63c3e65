//! Calls Tandem places (SPEC V5): a CSR has their registered softphone rung into a session.
//! The client side of an INVITE (RFC 3261 13.2, 17.1.1): our offer names the session's media
//! worker; the INVITE is repeated over UDP until a provisional response; nobody answering in
//! time gets a CANCEL; every final response is acknowledged (a 2xx by an ACK of its own, a
//! failure in its transaction), and a repeated final response gets the same ACK again. Once
//! answered the call is like any other: BYE either way, hold by the phone's re-INVITE.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rsip::SipMessage;
use rsip::prelude::*;

use super::{
    ALLOW, Call, CallEvent, CallState, Ended, Endpoint, LegId, Output, Tally, branch,
    request_in_dialog, tag,
};
use crate::sip::message;
use crate::sip::sdp;
use crate::sip::transaction::{self, Peer, Send, TxKey};

/// What the owner asks to ring.
#[derive(Clone, Debug)]
pub struct Dial {
    /// The account whose most recently registered softphone is rung.
    pub user: String,
    /// Where the phone's audio is to go (the session's media worker).
    pub local: SocketAddr,
    /// How long it may ring before the call is given up with CANCEL.
    pub ring: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DialError {
    #[error("no softphone of this account is registered")]
    NotRegistered,
    #[error("the SIP endpoint is at its call limit")]
    TooManyCalls,
    /// One ringing call per account, so one CSR cannot fill the call limit with rings.
    #[error("this account's softphone is already being rung")]
    AlreadyRinging,
    #[error("the registered contact cannot be called")]
    BadContact,
}

/// An INVITE of ours until its final response, and the ACK of that response after.
pub(super) struct Dialing {
    /// The account rung.
    user: String,
    branch: String,
    request_uri: String,
    request: Vec<u8>,
    resend: Option<(Instant, Duration)>,
    /// Given up at this time: no response at all (timer B), or none to the CANCEL.
    give_up: Instant,
    ring_until: Instant,
    provisional: bool,
    /// The call is to be cancelled (sent once a provisional response allows it).
    cancel: bool,
    cancel_sent: bool,
    /// Given up without any response (or its connection went): a final response that still
    /// comes is acknowledged (and a 2xx hung up) without telling the owner again.
    gave_up: bool,
    ack: Option<Vec<u8>>,
}

impl Dialing {
    pub(super) fn branch(&self) -> &str {
        &self.branch
    }
}

impl Endpoint {
    /// Rings `dial.user`'s softphone. The answer comes as [`CallEvent::Media`] (the call is
    /// then confirmed), a failure as [`CallEvent::Ended`] with `Declined`, `NoAnswer` or
    /// `Unreachable`. [`Endpoint::hangup`] before the answer cancels it.
    pub fn dial(&mut self, now: Instant, dial: Dial) -> Result<(LegId, Vec<Output>), DialError> {
        if self.active_calls() >= self.config.max_calls {
            return Err(DialError::TooManyCalls);
        }
        if self.calls.values().any(|c| {
            c.state == CallState::Dialing && c.dialing.as_ref().is_some_and(|d| d.user == dial.user)
        }) {
            return Err(DialError::AlreadyRinging);
        }
        let binding = self
            .registrar
            .latest(&dial.user, now)
            .ok_or(DialError::NotRegistered)?;
        // Over TCP, the connection the phone registered on (Tandem opens none). Over UDP, the
        // Contact's address as RFC 3261 routes it, or where the REGISTER came from when the
        // Contact names a host by name.
        let peer = if binding.transport == "TCP" {
            Peer::Tcp(binding.source)
        } else {
            Peer::Udp(contact_address(&binding.contact).unwrap_or(binding.source))
        };
        let contact = self.config.contact;
        let (call_id, local_tag, b) = (format!("{}@tandem", tag()), tag(), branch());
        let local_uri = format!("\"Tandem\" <sip:tandem@{contact}>");
        let remote_uri = format!("<{}>", binding.contact);
        let transport = if peer.reliable() {
            ";transport=tcp"
        } else {
            ""
        };
        let body = sdp::offer(dial.local, 1);
        let request = format!(
            "INVITE {uri} SIP/2.0\r\n\
             Via: SIP/2.0/{t} {contact};branch={b};rport\r\n\
             Max-Forwards: 70\r\n\
             From: {local_uri};tag={local_tag}\r\n\
             To: {remote_uri}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:tandem@{contact}{transport}>\r\n\
             Allow: {ALLOW}\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len(),
            uri = binding.contact,
            t = peer.transport(),
        )
        .into_bytes();
        let Ok(SipMessage::Request(invite)) = message::parse(&request, true) else {
            return Err(DialError::BadContact);
        };
        let leg = self.next_leg;
        self.next_leg += 1;
        let call = Call {
            peer,
            invite,
            invite_key: TxKey {
                branch: b.clone(),
                sent_by: contact.to_string(),
                method: rsip::Method::Invite,
            },
            call_id,
            remote_tag: String::new(),
            local_tag,
            remote_uri,
            local_uri,
            state: CallState::Dialing,
            media: None,
            awaiting_answer: false,
            local: Some(dial.local),
            sdp_version: 1,
            ok: None,
            ok_cseq: 0,
            local_cseq: 1,
            our_reinvite: None,
            forget_at: None,
            remote_target: Some(binding.contact.clone()),
            dialing: Some(Dialing {
                user: dial.user.clone(),
                branch: b.clone(),
                request_uri: binding.contact.clone(),
                request: request.clone(),
                resend: (!peer.reliable()).then_some((now + transaction::T1, transaction::T1)),
                give_up: now + transaction::TIMEOUT,
                ring_until: now + dial.ring,
                provisional: false,
                cancel: false,
                cancel_sent: false,
                gave_up: false,
                ack: None,
            }),
        };
        self.calls.insert(leg, call);
        self.outgoing.insert(b, leg);
        self.tallies.push(Tally::RequestSent(rsip::Method::Invite));
        self.tallies.push(Tally::Dial("started"));
        Ok((
            leg,
            vec![Output::Send(Send {
                peer,
                bytes: request,
            })],
        ))
    }

    /// A response to one of our INVITEs.
    pub(super) fn dial_response(
        &mut self,
        now: Instant,
        leg: LegId,
        code: u16,
        r: &rsip::Response,
    ) -> Vec<Output> {
        let contact = self.config.contact;
        let mut out = Vec::new();
        let Some(c) = self.calls.get_mut(&leg) else {
            return out;
        };
        let peer = c.peer;
        let Some(d) = c.dialing.as_mut() else {
            return out;
        };
        if let Some(ack) = &d.ack {
            // A final response again: its ACK was lost.
            if code >= 200 {
                out.push(Output::Send(Send {
                    peer,
                    bytes: ack.clone(),
                }));
            }
            return out;
        }
        if code < 200 {
            d.provisional = true;
            d.resend = None;
            d.give_up = d.give_up.max(d.ring_until + transaction::TIMEOUT);
            if d.cancel && !d.cancel_sent {
                out.extend(self.send_cancel(now, leg));
            }
            return out;
        }
        let to = r
            .to_header()
            .map(|t| t.value().to_string())
            .unwrap_or_else(|_| c.remote_uri.clone());
        let cancelled = d.cancel;
        let gave_up = d.gave_up;
        if code >= 300 {
            // The ACK of a failure belongs to the INVITE's transaction (RFC 3261 17.1.1.3).
            let ack = format!(
                "ACK {} SIP/2.0\r\n\
                 Via: SIP/2.0/{} {contact};branch={};rport\r\n\
                 Max-Forwards: 70\r\n\
                 From: {};tag={}\r\n\
                 To: {to}\r\n\
                 Call-ID: {}\r\n\
                 CSeq: 1 ACK\r\n\
                 Content-Length: 0\r\n\r\n",
                d.request_uri,
                peer.transport(),
                d.branch,
                c.local_uri,
                c.local_tag,
                c.call_id,
            )
            .into_bytes();
            d.ack = Some(ack.clone());
            d.resend = None;
            c.end(now);
            out.push(Output::Send(Send { peer, bytes: ack }));
            if gave_up {
                return out;
            }
            let how = if cancelled && code == 487 {
                Ended::NoAnswer
            } else {
                Ended::Declined(code)
            };
            self.tallies.push(Tally::Dial(if how == Ended::NoAnswer {
                "no_answer"
            } else {
                "declined"
            }));
            out.push(Output::Event(CallEvent::Ended { leg, how }));
            return out;
        }
        // Answered: the dialog exists from here (RFC 3261 13.2.2.4).
        let remote_tag = r
            .to_header()
            .ok()
            .and_then(|t| t.tag().ok().flatten())
            .map(|t| t.to_string())
            .unwrap_or_default();
        c.remote_tag = remote_tag.clone();
        c.remote_uri = to;
        if let Some(target) = r.contact_header().ok().and_then(|h| h.uri().ok()) {
            // The dialog's requests (the ACK first) go to the 200's Contact (RFC 3261 12.1.2).
            if let Peer::Udp(_) = c.peer
                && let Some(addr) = contact_address(&target.to_string())
            {
                c.peer = Peer::Udp(addr);
            }
            c.remote_target = Some(target.to_string());
        }
        let peer = c.peer;
        self.dialogs
            .insert((c.call_id.clone(), c.local_tag.clone(), remote_tag), leg);
        let mut ack = request_in_dialog(c, "ACK", &branch(), contact);
        ack.push_str("Content-Length: 0\r\n\r\n");
        let ack = ack.into_bytes();
        if let Some(d) = c.dialing.as_mut() {
            d.ack = Some(ack.clone());
            d.resend = None;
        }
        out.push(Output::Send(Send { peer, bytes: ack }));
        c.state = CallState::Confirmed;
        let media = sdp::negotiate(&r.body);
        match media {
            Ok(media) if !cancelled && !gave_up => {
                // Answered and acknowledged: the dialog is confirmed.
                let media = super::in_dialog::agreed(media, peer, true);
                c.media = Some(media.clone());
                self.tallies.push(Tally::Dial("answered"));
                out.push(Output::Event(CallEvent::Media { leg, media }));
            }
            answer => {
                // Answered after we gave up (the CANCEL crossed the 200), or with an answer
                // we cannot use: hang up, and the owner hears it failed.
                let how = match answer {
                    Err(e) => {
                        tracing::debug!(error = %e, "a softphone answered with unusable SDP");
                        Ended::Declined(488)
                    }
                    Ok(_) => Ended::NoAnswer,
                };
                if !gave_up {
                    self.tallies.push(Tally::Dial(if how == Ended::NoAnswer {
                        "no_answer"
                    } else {
                        "declined"
                    }));
                    out.push(Output::Event(CallEvent::Ended { leg, how }));
                }
                out.extend(self.hangup(now, leg));
            }
        }
        out
    }

    /// Gives up ringing: CANCEL now if a provisional response came, else as soon as one does.
    pub(super) fn cancel_dial(&mut self, now: Instant, leg: LegId) -> Vec<Output> {
        let Some(d) = self.calls.get_mut(&leg).and_then(|c| c.dialing.as_mut()) else {
            return Vec::new();
        };
        d.cancel = true;
        if d.provisional && !d.cancel_sent {
            self.send_cancel(now, leg)
        } else {
            Vec::new()
        }
    }

    fn send_cancel(&mut self, now: Instant, leg: LegId) -> Vec<Output> {
        let contact = self.config.contact;
        let Some(c) = self.calls.get_mut(&leg) else {
            return Vec::new();
        };
        let Some(d) = c.dialing.as_mut() else {
            return Vec::new();
        };
        d.cancel_sent = true;
        d.give_up = now + transaction::TIMEOUT;
        // The same request line, Via, From, To, Call-ID and CSeq number (RFC 3261 9.1).
        let cancel = format!(
            "CANCEL {} SIP/2.0\r\n\
             Via: SIP/2.0/{} {contact};branch={};rport\r\n\
             Max-Forwards: 70\r\n\
             From: {};tag={}\r\n\
             To: {}\r\n\
             Call-ID: {}\r\n\
             CSeq: 1 CANCEL\r\n\
             Content-Length: 0\r\n\r\n",
            d.request_uri,
            c.peer.transport(),
            d.branch,
            c.local_uri,
            c.local_tag,
            c.remote_uri,
            c.call_id,
        );
        self.tallies.push(Tally::RequestSent(rsip::Method::Cancel));
        let (peer, b) = (c.peer, d.branch.clone());
        // Its response names the INVITE's branch and the CANCEL method: the transaction layer
        // takes it, not `dial_response`.
        vec![Output::Send(self.tx.start_client(
            now,
            b,
            peer,
            cancel.into_bytes(),
        ))]
    }

    /// Repeats, cancels and gives up calls of ours not yet answered.
    pub(super) fn dial_timeouts(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        let ringing: Vec<LegId> = self
            .calls
            .iter()
            .filter(|(_, c)| c.state == CallState::Dialing)
            .map(|(l, _)| *l)
            .collect();
        for leg in ringing {
            let Some(c) = self.calls.get_mut(&leg) else {
                continue;
            };
            let peer = c.peer;
            let Some(d) = c.dialing.as_mut() else {
                continue;
            };
            if now >= d.give_up {
                let how = if d.provisional || d.cancel_sent {
                    Ended::NoAnswer
                } else {
                    Ended::Unreachable
                };
                give_up(c, now);
                self.tallies.push(Tally::Dial(if how == Ended::NoAnswer {
                    "no_answer"
                } else {
                    "unreachable"
                }));
                out.push(Output::Event(CallEvent::Ended { leg, how }));
                continue;
            }
            if let Some((at, interval)) = d.resend
                && now >= at
            {
                out.push(Output::Send(Send {
                    peer,
                    bytes: d.request.clone(),
                }));
                // Timer A doubles without the T2 cap of other requests (RFC 3261 17.1.1.2).
                let next = interval * 2;
                d.resend = Some((now + next, next));
            }
            if now >= d.ring_until && !d.cancel {
                out.extend(self.cancel_dial(now, leg));
            }
        }
        out
    }

    /// The TCP connection `peer` closed (or was found gone when sending): Tandem opens no
    /// connections, so the softphones registered over it cannot be reached and are dropped,
    /// and ringing through it fails at once instead of after timer B.
    pub fn connection_lost(&mut self, now: Instant, peer: Peer) -> Vec<Output> {
        let Peer::Tcp(source) = peer else {
            return Vec::new();
        };
        self.registrar.forget_source("TCP", source);
        let mut out = Vec::new();
        for (&leg, c) in &mut self.calls {
            if c.peer != peer || c.state != CallState::Dialing {
                continue;
            }
            give_up(c, now);
            self.tallies.push(Tally::Dial("unreachable"));
            out.push(Output::Event(CallEvent::Ended {
                leg,
                how: Ended::Unreachable,
            }));
        }
        out
    }

    /// When a call of ours next needs attention.
    pub(super) fn dial_poll(&self) -> Option<Instant> {
        self.calls
            .values()
            .filter(|c| c.state == CallState::Dialing)
            .filter_map(|c| c.dialing.as_ref())
            .flat_map(|d| {
                [
                    Some(d.give_up),
                    d.resend.map(|(at, _)| at),
                    (!d.cancel).then_some(d.ring_until),
                ]
            })
            .flatten()
            .min()
    }
}

/// Ends a call of ours that got nowhere: nothing more is sent, and a final response that
/// still comes is only acknowledged (and a 2xx hung up).
fn give_up(c: &mut Call, now: Instant) {
    if let Some(d) = c.dialing.as_mut() {
        d.gave_up = true;
        d.resend = None;
    }
    c.end(now);
}

/// Whether a response is to an INVITE (the CSeq method), so a CANCEL's goes elsewhere.
pub(super) fn to_invite(r: &rsip::Response) -> bool {
    r.cseq_header()
        .ok()
        .and_then(|c| c.typed().ok())
        .is_some_and(|c| c.method == rsip::Method::Invite)
}

/// The IP address and port of a contact URI (5060 when it names none), if its host is one.
fn contact_address(contact: &str) -> Option<SocketAddr> {
    let uri = rsip::Uri::try_from(contact).ok()?;
    let ip = match uri.host_with_port.host {
        rsip::Host::IpAddr(ip) => ip,
        rsip::Host::Domain(_) => return None,
    };
    let port = uri.host_with_port.port.map_or(5060, |p| *p.value());
    Some(SocketAddr::new(ip, port))
}
