//! MediaWorker: a loop that owns one UDP socket and the [`Sfu`] of every session placed on it,
//! in the manner of str0m's examples/chat.rs. Actors never see a packet: sessions send it
//! commands over a bounded channel (offers and answers, the media policy, departures), and it
//! tells a session what it must pass on (the server's own offers, lost connections) through the
//! [`NoticeSink`] the session gave it.
//!
//! Policy when the command channel is full: a command waits up to [`COMMAND_WAIT`] for room,
//! then fails with [`MediaError::Busy`] and is counted; the session reports the failure rather
//! than queueing without bound.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use metrics::{counter, gauge, histogram};
use tandem_media::phone::PhoneMedia;
use tandem_media::phone::lobby::Lobby;
use tandem_media::policy::{MediaPolicy, TrackPurpose};
use tandem_media::sfu::{Answer, Sfu, SfuEvent, SfuStats};
use tandem_media::voice_mixer::MixerConfig;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::ids::{ParticipantId, SessionId};
use crate::recorder::RecordSink;

/// Commands one worker may have queued.
pub const COMMAND_QUEUE: usize = 1024;
/// How long a command waits for room in a full queue.
pub const COMMAND_WAIT: Duration = Duration::from_secs(1);
/// Asked-for size of each media socket's receive and send buffers.
const SOCKET_BUFFER: usize = 4 << 20;
/// Datagrams handled per loop pass before timers and commands get a turn.
const DATAGRAMS_PER_PASS: usize = 64;

#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    #[error("{detail}")]
    Refused { code: &'static str, detail: String },
    #[error("the media server is overloaded; try again")]
    Busy,
    #[error("the media server stopped")]
    Stopped,
}

impl MediaError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Refused { code, .. } => code,
            Self::Busy => "media_busy",
            Self::Stopped => "media_unavailable",
        }
    }
}

/// What the worker tells a session.
#[derive(Clone, Debug, PartialEq)]
pub enum MediaNotice {
    /// The server renegotiates this participant's connection: pass the offer on.
    Offer {
        participant: ParticipantId,
        offer: u64,
        sdp: String,
    },
    /// The participant's media connection failed or timed out and was dropped.
    Disconnected { participant: ParticipantId },
    /// The session's call failed inside the worker and was dropped: tell the worker the policy
    /// again; its pages connect again.
    CallLost,
    /// The recorder's queue was full (its disk did not keep up), so what it was to get is lost
    /// from now on: end the recording with an error. Sent once per recording.
    RecordingLost,
}

/// Where a session takes the worker's notices; called on the worker's task, so it only queues.
pub type NoticeSink = Arc<dyn Fn(MediaNotice) + Send + Sync>;

enum WorkerCmd {
    Offer {
        session: SessionId,
        participant: ParticipantId,
        sdp: String,
        video: BTreeMap<String, TrackPurpose>,
        notices: NoticeSink,
        reply: oneshot::Sender<Result<Answer, MediaError>>,
    },
    Answer {
        session: SessionId,
        participant: ParticipantId,
        offer: u64,
        sdp: String,
        reply: oneshot::Sender<Result<(), MediaError>>,
    },
    Remove {
        session: SessionId,
        participant: ParticipantId,
    },
    Policy {
        session: SessionId,
        policy: MediaPolicy<ParticipantId>,
        notices: NoticeSink,
        recorder: Option<RecordSink>,
    },
    EndSession {
        session: SessionId,
    },
    /// A phone's audio joins the session's call, or what was agreed for it changes.
    Phone {
        session: SessionId,
        participant: ParticipantId,
        media: PhoneMedia,
        reply: oneshot::Sender<Result<SocketAddr, MediaError>>,
    },
    /// A phone waits at the service prompt, keying in a session number.
    LobbyAdd {
        leg: u64,
        media: PhoneMedia,
        prompt: Arc<[i16]>,
        keys: mpsc::UnboundedSender<(u64, char)>,
        reply: oneshot::Sender<Result<SocketAddr, MediaError>>,
    },
    LobbyRemove {
        leg: u64,
    },
    /// Panics inside the session's call. Rust-only, for supervision tests.
    InjectPanic {
        session: SessionId,
    },
}

