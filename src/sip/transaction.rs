//! Server transactions (RFC 3261 17.2) and the one kind of client transaction Tandem starts, a
//! BYE (17.1.2). Retransmissions of a request are answered with the last response without
//! reaching the dialog layer; over UDP final responses are repeated until acknowledged.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rsip::Method;

use deadlines::{Arm, Deadlines};

mod deadlines;

/// RFC 3261 timer T1 (round-trip estimate) and T2 (longest retransmit interval).
pub const T1: Duration = Duration::from_millis(500);
pub const T2: Duration = Duration::from_secs(4);
/// 64*T1: how long a transaction waits for the other side at most (timers B, F, H, J).
pub const TIMEOUT: Duration = Duration::from_secs(32);
/// Timer I: how long a confirmed INVITE transaction absorbs retransmitted ACKs (T4, 5 s).
const ABSORB: Duration = Duration::from_secs(5);

/// Where a message came from and its answer goes: a UDP source, or a TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Peer {
    Udp(std::net::SocketAddr),
    Tcp(std::net::SocketAddr),
}

impl Peer {
    pub fn reliable(self) -> bool {
        matches!(self, Self::Tcp(_))
    }

    pub fn addr(self) -> std::net::SocketAddr {
        match self {
            Self::Udp(a) | Self::Tcp(a) => a,
        }
    }

    pub fn transport(self) -> &'static str {
        match self {
            Self::Udp(_) => "UDP",
            Self::Tcp(_) => "TCP",
        }
    }
}

/// RFC 3261 17.2.3: branch, sent-by, and method (an ACK or CANCEL's own key aside).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxKey {
    pub branch: String,
    pub sent_by: String,
    pub method: Method,
}

impl std::hash::Hash for TxKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.branch.hash(state);
        self.sent_by.hash(state);
        self.method.to_string().hash(state);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// No final response yet.
    Proceeding,
    /// A final response sent; a retransmitted request gets it again.
    Completed,
    /// (INVITE) The ACK for a non-2xx final arrived.
    Confirmed,
}

/// A transaction's timers: its next retransmission and when it is forgotten.
struct Timers {
    /// Next retransmission (over UDP) and its interval.
    resend: Option<(Instant, Duration)>,
    /// When the transaction is forgotten.
    ends: Instant,
    /// Its current entry in [`Transactions`]' deadlines, for the earlier of the two.
    arm: Arm,
}

impl Timers {
    fn next(&self) -> Instant {
        self.resend.map_or(self.ends, |(at, _)| at.min(self.ends))
    }

    /// At `now`: whether to retransmit (and when next), and whether the transaction lives on.
    fn fire(&mut self, now: Instant) -> (bool, bool) {
        let resend = self.resend.is_some_and(|(at, _)| at <= now);
        if let Some((at, interval)) = &mut self.resend
            && resend
        {
            *interval = (*interval * 2).min(T2);
            *at = now + *interval;
        }
        (resend, self.ends > now)
    }
}

struct ServerTx {
    state: State,
    peer: Peer,
    last: Option<Vec<u8>>,
    /// `resend` is that of a non-2xx final response to an INVITE over UDP.
    timers: Timers,
}

/// What became of a request in the transaction layer.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// A new request for the dialog layer.
    New,
    /// A retransmission: send this again (the last response), if anything.
    Again(Option<Vec<u8>>),
    /// The ACK of a non-2xx final response, absorbed here.
    Absorbed,
    /// A new request, but [`Transactions::new`]'s cap is reached: refuse it (503) without
    /// keeping anything.
    Full,
}

/// A datagram or stream write to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Send {
    pub peer: Peer,
    pub bytes: Vec<u8>,
}

struct ClientTx {
    peer: Peer,
    bytes: Vec<u8>,
    timers: Timers,
}

/// A transaction in [`Transactions`]' deadlines.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Timed {
    Server(TxKey),
    Client(String),
}

pub struct Transactions {
    server: HashMap<TxKey, ServerTx>,
    /// Our BYEs by branch.
    client: HashMap<String, ClientTx>,
    /// Every transaction's next deadline, so that a timer pass touches only those due.
    deadlines: Deadlines<Timed>,
    /// Most server transactions at once.
    max: usize,
}

