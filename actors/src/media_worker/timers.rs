//! When each call on a worker is next due (issue 19): a heap of the calls' timeouts, so that a
//! pass of the worker's loop visits the calls that have something to do (a datagram, a
//! timeout) rather than every call, and the worker learns when to wake without asking every
//! call for its timeout on every pass. A call's time is set after each visit; a time set again
//! leaves its old entry in the heap, skipped when it comes up (lazy deletion).

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::time::Instant;

use crate::ids::SessionId;

#[derive(Default)]
pub(super) struct DueCalls {
    heap: BinaryHeap<Reverse<(Instant, SessionId)>>,
    /// Each call's time: an entry of the heap counts only if it matches.
    due: HashMap<SessionId, Instant>,
}

impl DueCalls {
    /// The call is next due at `at`.
    pub(super) fn set(&mut self, session: SessionId, at: Instant) {
        match self.due.entry(session) {
            Entry::Occupied(e) if *e.get() == at => return,
            Entry::Occupied(mut e) => {
                e.insert(at);
            }
            Entry::Vacant(e) => {
                e.insert(at);
            }
        }
        self.heap.push(Reverse((at, session)));
        // Old entries of calls that were set again are dropped as they come up; rebuilt when
        // they outnumber the live ones, so the heap stays the size of the calls.
        if self.heap.len() > 4 * self.due.len() + 64 {
            self.heap = self.due.iter().map(|(s, at)| Reverse((*at, *s))).collect();
        }
    }

    /// The call is gone.
    pub(super) fn remove(&mut self, session: SessionId) {
        self.due.remove(&session);
    }

    /// Whether the call is due at `now`: a call with no time yet is.
    pub(super) fn is_due(&self, session: SessionId, now: Instant) -> bool {
        self.due.get(&session).is_none_or(|at| *at <= now)
    }

    /// The earliest time of any call.
    pub(super) fn next(&mut self) -> Option<Instant> {
        self.drop_stale();
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// The calls due at `now`, taken off the heap (each is set again after its visit).
    pub(super) fn take_due(&mut self, now: Instant, into: &mut Vec<SessionId>) {
        loop {
            self.drop_stale();
            match self.heap.peek() {
                Some(Reverse((at, session))) if *at <= now => {
                    // No time until its visit sets one: so setting the same time again puts
                    // it back on the heap, and it stays due meanwhile.
                    self.due.remove(session);
                    into.push(*session);
                    self.heap.pop();
                }
                _ => return,
            }
        }
    }

    fn drop_stale(&mut self) {
        while let Some(Reverse((at, session))) = self.heap.peek() {
            if self.due.get(session) == Some(at) {
                return;
            }
            self.heap.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn session(n: u128) -> SessionId {
        SessionId(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn the_due_calls_come_out_once_in_time_order_and_a_call_set_again_counts_once() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut d = DueCalls::default();
        d.set(session(1), ms(30));
        d.set(session(2), ms(10));
        d.set(session(3), ms(20));
        // Call 2 set again, later: its first entry no longer counts.
        d.set(session(2), ms(40));
        assert_eq!(d.next(), Some(ms(20)));
        assert!(!d.is_due(session(2), ms(20)) && d.is_due(session(3), ms(20)));
        assert!(d.is_due(session(9), t0), "a call with no time yet is due");
        let mut due = Vec::new();
        d.take_due(ms(30), &mut due);
        assert_eq!(due, [session(3), session(1)]);
        due.clear();
        d.take_due(ms(30), &mut due);
        assert!(due.is_empty(), "taken once");
        assert!(
            d.is_due(session(1), ms(30)),
            "due until its visit sets a time"
        );
        // Set again to the very time it was taken at (a call that could not advance): it
        // comes out again, rather than staying off the heap for good.
        d.set(session(1), ms(30));
        assert_eq!(d.next(), Some(ms(30)));
        d.take_due(ms(30), &mut due);
        assert_eq!(due, [session(1)]);
        due.clear();
        // A call gone is never due.
        d.remove(session(2));
        assert_eq!(d.next(), None);
        d.take_due(ms(100), &mut due);
        assert!(due.is_empty());
    }

    #[test]
    fn the_heap_stays_the_size_of_the_calls_however_often_they_are_set() {
        let t0 = Instant::now();
        let mut d = DueCalls::default();
        for i in 0..10_000u64 {
            d.set(session(u128::from(i % 3)), t0 + Duration::from_micros(i));
        }
        assert!(d.heap.len() <= 4 * 3 + 64 + 1, "{} entries", d.heap.len());
        let mut due = Vec::new();
        d.take_due(t0 + Duration::from_secs(1), &mut due);
        due.sort();
        assert_eq!(due, [session(0), session(1), session(2)]);
    }
}
