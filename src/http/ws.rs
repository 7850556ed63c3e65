//! A participant's WebSocket: JSON commands in, session events out (docs/protocol.md).
//!
//! The token is checked before the upgrade, so a bad one gets an HTTP problem document rather
//! than a socket that closes at once.

use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use tandem_actors::ids::{AccountId, ParticipantId};
use tandem_actors::participant::{Connection, ParticipantLink, ParticipantMsg};
use tandem_actors::protocol::{ClientFrame, ServerMsg};
use tandem_actors::session::SessionMsg;
use tandem_actors::session_registry::SessionHandle;
use tokio::sync::broadcast::error::RecvError;

use super::sessions::live_by_id;
use super::{AppState, ask};
use crate::auth::{Denied, Holder, Token, check_holder};
use crate::metrics;
use crate::problem::Problem;

#[derive(Deserialize)]
pub struct WsQuery {
    token: Option<String>,
}

pub async fn upgrade(
    State(state): State<AppState>,
    query: Result<Query<WsQuery>, QueryRejection>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Problem> {
    let Query(q) = query?;
    let token = q.token.ok_or_else(|| {
        Problem::unauthorized("unauthenticated", "connect with ?token=<participant token>")
    })?;
    let Token::Participant {
        session,
        participant,
        account,
        ..
    } = state.signer.verify(&token)?
    else {
        return Err(Problem::unauthorized(
            "wrong_token_kind",
            "the WebSocket needs a participant token",
        ));
    };
    // A staff participant's token is its account's: refused once the account is disabled or
    // signed out everywhere. Listening starts before the check, so no revocation slips between.
    let revoked = match account {
        Some(holder) => Some((holder, revocations_of(&state, holder).await?)),
        None => None,
    };
    let handle = live_by_id(&state, session).await?.ok_or_else(|| {
        Problem::new(
            axum::http::StatusCode::GONE,
            "session_ended",
            "that session has ended",
        )
    })?;
    let ws = ws.map_err(|_| {
        Problem::bad_request(
            "not_a_websocket",
            "this endpoint only takes WebSocket upgrades",
        )
    })?;
    let max = state.config.server.max_frame_bytes;
    // Frames up to 4x the limit are read and answered with a clear error; beyond that the
    // connection is dropped by the WebSocket layer itself.
    Ok(ws
        .max_message_size(max * 4)
        .max_frame_size(max * 4)
        .on_upgrade(move |socket| run(state, socket, handle, participant, revoked)))
}

type RevocationsRx = tokio::sync::broadcast::Receiver<(AccountId, Denied)>;

/// Listens for the account's revocations, once its token is known to be still good.
async fn revocations_of(state: &AppState, holder: Holder) -> Result<RevocationsRx, Problem> {
    let rx = state.revocations.subscribe();
    let user = state
        .store
        .user_by_id(holder.account)
        .await?
        .ok_or_else(|| Problem::unauthorized("invalid_token", "the account no longer exists"))?;
    check_holder(&user, holder.generation)?;
    Ok(rx)
}

/// Waits until `account`'s tokens are revoked (never, for a participant without an account).
async fn revocation(state: &AppState, revoked: &mut Option<(Holder, RevocationsRx)>) -> Denied {
    let Some((holder, rx)) = revoked else {
        return std::future::pending().await;
    };
    loop {
        match rx.recv().await {
            Ok((who, why)) if who == holder.account => return why,
            Ok(_) => {}
            // Fell behind: whether this account was among the missed is unknown; ask the store.
            Err(RecvError::Lagged(_)) => match state.store.user_by_id(holder.account).await {
                Ok(Some(user)) => {
                    if let Err(why) = check_holder(&user, holder.generation) {
                        return why;
                    }
                }
                Ok(None) => return Denied::Revoked,
                Err(e) => tracing::warn!(error = %e, "cannot check a WebSocket's account"),
            },
            Err(RecvError::Closed) => return std::future::pending().await,
        }
    }
}

/// Unusable frames (not JSON, unknown command, too large, binary) one connection may send
/// before it is closed: enough for a client bug to show up in its error log, not enough to
/// flood the server.
const MAX_BAD_FRAMES: u32 = 50;

/// Close code when the account's tokens were revoked; the reason is `account_disabled` or
/// `token_revoked`.
const REVOKED_CLOSE: u16 = 4003;

/// How long an inbound command may wait for a participant actor that is being restarted.
const RESTART_WAIT: Duration = Duration::from_secs(2);

async fn run(
    state: AppState,
    mut socket: WebSocket,
    handle: SessionHandle,
    participant: ParticipantId,
    mut revoked: Option<(Holder, RevocationsRx)>,
) {
    let (connection, mut rx) = Connection::new();
    let conn_id = connection.id;
    let close = connection.close.clone();
    let link = match ask(&handle.actor, |reply| SessionMsg::Attach {
        participant,
        connection,
        reply,
    })
    .await
    {
        Ok(Ok(link)) => link,
        Ok(Err(e)) => {
            let _ = send(
                &mut socket,
                &ServerMsg::Error {
                    reference: None,
                    code: e.code().into(),
                    detail: e.to_string(),
                },
            )
            .await;
            close_gracefully(&mut socket, 4001, e.code()).await;
            return;
        }
        Err(_) => {
            close_gracefully(&mut socket, 1013, "try again").await;
            return;
        }
    };
    metrics::ws_opened();
    let max = state.config.server.max_frame_bytes;
    let mut bad_frames = 0u32;
    let silence = Duration::from_secs(state.config.server.ws_silence_secs);
    let every = Duration::from_secs(state.config.server.ws_ping_secs);
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            // Outbound first: a goodbye queued before a close request goes out with its code.
            biased;
            out = rx.recv() => match out {
                Some(msg) => {
                    if send(&mut socket, &msg).await.is_err() {
                        break;
                    }
                    if let ServerMsg::Bye { reason } = &*msg {
                        close_gracefully(&mut socket, 1000, reason).await;
                        break;
                    }
                }
                // Every sender is gone: the participant's actors stopped (session restarting).
                None => {
                    close_gracefully(&mut socket, 1012, "reconnect").await;
                    break;
                }
            },
            _ = close.notified() => {
                // Flush what was queued before the close (a final Bye), then go.
                while let Ok(msg) = rx.try_recv() {
                    if send(&mut socket, &msg).await.is_err() {
                        break;
                    }
                }
                close_gracefully(&mut socket, 1008, "closed by server").await;
                break;
            }
            inbound = socket.recv() => {
                if let Some(Ok(_)) = &inbound {
                    // Anything, a pong included, shows the peer is still there.
                    last_heard = tokio::time::Instant::now();
                }
                match inbound {
                    Some(Ok(Message::Text(text))) => {
                        metrics::ws_in();
                        if let Some(problem) = read_frame(&link, text.as_str(), max).await {
                            // Unusable frames bypass the participant's rate limit, so they have a
                            // budget of their own per connection.
                            bad_frames += 1;
                            if bad_frames > MAX_BAD_FRAMES {
                                close_gracefully(&mut socket, 1008, "too many bad frames").await;
                                break;
                            }
                            if matches!(problem, ServerMsg::Bye { .. }) {
                                let _ = send(&mut socket, &problem).await;
                                close_gracefully(&mut socket, 1012, "reconnect").await;
                                break;
                            }
                            if send(&mut socket, &problem).await.is_err() {
                                break;
                            }
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        metrics::ws_in();
                        bad_frames += 1;
                        if bad_frames > MAX_BAD_FRAMES {
                            close_gracefully(&mut socket, 1008, "too many bad frames").await;
                            break;
                        }
                        metrics::ws_bad_frame("binary");
                        let e = error(None, "binary_not_supported", "send JSON text frames");
                        if send(&mut socket, &e).await.is_err() {
                            break;
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {} // Ping and pong are answered by the WebSocket layer.
                }
            }
            why = revocation(&state, &mut revoked) => {
                close_gracefully(&mut socket, REVOKED_CLOSE, why.code()).await;
                break;
            }
            _ = ping.tick() => {
                if last_heard.elapsed() >= silence {
                    metrics::ws_silent_closed();
                    close_gracefully(&mut socket, 1001, "no answer").await;
                    break;
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
        }
    }
    let actor = link.read().expect("link lock poisoned").clone();
    let _ = actor.cast(ParticipantMsg::Disconnect {
        connection: conn_id,
    });
    metrics::ws_closed();
}

fn error(reference: Option<u64>, code: &str, detail: impl Into<String>) -> ServerMsg {
    ServerMsg::Error {
        reference,
        code: code.into(),
        detail: detail.into(),
    }
}

/// Reads one client frame and hands it to the participant actor. Returns what to answer at
/// once when the frame cannot be used.
async fn read_frame(link: &ParticipantLink, text: &str, max: usize) -> Option<ServerMsg> {
    if text.len() > max {
        metrics::ws_bad_frame("too_large");
        return Some(error(
            None,
            "message_too_large",
            format!("messages are at most {max} bytes"),
        ));
    }
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            metrics::ws_bad_frame("malformed_json");
            return Some(error(None, "malformed_json", e.to_string()));
        }
    };
    let reference = value.get("ref").and_then(|r| r.as_u64());
    let frame: ClientFrame = match serde_json::from_value(value) {
        Ok(f) => f,
        Err(e) => {
            metrics::ws_bad_frame("invalid_command");
            return Some(error(reference, "invalid_command", e.to_string()));
        }
    };
    // The actor may be between a failure and its restart; wait a little for the new one.
    let deadline = tokio::time::Instant::now() + RESTART_WAIT;
    loop {
        let actor = link.read().expect("link lock poisoned").clone();
        if actor.cast(ParticipantMsg::Inbound(frame.clone())).is_ok() {
            return None;
        }
        if tokio::time::Instant::now() >= deadline {
            return Some(ServerMsg::Bye {
                reason: "reconnect".into(),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn send(socket: &mut WebSocket, msg: &ServerMsg) -> Result<(), axum::Error> {
    let text = serde_json::to_string(msg).expect("server messages serialize");
    socket.send(Message::Text(text.into())).await?;
    metrics::ws_out();
    Ok(())
}

/// How long a closing connection waits for the client's own Close.
const CLOSING: Duration = Duration::from_secs(2);

/// Closes the WebSocket as RFC 6455 (7.1.1) has it: our Close frame, then whatever the client
/// still sends, up to its own Close or [`CLOSING`]. Dropping the connection with the client's
/// frames unread (a pong, a last command) would reset it, and a client whose connection is
/// reset loses what it had not read yet: the answer to its last command, the bye.
async fn close_gracefully(socket: &mut WebSocket, code: u16, reason: &str) {
    if socket.send(close_frame(code, reason)).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSING, async {
        while let Some(Ok(msg)) = socket.recv().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

fn close_frame(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.to_string().into(),
    }))
}
