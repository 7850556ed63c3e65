//! Server transactions (RFC 3261 17.2) and the one kind of client transaction Tandem starts, a
//! BYE (17.1.2). Retransmissions of a request are answered with the last response without
//! reaching the dialog layer; over UDP final responses are repeated until acknowledged.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rsip::Method;

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

struct ServerTx {
    state: State,
    peer: Peer,
    last: Option<Vec<u8>>,
    /// Next retransmission of a non-2xx final response to an INVITE over UDP, and its interval.
    resend: Option<(Instant, Duration)>,
    /// When the transaction is forgotten.
    ends: Instant,
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
    resend: Option<(Instant, Duration)>,
    ends: Instant,
}

pub struct Transactions {
    server: HashMap<TxKey, ServerTx>,
    /// Our BYEs by branch.
    client: HashMap<String, ClientTx>,
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
                tx.resend = None;
                tx.ends = now
                    + if peer.reliable() {
                        Duration::ZERO
                    } else {
                        ABSORB
                    };
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
        self.server.insert(
            key.clone(),
            ServerTx {
                state: State::Proceeding,
                peer,
                last: None,
                resend: None,
                ends: now + TIMEOUT * 6,
            },
        );
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
                tx.ends = now;
            } else if invite {
                if !peer.reliable() {
                    tx.resend = Some((now + T1, T1));
                }
                tx.ends = now + TIMEOUT;
            } else {
                tx.ends = now
                    + if peer.reliable() {
                        Duration::ZERO
                    } else {
                        TIMEOUT
                    };
            }
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
        self.client.insert(
            branch,
            ClientTx {
                peer,
                bytes: bytes.clone(),
                resend: (!peer.reliable()).then_some((now + T1, T1)),
                ends: now + TIMEOUT,
            },
        );
        Send { peer, bytes }
    }

    /// A response to one of our requests; true if it was ours.
    pub fn response(&mut self, branch: &str, code: u16) -> bool {
        if code >= 200 {
            self.client.remove(branch).is_some()
        } else {
            self.client.contains_key(branch)
        }
    }

    /// Retransmissions due by `now`, and transactions past their end forgotten.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Send> {
        let mut out = Vec::new();
        self.server.retain(|_, tx| {
            if let Some((at, interval)) = tx.resend
                && at <= now
            {
                if let Some(b) = &tx.last {
                    out.push(Send {
                        peer: tx.peer,
                        bytes: b.clone(),
                    });
                }
                let next = (interval * 2).min(T2);
                tx.resend = Some((now + next, next));
            }
            tx.ends > now
        });
        self.client.retain(|_, tx| {
            if let Some((at, interval)) = tx.resend
                && at <= now
            {
                out.push(Send {
                    peer: tx.peer,
                    bytes: tx.bytes.clone(),
                });
                let next = (interval * 2).min(T2);
                tx.resend = Some((now + next, next));
            }
            tx.ends > now
        });
        out
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.server
            .values()
            .flat_map(|tx| [Some(tx.ends), tx.resend.map(|(at, _)| at)])
            .chain(
                self.client
                    .values()
                    .flat_map(|tx| [Some(tx.ends), tx.resend.map(|(at, _)| at)]),
            )
            .flatten()
            .min()
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
}
