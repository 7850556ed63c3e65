//! SPEC M3: scripts from the library run on the customer's computer.
//!
//! - `POST /api/sessions/{id}/script-runs` (the primary CSR's participant token)
//!   `{scripts: [id...]}`: the scripts, in that order, are proposed for the selected
//!   customer's computer and asked in its Tandem Helper window, with each one's SHA-256.
//! - `GET /api/sessions/{id}/script-runs/{request}/{index}` (the computer's token): the
//!   script's files, once the run is allowed; the helper runs them only if their SHA-256 is the
//!   one the customer allowed.
//! - `POST` to the same address (the computer's token): how it ended. In order; the last one
//!   ends the activity.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use tandem_actors::protocol::{ScriptItem, ScriptOutcome};
use tandem_actors::session::SessionMsg;
use tandem_actors::session_registry::SessionHandle;
use uuid::Uuid;

use super::sessions::live_by_id;
use super::{ApiJson, AppState, ParticipantCaller, ask};
use crate::problem::Problem;

/// Longest log a helper sends for one script.
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    scripts: Vec<String>,
}

async fn caller_in(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    id: &str,
) -> Result<(ParticipantCaller, SessionHandle), Problem> {
    let caller = ParticipantCaller::in_session(state, headers, id, "running scripts").await?;
    let handle = live_by_id(state, caller.session)
        .await?
        .ok_or_else(|| Problem::new(StatusCode::GONE, "session_ended", "that session has ended"))?;
    Ok((caller, handle))
}

/// `POST /api/sessions/{id}/script-runs`: 201 `{request, scripts}`.
pub async fn propose(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    ApiJson(body): ApiJson<Proposal>,
) -> Result<impl IntoResponse, Problem> {
    let (caller, handle) = caller_in(&state, &headers, &id).await?;
    // Only staff with an account has a library to run from.
    let account = caller
        .account
        .ok_or_else(|| Problem::forbidden("only the primary CSR runs scripts"))?
        .account;
    let unknown = || Problem::not_found("unknown_script", "no such script in your library");
    let mut items = Vec::with_capacity(body.scripts.len());
    for s in body.scripts.iter().take(64) {
        let id: Uuid = s.parse().map_err(|_| unknown())?;
        let script = state.store.script(id).await?.ok_or_else(unknown)?;
        if !script.published && script.owner != account {
            return Err(unknown());
        }
        // The input is part of what the customer allows: its digest is shown and checked too.
        let input_sha256 = match state.store.script_files(id).await? {
            Some((_, Some(input))) => Some(hex::encode(Sha256::digest(&input.bytes))),
            _ => None,
        };
        items.push(ScriptItem {
            script: script.id.to_string(),
            name: script.name,
            sha256: script.sha256,
            size: u64::try_from(script.size).unwrap_or(0),
            input: script.input_name,
            input_sha256,
        });
    }
    let request = ask(&handle.actor, |reply| SessionMsg::ProposeScripts {
        by: caller.participant,
        scripts: if body.scripts.len() > 64 {
            Vec::new()
        } else {
            items.clone()
        },
        reply,
    })
    .await??;
    Ok((
        StatusCode::CREATED,
        ApiJson(json!({"request": request, "scripts": items})),
    ))
}

/// `GET /api/sessions/{id}/script-runs/{request}/{index}`: the script's files (base64).
pub async fn fetch(
    State(state): State<AppState>,
    Path((id, request, index)): Path<(String, u32, usize)>,
    headers: axum::http::HeaderMap,
) -> Result<impl IntoResponse, Problem> {
    let (caller, handle) = caller_in(&state, &headers, &id).await?;
    let item = ask(&handle.actor, |reply| SessionMsg::ScriptItem {
        computer: caller.participant,
        request,
        index,
        reply,
    })
    .await??;
    let gone = || {
        Problem::new(
            StatusCode::GONE,
            "script_deleted",
            "this script was deleted from the library after it was allowed",
        )
    };
    let script: Uuid = item.script.parse().map_err(|_| gone())?;
    let (file, input) = state.store.script_files(script).await?.ok_or_else(gone)?;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    Ok(ApiJson(json!({
        "name": item.name,
        "file": {"name": file.name, "content_base64": b64(&file.bytes)},
        "input": input.map(|i| json!({"name": i.name, "content_base64": b64(&i.bytes)})),
    })))
}

/// `POST /api/sessions/{id}/script-runs/{request}/{index}`: how it ended; 204.
pub async fn finished(
    State(state): State<AppState>,
    Path((id, request, index)): Path<(String, u32, usize)>,
    headers: axum::http::HeaderMap,
    ApiJson(outcome): ApiJson<ScriptOutcome>,
) -> Result<impl IntoResponse, Problem> {
    let (caller, handle) = caller_in(&state, &headers, &id).await?;
    if outcome.refused.as_ref().is_some_and(|r| r.len() > 1000) {
        return Err(Problem::unprocessable(
            "invalid_body",
            "why a script was not run is at most 1000 bytes",
        ));
    }
    if outcome.output.len() > MAX_OUTPUT_BYTES {
        return Err(Problem::unprocessable(
            "invalid_body",
            format!(
                "a script's log is at most {MAX_OUTPUT_BYTES} bytes; send its start and set truncated"
            ),
        ));
    }
    ask(&handle.actor, |reply| SessionMsg::ScriptFinished {
        computer: caller.participant,
        request,
        index,
        outcome,
        reply,
    })
    .await??;
    Ok(StatusCode::NO_CONTENT)
}
