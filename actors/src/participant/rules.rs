//! One participant's connection rules: how fast it may send, and how long it may be away.
//!
//! A browser tab that reloads, or a phone that changes networks, drops its WebSocket for a
//! moment; that must not make the participant leave. Only after `reconnect_grace` without a
//! connection does the session hear that the participant is gone.

use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct ParticipantConfig {
    /// How long a participant may be disconnected before they count as gone.
    pub reconnect_grace: Duration,
    /// Sustained commands per second one participant may send.
    pub commands_per_second: f64,
    /// Commands that may arrive at once after a quiet spell.
    pub burst: f64,
    /// M5: how long a customer whose computer restarts stays in the session while away (their
    /// page may have been on that computer); the rejoin ticket's lifetime.
    pub restart_hold: Duration,
}

impl Default for ParticipantConfig {
    fn default() -> Self {
        Self {
            // Long enough for a page reload on a slow link, short enough that a closed
            // dashboard ends the session promptly (SPEC S12).
            reconnect_grace: Duration::from_secs(20),
            // A person typing and clicking sends a few per second; annotation strokes will go
            // over data channels, not here.
            commands_per_second: 20.0,
            burst: 40.0,
            restart_hold: Duration::from_secs(900),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Presence {
    Connected,
    Away { since: Instant },
    Gone,
}

#[derive(Clone, Debug)]
pub struct ParticipantRules {
    config: ParticipantConfig,
    presence: Presence,
    tokens: f64,
    refilled_at: Instant,
    /// Away until then without counting as gone (M5: their computer restarts).
    held_until: Option<Instant>,
    /// It has had a connection: a later one is a return, not the first arrival.
    been_connected: bool,
}

impl ParticipantRules {
    /// A participant that has joined but whose WebSocket has not connected yet counts as away.
    pub fn new(config: ParticipantConfig, now: Instant) -> Self {
        let tokens = config.burst;
        Self {
            config,
            presence: Presence::Away { since: now },
            tokens,
            refilled_at: now,
            held_until: None,
            been_connected: false,
        }
    }

    /// M5: while away, the participant does not count as gone before `until`.
    pub fn hold(&mut self, until: Instant) {
        self.held_until = Some(self.held_until.map_or(until, |h| h.max(until)));
    }

    pub fn presence(&self) -> &Presence {
        &self.presence
    }

    /// A connection came; whether it is a return after one was lost (the others are told).
    pub fn connected(&mut self, _now: Instant) -> bool {
        let back = self.been_connected && matches!(self.presence, Presence::Away { .. });
        if self.presence != Presence::Gone {
            self.presence = Presence::Connected;
            self.been_connected = true;
        }
        back
    }

    /// The connection was lost: when to check again for departure, and whether the participant
    /// was connected until now (the others are told they are away).
    pub fn disconnected(&mut self, now: Instant) -> (Option<Instant>, bool) {
        let dropped = self.presence == Presence::Connected;
        if dropped {
            self.presence = Presence::Away { since: now };
        }
        (self.deadline(), dropped)
    }

    /// When the grace runs out, if away.
    pub fn deadline(&self) -> Option<Instant> {
        match self.presence {
            Presence::Away { since } => {
                let grace = since + self.config.reconnect_grace;
                Some(self.held_until.map_or(grace, |h| h.max(grace)))
            }
            _ => None,
        }
    }

    /// True exactly once: the first time it is called past the deadline while still away.
    #[must_use]
    pub fn poll_gone(&mut self, now: Instant) -> bool {
        match self.deadline() {
            Some(d) if now >= d => {
                self.presence = Presence::Gone;
                true
            }
            _ => false,
        }
    }

    /// Whether one more command may pass now (token bucket).
    #[must_use]
    pub fn admit(&mut self, now: Instant) -> bool {
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens =
            (self.tokens + elapsed * self.config.commands_per_second).min(self.config.burst);
        self.refilled_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ParticipantConfig {
        ParticipantConfig {
            reconnect_grace: Duration::from_secs(10),
            commands_per_second: 2.0,
            burst: 3.0,
            restart_hold: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_brief_reconnect_is_not_a_departure() {
        let t0 = Instant::now();
        let mut p = ParticipantRules::new(cfg(), t0);
        assert!(
            !p.connected(t0),
            "the first connection is an arrival, not a return"
        );
        let (deadline, dropped) = p.disconnected(t0 + Duration::from_secs(1));
        assert_eq!(deadline, Some(t0 + Duration::from_secs(11)));
        assert!(dropped, "the others are told it is away");
        assert!(!p.disconnected(t0 + Duration::from_secs(2)).1, "told once");
        assert!(!p.poll_gone(t0 + Duration::from_secs(5)));
        assert!(p.connected(t0 + Duration::from_secs(6)), "a return");
        assert!(!p.poll_gone(t0 + Duration::from_secs(60)));
        assert_eq!(p.presence(), &Presence::Connected);
    }

    #[test]
    fn staying_away_past_the_grace_is_reported_once() {
        let t0 = Instant::now();
        let mut p = ParticipantRules::new(cfg(), t0);
        p.connected(t0);
        p.disconnected(t0);
        assert!(!p.poll_gone(t0 + Duration::from_millis(9_999)));
        assert!(p.poll_gone(t0 + Duration::from_secs(10)));
        assert!(!p.poll_gone(t0 + Duration::from_secs(11)));
        // Gone is final: a late reconnect does not revive the participant.
        p.connected(t0 + Duration::from_secs(12));
        assert_eq!(p.presence(), &Presence::Gone);
    }

    #[test]
    fn never_connecting_counts_as_away_from_the_start() {
        let t0 = Instant::now();
        let mut p = ParticipantRules::new(cfg(), t0);
        assert!(p.poll_gone(t0 + Duration::from_secs(10)));
    }

    #[test]
    fn commands_beyond_the_burst_are_refused_until_tokens_refill() {
        let t0 = Instant::now();
        let mut p = ParticipantRules::new(cfg(), t0);
        p.connected(t0);
        assert!(p.admit(t0) && p.admit(t0) && p.admit(t0));
        assert!(!p.admit(t0));
        assert!(!p.admit(t0 + Duration::from_millis(400)));
        assert!(p.admit(t0 + Duration::from_millis(900)));
    }

    #[test]
    fn a_held_participant_stays_away_past_the_grace_until_the_hold_ends() {
        let t0 = Instant::now();
        let mut p = ParticipantRules::new(cfg(), t0);
        p.connected(t0);
        p.hold(t0 + Duration::from_secs(60));
        p.disconnected(t0);
        assert!(
            !p.poll_gone(t0 + Duration::from_secs(30)),
            "past the grace, within the hold"
        );
        assert_eq!(p.deadline(), Some(t0 + Duration::from_secs(60)));
        assert!(p.poll_gone(t0 + Duration::from_secs(61)));
    }
}
