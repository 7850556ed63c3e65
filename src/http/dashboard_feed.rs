//! The dashboard's live lists (issue 18, item 3): `GET /api/feed` is a server-sent event stream
//! over the signed-in CSR's own connection. It sends the sessions waiting for this agent
//! (`offers`) and the account's recordings (`recordings`) at once, then again whenever either
//! changes, so the console's lists need no Refresh button and a waiting customer can raise an
//! alert.
//!
//! The server looks for changes once a second per stream, with the same checked queries as
//! `GET /api/transfers` and `GET /api/recordings`, and sends only what changed. Streams are
//! bounded per account and in all, and end when the account is signed out everywhere or
//! disabled, or its token is signed out or expires.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde_json::Value;
use tandem_actors::ids::AccountId;
use tandem_actors::queue_registry::QueueRegistryMsg;

use super::{AppState, Caller};
use crate::problem::Problem;
use crate::store::AccountRole;

/// How often a stream looks for changes.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// Streams one account may hold open (a few console tabs).
pub const PER_ACCOUNT: usize = 4;
/// Streams in all.
pub const IN_ALL: usize = 512;

/// The streams open now, per account.
#[derive(Clone, Default)]
pub struct Feeds(Arc<Mutex<HashMap<AccountId, usize>>>);

/// One open stream's place, given back when the stream ends.
struct Place {
    feeds: Feeds,
    account: AccountId,
}

impl Feeds {
    fn take(&self, account: AccountId) -> Result<Place, Problem> {
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let total: usize = open.values().sum();
        let mine = open.get(&account).copied().unwrap_or(0);
        if mine >= PER_ACCOUNT || total >= IN_ALL {
            return Err(Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_feeds",
                format!(
                    "at most {PER_ACCOUNT} live dashboards per account are open at once; close one"
                ),
            ));
        }
        *open.entry(account).or_default() += 1;
        Ok(Place {
            feeds: self.clone(),
            account,
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut open = self.feeds.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.account) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.account);
            }
        }
    }
}

struct Watch {
    state: AppState,
    caller: Caller,
    token: String,
    expires: u64,
    revoked: tokio::sync::broadcast::Receiver<(AccountId, crate::auth::Denied)>,
    last_offers: Option<Value>,
    last_recordings: Option<Value>,
    ticks: tokio::time::Interval,
    pending: Vec<Event>,
    _place: Place,
}

impl Watch {
    /// What changed since the last look, as events; `None` when the stream is to end.
    async fn look(&mut self) -> Option<Vec<Event>> {
        let account = self.caller.0.id;
        if crate::auth::unix_secs() >= self.expires || self.state.signed_out.contains(&self.token) {
            return None;
        }
        loop {
            match self.revoked.try_recv() {
                Ok((who, _)) if who == account => return None,
                Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
        let mut events = Vec::new();
        if self.caller.0.role == AccountRole::Agent {
            let offers = super::ask(&self.state.directory.queues(), |reply| {
                QueueRegistryMsg::Offers {
                    agent: account,
                    reply,
                }
            })
            .await
            .ok()
            .and_then(|o| serde_json::to_value(o).ok());
            if let Some(offers) = offers
                && self.last_offers.as_ref() != Some(&offers)
            {
                events.push(event("offers", &offers));
                self.last_offers = Some(offers);
            }
        }
        let owner = (!self.caller.is_admin()).then_some(account);
        if let Ok(list) = super::recordings::listing(&self.state, owner).await {
            let recordings = Value::Array(list);
            if self.last_recordings.as_ref() != Some(&recordings) {
                events.push(event("recordings", &recordings));
                self.last_recordings = Some(recordings);
            }
        }
        Some(events)
    }
}

fn event(name: &str, data: &Value) -> Event {
    Event::default().event(name).data(data.to_string())
}

/// `GET /api/feed`: the live lists of the caller's dashboard.
pub async fn feed(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Problem> {
    let account = caller.0.id;
    let token = super::bearer(&headers).unwrap_or_default().to_string();
    let expires = state.signer.expires_at(&token)?;
    let place = state.feeds.take(account)?;
    let revoked = state.revocations.subscribe();
    let mut ticks = tokio::time::interval(LOOK_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let watch = Watch {
        state,
        caller,
        token,
        expires,
        revoked,
        last_offers: None,
        last_recordings: None,
        ticks,
        pending: Vec::new(),
        _place: place,
    };
    let stream = futures_util::stream::unfold(watch, |mut w| async move {
        loop {
            if let Some(e) = w.pending.pop() {
                return Some((Ok(e), w));
            }
            w.ticks.tick().await;
            let mut events = w.look().await?;
            events.reverse();
            w.pending = events;
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
