//! A customer's computer (Tandem Helper) admitted to a session: paired with a code
//! ([`super::helper`]) or back after a restart ([`super::rejoin`]).

use axum::http::StatusCode;
use serde_json::{Value, json};
use tandem_actors::ids::{ParticipantId, SessionId};
use tandem_actors::protocol::{Activity, Role};
use tandem_actors::session::rules::Refusal;
use tandem_actors::session::{SessionError, SessionMsg};

use super::sessions::{joined, live_by_id};
use super::{AppState, ask};
use crate::problem::Problem;

/// Admits a helper as `customer`'s computer (paired with a code, or back after a restart):
/// the join answer with its participant token.
pub async fn admit(
    state: &AppState,
    session: SessionId,
    customer: ParticipantId,
    can: Vec<Activity>,
) -> Result<Value, Problem> {
    let handle = live_by_id(state, session)
        .await?
        .ok_or_else(|| Problem::new(StatusCode::GONE, "session_ended", "that session has ended"))?;
    let computer = ParticipantId::random();
    let info = ask(&handle.actor, |reply| SessionMsg::AdmitComputer {
        customer,
        computer,
        abilities: can,
        reply,
    })
    .await?
    .map_err(|e| match e {
        SessionError::Refused(Refusal::UnknownParticipant) => Problem::new(
            StatusCode::GONE,
            "customer_left",
            "the customer this code was for has left the session",
        ),
        SessionError::Refused(r @ (Refusal::ComputerAttached | Refusal::NotPrimary)) => {
            Problem::conflict(r.code(), r.to_string())
        }
        e => e.into(),
    })?;
    let view = ask(&handle.actor, |reply| SessionMsg::View {
        viewer: None,
        reply,
    })
    .await?;
    let mut answer = joined(
        state,
        &handle,
        &view["topic"],
        computer,
        Role::Customer,
        None,
    );
    answer["participant"]["name"] = json!(info.name);
    answer["participant"]["computer_of"] = json!(customer);
    Ok(answer)
}
