//! The registrar (RFC 3261 10.3): where each CSR's softphones can be reached. Sans-IO; the
//! endpoint authenticates a REGISTER first and hands it here with the account it proved.
//! Bindings live in memory: a phone registers again well before its binding expires, and
//! after a restart it is asked to (its next REGISTER is simply taken).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use tandem_actors::ids::AccountId;

use super::digest::SipCredential;

/// Shortest registration taken (423 Interval Too Brief below it).
pub const MIN_EXPIRES: u32 = 60;
/// Longest registration granted; asked-for longer ones are shortened.
pub const MAX_EXPIRES: u32 = 3600;
/// Used when the phone names no expiry.
const DEFAULT_EXPIRES: u32 = 3600;
/// Bindings one account may hold (its desk phone, a softphone, a mobile app...).
pub const MAX_BINDINGS: usize = 10;

/// A support account that may use a softphone, with what a call needs to join as it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipAccount {
    pub credential: SipCredential,
    pub id: AccountId,
    pub display_name: String,
    pub email: String,
    pub is_agent: bool,
}

/// By username.
pub type AccountTable = HashMap<String, SipAccount>;
/// Valid bindings by username.
pub type RegistrationTable = HashMap<String, Vec<Binding>>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The Contact URI, as the phone sent it.
    pub contact: String,
    /// Where the REGISTER came from and over which transport.
    pub source: SocketAddr,
    pub transport: &'static str,
    pub user_agent: Option<String>,
    call_id: String,
    cseq: u32,
    expires_at: Instant,
    /// The same moment on the wall clock, for people.
    pub expires_wall: SystemTime,
}

impl Binding {
    pub fn remaining(&self, now: Instant) -> Duration {
        self.expires_at.saturating_duration_since(now)
    }
}

/// A REGISTER, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterRequest {
    /// Contact URIs with the expiry each asks for (its `expires` parameter, else the
    /// Expires header), or `None` for `Contact: *`.
    pub contacts: Option<Vec<(String, Option<u32>)>>,
    pub expires_header: Option<u32>,
    pub call_id: String,
    pub cseq: u32,
    pub source: SocketAddr,
    pub transport: &'static str,
    pub user_agent: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterOutcome {
    /// 200 OK listing these bindings (contact, seconds left).
    Ok(Vec<(String, u32)>),
    /// 423 Interval Too Brief (Min-Expires: [`MIN_EXPIRES`]).
    TooBrief,
    /// 400: `*` with a non-zero expiry, or with other contacts.
    BadWildcard,
    /// 500: an older request of the same Call-ID (RFC 3261 10.3 step 7).
    OutOfOrder,
    /// 403: more than [`MAX_BINDINGS`].
    TooMany,
}

#[derive(Default)]
pub struct Registrar {
    bindings: HashMap<String, Vec<Binding>>,
    /// Bumped on every change, so the owner knows when to publish the table again.
    version: u64,
}

impl Registrar {
    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn register(&mut self, now: Instant, user: &str, req: RegisterRequest) -> RegisterOutcome {
        self.expire(now);
        let list = self.bindings.entry(user.to_string()).or_default();
        let Some(contacts) = req.contacts else {
            // Contact: * removes every binding, and only with Expires: 0.
            if req.expires_header != Some(0) {
                return RegisterOutcome::BadWildcard;
            }
            if list
                .iter()
                .any(|b| b.call_id == req.call_id && b.cseq >= req.cseq)
            {
                return RegisterOutcome::OutOfOrder;
            }
            list.clear();
            self.version += 1;
            return RegisterOutcome::Ok(Vec::new());
        };
        let mut next = list.clone();
        for (contact, asked) in contacts {
            let expires = asked.or(req.expires_header).unwrap_or(DEFAULT_EXPIRES);
            if expires != 0 && expires < MIN_EXPIRES {
                return RegisterOutcome::TooBrief;
            }
            if let Some(i) = next.iter().position(|b| b.contact == contact) {
                let b = &next[i];
                if b.call_id == req.call_id && b.cseq >= req.cseq {
                    return RegisterOutcome::OutOfOrder;
                }
                next.remove(i);
            }
            if expires == 0 {
                continue;
            }
            let secs = expires.min(MAX_EXPIRES);
            next.push(Binding {
                contact,
                source: req.source,
                transport: req.transport,
                user_agent: req.user_agent.clone(),
                call_id: req.call_id.clone(),
                cseq: req.cseq,
                expires_at: now + Duration::from_secs(secs.into()),
                expires_wall: SystemTime::now() + Duration::from_secs(secs.into()),
            });
        }
        if next.len() > MAX_BINDINGS {
            return RegisterOutcome::TooMany;
        }
        *list = next;
        self.version += 1;
        RegisterOutcome::Ok(current(list, now))
    }

    /// The bindings still valid for `user` (a REGISTER without Contact asks for them).
    pub fn bindings(&self, user: &str, now: Instant) -> Vec<(String, u32)> {
        self.bindings
            .get(user)
            .map(|l| current(l, now))
            .unwrap_or_default()
    }

    /// The binding of `user` registered (or refreshed) last, still valid: the one to ring.
    pub fn latest(&self, user: &str, now: Instant) -> Option<Binding> {
        self.bindings
            .get(user)?
            .iter()
            .rev()
            .find(|b| b.expires_at > now)
            .cloned()
    }

