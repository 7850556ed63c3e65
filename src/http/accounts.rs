//! Sign-in and accounts: creating, disabling and re-enabling them, and signing them out
//! everywhere (their token generation moves on, crate::auth).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use super::client_address::ClientAddress;
use super::{ApiJson, AppState, Caller, check_throttle, record_failure};
use crate::auth::{self, Denied, MIN_PASSWORD_CHARS, Token};
use crate::mail::looks_like_email;
use crate::problem::Problem;
use crate::store::{AccountRole, DisableRefusal, User};
use crate::throttle::subscriber;
use tandem_actors::ids::AccountId;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    username: String,
    password: String,
}

pub async fn login(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    ApiJson(body): ApiJson<Login>,
) -> Result<impl IntoResponse, Problem> {
    let guesses = Guesses::new(&body.username, client);
    guesses.before_check(&state, "failed sign-ins").await?;
    let user = state.store.user_by_username(&body.username).await?;
    let stored = user.as_ref().map_or_else(
        || auth::decoy_hash().to_string(),
        |u| u.password_hash.clone(),
    );
    let ok = state.hashing.verify(body.password, stored).await?;
    let user = match (ok, user) {
        (true, Some(u)) => u,
        _ => {
            guesses.failed(&state);
            return Err(Problem::unauthorized(
                "invalid_credentials",
                "wrong username or password",
            ));
        }
    };
    guesses.succeeded(&state);
    // Only someone who knows the password learns that the account is disabled: to anyone else
    // it answers as a wrong password does.
    auth::check_holder(&user, user.token_generation)?;
    let now = auth::unix_secs();
    let ttl = state.config.auth.access_token_ttl_secs;
    let token = state.signer.sign(
        &Token::Access {
            account: user.id,
            role: user.role,
            generation: user.token_generation,
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

/// `POST /api/logout` (issue 18): this sign-in's token stops working at once, here and after
/// a restart; the account's other sign-ins go on ("sign out everywhere" ends them all).
pub async fn logout(
    State(state): State<AppState>,
    _caller: Caller,
    headers: axum::http::HeaderMap,
) -> Result<StatusCode, Problem> {
    let token = super::bearer(&headers).unwrap_or_default();
    let expires = state.signer.expires_at(token)?;
    let id = crate::signed_out::token_id(token);
    let now = crate::auth::unix_secs();
    state.store.put_signed_out(&id, expires, now).await?;
    state.signed_out.add(id, expires, now);
    Ok(StatusCode::NO_CONTENT)
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

impl From<Denied> for Problem {
    fn from(d: Denied) -> Self {
        match d {
            Denied::Disabled => Problem::new(StatusCode::FORBIDDEN, d.code(), d.to_string()),
            Denied::Revoked => Problem::unauthorized(d.code(), d.to_string()),
        }
    }
}

fn account_id(id: &str) -> Result<AccountId, Problem> {
    id.parse()
        .map_err(|_| Problem::not_found("unknown_user", "no such account"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    disabled: bool,
}

/// An admin disables or re-enables an account. Disabling signs it out everywhere at once (its
/// tokens, its open WebSockets, its softphone's SIP password); an admin cannot disable
/// themself or the last enabled admin.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(change): ApiJson<UserChange>,
) -> Result<ApiJson<User>, Problem> {
    let admin = caller.require(&[AccountRole::Admin])?;
    let id = account_id(&id)?;
    if change.disabled && id == admin.id {
        return Err(Problem::conflict(
            "cannot_disable_self",
            "you cannot disable your own account",
        ));
    }
    let user = match state.store.set_disabled(id, change.disabled).await? {
        Ok(user) => user,
        Err(DisableRefusal::UnknownAccount) => {
            return Err(Problem::not_found("unknown_user", "no such account"));
        }
        Err(DisableRefusal::LastAdmin) => {
            return Err(Problem::conflict(
                "last_admin",
                "this is the last enabled admin account; enable or create another admin first",
            ));
        }
    };
    let why = if change.disabled {
        Denied::Disabled
    } else {
        Denied::Revoked
    };
    state.revocations.revoke(id, why);
    // The softphone's password stops (or starts again) working with the account.
    state
        .sip_accounts
        .reload(&state.store)
        .await
        .map_err(Problem::internal)?;
    tracing::info!(account = %user.username, disabled = user.disabled, by = %admin.username, "account access changed");
    Ok(ApiJson(user))
}

/// Signs an account out everywhere: every token it holds is refused from now on and its open
/// WebSockets close. The account itself may ask ("sign out everywhere"), or an admin.
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let id = account_id(&id)?;
    if caller.0.id != id && !caller.is_admin() {
        return Err(Problem::forbidden(
            "only the account itself or an admin can sign it out everywhere",
        ));
    }
    state
        .store
        .revoke_tokens(id)
        .await?
        .ok_or_else(|| Problem::not_found("unknown_user", "no such account"))?;
    state.revocations.revoke(id, Denied::Revoked);
    tracing::info!(account = %id, by = %caller.0.username, "signed out everywhere");
    Ok(StatusCode::NO_CONTENT)
}

/// How long failed sign-ins are remembered.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failed sign-ins for one account from one address (an IPv6 /64 as one) within the window,
/// after which that address must wait for that account. Other addresses are not held up.
pub const LOGIN_FAILURES: usize = 5;
/// Failures for one account from anywhere after which each sign-in for it is slowed.
const SLOW_AFTER: usize = 5;
/// The longest a sign-in is slowed.
const MAX_SLOWDOWN: Duration = Duration::from_secs(4);
/// Accounts and addresses remembered at most (the oldest are forgotten past this).
pub const LOGIN_KEYS: usize = 100_000;

/// How long a password check for an account waits when the account has failed `failures`
/// times lately, from anywhere: nothing at first, then from 250 ms doubling up to 4 s. An
/// account is slowed, never locked, so nobody can keep its owner out by guessing; together
/// with the bound on password checks at once (crate::hashing) this caps how fast anyone can
/// guess at one account.
pub fn slowdown(failures: usize) -> Duration {
    if failures <= SLOW_AFTER {
        return Duration::ZERO;
    }
    let doublings = (failures - SLOW_AFTER - 1).min(8) as u32;
    (Duration::from_millis(250) * 2u32.pow(doublings)).min(MAX_SLOWDOWN)
}

/// What a password check is counted against: this account from this address (which must wait
/// after [`LOGIN_FAILURES`]) and this account from anywhere (which is slowed).
pub struct Guesses {
    pair: String,
    account: String,
}

impl Guesses {
    pub fn new(username: &str, from: IpAddr) -> Self {
        let account = username.to_lowercase();
        Self {
            pair: format!("{account} from {}", subscriber(from)),
            account,
        }
    }

    /// Refuses (429) while this address has failed too often for this account; else waits as
    /// long as the account's recent failures ask.
    pub async fn before_check(&self, state: &AppState, what: &str) -> Result<(), Problem> {
        check_throttle(&state.login_throttle, &self.pair, what)?;
        let failures = state
            .account_failures
            .lock()
            .expect("throttle lock poisoned")
            .recent(&self.account, Instant::now());
        tokio::time::sleep(slowdown(failures)).await;
        Ok(())
    }

    pub fn failed(&self, state: &AppState) {
        record_failure(&state.login_throttle, &self.pair);
        record_failure(&state.account_failures, &self.account);
    }

    pub fn succeeded(&self, state: &AppState) {
        for (throttle, key) in [
            (&state.login_throttle, &self.pair),
            (&state.account_failures, &self.account),
        ] {
            throttle
                .lock()
                .expect("throttle lock poisoned")
                .succeed(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_slowed_more_with_each_failure_and_never_past_four_seconds() {
        assert_eq!(slowdown(0), Duration::ZERO);
        assert_eq!(slowdown(SLOW_AFTER), Duration::ZERO);
        assert_eq!(slowdown(SLOW_AFTER + 1), Duration::from_millis(250));
        assert_eq!(slowdown(SLOW_AFTER + 2), Duration::from_millis(500));
        assert_eq!(slowdown(SLOW_AFTER + 4), Duration::from_secs(2));
        assert_eq!(slowdown(SLOW_AFTER + 5), MAX_SLOWDOWN);
        assert_eq!(slowdown(10_000), MAX_SLOWDOWN);
    }
}
