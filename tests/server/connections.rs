//! Connections nobody signed in for (issue 15, item 2): about 1,100 silent or slow TCP
//! connections to the HTTP port used to exhaust a 1,024-file limit, and `/healthz`, sign-in and
//! new sessions timed out. Here thousands come from other loopback addresses (127.0.0.2...). Now the connections are capped in total and per address, past the
//! cap a connection is told why (a problem document, Retry-After) and closed, silent and
//! trickling ones are closed after the header or idle timeout, and a request body that trickles
//! is cut off, while the people using the server go on.

use std::net::SocketAddr;
use std::time::Duration;

use tandem::store::AccountRole;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::common::flood::{connect_from, open_files_for};
use crate::common::{PATIENCE, TestServer, Ws};

/// What became of a connection a flooding client held.
#[derive(Debug, Clone, PartialEq)]
enum Fate {
    /// Still open when the test let go of it, nothing received.
    Open,
    /// The server answered (the text received) and closed it, or was closing it.
    Answered(String),
    /// The server closed it without a word.
    Closed,
}

/// Holds `stream` as a flooding client would: silent, or (`trickle`) sending a request's
/// headers one byte every 200 ms and never finishing them. Ends when the server answers or
/// closes, or when told to stop.
async fn hold(mut stream: TcpStream, trickle: bool, mut stop: watch::Receiver<bool>) -> Fate {
    const HEAD: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: tandem\r\nX-Slow: ";
    let mut got = Vec::new();
    let mut sent = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut buf = [0u8; 2048];
    loop {
        tokio::select! {
            r = stream.read(&mut buf) => match r {
                Ok(0) | Err(_) if got.is_empty() => return Fate::Closed,
                Ok(0) | Err(_) => return Fate::Answered(String::from_utf8_lossy(&got).into()),
                Ok(n) => got.extend_from_slice(&buf[..n]),
            },
            _ = tick.tick(), if trickle => {
                let byte = HEAD.get(sent).copied().unwrap_or(b'a');
                sent += 1;
                // A refused connection may be closed already; its answer is still read.
                let _ = stream.write_all(&[byte]).await;
            }
            _ = stop.changed() => {
                return if got.is_empty() {
                    Fate::Open
                } else {
                    Fate::Answered(String::from_utf8_lossy(&got).into())
                };
            }
        }
    }
}

/// A crowd of `count` connections from `from`; of the first `trickling`, every fifth trickles
/// (the rest are silent: a connection expected to be refused reads its answer whole, where a
/// byte it sent could make the server's close a reset that loses it). Their fates arrive on
/// the receiver as they end.
struct Crowd {
    stop: watch::Sender<bool>,
    fates: mpsc::UnboundedReceiver<Fate>,
    left: usize,
}

impl Crowd {
    async fn open(server: SocketAddr, from: &str, count: usize, trickling: usize) -> Crowd {
        let (stop, stopped) = watch::channel(false);
        let (tx, fates) = mpsc::unbounded_channel();
        for i in 0..count {
            let stream = connect_from(from, server).await;
            let (tx, stopped) = (tx.clone(), stopped.clone());
            let trickle = i < trickling && i % 5 == 0;
            tokio::spawn(async move {
                let _ = tx.send(hold(stream, trickle, stopped).await);
            });
        }
        Crowd {
            stop,
            fates,
            left: count,
        }
    }

    /// The next `n` connections to end (bounded by `within`).
    async fn next(&mut self, n: usize, within: Duration) -> Vec<Fate> {
        let mut out = Vec::new();
        while out.len() < n {
            let fate = tokio::time::timeout(within, self.fates.recv())
                .await
                .unwrap_or_else(|_| panic!("only {} of {n} connections ended: {out:?}", out.len()))
                .expect("the crowd's tasks report");
            out.push(fate);
            self.left -= 1;
        }
        out
    }

    /// Lets go of every connection; answers the fates of those still held.
    async fn release(mut self) -> Vec<Fate> {
        let _ = self.stop.send(true);
        let left = self.left;
        self.next(left, PATIENCE).await
    }
}

/// An answer is the problem document `code` with `status` and a Retry-After.
fn assert_refusal(answer: &Fate, status: u16, code: &str) {
    let Fate::Answered(text) = answer else {
        panic!("expected a {status} {code} answer, got {answer:?}")
    };
    assert!(text.starts_with(&format!("HTTP/1.1 {status} ")), "{text}");
    let lower = text.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: application/problem+json"),
        "{text}"
    );
    assert!(lower.contains("retry-after: 5"), "{text}");
    assert!(text.contains(&format!("\"code\":\"{code}\"")), "{text}");
}

