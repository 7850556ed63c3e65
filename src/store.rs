//! Storage on SQLite through sqlx, one module per domain: [`accounts`] (users and their SIP
//! credentials), [`settings`] (admin settings and queues), [`journal`] (the session journal,
//! its group-commit writer and the projections reports read), [`recordings`] and [`scripts`]
//! (the script library), [`short_links`] (short invitation links) and [`signed_out`]
//! (sign-in tokens signed out one by one).
//!
//! [`Store`] owns the pool and the journal writer; each domain's SQL lives only in its module,
//! in an `impl Store` of its own, and is plain SQL that PostgreSQL also accepts (but keyword
//! search, which uses SQLite's FTS5; PostgreSQL would use its own text search). A second
//! database therefore slots in per domain: a domain module gains a backend beside SQLite,
//! without touching the others or their callers.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use tokio::sync::mpsc;

mod accounts;
mod journal;
mod recordings;
mod scripts;
mod settings;
mod short_links;
mod signed_out;

pub use accounts::{AccountRole, DisableRefusal, SipCredentialRow, User};
use journal::{AppendJob, JOURNAL_QUEUE, journal_writer};
pub use journal::{ParticipantRow, SessionSummary};
pub use recordings::{NewRecording, RecordedSession, Recording, RecordingStatus, UploadUsage};
pub use scripts::{Script, ScriptCategory, ScriptFile, ScriptWrite};
pub use settings::{Queue, RecorderKind, Settings};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("not found")]
    NotFound,
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Whether a connection given back to the pool may be used again: only outside any
/// transaction. After a failed statement or COMMIT (a full disk), SQLite may or may not have
/// rolled back by itself, and sqlx's count of open transactions can then disagree with
/// SQLite's: such a connection would answer later commits `ok` inside a transaction that never
/// ends and hold the write lock forever. `BEGIN` fails inside a transaction, so it tells.
async fn settled(conn: &mut sqlx::SqliteConnection) -> Result<bool, sqlx::Error> {
    use sqlx::{Connection, Executor};
    let outside = conn.execute("BEGIN; ROLLBACK").await.is_ok();
    Ok(outside && !conn.is_in_transaction())
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    journal: mpsc::Sender<AppendJob>,
}

fn id_of<T: FromStr>(row: &sqlx::sqlite::SqliteRow, col: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    let s: String = row.try_get(col)?;
    s.parse().map_err(corrupt)
}

impl Store {
    /// Opens (creating if needed) the SQLite file and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL loses at most the last transactions on power loss, never
            // consistency; FULL makes every event durable before it is delivered.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .after_release(|conn, _| Box::pin(settled(conn)))
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        let (journal, rx) = mpsc::channel(JOURNAL_QUEUE);
        // The journal writes on a connection of its own, so sessions never wait behind reads
        // that hold the pool's connections (a long search, a report).
        tokio::spawn(journal_writer(options, rx));
        Ok(Self { pool, journal })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Executor;
    use tandem_actors::ids::{SessionId, SessionNumber};
    use tandem_actors::ports::Journal;
    use tandem_actors::session::rules::{SessionInit, SessionRules};

    /// A store in a temporary folder (kept while the first value lives) with one CSR, Carol.
    pub(super) async fn store_with_carol() -> (tempfile::TempDir, Store, User) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let carol = store
            .create_user("carol", "Carol", "c@example.com", "x", AccountRole::Csr, 1)
            .await
            .unwrap();
        (dir, store, carol)
    }

    pub(super) fn new_session(host: &User, topic: &str, max_customers: usize) -> SessionInit {
        SessionInit {
            id: SessionId::random(),
            number: SessionNumber::random(),
            topic: topic.into(),
            host: host.id,
            max_customers,
            quick_phrases: None,
            automatic_recording: false,
        }
    }

    #[tokio::test]
    async fn a_connection_given_back_inside_a_transaction_is_closed_not_reused() {
        let (dir, store, carol) = store_with_carol().await;
        {
            // As a failed COMMIT on a full disk can leave it: a transaction sqlx does not know
            // of, holding the write lock.
            let mut conn = store.pool.acquire().await.unwrap();
            conn.execute("BEGIN IMMEDIATE").await.unwrap();
        }
        // Reused, the connection would keep the lock: every write would be "database is locked".
        store
            .create_user("dave", "Dave", "d@example.com", "x", AccountRole::Csr, 2)
            .await
            .unwrap();
        let init = new_session(&carol, "after", 1);
        let (_, records) = SessionRules::create(init.clone(), 5);
        store.append(&init, &records).await.unwrap();
        // Both writes are committed, as another connection sees.
        let other = Store::open(&dir.path().join("t.db")).await.unwrap();
        assert!(other.user_by_username("dave").await.unwrap().is_some());
        assert_eq!(other.load(init.id).await.unwrap(), records);
    }
}
