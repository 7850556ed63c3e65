//! REGISTER and digest authentication (RFC 3261 10.3, 22): a support account's softphone
//! proves its SIP password and says where it can be reached; an INVITE that claims an account
//! (or every INVITE, with `require_auth`) proves it the same way. Guesses are limited per
//! address and per account.

use std::time::{Duration, Instant};

use rsip::prelude::*;
use rsip::{Header, Request};

use super::{Endpoint, Output, Tally, tag};
use crate::sip::digest;
use crate::sip::message::{self, RequestKey};
use crate::sip::registrar::{self, RegisterOutcome, RegisterRequest, SipAccount};
use crate::sip::transaction::{Peer, TxKey};

/// Failed digest answers from one address before it is refused for a while.
const AUTH_FAILURES: usize = 10;
pub(super) const AUTH_WINDOW: Duration = Duration::from_secs(300);

/// The guess counts of a new endpoint.
pub(super) fn auth_failures() -> crate::throttle::Throttle {
    crate::throttle::Throttle::new(AUTH_FAILURES, AUTH_WINDOW, 10_000)
}

impl Endpoint {
    /// Digest authentication of a new request (RFC 3261 22.2). `Some(account)` when it may go
    /// on: `Some(None)` for an anonymous caller, allowed when `required` is false. `None` when
    /// it was answered here: 401 with a challenge (none given, or a stale nonce), 403 for
    /// wrong credentials or an address that failed too often lately.
    pub(super) fn authenticate(
        &mut self,
        now: Instant,
        peer: Peer,
        req: &Request,
        tx_key: &TxKey,
        required: bool,
        out: &mut Vec<Output>,
    ) -> Option<Option<Box<SipAccount>>> {
        let method = req.method.to_string();
        let result = |tallies: &mut Vec<Tally>, r: &'static str| {
            tallies.push(Tally::Auth(req.method, r));
        };
        let credentials = req.headers.iter().find_map(|h| match h {
            Header::Authorization(a) => Some(a.value().to_string()),
            _ => None,
        });
        let Some(credentials) = credentials else {
            if !required {
                return Some(None);
            }
            result(&mut self.tallies, "challenged");
            self.challenge(now, peer, req, tx_key, false, out);
            return None;
        };
        // Guesses are counted per address (an IPv6 /64 as one: one subscriber holds it all)
        // and per account, so neither many accounts from one address nor one account from
        // many addresses can be tried without end.
        let client = peer.addr().ip().to_canonical();
        let keys = [
            format!("ip {}", crate::throttle::subscriber(client)),
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
            result(&mut self.tallies, "throttled");
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
                result(&mut self.tallies, "ok");
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
                result(&mut self.tallies, e.code());
                self.challenge(now, peer, req, tx_key, true, out);
                None
            }
            Err(e) => {
                result(&mut self.tallies, e.code());
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

    pub(super) fn challenge(
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
    pub(super) fn register(
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
            self.tallies.push(Tally::Registration("not_own_aor"));
            self.reply(now, &tx_key, &req, 403, Some(&tag()), vec![], None, out);
            return;
        }
        let registration = match message::registration(&req) {
            Ok(r) => r,
            Err(()) => {
                self.tallies.push(Tally::Registration("bad_request"));
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
        self.tallies.push(Tally::Registration(label));
        self.reply(now, &tx_key, &req, code, Some(&tag()), extra, None, out);
    }
}