#[derive(Clone, Debug)]
pub struct MediaWorkerConfig {
    /// Where the socket binds.
    pub listen: SocketAddr,
    /// The address peers reach the socket at, announced as the ICE candidate; the bound address
    /// when `None` (fine on one host, wrong behind NAT).
    pub public: Option<SocketAddr>,
}

/// The media workers, one per core by default, each with its own UDP socket (consecutive ports
/// when the port is fixed). A session's participants all go to the one worker its id picks, so
/// its call is mixed and forwarded in one place.
#[derive(Clone, Debug)]
pub struct MediaPool {
    workers: Arc<[MediaWorkerHandle]>,
}

impl MediaPool {
    /// Starts `workers` workers (at least one).
    pub async fn start(config: MediaWorkerConfig, workers: usize) -> std::io::Result<Self> {
        if workers > 1 && config.listen.port() == 0 && config.public.is_some() {
            // Each worker's announced port must be the one it bound; with free ports that is
            // not known in advance.
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "with a media.public_address and more than one media worker, media.listen needs a fixed port",
            ));
        }
        let mut started = Vec::new();
        for i in 0..workers.max(1) {
            let offset = |a: SocketAddr| {
                let mut a = a;
                if a.port() != 0 {
                    let port = u16::try_from(usize::from(a.port()) + i).map_err(|_| {
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidInput,
                            "media ports run past 65535",
                        )
                    })?;
                    a.set_port(port);
                }
                Ok::<_, std::io::Error>(a)
            };
            let public = match config.public {
                Some(p) if config.listen.port() == 0 => Some(p),
                Some(p) => Some(offset(p)?),
                None => None,
            };
            started.push(
                MediaWorkerHandle::start(MediaWorkerConfig {
                    listen: offset(config.listen)?,
                    public,
                })
                .await?,
            );
        }
        Ok(Self {
            workers: started.into(),
        })
    }

    /// The worker that carries this session's media.
    pub fn for_session(&self, session: SessionId) -> MediaWorkerHandle {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        session.hash(&mut h);
        self.workers[(h.finish() % self.workers.len() as u64) as usize].clone()
    }

    /// The first worker: where phones wait at the service prompt before their session is
    /// known.
    pub fn first(&self) -> MediaWorkerHandle {
        self.workers[0].clone()
    }

    /// The workers' announced addresses.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.workers.iter().map(|w| w.address).collect()
    }
}

/// How sessions talk to a worker.
#[derive(Clone, Debug)]
pub struct MediaWorkerHandle {
    tx: mpsc::Sender<WorkerCmd>,
    /// The announced address.
    pub address: SocketAddr,
}

