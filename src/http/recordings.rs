//! Recordings over HTTP (SPEC R4): list, look at, rename and describe, disable, reassign,
//! delete, share by a signed expiring link (also sent by e-mail), play and download with byte
//! ranges, and upload an ARF file. Recording itself and the MP4 export happen elsewhere; this module only reads what
//! they leave in the store and in `[recording] dir`.

use std::collections::HashMap;
use std::io::SeekFrom;
use std::ops::RangeInclusive;
use std::path::Path as FsPath;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_range_header::RangeUnsatisfiableError;
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_actors::ids::AccountId;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;
use uuid::Uuid;

use super::{ApiJson, AppState, Caller};
use crate::auth::{self, AuthError, Token};
use crate::problem::Problem;
use crate::store::{Recording, RecordingStatus};

pub mod upload;

pub use upload::upload;

const MAX_NAME_CHARS: usize = 200;
const MAX_DESCRIPTION_CHARS: usize = 2000;
/// Read size when streaming a file out: large enough for few system calls, small enough that
/// many viewers at once do not hold much memory.
const CHUNK_BYTES: usize = 64 * 1024;

fn unknown() -> Problem {
    Problem::not_found("unknown_recording", "no such recording")
}

fn parse_id(s: &str) -> Result<Uuid, Problem> {
    s.parse().map_err(|_| unknown())
}

async fn load(state: &AppState, id: Uuid) -> Result<Recording, Problem> {
    state.store.recording(id).await?.ok_or_else(unknown)
}

/// A recording as the API shows it: while it is converted to MP4, with how far that is (0
/// until the exporter takes it up). `progress` is [`Exports::progress_now`], taken before the
/// row was read: read after, an export that ended in between would show a `processing` row at
/// 0 after 0.99.
///
/// [`Exports::progress_now`]: crate::exporter::Exports::progress_now
fn shown(progress: &HashMap<Uuid, f64>, mut r: Recording) -> Recording {
    if r.status == RecordingStatus::Processing {
        r.progress = Some(progress.get(&r.id).copied().unwrap_or(0.0));
    }
    r
}

/// Owners and admins manage a recording; other accounts are refused.
fn may_manage(caller: &Caller, r: &Recording) -> Result<(), Problem> {
    if caller.is_admin() || r.owner == caller.0.id {
        Ok(())
    } else {
        Err(Problem::forbidden(
            "only the recording's owner and admins can do this",
        ))
    }
}

/// A disabled recording is shown to nobody but admins: not its owner, not a link's holder.
fn check_enabled(r: &Recording, admin: bool) -> Result<(), Problem> {
    if r.disabled && !admin {
        Err(Problem::new(
            StatusCode::FORBIDDEN,
            "recording_disabled",
            "this recording has been disabled",
        ))
    } else {
        Ok(())
    }
}

/// The MP4 to play, if the recording may be played and has one.
fn playable(r: &Recording, admin: bool) -> Result<&FsPath, Problem> {
    check_enabled(r, admin)?;
    match (r.status, &r.mp4_path) {
        (RecordingStatus::Ready, Some(p)) => Ok(p),
        (RecordingStatus::Failed, _) => Err(Problem::conflict(
            "recording_not_ready",
            format!(
                "this recording has no MP4: {}",
                r.error.as_deref().unwrap_or("it failed")
            ),
        )),
        (status, _) => Err(Problem::conflict(
            "recording_not_ready",
            format!("this recording has no MP4 yet (it is {})", status.as_str()),
        )),
    }
}

fn check_name(raw: &str) -> Result<&str, Problem> {
    super::checked_name(raw, "recording", MAX_NAME_CHARS)
}

fn check_description(raw: &str) -> Result<&str, Problem> {
    let text = raw.trim();
    if text.chars().count() > MAX_DESCRIPTION_CHARS
        || text
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(Problem::unprocessable(
            "invalid_description",
            format!(
                "descriptions are at most {MAX_DESCRIPTION_CHARS} characters, without control characters other than line breaks and tabs"
            ),
        ));
    }
    Ok(text)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Admins see every recording unless they ask for their own.
    #[serde(default)]
    mine: bool,
}

/// The caller's recordings (an admin's: everyone's), newest first.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<ApiJson<Value>, Problem> {
    let Query(q) = query?;
    let owner = (!caller.is_admin() || q.mine).then_some(caller.0.id);
    let recordings = listing(&state, owner).await?;
    Ok(ApiJson(json!({ "recordings": recordings })))
}

