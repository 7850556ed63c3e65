//! Sign-in and accounts.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use super::{ApiJson, AppState, Caller, check_throttle, record_failure};
use crate::auth::{self, MIN_PASSWORD_CHARS, Token};
use crate::mail::looks_like_email;
use crate::problem::Problem;
use crate::store::{AccountRole, User};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    username: String,
    password: String,
}

pub async fn login(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Login>,
) -> Result<impl IntoResponse, Problem> {
    let key = body.username.to_lowercase();
    check_throttle(&state.login_throttle, &key, "failed sign-ins")?;
    let user = state.store.user_by_username(&body.username).await?;
    let stored = user.as_ref().map_or_else(
        || auth::decoy_hash().to_string(),
        |u| u.password_hash.clone(),
    );
    let password = body.password;
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&password, &stored))
        .await
        .map_err(Problem::internal)?;
    let user = match (ok, user) {
        (true, Some(u)) => u,
        _ => {
            record_failure(&state.login_throttle, &key);
            return Err(Problem::unauthorized(
                "invalid_credentials",
                "wrong username or password",
            ));
        }
    };
    state
        .login_throttle
        .lock()
        .expect("throttle lock poisoned")
        .succeed(&key);
    let now = auth::unix_secs();
    let ttl = state.config.auth.access_token_ttl_secs;
    let token = state.signer.sign(
        &Token::Access {
            account: user.id,
            role: user.role,
        },
        now,
        ttl,
    );
    Ok(ApiJson(json!({
        "token": token,
        "expires_at": (now + ttl) * 1000,
        "user": user,
    })))
}

pub async fn me(caller: Caller) -> ApiJson<User> {
    ApiJson(caller.0)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub display_name: String,
    pub email: String,
    pub role: AccountRole,
}

/// Checks a new account's fields; the same rules for the API and the CLI.
pub fn validate_new_user(u: &NewUser) -> Result<(), Problem> {
    let name_ok = (3..=32).contains(&u.username.len())
        && u.username
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if !name_ok {
        return Err(Problem::unprocessable(
            "invalid_username",
            "usernames are 3 to 32 characters: lowercase letters, digits, dot, dash, underscore",
        ));
    }
    if u.password.chars().count() < MIN_PASSWORD_CHARS || u.password.len() > 1024 {
        return Err(Problem::unprocessable(
            "weak_password",
            format!("passwords are {MIN_PASSWORD_CHARS} to 1024 characters"),
        ));
    }
    let display = u.display_name.trim();
    if display.is_empty() || display.chars().count() > 80 {
        return Err(Problem::unprocessable(
            "invalid_display_name",
            "display names are 1 to 80 characters",
        ));
    }
    if !looks_like_email(&u.email) {
        return Err(Problem::unprocessable(
            "invalid_email",
            "that is not an e-mail address",
        ));
    }
    Ok(())
}

/// Creates an account after validation; used by the API and `tandem user add`.
pub async fn create_user(state_store: &crate::store::Store, u: NewUser) -> Result<User, Problem> {
    validate_new_user(&u)?;
    let password = u.password;
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(Problem::internal)?
        .map_err(Problem::internal)?;
    let now = tandem_actors::session::unix_now();
    Ok(state_store
        .create_user(
            &u.username,
            u.display_name.trim(),
            &u.email,
            &hash,
            u.role,
            now,
        )
        .await?)
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewUser>,
) -> Result<impl IntoResponse, Problem> {
    caller.require(&[AccountRole::Admin])?;
    let user = create_user(&state.store, body).await?;
    Ok((StatusCode::CREATED, ApiJson(user)))
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<ApiJson<Vec<User>>, Problem> {
    caller.require(&[AccountRole::Admin])?;
    Ok(ApiJson(state.store.users().await?))
}

/// How long a sign-in token is refused after too many failures.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failed sign-ins per username within the window.
pub const LOGIN_FAILURES: usize = 5;
