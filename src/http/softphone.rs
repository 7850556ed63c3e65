//! A support account's softphone (SPEC V5). Its SIP password is what it answers digest
//! challenges with when it registers or calls: digest cannot use the argon2 sign-in hash, so
//! this is a separate password, stored only as HA1 hashes for the configured realm; the
//! account itself or an admin may set, see or remove it. The account setting its own proves
//! its sign-in password first: a stolen session token alone must not plant a SIP password
//! that outlives it. And a CSR in a session can have
//! Tandem ring their registered softphone, which joins the session as them when answered.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_actors::ids::AccountId;

use super::accounts::Guesses;
use super::sessions::{live_by_id, parse_session_id};
use super::{ApiJson, AppState, Caller, SUPPORT_ROLES};
use crate::auth::MIN_PASSWORD_CHARS;
use crate::problem::Problem;
use crate::sip::accounts::DialFailure;
use crate::sip::digest::SipCredential;
use crate::sip::endpoint::DialError;
use crate::store::{AccountRole, SipCredentialRow, User};

/// The account `id`, if the caller is it or an admin.
async fn target(state: &AppState, caller: &Caller, id: &str) -> Result<User, Problem> {
    let unknown = || Problem::not_found("unknown_user", "no such account");
    let id: AccountId = id.parse().map_err(|_| unknown())?;
    if caller.0.id != id && !caller.is_admin() {
        return Err(Problem::forbidden(
            "only the account itself or an admin can manage its SIP password",
        ));
    }
    state.store.user_by_id(id).await?.ok_or_else(unknown)
}

