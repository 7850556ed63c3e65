//! SPEC F2 on this computer's disk: listing, new folder, delete, rename, gathering what is sent
//! and placing what is received, all inside the folder the helper serves ([`Root`]). Plain
//! blocking IO; the shell runs it off the media loop ([`crate::connection`]'s files thread).
//!
//! Nothing is presented half-written: a received file is written beside its place as a hidden
//! part file of its own (`.tandem-<process>-<n>.part`) and renamed into place only whole and
//! checked, never over an existing one; a transfer that fails or is cancelled removes
//! everything it wrote ([`Placing`]).

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use sha2::Digest as _;

use crate::file_paths::{MAX_BATCH_BYTES, PathRefused, check_name, check_path};

/// Most entries a listing carries (the server takes no more).
pub const MAX_LISTED: usize = 5_000;
/// Most files one batch carries.
pub const MAX_BATCH_FILES: usize = 10_000;
/// `TANDEM_HELPER_FILES_ROOT`: the folder the helper serves (default: the user's home).
pub const ROOT_ENV: &str = "TANDEM_HELPER_FILES_ROOT";

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{0}")]
    Path(#[from] PathRefused),
    #[error("\"{0}\" does not exist")]
    NotFound(String),
    #[error("\"{0}\" already exists; rename or delete it first")]
    Exists(String),
    #[error("\"{0}\" is not a folder")]
    NotAFolder(String),
    #[error("this computer's disk is full; nothing of this transfer was kept")]
    DiskFull,
    #[error(
        "this selection holds {0} bytes; a transfer is at most {MAX_BATCH_BYTES} bytes (150 MB)"
    )]
    TooLarge(u64),
    #[error("this selection holds more than {MAX_BATCH_FILES} files and folders")]
    TooMany,
    #[error("\"{0}\" changed while it was read; send it again")]
    Changed(String),
    #[error("\"{0}\" could not be read or written: {1}")]
    Io(String, String),
}

impl FileError {
    fn io(rel: &str, e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::NotFound => Self::NotFound(rel.to_owned()),
            std::io::ErrorKind::AlreadyExists => Self::Exists(rel.to_owned()),
            std::io::ErrorKind::StorageFull => Self::DiskFull,
            _ if e.raw_os_error() == Some(28) => Self::DiskFull,
            _ => Self::Io(rel.to_owned(), e.to_string()),
        }
    }
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Listed {
    pub name: String,
    pub folder: bool,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modified: Option<u64>,
}

/// A file to send: where it goes in the batch and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub rel: String,
    pub path: PathBuf,
    pub size: u64,
}

/// What a `send` gathers.
#[derive(Debug, Default)]
pub struct Gathered {
    pub files: Vec<Outgoing>,
    pub folders: Vec<String>,
    /// Symbolic links and special files, not sent.
    pub skipped: Vec<String>,
    pub total: u64,
}

/// The folder the helper serves.
#[derive(Debug, Clone)]
pub struct Root(PathBuf);

impl Root {
    pub fn new(dir: PathBuf) -> Self {
        Self(dir)
    }

    /// [`ROOT_ENV`], else `$HOME`.
    pub fn from_env() -> Option<Self> {
        std::env::var_os(ROOT_ENV)
            .or_else(|| std::env::var_os("HOME"))
            .map(|d| Self(PathBuf::from(d)))
    }

