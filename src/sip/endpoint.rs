//! The SIP user agent server Tandem is (RFC 3261): the dialogs of calls made to it, over the
//! [`Transactions`] layer. Sans-IO: bytes and the time go in, bytes to send and [`CallEvent`]s
//! for the call's owner come out; the owner answers with [`Endpoint::ring`],
//! [`Endpoint::answer`], [`Endpoint::reject`] and [`Endpoint::hangup`].
//!
//! Tandem answers calls and never places them, so the client side is only the BYE it sends when
//! a session ends a call, and the re-INVITE that moves a call's audio.
//!
//! It is also the registrar of support accounts' softphones: REGISTER is always
//! authenticated by digest, and so is an INVITE that claims an account (its From names one)
//! or, with `require_auth`, every INVITE. An authenticated call joins as its account.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use metrics::counter;
use rsip::prelude::*;
use rsip::{Header, Method, Request, SipMessage};

mod dialing;

pub use dialing::{Dial, DialError};

use super::accounts::{AccountTable, RegistrationTable, SipAccount};
use super::digest::{self, Algorithm, DigestAuth};
use super::message::{self, ParseError, RequestKey};
use super::registrar::{self, RegisterOutcome, RegisterRequest, Registrar};
use super::sdp::{self, Negotiated};
use super::transaction::{self, Peer, Received, Send, Transactions, TxKey};

/// A call's number inside Tandem.
pub type LegId = u64;

/// Methods answered (the Allow header).
const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER";
/// Failed digest answers from one address before it is refused for a while.
const AUTH_FAILURES: usize = 10;
const AUTH_WINDOW: Duration = Duration::from_secs(300);

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
    },
    /// The media the call uses now: on the ACK of our answer, and after a re-INVITE (hold,
    /// resume, a new address).
    Media { leg: LegId, media: Negotiated },
    /// The call is over from the phone's side; nothing more is sent for it.
    Ended { leg: LegId, how: Ended },
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
}

