//! The session's WebSocket, kept across drops. A dropped connection, or the server's `bye`
//! `reconnect` (a session restarting after a fault), is connected again with the same token
//! within the server's grace (docs/protocol.md 5.8): the helper's own consent record, the share
//! and the WebRTC client go on meanwhile, and the new `welcome` says what runs now. A server
//! that refuses the token (this computer has left) ends it.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::Ws;

/// How long the helper tries: the server's default grace (20 s) and some.
pub const TRY_FOR: Duration = Duration::from_secs(30);
/// The first wait between tries, doubled up to [`MAX_WAIT`].
const FIRST_WAIT: Duration = Duration::from_millis(250);
const MAX_WAIT: Duration = Duration::from_secs(4);
/// One try: the connection and its `welcome`.
const ONE_TRY: Duration = Duration::from_secs(5);

/// Connected again: the socket, and the `welcome` it began with.
pub struct Back {
    pub ws: Ws,
    pub welcome: String,
}

/// Connects to `url` again until a `welcome` comes, for up to [`TRY_FOR`]; why not, in the
/// customer's words, when the server refuses or does not come back.
pub async fn reconnect(url: String) -> Result<Back, String> {
    reconnect_within(url, TRY_FOR).await
}

async fn reconnect_within(url: String, try_for: Duration) -> Result<Back, String> {
    let give_up = Instant::now() + try_for;
    let mut wait = FIRST_WAIT;
    loop {
        tokio::time::sleep(wait).await;
        match tokio::time::timeout(ONE_TRY, attempt(&url)).await {
            Ok(Ok(back)) => return Ok(back),
            // Refused: this computer is no longer in the session.
            Ok(Err(Attempt::Refused(why))) => return Err(why),
            Ok(Err(Attempt::Failed)) | Err(_) => {}
        }
        if Instant::now() + wait > give_up {
            return Err("the server could not be reached again".into());
        }
        wait = (wait * 2).min(MAX_WAIT);
    }
}

enum Attempt {
    /// The server answered, and not with a welcome.
    Refused(String),
    /// No answer (the network, or the server restarting): try again.
    Failed,
}

async fn attempt(url: &str) -> Result<Back, Attempt> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| match e {
            // An HTTP answer to the upgrade: the token is no longer taken.
            tokio_tungstenite::tungstenite::Error::Http(r) => {
                Attempt::Refused(format!("the server refused ({})", r.status()))
            }
            _ => Attempt::Failed,
        })?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                return match frame["type"].as_str() {
                    Some("welcome") => Ok(Back {
                        ws,
                        welcome: text.to_string(),
                    }),
                    _ => Err(Attempt::Refused(format!(
                        "the server refused: {}",
                        frame["code"].as_str().unwrap_or("no welcome")
                    ))),
                };
            }
            Some(Ok(Message::Close(close))) => {
                let (code, reason) = close
                    .map(|c| (u16::from(c.code), c.reason.to_string()))
                    .unwrap_or((1005, String::new()));
                return Err(if code == 1012 || code == 1013 {
                    Attempt::Failed
                } else {
                    Attempt::Refused(format!("the server refused ({reason})"))
                });
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return Err(Attempt::Failed),
        }
    }
}

/// The session's socket as `join`'s loop uses it: up, or being connected again.
pub struct Link {
    url: String,
    ws: Option<Ws>,
    back: Option<tokio::task::JoinHandle<Result<Back, String>>>,
    /// Frames sent while it was down, sent when it is back (bounded: the newest are dropped).
    queued: Vec<Value>,
}

/// What happened on the link.
pub enum Got {
    Frame(String),
    /// It dropped; connecting again has started.
    Lost,
    /// Connected again; its `welcome`.
    Back(String),
    /// It will not come back: why, in words.
    Gone(String),
}

/// Frames kept while the link is down.
const MAX_QUEUED: usize = 64;

impl Link {
    pub fn new(url: String, ws: Ws) -> Self {
        Self {
            url,
            ws: Some(ws),
            back: None,
            queued: Vec::new(),
        }
    }

    pub fn is_up(&self) -> bool {
        self.ws.is_some()
    }

