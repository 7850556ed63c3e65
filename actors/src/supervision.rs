//! Restart policy and stop reasons, shared by every supervisor.
//!
//! ractor reports a child's panic to its supervisor as `SupervisionEvent::ActorFailed`; what
//! happens then is decided here, explicitly, and never in `post_stop` (which does not run after a
//! panic).

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

/// How often a child may fail before its supervisor stops restarting it.
#[derive(Clone, Copy, Debug)]
pub struct RestartPolicy {
    pub max_restarts: usize,
    pub within: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        // A bug hit on every message would otherwise restart a child forever; five in a minute
        // is plenty for a transient fault.
        Self {
            max_restarts: 5,
            within: Duration::from_secs(60),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Restart,
    GiveUp,
}

/// Failures of one child within the policy's window.
#[derive(Clone, Debug)]
pub struct RestartBudget {
    policy: RestartPolicy,
    failures: VecDeque<Instant>,
}

impl RestartBudget {
    pub fn new(policy: RestartPolicy) -> Self {
        Self {
            policy,
            failures: VecDeque::new(),
        }
    }

    pub fn on_failure(&mut self, now: Instant) -> Decision {
        while self
            .failures
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.policy.within)
        {
            self.failures.pop_front();
        }
        if self.failures.len() >= self.policy.max_restarts {
            return Decision::GiveUp;
        }
        self.failures.push_back(now);
        Decision::Restart
    }
}

/// Why an actor stopped on purpose. Sent as ractor's stop reason, so a supervisor can tell a
/// planned stop (nothing to do) from a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    SessionEnded,
    ParticipantLeft,
    Shutdown,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SessionEnded => "session_ended",
            Self::ParticipantLeft => "participant_left",
            Self::Shutdown => "shutdown",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::SessionEnded, Self::ParticipantLeft, Self::Shutdown]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_up_after_max_restarts_within_the_window_and_forgets_old_failures() {
        let t0 = Instant::now();
        let mut b = RestartBudget::new(RestartPolicy {
            max_restarts: 2,
            within: Duration::from_secs(10),
        });
        assert_eq!(b.on_failure(t0), Decision::Restart);
        assert_eq!(b.on_failure(t0 + Duration::from_secs(1)), Decision::Restart);
        assert_eq!(b.on_failure(t0 + Duration::from_secs(2)), Decision::GiveUp);
        // Ten seconds after the first failure, it has left the window.
        assert_eq!(
            b.on_failure(t0 + Duration::from_secs(10)),
            Decision::Restart
        );
    }

    #[test]
    fn stop_reasons_round_trip() {
        for r in [
            StopReason::SessionEnded,
            StopReason::ParticipantLeft,
            StopReason::Shutdown,
        ] {
            assert_eq!(StopReason::parse(&r.to_string()), Some(r));
        }
        assert_eq!(StopReason::parse("panicked"), None);
    }
}