impl MediaWorkerHandle {
    /// Binds the socket and starts the loop on the current tokio runtime.
    pub async fn start(config: MediaWorkerConfig) -> std::io::Result<Self> {
        let socket = UdpSocket::bind(config.listen).await?;
        // Room for bursts while the loop is busy mixing; the kernel caps it at
        // net.core.rmem_max / wmem_max (docs/operations.md).
        let sock = socket2::SockRef::from(&socket);
        sock.set_recv_buffer_size(SOCKET_BUFFER)?;
        sock.set_send_buffer_size(SOCKET_BUFFER)?;
        let receive_buffer = sock.recv_buffer_size()?;
        let bound = socket.local_addr()?;
        let address = config.public.unwrap_or(bound);
        if address.ip().is_unspecified() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the media socket listens on every address; set media.public_address to the one browsers reach",
            ));
        }
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        tokio::spawn(run(socket, address, rx, bound.to_string()));
        tracing::info!(%bound, %address, receive_buffer, "media worker listening");
        Ok(Self { tx, address })
    }

    async fn send(&self, cmd: WorkerCmd) -> Result<(), MediaError> {
        match tokio::time::timeout(COMMAND_WAIT, self.tx.send(cmd)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(MediaError::Stopped),
            Err(_) => {
                counter!("tandem_media_commands_refused_total").increment(1);
                Err(MediaError::Busy)
            }
        }
    }

    /// Sends a command that carries a reply channel, and waits for the reply.
    async fn ask<T>(
        &self,
        cmd: impl FnOnce(oneshot::Sender<Result<T, MediaError>>) -> WorkerCmd,
    ) -> Result<T, MediaError> {
        let (reply, answer) = oneshot::channel();
        self.send(cmd(reply)).await?;
        answer.await.map_err(|_| MediaError::Stopped)?
    }

    /// A participant's SDP offer, with what each of its video tracks carries; answers the SDP
    /// answer.
    pub async fn offer(
        &self,
        session: SessionId,
        participant: ParticipantId,
        sdp: String,
        video: BTreeMap<String, TrackPurpose>,
        notices: NoticeSink,
    ) -> Result<Answer, MediaError> {
        self.ask(|reply| WorkerCmd::Offer {
            session,
            participant,
            sdp,
            video,
            notices,
            reply,
        })
        .await
    }

    /// A participant's answer to the server's offer number `offer`.
    pub async fn answer(
        &self,
        session: SessionId,
        participant: ParticipantId,
        offer: u64,
        sdp: String,
    ) -> Result<(), MediaError> {
        self.ask(|reply| WorkerCmd::Answer {
            session,
            participant,
            offer,
            sdp,
            reply,
        })
        .await
    }

    pub async fn remove(
        &self,
        session: SessionId,
        participant: ParticipantId,
    ) -> Result<(), MediaError> {
        self.send(WorkerCmd::Remove {
            session,
            participant,
        })
        .await
    }

    /// What the session's rules allow on the media plane now.
    /// `recorder` takes what the call passes on while the policy records.
    pub async fn set_policy(
        &self,
        session: SessionId,
        policy: MediaPolicy<ParticipantId>,
        notices: NoticeSink,
        recorder: Option<RecordSink>,
    ) -> Result<(), MediaError> {
        self.send(WorkerCmd::Policy {
            session,
            policy,
            notices,
            recorder,
        })
        .await
    }

    /// A phone's audio (a SIP leg) joins the session's call, or what was agreed for it
    /// changes (a re-INVITE). Answers where the phone is to send: this worker's address. The
    /// session's `remove` takes it out when the participant leaves.
    pub async fn add_phone(
        &self,
        session: SessionId,
        participant: ParticipantId,
        media: PhoneMedia,
    ) -> Result<SocketAddr, MediaError> {
        self.ask(|reply| WorkerCmd::Phone {
            session,
            participant,
            media,
            reply,
        })
        .await
    }

    /// A phone waits here hearing `prompt` (48 kHz, repeated), its key presses sent to `keys`
    /// with `leg`. Calling again changes what it hears or what was agreed.
    pub async fn lobby_add(
        &self,
        leg: u64,
        media: PhoneMedia,
        prompt: Arc<[i16]>,
        keys: mpsc::UnboundedSender<(u64, char)>,
    ) -> Result<SocketAddr, MediaError> {
        self.ask(|reply| WorkerCmd::LobbyAdd {
            leg,
            media,
            prompt,
            keys,
            reply,
        })
        .await
    }

    pub async fn lobby_remove(&self, leg: u64) -> Result<(), MediaError> {
        self.send(WorkerCmd::LobbyRemove { leg }).await
    }

    pub async fn end_session(&self, session: SessionId) -> Result<(), MediaError> {
        self.send(WorkerCmd::EndSession { session }).await
    }

    /// Makes the session's call panic inside the worker. For supervision tests only.
    pub async fn inject_panic(&self, session: SessionId) -> Result<(), MediaError> {
        self.send(WorkerCmd::InjectPanic { session }).await
    }
}

