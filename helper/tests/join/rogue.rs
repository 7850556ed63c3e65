//! A rogue server, end to end (issue 16, "Must show": control messages that reach the helper
//! without the customer's OK in the helper inject nothing). The real Tandem server would not
//! relay them (its own policy stops them first), so it cannot show that the HELPER refuses: here
//! the real `tandem-helper` binary joins a fake server written in this test, a small HTTP and
//! WebSocket server with a str0m WebRTC peer of its own, which says control started when nobody
//! allowed it and sends a click and text on the `control` channel. The test window receives
//! nothing of it; then the customer allows control in the helper and the same server's click and
//! text arrive, on the same ordered channel: what came before them was refused, not lost.

use std::collections::VecDeque;
use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use str0m::change::SdpOffer;
use str0m::channel::ChannelId;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio_tungstenite::tungstenite::Message;

use super::{Proc, WAIT, corner_window, xvfb};

/// Dave at the helper's terminal (`--terminal`: the notes of what the helper refused are
/// printed there; the window's answers are the same session state, tested in join.rs).
struct Customer {
    helper: Proc,
}

impl Customer {
    /// The next question the helper asks, as shown.
    fn question(&self) -> String {
        self.helper.line(|l| l.starts_with("question:"))
    }

    /// Answers the question shown.
    fn answer(&mut self, allow: bool) {
        self.helper.type_line(if allow { "y" } else { "n" });
    }

    /// Waits until the helper says the screen is being shown.
    fn shown(&self) {
        self.helper.line(|l| l == "your screen is being shown");
    }
}

const ME: &str = "computer-1";
const DAVE: &str = "dave-1";
const CAROL: &str = "carol-1";

/// What the test has the fake server say: a WebSocket frame, or a message on `control`.
enum Say {
    Frame(Value),
    Control(Value),
}

/// Answers `POST /api/helper/join` as a server would, then takes the WebSocket.
async fn pairing_then_ws(listener: &TcpListener) -> tokio_tungstenite::WebSocketStream<TcpStream> {
    loop {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut head = [0u8; 8];
        let n = stream.peek(&mut head).await.unwrap();
        if head[..n].starts_with(b"GET ") {
            return tokio_tungstenite::accept_async(stream).await.unwrap();
        }
        // The pairing request: read it whole (headers, then the body they announce).
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request);
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if request.len() >= end + 4 + length || n == 0 {
                    break;
                }
            }
        }
        let body = json!({
            "token": "rogue",
            "participant": {"id": ME, "name": "Dave's computer", "computer_of": DAVE},
            "session": {"id": "rogue-session", "number": "123456789", "topic": "rogue"},
        })
        .to_string();
        let response = format!(
            "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(response.as_bytes()).await.unwrap();
        stream.shutdown().await.unwrap();
    }
}

/// The fake server: pairing, the WebSocket, and a str0m peer (ICE-lite, as Tandem's SFU) that
/// answers the helper's offer and writes on the `control` channel whatever the test says.
async fn serve(
    listener: TcpListener,
    mut says: UnboundedReceiver<Say>,
    heard: UnboundedSender<Value>,
) {
    let mut ws = pairing_then_ws(&listener).await;
    let welcome = json!({"type": "welcome", "session": {
        "participants": [
            {"id": CAROL, "name": "Carol"}, {"id": DAVE, "name": "Dave"}, {"id": ME, "name": "Dave's computer"},
        ],
        "activities": [], "pending_consents": [],
    }});
    ws.send(Message::Text(welcome.to_string().into()))
        .await
        .unwrap();

    // Once per process, as the server in the other tests does it.
    tandem_media::sfu::init_crypto();
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = udp.local_addr().unwrap();
    let mut rtc = Rtc::builder()
        .set_ice_lite(true)
        .enable_h264(true)
        .build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
    let mut control: Option<ChannelId> = None;
    let mut waiting: VecDeque<Value> = VecDeque::new();
    let mut buf = vec![0u8; 65_536];
    let mut wake = Instant::now();
    loop {
        tokio::select! {
            frame = ws.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(_)) => continue,
                    _ => return,
                };
                let v: Value = serde_json::from_str(&text).unwrap();
                if v["type"] == "media_offer" {
                    let offer = SdpOffer::from_sdp_string(v["sdp"].as_str().unwrap()).unwrap();
                    let answer = rtc.sdp_api().accept_offer(offer).unwrap();
                    let reply = json!({"type": "media_answer", "ref": v["ref"], "sdp": answer.to_sdp_string(), "void_offers": 0});
                    ws.send(Message::Text(reply.to_string().into())).await.unwrap();
                }
                let _ = heard.send(v);
            }
            said = says.recv() => match said {
                Some(Say::Frame(f)) => ws.send(Message::Text(f.to_string().into())).await.unwrap(),
                Some(Say::Control(m)) => waiting.push_back(m),
                None => return,
            },
            got = udp.recv_from(&mut buf) => if let Ok((n, from)) = got
                && let Ok(r) = Receive::new(Protocol::Udp, from, local, &buf[..n])
            {
                rtc.handle_input(Input::Receive(Instant::now(), r)).unwrap();
            },
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {
                rtc.handle_input(Input::Timeout(Instant::now())).unwrap();
            }
        }
        if let Some(id) = control {
            while let Some(m) = waiting.pop_front() {
                rtc.channel(id)
                    .unwrap()
                    .write(false, m.to_string().as_bytes())
                    .unwrap();
            }
        }
        loop {
            match rtc.poll_output().unwrap() {
                Output::Timeout(t) => {
                    wake = t;
                    break;
                }
                Output::Transmit(t) => {
                    let _ = udp.send_to(&t.contents, t.destination).await;
                }
                Output::Event(Event::ChannelOpen(id, label)) if label == "control" => {
                    control = Some(id);
                    let _ = heard.send(json!({"type": "control_open"}));
                }
                Output::Event(Event::MediaData(_)) => {
                    let _ = heard.send(json!({"type": "picture"}));
                }
                Output::Event(_) => {}
            }
        }
    }
}

