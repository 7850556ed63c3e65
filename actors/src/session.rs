//! Session actor: one per support session; owns the session's rules and supervises its
//! participants.
//!
//! Every accepted command is journaled before anyone hears of it; if the journal cannot be
//! written, the command is refused and the state rolls back, so what people saw is always what a
//! restarted server reports.

pub mod rules;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tandem_media::policy::MediaPolicy;

use crate::ids::{FileId, ParticipantId, RecordingId, SessionId};
use crate::limits::ClientLimits;
use crate::media_worker::{MediaError, MediaWorkerHandle};
use crate::participant::rules::ParticipantConfig;
use crate::participant::{
    Connection, ParticipantActor, ParticipantArgs, ParticipantLink, ParticipantMsg,
    ParticipantReport,
};
use crate::ports::{Accounts, FileShelf, Journal, MediaNotice, NoticeSink, Recordings};
use crate::protocol::{
    Activity, Audience, Command, Event, LeaveReason, ParticipantInfo, Record, Role, ServerMsg,
    TransferTarget, UnixMillis,
};
use crate::queue::rules::Waiting;
use crate::queue_registry::QueueRegistryMsg;
use crate::recorder::{RecordSink, Recorder};
use crate::supervision::{Decision, RestartBudget, RestartPolicy, StopReason};
use crate::telemetry;
use rules::{Refusal, SessionInit, SessionRules, SharedFile};

/// How long the session waits for the queue registry to answer whether a queue exists.
const QUEUE_CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a session could not do what the server (not a participant command) asked.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("the session journal could not be written: {0}")]
    Storage(String),
    #[error("no such participant in this session")]
    UnknownParticipant,
    #[error("a part of the server did not answer in time; try again")]
    Unavailable,
    #[error(transparent)]
    Media(#[from] MediaError),
}

impl SessionError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Refused(r) => r.code(),
            Self::Storage(_) => "storage_unavailable",
            Self::UnknownParticipant => "unknown_participant",
            Self::Unavailable => "unavailable",
            Self::Media(e) => e.code(),
        }
    }
}

pub fn unix_now() -> UnixMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as UnixMillis)
}

pub struct SessionActor;

pub struct SessionArgs {
    pub init: SessionInit,
    /// The journal to rebuild from after a crash; `None` for a new session.
    pub restore: Option<Vec<Record>>,
    pub journal: Arc<dyn Journal>,
    pub accounts: Arc<dyn Accounts>,
    pub participant_config: ParticipantConfig,
    pub restart_policy: RestartPolicy,
    pub queues: Option<ActorRef<QueueRegistryMsg>>,
    pub media: Option<MediaWorkerHandle>,
    /// Where recordings go; without it, a recording that starts fails at once.
    pub recordings: Option<Arc<dyn Recordings>>,
    /// Where published files are kept (SPEC F1).
    pub files: Option<Arc<dyn FileShelf>>,
}

/// The session's recording while the recording activity runs (SPEC R1, R2).
struct ActiveRecording {
    id: RecordingId,
    recorder: Recorder,
    sink: RecordSink,
}

struct Slot {
    args: ParticipantArgs,
    link: ParticipantLink,
    actor: ActorId,
    budget: RestartBudget,
}