struct Call {
    sfu: Sfu<ParticipantId>,
    /// Where the session takes notices; the latest it gave (a restored session gives a new one).
    notices: Option<NoticeSink>,
    /// Counters as last reported, to report only what is new.
    reported: SfuStats,
    /// Where what the call passes on goes while the session records.
    recorder: Option<RecordSink>,
    /// Items the recorder's queue had no room for (the recording has failed once this is not 0).
    lost: u64,
}

impl Call {
    fn notify(&self, notice: MediaNotice) {
        if let Some(n) = &self.notices {
            n(notice);
        }
    }
}

/// The worker's loop; `worker` (its bound address) labels its gauges.
async fn run(
    socket: UdpSocket,
    address: SocketAddr,
    mut rx: mpsc::Receiver<WorkerCmd>,
    worker: String,
) {
    let mut calls: HashMap<SessionId, Call> = HashMap::new();
    let mut lobby = Waiting {
        lobby: Lobby::new(address),
        keys: HashMap::new(),
        reported: (0, 0),
    };
    let mut buf = vec![0u8; 2048];
    loop {
        let now = Instant::now();
        let wake = calls
            .values()
            .map(|c| c.sfu.poll_timeout(now))
            .chain(lobby.lobby.poll_timeout())
            .min()
            .unwrap_or(now + Duration::from_millis(100))
            .max(now);
        tokio::select! {
            cmd = rx.recv() => match cmd {
                None => break,
                Some(cmd) => handle_command(&mut calls, &mut lobby, address, cmd),
            },
            received = socket.recv_from(&mut buf) => {
                // This one, then whatever else is already waiting, up to the pass limit; a
                // datagram read is always handled.
                let mut next = Some(received);
                let mut handled = 0;
                while let Some(r) = next.take() {
                    match r {
                        Ok((n, source)) => {
                            if !lobby.lobby.handle_receive(Instant::now(), source, &buf[..n]) {
                                route(&mut calls, address, source, &buf[..n]);
                            }
                        }
                        Err(e) => tracing::debug!(error = %e, "media socket read failed"),
                    }
                    handled += 1;
                    if handled < DATAGRAMS_PER_PASS {
                        next = socket.try_recv_from(&mut buf).ok().map(Ok);
                    }
                }
            },
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
        let now = Instant::now();
        lobby.lobby.handle_timeout(now);
        while let Some(t) = lobby.lobby.poll_transmit() {
            if let Err(e) = socket.send_to(&t.contents, t.destination).await {
                tracing::debug!(error = %e, "media send failed");
            }
        }
        while let Some(k) = lobby.lobby.poll_event() {
            if let Some(keys) = lobby.keys.get(&k.leg) {
                let _ = keys.send((k.leg, k.digit));
            }
        }
        let (lin, lout) = lobby.lobby.packets();
        counter!("tandem_sip_rtp_packets_total", "direction" => "in")
            .increment(lin - lobby.reported.0);
        counter!("tandem_sip_rtp_packets_total", "direction" => "out")
            .increment(lout - lobby.reported.1);
        lobby.reported = (lin, lout);
        let (mut peers, mut tracks) = (0, 0);
        let sessions: Vec<SessionId> = calls.keys().copied().collect();
        for session in sessions {
            guarded(&mut calls, session, |call| {
                if call.sfu.poll_timeout(now) <= now {
                    let started = Instant::now();
                    if let Err(e) = call.sfu.handle_timeout(now) {
                        tracing::error!(%session, error = %e, "media timeout handling failed");
                    }
                    histogram!("tandem_media_call_tick_seconds")
                        .record(started.elapsed().as_secs_f64());
                }
            });
            let Some(call) = calls.get_mut(&session) else {
                continue;
            };
            report(call);
            peers += call.sfu.peer_count();
            tracks += call.sfu.track_count();
            while let Some(t) = call.sfu.poll_transmit() {
                if let Err(e) = socket.send_to(&t.contents, t.destination).await {
                    tracing::debug!(error = %e, "media send failed");
                }
            }
            while let Some(e) = call.sfu.poll_event() {
                match e {
                    SfuEvent::Dtmf { peer, digit } => {
                        // Keys pressed in a session mean nothing yet.
                        tracing::debug!(%session, participant = %peer, %digit, "key pressed on a phone");
                    }
                    SfuEvent::Connected(p) => {
                        tracing::debug!(%session, participant = %p, "media connected")
                    }
                    SfuEvent::Disconnected(participant) => {
                        tracing::info!(%session, %participant, "media disconnected");
                        counter!("tandem_media_disconnects_total").increment(1);
                        call.notify(MediaNotice::Disconnected { participant });
                    }
                    SfuEvent::Offer {
                        peer: participant,
                        offer,
                        sdp,
                    } => {
                        call.notify(MediaNotice::Offer {
                            participant,
                            offer,
                            sdp,
                        });
                    }
                    SfuEvent::Stats {
                        rtt,
                        loss_in,
                        loss_out,
                        ..
                    } => {
                        if let Some(rtt) = rtt {
                            histogram!("tandem_media_rtt_seconds").record(rtt.as_secs_f64());
                        }
                        if let Some(l) = loss_in {
                            histogram!("tandem_media_loss_ratio", "direction" => "in")
                                .record(f64::from(l));
                        }
                        if let Some(l) = loss_out {
                            histogram!("tandem_media_loss_ratio", "direction" => "out")
                                .record(f64::from(l));
                        }
                    }
                }
            }
            record(call);
        }
        // Calls stay until their session ends; an idle one costs a map entry and a mixer.
        gauge!("tandem_media_calls", "worker" => worker.clone()).set(calls.len() as f64);
        gauge!("tandem_media_peers", "worker" => worker.clone()).set(peers as f64);
        gauge!("tandem_media_tracks", "worker" => worker.clone()).set(tracks as f64);
    }
}

/// Phones waiting at the service prompt, and where their key presses go.
struct Waiting {
    lobby: Lobby<u64>,
    keys: HashMap<u64, mpsc::UnboundedSender<(u64, char)>>,
    /// RTP packets in and out as last counted.
    reported: (u64, u64),
}

/// Hands the recorder what the call passed on, never waiting: a full queue loses the item, and
/// the first loss tells the session, which ends the recording with an error.
fn record(call: &mut Call) {
    while let Some(item) = call.sfu.poll_recorded() {
        let Some(sink) = &call.recorder else {
            continue;
        };
        if !sink.offer(item) {
            call.lost += 1;
            counter!("tandem_arf_lost_items_total").increment(1);
            if call.lost == 1 {
                call.notify(MediaNotice::RecordingLost);
            }
        }
    }
}

/// Adds what a call counted since the last report to the process's counters.
fn report(call: &mut Call) {
    let now = call.sfu.stats();
    let d = now.since(&call.reported);
    counter!("tandem_media_audio_packets_total", "direction" => "in").increment(d.audio_in);
    counter!("tandem_media_audio_packets_total", "direction" => "out").increment(d.audio_out);
    counter!("tandem_media_video_frames_total", "direction" => "in").increment(d.video_frames_in);
    counter!("tandem_media_forwarded_frames_total").increment(d.video_frames_out);
    counter!("tandem_media_forwarded_bytes_total").increment(d.video_bytes_out);
    counter!("tandem_media_keyframe_requests_total").increment(d.keyframe_requests);
    counter!("tandem_media_channel_messages_total").increment(d.channel_messages_relayed);
    counter!("tandem_media_bad_datagrams_total").increment(d.bad_datagrams);
    counter!("tandem_sip_rtp_packets_total", "direction" => "in").increment(d.phone_packets_in);
    counter!("tandem_sip_rtp_packets_total", "direction" => "out").increment(d.phone_packets_out);
    counter!("tandem_sip_rtp_dropped_total").increment(d.phone_dropped);
    counter!("tandem_sip_rtp_silence_packets_total").increment(d.phone_silence_out);
    counter!("tandem_sip_rtcp_packets_total", "direction" => "in").increment(d.phone_rtcp_in);
    counter!("tandem_sip_rtcp_packets_total", "direction" => "out").increment(d.phone_rtcp_out);
    if d.phone_packets_in > 0 {
        for j in call.sfu.phone_jitters() {
            histogram!("tandem_sip_rtp_jitter_seconds").record(j);
        }
    }
    for (reason, n) in d.dropped {
        counter!("tandem_media_dropped_by_policy_total", "reason" => reason.as_str()).increment(n);
    }
    call.reported = now;
}

fn route(
    calls: &mut HashMap<SessionId, Call>,
    address: SocketAddr,
    source: SocketAddr,
    data: &[u8],
) {
    let now = Instant::now();
    // Each call looks for the peer the datagram belongs to and, finding it, handles it: one
    // parse and one search per call asked, not a second for the call that takes it.
    let mut failed = None;
    for (session, call) in calls.iter_mut() {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            call.sfu.handle_receive(now, source, address, data)
        })) {
            Ok(false) => continue,
            Ok(true) => return,
            Err(_) => {
                failed = Some(*session);
                break;
            }
        }
    }
    match failed {
        Some(session) => lose(calls, session),
        None => counter!("tandem_media_unrouted_datagrams_total").increment(1),
    }
}

