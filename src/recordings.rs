//! Where sessions' recordings go (SPEC R2, R4): an ARF file in the recordings folder and a row in
//! the `recordings` table, from the moment the recording starts; the row says how it ended,
//! and the [exporter](crate::exporter) is woken to make its MP4. After a crash, recordings still
//! marked as running are closed from what their files hold.

use std::path::PathBuf;

use metrics::counter;
use tandem_actors::ids::{AccountId, RecordingId, SessionId};
use tandem_actors::ports::Recordings;
use tandem_actors::protocol::UnixMillis;
use tandem_actors::recorder::{Finished, RecorderError};
use tandem_actors::session::unix_now;

use crate::exporter::Exports;
use crate::store::{NewRecording, RecordingStatus, Store};

/// The recorder's way to the server's storage (the actors' [`Recordings`] port).
pub struct RecordingStore {
    store: Store,
    dir: PathBuf,
    exports: Exports,
}

impl RecordingStore {
    /// Recordings written to `dir`; `exports` is woken whenever one is ready for export.
    pub fn new(store: Store, dir: PathBuf, exports: Exports) -> Self {
        Self {
            store,
            dir,
            exports,
        }
    }

    /// Recordings a killed server left running: their files hold everything up to the last
    /// flush (ARF's promise), so they are closed as they are, with the duration they reach.
    pub async fn recover(&self) -> Result<usize, crate::store::StoreError> {
        let running = self
            .store
            .recordings_with_status(RecordingStatus::Recording)
            .await?;
        for r in &running {
            let path = r.arf_path.clone();
            let summary = tokio::task::spawn_blocking(move || tandem_arf::inspect(&path)).await;
            let (status, duration, error) = match summary {
                Ok(Ok(s)) => (
                    RecordingStatus::Processing,
                    (s.duration_us / 1000) as i64,
                    Some("the server stopped during the recording; it ends where the file does"),
                ),
                _ => (
                    RecordingStatus::Failed,
                    0,
                    Some("the server stopped during the recording and its file cannot be read"),
                ),
            };
            let bytes = std::fs::metadata(&r.arf_path).map_or(0, |m| m.len() as i64);
            self.store
                .finish_recording(r.id, unix_now(), duration, bytes, status, error)
                .await?;
            tracing::warn!(recording = %r.id, ?status, "closed a recording the server left running");
        }
        Ok(running.len())
    }
}

#[async_trait::async_trait]
impl Recordings for RecordingStore {
    async fn begin(
        &self,
        recording: RecordingId,
        session: SessionId,
        owner: AccountId,
        name: String,
        started_at: UnixMillis,
    ) -> Result<PathBuf, String> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| format!("the recordings folder {}: {e}", self.dir.display()))?;
        let path = self.dir.join(format!("{recording}.arf"));
        self.store
            .create_recording(NewRecording {
                id: recording.0,
                session_id: Some(session),
                owner,
                name,
                arf_path: path.clone(),
                created_at: started_at,
            })
            .await
            .map_err(|e| e.to_string())?;
        counter!("tandem_arfs_started_total").increment(1);
        Ok(path)
    }

    async fn finished(&self, recording: RecordingId, result: Result<Finished, RecorderError>) {
        let (duration, bytes, status, error) = match &result {
            Ok(f) => (
                f.duration_ms as i64,
                f.bytes as i64,
                RecordingStatus::Processing,
                None,
            ),
            Err(e) => {
                counter!("tandem_arf_failures_total", "code" => e.code()).increment(1);
                (0, 0, RecordingStatus::Failed, Some(e.to_string()))
            }
        };
        let stored = self
            .store
            .finish_recording(
                recording.0,
                unix_now(),
                duration,
                bytes,
                status,
                error.as_deref(),
            )
            .await;
        match stored {
            Ok(()) => self.exports.wake(),
            Err(e) => {
                tracing::error!(%recording, error = %e, "could not store how a recording ended")
            }
        }
    }
}