pub struct SessionState {
    rules: SessionRules,
    journal: Arc<dyn Journal>,
    accounts: Arc<dyn Accounts>,
    participant_config: ParticipantConfig,
    restart_policy: RestartPolicy,
    queues: Option<ActorRef<QueueRegistryMsg>>,
    slots: HashMap<ParticipantId, Slot>,
    /// Participants whose leaving was committed but whose actors are not closed yet, with the
    /// goodbye they get; see [`settle`].
    leaving: Vec<(ParticipantId, &'static str)>,
    /// Participant actors told to close and not yet stopped. An ended session waits for them:
    /// ractor kills a stopping actor's children at once, which would cut off their last frames.
    closing: HashSet<ActorId>,
    media: Option<MediaWorkerHandle>,
    /// How the media worker reaches this actor.
    notices: NoticeSink,
    /// The media policy as last told to the media worker; `None` until it has been told once
    /// (so a restored session always tells it).
    media_policy: Option<MediaPolicy<ParticipantId>>,
    /// Participants gone since the media worker was last told.
    media_departed: Vec<ParticipantId>,
    media_ended: bool,
    recordings: Option<Arc<dyn Recordings>>,
    recording: Option<ActiveRecording>,
    /// The media worker could not hand the recorder everything: the recording has failed.
    recording_overflowed: bool,
    files: Option<Arc<dyn FileShelf>>,
    /// The published files as last seen, to remove from the shelf those the rules let go.
    files_kept: BTreeSet<FileId>,
    /// Participants whose connection is lost, within their grace (said to the others; not
    /// part of the rules, not journaled).
    away: BTreeSet<ParticipantId>,
    /// When [`SessionMsg::ExpireConsents`] is due, if one is scheduled.
    consent_timer: Option<UnixMillis>,
}

/// Longest an ended session waits for its participants to say goodbye.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

pub enum SessionMsg {
    /// Someone joins (the host with `as_primary`); answers their participant id.
    Join {
        info: ParticipantInfo,
        as_primary: bool,
        reply: RpcReplyPort<Result<ParticipantId, SessionError>>,
    },
    /// A customer joins over HTTP; answers their participant id. They take a slot only when
    /// their WebSocket connects ([`SessionMsg::Attach`]). `joins_per_minute` is the server's
    /// limit on joins to one session.
    Admit {
        info: ParticipantInfo,
        joins_per_minute: u32,
        reply: RpcReplyPort<Result<ParticipantId, SessionError>>,
    },
    /// A customer's Tandem Helper paired with their code: it may connect its WebSocket as the
    /// customer's computer under `computer` ([`SessionMsg::Attach`]); answers its participant.
    AdmitComputer {
        customer: ParticipantId,
        computer: ParticipantId,
        /// What the helper says it can do (issue 17).
        abilities: Vec<Activity>,
        reply: RpcReplyPort<Result<ParticipantInfo, SessionError>>,
    },
    /// F1: the server stored a file the primary CSR `by` uploaded; publish it. Refused (and
    /// then the server removes it) unless file transfer with its customer runs.
    PublishFile {
        by: ParticipantId,
        file: FileId,
        shared: SharedFile,
        reply: RpcReplyPort<Result<(), SessionError>>,
    },
    /// M1: a customer's computer sent the system information it read.
    ProvideSystemInfo {
        computer: ParticipantId,
        info: serde_json::Value,
        reply: RpcReplyPort<Result<(), SessionError>>,
    },
    /// M3: the primary CSR proposes scripts for the selected customer's computer; answers
    /// the consent request's number.
    ProposeScripts {
        by: ParticipantId,
        scripts: Vec<crate::protocol::ScriptItem>,
        reply: RpcReplyPort<Result<u32, SessionError>>,
    },
    /// M3: which script `computer` is to fetch next (its library id), while allowed.
    ScriptItem {
        computer: ParticipantId,
        request: u32,
        index: usize,
        reply: RpcReplyPort<Result<crate::protocol::ScriptItem, SessionError>>,
    },
    /// M3: how a script ended on the customer's computer.
    ScriptFinished {
        computer: ParticipantId,
        request: u32,
        index: usize,
        outcome: crate::protocol::ScriptOutcome,
        reply: RpcReplyPort<Result<(), SessionError>>,
    },
    /// F2: the primary CSR asks the selected customer's computer for a file operation; answers
    /// its number.
    ComputerFiles {
        by: ParticipantId,
        request: crate::computer_files::FilesRequest,
        reply: RpcReplyPort<Result<u32, SessionError>>,
    },
    /// F2: how a file operation ended on the customer's computer.
    ComputerFilesDone {
        computer: ParticipantId,
        op: u32,
        result: crate::computer_files::FilesResult,
        reply: RpcReplyPort<Result<(), SessionError>>,
    },
    /// F2: operation `op`'s computer and customer, while it waits for its answer.
    FilesOp {
        op: u32,
        reply: RpcReplyPort<Option<rules::computer_files::PendingOp>>,
    },
    /// M5: `computer` is about to restart (with its customer's OK); answers its customer.
    Restarting {
        computer: ParticipantId,
        reply: RpcReplyPort<Result<ParticipantId, SessionError>>,
    },
    /// An agent takes this transferred session.
    AcceptTransfer {
        info: ParticipantInfo,
        reply: RpcReplyPort<Result<ParticipantId, SessionError>>,
    },
    /// A participant's WebSocket connected: an admitted customer joins now, or is refused if
    /// the session is full; a removed participant is refused.
    Attach {
        participant: ParticipantId,
        connection: Connection,
        reply: RpcReplyPort<Result<ParticipantLink, SessionError>>,
    },
    /// From a participant actor: a command, or that it is gone.
    Participant(ParticipantReport),
    /// The session as `viewer` sees it (`None`: as staff/admin).
    View {
        viewer: Option<ParticipantId>,
        reply: RpcReplyPort<serde_json::Value>,
    },
    /// The link to one participant's actor (supervision tests inject faults through it).
    ParticipantLink {
        participant: ParticipantId,
        reply: RpcReplyPort<Option<ParticipantLink>>,
    },
    /// From the media worker: an offer to pass on, a lost connection.
    Media(MediaNotice),
    /// The ended session stops even if some participant has not closed by now.
    Finish,
    /// Issue 18: time to withdraw the requests nobody answered ([`SessionRules::consent_deadline`]).
    ExpireConsents,
    /// Panics the session actor. Rust-only, for supervision tests.
    InjectPanic,
}

impl From<ParticipantReport> for SessionMsg {
    fn from(report: ParticipantReport) -> Self {
        Self::Participant(report)
    }
}

/// Gives back a report the session's mailbox did not take (ractor needs the way back).
impl TryFrom<SessionMsg> for ParticipantReport {
    type Error = ();

