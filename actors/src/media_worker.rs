//! MediaWorker: a loop that owns one UDP socket and the [`Sfu`] of every session placed on it,
//! in the manner of str0m's examples/chat.rs. Actors never see a packet: sessions send it
//! commands over a bounded channel (offers and answers, the media policy, departures), and it
//! tells a session what it must pass on (the server's own offers, lost connections) through the
//! [`NoticeSink`] the session gave it.
//!
//! Policy when the command channel is full: a command waits up to [`COMMAND_WAIT`] for room,
//! then fails with [`MediaError::Busy`] and is counted; the session reports the failure rather
//! than queueing without bound.
//!
//! This file is the worker's interface: its commands, errors and [`MediaWorkerHandle`]. The rest
//! is split by concern: [`pool`] (the workers and which one carries a session), `worker_loop`
//! (the loop: socket, timers, commands), `commands` (what each command does), `call` (one
//! session's call on the worker), `routing` (which call a datagram is for), `socket` (batched
//! reads and writes), `timers` (which calls are due), `panic_guard` (a panicking call is dropped
//! alone) and `lobby` (phones at the service prompt). Its metrics are in
//! [`crate::telemetry::media`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tandem_media::phone::PhoneMedia;
use tandem_media::phone::lobby::Lobby;
use tandem_media::policy::{MediaPolicy, TrackPurpose};
use tandem_media::sfu::{Answer, Sfu, SfuEvent, SfuStats};
use tandem_media::voice_mixer::MixerConfig;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::ids::{ParticipantId, SessionId};
use crate::ports::NoticeSink;
use crate::recorder::RecordSink;
use crate::telemetry;

mod call;
mod commands;
mod lobby;
mod owners;
mod panic_guard;
pub mod pool;
mod routing;
pub mod socket;
mod timers;
mod worker_loop;

pub use pool::MediaPool;

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

/// What a session (or the SIP endpoint) asks of a worker; see [`MediaWorkerHandle`].
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

/// How sessions talk to a worker.
#[derive(Clone, Debug)]
pub struct MediaWorkerHandle {
    tx: mpsc::Sender<WorkerCmd>,
    /// The announced address.
    pub address: SocketAddr,
}

impl MediaWorkerHandle {
    /// Binds the socket and starts the loop on the current tokio runtime, as worker 0.
    pub async fn start(config: MediaWorkerConfig) -> std::io::Result<Self> {
        Self::start_numbered(config, 0).await
    }

    /// [`Self::start`] for the pool's worker `index`, which labels its metrics.
    pub async fn start_numbered(config: MediaWorkerConfig, index: usize) -> std::io::Result<Self> {
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
        let socket = socket::MediaSocket::new(socket)?;
        tokio::spawn(worker_loop::run(socket, address, rx, index));
        tracing::info!(%bound, %address, receive_buffer, "media worker listening");
        Ok(Self { tx, address })
    }

