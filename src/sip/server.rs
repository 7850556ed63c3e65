//! The SIP endpoint's IO: a UDP socket and a TCP listener on the same port, one task that owns
//! the [`Endpoint`] state machine, and a task per call ([`leg`](super::leg)) that puts the
//! caller into a session. What gets in is decided before any parsing: messages a second per
//! address ([`RequestRate`]) and TCP connections ([`Connections`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use tandem_actors::media_worker::MediaPool;
use tandem_actors::root::Directory;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::accounts::{DialRequest, SipAccounts};
use super::config::SipConfig;
use super::connections::{Connections, TcpLimits};
use super::endpoint::{CallEvent, Dial, Endpoint, EndpointConfig, LegId, Output, Tally};
use super::leg::{self, LegCmd, LegContext, LegEvent};
use super::message::{MAX_MESSAGE, StreamFramer};
use super::request_rate::{self, RequestRate};
use super::transaction::Peer;
use crate::metrics;
use crate::throttle::session_numbers::SharedNumbers;

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

/// What a TCP connection's task tells the endpoint's.
enum Input {
    /// A whole message.
    Stream(SocketAddr, Vec<u8>),
    /// Part of a message arrived; the rest has not yet.
    Partial(SocketAddr),
    Closed(SocketAddr),
}

/// Where the endpoint's writes to a TCP connection go. Dropping it closes the connection.
type Writes = mpsc::Sender<Vec<u8>>;

/// What the endpoint's task needs besides the endpoint.
struct Limits {
    tcp: TcpLimits,
    rate: Arc<Mutex<RequestRate>>,
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
    session_numbers: SharedNumbers,
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
            max_transactions: config.max_transactions,
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
        session_numbers,
    });
    let limits = Limits {
        tcp: TcpLimits {
            max_total: config.max_tcp_connections,
            max_per_address: config.max_tcp_per_address,
            idle: Duration::from_secs(config.tcp_idle_secs),
            message: Duration::from_secs(config.tcp_message_secs),
        },
        rate: Arc::new(Mutex::new(RequestRate::new(
            config.requests_per_second,
            config.request_burst,
            request_rate::MAX_ADDRESSES,
        ))),
    };
    let task = tokio::spawn(run(
        endpoint, udp, tcp, context, cmd_rx, dial_rx, accounts, limits,
    ));
    tracing::info!(%addr, %contact, "SIP endpoint listening (UDP and TCP)");
    Ok(SipServer { addr, task })
}

