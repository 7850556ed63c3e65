//! Storage on SQLite through sqlx, one module per domain: [`accounts`] (users and their SIP
//! credentials), [`settings`] (admin settings and queues), [`journal`] (the session journal,
//! its group-commit writer and the projections reports read) and [`recordings`].
//!
//! [`Store`] owns the pool and the journal writer; each domain's SQL lives only in its module,
//! in an `impl Store` of its own, and is plain SQL that PostgreSQL also accepts. A second
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
mod settings;

pub use accounts::{AccountRole, SipCredentialRow, User};
use journal::{AppendJob, JOURNAL_QUEUE, journal_writer};
pub use journal::{ParticipantRow, SessionSummary};
pub use recordings::{NewRecording, Recording, RecordingStatus, UploadUsage};
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
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        let (journal, rx) = mpsc::channel(JOURNAL_QUEUE);
        tokio::spawn(journal_writer(pool.clone(), rx));
        Ok(Self { pool, journal })
    }
}
