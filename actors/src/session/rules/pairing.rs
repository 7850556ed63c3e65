//! Pairing codes: how a customer's Tandem Helper finds that customer (issue 16, item 2).
//!
//! The customer's page asks for a code; the customer types it into the helper (or runs
//! `tandem-helper join <server> <code>`); the helper exchanges it for its own participant token.
//! A code is bound to one customer in one session, works once, and lasts `ttl_ms`; asking again
//! replaces the customer's previous code.
//!
//! Codes are 8 decimal digits, shown as `1234 5678`: digits read the same aloud in every
//! language, are typed the same on every keyboard layout (and a phone's keypad), and have no
//! look-alikes (0/O, 1/l/I) to mistype. 10^8 codes against at most `max_codes` live ones, with
//! every try counted by the server's throttle, keeps guessing hopeless (docs/protocol.md).
//!
//! Codes that stopped working (used, replaced, expired) are remembered for another `ttl_ms`, so
//! the person typing one is told why rather than "wrong code", and so no dead code is handed out
//! again while someone may still be typing it. Nothing here does IO or reads a clock.

use std::collections::HashMap;

use crate::ids::{ParticipantId, SessionId};
use crate::protocol::UnixMillis;

/// Digits in a code.
pub const CODE_DIGITS: usize = 8;
/// How many codes there are: draw from `0..CODE_SPACE`.
pub const CODE_SPACE: u32 = 100_000_000;

/// A pairing code: 8 digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Code(u32);

impl Code {
    /// Reads a code as a person types it: 8 digits, with any spaces or dashes between.
    pub fn parse(typed: &str) -> Result<Self, PairingError> {
        let mut value: u32 = 0;
        let mut digits = 0;
        for c in typed.chars() {
            match c {
                ' ' | '-' => {}
                '0'..='9' if digits < CODE_DIGITS => {
                    value = value * 10 + c.to_digit(10).unwrap_or(0);
                    digits += 1;
                }
                _ => return Err(PairingError::Malformed),
            }
        }
        if digits == CODE_DIGITS {
            Ok(Self(value))
        } else {
            Err(PairingError::Malformed)
        }
    }

    /// A code from a random number in `0..CODE_SPACE` (any other is brought into range).
    pub fn from_random(n: u32) -> Self {
        Self(n % CODE_SPACE)
    }

    /// The code as shown to the customer: `1234 5678`.
    pub fn display(self) -> String {
        let s = format!("{:08}", self.0);
        format!("{} {}", &s[..4], &s[4..])
    }
}

/// Whom a code pairs the helper with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Binding {
    pub session: SessionId,
    pub customer: ParticipantId,
}

/// Why a code was not issued or not accepted. Each has a stable code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PairingError {
    #[error("a pairing code is 8 digits")]
    Malformed,
    #[error("that pairing code is not right; check it on your support page")]
    Unknown,
    #[error("that pairing code has expired; ask for a new one on your support page")]
    Expired,
    #[error("that pairing code was used already; ask for a new one on your support page")]
    Used,
    #[error("a newer pairing code replaced that one; use the one your support page shows now")]
    Replaced,
    #[error("too many pairing codes are open on this server; try again in a few minutes")]
    Full,
}

impl PairingError {
    pub fn code(self) -> &'static str {
        match self {
            Self::Malformed => "pairing_code_malformed",
            Self::Unknown => "pairing_code_unknown",
            Self::Expired => "pairing_code_expired",
            Self::Used => "pairing_code_used",
            Self::Replaced => "pairing_code_replaced",
            Self::Full => "pairing_codes_full",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Live,
    Used,
    Replaced,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    binding: Binding,
    issued_at: UnixMillis,
    state: State,
}

/// A code handed out, and until when it works.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Issued {
    pub code: Code,
    pub expires_at: UnixMillis,
}

/// Every pairing code of the server, live and recently dead (module docs).
#[derive(Debug)]
pub struct Pairings {
    ttl_ms: UnixMillis,
    max_codes: usize,
    codes: HashMap<Code, Entry>,
    /// Each customer's live code.
    live: HashMap<Binding, Code>,
}