#[allow(clippy::too_many_arguments)]
async fn run(
    mut endpoint: Endpoint,
    udp: UdpSocket,
    tcp: TcpListener,
    context: Arc<LegContext>,
    mut commands: mpsc::UnboundedReceiver<LegCmd>,
    mut dials: mpsc::UnboundedReceiver<DialRequest>,
    accounts: SipAccounts,
    limits: Limits,
) {
    let mut credentials = accounts.accounts();
    endpoint.set_accounts(credentials.borrow_and_update().clone());
    let mut published = u64::MAX;
    let udp = Arc::new(udp);
    let (in_tx, mut in_rx) = mpsc::channel::<Input>(1024);
    let mut streams: HashMap<SocketAddr, Writes> = HashMap::new();
    let mut connections = Connections::new(limits.tcp);
    // Where softphones are registered over TCP: those connections stay open.
    let mut registered_over_tcp: HashSet<SocketAddr> = HashSet::new();
    let mut legs: HashMap<LegId, mpsc::UnboundedSender<LegEvent>> = HashMap::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        let now = Instant::now();
        let wake = endpoint
            .poll_timeout()
            .into_iter()
            .chain(connections.next_deadline())
            .min()
            .unwrap_or(now + Duration::from_secs(1))
            .max(now);
        let outputs = tokio::select! {
            r = udp.recv_from(&mut buf) => match r {
                Ok((n, from)) => {
                    // Past its address's rate a datagram is dropped unanswered: its source
                    // may be forged, and a phone retransmits (src/sip/request_rate.rs).
                    if take_turn(&limits.rate, from.ip()).is_err() {
                        metrics::sip_rate_limited("UDP");
                        Vec::new()
                    } else if n > MAX_MESSAGE {
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
                    match connections.admit(Instant::now(), from) {
                        // Dropped: closed at once.
                        Err(refused) => metrics::sip_connection_refused(refused.label()),
                        Ok(()) => {
                            let (tx, rx) = mpsc::channel(64);
                            streams.insert(from, tx);
                            let rate = limits.rate.clone();
                            tokio::spawn(connection(stream, from, in_tx.clone(), rx, rate));
                        }
                    }
                }
                Vec::new()
            },
            Some(input) = in_rx.recv() => match input {
                Input::Stream(from, bytes) => {
                    let now = Instant::now();
                    connections.message(now, from);
                    endpoint.receive(now, Peer::Tcp(from), &bytes)
                }
                Input::Partial(from) => {
                    connections.partial(Instant::now(), from);
                    Vec::new()
                }
                Input::Closed(from) => {
                    streams.remove(&from);
                    connections.closed(from);
                    endpoint.connection_lost(Instant::now(), Peer::Tcp(from))
                }
            },
            Some(cmd) = commands.recv() => {
                let now = Instant::now();
                match cmd {
                    LegCmd::Ring(leg) => endpoint.ring(now, leg),
                    LegCmd::Answer(leg, local) => endpoint.answer(now, leg, local),
                    LegCmd::Reject(leg, code) => endpoint.reject(now, leg, code),
                    LegCmd::RejectUntil(leg, code, secs) => endpoint.reject_until(now, leg, code, secs),
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
                        Some(writes) => {
                            if writes.try_send(s.bytes).is_err() {
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
                    source,
                }) => {
                    let (tx, rx) = mpsc::unbounded_channel();
                    legs.insert(leg, tx);
                    let caller = leg::Caller {
                        name: caller,
                        account,
                    };
                    let call = leg::Incoming {
                        target,
                        caller,
                        offer,
                        source,
                    };
                    tokio::spawn(leg::run(context.clone(), leg, call, rx));
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
            registered_over_tcp = table
                .values()
                .flatten()
                .filter(|b| b.transport == "TCP")
                .map(|b| b.source)
                .collect();
            accounts.publish_registrations(table);
        }
        // Connections idle or too slow with a message are closed: dropping their writes ends
        // their tasks, which report the close (and the endpoint forgets what went through
        // them). A registered softphone's connection, or a call's, is kept.
        let now = Instant::now();
        let held = |addr| registered_over_tcp.contains(&addr) || endpoint.in_call(Peer::Tcp(addr));
        for (addr, why) in connections.expire(now, held) {
            tracing::debug!(%addr, reason = why.label(), "closing a SIP TCP connection");
            metrics::sip_connection_closed(why.label());
            streams.remove(&addr);
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
        Tally::TransactionsFull => metrics::sip_transactions_full(),
    }
}

/// Takes a message's turn from `ip`'s rate: `Err(wait)` when it has none yet.
fn take_turn(rate: &Mutex<RequestRate>, ip: IpAddr) -> Result<(), Duration> {
    rate.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .check(Instant::now(), ip)
}

/// One TCP connection: messages cut from the stream go to the endpoint, its writes come back;
/// it closes when the endpoint drops `writes`. A message past its address's rate waits for its
/// turn, and the connection is not read meanwhile (TCP slows the sender down; nothing is lost
/// on a stream that is not retransmitted).
async fn connection(
    stream: TcpStream,
    from: SocketAddr,
    to_endpoint: mpsc::Sender<Input>,
    mut writes: mpsc::Receiver<Vec<u8>>,
    rate: Arc<Mutex<RequestRate>>,
) {
    let (mut read, mut write) = stream.into_split();
    let mut framer = StreamFramer::default();
    let mut buf = vec![0u8; 8192];
    // Whether the endpoint knows part of a message is waiting (it times the message from then).
    let mut partial_told = false;
    'connection: loop {
        tokio::select! {
            r = read.read(&mut buf) => {
                let n = match r {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                framer.push(&buf[..n]);
                while let Some(m) = framer.next_message() {
                    let bytes = match m {
                        Ok(bytes) => bytes,
                        Err(e) => {
                            metrics::sip_malformed("TCP", e.code());
                            tracing::debug!(%from, error = %e, "closing a SIP connection that cannot be read");
                            break 'connection;
                        }
                    };
                    if let Err(wait) = take_turn(&rate, from.ip()) {
                        metrics::sip_rate_limited("TCP");
                        let mut wait = wait;
                        loop {
                            tokio::time::sleep(wait).await;
                            match take_turn(&rate, from.ip()) {
                                Ok(()) => break,
                                Err(w) => wait = w,
                            }
                        }
                    }
                    if to_endpoint.send(Input::Stream(from, bytes)).await.is_err() {
                        return;
                    }
                    partial_told = false;
                }
                if framer.pending() && !partial_told {
                    partial_told = true;
                    if to_endpoint.send(Input::Partial(from)).await.is_err() {
                        return;
                    }
                }
            }
            out = writes.recv() => match out {
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
