//! Requests inside an established call: the phone's BYE and re-INVITE (hold, resume, a new
//! address: RFC 3264 8), and our own re-INVITE that moves a call's audio to another media
//! worker, with the ACK of its answer.

use std::net::SocketAddr;
use std::time::Instant;

use rsip::prelude::*;
use rsip::{Header, Request};

use super::{Call, CallEvent, CallState, Ended, Endpoint, LegId, Output, Tally, branch};
use crate::sip::message::RequestKey;
use crate::sip::sdp::{self, Negotiated};
use crate::sip::transaction::{Peer, Send, TxKey};

/// `n` as the call's owner is to use it: `confirmed` once the dialog is (the ACK of our 2xx,
/// or ours of the phone's; media is sent to a phone only then: docs/sip.md), and with the host
/// the phone's SIP comes from, which names it when its RTP comes from elsewhere.
pub(super) fn agreed(mut n: Negotiated, peer: Peer, confirmed: bool) -> Negotiated {
    n.confirmed = confirmed;
    n.signalling = Some(peer.addr().ip());
    n
}

/// The start of a request of ours in the call's dialog (RFC 3261 12.2.1.1): request line, Via,
/// From (our tag), To (theirs), Call-ID and CSeq; the caller adds the rest.
pub(super) fn request_in_dialog(
    c: &Call,
    method: &str,
    branch: &str,
    contact: SocketAddr,
) -> String {
    let target = c.remote_target.clone().unwrap_or_else(|| {
        c.invite
            .contact_header()
            .ok()
            .and_then(|h| h.uri().ok())
            .map(|u| u.to_string())
            .unwrap_or_else(|| format!("sip:{}", c.peer.addr()))
    });
    format!(
        "{method} {target} SIP/2.0\r\n\
         Via: SIP/2.0/{} {contact};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: {};tag={}\r\n\
         To: {}\r\n\
         Call-ID: {}\r\n\
         CSeq: {} {method}\r\n",
        c.peer.transport(),
        strip_tag(&c.local_uri),
        c.local_tag,
        c.remote_uri,
        c.call_id,
        c.local_cseq,
    )
}

/// A From/To value without its tag parameter.
fn strip_tag(v: &str) -> String {
    v.split(';')
        .filter(|p| !p.trim_start().to_ascii_lowercase().starts_with("tag="))
        .collect::<Vec<_>>()
        .join(";")
}

impl Endpoint {
    pub(super) fn bye(
        &mut self,
        now: Instant,
        req: Request,
        key: RequestKey,
        tx_key: TxKey,
        out: &mut Vec<Output>,
    ) {
        let Some(leg) = self.dialog_of(&key) else {
            self.reply(now, &tx_key, &req, 481, None, vec![], None, out);
            return;
        };
        self.reply(now, &tx_key, &req, 200, None, vec![], None, out);
        if let Some(c) = self.calls.get_mut(&leg)
            && c.state != CallState::Ended
        {
            c.end(now);
            out.push(Output::Event(CallEvent::Ended {
                leg,
                how: Ended::Bye,
            }));
        }
    }

