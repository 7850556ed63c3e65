//! The HTTP listener: accepts connections, lets in as many as [`admission`] allows (a short
//! problem document to the rest, so a client sees why), and serves each with hyper under the
//! timeouts of [`clock`] and request bodies under the pace of [`crate::body_pace`]. Without these, about
//! 1,100 silent or slow connections used to exhaust a 1,024-file limit and `/healthz`, sign-in
//! and new sessions timed out, with no one signed in.
//!
//! A connection's place is held by its socket, so an upgraded WebSocket keeps counting until it
//! closes; after the upgrade its own pings and silence limit govern it (src/http/ws.rs).

pub mod admission;
pub mod clock;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tower::ServiceExt;

use self::admission::{Admission, Place, Refusal};
use self::clock::{Clock, Timeouts};
use crate::body_pace::{BodyPace, PacedBody};
use crate::config::ServerConfig;
use crate::open_files::{self, FileLimit};
use crate::problem::Problem;

/// Refusals being written at once; past this a refused connection gets one attempt to write
/// its answer and is closed at once, so a flood of refused connections holds few descriptors.
const REFUSALS_IN_FLIGHT: usize = 64;
/// How long a refused connection is kept to deliver its answer and read the client's request
/// (closing with the request unread would reset the connection and could lose the answer).
const REFUSAL_TIME: Duration = Duration::from_secs(2);
/// What is read of a refused client's request before closing.
const REFUSAL_DRAIN_BYTES: usize = 16 * 1024;
/// When to try again after a refusal, in seconds.
const REFUSAL_RETRY_SECS: u64 = 5;

/// The listener's limits, from `[server]` and the open-file limit.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub timeouts: Timeouts,
    pub body: BodyPace,
}

impl Limits {
    /// The configured limits, with the connection cap lowered to half of `files` if needed.
    pub fn new(server: &ServerConfig, files: FileLimit) -> Self {
        let max_connections = open_files::connection_cap(server.max_connections, files);
        if max_connections < server.max_connections {
            tracing::warn!(
                configured = server.max_connections,
                max_connections,
                open_files = %files,
                "server.max_connections lowered to half the open-file limit; raise the limit (LimitNOFILE=, ulimit -n) to allow more"
            );
        }
        Self {
            max_connections,
            max_connections_per_address: server.max_connections_per_address,
            timeouts: Timeouts {
                headers: Duration::from_secs(server.header_timeout_secs),
                idle: Duration::from_secs(server.idle_timeout_secs),
                send: Duration::from_secs(server.send_timeout_secs),
            },
            body: BodyPace {
                grace: Duration::from_secs(server.body_timeout_secs),
                min_rate: server.body_min_bytes_per_sec,
            },
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves; then stops accepting, lets the
/// requests under way finish and returns once every connection has closed (WebSockets, which
/// do not end on their own, are not waited for).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let admission = Arc::new(Mutex::new(Admission::new(
        limits.max_connections,
        limits.max_connections_per_address,
    )));
    let answers = Answers::render().await;
    let refusing = Arc::new(Semaphore::new(REFUSALS_IN_FLIGHT));
    let (stop, stopped) = watch::channel(false);
    let (open, mut all_closed) = mpsc::channel::<()>(1);
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        match Place::take(&admission, peer.ip()) {
            Ok(place) => {
                let conn = Connection {
                    router: router.clone(),
                    limits,
                    peer,
                    stopped: stopped.clone(),
                    _open: open.clone(),
                };
                tokio::spawn(conn.serve(stream, place));
            }
            Err(refusal) => {
                crate::metrics::http_connection_refused(refusal.label());
                refuse(stream, answers.for_refusal(refusal), &refusing);
            }
        }
    }
    drop(listener);
    let _ = stop.send(true);
    drop(open);
    let _ = all_closed.recv().await;
    Ok(())
}

/// A failed accept: a connection reset before it was taken is nothing; anything else (out of
/// descriptors) is logged and waited out briefly rather than retried in a tight loop.
async fn accept_failed(e: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(error = %e, "accepting an HTTP connection failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// The refusals, rendered once as whole HTTP responses.
struct Answers {
    full: Bytes,
    address_full: Bytes,
}

impl Answers {
    async fn render() -> Self {
        Self {
            full: render(
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "server_busy",
                    "the server has as many connections open as it takes; try again in a moment",
                )
                .with_retry_after(REFUSAL_RETRY_SECS),
            )
            .await,
            address_full: render(
                Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_connections",
                    "this address has as many connections open as one address may; close some and try again",
                )
                .with_retry_after(REFUSAL_RETRY_SECS),
            )
            .await,
        }
    }

    fn for_refusal(&self, refusal: Refusal) -> Bytes {
        match refusal {
            Refusal::Full => self.full.clone(),
            Refusal::AddressFull => self.address_full.clone(),
        }
    }
}

