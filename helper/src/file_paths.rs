//! SPEC F2: what a CSR may ask of this computer's files, as the server relays it, and the
//! helper's own check of every path in it. The helper serves one folder (the user's home by
//! default); paths are relative to it and `/`-separated. The server checks them too, but the
//! helper trusts no server with the customer's files: nothing here may name a parent, the
//! current folder, an absolute path or a NUL. Symbolic links are refused when the path is
//! resolved on disk ([`crate::file_ops`]).

use serde::Deserialize;

/// Most bytes one batch moves, either way (SPEC F2: 150 MB).
pub const MAX_BATCH_BYTES: u64 = 150_000_000;
/// Longest name of one path component.
pub const MAX_NAME_BYTES: usize = 255;
/// Longest path.
pub const MAX_PATH_BYTES: usize = 4_096;

/// An operation on this computer's files, as `computer_files_requested` carries it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum FilesRequest {
    List {
        path: String,
    },
    MakeFolder {
        path: String,
    },
    Delete {
        path: String,
    },
    Rename {
        path: String,
        to: String,
    },
    /// Put the server's batch into `folder`.
    Receive {
        batch: String,
        folder: String,
    },
    /// These files and folders to the CSR.
    Send {
        paths: Vec<String>,
    },
    /// Stop operation `target` and remove what it wrote.
    Cancel {
        target: u64,
    },
}

impl FilesRequest {
    /// Whether every path in it is one this helper serves.
    pub fn check(&self) -> Result<(), PathRefused> {
        match self {
            Self::List { path } => check_path(path, true),
            Self::MakeFolder { path } | Self::Delete { path } => check_path(path, false),
            Self::Rename { path, to } => {
                check_path(path, false)?;
                check_name(to)
            }
            Self::Receive { batch, folder } => {
                let id_ok = !batch.is_empty()
                    && batch.len() <= 64
                    && batch
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-');
                if !id_ok {
                    return Err(PathRefused::BadName);
                }
                check_path(folder, true)
            }
            Self::Send { paths } => {
                if paths.is_empty() {
                    return Err(PathRefused::Empty);
                }
                paths.iter().try_for_each(|p| check_path(p, false))
            }
            Self::Cancel { .. } => Ok(()),
        }
    }

    /// What the customer is asked about, in their words (after "… asks to"). Every path is
    /// named, and characters that could make the question say something else (line breaks,
    /// other controls, bidirectional overrides) are shown as codes.
    pub fn words(&self) -> String {
        let shown = |p: &str| {
            if p.is_empty() {
                "your home folder".to_owned()
            } else {
                format!("\"{}\"", visible(p))
            }
        };
        match self {
            Self::List { path } => format!("see what is in {}", shown(path)),
            Self::MakeFolder { path } => format!("make a new folder {}", shown(path)),
            Self::Delete { path } => format!("delete {} and all it holds", shown(path)),
            Self::Rename { path, to } => {
                format!("rename {} to \"{}\"", shown(path), visible(to))
            }
            Self::Receive { folder, .. } => {
                format!("copy files from their computer into {}", shown(folder))
            }
            Self::Send { paths } => {
                let names: Vec<String> = paths.iter().map(|p| shown(p)).collect();
                format!("copy {} to their computer", names.join(", "))
            }
            Self::Cancel { target } => format!("cancel file operation {target}"),
        }
    }
}

/// `name` with controls and bidirectional formatting characters shown as `\u{…}`.
pub fn visible(name: &str) -> String {
    name.chars()
        .map(|c| {
            let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
            if c.is_control() || bidi {
                format!("\\u{{{:x}}}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Why a path is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathRefused {
    #[error("the path leaves the shared folder (absolute, '..', '.' or an empty part)")]
    Escapes,
    #[error("a name may not hold NUL or '/', or be longer than {MAX_NAME_BYTES} bytes")]
    BadName,
    #[error("the path is longer than {MAX_PATH_BYTES} bytes")]
    TooLong,
    #[error("no path given")]
    Empty,
    #[error("the path goes through a symbolic link, which is not followed")]
    Symlink,
}

/// A relative path of checked names; `""` (the shared folder itself) only if `top_allowed`.
pub fn check_path(path: &str, top_allowed: bool) -> Result<(), PathRefused> {
    if path.is_empty() {
        return if top_allowed {
            Ok(())
        } else {
            Err(PathRefused::Empty)
        };
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(PathRefused::TooLong);
    }
    if path.starts_with('/') {
        return Err(PathRefused::Escapes);
    }
    path.split('/').try_for_each(check_name)
}

pub fn check_name(name: &str) -> Result<(), PathRefused> {
    match name {
        "" | "." | ".." => Err(PathRefused::Escapes),
        n if n.len() > MAX_NAME_BYTES || n.contains(['/', '\0']) => Err(PathRefused::BadName),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_helper_refuses_escapes_whatever_the_server_let_through() {
        for bad in ["../etc", "a/../../b", "/etc/shadow", "a//b", "./a", "a/.."] {
            assert_eq!(check_path(bad, false), Err(PathRefused::Escapes), "{bad}");
        }
        let rename = FilesRequest::Rename {
            path: "a".into(),
            to: "../../.bashrc".into(),
        };
        assert_eq!(rename.check(), Err(PathRefused::BadName));
        let receive = FilesRequest::Receive {
            batch: "../x".into(),
            folder: String::new(),
        };
        assert_eq!(receive.check(), Err(PathRefused::BadName));
        assert_eq!(check_path("Über/日本/🎉 x.txt", false), Ok(()));
    }

    #[test]
    fn the_customer_reads_what_is_asked() {
        let r: FilesRequest =
            serde_json::from_str(r#"{"op":"delete","path":"Old/report.pdf"}"#).unwrap();
        assert_eq!(r.words(), "delete \"Old/report.pdf\" and all it holds");
        let r: FilesRequest = serde_json::from_str(r#"{"op":"list","path":""}"#).unwrap();
        assert_eq!(r.words(), "see what is in your home folder");
        // A name cannot make the question say something else.
        let r = FilesRequest::Delete {
            path: "a\nAllow? yes\u{202e}txt.exe".into(),
        };
        assert_eq!(
            r.words(),
            "delete \"a\\u{a}Allow? yes\\u{202e}txt.exe\" and all it holds"
        );
        let many = FilesRequest::Send {
            paths: (0..7).map(|i| format!("f{i}")).collect(),
        };
        assert!(many.words().contains("\"f6\""), "every path is named");
    }
}
