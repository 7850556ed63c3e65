//! `tandem-helper join`: the IO shell around [`crate::session`]. It pairs over HTTP
//! ([`pairing`]), opens the session's WebSocket, drives the WebRTC client
//! ([`tandem_media::client`]) over a UDP socket, runs the screen share on its own thread
//! ([`share`]) and injects what the session machine says through the platform's [`Input`]. It
//! decides nothing: every event goes to the session machine, and its actions are carried out.
//!
//! The customer's side (the window, [`desktop`], or the terminal, [`terminal`]) talks to it
//! through two channels: [`UiEvent`]s in (answers, Stop, Leave), [`UiUpdate`]s out (the
//! question, notices, and the window's whole [`View`]).

pub mod alarm;
pub mod clipboard;
pub mod desktop;
pub mod file_work;
pub mod link;
pub mod pairing;
pub mod restart;
pub mod script_runs;
pub mod share;
pub mod system_report;
pub mod terminal;
pub mod udp;

use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use str0m::bwe::Bitrate;
use str0m::format::Codec;
use str0m::media::Mid;
use str0m::{PacerReason, Reason};
use tandem_media::client::{
    BandwidthConfig, Client, ClientConfig, ClientEvent, EncodedFrame, VideoConfig,
};
use tandem_media::policy::{ChannelKind, TrackPurpose};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::consent::{Answer, Question};
use crate::platform::{Clipboard, Input, PlatformError};
use crate::session::{Action, ClipboardQuestion, Event, Identity, Inject, LogonEvent, Session};
use crate::status::{Connection, Offered, Picking, Roster, State, View};
use alarm::Alarm;
use clipboard::{ClipboardCommand, ClipboardOut};
use share::{Share, ShareCommand, ShareOut};
use udp::Udp;

pub use pairing::Paired;

/// Why `join` could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("{0}")]
    BadServer(String),
    #[error("cannot reach the server: {0}")]
    Unreachable(String),
    #[error("{words}")]
    Refused { code: String, words: String },
    #[error("the server's answer was not understood: {0}")]
    BadAnswer(String),
    #[error("the session's connection failed: {0}")]
    Connection(String),
    #[error("{0}")]
    Platform(#[from] PlatformError),
    #[error("the media connection failed: {0}")]
    Media(String),
}

/// From the customer's side to the helper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UiEvent {
    Answer {
        id: u64,
        answer: Answer,
    },
    /// The answer to the clipboard question `id`: send the copied text or not.
    ClipboardAnswer {
        id: u64,
        send: bool,
    },
    /// D6: the windows the customer picked to show (none: no), in answer to [`UiUpdate::Pick`].
    Picked {
        id: u64,
        windows: Vec<u64>,
    },
    Stop,
    /// The window was closed: Stop, then leave the session.
    Leave,
    /// D4: the CSR takes control of their own computer back from the customer.
    TakeControl,
}

/// From the helper to the customer's side.
#[derive(Debug, Clone, PartialEq)]
pub enum UiUpdate {
    /// Joined the session as this computer.
    Joined {
        name: String,
    },
    /// The question to show now, or none.
    Question(Option<Question>),
    /// Whether the screen is being shown.
    Sharing(bool),
    /// The CSR asks for the text the customer copied: the question to show, or none (answered,
    /// or withdrawn because control ended).
    ClipboardQuestion(Option<ClipboardQuestion>),
    Notice(String),
    /// What the window shows now (sent when it changes).
    View(View),
    /// D6: which windows to show, with the question: (window id, title, application).
    Pick {
        question: Question,
        windows: Vec<(u64, String, String)>,
    },
}

/// str0m's padding (a packet every 5 ms while no media is queued, to keep the path and its
/// bandwidth estimate alive) is served this often at most: with a still screen, each packet was
/// a wake-up of the helper (docs/performance.md, idle CPU). Media, probes and everything else
/// keep str0m's own deadlines, at least [`MIN_TIMER_GAP`] apart.
const PADDING_EVERY: Duration = Duration::from_millis(100);

/// A screen with no new picture for this long is still: str0m is asked for no bandwidth probes.
const STILL_AFTER: Duration = Duration::from_secs(3);

