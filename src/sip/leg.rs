//! One phone call's life in Tandem (SPEC V5): it finds the session (by the number dialled, or
//! by the number keyed in at the service prompt), joins it as a participant named after the
//! caller, puts the phone's audio in the session's call on the session's media worker, joins
//! the voice call whenever there is one, and leaves when either side hangs up. Like any
//! participant it obeys the microphone rule (V3): it hears the listener mix until a CSR passes
//! it the microphone.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ractor::ActorRef;
use tandem_actors::ids::{ParticipantId, SessionId, SessionNumber};
use tandem_actors::media_worker::{MediaError, MediaPool, MediaWorkerHandle};
use tandem_actors::participant::{Connection, ParticipantMsg};
use tandem_actors::protocol::{ClientFrame, Command, Event, ParticipantInfo, Role, ServerMsg};
use tandem_actors::root::Directory;
use tandem_actors::session::SessionMsg;
use tandem_actors::session_registry::{SessionHandle, SessionRegistryMsg};
use tokio::sync::{mpsc, oneshot};

use super::accounts::DialFailure;
use super::endpoint::{Ended, LegId, Target};
use super::prompt;
use super::registrar::SipAccount;
use super::sdp::Negotiated;
use crate::throttle::session_numbers::{Refusal, SharedNumbers};

/// How long an actor may take to answer.
const ASK: Duration = Duration::from_secs(5);
/// Wrong numbers keyed in before the service prompt hangs up.
const MAX_TRIES: usize = 3;
/// Longest a caller may take to key in a number.
const KEYING: Duration = Duration::from_secs(60);

/// What a call's task asks of the endpoint.
#[derive(Debug)]
pub enum LegCmd {
    Ring(LegId),
    Answer(LegId, SocketAddr),
    Reject(LegId, u16),
    /// Refuse with this status and a Retry-After of so many seconds.
    RejectUntil(LegId, u16, u64),
    Hangup(LegId),
    MoveMedia(LegId, SocketAddr),
    /// The task is finished.
    Done(LegId),
}

/// What the endpoint tells a call's task.
#[derive(Debug)]
pub enum LegEvent {
    Media(Negotiated),
    Ended(Ended),
}

/// Who called: the name people see, and the support account it proved, if any.
pub struct Caller {
    pub name: String,
    pub account: Option<Box<SipAccount>>,
}

pub struct LegContext {
    pub directory: Directory,
    pub media: MediaPool,
    pub commands: mpsc::UnboundedSender<LegCmd>,
    pub ring: Duration,
    /// The budget of wrong session numbers, shared with the HTTP API.
    pub session_numbers: SharedNumbers,
}

/// A call to Tandem, as the endpoint announced it.
pub struct Incoming {
    pub target: Target,
    pub caller: Caller,
    pub offer: Option<Negotiated>,
    /// Where the INVITE came from.
    pub source: IpAddr,
}

struct Leg {
    ctx: Arc<LegContext>,
    id: LegId,
    events: mpsc::UnboundedReceiver<LegEvent>,
    /// The media agreed so far (`None` until the ACK when the INVITE had no offer).
    media: Option<Negotiated>,
    answered: bool,
    /// Where the phone sends its audio now (a media worker's address).
    sending_to: Option<SocketAddr>,
}

/// Why a call's task stopped early.
enum Stop {
    /// The phone hung up or cancelled.
    Gone,
    /// Refused with this status.
    Refuse(u16),
    /// Too many wrong session numbers from the caller's address: refused (403 with
    /// Retry-After, these seconds) before the answer, hung up after it.
    Throttled(u64),
}

impl Leg {
    fn start(
        ctx: Arc<LegContext>,
        id: LegId,
        events: mpsc::UnboundedReceiver<LegEvent>,
        media: Option<Negotiated>,
        sending_to: Option<SocketAddr>,
    ) -> Self {
        crate::metrics::sip_leg_started();
        Self {
            ctx,
            id,
            events,
            media,
            answered: false,
            sending_to,
        }
    }

