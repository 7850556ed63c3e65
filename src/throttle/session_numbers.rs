//! One budget for every way a session number is tried: `POST /api/join`, `POST /api/assist`,
//! a phone dialling `sip:<number>@...` and a number keyed in at the SIP service prompt. A
//! number that finds a live session lets its finder into a call, so an attacker who could try
//! numbers without bound on one path would not care how well the others are guarded.
//!
//! Two limits, each over the last minute:
//! - per subscriber (an IPv4 address, an IPv6 /64: [`super::subscriber`]): past
//!   `per_address` wrong numbers, that subscriber's tries are refused until the oldest leaves
//!   the minute;
//! - everywhere: past `total` wrong numbers from all addresses together (a scan spread over
//!   many addresses), a subscriber with a wrong number of its own in the last minute is refused
//!   until the count falls below `total` again, while one with none may still try.
//!
//! The trade-off of the second limit: refusing every try past a global count would let anyone
//! keep every customer out of every session for the price of `total` wrong numbers a minute.
//! Instead, past the ceiling each subscriber gets one try: a customer who types the right
//! number the first time still joins, one who mistypes waits (a minute at most) until the
//! flood stops, and a scanner needs a fresh subscriber for every single guess instead of one
//! for every `per_address` guesses.
//!
//! A try is counted as wrong when it is made, before the number is looked up, and taken back
//! if the number was right ([`SessionNumbers::right`]): concurrent tries from one address
//! cannot all pass the check before any of them is counted.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{Throttle, subscriber};

/// Wrong numbers are counted over this long.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Subscribers remembered at most; past this the one that failed longest ago is forgotten.
const MAX_SUBSCRIBERS: usize = 100_000;

/// Why a try is refused, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// This subscriber tried too many wrong numbers.
    Address(Duration),
    /// Too many wrong numbers from everywhere, and this subscriber tried one of them.
    Everywhere(Duration),
}

impl Refusal {
    pub fn retry_after(self) -> Duration {
        match self {
            Self::Address(d) | Self::Everywhere(d) => d,
        }
    }

    /// Whole seconds for a Retry-After header, at least 1.
    pub fn retry_after_secs(self) -> u64 {
        self.retry_after().as_secs_f64().ceil().max(1.0) as u64
    }

    /// The metric label of the limit that refused.
    pub fn label(self) -> &'static str {
        match self {
            Self::Address(_) => "address",
            Self::Everywhere(_) => "everywhere",
        }
    }
}

/// A try counted as wrong until [`SessionNumbers::right`] takes it back.
#[derive(Debug)]
#[must_use = "a right number must be given back with SessionNumbers::right"]
pub struct Try {
    key: String,
    at: Instant,
}

/// The wrong numbers of the last minute from everywhere. It remembers up to twice the
/// ceiling, so a try let through past the ceiling (a fresh subscriber's) is still counted and
/// a right number taken back never drops someone else's wrong one from the count.
struct Everywhere {
    times: VecDeque<Instant>,
    ceiling: usize,
}

impl Everywhere {
    /// How long until the count falls under the ceiling, if it is not under it now.
    fn over(&mut self, now: Instant) -> Option<Duration> {
        while self
            .times
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
        {
            self.times.pop_front();
        }
        let excess = self.times.len().checked_sub(self.ceiling)?;
        let freeing = self.times[excess];
        Some(WINDOW.saturating_sub(now.saturating_duration_since(freeing)))
    }

    fn add(&mut self, now: Instant) {
        self.times.push_back(now);
        while self.times.len() > 2 * self.ceiling {
            self.times.pop_front();
        }
    }

    fn take_back(&mut self, at: Instant) {
        if let Some(i) = self.times.iter().rposition(|t| *t == at) {
            self.times.remove(i);
        }
    }
}

/// The counts behind both limits (module docs).
pub struct SessionNumbers {
    per_address: Throttle,
    everywhere: Everywhere,
}

impl SessionNumbers {
    /// `per_address` and `total` wrong numbers a minute, both at least 1.
    pub fn new(per_address: usize, total: usize) -> Self {
        Self {
            per_address: Throttle::new(per_address.max(1), WINDOW, MAX_SUBSCRIBERS),
            everywhere: Everywhere {
                times: VecDeque::new(),
                ceiling: total.max(1),
            },
        }
    }

    /// May `from` try a number now? Counts nothing (a phone calling the service number is
    /// refused before it is answered if it could not try one anyway).
    pub fn check(&mut self, from: IpAddr, now: Instant) -> Result<(), Refusal> {
        self.check_key(&subscriber(from), now)
    }

    fn check_key(&mut self, key: &str, now: Instant) -> Result<(), Refusal> {
        self.per_address.check(key, now).map_err(Refusal::Address)?;
        if let Some(wait) = self.everywhere.over(now)
            && self.per_address.recent(key, now) > 0
        {
            return Err(Refusal::Everywhere(wait));
        }
        Ok(())
    }

    /// A try from `from`, counted as wrong from now on unless given back with [`Self::right`].
    pub fn attempt(&mut self, from: IpAddr, now: Instant) -> Result<Try, Refusal> {
        let key = subscriber(from);
        self.check_key(&key, now)?;
        self.per_address.fail(&key, now);
        self.everywhere.add(now);
        Ok(Try { key, at: now })
    }

