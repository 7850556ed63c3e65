//! Storage on SQLite through sqlx: accounts, settings, queues, the session journal with its
//! projections (session list, participants) used by reports, and recordings.
//!
//! Queries are plain SQL that PostgreSQL also accepts, so another backend is a pool change.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use tandem_actors::ids::{AccountId, ParticipantId, QueueId, SessionId, SessionNumber};
use tandem_actors::ports::{Journal, JournalError};
use tandem_actors::protocol::{Event, Record, UnixMillis};
use tandem_actors::session::rules::SessionInit;
use uuid::Uuid;

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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountRole {
    Admin,
    Csr,
    Agent,
}

impl AccountRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Csr => "csr",
            Self::Agent => "agent",
        }
    }
}

impl FromStr for AccountRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "admin" => Ok(Self::Admin),
            "csr" => Ok(Self::Csr),
            "agent" => Ok(Self::Agent),
            other => Err(format!("unknown role {other:?} (admin, csr or agent)")),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct User {
    pub id: AccountId,
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub role: AccountRole,
    #[serde(skip)]
    pub password_hash: String,
    pub created_at: UnixMillis,
}

/// An account's SIP digest credential as stored: HA1 hashes, never the password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipCredentialRow {
    pub realm: String,
    pub ha1_md5: String,
    pub ha1_sha256: String,
    pub updated_at: UnixMillis,
}

/// Admin settings that shape new sessions.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Quick phrases CSRs can send in chat (SPEC S10).
    pub quick_phrases: Vec<String>,
    pub quick_phrases_enabled: bool,
    /// Most customers at once in one session.
    pub max_customers_per_session: usize,
    /// SPEC R3: every new session records once its customer agrees, and CSRs cannot stop it.
    /// Absent from settings stored before it existed: off.
    #[serde(default)]
    pub automatic_recording: bool,
    /// SPEC R2, R3: the recorder sessions use.
    #[serde(default)]
    pub default_recorder: RecorderKind,
}

/// Where a session's recording is made (SPEC R2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecorderKind {
    /// On the server, into ARF, then exported to MP4.
    #[default]
    Network,
    /// On the CSR's own machine. Not built: the settings API refuses it.
    Local,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            quick_phrases: Vec::new(),
            quick_phrases_enabled: false,
            max_customers_per_session: 10,
            automatic_recording: false,
            default_recorder: RecorderKind::Network,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Queue {
    pub id: QueueId,
    pub name: String,
    pub agents: Vec<AccountId>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SessionSummary {
    pub id: SessionId,
    pub number: String,
    pub topic: String,
    pub host: AccountId,
    pub host_name: String,
    pub status: String,
    pub created_at: UnixMillis,
    pub ended_at: Option<UnixMillis>,
    pub end_reason: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ParticipantRow {
    pub id: ParticipantId,
    pub role: String,
    pub name: String,
    pub email: Option<String>,
    pub account: Option<AccountId>,
    pub joined_at: UnixMillis,
    pub left_at: Option<UnixMillis>,
    pub leave_reason: Option<String>,
}

/// Where a recording is in its life: being written by the recorder, waiting for (or in) the MP4
/// export, playable, or given up on (`error` says why).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingStatus {
    Recording,
    Processing,
    Ready,
    Failed,
}

impl RecordingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recording => "recording",
            Self::Processing => "processing",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }
}

impl FromStr for RecordingStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "recording" => Ok(Self::Recording),
            "processing" => Ok(Self::Processing),
            "ready" => Ok(Self::Ready),
            "failed" => Ok(Self::Failed),
            other => Err(format!("unknown recording status {other:?}")),
        }
    }
}

/// One recording as stored; serializes to the API's shape. The file paths are the server's
/// business and are left out of it.
#[derive(Clone, Debug, Serialize)]
pub struct Recording {
    pub id: Uuid,
    /// The session recorded; `None` for an uploaded file.
    pub session_id: Option<SessionId>,
    pub owner: AccountId,
    pub name: String,
    pub description: String,
    pub created_at: UnixMillis,
    pub ended_at: Option<UnixMillis>,
    pub duration_ms: Option<i64>,
    #[serde(skip)]
    pub arf_path: PathBuf,
    pub arf_bytes: i64,
    #[serde(skip)]
    pub mp4_path: Option<PathBuf>,
    pub mp4_bytes: Option<i64>,
    pub status: RecordingStatus,
    pub error: Option<String>,
    pub disabled: bool,
    /// How far the MP4 export is, 0 to 1, while the status is `processing`. Not stored: the
    /// HTTP API fills it in from the exporter (see `crate::recording::Exports`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<f64>,
}

