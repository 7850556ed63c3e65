//! SPEC M4: the primary CSR signs in on the customer's computer as another user, through Tandem
//! Helper, while `login_as_user` runs with that customer (their consent, asked in the helper's
//! window). The user name is journaled; the password is checked here and goes on, in memory, to
//! that computer alone (the session actor sends it): no event holds it. The computer answers
//! how it went, and later that the other user's session ended; when `login_as_user` stops, the
//! helper ends that session by itself.

use super::*;
use crate::protocol::{LoginEnd, LoginFailure, Secret};

/// Longest user name, in characters (those of [`check_user`] are one byte each).
pub const MAX_USER_CHARS: usize = 32;
/// Longest password, in bytes.
pub const MAX_PASSWORD_BYTES: usize = 256;
/// Most attempts on one customer's computer within [`LOGIN_WINDOW_MS`].
pub const MAX_LOGINS_PER_WINDOW: usize = 5;
/// The rolling window of [`MAX_LOGINS_PER_WINDOW`].
pub const LOGIN_WINDOW_MS: UnixMillis = 60_000;
/// How long an attempt the computer has not answered holds the next one back. Past it (an
/// answer lost with a connection, say) the CSR may try again; a late answer still counts.
pub const LOGIN_ANSWER_WAIT_MS: UnixMillis = 120_000;

/// A user name as Tandem Helper passes it on: 1 to [`MAX_USER_CHARS`] of `[A-Za-z0-9._-]`,
/// not starting with `-` (so it can never read as an option).
pub fn check_user(user: &str) -> Result<(), Refusal> {
    let ok = (1..=MAX_USER_CHARS).contains(&user.len())
        && !user.starts_with('-')
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok { Ok(()) } else { Err(Refusal::BadLogin) }
}

/// A password of 1 to [`MAX_PASSWORD_BYTES`] bytes without NUL (PAM takes C strings).
pub fn check_password(password: &Secret) -> Result<(), Refusal> {
    let p = password.expose();
    if (1..=MAX_PASSWORD_BYTES).contains(&p.len()) && !p.contains('\0') {
        Ok(())
    } else {
        Err(Refusal::BadLogin)
    }
}

/// What the session knows of signing in on one customer's computer. Rebuilt from the journal
/// like the rest: attempts and answers are events.
#[derive(Clone, Debug, Default)]
pub struct Logins {
    /// When the attempts within the last [`LOGIN_WINDOW_MS`] were made, oldest first.
    attempts: VecDeque<UnixMillis>,
    /// The attempt the computer has not answered yet: when, and as whom.
    pending: Option<(UnixMillis, String)>,
    /// Whose session the CSR is in, while `login_as_user` runs.
    signed_in: Option<String>,
}

impl Logins {
    fn forget_before(&mut self, now: UnixMillis) {
        while self
            .attempts
            .front()
            .is_some_and(|t| now.saturating_sub(*t) >= LOGIN_WINDOW_MS)
        {
            self.attempts.pop_front();
        }
    }

    /// `Err(seconds to wait)` once [`MAX_LOGINS_PER_WINDOW`] attempts were made in the window.
    fn check_rate(&self, now: UnixMillis) -> Result<(), u64> {
        let recent: Vec<UnixMillis> = self
            .attempts
            .iter()
            .copied()
            .filter(|t| now.saturating_sub(*t) < LOGIN_WINDOW_MS)
            .collect();
        if recent.len() < MAX_LOGINS_PER_WINDOW {
            return Ok(());
        }
        let oldest = recent.first().copied().unwrap_or(now);
        let wait = LOGIN_WINDOW_MS.saturating_sub(now.saturating_sub(oldest));
        Err(u64::try_from(wait).map_or(1, |ms| ms.div_ceil(1000).max(1)))
    }

    fn is_pending(&self, now: UnixMillis) -> bool {
        self.pending
            .as_ref()
            .is_some_and(|(at, _)| now.saturating_sub(*at) < LOGIN_ANSWER_WAIT_MS)
    }
}