    /// A re-INVITE in a call: hold, resume, or a new address (RFC 3264 8).
    pub(super) fn reinvite(
        &mut self,
        now: Instant,
        req: Request,
        key: RequestKey,
        tx_key: TxKey,
        out: &mut Vec<Output>,
    ) {
        let Some(leg) = self.dialog_of(&key) else {
            self.reply(now, &tx_key, &req, 481, None, vec![], None, out);
            return;
        };
        let Some(c) = self.calls.get(&leg) else {
            return;
        };
        let peer = c.peer;
        if c.state != CallState::Confirmed || c.our_reinvite.is_some() {
            // One offer at a time (RFC 3261 14.2).
            let extra = vec![Header::RetryAfter(rsip::headers::RetryAfter::new("1"))];
            let code = if c.state == CallState::Ended {
                481
            } else {
                491
            };
            self.reply(now, &tx_key, &req, code, None, extra, None, out);
            return;
        }
        let local = c.local.unwrap_or(self.config.contact);
        let (body, media) = if req.body.is_empty() {
            (None, None)
        } else {
            match sdp::negotiate(&req.body) {
                // A re-INVITE comes only in a confirmed dialog (checked above).
                Ok(n) => {
                    let n = agreed(n, peer, true);
                    (Some(n.clone()), Some(n))
                }
                Err(e) => {
                    let extra = vec![Header::Warning(rsip::headers::Warning::new(format!(
                        "304 tandem \"{e}\""
                    )))];
                    self.reply(now, &tx_key, &req, 488, None, extra, None, out);
                    return;
                }
            }
        };
        let c = self.calls.get_mut(&leg).expect("found above");
        c.sdp_version += 1;
        let sdp_text = match &body {
            Some(n) => sdp::answer(local, n, c.sdp_version),
            None => sdp::offer(local, c.sdp_version),
        };
        c.awaiting_answer = body.is_none();
        if let Some(n) = &media {
            c.media = Some(n.clone());
        }
        c.state = CallState::Answered;
        c.ok_cseq = key.cseq;
        let extra = vec![self.contact(peer)];
        self.send_ok(now, leg, &tx_key, &req, None, extra, sdp_text, out);
        if let Some(media) = media {
            out.push(Output::Event(CallEvent::Media { leg, media }));
        }
    }

    /// Moves an answered call's audio to `local` (another media worker) with a re-INVITE of
    /// ours, offering the codec already agreed. The phone's answer comes back as
    /// [`CallEvent::Media`].
    pub fn move_media(&mut self, now: Instant, leg: LegId, local: SocketAddr) -> Vec<Output> {
        let contact = self.config.contact;
        let Some(c) = self
            .calls
            .get_mut(&leg)
            .filter(|c| matches!(c.state, CallState::Confirmed | CallState::Answered))
        else {
            return Vec::new();
        };
        let Some(media) = c.media.clone() else {
            return Vec::new();
        };
        c.local = Some(local);
        c.sdp_version += 1;
        c.local_cseq += 1;
        let b = branch();
        c.our_reinvite = Some((b.clone(), c.local_cseq));
        let body = sdp::answer(local, &media, c.sdp_version);
        let bytes = format!(
            "{}Contact: <sip:tandem@{contact}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            request_in_dialog(c, "INVITE", &b, contact),
            body.len()
        );
        self.tallies.push(Tally::RequestSent(rsip::Method::Invite));
        let peer = c.peer;
        vec![Output::Send(self.tx.start_client(
            now,
            b,
            peer,
            bytes.into_bytes(),
        ))]
    }

    /// A final response to our re-INVITE: ACK it; a 2xx carries the phone's answer.
    pub(super) fn our_reinvite_answered(
        &mut self,
        now: Instant,
        branch_id: &str,
        code: u16,
        r: &rsip::Response,
    ) -> Vec<Output> {
        let contact = self.config.contact;
        let Some((&leg, c)) = self
            .calls
            .iter_mut()
            .find(|(_, c)| c.our_reinvite.as_ref().is_some_and(|(b, _)| b == branch_id))
        else {
            return Vec::new();
        };
        if code < 200 {
            return Vec::new();
        }
        let (_, cseq) = c.our_reinvite.take().expect("found by it");
        // The ACK of a 2xx is a transaction of its own; that of a failure shares the branch.
        let ack_branch = if code < 300 {
            branch()
        } else {
            branch_id.to_string()
        };
        let mut ack = request_in_dialog(c, "ACK", &ack_branch, contact);
        ack = ack.replace(
            &format!("CSeq: {} ACK", c.local_cseq),
            &format!("CSeq: {cseq} ACK"),
        );
        ack.push_str("Content-Length: 0\r\n\r\n");
        let mut out = vec![Output::Send(Send {
            peer: c.peer,
            bytes: ack.into_bytes(),
        })];
        if code >= 300 {
            out.extend(self.hangup(now, leg));
            return out;
        }
        match sdp::negotiate(&r.body) {
            Ok(media) => {
                let media = agreed(media, c.peer, true);
                c.media = Some(media.clone());
                out.push(Output::Event(CallEvent::Media { leg, media }));
            }
            Err(e) => {
                tracing::debug!(error = %e, "the answer to our re-INVITE is unusable");
                out.extend(self.hangup(now, leg));
            }
        }
        out
    }
}
