//! SPEC F2: batches of files on their way between a CSR and a customer's computer, streamed
//! through the server. One side uploads each file (resumable: a broken upload goes on from
//! where it stopped), the server checks its size and SHA-256 against the batch's list, and the
//! other side downloads it (with `Range`, so a broken download resumes too). Kept under
//! `[files] dir`/batches, one folder per batch, each file as `<index>.part` until whole and
//! checked; removed when either side is done with it or cancels, when its session ends, when
//! untouched for [`IDLE_LIMIT`], and at the next start after a crash.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};
use tandem_actors::computer_files::{MAX_BATCH_BYTES, MAX_BATCH_FILES, PathError, check_path};
use tandem_actors::ids::{ParticipantId, SessionId};

/// A batch nobody touched for this long is removed (its transfer was abandoned).
pub const IDLE_LIMIT: Duration = Duration::from_secs(30 * 60);
/// Most batches one session holds at once.
pub const MAX_SESSION_BATCHES: usize = 4;

/// Which way a batch goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The CSR uploads, the customer's computer downloads.
    ToCustomer,
    /// The customer's computer uploads, the session's staff download.
    FromCustomer,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Self::ToCustomer => "to_customer",
            Self::FromCustomer => "from_customer",
        }
    }
}

/// One file of a batch, as its uploader declared it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub path: String,
    pub size: u64,
    /// Lowercase hex SHA-256 of the whole file.
    pub sha256: String,
}

/// What a batch holds: files and folders (empty ones too), relative to where it goes.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub files: Vec<Entry>,
    #[serde(default)]
    pub folders: Vec<String>,
}

/// Why a manifest is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("this batch holds {0} bytes; a batch is at most {MAX_BATCH_BYTES} bytes (150 MB)")]
    TooLarge(u64),
    #[error("a batch holds 1 to {MAX_BATCH_FILES} files and folders")]
    Count,
    #[error("{path}: {error}")]
    Path { path: String, error: PathError },
    #[error("{0} is named twice, or as a file and as a folder")]
    Clash(String),
    #[error("{0}: a SHA-256 is 64 lowercase hex digits")]
    BadSha(String),
}

impl ManifestError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge(_) => "batch_too_large",
            Self::Count => "bad_batch",
            Self::Path { error, .. } => error.code(),
            Self::Clash(_) => "bad_path",
            Self::BadSha(_) => "bad_sha256",
        }
    }
}

impl Manifest {
    /// Checks sizes, names and that no path is a file and a folder at once; the total size.
    pub fn check(&self) -> Result<u64, ManifestError> {
        let count = self.files.len() + self.folders.len();
        if count == 0 || count > MAX_BATCH_FILES {
            return Err(ManifestError::Count);
        }
        let total = self
            .files
            .iter()
            .fold(0u64, |t, e| t.saturating_add(e.size));
        if total > MAX_BATCH_BYTES {
            return Err(ManifestError::TooLarge(total));
        }
        let mut files = HashSet::new();
        let mut folders: HashSet<&str> = HashSet::new();
        let checked = |p: &str| {
            check_path(p, false).map_err(|error| ManifestError::Path {
                path: p.to_owned(),
                error,
            })
        };
        for f in &self.folders {
            checked(f)?;
            if !folders.insert(f) {
                return Err(ManifestError::Clash(f.clone()));
            }
        }
        for e in &self.files {
            checked(&e.path)?;
            let hex = e.sha256.len() == 64
                && e.sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !hex {
                return Err(ManifestError::BadSha(e.path.clone()));
            }
            if folders.contains(e.path.as_str()) || !files.insert(e.path.as_str()) {
                return Err(ManifestError::Clash(e.path.clone()));
            }
        }
        // A file may not stand where another path needs a folder ("a" and "a/b").
        for p in self.files.iter().map(|e| &e.path).chain(&self.folders) {
            let mut at = 0;
            while let Some(i) = p[at..].find('/') {
                let parent = &p[..at + i];
                if files.contains(parent) {
                    return Err(ManifestError::Clash(parent.to_owned()));
                }
                at += i + 1;
            }
        }
        Ok(total)
    }
}

/// A batch and how far it has come.
#[derive(Debug)]
pub struct Batch {
    pub session: SessionId,
    /// The customer whose computer the batch comes from or goes to.
    pub customer: ParticipantId,
    /// Who uploads: the primary CSR (to the customer) or the customer's computer.
    pub uploader: ParticipantId,
    /// The `send` operation a computer fills this batch for.
    pub op: Option<u32>,
    pub direction: Direction,
    pub manifest: Manifest,
    pub total: u64,
    /// Which files are whole and checked.
    pub stored: Vec<bool>,
    /// Files being uploaded now (one upload per file at a time).
    pub writing: HashSet<usize>,
    /// The SHA-256 of each file sent in steps so far, and up to which byte, so a file sent
    /// in several requests is not read back to be checked.
    pub hashing: std::collections::HashMap<usize, (u64, sha2::Sha256)>,
    /// Bytes the uploader sent and the downloader fetched, for progress.
    pub received: u64,
    pub served: u64,
    pub touched: Instant,
}

impl Batch {
    pub fn complete(&self) -> bool {
        self.stored.iter().all(|s| *s)
    }

