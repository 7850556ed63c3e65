//! QueueRegistry actor: the site's queues, and offers of transferred sessions to named agents.

use std::collections::HashMap;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent, call};

use crate::ids::{AccountId, QueueId, SessionId};
use crate::protocol::TransferTarget;
use crate::queue::rules::{QueueRefusal, QueueRules, Waiting};
use crate::queue::{QueueActor, QueueMsg};
use crate::telemetry;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TakeError {
    #[error("no such queue")]
    UnknownQueue,
    #[error(transparent)]
    Refused(#[from] QueueRefusal),
    #[error("the queue is not answering")]
    Unavailable,
}

impl TakeError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownQueue => "unknown_queue",
            Self::Refused(r) => r.code(),
            Self::Unavailable => "queue_unavailable",
        }
    }
}

/// A waiting session an agent could take, and where it waits.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Offer {
    /// `None`: offered to named agents rather than waiting in a queue.
    pub queue: Option<QueueId>,
    pub queue_name: Option<String>,
    #[serde(flatten)]
    pub waiting: Waiting,
}

pub struct QueueRegistryActor;

struct QueueEntry {
    name: String,
    agents: Vec<AccountId>,
    actor: ActorRef<QueueMsg>,
}

pub struct QueueRegistryState {
    queues: HashMap<QueueId, QueueEntry>,
    /// Sessions offered to named agents (SPEC S8).
    direct: QueueRules,
}

pub enum QueueRegistryMsg {
    /// Creates a queue or replaces its name and agents.
    Upsert {
        id: QueueId,
        name: String,
        agents: Vec<AccountId>,
    },
    Exists(QueueId, RpcReplyPort<bool>),
    Enqueue {
        target: TransferTarget,
        waiting: Waiting,
    },
    Remove {
        session: SessionId,
    },
    PutBack {
        queue: Option<QueueId>,
        waiting: Waiting,
    },
    Offers {
        agent: AccountId,
        reply: RpcReplyPort<Vec<Offer>>,
    },
    TakeNext {
        queue: QueueId,
        agent: AccountId,
        reply: RpcReplyPort<Result<Waiting, TakeError>>,
    },
    Take {
        session: SessionId,
        agent: AccountId,
        reply: RpcReplyPort<Result<(Option<QueueId>, Waiting), TakeError>>,
    },
}

impl Actor for QueueRegistryActor {
    type Msg = QueueRegistryMsg;
    type State = QueueRegistryState;
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        _: (),
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(QueueRegistryState {
            queues: HashMap::new(),
            direct: QueueRules::default(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: QueueRegistryMsg,
        state: &mut QueueRegistryState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            QueueRegistryMsg::Upsert { id, name, agents } => match state.queues.get_mut(&id) {
                Some(e) => {
                    e.name = name;
                    e.agents = agents.clone();
                    let _ = e.actor.cast(QueueMsg::SetAgents(agents));
                }
                None => {
                    let (actor, _) =
                        Actor::spawn_linked(None, QueueActor, agents.clone(), myself.get_cell())
                            .await?;
                    state.queues.insert(
                        id,
                        QueueEntry {
                            name,
                            agents,
                            actor,
                        },
                    );
                }
            },
            QueueRegistryMsg::Exists(id, reply) => {
                let _ = reply.send(state.queues.contains_key(&id));
            }
            QueueRegistryMsg::Enqueue { target, waiting } => match target {
                TransferTarget::Queue { queue } => match state.queues.get(&queue) {
                    Some(e) => {
                        let _ = e.actor.cast(QueueMsg::Enqueue(waiting));
                    }
                    None => {
                        tracing::error!(%queue, session = %waiting.session, "transfer to a queue that vanished")
                    }
                },
                TransferTarget::Agents { agents } => {
                    state.direct.enqueue(Waiting {
                        eligible: Some(agents),
                        ..waiting
                    });
                }
            },
            QueueRegistryMsg::Remove { session } => {
                state.direct.remove(session);
                for e in state.queues.values() {
                    let _ = e.actor.cast(QueueMsg::Remove(session));
                }
            }
            QueueRegistryMsg::PutBack { queue, waiting } => {
                match queue.and_then(|q| state.queues.get(&q)) {
                    Some(e) => {
                        let _ = e.actor.cast(QueueMsg::PutBack(waiting));
                    }
                    None => state.direct.put_back(waiting),
                }
            }
            QueueRegistryMsg::Offers { agent, reply } => {
                let mut offers: Vec<Offer> = state
                    .direct
                    .offered_to(agent)
                    .into_iter()
                    .map(|waiting| Offer {
                        queue: None,
                        queue_name: None,
                        waiting,
                    })
                    .collect();
                for (id, e) in &state.queues {
                    if let Ok(list) = call!(e.actor, |reply| QueueMsg::OfferedTo { agent, reply }) {
                        offers.extend(list.into_iter().map(|waiting| Offer {
                            queue: Some(*id),
                            queue_name: Some(e.name.clone()),
                            waiting,
                        }));
                    }
                }
                offers.sort_by_key(|o| o.waiting.since);
                let _ = reply.send(offers);
            }
            QueueRegistryMsg::TakeNext {
                queue,
                agent,
                reply,
            } => {
                let result = match state.queues.get(&queue) {
                    None => Err(TakeError::UnknownQueue),
                    Some(e) => call!(e.actor, |reply| QueueMsg::TakeNext { agent, reply })
                        .map_err(|_| TakeError::Unavailable)
                        .and_then(|r| r.map_err(TakeError::from)),
                };
                let _ = reply.send(result);
            }
            QueueRegistryMsg::Take {
                session,
                agent,
                reply,
            } => {
                let mut result = state
                    .direct
                    .take(agent, session)
                    .map(|w| (None, w))
                    .map_err(TakeError::from);
                if result.is_err() {
                    for (id, e) in &state.queues {
                        if let Ok(Ok(w)) = call!(e.actor, |reply| QueueMsg::Take {
                            agent,
                            session,
                            reply
                        }) {
                            result = Ok((Some(*id), w));
                            break;
                        }
                    }
                }
                let _ = reply.send(result);
            }
        }
        let mut waiting = state.direct.len();
        for e in state.queues.values() {
            waiting += call!(e.actor, |reply| QueueMsg::Len { reply }).unwrap_or(0);
        }
        telemetry::queue_waiting(waiting);
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut QueueRegistryState,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(cell, error) = event
            && let Some((id, e)) = state
                .queues
                .iter_mut()
                .find(|(_, e)| e.actor.get_id() == cell.get_id())
        {
            // Its waiting list is lost with it; the sessions stay in "waiting" and can be
            // transferred again. Keeping the list in the journal is future work.
            tracing::error!(queue = %id, %error, "queue actor failed; restarting it empty");
            telemetry::actor_restarted("queue");
            let (actor, _) =
                Actor::spawn_linked(None, QueueActor, e.agents.clone(), myself.get_cell()).await?;
            e.actor = actor;
        }
        Ok(())
    }
}
