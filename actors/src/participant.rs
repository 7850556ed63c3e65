//! Participant actor: one per person (or, later, SIP leg) in a session.
//!
//! It stands between the participant's WebSocket and the session: it rate-limits what comes in,
//! delivers what goes out, and tells the session when the participant has been away too long.
//! Its rules are [`rules::ParticipantRules`]; this file only moves messages.
//!
//! It reaches its session only through [`ParticipantReport`], the few things a participant tells
//! it, so this module does not depend on the session's own messages.

pub mod rules;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use ractor::{Actor, ActorProcessingErr, ActorRef, DerivedActorRef};
use tokio::sync::{Notify, mpsc};

use crate::ids::ParticipantId;
use crate::protocol::{ClientFrame, Role, ServerMsg};
use crate::supervision::StopReason;
use crate::telemetry;
use rules::{ParticipantConfig, ParticipantRules};

/// Frames waiting to be written to one WebSocket. A client this far behind is too slow to follow
/// the session; it is disconnected and may reconnect (and gets a fresh welcome) rather than
/// letting the server buffer without bound.
pub const OUTBOUND_QUEUE: usize = 256;

/// The server's end of one WebSocket connection.
#[derive(Clone, Debug)]
pub struct Connection {
    pub id: u64,
    pub tx: mpsc::Sender<Arc<ServerMsg>>,
    /// Notified when the server wants this connection closed.
    pub close: Arc<Notify>,
}

impl Connection {
    /// A new connection and the receiving end its writer task drains.
    pub fn new() -> (Self, mpsc::Receiver<Arc<ServerMsg>>) {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
        (
            Self {
                id: NEXT.fetch_add(1, Ordering::Relaxed),
                tx,
                close: Arc::new(Notify::new()),
            },
            rx,
        )
    }

    fn send(&self, msg: Arc<ServerMsg>) -> bool {
        self.tx.try_send(msg).is_ok()
    }

    fn close_with(&self, reason: &str) {
        let _ = self.tx.try_send(Arc::new(ServerMsg::Bye {
            reason: reason.to_string(),
        }));
        self.close.notify_one();
    }
}

/// Where a WebSocket finds its participant actor. The session swaps the reference when it
/// restarts a failed participant, so the connection survives the restart.
pub type ParticipantLink = Arc<RwLock<ActorRef<ParticipantMsg>>>;

pub struct ParticipantActor;

/// What a participant tells its session. The session's own message type converts from it, so
/// the session hands its participants a [`DerivedActorRef`] of itself.
#[derive(Debug)]
pub enum ParticipantReport {
    /// A command from the participant (already rate-limited).
    Command {
        from: ParticipantId,
        frame: ClientFrame,
    },
    /// The participant stayed away past the reconnect grace.
    Gone { participant: ParticipantId },
    /// The participant's connection was lost (`away`) or came back within the grace. Only
    /// said to the others: it changes nothing in the session's rules and is not journaled.
    Presence {
        participant: ParticipantId,
        away: bool,
    },
}

#[derive(Clone)]
pub struct ParticipantArgs {
    pub session: DerivedActorRef<ParticipantReport>,
    pub id: ParticipantId,
    pub role: Role,
    pub config: ParticipantConfig,
    /// The live connection, when restarting a participant that had one.
    pub connection: Option<Connection>,
}

pub struct ParticipantState {
    args: ParticipantArgs,
    rules: ParticipantRules,
    connection: Option<Connection>,
}

pub enum ParticipantMsg {
    /// A WebSocket connected; an older one for the same participant is closed.
    Connect(Connection),
    /// The WebSocket with this id closed.
    Disconnect { connection: u64 },
    /// A frame read from the WebSocket.
    Inbound(ClientFrame),
    /// A frame to write to the WebSocket.
    Deliver(Arc<ServerMsg>),
    /// The participant is done (left, session ended): say goodbye after everything queued
    /// before this, close the connection, and stop.
    Close { reason: String },
    /// Time to see whether the reconnect grace has run out.
    CheckPresence,
    /// M5: the customer's computer restarts: stay away without counting as gone for the
    /// configured hold (their page may have been on that computer).
    HoldForRestart,
    /// Panics the actor. Reachable only from Rust code, for supervision tests; no network input
    /// maps to it.
    InjectPanic,
}

