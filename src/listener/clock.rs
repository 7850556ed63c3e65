//! When an HTTP connection has waited too long for its client, as a plain state machine: the
//! listener feeds it what happens on the connection (bytes read, a request handed to the
//! router, its answer finished, a write that the client is not taking) with the time, and asks
//! for the deadline. A connection that reaches its deadline is closed.
//!
//! - A new connection must send its first request's headers within `headers` of opening, and
//!   so must a kept-alive one from the first byte of its next request: a client trickling a
//!   byte at a time gains nothing.
//! - A kept-alive connection may sit idle between requests for `idle`.
//! - While a request is being handled the handler governs (request bodies have their own pace,
//!   see [`crate::body_pace`]), except that an answer the client does not take may wait `send`.
//!
//! A WebSocket leaves all this when it is upgraded: its pings and silence decide (src/http/ws.rs).

use std::time::{Duration, Instant};

/// The configured limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub headers: Duration,
    pub idle: Duration,
    pub send: Duration,
}

/// What a connection is waiting for when it is closed (the metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// A request's headers came too slowly.
    Headers,
    /// Nothing came between requests.
    Idle,
    /// The client did not take an answer.
    Send,
}

impl Expired {
    pub fn label(self) -> &'static str {
        match self {
            Expired::Headers => "headers",
            Expired::Idle => "idle",
            Expired::Send => "send",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No request is being handled. `first_byte`: when the next request began to arrive.
    Waiting {
        since: Instant,
        fresh: bool,
        first_byte: Option<Instant>,
    },
    /// Requests are with the router. `blocked`: since when a write has waited for the client.
    Busy {
        requests: usize,
        blocked: Option<Instant>,
    },
}

#[derive(Debug, Clone)]
pub struct Clock {
    timeouts: Timeouts,
    phase: Phase,
}

impl Clock {
    /// A connection accepted at `now`.
    pub fn new(timeouts: Timeouts, now: Instant) -> Self {
        Self {
            timeouts,
            phase: Phase::Waiting {
                since: now,
                fresh: true,
                first_byte: None,
            },
        }
    }

    /// Bytes came from the client. True when this may move the deadline (the first byte of a
    /// request while waiting, which replaces the idle deadline by the headers one).
    pub fn read(&mut self, now: Instant) -> bool {
        match &mut self.phase {
            Phase::Waiting {
                first_byte: first @ None,
                ..
            } => {
                *first = Some(now);
                true
            }
            _ => false,
        }
    }

    /// A write is waiting for the client to take bytes. True when it was not waiting already.
    pub fn write_blocked(&mut self, now: Instant) -> bool {
        match &mut self.phase {
            Phase::Busy {
                blocked: b @ None, ..
            } => {
                *b = Some(now);
                true
            }
            _ => false,
        }
    }

    /// The client took bytes.
    pub fn wrote(&mut self) {
        if let Phase::Busy { blocked, .. } = &mut self.phase {
            *blocked = None;
        }
    }

    /// A request's headers are complete and it goes to the router.
    pub fn request_started(&mut self) {
        self.phase = match self.phase {
            Phase::Waiting { .. } => Phase::Busy {
                requests: 1,
                blocked: None,
            },
            Phase::Busy { requests, blocked } => Phase::Busy {
                requests: requests + 1,
                blocked,
            },
        };
    }

    /// A request's answer is finished (sent, or given up).
    pub fn request_finished(&mut self, now: Instant) {
        if let Phase::Busy { requests, blocked } = self.phase {
            self.phase = if requests > 1 {
                Phase::Busy {
                    requests: requests - 1,
                    blocked,
                }
            } else {
                Phase::Waiting {
                    since: now,
                    fresh: false,
                    first_byte: None,
                }
            };
        }
    }

    /// When the connection is closed unless something happens first, and why.
    pub fn deadline(&self) -> Option<(Instant, Expired)> {
        let t = self.timeouts;
        match self.phase {
            Phase::Waiting {
                since, fresh: true, ..
            } => Some((since + t.headers, Expired::Headers)),
            Phase::Waiting {
                first_byte: Some(first),
                ..
            } => Some((first + t.headers, Expired::Headers)),
            Phase::Waiting { since, .. } => Some((since + t.idle, Expired::Idle)),
            Phase::Busy {
                blocked: Some(since),
                ..
            } => Some((since + t.send, Expired::Send)),
            Phase::Busy { blocked: None, .. } => None,
        }
    }

    /// Whether the connection is past its deadline at `now`, and why.
    pub fn expired(&self, now: Instant) -> Option<Expired> {
        self.deadline()
            .filter(|(at, _)| now >= *at)
            .map(|(_, why)| why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts {
        headers: Duration::from_secs(10),
        idle: Duration::from_secs(60),
        send: Duration::from_secs(30),
    };

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_new_connection_has_the_headers_timeout_however_it_trickles() {
        let t0 = Instant::now();
        let mut c = Clock::new(T, t0);
        assert_eq!(c.deadline(), Some((t0 + s(10), Expired::Headers)));
        // A byte a second does not move it.
        for i in 1..10 {
            c.read(t0 + s(i));
        }
        assert_eq!(c.expired(t0 + s(9)), None);
        assert_eq!(c.expired(t0 + s(10)), Some(Expired::Headers));
    }

    #[test]
    fn a_kept_alive_connection_is_idle_until_its_next_request_begins() {
        let t0 = Instant::now();
        let mut c = Clock::new(T, t0);
        c.read(t0);
        c.request_started();
        assert_eq!(c.deadline(), None, "the handler governs");
        c.request_finished(t0 + s(100));
        assert_eq!(c.deadline(), Some((t0 + s(160), Expired::Idle)));
        assert!(c.read(t0 + s(150)), "the first byte moves the deadline");
        assert!(!c.read(t0 + s(151)));
        assert_eq!(c.deadline(), Some((t0 + s(160), Expired::Headers)));
        c.request_started();
        c.request_finished(t0 + s(161));
        assert_eq!(c.expired(t0 + s(220)), None);
        assert_eq!(c.expired(t0 + s(221)), Some(Expired::Idle));
    }

    #[test]
    fn an_answer_the_client_does_not_take_waits_the_send_timeout() {
        let t0 = Instant::now();
        let mut c = Clock::new(T, t0);
        c.request_started();
        assert!(c.write_blocked(t0 + s(1)));
        assert!(!c.write_blocked(t0 + s(2)), "blocked since the first");
        assert_eq!(c.deadline(), Some((t0 + s(31), Expired::Send)));
        c.wrote();
        assert_eq!(c.deadline(), None);
        c.write_blocked(t0 + s(40));
        assert_eq!(c.expired(t0 + s(70)), Some(Expired::Send));
    }

    #[test]
    fn pipelined_requests_keep_it_busy_until_the_last_answer() {
        let t0 = Instant::now();
        let mut c = Clock::new(T, t0);
        c.request_started();
        c.request_started();
        c.request_finished(t0 + s(1));
        assert_eq!(c.deadline(), None);
        c.request_finished(t0 + s(2));
        assert_eq!(c.deadline(), Some((t0 + s(62), Expired::Idle)));
        // Writes while waiting (none should happen) and stray finishes change nothing.
        assert!(!c.write_blocked(t0 + s(3)));
        c.request_finished(t0 + s(4));
        assert_eq!(c.deadline(), Some((t0 + s(62), Expired::Idle)));
    }
}
