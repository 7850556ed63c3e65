//! Files the primary CSR published to customers (SPEC F1): one folder per session under
//! `[files] dir`, one file per id, written as `<id>.part` and renamed when whole. The session
//! removes them through [`FileShelf`] when they are withdrawn, when file transfer with their
//! customer ends and when it ends; a killed server's are removed at the next start, when its
//! sessions end as interrupted.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use tandem_actors::ids::{FileId, SessionId};
use tandem_actors::ports::FileShelf;

pub struct SharedFiles {
    dir: PathBuf,
    /// F2's batches, removed with their session too.
    batches: Option<Arc<crate::file_batches::FileBatches>>,
    /// Bytes each session's uploads under way have reserved of its room.
    in_flight: Mutex<HashMap<SessionId, u64>>,
}

/// Room one upload holds in its session until it is dropped (published or not).
pub struct Reservation {
    files: Arc<SharedFiles>,
    session: SessionId,
    bytes: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut in_flight = self.files.lock();
        if let Some(held) = in_flight.get_mut(&self.session) {
            *held = held.saturating_sub(self.bytes);
            if *held == 0 {
                in_flight.remove(&self.session);
            }
        }
    }
}

impl SharedFiles {
    pub fn new(dir: &Path) -> Arc<Self> {
        Self::with_batches(dir, None)
    }

    /// Files published under `dir`; an ended session's F2 `batches` go with its files.
    pub fn with_batches(
        dir: &Path,
        batches: Option<Arc<crate::file_batches::FileBatches>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            dir: dir.to_owned(),
            batches,
            in_flight: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, u64>> {
        // Each change is one whole step: still consistent after a panic.
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes what a previous run left (no session of it is live any more): the sessions'
    /// folders, named by their ids, and nothing else. The folder itself stays, as it may be a
    /// mount point.
    pub fn sweep(&self) -> std::io::Result<()> {
        let entries = match std::fs::read_dir(&self.dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            other => other?,
        };
        for entry in entries {
            let entry = entry?;
            let ours = entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.parse::<SessionId>().is_ok());
            if ours && entry.file_type()?.is_dir() {
                std::fs::remove_dir_all(entry.path())?;
            }
        }
        Ok(())
    }

    pub fn session_dir(&self, session: SessionId) -> PathBuf {
        self.dir.join(session.to_string())
    }

    pub fn path(&self, session: SessionId, file: FileId) -> PathBuf {
        self.session_dir(session).join(file.to_string())
    }

    pub fn part_path(&self, session: SessionId, file: FileId) -> PathBuf {
        self.session_dir(session).join(format!("{file}.part"))
    }

    /// Reserves `bytes` of the session's room, given what its published files hold; `Err`
    /// with what the session would hold (published and under way) when it does not fit.
    pub fn reserve(
        self: &Arc<Self>,
        session: SessionId,
        bytes: u64,
        published: u64,
        max: u64,
    ) -> Result<Reservation, u64> {
        let mut in_flight = self.lock();
        let held = published.saturating_add(in_flight.get(&session).copied().unwrap_or(0));
        if held.saturating_add(bytes) > max {
            return Err(held);
        }
        *in_flight.entry(session).or_insert(0) += bytes;
        Ok(Reservation {
            files: self.clone(),
            session,
            bytes,
        })
    }
}

impl FileShelf for SharedFiles {
    fn remove(&self, session: SessionId, file: FileId) {
        let path = self.path(session, file);
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::error!(path = %path.display(), error = %e, "could not remove a published file");
        }
    }

    fn clear(&self, session: SessionId) {
        if let Some(b) = &self.batches {
            b.clear_session(session);
        }
        let dir = self.session_dir(session);
        if let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::error!(path = %dir.display(), error = %e, "could not remove a session's published files");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_at_once_cannot_overshoot_the_session_room_and_give_it_back_when_done() {
        let files = SharedFiles::new(Path::new("/nonexistent"));
        let s = SessionId::random();
        let a = files.reserve(s, 60, 10, 100).unwrap();
        assert_eq!(files.reserve(s, 40, 10, 100).err(), Some(70));
        // Another session has its own room.
        let _other = files.reserve(SessionId::random(), 90, 0, 100).unwrap();
        drop(a);
        let _b = files.reserve(s, 90, 10, 100).unwrap();
    }

    #[test]
    fn what_a_previous_run_left_is_removed_but_the_folder_stays() {
        let tmp = tempfile::tempdir().unwrap();
        let files = SharedFiles::new(tmp.path());
        let s = SessionId::random();
        std::fs::create_dir_all(files.session_dir(s)).unwrap();
        std::fs::write(files.path(s, FileId::random()), b"left").unwrap();
        std::fs::write(tmp.path().join("stray"), b"x").unwrap();
        std::fs::create_dir(tmp.path().join("recordings")).unwrap();
        files.sweep().unwrap();
        assert!(tmp.path().is_dir());
        assert!(!files.session_dir(s).exists());
        // What is not a session's folder is not ours to remove.
        assert!(tmp.path().join("stray").exists() && tmp.path().join("recordings").exists());
        // A missing folder is nothing to sweep.
        SharedFiles::new(&tmp.path().join("none")).sweep().unwrap();
    }
}