    /// `rel` on disk, after checking its names and that no part of it that exists is a
    /// symbolic link (the last part may not exist yet).
    pub fn resolve(&self, rel: &str, top_allowed: bool) -> Result<PathBuf, FileError> {
        check_path(rel, top_allowed)?;
        let mut at = self.0.clone();
        if rel.is_empty() {
            return Ok(at);
        }
        for part in rel.split('/') {
            at.push(part);
            match fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() => return Err(PathRefused::Symlink.into()),
                Ok(_) => {}
                Err(_) => {
                    // Nothing further exists, so nothing further can be a link (yet).
                    return Ok(self.0.join(rel));
                }
            }
        }
        Ok(at)
    }

    /// The folder's entries, folders first then by name; symbolic links are left out.
    pub fn list(&self, rel: &str) -> Result<(Vec<Listed>, bool), FileError> {
        let dir = self.resolve(rel, true)?;
        let entries = fs::read_dir(&dir).map_err(|e| match e.raw_os_error() {
            Some(20) => FileError::NotAFolder(rel.to_owned()),
            _ => FileError::io(rel, e),
        })?;
        let mut out = Vec::new();
        let mut truncated = false;
        for entry in entries.flatten() {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let Ok(meta) = entry.metadata() else { continue };
            if meta.file_type().is_symlink() || check_name(&name).is_err() {
                continue;
            }
            if out.len() == MAX_LISTED {
                truncated = true;
                break;
            }
            out.push(Listed {
                name,
                folder: meta.is_dir(),
                size: if meta.is_dir() { 0 } else { meta.len() },
                modified: meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map(|d| d.as_millis() as u64),
            });
        }
        out.sort_by(|a, b| b.folder.cmp(&a.folder).then_with(|| a.name.cmp(&b.name)));
        Ok((out, truncated))
    }

    pub fn make_folder(&self, rel: &str) -> Result<(), FileError> {
        let path = self.resolve(rel, false)?;
        fs::create_dir(&path).map_err(|e| FileError::io(rel, e))
    }

    /// A file, or a folder with all it holds (links inside are removed, never followed).
    pub fn delete(&self, rel: &str) -> Result<(), FileError> {
        let path = self.resolve(rel, false)?;
        let meta = fs::symlink_metadata(&path).map_err(|e| FileError::io(rel, e))?;
        if meta.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        }
        .map_err(|e| FileError::io(rel, e))
    }

    /// `rel` gets the name `to` in the same folder; never over an existing entry.
    pub fn rename(&self, rel: &str, to: &str) -> Result<(), FileError> {
        check_name(to)?;
        let from = self.resolve(rel, false)?;
        fs::symlink_metadata(&from).map_err(|e| FileError::io(rel, e))?;
        let target = from.with_file_name(to);
        rename_new(&from, &target).map_err(|e| FileError::io(to, e))
    }

    /// The files and folders under `paths`, each named in the batch from its own name down
    /// ("Photos/2024/a.jpg" for the folder "Pictures/Photos"). At most 150 MB.
    pub fn gather(&self, paths: &[String]) -> Result<Gathered, FileError> {
        let mut g = Gathered::default();
        for rel in paths {
            let path = self.resolve(rel, false)?;
            let meta = fs::symlink_metadata(&path).map_err(|e| FileError::io(rel, e))?;
            let name = rel.rsplit('/').next().unwrap_or(rel).to_owned();
            add(&mut g, &path, &meta, name)?;
        }
        if g.files.len() + g.folders.len() > MAX_BATCH_FILES {
            return Err(FileError::TooMany);
        }
        Ok(g)
    }

    /// Where a batch goes: an existing folder.
    pub fn target_folder(&self, rel: &str) -> Result<PathBuf, FileError> {
        let path = self.resolve(rel, true)?;
        let meta = fs::metadata(&path).map_err(|e| FileError::io(rel, e))?;
        if !meta.is_dir() {
            return Err(FileError::NotAFolder(rel.to_owned()));
        }
        Ok(path)
    }
}