/// Most server transactions kept at once by default (`[sip] max_transactions`); past it new
/// requests are refused by the caller with 503. Each keeps its last response (a few hundred
/// bytes to a few KiB) for up to 32 s after it, so this bounds their memory to some 100 MiB.
pub const MAX_TRANSACTIONS: usize = 50_000;

impl Default for Transactions {
    fn default() -> Self {
        Self::new(MAX_TRANSACTIONS)
    }
}

impl Transactions {
    /// Keeps at most `max` server transactions at once.
    pub fn new(max: usize) -> Self {
        Self {
            server: HashMap::new(),
            client: HashMap::new(),
            deadlines: Deadlines::default(),
            max,
        }
    }

    pub fn len(&self) -> usize {
        self.server.len() + self.client.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A request arrived. ACKs match the INVITE transaction they acknowledge.
    pub fn received(&mut self, now: Instant, key: &TxKey, peer: Peer) -> Received {
        if key.method == Method::Ack {
            let invite = TxKey {
                method: Method::Invite,
                ..key.clone()
            };
            if let Some(tx) = self.server.get_mut(&invite)
                && tx.state == State::Completed
            {
                tx.state = State::Confirmed;
                tx.timers.resend = None;
                tx.timers.ends = now
                    + if peer.reliable() {
                        Duration::ZERO
                    } else {
                        ABSORB
                    };
                self.rearm(Timed::Server(invite));
                return Received::Absorbed;
            }
            if self
                .server
                .get(&invite)
                .is_some_and(|tx| tx.state == State::Confirmed)
            {
                return Received::Absorbed;
            }
            // The ACK of a 2xx is its own transaction, for the dialog (RFC 3261 17.1.1.3).
            return Received::New;
        }
        if let Some(tx) = self.server.get(key) {
            return Received::Again(tx.last.clone());
        }
        if self.server.len() >= self.max {
            return Received::Full;
        }
        let ends = now + TIMEOUT * 6;
        let arm = self.deadlines.arm(ends, Timed::Server(key.clone()));
        self.server.insert(
            key.clone(),
            ServerTx {
                state: State::Proceeding,
                peer,
                last: None,
                timers: Timers {
                    resend: None,
                    ends,
                    arm,
                },
            },
        );
        self.tidy();
        Received::New
    }

    /// Whether a transaction for this key is still waiting for its final response.
    pub fn proceeding(&self, key: &TxKey) -> bool {
        self.server
            .get(key)
            .is_some_and(|tx| tx.state == State::Proceeding)
    }

    /// Sends `bytes`, a response with status `code`, in the transaction `key`.
    pub fn respond(
        &mut self,
        now: Instant,
        key: &TxKey,
        code: u16,
        bytes: Vec<u8>,
    ) -> Option<Send> {
        let tx = self.server.get_mut(key)?;
        let peer = tx.peer;
        tx.last = Some(bytes.clone());
        if code >= 200 {
            tx.state = State::Completed;
            let invite = key.method == Method::Invite;
            if invite && code < 300 {
                // The dialog retransmits a 2xx until its ACK; the transaction is done.
                tx.timers.ends = now;
            } else if invite {
                if !peer.reliable() {
                    tx.timers.resend = Some((now + T1, T1));
                }
                tx.timers.ends = now + TIMEOUT;
            } else {
                tx.timers.ends = now
                    + if peer.reliable() {
                        Duration::ZERO
                    } else {
                        TIMEOUT
                    };
            }
            self.rearm(Timed::Server(key.clone()));
        }
        Some(Send { peer, bytes })
    }

    /// Starts a BYE of ours: sent now, again over UDP until a final response or timeout.
    pub fn start_client(
        &mut self,
        now: Instant,
        branch: String,
        peer: Peer,
        bytes: Vec<u8>,
    ) -> Send {
        let resend = (!peer.reliable()).then_some((now + T1, T1));
        let ends = now + TIMEOUT;
        let at = resend.map_or(ends, |(at, _)| at);
        let arm = self.deadlines.arm(at, Timed::Client(branch.clone()));
        self.client.insert(
            branch,
            ClientTx {
                peer,
                bytes: bytes.clone(),
                timers: Timers { resend, ends, arm },
            },
        );
        self.tidy();
        Send { peer, bytes }
    }

    /// A response to one of our requests; true if it was ours.
    pub fn response(&mut self, branch: &str, code: u16) -> bool {
        if code >= 200 {
            let ours = self.client.remove(branch).is_some();
            self.tidy();
            ours
        } else {
            self.client.contains_key(branch)
        }
    }

    /// Retransmissions due by `now`, and transactions past their end forgotten. Only the
    /// transactions with a deadline due are touched, not every one kept.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Send> {
        let mut out = Vec::new();
        while let Some((timed, arm)) = self.deadlines.pop_due(now) {
            if self.timers(&timed).is_none_or(|t| t.arm != arm) {
                continue; // Stale: moved or ended since.
            }
            let (peer, bytes, timers) = match &timed {
                Timed::Server(key) => {
                    let Some(tx) = self.server.get_mut(key) else {
                        continue;
                    };
                    (tx.peer, tx.last.as_ref(), &mut tx.timers)
                }
                Timed::Client(branch) => {
                    let Some(tx) = self.client.get_mut(branch) else {
                        continue;
                    };
                    (tx.peer, Some(&tx.bytes), &mut tx.timers)
                }
            };
            let (resend, lives) = timers.fire(now);
            if resend && let Some(bytes) = bytes {
                out.push(Send {
                    peer,
                    bytes: bytes.clone(),
                });
            }
            if lives {
                self.rearm(timed);
            } else {
                match timed {
                    Timed::Server(key) => drop(self.server.remove(&key)),
                    Timed::Client(branch) => drop(self.client.remove(&branch)),
                }
            }
        }
        self.tidy();
        out
    }

