//! SPEC F1, basic file transfer: while file transfer with a customer runs, the primary CSR
//! uploads files (`POST /api/sessions/{id}/files`, the raw body) which the session publishes to
//! that customer; the customer (and the session's staff) download them
//! (`GET /api/sessions/{id}/files/{file}`). The session's rules say who may do what; the files
//! live in [`SharedFiles`](crate::shared_files::SharedFiles) until file transfer ends.
//!
//! Both sides use their participant token (`Authorization: Bearer`), as their page has it.

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tandem_actors::ids::{FileId, ParticipantId, SessionId};
use tandem_actors::protocol::Role;
use tandem_actors::session::rules::{Refusal, SharedFile, check_file_name};
use tandem_actors::session::{SessionMsg, unix_now};
use tandem_actors::session_registry::SessionHandle;
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

use super::sessions::live_by_id;
use super::upload_body::{
    Scratch, broke_off, declared_length, drain, is_octet_stream, persist, refuse_unread,
};
use super::{ApiJson, AppState, ParticipantCaller, ask};
use crate::problem::Problem;

/// Who calls, from their participant token, checked against the session in the path.
struct Participant {
    session: SessionId,
    id: ParticipantId,
    role: Role,
}

async fn participant(
    state: &AppState,
    headers: &HeaderMap,
    path_session: &str,
) -> Result<Participant, Problem> {
    let ParticipantCaller {
        session,
        participant,
        role,
        ..
    } = ParticipantCaller::in_session(state, headers, path_session, "a published file").await?;
    Ok(Participant {
        session,
        id: participant,
        role,
    })
}

async fn live(state: &AppState, session: SessionId) -> Result<SessionHandle, Problem> {
    live_by_id(state, session)
        .await?
        .ok_or_else(|| Problem::new(StatusCode::GONE, "session_ended", "that session has ended"))
}

fn refusal(r: Refusal) -> Problem {
    tandem_actors::session::SessionError::Refused(r).into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishQuery {
    name: String,
    /// The customer the file is for; may be left out while file transfer runs with only one.
    #[serde(default)]
    customer: Option<ParticipantId>,
}

fn session_full(held: u64, max: u64) -> Problem {
    Problem::new(
        StatusCode::INSUFFICIENT_STORAGE,
        "session_files_full",
        format!(
            "this session's files hold {held} bytes (uploads under way included) and may hold {max}; withdraw some first"
        ),
    )
}

fn not_stored(e: std::io::Error) -> Problem {
    if crate::problem::is_disk_full(&e) {
        tracing::warn!(error = %e, "a published file was refused: the disk is full");
        Problem::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "insufficient_storage",
            "the server's disk is full; the file was not kept",
        )
    } else {
        Problem::internal(e)
    }
}

