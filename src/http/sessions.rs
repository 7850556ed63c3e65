//! Support sessions over HTTP: start, invite, join, assist, look at, list, report.
//! What happens inside a session goes over the participant's WebSocket ([`super::ws`]).

use std::net::IpAddr;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_actors::ids::{ParticipantId, SessionId, SessionNumber};
use tandem_actors::protocol::{Event, ParticipantInfo, Role};
use tandem_actors::session::rules::Refusal;
use tandem_actors::session::{SessionError, SessionMsg};
use tandem_actors::session_registry::{NewSession, SessionHandle, SessionRegistryMsg};

use super::client_address::ClientAddress;
use super::{ApiJson, AppState, Caller, SUPPORT_ROLES, ask, optional_email};
use crate::auth::{self, Token};
use crate::mail::mailto_link;
use crate::problem::Problem;
use crate::store::{AccountRole, User};

const MAX_TOPIC_CHARS: usize = 200;
const MAX_NAME_CHARS: usize = 80;

pub async fn live_by_id(state: &AppState, id: SessionId) -> Result<Option<SessionHandle>, Problem> {
    ask(&state.directory.sessions(), |reply| {
        SessionRegistryMsg::ById { id, reply }
    })
    .await
}

pub fn parse_session_id(s: &str) -> Result<SessionId, Problem> {
    s.parse()
        .map_err(|_| Problem::not_found("unknown_session", "no such session"))
}

fn staff_info(user: &User) -> ParticipantInfo {
    ParticipantInfo {
        id: ParticipantId::random(),
        role: Role::Csr,
        name: user.display_name.clone(),
        email: Some(user.email.clone()),
        account: Some(user.id),
        is_agent: user.role == AccountRole::Agent,
        phone: false,
    }
}

/// Signs the participant token and shapes the answer every join path gives.
pub fn joined(
    state: &AppState,
    h: &SessionHandle,
    topic: &Value,
    id: ParticipantId,
    role: Role,
    account: Option<auth::Holder>,
) -> Value {
    let token = state.signer.sign(
        &Token::Participant {
            session: h.id,
            participant: id,
            role,
            account,
        },
        auth::unix_secs(),
        state.config.auth.participant_token_ttl_secs,
    );
    json!({
        "session": {"id": h.id, "number": h.number, "topic": topic},
        "participant": {"id": id, "role": role},
        "token": token,
        "websocket": "/ws?token=",
    })
}

async fn view(h: &SessionHandle, viewer: Option<ParticipantId>) -> Result<Value, Problem> {
    ask(&h.actor, |reply| SessionMsg::View { viewer, reply }).await
}

fn invite_link(state: &AppState, session: SessionId, role: Role) -> (String, String, u64) {
    let now = auth::unix_secs();
    let ttl = state.config.auth.invite_ttl_secs;
    let token = state
        .signer
        .sign(&Token::Invite { session, role }, now, ttl);
    // A customer's link opens the join page; an assistant's opens the console, which joins the
    // session once the CSR is signed in (issue 18: the join page cannot take a CSR in).
    let page = match role {
        Role::Customer => "/join?invite=",
        Role::Csr => "/?assist=",
    };
    let link = format!(
        "{}{page}{token}",
        state.config.server.public_url.trim_end_matches('/'),
    );
    (link, token, (now + ttl) * 1000)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    #[serde(default)]
    topic: Option<String>,
}

