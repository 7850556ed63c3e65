//! Where sessions' recordings go (SPEC R2, R4): an ARF file in the recordings folder and a row in
//! the `recordings` table, from the moment the recording starts; the row says how it ended.
//! After a crash, recordings still marked as running are closed from what their files hold.
//! The exporter then turns each `processing` recording into an MP4, one at a time, off the
//! media threads (SPEC R2, SYS5), and says how far it is (R4 "convert ARF to MP4").

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics::{counter, histogram};
use tandem_actors::ids::{AccountId, RecordingId, SessionId};
use tandem_actors::ports::Recordings;
use tandem_actors::protocol::UnixMillis;
use tandem_actors::recorder::{Finished, RecorderError};
use tandem_actors::session::unix_now;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::store::{NewRecording, RecordingStatus, Store};

pub struct RecordingStore {
    store: Store,
    dir: PathBuf,
    /// Wakes the exporter when a recording is ready for it.
    export: Arc<Notify>,
    progress: ExportProgress,
}

/// What the HTTP API sees of the exporter: how far each export is, and a way to wake it (an
/// upload is exported at once rather than at the next look).
#[derive(Clone)]
pub struct Exports {
    progress: ExportProgress,
    wake: Arc<Notify>,
}

impl Exports {
    /// How far the export of `recording` is, 0 to 1; `None` when it is not being exported.
    pub fn progress(&self, recording: Uuid) -> Option<f64> {
        self.progress.get(recording)
    }

    /// There is a new recording to export.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// How far the exports under way are, from 0 to 1, by recording: kept in memory only, since an
/// export cut off by a restart starts again from the beginning.
#[derive(Clone, Default)]
struct ExportProgress(Arc<Mutex<HashMap<Uuid, f64>>>);

impl ExportProgress {
    /// How far the export of `recording` is; `None` when it is not being exported.
    fn get(&self, recording: Uuid) -> Option<f64> {
        self.0
            .lock()
            .expect("progress lock poisoned")
            .get(&recording)
            .copied()
    }

    /// Records how far an export is: between 0 and 1, and never back.
    fn set(&self, recording: Uuid, done: f64) {
        let done = if done.is_nan() {
            0.0
        } else {
            done.clamp(0.0, 1.0)
        };
        let mut all = self.0.lock().expect("progress lock poisoned");
        let now = all.entry(recording).or_insert(0.0);
        *now = now.max(done);
    }

    fn finish(&self, recording: Uuid) {
        self.0
            .lock()
            .expect("progress lock poisoned")
            .remove(&recording);
    }
}

/// How often the exporter looks for work it was not woken for.
const EXPORT_POLL: Duration = Duration::from_secs(5);

impl RecordingStore {
    pub fn new(store: Store, dir: PathBuf) -> Self {
        Self {
            store,
            dir,
            export: Arc::new(Notify::new()),
            progress: ExportProgress::default(),
        }
    }

    /// The exporter as the HTTP API sees it.
    pub fn exports(&self) -> Exports {
        Exports {
            progress: self.progress.clone(),
            wake: self.export.clone(),
        }
    }