fn view(state: &AppState, user: &User) -> Value {
    let realm = state.sip_accounts.realm();
    let configured = state.sip_accounts.has_credential(&user.username);
    // Without a password no binding is valid, even if the endpoint has not dropped it yet.
    let bindings = if configured {
        state.sip_accounts.registrations_of(&user.username)
    } else {
        Vec::new()
    };
    let registrations: Vec<Value> = bindings
        .into_iter()
        .map(|b| {
            json!({
                "contact": b.contact,
                "source": b.source.to_string(),
                "transport": b.transport,
                "user_agent": b.user_agent,
                "expires_at": b.expires_wall.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_millis() as u64,
            })
        })
        .collect();
    json!({
        "username": user.username,
        "realm": realm,
        "uri": format!("sip:{}@{realm}", user.username),
        "configured": configured,
        "algorithms": state.sip_accounts.algorithms().iter().map(|a| a.name()).collect::<Vec<_>>(),
        // Where the softphone registers and calls; null when SIP is off.
        "server": state.sip_accounts.server().map(|a| a.to_string()),
        "service_number": state.config.sip.service_number,
        "registrations": registrations,
    })
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<ApiJson<Value>, Problem> {
    let user = target(&state, &caller, &id).await?;
    Ok(ApiJson(view(&state, &user)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    password: String,
    /// The caller's sign-in password: required when setting one's own.
    #[serde(default)]
    current_password: Option<String>,
}

pub async fn put(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SetPassword>,
) -> Result<ApiJson<Value>, Problem> {
    let user = target(&state, &caller, &id).await?;
    if !matches!(user.role, AccountRole::Csr | AccountRole::Agent) {
        return Err(Problem::unprocessable(
            "not_support_staff",
            "only CSRs and agents join sessions by softphone",
        ));
    }
    let password = body.password;
    if password.chars().count() < MIN_PASSWORD_CHARS
        || password.len() > 1024
        || password.chars().any(char::is_control)
    {
        return Err(Problem::unprocessable(
            "weak_password",
            format!(
                "SIP passwords are {MIN_PASSWORD_CHARS} to 1024 characters, without control characters"
            ),
        ));
    }
    if caller.0.id == user.id {
        // Guesses here count with failed sign-ins, so this is no way around their limit.
        let guesses = Guesses::new(&user.username, peer.ip());
        guesses
            .before_check(&state, "failed password checks")
            .await?;
        let current = body.current_password.ok_or_else(|| {
            Problem::unprocessable(
                "current_password_required",
                "give your sign-in password to set your SIP password",
            )
        })?;
        let proven = state
            .hashing
            .verify(current.clone(), user.password_hash.clone())
            .await?;
        if !proven {
            guesses.failed(&state);
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "wrong_current_password",
                "the sign-in password is not right",
            ));
        }
        // Digest hashes are far weaker than argon2: the sign-in password must not be exposed
        // through them. (An admin setting another's has no way to know it, and is not told
        // whether a guess matches.)
        if password == current {
            return Err(Problem::unprocessable(
                "sip_password_is_sign_in_password",
                "choose a SIP password other than the sign-in password",
            ));
        }
    }
    let cred = SipCredential::new(&user.username, state.sip_accounts.realm(), &password);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    state
        .store
        .set_sip_credential(
            user.id,
            &SipCredentialRow {
                realm: cred.realm,
                ha1_md5: cred.ha1_md5,
                ha1_sha256: cred.ha1_sha256,
                updated_at: now,
            },
            now,
        )
        .await?;
    state.sip_accounts.reload(&state.store).await?;
    tracing::info!(user = %user.username, by = %caller.0.username, "SIP password set");
    Ok(ApiJson(view(&state, &user)))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let user = target(&state, &caller, &id).await?;
    if !state.store.delete_sip_credential(user.id).await? {
        return Err(Problem::not_found(
            "no_sip_password",
            "this account has no SIP password",
        ));
    }
    state.sip_accounts.reload(&state.store).await?;
    tracing::info!(user = %user.username, by = %caller.0.username, "SIP password removed");
    Ok(StatusCode::NO_CONTENT)
}

/// Rings the caller's registered softphone into session `id`; answers once it has joined
/// (201), or why not. The request lasts as long as the phone rings (at most about a minute).
pub async fn call(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, ApiJson<Value>), Problem> {
    let user = caller.require(SUPPORT_ROLES)?;
    let id = parse_session_id(&id)?;
    let handle = live_by_id(&state, id)
        .await?
        .ok_or_else(|| Problem::not_found("unknown_session", "no live session has that id"))?;
    if !state.store.took_part(id, user.id).await? {
        return Err(Problem::forbidden(
            "join the session before calling your softphone into it",
        ));
    }
    let account = state.sip_accounts.account(&user.username).ok_or_else(|| {
        Problem::conflict(
            "no_sip_password",
            "set a SIP password and register your softphone first",
        )
    })?;
    let joined = state
        .sip_accounts
        .dial(account, handle)
        .await
        .map_err(|e| {
            let (status, code) = match &e {
                DialFailure::SipDisabled => (StatusCode::SERVICE_UNAVAILABLE, "sip_disabled"),
                DialFailure::NotPlaced(DialError::NotRegistered | DialError::BadContact) => {
                    (StatusCode::CONFLICT, "no_softphone_registered")
                }
                DialFailure::NotPlaced(DialError::TooManyCalls) => {
                    (StatusCode::SERVICE_UNAVAILABLE, "sip_busy")
                }
                DialFailure::NotPlaced(DialError::AlreadyRinging) => {
                    (StatusCode::CONFLICT, "softphone_already_ringing")
                }
                DialFailure::Declined(_) => (StatusCode::CONFLICT, "softphone_declined"),
                DialFailure::NoAnswer => (StatusCode::CONFLICT, "softphone_no_answer"),
                DialFailure::Unreachable => (StatusCode::BAD_GATEWAY, "softphone_unreachable"),
                DialFailure::JoinFailed => (StatusCode::BAD_GATEWAY, "softphone_join_failed"),
            };
            Problem::new(status, code, e.to_string())
        })?;
    Ok((
        StatusCode::CREATED,
        ApiJson(json!({ "participant_name": joined })),
    ))
}
