//! Root actor: the top of the supervision tree. It starts the registries and restarts one that
//! fails; [`Directory`] always points at the live instances.

use std::sync::{Arc, RwLock};

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};

use crate::queue_registry::{QueueRegistryActor, QueueRegistryMsg};
use crate::session_registry::{SessionRegistryActor, SessionRegistryArgs, SessionRegistryMsg};
use crate::telemetry;

/// Where the rest of the server finds the registries.
#[derive(Clone)]
pub struct Directory {
    sessions: Arc<RwLock<ActorRef<SessionRegistryMsg>>>,
    queues: Arc<RwLock<ActorRef<QueueRegistryMsg>>>,
}

impl Directory {
    pub fn sessions(&self) -> ActorRef<SessionRegistryMsg> {
        self.sessions
            .read()
            .expect("directory lock poisoned")
            .clone()
    }
    pub fn queues(&self) -> ActorRef<QueueRegistryMsg> {
        self.queues.read().expect("directory lock poisoned").clone()
    }
}

pub struct RootActor;

pub struct RootArgs {
    pub sessions: SessionRegistryArgs,
}

pub struct RootState {
    sessions_args: SessionRegistryArgs,
    directory: Directory,
}

pub enum RootMsg {
    Directory(ractor::RpcReplyPort<Directory>),
}

impl Actor for RootActor {
    type Msg = RootMsg;
    type State = RootState;
    type Arguments = RootArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RootMsg>,
        args: RootArgs,
    ) -> Result<RootState, ActorProcessingErr> {
        telemetry::describe();
        let (queues, _) =
            Actor::spawn_linked(None, QueueRegistryActor, (), myself.get_cell()).await?;
        let mut sessions_args = args.sessions;
        sessions_args.queues = Some(queues.clone());
        let (sessions, _) = Actor::spawn_linked(
            None,
            SessionRegistryActor,
            sessions_args.clone(),
            myself.get_cell(),
        )
        .await?;
        Ok(RootState {
            sessions_args,
            directory: Directory {
                sessions: Arc::new(RwLock::new(sessions)),
                queues: Arc::new(RwLock::new(queues)),
            },
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<RootMsg>,
        msg: RootMsg,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RootMsg::Directory(reply) => {
                let _ = reply.send(state.directory.clone());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<RootMsg>,
        event: SupervisionEvent,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        let SupervisionEvent::ActorFailed(cell, error) = event else {
            return Ok(());
        };
        if cell.get_id() == state.directory.sessions().get_id() {
            // Live sessions were its children and stop with it; their journals say where they
            // were, and the server marks them interrupted on its next start.
            tracing::error!(%error, "session registry failed; restarting it");
            cell.stop_children(Some("registry_restarting".into()));
            telemetry::actor_restarted("session_registry");
            let (actor, _) = Actor::spawn_linked(
                None,
                SessionRegistryActor,
                state.sessions_args.clone(),
                myself.get_cell(),
            )
            .await?;
            *state
                .directory
                .sessions
                .write()
                .expect("directory lock poisoned") = actor;
        } else if cell.get_id() == state.directory.queues().get_id() {
            tracing::error!(%error, "queue registry failed; restarting it");
            cell.stop_children(Some("registry_restarting".into()));
            telemetry::actor_restarted("queue_registry");
            let (actor, _) =
                Actor::spawn_linked(None, QueueRegistryActor, (), myself.get_cell()).await?;
            *state
                .directory
                .queues
                .write()
                .expect("directory lock poisoned") = actor.clone();
            state.sessions_args.queues = Some(actor);
        }
        Ok(())
    }
}

/// Starts the tree and returns where to find its parts.
pub async fn start(args: RootArgs) -> Result<(ActorRef<RootMsg>, Directory), ActorProcessingErr> {
    let (root, _) = Actor::spawn(None, RootActor, args).await?;
    let directory = ractor::call!(root, RootMsg::Directory)?;
    Ok((root, directory))
}
