//! The SIP endpoint Tandem is (RFC 3261), over the [`Transactions`] layer. Sans-IO: bytes and
//! the time go in; bytes to send, [`CallEvent`]s for each call's owner and [`Tally`]s for the
//! shell to count come out. Nothing here reads a clock, opens a socket or records a metric.
//!
//! - As user agent server it takes calls made to Tandem ([`incoming`]): the owner answers each
//!   with [`Endpoint::ring`], [`Endpoint::answer`], [`Endpoint::reject`] and
//!   [`Endpoint::hangup`]; BYE and re-INVITE inside a call, and our own re-INVITE that moves a
//!   call's audio, are [`in_dialog`].
//! - As user agent client it rings a CSR's registered softphone ([`Endpoint::dial`], in
//!   [`dialing`]).
//! - It is the registrar of support accounts' softphones ([`register`]): REGISTER is always
//!   authenticated by digest, and so is an INVITE that claims an account (its From names one)
//!   or, with `require_auth`, every INVITE. An authenticated call joins as its account.
//!
//! This file holds the types, the dispatch of what arrives, the owner's commands and the timers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rsip::prelude::*;
use rsip::{Header, Method, Request, SipMessage};

mod dialing;
mod in_dialog;
mod incoming;
mod register;

pub use dialing::{Dial, DialError};

use super::digest::{Algorithm, DigestAuth};
use super::message::{self, ParseError, RequestKey};
use super::registrar::{AccountTable, Registrar, RegistrationTable, SipAccount};
use super::sdp::{self, Negotiated};
use super::transaction::{self, Peer, Received, Send, Transactions, TxKey};
use in_dialog::request_in_dialog;

/// A call's number inside Tandem.
pub type LegId = u64;

/// Methods answered (the Allow header).
const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER";
/// Retry-After of a 503 for too many transactions: most end within 32 s of their answer.
const OVERLOAD_RETRY_AFTER_SECS: u32 = 5;
#[derive(Clone, Debug)]
pub struct EndpointConfig {
    /// Dialling this reaches the prompt that asks for a session number.
    pub service_number: String,
    /// Host and port in our Contact and Via headers: where phones reach us.
    pub contact: SocketAddr,
    /// Most calls at once; more get 503.
    pub max_calls: usize,
    /// The digest realm; the HA1 of every SIP password is made for it.
    pub realm: String,
    /// Digest algorithms offered, the preferred first.
    pub algorithms: Vec<Algorithm>,
    /// Every INVITE must authenticate as an account; anonymous callers are refused.
    pub require_auth: bool,
    /// Most server transactions at once; a new request past it gets 503.
    pub max_transactions: usize,
}

/// What was dialled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A session by its number (digits, spaces and dashes removed).
    Session(String),
    /// The service number: ask for a session number.
    Service,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The caller hung up with BYE.
    Bye,
    /// The caller gave up before the answer (CANCEL).
    Cancelled,
    /// Our 200 OK was never acknowledged.
    NoAck,
    /// A call of ours was refused with this status (486 busy, 603 declined...).
    Declined(u16),
    /// A call of ours rang until we gave up.
    NoAnswer,
    /// A call of ours got no response at all.
    Unreachable,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallEvent {
    /// A new call. Answer it, or reject it; `offer` is what the phone's SDP allows, `None` when
    /// the INVITE had no offer (then ours goes in the 200 OK and its answer in the ACK).
    Incoming {
        leg: LegId,
        target: Target,
        caller: String,
        /// The account the caller proved by digest, if any.
        account: Option<Box<SipAccount>>,
        offer: Option<Negotiated>,
        /// The address the INVITE came from (session numbers tried are counted against it).
        source: std::net::IpAddr,
    },
    /// The media the call uses now: on the ACK of our answer, and after a re-INVITE (hold,
    /// resume, a new address).
    Media { leg: LegId, media: Negotiated },
    /// The call is over from the phone's side; nothing more is sent for it.
    Ended { leg: LegId, how: Ended },
}