impl SessionRules {
    /// The primary CSR `by` signs in on the selected customer's computer as `user`. On success
    /// the records hold `login_as_user_attempted` (never the password); the caller then sends
    /// the password to that computer alone ([`crate::protocol::ServerMsg::LoginAsUser`]).
    pub(super) fn login_as_user(
        &mut self,
        now: UnixMillis,
        by: ParticipantId,
        user: String,
        password: &Secret,
        out: &mut Vec<Record>,
    ) -> Result<(), Refusal> {
        let activity = Activity::LoginAsUser;
        self.require_primary(by)?;
        let customer = self.selected.ok_or(Refusal::NoCustomerSelected)?;
        if !self.running.contains(&(activity, customer)) {
            return Err(Refusal::ActivityNotRunning);
        }
        if !self.computer_can(customer, activity) {
            return Err(Refusal::HelperRequired);
        }
        let computer = self.computer_for(customer).ok_or(Refusal::HelperRequired)?;
        check_user(&user)?;
        check_password(password)?;
        if let Some(logins) = self.logins.get(&customer) {
            logins.check_rate(now).map_err(Refusal::TooManyLogins)?;
            if logins.is_pending(now) {
                return Err(Refusal::LoginPending);
            }
        }
        let event = Event::LoginAsUserAttempted {
            customer,
            computer,
            by,
            user,
        };
        self.emit(now, event, out);
        Ok(())
    }

    /// A customer's computer says how signing in as `user` went, or that their session ended.
    /// Taken whenever it comes from a customer's computer: the helper ends the other user's
    /// session when `login_as_user` stops, and says so afterwards.
    pub(super) fn login_as_user_result(
        &mut self,
        now: UnixMillis,
        computer: ParticipantId,
        result: LoginResult,
        out: &mut Vec<Record>,
    ) -> Result<(), Refusal> {
        let customer = self
            .computer_of(computer)
            .filter(|owner| self.member(*owner).is_some_and(|m| self.is_customer(m)))
            .ok_or(Refusal::NotAComputer)?;
        let LoginResult {
            state,
            user,
            code,
            reason,
        } = result;
        check_user(&user)?;
        let event = match state.as_str() {
            "started" => Event::LoginAsUserStarted {
                customer,
                computer,
                user,
            },
            "failed" => Event::LoginAsUserFailed {
                customer,
                computer,
                user,
                code: match code.as_deref() {
                    None => LoginFailure::Failed,
                    Some(c) => LoginFailure::parse(c).ok_or(Refusal::BadLogin)?,
                },
            },
            "ended" => Event::LoginAsUserEnded {
                customer,
                computer,
                user,
                reason: match reason.as_deref() {
                    None => LoginEnd::Ended,
                    Some(r) => LoginEnd::parse(r).ok_or(Refusal::BadLogin)?,
                },
            },
            _ => return Err(Refusal::BadLogin),
        };
        self.emit(now, event, out);
        Ok(())
    }

    /// M4: whose session the CSR is in on `customer`'s computer, while `login_as_user` runs.
    pub fn signed_in_as(&self, customer: ParticipantId) -> Option<&str> {
        self.logins.get(&customer)?.signed_in.as_deref()
    }

    /// M4: whether an attempt on `customer`'s computer waits for its answer at `now`.
    pub fn login_pending(&self, customer: ParticipantId, now: UnixMillis) -> bool {
        self.logins
            .get(&customer)
            .is_some_and(|l| l.is_pending(now))
    }

    /// Applies the M4 events (from [`SessionRules::apply`]).
    pub(super) fn apply_login(&mut self, at: UnixMillis, event: &Event) {
        match event {
            Event::LoginAsUserAttempted { customer, user, .. } => {
                let logins = self.logins.entry(*customer).or_default();
                logins.forget_before(at);
                logins.attempts.push_back(at);
                logins.pending = Some((at, user.clone()));
            }
            Event::LoginAsUserStarted { customer, user, .. } => {
                let running = self.running.contains(&(Activity::LoginAsUser, *customer));
                let logins = self.logins.entry(*customer).or_default();
                logins.pending = None;
                if running {
                    logins.signed_in = Some(user.clone());
                }
            }
            Event::LoginAsUserFailed { customer, .. } => {
                if let Some(logins) = self.logins.get_mut(customer) {
                    logins.pending = None;
                }
            }
            Event::LoginAsUserEnded { customer, .. } => {
                if let Some(logins) = self.logins.get_mut(customer) {
                    logins.signed_in = None;
                }
            }
            _ => {}
        }
    }

    /// `login_as_user` stopped on `customer`: nothing waits, nobody is signed in (the helper
    /// ends that session itself). The attempts still count against the rate.
    pub(super) fn login_stopped(&mut self, customer: ParticipantId) {
        if let Some(logins) = self.logins.get_mut(&customer) {
            logins.pending = None;
            logins.signed_in = None;
        }
    }
}

/// What a computer's `login_as_user_result` says, as sent.
#[derive(Clone, Debug)]
pub struct LoginResult {
    pub state: String,
    pub user: String,
    pub code: Option<String>,
    pub reason: Option<String>,
}
