//! SPEC R4 "upload a recording": an ARF file as the raw body, streamed to disk within the size
//! limit and the account's quota, then read through and checked against the limits that keep
//! its export bounded (length, gaps, picture size) before it is accepted. A refused upload is
//! a problem document with a stable code, and nothing of it is kept. The quota counts the
//! uploads under way ([`quota`]), so uploads at once cannot overshoot it together.

pub mod quota;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use futures_util::StreamExt;
use metrics::counter;
use serde::Deserialize;
use tandem_actors::session::unix_now;
use tandem_arf::ArfError;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use self::quota::{Over, Quota};
use super::{check_name, load, shown};
use crate::http::upload_body::{
    Scratch, broke_off, declared_length, drain, is_octet_stream, persist, refuse_unread,
};
use crate::http::{ApiJson, AppState, Caller};
use crate::problem::Problem;
use crate::store::{NewRecording, RecordingStatus};

/// The name of an upload that was not given one.
const UPLOAD_NAME: &str = "Uploaded recording";
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    #[serde(default)]
    name: Option<String>,
}

/// A write of an upload failed: a full disk (or quota) is the server's to fix and is said so
/// (507), the upload is not kept, and anything else is an internal fault.
fn not_stored(e: std::io::Error) -> Problem {
    if crate::problem::is_disk_full(&e) {
        tracing::warn!(error = %e, "an upload was refused: the recordings disk is full");
        refused(Problem::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "insufficient_storage",
            "the server's disk is full; the upload was not kept",
        ))
    } else {
        Problem::internal(e)
    }
}

/// Counts a refusal by its code (`tandem_uploads_refused_total`).
fn refused(p: Problem) -> Problem {
    counter!(crate::metrics::UPLOADS_REFUSED, "code" => p.code.clone()).increment(1);
    p
}

fn too_large(max: u64) -> Problem {
    refused(Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("recordings are at most {max} bytes"),
    ))
}

/// An upload that does not fit in its account's quota. RFC 4331 answers a quota with 507, as
/// a full disk: the server will not store it.
fn over_quota(Over(usage): Over, quota: Quota) -> Problem {
    refused(Problem::new(
        StatusCode::INSUFFICIENT_STORAGE,
        "upload_quota_exceeded",
        format!(
            "your uploads hold {} bytes in {} files (uploads under way included), and an account's uploads may hold {} bytes in {} files; delete some to upload more",
            usage.bytes, usage.files, quota.max_bytes, quota.max_files
        ),
    ))
}

/// An ARF file as the raw body (`application/octet-stream`), streamed to disk, then read
/// through to check it. A damaged file is refused with the reader's code, one over the limits
/// with the limit's, and removed. An accepted one is `processing`, owned by the caller.
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<UploadQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, Problem> {
    let Query(q) = query?;
    let name = q
        .name
        .as_deref()
        .map(check_name)
        .transpose()?
        .unwrap_or(UPLOAD_NAME)
        .to_string();
    if !is_octet_stream(&headers) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the recording as application/octet-stream",
        ));
    }
    let config = &state.config.recording;
    let max = config.max_upload_bytes;
    let quota = Quota {
        max_bytes: config.upload_quota_bytes,
        max_files: config.upload_quota_files,
        max_upload: max,
    };
    let mut stream = body.into_data_stream();
    let declared = declared_length(&headers);
    if declared.is_some_and(|n| n > max) {
        return Err(refuse_unread(&headers, &mut stream, too_large(max)).await);
    }
    let owner = caller.0.id;
    let reserved = state
        .upload_room
        .reserve(owner, quota, declared, state.store.upload_usage(owner))
        .await?;
    let reservation = match reserved {
        Ok(r) => r,
        Err(over) => {
            return Err(refuse_unread(&headers, &mut stream, over_quota(over, quota)).await);
        }
    };

    let dir = &config.dir;
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| Problem::internal(format!("creating {}: {e}", dir.display())))?;
    let id = Uuid::new_v4();
    let part_path = dir.join(format!("upload-{id}.part"));
    let (part, mut file) = Scratch::create(&part_path)
        .await
        .map_err(|e| Problem::internal(format!("creating {}: {e}", part_path.display())))?;
    let mut written: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(broke_off)?;
        written += chunk.len() as u64;
        if written > max {
            drain(&mut stream).await;
            return Err(too_large(max));
        }
        // Only a body of unknown length can outgrow its room: it took all there was.
        if let Err(over) = reservation.fits(written) {
            drain(&mut stream).await;
            return Err(over_quota(over, quota));
        }
        file.write_all(&chunk).await.map_err(not_stored)?;
    }
    persist(&mut file).await.map_err(not_stored)?;
    drop(file);

    let checked = part_path.clone();
    let limits = config.upload_limits();
    let summary = tokio::task::spawn_blocking(move || tandem_arf::inspect_within(checked, &limits))
        .await
        .map_err(Problem::internal)?;
    let summary = match summary {
        Ok(s) => s,
        // Reading a file we just wrote failed for a reason of our own, not of the upload's.
        Err(ArfError::Io(e))
            if !matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData
            ) =>
        {
            return Err(Problem::internal(e));
        }
        Err(ArfError::OverLimit(e)) => {
            return Err(refused(Problem::unprocessable(
                e.code(),
                format!("this recording is over the server's limits: {e}"),
            )));
        }
        Err(e) => {
            return Err(refused(Problem::unprocessable(
                "invalid_recording",
                format!("this is not a readable ARF recording: {e} ({})", e.code()),
            )));
        }
    };

    let arf_path = dir.join(format!("{id}.arf"));
    tokio::fs::rename(&part_path, &arf_path)
        .await
        .map_err(Problem::internal)?;
    part.keep();
    let placed = Scratch(Some(arf_path.clone()));
    let now = unix_now();
    let duration_ms = i64::try_from(summary.duration_us / 1000).unwrap_or(i64::MAX);
    let arf_bytes = i64::try_from(written).unwrap_or(i64::MAX);
    let new = NewRecording {
        id,
        session_id: None,
        owner: caller.0.id,
        name,
        arf_path,
        created_at: now,
    };
    // In a task of its own, so a client that goes away now cannot leave a row without its file
    // or a file without its row.
    let settling = state.clone();
    tokio::spawn(async move {
        let room = &settling.upload_room;
        let store = &settling.store;
        room.settle(reservation, async {
            store.create_recording(new).await?;
            let finished = store
                .finish_recording(
                    id,
                    now,
                    duration_ms,
                    arf_bytes,
                    RecordingStatus::Processing,
                    None,
                )
                .await;
            if finished.is_err() {
                let _ = store.delete_recording(id).await;
            } else {
                placed.keep();
            }
            finished
        })
        .await
    })
    .await
    .map_err(Problem::internal)??;
    let progress = state.exports.progress_now();
    let created = load(&state, id).await?;
    // It stays `processing` until the exporter, woken now, has made its MP4.
    state.exports.wake();
    Ok((StatusCode::CREATED, ApiJson(shown(&progress, created))))
}
