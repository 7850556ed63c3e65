//! SPEC F2, advanced file transfer through Tandem Helper. The CSR's console and the helper both
//! use their participant token (`Authorization: Bearer`).
//!
//! Operations (the session's rules decide who may; the helper asks the customer):
//! - `POST /api/sessions/{id}/computer-files` (the primary CSR) `{op: …}`: 202 `{op}`; the
//!   selected customer's computer gets `computer_files_requested` and answers with
//! - `POST /api/sessions/{id}/computer-files/{op}` (that computer) `{ok, message, …}`: 204;
//!   everyone on staff gets `computer_files_done`. `GET` there (a CSR): how far a `send` is.
//!
//! Batches (the bytes, streamed through the server, see [`crate::file_batches`]):
//! - `POST /api/sessions/{id}/file-batches` `{files: [{path, size, sha256}], folders, op?}`:
//!   201 `{batch}`. The primary CSR makes one for the customer's computer; the computer makes
//!   one for a `send` operation (`op`), for staff.
//! - `PUT /api/sessions/{id}/file-batches/{batch}/{index}?offset=N`: the uploader sends file
//!   `index` from byte N (what `GET` of the batch says it has), `application/octet-stream`.
//! - `GET /api/sessions/{id}/file-batches/{batch}/{index}`: the other side fetches a whole,
//!   checked file, with `Range: bytes=N-` to resume.
//! - `GET /api/sessions/{id}/file-batches/{batch}`: how far it has come, file by file;
//!   `GET …/{batch}/progress`: the bytes only.
//! - `DELETE /api/sessions/{id}/file-batches/{batch}`: done or cancelled; its files are removed.

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tandem_actors::computer_files::{FilesRequest, FilesResult};
use tandem_actors::ids::ParticipantId;
use tandem_actors::protocol::Role;
use tandem_actors::session::SessionMsg;
use tandem_actors::session::rules::Refusal;
use tandem_actors::session_registry::SessionHandle;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};
use tokio_util::io::ReaderStream;

use super::sessions::live_by_id;
use super::upload_body::{broke_off, is_octet_stream, persist, refuse_unread};
use super::{ApiJson, AppState, ParticipantCaller, ask};
use crate::file_batches::{Batch, Direction, Manifest};
use crate::problem::Problem;

/// Largest manifest: 10,000 entries of long Unicode paths.
pub const MAX_MANIFEST_BYTES: usize = 8 * 1024 * 1024;
/// Largest answer from a computer: a listing of 5,000 long names.
pub const MAX_RESULT_BYTES: usize = 4 * 1024 * 1024;

async fn caller_in(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
) -> Result<(ParticipantCaller, SessionHandle), Problem> {
    let caller = ParticipantCaller::in_session(state, headers, id, "file transfer").await?;
    let handle = live_by_id(state, caller.session)
        .await?
        .ok_or_else(|| Problem::new(StatusCode::GONE, "session_ended", "that session has ended"))?;
    Ok((caller, handle))
}

async fn view_for(handle: &SessionHandle, viewer: ParticipantId) -> Result<Value, Problem> {
    ask(&handle.actor, |reply| SessionMsg::View {
        viewer: Some(viewer),
        reply,
    })
    .await
}

/// The participant's entry in the session view, if they are present.
fn present(view: &Value, who: ParticipantId) -> Option<&Value> {
    view["participants"]
        .as_array()?
        .iter()
        .find(|p| p["id"] == json!(who))
}

fn refusal(r: Refusal) -> Problem {
    tandem_actors::session::SessionError::Refused(r).into()
}

fn no_batch() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "unknown_batch",
        "no such batch in this session (it was finished, cancelled or left idle)",
    )
}

fn not_stored(e: std::io::Error) -> Problem {
    // The batch's folder went while a file was written: it was cancelled or finished.
    if e.kind() == std::io::ErrorKind::NotFound {
        return no_batch();
    }
    if crate::problem::is_disk_full(&e) {
        tracing::warn!(error = %e, "a batch file was refused: the disk is full");
        Problem::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "insufficient_storage",
            "the server's disk is full; this file was not kept",
        )
    } else {
        Problem::internal(e)
    }
}

