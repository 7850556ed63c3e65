//! Password hashing, bounded. Argon2 takes about 19 MiB for each hash it computes, on a
//! blocking thread: with nothing bounding them, a burst of 100 sign-ins took 1.85 GB, and the
//! allocator kept it. Every check a caller can start without being signed in, or with a stolen
//! token (sign-in, the sign-in password that setting one's SIP password asks for), goes through
//! [`PasswordHashing`]: at most `running` at once, up to `waiting` more wait their turn for a
//! while, and past that a request is refused at once (503 `sign_in_busy`, with Retry-After)
//! rather than queued without end.
//!
//! The hashes run on threads of their own, as many as may run at once, started with the
//! server: on tokio's blocking pool each hash could land on another thread, and glibc keeps
//! freed memory in an arena per thread, so a few bursts left hundreds of MiB allocated (400 MiB
//! after three bursts of 100 with two at a time: docs/performance.md). On a fixed set of threads
//! what stays is at most one hash's memory per thread.

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use tokio::sync::{Semaphore, oneshot};

use crate::auth;

/// How long a request waits for its turn before it is refused.
const TURN: Duration = Duration::from_secs(10);

/// Too many passwords are being hashed or checked at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many sign-ins at once; try again in a moment")]
pub struct HashingBusy;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Clone)]
pub struct PasswordHashing {
    /// Permits to compute a hash.
    running: Arc<Semaphore>,
    /// Permits to be inside at all, running or waiting.
    admitted: Arc<Semaphore>,
    /// To the hashing threads; they end when the last clone is dropped.
    jobs: mpsc::Sender<Job>,
}

impl PasswordHashing {
    /// `running` hashes at once (at least one), each on a thread of its own, and `waiting` more
    /// that may wait their turn.
    pub fn new(running: usize, waiting: usize) -> Self {
        let running = running.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..running {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("password-hashing-{n}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while taking a job, never while running one.
                        let job = queue
                            .lock()
                            .map_err(|_| ())
                            .and_then(|q| q.recv().map_err(|_| ()));
                        match job {
                            Ok(job) => job(),
                            Err(()) => break,
                        }
                    }
                })
                .expect("the system starts a thread");
        }
        Self {
            running: Arc::new(Semaphore::new(running)),
            admitted: Arc::new(Semaphore::new(running + waiting)),
            jobs,
        }
    }

    /// Checks `password` against a stored argon2 hash (constant time).
    pub async fn verify(&self, password: String, stored: String) -> Result<bool, HashingBusy> {
        self.run(move || auth::verify_password(&password, &stored))
            .await
    }

    /// Runs `work` on a hashing thread once it has a turn. The permits go with the work, so a
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
        let (done, answer) = oneshot::channel();
        let job: Job = Box::new(move || {
            // A panic inside argon2 ends this job only: the thread goes on with the next.
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            drop((running, admitted));
            if let Ok(out) = out {
                let _ = done.send(out);
            }
        });
        self.jobs.send(job).map_err(|_| HashingBusy)?;
        // Only a panic inside argon2 gets here; the request is refused like a busy one.
        answer.await.map_err(|_| HashingBusy)
    }
}

fn refused() -> HashingBusy {
    crate::metrics::password_hashing_refused();
    HashingBusy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashes_run_only_on_the_hashing_threads() {
        // What bounds the memory hashing leaves allocated: each thread keeps at most one
        // hash's worth, so hashes must never spread over other threads.
        let hashing = PasswordHashing::new(2, 64);
        let names = futures_util::future::join_all((0..40).map(|_| {
            let hashing = hashing.clone();
            async move {
                hashing
                    .run(|| std::thread::current().name().map(str::to_owned))
                    .await
                    .unwrap()
            }
        }))
        .await;
        let mut names: Vec<_> = names.into_iter().map(Option::unwrap_or_default).collect();
        names.sort();
        names.dedup();
        assert!(!names.is_empty());
        for name in &names {
            assert!(
                ["password-hashing-0", "password-hashing-1"].contains(&name.as_str()),
                "a hash ran on {name:?}"
            );
        }
    }
}
