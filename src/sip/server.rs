//! The SIP endpoint's IO: a UDP socket and a TCP listener on the same port, one task that owns
//! the [`Endpoint`] state machine, and a task per call ([`leg`](super::leg)) that puts the
//! caller into a session.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tandem_actors::media_worker::MediaPool;
use tandem_actors::root::Directory;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::accounts::{DialRequest, SipAccounts};
use super::config::SipConfig;
use super::endpoint::{CallEvent, Dial, Endpoint, EndpointConfig, LegId, Output, Tally};
use super::leg::{self, LegCmd, LegContext, LegEvent};
use super::message::MAX_MESSAGE;
use super::transaction::Peer;
use crate::metrics;

/// Most TCP connections at once; more are closed on accept.
const MAX_CONNECTIONS: usize = 4096;
/// A TCP connection that sends nothing for this long is closed...
const IDLE: Duration = Duration::from_secs(300);
/// ...unless a softphone is registered over it: Tandem can ring it only on that connection,
/// and the phone sends at least its next REGISTER before the binding runs out.
const REGISTERED_IDLE: Duration = Duration::from_secs(super::registrar::MAX_EXPIRES as u64 + 60);
/// How long a CSR's softphone rings before Tandem gives up (CANCEL).
const DIAL_RING: Duration = Duration::from_secs(30);