fn tag() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// What one subscriber's address is counted as: an IPv4 address, or an IPv6 /64.
fn throttle_prefix(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

fn branch() -> String {
    format!("z9hG4bK{:016x}", rand::random::<u64>())
}

impl Endpoint {
    pub fn new(config: EndpointConfig) -> Self {
        Self {
            tx: Transactions::default(),
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            invites: HashMap::new(),
            outgoing: HashMap::new(),
            next_leg: 1,
            digest: DigestAuth::new(&config.realm, config.algorithms.clone()),
            accounts: Arc::default(),
            registrar: Registrar::default(),
            auth_failures: crate::throttle::Throttle::new(AUTH_FAILURES, AUTH_WINDOW, 10_000),
            clock: (
                Instant::now(),
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            ),
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
                    counter!("tandem_sip_stray_responses_total").increment(1);
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
        counter!("tandem_sip_malformed_total", "transport" => peer.transport(), "reason" => e.code())
            .increment(1);
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
            counter!("tandem_sip_responses_total", "method" => req.method.to_string(), "code" => "400")
                .increment(1);
            let reply = message::response(&req, 400, Some(&tag()), vec![], None);
            return vec![Output::Send(Send { peer, bytes: reply })];
        }
        Vec::new()
    }

    fn request(&mut self, now: Instant, peer: Peer, req: Request, key: RequestKey) -> Vec<Output> {
        counter!("tandem_sip_requests_total", "method" => req.method.to_string()).increment(1);
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
        counter!("tandem_sip_responses_total", "method" => req.method.to_string(), "code" => code.to_string())
            .increment(1);
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

    fn invite(
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
                Ok(n) => Some(n),
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
        counter!("tandem_sip_responses_total", "method" => "INVITE", "code" => "100").increment(1);
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
        }));
    }

    /// Digest authentication of a new request (RFC 3261 22.2). `Some(account)` when it may go
    /// on: `Some(None)` for an anonymous caller, allowed when `required` is false. `None` when
    /// it was answered here: 401 with a challenge (none given, or a stale nonce), 403 for
    /// wrong credentials or an address that failed too often lately.
    fn authenticate(
        &mut self,
        now: Instant,
        peer: Peer,
        req: &Request,
        tx_key: &TxKey,
        required: bool,
        out: &mut Vec<Output>,
    ) -> Option<Option<Box<SipAccount>>> {
        let method = req.method.to_string();
        let result = |r: &'static str| {
            counter!("tandem_sip_auth_total", "method" => method.clone(), "result" => r)
                .increment(1);
        };
        let credentials = req.headers.iter().find_map(|h| match h {
            Header::Authorization(a) => Some(a.value().to_string()),
            _ => None,
        });
        let Some(credentials) = credentials else {
            if !required {
                return Some(None);
            }
            result("challenged");
            self.challenge(now, peer, req, tx_key, false, out);
            return None;
        };
        // Guesses are counted per address (an IPv6 /64 as one: one subscriber holds it all)
        // and per account, so neither many accounts from one address nor one account from
        // many addresses can be tried without end.
        let client = peer.addr().ip().to_canonical();
        let keys = [
            format!("ip {}", throttle_prefix(client)),
            format!(
                "user {}",
                digest::claimed_username(&credentials)
                    .unwrap_or_default()
                    .to_lowercase()
            ),
        ];
        if let Some(wait) = keys
            .iter()
            .filter_map(|k| self.auth_failures.check(k, now).err())
            .max()
        {
            result("throttled");
            let extra = vec![Header::RetryAfter(rsip::headers::RetryAfter::new(
                wait.as_secs().max(1).to_string(),
            ))];
            self.reply(now, tx_key, req, 403, Some(&tag()), extra, None, out);
            return None;
        }
        let secs = self.unix_secs(now);
        let uri = req.uri.clone();
        let accounts = self.accounts.clone();
        let checked = self.digest.check(
            secs,
            client,
            &method,
            &credentials,
            // The digest's URI must name this server as the request does: some phones
            // (sipp among them) put the host alone, without the number dialled.
            |u| rsip::Uri::try_from(u.trim()).is_ok_and(|u| u.host_with_port == uri.host_with_port),
            |name| accounts.get(name).map(|a| &a.credential),
        );
        match checked {
            Ok(ok) => {
                result("ok");
                // The account's count starts again; the address's does not, or one good
                // password would reset guesses at every other account.
                self.auth_failures.succeed(&keys[1]);
                accounts
                    .get(&ok.username)
                    .map(|a| Some(Box::new(a.clone())))
            }
            Err(e) if e.rechallenge() => {
                // The password was right; only the nonce was old, from before a restart, or
                // used already: ask again, marked stale so the phone answers by itself.
                result(e.code());
                self.challenge(now, peer, req, tx_key, true, out);
                None
            }
            Err(e) => {
                result(e.code());
                tracing::info!(peer = %peer.addr(), error = %e, "SIP digest authentication failed");
                if e.is_guess() {
                    for k in &keys {
                        self.auth_failures.fail(k, now);
                    }
                }
                self.reply(now, tx_key, req, 403, Some(&tag()), vec![], None, out);
                None
            }
        }
    }

    fn challenge(
        &mut self,
        now: Instant,
        peer: Peer,
        req: &Request,
        tx_key: &TxKey,
        stale: bool,
        out: &mut Vec<Output>,
    ) {
        let extra = self
            .digest
            .challenge(self.unix_secs(now), peer.addr().ip(), stale)
            .into_iter()
            .map(|v| Header::WwwAuthenticate(rsip::headers::WwwAuthenticate::new(v)))
            .collect();
        self.reply(now, tx_key, req, 401, Some(&tag()), extra, None, out);
    }

    /// REGISTER (RFC 3261 10.3): a support account's softphone says where it can be reached.
    fn register(
        &mut self,
        now: Instant,
        peer: Peer,
        req: Request,
        tx_key: TxKey,
        out: &mut Vec<Output>,
    ) {
        let Some(Some(account)) = self.authenticate(now, peer, &req, &tx_key, true, out) else {
            return;
        };
        // An account registers only its own address of record.
        if message::to_user(&req).as_deref() != Some(account.credential.username.as_str()) {
            counter!("tandem_sip_registrations_total", "result" => "not_own_aor").increment(1);
            self.reply(now, &tx_key, &req, 403, Some(&tag()), vec![], None, out);
            return;
        }
        let registration = match message::registration(&req) {
            Ok(r) => r,
            Err(()) => {
                counter!("tandem_sip_registrations_total", "result" => "bad_request").increment(1);
                self.reply(now, &tx_key, &req, 400, Some(&tag()), vec![], None, out);
                return;
            }
        };
        let user = account.credential.username.clone();
        let outcome = match registration {
            None => RegisterOutcome::Ok(self.registrar.bindings(&user, now)),
            Some((contacts, expires_header)) => {
                let key = RequestKey::of(&req).ok();
                self.registrar.register(
                    now,
                    &user,
                    RegisterRequest {
                        contacts,
                        expires_header,
                        call_id: key.as_ref().map(|k| k.call_id.clone()).unwrap_or_default(),
                        cseq: key.map_or(0, |k| k.cseq),
                        source: peer.addr(),
                        transport: peer.transport(),
                        user_agent: message::user_agent(&req),
                    },
                )
            }
        };
        let (code, extra, label) = match outcome {
            RegisterOutcome::Ok(bindings) => (
                200,
                bindings
                    .into_iter()
                    .map(|(c, secs)| {
                        Header::Contact(rsip::headers::Contact::new(format!(
                            "<{c}>;expires={secs}"
                        )))
                    })
                    .collect(),
                "ok",
            ),
            RegisterOutcome::TooBrief => (
                423,
                vec![Header::MinExpires(rsip::headers::MinExpires::new(
                    registrar::MIN_EXPIRES.to_string(),
                ))],
                "too_brief",
            ),
            RegisterOutcome::BadWildcard => (400, vec![], "bad_request"),
            RegisterOutcome::OutOfOrder => (500, vec![], "out_of_order"),
            RegisterOutcome::TooMany => (403, vec![], "too_many"),
        };
        counter!("tandem_sip_registrations_total", "result" => label).increment(1);
        self.reply(now, &tx_key, &req, code, Some(&tag()), extra, None, out);
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
        counter!("tandem_sip_responses_total", "method" => "INVITE", "code" => "200").increment(1);
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
            vec![],
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
                let mut bye = in_dialog(c, "BYE", &b, contact);
                bye.push_str("Content-Length: 0\r\n\r\n");
                counter!("tandem_sip_requests_sent_total", "method" => "BYE").increment(1);
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
            in_dialog(c, "INVITE", &b, contact),
            body.len()
        );
        counter!("tandem_sip_requests_sent_total", "method" => "INVITE").increment(1);
        let peer = c.peer;
        vec![Output::Send(self.tx.start_client(
            now,
            b,
            peer,
            bytes.into_bytes(),
        ))]
    }

    /// A final response to our re-INVITE: ACK it; a 2xx carries the phone's answer.
    fn our_reinvite_answered(
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
        let mut ack = in_dialog(c, "ACK", &ack_branch, contact);
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

    fn dialog_of(&self, key: &RequestKey) -> Option<LegId> {
        let (to, from) = (key.to_tag.clone()?, key.from_tag.clone()?);
        self.dialogs.get(&(key.call_id.clone(), to, from)).copied()
    }

    fn ack(&mut self, now: Instant, req: Request, key: RequestKey, out: &mut Vec<Output>) {
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
        if c.awaiting_answer {
            c.awaiting_answer = false;
            match sdp::negotiate(&req.body) {
                Ok(n) => {
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

    fn cancel(
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

    fn bye(
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
    fn reinvite(
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
                Ok(n) => (Some(n.clone()), Some(n)),
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

/// The start of a request of ours in the call's dialog (RFC 3261 12.2.1.1): request line, Via,
/// From (our tag), To (theirs), Call-ID and CSeq; the caller adds the rest.
fn in_dialog(c: &Call, method: &str, branch: &str, contact: SocketAddr) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    const PHONE: &str = "10.0.0.9:5062";

    fn endpoint() -> Endpoint {
        Endpoint::new(EndpointConfig {
            service_number: "100".into(),
            contact: "192.0.2.1:5060".parse().unwrap(),
            max_calls: 2,
            realm: "tandem.test".into(),
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            require_auth: false,
        })
    }

    fn peer() -> Peer {
        Peer::Udp(PHONE.parse().unwrap())
    }

    fn sdp_offer(direction: &str) -> String {
        format!(
            "v=0\r\no=- 1 1 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\n\
             m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na={direction}\r\n"
        )
    }

    fn request(method: &str, branch: &str, to_tag: Option<&str>, cseq: u32, body: &str) -> Vec<u8> {
        let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        let ctype = if body.is_empty() {
            String::new()
        } else {
            "Content-Type: application/sdp\r\n".into()
        };
        format!(
            "{method} sip:123456789@192.0.2.1 SIP/2.0\r\n\
             Via: SIP/2.0/UDP {PHONE};branch=z9hG4bK{branch}\r\n\
             From: \"Dave\" <sip:dave@10.0.0.9>;tag=ph1\r\n\
             To: <sip:123456789@192.0.2.1>{to_tag}\r\n\
             Call-ID: call-1@10.0.0.9\r\n\
             CSeq: {cseq} {method}\r\n\
             Contact: <sip:dave@{PHONE}>\r\n\
             Max-Forwards: 70\r\n{ctype}\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn sent(out: &[Output]) -> Vec<String> {
        out.iter()
            .filter_map(|o| match o {
                Output::Send(s) => Some(String::from_utf8_lossy(&s.bytes).into_owned()),
                _ => None,
            })
            .collect()
    }

    fn events(out: &[Output]) -> Vec<CallEvent> {
        out.iter()
            .filter_map(|o| match o {
                Output::Event(e) => Some(e.clone()),
                _ => None,
            })
            .collect()
    }

    fn to_tag(response: &str) -> String {
        let to = response.lines().find(|l| l.starts_with("To:")).unwrap();
        to.split("tag=").nth(1).unwrap().trim().to_string()
    }

    /// An INVITE answered: the call's leg and our tag.
    fn answered(e: &mut Endpoint, now: Instant) -> (LegId, String) {
        let out = e.receive(
            now,
            peer(),
            &request("INVITE", "i1", None, 1, &sdp_offer("sendrecv")),
        );
        assert!(sent(&out)[0].starts_with("SIP/2.0 100 Trying"));
        let [
            CallEvent::Incoming {
                leg,
                target,
                caller,
                account: None,
                offer,
            },
        ] = &events(&out)[..]
        else {
            panic!("{out:?}")
        };
        assert_eq!(*target, Target::Session("123456789".into()));
        assert_eq!(caller, "Dave");
        assert_eq!(
            offer.as_ref().unwrap().codec,
            tandem_media::voice_codec::VoiceCodec::Pcmu
        );
        let ok = sent(&e.answer(now, *leg, "192.0.2.1:7000".parse().unwrap()));
        assert!(ok[0].starts_with("SIP/2.0 200 OK"), "{}", ok[0]);
        assert!(ok[0].contains("m=audio 7000 RTP/AVP 0 101"), "{}", ok[0]);
        (*leg, to_tag(&ok[0]))
    }

    #[test]
    fn a_call_is_answered_acknowledged_and_hung_up_by_the_phone() {
        let mut e = endpoint();
        let now = Instant::now();
        let (leg, tag) = answered(&mut e, now);
        // The 200 is repeated until the ACK...
        let again = sent(&e.handle_timeout(now + Duration::from_millis(600)));
        assert!(
            again.iter().any(|m| m.starts_with("SIP/2.0 200")),
            "{again:?}"
        );
        // ...and not after it.
        e.receive(now, peer(), &request("ACK", "a1", Some(&tag), 1, ""));
        assert!(sent(&e.handle_timeout(now + Duration::from_secs(3))).is_empty());
        assert_eq!(e.active_calls(), 1);
        let out = e.receive(now, peer(), &request("BYE", "b1", Some(&tag), 2, ""));
        assert!(sent(&out)[0].starts_with("SIP/2.0 200"));
        assert_eq!(
            events(&out),
            vec![CallEvent::Ended {
                leg,
                how: Ended::Bye
            }]
        );
        assert_eq!(e.active_calls(), 0);
        // A retransmitted BYE gets the same answer, and no second event.
        let out = e.receive(now, peer(), &request("BYE", "b1", Some(&tag), 2, ""));
        assert!(sent(&out)[0].starts_with("SIP/2.0 200"));
        assert!(events(&out).is_empty());
    }

    #[test]
    fn cancel_while_ringing_ends_the_invite_with_487() {
        let mut e = endpoint();
        let now = Instant::now();
        let out = e.receive(
            now,
            peer(),
            &request("INVITE", "i1", None, 1, &sdp_offer("sendrecv")),
        );
        let [CallEvent::Incoming { leg, .. }] = &events(&out)[..] else {
            panic!()
        };
        assert!(sent(&e.ring(now, *leg))[0].starts_with("SIP/2.0 180 Ringing"));
        let out = e.receive(now, peer(), &request("CANCEL", "i1", None, 1, ""));
        let s = sent(&out);
        assert!(
            s[0].starts_with("SIP/2.0 200") && s[0].contains("CANCEL"),
            "{s:?}"
        );
        assert!(s[1].starts_with("SIP/2.0 487"), "{s:?}");
        assert_eq!(
            events(&out),
            vec![CallEvent::Ended {
                leg: *leg,
                how: Ended::Cancelled
            }]
        );
        // Answering now does nothing.
        assert!(
            e.answer(now, *leg, "192.0.2.1:7000".parse().unwrap())
                .is_empty()
        );
        // A CANCEL for nothing: 481.
        let out = e.receive(now, peer(), &request("CANCEL", "zz", None, 1, ""));
        assert!(sent(&out)[0].starts_with("SIP/2.0 481"));
    }

    #[test]
    fn a_reinvite_puts_the_call_on_hold_and_back() {
        let mut e = endpoint();
        let now = Instant::now();
        let (leg, tag) = answered(&mut e, now);
        e.receive(now, peer(), &request("ACK", "a1", Some(&tag), 1, ""));
        let out = e.receive(
            now,
            peer(),
            &request("INVITE", "r1", Some(&tag), 2, &sdp_offer("sendonly")),
        );
        let s = sent(&out);
        assert!(
            s[0].starts_with("SIP/2.0 200") && s[0].contains("a=recvonly"),
            "{s:?}"
        );
        let [CallEvent::Media { leg: l, media }] = &events(&out)[..] else {
            panic!("{out:?}")
        };
        assert_eq!(*l, leg);
        assert!(!media.send && media.receive);
        e.receive(now, peer(), &request("ACK", "a2", Some(&tag), 2, ""));
        let out = e.receive(
            now,
            peer(),
            &request("INVITE", "r2", Some(&tag), 3, &sdp_offer("sendrecv")),
        );
        let [CallEvent::Media { media, .. }] = &events(&out)[..] else {
            panic!()
        };
        assert!(media.send && media.receive);
    }

    #[test]
    fn an_invite_without_offer_gets_ours_and_the_ack_answers_it() {
        let mut e = endpoint();
        let now = Instant::now();
        let out = e.receive(now, peer(), &request("INVITE", "i1", None, 1, ""));
        let [
            CallEvent::Incoming {
                leg, offer: None, ..
            },
        ] = &events(&out)[..]
        else {
            panic!("{out:?}")
        };
        let ok = sent(&e.answer(now, *leg, "192.0.2.1:7000".parse().unwrap()));
        assert!(
            ok[0].contains("m=audio 7000 RTP/AVP 96 9 0 8 101 102"),
            "{}",
            ok[0]
        );
        let tag = to_tag(&ok[0]);
        let out = e.receive(
            now,
            peer(),
            &request("ACK", "a1", Some(&tag), 1, &sdp_offer("sendrecv")),
        );
        let [CallEvent::Media { leg: l, media }] = &events(&out)[..] else {
            panic!("{out:?}")
        };
        assert_eq!(l, leg);
        assert_eq!(media.remote, "10.0.0.9:4000".parse().unwrap());
        assert_eq!(media.dtmf_payload_type, Some(101));
        // Acknowledged: the 200 is not repeated.
        assert!(sent(&e.handle_timeout(now + Duration::from_secs(2))).is_empty());
    }

    #[test]
    fn an_unanswered_200_ends_the_call_with_bye() {
        let mut e = endpoint();
        let now = Instant::now();
        let (leg, _) = answered(&mut e, now);
        let mut all = Vec::new();
        for s in 1..=33 {
            all.extend(e.handle_timeout(now + Duration::from_secs(s)));
        }
        assert!(events(&all).contains(&CallEvent::Ended {
            leg,
            how: Ended::NoAck
        }));
        assert!(
            sent(&all).iter().any(|m| m.starts_with("BYE sip:dave@")),
            "{:?}",
            sent(&all)
        );
    }

    #[test]
    fn out_of_dialog_requests_and_limits() {
        let mut e = endpoint();
        let now = Instant::now();
        let out = e.receive(now, peer(), &request("OPTIONS", "o1", None, 1, ""));
        assert!(sent(&out)[0].starts_with("SIP/2.0 200"));
        let out = e.receive(now, peer(), &request("BYE", "b9", Some("nope"), 1, ""));
        assert!(sent(&out)[0].starts_with("SIP/2.0 481"));
        let out = e.receive(now, peer(), &request("MESSAGE", "m1", None, 1, ""));
        assert!(sent(&out)[0].starts_with("SIP/2.0 405"));
        // An offer with nothing we can play: 488.
        let g729 = sdp_offer("sendrecv").replace("RTP/AVP 0 101", "RTP/AVP 18");
        let out = e.receive(now, peer(), &request("INVITE", "i7", None, 1, &g729));
        assert!(sent(&out)[0].starts_with("SIP/2.0 488"), "{:?}", sent(&out));
        // Past max_calls: 503.
        for i in 0..2 {
            let call = String::from_utf8(request("INVITE", &format!("c{i}"), None, 1, ""))
                .unwrap()
                .replace("call-1@", &format!("call-x{i}@"));
            e.receive(now, peer(), call.as_bytes());
        }
        let third = String::from_utf8(request("INVITE", "c9", None, 1, ""))
            .unwrap()
            .replace("call-1@", "call-x9@");
        let out = e.receive(now, peer(), third.as_bytes());
        assert!(sent(&out)[0].starts_with("SIP/2.0 503"), "{:?}", sent(&out));
    }

    const PASSWORD: &str = "softphone secret 42";

    fn accounts() -> Arc<AccountTable> {
        let dave = SipAccount {
            credential: crate::sip::digest::SipCredential::new("dave", "tandem.test", PASSWORD),
            id: tandem_actors::ids::AccountId::random(),
            display_name: "Dave Support".into(),
            email: "dave@example.com".into(),
            is_agent: false,
        };
        Arc::new([("dave".to_string(), dave)].into_iter().collect())
    }

    /// A REGISTER of `aor` from the phone, with `auth` as its Authorization when given.
    fn register(branch: &str, cseq: u32, aor: &str, contact: &str, auth: Option<&str>) -> Vec<u8> {
        let auth = auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        format!(
            "REGISTER sip:192.0.2.1 SIP/2.0\r\n\
             Via: SIP/2.0/UDP {PHONE};branch=z9hG4bK{branch}\r\n\
             From: <sip:{aor}@tandem.test>;tag=r1\r\n\
             To: <sip:{aor}@tandem.test>\r\n\
             Call-ID: reg-1@10.0.0.9\r\n\
             CSeq: {cseq} REGISTER\r\n\
             Contact: {contact}\r\n{auth}\
             Expires: 600\r\n\
             Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    /// The challenges of a 401 (each WWW-Authenticate value).
    fn challenges(response: &str) -> Vec<String> {
        assert!(response.starts_with("SIP/2.0 401"), "{response}");
        response
            .lines()
            .filter_map(|l| l.strip_prefix("WWW-Authenticate: "))
            .map(str::to_string)
            .collect()
    }

    fn answer(challenge: &str, method: &str, uri: &str, password: &str, nc: u32) -> String {
        crate::sip::digest::answer(challenge, method, uri, "dave", password, nc, "c0ffee").unwrap()
    }

    #[test]
    fn register_is_challenged_then_bound_with_either_algorithm() {
        let mut e = endpoint();
        e.set_accounts(accounts());
        let now = Instant::now();
        let contact = "<sip:dave@10.0.0.9:5062>";
        let out = e.receive(now, peer(), &register("r1", 1, "dave", contact, None));
        let ch = challenges(&sent(&out)[0]);
        assert_eq!(ch.len(), 2);
        assert!(ch[0].contains("algorithm=SHA-256") && ch[0].contains("realm=\"tandem.test\""));
        assert!(ch[1].contains("algorithm=MD5") && ch[1].contains("qop=\"auth\""));
        assert!(e.registrations(now).is_empty());
        for (i, c) in ch.iter().enumerate() {
            let auth = answer(c, "REGISTER", "sip:192.0.2.1", PASSWORD, 1 + i as u32);
            let out = e.receive(
                now,
                peer(),
                &register(
                    &format!("r2{i}"),
                    2 + i as u32,
                    "dave",
                    contact,
                    Some(&auth),
                ),
            );
            let ok = &sent(&out)[0];
            assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
            assert!(
                ok.contains("Contact: <sip:dave@10.0.0.9:5062>;expires=600"),
                "{ok}"
            );
        }
        let table = e.registrations(now);
        assert_eq!(table["dave"].len(), 1);
        assert_eq!(table["dave"][0].source, PHONE.parse().unwrap());
        // It expires on its own.
        e.handle_timeout(now + Duration::from_secs(601));
        assert!(e.registrations(now + Duration::from_secs(601)).is_empty());
    }

    #[test]
    fn wrong_credentials_another_aor_and_guessing_are_refused() {
        let mut e = endpoint();
        e.set_accounts(accounts());
        let now = Instant::now();
        let contact = "<sip:dave@10.0.0.9:5062>";
        let out = e.receive(now, peer(), &register("w0", 1, "dave", contact, None));
        let ch = challenges(&sent(&out)[0]).remove(1);
        // Dave's credentials do not register somebody else.
        let auth = answer(&ch, "REGISTER", "sip:192.0.2.1", PASSWORD, 1);
        let out = e.receive(
            now,
            peer(),
            &register("w1", 2, "erin", contact, Some(&auth)),
        );
        assert!(sent(&out)[0].starts_with("SIP/2.0 403"), "{:?}", sent(&out));
        // The same answer again is a replay: asked again (stale), not refused or counted.
        let out = e.receive(
            now,
            peer(),
            &register("w2", 3, "dave", contact, Some(&auth)),
        );
        let again = challenges(&sent(&out)[0]);
        assert!(again[0].ends_with("stale=true"), "{again:?}");
        // Guesses at other accounts from this address: nine, then Dave's right password
        // from it, which does not wipe the address's count...
        for i in 0..9 {
            let bad = crate::sip::digest::answer(
                &ch,
                "REGISTER",
                "sip:192.0.2.1",
                &format!("user{i}"),
                "guess",
                1,
                "c",
            )
            .unwrap();
            let out = e.receive(
                now,
                peer(),
                &register(
                    &format!("u{i}"),
                    4,
                    &format!("user{i}"),
                    contact,
                    Some(&bad),
                ),
            );
            assert!(sent(&out)[0].starts_with("SIP/2.0 403"), "{:?}", sent(&out));
        }
        let ch = challenges(
            &sent(&e.receive(now, peer(), &register("n0", 5, "dave", contact, None)))[0],
        )
        .remove(1);
        let good = answer(&ch, "REGISTER", "sip:192.0.2.1", PASSWORD, 1);
        let out = e.receive(
            now,
            peer(),
            &register("n1", 6, "dave", contact, Some(&good)),
        );
        assert!(sent(&out)[0].starts_with("SIP/2.0 200"), "{:?}", sent(&out));
        // ...so one more guess is the tenth, and then the address is refused even with the
        // right password.
        let bad = answer(&ch, "REGISTER", "sip:192.0.2.1", "guess", 2);
        let out = e.receive(now, peer(), &register("n2", 7, "dave", contact, Some(&bad)));
        assert!(sent(&out)[0].starts_with("SIP/2.0 403"));
        let good = answer(&ch, "REGISTER", "sip:192.0.2.1", PASSWORD, 3);
        let out = e.receive(
            now,
            peer(),
            &register("n3", 8, "dave", contact, Some(&good)),
        );
        assert!(sent(&out)[0].starts_with("SIP/2.0 403"));
        assert!(sent(&out)[0].contains("Retry-After:"), "{}", sent(&out)[0]);
        // Guesses at Dave from many addresses hold his account back, even from a new one.
        let other = Peer::Udp("10.0.0.10:5062".parse().unwrap());
        let mut e = endpoint();
        e.set_accounts(accounts());
        for i in 0..10u8 {
            let from = Peer::Udp(SocketAddr::from(([203, 0, 113, i], 5060)));
            let out = e.receive(
                now,
                from,
                &register(&format!("m{i}"), 1, "dave", contact, None),
            );
            let ch = challenges(&sent(&out)[0]).remove(1);
            let bad = answer(&ch, "REGISTER", "sip:192.0.2.1", "guess", 1);
            let out = e.receive(
                now,
                from,
                &register(&format!("mm{i}"), 2, "dave", contact, Some(&bad)),
            );
            assert!(sent(&out)[0].starts_with("SIP/2.0 403"));
        }
        let ch =
            challenges(&sent(&e.receive(now, other, &register("o0", 1, "dave", contact, None)))[0])
                .remove(0);
        let auth = answer(&ch, "REGISTER", "sip:192.0.2.1", PASSWORD, 1);
        let out = e.receive(now, other, &register("o1", 2, "dave", contact, Some(&auth)));
        assert!(sent(&out)[0].contains("Retry-After:"), "{:?}", sent(&out));
        assert!(e.registrations(now).is_empty(), "nothing was bound");
        // Once the window has passed, Dave's phone registers.
        let later = now + AUTH_WINDOW;
        let ch = challenges(
            &sent(&e.receive(later, other, &register("o2", 3, "dave", contact, None)))[0],
        )
        .remove(0);
        let auth = answer(&ch, "REGISTER", "sip:192.0.2.1", PASSWORD, 1);
        let out = e.receive(
            later,
            other,
            &register("o3", 4, "dave", contact, Some(&auth)),
        );
        assert!(sent(&out)[0].starts_with("SIP/2.0 200"), "{:?}", sent(&out));
        // A phone that kept a nonce from before a restart is asked again, not refused.
        let mut restarted = endpoint();
        restarted.set_accounts(accounts());
        let auth = answer(&ch, "REGISTER", "sip:192.0.2.1", PASSWORD, 2);
        let out = restarted.receive(
            later,
            other,
            &register("o4", 5, "dave", contact, Some(&auth)),
        );
        assert!(challenges(&sent(&out)[0])[0].ends_with("stale=true"));
        // A new SIP password drops the account's registrations.
        e.set_accounts(Arc::new(AccountTable::new()));
        assert!(e.registrations(now).is_empty());
    }

    #[test]
    fn a_call_that_claims_an_account_must_prove_it_and_joins_as_it() {
        let mut e = endpoint();
        e.set_accounts(accounts());
        let now = Instant::now();
        // The test INVITE's From is sip:dave@...: challenged, and the 401 is acknowledged.
        let invite = request("INVITE", "i1", None, 1, &sdp_offer("sendrecv"));
        let out = e.receive(now, peer(), &invite);
        let ch = challenges(&sent(&out)[0]).remove(1);
        assert!(events(&out).is_empty());
        let ack = request("ACK", "i1", Some(&to_tag(&sent(&out)[0])), 1, "");
        assert!(e.receive(now, peer(), &ack).is_empty());
        assert_eq!(e.active_calls(), 0);
        let auth = answer(&ch, "INVITE", "sip:123456789@192.0.2.1", PASSWORD, 1);
        let invite = String::from_utf8(request("INVITE", "i2", None, 2, &sdp_offer("sendrecv")))
            .unwrap()
            .replace(
                "Max-Forwards: 70\r\n",
                &format!("Max-Forwards: 70\r\nAuthorization: {auth}\r\n"),
            );
        let out = e.receive(now, peer(), invite.as_bytes());
        let [
            CallEvent::Incoming {
                account: Some(a), ..
            },
        ] = &events(&out)[..]
        else {
            panic!("{out:?}")
        };
        assert_eq!(a.display_name, "Dave Support");
    }

    #[test]
    fn require_auth_refuses_anonymous_callers() {
        let mut e = Endpoint::new(EndpointConfig {
            require_auth: true,
            ..endpoint().config.clone()
        });
        let now = Instant::now();
        let invite = String::from_utf8(request("INVITE", "i1", None, 1, &sdp_offer("sendrecv")))
            .unwrap()
            .replace("sip:dave@10.0.0.9", "sip:+15550100@10.0.0.9");
        let out = e.receive(now, peer(), invite.as_bytes());
        assert_eq!(challenges(&sent(&out)[0]).len(), 2);
        assert!(events(&out).is_empty());
        // Without require_auth the same caller is let in as a guest.
        let mut open = endpoint();
        open.set_accounts(accounts());
        let out = open.receive(now, peer(), invite.as_bytes());
        assert!(matches!(
            &events(&out)[..],
            [CallEvent::Incoming { account: None, .. }]
        ));
    }

    /// Dave's softphone registered from [`PHONE`] as `sip:dave@10.0.0.9:5062`.
    fn registered(e: &mut Endpoint, now: Instant) {
        e.set_accounts(accounts());
        let contact = "<sip:dave@10.0.0.9:5062>";
        let out = e.receive(now, peer(), &register("d0", 1, "dave", contact, None));
        let ch = challenges(&sent(&out)[0]).remove(1);
        let auth = answer(&ch, "REGISTER", "sip:192.0.2.1", PASSWORD, 1);
        let out = e.receive(
            now,
            peer(),
            &register("d1", 2, "dave", contact, Some(&auth)),
        );
        assert!(sent(&out)[0].starts_with("SIP/2.0 200"));
    }

    /// The phone's response to our `request`: its Via, From, Call-ID and CSeq, its To tagged.
    fn reply_to(request: &str, code: u16, body: &str) -> Vec<u8> {
        let header = |name: &str| {
            request
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap()
                .to_string()
        };
        let ctype = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        format!(
            "SIP/2.0 {code} Whatever\r\n{}\r\n{}\r\n{};tag=ph2\r\n{}\r\n{}\r\n\
             Contact: <sip:dave@{PHONE}>\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
            header("Via:"),
            header("From:"),
            header("To:"),
            header("Call-ID:"),
            header("CSeq:"),
            body.len()
        )
        .into_bytes()
    }

    /// Ringing Dave's softphone into a session on 192.0.2.1:7000.
    fn dave_dial() -> Dial {
        Dial {
            user: "dave".into(),
            local: "192.0.2.1:7000".parse().unwrap(),
            ring: Duration::from_secs(20),
        }
    }

    /// Rings Dave, whose INVITE goes to `to`.
    fn dial_via(e: &mut Endpoint, now: Instant, to: Peer) -> (LegId, String) {
        let (leg, out) = e.dial(now, dave_dial()).unwrap();
        let [Output::Send(s)] = &out[..] else {
            panic!("{out:?}")
        };
        assert_eq!(s.peer, to, "rung where it registered from");
        (leg, String::from_utf8(s.bytes.clone()).unwrap())
    }

    fn dial(e: &mut Endpoint, now: Instant) -> (LegId, String) {
        dial_via(e, now, peer())
    }

    #[test]
    fn a_registered_softphone_is_rung_answered_and_hangs_up() {
        let mut e = endpoint();
        let now = Instant::now();
        assert_eq!(
            e.dial(now, dave_dial()).err(),
            Some(DialError::NotRegistered)
        );
        registered(&mut e, now);
        let (leg, invite) = dial(&mut e, now);
        assert!(
            invite.starts_with("INVITE sip:dave@10.0.0.9:5062 SIP/2.0\r\n"),
            "{invite}"
        );
        assert!(
            invite.contains("m=audio 7000 RTP/AVP"),
            "our offer: {invite}"
        );
        // Repeated until the phone says something, then not.
        assert!(sent(&e.handle_timeout(now + Duration::from_millis(500)))[0].starts_with("INVITE"));
        assert!(
            e.receive(now, peer(), &reply_to(&invite, 180, ""))
                .is_empty()
        );
        assert!(sent(&e.handle_timeout(now + Duration::from_secs(3))).is_empty());
        let ok = reply_to(&invite, 200, &sdp_offer("sendrecv"));
        let out = e.receive(now, peer(), &ok);
        let ack = &sent(&out)[0];
        assert!(
            ack.starts_with(&format!("ACK sip:dave@{PHONE} SIP/2.0")),
            "{ack}"
        );
        assert!(
            ack.contains("CSeq: 1 ACK") && ack.contains("tag=ph2"),
            "{ack}"
        );
        let [CallEvent::Media { leg: l, media }] = &events(&out)[..] else {
            panic!("{out:?}")
        };
        assert_eq!(
            (*l, media.codec),
            (leg, tandem_media::voice_codec::VoiceCodec::Pcmu)
        );
        // The 200 again (our ACK was lost): the same ACK again, nothing new for the owner.
        let again = e.receive(now, peer(), &ok);
        assert_eq!(sent(&again), vec![ack.clone()]);
        assert!(events(&again).is_empty());
        // The phone hangs up: its BYE has our tag in To, its own in From.
        let from_tag = invite
            .split("tag=")
            .nth(1)
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_string();
        let bye = format!(
            "BYE sip:tandem@192.0.2.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {PHONE};branch=z9hG4bKbye1\r\n\
             From: <sip:dave@10.0.0.9:5062>;tag=ph2\r\nTo: \"Tandem\" <sip:tandem@192.0.2.1:5060>;tag={from_tag}\r\n\
             {}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
            invite.lines().find(|l| l.starts_with("Call-ID:")).unwrap()
        );
        let out = e.receive(now, peer(), bye.as_bytes());
        assert!(sent(&out)[0].starts_with("SIP/2.0 200"), "{:?}", sent(&out));
        assert_eq!(
            events(&out),
            vec![CallEvent::Ended {
                leg,
                how: Ended::Bye
            }]
        );
    }

    #[test]
    fn a_busy_or_silent_softphone_ends_the_call_with_its_reason() {
        let mut e = endpoint();
        let now = Instant::now();
        registered(&mut e, now);
        // Busy: acknowledged in the INVITE's transaction (same branch).
        let (leg, invite) = dial(&mut e, now);
        let out = e.receive(now, peer(), &reply_to(&invite, 486, ""));
        let ack = &sent(&out)[0];
        let via = |m: &str| {
            m.lines()
                .find(|l| l.starts_with("Via:"))
                .unwrap()
                .to_string()
        };
        assert!(ack.starts_with("ACK ") && via(ack) == via(&invite), "{ack}");
        assert_eq!(
            events(&out),
            vec![CallEvent::Ended {
                leg,
                how: Ended::Declined(486)
            }]
        );

        // Rings until we give up: CANCEL, whose 200 is taken, then 487 for the INVITE.
        let (leg, invite) = dial(&mut e, now);
        e.receive(now, peer(), &reply_to(&invite, 180, ""));
        let out = e.handle_timeout(now + Duration::from_secs(20));
        let cancel = &sent(&out)[0];
        assert!(
            cancel.starts_with("CANCEL sip:dave@10.0.0.9:5062") && via(cancel) == via(&invite),
            "{cancel}"
        );
        assert!(cancel.contains("CSeq: 1 CANCEL"));
        assert!(
            e.receive(now, peer(), &reply_to(cancel, 200, ""))
                .is_empty()
        );
        let out = e.receive(now, peer(), &reply_to(&invite, 487, ""));
        assert!(sent(&out)[0].starts_with("ACK "));
        assert_eq!(
            events(&out),
            vec![CallEvent::Ended {
                leg,
                how: Ended::NoAnswer
            }]
        );

        // The 200 crosses our CANCEL: acknowledged, hung up, and reported as not answered.
        let (leg, invite) = dial(&mut e, now);
        e.receive(now, peer(), &reply_to(&invite, 180, ""));
        let out = e.handle_timeout(now + Duration::from_secs(20));
        assert!(sent(&out)[0].starts_with("CANCEL "));
        let out = e.receive(now, peer(), &reply_to(&invite, 200, &sdp_offer("sendrecv")));
        let sent_now = sent(&out);
        assert!(
            sent_now[0].starts_with("ACK ") && sent_now[1].starts_with("BYE "),
            "{sent_now:?}"
        );
        assert_eq!(
            events(&out),
            vec![CallEvent::Ended {
                leg,
                how: Ended::NoAnswer
            }]
        );

        // Nothing at all: the INVITE is repeated at 0.5, 1.5, 3.5, 7.5, 15.5 and 31.5 s
        // (timer A doubles without a cap), and given up after 32 s.
        let (leg, invite) = dial(&mut e, now);
        let mut all = Vec::new();
        for ms in (500..=33_000).step_by(500) {
            all.extend(e.handle_timeout(now + Duration::from_millis(ms)));
        }
        assert_eq!(
            sent(&all)
                .iter()
                .filter(|m| m.starts_with("INVITE"))
                .count(),
            6
        );
        assert_eq!(
            events(&all),
            vec![CallEvent::Ended {
                leg,
                how: Ended::Unreachable
            }]
        );
        assert_eq!(e.active_calls(), 0);
        // The phone answers after all (its responses were lost): acknowledged and hung up,
        // and the owner, told already, hears nothing more.
        let late = now + Duration::from_secs(35);
        let out = e.receive(
            late,
            peer(),
            &reply_to(&invite, 200, &sdp_offer("sendrecv")),
        );
        let sent_late = sent(&out);
        assert!(
            sent_late[0].starts_with("ACK ") && sent_late[1].starts_with("BYE "),
            "{sent_late:?}"
        );
        assert!(events(&out).is_empty(), "{out:?}");
        // A late refusal is acknowledged too, and not reported twice.
        let (leg, invite) = dial(&mut e, late);
        let out = e.handle_timeout(late + transaction::TIMEOUT);
        assert_eq!(events(&out).len(), 1);
        let out = e.receive(late, peer(), &reply_to(&invite, 486, ""));
        assert!(sent(&out)[0].starts_with("ACK "));
        assert!(events(&out).is_empty(), "{leg}: {out:?}");
    }

    #[test]
    fn an_account_is_rung_once_at_a_time() {
        let mut e = endpoint();
        let now = Instant::now();
        registered(&mut e, now);
        let (leg, invite) = dial(&mut e, now);
        assert_eq!(
            e.dial(now, dave_dial()).err(),
            Some(DialError::AlreadyRinging)
        );
        // Once it is answered, another ring may start (say, into another session).
        let out = e.receive(now, peer(), &reply_to(&invite, 200, &sdp_offer("sendrecv")));
        assert!(matches!(&events(&out)[..], [CallEvent::Media { leg: l, .. }] if *l == leg));
        dial(&mut e, now);
    }

    #[test]
    fn the_answers_contact_gets_the_ack_and_the_bye() {
        let mut e = endpoint();
        let now = Instant::now();
        registered(&mut e, now);
        let (leg, invite) = dial(&mut e, now);
        let ok = String::from_utf8(reply_to(&invite, 200, &sdp_offer("sendrecv")))
            .unwrap()
            .replace(
                &format!("Contact: <sip:dave@{PHONE}>"),
                "Contact: <sip:dave@10.0.0.9:5070>",
            );
        let out = e.receive(now, peer(), ok.as_bytes());
        let to_contact = Peer::Udp("10.0.0.9:5070".parse().unwrap());
        let [Output::Send(ack), ..] = &out[..] else {
            panic!("{out:?}")
        };
        assert_eq!(ack.peer, to_contact);
        assert!(String::from_utf8_lossy(&ack.bytes).starts_with("ACK sip:dave@10.0.0.9:5070 "));
        let out = e.hangup(now, leg);
        let [Output::Send(bye)] = &out[..] else {
            panic!("{out:?}")
        };
        assert_eq!(bye.peer, to_contact);
    }

    #[test]
    fn a_softphone_whose_connection_closed_is_forgotten_and_not_rung() {
        let mut e = endpoint();
        e.set_accounts(accounts());
        let now = Instant::now();
        let tcp = Peer::Tcp(PHONE.parse().unwrap());
        let contact = "<sip:dave@10.0.0.9:5062;transport=tcp>";
        let over_tcp = |m: Vec<u8>| {
            String::from_utf8(m)
                .unwrap()
                .replace("SIP/2.0/UDP", "SIP/2.0/TCP")
                .into_bytes()
        };
        let out = e.receive(
            now,
            tcp,
            &over_tcp(register("t0", 1, "dave", contact, None)),
        );
        let ch = challenges(&sent(&out)[0]).remove(1);
        let auth = answer(&ch, "REGISTER", "sip:192.0.2.1", PASSWORD, 1);
        let out = e.receive(
            now,
            tcp,
            &over_tcp(register("t1", 2, "dave", contact, Some(&auth))),
        );
        assert!(sent(&out)[0].starts_with("SIP/2.0 200"), "{:?}", sent(&out));
        // Rung over its connection, which closes while it rings: given up at once.
        let (leg, _) = dial_via(&mut e, now, tcp);
        let before = e.registrations_version();
        let out = e.connection_lost(now, tcp);
        assert_eq!(
            events(&out),
            vec![CallEvent::Ended {
                leg,
                how: Ended::Unreachable
            }]
        );
        assert_eq!(e.active_calls(), 0);
        // And it is no longer listed or rung.
        assert!(e.registrations(now).is_empty());
        assert_ne!(e.registrations_version(), before, "the change is published");
        assert_eq!(
            e.dial(now, dave_dial()).err(),
            Some(DialError::NotRegistered)
        );
    }
}
