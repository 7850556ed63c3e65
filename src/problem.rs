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
use crate::store::StoreError;

#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    pub code: String,
    pub detail: String,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            detail: detail.into(),
        }
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
            SessionError::Refused(_) => StatusCode::FORBIDDEN,
            SessionError::UnknownParticipant => StatusCode::NOT_FOUND,
            SessionError::Storage(_) | SessionError::Unavailable => {
                tracing::error!(error = %e, "session failure");
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Problem::new(status, e.code(), e.to_string())
    }
}
