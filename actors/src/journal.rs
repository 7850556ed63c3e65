//! Where a session's events are kept. The server implements it on SQLite; tests may keep them in
//! memory. Appends are awaited before anyone is told of an event.

use crate::ids::{AccountId, SessionId};
use crate::protocol::Record;
use crate::session::rules::SessionInit;

#[derive(Debug, thiserror::Error)]
#[error("journal: {0}")]
pub struct JournalError(pub String);

#[async_trait::async_trait]
pub trait Journal: Send + Sync + 'static {
    /// Appends records of one session, all or none.
    async fn append(&self, session: &SessionInit, records: &[Record]) -> Result<(), JournalError>;
    /// Every record of one session, in order.
    async fn load(&self, session: SessionId) -> Result<Vec<Record>, JournalError>;
}

/// Who the site's agents are, for checking the targets of a transfer (SPEC S8).
#[async_trait::async_trait]
pub trait Accounts: Send + Sync + 'static {
    async fn is_agent(&self, account: AccountId) -> Result<bool, JournalError>;
}

/// A journal in memory, for tests of the actors without a database.
#[derive(Default)]
pub struct MemoryJournal {
    records: std::sync::Mutex<std::collections::HashMap<SessionId, Vec<Record>>>,
    /// When set, appends fail (to test what happens when storage goes away).
    pub fail: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl Journal for MemoryJournal {
    async fn append(&self, session: &SessionInit, records: &[Record]) -> Result<(), JournalError> {
        if self.fail.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(JournalError("disk unavailable".into()));
        }
        self.records
            .lock()
            .expect("journal lock poisoned")
            .entry(session.id)
            .or_default()
            .extend_from_slice(records);
        Ok(())
    }

    async fn load(&self, session: SessionId) -> Result<Vec<Record>, JournalError> {
        Ok(self
            .records
            .lock()
            .expect("journal lock poisoned")
            .get(&session)
            .cloned()
            .unwrap_or_default())
    }
}
