//! The exporter (SPEC R2, R4, SYS5): turns each `processing` recording into an MP4 next to its
//! ARF on blocking threads off the media threads, and says how far each is (R4 "convert ARF
//! to MP4"). It is woken when a recording is ready (the recorder finished or an ARF was
//! uploaded) and looks for work it missed every few seconds.
//!
//! What one recording can take is bounded: exports run from a queue ([`queue`]: a few at once,
//! one per account, oldest first), each within a time allowed for its length and with no frame
//! larger than the configured picture size; deleting a recording stops its export, and
//! stopping the server stops them all (the recordings stay `processing` and are exported again
//! at the next start).

pub mod queue;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics::{counter, gauge, histogram};

use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::RecordingConfig;
use crate::metrics::{
    EXPORT_DURATION, EXPORT_FAILURES, EXPORT_SPEED, EXPORTS, EXPORTS_CANCELLED, EXPORTS_RUNNING,
    EXPORTS_WAITING,
};
use crate::store::{RecordingStatus, Store};
use queue::{ExportQueue, Job};

/// How often the exporter looks for work it was not woken for.
const EXPORT_POLL: Duration = Duration::from_secs(5);
/// How long stopping the server waits for the exports to stop; each stops within one frame's
/// work, so this is only a bound on a stuck encoder.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// What the rest of the server sees of the exporter: how far each export is, a way to wake it
/// (a finished recording or an upload is exported at once rather than at the next look), to
/// stop one recording's export, and to stop them all.
#[derive(Clone, Default)]
pub struct Exports {
    progress: ExportProgress,
    wake: Arc<Notify>,
    control: Arc<Mutex<Control>>,
    shutdown: CancellationToken,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

/// The queue and how to stop each running export, shared by the exporter's task and the HTTP
/// API (which drops a recording it deletes).
#[derive(Default)]
struct Control {
    queue: Option<ExportQueue>,
    running: HashMap<Uuid, CancellationToken>,
    /// Dropped before the exporter's queue existed (a deletion at start-up).
    dropped_early: Vec<Uuid>,
}

impl Exports {
    /// How far the export of `recording` is, 0 to 1; `None` when it is not being exported.
    pub fn progress(&self, recording: Uuid) -> Option<f64> {
        self.progress.get(recording)
    }

    /// How far every export under way is. Taken before the recordings' rows are read, a
    /// `processing` row always finds its export's progress here: an export's outcome is stored
    /// before its progress is forgotten, so a row read after it says `ready` (or `failed`).
    pub fn progress_now(&self) -> HashMap<Uuid, f64> {
        self.progress
            .0
            .lock()
            .expect("progress lock poisoned")
            .clone()
    }

    /// There is a new recording to export.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// `recording` is being deleted: its export does not start, or stops if it runs (within
    /// one frame's work; it leaves nothing behind).
    pub fn drop_recording(&self, recording: Uuid) {
        let mut c = self.control.lock().expect("export control lock poisoned");
        let running = match c.queue.as_mut() {
            Some(q) => q.drop_job(recording),
            None => {
                c.dropped_early.push(recording);
                false
            }
        };
        if running && let Some(token) = c.running.get(&recording) {
            token.cancel();
        }
    }

    /// A deletion failed and `recording` stays: it is exported again if it still needs to be.
    pub fn keep_recording(&self, recording: Uuid) {
        let mut c = self.control.lock().expect("export control lock poisoned");
        c.dropped_early.retain(|id| *id != recording);
        if let Some(q) = c.queue.as_mut() {
            q.undrop(recording);
        }
        drop(c);
        self.wake();
    }

