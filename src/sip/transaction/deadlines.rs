//! When each transaction next needs the timer: a min-heap of (deadline, key), so that finding
//! the earliest and taking those due cost O(log n) each instead of a scan of every transaction.
//!
//! Moving or cancelling a deadline does not look for its old entry (a binary heap cannot remove
//! from the middle): each arming gets a number, the owner keeps the number of its current one,
//! and an entry whose number is no longer current is stale and skipped when it comes up (lazy
//! deletion). [`Deadlines::tidy`] drops the stale ones from the top, so that [`Deadlines::next`]
//! is exact, and rebuilds the heap when they outnumber the live ones, so that it stays within a
//! constant factor of them.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::Instant;

/// One arming of a deadline: current while its owner still holds the same number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arm(u64);

struct Entry<K> {
    at: Instant,
    arm: Arm,
    key: K,
}

/// Ordered by time, then by arming (unique), never by key: keys need no order.
impl<K> Ord for Entry<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.arm.0).cmp(&(other.at, other.arm.0))
    }
}

impl<K> PartialOrd for Entry<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K> PartialEq for Entry<K> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<K> Eq for Entry<K> {}

/// Below this many entries a heap is never rebuilt: stale entries cost nothing worth it.
const COMPACT_FLOOR: usize = 64;

pub struct Deadlines<K> {
    heap: BinaryHeap<Reverse<Entry<K>>>,
    armed: u64,
}

impl<K> Default for Deadlines<K> {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::new(),
            armed: 0,
        }
    }
}

impl<K> Deadlines<K> {
    /// Arms `key` for `at`. The owner keeps the returned number as its current arming; any
    /// earlier one of the same key is stale from then on.
    pub fn arm(&mut self, at: Instant, key: K) -> Arm {
        self.armed += 1;
        let arm = Arm(self.armed);
        self.heap.push(Reverse(Entry { at, arm, key }));
        arm
    }

    /// The earliest deadline in the heap: exact after [`Self::tidy`].
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(e)| e.at)
    }

    /// Takes the earliest entry if it is due by `now`; stale or not, the caller checks.
    pub fn pop_due(&mut self, now: Instant) -> Option<(K, Arm)> {
        if self.next()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(e)| (e.key, e.arm))
    }

    /// Drops stale entries: all of them once they outnumber the `live` ones (O(n), so at most
    /// once per n armings), and always those on top, so that [`Self::next`] is a live deadline.
    pub fn tidy(&mut self, live: usize, current: impl Fn(&K, Arm) -> bool) {
        if self.heap.len() > COMPACT_FLOOR.max(live * 2) {
            self.heap.retain(|Reverse(e)| current(&e.key, e.arm));
        }
        while let Some(Reverse(e)) = self.heap.peek()
            && !current(&e.key, e.arm)
        {
            self.heap.pop();
        }
    }

    /// Entries held, stale ones included.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;

    #[test]
    fn due_entries_come_out_earliest_first_and_none_early() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        for (s, k) in [(3, "c"), (1, "a"), (2, "b")] {
            d.arm(t0 + Duration::from_secs(s), k);
        }
        assert_eq!(d.next(), Some(t0 + Duration::from_secs(1)));
        let due: Vec<_> = std::iter::from_fn(|| d.pop_due(t0 + Duration::from_secs(2)))
            .map(|(k, _)| k)
            .collect();
        assert_eq!(due, ["a", "b"]);
        assert_eq!(d.next(), Some(t0 + Duration::from_secs(3)));
    }

    #[test]
    fn a_rearmed_or_cancelled_key_leaves_only_its_current_deadline() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        let mut current: HashMap<&str, Arm> = HashMap::new();
        current.insert("moved", d.arm(t0 + Duration::from_secs(1), "moved"));
        current.insert("gone", d.arm(t0 + Duration::from_secs(2), "gone"));
        current.insert("moved", d.arm(t0 + Duration::from_secs(5), "moved"));
        current.remove("gone");
        let live = |k: &&str, a: Arm| current.get(k) == Some(&a);
        d.tidy(current.len(), live);
        assert_eq!(d.next(), Some(t0 + Duration::from_secs(5)));
    }

    #[test]
    fn stale_entries_are_dropped_once_they_outnumber_the_live_ones() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        for i in 0..1_000 {
            let current = d.arm(t0 + Duration::from_secs(1_000 - i), "one");
            d.tidy(1, |_, a| a == current);
        }
        assert!(d.len() <= COMPACT_FLOOR + 1, "{} entries kept", d.len());
        assert_eq!(d.next(), Some(t0 + Duration::from_secs(1)));
    }
}