/// What happened that operators count. The endpoint records no metrics: it keeps these for the
/// shell, which takes them with [`Endpoint::take_tallies`] after every call into the endpoint
/// and counts them (src/metrics.rs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tally {
    /// A request received, by method.
    Request(Method),
    /// A response sent, by the method of its request, and its status code.
    Response(Method, u16),
    /// A request of ours sent (INVITE, BYE, CANCEL).
    RequestSent(Method),
    /// A response that matched none of our transactions.
    StrayResponse,
    /// Input that could not be read, by transport and [`ParseError::code`].
    Malformed {
        transport: &'static str,
        reason: &'static str,
    },
    /// A digest check, by method and result (`ok`, `challenged`, `throttled`, or the error's
    /// code).
    Auth(Method, &'static str),
    /// A REGISTER's outcome.
    Registration(&'static str),
    /// A ring of a softphone: started, then how it ended.
    Dial(&'static str),
    /// A new request refused with 503 because `max_transactions` were open.
    TransactionsFull,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Send(Send),
    Event(CallEvent),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CallState {
    /// A call of ours, ringing.
    Dialing,
    /// Not answered yet.
    Early,
    /// Our 200 OK went out; waiting for the ACK.
    Answered,
    Confirmed,
    /// Over; kept briefly so late retransmissions are recognised.
    Ended,
}

struct Call {
    peer: Peer,
    invite: Request,
    invite_key: TxKey,
    call_id: String,
    remote_tag: String,
    local_tag: String,
    remote_uri: String,
    local_uri: String,
    state: CallState,
    /// The phone's offer, or ours when its INVITE had none (then its answer is in the ACK).
    media: Option<Negotiated>,
    awaiting_answer: bool,
    local: Option<SocketAddr>,
    sdp_version: u64,
    /// The 2xx to repeat until the ACK (RFC 3261 13.3.1.4), when next, how often, until when.
    ok: Option<(Vec<u8>, Instant, Duration, Instant)>,
    /// The CSeq of the INVITE (or re-INVITE) whose 2xx is awaiting its ACK.
    ok_cseq: u32,
    local_cseq: u32,
    /// Our own re-INVITE (moving the call's audio to another address) awaiting its answer:
    /// its branch and CSeq.
    our_reinvite: Option<(String, u32)>,
    forget_at: Option<Instant>,
    /// Where in-dialog requests go when it is not the INVITE's Contact (calls of ours).
    remote_target: Option<String>,
    /// A call of ours: its INVITE's client side.
    dialing: Option<dialing::Dialing>,
}

impl Call {
    /// Over: nothing more is sent for it (no 2xx repeated); it is kept briefly so that late
    /// retransmissions are still recognised.
    fn end(&mut self, now: Instant) {
        self.state = CallState::Ended;
        self.ok = None;
        self.forget_at = Some(now + transaction::TIMEOUT);
    }
}

pub struct Endpoint {
    config: EndpointConfig,
    tx: Transactions,
    calls: HashMap<LegId, Call>,
    /// (Call-ID, our tag, their tag) to the call.
    dialogs: HashMap<(String, String, String), LegId>,
    /// An INVITE's transaction to its call (CANCEL and retransmissions find it here).
    invites: HashMap<TxKey, LegId>,
    next_leg: LegId,
    digest: DigestAuth,
    accounts: Arc<AccountTable>,
    registrar: Registrar,
    auth_failures: crate::throttle::Throttle,
    /// `now` on the wall clock was `.1` at `.0`: nonces carry wall-clock seconds.
    clock: (Instant, u64),
    /// Our INVITEs' branches to their calls.
    outgoing: HashMap<String, LegId>,
    /// Counted by the shell; taken after every call, so it holds one call's worth.
    tallies: Vec<Tally>,
}

fn tag() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn branch() -> String {
    format!("z9hG4bK{:016x}", rand::random::<u64>())
}

impl Endpoint {
    /// `wall` is the wall-clock time at `now`: nonces carry wall-clock seconds, so that a phone
    /// keeping one across a restart is recognised as stale rather than wrong.
    pub fn new(config: EndpointConfig, now: Instant, wall: SystemTime) -> Self {
        Self {
            tx: Transactions::new(config.max_transactions),
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            invites: HashMap::new(),
            outgoing: HashMap::new(),
            next_leg: 1,
            digest: DigestAuth::new(&config.realm, config.algorithms.clone()),
            accounts: Arc::default(),
            registrar: Registrar::default(),
            auth_failures: register::auth_failures(),
            clock: (
                now,
                wall.duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            ),
            tallies: Vec::new(),
            config,
        }
    }

    /// The accounts that may authenticate, after a SIP password was set or removed. The
    /// registrations of an account whose password changed or went are dropped.
    pub fn set_accounts(&mut self, accounts: Arc<AccountTable>) {
        for (user, old) in self.accounts.iter() {
            if accounts.get(user).map(|a| &a.credential) != Some(&old.credential) {
                self.registrar.forget(user);
            }
        }
        self.accounts = accounts;
    }

    /// What happened since the last call, for the shell to count.
    pub fn take_tallies(&mut self) -> Vec<Tally> {
        std::mem::take(&mut self.tallies)
    }

    /// Changes whenever the registrations do.
    pub fn registrations_version(&self) -> u64 {
        self.registrar.version()
    }

    pub fn registrations(&self, now: Instant) -> RegistrationTable {
        self.registrar.table(now)
    }

    fn unix_secs(&self, now: Instant) -> u64 {
        self.clock.1 + now.saturating_duration_since(self.clock.0).as_secs()
    }

    /// Whether a call not yet over goes through `peer`: Tandem opens no connections, so a TCP
    /// connection a call uses is kept open for it.
    pub fn in_call(&self, peer: Peer) -> bool {
        self.calls
            .values()
            .any(|c| c.peer == peer && c.state != CallState::Ended)
    }

    /// Calls not yet over.
    pub fn active_calls(&self) -> usize {
        self.calls
            .values()
            .filter(|c| c.state != CallState::Ended)
            .count()
    }

    /// A message from `peer`. Malformed input is answered 400 when it can be answered at all
    /// (it has the headers a response needs), else dropped; either way it is counted.
    pub fn receive(&mut self, now: Instant, peer: Peer, bytes: &[u8]) -> Vec<Output> {
        let msg = match message::parse(bytes, peer.reliable()) {
            Ok(m) => m,
            Err(e) => return self.malformed(peer, bytes, &e),
        };
        match msg {
            SipMessage::Response(r) => {
                let branch = r
                    .via_header()
                    .ok()
                    .and_then(|v| v.typed().ok())
                    .and_then(|v| v.branch().map(|b| b.to_string()))
                    .unwrap_or_default();
                let code = r.status_code.code();
                if dialing::to_invite(&r)
                    && let Some(&leg) = self.outgoing.get(&branch)
                {
                    return self.dial_response(now, leg, code, &r);
                }
                if !self.tx.response(&branch, code) {
                    self.tallies.push(Tally::StrayResponse);
                    return Vec::new();
                }
                self.our_reinvite_answered(now, &branch, code, &r)
            }
            SipMessage::Request(req) => {
                let key = match RequestKey::of(&req) {
                    Ok(k) => k,
                    Err(e) => return self.malformed(peer, bytes, &e),
                };
                self.request(now, peer, req, key)
            }
        }
    }

    fn malformed(&mut self, peer: Peer, bytes: &[u8], e: &ParseError) -> Vec<Output> {
        self.tallies.push(Tally::Malformed {
            transport: peer.transport(),
            reason: e.code(),
        });
        tracing::debug!(peer = %peer.addr(), error = %e, "malformed SIP message");
        // A 400 needs Via, From, To, Call-ID and CSeq to be routed and matched; rsip may
        // still read a request whose Content-Length or CSeq method was wrong.
        if matches!(e, ParseError::BadContentLength | ParseError::CseqMismatch)
            && let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n")
            && let Ok(SipMessage::Request(req)) =
                SipMessage::try_from(&bytes[..end + 4]).map_err(|_| ())
            && req.method != Method::Ack
            && RequestKey::of(&req).is_ok()
        {
            self.tallies.push(Tally::Response(req.method, 400));
            let reply = message::response(&req, 400, Some(&tag()), vec![], None);
            return vec![Output::Send(Send { peer, bytes: reply })];
        }
        Vec::new()
    }

    fn request(&mut self, now: Instant, peer: Peer, req: Request, key: RequestKey) -> Vec<Output> {
        self.tallies.push(Tally::Request(req.method));
        let tx_key = TxKey {
            branch: key.branch.clone(),
            sent_by: key.sent_by.clone(),
            method: req.method,
        };
        match self.tx.received(now, &tx_key, peer) {
            Received::Again(Some(last)) => {
                return vec![Output::Send(Send { peer, bytes: last })];
            }
            Received::Again(None) | Received::Absorbed => return Vec::new(),
            Received::Full => return self.refuse_overloaded(peer, &req),
            Received::New => {}
        }
        let mut out = Vec::new();
        match req.method {
            Method::Invite if key.to_tag.is_none() => {
                self.invite(now, peer, req, key, tx_key, &mut out)
            }
            Method::Invite => self.reinvite(now, req, key, tx_key, &mut out),
            Method::Ack => self.ack(now, req, key, &mut out),
            Method::Cancel => self.cancel(now, req, key, tx_key, &mut out),
            Method::Bye => self.bye(now, req, key, tx_key, &mut out),
            Method::Register => self.register(now, peer, req, tx_key, &mut out),
            Method::Options => {
                let extra = vec![
                    Header::Allow(rsip::headers::Allow::new(ALLOW)),
                    Header::Accept(rsip::headers::Accept::new("application/sdp")),
                ];
                self.reply(now, &tx_key, &req, 200, None, extra, None, &mut out);
            }
            _ => {
                let extra = vec![Header::Allow(rsip::headers::Allow::new(ALLOW))];
                self.reply(now, &tx_key, &req, 405, None, extra, None, &mut out);
            }
        }
        out
    }

    /// 503 for a request no transaction can be kept for: sent at once and remembered nowhere
    /// (a retransmission is refused again, or taken once there is room).
    fn refuse_overloaded(&mut self, peer: Peer, req: &Request) -> Vec<Output> {
        self.tallies.push(Tally::TransactionsFull);
        self.tallies.push(Tally::Response(req.method, 503));
        let extra = vec![Header::RetryAfter(rsip::headers::RetryAfter::new(
            OVERLOAD_RETRY_AFTER_SECS.to_string(),
        ))];
        let bytes = message::response(req, 503, Some(&tag()), extra, None);
        vec![Output::Send(Send { peer, bytes })]
    }

    #[allow(clippy::too_many_arguments)]
    fn reply(
        &mut self,
        now: Instant,
        key: &TxKey,
        req: &Request,
        code: u16,
        to_tag: Option<&str>,
        extra: Vec<Header>,
        body: Option<(&str, Vec<u8>)>,
        out: &mut Vec<Output>,
    ) {
        self.tallies.push(Tally::Response(req.method, code));
        let bytes = message::response(req, code, to_tag, extra, body);
        if let Some(s) = self.tx.respond(now, key, code, bytes) {
            out.push(Output::Send(s));
        }
    }

    fn contact(&self, peer: Peer) -> Header {
        let transport = if peer.reliable() {
            ";transport=tcp"
        } else {
            ""
        };
        Header::Contact(rsip::headers::Contact::new(format!(
            "<sip:tandem@{}{transport}>",
            self.config.contact
        )))
    }

    /// The call, if it is not answered yet.
    fn early(&mut self, leg: LegId) -> Option<&mut Call> {
        self.calls
            .get_mut(&leg)
            .filter(|c| c.state == CallState::Early)
    }

    /// 180 Ringing, while the call's owner gets it ready.
    pub fn ring(&mut self, now: Instant, leg: LegId) -> Vec<Output> {
        let mut out = Vec::new();
        let Some(c) = self.calls.get(&leg).filter(|c| c.state == CallState::Early) else {
            return out;
        };
        let (key, req, local_tag) = (c.invite_key.clone(), c.invite.clone(), c.local_tag.clone());
        let extra = vec![self.contact(c.peer)];
        self.reply(
            now,
            &key,
            &req,
            180,
            Some(&local_tag),
            extra,
            None,
            &mut out,
        );
        out
    }

    /// 200 OK with our SDP: audio received at `local`.
    pub fn answer(&mut self, now: Instant, leg: LegId, local: SocketAddr) -> Vec<Output> {
        let mut out = Vec::new();
        let Some(c) = self.early(leg) else {
            return out;
        };
        c.local = Some(local);
        let body = match &c.media {
            Some(m) => sdp::answer(local, m, c.sdp_version),
            None => sdp::offer(local, c.sdp_version),
        };
        c.state = CallState::Answered;
        let (key, req, local_tag, peer) = (
            c.invite_key.clone(),
            c.invite.clone(),
            c.local_tag.clone(),
            c.peer,
        );
        let extra = vec![
            self.contact(peer),
            Header::Allow(rsip::headers::Allow::new(ALLOW)),
        ];
        self.send_ok(
            now,
            leg,
            &key,
            &req,
            Some(&local_tag),
            extra,
            body,
            &mut out,
        );
        out
    }

    /// A 200 OK with our SDP to an INVITE or re-INVITE of the call, repeated until its ACK
    /// (RFC 3261 13.3.1.4).
    #[allow(clippy::too_many_arguments)]
    fn send_ok(
        &mut self,
        now: Instant,
        leg: LegId,
        key: &TxKey,
        req: &Request,
        to_tag: Option<&str>,
        extra: Vec<Header>,
        sdp: String,
        out: &mut Vec<Output>,
    ) {
        self.tallies.push(Tally::Response(Method::Invite, 200));
        let bytes = message::response(
            req,
            200,
            to_tag,
            extra,
            Some(("application/sdp", sdp.into_bytes())),
        );
        if let Some(s) = self.tx.respond(now, key, 200, bytes.clone()) {
            out.push(Output::Send(s));
        }
        if let Some(c) = self.calls.get_mut(&leg) {
            let resend = resend_interval(c.peer);
            c.ok = Some((bytes, now + resend, resend, now + transaction::TIMEOUT));
        }
    }

    /// Refuses a call not yet answered (404 for an unknown session, 486 when full...).
    pub fn reject(&mut self, now: Instant, leg: LegId, code: u16) -> Vec<Output> {
        self.refuse(now, leg, code, vec![])
    }

    /// Refuses a call not yet answered, telling the phone when it may call again.
    pub fn reject_until(
        &mut self,
        now: Instant,
        leg: LegId,
        code: u16,
        retry_after_secs: u64,
    ) -> Vec<Output> {
        let retry = rsip::headers::RetryAfter::new(retry_after_secs.to_string());
        self.refuse(now, leg, code, vec![rsip::Header::RetryAfter(retry)])
    }

    fn refuse(
        &mut self,
        now: Instant,
        leg: LegId,
        code: u16,
        extra: Vec<rsip::Header>,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let Some(c) = self.early(leg) else {
            return out;
        };
        c.end(now);
        let (key, req, local_tag) = (c.invite_key.clone(), c.invite.clone(), c.local_tag.clone());
        self.reply(
            now,
            &key,
            &req,
            code,
            Some(&local_tag),
            extra,
            None,
            &mut out,
        );
        out
    }

    /// Ends a call from Tandem's side: BYE once answered, else a refusal.
    pub fn hangup(&mut self, now: Instant, leg: LegId) -> Vec<Output> {
        let Some(c) = self.calls.get_mut(&leg) else {
            return Vec::new();
        };
        match c.state {
            CallState::Ended => Vec::new(),
            CallState::Dialing => self.cancel_dial(now, leg),
            CallState::Early => self.reject(now, leg, 480),
            CallState::Answered | CallState::Confirmed => {
                c.end(now);
                c.local_cseq += 1;
                let b = branch();
                let contact = self.config.contact;
                let mut bye = request_in_dialog(c, "BYE", &b, contact);
                bye.push_str("Content-Length: 0\r\n\r\n");
                self.tallies.push(Tally::RequestSent(Method::Bye));
                let peer = c.peer;
                vec![Output::Send(self.tx.start_client(
                    now,
                    b,
                    peer,
                    bye.into_bytes(),
                ))]
            }
        }
    }

    fn dialog_of(&self, key: &RequestKey) -> Option<LegId> {
        let (to, from) = (key.to_tag.clone()?, key.from_tag.clone()?);
        self.dialogs.get(&(key.call_id.clone(), to, from)).copied()
    }

    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Output> {
        self.registrar.expire(now);
        self.digest.prune(self.unix_secs(now));
        let mut out: Vec<Output> = self
            .tx
            .handle_timeout(now)
            .into_iter()
            .map(Output::Send)
            .collect();
        out.extend(self.dial_timeouts(now));
        let mut unacked = Vec::new();
        for (leg, c) in &mut self.calls {
            if let Some((bytes, at, interval, give_up)) = &mut c.ok {
                if now >= *give_up {
                    unacked.push(*leg);
                } else if now >= *at {
                    out.push(Output::Send(Send {
                        peer: c.peer,
                        bytes: bytes.clone(),
                    }));
                    *interval = (*interval * 2).min(transaction::T2);
                    *at = now + *interval;
                }
            }
        }
        for leg in unacked {
            if let Some(c) = self.calls.get_mut(&leg) {
                c.ok = None;
                if c.state == CallState::Answered {
                    c.state = CallState::Confirmed;
                }
            }
            out.push(Output::Event(CallEvent::Ended {
                leg,
                how: Ended::NoAck,
            }));
            out.extend(self.hangup(now, leg));
        }
        let gone: Vec<LegId> = self
            .calls
            .iter()
            .filter(|(_, c)| c.forget_at.is_some_and(|t| t <= now))
            .map(|(l, _)| *l)
            .collect();
        for leg in gone {
            if let Some(c) = self.calls.remove(&leg) {
                self.dialogs.remove(&(
                    c.call_id.clone(),
                    c.local_tag.clone(),
                    c.remote_tag.clone(),
                ));
                self.invites.remove(&c.invite_key);
                if let Some(d) = &c.dialing {
                    self.outgoing.remove(d.branch());
                }
            }
        }
        out
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let calls = self.calls.values().flat_map(|c| {
            [
                c.ok.as_ref().map(|(_, at, _, give_up)| *at.min(give_up)),
                c.forget_at,
            ]
        });
        calls
            .flatten()
            .chain(self.tx.poll_timeout())
            .chain(self.registrar.next_expiry())
            .chain(self.dial_poll())
            .min()
    }
}

/// How often a 2xx is repeated until its ACK: over UDP from T1, doubling; a stream is
/// reliable, so only the give-up time matters.
fn resend_interval(peer: Peer) -> Duration {
    if peer.reliable() {
        transaction::TIMEOUT
    } else {
        transaction::T1
    }
}

#[cfg(test)]
mod tests;