impl Pairings {
    /// Codes last `ttl_ms` (at least 1); at most `max_codes` (at least 1) are live at once.
    pub fn new(ttl_ms: UnixMillis, max_codes: usize) -> Self {
        Self {
            ttl_ms: ttl_ms.max(1),
            max_codes: max_codes.max(1),
            codes: HashMap::new(),
            live: HashMap::new(),
        }
    }

    /// Live codes now.
    pub fn live_count(&self) -> usize {
        self.live.len()
    }

    /// A new code for `binding`, replacing its previous one. `draw` gives random numbers; a code
    /// in use or remembered is drawn again.
    pub fn issue(
        &mut self,
        now: UnixMillis,
        binding: Binding,
        mut draw: impl FnMut() -> u32,
    ) -> Result<Issued, PairingError> {
        self.expire(now);
        if let Some(old) = self.live.remove(&binding)
            && let Some(e) = self.codes.get_mut(&old)
        {
            e.state = State::Replaced;
        }
        if self.live.len() >= self.max_codes {
            return Err(PairingError::Full);
        }
        // Dead codes remembered are bounded too (a page asking again and again): past
        // `max_codes` of them, the one issued longest ago is forgotten.
        if self.codes.len() >= 2 * self.max_codes
            && let Some(oldest) = self
                .codes
                .iter()
                .filter(|(_, e)| e.state != State::Live)
                .min_by_key(|(_, e)| e.issued_at)
                .map(|(c, _)| *c)
        {
            self.codes.remove(&oldest);
        }
        // Remembered codes are at most 2 x max_codes of 10^8: a free one is found at once.
        let code = loop {
            let c = Code::from_random(draw());
            if !self.codes.contains_key(&c) {
                break c;
            }
        };
        self.codes.insert(
            code,
            Entry {
                binding,
                issued_at: now,
                state: State::Live,
            },
        );
        self.live.insert(binding, code);
        Ok(Issued {
            code,
            expires_at: now + self.ttl_ms,
        })
    }

    /// The helper gives `typed`: the customer it pairs with, once.
    pub fn redeem(&mut self, now: UnixMillis, typed: &str) -> Result<Binding, PairingError> {
        let code = Code::parse(typed)?;
        self.expire(now);
        let entry = self.codes.get_mut(&code).ok_or(PairingError::Unknown)?;
        match entry.state {
            State::Used => Err(PairingError::Used),
            State::Replaced => Err(PairingError::Replaced),
            State::Live if now - entry.issued_at >= self.ttl_ms => Err(PairingError::Expired),
            State::Live => {
                entry.state = State::Used;
                let binding = entry.binding;
                self.live.remove(&binding);
                Ok(binding)
            }
        }
    }

    /// The customer left or the session ended: their code stops working.
    pub fn forget(&mut self, binding: Binding) {
        if let Some(code) = self.live.remove(&binding)
            && let Some(e) = self.codes.get_mut(&code)
        {
            e.state = State::Replaced;
        }
    }

    /// Live codes past their time stop being live; codes dead for another `ttl_ms` are forgotten.
    fn expire(&mut self, now: UnixMillis) {
        let ttl = self.ttl_ms;
        self.live.retain(|_, code| {
            self.codes
                .get(code)
                .is_some_and(|e| now - e.issued_at < ttl)
        });
        self.codes.retain(|_, e| now - e.issued_at < 2 * ttl);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: UnixMillis = 600_000;

    fn binding(n: u128) -> Binding {
        Binding {
            session: SessionId(uuid::Uuid::from_u128(n)),
            customer: ParticipantId(uuid::Uuid::from_u128(n + 1000)),
        }
    }

    fn draws(list: &[u32]) -> impl FnMut() -> u32 + '_ {
        let mut i = 0;
        move || {
            i += 1;
            list[(i - 1) % list.len()]
        }
    }