/// The recordings of `owner` (all, for `None`) as the list shows them, also pushed to the
/// dashboard (super::dashboard_feed).
pub async fn listing(state: &AppState, owner: Option<AccountId>) -> Result<Vec<Value>, Problem> {
    let progress = state.exports.progress_now();
    // Issue 18: who was in the session recorded, so a list of recordings says which is which
    // without opening them (one query for all, not two per recording). The recordings are
    // read first: one made between the two queries is then listed on the next read, rather
    // than now without its session.
    let listed = state.store.recordings(owner).await?;
    let sessions = state.store.recorded_sessions(owner).await?;
    let mut recordings = Vec::new();
    for r in listed {
        let session = r.session_id.and_then(|id| sessions.get(&id));
        let mut item = serde_json::to_value(shown(&progress, r))
            .map_err(|e| Problem::internal(format!("a recording would not serialize: {e}")))?;
        if let Some(s) = session {
            item["csr"] = json!(s.host_name);
            item["topic"] = json!(s.topic);
            item["customers"] = json!(s.customers);
        }
        recordings.push(item);
    }
    Ok(recordings)
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<ApiJson<Recording>, Problem> {
    let progress = state.exports.progress_now();
    let r = load(&state, parse_id(&id)?).await?;
    may_manage(&caller, &r)?;
    Ok(ApiJson(shown(&progress, r)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Changes {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    disabled: Option<bool>,
    /// The account to hand the recording to (SPEC R4 "reassign to another host").
    #[serde(default)]
    owner: Option<String>,
}

/// SPEC R4: modify (name, description), disable, reassign. Absent fields stay as they are.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Changes>,
) -> Result<ApiJson<Recording>, Problem> {
    let r = load(&state, parse_id(&id)?).await?;
    may_manage(&caller, &r)?;
    let name = body.name.as_deref().map(check_name).transpose()?;
    let description = body
        .description
        .as_deref()
        .map(check_description)
        .transpose()?;
    let owner = match body.owner.as_deref() {
        None => None,
        Some(raw) => {
            let unknown_account =
                || Problem::unprocessable("unknown_account", "no account with that id");
            let id: AccountId = raw.parse().map_err(|_| unknown_account())?;
            // Every account is an admin, CSR or agent; customers have none.
            let user = state
                .store
                .user_by_id(id)
                .await?
                .ok_or_else(unknown_account)?;
            Some(user.id)
        }
    };
    let progress = state.exports.progress_now();
    let updated = state
        .store
        .update_recording(r.id, name, description, body.disabled, owner)
        .await?
        .ok_or_else(unknown)?;
    Ok(ApiJson(shown(&progress, updated)))
}

/// Removes a file that may already be gone.
async fn remove_file(path: &FsPath) -> Result<(), Problem> {
    match tokio::fs::remove_file(path).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Problem::internal(format!(
            "removing {}: {e}",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// SPEC R4: delete. The files go first: if one cannot be removed, the row stays, so nothing is
/// left on disk that no row points to.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let r = load(&state, parse_id(&id)?).await?;
    may_manage(&caller, &r)?;
    if r.status == RecordingStatus::Recording {
        return Err(Problem::conflict(
            "recording_in_progress",
            "this recording is still being made; stop it first",
        ));
    }
    // Its export, waiting or running, is not wanted any more: it stops and leaves nothing.
    state.exports.drop_recording(r.id);
    let removed = async {
        if let Some(mp4) = &r.mp4_path {
            remove_file(mp4).await?;
        }
        remove_file(&r.arf_path).await?;
        state.store.delete_recording(r.id).await?;
        Ok::<_, Problem>(())
    }
    .await;
    if removed.is_err() {
        state.exports.keep_recording(r.id);
    }
    removed?;
    Ok(StatusCode::NO_CONTENT)
}

/// SPEC R4 "streaming link": a signed address that plays this recording's MP4 without an
/// account until it expires.
pub async fn link(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    let r = load(&state, parse_id(&id)?).await?;
    may_manage(&caller, &r)?;
    let (url, expires_at) = signed_link(&state, &r)?;
    Ok((
        StatusCode::CREATED,
        ApiJson(json!({ "url": url, "expires_at": expires_at })),
    ))
}

/// A streaming link to `r` and when it expires (Unix milliseconds). Whoever holds a link is
/// never an admin, so a disabled recording gets none.
fn signed_link(state: &AppState, r: &Recording) -> Result<(String, u64), Problem> {
    playable(r, false)?;
    let now = auth::unix_secs();
    let ttl = state.config.recording.link_ttl_secs;
    let token = state
        .signer
        .sign(&Token::RecordingLink { recording: r.id }, now, ttl);
    let url = format!(
        "{}/api/recordings/{}/mp4?link={token}",
        state.config.server.public_url.trim_end_matches('/'),
        r.id
    );
    Ok((url, (now + ttl) * 1000))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailBody {
    to: String,
}

/// SPEC R4 "e-mail a link": the server sends a streaming link to `to`, with when it expires.
pub async fn email(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<EmailBody>,
) -> Result<impl IntoResponse, Problem> {
    let r = load(&state, parse_id(&id)?).await?;
    may_manage(&caller, &r)?;
    let to = body.to.trim();
    if !crate::mail::looks_like_email(to) {
        return Err(Problem::unprocessable(
            "invalid_email",
            "that is not an e-mail address",
        ));
    }
    let (url, expires_at) = signed_link(&state, &r)?;
    let mailer = state.mailer.as_ref().ok_or_else(|| {
        Problem::conflict(
            "mail_disabled",
            "this server does not send e-mail; make a streaming link and pass it on",
        )
    })?;
    let until = UNIX_EPOCH + Duration::from_millis(expires_at);
    let subject = format!("{} shares a recording: {}", caller.0.display_name, r.name);
    let text = format!(
        "{} shares the recording \"{}\" with you.\n\nWatch it in your browser: {url}\n\nThe link works until {} and needs no account.\n",
        caller.0.display_name,
        r.name,
        httpdate::fmt_http_date(until),
    );
    state
        .mail_limits
        .admit(caller.0.id, to, std::time::Instant::now())?;
    mailer.send(to, &subject, &text).await.map_err(|e| {
        tracing::warn!(recording = %r.id, error = %e, "recording e-mail failed");
        Problem::new(
            StatusCode::BAD_GATEWAY,
            "mail_failed",
            "the mail server refused the e-mail",
        )
    })?;
    Ok((
        StatusCode::CREATED,
        ApiJson(json!({ "to": to, "url": url, "expires_at": expires_at })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaQuery {
    #[serde(default)]
    link: Option<String>,
}

/// Plays the MP4 (SPEC R4 "play in the browser"), with byte ranges for seeking.
pub async fn mp4(
    State(state): State<AppState>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    query: Result<Query<MediaQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    play(&state, &id, query, &method, &headers, false).await
}

/// The same bytes as `mp4`, saved under the recording's name (SPEC R4 "download").
pub async fn download(
    State(state): State<AppState>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    query: Result<Query<MediaQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    play(&state, &id, query, &method, &headers, true).await
}

/// Who may play: the owner and admins with their sign-in token, or anyone with a valid link
/// for this very recording. When a link is given it alone decides.
async fn play(
    state: &AppState,
    id: &str,
    query: Result<Query<MediaQuery>, QueryRejection>,
    method: &Method,
    headers: &HeaderMap,
    attachment: bool,
) -> Result<Response, Problem> {
    let Query(q) = query?;
    let id = parse_id(id)?;
    let (r, admin) = match q.link {
        Some(link) => {
            let refused = |detail: &str| {
                Problem::new(StatusCode::FORBIDDEN, "invalid_link", detail.to_string())
            };
            match state.signer.verify(&link) {
                Ok(Token::RecordingLink { recording }) if recording == id => {}
                Err(AuthError::Expired) => return Err(refused("this link has expired")),
                _ => return Err(refused("this link is not valid for this recording")),
            }
            (load(state, id).await?, false)
        }
        None => {
            let caller = Caller::from_headers(state, headers).await?;
            let r = load(state, id).await?;
            may_manage(&caller, &r)?;
            (r, caller.is_admin())
        }
    };
    let path = playable(&r, admin)?;
    let disposition = attachment.then(|| attachment_header(&r.name, "mp4"));
    serve_file(method, headers, path, r.id, "video/mp4", disposition).await
}

/// The recording as recorded (or uploaded), for the owner and admins.
pub async fn arf(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let r = load(&state, parse_id(&id)?).await?;
    may_manage(&caller, &r)?;
    check_enabled(&r, caller.is_admin())?;
    // A file still being written has no stable length or validator to serve ranges of.
    if r.status == RecordingStatus::Recording {
        return Err(Problem::conflict(
            "recording_in_progress",
            "this recording is still being made",
        ));
    }
    let disposition = Some(attachment_header(&r.name, "arf"));
    serve_file(
        &method,
        &headers,
        &r.arf_path,
        r.id,
        "application/octet-stream",
        disposition,
    )
    .await
}

/// `attachment; filename="…"` with a name reduced to characters safe in a header and in every
/// file system: anything else becomes `_`.
fn attachment_header(name: &str, ext: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " -_.()".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let safe = safe.trim_matches(|c| c == ' ' || c == '.');
    let safe = if safe.is_empty() { "recording" } else { safe };
    format!("attachment; filename=\"{safe}.{ext}\"")
}

/// What part of a file a GET asks for.
#[derive(Debug, PartialEq)]
enum Wanted {
    Whole,
    Part(RangeInclusive<u64>),
    Unsatisfiable,
}

/// Reads `Range` and `If-Range` (RFC 9110 §14.2, §13.1.5). Parsing and checking the ranges
/// against the size is the http-range-header crate's (the one tower-http uses). A malformed or
/// overlapping range set is ignored, as the RFC allows; several ranges get the whole file,
/// since multipart answers are not made.
fn wanted(headers: &HeaderMap, size: u64, etag: &str, modified: Option<SystemTime>) -> Wanted {
    let Some(raw) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Wanted::Whole;
    };
    if let Some(condition) = headers.get(header::IF_RANGE)
        && !if_range_holds(condition, etag, modified)
    {
        return Wanted::Whole;
    }
    let Ok(parsed) = http_range_header::parse_range_header(raw) else {
        return Wanted::Whole;
    };
    match parsed.validate(size) {
        Ok(mut ranges) if ranges.len() == 1 => ranges.pop().map_or(Wanted::Whole, Wanted::Part),
        Ok(_) => Wanted::Whole,
        Err(RangeUnsatisfiableError::Unsatisfiable) => Wanted::Unsatisfiable,
        Err(_) => Wanted::Whole,
    }
}

fn unix_secs_of(t: SystemTime) -> Option<u64> {
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// RFC 9110 §13.1.5: a range is served only if `If-Range` names the current (strong) ETag, or
/// exactly the Last-Modified date while that date is a strong validator (at least a second
/// before now, so a second change within the same second cannot share it).
fn if_range_holds(condition: &HeaderValue, etag: &str, modified: Option<SystemTime>) -> bool {
    let Ok(condition) = condition.to_str() else {
        return false;
    };
    let condition = condition.trim();
    if condition.starts_with('"') || condition.starts_with("W/") {
        return condition == etag;
    }
    let (Ok(date), Some(modified)) = (httpdate::parse_http_date(condition), modified) else {
        return false;
    };
    match (
        unix_secs_of(date),
        unix_secs_of(modified),
        unix_secs_of(SystemTime::now()),
    ) {
        (Some(date), Some(modified), Some(now)) => date == modified && now > modified,
        _ => false,
    }
}

/// A strong validator: the recording's id (two files never share one), size and modification
/// time to the nanosecond (a re-export changes it).
fn etag(id: Uuid, size: u64, modified: Option<SystemTime>) -> String {
    let since = modified
        .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default();
    format!(
        "\"{}-{size:x}-{:x}.{:08x}\"",
        id.simple(),
        since.as_secs(),
        since.subsec_nanos()
    )
}

/// Serves a file as a whole (200), one range of it (206) or a 416, with `Accept-Ranges`, a
/// strong `ETag` and `Last-Modified`; `HEAD` gets the same headers without reading the file.
async fn serve_file(
    method: &Method,
    headers: &HeaderMap,
    path: &FsPath,
    id: Uuid,
    content_type: &'static str,
    disposition: Option<String>,
) -> Result<Response, Problem> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| Problem::internal(format!("opening {}: {e}", path.display())))?;
    let meta = file.metadata().await.map_err(Problem::internal)?;
    let size = meta.len();
    let modified = meta.modified().ok();
    let etag = etag(id, size, modified);
    // RFC 9110 §14.2: range handling is defined for GET only.
    let wanted = if method == Method::GET {
        wanted(headers, size, &etag, modified)
    } else {
        Wanted::Whole
    };
    let mut res = Response::builder()
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, &etag)
        .header(header::CACHE_CONTROL, "private")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    if let Some(m) = modified {
        res = res.header(header::LAST_MODIFIED, httpdate::fmt_http_date(m));
    }
    let (status, start, len) = match wanted {
        Wanted::Whole => (StatusCode::OK, 0, size),
        Wanted::Part(r) => {
            let (first, last) = (*r.start(), *r.end());
            res = res.header(
                header::CONTENT_RANGE,
                format!("bytes {first}-{last}/{size}"),
            );
            (StatusCode::PARTIAL_CONTENT, first, last - first + 1)
        }
        Wanted::Unsatisfiable => {
            let mut refused = Problem::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("no requested range is within the file's {size} bytes"),
            )
            .into_response();
            let h = refused.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                h.insert(header::CONTENT_RANGE, v);
            }
            h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            return Ok(refused);
        }
    };
    res = res
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, len);
    if let Some(d) = disposition {
        res = res.header(header::CONTENT_DISPOSITION, d);
    }
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(Problem::internal)?;
        Body::from_stream(ReaderStream::with_capacity(file.take(len), CHUNK_BYTES))
    };
    res.body(body).map_err(Problem::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        let tag = "\"t\"";
        let want = |range: &str| wanted(&headers(&[(header::RANGE, range)]), 1000, tag, None);
        assert_eq!(want("bytes=0-99"), Wanted::Part(0..=99));
        assert_eq!(want("bytes=990-2000"), Wanted::Part(990..=999));
        assert_eq!(want("bytes=-100"), Wanted::Part(900..=999));
        assert_eq!(want("bytes=-5000"), Wanted::Part(0..=999));
        assert_eq!(want("bytes=500-"), Wanted::Part(500..=999));
        assert_eq!(want("bytes=1000-"), Wanted::Unsatisfiable);
        assert_eq!(want("bytes=0-1,5-6"), Wanted::Whole);
        assert_eq!(want("bytes=9-2"), Wanted::Whole);
        assert_eq!(want("items=0-1"), Wanted::Whole);
        assert_eq!(want("bytes=x"), Wanted::Whole);
        assert_eq!(wanted(&HeaderMap::new(), 1000, tag, None), Wanted::Whole);
    }

    #[test]
    fn if_range_needs_the_same_strong_etag_or_an_old_enough_exact_date() {
        let tag = "\"abc\"";
        let old = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let with = |cond: &str, modified| {
            wanted(
                &headers(&[(header::RANGE, "bytes=0-9"), (header::IF_RANGE, cond)]),
                100,
                tag,
                modified,
            )
        };
        assert_eq!(with("\"abc\"", Some(old)), Wanted::Part(0..=9));
        assert_eq!(with("W/\"abc\"", Some(old)), Wanted::Whole);
        assert_eq!(with("\"abd\"", Some(old)), Wanted::Whole);
        let date = httpdate::fmt_http_date(old);
        assert_eq!(with(&date, Some(old)), Wanted::Part(0..=9));
        assert_eq!(
            with(&date, Some(old + Duration::from_secs(1))),
            Wanted::Whole
        );
        // A date this recent (here: not yet past) is a weak validator.
        let soon = SystemTime::now() + Duration::from_secs(10);
        assert_eq!(
            with(&httpdate::fmt_http_date(soon), Some(soon)),
            Wanted::Whole
        );
        assert_eq!(with("yesterday", Some(old)), Wanted::Whole);
    }

    #[test]
    fn download_names_are_safe_in_a_header() {
        assert_eq!(
            attachment_header("Printer (Dave) 2/3", "mp4"),
            "attachment; filename=\"Printer (Dave) 2_3.mp4\""
        );
        assert_eq!(
            attachment_header("\"x\"\r\nSet-Cookie: a", "mp4"),
            "attachment; filename=\"_x___Set-Cookie_ a.mp4\""
        );
        assert_eq!(
            attachment_header("..", "arf"),
            "attachment; filename=\"recording.arf\""
        );
        assert!(HeaderValue::from_str(&attachment_header("Résumé ✓", "mp4")).is_ok());
    }
}