/// `POST /api/sessions/{id}/computer-files`: 202 `{op}`.
pub async fn request(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<FilesRequest>,
) -> Result<impl IntoResponse, Problem> {
    let (caller, handle) = caller_in(&state, &headers, &id).await?;
    // A batch is put on the customer's computer only once it is whole, and only the one made
    // for that customer.
    if let FilesRequest::Receive { batch, .. } = &request {
        let view = view_for(&handle, caller.participant).await?;
        let selected = view["selected_customer"].clone();
        let fits = state.file_batches.with(caller.session, batch, |b| {
            (b.direction == Direction::ToCustomer && json!(b.customer) == selected)
                .then(|| b.complete())
        });
        match fits {
            None | Some(None) => return Err(no_batch()),
            Some(Some(false)) => {
                return Err(Problem::new(
                    StatusCode::CONFLICT,
                    "batch_incomplete",
                    "upload every file of the batch first",
                ));
            }
            Some(Some(true)) => {}
        }
    }
    let op = ask(&handle.actor, |reply| SessionMsg::ComputerFiles {
        by: caller.participant,
        request,
        reply,
    })
    .await??;
    Ok((StatusCode::ACCEPTED, ApiJson(json!({ "op": op }))))
}

/// `POST /api/sessions/{id}/computer-files/{op}`: 204.
pub async fn done(
    State(state): State<AppState>,
    Path((id, op)): Path<(String, u32)>,
    headers: HeaderMap,
    ApiJson(result): ApiJson<FilesResult>,
) -> Result<impl IntoResponse, Problem> {
    let (caller, handle) = caller_in(&state, &headers, &id).await?;
    if let Some(batch) = &result.batch {
        let ours = state.file_batches.with(caller.session, batch, |b| {
            b.uploader == caller.participant && b.complete()
        });
        if ours != Some(true) {
            return Err(no_batch());
        }
    }
    ask(&handle.actor, |reply| SessionMsg::ComputerFilesDone {
        computer: caller.participant,
        op,
        result,
        reply,
    })
    .await??;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/sessions/{id}/computer-files/{op}` (a CSR): how far the customer's computer is
/// with filling a `send`'s batch, `{batch, received, total}` (404 `unknown_batch` before it
/// has one or once it is gone).
pub async fn progress(
    State(state): State<AppState>,
    Path((id, op)): Path<(String, u32)>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, Problem> {
    let (caller, _handle) = caller_in(&state, &headers, &id).await?;
    if caller.role != Role::Csr {
        return Err(refusal(Refusal::NotStaff));
    }
    let (batch, received, total) = state
        .file_batches
        .for_op(caller.session, op)
        .ok_or_else(no_batch)?;
    Ok(ApiJson(
        json!({ "batch": batch, "received": received, "total": total }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewBatch {
    #[serde(flatten)]
    manifest: Manifest,
    /// The `send` operation a computer fills this batch for.
    #[serde(default)]
    op: Option<u32>,
}

/// `POST /api/sessions/{id}/file-batches`: 201 `{batch, total}`.
pub async fn create(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewBatch>,
) -> Result<impl IntoResponse, Problem> {
    let (caller, handle) = caller_in(&state, &headers, &id).await?;
    let (direction, customer) = match body.op {
        // A computer answers a `send` it was asked for.
        Some(op) => {
            let pending = ask(&handle.actor, |reply| SessionMsg::FilesOp { op, reply }).await?;
            match pending {
                Some(p) if p.computer == caller.participant && p.kind == "send" => {
                    (Direction::FromCustomer, p.customer)
                }
                _ => return Err(refusal(Refusal::UnknownFilesOp)),
            }
        }
        // The primary CSR, for the selected customer while file transfer runs with them.
        None => {
            let view = view_for(&handle, caller.participant).await?;
            if view["primary"] != json!(caller.participant) {
                return Err(refusal(Refusal::NotPrimary));
            }
            let customer: ParticipantId = serde_json::from_value(view["selected_customer"].clone())
                .map_err(|_| refusal(Refusal::NoCustomerSelected))?;
            let transferring = view["activities"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|a| a["activity"] == "file_transfer" && a["customer"] == json!(customer))
            });
            if !transferring {
                return Err(refusal(Refusal::ActivityNotRunning));
            }
            (Direction::ToCustomer, customer)
        }
    };
    let total = body.manifest.check().map_err(|e| {
        let status = if e.code() == "batch_too_large" {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        Problem::new(status, e.code(), e.to_string())
    })?;
    let batch_id = uuid::Uuid::new_v4().simple().to_string();
    let dir = state.file_batches.batch_dir(&batch_id);
    tokio::fs::create_dir_all(&dir).await.map_err(not_stored)?;
    // Refused at once when the disk has no room for it, rather than after 100 MB were sent.
    let room = rustix::fs::statvfs(&dir)
        .map(|v| v.f_bavail.saturating_mul(v.f_frsize))
        .unwrap_or(u64::MAX);
    if room < total {
        let _ = tokio::fs::remove_dir_all(&dir).await;
        return Err(Problem::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "insufficient_storage",
            format!("the server's disk has room for {room} bytes; this batch holds {total}"),
        ));
    }
    let count = body.manifest.files.len();
    let batch = Batch {
        session: caller.session,
        customer,
        uploader: caller.participant,
        op: body.op,
        direction,
        manifest: body.manifest,
        total,
        stored: vec![false; count],
        writing: Default::default(),
        hashing: Default::default(),
        received: 0,
        served: 0,
        touched: std::time::Instant::now(),
    };
    if let Err(held) = state.file_batches.add(&batch_id, batch) {
        let _ = tokio::fs::remove_dir_all(state.file_batches.batch_dir(&batch_id)).await;
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "too_many_batches",
            format!("this session has {held} transfers under way; finish or cancel one first"),
        ));
    }
    Ok((
        StatusCode::CREATED,
        ApiJson(json!({ "batch": batch_id, "total": total })),
    ))
}

/// Whether `caller` may read or end batch `b`: its uploader, or the side it goes to (the
/// customer's computer, or any CSR present).
fn party(view: &Value, caller: &ParticipantCaller, b: &Batch) -> bool {
    if b.uploader == caller.participant {
        return true;
    }
    let Some(me) = present(view, caller.participant) else {
        return false;
    };
    match b.direction {
        Direction::ToCustomer => me["computer_of"] == json!(b.customer),
        Direction::FromCustomer => caller.role == Role::Csr,
    }
}

/// The caller, if they are a side of batch `batch` of the session in the path.
async fn batch_party(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    batch: &str,
) -> Result<ParticipantCaller, Problem> {
    let (caller, handle) = caller_in(state, headers, id).await?;
    let view = view_for(&handle, caller.participant).await?;
    state
        .file_batches
        .with(caller.session, batch, |b| party(&view, &caller, b))
        .filter(|ok| *ok)
        .ok_or_else(no_batch)?;
    Ok(caller)
}

/// `GET /api/sessions/{id}/file-batches/{batch}`.
pub async fn status(
    State(state): State<AppState>,
    Path((id, batch)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, Problem> {
    let caller = batch_party(&state, &headers, &id, &batch).await?;
    let batches = &state.file_batches;
    let have = |i: usize| std::fs::metadata(batches.part_path(&batch, i)).map_or(0, |m| m.len());
    let view = batches
        .with(caller.session, &batch, |b| b.view(&batch, have))
        .ok_or_else(no_batch)?;
    Ok(ApiJson(view))
}

/// `GET /api/sessions/{id}/file-batches/{batch}/progress`: `{received, served, total,
/// complete}`, cheap to ask often (the batch's status lists every file).
pub async fn batch_progress(
    State(state): State<AppState>,
    Path((id, batch)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, Problem> {
    let caller = batch_party(&state, &headers, &id, &batch).await?;
    let p = state
        .file_batches
        .with(caller.session, &batch, |b| {
            json!({"received": b.received, "served": b.served, "total": b.total, "complete": b.complete()})
        })
        .ok_or_else(no_batch)?;
    Ok(ApiJson(p))
}

/// `DELETE /api/sessions/{id}/file-batches/{batch}`: 204.
pub async fn remove(
    State(state): State<AppState>,
    Path((id, batch)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, Problem> {
    let caller = batch_party(&state, &headers, &id, &batch).await?;
    state.file_batches.remove(caller.session, &batch);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    #[serde(default)]
    offset: u64,
}

/// Clears the file's "being written" mark however the upload ends.
struct Writing<'a> {
    state: &'a AppState,
    caller: &'a ParticipantCaller,
    batch: &'a str,
    index: usize,
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.state
            .file_batches
            .with(self.caller.session, self.batch, |b| {
                b.writing.remove(&self.index)
            });
    }
}

/// `PUT /api/sessions/{id}/file-batches/{batch}/{index}?offset=N`: 204 with the file whole
/// and checked, 202 when more is to come (a shorter body, to resume later).
pub async fn upload(
    State(state): State<AppState>,
    Path((id, batch, index)): Path<(String, String, usize)>,
    query: Result<Query<UploadQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let (caller, _handle) = caller_in(&state, &headers, &id).await?;
    let Query(q) = query?;
    let mut stream = body.into_data_stream();
    if !is_octet_stream(&headers) {
        let p = Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the file as application/octet-stream",
        );
        return Err(refuse_unread(&headers, &mut stream, p).await);
    }
    let batches = &state.file_batches;
    let claimed = batches.with(caller.session, &batch, |b| {
        if b.uploader != caller.participant {
            return Err(no_batch());
        }
        let Some(entry) = b.manifest.files.get(index) else {
            return Err(Problem::new(
                StatusCode::NOT_FOUND,
                "unknown_file",
                "the batch has no file with that index",
            ));
        };
        if b.stored[index] {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "already_stored",
                "that file is already whole on the server",
            ));
        }
        if !b.writing.insert(index) {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "upload_in_progress",
                "that file is being uploaded already",
            ));
        }
        Ok((entry.clone(), b.hashing.remove(&index)))
    });
    let entry = match claimed {
        None => return Err(refuse_unread(&headers, &mut stream, no_batch()).await),
        Some(Err(p)) => return Err(refuse_unread(&headers, &mut stream, p).await),
        Some(Ok(e)) => e,
    };
    let (entry, hashed) = entry;
    let _writing = Writing {
        state: &state,
        caller: &caller,
        batch: &batch,
        index,
    };
    let part_path = batches.part_path(&batch, index);
    let have = tokio::fs::metadata(&part_path).await.map_or(0, |m| m.len());
    if q.offset != have {
        let p = Problem::new(
            StatusCode::CONFLICT,
            "offset_mismatch",
            format!("the server has {have} bytes of this file: send from offset={have}"),
        );
        return Err(refuse_unread(&headers, &mut stream, p).await);
    }
    let mut out = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&part_path)
        .await
        .map_err(not_stored)?;
    let mut written = have;
    // Hashed as it comes, on from the last step's hash; a file resumed after a broken step
    // (whose hash did not follow what was written) is read back whole at the end.
    let mut hash = match hashed {
        _ if have == 0 => Some(Sha256::new()),
        Some((upto, h)) if upto == have => Some(h),
        _ => None,
    };
    let mut broke = None;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                broke = Some(e);
                break;
            }
        };
        written += chunk.len() as u64;
        if written > entry.size {
            drop(out);
            let _ = tokio::fs::remove_file(&part_path).await;
            super::upload_body::drain(&mut stream).await;
            return Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("{} is {} bytes, as the batch says", entry.path, entry.size),
            ));
        }
        if let Some(h) = hash.as_mut() {
            h.update(&chunk);
        }
        if let Err(e) = out.write_all(&chunk).await {
            drop(out);
            let _ = tokio::fs::remove_file(&part_path).await;
            return Err(not_stored(e));
        }
        let n = chunk.len() as u64;
        batches.with(caller.session, &batch, |b| b.received += n);
    }
    if let Err(e) = persist(&mut out).await {
        drop(out);
        let _ = tokio::fs::remove_file(&part_path).await;
        return Err(not_stored(e));
    }
    drop(out);
    if (broke.is_some() || written < entry.size)
        && let Some(h) = hash.take()
    {
        batches.with(caller.session, &batch, |b| {
            b.hashing.insert(index, (written, h))
        });
    }
    if let Some(e) = broke {
        // What came is kept: the uploader goes on from there.
        return Err(broke_off(e));
    }
    if written < entry.size {
        return Ok((
            StatusCode::ACCEPTED,
            ApiJson(json!({ "have": written, "size": entry.size })),
        )
            .into_response());
    }
    let sha = match hash {
        Some(h) => hex::encode(h.finalize()),
        None => file_sha256(&part_path).await.map_err(Problem::internal)?,
    };
    if sha != entry.sha256 {
        let _ = tokio::fs::remove_file(&part_path).await;
        return Err(Problem::unprocessable(
            "checksum_mismatch",
            format!(
                "{} arrived with SHA-256 {sha}, not the batch's {}; it was not kept, send it again",
                entry.path, entry.sha256
            ),
        ));
    }
    tokio::fs::rename(&part_path, batches.path(&batch, index))
        .await
        .map_err(not_stored)?;
    let kept = batches.with(caller.session, &batch, |b| b.stored[index] = true);
    if kept.is_none() {
        // Cancelled meanwhile: the folder is gone or going.
        let _ = tokio::fs::remove_file(batches.path(&batch, index)).await;
        return Err(no_batch());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn file_sha256(path: &std::path::Path) -> std::io::Result<String> {
    let mut f = tokio::fs::File::open(path).await?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(hex::encode(hash.finalize()))
}

/// The start of `Range: bytes=N-`, the one form a resuming client sends.
fn range_start(headers: &HeaderMap) -> Result<Option<u64>, Problem> {
    let Some(v) = headers.get(header::RANGE) else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.strip_suffix('-'))
        .and_then(|n| n.parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| {
            Problem::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "bad_range",
                "only Range: bytes=N- is served",
            )
        })
}

