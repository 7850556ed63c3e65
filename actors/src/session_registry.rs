//! SessionRegistry actor: creates sessions, finds them by number or id, and restarts a session
//! that crashed by replaying its journal.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use crate::ids::{AccountId, SessionId, SessionNumber};
use crate::participant::rules::ParticipantConfig;
use crate::ports::{Accounts, Journal};
use crate::queue_registry::QueueRegistryMsg;
use crate::session::rules::{SessionInit, SessionRules};
use crate::session::{SessionActor, SessionArgs, SessionError, SessionMsg, unix_now};
use crate::supervision::{Decision, RestartBudget, RestartPolicy, StopReason};
use crate::telemetry;

/// A live session as the rest of the server sees it. Look it up for each use: after a restart
/// the actor reference changes.
#[derive(Clone, Debug)]
pub struct SessionHandle {
    pub id: SessionId,
    pub number: SessionNumber,
    pub host: AccountId,
    pub actor: ActorRef<SessionMsg>,
}

/// What a CSR asks for when starting a session.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub topic: String,
    pub host: AccountId,
    pub max_customers: usize,
    pub quick_phrases: Option<Vec<String>>,
    /// SPEC R3: the admin's automatic recording, as it was when the session started.
    pub automatic_recording: bool,
}

pub struct SessionRegistryActor;

#[derive(Clone)]
pub struct SessionRegistryArgs {
    pub journal: Arc<dyn Journal>,
    pub accounts: Arc<dyn Accounts>,
    pub participant_config: ParticipantConfig,
    pub restart_policy: RestartPolicy,
    pub queues: Option<ActorRef<QueueRegistryMsg>>,
    pub media: Option<crate::media_worker::MediaPool>,
    pub recordings: Option<Arc<dyn crate::ports::Recordings>>,
    pub files: Option<Arc<dyn crate::ports::FileShelf>>,
}

struct Entry {
    handle: SessionHandle,
    init: SessionInit,
    actor: ActorId,
    budget: RestartBudget,
}

pub struct SessionRegistryState {
    args: SessionRegistryArgs,
    sessions: HashMap<SessionId, Entry>,
    numbers: HashMap<SessionNumber, SessionId>,
}

pub enum SessionRegistryMsg {
    Create {
        new: NewSession,
        reply: RpcReplyPort<Result<SessionHandle, SessionError>>,
    },
    ByNumber {
        number: SessionNumber,
        reply: RpcReplyPort<Option<SessionHandle>>,
    },
    ById {
        id: SessionId,
        reply: RpcReplyPort<Option<SessionHandle>>,
    },
    Live {
        reply: RpcReplyPort<Vec<SessionHandle>>,
    },
}