    fn try_from(msg: SessionMsg) -> Result<Self, ()> {
        match msg {
            SessionMsg::Participant(report) => Ok(report),
            _ => Err(()),
        }
    }
}

impl Actor for SessionActor {
    type Msg = SessionMsg;
    type State = SessionState;
    type Arguments = SessionArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SessionMsg>,
        args: SessionArgs,
    ) -> Result<SessionState, ActorProcessingErr> {
        let rules = match args.restore {
            Some(records) => SessionRules::restore(args.init, &records),
            None => {
                let (rules, records) = SessionRules::create(args.init, unix_now());
                args.journal.append(rules.init(), &records).await?;
                rules
            }
        };
        let mut state = SessionState {
            rules,
            journal: args.journal,
            accounts: args.accounts,
            participant_config: args.participant_config,
            restart_policy: args.restart_policy,
            queues: args.queues,
            slots: HashMap::new(),
            leaving: Vec::new(),
            closing: HashSet::new(),
            media: args.media,
            notices: notice_sink(&myself),
            media_policy: None,
            media_departed: Vec::new(),
            media_ended: false,
            recordings: args.recordings,
            recording: None,
            recording_overflowed: false,
            files: args.files,
            files_kept: BTreeSet::new(),
            away: BTreeSet::new(),
            consent_timer: None,
        };
        state.files_kept = state.rules.shared_files().keys().copied().collect();
        // After a restore, everyone present gets a fresh actor; their WebSockets were closed with
        // the old ones and reconnect to these.
        let present: Vec<(ParticipantId, Role)> =
            state.rules.participants().map(|p| (p.id, p.role)).collect();
        for (id, role) in present {
            spawn_participant(&myself, &mut state, id, role, None).await?;
        }
        // A restored session tells the media worker the call as the journal has it, and goes on
        // recording (in a new file) if it was.
        sync_recording(&mut state).await;
        sync_media(&mut state).await;
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<SessionMsg>,
        msg: SessionMsg,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SessionMsg::Join {
                info,
                as_primary,
                reply,
            } => {
                let id = info.id;
                let role = info.role;
                let before = state.rules.clone();
                let result = match state.rules.join(unix_now(), info, as_primary) {
                    Ok(records) => commit(state, before, records).await,
                    Err(r) => Err(r.into()),
                };
                let result = match result {
                    Ok(()) => spawn_participant(&myself, state, id, role, None)
                        .await
                        .map(|_| id)
                        .map_err(|e| SessionError::Storage(e.to_string())),
                    Err(e) => Err(e),
                };
                let _ = reply.send(result);
                after(&myself, state).await;
            }
            SessionMsg::Admit {
                info,
                joins_per_minute,
                reply,
            } => {
                let id = info.id;
                let result = state.rules.admit(unix_now(), info, joins_per_minute);
                let _ = reply.send(result.map(|()| id).map_err(Into::into));
            }
            SessionMsg::AdmitComputer {
                customer,
                computer,
                abilities,
                reply,
            } => {
                let result =
                    state
                        .rules
                        .admit_able_computer(unix_now(), customer, computer, abilities);
                let _ = reply.send(result.map_err(Into::into));
            }
            SessionMsg::PublishFile {
                by,
                file,
                shared,
                reply,
            } => {
                let before = state.rules.clone();
                let result = match state.rules.publish_file(unix_now(), by, file, shared) {
                    Ok(records) => commit(state, before, records).await,
                    Err(r) => Err(r.into()),
                };
                let _ = reply.send(result);
                after(&myself, state).await;
            }
            SessionMsg::ProvideSystemInfo {
                computer,
                info,
                reply,
            } => {
                let before = state.rules.clone();
                let result = match state.rules.provide_system_info(unix_now(), computer, info) {
                    Ok(records) => commit(state, before, records).await,
                    Err(r) => Err(r.into()),
                };
                let _ = reply.send(result);
                after(&myself, state).await;
            }
            SessionMsg::ProposeScripts { by, scripts, reply } => {
                let before = state.rules.clone();
                let result = match state.rules.propose_scripts(unix_now(), by, scripts) {
                    Ok(records) => {
                        let request = records.iter().find_map(|r| match &r.event {
                            Event::ScriptsProposed { request, .. } => Some(*request),
                            _ => None,
                        });
                        commit(state, before, records)
                            .await
                            .map(|()| request.unwrap_or_default())
                    }
                    Err(r) => Err(r.into()),
                };
                let _ = reply.send(result);
                after(&myself, state).await;
            }
            SessionMsg::ScriptItem {
                computer,
                request,
                index,
                reply,
            } => {
                let item = state.rules.script_item(computer, request, index);
                let _ = reply.send(item.cloned().map_err(Into::into));
            }
            SessionMsg::ComputerFiles { by, request, reply } => {
                let before = state.rules.clone();
                let result = match state.rules.request_computer_files(unix_now(), by, request) {
                    Ok((op, records)) => commit(state, before, records).await.map(|()| op),
                    Err(r) => Err(r.into()),
                };
                let _ = reply.send(result);
                after(&myself, state).await;
            }
            SessionMsg::ComputerFilesDone {
                computer,
                op,
                result,
                reply,
            } => {
                let before = state.rules.clone();
                let result = match state
                    .rules
                    .computer_files_done(unix_now(), computer, op, result)
                {
                    Ok(records) => commit(state, before, records).await,
                    Err(r) => Err(r.into()),
                };
                let _ = reply.send(result);
                after(&myself, state).await;
            }
            SessionMsg::FilesOp { op, reply } => {
                let _ = reply.send(state.rules.files_op(op).cloned());
            }
            SessionMsg::ScriptFinished {
                computer,
                request,
                index,
                outcome,
                reply,
            } => {
                let before = state.rules.clone();
                let result =
                    match state
                        .rules
                        .script_finished(unix_now(), computer, request, index, outcome)
                    {
                        Ok(records) => commit(state, before, records).await,
                        Err(r) => Err(r.into()),
                    };
                let _ = reply.send(result);
                after(&myself, state).await;
            }
            SessionMsg::Restarting { computer, reply } => {
                let before = state.rules.clone();
                let customer = state.rules.computer_of(computer);
                let result = match state.rules.restarting(unix_now(), computer) {
                    Ok(records) => commit(state, before, records).await,
                    Err(r) => Err(r.into()),
                };
                let _ = reply
                    .send(result.and_then(|()| customer.ok_or(SessionError::UnknownParticipant)));
                after(&myself, state).await;
            }
            SessionMsg::AcceptTransfer { info, reply } => {
                let before = state.rules.clone();
                let account = info.account;
                let result = match state.rules.accept_transfer(unix_now(), info) {
                    Ok(records) => commit(state, before, records).await,
                    Err(r) => Err(r.into()),
                };
                let result = match result {
                    Ok(()) => {
                        let primary = state
                            .rules
                            .participants()
                            .find(|p| p.account == account && p.account.is_some())
                            .map(|p| p.id);
                        match primary {
                            Some(id) if !state.slots.contains_key(&id) => {
                                spawn_participant(&myself, state, id, Role::Csr, None)
                                    .await
                                    .map(|_| id)
                                    .map_err(|e| SessionError::Storage(e.to_string()))
                            }
                            Some(id) => Ok(id),
                            None => Err(SessionError::UnknownParticipant),
                        }
                    }
                    Err(e) => Err(e),
                };
                let _ = reply.send(result);
                after(&myself, state).await;
            }
            SessionMsg::Attach {
                participant,
                connection,
                reply,
            } => {
                if let Err(e) = take_slot(&myself, state, participant).await {
                    let _ = reply.send(Err(e));
                    after(&myself, state).await;
                    return Ok(());
                }
                let Some(slot) = state.slots.get_mut(&participant) else {
                    let _ = reply.send(Err(SessionError::UnknownParticipant));
                    return Ok(());
                };
                slot.args.connection = Some(connection.clone());
                let actor = slot.link.read().expect("link lock poisoned").clone();
                let role = slot.args.role;
                let grace = slot.args.config.reconnect_grace.as_secs();
                let _ = actor.cast(ParticipantMsg::Connect(connection));
                let mut session = state.rules.view(Some(role), Some(participant));
                session["away"] = serde_json::json!(state.away);
                let welcome = ServerMsg::Welcome {
                    you: participant,
                    role,
                    session,
                    limits: ClientLimits {
                        reconnect_grace_secs: grace,
                        ..ClientLimits::default()
                    },
                };
                let _ = actor.cast(ParticipantMsg::Deliver(Arc::new(welcome)));
                let _ = reply.send(Ok(slot.link.clone()));
                after(&myself, state).await;
            }
            SessionMsg::Participant(ParticipantReport::Command { from, frame }) => {
                let reference = frame.reference;
                let kind = frame.command.kind();
                let result = handle_command(state, from, frame.command, reference).await;
                telemetry::command_handled(kind, result.as_ref().err().map(|e| e.code()));
                let answer = match result {
                    Ok(Some(answer)) => Some(answer),
                    Ok(None) => reference.map(|reference| ServerMsg::Ok { reference }),
                    Err(e) => Some(ServerMsg::Error {
                        reference,
                        code: e.code().to_string(),
                        detail: e.to_string(),
                    }),
                };
                if let Some(answer) = answer {
                    tell(state, from, answer);
                }
                after(&myself, state).await;
            }
            SessionMsg::Participant(ParticipantReport::Presence { participant, away }) => {
                let changed = if away {
                    state.away.insert(participant)
                } else {
                    state.away.remove(&participant)
                };
                if changed && state.rules.participant(participant).is_some() {
                    let grace = state.participant_config.reconnect_grace.as_secs();
                    let msg = ServerMsg::Presence {
                        participant,
                        away,
                        grace_secs: grace,
                    };
                    let others: Vec<ParticipantId> = state
                        .slots
                        .keys()
                        .copied()
                        .filter(|id| *id != participant)
                        .collect();
                    for id in others {
                        tell(state, id, msg.clone());
                    }
                }
            }
            SessionMsg::Participant(ParticipantReport::Gone { participant }) => {
                state.away.remove(&participant);
                let before = state.rules.clone();
                let records = state.rules.disconnected(unix_now(), participant);
                if let Err(e) = commit(state, before, records).await {
                    tracing::error!(%participant, error = %e, "could not record a departure");
                }
                after(&myself, state).await;
            }
            SessionMsg::View { viewer, reply } => {
                let role = viewer.and_then(|v| state.rules.participant(v).map(|p| p.role));
                let _ = reply.send(state.rules.view(role, viewer));
            }
            SessionMsg::ParticipantLink { participant, reply } => {
                let _ = reply.send(state.slots.get(&participant).map(|s| s.link.clone()));
            }
            SessionMsg::Media(MediaNotice::Offer {
                participant,
                offer,
                sdp,
            }) => {
                tell(state, participant, ServerMsg::MediaOffer { offer, sdp });
            }
            SessionMsg::Media(MediaNotice::Disconnected { participant }) => {
                // Nothing in the session's rules depends on it; the page connects again.
                tracing::debug!(%participant, "media connection lost");
                tell(
                    state,
                    participant,
                    ServerMsg::MediaClosed {
                        reason: "the media connection was lost; connect again".into(),
                    },
                );
            }
            SessionMsg::Media(MediaNotice::RecordingLost) => {
                tracing::error!(session = %state.id(), "the recorder fell behind; the recording stops");
                state.recording_overflowed = true;
                let before = state.rules.clone();
                let records = state.rules.recording_failed(unix_now());
                if let Err(e) = commit(state, before, records).await {
                    tracing::error!(error = %e, "could not record the recording's failure");
                }
                after(&myself, state).await;
            }
            SessionMsg::Media(MediaNotice::CallLost) => {
                // The worker starts the call afresh: it needs the whole policy again.
                state.media_policy = None;
                sync_media(state).await;
            }
            SessionMsg::ExpireConsents => {
                state.consent_timer = None;
                let before = state.rules.clone();
                let records = state.rules.expire_consents(unix_now());
                if let Err(e) = commit(state, before, records).await {
                    tracing::error!(error = %e, "could not record requests that ran out of time");
                }
                after(&myself, state).await;
            }
            SessionMsg::Finish => myself.stop(Some(StopReason::SessionEnded.to_string())),
            SessionMsg::InjectPanic => {
                panic!("injected fault in session {}", state.rules.init().id)
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SessionMsg>,
        event: SupervisionEvent,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, error) = match event {
            SupervisionEvent::ActorFailed(cell, error) => (cell, error),
            SupervisionEvent::ActorTerminated(cell, ..) => {
                // Participants stop on purpose only after a Close.
                if state.closing.remove(&cell.get_id())
                    && state.closing.is_empty()
                    && state.rules.is_ended()
                {
                    myself.stop(Some(StopReason::SessionEnded.to_string()));
                }
                return Ok(());
            }
            _ => return Ok(()),
        };
        if state.closing.remove(&cell.get_id()) {
            if state.closing.is_empty() && state.rules.is_ended() {
                myself.stop(Some(StopReason::SessionEnded.to_string()));
            }
            return Ok(()); // It failed while closing; nothing to restart.
        }
        let Some((&id, slot)) = state
            .slots
            .iter_mut()
            .find(|(_, s)| s.actor == cell.get_id())
        else {
            return Ok(());
        };
        let session = state.rules.init().id;
        match slot.budget.on_failure(Instant::now()) {
            Decision::Restart => {
                tracing::warn!(%session, participant = %id, %error, "participant actor failed; restarting it");
                telemetry::actor_restarted("participant");
                let args = slot.args.clone();
                let (actor, _) =
                    Actor::spawn_linked(None, ParticipantActor, args, myself.get_cell()).await?;
                slot.actor = actor.get_id();
                *slot.link.write().expect("link lock poisoned") = actor;
            }
            Decision::GiveUp => {
                tracing::error!(%session, participant = %id, %error, "participant actor keeps failing; removing the participant");
                telemetry::actor_gave_up("participant");
                let before = state.rules.clone();
                let records = state.rules.crashed(unix_now(), id);
                commit(state, before, records).await?;
                after(&myself, state).await;
            }
        }
        Ok(())
    }
}

