//! Sign-in tokens signed out one by one (issue 18: the console's Sign out ends that sign-in on
//! the server too, not only in the tab). A token is known by the SHA-256 of its text, so no
//! token is stored; each is kept until it would have expired anyway. The set is held in memory
//! for the check on every request and kept in the store so a restart forgets none.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

/// A token's identity: the SHA-256 of its text.
pub type TokenId = [u8; 32];

pub fn token_id(token: &str) -> TokenId {
    Sha256::digest(token.as_bytes()).into()
}

#[derive(Default)]
pub struct SignedOut(Mutex<HashMap<TokenId, u64>>);

impl SignedOut {
    /// The set as stored: (id, expiry in Unix seconds).
    pub fn from_stored(rows: impl IntoIterator<Item = (TokenId, u64)>) -> Self {
        Self(Mutex::new(rows.into_iter().collect()))
    }

    /// Whether `token` was signed out.
    pub fn contains(&self, token: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&token_id(token))
    }

    /// Signs `id` out until `expires_at`; forgets those past their expiry.
    pub fn add(&self, id: TokenId, expires_at: u64, now: u64) {
        let mut ids = self.0.lock().unwrap_or_else(|e| e.into_inner());
        ids.retain(|_, exp| *exp > now);
        ids.insert(id, expires_at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_out_token_is_known_until_it_expires_and_others_are_not() {
        let s = SignedOut::default();
        s.add(token_id("a.b.c"), 100, 10);
        assert!(s.contains("a.b.c"));
        assert!(!s.contains("a.b.d"));
        // Expired ones are forgotten as others are added.
        s.add(token_id("x.y.z"), 300, 150);
        assert!(!s.contains("a.b.c"));
        assert!(s.contains("x.y.z"));
    }
}