impl Actor for SessionRegistryActor {
    type Msg = SessionRegistryMsg;
    type State = SessionRegistryState;
    type Arguments = SessionRegistryArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: SessionRegistryArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        telemetry::sessions_active(0);
        Ok(SessionRegistryState {
            args,
            sessions: HashMap::new(),
            numbers: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: SessionRegistryMsg,
        state: &mut SessionRegistryState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SessionRegistryMsg::Create { new, reply } => {
                let number = loop {
                    let n = SessionNumber::random();
                    if !state.numbers.contains_key(&n) {
                        break n;
                    }
                };
                let init = SessionInit {
                    id: SessionId::random(),
                    number,
                    topic: new.topic,
                    host: new.host,
                    max_customers: new.max_customers,
                    quick_phrases: new.quick_phrases,
                    automatic_recording: new.automatic_recording,
                };
                let result = spawn_session(&myself, state, init, None).await;
                let _ = reply.send(result.map_err(|e| SessionError::Storage(e.to_string())));
            }
            SessionRegistryMsg::ByNumber { number, reply } => {
                let found = state
                    .numbers
                    .get(&number)
                    .and_then(|id| state.sessions.get(id))
                    .map(|e| e.handle.clone());
                let _ = reply.send(found);
            }
            SessionRegistryMsg::ById { id, reply } => {
                let _ = reply.send(state.sessions.get(&id).map(|e| e.handle.clone()));
            }
            SessionRegistryMsg::Live { reply } => {
                let _ = reply.send(state.sessions.values().map(|e| e.handle.clone()).collect());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut SessionRegistryState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                // A session stops itself when it ends; anything else stopping it is a failure.
                if let Some(id) = find(state, cell.get_id()) {
                    if reason.as_deref().and_then(StopReason::parse)
                        != Some(StopReason::SessionEnded)
                    {
                        tracing::warn!(session = %id, ?reason, "session stopped unexpectedly");
                    }
                    forget(state, id);
                }
            }
            SupervisionEvent::ActorFailed(cell, error) => {
                let Some(id) = find(state, cell.get_id()) else {
                    return Ok(());
                };
                // Its participant actors outlive a panic; they belong to the dead instance.
                cell.stop_children(Some("session_restarting".into()));
                let entry = state.sessions.get_mut(&id).expect("found above");
                let decision = entry.budget.on_failure(Instant::now());
                let init = entry.init.clone();
                let journal = state.args.journal.clone();
                let records = match decision {
                    Decision::Restart => journal.load(id).await.map_err(|e| e.to_string()),
                    Decision::GiveUp => Err("failed too often".to_string()),
                };
                match records {
                    Ok(records) => {
                        tracing::warn!(session = %id, %error, "session actor failed; restoring it from its journal");
                        telemetry::actor_restarted("session");
                        let budget = entry.budget.clone();
                        if let Err(e) = spawn_session(&myself, state, init, Some(records)).await {
                            tracing::error!(session = %id, error = %e, "session could not be restored");
                            forget(state, id);
                        } else if let Some(e) = state.sessions.get_mut(&id) {
                            e.budget = budget;
                        }
                    }
                    Err(why) => {
                        tracing::error!(session = %id, %error, %why, "session actor failed; ending the session");
                        telemetry::actor_gave_up("session");
                        // Record the end so reports do not show it as live forever.
                        if let Ok(records) = journal.load(id).await {
                            let mut rules = SessionRules::restore(init.clone(), &records);
                            let end = rules.interrupt(unix_now());
                            let _ = journal.append(&init, &end).await;
                        }
                        forget(state, id);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn find(state: &SessionRegistryState, actor: ActorId) -> Option<SessionId> {
    state
        .sessions
        .iter()
        .find(|(_, e)| e.actor == actor)
        .map(|(id, _)| *id)
}

fn forget(state: &mut SessionRegistryState, id: SessionId) {
    if let Some(e) = state.sessions.remove(&id) {
        state.numbers.remove(&e.handle.number);
    }
    telemetry::sessions_active(state.sessions.len());
}

async fn spawn_session(
    myself: &ActorRef<SessionRegistryMsg>,
    state: &mut SessionRegistryState,
    init: SessionInit,
    restore: Option<Vec<crate::protocol::Record>>,
) -> Result<SessionHandle, ractor::SpawnErr> {
    let args = SessionArgs {
        init: init.clone(),
        restore,
        journal: state.args.journal.clone(),
        accounts: state.args.accounts.clone(),
        participant_config: state.args.participant_config.clone(),
        restart_policy: state.args.restart_policy,
        queues: state.args.queues.clone(),
        media: state.args.media.as_ref().map(|m| m.for_session(init.id)),
        recordings: state.args.recordings.clone(),
        files: state.args.files.clone(),
    };
    let (actor, _) = Actor::spawn_linked(None, SessionActor, args, myself.get_cell()).await?;
    let handle = SessionHandle {
        id: init.id,
        number: init.number,
        host: init.host,
        actor: actor.clone(),
    };
    state.numbers.insert(init.number, init.id);
    state.sessions.insert(
        init.id,
        Entry {
            handle: handle.clone(),
            init,
            actor: actor.get_id(),
            budget: RestartBudget::new(state.args.restart_policy),
        },
    );
    telemetry::sessions_active(state.sessions.len());
    Ok(handle)
}