    /// Every valid binding, by account.
    pub fn table(&self, now: Instant) -> HashMap<String, Vec<Binding>> {
        self.bindings
            .iter()
            .map(|(u, l)| {
                (
                    u.clone(),
                    l.iter().filter(|b| b.expires_at > now).cloned().collect(),
                )
            })
            .filter(|(_, l): &(String, Vec<Binding>)| !l.is_empty())
            .collect()
    }

    pub fn count(&self) -> usize {
        self.bindings.values().map(Vec::len).sum()
    }

    /// Forgets the bindings of `user` (its SIP password was removed or changed).
    pub fn forget(&mut self, user: &str) {
        if self.bindings.remove(user).is_some() {
            self.version += 1;
        }
    }

    /// Forgets the bindings made over `transport` from `source` (its connection closed).
    pub fn forget_source(&mut self, transport: &str, source: SocketAddr) {
        self.retain(|b| !(b.transport == transport && b.source == source));
    }

    /// Drops expired bindings.
    pub fn expire(&mut self, now: Instant) {
        self.retain(|b| b.expires_at > now);
    }

    /// Keeps the bindings `keep` accepts; a change is a new version.
    fn retain(&mut self, keep: impl Fn(&Binding) -> bool) {
        let before = self.count();
        for l in self.bindings.values_mut() {
            l.retain(&keep);
        }
        self.bindings.retain(|_, l| !l.is_empty());
        if self.count() != before {
            self.version += 1;
        }
    }

    /// When the next binding expires.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.bindings.values().flatten().map(|b| b.expires_at).min()
    }
}

fn current(list: &[Binding], now: Instant) -> Vec<(String, u32)> {
    list.iter()
        .filter(|b| b.expires_at > now)
        .map(|b| {
            (
                b.contact.clone(),
                b.remaining(now)
                    .as_secs()
                    .max(1)
                    .try_into()
                    .unwrap_or(u32::MAX),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(
        contacts: Option<Vec<(&str, Option<u32>)>>,
        expires: Option<u32>,
        cseq: u32,
    ) -> RegisterRequest {
        RegisterRequest {
            contacts: contacts.map(|l| l.into_iter().map(|(c, e)| (c.to_string(), e)).collect()),
            expires_header: expires,
            call_id: "reg-1".into(),
            cseq,
            source: "127.0.0.1:5062".parse().unwrap(),
            transport: "UDP",
            user_agent: Some("test".into()),
        }
    }

    #[test]
    fn a_binding_lives_until_it_expires_or_is_removed() {
        let mut r = Registrar::default();
        let t0 = Instant::now();
        let out = r.register(
            t0,
            "dave",
            req(Some(vec![("sip:dave@10.0.0.2:5062", None)]), Some(120), 1),
        );
        assert_eq!(
            out,
            RegisterOutcome::Ok(vec![("sip:dave@10.0.0.2:5062".into(), 120)])
        );
        assert_eq!(r.bindings("dave", t0 + Duration::from_secs(60)).len(), 1);
        assert_eq!(r.next_expiry(), Some(t0 + Duration::from_secs(120)));
        r.expire(t0 + Duration::from_secs(121));
        assert!(r.bindings("dave", t0 + Duration::from_secs(121)).is_empty());
        assert_eq!(r.count(), 0);

        // Refreshed, then removed with expires=0 on the contact.
        r.register(t0, "dave", req(Some(vec![("sip:a", Some(3600))]), None, 2));
        r.register(t0, "dave", req(Some(vec![("sip:b", None)]), Some(7200), 3));
        assert_eq!(
            r.bindings("dave", t0),
            vec![("sip:a".into(), 3600), ("sip:b".into(), 3600)]
        );
        let out = r.register(t0, "dave", req(Some(vec![("sip:a", Some(0))]), None, 4));
        assert_eq!(out, RegisterOutcome::Ok(vec![("sip:b".into(), 3600)]));
        // Contact: * with Expires: 0 removes all; with another expiry it is an error.
        assert_eq!(
            r.register(t0, "dave", req(None, Some(60), 5)),
            RegisterOutcome::BadWildcard
        );
        assert_eq!(
            r.register(t0, "dave", req(None, Some(0), 6)),
            RegisterOutcome::Ok(vec![])
        );
        assert_eq!(r.count(), 0);
    }

    #[test]
    fn brief_old_and_too_many_registrations_are_refused() {
        let mut r = Registrar::default();
        let t0 = Instant::now();
        assert_eq!(
            r.register(t0, "dave", req(Some(vec![("sip:a", Some(10))]), None, 1)),
            RegisterOutcome::TooBrief
        );
        r.register(t0, "dave", req(Some(vec![("sip:a", None)]), None, 5));
        let v = r.version();
        assert_eq!(
            r.register(t0, "dave", req(Some(vec![("sip:a", None)]), None, 4)),
            RegisterOutcome::OutOfOrder
        );
        assert_eq!(r.version(), v, "a refused REGISTER changes nothing");
        let many: Vec<String> = (0..MAX_BINDINGS).map(|i| format!("sip:p{i}")).collect();
        let out = r.register(
            t0,
            "dave",
            req(
                Some(many.iter().map(|c| (c.as_str(), None)).collect()),
                None,
                6,
            ),
        );
        assert_eq!(out, RegisterOutcome::TooMany);
        assert_eq!(r.bindings("dave", t0).len(), 1);
        // Other accounts are apart.
        assert!(r.bindings("erin", t0).is_empty());
        r.forget("dave");
        assert_eq!(r.count(), 0);
    }
}