    /// Starts the exporter: every `processing` recording becomes an MP4 next to its ARF, or
    /// `failed` with the reason. Runs until the process ends.
    pub fn start_exporter(&self) {
        // Left by an export a killed server did not finish; never shown as a recording.
        if let Ok(dir) = std::fs::read_dir(&self.dir) {
            for e in dir.flatten() {
                if e.file_name().to_string_lossy().ends_with(".partial") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let store = self.store.clone();
        let wake = self.export.clone();
        let progress = self.progress.clone();
        tokio::spawn(async move {
            loop {
                match store
                    .recordings_with_status(RecordingStatus::Processing)
                    .await
                {
                    Ok(rows) => {
                        for r in rows {
                            export_one(&store, &progress, r.id, r.arf_path.clone()).await;
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "could not list recordings to export"),
                }
                let _ = tokio::time::timeout(EXPORT_POLL, wake.notified()).await;
            }
        });
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
            let summary =
                tokio::task::spawn_blocking(move || tandem_arf::inspect(&path)).await;
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
            Ok(()) => self.export.notify_one(),
            Err(e) => {
                tracing::error!(%recording, error = %e, "could not store how a recording ended")
            }
        }
    }
}

/// Exports one recording on a blocking thread, telling `progress` how far it is, and stores the
/// outcome.
async fn export_one(store: &Store, progress: &ExportProgress, id: Uuid, arf: PathBuf) {
    let mp4 = arf.with_extension("mp4");
    let out = mp4.clone();
    progress.set(id, 0.0);
    let told = progress.clone();
    let result = tokio::task::spawn_blocking(move || {
        export_file(&arf, &out, &mut |done| told.set(id, done))
    })
    .await;
    let (path, bytes, status, error) = match result {
        Ok(Ok(report)) => {
            counter!("tandem_exports_total").increment(1);
            histogram!("tandem_export_duration_seconds").record(report.wall.as_secs_f64());
            histogram!("tandem_export_speed_ratio").record(report.speed);
            let note = report.truncated.then_some(
                "the recording's file ends early (the server stopped); exported to where it ends",
            );
            (
                Some(mp4.as_path()),
                Some(report.output_bytes as i64),
                RecordingStatus::Ready,
                note.map(str::to_string),
            )
        }
        Ok(Err(e)) => {
            counter!("tandem_export_failures_total", "code" => e.code()).increment(1);
            tracing::error!(recording = %id, error = %e, "export failed");
            (
                None,
                None,
                RecordingStatus::Failed,
                Some(format!("export failed: {e}")),
            )
        }
        Err(e) => {
            counter!("tandem_export_failures_total", "code" => "panic").increment(1);
            (
                None,
                None,
                RecordingStatus::Failed,
                Some(format!("export failed: {e}")),
            )
        }
    };
    if let Err(e) = store
        .set_recording_mp4(id, path, bytes, status, error.as_deref())
        .await
    {
        // Deleted while it was exported: its MP4 must not stay behind.
        tracing::warn!(recording = %id, error = %e, "could not store an export");
        let _ = std::fs::remove_file(&mp4);
    }
    // Only now: until the outcome is stored, the recording reads as `processing` and its
    // progress must not fall back to nothing.
    progress.finish(id);
}

/// ARF to MP4 with the default options (SPEC R2: H.264, AAC, fast-start), for the server's
/// exporter and `tandem export`; `progress` gets the fraction done.
pub fn export_file(
    arf: &Path,
    mp4: &Path,
    progress: &mut dyn FnMut(f64),
) -> Result<tandem_export::ExportReport, tandem_export::ExportError> {
    tandem_export::init()?;
    tandem_export::export(arf, mp4, &tandem_export::ExportOptions::default(), progress)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_kept_between_0_and_1_never_goes_back_and_ends_with_the_export() {
        let progress = ExportProgress::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(progress.get(a), None, "not being exported");
        progress.set(a, 0.0);
        assert_eq!(progress.get(a), Some(0.0));
        progress.set(a, 0.42);
        assert_eq!(progress.get(a), Some(0.42));
        progress.set(a, 0.3);
        assert_eq!(progress.get(a), Some(0.42), "never back");
        progress.set(a, 7.0);
        assert_eq!(progress.get(a), Some(1.0));
        progress.set(b, f64::NAN);
        assert_eq!(progress.get(b), Some(0.0));
        progress.set(b, -1.0);
        assert_eq!(progress.get(b), Some(0.0));
        // A clone is the same bookkeeping (the exporter's thread and the HTTP API share it).
        let shared = progress.clone();
        shared.finish(a);
        assert_eq!(progress.get(a), None);
        assert_eq!(progress.get(b), Some(0.0));
    }
}
