//! How many SIP messages one address may send: a token bucket per subscriber (an IPv4 address,
//! or an IPv6 /64 as [`crate::throttle::subscriber`] groups them), checked on the source address
//! before a byte is parsed, so that a flood from one address costs little and leaves room for
//! everyone else. Sans-IO: the caller passes the time.
//!
//! Past the limit the shell drops a UDP datagram without an answer: a UDP source can be forged,
//! so answering would send traffic to a third party, and a phone that is only bursting
//! retransmits (RFC 3261 timers A and E) and is answered then. Over TCP the source is proven by
//! the handshake and nothing is retransmitted, so a message past the limit waits for its turn
//! instead: the connection is not read meanwhile and TCP slows the sender down.

use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use hashlink::LruCache;

/// Addresses remembered at once. Past it the least recently seen is forgotten: its bucket was
/// most likely full again anyway, and memory stays bounded under a flood of forged sources.
pub const MAX_ADDRESSES: usize = 16_384;

/// The key an address is counted under: IPv4 (an IPv4-mapped IPv6 address too) as it is, IPv6
/// by its /64 (one subscriber holds a whole /64). The same grouping as
/// [`crate::throttle::subscriber`], without building a string for every datagram.
pub fn subscriber(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

pub struct RequestRate {
    per_second: f64,
    burst: f64,
    buckets: LruCache<IpAddr, Bucket>,
}

impl RequestRate {
    /// `per_second` messages a second from one address, `burst` at once; 0 a second is no limit.
    pub fn new(per_second: u32, burst: u32, max_addresses: usize) -> Self {
        let cap = NonZeroUsize::new(max_addresses).unwrap_or(NonZeroUsize::MIN);
        Self {
            per_second: per_second.into(),
            burst: burst.max(1).into(),
            buckets: LruCache::new(cap.get()),
        }
    }

    /// Takes one message's turn for `ip`: `Err(wait)` when it has none now, with how long until
    /// it has.
    pub fn check(&mut self, now: Instant, ip: IpAddr) -> Result<(), Duration> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let key = subscriber(ip);
        let (rate, burst) = (self.per_second, self.burst);
        let bucket = match self.buckets.get_mut(&key) {
            Some(b) => b,
            None => {
                self.buckets.insert(
                    key,
                    Bucket {
                        tokens: burst,
                        at: now,
                    },
                );
                self.buckets.get_mut(&key).expect("just inserted")
            }
        };
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = bucket.at.max(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
    }

    /// Addresses remembered now.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_burst_passes_then_the_rate_and_other_addresses_are_apart() {
        let t0 = Instant::now();
        let mut r = RequestRate::new(10, 5, 100);
        for _ in 0..5 {
            assert_eq!(r.check(t0, ip("192.0.2.1")), Ok(()));
        }
        assert_eq!(
            r.check(t0, ip("192.0.2.1")),
            Err(Duration::from_millis(100))
        );
        // Another address has its own bucket.
        assert_eq!(r.check(t0, ip("192.0.2.2")), Ok(()));
        // One token comes back every 100 ms.
        let later = t0 + Duration::from_millis(100);
        assert_eq!(r.check(later, ip("192.0.2.1")), Ok(()));
        assert!(r.check(later, ip("192.0.2.1")).is_err());
        // Never more than the burst, however long it rested.
        let rested = t0 + Duration::from_secs(3600);
        let passed = (0..20)
            .filter(|_| r.check(rested, ip("192.0.2.1")).is_ok())
            .count();
        assert_eq!(passed, 5);
    }

    #[test]
    fn an_ipv6_64_is_one_address_and_zero_is_no_limit() {
        let t0 = Instant::now();
        let mut r = RequestRate::new(1, 2, 100);
        assert!(r.check(t0, ip("2001:db8:1:2::1")).is_ok());
        assert!(r.check(t0, ip("2001:db8:1:2:ffff::9")).is_ok());
        assert!(r.check(t0, ip("2001:db8:1:2::abcd")).is_err());
        assert!(r.check(t0, ip("2001:db8:1:3::1")).is_ok());
        // A mapped IPv4 address is that address.
        assert!(r.check(t0, ip("192.0.2.7")).is_ok());
        assert!(r.check(t0, ip("::ffff:192.0.2.7")).is_ok());
        assert!(r.check(t0, ip("192.0.2.7")).is_err());
        assert_eq!(
            subscriber(ip("2001:db8:1:2:aaaa::1")).to_string(),
            "2001:db8:1:2::"
        );

        let mut off = RequestRate::new(0, 0, 100);
        assert!((0..1000).all(|_| off.check(t0, ip("192.0.2.1")).is_ok()));
        assert!(off.is_empty());
    }

    #[test]
    fn memory_is_bounded_and_the_busiest_address_is_kept() {
        let t0 = Instant::now();
        let mut r = RequestRate::new(1, 1, 10);
        assert!(r.check(t0, ip("198.51.100.1")).is_ok());
        for i in 0..1000u32 {
            let forged = IpAddr::V4((0x0a00_0000 + i).into());
            let _ = r.check(t0, forged);
            // The flooder keeps sending, so it stays remembered and limited.
            assert!(r.check(t0, ip("198.51.100.1")).is_err());
        }
        assert_eq!(r.len(), 10);
    }
}