/// `problem` as the bytes of an HTTP/1.1 response that closes the connection.
async fn render(problem: Problem) -> Bytes {
    let (parts, body) = problem.into_response().into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024)
        .await
        .expect("a problem document is small and in memory");
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        parts.status.as_u16(),
        parts.status.canonical_reason().unwrap_or("")
    );
    for (name, value) in &parts.headers {
        let value = value.to_str().expect("our own header values are text");
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "x-content-type-options: nosniff\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let mut out = head.into_bytes();
    out.extend_from_slice(&body);
    out.into()
}

/// Answers a refused connection and closes it.
fn refuse(mut stream: TcpStream, answer: Bytes, refusing: &Arc<Semaphore>) {
    let Ok(turn) = refusing.clone().try_acquire_owned() else {
        // A fresh socket's send buffer takes the answer whole; it may be lost to a reset.
        let _ = stream.try_write(&answer);
        return;
    };
    tokio::spawn(async move {
        let _turn = turn;
        let _ = tokio::time::timeout(REFUSAL_TIME, async {
            stream.write_all(&answer).await?;
            stream.shutdown().await?;
            let mut buf = [0u8; 4096];
            let mut left = REFUSAL_DRAIN_BYTES;
            while left > 0 {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                left = left.saturating_sub(n);
            }
            io::Result::Ok(())
        })
        .await;
    });
}

/// What happens on one connection, for its [`Clock`]; wakes the connection's task when the
/// deadline may have moved.
struct Watch {
    clock: Mutex<Clock>,
    moved: Notify,
}

impl Watch {
    fn with<T>(&self, f: impl FnOnce(&mut Clock) -> T) -> T {
        f(&mut self.clock.lock().expect("connection clock lock poisoned"))
    }
    fn read(&self) {
        if self.with(|c| c.read(Instant::now())) {
            self.moved.notify_one();
        }
    }
    fn write_blocked(&self) {
        if self.with(|c| c.write_blocked(Instant::now())) {
            self.moved.notify_one();
        }
    }
    fn wrote(&self) {
        self.with(Clock::wrote);
    }
}

/// Marks a request finished when dropped: when hyper has sent its answer's last byte and drops
/// the body, or when the request is abandoned.
struct Finished(Arc<Watch>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.with(|c| c.request_finished(Instant::now()));
        self.0.moved.notify_one();
    }
}

struct Connection {
    router: Router,
    limits: Limits,
    peer: SocketAddr,
    stopped: watch::Receiver<bool>,
    /// Held until the connection closes; [`serve`] waits for every one.
    _open: mpsc::Sender<()>,
}

impl Connection {
    async fn serve(mut self, stream: TcpStream, place: Place) {
        let watch = Arc::new(Watch {
            clock: Mutex::new(Clock::new(self.limits.timeouts, Instant::now())),
            moved: Notify::new(),
        });
        let io = TokioIo::new(Watched {
            _place: place,
            stream,
            watch: watch.clone(),
        });
        let (router, peer, pace) = (self.router.clone(), self.peer, self.limits.body);
        let requests = watch.clone();
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            requests.with(Clock::request_started);
            let finished = Finished(requests.clone());
            req.extensions_mut().insert(ConnectInfo(peer));
            let req = req.map(|b| Body::new(PacedBody::new(b, pace)));
            let router = router.clone();
            async move {
                let Ok(res) = router.oneshot(req).await;
                // The closure owns `finished`; hyper drops the body after its last frame.
                Ok::<_, Infallible>(res.map(|b| {
                    Body::new(b.map_frame(move |frame| {
                        let _ = &finished;
                        frame
                    }))
                }))
            }
        });
        let mut conn = pin!(
            hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .with_upgrades()
        );
        let mut stopping = false;
        loop {
            let deadline = watch.with(|c| c.deadline());
            let expiry = async {
                match deadline {
                    Some((at, _)) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = conn.as_mut() => break,
                () = expiry => {
                    if let Some(why) = watch.with(|c| c.expired(Instant::now())) {
                        crate::metrics::http_connection_timed_out(why.label());
                        break;
                    }
                }
                () = watch.moved.notified() => {}
                _ = self.stopped.changed(), if !stopping => {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// A connection's socket, telling its [`Watch`] what passes, and holding its place (given
/// back before the socket closes: a client that sees the close may come back at once).
struct Watched {
    _place: Place,
    stream: TcpStream,
    watch: Arc<Watch>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.watch.read();
        }
        r
    }
}

impl Watched {
    fn note_write(&self, r: &Poll<io::Result<usize>>) {
        match r {
            Poll::Pending => self.watch.write_blocked(),
            Poll::Ready(Ok(n)) if *n > 0 => self.watch.wrote(),
            _ => {}
        }
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.note_write(&r);
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.note_write(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