/// `POST /api/sessions/{id}/files?name=…[&customer=…]`: the primary CSR publishes the body
/// (`application/octet-stream`) to a customer with whom file transfer runs. 201 with the file
/// as the session view lists it. Checked before the body is read (who, file transfer, size,
/// room), streamed to disk with its SHA-256, and published only whole; nothing is kept of a
/// refused or broken upload.
pub async fn publish(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<PublishQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, Problem> {
    let caller = participant(&state, &headers, &id).await?;
    let Query(q) = query?;
    check_file_name(&q.name).map_err(refusal)?;
    if !is_octet_stream(&headers) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the file as application/octet-stream",
        ));
    }
    let handle = live(&state, caller.session).await?;
    let view = ask(&handle.actor, |reply| SessionMsg::View {
        viewer: Some(caller.id),
        reply,
    })
    .await?;
    if view["primary"] != json!(caller.id) {
        return Err(refusal(Refusal::NotPrimary));
    }
    let transferring: Vec<ParticipantId> = view["activities"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["activity"] == "file_transfer")
        .filter_map(|a| serde_json::from_value(a["customer"].clone()).ok())
        .collect();
    let customer = match q.customer {
        Some(c) if transferring.contains(&c) => c,
        None if transferring.len() == 1 => transferring[0],
        None if transferring.len() > 1 => {
            return Err(Problem::unprocessable(
                "customer_required",
                "file transfer runs with several customers: say which one with customer=",
            ));
        }
        _ => return Err(refusal(Refusal::ActivityNotRunning)),
    };

    let held = view["files"].as_array().map_or(0, |fs| {
        fs.iter()
            .filter(|f| f["customer"] == json!(customer))
            .count()
    });
    if held >= tandem_actors::limits::MAX_SHARED_FILES {
        let mut stream = body.into_data_stream();
        return Err(refuse_unread(&headers, &mut stream, refusal(Refusal::TooManyFiles)).await);
    }
    let config = &state.config.files;
    let max = config.max_file_bytes;
    let mut stream = body.into_data_stream();
    let declared = declared_length(&headers);
    if declared.is_some_and(|n| n > max) {
        let p = Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("a file is at most {max} bytes"),
        );
        return Err(refuse_unread(&headers, &mut stream, p).await);
    }
    let published: u64 = view["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["size"].as_u64())
        .sum();
    let room = state.shared_files.reserve(
        caller.session,
        declared.unwrap_or(max),
        published,
        config.max_session_bytes,
    );
    let _room = match room {
        Ok(r) => r,
        Err(held) => {
            let p = session_full(held, config.max_session_bytes);
            return Err(refuse_unread(&headers, &mut stream, p).await);
        }
    };

    let file = FileId::random();
    let dir = state.shared_files.session_dir(caller.session);
    tokio::fs::create_dir_all(&dir).await.map_err(not_stored)?;
    let part_path = state.shared_files.part_path(caller.session, file);
    let (part, mut out) = Scratch::create(&part_path).await.map_err(not_stored)?;
    let mut hash = Sha256::new();
    let mut written: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(broke_off)?;
        written += chunk.len() as u64;
        // A body longer than it said, or of unknown length past the limit.
        if written > max || declared.is_some_and(|n| written > n) {
            drain(&mut stream).await;
            return Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("a file is at most {max} bytes"),
            ));
        }
        hash.update(&chunk);
        out.write_all(&chunk).await.map_err(not_stored)?;
    }
    persist(&mut out).await.map_err(not_stored)?;
    drop(out);
    let sha256 = hex::encode(hash.finalize());
    let final_path = state.shared_files.path(caller.session, file);
    tokio::fs::rename(&part_path, &final_path)
        .await
        .map_err(not_stored)?;
    part.keep();
    let placed = Scratch(Some(final_path));
    let shared = SharedFile {
        customer,
        by: caller.id,
        name: q.name,
        size: written,
        sha256,
        at: unix_now(),
    };
    let answer = json!({
        "id": file,
        "customer": customer,
        "by": caller.id,
        "name": shared.name,
        "size": shared.size,
        "sha256": shared.sha256,
    });
    // The session removes it from now on (when file transfer ends, say); refused, it is ours
    // to remove, which `placed` does. In a task of its own, so a client that goes away now
    // cannot leave a listed file without its bytes, or bytes nobody lists.
    let by = caller.id;
    tokio::spawn(async move {
        ask(&handle.actor, |reply| SessionMsg::PublishFile {
            by,
            file,
            shared,
            reply,
        })
        .await??;
        placed.keep();
        Ok::<_, Problem>(())
    })
    .await
    .map_err(Problem::internal)??;
    Ok((StatusCode::CREATED, ApiJson(answer)))
}

/// `Content-Disposition` for a name of any script: a plain ASCII fallback and the UTF-8 name
/// (RFC 6266, RFC 8187).
fn disposition(name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or(HeaderValue::from_static("attachment"))
}

/// `GET /api/sessions/{id}/files/{file}`: a published file, for its customer or the session's
/// staff, while it is published.
pub async fn download(
    State(state): State<AppState>,
    Path((id, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let caller = participant(&state, &headers, &id).await?;
    let unknown = || refusal(Refusal::UnknownFile);
    let file: FileId = file.parse().map_err(|_| unknown())?;
    let handle = live(&state, caller.session).await?;
    let view: Value = ask(&handle.actor, |reply| SessionMsg::View {
        viewer: Some(caller.id),
        reply,
    })
    .await?;
    // Only who is in the session now: a token outlives a removal or a departure.
    let present = view["participants"]
        .as_array()
        .is_some_and(|ps| ps.iter().any(|p| p["id"] == json!(caller.id)));
    if !present {
        return Err(unknown());
    }
    // The view lists what this participant may see: a customer their own files, staff all.
    let shown = view["files"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["id"] == json!(file))
        .ok_or_else(unknown)?;
    if caller.role == Role::Customer && shown["customer"] != json!(caller.id) {
        return Err(unknown());
    }
    let path = state.shared_files.path(caller.session, file);
    let opened = tokio::fs::File::open(&path).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            unknown()
        } else {
            Problem::internal(e)
        }
    })?;
    let size = opened.metadata().await.map_err(Problem::internal)?.len();
    let name = shown["name"].as_str().unwrap_or("file");
    let sha = shown["sha256"].as_str().unwrap_or_default();
    let mut response =
        Body::from_stream(ReaderStream::with_capacity(opened, 256 * 1024)).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    h.insert(header::CONTENT_DISPOSITION, disposition(name));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("\"{sha}\"")) {
        h.insert(header::ETAG, v);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::disposition;

    #[test]
    fn any_name_is_offered_as_itself_with_a_plain_fallback() {
        let v = disposition("Ünïcode \"report\" 報告.pdf");
        let s = v.to_str().unwrap();
        assert!(
            s.starts_with("attachment; filename=\"_n_code _report_ __.pdf\""),
            "{s}"
        );
        assert!(
            s.contains(
                "filename*=UTF-8''%C3%9Cn%C3%AFcode%20%22report%22%20%E5%A0%B1%E5%91%8A.pdf"
            ),
            "{s}"
        );
    }
}