/// Makes sure a connecting participant is present: someone with an actor reconnects; an
/// admitted customer joins now (journaled), taking a customer slot if one is free.
async fn take_slot(
    myself: &ActorRef<SessionMsg>,
    state: &mut SessionState,
    participant: ParticipantId,
) -> Result<(), SessionError> {
    if state.slots.contains_key(&participant) {
        return Ok(());
    }
    let before = state.rules.clone();
    let records = state.rules.connect(unix_now(), participant)?;
    if records.is_empty() {
        // Present in the rules but without an actor: only while it is being closed.
        return Err(SessionError::UnknownParticipant);
    }
    commit(state, before, records).await?;
    spawn_participant(myself, state, participant, Role::Customer, None)
        .await
        .map_err(|e| SessionError::Storage(e.to_string()))
}

async fn spawn_participant(
    myself: &ActorRef<SessionMsg>,
    state: &mut SessionState,
    id: ParticipantId,
    role: Role,
    connection: Option<Connection>,
) -> Result<(), ActorProcessingErr> {
    let args = ParticipantArgs {
        session: myself.get_derived(),
        id,
        role,
        config: state.participant_config.clone(),
        connection,
    };
    let (actor, _) =
        Actor::spawn_linked(None, ParticipantActor, args.clone(), myself.get_cell()).await?;
    state.slots.insert(
        id,
        Slot {
            args,
            actor: actor.get_id(),
            link: Arc::new(RwLock::new(actor)),
            budget: RestartBudget::new(state.restart_policy),
        },
    );
    Ok(())
}