    /// The call's task is over.
    fn finish(self) {
        self.send(LegCmd::Done(self.id));
        crate::metrics::sip_leg_ended();
    }

    fn send(&self, cmd: LegCmd) {
        let _ = self.ctx.commands.send(cmd);
    }

    /// Waits for `d`, taking media updates; `Gone` if the phone hangs up meanwhile.
    async fn wait(&mut self, d: Duration) -> Result<(), Stop> {
        let until = tokio::time::Instant::now() + d;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return Ok(()),
                e = self.events.recv() => match e {
                    Some(LegEvent::Media(n)) => self.media = Some(n),
                    Some(LegEvent::Ended(_)) | None => return Err(Stop::Gone),
                }
            }
        }
    }

    /// Waits until the phone's audio is known (the ACK's answer, when we made the offer).
    async fn media_known(&mut self) -> Result<Negotiated, Stop> {
        loop {
            if let Some(n) = &self.media {
                return Ok(n.clone());
            }
            match tokio::time::timeout(Duration::from_secs(40), self.events.recv()).await {
                Ok(Some(LegEvent::Media(n))) => self.media = Some(n),
                Ok(Some(LegEvent::Ended(_)) | None) | Err(_) => return Err(Stop::Gone),
            }
        }
    }
}

pub async fn run(
    ctx: Arc<LegContext>,
    id: LegId,
    call: Incoming,
    events: mpsc::UnboundedReceiver<LegEvent>,
) {
    let Incoming {
        target,
        caller,
        offer,
        source,
    } = call;
    let mut leg = Leg::start(ctx, id, events, offer, None);
    let result = match target {
        Target::Session(number) => match by_number(&leg.ctx, source, &number).await {
            Ok(Some(handle)) => in_session(&mut leg, handle, &caller, None).await,
            Ok(None) => Err(Stop::Refuse(404)),
            Err(stop) => Err(stop),
        },
        // A caller who could not key in a number anyway is not answered.
        Target::Service => match leg.ctx.session_numbers.check(source) {
            Err(refused) => Err(throttled(source, refused)),
            Ok(()) => service(&mut leg, &caller, source).await,
        },
    };
    match result {
        Ok(()) | Err(Stop::Gone) => {}
        Err(Stop::Refuse(code)) if !leg.answered => leg.send(LegCmd::Reject(id, code)),
        Err(Stop::Throttled(secs)) if !leg.answered => {
            leg.send(LegCmd::RejectUntil(id, 403, secs));
        }
        Err(Stop::Refuse(_) | Stop::Throttled(_)) => leg.send(LegCmd::Hangup(id)),
    }
    leg.finish();
}

/// A call Tandem placed to a CSR's softphone: once answered it joins the session as that CSR;
/// `reply` hears how it went.
pub async fn dialled(
    ctx: Arc<LegContext>,
    id: LegId,
    handle: SessionHandle,
    caller: Caller,
    local: SocketAddr,
    events: mpsc::UnboundedReceiver<LegEvent>,
    reply: oneshot::Sender<Result<String, DialFailure>>,
) {
    let mut leg = Leg::start(ctx, id, events, None, Some(local));
    // The endpoint ends a call it placed within about a minute (ringing, then CANCEL); this
    // bound only guards against that promise being broken.
    let first = tokio::time::timeout(Duration::from_secs(120), leg.events.recv())
        .await
        .unwrap_or_else(|_| {
            leg.send(LegCmd::Hangup(id));
            None
        });
    let answered = match first {
        Some(LegEvent::Media(n)) => {
            leg.media = Some(n);
            leg.answered = true;
            Ok(())
        }
        Some(LegEvent::Ended(Ended::Declined(code))) => Err(DialFailure::Declined(code)),
        Some(LegEvent::Ended(Ended::NoAnswer)) => Err(DialFailure::NoAnswer),
        Some(LegEvent::Ended(_)) | None => Err(DialFailure::Unreachable),
    };
    match answered {
        Err(e) => {
            let _ = reply.send(Err(e));
        }
        Ok(()) => match in_session(&mut leg, handle, &caller, Some(reply)).await {
            Ok(()) | Err(Stop::Gone) => {}
            Err(Stop::Refuse(_) | Stop::Throttled(_)) => leg.send(LegCmd::Hangup(id)),
        },
    }
    leg.finish();
}

