//! Password hashing, bounded. Argon2 takes about 19 MiB for each hash it computes, on a
//! blocking thread: with nothing bounding them, a burst of 100 sign-ins took 1.85 GB, and the
//! allocator kept it. Every check a caller can start without being signed in, or with a stolen
//! token (sign-in, the sign-in password that setting one's SIP password asks for), goes through
//! [`PasswordHashing`]: at most `running` at once, up to `waiting` more wait their turn for a
//! while, and past that a request is refused at once (503 `sign_in_busy`, with Retry-After)
//! rather than queued without end.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::auth;

/// How long a request waits for its turn before it is refused.
const TURN: Duration = Duration::from_secs(10);

/// Too many passwords are being hashed or checked at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many sign-ins at once; try again in a moment")]
pub struct HashingBusy;

#[derive(Clone)]
pub struct PasswordHashing {
    /// Permits to compute a hash.
    running: Arc<Semaphore>,
    /// Permits to be inside at all, running or waiting.
    admitted: Arc<Semaphore>,
}

impl PasswordHashing {
    /// `running` hashes at once (at least one), and `waiting` more that may wait their turn.
    pub fn new(running: usize, waiting: usize) -> Self {
        let running = running.max(1);
        Self {
            running: Arc::new(Semaphore::new(running)),
            admitted: Arc::new(Semaphore::new(running + waiting)),
        }
    }

    /// Checks `password` against a stored argon2 hash (constant time).
    pub async fn verify(&self, password: String, stored: String) -> Result<bool, HashingBusy> {
        self.run(move || auth::verify_password(&password, &stored))
            .await
    }

    /// Runs `work` on a blocking thread once it has a turn. The permits go with the work, so a
    /// caller that gives up (the client hung up) does not free a turn its hash still uses.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashingBusy> {
        let admitted = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| refused())?;
        let running = tokio::time::timeout(TURN, self.running.clone().acquire_owned())
            .await
            .map_err(|_| refused())?
            .map_err(|_| refused())?;
        tokio::task::spawn_blocking(move || {
            let out = work();
            drop((running, admitted));
            out
        })
        .await
        // Only a panic inside argon2 gets here; the request is refused like a busy one.
        .map_err(|_| HashingBusy)
    }
}

fn refused() -> HashingBusy {
    crate::metrics::password_hashing_refused();
    HashingBusy
}
