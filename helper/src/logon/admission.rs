//! How often a caller may try, decided by the listener before a worker starts (sans-IO: time
//! comes in). The service is a password oracle, so each caller uid gets a few tries a minute on
//! top of PAM's own delay. (One session per caller and per user is the workers' locks.)

use std::collections::{BTreeMap, VecDeque};

use super::proto::Refusal;

/// Tries per caller in any minute.
pub const TRIES_PER_MINUTE: usize = 5;
const MINUTE_MS: u64 = 60_000;

#[derive(Debug, Default)]
pub struct Admission {
    /// Per caller uid: when their last tries began (milliseconds), oldest first.
    tries: BTreeMap<u32, VecDeque<u64>>,
}

impl Admission {
    /// A connection from `uid` at `now_ms`: admitted, or refused.
    pub fn admit(&mut self, now_ms: u64, uid: u32) -> Result<(), Refusal> {
        self.tries.retain(|_, t| {
            t.back()
                .is_some_and(|b| now_ms.saturating_sub(*b) < MINUTE_MS)
        });
        let tries = self.tries.entry(uid).or_default();
        while tries
            .front()
            .is_some_and(|t| now_ms.saturating_sub(*t) >= MINUTE_MS)
        {
            tries.pop_front();
        }
        if tries.len() >= TRIES_PER_MINUTE {
            return Err(Refusal::TooManyTries);
        }
        tries.push_back(now_ms);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_tries_a_minute_then_wait() {
        let mut a = Admission::default();
        for t in 0..TRIES_PER_MINUTE as u64 {
            assert_eq!(a.admit(t * 1000, 1000), Ok(()));
        }
        assert_eq!(a.admit(10_000, 1000), Err(Refusal::TooManyTries));
        assert_eq!(
            a.admit(10_000, 1001),
            Ok(()),
            "another caller is not held up"
        );
        assert_eq!(a.admit(59_999, 1000), Err(Refusal::TooManyTries));
        // The first try is a minute old: one more.
        assert_eq!(a.admit(60_000, 1000), Ok(()));
        assert_eq!(a.admit(60_001, 1000), Err(Refusal::TooManyTries));
    }
}