    /// The batch as both sides read it.
    pub fn view(&self, id: &str, have: impl Fn(usize) -> u64) -> Value {
        let files: Vec<Value> = self
            .manifest
            .files
            .iter()
            .enumerate()
            .map(|(i, e)| {
                json!({
                    "path": e.path, "size": e.size, "sha256": e.sha256,
                    "stored": self.stored[i],
                    "have": if self.stored[i] { e.size } else { have(i) },
                })
            })
            .collect();
        json!({
            "batch": id,
            "direction": self.direction.name(),
            "customer": self.customer,
            "files": files,
            "folders": self.manifest.folders,
            "total": self.total,
            "received": self.received,
            "served": self.served,
            "complete": self.complete(),
        })
    }
}

pub struct FileBatches {
    dir: PathBuf,
    batches: Mutex<HashMap<String, Batch>>,
}

impl FileBatches {
    /// Batches under `files_dir`/batches; what a previous run left there is removed.
    pub fn new(files_dir: &Path) -> std::io::Result<Self> {
        let dir = files_dir.join("batches");
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        Ok(Self {
            dir,
            batches: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Batch>> {
        // Each change is one whole step: still consistent after a panic.
        self.batches.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn batch_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    pub fn part_path(&self, id: &str, index: usize) -> PathBuf {
        self.dir.join(id).join(format!("{index}.part"))
    }

    pub fn path(&self, id: &str, index: usize) -> PathBuf {
        self.dir.join(id).join(index.to_string())
    }

    /// Registers a checked batch; refused when its session holds too many. Batches idle past
    /// [`IDLE_LIMIT`] are removed first.
    pub fn add(&self, id: &str, batch: Batch) -> Result<(), usize> {
        let now = Instant::now();
        self.discard(|_, b| now.duration_since(b.touched) > IDLE_LIMIT);
        let mut all = self.lock();
        let held = all.values().filter(|b| b.session == batch.session).count();
        if held >= MAX_SESSION_BATCHES {
            return Err(held);
        }
        all.insert(id.to_owned(), batch);
        Ok(())
    }

    /// Runs `f` on batch `id` of `session`, if there is one.
    pub fn with<T>(
        &self,
        session: SessionId,
        id: &str,
        f: impl FnOnce(&mut Batch) -> T,
    ) -> Option<T> {
        let mut all = self.lock();
        let b = all.get_mut(id).filter(|b| b.session == session)?;
        b.touched = Instant::now();
        Some(f(b))
    }

    /// The batch filled for operation `op` of `session`: its id, bytes received and total.
    pub fn for_op(&self, session: SessionId, op: u32) -> Option<(String, u64, u64)> {
        let all = self.lock();
        all.iter()
            .find(|(_, b)| b.session == session && b.op == Some(op))
            .map(|(id, b)| (id.clone(), b.received, b.total))
    }

    /// Removes every batch of `session` (it ended) and their files.
    pub fn clear_session(&self, session: SessionId) {
        self.discard(|_, b| b.session == session);
    }

    /// Removes batch `id` of `session` and its files; whether there was one.
    pub fn remove(&self, session: SessionId, id: &str) -> bool {
        self.discard(|k, b| k == id && b.session == session) > 0
    }

    /// Removes the batches `gone` picks, and their folders (outside the lock); how many.
    fn discard(&self, gone: impl Fn(&str, &Batch) -> bool) -> usize {
        let ids: Vec<String> = {
            let mut all = self.lock();
            let ids: Vec<String> = all
                .iter()
                .filter(|(k, b)| gone(k, b))
                .map(|(k, _)| k.clone())
                .collect();
            for k in &ids {
                all.remove(k);
            }
            ids
        };
        for id in &ids {
            let _ = std::fs::remove_dir_all(self.batch_dir(id));
        }
        ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, size: u64) -> Entry {
        Entry {
            path: path.into(),
            size,
            sha256: "0".repeat(64),
        }
    }

    #[test]
    fn a_batch_over_150_mb_is_refused_with_its_size() {
        let m = Manifest {
            files: vec![entry("a", 100_000_000), entry("b/c", 51_000_000)],
            folders: vec![],
        };
        assert_eq!(m.check(), Err(ManifestError::TooLarge(151_000_000)));
        assert_eq!(m.check().unwrap_err().code(), "batch_too_large");
        let ok = Manifest {
            files: vec![entry("a", 100_000_000), entry("b/c", 50_000_000)],
            folders: vec!["empty".into()],
        };
        assert_eq!(ok.check(), Ok(150_000_000));
    }

    #[test]
    fn escapes_clashes_and_bad_sums_are_refused() {
        let m = |files: Vec<Entry>, folders: Vec<&str>| Manifest {
            files,
            folders: folders.into_iter().map(String::from).collect(),
        };
        let code = |m: Manifest| m.check().unwrap_err().code();
        assert_eq!(code(m(vec![entry("../x", 1)], vec![])), "path_escapes");
        assert_eq!(code(m(vec![entry("/etc/x", 1)], vec![])), "path_escapes");
        assert_eq!(code(m(vec![], vec!["a/../../b"])), "path_escapes");
        assert_eq!(
            code(m(vec![entry("a", 1), entry("a/b", 1)], vec![])),
            "bad_path"
        );
        assert_eq!(code(m(vec![entry("a", 1)], vec!["a"])), "bad_path");
        assert_eq!(
            code(m(vec![entry("x", 1), entry("x", 2)], vec![])),
            "bad_path"
        );
        let mut bad = entry("y", 1);
        bad.sha256 = "ABC".into();
        assert_eq!(code(m(vec![bad], vec![])), "bad_sha256");
        assert_eq!(code(m(vec![], vec![])), "bad_batch");
        assert_eq!(
            m(vec![entry("Ünïcode/報告.txt", 0)], vec!["空"]).check(),
            Ok(0)
        );
    }
}
