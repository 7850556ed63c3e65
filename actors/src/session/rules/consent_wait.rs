//! Issue 18: a request no answer comes to must not leave the CSR waiting for ever. The CSR who
//! asked (or the primary) may cancel it, and one left unanswered is withdrawn after a while:
//! [`QUESTION_WAIT_MS`] for a question on the customer's screen, [`HELPER_WAIT_MS`] while it
//! waits for the customer to download and run Tandem Helper. A page that cannot do what it is
//! asked (a phone cannot share its screen) declines at once and says why.

use super::*;
use crate::protocol::{DeclineReason, WithdrawCause};

/// How long a question shown to the customer may go unanswered.
pub const QUESTION_WAIT_MS: UnixMillis = 3 * 60 * 1000;
/// How long a request may wait for the customer's Tandem Helper to be downloaded and run.
pub const HELPER_WAIT_MS: UnixMillis = 10 * 60 * 1000;

/// A customer's answer, as their page or helper sent it.
#[derive(Clone, Copy, Debug)]
pub struct Answer {
    pub grant: bool,
    pub allow_all: bool,
    pub reason: Option<DeclineReason>,
}

impl PendingConsent {
    fn deadline(&self) -> UnixMillis {
        let wait = if self.helper_needed {
            HELPER_WAIT_MS
        } else {
            QUESTION_WAIT_MS
        };
        self.asked_at.saturating_add(wait)
    }
}

impl SessionRules {
    /// `from` takes back request `request`: the CSR who asked, or the primary CSR.
    pub(super) fn cancel_request(
        &mut self,
        now: UnixMillis,
        from: ParticipantId,
        request: u32,
        out: &mut Vec<Record>,
    ) -> Result<(), Refusal> {
        let pending = self
            .pending
            .get(&request)
            .ok_or(Refusal::UnknownConsentRequest)?;
        if pending.by != from && self.primary != Some(from) {
            return Err(
                if self.member(from).is_some_and(|m| m.info.role == Role::Csr) {
                    Refusal::NotPrimary
                } else {
                    Refusal::NotStaff
                },
            );
        }
        let cause = Some(WithdrawCause::Cancelled);
        self.emit(now, Event::ConsentWithdrawn { request, cause }, out);
        Ok(())
    }

    /// When the next unanswered request runs out of time, if any waits.
    pub fn consent_deadline(&self) -> Option<UnixMillis> {
        if self.is_ended() {
            return None;
        }
        self.pending.values().map(PendingConsent::deadline).min()
    }

    /// Withdraws the requests unanswered at `now` past their wait.
    pub fn expire_consents(&mut self, now: UnixMillis) -> Vec<Record> {
        let mut out = Vec::new();
        if self.is_ended() {
            return out;
        }
        let late: Vec<u32> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline() <= now)
            .map(|(r, _)| *r)
            .collect();
        for request in late {
            let cause = Some(WithdrawCause::TimedOut);
            self.emit(now, Event::ConsentWithdrawn { request, cause }, &mut out);
        }
        out
    }
}