    async fn send(&self, cmd: WorkerCmd) -> Result<(), MediaError> {
        match tokio::time::timeout(COMMAND_WAIT, self.tx.send(cmd)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(MediaError::Stopped),
            Err(_) => {
                telemetry::media::command_refused();
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

    /// `n` UDP sockets on consecutive ports of 127.0.0.1.
    fn consecutive_ports(n: u16) -> Vec<UdpSocket> {
        'again: loop {
            let first = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let base = first.local_addr().unwrap().port();
            if base > u16::MAX - n {
                continue;
            }
            let mut sockets = vec![first];
            for k in 1..n {
                match std::net::UdpSocket::bind(("127.0.0.1", base + k)) {
                    Ok(s) => sockets.push(s),
                    Err(_) => continue 'again,
                }
            }
            return sockets
                .into_iter()
                .map(|s| {
                    s.set_nonblocking(true).unwrap();
                    UdpSocket::from_std(s).unwrap()
                })
                .collect();
        }
    }

    /// Phones on one host in different calls on one worker, each phone's port the implied RTCP
    /// port of the phone before it (its RTP port plus one), each sending only RTCP (a phone
    /// that listens): each is heard as itself and so sent its call (silence here). Before, a
    /// datagram from an address no call had seen went to whichever call was asked first, whose
    /// phone took it as its own RTCP, and the phone that sent it, never heard, was sent nothing.
    #[tokio::test]
    async fn a_phone_s_rtcp_goes_to_its_own_call_before_a_neighbour_s_in_another() {
        const PHONES: u16 = 6;
        let worker = MediaWorkerHandle::start(MediaWorkerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            public: None,
        })
        .await
        .unwrap();
        let phones = consecutive_ports(PHONES);
        for phone in &phones {
            let remote = phone.local_addr().unwrap();
            let (session, participant) = (SessionId::random(), ParticipantId::random());
            let media = PhoneMedia {
                rtcp: SocketAddr::new(remote.ip(), remote.port() + 1),
                ..tandem_media::testkit::phone_media(remote)
            };
            worker.add_phone(session, participant, media).await.unwrap();
            let policy = MediaPolicy {
                voice_members: [participant].into(),
                ..MediaPolicy::default()
            };
            let notices: NoticeSink = Arc::new(|_| {});
            worker
                .set_policy(session, policy, notices, None)
                .await
                .unwrap();
        }
        let mut got = [0u32; PHONES as usize];
        let mut buf = [0u8; 1500];
        let end = tokio::time::Instant::now() + Duration::from_secs(2);
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        while tokio::time::Instant::now() < end && got.iter().any(|n| *n < 10) {
            tick.tick().await;
            for (k, phone) in phones.iter().enumerate() {
                // A receiver report (RFC 3550 6.4.2) with no report block, SSRC k + 1.
                let ssrc = (k as u32 + 1).to_be_bytes();
                let rr = [0x80, 201, 0, 1, ssrc[0], ssrc[1], ssrc[2], ssrc[3]];
                phone.send_to(&rr, worker.address).await.unwrap();
                while let Ok((_, from)) = phone.try_recv_from(&mut buf) {
                    if from == worker.address {
                        got[k] += 1;
                    }
                }
            }
        }
        assert!(
            got.iter().all(|n| *n >= 10),
            "every phone is heard and sent its call: {got:?}"
        );
    }

    /// A WebRTC client of `session` on `socket`, driven until it is connected: answers the
    /// client and the first ICE check it sent (a STUN Binding request with its credentials).
    async fn connected_peer(
        worker: &MediaWorkerHandle,
        session: SessionId,
        socket: &UdpSocket,
    ) -> (tandem_media::client::Client, Vec<u8>) {
        use tandem_media::client::{Client, ClientConfig};
        let start = std::time::Instant::now();
        let config = ClientConfig {
            channels: Vec::new(),
            ..ClientConfig::default()
        };
        let (mut client, offer, video) =
            Client::new(start, socket.local_addr().unwrap(), config, Vec::new()).unwrap();
        let notices: NoticeSink = Arc::new(|_| {});
        let answer = worker
            .offer(session, ParticipantId::random(), offer, video, notices)
            .await
            .unwrap();
        client
            .accept_answer(start, &answer.sdp, answer.void_offers)
            .unwrap();
        let mut check = None;
        let mut buf = [0u8; 2048];
        let end = start + Duration::from_secs(5);
        while !(client.connected && check.is_some()) {
            let now = std::time::Instant::now();
            assert!(now < end, "the client did not connect");
            client.handle_timeout(now).unwrap();
            while let Some(t) = client.poll_transmit() {
                if check.is_none() && t.contents.len() > 20 && t.contents[..2] == [0, 1] {
                    check = Some(t.contents.to_vec());
                }
                socket.send_to(&t.contents, t.destination).await.unwrap();
            }
            let wait = tokio::time::timeout(Duration::from_millis(5), socket.recv_from(&mut buf));
            if let Ok(Ok((n, from))) = wait.await {
                client
                    .handle_receive(std::time::Instant::now(), from, &buf[..n])
                    .unwrap();
            }
        }
        (client, check.unwrap())
    }

    /// A peer's ICE check from an address the worker never saw (its NAT gave it a new port)
    /// goes to its own call among several, found by the check's user fragment, and is answered
    /// there, even right after a flood of datagrams nobody can take has used up the worker's
    /// looks at every call ([`owners`]).
    #[tokio::test]
    async fn a_peer_s_check_from_a_new_port_is_answered_by_its_call_after_a_flood() {
        let worker = MediaWorkerHandle::start(MediaWorkerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            public: None,
        })
        .await
        .unwrap();
        let mut checks = Vec::new();
        let mut clients = Vec::new();
        for _ in 0..3 {
            let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let (client, check) = connected_peer(&worker, SessionId::random(), &socket).await;
            checks.push(check);
            clients.push((client, socket));
        }
        // More datagrams nobody can take, from new ports, than the worker looks at every call
        // for in a second.
        let mut flood = Vec::new();
        for _ in 0..20 {
            flood.push(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        }
        for round in 0..60u8 {
            for socket in &flood {
                let rtp = [0x80, 8, 0, round, 0, 0, 0, 0, 0, 0, 0, 1];
                socket.send_to(&rtp, worker.address).await.unwrap();
            }
        }
        // Each peer's check, sent again from a port of its own the worker has never seen.
        for check in &checks {
            let moved = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            moved.send_to(check, worker.address).await.unwrap();
            let mut buf = [0u8; 2048];
            let (n, from) = tokio::time::timeout(Duration::from_secs(2), moved.recv_from(&mut buf))
                .await
                .expect("the check from a new port was not answered")
                .unwrap();
            assert_eq!(from, worker.address);
            // A Binding success response, to the same transaction.
            assert_eq!(&buf[..2], &[0x01, 0x01], "{:?}", &buf[..n.min(20)]);
            assert_eq!(&buf[8..20], &check[8..20]);
        }
    }
}
