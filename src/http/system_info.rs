//! SPEC M1: a customer's Tandem Helper sends the system information it read (with the
//! customer's OK in its window) while `system_info` runs on that customer:
//! `POST /api/sessions/{id}/system-info`, with the computer's participant token. The session
//! journals it, tells the staff and the customer, and the report keeps it (RP2).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use tandem_actors::session::SessionMsg;

use super::sessions::{live_by_id, parse_session_id};
use super::{ApiJson, AppState, ParticipantCaller, ask};
use crate::problem::Problem;

/// Largest body taken: a busy computer's processes, services and packages fit well within it.
pub const MAX_BYTES: usize = 4 * 1024 * 1024;

/// The sections the console shows; each is an object or a list.
const SECTIONS: &[&str] = &[
    "system",
    "cpu",
    "memory",
    "disks",
    "network",
    "displays",
    "processes",
    "services",
    "software",
    "environment",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provided {
    info: serde_json::Map<String, serde_json::Value>,
}

pub async fn provide(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Provided>,
) -> Result<StatusCode, Problem> {
    let caller = ParticipantCaller::from_headers(&state, &headers, "system information")?;
    if parse_session_id(&id)? != caller.session {
        return Err(Problem::forbidden("your token is for another session"));
    }
    if let Some(bad) = body
        .info
        .iter()
        .find(|(k, v)| !SECTIONS.contains(&k.as_str()) || !(v.is_object() || v.is_array()))
    {
        return Err(Problem::unprocessable(
            "invalid_body",
            format!(
                "`{}` is not a section of system information (an object or a list of: {})",
                bad.0,
                SECTIONS.join(", ")
            ),
        ));
    }
    let handle = live_by_id(&state, caller.session)
        .await?
        .ok_or_else(|| Problem::new(StatusCode::GONE, "session_ended", "that session has ended"))?;
    ask(&handle.actor, |reply| SessionMsg::ProvideSystemInfo {
        computer: caller.participant,
        info: serde_json::Value::Object(body.info),
        reply,
    })
    .await??;
    Ok(StatusCode::NO_CONTENT)
}