/// What the recorder (or an upload) knows when a recording starts.
#[derive(Clone, Debug)]
pub struct NewRecording {
    pub id: Uuid,
    pub session_id: Option<SessionId>,
    pub owner: AccountId,
    pub name: String,
    pub arf_path: PathBuf,
    pub created_at: UnixMillis,
}

/// Paths are stored as text; one that is not UTF-8 could not be read back as the same path.
fn path_text(p: &Path) -> Result<&str, StoreError> {
    p.to_str()
        .ok_or_else(|| StoreError::Corrupt(format!("path {} is not UTF-8", p.display())))
}

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    journal: mpsc::Sender<AppendJob>,
}

/// One session's records waiting to be journaled, and who waits for the answer.
struct AppendJob {
    init: SessionInit,
    records: Vec<Record>,
    done: oneshot::Sender<Result<(), String>>,
}

/// Appends journaled together in one transaction at most. Every event is on disk before it is
/// delivered, so each transaction costs an fsync; committing whatever has queued up meanwhile in
/// one transaction shares that cost (group commit). See docs/performance.md.
const MAX_BATCH: usize = 256;
/// Appends that may wait for the writer; beyond this, sessions wait to enqueue (back-pressure).
const JOURNAL_QUEUE: usize = 4096;

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

    // ---- accounts ----

    pub async fn create_user(
        &self,
        username: &str,
        display_name: &str,
        email: &str,
        password_hash: &str,
        role: AccountRole,
        now: UnixMillis,
    ) -> Result<User, StoreError> {
        let id = AccountId::random();
        let result = sqlx::query(
            "INSERT INTO users (id, username, display_name, email, password_hash, role, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(username)
        .bind(display_name)
        .bind(email)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(now)
        .execute(&self.pool)
        .await;
        match result {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::Conflict("a user with that username"))
            }
            Err(e) => Err(e.into()),
            Ok(_) => Ok(User {
                id,
                username: username.into(),
                display_name: display_name.into(),
                email: email.into(),
                role,
                password_hash: password_hash.into(),
                created_at: now,
            }),
        }
    }

    fn user_from(row: &sqlx::sqlite::SqliteRow) -> Result<User, StoreError> {
        Ok(User {
            id: id_of(row, "id")?,
            username: row.try_get("username")?,
            display_name: row.try_get("display_name")?,
            email: row.try_get("email")?,
            role: id_of(row, "role")?,
            password_hash: row.try_get("password_hash")?,
            created_at: row.try_get("created_at")?,
        })
    }

    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query("SELECT * FROM users WHERE username = ?")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::user_from).transpose()
    }

    pub async fn user_by_id(&self, id: AccountId) -> Result<Option<User>, StoreError> {
        let row = sqlx::query("SELECT * FROM users WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::user_from).transpose()
    }

    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query("SELECT * FROM users ORDER BY username")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::user_from).collect()
    }

    // ---- SIP credentials ----

    /// Sets (or replaces) an account's SIP digest credential.
    pub async fn set_sip_credential(
        &self,
        user: AccountId,
        cred: &SipCredentialRow,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sip_credentials (user_id, realm, ha1_md5, ha1_sha256, updated_at)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (user_id) DO UPDATE SET realm = excluded.realm,
                 ha1_md5 = excluded.ha1_md5, ha1_sha256 = excluded.ha1_sha256,
                 updated_at = excluded.updated_at",
        )
        .bind(user.to_string())
        .bind(&cred.realm)
        .bind(&cred.ha1_md5)
        .bind(&cred.ha1_sha256)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes an account's SIP credential; whether it had one.
    pub async fn delete_sip_credential(&self, user: AccountId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM sip_credentials WHERE user_id = ?")
            .bind(user.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Every account with a SIP credential, with it.
    pub async fn sip_credentials(&self) -> Result<Vec<(User, SipCredentialRow)>, StoreError> {
        let rows = sqlx::query(
            "SELECT u.*, s.realm, s.ha1_md5, s.ha1_sha256, s.updated_at AS sip_updated_at
             FROM sip_credentials s JOIN users u ON u.id = s.user_id ORDER BY u.username",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    Self::user_from(row)?,
                    SipCredentialRow {
                        realm: row.try_get("realm")?,
                        ha1_md5: row.try_get("ha1_md5")?,
                        ha1_sha256: row.try_get("ha1_sha256")?,
                        updated_at: row.try_get("sip_updated_at")?,
                    },
                ))
            })
            .collect()
    }

    // ---- settings ----

    pub async fn settings(&self) -> Result<Settings, StoreError> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = 'site'")
            .fetch_optional(&self.pool)
            .await?;
        match row {
            None => Ok(Settings::default()),
            Some(row) => serde_json::from_str(&row.try_get::<String, _>("value")?).map_err(corrupt),
        }
    }

    pub async fn put_settings(&self, s: &Settings) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ('site', ?)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(serde_json::to_string(s).map_err(corrupt)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ---- queues ----

    pub async fn create_queue(
        &self,
        name: &str,
        agents: &[AccountId],
        now: UnixMillis,
    ) -> Result<Queue, StoreError> {
        let id = QueueId::random();
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query("INSERT INTO queues (id, name, created_at) VALUES (?, ?, ?)")
            .bind(id.to_string())
            .bind(name)
            .bind(now)
            .execute(&mut *tx)
            .await;
        match r {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(StoreError::Conflict("a queue with that name"));
            }
            r => r?,
        };
        for a in agents {
            sqlx::query("INSERT INTO queue_agents (queue_id, user_id) VALUES (?, ?)")
                .bind(id.to_string())
                .bind(a.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Queue {
            id,
            name: name.into(),
            agents: agents.to_vec(),
        })
    }

    pub async fn queues(&self) -> Result<Vec<Queue>, StoreError> {
        let rows = sqlx::query(
            "SELECT q.id, q.name, a.user_id FROM queues q
             LEFT JOIN queue_agents a ON a.queue_id = q.id ORDER BY q.name, a.user_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<Queue> = Vec::new();
        for row in &rows {
            let id: QueueId = id_of(row, "id")?;
            if out.last().is_none_or(|q| q.id != id) {
                out.push(Queue {
                    id,
                    name: row.try_get("name")?,
                    agents: Vec::new(),
                });
            }
            if let Some(agent) = row.try_get::<Option<String>, _>("user_id")? {
                let agent = agent.parse().map_err(corrupt)?;
                out.last_mut().expect("pushed above").agents.push(agent);
            }
        }
        Ok(out)
    }

    // ---- sessions ----

    /// Sessions the journal says are still live: after a restart these were interrupted.
    pub async fn unfinished_sessions(&self) -> Result<Vec<SessionInit>, StoreError> {
        let rows = sqlx::query("SELECT * FROM sessions WHERE status <> 'ended'")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::init_from).collect()
    }

    fn init_from(row: &sqlx::sqlite::SqliteRow) -> Result<SessionInit, StoreError> {
        let number: String = row.try_get("number")?;
        let phrases: Option<String> = row.try_get("quick_phrases")?;
        Ok(SessionInit {
            id: id_of(row, "id")?,
            number: SessionNumber::from_str(&number).map_err(corrupt)?,
            topic: row.try_get("topic")?,
            host: id_of(row, "host_id")?,
            max_customers: row.try_get::<i64, _>("max_customers")?.max(0) as usize,
            quick_phrases: phrases
                .map(|p| serde_json::from_str(&p))
                .transpose()
                .map_err(corrupt)?,
            automatic_recording: row.try_get::<i64, _>("automatic_recording")? != 0,
        })
    }

    /// Sessions, newest first. `account`: only those this account took part in or hosted.
    /// `text` matches topic, number, host or participant name.
    pub async fn sessions(
        &self,
        account: Option<AccountId>,
        from: Option<UnixMillis>,
        to: Option<UnixMillis>,
        text: Option<&str>,
        limit: i64,
    ) -> Result<Vec<SessionSummary>, StoreError> {
        // The words are matched literally: LIKE's own wildcards in them are escaped.
        let like = text.map(|t| {
            let escaped = t
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        });
        let rows = sqlx::query(
            "SELECT s.*, u.display_name AS host_name FROM sessions s JOIN users u ON u.id = s.host_id
             WHERE (?1 IS NULL OR s.host_id = ?1 OR EXISTS
                      (SELECT 1 FROM participants p WHERE p.session_id = s.id AND p.account_id = ?1))
               AND (?2 IS NULL OR s.created_at >= ?2)
               AND (?3 IS NULL OR s.created_at < ?3)
               AND (?4 IS NULL OR s.topic LIKE ?4 ESCAPE '\\' OR s.number LIKE ?4 ESCAPE '\\' OR u.display_name LIKE ?4 ESCAPE '\\'
                    OR s.notes LIKE ?4 ESCAPE '\\'
                    OR EXISTS (SELECT 1 FROM participants p WHERE p.session_id = s.id AND p.name LIKE ?4 ESCAPE '\\'))
             ORDER BY s.created_at DESC LIMIT ?5",
        )
        .bind(account.map(|a| a.to_string()))
        .bind(from)
        .bind(to)
        .bind(like)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::summary_from).collect()
    }

    fn summary_from(row: &sqlx::sqlite::SqliteRow) -> Result<SessionSummary, StoreError> {
        Ok(SessionSummary {
            id: id_of(row, "id")?,
            number: row.try_get("number")?,
            topic: row.try_get("topic")?,
            host: id_of(row, "host_id")?,
            host_name: row.try_get("host_name")?,
            status: row.try_get("status")?,
            created_at: row.try_get("created_at")?,
            ended_at: row.try_get("ended_at")?,
            end_reason: row.try_get("end_reason")?,
        })
    }

    pub async fn session(&self, id: SessionId) -> Result<Option<SessionSummary>, StoreError> {
        let row = sqlx::query(
            "SELECT s.*, u.display_name AS host_name FROM sessions s JOIN users u ON u.id = s.host_id
             WHERE s.id = ?",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Self::summary_from).transpose()
    }

    pub async fn session_notes(&self, id: SessionId) -> Result<String, StoreError> {
        let row = sqlx::query("SELECT notes FROM sessions WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(row.try_get("notes")?)
    }

    pub async fn participants(&self, id: SessionId) -> Result<Vec<ParticipantRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM participants WHERE session_id = ? ORDER BY joined_at, rowid",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ParticipantRow {
                    id: id_of(row, "participant_id")?,
                    role: row.try_get("role")?,
                    name: row.try_get("name")?,
                    email: row.try_get("email")?,
                    account: row
                        .try_get::<Option<String>, _>("account_id")?
                        .map(|a| a.parse())
                        .transpose()
                        .map_err(corrupt)?,
                    joined_at: row.try_get("joined_at")?,
                    left_at: row.try_get("left_at")?,
                    leave_reason: row.try_get("leave_reason")?,
                })
            })
            .collect()
    }

    /// Whether an account took part in (or hosted) a session.
    pub async fn took_part(&self, id: SessionId, account: AccountId) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT EXISTS (SELECT 1 FROM sessions WHERE id = ?1 AND host_id = ?2)
                 OR EXISTS (SELECT 1 FROM participants WHERE session_id = ?1 AND account_id = ?2)
             AS yes",
        )
        .bind(id.to_string())
        .bind(account.to_string())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<bool, _>("yes")?)
    }

    // ---- recordings ----

    /// Adds a recording in status `recording`.
    pub async fn create_recording(&self, new: NewRecording) -> Result<Recording, StoreError> {
        let result = sqlx::query(
            "INSERT INTO recordings (id, session_id, owner, name, created_at, arf_path, status)
             VALUES (?, ?, ?, ?, ?, ?, 'recording')",
        )
        .bind(new.id.to_string())
        .bind(new.session_id.map(|s| s.to_string()))
        .bind(new.owner.to_string())
        .bind(&new.name)
        .bind(new.created_at)
        .bind(path_text(&new.arf_path)?)
        .execute(&self.pool)
        .await;
        match result {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(StoreError::Conflict("a recording with that id"));
            }
            r => r?,
        };
        Ok(Recording {
            id: new.id,
            session_id: new.session_id,
            owner: new.owner,
            name: new.name,
            description: String::new(),
            created_at: new.created_at,
            ended_at: None,
            duration_ms: None,
            arf_path: new.arf_path,
            arf_bytes: 0,
            mp4_path: None,
            mp4_bytes: None,
            status: RecordingStatus::Recording,
            error: None,
            disabled: false,
            progress: None,
        })
    }

    fn recording_from(row: &sqlx::sqlite::SqliteRow) -> Result<Recording, StoreError> {
        Ok(Recording {
            id: id_of(row, "id")?,
            session_id: row
                .try_get::<Option<String>, _>("session_id")?
                .map(|s| s.parse())
                .transpose()
                .map_err(corrupt)?,
            owner: id_of(row, "owner")?,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            created_at: row.try_get("created_at")?,
            ended_at: row.try_get("ended_at")?,
            duration_ms: row.try_get("duration_ms")?,
            arf_path: PathBuf::from(row.try_get::<String, _>("arf_path")?),
            arf_bytes: row.try_get("arf_bytes")?,
            mp4_path: row
                .try_get::<Option<String>, _>("mp4_path")?
                .map(PathBuf::from),
            mp4_bytes: row.try_get("mp4_bytes")?,
            status: id_of(row, "status")?,
            error: row.try_get("error")?,
            disabled: row.try_get("disabled")?,
            progress: None,
        })
    }

    pub async fn recording(&self, id: Uuid) -> Result<Option<Recording>, StoreError> {
        let row = sqlx::query("SELECT * FROM recordings WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::recording_from).transpose()
    }

    /// Recordings, newest first: one owner's, or (`None`) everyone's.
    pub async fn recordings(&self, owner: Option<AccountId>) -> Result<Vec<Recording>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM recordings WHERE (?1 IS NULL OR owner = ?1)
             ORDER BY created_at DESC, id",
        )
        .bind(owner.map(|o| o.to_string()))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::recording_from).collect()
    }

    /// Recordings in one status, oldest first: after a restart, those left `recording` or
    /// `processing` by the previous run.
    pub async fn recordings_with_status(
        &self,
        status: RecordingStatus,
    ) -> Result<Vec<Recording>, StoreError> {
        let rows = sqlx::query("SELECT * FROM recordings WHERE status = ? ORDER BY created_at, id")
            .bind(status.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::recording_from).collect()
    }

    /// The recorder has closed the ARF file: how long it is, how big, and what happens next
    /// (`processing` for the export, or `failed` with the reason).
    pub async fn finish_recording(
        &self,
        id: Uuid,
        ended_at: UnixMillis,
        duration_ms: i64,
        arf_bytes: i64,
        status: RecordingStatus,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE recordings SET ended_at = ?, duration_ms = ?, arf_bytes = ?, status = ?, error = ?
             WHERE id = ?",
        )
        .bind(ended_at)
        .bind(duration_ms)
        .bind(arf_bytes)
        .bind(status.as_str())
        .bind(error)
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        match done.rows_affected() {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    /// The exporter's result: the MP4 (`ready`), or none and why (`failed`).
    pub async fn set_recording_mp4(
        &self,
        id: Uuid,
        mp4_path: Option<&Path>,
        mp4_bytes: Option<i64>,
        status: RecordingStatus,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE recordings SET mp4_path = ?, mp4_bytes = ?, status = ?, error = ? WHERE id = ?",
        )
        .bind(mp4_path.map(path_text).transpose()?)
        .bind(mp4_bytes)
        .bind(status.as_str())
        .bind(error)
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        match done.rows_affected() {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    /// Changes what people may change (SPEC R4: modify, disable, reassign); `None` keeps a
    /// field. Returns the recording as it now is, or `None` if there is no such recording.
    pub async fn update_recording(
        &self,
        id: Uuid,
        name: Option<&str>,
        description: Option<&str>,
        disabled: Option<bool>,
        owner: Option<AccountId>,
    ) -> Result<Option<Recording>, StoreError> {
        let row = sqlx::query(
            "UPDATE recordings SET name = COALESCE(?, name), description = COALESCE(?, description),
                 disabled = COALESCE(?, disabled), owner = COALESCE(?, owner)
             WHERE id = ? RETURNING *",
        )
        .bind(name)
        .bind(description)
        .bind(disabled)
        .bind(owner.map(|o| o.to_string()))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Self::recording_from).transpose()
    }

    /// Removes the row (not the files: the caller removes those first). Whether it existed.
    pub async fn delete_recording(&self, id: Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM recordings WHERE id = ?")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait::async_trait]
impl tandem_actors::ports::Accounts for Store {
    async fn is_agent(&self, account: AccountId) -> Result<bool, JournalError> {
        self.user_by_id(account)
            .await
            .map(|u| u.is_some_and(|u| u.role == AccountRole::Agent))
            .map_err(|e| JournalError(e.to_string()))
    }
}

#[async_trait::async_trait]
impl Journal for Store {
    async fn append(&self, init: &SessionInit, records: &[Record]) -> Result<(), JournalError> {
        let (done, answer) = oneshot::channel();
        let job = AppendJob {
            init: init.clone(),
            records: records.to_vec(),
            done,
        };
        let gone = || JournalError("the journal writer has stopped".into());
        self.journal.send(job).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?.map_err(JournalError)
    }

    async fn load(&self, session: SessionId) -> Result<Vec<Record>, JournalError> {
        self.records(session)
            .await
            .map_err(|e| JournalError(e.to_string()))
    }
}

impl Store {
    /// The journal of one session, in order.
    pub async fn records(&self, session: SessionId) -> Result<Vec<Record>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at, body FROM session_events WHERE session_id = ? ORDER BY seq",
        )
        .bind(session.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let body: String = row.try_get("body")?;
                Ok(Record {
                    seq: row.try_get::<i64, _>("seq")? as u64,
                    at: row.try_get("at")?,
                    event: serde_json::from_str(&body).map_err(corrupt)?,
                })
            })
            .collect()
    }
}