fn throttled(source: IpAddr, refused: Refusal) -> Stop {
    crate::metrics::session_number_try("sip", refused.label());
    tracing::info!(
        source = %crate::throttle::subscriber(source),
        limit = refused.label(),
        "a caller tried too many unknown session numbers"
    );
    Stop::Throttled(refused.retry_after_secs())
}

/// The live session with this number, the try counted in the budget of session numbers that
/// the HTTP API shares (src/throttle/session_numbers.rs); `None` for no session (and for
/// anything that is not a session number, which is not counted: it finds nothing).
async fn by_number(
    ctx: &LegContext,
    source: IpAddr,
    number: &str,
) -> Result<Option<SessionHandle>, Stop> {
    let Ok(number) = number.parse::<SessionNumber>() else {
        return Ok(None);
    };
    let attempt = ctx
        .session_numbers
        .attempt(source)
        .map_err(|refused| throttled(source, refused))?;
    match find(&ctx.directory, number).await {
        Ok(Some(handle)) => {
            ctx.session_numbers.right(attempt);
            crate::metrics::session_number_try("sip", "right");
            Ok(Some(handle))
        }
        Ok(None) => {
            crate::metrics::session_number_try("sip", "wrong");
            Ok(None)
        }
        Err(()) => {
            // Nothing was learnt: the try counts against nobody.
            ctx.session_numbers.right(attempt);
            Err(Stop::Refuse(503))
        }
    }
}

async fn find(directory: &Directory, number: SessionNumber) -> Result<Option<SessionHandle>, ()> {
    match directory
        .sessions()
        .call(
            |reply| SessionRegistryMsg::ByNumber { number, reply },
            Some(ASK),
        )
        .await
    {
        Ok(ractor::rpc::CallResult::Success(found)) => Ok(found),
        _ => Err(()),
    }
}

/// Where a phone's audio goes on the media workers.
enum Place {
    /// The service prompt, key presses to `keys`.
    Lobby {
        worker: MediaWorkerHandle,
        prompt: Arc<[i16]>,
        keys: mpsc::UnboundedSender<(u64, char)>,
    },
    /// The session's call.
    Call {
        worker: MediaWorkerHandle,
        session: SessionId,
        participant: ParticipantId,
    },
}

impl Place {
    fn worker(&self) -> &MediaWorkerHandle {
        match self {
            Self::Lobby { worker, .. } | Self::Call { worker, .. } => worker,
        }
    }

    /// Puts the phone's audio there (again, after a change); answers where the phone sends.
    /// Nothing is sent to the phone until `media` says its dialog is confirmed (the ACK
    /// brings it here again as [`LegEvent::Media`]) and its own RTP came from the address its
    /// SDP names (`tandem_media::phone::consent`, docs/sip.md).
    async fn put(&self, leg: LegId, media: Negotiated) -> Result<SocketAddr, MediaError> {
        match self {
            Self::Lobby {
                worker,
                prompt,
                keys,
            } => {
                worker
                    .lobby_add(leg, media, prompt.clone(), keys.clone())
                    .await
            }
            Self::Call {
                worker,
                session,
                participant,
            } => worker.add_phone(*session, *participant, media).await,
        }
    }
}

/// Answers the call with its audio at `place`: placed first when the phone's offer is known;
/// otherwise our offer names the worker's address and the audio is placed once the ACK brings
/// the phone's answer.
async fn answer_with(leg: &mut Leg, place: &Place) -> Result<(), Stop> {
    let local = match leg.media.clone() {
        Some(n) => place.put(leg.id, n).await.map_err(|_| Stop::Refuse(503))?,
        None => place.worker().address,
    };
    leg.send(LegCmd::Answer(leg.id, local));
    leg.answered = true;
    leg.sending_to = Some(place.worker().address);
    if leg.media.is_none() {
        let n = leg.media_known().await?;
        place.put(leg.id, n).await.map_err(|_| Stop::Refuse(503))?;
    }
    Ok(())
}

