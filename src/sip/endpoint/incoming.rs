//! A call made to Tandem (RFC 3261 13.3, 9.2): the INVITE that starts it (checked, maybe
//! authenticated, its offer read), the ACK that confirms our answer (and carries the phone's
//! answer when the INVITE had no offer), and a CANCEL while it rings.

use std::time::Instant;

use rsip::prelude::*;
use rsip::{Header, Method, Request};

use super::in_dialog::agreed;
use super::{Call, CallEvent, CallState, Ended, Endpoint, Output, Tally, Target, tag};
use crate::sip::message::{self, RequestKey};
use crate::sip::sdp;
use crate::sip::transaction::{Peer, TxKey};

impl Endpoint {
    pub(super) fn invite(
        &mut self,
        now: Instant,
        peer: Peer,
        req: Request,
        key: RequestKey,
        tx_key: TxKey,
        out: &mut Vec<Output>,
    ) {
        if self.active_calls() >= self.config.max_calls {
            let extra = vec![Header::RetryAfter(rsip::headers::RetryAfter::new("5"))];
            self.reply(now, &tx_key, &req, 503, Some(&tag()), extra, None, out);
            return;
        }
        let Some(remote_tag) = key.from_tag.clone() else {
            // RFC 3261 8.1.1.3: From must carry a tag.
            self.reply(now, &tx_key, &req, 400, Some(&tag()), vec![], None, out);
            return;
        };
        let claims_account =
            message::from_user(&req).is_some_and(|u| self.accounts.contains_key(&u));
        let must = self.config.require_auth || claims_account;
        let Some(account) = self.authenticate(now, peer, &req, &tx_key, must, out) else {
            return;
        };
        let offer = if req.body.is_empty() {
            None
        } else {
            let sdp_body = req.headers.iter().all(|h| match h {
                Header::ContentType(c) => c
                    .value()
                    .trim()
                    .to_ascii_lowercase()
                    .starts_with("application/sdp"),
                _ => true,
            });
            if !sdp_body {
                let extra = vec![Header::Accept(rsip::headers::Accept::new(
                    "application/sdp",
                ))];
                self.reply(now, &tx_key, &req, 415, Some(&tag()), extra, None, out);
                return;
            }
            match sdp::negotiate(&req.body) {
                Ok(n) => Some(agreed(n, peer, false)),
                Err(e) => {
                    tracing::debug!(error = %e, "unacceptable offer");
                    let extra = vec![Header::Warning(rsip::headers::Warning::new(format!(
                        "304 tandem \"{e}\""
                    )))];
                    self.reply(now, &tx_key, &req, 488, Some(&tag()), extra, None, out);
                    return;
                }
            }
        };
        let dialled = message::dialled(&req).unwrap_or_default();
        let target = if dialled == self.config.service_number {
            Target::Service
        } else {
            Target::Session(
                dialled
                    .chars()
                    .filter(|c| !matches!(c, ' ' | '-' | '.'))
                    .collect(),
            )
        };
        let leg = self.next_leg;
        self.next_leg += 1;
        let local_tag = tag();
        let from = req
            .from_header()
            .map(|f| f.value().to_string())
            .unwrap_or_default();
        let to = req
            .to_header()
            .map(|t| t.value().to_string())
            .unwrap_or_default();
        let call = Call {
            peer,
            call_id: key.call_id.clone(),
            remote_tag: remote_tag.clone(),
            local_tag: local_tag.clone(),
            remote_uri: from,
            local_uri: to,
            invite_key: tx_key.clone(),
            state: CallState::Early,
            media: offer.clone(),
            awaiting_answer: offer.is_none(),
            local: None,
            sdp_version: 1,
            ok: None,
            ok_cseq: key.cseq,
            local_cseq: 0,
            our_reinvite: None,
            forget_at: None,
            remote_target: None,
            dialing: None,
            invite: req.clone(),
        };
        self.dialogs
            .insert((key.call_id.clone(), local_tag, remote_tag), leg);
        self.invites.insert(tx_key.clone(), leg);
        self.calls.insert(leg, call);
        self.tallies.push(Tally::Response(Method::Invite, 100));
        let trying = message::response(&req, 100, None, vec![], None);
        if let Some(s) = self.tx.respond(now, &tx_key, 100, trying) {
            out.push(Output::Send(s));
        }
        out.push(Output::Event(CallEvent::Incoming {
            leg,
            target,
            caller: message::caller_name(&req),
            account,
            offer,
            source: peer.addr().ip(),
        }));
    }

    pub(super) fn ack(
        &mut self,
        now: Instant,
        req: Request,
        key: RequestKey,
        out: &mut Vec<Output>,
    ) {
        let Some(leg) = self.dialog_of(&key) else {
            return;
        };
        let Some(c) = self.calls.get_mut(&leg) else {
            return;
        };
        if c.ok.is_none() || key.cseq != c.ok_cseq {
            return;
        }
        c.ok = None;
        if c.state == CallState::Answered {
            c.state = CallState::Confirmed;
        }
        if !c.awaiting_answer {
            // The dialog is confirmed now, if it was not: the call's media may go out
            // (docs/sip.md); a re-INVITE's ACK changes nothing.
            if let Some(m) = c.media.as_mut().filter(|m| !m.confirmed) {
                m.confirmed = true;
                let media = m.clone();
                out.push(Output::Event(CallEvent::Media { leg, media }));
            }
        } else {
            c.awaiting_answer = false;
            match sdp::negotiate(&req.body) {
                Ok(n) => {
                    let n = agreed(n, c.peer, true);
                    c.media = Some(n.clone());
                    out.push(Output::Event(CallEvent::Media { leg, media: n }));
                }
                Err(e) => {
                    // An offer in our 2xx that the ACK does not answer: the call cannot go on
                    // (RFC 3261 13.3.1.4); hang up.
                    tracing::debug!(error = %e, "the ACK's answer is unusable");
                    out.push(Output::Event(CallEvent::Ended {
                        leg,
                        how: Ended::Bye,
                    }));
                    out.extend(self.hangup(now, leg));
                }
            }
        }
    }

    pub(super) fn cancel(
        &mut self,
        now: Instant,
        req: Request,
        key: RequestKey,
        tx_key: TxKey,
        out: &mut Vec<Output>,
    ) {
        let invite_key = TxKey {
            method: Method::Invite,
            ..tx_key.clone()
        };
        let Some(leg) = self.invites.get(&invite_key).copied() else {
            self.reply(now, &tx_key, &req, 481, Some(&tag()), vec![], None, out);
            return;
        };
        let _ = key;
        self.reply(now, &tx_key, &req, 200, None, vec![], None, out);
        let Some(c) = self
            .calls
            .get_mut(&leg)
            .filter(|c| c.state == CallState::Early)
        else {
            // Already answered (or refused): the CANCEL changes nothing (RFC 3261 9.2).
            return;
        };
        c.end(now);
        let (ik, ireq, local_tag) = (c.invite_key.clone(), c.invite.clone(), c.local_tag.clone());
        self.reply(now, &ik, &ireq, 487, Some(&local_tag), vec![], None, out);
        out.push(Output::Event(CallEvent::Ended {
            leg,
            how: Ended::Cancelled,
        }));
    }
}