/// A server event about Dave.
fn event(e: Value) -> Say {
    Say::Frame(json!({"type": "event", "event": e}))
}

/// A click at picture point `at` (0..1 each way) and `text`, on the control channel.
fn click_and_type(says: &UnboundedSender<Say>, at: [f64; 2], text: &str) {
    for m in [
        json!({"t": "move", "at": at}),
        json!({"t": "down", "at": at, "button": 0}),
        json!({"t": "up", "at": at, "button": 0}),
        json!({"t": "text", "text": text}),
    ] {
        says.send(Say::Control(m)).unwrap();
    }
}

async fn until(heard: &mut UnboundedReceiver<Value>, matches: impl Fn(&Value) -> bool) -> Value {
    tokio::time::timeout(WAIT, async {
        loop {
            let v = heard.recv().await.expect("the fake server runs");
            if matches(&v) {
                return v;
            }
        }
    })
    .await
    .expect("the helper said it")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_the_customer_did_not_allow_in_the_helper_injects_nothing() {
    let (_x, display) = xvfb();
    let window = corner_window(&display);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (says, said) = unbounded_channel();
    let (heard_tx, mut heard) = unbounded_channel();
    tokio::spawn(serve(listener, said, heard_tx));

    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_tandem-helper"));
    c.args([
        "join",
        &base,
        "1234 5678",
        "--terminal",
        "--display",
        &display,
    ]);
    let helper = Proc::spawn(c);
    let mut dave = tokio::task::block_in_place(|| {
        helper.line(|l| l.starts_with("joined the session as \"Dave's computer\""));
        Customer { helper }
    });
    until(&mut heard, |v| v["type"] == "control_open").await;

    // Viewing, asked and allowed: the helper sends pictures, so control has a picture to map to.
    says.send(event(
        json!({"type": "consent_requested", "request": 1, "activity": "view_desktop",
        "customer": DAVE, "by": CAROL, "computer": ME}),
    ))
    .unwrap();
    let asked = tokio::task::block_in_place(|| dave.question());
    assert!(asked.contains("Carol asks to see your screen"), "{asked}");
    dave.answer(true);
    until(&mut heard, |v| {
        v["type"] == "consent_reply" && v["request"] == 1 && v["grant"] == true
    })
    .await;
    says.send(event(
        json!({"type": "activity_started", "activity": "view_desktop", "customer": DAVE}),
    ))
    .unwrap();
    tokio::task::block_in_place(|| dave.shown());
    // A picture arrived: control has something to map onto, so what follows is refused for the
    // customer's answer alone.
    until(&mut heard, |v| v["type"] == "picture").await;

    // The rogue part: control "started" that nobody asked for, and a click and text.
    says.send(event(
        json!({"type": "activity_started", "activity": "control_desktop", "customer": DAVE}),
    ))
    .unwrap();
    click_and_type(&says, [300.0 / 1280.0, 250.0 / 800.0], "rogue");
    // The helper tells the customer about both (in whichever order the WebSocket and the
    // channel brought them).
    let mut told = vec![
        "note: the server says control_desktop started, but you did not allow it here",
        "note: the support representative's input is ignored",
    ];
    tokio::task::block_in_place(|| {
        while !told.is_empty() {
            let line = dave.helper.line(|l| told.iter().any(|t| l.starts_with(t)));
            told.retain(|t| !line.starts_with(t));
        }
    });

    // The customer allows control in the helper: the server's next click and text arrive, and
    // they are the first the window receives.
    says.send(event(
        json!({"type": "consent_requested", "request": 2, "activity": "control_desktop",
        "customer": DAVE, "by": CAROL, "computer": ME}),
    ))
    .unwrap();
    let asked = tokio::task::block_in_place(|| dave.question());
    assert!(
        asked.contains("Carol asks to control your computer"),
        "{asked}"
    );
    dave.answer(true);
    until(&mut heard, |v| {
        v["type"] == "consent_reply" && v["request"] == 2 && v["grant"] == true
    })
    .await;
    click_and_type(&says, [250.0 / 1280.0, 140.0 / 800.0], "ok");
    tokio::task::block_in_place(|| {
        let press = window.event("button_press");
        let (x, y) = (press["x"].as_i64().unwrap(), press["y"].as_i64().unwrap());
        assert!(
            (x - 150).abs() <= 2 && (y - 40).abs() <= 2,
            "the first click the window got: {press}"
        );
        for want in ["o", "k"] {
            let key = window.event("key_press");
            assert_eq!(
                key["text"].as_str(),
                Some(want),
                "the first keys the window got: {key}"
            );
        }
    });
}
