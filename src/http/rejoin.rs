//! SPEC M5, reboot and rejoin: with the customer's OK (`reboot` runs), the computer's helper
//! takes a rejoin ticket (`POST /api/sessions/{id}/rejoin-ticket`, its own token), restarts the
//! computer, and after the restart rejoins the same session as that customer's computer with
//! the ticket (`POST /api/helper/rejoin`). A ticket is 256 random bits, kept here only as its
//! SHA-256, works once, and expires after `[helper] rejoin_ttl_secs`.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use rand::RngExt as _;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use tandem_actors::ids::{ParticipantId, SessionId};
use tandem_actors::protocol::{Activity, Role};
use tandem_actors::session::{SessionMsg, unix_now};

use super::sessions::live_by_id;
use super::{ApiJson, AppState, ParticipantCaller, ask};
use crate::auth::Token;
use crate::problem::Problem;

/// Most tickets kept at once (expired ones are forgotten first).
const MAX_TICKETS: usize = 10_000;

struct Ticket {
    session: SessionId,
    customer: ParticipantId,
    expires_at: i64,
    used: bool,
}

pub struct Rejoins {
    ttl_ms: i64,
    tickets: Mutex<HashMap<[u8; 32], Ticket>>,
}

fn digest(ticket: &str) -> [u8; 32] {
    Sha256::digest(ticket.trim().as_bytes()).into()
}

impl Rejoins {
    pub fn new(ttl_secs: u64) -> Self {
        Self {
            ttl_ms: i64::try_from(ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
            tickets: Mutex::new(HashMap::new()),
        }
    }

    /// A new ticket for `customer`'s computer in `session`: the secret and when it expires.
    fn issue(
        &self,
        session: SessionId,
        customer: ParticipantId,
        now: i64,
    ) -> Result<(String, i64), Problem> {
        let mut tickets = self.tickets.lock().unwrap_or_else(PoisonError::into_inner);
        // One ticket per computer restarting: a new one replaces the one before.
        tickets
            .retain(|_, t| t.expires_at > now && !(t.session == session && t.customer == customer));
        if tickets.len() >= MAX_TICKETS {
            return Err(Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "rejoin_tickets_full",
                "too many computers are restarting at once; try again in a minute",
            )
            .with_retry_after(60));
        }
        let bytes: [u8; 32] = rand::rng().random();
        let secret = hex::encode(bytes);
        let expires_at = now.saturating_add(self.ttl_ms);
        tickets.insert(
            digest(&secret),
            Ticket {
                session,
                customer,
                expires_at,
                used: false,
            },
        );
        Ok((secret, expires_at))
    }

    /// Spends `secret`: the session and customer it is for.
    fn redeem(&self, secret: &str, now: i64) -> Result<(SessionId, ParticipantId), Problem> {
        let mut tickets = self.tickets.lock().unwrap_or_else(PoisonError::into_inner);
        let t = tickets
            .get_mut(&digest(secret))
            .ok_or_else(|| Problem::not_found("rejoin_ticket_unknown", "no such rejoin ticket"))?;
        if t.used {
            return Err(Problem::new(
                StatusCode::GONE,
                "rejoin_ticket_used",
                "this rejoin ticket was used already",
            ));
        }
        if t.expires_at <= now {
            return Err(Problem::new(
                StatusCode::GONE,
                "rejoin_ticket_expired",
                "this rejoin ticket expired: pair Tandem Helper again with a new code",
            ));
        }
        t.used = true;
        Ok((t.session, t.customer))
    }
}

/// `POST /api/sessions/{id}/rejoin-ticket`: the computer (its own token) restarts while
/// `reboot` runs on its customer; 201 `{ticket, expires_at}`, and everyone hears
/// `computer_restarting`.
pub async fn ticket(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, Problem> {
    let caller = ParticipantCaller::in_session(&state, &headers, &id, "a rejoin ticket").await?;
    let handle = live_by_id(&state, caller.session)
        .await?
        .ok_or_else(|| Problem::new(StatusCode::GONE, "session_ended", "that session has ended"))?;
    let customer = ask(&handle.actor, |reply| SessionMsg::Restarting {
        computer: caller.participant,
        reply,
    })
    .await??;
    let (ticket, expires_at) = state
        .helper
        .rejoins
        .issue(caller.session, customer, unix_now())?;
    Ok((
        StatusCode::CREATED,
        ApiJson(json!({"ticket": ticket, "expires_at": expires_at})),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejoinBody {
    ticket: String,
    #[serde(default)]
    can: Vec<Activity>,
}

/// `POST /api/helper/rejoin`: the helper, started again after the restart, comes back as the
/// same customer's computer; 201 with the join answer, as pairing gives.
pub async fn rejoin(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RejoinBody>,
) -> Result<impl IntoResponse, Problem> {
    let (session, customer) = state.helper.rejoins.redeem(&body.ticket, unix_now())?;
    let mut answer = super::computer::admit(&state, session, customer, body.can).await?;
    // The customer's page may have been on the computer that restarted: the helper reopens it
    // as the same customer (the token in the fragment never reaches a server or a Referer).
    let token = state.signer.sign(
        &Token::Participant {
            session,
            participant: customer,
            role: Role::Customer,
            account: None,
        },
        crate::auth::unix_secs(),
        state.config.auth.participant_token_ttl_secs,
    );
    answer["customer_token"] = json!(token);
    Ok((StatusCode::CREATED, ApiJson(answer)))
}
