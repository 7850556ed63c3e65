//! SPEC F2, advanced file transfer: what the primary CSR asks of a customer's computer's files
//! (through Tandem Helper) and what the helper answers. Paths are relative to the folder the
//! helper serves (the customer's home), `/`-separated, and checked here and again by the
//! helper: nothing may name a parent (`..`), the current folder, an absolute path or a NUL.

use serde::{Deserialize, Serialize};

/// Most bytes one batch moves, either way (SPEC F2: 150 MB).
pub const MAX_BATCH_BYTES: u64 = 150_000_000;
/// Most files in one batch.
pub const MAX_BATCH_FILES: usize = 10_000;
/// Most entries a folder listing carries; more are left out (and the listing says so).
pub const MAX_LISTED: usize = 5_000;
/// Longest path, in bytes of UTF-8.
pub const MAX_PATH_BYTES: usize = 4_096;
/// Longest name of one path component (what common file systems take).
pub const MAX_NAME_BYTES: usize = 255;
/// Most paths one `send` names.
pub const MAX_SEND_PATHS: usize = 100;
/// Longest status message a helper sends back.
pub const MAX_MESSAGE_CHARS: usize = 1_000;
/// Most operations waiting for a computer's answer per customer.
pub const MAX_PENDING_OPS: usize = 8;

/// An operation on the customer's computer's files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum FilesRequest {
    /// The folder's entries (`""`: the top).
    List {
        path: String,
    },
    MakeFolder {
        path: String,
    },
    /// A file, or a folder with all it holds.
    Delete {
        path: String,
    },
    /// A new name `to` for `path`, in the same folder.
    Rename {
        path: String,
        to: String,
    },
    /// Put the server's batch `batch` (the CSR's upload) into `folder`.
    Receive {
        batch: String,
        folder: String,
    },
    /// These files and folders to the CSR, through a batch the helper fills.
    Send {
        paths: Vec<String>,
    },
    /// Stop operation `target` (a transfer) and remove what it wrote.
    Cancel {
        target: u32,
    },
}

impl FilesRequest {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::List { .. } => "list",
            Self::MakeFolder { .. } => "make_folder",
            Self::Delete { .. } => "delete",
            Self::Rename { .. } => "rename",
            Self::Receive { .. } => "receive",
            Self::Send { .. } => "send",
            Self::Cancel { .. } => "cancel",
        }
    }

    /// Whether the request is well formed: safe paths, a plain new name, a batch id.
    pub fn check(&self) -> Result<(), PathError> {
        match self {
            Self::List { path } => check_path(path, true),
            Self::MakeFolder { path } | Self::Delete { path } => check_path(path, false),
            Self::Rename { path, to } => {
                check_path(path, false)?;
                check_name(to)
            }
            Self::Receive { batch, folder } => {
                check_batch_id(batch)?;
                check_path(folder, true)
            }
            Self::Send { paths } => {
                if paths.is_empty() || paths.len() > MAX_SEND_PATHS {
                    return Err(PathError::Count);
                }
                paths.iter().try_for_each(|p| check_path(p, false))
            }
            Self::Cancel { .. } => Ok(()),
        }
    }
}

/// One entry of a folder listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListedEntry {
    pub name: String,
    pub folder: bool,
    #[serde(default)]
    pub size: u64,
    /// Last change, in Unix milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<u64>,
}

/// How an operation ended on the computer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesResult {
    pub ok: bool,
    /// The customer said no in Tandem Helper's window.
    #[serde(default)]
    pub refused: bool,
    /// What happened, in words for the CSR.
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listing: Option<Vec<ListedEntry>>,
    /// The folder the listing is of: the one listed, or where the operation changed things
    /// (so the CSR sees the result without being asked again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder: Option<String>,
    /// The listing was cut at [`MAX_LISTED`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// `send`: the batch the helper filled, for the CSR to download.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
}

impl FilesResult {
    pub fn check(&self) -> Result<(), PathError> {
        if self.message.chars().count() > MAX_MESSAGE_CHARS {
            return Err(PathError::TooLong);
        }
        if let Some(l) = &self.listing {
            if l.len() > MAX_LISTED {
                return Err(PathError::Count);
            }
            l.iter().try_for_each(|e| check_name(&e.name))?;
        }
        if let Some(b) = &self.batch {
            check_batch_id(b)?;
        }
        if let Some(f) = &self.folder {
            check_path(f, true)?;
        }
        Ok(())
    }
}