/// The service number: a prompt, digits keyed in (RFC 4733), then the session.
async fn service(leg: &mut Leg, caller: &Caller, source: IpAddr) -> Result<(), Stop> {
    let lobby_worker = leg.ctx.media.first();
    let (dtmf_tx, mut dtmf) = mpsc::unbounded_channel::<(u64, char)>();
    let mut place = Place::Lobby {
        worker: lobby_worker.clone(),
        prompt: prompt::enter_number(),
        keys: dtmf_tx,
    };
    answer_with(leg, &place).await?;
    let mut digits = String::new();
    let mut tries = 0;
    let deadline = tokio::time::Instant::now() + KEYING;
    let handle = loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {
                let _ = lobby_worker.lobby_remove(leg.id).await;
                return Err(Stop::Refuse(408));
            }
            e = leg.events.recv() => match e {
                Some(LegEvent::Media(n)) => {
                    leg.media = Some(n.clone());
                    let _ = place.put(leg.id, n).await;
                }
                Some(LegEvent::Ended(_)) | None => {
                    let _ = lobby_worker.lobby_remove(leg.id).await;
                    return Err(Stop::Gone);
                }
            },
            Some((_, digit)) = dtmf.recv() => {
                crate::metrics::sip_dtmf_digit();
                match digit {
                    '*' => digits.clear(),
                    '#' => {}
                    d if d.is_ascii_digit() && digits.len() < 12 => digits.push(d),
                    _ => {}
                }
                let complete = digit == '#' || digits.len() == 9;
                if !complete {
                    continue;
                }
                match by_number(&leg.ctx, source, &digits).await {
                    Ok(Some(h)) => break h,
                    Ok(None) => {}
                    // Past the limit the caller hears nothing more: the call is ended.
                    Err(stop) => {
                        let _ = lobby_worker.lobby_remove(leg.id).await;
                        return Err(stop);
                    }
                }
                tries += 1;
                digits.clear();
                if tries >= MAX_TRIES {
                    let _ = lobby_worker.lobby_remove(leg.id).await;
                    return Err(Stop::Refuse(404));
                }
                if let (Some(n), Place::Lobby { prompt, .. }) = (leg.media.clone(), &mut place) {
                    *prompt = prompt::not_found();
                    let _ = place.put(leg.id, n).await;
                }
            }
        }
    };
    let _ = lobby_worker.lobby_remove(leg.id).await;
    in_session(leg, handle, caller, None).await
}

