//! Counts failures per key (a username, a client address) and refuses further tries for a while
//! after too many: slows password guessing and session-number scanning ([`session_numbers`]).

pub mod session_numbers;

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// What one subscriber's address is counted as: an IPv4 address, or an IPv6 /64 (one
/// subscriber holds a whole /64, so counting its addresses one by one would count nothing).
pub fn subscriber(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

pub struct Throttle {
    max_failures: usize,
    window: Duration,
    /// Most keys remembered; past this the oldest are dropped so memory stays bounded even
    /// under a flood of distinct keys.
    max_keys: usize,
    failures: HashMap<String, VecDeque<Instant>>,
}

impl Throttle {
    pub fn new(max_failures: usize, window: Duration, max_keys: usize) -> Self {
        Self {
            max_failures,
            window,
            max_keys,
            failures: HashMap::new(),
        }
    }

    /// `Err(retry_after)` when `key` has failed too often lately.
    pub fn check(&mut self, key: &str, now: Instant) -> Result<(), Duration> {
        let Some(list) = self.failures.get_mut(key) else {
            return Ok(());
        };
        while list
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.window)
        {
            list.pop_front();
        }
        if list.len() >= self.max_failures {
            let oldest = *list.front().expect("non-empty");
            return Err(self
                .window
                .saturating_sub(now.saturating_duration_since(oldest)));
        }
        Ok(())
    }

    /// Failures of `key` within the window (at most the limit it was made with).
    pub fn recent(&self, key: &str, now: Instant) -> usize {
        self.failures.get(key).map_or(0, |l| {
            l.iter()
                .filter(|t| now.saturating_duration_since(**t) < self.window)
                .count()
        })
    }

    pub fn fail(&mut self, key: &str, now: Instant) {
        if self.failures.len() >= self.max_keys && !self.failures.contains_key(key) {
            let window = self.window;
            self.failures.retain(|_, l| {
                l.back()
                    .is_some_and(|t| now.saturating_duration_since(*t) < window)
            });
            // Still full of recent failures: forget the key that failed longest ago, not
            // everyone (clearing all would let a flood of keys reset the counts it hides in).
            if self.failures.len() >= self.max_keys
                && let Some(oldest) = self
                    .failures
                    .iter()
                    .min_by_key(|(_, l)| l.back().copied())
                    .map(|(k, _)| k.clone())
            {
                self.failures.remove(&oldest);
            }
        }
        let list = self.failures.entry(key.to_string()).or_default();
        list.push_back(now);
        while list.len() > self.max_failures {
            list.pop_front();
        }
    }

    pub fn succeed(&mut self, key: &str) {
        self.failures.remove(key);
    }

    /// Takes back one failure of `key` counted at `at` (a try counted before its outcome was
    /// known, which turned out right); the others stay.
    pub fn forgive(&mut self, key: &str, at: Instant) {
        let Some(list) = self.failures.get_mut(key) else {
            return;
        };
        if let Some(i) = list.iter().rposition(|t| *t == at) {
            list.remove(i);
        }
        if list.is_empty() {
            self.failures.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_max_failures_until_the_window_passes() {
        let t0 = Instant::now();
        let mut t = Throttle::new(3, Duration::from_secs(60), 100);
        for _ in 0..3 {
            assert!(t.check("bob", t0).is_ok());
            t.fail("bob", t0);
        }
        assert_eq!(
            t.check("bob", t0 + Duration::from_secs(10)),
            Err(Duration::from_secs(50))
        );
        assert!(t.check("alice", t0).is_ok());
        assert!(t.check("bob", t0 + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn an_ipv6_subscriber_is_its_64_and_a_mapped_ipv4_is_itself() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(subscriber(a), subscriber(b));
        assert_ne!(subscriber(a), subscriber(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(subscriber(mapped), "192.0.2.7");
    }

    #[test]
    fn recent_counts_failures_in_the_window_only() {
        let t0 = Instant::now();
        let mut t = Throttle::new(10, Duration::from_secs(60), 100);
        t.fail("dave", t0);
        t.fail("dave", t0 + Duration::from_secs(30));
        assert_eq!(t.recent("dave", t0 + Duration::from_secs(31)), 2);
        assert_eq!(t.recent("dave", t0 + Duration::from_secs(61)), 1);
        assert_eq!(t.recent("erin", t0), 0);
    }

    #[test]
    fn success_clears_and_memory_is_bounded() {
        let t0 = Instant::now();
        let mut t = Throttle::new(1, Duration::from_secs(60), 10);
        t.fail("a", t0);
        t.succeed("a");
        assert!(t.check("a", t0).is_ok());
        t.fail("a", t0);
        for i in 0..1000 {
            t.fail(&i.to_string(), t0 + Duration::from_millis(i + 1));
        }
        assert!(t.failures.len() <= 10);
        // The newest keys are still refused; the oldest were forgotten.
        assert!(t.check("999", t0 + Duration::from_secs(1)).is_err());
        assert!(t.check("a", t0 + Duration::from_secs(1)).is_ok());
    }
}