/// While the screen is still the helper wants no more bandwidth than it has, so str0m sends no
/// bandwidth probes (it probes at twice the desired bitrate every 5 s while the sender is
/// application-limited, and not below 5 kbit/s). At the 8 Mbit/s a changing screen may use,
/// with a still screen's few small packets to probe with, each probe was a burst of thousands
/// of 55-byte packets. The estimate itself stays; a new picture asks for the full rate again,
/// and str0m probes up to it at once.
const STILL_DESIRED: Bitrate = Bitrate::ZERO;

/// Whether the screen is still, for the bandwidth probing (see [`STILL_DESIRED`]).
struct Still {
    fresh_at: Instant,
    lowered: bool,
}

impl Still {
    fn fresh(&mut self, client: &mut Client) {
        self.fresh_at = Instant::now();
        if self.lowered {
            self.lowered = false;
            client.set_desired_bitrate(BandwidthConfig::screen_share().desired);
        }
    }

    /// Lowers the desired bitrate once the screen has been still long enough; when to look
    /// again.
    fn look(&mut self, client: &mut Client) -> Option<Instant> {
        if self.lowered {
            return None;
        }
        let at = self.fresh_at + STILL_AFTER;
        if Instant::now() < at {
            return Some(at);
        }
        self.lowered = true;
        client.set_desired_bitrate(STILL_DESIRED);
        None
    }
}

/// str0m's deadlines are served at most this often (what tokio's timer did): served closer, a
/// bandwidth probe's packets come out tiny (a probe packet's size is its rate times the time
/// since the last), thousands of 55-byte packets in a burst every 5 s.
const MIN_TIMER_GAP: Duration = Duration::from_millis(1);

/// When str0m's deadlines were last served (see [`PADDING_EVERY`] and [`MIN_TIMER_GAP`]).
struct Served {
    any: Instant,
    padding: Instant,
    /// The last was padding: str0m's "immediate" deadline after it is served at once (no probe
    /// packet's size depends on it), not as a wake-up of its own.
    was_padding: bool,
}

/// str0m's next deadline, put off for the gaps above.
fn next_deadline(client: &Client, served: &Served) -> Instant {
    let deadline = client.poll_timeout();
    match client.timeout_reason() {
        Some(Reason::Pacer(PacerReason::Immediate)) if served.was_padding => deadline,
        Some(Reason::Pacer(PacerReason::Padding)) => deadline
            .max(served.any + MIN_TIMER_GAP)
            .max(served.padding + PADDING_EVERY),
        _ => deadline.max(served.any + MIN_TIMER_GAP),
    }
}

fn serve_timeout(client: &mut Client, served: &mut Served) -> Result<(), JoinError> {
    let now = Instant::now();
    served.any = now;
    served.was_padding = client.next_is_padding();
    if served.was_padding {
        served.padding = now;
    }
    client
        .handle_timeout(now)
        .map_err(|e| JoinError::Media(e.to_string()))
}

/// What `join` needs from the computer.
pub struct Platform {
    pub input: Box<dyn Input + Send>,
    /// Starts the share thread with the platform's capture (it opens its own connection).
    pub start_share: Box<dyn FnOnce(UnboundedSender<ShareOut>) -> std::io::Result<Share> + Send>,
    /// The clipboard (opened with [`clipboard::limits`]), or none where the platform has none:
    /// the CSR's requests are then answered `failed`.
    pub clipboard: Option<Box<dyn Clipboard + Send>>,
    /// The monitors as the display server has them now (SPEC M1, the displays section).
    pub monitors: std::sync::Arc<dyn Fn() -> Vec<crate::platform::Monitor> + Send + Sync>,
    /// M5: the command line that starts the helper again after a restart (`rejoin`).
    pub relaunch: Vec<String>,
    /// M4: the sign-in service and how to show and control the display it starts; none where
    /// the platform has neither (the helper then does not say it `can` `login_as_user`).
    pub logon: Option<LogonPlatform>,
}

/// M4: what signing in as another user needs from the computer.
pub struct LogonPlatform {
    /// tandem-helper-logon's socket.
    pub socket: std::path::PathBuf,
    /// Opens the other user's display: a share of it (sending on the channel, its times counted
    /// from the instant given) and input into it.
    #[allow(clippy::type_complexity)]
    pub open: Box<
        dyn Fn(
                &crate::logon::client::Started,
                UnboundedSender<ShareOut>,
                Instant,
            ) -> Result<(Share, Box<dyn Input + Send>), String>
            + Send,
    >,
}