pub struct SipServer {
    /// Where the UDP socket and the TCP listener are bound (the same port).
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl SipServer {
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for SipServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

enum Input {
    Stream(Peer, Vec<u8>),
    Connected(SocketAddr, Stream),
    Closed(SocketAddr),
}

/// The endpoint's side of a TCP connection: where its writes go, and whether a softphone is
/// registered over it (which keeps it open longer).
struct Stream {
    writes: mpsc::Sender<Vec<u8>>,
    registered: Arc<AtomicBool>,
}

/// Binds UDP and then TCP on the same port (a free one when the port is 0).
async fn bind(listen: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let mut last = None;
    for _ in 0..20 {
        let udp = UdpSocket::bind(listen).await?;
        let port = udp.local_addr()?.port();
        match TcpListener::bind(SocketAddr::new(listen.ip(), port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if listen.port() == 0 => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port for SIP")))
}

pub async fn start(
    config: &SipConfig,
    accounts: SipAccounts,
    directory: Directory,
    media: MediaPool,
) -> std::io::Result<SipServer> {
    let (udp, tcp) = bind(config.listen).await?;
    let addr = udp.local_addr()?;
    let contact = config.public().ok().flatten().unwrap_or(addr);
    let endpoint = Endpoint::new(
        EndpointConfig {
            service_number: config.service_number.clone(),
            contact,
            max_calls: config.max_calls,
            realm: accounts.realm().to_string(),
            algorithms: accounts.algorithms().to_vec(),
            require_auth: config.require_auth,
        },
        Instant::now(),
        SystemTime::now(),
    );
    accounts.set_server(contact);
    let (dial_tx, dial_rx) = mpsc::unbounded_channel();
    accounts.set_dialer(dial_tx);
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let context = Arc::new(LegContext {
        directory,
        media,
        commands: cmd_tx,
        ring: Duration::from_millis(config.ring_ms),
    });
    let task = tokio::spawn(run(endpoint, udp, tcp, context, cmd_rx, dial_rx, accounts));
    tracing::info!(%addr, %contact, "SIP endpoint listening (UDP and TCP)");
    Ok(SipServer { addr, task })
}

async fn run(
    mut endpoint: Endpoint,
    udp: UdpSocket,
    tcp: TcpListener,
    context: Arc<LegContext>,
    mut commands: mpsc::UnboundedReceiver<LegCmd>,
    mut dials: mpsc::UnboundedReceiver<DialRequest>,
    accounts: SipAccounts,
) {
    let mut credentials = accounts.accounts();
    endpoint.set_accounts(credentials.borrow_and_update().clone());
    let mut published = u64::MAX;
    let udp = Arc::new(udp);
    let (in_tx, mut in_rx) = mpsc::channel::<Input>(1024);
    let mut streams: HashMap<SocketAddr, Stream> = HashMap::new();
    let mut legs: HashMap<LegId, mpsc::UnboundedSender<LegEvent>> = HashMap::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        let now = Instant::now();
        let wake = endpoint
            .poll_timeout()
            .unwrap_or(now + Duration::from_secs(1))
            .max(now);
        let outputs = tokio::select! {
            r = udp.recv_from(&mut buf) => match r {
                Ok((n, from)) => {
                    if n > MAX_MESSAGE {
                        metrics::sip_malformed("UDP", "too_large");
                        Vec::new()
                    } else if buf[..n].iter().all(|b| matches!(b, b'\r' | b'\n' | 0)) {
                        Vec::new() // keep-alive
                    } else {
                        endpoint.receive(Instant::now(), Peer::Udp(from), &buf[..n])
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "SIP UDP read failed");
                    Vec::new()
                }
            },
            accepted = tcp.accept() => {
                if let Ok((stream, from)) = accepted {
                    if streams.len() >= MAX_CONNECTIONS {
                        metrics::sip_connection_refused();
                    } else {
                        tokio::spawn(connection(stream, from, in_tx.clone()));
                    }
                }
                Vec::new()
            },
            Some(input) = in_rx.recv() => match input {
                Input::Stream(peer, bytes) => endpoint.receive(Instant::now(), peer, &bytes),
                Input::Connected(from, tx) => {
                    streams.insert(from, tx);
                    Vec::new()
                }
                Input::Closed(from) => {
                    streams.remove(&from);
                    endpoint.connection_lost(Instant::now(), Peer::Tcp(from))
                }
            },
            Some(cmd) = commands.recv() => {
                let now = Instant::now();
                match cmd {
                    LegCmd::Ring(leg) => endpoint.ring(now, leg),
                    LegCmd::Answer(leg, local) => endpoint.answer(now, leg, local),
                    LegCmd::Reject(leg, code) => endpoint.reject(now, leg, code),
                    LegCmd::Hangup(leg) => endpoint.hangup(now, leg),
                    LegCmd::MoveMedia(leg, local) => endpoint.move_media(now, leg, local),
                    LegCmd::Done(leg) => {
                        legs.remove(&leg);
                        Vec::new()
                    }
                }
            },
            _ = tokio::time::sleep_until(wake.into()) => endpoint.handle_timeout(Instant::now()),
            Some(req) = dials.recv() => {
                let local = context.media.for_session(req.session.id).address;
                let dial = Dial {
                    user: req.account.credential.username.clone(),
                    local,
                    ring: DIAL_RING,
                };
                match endpoint.dial(Instant::now(), dial) {
                    Err(e) => {
                        let _ = req.reply.send(Err(e.into()));
                        Vec::new()
                    }
                    Ok((leg, out)) => {
                        let (tx, rx) = mpsc::unbounded_channel();
                        legs.insert(leg, tx);
                        let caller = leg::Caller {
                            name: req.account.display_name.clone(),
                            account: Some(req.account),
                        };
                        tokio::spawn(leg::dialled(
                            context.clone(),
                            leg,
                            req.session,
                            caller,
                            local,
                            rx,
                            req.reply,
                        ));
                        out
                    }
                }
            }
            Ok(()) = credentials.changed() => {
                endpoint.set_accounts(credentials.borrow_and_update().clone());
                Vec::new()
            }
        };
        let mut outputs = VecDeque::from(outputs);
        while let Some(output) = outputs.pop_front() {
            match output {
                Output::Send(s) => match s.peer {
                    Peer::Udp(to) => {
                        if let Err(e) = udp.send_to(&s.bytes, to).await {
                            tracing::debug!(error = %e, %to, "SIP UDP send failed");
                        }
                    }
                    Peer::Tcp(to) => match streams.get(&to) {
                        Some(stream) => {
                            if stream.writes.try_send(s.bytes).is_err() {
                                metrics::sip_tcp_send_dropped();
                            }
                        }
                        // Gone (its close is on the way, or it closed before a dial reached
                        // it): the same as a close, so nobody waits for a phone unreachable.
                        None => outputs.extend(endpoint.connection_lost(Instant::now(), s.peer)),
                    },
                },
                Output::Event(CallEvent::Incoming {
                    leg,
                    target,
                    caller,
                    account,
                    offer,
                }) => {
                    let (tx, rx) = mpsc::unbounded_channel();
                    legs.insert(leg, tx);
                    let caller = leg::Caller {
                        name: caller,
                        account,
                    };
                    tokio::spawn(leg::run(context.clone(), leg, target, caller, offer, rx));
                }
                Output::Event(CallEvent::Media { leg, media }) => {
                    if let Some(tx) = legs.get(&leg) {
                        let _ = tx.send(LegEvent::Media(media));
                    }
                }
                Output::Event(CallEvent::Ended { leg, how }) => {
                    if let Some(tx) = legs.get(&leg) {
                        let _ = tx.send(LegEvent::Ended(how));
                    }
                }
            }
        }
        if endpoint.registrations_version() != published {
            published = endpoint.registrations_version();
            let table = endpoint.registrations(Instant::now());
            metrics::sip_registered(table.values().map(Vec::len).sum());
            let over_tcp: HashSet<SocketAddr> = table
                .values()
                .flatten()
                .filter(|b| b.transport == "TCP")
                .map(|b| b.source)
                .collect();
            for (addr, stream) in &streams {
                stream
                    .registered
                    .store(over_tcp.contains(addr), Ordering::Relaxed);
            }
            accounts.publish_registrations(table);
        }
        for tally in endpoint.take_tallies() {
            count(tally);
        }
        metrics::sip_endpoint_state(endpoint.active_calls(), streams.len());
    }
}

/// Counts what the endpoint reports.
fn count(tally: Tally) {
    match tally {
        Tally::Request(method) => metrics::sip_request(&method.to_string()),
        Tally::Response(method, code) => metrics::sip_response(&method.to_string(), code),
        Tally::RequestSent(method) => metrics::sip_request_sent(&method.to_string()),
        Tally::StrayResponse => metrics::sip_stray_response(),
        Tally::Malformed { transport, reason } => metrics::sip_malformed(transport, reason),
        Tally::Auth(method, result) => metrics::sip_auth(&method.to_string(), result),
        Tally::Registration(result) => metrics::sip_registration(result),
        Tally::Dial(result) => metrics::sip_dial(result),
    }
}

/// One TCP connection: messages cut from the stream go to the endpoint, its writes come back.
async fn connection(stream: TcpStream, from: SocketAddr, to_endpoint: mpsc::Sender<Input>) {
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
    let registered = Arc::new(AtomicBool::new(false));
    let stream_side = Stream {
        writes: tx,
        registered: registered.clone(),
    };
    if to_endpoint
        .send(Input::Connected(from, stream_side))
        .await
        .is_err()
    {
        return;
    }
    let mut last_read = Instant::now();
    let (mut read, mut write) = stream.into_split();
    let mut framer = super::message::StreamFramer::default();
    let mut buf = vec![0u8; 8192];
    loop {
        tokio::select! {
            r = tokio::time::timeout(IDLE, read.read(&mut buf)) => {
                let n = match r {
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    Err(_) if registered.load(Ordering::Relaxed)
                        && last_read.elapsed() < REGISTERED_IDLE => continue,
                    Err(_) => break,
                    Ok(Ok(n)) => n,
                };
                last_read = Instant::now();
                framer.push(&buf[..n]);
                let mut fatal = false;
                while let Some(m) = framer.next_message() {
                    match m {
                        Ok(bytes) => {
                            if to_endpoint.send(Input::Stream(Peer::Tcp(from), bytes)).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            metrics::sip_malformed("TCP", e.code());
                            tracing::debug!(%from, error = %e, "closing a SIP connection that cannot be read");
                            fatal = true;
                            break;
                        }
                    }
                }
                if fatal {
                    break;
                }
            }
            out = rx.recv() => match out {
                Some(bytes) => {
                    if write.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                None => break,
            }
        }
    }
    let _ = to_endpoint.send(Input::Closed(from)).await;
}