/// A session with a CSR and a customer on their WebSockets, chatting both ways.
async fn session(t: &TestServer, csr_name: &str) -> (Ws, Ws) {
    let carol = t.account(csr_name, AccountRole::Csr).await;
    let s = t.start_session(&carol, "Printer offline").await;
    let mut csr = t.connect(&s).await;
    let number = s["session"]["number"].as_str().unwrap();
    let mut dave = t.connect(&t.join_by_number(number, "Dave").await).await;
    chat_both_ways(&mut csr, &mut dave, "hello").await;
    (csr, dave)
}

async fn chat_both_ways(csr: &mut Ws, customer: &mut Ws, text: &str) {
    csr.chat(&format!("{text} from the CSR"), None)
        .await
        .unwrap();
    customer
        .event_where("chat", |e| e["text"] == format!("{text} from the CSR"))
        .await;
    customer
        .chat(&format!("{text} from the customer"), None)
        .await
        .unwrap();
    csr.event_where("chat", |e| e["text"] == format!("{text} from the customer"))
        .await;
}

/// A raw request on a fresh connection from `from`; answers all the server sent before it
/// closed the connection.
async fn raw_request(server: SocketAddr, from: &str, request: &str) -> String {
    let mut s = connect_from(from, server).await;
    s.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, s.read_to_end(&mut got))
        .await
        .expect("the server answers and closes");
    String::from_utf8_lossy(&got).into()
}

fn metric_present(needle: &str) -> bool {
    tandem::metrics::handle().render().contains(needle)
}

/// Each address may hold this many connections in the flood tests.
const SHARE: usize = 1000;

/// 3,300 connections from three addresses that never send a whole request (a fifth trickle
/// their headers): each of the first two addresses gets its share (1,000) and the rest of its
/// connections are refused with 429 `too_many_connections`; sign-in, a new session and chat
/// work meanwhile; the third address fills the total (3,000) and the rest, and any newcomer,
/// get 503 `server_busy`; the session already open goes on.
#[tokio::test(flavor = "multi_thread")]
async fn a_crowd_of_idle_connections_is_capped_and_told_why_while_people_go_on() {
    // Both ends of every connection are in this process: 3,300 and the session's.
    open_files_for(8192);
    let t = TestServer::start_with(&[
        ("TANDEM_SERVER_MAX_CONNECTIONS", "3000"),
        (
            "TANDEM_SERVER_MAX_CONNECTIONS_PER_ADDRESS",
            &SHARE.to_string(),
        ),
        // Longer than the test: here nothing is closed for waiting.
        ("TANDEM_SERVER_HEADER_TIMEOUT_SECS", "300"),
    ])
    .await;
    let server = t.server().addr;

    // Two addresses' crowds: 1,000 of each let in, 100 told to back off.
    let mut crowds = Vec::new();
    for from in ["127.0.0.2", "127.0.0.3"] {
        let mut crowd = Crowd::open(server, from, SHARE + 100, SHARE).await;
        for answer in crowd.next(100, PATIENCE).await {
            assert_refusal(&answer, 429, "too_many_connections");
        }
        crowds.push(crowd);
    }
    assert!(metric_present(
        "tandem_http_connections_refused_total{reason=\"address\"}"
    ));

    // Meanwhile, from another address: health, sign-in, a new session and its chat.
    let health = t
        .http
        .get(format!("{}/healthz", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let (mut csr, mut dave) = session(&t, "carol").await;

    // A third address fills the rest (about 1,000: the session holds a few places); at least
    // 100 of its 1,100 are refused as the server is full.
    let mut third = Crowd::open(server, "127.0.0.4", SHARE + 100, SHARE - 100).await;
    for answer in third.next(100, PATIENCE).await {
        assert_refusal(&answer, 503, "server_busy");
    }
    let newcomer = raw_request(
        server,
        "127.0.0.5",
        "GET /healthz HTTP/1.1\r\nHost: tandem\r\n\r\n",
    )
    .await;
    assert_refusal(&Fate::Answered(newcomer), 503, "server_busy");
    assert!(metric_present(
        "tandem_http_connections_refused_total{reason=\"full\"}"
    ));
    // Connections already in use go on: the session's WebSockets.
    chat_both_ways(&mut csr, &mut dave, "still here").await;

    // Every connection let in was held open all along; every other was refused.
    for crowd in crowds {
        let held = crowd.release().await;
        assert_eq!(held.len(), SHARE);
        assert!(held.iter().all(|f| *f == Fate::Open), "{held:?}");
    }
    for fate in third.release().await {
        if fate != Fate::Open {
            assert_refusal(&fate, 503, "server_busy");
        }
    }
}

/// 3,000 silent connections and connections trickling their headers a byte at a time, from
/// three addresses, and an idle kept-alive one: while they are held, a CSR signs in, starts a
/// session and chats with a customer; then the server closes every one of them after its
/// timeout, while the session's WebSockets (not bound by them) go on; then the address is let
/// in again.
#[tokio::test(flavor = "multi_thread")]
async fn silent_and_trickling_connections_are_closed_after_their_timeouts() {
    open_files_for(8192);
    let mut t = TestServer::start_with(&[
        ("TANDEM_SERVER_HEADER_TIMEOUT_SECS", "1"),
        ("TANDEM_SERVER_IDLE_TIMEOUT_SECS", "1"),
        (
            "TANDEM_SERVER_MAX_CONNECTIONS_PER_ADDRESS",
            &SHARE.to_string(),
        ),
    ])
    .await;
    // A new connection for every request: a kept one could be closed as idle while reused.
    t.http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let server = t.server().addr;

    let mut crowds = Vec::new();
    for from in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        crowds.push(Crowd::open(server, from, SHARE, SHARE).await);
    }
    let mut kept = connect_from("127.0.0.5", server).await;
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: tandem\r\n\r\n")
        .await
        .unwrap();
    let (mut csr, mut dave) = session(&t, "carol").await;

    for mut crowd in crowds {
        let fates = crowd.next(SHARE, PATIENCE).await;
        assert!(fates.iter().all(|f| *f == Fate::Closed), "{fates:?}");
    }
    // The kept-alive connection had its answer, then was closed for idling.
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, kept.read_to_end(&mut answer))
        .await
        .expect("an idle kept-alive connection is closed");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(answer.ends_with("ok"), "{answer}");

    for phase in ["headers", "idle"] {
        assert!(metric_present(&format!(
            "tandem_http_connections_timed_out_total{{phase=\"{phase}\"}}"
        )));
    }
    chat_both_ways(&mut csr, &mut dave, "after the crowd").await;
    let again = raw_request(
        server,
        "127.0.0.2",
        "GET /healthz HTTP/1.1\r\nHost: tandem\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(again.starts_with("HTTP/1.1 200 "), "{again}");
}

/// Sends `head` and the first `start` bytes of a body, then one more byte every 100 ms, until
/// the server answers and closes; answers what it said.
async fn trickle_body(server: SocketAddr, head: &str, start: usize) -> String {
    let mut s = connect_from("127.0.0.1", server).await;
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&vec![b'x'; start]).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let ended = tokio::time::timeout(PATIENCE, async {
        loop {
            tokio::select! {
                r = s.read(&mut buf) => match r {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                },
                _ = tick.tick() => {
                    let _ = s.write_all(b"x").await;
                }
            }
        }
    })
    .await;
    let got = String::from_utf8_lossy(&got).into_owned();
    assert!(ended.is_ok(), "the server never cut the body off: {got:?}");
    got
}

