//! Queues and transfers (SPEC S8): admins create queues; agents see what waits for them and take
//! it, becoming the session's primary CSR.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_actors::ids::{AccountId, QueueId, SessionId};
use tandem_actors::protocol::Role;
use tandem_actors::queue::rules::Waiting;
use tandem_actors::queue_registry::{Offer, QueueRegistryMsg, TakeError};
use tandem_actors::session::rules::Refusal;
use tandem_actors::session::{SessionError, SessionMsg};

use super::sessions::{joined, live_by_id};
use super::{ApiJson, AppState, Caller, ask};
use crate::problem::Problem;
use crate::store::{AccountRole, Queue};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewQueue {
    name: String,
    #[serde(default)]
    agents: Vec<AccountId>,
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewQueue>,
) -> Result<impl IntoResponse, Problem> {
    caller.require(&[AccountRole::Admin])?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(Problem::unprocessable(
            "invalid_name",
            "queue names are 1 to 80 characters",
        ));
    }
    for a in &body.agents {
        match state.store.user_by_id(*a).await? {
            Some(u) if u.role == AccountRole::Agent => {}
            _ => {
                return Err(Problem::unprocessable(
                    "not_an_agent",
                    format!("account {a} is not an agent"),
                ));
            }
        }
    }
    let q = state
        .store
        .create_queue(name, &body.agents, tandem_actors::session::unix_now())
        .await?;
    state
        .directory
        .queues()
        .cast(QueueRegistryMsg::Upsert {
            id: q.id,
            name: q.name.clone(),
            agents: q.agents.clone(),
        })
        .map_err(Problem::internal)?;
    Ok((StatusCode::CREATED, ApiJson(q)))
}

pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<ApiJson<Vec<Queue>>, Problem> {
    Ok(ApiJson(state.store.queues().await?))
}

/// What the calling agent could take now, oldest first.
pub async fn offers(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<ApiJson<Vec<Offer>>, Problem> {
    let agent = caller.require(&[AccountRole::Agent])?.id;
    Ok(ApiJson(
        ask(&state.directory.queues(), |reply| {
            QueueRegistryMsg::Offers { agent, reply }
        })
        .await?,
    ))
}

fn take_problem(e: TakeError) -> Problem {
    match e {
        TakeError::UnknownQueue => Problem::not_found(e.code(), e.to_string()),
        TakeError::Unavailable => {
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, e.code(), e.to_string())
        }
        _ => Problem::conflict(e.code(), e.to_string()),
    }
}

/// Makes the agent the primary CSR of a session just taken off a queue; puts it back if that
/// fails so no waiting customer is lost.
async fn take_over(
    state: &AppState,
    caller: &Caller,
    queue: Option<QueueId>,
    waiting: Waiting,
) -> Result<Value, Problem> {
    let user = &caller.0;
    let Some(handle) = live_by_id(state, waiting.session).await? else {
        return Err(Problem::new(
            StatusCode::GONE,
            "session_ended",
            "that session has ended",
        ));
    };
    let info = tandem_actors::protocol::ParticipantInfo {
        id: tandem_actors::ids::ParticipantId::random(),
        role: Role::Csr,
        name: user.display_name.clone(),
        email: Some(user.email.clone()),
        account: Some(user.id),
        is_agent: true,
        phone: false,
    };
    let result = ask(&handle.actor, |reply| SessionMsg::AcceptTransfer {
        info,
        reply,
    })
    .await;
    match result {
        Ok(Ok(id)) => {
            let view = ask(&handle.actor, |reply| SessionMsg::View {
                viewer: None,
                reply,
            })
            .await?;
            let holder = Some(crate::auth::Holder::of(user));
            let mut answer = joined(state, &handle, &view["topic"], id, Role::Csr, holder);
            answer["message"] = json!(waiting.message);
            Ok(answer)
        }
        other => {
            // Put it back unless the session says it is not waiting any more (taken by someone
            // else, or ended): then the entry was stale and is dropped.
            let stale = matches!(
                &other,
                Ok(Err(SessionError::Refused(
                    Refusal::NotWaiting | Refusal::SessionEnded
                )))
            );
            if !stale {
                let _ = state
                    .directory
                    .queues()
                    .cast(QueueRegistryMsg::PutBack { queue, waiting });
            }
            match other {
                Ok(Err(e)) => Err(e.into()),
                Err(p) => Err(p),
                Ok(Ok(_)) => unreachable!("handled above"),
            }
        }
    }
}

pub async fn accept(
    State(state): State<AppState>,
    caller: Caller,
    Path(session): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    let agent = caller.require(&[AccountRole::Agent])?.id;
    let session: SessionId = session
        .parse()
        .map_err(|_| Problem::not_found("unknown_session", "no such session"))?;
    let (queue, waiting) = ask(&state.directory.queues(), |reply| QueueRegistryMsg::Take {
        session,
        agent,
        reply,
    })
    .await?
    .map_err(take_problem)?;
    Ok((
        StatusCode::CREATED,
        ApiJson(take_over(&state, &caller, queue, waiting).await?),
    ))
}

pub async fn take_next(
    State(state): State<AppState>,
    caller: Caller,
    Path(queue): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    let agent = caller.require(&[AccountRole::Agent])?.id;
    let queue: QueueId = queue
        .parse()
        .map_err(|_| Problem::not_found("unknown_queue", "no such queue"))?;
    let waiting = ask(&state.directory.queues(), |reply| {
        QueueRegistryMsg::TakeNext {
            queue,
            agent,
            reply,
        }
    })
    .await?
    .map_err(take_problem)?;
    Ok((
        StatusCode::CREATED,
        ApiJson(take_over(&state, &caller, Some(queue), waiting).await?),
    ))
}
