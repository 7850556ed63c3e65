//! The ports: how the actors reach what lies outside them. The server implements each on its
//! database, files and sockets; tests may implement them in memory. Keeping them in one place
//! shows everything the actors need from the world.
//!
//! - [`Journal`]: where a session's events are kept. Appends are awaited before anyone is told of
//!   an event.
//! - [`Accounts`]: who the site's agents are.
//! - [`Recordings`]: where recordings are kept.
//! - [`FileShelf`]: where files published to customers are kept (SPEC F1).
//! - [`NoticeSink`]: how a media worker tells a session what it must pass on.

use std::path::PathBuf;
use std::sync::Arc;

use crate::ids::{AccountId, FileId, ParticipantId, RecordingId, SessionId};
use crate::protocol::{Record, SessionInit, UnixMillis};
use crate::recorder::{Finished, RecorderError};

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

/// Where recordings are kept: the server's files and tables. The session only asks for a file
/// and reports how the recording ended.
#[async_trait::async_trait]
pub trait Recordings: Send + Sync + 'static {
    /// A new recording of `session`, owned by the primary CSR's account and called `name`:
    /// the file to write.
    async fn begin(
        &self,
        recording: RecordingId,
        session: SessionId,
        owner: AccountId,
        name: String,
        started_at: UnixMillis,
    ) -> Result<PathBuf, String>;
    /// The recording's file is closed; `result` says how it went.
    async fn finished(&self, recording: RecordingId, result: Result<Finished, RecorderError>);
}

/// Where the server keeps the files the primary CSR published (SPEC F1). The server stores a
/// file before the session publishes it; the session removes it when it is withdrawn or file
/// transfer with its customer ends, and all of its files when it ends.
pub trait FileShelf: Send + Sync + 'static {
    fn remove(&self, session: SessionId, file: FileId);
    fn clear(&self, session: SessionId);
}

/// What the worker tells a session.
#[derive(Clone, Debug, PartialEq)]
pub enum MediaNotice {
    /// The server renegotiates this participant's connection: pass the offer on.
    Offer {
        participant: ParticipantId,
        offer: u64,
        sdp: String,
    },
    /// The participant's media connection failed or timed out and was dropped.
    Disconnected { participant: ParticipantId },
    /// The session's call failed inside the worker and was dropped: tell the worker the policy
    /// again; its pages connect again.
    CallLost,
    /// The recorder's queue was full (its disk did not keep up), so what it was to get is lost
    /// from now on: end the recording with an error. Sent once per recording.
    RecordingLost,
}

/// Where a session takes the worker's notices; called on the worker's task, so it only queues.
pub type NoticeSink = Arc<dyn Fn(MediaNotice) + Send + Sync>;

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