    /// Stops every export and waits (a bounded time) until they have stopped, so that the
    /// process can end: the runtime would otherwise wait for an export's thread to finish.
    pub async fn stop(&self) {
        self.shutdown.cancel();
        let task = self.task.lock().expect("export task lock poisoned").take();
        if let Some(task) = task
            && tokio::time::timeout(STOP_WAIT, task).await.is_err()
        {
            tracing::warn!("the exporter did not stop in time");
        }
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

/// Starts the exporter over the recordings in `config.dir`: every `processing` recording becomes
/// an MP4 next to its ARF, or `failed` with the reason. Runs until `exports.stop()`.
pub fn start(store: Store, config: &RecordingConfig, exports: &Exports) {
    // Left by an export a killed server did not finish; never shown as a recording.
    if let Ok(dir) = std::fs::read_dir(&config.dir) {
        for e in dir.flatten() {
            if e.file_name().to_string_lossy().ends_with(".partial") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    {
        let mut c = exports
            .control
            .lock()
            .expect("export control lock poisoned");
        let mut queue = ExportQueue::new(config.export_workers);
        for id in std::mem::take(&mut c.dropped_early) {
            queue.drop_job(id);
        }
        c.queue = Some(queue);
    }
    let task = tokio::spawn(dispatch(store, Arc::new(config.clone()), exports.clone()));
    *exports.task.lock().expect("export task lock poisoned") = Some(task);
}

/// The exporter's loop: lists what waits, starts what the queue allows, and waits for a wake,
/// an export's end, the next look or the stop.
async fn dispatch(store: Store, config: Arc<RecordingConfig>, exports: Exports) {
    let mut jobs: JoinSet<Uuid> = JoinSet::new();
    loop {
        match store
            .recordings_with_status(RecordingStatus::Processing)
            .await
        {
            Ok(rows) => {
                let listed = rows
                    .into_iter()
                    .map(|r| Job {
                        id: r.id,
                        owner: r.owner,
                        since: r.created_at,
                    })
                    .collect();
                let mut c = exports
                    .control
                    .lock()
                    .expect("export control lock poisoned");
                let Control { queue, running, .. } = &mut *c;
                let Some(queue) = queue.as_mut() else { break };
                queue.listed(listed);
                while !exports.shutdown.is_cancelled()
                    && let Some(job) = queue.start_next()
                {
                    let token = exports.shutdown.child_token();
                    running.insert(job.id, token.clone());
                    let arf = config.dir.join(format!("{}.arf", job.id));
                    jobs.spawn(export_one(
                        store.clone(),
                        exports.progress.clone(),
                        config.clone(),
                        job.id,
                        arf,
                        token,
                    ));
                }
                gauge!(EXPORTS_WAITING).set(queue.waiting() as f64);
                gauge!(EXPORTS_RUNNING).set(queue.running() as f64);
            }
            Err(e) => tracing::error!(error = %e, "could not list recordings to export"),
        }
        tokio::select! {
            _ = exports.shutdown.cancelled() => break,
            Some(done) = jobs.join_next(), if !jobs.is_empty() => {
                if let Ok(id) = done {
                    finished(&exports, id);
                }
            }
            _ = tokio::time::timeout(EXPORT_POLL, exports.wake.notified()) => {}
        }
    }
    // Every export's token is a child of the stop: each stops within one frame's work.
    while let Some(done) = jobs.join_next().await {
        if let Ok(id) = done {
            finished(&exports, id);
        }
    }
}

fn finished(exports: &Exports, id: Uuid) {
    let mut c = exports
        .control
        .lock()
        .expect("export control lock poisoned");
    c.running.remove(&id);
    if let Some(q) = c.queue.as_mut() {
        q.finished(id);
    }
}

/// Exports one recording on a thread of its own, telling `progress` how far it is, and stores the
/// outcome; a cancelled export (its recording deleted, or the server stopping) stores nothing.
/// Returns the recording's id, for the queue.
async fn export_one(
    store: Store,
    progress: ExportProgress,
    config: Arc<RecordingConfig>,
    id: Uuid,
    arf: PathBuf,
    cancel: CancellationToken,
) -> Uuid {
    // The row names the file; an ARF recorded or uploaded by this server is always here.
    let arf = match store.recording(id).await {
        Ok(Some(r)) => r.arf_path,
        _ => arf,
    };
    let mp4 = arf.with_extension("mp4");
    let out = mp4.clone();
    progress.set(id, 0.0);
    let told = progress.clone();
    // A thread of its own rather than the runtime's blocking pool: the runtime waits for its
    // pool when the process ends, and an export stuck inside GStreamer must not keep the
    // server from exiting.
    let (done, result) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("export".into())
        .spawn(move || {
            let _ = done.send(run_export(&config, &arf, &out, &told, id, &cancel));
        });
    let result = match spawned {
        Ok(_) => result
            .await
            .map_err(|_| "the export's thread panicked".to_string()),
        Err(e) => Err(format!("no thread for the export: {e}")),
    };
    let (path, bytes, status, error) = match result {
        Ok(Ok(report)) => {
            counter!(EXPORTS).increment(1);
            histogram!(EXPORT_DURATION).record(report.wall.as_secs_f64());
            histogram!(EXPORT_SPEED).record(report.speed);
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
        Ok(Err(tandem_export::ExportError::Cancelled)) => {
            counter!(EXPORTS_CANCELLED).increment(1);
            tracing::info!(recording = %id, "export stopped (recording deleted or server stopping)");
            progress.finish(id);
            return id;
        }
        Ok(Err(e)) => {
            counter!(EXPORT_FAILURES, "code" => e.code()).increment(1);
            tracing::error!(recording = %id, error = %e, "export failed");
            (
                None,
                None,
                RecordingStatus::Failed,
                Some(format!("export failed: {e} ({})", e.code())),
            )
        }
        Err(e) => {
            counter!(EXPORT_FAILURES, "code" => "panic").increment(1);
            tracing::error!(recording = %id, error = %e, "export failed");
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
    id
}

/// One export, on its own thread, as the server's limits and `cancel` bound it.
fn run_export(
    config: &RecordingConfig,
    arf: &Path,
    out: &Path,
    progress: &ExportProgress,
    id: Uuid,
    cancel: &CancellationToken,
) -> Result<tandem_export::ExportReport, tandem_export::ExportError> {
    let options = export_options(config);
    let cancelled = || cancel.is_cancelled();
    let allowed = |recorded| config.export_time_allowed(recorded);
    let stop = tandem_export::Stop {
        cancelled: &cancelled,
        time_allowed: &allowed,
    };
    tandem_export::init()?;
    tandem_export::export_with(
        arf,
        out,
        &options,
        &mut |done| progress.set(id, done),
        &stop,
    )
}

/// The export's options under the server's limits.
fn export_options(config: &RecordingConfig) -> tandem_export::ExportOptions {
    tandem_export::ExportOptions {
        max_source_width: config.max_frame_width,
        max_source_height: config.max_frame_height,
        ..tandem_export::ExportOptions::default()
    }
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