    #[test]
    fn codes_read_as_people_type_them() {
        assert_eq!(Code::parse("1234 5678"), Ok(Code(12_345_678)));
        assert_eq!(Code::parse("1234-5678"), Ok(Code(12_345_678)));
        assert_eq!(Code::parse("00000042"), Ok(Code(42)));
        assert_eq!(Code(42).display(), "0000 0042");
        for bad in [
            "",
            "1234567",
            "123456789",
            "1234 567a",
            "１２３４５６７８",
            "12345678\n",
        ] {
            assert_eq!(Code::parse(bad), Err(PairingError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn a_right_code_pairs_its_customer_once() {
        let mut p = Pairings::new(TTL, 10);
        let issued = p.issue(0, binding(1), draws(&[12_345_678])).unwrap();
        assert_eq!(issued.expires_at, TTL);
        assert_eq!(p.redeem(1000, &issued.code.display()), Ok(binding(1)));
        assert_eq!(p.redeem(2000, "1234 5678"), Err(PairingError::Used));
        assert_eq!(p.live_count(), 0);
    }

    #[test]
    fn a_wrong_code_pairs_nobody_and_spends_nothing() {
        let mut p = Pairings::new(TTL, 10);
        p.issue(0, binding(1), draws(&[12_345_678])).unwrap();
        assert_eq!(p.redeem(1, "1234 5679"), Err(PairingError::Unknown));
        assert_eq!(p.redeem(1, "12345"), Err(PairingError::Malformed));
        assert_eq!(p.redeem(2, "12345678"), Ok(binding(1)));
    }

    #[test]
    fn a_code_expires_after_its_time() {
        let mut p = Pairings::new(TTL, 10);
        p.issue(0, binding(1), draws(&[7])).unwrap();
        assert_eq!(p.redeem(TTL, "0000 0007"), Err(PairingError::Expired));
        assert_eq!(p.live_count(), 0);
        // Remembered as dead for a while, then forgotten entirely.
        assert_eq!(p.redeem(2 * TTL, "0000 0007"), Err(PairingError::Unknown));
    }

    #[test]
    fn a_new_code_replaces_the_old_one() {
        let mut p = Pairings::new(TTL, 10);
        let old = p.issue(0, binding(1), draws(&[1])).unwrap();
        let new = p.issue(10, binding(1), draws(&[2])).unwrap();
        assert_eq!(p.live_count(), 1);
        assert_eq!(
            p.redeem(20, &old.code.display()),
            Err(PairingError::Replaced)
        );
        assert_eq!(p.redeem(20, &new.code.display()), Ok(binding(1)));
    }

    #[test]
    fn codes_in_use_or_remembered_are_never_handed_out_again() {
        let mut p = Pairings::new(TTL, 10);
        p.issue(0, binding(1), draws(&[5])).unwrap();
        p.redeem(1, "00000005").unwrap();
        let again = p.issue(2, binding(2), draws(&[5, 100_000_005, 6])).unwrap();
        assert_eq!(again.code, Code(6));
        assert_eq!(p.redeem(3, "00000005"), Err(PairingError::Used));
    }

    #[test]
    fn live_codes_are_bounded_and_a_customer_who_leaves_loses_theirs() {
        let mut p = Pairings::new(TTL, 2);
        p.issue(0, binding(1), draws(&[1])).unwrap();
        p.issue(0, binding(2), draws(&[2])).unwrap();
        assert_eq!(p.issue(0, binding(3), draws(&[3])), Err(PairingError::Full));
        // Asking again for one's own code is not refused: it replaces.
        p.issue(1, binding(2), draws(&[4])).unwrap();
        p.forget(binding(1));
        assert_eq!(p.redeem(2, "00000001"), Err(PairingError::Replaced));
        p.issue(3, binding(3), draws(&[3])).unwrap();
        // Expired codes free their place.
        p.issue(TTL + 1, binding(5), draws(&[9])).unwrap();
    }

    #[test]
    fn asking_again_and_again_keeps_memory_bounded() {
        let mut p = Pairings::new(TTL, 3);
        let mut n = 0;
        for i in 0..1000 {
            p.issue(i, binding(1), || {
                n += 1;
                n
            })
            .unwrap();
        }
        assert!(p.codes.len() <= 6, "{}", p.codes.len());
        assert_eq!(p.live_count(), 1);
        // The newest dead ones are still told apart from wrong ones.
        assert_eq!(p.redeem(1000, "0000 0999"), Err(PairingError::Replaced));
    }
}
