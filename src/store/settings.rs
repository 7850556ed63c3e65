//! The admin's settings that shape new sessions (quick phrases, limits, recording defaults:
//! SPEC S10, R3) and the queues sessions are transferred to (SPEC S8).

use serde::{Deserialize, Serialize};
use sqlx::Row;
use tandem_actors::ids::{AccountId, QueueId};

use tandem_actors::protocol::UnixMillis;

use super::{Store, StoreError, corrupt, id_of};

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

impl Store {
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
}