    /// The earliest deadline of any transaction: O(1).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.next()
    }

    fn timers(&self, timed: &Timed) -> Option<&Timers> {
        match timed {
            Timed::Server(key) => self.server.get(key).map(|tx| &tx.timers),
            Timed::Client(branch) => self.client.get(branch).map(|tx| &tx.timers),
        }
    }

    /// A transaction's timers changed: it gets a new entry for the earlier of them, and the
    /// one it had goes stale.
    fn rearm(&mut self, timed: Timed) {
        let Some(at) = self.timers(&timed).map(Timers::next) else {
            return;
        };
        let arm = self.deadlines.arm(at, timed.clone());
        let timers = match &timed {
            Timed::Server(key) => self.server.get_mut(key).map(|tx| &mut tx.timers),
            Timed::Client(branch) => self.client.get_mut(branch).map(|tx| &mut tx.timers),
        };
        if let Some(t) = timers {
            t.arm = arm;
        }
        self.tidy();
    }

    /// Keeps the deadlines' top live (so [`Self::poll_timeout`] is exact) and their stale
    /// entries within a constant factor of the transactions.
    fn tidy(&mut self) {
        let (server, client) = (&self.server, &self.client);
        self.deadlines
            .tidy(server.len() + client.len(), |timed, arm| match timed {
                Timed::Server(key) => server.get(key).is_some_and(|tx| tx.timers.arm == arm),
                Timed::Client(b) => client.get(b).is_some_and(|tx| tx.timers.arm == arm),
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(method: Method) -> TxKey {
        TxKey {
            branch: "z9hG4bK1".into(),
            sent_by: "10.0.0.1:5060".into(),
            method,
        }
    }

    #[test]
    fn a_retransmitted_request_gets_the_last_response() {
        let now = Instant::now();
        let peer = Peer::Udp("10.0.0.1:5060".parse().unwrap());
        let mut t = Transactions::default();
        assert_eq!(t.received(now, &key(Method::Invite), peer), Received::New);
        assert_eq!(
            t.received(now, &key(Method::Invite), peer),
            Received::Again(None)
        );
        t.respond(now, &key(Method::Invite), 180, b"180".to_vec());
        assert_eq!(
            t.received(now, &key(Method::Invite), peer),
            Received::Again(Some(b"180".to_vec()))
        );
    }

    #[test]
    fn a_failure_response_repeats_over_udp_until_acknowledged() {
        let now = Instant::now();
        let peer = Peer::Udp("10.0.0.1:5060".parse().unwrap());
        let mut t = Transactions::default();
        t.received(now, &key(Method::Invite), peer);
        t.respond(now, &key(Method::Invite), 486, b"486".to_vec());
        let sent: usize = (1..=8)
            .map(|i| t.handle_timeout(now + Duration::from_millis(500 * i)).len())
            .sum();
        assert!(sent >= 3, "resent {sent} times in 4 s");
        assert_eq!(t.received(now, &key(Method::Ack), peer), Received::Absorbed);
        assert!(t.handle_timeout(now + Duration::from_secs(10)).is_empty());
        assert!(t.is_empty());
    }

    #[test]
    fn past_the_cap_a_new_request_is_refused_and_kept_nowhere() {
        let now = Instant::now();
        let peer = Peer::Udp("10.0.0.1:5060".parse().unwrap());
        let mut t = Transactions::new(2);
        let k = |b: &str| TxKey {
            branch: b.into(),
            ..key(Method::Options)
        };
        assert_eq!(t.received(now, &k("z9hG4bKa"), peer), Received::New);
        assert_eq!(t.received(now, &k("z9hG4bKb"), peer), Received::New);
        assert_eq!(t.received(now, &k("z9hG4bKc"), peer), Received::Full);
        assert_eq!(t.len(), 2);
        // Retransmissions of those kept, and ACKs, are still matched.
        assert_eq!(t.received(now, &k("z9hG4bKa"), peer), Received::Again(None));
        assert_eq!(t.received(now, &key(Method::Ack), peer), Received::New);
        // Once one ends there is room again.
        t.respond(now, &k("z9hG4bKa"), 200, b"200".to_vec());
        t.handle_timeout(now + TIMEOUT);
        assert_eq!(
            t.received(now + TIMEOUT, &k("z9hG4bKc"), peer),
            Received::New
        );
    }

    #[test]
    fn a_byes_retransmission_stops_at_its_response() {
        let now = Instant::now();
        let peer = Peer::Udp("10.0.0.1:5060".parse().unwrap());
        let mut t = Transactions::default();
        t.start_client(now, "b1".into(), peer, b"BYE".to_vec());
        assert_eq!(t.handle_timeout(now + T1).len(), 1);
        assert!(t.response("b1", 200));
        assert!(t.handle_timeout(now + T1 * 4).is_empty());
        assert!(!t.response("b1", 200));
    }

    /// Walks the clock from deadline to deadline as the shell does, noting the retransmissions.
    fn walk(t: &mut Transactions, until: Instant) -> Vec<(Instant, Vec<u8>)> {
        let mut sent = Vec::new();
        while let Some(at) = t.poll_timeout().filter(|at| *at <= until) {
            sent.extend(t.handle_timeout(at).into_iter().map(|s| (at, s.bytes)));
        }
        sent
    }

    #[test]
    fn a_failure_response_is_resent_at_t1_doubling_to_t2_until_timer_h() {
        let t0 = Instant::now();
        let peer = Peer::Udp("10.0.0.1:5060".parse().unwrap());
        let mut t = Transactions::default();
        t.received(t0, &key(Method::Invite), peer);
        t.respond(t0, &key(Method::Invite), 486, b"486".to_vec());
        let at: Vec<u64> = walk(&mut t, t0 + TIMEOUT * 2)
            .iter()
            .map(|(at, _)| (*at - t0).as_millis() as u64)
            .collect();
        assert_eq!(
            at,
            [
                500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
            ]
        );
        assert!(t.is_empty(), "forgotten at timer H");
        assert_eq!(t.poll_timeout(), None);
    }

    #[test]
    fn an_ended_transaction_never_fires_and_a_rearmed_one_fires_at_its_new_time() {
        let t0 = Instant::now();
        let peer = Peer::Udp("10.0.0.1:5060".parse().unwrap());
        let mut t = Transactions::default();
        let k = |b: &str, method| TxKey {
            branch: b.into(),
            ..key(method)
        };
        // Two INVITEs refused; the first one's refusal is acknowledged before T1.
        for b in ["z9hG4bKa", "z9hG4bKb"] {
            t.received(t0, &k(b, Method::Invite), peer);
            t.respond(t0, &k(b, Method::Invite), 486, b.as_bytes().to_vec());
        }
        let acked = t0 + Duration::from_millis(200);
        assert_eq!(
            t.received(acked, &k("z9hG4bKa", Method::Ack), peer),
            Received::Absorbed
        );
        // An OPTIONS kept for 192 s unanswered, answered at 1 s: forgotten at 33 s.
        t.received(t0, &k("z9hG4bKo", Method::Options), peer);
        t.respond(
            t0 + Duration::from_secs(1),
            &k("z9hG4bKo", Method::Options),
            200,
            b"200".to_vec(),
        );
        // A BYE of ours answered before its first retransmission.
        t.start_client(t0, "z9hG4bKbye".into(), peer, b"BYE".to_vec());
        assert!(t.response("z9hG4bKbye", 200));

        let sent = walk(&mut t, t0 + Duration::from_millis(600));
        assert_eq!(
            sent,
            [(t0 + T1, b"z9hG4bKb".to_vec())],
            "only the unacknowledged refusal is resent"
        );
        // The acknowledged INVITE lives until its ACKs are absorbed (timer I), then goes.
        walk(&mut t, acked + ABSORB - Duration::from_millis(1));
        assert!(t.server.contains_key(&k("z9hG4bKa", Method::Invite)));
        walk(&mut t, acked + ABSORB);
        assert!(!t.server.contains_key(&k("z9hG4bKa", Method::Invite)));
        // The OPTIONS goes at its new end, not its first one nor never.
        let answered_ends = t0 + Duration::from_secs(1) + TIMEOUT;
        walk(&mut t, answered_ends - Duration::from_millis(1));
        assert!(t.server.contains_key(&k("z9hG4bKo", Method::Options)));
        walk(&mut t, answered_ends);
        assert!(!t.server.contains_key(&k("z9hG4bKo", Method::Options)));
        assert!(t.is_empty());
        assert_eq!(t.poll_timeout(), None, "no deadline left behind");
    }

    #[test]
    fn the_next_deadline_is_the_earliest_live_one() {
        let t0 = Instant::now();
        let peer = Peer::Udp("10.0.0.1:5060".parse().unwrap());
        let mut t = Transactions::default();
        t.received(t0, &key(Method::Invite), peer);
        assert_eq!(t.poll_timeout(), Some(t0 + TIMEOUT * 6));
        t.respond(t0, &key(Method::Invite), 486, b"486".to_vec());
        assert_eq!(t.poll_timeout(), Some(t0 + T1));
        t.received(t0, &key(Method::Ack), peer);
        assert_eq!(
            t.poll_timeout(),
            Some(t0 + ABSORB),
            "not the retransmission"
        );
    }

    #[test]
    fn deadlines_kept_stay_within_a_constant_factor_of_the_transactions() {
        let t0 = Instant::now();
        let peer = Peer::Udp("10.0.0.1:5060".parse().unwrap());
        let mut t = Transactions::new(100_000);
        for i in 0..10_000 {
            let k = TxKey {
                branch: format!("z9hG4bK{i}"),
                ..key(Method::Options)
            };
            let now = t0 + Duration::from_millis(i);
            t.received(now, &k, peer);
            t.respond(now, &k, 200, b"200".to_vec());
        }
        assert_eq!(t.len(), 10_000);
        assert!(
            t.deadlines.len() <= 2 * t.len() + 64,
            "{}",
            t.deadlines.len()
        );
        walk(&mut t, t0 + Duration::from_secs(60));
        assert!(t.is_empty());
        assert_eq!(t.deadlines.len(), 0);
    }
}
