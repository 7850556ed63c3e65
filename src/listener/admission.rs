//! Which HTTP connections are let in: at most `total` open at once, and at most `per_address`
//! from one subscriber (an IPv4 address or an IPv6 /64, as [`crate::throttle::subscriber`]
//! counts them), so one address cannot take every place. Plain counting; the listener holds a
//! [`Place`] for each connection it serves and the place is given back when it is dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Why a connection was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every place is taken.
    Full,
    /// This address holds its share already.
    AddressFull,
}

impl Refusal {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Full => "full",
            Refusal::AddressFull => "address",
        }
    }
}

/// The counts. `per_address` 0 means no limit per address.
#[derive(Debug)]
pub struct Admission {
    total: usize,
    per_address: usize,
    open: usize,
    by_address: HashMap<String, usize>,
}

impl Admission {
    pub fn new(total: usize, per_address: usize) -> Self {
        Self {
            total,
            per_address,
            open: 0,
            by_address: HashMap::new(),
        }
    }

    /// Takes a place for a connection from `subscriber`, or says why not.
    pub fn admit(&mut self, subscriber: &str) -> Result<(), Refusal> {
        let mine = self.by_address.get(subscriber).copied().unwrap_or(0);
        if self.per_address > 0 && mine >= self.per_address {
            return Err(Refusal::AddressFull);
        }
        if self.open >= self.total {
            return Err(Refusal::Full);
        }
        self.open += 1;
        *self.by_address.entry(subscriber.to_string()).or_insert(0) += 1;
        Ok(())
    }

    /// Gives back a place [`Admission::admit`] gave.
    pub fn release(&mut self, subscriber: &str) {
        self.open = self.open.saturating_sub(1);
        if let Some(n) = self.by_address.get_mut(subscriber) {
            *n -= 1;
            if *n == 0 {
                // Forgotten at zero: the map holds only addresses with open connections.
                self.by_address.remove(subscriber);
            }
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open
    }
}

/// The admission the listener and its connections share.
pub type Shared = Arc<Mutex<Admission>>;

/// One connection's place, given back on drop (the connection closed, or its WebSocket did).
pub struct Place {
    admission: Shared,
    subscriber: String,
}

impl Place {
    /// Takes a place for a connection from `ip`.
    pub fn take(admission: &Shared, ip: IpAddr) -> Result<Place, Refusal> {
        let subscriber = crate::throttle::subscriber(ip);
        admission
            .lock()
            .expect("admission lock poisoned")
            .admit(&subscriber)?;
        crate::metrics::http_connection_opened();
        Ok(Place {
            admission: admission.clone(),
            subscriber,
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.admission
            .lock()
            .expect("admission lock poisoned")
            .release(&self.subscriber);
        crate::metrics::http_connection_closed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_gets_its_share_and_others_the_rest() {
        let mut a = Admission::new(5, 3);
        for _ in 0..3 {
            assert_eq!(a.admit("192.0.2.1"), Ok(()));
        }
        assert_eq!(a.admit("192.0.2.1"), Err(Refusal::AddressFull));
        assert_eq!(a.admit("192.0.2.2"), Ok(()));
        assert_eq!(a.admit("2001:db8::/64"), Ok(()));
        assert_eq!(a.admit("192.0.2.3"), Err(Refusal::Full));
        assert_eq!(a.open(), 5);
        a.release("192.0.2.1");
        assert_eq!(a.admit("192.0.2.3"), Ok(()));
        assert_eq!(a.admit("192.0.2.1"), Err(Refusal::Full));
    }

    #[test]
    fn zero_per_address_is_no_share_and_released_addresses_are_forgotten() {
        let mut a = Admission::new(4, 0);
        for _ in 0..4 {
            assert_eq!(a.admit("192.0.2.1"), Ok(()));
        }
        assert_eq!(a.admit("192.0.2.1"), Err(Refusal::Full));
        for _ in 0..4 {
            a.release("192.0.2.1");
        }
        assert_eq!(a.open(), 0);
        assert!(a.by_address.is_empty());
    }

    #[test]
    fn an_ipv6_subscriber_shares_one_count_across_its_64() {
        let admission: Shared = Arc::new(Mutex::new(Admission::new(10, 2)));
        let a = Place::take(&admission, "2001:db8:1:2::1".parse().unwrap()).unwrap();
        let _b = Place::take(&admission, "2001:db8:1:2::ffff".parse().unwrap()).unwrap();
        assert!(matches!(
            Place::take(&admission, "2001:db8:1:2:abcd::9".parse().unwrap()),
            Err(Refusal::AddressFull)
        ));
        assert!(Place::take(&admission, "2001:db8:1:3::1".parse().unwrap()).is_ok());
        drop(a);
        assert!(Place::take(&admission, "2001:db8:1:2::7".parse().unwrap()).is_ok());
    }
}
