//! Identifiers. Newtypes so a participant id can never be passed where a session id is meant.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random (v4) id.
            pub fn random() -> Self {
                Self(Uuid::new_v4())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// A support session (stable across restarts; the number is what people type).
    SessionId
);
uuid_id!(
    /// One participant of one session: a CSR, an assistant, a customer, later a SIP leg.
    ParticipantId
);
uuid_id!(
    /// A signed-in account (admin, CSR, agent).
    AccountId
);
uuid_id!(
    /// An inbound queue.
    QueueId
);
uuid_id!(
    /// One recording of a session (a session may be recorded several times).
    RecordingId
);
uuid_id!(
    /// A file the primary CSR published to a customer while file transfer runs (SPEC F1).
    FileId
);

/// The 9-digit number customers type on the join page (SPEC S1).
///
/// Drawn from the OS random generator over 100000000..=999999999 so that numbers are neither
/// sequential nor guessable from one another; uniqueness among live sessions is the registry's job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionNumber(u32);

impl SessionNumber {
    pub const MIN: u32 = 100_000_000;
    pub const MAX: u32 = 999_999_999;

    pub fn random() -> Self {
        use rand::RngExt;
        Self(rand::rng().random_range(Self::MIN..=Self::MAX))
    }

    pub fn new(n: u32) -> Option<Self> {
        (Self::MIN..=Self::MAX).contains(&n).then_some(Self(n))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for SessionNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:09}", self.0)
    }
}

/// Why a string is not a session number.
#[derive(Debug, thiserror::Error)]
#[error("a session number is 9 digits")]
pub struct BadSessionNumber;

impl std::str::FromStr for SessionNumber {
    type Err = BadSessionNumber;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // People type numbers with spaces or dashes ("123 456 789"); accept those, nothing else.
        let digits: String = s.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        if digits.len() != 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BadSessionNumber);
        }
        digits
            .parse::<u32>()
            .ok()
            .and_then(Self::new)
            .ok_or(BadSessionNumber)
    }
}

impl TryFrom<String> for SessionNumber {
    type Error = BadSessionNumber;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<SessionNumber> for String {
    fn from(n: SessionNumber) -> String {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_numbers_are_nine_digits_and_parse_back() {
        for _ in 0..1000 {
            let n = SessionNumber::random();
            let s = n.to_string();
            assert_eq!(s.len(), 9);
            assert_eq!(s.parse::<SessionNumber>().unwrap(), n);
        }
    }

    #[test]
    fn session_number_parsing_accepts_grouping_and_rejects_junk() {
        assert_eq!(
            "123 456-789".parse::<SessionNumber>().unwrap().get(),
            123_456_789
        );
        for bad in [
            "",
            "12345678",
            "1234567890",
            "012345678",
            "12345678a",
            "+12345678",
        ] {
            assert!(bad.parse::<SessionNumber>().is_err(), "{bad}");
        }
    }
}
