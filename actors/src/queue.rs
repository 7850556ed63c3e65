//! Queue actor: one per inbound queue; its rules are [`rules::QueueRules`].

pub mod rules;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::ids::{AccountId, SessionId};
use rules::{QueueRefusal, QueueRules, Waiting};

pub struct QueueActor;

pub enum QueueMsg {
    SetAgents(Vec<AccountId>),
    Enqueue(Waiting),
    Remove(SessionId),
    PutBack(Waiting),
    OfferedTo {
        agent: AccountId,
        reply: RpcReplyPort<Vec<Waiting>>,
    },
    TakeNext {
        agent: AccountId,
        reply: RpcReplyPort<Result<Waiting, QueueRefusal>>,
    },
    Take {
        agent: AccountId,
        session: SessionId,
        reply: RpcReplyPort<Result<Waiting, QueueRefusal>>,
    },
    Len {
        reply: RpcReplyPort<usize>,
    },
}

impl Actor for QueueActor {
    type Msg = QueueMsg;
    type State = QueueRules;
    type Arguments = Vec<AccountId>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        agents: Vec<AccountId>,
    ) -> Result<QueueRules, ActorProcessingErr> {
        Ok(QueueRules::new(agents))
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: QueueMsg,
        q: &mut QueueRules,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            QueueMsg::SetAgents(a) => q.set_agents(a),
            QueueMsg::Enqueue(w) => q.enqueue(w),
            QueueMsg::Remove(s) => {
                q.remove(s);
            }
            QueueMsg::PutBack(w) => q.put_back(w),
            QueueMsg::OfferedTo { agent, reply } => {
                let _ = reply.send(q.offered_to(agent));
            }
            QueueMsg::TakeNext { agent, reply } => {
                let _ = reply.send(q.take_next(agent));
            }
            QueueMsg::Take {
                agent,
                session,
                reply,
            } => {
                let _ = reply.send(q.take(agent, session));
            }
            QueueMsg::Len { reply } => {
                let _ = reply.send(q.len());
            }
        }
        Ok(())
    }
}