    /// The next thing that happens. Cancel-safe: it only awaits the socket or the reconnection.
    pub async fn next(&mut self) -> Got {
        if let Some(ws) = &mut self.ws {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(text))) => return Got::Frame(text.to_string()),
                    // Pings, and the close frame (the end of the stream comes next).
                    Some(Ok(_)) => continue,
                    // Closed without a bye, or the network: connect again.
                    Some(Err(_)) | None => {
                        self.lost();
                        return Got::Lost;
                    }
                }
            }
        }
        let Some(back) = &mut self.back else {
            return std::future::pending().await;
        };
        let result = back.await;
        self.back = None;
        match result {
            Ok(Ok(Back { ws, welcome })) => {
                self.ws = Some(ws);
                for frame in std::mem::take(&mut self.queued) {
                    self.send(frame).await;
                }
                Got::Back(welcome)
            }
            Ok(Err(why)) => Got::Gone(why),
            Err(e) => Got::Gone(e.to_string()),
        }
    }

    /// Sends `frame`, or keeps it until the link is back.
    pub async fn send(&mut self, frame: Value) {
        if let Some(ws) = &mut self.ws {
            let text = Message::Text(frame.to_string().into());
            if futures_util::SinkExt::send(ws, text).await.is_ok() {
                return;
            }
            self.lost();
        }
        if self.queued.len() < MAX_QUEUED {
            self.queued.push(frame);
        }
    }

    /// Drops the socket and starts connecting again (once).
    pub fn lost(&mut self) {
        self.ws = None;
        if self.back.is_none() {
            self.back = Some(tokio::spawn(reconnect(self.url.clone())));
        }
    }

    /// Closes it for good (the helper leaves).
    pub async fn close(&mut self) {
        if let Some(b) = self.back.take() {
            b.abort();
        }
        if let Some(ws) = &mut self.ws {
            let _ = ws.close(None).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::SinkExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    use super::*;

    async fn listener() -> (TcpListener, String) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/ws?token=t", l.local_addr().unwrap());
        (l, url)
    }

    #[tokio::test]
    async fn a_token_the_server_no_longer_takes_ends_it_with_the_reason() {
        let (l, url) = listener().await;
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = s.read(&mut request).await.unwrap();
            s.write_all(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
        });
        let why = reconnect_within(url, Duration::from_secs(10))
            .await
            .err()
            .expect("refused");
        assert!(why.contains("401"), "{why}");
        server.await.unwrap();
    }

    #[tokio::test]
    async fn an_error_instead_of_a_welcome_ends_it_with_the_code() {
        let (l, url) = listener().await;
        tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(s).await.unwrap();
            let error = r#"{"type":"error","code":"participant_gone"}"#;
            ws.send(Message::Text(error.into())).await.unwrap();
        });
        let why = reconnect_within(url, Duration::from_secs(10))
            .await
            .err()
            .expect("refused");
        assert_eq!(why, "the server refused: participant_gone");
    }

    #[tokio::test]
    async fn a_restarting_server_is_tried_again_until_it_welcomes() {
        let (l, url) = listener().await;
        tokio::spawn(async move {
            // First: "service restart" (1012), then refused connections, then a welcome.
            let (s, _) = l.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(s).await.unwrap();
            let close = CloseFrame {
                code: CloseCode::Restart,
                reason: "restarting".into(),
            };
            let _ = ws.close(Some(close)).await;
            let (s, _) = l.accept().await.unwrap();
            drop(s);
            let (s, _) = l.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(s).await.unwrap();
            let welcome = r#"{"type":"welcome"}"#;
            ws.send(Message::Text(welcome.into())).await.unwrap();
            // Held open until the test ends.
            let _ = ws.next().await;
        });
        let back = reconnect_within(url, Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("not back: {e}"));
        assert_eq!(back.welcome, r#"{"type":"welcome"}"#);
    }

    #[tokio::test]
    async fn a_server_that_does_not_come_back_is_given_up() {
        let (l, url) = listener().await;
        // Nothing listens there any more: every try fails at once.
        drop(l);
        let started = Instant::now();
        let why = reconnect_within(url, Duration::from_secs(1))
            .await
            .err()
            .expect("given up");
        assert_eq!(why, "the server could not be reached again");
        assert!(
            started.elapsed() >= Duration::from_millis(750),
            "tried before giving up"
        );
    }
}