/// M4: from the sign-in's own threads to the connection.
enum LogonNews {
    Answer(Result<(crate::logon::client::Started, crate::logon::client::Logon), String>),
    /// The service said the session ended by itself (`None`: it was ended from here).
    Ended(Option<crate::logon::proto::EndReason>),
}

/// M4: the other user's session while it is what is shown: its share and its input.
struct Other {
    share: Share,
    input: Box<dyn Input + Send>,
    logon: crate::logon::client::Logon,
}

/// Joins `server` with `code` and runs until the session is over for this computer; the reason,
/// in words.
pub async fn run(
    server: &str,
    credential: &pairing::Credential,
    platform: Platform,
    ui_in: UnboundedReceiver<UiEvent>,
    ui_out: UnboundedSender<UiUpdate>,
) -> Result<String, JoinError> {
    let base = pairing::base_url(server)?;
    let paired = pairing::redeem(&base, credential).await?;
    run_paired(&base, paired, platform, ui_in, ui_out).await
}

/// Runs in the session the helper paired with, until it is over for this computer.
pub async fn run_paired(
    base: &reqwest::Url,
    paired: Paired,
    platform: Platform,
    mut ui_in: UnboundedReceiver<UiEvent>,
    ui_out: UnboundedSender<UiUpdate>,
) -> Result<String, JoinError> {
    let base = base.clone();
    // M3: what a helper that stopped while a script ran left in the temporary folder.
    crate::script_runner::sweep_left_behind();
    // M5: back after a restart: the customer's page, which was perhaps on this computer.
    if let Some(token) = &paired.customer_token
        && let Ok(mut page) = base.join("/join")
    {
        page.set_fragment(Some(&format!("resume={token}")));
        if let Err(why) = restart::open_page(page.as_str()) {
            let _ = ui_out.send(UiUpdate::Notice(format!(
                "your support page could not be opened again ({why}); open the link you were sent"
            )));
        }
    }
    let _ = ui_out.send(UiUpdate::Joined {
        name: paired.name.clone(),
    });
    let mut ws_url = base.clone();
    let scheme = if base.scheme() == "https" {
        "wss"
    } else {
        "ws"
    };
    ws_url
        .set_scheme(scheme)
        .map_err(|()| JoinError::BadServer(base.to_string()))?;
    ws_url.set_path("/ws");
    ws_url.set_query(Some(&format!("token={}", paired.token)));
    let (ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
        .await
        .map_err(|e| JoinError::Connection(e.to_string()))?;
    let mut ws = link::Link::new(ws_url.to_string(), ws);

    let udp = bind_udp(&base).await?;
    let addr = udp
        .local_addr()
        .map_err(|e| JoinError::Media(e.to_string()))?;
    let config = ClientConfig {
        // The helper encodes H.264 only: offering VP8 too would make the server pick VP8.
        video_codecs: vec![Codec::H264],
        ..ClientConfig::helper()
    };
    let video = vec![VideoConfig::from_caller(TrackPurpose::Screen)];
    let (mut client, offer, purposes) = Client::new(Instant::now(), addr, config, video)
        .map_err(|e| JoinError::Media(e.to_string()))?;
    let mid: Mid = client
        .video_tracks()
        .next()
        .map(|(m, _)| m)
        .ok_or_else(|| JoinError::Media("no video track".into()))?;
    ws.send(json!({"type": "media_offer", "ref": 1, "sdp": offer, "video": purposes}))
        .await;

    let (pictures_tx, mut pictures) = unbounded_channel();
    let share_tx = (platform.start_share)(pictures_tx.clone())
        .map_err(|e| JoinError::Connection(e.to_string()))?;
    // M4: the sign-in as another user, its news, and its display while it is shown; the
    // customer's share as last asked for, to give back when it ends.
    let logon_platform = platform.logon;
    let (logon_tx, mut logon_news) = unbounded_channel::<LogonNews>();
    let mut other: Option<Other> = None;
    let mut opened_other: Option<Other> = None;
    let mut last_share: Option<ShareCommand> = None;
    let mut input = platform.input;
    let monitors = platform.monitors;
    let relaunch = platform.relaunch;
    // M1: a reading of the system information is under way.
    let gathering = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // M3: the run under way, to stop it when it ends here.
    let mut scripts_cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>> = None;
    // F2: the file operations started, by number, with their stop flags.
    let mut files_running: std::collections::BTreeMap<
        u64,
        std::sync::Arc<std::sync::atomic::AtomicBool>,
    > = std::collections::BTreeMap::new();
    let files_link = file_work::Link {
        base: base.clone(),
        session: paired.session.clone(),
        token: paired.token.clone(),
        ui: ui_out.clone(),
    };
    let (clipboard_tx, clipboard_rx) = std::sync::mpsc::channel();
    let (clipboard_out_tx, mut clipboard_out) = unbounded_channel();
    if let Some(c) = platform.clipboard {
        std::thread::Builder::new()
            .name("clipboard".into())
            .spawn(move || clipboard::run(c, clipboard_rx, clipboard_out_tx))
            .map_err(|e| JoinError::Connection(e.to_string()))?;
    } else {
        drop(clipboard_rx);
    }

    let mut session = Session::new(Identity {
        me: paired.me.clone(),
        customer: paired.customer.clone(),
    });
    let server = base.host_str().unwrap_or_default().to_owned();
    let connected = Connection::Connected {
        server: server.clone(),
        computer: paired.name.clone(),
    };
    let mut connection = connected.clone();
    let mut roster = Roster::default();
    let mut shown: Option<View> = None;
    // What the window shows besides the consent record: the D6 pick (asked: listing, then the
    // windows offered) and the clipboard question, as the session's actions last said.
    let mut listing = false;
    let mut pick: Option<(Question, Vec<Offered>)> = None;
    let mut clipboard_asked: Option<ClipboardQuestion> = None;
    let mut leave = false;
    let timing = std::env::var_os(share::TIMING_ENV).is_some();
    let mut buf = vec![0u8; 65_536];
    let mut alarm = Alarm::new().map_err(|e| JoinError::Connection(format!("the timer: {e}")))?;
    let mut still = Still {
        fresh_at: Instant::now(),
        lowered: false,
    };
    let mut served = Served {
        any: Instant::now(),
        padding: Instant::now(),
        was_padding: false,
    };
    loop {
        let view = View::of(State {
            connection: &connection,
            csrs: &roster.names(),
            consent: session.consent(),
            controlling: None,
            picking: match (&pick, listing) {
                (Some((q, windows)), _) => Picking::Shown(q, windows),
                (None, true) => Picking::Listing,
                (None, false) => Picking::No,
            },
            clipboard: clipboard_asked.as_ref(),
            given: session.given(),
            signed_in_as: session.signed_in(),
        });
        if shown.as_ref() != Some(&view) {
            let _ = ui_out.send(UiUpdate::View(view.clone()));
            shown = Some(view);
        }
        if leave {
            ws.close().await;
            return Ok("you closed Tandem Helper".into());
        }
        let mut deadline = next_deadline(&client, &served);
        if let Some(at) = still.look(&mut client) {
            deadline = deadline.min(at);
        }
        if let Err(e) = alarm.set(deadline) {
            return Err(JoinError::Connection(format!("the timer: {e}")));
        }
        let mut events = Vec::new();
        tokio::select! {
            got = ws.next() => match got {
                link::Got::Frame(text) | link::Got::Back(text) => {
                    if ws.is_up() && connection != connected {
                        connection = connected.clone();
                        let _ = ui_out.send(UiUpdate::Notice("connected to the session again".into()));
                    }
                    if let Ok(frame) = serde_json::from_str::<Value>(&text) {
                        roster.server(&frame);
                    }
                    events.push(Event::Server(text));
                }
                link::Got::Lost => {
                    connection = Connection::Reconnecting { server: server.clone() };
                    let _ = ui_out.send(UiUpdate::Notice(
                        "the connection to the session was lost; connecting again".into(),
                    ));
                }
                link::Got::Gone(why) => {
                    return Ok(format!("the connection to the session was lost: {why}"));
                }
            },
            got = udp.recv_from(&mut buf) => if let Ok((n, from)) = got {
                let _ = client.handle_receive(Instant::now(), from, &buf[..n]);
            },
            Ok(()) = alarm.rung() => serve_timeout(&mut client, &mut served)?,
            Some(out) = pictures.recv() => match out {
                ShareOut::Picture { unit, fresh, at, picture, shown } => {
                    if fresh {
                        still.fresh(&mut client);
                    }
                    let frame = EncodedFrame {
                        codec: Codec::H264,
                        rtp_time: (at.as_micros() * 9 / 100) as u64,
                        data: unit.data,
                    };
                    // Before the connection is up there is no one to send to: the pacing sends
                    // again, and a keyframe is asked for when a viewer arrives.
                    if timing {
                        client.time_sends();
                    }
                    let _ = client.send_frame(Instant::now(), mid, frame);
                    events.push(Event::Captured { picture, shown });
                }
                ShareOut::Windows(list) => events.push(Event::Windows(list)),
                ShareOut::Placed(placement) => events.push(Event::Placed(placement)),
                ShareOut::Failed(why) => {
                    let _ = ui_out.send(UiUpdate::Notice(format!("the screen cannot be shown: {why}")));
                }
            },
            Some(ui) = ui_in.recv() => events.push(match ui {
                UiEvent::Answer { id, answer } => Event::Answer { id, answer },
                UiEvent::ClipboardAnswer { id, send } => Event::ClipboardAnswer { id, send },
                UiEvent::Picked { id, windows } => {
                    (pick, listing) = (None, false);
                    Event::Picked { id, windows }
                }
                UiEvent::Stop => Event::Stop,
                UiEvent::Leave => {
                    leave = true;
                    Event::Stop
                }
                UiEvent::TakeControl => Event::TakeControl,
            }),
            Some(news) = logon_news.recv() => match news {
                LogonNews::Answer(Ok((started, logon))) => {
                    let opened = logon_platform
                        .as_ref()
                        .ok_or_else(|| "no display platform".to_owned())
                        .and_then(|p| (p.open)(&started, pictures_tx.clone(), share_tx.origin()));
                    match opened {
                        Ok((share, input)) => {
                            if let Ok(watcher) = logon.watcher() {
                                let tx = logon_tx.clone();
                                std::thread::spawn(move || {
                                    let _ = tx.send(LogonNews::Ended(watcher.ended()));
                                });
                            }
                            // Shown once the session machine says so (Action::ShowLogon).
                            opened_other = Some(Other { share, input, logon });
                            events.push(Event::Logon(LogonEvent::Started));
                        }
                        Err(why) => {
                            logon.end();
                            let _ = ui_out.send(UiUpdate::Notice(format!(
                                "the other user's screen could not be shown: {why}"
                            )));
                            events.push(Event::Logon(LogonEvent::Refused("failed".into())));
                        }
                    }
                }
                LogonNews::Answer(Err(code)) => events.push(Event::Logon(LogonEvent::Refused(code))),
                LogonNews::Ended(Some(reason)) if other.is_some() || opened_other.is_some() => {
                    events.push(Event::Logon(LogonEvent::Ended(reason.code().into())));
                }
                LogonNews::Ended(_) => {}
            },
            Some(out) = clipboard_out.recv() => match out {
                ClipboardOut::Read(reply) => events.push(Event::ClipboardRead(reply)),
                ClipboardOut::SetFailed(why) => {
                    let _ = ui_out.send(UiUpdate::Notice(format!("the clipboard was not set: {why}")));
                }
            },
        }
        while let Some(t) = client.poll_transmit() {
            let _ = udp.send_to(&t.contents, t.destination);
        }
        while let Some(left) = client.poll_frame_left() {
            let estimate = client.bitrate_estimate().map_or(0, |b| b.as_u64() / 1000);
            eprintln!(
                "timing sent: {} bytes held {:.1} ms by the pacer, estimate {estimate} kbit/s",
                left.bytes,
                left.held.as_secs_f64() * 1000.0
            );
        }
        while let Some(e) = client.poll_event() {
            match e {
                ClientEvent::KeyframeRequest { .. } => {
                    other
                        .as_ref()
                        .map_or(&share_tx, |o| &o.share)
                        .send(ShareCommand::Keyframe);
                }
                ClientEvent::BitrateEstimate(b) => {
                    share_tx.send(ShareCommand::Bandwidth(b.as_u64()));
                    if let Some(o) = &other {
                        o.share.send(ShareCommand::Bandwidth(b.as_u64()));
                    }
                }
                ClientEvent::ChannelMessage(m) => events.push(Event::Channel {
                    label: m.label,
                    data: m.data,
                }),
                ClientEvent::Failed => return Err(JoinError::Media("ICE or DTLS gave up".into())),
                _ => {}
            }
        }
        let mut events = std::collections::VecDeque::from(events);
        while let Some(event) = events.pop_front() {
            for action in session.handle(event) {
                match action {
                    Action::Send(frame) => ws.send(frame).await,
                    Action::Show(q) => {
                        (pick, listing) = (None, false);
                        let _ = ui_out.send(UiUpdate::Question(q));
                    }
                    // While M4's other display is shown, the customer's share waits for its end.
                    Action::StartShare(source) => {
                        last_share = Some(ShareCommand::Start(source));
                        if other.is_none() {
                            share_tx.send(ShareCommand::Start(source));
                        }
                        let _ = ui_out.send(UiUpdate::Sharing(true));
                    }
                    Action::ShareWindows(windows) => {
                        last_share = Some(ShareCommand::Windows(windows.clone()));
                        if other.is_none() {
                            share_tx.send(ShareCommand::Windows(windows));
                        }
                        let _ = ui_out.send(UiUpdate::Sharing(true));
                    }
                    Action::ListWindows => {
                        listing = true;
                        share_tx.send(ShareCommand::ListWindows);
                    }
                    Action::Pick { question, windows } => {
                        let windows: Vec<Offered> = windows
                            .into_iter()
                            .map(|w| (w.id, w.title, w.app))
                            .collect();
                        pick = Some((question.clone(), windows.clone()));
                        listing = false;
                        let _ = ui_out.send(UiUpdate::Pick { question, windows });
                    }
                    Action::StopShare => {
                        last_share = None;
                        share_tx.send(ShareCommand::Stop);
                        let _ = ui_out.send(UiUpdate::Sharing(false));
                    }
                    Action::Inject(i) => {
                        let into = match &mut other {
                            Some(o) => o.input.as_mut(),
                            None => input.as_mut(),
                        };
                        if let Err(e) = inject(into, i) {
                            let _ =
                                ui_out.send(UiUpdate::Notice(format!("input not injected: {e}")));
                        }
                    }
                    Action::Media(frame) => {
                        if let Some(answer) = media(&mut client, &frame)? {
                            ws.send(answer).await;
                        }
                    }
                    Action::SetClipboard(text) => {
                        let _ = clipboard_tx.send(ClipboardCommand::Set(text));
                    }
                    Action::ReadClipboard => {
                        if clipboard_tx.send(ClipboardCommand::Get).is_err() {
                            let failed = crate::control::ClipboardReply::Failed;
                            events.push_back(Event::ClipboardRead(failed));
                        }
                    }
                    Action::AskClipboard(q) => {
                        clipboard_asked.clone_from(&q);
                        let _ = ui_out.send(UiUpdate::ClipboardQuestion(q));
                    }
                    Action::Control(data) => {
                        client.send_channel(Instant::now(), ChannelKind::Control, &data);
                    }
                    Action::Sampling(s) => {
                        share_tx.send(ShareCommand::Sampling(s));
                        if let Some(o) = &other {
                            o.share.send(ShareCommand::Sampling(s));
                        }
                    }
                    Action::StartLogon { user, password } => match &logon_platform {
                        Some(p) => {
                            let socket = p.socket.clone();
                            let tx = logon_tx.clone();
                            let size = logon_size(&monitors);
                            std::thread::spawn(move || {
                                let answer =
                                    crate::logon::client::start(&socket, &user, &password.0, size)
                                        .map_err(|e| e.code().to_owned());
                                drop(password);
                                let _ = tx.send(LogonNews::Answer(answer));
                            });
                        }
                        None => {
                            events.push_back(Event::Logon(LogonEvent::Refused("failed".into())))
                        }
                    },
                    Action::ShowLogon => {
                        if let Some(o) = opened_other.take() {
                            share_tx.send(ShareCommand::Stop);
                            o.share
                                .send(ShareCommand::Start(crate::platform::Source::Screen));
                            other = Some(o);
                        }
                    }
                    Action::EndLogon => {
                        if let Some(o) = opened_other.take() {
                            o.logon.end();
                        }
                        if let Some(o) = other.take() {
                            o.logon.end();
                            drop(o.share);
                            drop(o.input);
                            if let Some(c) = &last_share {
                                share_tx.send(c.clone());
                            }
                        }
                    }
                    Action::Notice(n) => {
                        let _ = ui_out.send(UiUpdate::Notice(n));
                    }
                    Action::Leave(reason) => {
                        ws.close().await;
                        return Ok(reason);
                    }
                    // One reading at a time: refreshes while one is under way add nothing.
                    Action::GatherSystemInfo
                        if gathering.swap(true, std::sync::atomic::Ordering::AcqRel) => {}
                    Action::GatherSystemInfo => {
                        let _ = ui_out.send(UiUpdate::Notice(
                            "reading this computer's information for the support representative"
                                .into(),
                        ));
                        tokio::spawn(system_report::send(
                            base.clone(),
                            paired.session.clone(),
                            paired.token.clone(),
                            monitors.clone(),
                            ui_out.clone(),
                            gathering.clone(),
                        ));
                    }
                    Action::StopScripts => {
                        if let Some(c) = scripts_cancel.take() {
                            c.store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                    Action::RunScripts { request, scripts } => {
                        let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
                        if let Some(old) = scripts_cancel.replace(cancel.clone()) {
                            old.store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                        tokio::spawn(script_runs::run_all(
                            base.clone(),
                            paired.session.clone(),
                            paired.token.clone(),
                            request,
                            scripts,
                            ui_out.clone(),
                            cancel,
                        ));
                    }
                    Action::Files { op, request } => {
                        let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
                        files_running.retain(|_, c| std::sync::Arc::strong_count(c) > 1);
                        files_running.insert(op, cancel.clone());
                        file_work::start(files_link.clone(), op, request, cancel);
                    }
                    Action::FilesRefused {
                        op,
                        why,
                        by_customer,
                    } => {
                        file_work::refuse(files_link.clone(), op, why, by_customer);
                    }
                    Action::CancelFiles(target) => {
                        let stop = |c: &std::sync::Arc<std::sync::atomic::AtomicBool>| {
                            c.store(true, std::sync::atomic::Ordering::Relaxed);
                        };
                        match target {
                            Some(t) => files_running.get(&t).into_iter().for_each(stop),
                            None => std::mem::take(&mut files_running).values().for_each(stop),
                        }
                    }
                    Action::Restart => match restart_now(&base, &paired, &relaunch).await {
                        Ok(()) => {
                            ws.send(json!({"type": "leave"})).await;
                            match restart::reboot() {
                                Ok(()) => {
                                    ws.close().await;
                                    return Ok("this computer is restarting; Tandem Helper rejoins the session by itself afterwards".into());
                                }
                                Err(why) => {
                                    let _ = restart::take();
                                    ws.close().await;
                                    return Ok(format!(
                                        "the computer could not be restarted ({why}); run Tandem Helper again to rejoin"
                                    ));
                                }
                            }
                        }
                        Err(why) => {
                            let _ = ui_out.send(UiUpdate::Notice(format!(
                                "the computer is not restarted: {why}"
                            )));
                        }
                    },
                    Action::Reconnect => {
                        ws.lost();
                        connection = Connection::Reconnecting {
                            server: server.clone(),
                        };
                    }
                }
            }
        }
    }
}

/// M4: the other user's display is as large as the customer's first monitor (what the CSR's
/// view is laid out for), within what the service makes.
fn logon_size(
    monitors: &std::sync::Arc<dyn Fn() -> Vec<crate::platform::Monitor> + Send + Sync>,
) -> (u16, u16) {
    use crate::logon::proto::{MAX_SIZE, MIN_SIZE};
    let (w, h) = monitors()
        .first()
        .map_or((1280, 800), |m| (m.rect.width, m.rect.height));
    let clamp = |v: u32, lo: u16, hi: u16| v.clamp(u32::from(lo), u32::from(hi)) as u16;
    (
        clamp(w, MIN_SIZE.0, MAX_SIZE.0),
        clamp(h, MIN_SIZE.1, MAX_SIZE.1),
    )
}

/// M5: the rejoin ticket taken and kept, and the autostart entry in place.
async fn restart_now(
    base: &reqwest::Url,
    paired: &Paired,
    relaunch: &[String],
) -> Result<(), String> {
    let url = base
        .join(&format!("/api/sessions/{}/rejoin-ticket", paired.session))
        .map_err(|e| e.to_string())?;
    let res = reqwest::Client::new()
        .post(url)
        .bearer_auth(&paired.token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = res.status();
    let body: Value = res.json().await.unwrap_or_default();
    if !status.is_success() {
        return Err(body["detail"]
            .as_str()
            .map_or_else(|| format!("the server answered {status}"), str::to_owned));
    }
    let saved = restart::Saved {
        server: base.to_string(),
        ticket: body["ticket"].as_str().unwrap_or_default().to_owned(),
    };
    restart::arrange(&saved, relaunch).map_err(|e| format!("the rejoin could not be arranged: {e}"))
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The server's media frames, for the WebRTC client; the answer to send back, if any.
fn media(client: &mut Client, frame: &Value) -> Result<Option<Value>, JoinError> {
    let now = Instant::now();
    let sdp = frame["sdp"].as_str().unwrap_or_default();
    match frame["type"].as_str() {
        Some("media_answer") => {
            let void = frame["void_offers"].as_u64().unwrap_or(0);
            client
                .accept_answer(now, sdp, void)
                .map_err(|e| JoinError::Media(e.to_string()))?;
            Ok(None)
        }
        Some("media_offer") => {
            let Some(number) = frame["offer"].as_u64() else {
                return Ok(None);
            };
            match client.accept_offer(now, number, sdp) {
                Ok(Some(answer)) => Ok(Some(
                    json!({"type": "media_answer", "offer": number, "sdp": answer}),
                )),
                Ok(None) => Ok(None),
                Err(e) => Err(JoinError::Media(e.to_string())),
            }
        }
        _ => Err(JoinError::Media(format!(
            "the server dropped the media connection ({})",
            frame["reason"].as_str().unwrap_or("no reason")
        ))),
    }
}

fn inject(input: &mut dyn Input, i: Inject) -> Result<(), PlatformError> {
    match i {
        Inject::Move(x, y) => input.pointer_move(x, y),
        Inject::Button {
            at,
            button,
            pressed,
        } => {
            input.pointer_move(at.0, at.1)?;
            input.button(button, pressed)
        }
        Inject::Wheel { at, dx, dy } => {
            input.pointer_move(at.0, at.1)?;
            input.wheel(dx, dy)
        }
        Inject::Key(key, mods) => input.key(key, mods),
        Inject::KeyState(key, pressed) => input.key_state(key, pressed),
        Inject::Text(text) => input.text(&text),
        Inject::ButtonUp(button) => input.button(button, false),
        Inject::Focus(window) => input.raise_and_focus(window),
        Inject::InWindows(windows, inner) => {
            if input.focus_within(&windows)? {
                inject(input, *inner)
            } else {
                Err(PlatformError::Protocol(
                    "keys go only to the windows you chose, and none of them has the focus".into(),
                ))
            }
        }
    }
}

/// A UDP socket on the address this computer reaches the server from (the server is ICE-lite:
/// our host candidate must be one it can send to).
async fn bind_udp(base: &reqwest::Url) -> Result<Udp, JoinError> {
    let host = base
        .host_str()
        .unwrap_or("localhost")
        .trim_matches(['[', ']']);
    let port = base.port_or_known_default().unwrap_or(443);
    let server: SocketAddr = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| JoinError::Unreachable(e.to_string()))?
        .next()
        .ok_or_else(|| JoinError::Unreachable(format!("{host} has no address")))?;
    let unspecified: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().expect("an address")
    } else {
        "[::]:0".parse().expect("an address")
    };
    let probe = StdUdpSocket::bind(unspecified).map_err(|e| JoinError::Media(e.to_string()))?;
    probe
        .connect(server)
        .map_err(|e| JoinError::Unreachable(e.to_string()))?;
    let local = probe
        .local_addr()
        .map_err(|e| JoinError::Media(e.to_string()))?;
    Udp::bind(SocketAddr::new(local.ip(), 0)).map_err(|e| JoinError::Media(e.to_string()))
}