fn add(g: &mut Gathered, path: &Path, meta: &fs::Metadata, rel: String) -> Result<(), FileError> {
    let kind = meta.file_type();
    if kind.is_symlink() || !(kind.is_file() || kind.is_dir()) {
        g.skipped.push(rel);
        return Ok(());
    }
    if kind.is_file() {
        g.total = g.total.saturating_add(meta.len());
        if g.total > MAX_BATCH_BYTES {
            return Err(FileError::TooLarge(g.total));
        }
        g.files.push(Outgoing {
            rel,
            path: path.to_owned(),
            size: meta.len(),
        });
        return Ok(());
    }
    g.folders.push(rel.clone());
    if g.folders.len() + g.files.len() > MAX_BATCH_FILES {
        return Err(FileError::TooMany);
    }
    let mut entries: Vec<_> = fs::read_dir(path)
        .map_err(|e| FileError::io(&rel, e))?
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let Ok(name) = entry.file_name().into_string() else {
            g.skipped
                .push(format!("{rel}/{}", entry.file_name().to_string_lossy()));
            continue;
        };
        let child = format!("{rel}/{name}");
        let meta = entry.metadata().map_err(|e| FileError::io(&child, e))?;
        add(g, &entry.path(), &meta, child)?;
    }
    Ok(())
}

/// Renames without replacing what is there (`RENAME_NOREPLACE` where the system has it).
fn rename_new(from: &Path, to: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        rustix::fs::renameat_with(
            rustix::fs::CWD,
            from,
            rustix::fs::CWD,
            to,
            rustix::fs::RenameFlags::NOREPLACE,
        )
        .map_err(std::io::Error::from)
    }
    #[cfg(not(target_os = "linux"))]
    {
        if fs::symlink_metadata(to).is_ok() {
            return Err(std::io::ErrorKind::AlreadyExists.into());
        }
        fs::rename(from, to)
    }
}

