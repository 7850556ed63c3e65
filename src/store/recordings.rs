//! Recordings as stored (SPEC R2, R4): one row per recording from the moment it starts, the
//! paths of its ARF and MP4 files, its status through recording and export, and what people
//! may change (name, description, owner, disabled).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use tandem_actors::ids::{AccountId, SessionId};
use uuid::Uuid;

use tandem_actors::protocol::UnixMillis;

use super::{Store, StoreError, corrupt, id_of};

/// Who was in a recorded session ([`Store::recorded_sessions`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedSession {
    pub host_name: String,
    pub topic: String,
    pub customers: Vec<String>,
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
    /// HTTP API fills it in from the exporter (see `crate::exporter::Exports`).
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

/// What one account's uploads hold (recordings it owns that no session made).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UploadUsage {
    pub bytes: u64,
    pub files: u64,
}

/// Paths are stored as text; one that is not UTF-8 could not be read back as the same path.
fn path_text(p: &Path) -> Result<&str, StoreError> {
    p.to_str()
        .ok_or_else(|| StoreError::Corrupt(format!("path {} is not UTF-8", p.display())))
}

impl Store {
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

    /// Who was in the sessions `owner`'s recordings (everyone's, for `None`) were made of: its
    /// CSR's name, its topic and its customers' names in joining order, in one query for the
    /// whole list (the dashboard's feed reads it every second).
    pub async fn recorded_sessions(
        &self,
        owner: Option<AccountId>,
    ) -> Result<HashMap<SessionId, RecordedSession>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.id, s.topic, u.display_name AS host_name, p.name AS customer
             FROM sessions s JOIN users u ON u.id = s.host_id
             LEFT JOIN participants p ON p.session_id = s.id AND p.role = 'customer'
             WHERE s.id IN (SELECT session_id FROM recordings WHERE (?1 IS NULL OR owner = ?1))
             ORDER BY s.id, p.joined_at, p.rowid",
        )
        .bind(owner.map(|o| o.to_string()))
        .fetch_all(&self.pool)
        .await?;
        let mut sessions: HashMap<SessionId, RecordedSession> = HashMap::new();
        for row in &rows {
            let entry = match sessions.entry(id_of(row, "id")?) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => v.insert(RecordedSession {
                    host_name: row.try_get("host_name")?,
                    topic: row.try_get("topic")?,
                    customers: Vec::new(),
                }),
            };
            if let Some(name) = row.try_get::<Option<String>, _>("customer")? {
                entry.customers.push(name);
            }
        }
        Ok(sessions)
    }

    /// The recordings of one session, oldest first (its report lists them).
    pub async fn recordings_of_session(
        &self,
        session: SessionId,
    ) -> Result<Vec<Recording>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM recordings WHERE session_id = ? ORDER BY created_at, id")
                .bind(session.to_string())
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

    /// What `owner`'s uploads hold, for the upload quota.
    pub async fn upload_usage(&self, owner: AccountId) -> Result<UploadUsage, StoreError> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(arf_bytes), 0) AS bytes, COUNT(*) AS files FROM recordings
             WHERE owner = ? AND session_id IS NULL",
        )
        .bind(owner.to_string())
        .fetch_one(&self.pool)
        .await?;
        let count = |name| -> Result<u64, StoreError> {
            Ok(u64::try_from(row.try_get::<i64, _>(name)?).unwrap_or(0))
        };
        Ok(UploadUsage {
            bytes: count("bytes")?,
            files: count("files")?,
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AccountRole;

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
}