    /// The number tried was right: it counts against nobody.
    pub fn right(&mut self, t: Try) {
        self.per_address.forgive(&t.key, t.at);
        self.everywhere.take_back(t.at);
    }
}

/// [`SessionNumbers`] shared by the HTTP API and the SIP endpoint, on the wall clock.
#[derive(Clone)]
pub struct SharedNumbers(Arc<Mutex<SessionNumbers>>);

impl SharedNumbers {
    pub fn new(per_address: usize, total: usize) -> Self {
        Self(Arc::new(Mutex::new(SessionNumbers::new(
            per_address,
            total,
        ))))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SessionNumbers> {
        // The counts stay consistent after any panic (each call changes them in whole steps).
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn check(&self, from: IpAddr) -> Result<(), Refusal> {
        self.lock().check(from, Instant::now())
    }

    pub fn attempt(&self, from: IpAddr) -> Result<Try, Refusal> {
        self.lock().attempt(from, Instant::now())
    }

    pub fn right(&self, t: Try) {
        self.lock().right(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn wrong_numbers_from_one_subscriber_are_refused_past_its_limit_for_the_rest_of_the_minute() {
        let t0 = Instant::now();
        let mut n = SessionNumbers::new(3, 1000);
        for i in 0..3 {
            let _ = n
                .attempt(ip("192.0.2.1"), t0 + Duration::from_secs(i))
                .unwrap();
        }
        let later = t0 + Duration::from_secs(10);
        assert_eq!(
            n.attempt(ip("192.0.2.1"), later).unwrap_err(),
            Refusal::Address(Duration::from_secs(50))
        );
        assert!(n.check(ip("192.0.2.1"), later).is_err());
        // Another address is not held up, and the first may try again once a minute passed.
        assert!(n.check(ip("192.0.2.2"), later).is_ok());
        assert!(n.check(ip("192.0.2.1"), t0 + WINDOW).is_ok());
    }

    #[test]
    fn addresses_of_one_ipv6_64_share_a_budget() {
        let t0 = Instant::now();
        let mut n = SessionNumbers::new(2, 1000);
        let _ = n.attempt(ip("2001:db8:1:2::a"), t0).unwrap();
        let _ = n.attempt(ip("2001:db8:1:2:ffff::b"), t0).unwrap();
        assert!(n.attempt(ip("2001:db8:1:2::c"), t0).is_err());
        assert!(n.attempt(ip("2001:db8:1:3::c"), t0).is_ok());
    }

    #[test]
    fn a_right_number_counts_against_nobody() {
        let t0 = Instant::now();
        let mut n = SessionNumbers::new(2, 2);
        for _ in 0..5 {
            let t = n.attempt(ip("192.0.2.1"), t0).unwrap();
            n.right(t);
        }
        assert_eq!(n.per_address.recent("192.0.2.1", t0), 0);
        assert_eq!(n.everywhere.over(t0), None);
    }

    #[test]
    fn tries_at_once_are_each_counted_before_any_answer() {
        let t0 = Instant::now();
        let mut n = SessionNumbers::new(3, 1000);
        // Three lookups under way, none answered yet: the fourth is refused already.
        let pending: Vec<Try> = (0..3)
            .map(|_| n.attempt(ip("192.0.2.1"), t0).unwrap())
            .collect();
        assert!(n.attempt(ip("192.0.2.1"), t0).is_err());
        drop(pending);
    }

    #[test]
    fn past_the_ceiling_only_subscribers_with_a_wrong_number_lately_are_refused() {
        let t0 = Instant::now();
        let mut n = SessionNumbers::new(10, 3);
        for i in 1..=3 {
            let _ = n.attempt(ip(&format!("198.51.100.{i}")), t0).unwrap();
        }
        let later = t0 + Duration::from_secs(20);
        // A scanner's addresses, each with one wrong number, are refused until the count from
        // everywhere falls back under the ceiling...
        assert_eq!(
            n.attempt(ip("198.51.100.1"), later).unwrap_err(),
            Refusal::Everywhere(Duration::from_secs(40))
        );
        // ...while a fresh address still gets its one try (a customer typing the right number
        // joins), and is refused after it if it was wrong.
        let t = n.attempt(ip("203.0.113.9"), later).unwrap();
        n.right(t);
        assert!(n.check(ip("203.0.113.9"), later).is_ok());
        // (Taking it back left the scanner's count whole.)
        assert!(n.check(ip("198.51.100.2"), later).is_err());
        let _ = n.attempt(ip("203.0.113.7"), later).unwrap();
        assert!(matches!(
            n.check(ip("203.0.113.7"), later),
            Err(Refusal::Everywhere(_))
        ));
        // Once the flood's minute is over, everyone is back under the per-address rule.
        assert!(n.check(ip("198.51.100.1"), t0 + WINDOW).is_ok());
    }

    #[test]
    fn retry_after_is_whole_seconds_and_at_least_one() {
        assert_eq!(
            Refusal::Address(Duration::from_millis(1)).retry_after_secs(),
            1
        );
        assert_eq!(
            Refusal::Everywhere(Duration::from_millis(40_200)).retry_after_secs(),
            41
        );
        assert_eq!(Refusal::Everywhere(Duration::ZERO).label(), "everywhere");
    }
}
