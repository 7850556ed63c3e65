//! RFC 9457 problem details: every refused HTTP request answers with one, carrying a stable
//! `code` that clients match on (the `title` and `detail` are for people).

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tandem_actors::session::SessionError;
use tandem_actors::session::rules::Refusal;

use crate::auth::AuthError;
use crate::hashing::HashingBusy;
use crate::store::StoreError;

#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    pub code: String,
    pub detail: String,
    /// Seconds to wait before trying again (the Retry-After header), for refusals of load.
    pub retry_after: Option<u64>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            detail: detail.into(),
            retry_after: None,
        }
    }
    /// The same refusal, telling the client when to try again.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }
    pub fn bad_request(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }
    pub fn unprocessable(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }
    pub fn unauthorized(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }
    pub fn not_found(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, detail)
    }
    pub fn conflict(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }
    /// A fault on our side. The cause goes to the log, not to the caller.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "something went wrong on the server; it has been logged",
        )
    }
}

/// Whether a write failed for want of space: the disk (ENOSPC) or the user's quota (EDQUOT).
pub fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    ) || matches!(e.raw_os_error(), Some(28 | 122))
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let title = self
            .status
            .canonical_reason()
            .unwrap_or("Error")
            .to_string();
        let body = json!({
            "type": format!("urn:tandem:problem:{}", self.code),
            "title": title,
            "status": self.status.as_u16(),
            "detail": self.detail,
            "code": self.code,
        });
        let mut res = (self.status, Json(body)).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

impl From<JsonRejection> for Problem {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ),
            JsonRejection::JsonDataError(e) => {
                Problem::unprocessable("invalid_body", e.body_text())
            }
            JsonRejection::BytesRejection(e) if crate::body_pace::is_too_slow(&e) => {
                Problem::new(StatusCode::REQUEST_TIMEOUT, "body_timeout", e.body_text())
            }
            JsonRejection::BytesRejection(e) => Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                e.body_text(),
            ),
            other => Problem::bad_request("malformed_json", other.body_text()),
        }
    }
}

impl From<PathRejection> for Problem {
    fn from(r: PathRejection) -> Self {
        Problem::not_found("not_found", r.body_text())
    }
}

impl From<QueryRejection> for Problem {
    fn from(r: QueryRejection) -> Self {
        Problem::bad_request("invalid_query", r.body_text())
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => {
                Problem::conflict("conflict", format!("{what} already exists"))
            }
            StoreError::NotFound => Problem::not_found("not_found", "no such thing"),
            other => Problem::internal(other),
        }
    }
}

impl From<HashingBusy> for Problem {
    fn from(e: HashingBusy) -> Self {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "sign_in_busy",
            e.to_string(),
        )
        .with_retry_after(1)
    }
}

impl From<AuthError> for Problem {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Expired => Problem::unauthorized("token_expired", e.to_string()),
            AuthError::BadToken => Problem::unauthorized("invalid_token", e.to_string()),
            AuthError::WrongKind => Problem::unauthorized("wrong_token_kind", e.to_string()),
            other => Problem::internal(other),
        }
    }
}

impl From<SessionError> for Problem {
    fn from(e: SessionError) -> Self {
        let status = match &e {
            SessionError::Refused(Refusal::SessionEnded) => StatusCode::GONE,
            SessionError::Refused(Refusal::CustomerLimit(_) | Refusal::AlreadyJoined)
            | SessionError::Refused(Refusal::NotWaiting) => StatusCode::CONFLICT,
            SessionError::Refused(Refusal::ActivityNotRunning | Refusal::TooManyFiles) => {
                StatusCode::CONFLICT
            }
            SessionError::Refused(Refusal::BadFileName | Refusal::BadFilesRequest(_)) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            SessionError::Refused(Refusal::TooManyFilesOps | Refusal::SystemInfoNotAsked) => {
                StatusCode::CONFLICT
            }
            SessionError::Refused(Refusal::UnknownFilesOp) => StatusCode::NOT_FOUND,
            SessionError::Refused(Refusal::UnknownFile) => StatusCode::NOT_FOUND,
            SessionError::Refused(_) => StatusCode::FORBIDDEN,
            SessionError::UnknownParticipant => StatusCode::NOT_FOUND,
            SessionError::Storage(_) | SessionError::Unavailable => {
                tracing::error!(error = %e, "session failure");
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let detail = match &e {
            // What failed inside (the database's own words) is for the log, not the caller.
            SessionError::Storage(_) => {
                "the server could not store this; nothing was changed, try again later".into()
            }
            _ => e.to_string(),
        };
        Problem::new(status, e.code(), detail)
    }
}