/// Runs `f` on the session's call. A panic inside (a bug in the media stack; never expected)
/// loses that call only: it is dropped and counted, its session is told, and every other call on
/// the worker goes on.
fn guarded<T>(
    calls: &mut HashMap<SessionId, Call>,
    session: SessionId,
    f: impl FnOnce(&mut Call) -> T,
) -> Option<T> {
    let call = calls.get_mut(&session)?;
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(call))) {
        Ok(v) => Some(v),
        Err(_) => {
            lose(calls, session);
            None
        }
    }
}

/// Drops a call that panicked, counts it and tells its session.
fn lose(calls: &mut HashMap<SessionId, Call>, session: SessionId) {
    if let Some(call) = calls.remove(&session) {
        tracing::error!(%session, "a media call failed; dropped it and told its session");
        counter!("tandem_media_call_failures_total").increment(1);
        for participant in call.sfu.peers() {
            call.notify(MediaNotice::Disconnected { participant });
        }
        call.notify(MediaNotice::CallLost);
    }
}

/// The session's call, set up on first use.
fn call_for(
    calls: &mut HashMap<SessionId, Call>,
    session: SessionId,
    address: SocketAddr,
) -> Result<&mut Call, tandem_media::sfu::SfuError> {
    Ok(match calls.entry(session) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(e) => e.insert(Call {
            sfu: Sfu::new(address, MixerConfig::default())?,
            notices: None,
            reported: SfuStats::default(),
            recorder: None,
            lost: 0,
        }),
    })
}