impl Actor for ParticipantActor {
    type Msg = ParticipantMsg;
    type State = ParticipantState;
    type Arguments = ParticipantArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: ParticipantArgs,
    ) -> Result<ParticipantState, ActorProcessingErr> {
        let now = Instant::now();
        let mut rules = ParticipantRules::new(args.config.clone(), now);
        let connection = args.connection.clone().filter(|c| !c.tx.is_closed());
        if connection.is_some() {
            rules.connected(now);
        }
        schedule_check(&myself, &rules, now);
        Ok(ParticipantState {
            args,
            rules,
            connection,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: ParticipantMsg,
        state: &mut ParticipantState,
    ) -> Result<(), ActorProcessingErr> {
        let now = Instant::now();
        match msg {
            ParticipantMsg::Connect(conn) => {
                if let Some(old) = state.connection.replace(conn) {
                    old.close_with("replaced by a newer connection");
                }
                if state.rules.connected(now) {
                    tell_presence(state, false);
                }
            }
            ParticipantMsg::Disconnect { connection } => {
                if state
                    .connection
                    .as_ref()
                    .is_some_and(|c| c.id == connection)
                {
                    state.connection = None;
                    lost(state, &myself, now);
                }
            }
            ParticipantMsg::Inbound(frame) => {
                if state.rules.admit(now) {
                    let _ = state.args.session.send_message(ParticipantReport::Command {
                        from: state.args.id,
                        frame,
                    });
                } else {
                    telemetry::command_rate_limited();
                    deliver(
                        state,
                        &myself,
                        Arc::new(ServerMsg::Error {
                            reference: frame.reference,
                            code: "rate_limited".into(),
                            detail: "too many messages; slow down".into(),
                        }),
                    );
                }
            }
            ParticipantMsg::Deliver(msg) => deliver(state, &myself, msg),
            ParticipantMsg::Close { reason } => {
                if let Some(conn) = state.connection.take() {
                    conn.close_with(&reason);
                }
                myself.stop(Some(StopReason::ParticipantLeft.to_string()));
            }
            ParticipantMsg::HoldForRestart => {
                state.rules.hold(now + state.args.config.restart_hold);
                schedule_check(&myself, &state.rules, now);
            }
            ParticipantMsg::CheckPresence => {
                if state.rules.poll_gone(now) {
                    let _ = state.args.session.send_message(ParticipantReport::Gone {
                        participant: state.args.id,
                    });
                } else {
                    schedule_check(&myself, &state.rules, now);
                }
            }
            ParticipantMsg::InjectPanic => {
                panic!("injected fault in participant {}", state.args.id)
            }
        }
        Ok(())
    }
}

fn deliver(state: &mut ParticipantState, myself: &ActorRef<ParticipantMsg>, msg: Arc<ServerMsg>) {
    let Some(conn) = &state.connection else {
        return; // Away: the welcome on reconnect carries the state they missed.
    };
    if !conn.send(msg) {
        telemetry::slow_consumer_disconnected();
        conn.close.notify_one();
        state.connection = None;
        lost(state, myself, Instant::now());
    }
}

/// The connection is gone: the others are told, and the grace starts.
fn lost(state: &mut ParticipantState, myself: &ActorRef<ParticipantMsg>, now: Instant) {
    let (_, dropped) = state.rules.disconnected(now);
    if dropped {
        tell_presence(state, true);
    }
    schedule_check(myself, &state.rules, now);
}

/// The session tells the others that this participant is away, or back.
fn tell_presence(state: &ParticipantState, away: bool) {
    let _ = state
        .args
        .session
        .send_message(ParticipantReport::Presence {
            participant: state.args.id,
            away,
        });
}

fn schedule_check(myself: &ActorRef<ParticipantMsg>, rules: &ParticipantRules, now: Instant) {
    if let Some(deadline) = rules.deadline() {
        let delay = deadline.saturating_duration_since(now);
        myself.send_after(delay, || ParticipantMsg::CheckPresence);
    }
}

impl ParticipantState {
    pub fn role(&self) -> Role {
        self.args.role
    }
}