/// The one task that writes the journal: takes what is queued, writes it in one transaction,
/// and answers each waiting session. If a batch fails, each append is retried on its own so
/// one bad append cannot fail the others.
async fn journal_writer(pool: SqlitePool, mut rx: mpsc::Receiver<AppendJob>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(job) = rx.recv().await {
        batch.push(job);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let together = async {
            let mut tx = pool.begin().await?;
            for job in &batch {
                write_records(&mut tx, &job.init, &job.records).await?;
            }
            tx.commit().await?;
            Ok::<_, StoreError>(())
        }
        .await;
        match together {
            Ok(()) => {
                for job in batch.drain(..) {
                    let _ = job.done.send(Ok(()));
                }
            }
            Err(e) if batch.len() == 1 => {
                let job = batch.pop().expect("one job");
                let _ = job.done.send(Err(e.to_string()));
            }
            Err(_) => {
                for job in batch.drain(..) {
                    let alone = async {
                        let mut tx = pool.begin().await?;
                        write_records(&mut tx, &job.init, &job.records).await?;
                        tx.commit().await?;
                        Ok::<_, StoreError>(())
                    }
                    .await;
                    let _ = job.done.send(alone.map_err(|e| e.to_string()));
                }
            }
        }
    }
}

/// Appends one session's records and updates the projections, inside `tx`.
async fn write_records(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    init: &SessionInit,
    records: &[Record],
) -> Result<(), StoreError> {
    let sid = init.id.to_string();
    for r in records {
        match &r.event {
            Event::SessionCreated { .. } => {
                sqlx::query(
                        "INSERT INTO sessions (id, number, topic, host_id, max_customers, quick_phrases, automatic_recording, status, created_at)
                         VALUES (?, ?, ?, ?, ?, ?, ?, 'active', ?)",
                    )
                    .bind(&sid)
                    .bind(init.number.to_string())
                    .bind(&init.topic)
                    .bind(init.host.to_string())
                    .bind(init.max_customers as i64)
                    .bind(init.quick_phrases.as_ref().map(|p| serde_json::to_string(p).expect("strings serialize")))
                    .bind(i64::from(init.automatic_recording))
                    .bind(r.at)
                    .execute(&mut **tx)
                    .await?;
            }
            Event::ParticipantJoined { participant: p } => {
                sqlx::query(
                        "INSERT INTO participants (session_id, participant_id, role, name, email, account_id, joined_at)
                         VALUES (?, ?, ?, ?, ?, ?, ?)
                         ON CONFLICT (session_id, participant_id) DO UPDATE SET left_at = NULL, leave_reason = NULL",
                    )
                    .bind(&sid)
                    .bind(p.id.to_string())
                    .bind(serde_json::to_value(p.role).expect("role serializes").as_str().unwrap_or("").to_string())
                    .bind(&p.name)
                    .bind(&p.email)
                    .bind(p.account.map(|a| a.to_string()))
                    .bind(r.at)
                    .execute(&mut **tx)
                    .await?;
            }
            Event::ParticipantLeft {
                participant,
                reason,
            } => {
                sqlx::query(
                        "UPDATE participants SET left_at = ?, leave_reason = ? WHERE session_id = ? AND participant_id = ?",
                    )
                    .bind(r.at)
                    .bind(serde_json::to_value(reason).expect("reason serializes").as_str().unwrap_or("").to_string())
                    .bind(&sid)
                    .bind(participant.to_string())
                    .execute(&mut **tx)
                    .await?;
            }
            Event::NotesUpdated { text, .. } => {
                sqlx::query("UPDATE sessions SET notes = ? WHERE id = ?")
                    .bind(text)
                    .bind(&sid)
                    .execute(&mut **tx)
                    .await?;
            }
            Event::SessionTransferred { .. } => {
                sqlx::query("UPDATE sessions SET status = 'waiting' WHERE id = ?")
                    .bind(&sid)
                    .execute(&mut **tx)
                    .await?;
            }
            Event::TransferAccepted { .. } => {
                sqlx::query("UPDATE sessions SET status = 'active' WHERE id = ?")
                    .bind(&sid)
                    .execute(&mut **tx)
                    .await?;
            }
            Event::SessionEnded { reason, .. } => {
                sqlx::query(
                        "UPDATE sessions SET status = 'ended', ended_at = ?, end_reason = ? WHERE id = ?",
                    )
                    .bind(r.at)
                    .bind(serde_json::to_value(reason).expect("reason serializes").as_str().unwrap_or("").to_string())
                    .bind(&sid)
                    .execute(&mut **tx)
                    .await?;
                sqlx::query(
                    "UPDATE participants SET left_at = ?, leave_reason = 'session_ended'
                         WHERE session_id = ? AND left_at IS NULL",
                )
                .bind(r.at)
                .bind(&sid)
                .execute(&mut **tx)
                .await?;
            }
            _ => {}
        }
        sqlx::query(
            "INSERT INTO session_events (session_id, seq, at, kind, body) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&sid)
        .bind(r.seq as i64)
        .bind(r.at)
        .bind(r.event.kind())
        .bind(serde_json::to_string(&r.event).map_err(corrupt)?)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_actors::protocol::{ParticipantInfo, Role};
    use tandem_actors::session::rules::SessionRules;

    /// A store in a temporary folder (kept while the first value lives) with one CSR, Carol.
    async fn store_with_carol() -> (tempfile::TempDir, Store, User) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let carol = store
            .create_user("carol", "Carol", "c@example.com", "x", AccountRole::Csr, 1)
            .await
            .unwrap();
        (dir, store, carol)
    }

    fn new_session(host: &User, topic: &str, max_customers: usize) -> SessionInit {
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
    async fn journal_round_trips_and_projects_participants() {
        let (_dir, store, host) = store_with_carol().await;
        let init = new_session(&host, "vpn", 2);
        let (mut rules, mut recs) = SessionRules::create(init.clone(), 10);
        let p = ParticipantInfo {
            id: ParticipantId::random(),
            role: Role::Customer,
            name: "Dave".into(),
            email: Some("d@example.com".into()),
            account: None,
            is_agent: false,
            phone: false,
        };
        recs.extend(rules.join(20, p.clone(), false).unwrap());
        recs.extend(rules.interrupt(30));
        store.append(&init, &recs).await.unwrap();

        assert_eq!(store.load(init.id).await.unwrap(), recs);
        let parts = store.participants(init.id).await.unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].left_at, Some(30));
        let s = store.session(init.id).await.unwrap().unwrap();
        assert_eq!((s.status.as_str(), s.ended_at), ("ended", Some(30)));
        // A duplicate sequence number is refused as a whole: nothing half-written.
        assert!(store.append(&init, &recs[1..2]).await.is_err());
        assert_eq!(store.load(init.id).await.unwrap().len(), recs.len());
    }

    #[tokio::test]
    async fn a_live_session_is_read_back_with_its_automatic_recording() {
        // SPEC R3: the setting as it was when the session started is kept with the session.
        let (_dir, store, host) = store_with_carol().await;
        let mut ids = Vec::new();
        for automatic_recording in [true, false] {
            let init = SessionInit {
                automatic_recording,
                ..new_session(&host, "recorded", 1)
            };
            let (_, recs) = SessionRules::create(init.clone(), 5);
            store.append(&init, &recs).await.unwrap();
            ids.push((init.id, automatic_recording));
        }
        let live = store.unfinished_sessions().await.unwrap();
        for (id, automatic) in ids {
            let init = live.iter().find(|i| i.id == id).unwrap();
            assert_eq!(init.automatic_recording, automatic);
        }
    }

    #[tokio::test]
    async fn keyword_search_takes_wildcards_literally() {
        let (_dir, store, host) = store_with_carol().await;
        for topic in ["disk 100% full", "disk 1000 full", "user_name", "username"] {
            let init = new_session(&host, topic, 1);
            let (_, recs) = SessionRules::create(init.clone(), 5);
            store.append(&init, &recs).await.unwrap();
        }
        let topics = |v: Vec<SessionSummary>| v.into_iter().map(|s| s.topic).collect::<Vec<_>>();
        let found = store
            .sessions(None, None, None, Some("100%"), 10)
            .await
            .unwrap();
        assert_eq!(topics(found), ["disk 100% full"]);
        let found = store
            .sessions(None, None, None, Some("user_"), 10)
            .await
            .unwrap();
        assert_eq!(topics(found), ["user_name"]);
        let found = store
            .sessions(Some(host.id), Some(5), Some(6), None, 10)
            .await
            .unwrap();
        assert_eq!(found.len(), 4);
        let found = store
            .sessions(Some(AccountId::random()), None, None, None, 10)
            .await
            .unwrap();
        assert!(found.is_empty());
    }

    #[tokio::test]
    async fn recordings_go_through_their_life_and_are_listed_per_owner() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let carol = store
            .create_user("carol", "Carol", "c@x", "h", AccountRole::Csr, 1)
            .await
            .unwrap();
        let ann = store
            .create_user("ann", "Ann", "a@x", "h", AccountRole::Csr, 1)
            .await
            .unwrap();
        let new = |owner: AccountId, at: i64| NewRecording {
            id: Uuid::new_v4(),
            session_id: Some(SessionId::random()),
            owner,
            name: format!("rec {at}"),
            arf_path: dir.path().join(format!("{at}.arf")),
            created_at: at,
        };
        let a = store.create_recording(new(carol.id, 10)).await.unwrap();
        let b = store.create_recording(new(carol.id, 20)).await.unwrap();
        let c = store.create_recording(new(ann.id, 30)).await.unwrap();
        assert_eq!(
            store.recording(a.id).await.unwrap().unwrap().status,
            RecordingStatus::Recording
        );
        let ids = |v: Vec<Recording>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(
            ids(store.recordings(Some(carol.id)).await.unwrap()),
            [b.id, a.id]
        );
        assert_eq!(
            ids(store.recordings(None).await.unwrap()),
            [c.id, b.id, a.id]
        );

        store
            .finish_recording(a.id, 15, 5000, 1234, RecordingStatus::Processing, None)
            .await
            .unwrap();
        assert_eq!(
            ids(store
                .recordings_with_status(RecordingStatus::Recording)
                .await
                .unwrap()),
            [b.id, c.id]
        );
        let mp4 = dir.path().join("a.mp4");
        store
            .set_recording_mp4(a.id, Some(&mp4), Some(999), RecordingStatus::Ready, None)
            .await
            .unwrap();
        let r = store
            .update_recording(a.id, Some("Printer"), None, Some(true), Some(ann.id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (r.name.as_str(), r.description.as_str(), r.disabled, r.owner),
            ("Printer", "", true, ann.id)
        );
        assert_eq!(
            (r.ended_at, r.duration_ms, r.arf_bytes),
            (Some(15), Some(5000), 1234)
        );
        assert_eq!(
            (r.mp4_path, r.mp4_bytes, r.status),
            (Some(mp4), Some(999), RecordingStatus::Ready)
        );
        let shown = serde_json::to_value(store.recording(a.id).await.unwrap().unwrap()).unwrap();
        assert!(
            shown.get("arf_path").is_none() && shown["status"] == "ready",
            "{shown}"
        );

        assert!(store.delete_recording(a.id).await.unwrap());
        assert!(!store.delete_recording(a.id).await.unwrap());
        assert!(store.recording(a.id).await.unwrap().is_none());
        assert!(matches!(
            store
                .finish_recording(a.id, 1, 1, 1, RecordingStatus::Failed, Some("x"))
                .await,
            Err(StoreError::NotFound)
        ));
        assert!(
            store
                .update_recording(a.id, None, None, None, None)
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn usernames_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        store
            .create_user("a", "A", "a@x", "h", AccountRole::Admin, 1)
            .await
            .unwrap();
        assert!(matches!(
            store
                .create_user("a", "A2", "a@x", "h", AccountRole::Csr, 1)
                .await,
            Err(StoreError::Conflict(_))
        ));
    }
}