fn refused(e: tandem_media::sfu::SfuError) -> MediaError {
    MediaError::Refused {
        code: e.code(),
        detail: e.to_string(),
    }
}

fn handle_command(
    calls: &mut HashMap<SessionId, Call>,
    lobby: &mut Waiting,
    address: SocketAddr,
    cmd: WorkerCmd,
) {
    let now = Instant::now();
    match cmd {
        WorkerCmd::Offer {
            session,
            participant,
            sdp,
            video,
            notices,
            reply,
        } => {
            let call = match call_for(calls, session, address) {
                Ok(c) => c,
                Err(e) => {
                    let _ = reply.send(Err(refused(e)));
                    return;
                }
            };
            call.notices = Some(notices);
            let answer = guarded(calls, session, |call| {
                call.sfu.accept_offer(now, participant, &sdp, &video)
            })
            .unwrap_or(Err(tandem_media::sfu::SfuError::CallFailed))
            .map_err(|e| {
                counter!("tandem_media_offers_refused_total").increment(1);
                refused(e)
            });
            let _ = reply.send(answer);
        }
        WorkerCmd::Phone {
            session,
            participant,
            media,
            reply,
        } => {
            let result = match call_for(calls, session, address) {
                Ok(_) => guarded(calls, session, |call| {
                    call.sfu
                        .add_phone(now, SystemTime::now(), participant, media)
                })
                .unwrap_or(Err(tandem_media::sfu::SfuError::CallFailed))
                .map(|()| address)
                .map_err(refused),
                Err(e) => Err(refused(e)),
            };
            let _ = reply.send(result);
        }
        WorkerCmd::LobbyAdd {
            leg,
            media,
            prompt,
            keys,
            reply,
        } => {
            let r = lobby
                .lobby
                .add(now, SystemTime::now(), leg, media, prompt)
                .map(|()| {
                    lobby.keys.insert(leg, keys);
                    address
                })
                .map_err(|e| MediaError::Refused {
                    code: "media_error",
                    detail: e.to_string(),
                });
            let _ = reply.send(r);
        }
        WorkerCmd::LobbyRemove { leg } => {
            lobby.lobby.remove(leg);
            lobby.keys.remove(&leg);
        }
        WorkerCmd::Answer {
            session,
            participant,
            offer,
            sdp,
            reply,
        } => {
            let result = match guarded(calls, session, |call| {
                call.sfu.accept_answer(now, participant, offer, &sdp)
            }) {
                Some(r) => r.map_err(refused),
                None => Err(refused(tandem_media::sfu::SfuError::NotConnected)),
            };
            let _ = reply.send(result);
        }
        WorkerCmd::Remove {
            session,
            participant,
        } => {
            guarded(calls, session, |c| c.sfu.remove_peer(participant));
        }
        WorkerCmd::Policy {
            session,
            policy,
            notices,
            recorder,
        } => {
            let call = match call_for(calls, session, address) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(%session, error = %e, "could not set up the call");
                    return;
                }
            };
            call.notices = Some(notices);
            if recorder.is_none() || call.recorder.is_none() {
                call.lost = 0;
            }
            call.recorder = recorder;
            if let Some(Err(e)) = guarded(calls, session, |call| call.sfu.set_policy(now, policy)) {
                tracing::error!(%session, error = %e, "could not update the call");
            }
        }
        WorkerCmd::EndSession { session } => {
            calls.remove(&session);
        }
        WorkerCmd::InjectPanic { session } => {
            guarded(calls, session, |_| {
                panic!("injected fault in the media call")
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn listening_everywhere_needs_an_announced_address() {
        let everywhere = MediaWorkerConfig {
            listen: "0.0.0.0:0".parse().unwrap(),
            public: None,
        };
        let e = MediaWorkerHandle::start(everywhere.clone())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        let announced = MediaWorkerConfig {
            public: Some("192.0.2.10:40000".parse().unwrap()),
            ..everywhere
        };
        let worker = MediaWorkerHandle::start(announced).await.unwrap();
        assert_eq!(worker.address, "192.0.2.10:40000".parse().unwrap());
    }

    #[tokio::test]
    async fn a_pool_with_free_ports_cannot_announce_one_public_address() {
        let e = MediaPool::start(
            MediaWorkerConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                public: Some("192.0.2.10:50000".parse().unwrap()),
            },
            2,
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn a_pool_takes_consecutive_ports_and_spreads_sessions() {
        let free = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let pool = MediaPool::start(
            MediaWorkerConfig {
                listen: format!("127.0.0.1:{port}").parse().unwrap(),
                public: Some("192.0.2.10:50000".parse().unwrap()),
            },
            2,
        )
        .await
        .unwrap();
        assert_eq!(
            pool.addresses(),
            [
                "192.0.2.10:50000".parse().unwrap(),
                "192.0.2.10:50001".parse().unwrap()
            ]
        );
        let sessions: Vec<SessionId> = (0..64).map(|_| SessionId::random()).collect();
        let picked: std::collections::BTreeSet<SocketAddr> = sessions
            .iter()
            .map(|s| pool.for_session(*s).address)
            .collect();
        assert_eq!(picked.len(), 2, "both workers carry sessions");
        // A session always goes to the same worker (a restored session finds its call).
        assert_eq!(
            pool.for_session(sessions[0]).address,
            pool.for_session(sessions[0]).address
        );
    }
}