/// Why a path or name is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("a path is relative to the shared folder: no leading '/'")]
    Absolute,
    #[error("a path may not name '..' or '.', or have empty parts")]
    Escapes,
    #[error("a name may not hold NUL or '/'")]
    BadCharacter,
    #[error("a path is at most {MAX_PATH_BYTES} bytes and a name at most {MAX_NAME_BYTES}")]
    TooLong,
    #[error("a name may not be empty")]
    Empty,
    #[error("too many entries")]
    Count,
    #[error("a batch id is 1 to 64 letters, digits and '-'")]
    BadBatch,
}

impl PathError {
    pub fn code(self) -> &'static str {
        match self {
            Self::Absolute | Self::Escapes => "path_escapes",
            Self::BadCharacter | Self::TooLong | Self::Empty => "bad_path",
            Self::Count => "too_many_paths",
            Self::BadBatch => "bad_batch",
        }
    }
}

/// A relative path: `/`-separated names, each checked by [`check_name`]; `""` only where
/// `top_allowed` (the folder served itself).
pub fn check_path(path: &str, top_allowed: bool) -> Result<(), PathError> {
    if path.is_empty() {
        return if top_allowed {
            Ok(())
        } else {
            Err(PathError::Empty)
        };
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong);
    }
    if path.starts_with('/') {
        return Err(PathError::Absolute);
    }
    path.split('/').try_for_each(check_name)
}

/// One name: not empty, not `.` or `..`, no `/` or NUL, at most [`MAX_NAME_BYTES`].
pub fn check_name(name: &str) -> Result<(), PathError> {
    match name {
        "" => Err(PathError::Escapes),
        "." | ".." => Err(PathError::Escapes),
        n if n.len() > MAX_NAME_BYTES => Err(PathError::TooLong),
        n if n.contains(['/', '\0']) => Err(PathError::BadCharacter),
        _ => Ok(()),
    }
}

pub fn check_batch_id(id: &str) -> Result<(), PathError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok { Ok(()) } else { Err(PathError::BadBatch) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_odd_names_are_refused_and_any_unicode_name_passes() {
        for bad in ["../x", "a/../b", "/etc/passwd", "a//b", "a/./b", "a/", ".."] {
            assert_eq!(
                check_path(bad, false).map_err(PathError::code),
                Err("path_escapes"),
                "{bad}"
            );
        }
        assert_eq!(check_path("a\0b", false), Err(PathError::BadCharacter));
        assert_eq!(check_path("", false), Err(PathError::Empty));
        assert_eq!(check_path("", true), Ok(()));
        assert_eq!(check_path(&"x".repeat(256), false), Err(PathError::TooLong));
        for good in [
            "Документы/отчёт.txt",
            "日本語/ファイル",
            "a b/c\\d",
            "emoji 🎉.txt",
            ".hidden",
        ] {
            assert_eq!(check_path(good, false), Ok(()), "{good}");
        }
        assert_eq!(check_name("a/b"), Err(PathError::BadCharacter));
    }

    #[test]
    fn requests_are_checked_whole() {
        let send_none = FilesRequest::Send { paths: vec![] };
        assert_eq!(send_none.check(), Err(PathError::Count));
        let rename_out = FilesRequest::Rename {
            path: "a".into(),
            to: "../b".into(),
        };
        assert_eq!(rename_out.check(), Err(PathError::BadCharacter));
        let receive = FilesRequest::Receive {
            batch: "../../x".into(),
            folder: "".into(),
        };
        assert_eq!(receive.check(), Err(PathError::BadBatch));
        let wire: FilesRequest =
            serde_json::from_str(r#"{"op":"rename","path":"a.txt","to":"b.txt"}"#).unwrap();
        assert_eq!(wire.check(), Ok(()));
        assert!(serde_json::from_str::<FilesRequest>(r#"{"op":"format_disk"}"#).is_err());
    }
}