/// A request body that trickles (an API call's, an upload's) is cut off with a clear answer
/// after the body timeout, and the upload leaves nothing behind.
#[tokio::test(flavor = "multi_thread")]
async fn a_trickling_request_body_is_cut_off() {
    let t = TestServer::start_with(&[
        ("TANDEM_SERVER_BODY_TIMEOUT_SECS", "1"),
        ("TANDEM_SERVER_BODY_MIN_BYTES_PER_SEC", "1000"),
    ])
    .await;
    let server = t.server().addr;
    let carol = t.account("carol", AccountRole::Csr).await;

    let login = trickle_body(
        server,
        "POST /api/login HTTP/1.1\r\nHost: tandem\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
        10,
    )
    .await;
    assert!(login.starts_with("HTTP/1.1 408 "), "{login}");
    assert!(login.contains("\"code\":\"body_timeout\""), "{login}");

    let upload = trickle_body(
        server,
        &format!(
            "POST /api/recordings?name=slow HTTP/1.1\r\nHost: tandem\r\nAuthorization: Bearer {}\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n",
            carol.token
        ),
        2000,
    )
    .await;
    assert!(upload.starts_with("HTTP/1.1 400 "), "{upload}");
    assert!(
        upload.contains("\"code\":\"upload_interrupted\""),
        "{upload}"
    );
    assert!(upload.contains("too slowly"), "{upload}");
    let left: Vec<_> = std::fs::read_dir(t.dir.join("recordings"))
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "the upload left {left:?}");
    assert!(metric_present(
        "tandem_http_connections_timed_out_total{phase=\"body\"}"
    ));
    // The server is none the worse.
    let (status, recordings) = t.get("/api/recordings", Some(&carol.token)).await;
    assert_eq!(status, 200, "{recordings}");
}
