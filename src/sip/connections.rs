//! The rules of the SIP endpoint's TCP connections: how many are let in (in all and from one
//! address, an IPv6 /64 counting as one), and when one is closed. Sans-IO: the shell reports
//! what each connection brings and the time, and closes what [`Connections::expire`] names.
//!
//! Every open connection holds a file descriptor and a task, so nobody may keep one for
//! nothing: a connection that brings no whole message for `idle` is closed, unless the
//! endpoint still needs it (a softphone registered over it, or a call through it: Tandem opens
//! no connections, so that is the only way to reach those phones). A message begun must be
//! whole within `message` of its first byte whatever holds the connection, so trickling a byte
//! at a time (slowloris) keeps nothing open for long.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::request_rate::subscriber;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpLimits {
    pub max_total: usize,
    pub max_per_address: usize,
    pub idle: Duration,
    pub message: Duration,
}

/// Why a connection was not let in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// `max_total` are open.
    Full,
    /// `max_per_address` are open from its address.
    AddressFull,
}

impl Refused {
    pub fn label(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::AddressFull => "per_address",
        }
    }
}

/// Why a connection is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closing {
    /// No whole message for `idle`, and nothing holds it.
    Idle,
    /// A message begun was not whole in time.
    SlowMessage,
}

impl Closing {
    pub fn label(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::SlowMessage => "slow_message",
        }
    }
}

struct Open {
    address: IpAddr,
    /// When it is looked at for idleness next.
    idle_at: Instant,
    /// When the message begun must be whole.
    message_by: Option<Instant>,
}

pub struct Connections {
    limits: TcpLimits,
    open: HashMap<SocketAddr, Open>,
    per_address: HashMap<IpAddr, usize>,
    /// No deadline is earlier than this (it may be earlier than every deadline, after some
    /// were pushed back: then [`Connections::expire`] finds nothing and computes it again).
    earliest: Option<Instant>,
}

impl Connections {
    pub fn new(limits: TcpLimits) -> Self {
        Self {
            limits,
            open: HashMap::new(),
            per_address: HashMap::new(),
            earliest: None,
        }
    }

    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// A connection from `from` was accepted: it is let in, or to be closed at once.
    pub fn admit(&mut self, now: Instant, from: SocketAddr) -> Result<(), Refused> {
        if self.open.len() >= self.limits.max_total {
            return Err(Refused::Full);
        }
        let address = subscriber(from.ip());
        let count = self.per_address.entry(address).or_default();
        if *count >= self.limits.max_per_address {
            return Err(Refused::AddressFull);
        }
        *count += 1;
        let idle_at = now + self.limits.idle;
        if let Some(old) = self.open.insert(
            from,
            Open {
                address,
                idle_at,
                message_by: None,
            },
        ) {
            // The same address and port again (its close is still on the way): counted once.
            self.release(old.address);
        }
        self.lower_earliest(idle_at);
        Ok(())
    }

    /// A whole message arrived on `from`: it is in use, and nothing is half-read.
    pub fn message(&mut self, now: Instant, from: SocketAddr) {
        if let Some(c) = self.open.get_mut(&from) {
            c.idle_at = now + self.limits.idle;
            c.message_by = None;
        }
    }

    /// Part of a message is waiting on `from`; the clock for the message runs from its first
    /// byte (the first report since the last whole message).
    pub fn partial(&mut self, now: Instant, from: SocketAddr) {
        let Some(c) = self.open.get_mut(&from) else {
            return;
        };
        if c.message_by.is_none() {
            let by = now + self.limits.message;
            c.message_by = Some(by);
            self.lower_earliest(by);
        }
    }

    /// `from` is closed (by either side).
    pub fn closed(&mut self, from: SocketAddr) {
        if let Some(c) = self.open.remove(&from) {
            self.release(c.address);
        }
    }

    /// The connections to close now, forgotten here. `held` says whether the endpoint still
    /// needs a connection; an idle one it needs is looked at again after another `idle`.
    pub fn expire(
        &mut self,
        now: Instant,
        held: impl Fn(SocketAddr) -> bool,
    ) -> Vec<(SocketAddr, Closing)> {
        if self.earliest.is_none_or(|e| e > now) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (&addr, c) in &mut self.open {
            if c.message_by.is_some_and(|by| by <= now) {
                out.push((addr, Closing::SlowMessage));
            } else if c.idle_at <= now {
                if held(addr) {
                    c.idle_at = now + self.limits.idle;
                } else {
                    out.push((addr, Closing::Idle));
                }
            }
        }
        for (addr, _) in &out {
            self.closed(*addr);
        }
        self.earliest = self
            .open
            .values()
            .flat_map(|c| [Some(c.idle_at), c.message_by])
            .flatten()
            .min();
        out
    }