/// Joins the session and stays in it until one side hangs up; `joined` hears the name it
/// joined under.
async fn in_session(
    leg: &mut Leg,
    handle: SessionHandle,
    caller: &Caller,
    on_joined: Option<oneshot::Sender<Result<String, DialFailure>>>,
) -> Result<(), Stop> {
    if !leg.answered && !leg.ctx.ring.is_zero() {
        leg.send(LegCmd::Ring(leg.id));
        let ring = leg.ctx.ring;
        leg.wait(ring).await?;
    }
    let participant = ParticipantId::random();
    // A support account's softphone joins as that CSR (an assistant, as through the API's
    // assist, beside the CSR's own console if they are in the session); anyone else as a
    // customer.
    let info = match caller.account.as_deref() {
        Some(a) => ParticipantInfo {
            id: participant,
            role: Role::Csr,
            name: format!("{} (phone)", a.display_name),
            email: Some(a.email.clone()),
            account: Some(a.id),
            is_agent: a.is_agent,
            phone: true,
        },
        None => ParticipantInfo {
            id: participant,
            role: Role::Customer,
            name: format!("{} (phone)", caller.name),
            email: None,
            account: None,
            is_agent: false,
            phone: true,
        },
    };
    let joined = handle
        .actor
        .call(
            |reply| SessionMsg::Join {
                info,
                as_primary: false,
                reply,
            },
            Some(ASK),
        )
        .await;
    match joined {
        Ok(ractor::rpc::CallResult::Success(Ok(_))) => {}
        Ok(ractor::rpc::CallResult::Success(Err(e))) => {
            tracing::info!(session = %handle.id, error = %e, "a phone could not join");
            return Err(Stop::Refuse(if e.code().contains("full") {
                486
            } else {
                403
            }));
        }
        _ => return Err(Stop::Refuse(503)),
    }
    let (connection, mut inbox) = Connection::new();
    let conn_id = connection.id;
    let link = match handle
        .actor
        .call(
            |reply| SessionMsg::Attach {
                participant,
                connection,
                reply,
            },
            Some(ASK),
        )
        .await
    {
        Ok(ractor::rpc::CallResult::Success(Ok(link))) => link,
        _ => return Err(Stop::Refuse(503)),
    };
    let actor = || -> ActorRef<ParticipantMsg> { link.read().expect("link lock poisoned").clone() };
    let command = |command: Command| {
        let _ = actor().cast(ParticipantMsg::Inbound(ClientFrame {
            reference: None,
            command,
        }));
    };
    let worker: MediaWorkerHandle = leg.ctx.media.for_session(handle.id);
    let place = Place::Call {
        worker: worker.clone(),
        session: handle.id,
        participant,
    };
    let result = async {
        if leg.answered {
            // Came from the service prompt (the phone sends to the lobby's worker), or rung
            // by us (to the session's worker): move its audio if the call is elsewhere.
            let n = leg.media.clone().ok_or(Stop::Gone)?;
            let local = place.put(leg.id, n).await.map_err(|_| Stop::Refuse(503))?;
            if leg.sending_to != Some(local) {
                leg.send(LegCmd::MoveMedia(leg.id, local));
                leg.sending_to = Some(local);
            }
        } else {
            answer_with(leg, &place).await?;
        }
        crate::metrics::sip_call_joined();
        if let Some(on_joined) = on_joined {
            let name = match caller.account.as_deref() {
                Some(a) => format!("{} (phone)", a.display_name),
                None => format!("{} (phone)", caller.name),
            };
            let _ = on_joined.send(Ok(name));
        }
        loop {
            tokio::select! {
                e = leg.events.recv() => match e {
                    Some(LegEvent::Media(n)) => {
                        // Hold, resume, a new address, or the answer to our move.
                        leg.media = Some(n.clone());
                        if let Err(e) = place.put(leg.id, n).await {
                            tracing::warn!(error = %e, "could not update a phone's media");
                        }
                    }
                    Some(LegEvent::Ended(_)) | None => {
                        command(Command::Leave);
                        return Err(Stop::Gone);
                    }
                },
                msg = inbox.recv() => {
                    let Some(msg) = msg else {
                        return Err(Stop::Refuse(480));
                    };
                    match &*msg {
                        ServerMsg::Welcome { session, .. } if !session["voice_call"].is_null() => {
                            command(Command::JoinVoice);
                        }
                        ServerMsg::Event { event, .. } => match event {
                            Event::VoiceCallStarted { .. } => command(Command::JoinVoice),
                            Event::ConsentRequested { request, customer, .. } if *customer == participant => {
                                // A phone has no screen, files or computer to share.
                                command(Command::ConsentReply { request: *request, grant: false, allow_all: false, reason: None });
                            }
                            _ => {}
                        },
                        ServerMsg::MediaClosed { .. } => {
                            // The call failed on the media worker and was set up again: put
                            // the phone back in it.
                            if let Some(n) = leg.media.clone() {
                                let _ = place.put(leg.id, n).await;
                            }
                        }
                        ServerMsg::Bye { .. } => return Err(Stop::Refuse(480)),
                        _ => {}
                    }
                }
            }
        }
    }
    .await;
    let _ = actor().cast(ParticipantMsg::Disconnect {
        connection: conn_id,
    });
    result
}