async fn handle_command(
    state: &mut SessionState,
    from: ParticipantId,
    command: Command,
    reference: Option<u64>,
) -> Result<Option<ServerMsg>, SessionError> {
    let target = match &command {
        Command::Transfer { target, .. } => Some(target.clone()),
        _ => None,
    };
    // SDP is for the media worker, once the rules have taken the command.
    let media_sdp = match &command {
        Command::MediaOffer { .. } | Command::MediaAnswer { .. } => Some(command.clone()),
        _ => None,
    };
    // M4: the password goes on to the customer's computer once the rules took the attempt; it
    // is in no event, so only this copy (and the rules' look at it) ever holds it.
    let password = match &command {
        Command::LoginAsUser { password, .. } => Some(password.clone()),
        _ => None,
    };
    let before = state.rules.clone();
    let records = state.rules.handle(unix_now(), from, command)?;
    // The rules cannot know which queues and agents exist; a transfer they accept is checked
    // here and undone if its target is not real.
    if let Some(target) = target
        && let Err(e) = check_transfer_target(state, &target).await
    {
        state.rules = before;
        return Err(e);
    }
    let login = password.and_then(|password| {
        records.iter().find_map(|r| match &r.event {
            Event::LoginAsUserAttempted {
                computer, by, user, ..
            } => Some((
                *computer,
                ServerMsg::LoginAsUser {
                    user: user.clone(),
                    password: password.clone(),
                    by: *by,
                },
            )),
            _ => None,
        })
    });
    commit(state, before, records).await?;
    if let Some((computer, msg)) = login {
        // That computer alone: never an event, never delivered to anyone else.
        tell(state, computer, msg);
    }
    let Some(media_sdp) = media_sdp else {
        return Ok(None);
    };
    let media = state.media.as_ref().ok_or(MediaError::Stopped)?;
    let session = state.rules.init().id;
    match media_sdp {
        Command::MediaOffer { sdp, video } => {
            let notices = state.notices.clone();
            let answer = media.offer(session, from, sdp, video, notices).await?;
            Ok(Some(ServerMsg::MediaAnswer {
                reference,
                sdp: answer.sdp,
                void_offers: answer.void_offers,
            }))
        }
        Command::MediaAnswer { offer, sdp } => {
            media.answer(session, from, offer, sdp).await?;
            Ok(None)
        }
        _ => Ok(None),
    }
}

