//! A file sent as the raw body of a request (`application/octet-stream`), as recording uploads,
//! published files and the computer's files are: what they do with a body they refuse, with a
//! file they do not keep, and to make one they keep durable.

use std::path::PathBuf;
use std::time::Duration;

use axum::body::BodyDataStream;
use axum::http::{HeaderMap, header};
use futures_util::StreamExt;

use crate::problem::Problem;

/// What is read and dropped of a refused upload before answering, so that a client still
/// sending sees the refusal instead of a reset connection; anything larger is cut off.
const DRAIN_BYTES: usize = 16 * 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// The body is declared as `application/octet-stream`.
pub fn is_octet_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/octet-stream"))
}

/// The body stopped before its end (the client went away, or was too slow).
pub fn broke_off(e: axum::Error) -> Problem {
    Problem::bad_request("upload_interrupted", format!("the upload broke off: {e}"))
}

/// The length the client declared, if any.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
}

/// A file removed when dropped unless kept, so a refused, failed or abandoned (client gone,
/// handler dropped) upload leaves nothing behind.
pub struct Scratch(pub Option<PathBuf>);

impl Scratch {
    /// A new file at `path` (never one that exists), removed when dropped unless kept.
    pub async fn create(path: &std::path::Path) -> std::io::Result<(Self, tokio::fs::File)> {
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .await?;
        Ok((Self(Some(path.to_owned())), file))
    }

    pub fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Makes what was written to `file` durable. tokio's file writes in the background: flush
/// reports the last write's failure (a full disk), which `sync_all` alone would not, and the
/// file would be kept short while the upload is answered as stored.
pub async fn persist(file: &mut tokio::fs::File) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    file.flush().await?;
    file.sync_all().await
}

/// Reads and drops the rest of a refused upload, within limits (see `DRAIN_BYTES`).
pub async fn drain(stream: &mut BodyDataStream) {
    let mut left = DRAIN_BYTES;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while let Some(Ok(chunk)) = stream.next().await {
            left = left.saturating_sub(chunk.len());
            if left == 0 {
                break;
            }
        }
    })
    .await;
}

/// Refuses before the body is read: a client waiting for `100 Continue` has sent nothing yet
/// and gets the answer at once (reading would make the server send the `100 Continue` it should
/// not); any other has its body drained.
pub async fn refuse_unread(
    headers: &HeaderMap,
    stream: &mut BodyDataStream,
    p: Problem,
) -> Problem {
    let waiting = headers
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if !waiting {
        drain(stream).await;
    }
    p
}
