//! Admin settings.

use axum::extract::State;

use super::{ApiJson, AppState, Caller};
use crate::problem::Problem;
use crate::store::{AccountRole, RecorderKind, Settings};

/// Most quick phrases, and longest phrase in characters.
const MAX_PHRASES: usize = 100;
const MAX_PHRASE_CHARS: usize = 500;

pub async fn get_settings(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<ApiJson<Settings>, Problem> {
    Ok(ApiJson(state.store.settings().await?))
}

pub async fn put_settings(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(s): ApiJson<Settings>,
) -> Result<ApiJson<Settings>, Problem> {
    caller.require(&[AccountRole::Admin])?;
    if s.quick_phrases.len() > MAX_PHRASES
        || s.quick_phrases
            .iter()
            .any(|p| p.trim().is_empty() || p.chars().count() > MAX_PHRASE_CHARS)
    {
        return Err(Problem::unprocessable(
            "invalid_quick_phrases",
            format!("up to {MAX_PHRASES} phrases of 1 to {MAX_PHRASE_CHARS} characters"),
        ));
    }
    if !(1..=100).contains(&s.max_customers_per_session) {
        return Err(Problem::unprocessable(
            "invalid_max_customers",
            "max_customers_per_session is 1 to 100",
        ));
    }
    // SPEC R2, R3: only the network recorder is built.
    if s.default_recorder == RecorderKind::Local {
        return Err(Problem::unprocessable(
            "recorder_not_available",
            "the local recorder is not available on this server; the default recorder can only be \"network\"",
        ));
    }
    state.store.put_settings(&s).await?;
    Ok(ApiJson(s))
}