async fn check_transfer_target(
    state: &SessionState,
    target: &TransferTarget,
) -> Result<(), SessionError> {
    let real = match target {
        TransferTarget::Queue { queue } => {
            let q = state.queues.as_ref().ok_or(SessionError::Unavailable)?;
            ractor::call_t!(
                q,
                QueueRegistryMsg::Exists,
                QUEUE_CALL_TIMEOUT.as_millis() as u64,
                *queue
            )
            .map_err(|_| SessionError::Unavailable)?
        }
        TransferTarget::Agents { agents } => {
            let mut all = true;
            for a in agents {
                all &= state
                    .accounts
                    .is_agent(*a)
                    .await
                    .map_err(|e| SessionError::Storage(e.to_string()))?;
            }
            all
        }
    };
    if real {
        Ok(())
    } else {
        Err(Refusal::InvalidTransferTarget.into())
    }
}

/// Journals `records`, then delivers them and carries out what they imply. On a journal failure
/// the rules go back to `before` and nothing is delivered.
async fn commit(
    state: &mut SessionState,
    before: SessionRules,
    records: Vec<Record>,
) -> Result<(), SessionError> {
    if records.is_empty() {
        return Ok(());
    }
    if let Err(e) = state.journal.append(state.rules.init(), &records).await {
        state.rules = before;
        telemetry::journal_failed();
        tracing::error!(session = %state.rules.init().id, error = %e, "journal append failed; command refused");
        return Err(SessionError::Storage(e.to_string()));
    }
    let session = state.rules.init().id;
    for record in &records {
        deliver(state, record);
        if let Some(r) = &state.recording
            && let Ok(json) = serde_json::to_string(&record.event)
        {
            r.sink.event(Instant::now(), record.event.kind(), json);
        }
        match &record.event {
            Event::ParticipantJoined { .. } => telemetry::participant_joined(),
            Event::ParticipantLeft {
                participant,
                reason,
            } => {
                let bye = match reason {
                    LeaveReason::Removed => "removed",
                    LeaveReason::CustomerLeft => "customer_left",
                    _ => "left",
                };
                state.leaving.push((*participant, bye));
            }
            Event::ComputerRestarting { customer, .. } => {
                if let Some(slot) = state.slots.get(customer) {
                    let actor = slot.link.read().expect("link lock poisoned").clone();
                    let _ = actor.cast(ParticipantMsg::HoldForRestart);
                }
            }
            Event::SessionTransferred {
                target, message, ..
            } => {
                if let Some(q) = &state.queues {
                    let _ = q.cast(QueueRegistryMsg::Enqueue {
                        target: target.clone(),
                        waiting: Waiting {
                            session,
                            message: message.clone(),
                            since: record.at,
                            eligible: None,
                        },
                    });
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Settles what the last change implies: participants closed, the media worker told.
async fn after(myself: &ActorRef<SessionMsg>, state: &mut SessionState) {
    schedule_consent_expiry(myself, state);
    settle(myself, state);
    sync_files(state);
    sync_recording(state).await;
    sync_media(state).await;
}

/// Issue 18: wakes this actor when the next unanswered request runs out of time (once per
/// deadline; a later wake-up finds nothing due and schedules the next).
fn schedule_consent_expiry(myself: &ActorRef<SessionMsg>, state: &mut SessionState) {
    let Some(due) = state.rules.consent_deadline() else {
        return;
    };
    if state.consent_timer.is_some_and(|t| t <= due) {
        return;
    }
    state.consent_timer = Some(due);
    let wait = Duration::from_millis(u64::try_from(due.saturating_sub(unix_now())).unwrap_or(0));
    myself.send_after(wait, || SessionMsg::ExpireConsents);
}

/// Removes from the shelf the files the rules no longer hold (withdrawn, file transfer ended,
/// the customer gone), and everything of an ended session, uploads under way included.
fn sync_files(state: &mut SessionState) {
    let Some(shelf) = &state.files else {
        return;
    };
    let session = state.rules.init().id;
    if state.rules.is_ended() {
        shelf.clear(session);
        state.files_kept.clear();
        return;
    }
    let now: BTreeSet<FileId> = state.rules.shared_files().keys().copied().collect();
    for gone in state.files_kept.difference(&now) {
        shelf.remove(session, *gone);
    }
    state.files_kept = now;
}

/// Starts the recorder when the recording activity starts (after the customer's consent, S9)
/// and stops it when the activity stops, for whatever cause (S7, S8, the end). A recording that
/// cannot start stops its activity at once, so nobody believes it runs.
async fn sync_recording(state: &mut SessionState) {
    let wanted = state.rules.is_recording();
    if wanted && state.recording.is_none() {
        match start_recording(state).await {
            Ok(active) => state.recording = Some(active),
            Err(e) => {
                tracing::error!(session = %state.id(), error = %e, "could not start recording");
                let primary = state.rules.primary();
                let before = state.rules.clone();
                let records = state.rules.recording_failed(unix_now());
                if commit(state, before, records).await.is_ok()
                    && let Some(p) = primary
                {
                    tell(
                        state,
                        p,
                        ServerMsg::Error {
                            reference: None,
                            code: "recording_failed".into(),
                            detail: format!("the recording could not start: {e}"),
                        },
                    );
                }
            }
        }
    } else if !wanted && let Some(active) = state.recording.take() {
        let overflowed = std::mem::take(&mut state.recording_overflowed);
        let recordings = state.recordings.clone();
        tokio::spawn(async move {
            let result = active.recorder.stop(overflowed).await;
            if let Err(e) = &result {
                tracing::error!(recording = %active.id, error = %e, "the recording failed");
            }
            if let Some(r) = recordings {
                r.finished(active.id, result).await;
            }
        });
    }
}

async fn start_recording(state: &mut SessionState) -> Result<ActiveRecording, String> {
    let recordings = state
        .recordings
        .clone()
        .ok_or("recording is not available on this server")?;
    let id = RecordingId::random();
    let session = state.id();
    // The primary CSR's account owns it; the host's, should the primary have none.
    let init = state.rules.init();
    let owner = state
        .rules
        .primary()
        .and_then(|p| state.rules.participant(p))
        .and_then(|p| p.account)
        .unwrap_or(init.host);
    let name = format!("{} · session {}", init.topic, init.number);
    let started_at = unix_now();
    let path = recordings
        .begin(id, session, owner, name, started_at)
        .await?;
    let header = tandem_arf::Header {
        recording_id: id.to_string(),
        session_id: session.to_string(),
        start_unix_ms: u64::try_from(started_at).unwrap_or(0),
        metadata:
            serde_json::json!({"number": state.rules.init().number.to_string(), "owner": owner})
                .to_string(),
    };
    let start = Instant::now();
    let recorder = Recorder::start(&path, &header, start).map_err(|e| e.to_string())?;
    let sink = recorder.sink();
    // The session as it stands: who is there and what runs, before the first event.
    sink.event(
        start,
        "session_view",
        state.rules.view(None, None).to_string(),
    );
    Ok(ActiveRecording { id, recorder, sink })
}

/// Tells the media worker what changed: departures, the media policy (the voice call, who
/// sends video, who controls whom), or the end of the session.
async fn sync_media(state: &mut SessionState) {
    let Some(media) = state.media.clone() else {
        return;
    };
    let session = state.rules.init().id;
    // Each change is marked as told only once the worker has taken it, so a busy worker is
    // told again on the next change rather than left with stale state.
    let result = async {
        if state.rules.is_ended() {
            if !state.media_ended {
                media.end_session(session).await?;
                state.media_ended = true;
            }
            return Ok(());
        }
        while let Some(p) = state.media_departed.first().copied() {
            media.remove(session, p).await?;
            state.media_departed.remove(0);
        }
        let policy = state.rules.media_policy();
        if state.media_policy.as_ref() != Some(&policy) {
            let recorder = state.recording.as_ref().map(|r| r.sink.clone());
            media
                .set_policy(session, policy.clone(), state.notices.clone(), recorder)
                .await?;
            state.media_policy = Some(policy);
        }
        Ok::<_, MediaError>(())
    }
    .await;
    if let Err(e) = result {
        tracing::error!(%session, error = %e, "could not update the media worker");
    }
}

/// Closes the participants that left and, once the session has ended, everyone and the session
/// itself. Runs after the command's answer is queued, so the person who left or ended the
/// session still gets their answer, then a goodbye, in order.
fn settle(myself: &ActorRef<SessionMsg>, state: &mut SessionState) {
    let ended = state.rules.is_ended();
    let leaving: Vec<(ParticipantId, &str)> = if ended {
        state.leaving.clear();
        state
            .slots
            .keys()
            .map(|id| (*id, "session ended"))
            .collect()
    } else {
        std::mem::take(&mut state.leaving)
    };
    for (id, reason) in leaving {
        if let Some(slot) = state.slots.remove(&id) {
            telemetry::participant_left();
            state.media_departed.push(id);
            let actor = slot.link.read().expect("link lock poisoned").clone();
            if actor
                .cast(ParticipantMsg::Close {
                    reason: reason.into(),
                })
                .is_ok()
            {
                state.closing.insert(actor.get_id());
            }
        }
    }
    if ended {
        if let Some(q) = &state.queues {
            let _ = q.cast(QueueRegistryMsg::Remove {
                session: state.rules.init().id,
            });
        }
        if state.closing.is_empty() {
            myself.stop(Some(StopReason::SessionEnded.to_string()));
        } else {
            myself.send_after(CLOSE_WAIT, || SessionMsg::Finish);
        }
    }
}

/// The worker's notices become messages to this actor.
fn notice_sink(myself: &ActorRef<SessionMsg>) -> NoticeSink {
    let myself = myself.clone();
    Arc::new(move |notice| {
        let _ = myself.cast(SessionMsg::Media(notice));
    })
}

/// Sends one participant a message of its own.
fn tell(state: &SessionState, to: ParticipantId, msg: ServerMsg) {
    if let Some(slot) = state.slots.get(&to) {
        let actor = slot.link.read().expect("link lock poisoned").clone();
        let _ = actor.cast(ParticipantMsg::Deliver(Arc::new(msg)));
    }
}

fn deliver(state: &SessionState, record: &Record) {
    let audience = record.event.audience();
    if audience == Audience::Nobody {
        return;
    }
    let message = |role: Role| {
        Arc::new(ServerMsg::Event {
            seq: record.seq,
            at: record.at,
            event: record.event.for_role(role).into_owned(),
        })
    };
    let for_staff = message(Role::Csr);
    let for_customers = message(Role::Customer);
    for (id, slot) in &state.slots {
        let wanted = match &audience {
            Audience::Everyone => true,
            Audience::Staff => slot.args.role == Role::Csr,
            Audience::StaffAnd(ids) => slot.args.role == Role::Csr || ids.contains(id),
            Audience::Only(ids) => ids.contains(id),
            Audience::Nobody => false,
        };
        if wanted {
            let msg = match slot.args.role {
                Role::Csr => for_staff.clone(),
                Role::Customer => for_customers.clone(),
            };
            let actor = slot.link.read().expect("link lock poisoned").clone();
            let _ = actor.cast(ParticipantMsg::Deliver(msg));
        }
    }
    telemetry::event_emitted(record.event.kind());
}

impl SessionState {
    pub fn id(&self) -> SessionId {
        self.rules.init().id
    }
}