/// SPEC S1: a CSR starts a session and becomes its primary CSR.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<impl IntoResponse, Problem> {
    let user = caller.require(SUPPORT_ROLES)?;
    let topic = body.topic.as_deref().map(str::trim).unwrap_or("");
    if topic.chars().count() > MAX_TOPIC_CHARS {
        return Err(Problem::unprocessable(
            "invalid_topic",
            format!("topics are at most {MAX_TOPIC_CHARS} characters"),
        ));
    }
    let topic = if topic.is_empty() {
        "Support session"
    } else {
        topic
    };
    let settings = state.store.settings().await?;
    let new = NewSession {
        topic: topic.to_string(),
        host: user.id,
        max_customers: settings.max_customers_per_session,
        quick_phrases: settings
            .quick_phrases_enabled
            .then_some(settings.quick_phrases),
        automatic_recording: settings.automatic_recording,
    };
    let handle = ask(&state.directory.sessions(), |reply| {
        SessionRegistryMsg::Create { new, reply }
    })
    .await??;
    let info = staff_info(user);
    let id = ask(&handle.actor, |reply| SessionMsg::Join {
        info,
        as_primary: true,
        reply,
    })
    .await??;
    let holder = Some(auth::Holder::of(user));
    let mut answer = joined(&state, &handle, &json!(topic), id, Role::Csr, holder);
    let (link, token, expires_at) = invite_link(&state, handle.id, Role::Customer);
    let short = super::short_links::make(&state, &link, expires_at / 1000).await?;
    answer["invite"] =
        json!({"link": link, "short_link": short, "token": token, "expires_at": expires_at});
    Ok((StatusCode::CREATED, ApiJson(answer)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum InviteRole {
    Customer,
    Assistant,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteBody {
    #[serde(default = "default_invite_role")]
    role: InviteRole,
    #[serde(default)]
    email: Option<String>,
    /// Have the server send the e-mail (needs the mail settings); otherwise only a mailto: link.
    #[serde(default)]
    send: bool,
}

fn default_invite_role() -> InviteRole {
    InviteRole::Customer
}

/// SPEC S4, S5: an invite link for a customer or an assistant, as a mailto: link and optionally
/// sent by the server.
pub async fn invite(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<InviteBody>,
) -> Result<impl IntoResponse, Problem> {
    let user = caller.require(SUPPORT_ROLES)?;
    let id = parse_session_id(&id)?;
    let handle = live_by_id(&state, id)
        .await?
        .ok_or_else(|| Problem::not_found("unknown_session", "no live session with that id"))?;
    let v = view(&handle, None).await?;
    let present = v["participants"]
        .as_array()
        .is_some_and(|ps| ps.iter().any(|p| p["account"] == json!(user.id)));
    if !present {
        return Err(Problem::forbidden(
            "only CSRs in this session can invite to it",
        ));
    }
    let email = optional_email(body.email.as_deref())?;
    let role = match body.role {
        InviteRole::Customer => Role::Customer,
        InviteRole::Assistant => Role::Csr,
    };
    let (link, token, expires_at) = invite_link(&state, id, role);
    // Issue 18: a short link to read out or type; the long one for those who want it.
    let short = super::short_links::make(&state, &link, expires_at / 1000).await?;
    let number = handle.number;
    let subject = format!(
        "{} invites you to a Tandem support session",
        user.display_name
    );
    let text = format!(
        "{} invites you to join a support session.\n\nJoin: {short}\n\nOr open {}/join and enter session number {number}.\n",
        user.display_name,
        state.config.server.public_url.trim_end_matches('/'),
    );
    let mailto = email.map(|e| mailto_link(e, &subject, &text));
    let mut emailed = false;
    if body.send {
        let to = email.ok_or_else(|| {
            Problem::unprocessable("email_required", "give an e-mail address to send to")
        })?;
        let mailer = state.mailer.as_ref().ok_or_else(|| {
            Problem::conflict(
                "mail_disabled",
                "this server does not send e-mail; use the mailto link",
            )
        })?;
        state
            .mail_limits
            .admit(user.id, to, std::time::Instant::now())?;
        mailer.send(to, &subject, &text).await.map_err(|e| {
            tracing::warn!(error = %e, "invitation e-mail failed");
            Problem::new(
                StatusCode::BAD_GATEWAY,
                "mail_failed",
                "the mail server refused the invitation",
            )
        })?;
        emailed = true;
    }
    Ok((
        StatusCode::CREATED,
        ApiJson(json!({
            "link": link,
            "short_link": short,
            "token": token,
            "expires_at": expires_at,
            "number": number,
            "mailto": mailto,
            "emailed": emailed,
        })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinBody {
    #[serde(default)]
    number: Option<String>,
    #[serde(default)]
    invite: Option<String>,
    /// Required of customers; CSRs joining as assistants are known by their account.
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

/// The live session with this number, the try counted in the one budget of session numbers
/// for every way of trying one (src/throttle/session_numbers.rs): 429 too_many_attempts with
/// Retry-After past it, 404 unknown_session when no live session has the number.
async fn by_number(
    state: &AppState,
    from: IpAddr,
    number: &str,
    unknown: &str,
) -> Result<SessionHandle, Problem> {
    let number: SessionNumber = number.parse().map_err(|_| {
        Problem::unprocessable("invalid_session_number", "a session number is 9 digits")
    })?;
    let attempt = state.session_numbers.attempt(from).map_err(|refused| {
        crate::metrics::session_number_try("http", refused.label());
        let secs = refused.retry_after_secs();
        Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!("too many unknown session numbers; try again in {secs} s"),
        )
        .with_retry_after(secs)
    })?;
    let found = ask(&state.directory.sessions(), |reply| {
        SessionRegistryMsg::ByNumber { number, reply }
    })
    .await;
    match found {
        Ok(Some(h)) => {
            state.session_numbers.right(attempt);
            crate::metrics::session_number_try("http", "right");
            Ok(h)
        }
        Ok(None) => {
            crate::metrics::session_number_try("http", "wrong");
            Err(Problem::not_found("unknown_session", unknown))
        }
        Err(busy) => {
            // Nothing was learnt: the try counts against nobody.
            state.session_numbers.right(attempt);
            Err(busy)
        }
    }
}

/// SPEC S1, S4, S5: join by session number or invite link.
pub async fn join(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    ApiJson(body): ApiJson<JoinBody>,
) -> Result<impl IntoResponse, Problem> {
    let (handle, role) = match (&body.number, &body.invite) {
        (Some(number), None) => {
            let unknown =
                "no live session has that number; check it with your support representative";
            (
                by_number(&state, client, number, unknown).await?,
                Role::Customer,
            )
        }
        (None, Some(invite)) => {
            let Token::Invite { session, role } = state.signer.verify(invite)? else {
                return Err(Problem::unauthorized(
                    "wrong_token_kind",
                    "this is not an invite",
                ));
            };
            let h = live_by_id(&state, session).await?.ok_or_else(|| {
                Problem::new(StatusCode::GONE, "session_ended", "that session has ended")
            })?;
            (h, role)
        }
        _ => {
            return Err(Problem::unprocessable(
                "number_or_invite",
                "give either a session number or an invite, not both",
            ));
        }
    };
    let (info, holder) = if role == Role::Csr {
        // An assistant invite only works for a signed-in CSR (SPEC S5).
        let caller = Caller::from_headers(&state, &headers).await?;
        let user = caller.require(SUPPORT_ROLES)?;
        (staff_info(user), Some(auth::Holder::of(user)))
    } else {
        let name = body.name.as_deref().unwrap_or("").trim();
        if name.is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(Problem::unprocessable(
                "invalid_name",
                format!("names are 1 to {MAX_NAME_CHARS} printable characters"),
            ));
        }
        let email = optional_email(body.email.as_deref())?;
        let info = ParticipantInfo {
            id: ParticipantId::random(),
            role: Role::Customer,
            name: name.to_string(),
            email: email.map(str::to_string),
            account: None,
            is_agent: false,
            phone: false,
        };
        (info, None)
    };
    Ok((
        StatusCode::CREATED,
        ApiJson(join_as(&state, &handle, info, holder).await?),
    ))
}

/// Joins someone (not as primary) and answers as every join path does.
async fn join_as(
    state: &AppState,
    handle: &SessionHandle,
    info: ParticipantInfo,
    holder: Option<auth::Holder>,
) -> Result<Value, Problem> {
    let role = info.role;
    // A customer takes a slot only when their WebSocket connects (see `SessionMsg::Admit`).
    let id = if role == Role::Customer {
        let joins_per_minute = state.config.sessions.joins_per_minute;
        ask(&handle.actor, |reply| SessionMsg::Admit {
            info,
            joins_per_minute,
            reply,
        })
        .await?
        .map_err(too_many_joins)?
    } else {
        ask(&handle.actor, |reply| SessionMsg::Join {
            info,
            as_primary: false,
            reply,
        })
        .await??
    };
    let v = view(handle, None).await?;
    Ok(joined(state, handle, &v["topic"], id, role, holder))
}

/// The join rate limit is a refusal of load: 429 with Retry-After.
fn too_many_joins(e: SessionError) -> Problem {
    match e {
        SessionError::Refused(Refusal::TooManyJoins(secs)) => Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_joins",
            "too many people joined this session in the last minute; try again shortly",
        )
        .with_retry_after(secs),
        e => e.into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssistBody {
    number: String,
}

/// SPEC S5: a CSR joins a session as assistant by its number.
pub async fn assist(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    caller: Caller,
    ApiJson(body): ApiJson<AssistBody>,
) -> Result<impl IntoResponse, Problem> {
    let user = caller.require(SUPPORT_ROLES)?;
    let handle = by_number(
        &state,
        client,
        &body.number,
        "no live session has that number",
    )
    .await?;
    let holder = Some(auth::Holder::of(user));
    let answer = join_as(&state, &handle, staff_info(user), holder).await?;
    Ok((StatusCode::CREATED, ApiJson(answer)))
}

/// May this account see this session's details and report?
async fn may_see(state: &AppState, caller: &Caller, id: SessionId) -> Result<(), Problem> {
    if caller.is_admin() || state.store.took_part(id, caller.0.id).await? {
        Ok(())
    } else if state.store.session(id).await?.is_none() {
        Err(Problem::not_found("unknown_session", "no such session"))
    } else {
        Err(Problem::forbidden(
            "only the session's CSRs and admins can see it",
        ))
    }
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<ApiJson<Value>, Problem> {
    let id = parse_session_id(&id)?;
    may_see(&state, &caller, id).await?;
    if let Some(h) = live_by_id(&state, id).await? {
        let mut v = view(&h, None).await?;
        v["live"] = json!(true);
        return Ok(ApiJson(v));
    }
    let s = state
        .store
        .session(id)
        .await?
        .ok_or_else(|| Problem::not_found("unknown_session", "no such session"))?;
    let mut v = serde_json::to_value(s).map_err(Problem::internal)?;
    v["live"] = json!(false);
    Ok(ApiJson(v))
}

/// Longer keyword searches are refused: matching costs grow with the words' length, and no
/// topic, name or note worth finding needs more.
const MAX_SEARCH_CHARS: usize = 200;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    from: Option<i64>,
    #[serde(default)]
    to: Option<i64>,
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
    /// Admins see every session unless they ask for their own.
    #[serde(default)]
    mine: bool,
}

/// SPEC A2 (in part): the caller's sessions, newest first, by date range and keyword.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<ApiJson<Value>, Problem> {
    let Query(q) = query?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(Problem::bad_request("invalid_query", "limit is 1 to 500"));
    }
    let account = (!caller.is_admin() || q.mine).then_some(caller.0.id);
    let text = q.q.as_deref().map(str::trim).filter(|t| !t.is_empty());
    if text.is_some_and(|t| t.chars().count() > MAX_SEARCH_CHARS) {
        return Err(Problem::bad_request(
            "invalid_query",
            format!("q is at most {MAX_SEARCH_CHARS} characters"),
        ));
    }
    let sessions = state
        .store
        .sessions(account, q.from, q.to, text, limit)
        .await?;
    Ok(ApiJson(json!({ "sessions": sessions })))
}

/// SPEC S11, RP2: the session detail report, from the journal.
pub async fn report(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<ApiJson<Value>, Problem> {
    let id = parse_session_id(&id)?;
    may_see(&state, &caller, id).await?;
    let summary = state
        .store
        .session(id)
        .await?
        .ok_or_else(|| Problem::not_found("unknown_session", "no such session"))?;
    let participants = state.store.participants(id).await?;
    let notes = state.store.session_notes(id).await?;
    let records = state.store.records(id).await?;
    let recordings: Vec<Value> = state
        .store
        .recordings_of_session(id)
        .await?
        .iter()
        .map(|r| {
            json!({
                "id": r.id, "name": r.name, "status": r.status, "created_at": r.created_at,
                "ended_at": r.ended_at, "duration_ms": r.duration_ms,
            })
        })
        .collect();
    let name = |p: &ParticipantId| {
        participants
            .iter()
            .find(|r| r.id == *p)
            .map_or_else(|| "?".to_string(), |r| r.name.clone())
    };
    let mut chat = Vec::new();
    let mut consent = Vec::new();
    let mut activities = Vec::new();
    let mut files = Vec::new();
    let mut system_info = Vec::new();
    let mut script_logs = Vec::new();
    // M4: who the CSR signed in as on whose computer, and how it went (never a password: no
    // event holds one).
    let mut logins = Vec::new();
    for r in &records {
        match &r.event {
            Event::Chat { from, to, text } => chat.push(json!({
                "at": r.at, "from": from, "from_name": name(from),
                "to": to, "to_name": to.as_ref().map(name), "text": text,
            })),
            Event::ConsentRequested { request, activity, customer, .. } => consent.push(json!({
                "at": r.at, "request": request, "activity": activity,
                "customer": customer, "customer_name": name(customer), "answer": "asked",
            })),
            Event::ConsentAnswered { request, granted, allow_all, reason } => consent.push(json!({
                "at": r.at, "request": request,
                "answer": if *granted { "granted" } else { "denied" }, "allow_all": allow_all,
                "reason": reason,
            })),
            Event::ConsentWithdrawn { request, cause } => consent.push(json!({
                "at": r.at, "request": request, "answer": "withdrawn", "cause": cause,
            })),
            Event::ActivityStarted { activity, customer, pre_approved } => activities.push(json!({
                "at": r.at, "activity": activity, "customer": customer, "what": "started",
                "pre_approved": pre_approved,
            })),
            Event::ActivityStopped { activity, customer, cause } => activities.push(json!({
                "at": r.at, "activity": activity, "customer": customer, "what": "stopped", "cause": cause,
            })),
            Event::FilePublished { file, customer, by, name: file_name, size, sha256 } => files.push(json!({
                "at": r.at, "file": file, "what": "published", "name": file_name, "size": size,
                "sha256": sha256, "customer": customer, "customer_name": name(customer),
                "by": by, "by_name": name(by),
            })),
            Event::SystemInfoProvided { customer, computer, info } => system_info.push(json!({
                "at": r.at, "customer": customer, "customer_name": name(customer),
                "computer": computer, "info": info,
            })),
            Event::ScriptFinished { request, customer, index, name: script, outcome, .. } => script_logs.push(json!({
                "at": r.at, "request": request, "index": index, "name": script,
                "customer": customer, "customer_name": name(customer), "outcome": outcome,
            })),
            Event::FileWithdrawn { file, customer } => files.push(json!({
                "at": r.at, "file": file, "what": "withdrawn", "customer": customer,
            })),
            Event::LoginAsUserAttempted { customer, user, by, .. } => logins.push(json!({
                "at": r.at, "what": "attempted", "user": user, "customer": customer,
                "customer_name": name(customer), "by": by, "by_name": name(by),
            })),
            Event::LoginAsUserStarted { customer, user, .. } => logins.push(json!({
                "at": r.at, "what": "started", "user": user, "customer": customer,
                "customer_name": name(customer),
            })),
            Event::LoginAsUserFailed { customer, user, code, .. } => logins.push(json!({
                "at": r.at, "what": "failed", "user": user, "code": code, "customer": customer,
                "customer_name": name(customer),
            })),
            Event::LoginAsUserEnded { customer, user, reason, .. } => logins.push(json!({
                "at": r.at, "what": "ended", "user": user, "reason": reason, "customer": customer,
                "customer_name": name(customer),
            })),
            _ => {}
        }
    }
    Ok(ApiJson(json!({
        "session": summary,
        "notes": notes,
        "participants": participants,
        "chat": chat,
        "consent": consent,
        "activities": activities,
        "files": files,
        "system_info": system_info,
        "script_logs": script_logs,
        "logins": logins,
        "recordings": recordings,
        "events": records.len(),
    })))
}