/// Hex SHA-256 of a file, read in 1 MiB steps.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = File::open(path)?;
    let mut hash = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(hex(&hash.finalize()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A batch being placed into a folder: what it made so far, removed unless it is finished.
#[derive(Debug)]
pub struct Placing {
    into: PathBuf,
    /// Folders and files made, in order.
    made: Vec<PathBuf>,
    /// The file being written now.
    part: Option<PathBuf>,
    finished: bool,
}

impl Placing {
    /// Checks that nothing the batch names at its top exists in `into` already.
    pub fn begin(into: PathBuf, files: &[String], folders: &[String]) -> Result<Self, FileError> {
        for rel in files.iter().chain(folders) {
            check_path(rel, false)?;
            let top = rel.split('/').next().unwrap_or(rel);
            if fs::symlink_metadata(into.join(top)).is_ok() {
                return Err(FileError::Exists(top.to_owned()));
            }
        }
        Ok(Self {
            into,
            made: Vec::new(),
            part: None,
            finished: false,
        })
    }

    /// Makes `rel`'s folder and its parents inside the target.
    pub fn folder(&mut self, rel: &str) -> Result<(), FileError> {
        let mut at = self.into.clone();
        for part in rel.split('/') {
            at.push(part);
            match fs::create_dir(&at) {
                Ok(()) => self.made.push(at.clone()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // Only one this batch made may be reused, and never through a link.
                    let m = fs::symlink_metadata(&at).map_err(|e| FileError::io(rel, e))?;
                    if !m.is_dir() || !self.made.contains(&at) {
                        return Err(FileError::Exists(rel.to_owned()));
                    }
                }
                Err(e) => return Err(FileError::io(rel, e)),
            }
        }
        Ok(())
    }

    /// Opens a new hidden part file for `rel` (its folders made first), named for this
    /// process and this file alone: two transfers never write into one, and a name of any
    /// length fits.
    pub fn open(&mut self, rel: &str) -> Result<File, FileError> {
        if let Some((parent, _)) = rel.rsplit_once('/') {
            self.folder(parent)?;
        }
        let part = self.part_path(rel);
        let f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&part)
            .map_err(|e| FileError::io(rel, e))?;
        self.part = Some(part);
        Ok(f)
    }

    fn part_path(&self, rel: &str) -> PathBuf {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.into
            .join(rel)
            .with_file_name(format!(".tandem-{}-{n}.part", std::process::id()))
    }

    /// The part file is whole and checked: it takes its name.
    pub fn place(&mut self, rel: &str, mut file: File) -> Result<(), FileError> {
        file.flush().map_err(|e| FileError::io(rel, e))?;
        file.sync_all().map_err(|e| FileError::io(rel, e))?;
        drop(file);
        let part = self
            .part
            .clone()
            .ok_or_else(|| FileError::Io(rel.to_owned(), "no part file".into()))?;
        let target = self.into.join(rel);
        rename_new(&part, &target).map_err(|e| FileError::io(rel, e))?;
        self.part = None;
        self.made.push(target);
        Ok(())
    }

    /// Everything went in.
    pub fn finish(mut self) -> usize {
        self.finished = true;
        self.made.len()
    }
}

impl Drop for Placing {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if let Some(p) = self.part.take() {
            let _ = fs::remove_file(p);
        }
        for p in self.made.iter().rev() {
            if fs::symlink_metadata(p).is_ok_and(|m| m.is_dir()) {
                let _ = fs::remove_dir(p);
            } else {
                let _ = fs::remove_file(p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tandem-file-ops-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn links_are_never_followed_out_of_the_served_folder() {
        let d = scratch("links");
        let outside = scratch("outside");
        fs::write(outside.join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(&outside, d.join("out")).unwrap();
        let root = Root::new(d.clone());
        assert!(matches!(
            root.list("out"),
            Err(FileError::Path(PathRefused::Symlink))
        ));
        assert!(matches!(
            root.delete("out/secret"),
            Err(FileError::Path(PathRefused::Symlink))
        ));
        let (listed, _) = root.list("").unwrap();
        assert!(listed.is_empty(), "links are not listed: {listed:?}");
        assert!(matches!(
            root.gather(&["out".into()]),
            Err(FileError::Path(PathRefused::Symlink))
        ));
        fs::create_dir(d.join("dir")).unwrap();
        std::os::unix::fs::symlink(&outside, d.join("dir/inner")).unwrap();
        let g = root.gather(&["dir".into()]).unwrap();
        assert_eq!(g.skipped, vec!["dir/inner".to_string()]);
        assert!(g.files.is_empty());
        assert!(outside.join("secret").exists());
        let _ = fs::remove_dir_all(&d);
        let _ = fs::remove_dir_all(&outside);
    }

    #[test]
    fn a_placing_that_is_not_finished_leaves_nothing() {
        let d = scratch("placing");
        let files = vec!["A/b/c.txt".to_string(), "top.bin".to_string()];
        let mut p = Placing::begin(d.clone(), &files, &["A/empty".to_string()]).unwrap();
        p.folder("A/empty").unwrap();
        let mut f = p.open("A/b/c.txt").unwrap();
        f.write_all(b"hello").unwrap();
        p.place("A/b/c.txt", f).unwrap();
        let mut f = p.open("top.bin").unwrap();
        f.write_all(b"half").unwrap();
        let hidden: Vec<String> = fs::read_dir(&d)
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(".part"))
            .collect();
        assert_eq!(hidden.len(), 1, "{hidden:?}");
        assert!(hidden[0].starts_with(".tandem-"));
        assert!(
            !d.join("top.bin").exists(),
            "not presented before it is whole"
        );
        drop(f);
        drop(p);
        assert_eq!(fs::read_dir(&d).unwrap().count(), 0, "all removed");
        fs::create_dir(d.join("A")).unwrap();
        assert!(matches!(
            Placing::begin(d.clone(), &files, &[]),
            Err(FileError::Exists(n)) if n == "A"
        ));
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn rename_never_replaces() {
        let d = scratch("rename");
        fs::write(d.join("a"), b"a").unwrap();
        fs::write(d.join("b"), b"b").unwrap();
        let root = Root::new(d.clone());
        assert!(matches!(root.rename("a", "b"), Err(FileError::Exists(_))));
        assert_eq!(fs::read(d.join("b")).unwrap(), b"b");
        root.rename("a", "ä 日本.txt").unwrap();
        assert_eq!(fs::read(d.join("ä 日本.txt")).unwrap(), b"a");
        let _ = fs::remove_dir_all(&d);
    }
}