    /// When [`Connections::expire`] should be called next.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.earliest
    }

    fn lower_earliest(&mut self, at: Instant) {
        self.earliest = Some(self.earliest.map_or(at, |e| e.min(at)));
    }

    fn release(&mut self, address: IpAddr) {
        if let Some(n) = self.per_address.get_mut(&address) {
            *n -= 1;
            if *n == 0 {
                self.per_address.remove(&address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(30);
    const MESSAGE: Duration = Duration::from_secs(10);

    fn limits(max_total: usize, max_per_address: usize) -> Connections {
        Connections::new(TcpLimits {
            max_total,
            max_per_address,
            idle: IDLE,
            message: MESSAGE,
        })
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn connections_are_bounded_per_address_and_in_all() {
        let t0 = Instant::now();
        let mut c = limits(5, 2);
        assert_eq!(c.admit(t0, addr("192.0.2.1:1000")), Ok(()));
        assert_eq!(c.admit(t0, addr("192.0.2.1:1001")), Ok(()));
        assert_eq!(
            c.admit(t0, addr("192.0.2.1:1002")),
            Err(Refused::AddressFull)
        );
        // An IPv6 /64 is one address.
        assert_eq!(c.admit(t0, addr("[2001:db8:0:1::1]:5060")), Ok(()));
        assert_eq!(c.admit(t0, addr("[2001:db8:0:1:ff::2]:5060")), Ok(()));
        assert_eq!(
            c.admit(t0, addr("[2001:db8:0:1::3]:5060")),
            Err(Refused::AddressFull)
        );
        assert_eq!(c.admit(t0, addr("198.51.100.9:1")), Ok(()));
        assert_eq!(c.len(), 5);
        assert_eq!(c.admit(t0, addr("198.51.100.10:1")), Err(Refused::Full));
        // A close makes room for that address again.
        c.closed(addr("192.0.2.1:1000"));
        assert_eq!(c.admit(t0, addr("192.0.2.1:1003")), Ok(()));
        assert_eq!(c.len(), 5);
    }

    #[test]
    fn an_idle_connection_is_closed_unless_held() {
        let t0 = Instant::now();
        let mut c = limits(10, 10);
        let (quiet, busy, registered) = (
            addr("192.0.2.1:1"),
            addr("192.0.2.1:2"),
            addr("192.0.2.1:3"),
        );
        for a in [quiet, busy, registered] {
            c.admit(t0, a).unwrap();
        }
        assert_eq!(c.next_deadline(), Some(t0 + IDLE));
        let held = |a: SocketAddr| a == registered;
        c.message(t0 + Duration::from_secs(20), busy);
        assert!(
            c.expire(t0 + IDLE - Duration::from_millis(1), held)
                .is_empty()
        );
        assert_eq!(c.expire(t0 + IDLE, held), vec![(quiet, Closing::Idle)]);
        assert_eq!(c.len(), 2);
        // The busy one goes idle in turn; the registered one is looked at again and kept.
        assert_eq!(c.next_deadline(), Some(t0 + Duration::from_secs(20) + IDLE));
        let later = t0 + Duration::from_secs(20) + IDLE;
        assert_eq!(c.expire(later, held), vec![(busy, Closing::Idle)]);
        // Once its registration is gone, so is it.
        assert_eq!(
            c.expire(later + IDLE, |_| false),
            vec![(registered, Closing::Idle)]
        );
        assert!(c.is_empty());
        assert_eq!(c.next_deadline(), None);
    }

    #[test]
    fn a_message_trickled_in_is_cut_off_at_its_deadline_even_when_held() {
        let t0 = Instant::now();
        let mut c = limits(10, 10);
        let (slow, fine) = (addr("192.0.2.1:1"), addr("192.0.2.1:2"));
        c.admit(t0, slow).unwrap();
        c.admit(t0, fine).unwrap();
        // A byte a second: the deadline runs from the first one.
        for s in 1..10 {
            c.partial(t0 + Duration::from_secs(s), slow);
        }
        c.partial(t0 + Duration::from_secs(2), fine);
        c.message(t0 + Duration::from_secs(3), fine);
        assert_eq!(
            c.next_deadline(),
            Some(t0 + Duration::from_secs(1) + MESSAGE)
        );
        assert_eq!(
            c.expire(t0 + Duration::from_secs(11), |_| true),
            vec![(slow, Closing::SlowMessage)]
        );
        assert_eq!(c.len(), 1);
        // A whole message stops the clock; the next one starts it again.
        c.partial(t0 + Duration::from_secs(12), fine);
        c.message(t0 + Duration::from_secs(13), fine);
        c.partial(t0 + Duration::from_secs(14), fine);
        assert!(c.expire(t0 + Duration::from_secs(23), |_| true).is_empty());
        assert_eq!(
            c.expire(t0 + Duration::from_secs(24), |_| true),
            vec![(fine, Closing::SlowMessage)]
        );
    }
}
