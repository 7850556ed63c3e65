//! The session journal (event sourcing, docs/architecture.md): every session event is written
//! before it is delivered, by one writer task that commits whatever has queued up in one
//! transaction (group commit), and the projections that reports and lists read (sessions,
//! participants, notes).

use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection, Row};
use tandem_actors::ids::{AccountId, ParticipantId, SessionId, SessionNumber};
use tandem_actors::ports::{Journal, JournalError};
use tandem_actors::protocol::{Event, Record, UnixMillis};
use tandem_actors::session::rules::SessionInit;
use tokio::sync::{mpsc, oneshot};

use std::str::FromStr;

use super::{Store, StoreError, corrupt, id_of};

/// One session's records waiting to be journaled, and who waits for the answer.
pub(super) struct AppendJob {
    init: SessionInit,
    records: Vec<Record>,
    done: oneshot::Sender<Result<(), String>>,
}

/// Appends journaled together in one transaction at most. Every event is on disk before it is
/// delivered, so each transaction costs an fsync; committing whatever has queued up meanwhile in
/// one transaction shares that cost (group commit). See docs/performance.md.
const MAX_BATCH: usize = 256;
/// Appends that may wait for the writer; beyond this, sessions wait to enqueue (back-pressure).
pub(super) const JOURNAL_QUEUE: usize = 4096;

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

impl Store {
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
    /// `text` matches topic, number, host, participant name or notes, as a substring: through
    /// the trigram index (`session_search`) when it is three characters or more, by scanning
    /// when shorter (no trigram to look up).
    pub async fn sessions(
        &self,
        account: Option<AccountId>,
        from: Option<UnixMillis>,
        to: Option<UnixMillis>,
        text: Option<&str>,
        limit: i64,
    ) -> Result<Vec<SessionSummary>, StoreError> {
        // The words are matched literally: LIKE's own wildcards in them are escaped, and the
        // index is given them as one quoted phrase.
        let like = text.map(|t| {
            let escaped = t
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        });
        // Three characters or more: the phrase, quoted, through the index. Shorter: a scan of
        // the documents (the index has no trigram to look up).
        let (documents, pattern) = match text {
            Some(t) if t.chars().count() >= 3 => (
                "session_search MATCH ?5",
                Some(format!("\"{}\"", t.replace('"', "\"\""))),
            ),
            _ => ("body LIKE ?5 ESCAPE '\\'", like.clone()),
        };
        let sql = format!(
            "SELECT s.*, u.display_name AS host_name FROM sessions s JOIN users u ON u.id = s.host_id
             WHERE (?1 IS NULL OR s.host_id = ?1 OR EXISTS
                      (SELECT 1 FROM participants p WHERE p.session_id = s.id AND p.account_id = ?1))
               AND (?2 IS NULL OR s.created_at >= ?2)
               AND (?3 IS NULL OR s.created_at < ?3)
               AND (?4 IS NULL OR u.display_name LIKE ?4 ESCAPE '\\'
                    OR s.rowid IN (SELECT rowid FROM session_search WHERE {documents}))
             ORDER BY s.created_at DESC LIMIT ?6"
        );
        // Safe: `documents` is one of the two literals above; the caller's words are bound.
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(account.map(|a| a.to_string()))
            .bind(from)
            .bind(to)
            .bind(like)
            .bind(pattern)
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

/// The one task that writes the journal, on a connection of its own: takes what is queued,
/// writes it in one transaction, and answers each waiting session. If a batch fails, each append
/// is retried on its own so one bad append cannot fail the others.
pub(super) async fn journal_writer(
    options: SqliteConnectOptions,
    mut rx: mpsc::Receiver<AppendJob>,
) {
    let mut conn = None;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(job) = rx.recv().await {
        batch.push(job);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        match write_batch(&mut conn, &options, &batch).await {
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
                    let alone = write_batch(&mut conn, &options, std::slice::from_ref(&job)).await;
                    let _ = job.done.send(alone.map_err(|e| e.to_string()));
                }
            }
        }
    }
}