/// `GET /api/sessions/{id}/file-batches/{batch}/{index}`.
pub async fn download(
    State(state): State<AppState>,
    Path((id, batch, index)): Path<(String, String, usize)>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let (caller, handle) = caller_in(&state, &headers, &id).await?;
    let view = view_for(&handle, caller.participant).await?;
    let entry = state
        .file_batches
        .with(caller.session, &batch, |b| {
            (b.uploader != caller.participant && party(&view, &caller, b)).then(|| {
                b.stored
                    .get(index)
                    .copied()
                    .unwrap_or(false)
                    .then(|| b.manifest.files[index].clone())
            })
        })
        .flatten()
        .ok_or_else(no_batch)?
        .ok_or_else(|| {
            Problem::new(
                StatusCode::CONFLICT,
                "not_stored",
                "that file is not whole on the server yet",
            )
        })?;
    let start = range_start(&headers)?.unwrap_or(0);
    if start > entry.size {
        return Err(Problem::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "bad_range",
            format!("the file is {} bytes", entry.size),
        ));
    }
    let mut f = tokio::fs::File::open(state.file_batches.path(&batch, index))
        .await
        .map_err(|_| no_batch())?;
    f.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(Problem::internal)?;
    let counter = state.file_batches.clone();
    let session = caller.session;
    let counted = batch.clone();
    let stream = ReaderStream::with_capacity(f, 256 * 1024).map(move |chunk| {
        if let Ok(c) = &chunk {
            let n = c.len() as u64;
            counter.with(session, &counted, |b| b.served += n);
        }
        chunk
    });
    let mut response = Body::from_stream(stream).into_response();
    if start > 0 {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        if let Ok(v) = HeaderValue::from_str(&format!(
            "bytes {start}-{}/{}",
            entry.size.saturating_sub(1),
            entry.size
        )) {
            response.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(entry.size - start),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", entry.sha256)) {
        h.insert(header::ETAG, v);
    }
    Ok(response)
}