/// Writes `jobs` in one transaction, opening the writer's connection first if there is none.
/// `Ok` only once the COMMIT succeeded. On any failure the connection is closed (which rolls
/// back whatever SQLite kept open), never reused: after a failed statement or COMMIT (a full
/// disk) SQLite may or may not have rolled back by itself, and a connection in that unknown
/// state would answer later appends `ok` inside a transaction that never ends, losing them and
/// holding the write lock. The next batch opens a new one, so writing resumes by itself once
/// the disk has room again.
async fn write_batch(
    conn: &mut Option<SqliteConnection>,
    options: &SqliteConnectOptions,
    jobs: &[AppendJob],
) -> Result<(), StoreError> {
    let c = match conn {
        Some(c) => c,
        None => conn.insert(options.connect().await?),
    };
    let written = async {
        let mut tx = c.begin_with("BEGIN IMMEDIATE").await?;
        for job in jobs {
            write_records(&mut tx, &job.init, &job.records).await?;
        }
        tx.commit().await?;
        Ok::<_, StoreError>(())
    }
    .await;
    if written.is_err()
        && let Some(c) = conn.take()
    {
        let _ = c.close().await;
    }
    written
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
        if matches!(
            r.event,
            Event::SessionCreated { .. }
                | Event::ParticipantJoined { .. }
                | Event::NotesUpdated { .. }
        ) {
            index_for_search(tx, &sid).await?;
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

/// Writes the session's search document again from its projections (migrations/0005).
async fn index_for_search(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    sid: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT OR REPLACE INTO session_search (rowid, body)
         SELECT s.rowid, s.topic || char(10) || s.number || char(10) ||
                coalesce((SELECT group_concat(p.name, char(10)) FROM participants p
                          WHERE p.session_id = s.id), '') || char(10) || s.notes
         FROM sessions s WHERE s.id = ?",
    )
    .bind(sid)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{new_session, store_with_carol};
    use tandem_actors::protocol::{ParticipantInfo, Role};
    use tandem_actors::session::rules::SessionRules;

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
    async fn keyword_search_finds_notes_and_participants_through_the_index() {
        let (_dir, store, host) = store_with_carol().await;
        let init = new_session(&host, "printer", 2);
        let (mut rules, mut recs) = SessionRules::create(init.clone(), 5);
        let dave = ParticipantInfo {
            id: ParticipantId::random(),
            role: Role::Customer,
            name: "Dave Quigley".into(),
            email: None,
            account: None,
            is_agent: false,
            phone: false,
        };
        recs.extend(rules.join(6, dave.clone(), false).unwrap());
        store.append(&init, &recs).await.unwrap();
        let notes = Record {
            seq: recs.last().unwrap().seq + 1,
            at: 7,
            event: Event::NotesUpdated {
                by: dave.id,
                text: "Toner replaced; \"tray 2\" jams".into(),
            },
        };
        store.append(&init, &[notes]).await.unwrap();
        let other = new_session(&host, "vpn", 1);
        let (_, recs) = SessionRules::create(other.clone(), 8);
        store.append(&other, &recs).await.unwrap();

        let topics = |v: Vec<SessionSummary>| v.into_iter().map(|s| s.topic).collect::<Vec<_>>();
        for q in ["quig", "TONER", "\"tray 2\"", "Carol", "pn"] {
            let found = store.sessions(None, None, None, Some(q), 10).await.unwrap();
            let want: &[&str] = match q {
                "Carol" => &["vpn", "printer"],
                "pn" => &["vpn"],
                _ => &["printer"],
            };
            assert_eq!(topics(found), want, "{q}");
        }
        let found = store.sessions(None, None, None, Some("jams!"), 10).await;
        assert!(found.unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_journal_writes_while_reads_hold_every_pooled_connection() {
        let (_dir, store, host) = store_with_carol().await;
        let mut held = Vec::new();
        while let Ok(Ok(c)) =
            tokio::time::timeout(std::time::Duration::from_millis(200), store.pool.acquire()).await
        {
            held.push(c);
        }
        assert!(!held.is_empty());
        let init = new_session(&host, "busy", 1);
        let (_, recs) = SessionRules::create(init.clone(), 5);
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            store.append(&init, &recs),
        )
        .await
        .expect("the journal does not wait for the pool")
        .unwrap();
    }
}
