//! The helper in a session, as a sans-IO state machine (issue 16, items 2, 4, 6): what the server
//! says on the WebSocket, what arrives on the `control` channel, the customer's answers and Stop,
//! and where the captured picture is, go in; what to do comes out ([`Action`]): frames for the
//! WebSocket, the question to show, the share to start or stop, input to inject.
//!
//! The server is not trusted with the computer. A question it relays is shown to the customer;
//! only the customer's answer, kept in [`Consent`], starts a share or lets control through. A
//! share the server says started, or a control message it relays, does nothing unless the
//! customer's own record allows it. The IO shell (crate::connection) moves the bytes.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::consent::{Activity, Answer, Asked, Consent, Decision, Question};
use crate::control::{self, ClipboardReply, Control, Point};
use crate::file_paths::FilesRequest;
use crate::key::{Key, Modifiers};
use crate::picture::tiles::Placement;
use crate::picture::{PictureSize, Rect, picture_to_screen};
use crate::platform::{AppWindow, Button, Source};

/// Who the helper is in the session, from the join answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The computer's participant id.
    pub me: String,
    /// The customer whose computer this is.
    pub customer: String,
}

/// What happens to the session machine.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A text frame from the server's WebSocket.
    Server(String),
    /// A message on a data channel.
    Channel { label: String, data: Vec<u8> },
    /// The customer answered question `id` in the helper's window (or terminal).
    Answer { id: u64, answer: Answer },
    /// The customer pressed Stop: viewing and control end at once.
    Stop,
    /// D4 (the CSR's computer): the CSR takes control back from the customer given it.
    TakeControl,
    /// A picture of the shown source was sent: its size as the CSR sees it, and where the source
    /// was on the screen. Control maps picture points with these.
    Captured { picture: PictureSize, shown: Rect },
    /// D6: the application windows open now, asked for with [`Action::ListWindows`].
    Windows(Vec<AppWindow>),
    /// D6: the customer picked these windows (by [`AppWindow::id`]) in answer to the pick
    /// question `id`; none picked is a no.
    Picked { id: u64, windows: Vec<u64> },
    /// D6: where the chosen windows are in the picture and on the screen now (sent again when a
    /// window moves, resizes or closes). No tile left: every chosen window closed.
    Placed(Placement),
    /// The customer answered the clipboard question `id`: send the copied text (`true`) or not.
    ClipboardAnswer { id: u64, send: bool },
    /// What the clipboard gave after the customer's yes (the shell read it).
    ClipboardRead(ClipboardReply),
    /// M4: how the sign-in asked with [`Action::StartLogon`] went, or that its session ended.
    Logon(LogonEvent),
}

/// M4: what the sign-in service said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogonEvent {
    /// The other user's session runs, and its display is what the share sends now.
    Started,
    /// Not started: the service's code (`auth_failed`, `not_allowed`, `busy`, `failed`...).
    Refused(String),
    /// The user signed out (`logged_out`) or their display stopped (`failed`).
    Ended(String),
}

/// A password on its way to the sign-in service: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<hidden>")
    }
}

/// The CSR asks for the customer's clipboard text; the helper asks the customer first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClipboardQuestion {
    pub id: u64,
    /// Who asks (the CSR who controls).
    pub csr: String,
}

impl ClipboardQuestion {
    /// The question, in the customer's words.
    pub fn words(&self) -> String {
        format!("{} asks for the text you copied: send it?", self.csr)
    }
}

/// Input to inject, in screen pixels.
#[derive(Debug, Clone, PartialEq)]
pub enum Inject {
    Move(i32, i32),
    Button {
        at: (i32, i32),
        button: Button,
        pressed: bool,
    },
    Wheel {
        at: (i32, i32),
        dx: i32,
        dy: i32,
    },
    /// A press and release with the modifiers held around it.
    Key(Key, Modifiers),
    /// One key pressed or released, held across messages.
    KeyState(Key, bool),
    Text(String),
    /// A button released where the pointer is (not moved: it may be outside the chosen windows).
    ButtonUp(Button),
    /// D6: raise and focus this chosen window (a press in it), so that the keys after it go there.
    Focus(u64),
    /// D6: inject this key or text only if the keyboard's focus is in one of these windows.
    InWindows(Vec<u64>, Box<Inject>),
}

/// M3: one script the CSR proposes, as the server announced it: what the customer is shown,
/// and the only content the helper will run under that name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ScriptItem {
    pub script: String,
    pub name: String,
    pub sha256: String,
    pub size: u64,
    #[serde(default)]
    pub input: Option<String>,
    #[serde(default)]
    pub input_sha256: Option<String>,
}

impl ScriptItem {
    /// One line of the question.
    fn line(&self, n: usize) -> String {
        let input = self
            .input
            .as_ref()
            .map(|i| {
                let sha = self.input_sha256.as_deref().unwrap_or("");
                format!(
                    ", with the input file {i} (SHA-256 {})",
                    sha.get(..16).unwrap_or(sha)
                )
            })
            .unwrap_or_default();
        format!(
            "{n}. {} ({} bytes{input}; SHA-256 {})",
            self.name,
            self.size,
            self.sha256.get(..16).unwrap_or(&self.sha256)
        )
    }
}

/// Most proposals remembered while their question waits (a rogue server cannot fill memory).
const MAX_PROPOSALS: usize = 8;

/// What the shell does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send this frame on the WebSocket.
    Send(Value),
    /// Show this question now, or none (the last one was answered or withdrawn).
    Show(Option<Question>),
    /// Capture and send `source`.
    StartShare(Source),
    /// D6: capture and send these windows only (the customer's pick), in one picture.
    ShareWindows(Vec<u64>),
    /// D6: list the application windows (answered with [`Event::Windows`]).
    ListWindows,
    /// D6: ask the customer which windows to show, with the consent question.
    Pick {
        question: Question,
        windows: Vec<AppWindow>,
    },
    StopShare,
    Inject(Inject),
    /// Put this text on the clipboard (the CSR sent it while the customer allows control).
    SetClipboard(String),
    /// Show this clipboard question now, or none (answered, or withdrawn when control ended).
    AskClipboard(Option<ClipboardQuestion>),
    /// The customer said yes: read the clipboard and hand it back as [`Event::ClipboardRead`].
    ReadClipboard,
    /// Send this message to the CSR on the `control` channel (the clipboard answer).
    Control(Vec<u8>),
    /// A media frame (`media_answer`, `media_offer`, `media_closed`) for the WebRTC client.
    Media(Value),
    /// D11: the CSR chose standard (`false`) or sampling (`true`).
    Sampling(bool),
    /// Something the customer should read (a refusal, why the helper leaves).
    Notice(String),
    /// The session is over for the helper: close and exit, with the reason.
    Leave(String),
    /// The server asks this computer to connect again with the same token.
    Reconnect,
    /// M1: read this computer's system information and send it to the session.
    GatherSystemInfo,
    /// M5: take a rejoin ticket, arrange to start again after the restart, and restart.
    Restart,
    /// M3: the run ended (stopped, Stop, the session over): kill the script running, run no
    /// more.
    StopScripts,
    /// M3: run these scripts of run `request`, in order, each only if its content has the
    /// SHA-256 the customer allowed.
    RunScripts {
        request: u64,
        scripts: Vec<ScriptItem>,
    },
    /// F2: do file operation `op`; the customer allowed it (or shares their screen).
    Files {
        op: u64,
        request: FilesRequest,
    },
    /// F2: tell the server operation `op` is not done, and why.
    FilesRefused {
        op: u64,
        why: String,
        by_customer: bool,
    },
    /// F2: stop this transfer (`None`: every one) and remove what it wrote.
    CancelFiles(Option<u64>),
    /// M4: ask the sign-in service for `user`'s session (answered with [`Event::Logon`]).
    StartLogon {
        user: String,
        password: Password,
    },
    /// M4: the other user's session started: show and control its display from now on.
    ShowLogon,
    /// M4: the other user's session ends here: back to the customer's display.
    EndLogon,
}

/// M4: the other user's session, as far as the helper knows.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Logon {
    Idle,
    Starting { user: String },
    Running { user: String },
}

/// The helper's side of one session.
#[derive(Debug)]
pub struct Session {
    id: Identity,
    consent: Consent,
    /// Participant ids to names, so a question can say who asks.
    names: BTreeMap<String, String>,
    /// The server's consent request number for each activity asked in this window.
    requests: BTreeMap<Activity, u64>,
    /// The activities the server says run on our customer.
    running: BTreeSet<Activity>,
    sharing: bool,
    /// D6: the share is of the chosen windows (else of the screen).
    windows_shared: bool,
    /// D6: the windows the customer chose to show (empty: none chosen, nothing of an application
    /// may be shown). Only the customer's pick sets it.
    chosen: Vec<u64>,
    /// D6: the pick question shown or waiting for the window list, and the windows offered in it.
    pick: Option<(Question, Vec<AppWindow>)>,
    /// Pick questions asked at start (the customer had allowed all) get ids of their own.
    next_pick_id: u64,
    /// D6: where the chosen windows are, while they are shared.
    placement: Option<Placement>,
    /// The last picture sent and where it was: control needs both.
    picture: Option<(PictureSize, Rect)>,
    /// Buttons and keys the CSR holds down, released on Stop, end of control and `release_all`.
    held_buttons: BTreeSet<ButtonKey>,
    held_keys: Vec<Key>,
    /// Control messages refused, by code (the window shows a count; tests read it).
    refused: BTreeMap<&'static str, u64>,
    /// The customer was told that the CSR's input is ignored (once until control is allowed
    /// again, not once a mouse move).
    told_ignored: bool,
    /// Who asked for control, for the clipboard question.
    controller: Option<String>,
    /// The clipboard question shown, one at a time; and whether a yes is being read.
    clipboard_asked: Option<ClipboardQuestion>,
    clipboard_reading: bool,
    next_clipboard_id: u64,
    /// M3: the scripts proposed per consent request, as the server announced them.
    proposals: BTreeMap<u64, Vec<ScriptItem>>,
    /// M3: the run the customer allowed here, until the server says it started.
    allowed_run: Option<(u64, Vec<ScriptItem>)>,
    /// D4 (this is the CSR's computer): the CSR took control back, so the customer's input is
    /// not injected until the customer takes it again.
    csr_holds: bool,
    /// F2: the file operation asked in the window, one at a time.
    files_asked: Option<(u64, FilesRequest)>,
    /// M4: the sign-in as another user.
    logon: Logon,
}

/// D4: to whom this computer's control is given, and who holds it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Given<'a> {
    /// The customer's name.
    pub to: &'a str,
    /// The CSR took control back; the customer takes it again by clicking the shown screen.
    pub csr_holds: bool,
}

/// `Button` has no order; this one keeps the held set sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct ButtonKey(u8);

impl ButtonKey {
    fn of(b: Button) -> Self {
        ButtonKey(match b {
            Button::Left => 0,
            Button::Middle => 1,
            Button::Right => 2,
            Button::Back => 3,
            Button::Forward => 4,
        })
    }

    fn button(self) -> Button {
        match self.0 {
            0 => Button::Left,
            1 => Button::Middle,
            2 => Button::Right,
            3 => Button::Back,
            _ => Button::Forward,
        }
    }
}

impl Session {
    pub fn new(id: Identity) -> Self {
        Self {
            id,
            consent: Consent::new(),
            names: BTreeMap::new(),
            requests: BTreeMap::new(),
            running: BTreeSet::new(),
            sharing: false,
            windows_shared: false,
            chosen: Vec::new(),
            pick: None,
            next_pick_id: PICK_IDS,
            placement: None,
            picture: None,
            held_buttons: BTreeSet::new(),
            held_keys: Vec::new(),
            refused: BTreeMap::new(),
            told_ignored: false,
            controller: None,
            clipboard_asked: None,
            clipboard_reading: false,
            next_clipboard_id: 1,
            csr_holds: false,
            proposals: BTreeMap::new(),
            allowed_run: None,
            files_asked: None,
            logon: Logon::Idle,
        }
    }

    /// The question the window shows now.
    pub fn question(&self) -> Option<&Question> {
        self.consent.question()
    }

    pub fn consent(&self) -> &Consent {
        &self.consent
    }

    /// D4 (this is the CSR's computer): to whom control is given and who holds it, while the
    /// CSR's own OK to give it stands.
    pub fn given(&self) -> Option<Given<'_>> {
        self.consent.allows(Activity::GiveControl).then(|| Given {
            to: self.controller.as_deref().unwrap_or("The customer"),
            csr_holds: self.csr_holds,
        })
    }

    /// Whether the screen is being sent.
    pub fn sharing(&self) -> bool {
        self.sharing
    }

    /// How many control messages were refused, by code (`control_*`, or `not_allowed` for those
    /// the customer did not allow, `nothing_shown` before a picture was sent, `clipboard_pending`
    /// for a `clipboard_get` while the customer has not answered the last one).
    pub fn refused(&self) -> &BTreeMap<&'static str, u64> {
        &self.refused
    }

    /// Handles one event; the actions, in order.
    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Server(text) => self.server(&text, &mut out),
            Event::Channel { label, data } => {
                if label == "control" {
                    self.control(&data, &mut out);
                }
            }
            Event::Answer { id, answer } => self.answer(id, answer, &mut out),
            Event::Stop => self.stop(&mut out),
            Event::TakeControl => out.push(Action::Send(json!({"type": "take_control"}))),
            Event::Captured { picture, shown } => {
                if self.sharing || self.signed_in().is_some() {
                    self.picture = Some((picture, shown));
                }
            }
            Event::ClipboardAnswer { id, send } => self.clipboard_answer(id, send, &mut out),
            Event::ClipboardRead(reply) => {
                // Control may have ended while the clipboard was read: then nothing goes out.
                if std::mem::take(&mut self.clipboard_reading) && self.consent.allows_control() {
                    out.push(Action::Control(reply.message()));
                }
            }
            Event::Windows(list) => self.windows_listed(list, &mut out),
            Event::Picked { id, windows } => self.picked(id, &windows, &mut out),
            Event::Placed(placement) => self.placed(placement, &mut out),
            Event::Logon(e) => self.logon_event(e, &mut out),
        }
        out
    }

    /// M4: the user the CSR is signed in as, while their session is what is shown.
    pub fn signed_in(&self) -> Option<&str> {
        match &self.logon {
            Logon::Running { user } => Some(user),
            _ => None,
        }
    }

    /// The windows the customer chose, while an application is shared or asked about.
    pub fn chosen(&self) -> &[u64] {
        &self.chosen
    }

    fn server(&mut self, text: &str, out: &mut Vec<Action>) {
        let Ok(frame) = serde_json::from_str::<Value>(text) else {
            return;
        };
        match frame["type"].as_str().unwrap_or_default() {
            "welcome" => self.welcome(&frame, out),
            "event" => self.event(&frame["event"], out),
            "media_answer" | "media_offer" | "media_closed" => out.push(Action::Media(frame)),
            "login_as_user" => self.login_as_user(&frame, out),
            // The session restarts after a fault, or this computer's actor was out of reach:
            // the same token connects again, and nothing the customer allowed is lost
            // (docs/protocol.md 5.8).
            "bye" if frame["reason"] == "reconnect" => out.push(Action::Reconnect),
            "bye" => {
                self.end_all(out);
                let reason = frame["reason"].as_str().unwrap_or("closed").to_owned();
                out.push(Action::Leave(bye_words(&reason)));
            }
            "error" => {
                let code = frame["code"].as_str().unwrap_or("error");
                let detail = frame["detail"].as_str().unwrap_or_default();
                out.push(Action::Notice(format!(
                    "the server refused: {code} ({detail})"
                )));
            }
            _ => {}
        }
    }

    fn welcome(&mut self, frame: &Value, out: &mut Vec<Action>) {
        let session = &frame["session"];
        for p in session["participants"].as_array().into_iter().flatten() {
            self.remember(p);
        }
        // On a reconnection: what runs is what the server says, but nothing of it is started
        // here unless the customer allowed it in this helper.
        self.running = session["activities"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["customer"] == self.id.customer.as_str())
            .filter_map(|a| Activity::from_name(a["activity"].as_str()?))
            .collect();
        for pending in session["pending_consents"].as_array().into_iter().flatten() {
            self.asked(pending, out);
        }
    }

    fn remember(&mut self, participant: &Value) {
        if let (Some(id), Some(name)) = (participant["id"].as_str(), participant["name"].as_str()) {
            self.names.insert(id.to_owned(), name.to_owned());
        }
    }

    fn event(&mut self, e: &Value, out: &mut Vec<Action>) {
        let activity = e["activity"].as_str().and_then(Activity::from_name);
        // D4: giving control is about a customer, but it is this (the CSR's) computer's when
        // it was asked here.
        let ours = if activity == Some(Activity::GiveControl) {
            self.gives_control()
        } else {
            e["customer"] == self.id.customer.as_str()
        };
        match e["type"].as_str().unwrap_or_default() {
            "participant_joined" => self.remember(&e["participant"]),
            "consent_requested" => self.asked(e, out),
            "consent_withdrawn" => {
                let request = e["request"].as_u64();
                let withdrawn: Vec<Activity> = self
                    .requests
                    .iter()
                    .filter(|(_, r)| Some(**r) == request)
                    .map(|(a, _)| *a)
                    .collect();
                for a in withdrawn {
                    self.requests.remove(&a);
                    if !self.running.contains(&a) {
                        self.consent.ended(a);
                    }
                    self.show(out);
                }
            }
            "activity_started" if ours => {
                if let Some(a) = activity {
                    self.running.insert(a);
                    self.requests.remove(&a);
                    self.started(a, out);
                }
            }
            "activity_stopped" if ours => {
                // F2 needs file transfer to run: its end stops every transfer.
                if e["activity"] == "file_transfer" {
                    self.end_files(out);
                }
                if let Some(a) = activity {
                    self.running.remove(&a);
                    self.consent.ended(a);
                    self.ended(a, out);
                    self.show(out);
                }
            }
            "computer_files_requested" if e["computer"] == self.id.me.as_str() => {
                self.files_requested(e, out);
            }
            "display_mode" => out.push(Action::Sampling(e["mode"] == "sampling")),
            "scripts_proposed" if e["computer"] == self.id.me.as_str() => {
                let scripts = serde_json::from_value::<Vec<ScriptItem>>(e["scripts"].clone());
                if let (Some(request), Ok(scripts)) = (e["request"].as_u64(), scripts) {
                    while self.proposals.len() >= MAX_PROPOSALS {
                        self.proposals.pop_first();
                    }
                    self.proposals.insert(request, scripts);
                }
            }
            // M1: the CSR asks again; read again only while the customer's yes stands.
            "system_info_requested"
                if e["computer"] == self.id.me.as_str()
                    && self.running.contains(&Activity::SystemInfo)
                    && self.consent.allows(Activity::SystemInfo) =>
            {
                out.push(Action::GatherSystemInfo);
            }
            "control_taken" if self.gives_control() => {
                self.csr_holds = e["holder"] == "csr";
                if self.csr_holds {
                    self.release_held(out);
                }
            }
            "participant_left" if e["participant"] == self.id.customer.as_str() => {
                self.end_all(out);
            }
            "session_ended" => self.end_all(out),
            _ => {}
        }
    }

    /// The server relays a request. Only ours (asked in this computer's window) are shown.
    fn asked(&mut self, e: &Value, out: &mut Vec<Action>) {
        let (Some(request), Some(activity)) = (
            e["request"].as_u64(),
            e["activity"].as_str().and_then(Activity::from_name),
        ) else {
            return;
        };
        // D4: the CSR asks their own computer to give a customer control; the question names
        // the customer.
        let gives = activity == Activity::GiveControl;
        if e["computer"] != self.id.me.as_str()
            || (!gives && e["customer"] != self.id.customer.as_str())
        {
            return;
        }
        let by = e[if gives { "customer" } else { "by" }]
            .as_str()
            .unwrap_or_default();
        let csr = self
            .names
            .get(by)
            .map_or("The support representative", |n| n);
        // M3: one run is asked at a time; a second request may not replace the list the
        // customer is reading.
        if activity == Activity::RunScript && self.consent.question_waiting(Activity::RunScript) {
            out.push(Action::Send(reply(request, false, false)));
            return;
        }
        // M3: the question lists the scripts; without them there is nothing to allow.
        let detail = if activity == Activity::RunScript {
            let Some(scripts) = self.proposals.get(&request) else {
                out.push(Action::Notice(
                    "a request to run scripts came without the scripts: refused".into(),
                ));
                out.push(Action::Send(reply(request, false, false)));
                return;
            };
            let lines: Vec<String> = scripts
                .iter()
                .enumerate()
                .map(|(i, s)| s.line(i + 1))
                .collect();
            Some(lines.join("\n"))
        } else {
            None
        };
        self.requests.insert(activity, request);
        if activity.controls() {
            self.controller = Some(csr.to_owned());
        }
        match self.consent.request_detailed(activity, csr, detail) {
            // "Allow all" is the customer's own earlier answer: say yes at once.
            Asked::Allowed => {
                if activity == Activity::RunScript {
                    self.allowed_run = self.proposals.remove(&request).map(|s| (request, s));
                }
                out.push(Action::Send(reply(request, true, false)));
                // The customer allowed all, but which windows to show is still theirs to pick.
                if application(activity) && self.chosen.is_empty() && self.pick.is_none() {
                    self.ask_pick(activity, csr.to_owned(), out);
                }
            }
            Asked::Ask(_) | Asked::AlreadyAsked => {
                self.show(out);
            }
        }
    }

    fn answer(&mut self, id: u64, answer: Answer, out: &mut Vec<Action>) {
        if self.pick.as_ref().is_some_and(|(q, _)| q.id == id) {
            if answer != Answer::Deny {
                // Showing an application needs the customer's pick: a bare yes shows nothing.
                out.push(Action::Notice(
                    "choose the windows to show (or say no): nothing is shown otherwise".into(),
                ));
                return;
            }
            return self.picked(id, &[], out);
        }
        let decisions = self.consent.answer(id, answer);
        let all = answer == Answer::AllowAll;
        for (n, Decision { activity, allowed }) in decisions.into_iter().enumerate() {
            // F2: each operation is its own question; a yes covers that one only.
            if activity == Activity::FileOp {
                self.consent.ended(Activity::FileOp);
                if let Some((op, request)) = self.files_asked.take() {
                    out.push(if allowed {
                        Action::Files { op, request }
                    } else {
                        Action::FilesRefused {
                            op,
                            why: "the customer said no".into(),
                            by_customer: true,
                        }
                    });
                }
                continue;
            }
            if let Some(request) = self.requests.get(&activity) {
                // M3: what the customer saw is what may run.
                if activity == Activity::RunScript {
                    let shown = self.proposals.remove(request);
                    self.allowed_run = shown.filter(|_| allowed).map(|s| (*request, s));
                }
                out.push(Action::Send(reply(*request, allowed, all && n == 0)));
            }
            // Already running (a reconnection): the customer's yes starts it here.
            if allowed && self.running.contains(&activity) {
                self.started(activity, out);
            }
        }
        self.show(out);
    }

    /// The server says `activity` runs: act on it only if the customer allowed it here.
    fn started(&mut self, activity: Activity, out: &mut Vec<Action>) {
        if !self.consent.allows(activity) {
            out.push(Action::Notice(format!(
                "the server says {} started, but you did not allow it here: nothing is done",
                activity.name()
            )));
            return;
        }
        match activity {
            Activity::ViewDesktop | Activity::GiveControl if !self.sharing => {
                self.csr_holds = false;
                self.sharing = true;
                out.push(Action::StartShare(Source::Screen));
            }
            Activity::SystemInfo => out.push(Action::GatherSystemInfo),
            Activity::Reboot => {
                self.consent.ended(Activity::Reboot);
                out.push(Action::Restart);
            }
            Activity::RunScript => match self.allowed_run.take() {
                Some((request, scripts)) => {
                    // One yes, one run: the next is asked again.
                    self.consent.ended(Activity::RunScript);
                    out.push(Action::RunScripts { request, scripts });
                }
                None => out.push(Action::Notice(
                    "the server says scripts are to run, but you allowed none here: nothing runs"
                        .into(),
                )),
            },
            Activity::ViewApplication | Activity::ControlApplication => {
                if self.chosen.is_empty() {
                    // Allowed ("allow all"), but no window picked: ask, show nothing until then.
                    // Never the whole screen.
                    if self.pick.is_none() {
                        self.ask_pick(activity, "The support representative".into(), out);
                    }
                } else if !self.windows_shared {
                    self.sharing = true;
                    self.windows_shared = true;
                    self.picture = None;
                    self.placement = None;
                    out.push(Action::ShareWindows(self.chosen.clone()));
                }
            }
            _ => {}
        }
    }

    /// The question shown now: a pick when it asks to show an application and nothing is chosen.
    fn show(&mut self, out: &mut Vec<Action>) {
        if self.pick.as_ref().is_some_and(|(q, _)| q.id >= PICK_IDS) {
            // A pick asked at start stays until answered; the question behind it waits.
            return;
        }
        match self.consent.question().cloned() {
            Some(q) if application(q.activity) && self.chosen.is_empty() => {
                if self.pick.as_ref().is_some_and(|(p, _)| p.id == q.id) {
                    return;
                }
                self.pick = Some((q, Vec::new()));
                out.push(Action::Show(None));
                out.push(Action::ListWindows);
            }
            q => {
                self.pick = None;
                out.push(Action::Show(q));
            }
        }
    }

    /// A pick with no consent question: the activity was allowed already ("allow all").
    fn ask_pick(&mut self, activity: Activity, csr: String, out: &mut Vec<Action>) {
        let id = self.next_pick_id;
        self.next_pick_id += 1;
        let detail = None;
        self.pick = Some((
            Question {
                id,
                activity,
                csr,
                detail,
            },
            Vec::new(),
        ));
        out.push(Action::ListWindows);
    }

    /// The window list for the pick shown now.
    fn windows_listed(&mut self, list: Vec<AppWindow>, out: &mut Vec<Action>) {
        let Some((question, offered)) = self.pick.as_mut() else {
            return;
        };
        *offered = list;
        out.push(Action::Pick {
            question: question.clone(),
            windows: offered.clone(),
        });
    }

    /// The customer's pick: only windows that were offered count; none is a no.
    fn picked(&mut self, id: u64, windows: &[u64], out: &mut Vec<Action>) {
        let Some((question, offered)) = self.pick.take_if(|(q, _)| q.id == id) else {
            return;
        };
        let mut chosen: Vec<u64> = Vec::new();
        for w in windows {
            if offered.iter().any(|o| o.id == *w) && !chosen.contains(w) {
                chosen.push(*w);
            }
        }
        if question.id < PICK_IDS {
            let answer = if chosen.is_empty() {
                Answer::Deny
            } else {
                self.chosen = chosen;
                Answer::Allow
            };
            return self.answer(id, answer, out);
        }
        // Asked at start: the activity was allowed already.
        if chosen.is_empty() {
            for a in APPLICATIONS {
                self.consent.ended(a);
                if self.running.contains(&a) {
                    out.push(Action::Send(stop(a)));
                }
            }
        } else {
            self.chosen = chosen;
            for a in APPLICATIONS {
                if self.running.contains(&a) {
                    self.started(a, out);
                }
            }
        }
        self.show(out);
    }

    /// Where the chosen windows are now; none left ends the share.
    fn placed(&mut self, placement: Placement, out: &mut Vec<Action>) {
        if !self.windows_shared {
            return;
        }
        if placement.tiles.is_empty() {
            out.push(Action::Notice(
                "the windows you chose to show were closed: nothing is shown now".into(),
            ));
            for a in APPLICATIONS {
                if self.running.contains(&a) {
                    out.push(Action::Send(stop(a)));
                }
            }
            self.release_held(out);
            return self.end_windows(out);
        }
        self.chosen
            .retain(|w| placement.tiles.iter().any(|t| t.window == *w));
        self.placement = Some(placement);
    }

    fn end_windows(&mut self, out: &mut Vec<Action>) {
        self.chosen.clear();
        self.placement = None;
        if self.windows_shared {
            self.windows_shared = false;
            self.sharing = false;
            self.picture = None;
            out.push(Action::StopShare);
        }
    }

    fn ended(&mut self, activity: Activity, out: &mut Vec<Action>) {
        if activity == Activity::RunScript {
            out.push(Action::StopScripts);
        }
        if activity == Activity::LoginAsUser {
            self.end_logon("ended", out);
        }
        if activity.controls() && !self.consent.allows_control() {
            self.release_held(out);
            self.withdraw_clipboard(out);
        }
        let applications = APPLICATIONS
            .iter()
            .any(|a| self.running.contains(a) && self.consent.allows(*a));
        if !applications {
            if self.pick.as_ref().is_some_and(|(q, _)| q.id >= PICK_IDS) {
                self.pick = None;
            }
            self.end_windows(out);
        }
        if self.windows_shared {
            return;
        }
        let shows = |a: Activity| a == Activity::ViewDesktop || a == Activity::GiveControl;
        let viewing = Activity::ALL
            .iter()
            .any(|a| shows(*a) && self.consent.allows(*a) && self.running.contains(a));
        if (!activity.controls() || shows(activity)) && self.sharing && !viewing {
            self.sharing = false;
            self.picture = None;
            out.push(Action::StopShare);
        }
    }

    /// Stop: the record ends everything; the server is told what ended and what is refused.
    fn stop(&mut self, out: &mut Vec<Action>) {
        for Decision { activity, .. } in self.consent.stop() {
            if activity == Activity::FileOp {
                continue;
            }
            if self.running.contains(&activity) {
                out.push(Action::Send(stop(activity)));
            } else if let Some(request) = self.requests.remove(&activity) {
                out.push(Action::Send(reply(request, false, false)));
            }
        }
        // A run's yes was spent when it started; Stop ends the run too.
        if self.running.contains(&Activity::RunScript) {
            out.push(Action::Send(stop(Activity::RunScript)));
        }
        self.end_all(out);
        out.push(Action::Show(None));
    }

    /// F2: a CSR asks for an operation on this computer's files. Checked here whatever the
    /// server checked; asked in the window unless the customer shares their whole screen
    /// (SPEC F2) or allowed all; a cancel only undoes, so it is never asked.
    fn files_requested(&mut self, e: &Value, out: &mut Vec<Action>) {
        let Some(op) = e["op"].as_u64() else { return };
        if e["customer"] != self.id.customer.as_str() {
            return;
        }
        let request = match serde_json::from_value::<FilesRequest>(e["request"].clone()) {
            Ok(r) => r,
            Err(_) => {
                return out.push(Action::FilesRefused {
                    op,
                    why: "this version of Tandem Helper does not know that operation".into(),
                    by_customer: false,
                });
            }
        };
        if let Err(why) = request.check() {
            return out.push(Action::FilesRefused {
                op,
                why: why.to_string(),
                by_customer: false,
            });
        }
        if let FilesRequest::Cancel { target } = request {
            // Still asked: the question goes, and the operation is refused.
            if self.files_asked.as_ref().is_some_and(|(o, _)| *o == target) {
                self.files_asked = None;
                self.consent.ended(Activity::FileOp);
                out.push(Action::FilesRefused {
                    op: target,
                    why: "cancelled before the customer answered".into(),
                    by_customer: false,
                });
                self.show(out);
            }
            out.push(Action::CancelFiles(Some(target)));
            return out.push(Action::Files { op, request });
        }
        if self.sharing && !self.windows_shared {
            return out.push(Action::Files { op, request });
        }
        if self.files_asked.is_some() {
            return out.push(Action::FilesRefused {
                op,
                why: "the customer has not answered the last file operation yet".into(),
                by_customer: false,
            });
        }
        let by = e["by"].as_str().unwrap_or_default();
        let csr = self
            .names
            .get(by)
            .map_or("The support representative", |n| n)
            .to_owned();
        match self
            .consent
            .request_detailed(Activity::FileOp, &csr, Some(request.words()))
        {
            Asked::Allowed => {
                self.consent.ended(Activity::FileOp);
                out.push(Action::Files { op, request });
            }
            Asked::Ask(_) | Asked::AlreadyAsked => {
                self.files_asked = Some((op, request));
                self.show(out);
            }
        }
    }

    /// F2 ends here: transfers stop, the question waiting is refused.
    fn end_files(&mut self, out: &mut Vec<Action>) {
        out.push(Action::CancelFiles(None));
        self.consent.ended(Activity::FileOp);
        if let Some((op, _)) = self.files_asked.take() {
            out.push(Action::FilesRefused {
                op,
                why: "file transfer ended before the customer answered".into(),
                by_customer: false,
            });
            self.show(out);
        }
    }

    /// Viewing and control end here, whatever the server does next.
    fn end_all(&mut self, out: &mut Vec<Action>) {
        self.end_logon("ended", out);
        self.end_files(out);
        out.push(Action::StopScripts);
        self.release_held(out);
        self.withdraw_clipboard(out);
        self.pick = None;
        self.chosen.clear();
        self.placement = None;
        self.windows_shared = false;
        if self.sharing {
            self.sharing = false;
            self.picture = None;
            out.push(Action::StopShare);
        }
    }

    /// Control ended: a clipboard question about it is withdrawn, a read in course dropped.
    fn withdraw_clipboard(&mut self, out: &mut Vec<Action>) {
        self.clipboard_reading = false;
        if self.clipboard_asked.take().is_some() {
            out.push(Action::AskClipboard(None));
        }
    }

    fn release_held(&mut self, out: &mut Vec<Action>) {
        for key in std::mem::take(&mut self.held_keys) {
            out.push(Action::Inject(Inject::KeyState(key, false)));
        }
        let at = self.picture.map(|(_, r)| (r.x, r.y)).unwrap_or_default();
        for b in std::mem::take(&mut self.held_buttons) {
            out.push(Action::Inject(if self.windows_shared {
                Inject::ButtonUp(b.button())
            } else {
                Inject::Button {
                    at,
                    button: b.button(),
                    pressed: false,
                }
            }));
        }
    }

    fn refuse(&mut self, code: &'static str) {
        *self.refused.entry(code).or_default() += 1;
    }

    /// A control message: checked, allowed by the customer's record, mapped onto what is shown.
    fn control(&mut self, data: &[u8], out: &mut Vec<Action>) {
        let control = match control::parse(data) {
            Ok(c) => c,
            Err(e) => return self.refuse(e.code()),
        };
        if self.signed_in().is_some() {
            return self.control_logon(control, out);
        }
        if !self.consent.admits(&control) {
            if !self.told_ignored {
                self.told_ignored = true;
                out.push(Action::Notice(
                    "the support representative's input is ignored: you have not allowed control"
                        .into(),
                ));
            }
            return self.refuse("not_allowed");
        }
        self.told_ignored = false;
        match control {
            Control::ReleaseAll => return self.release_held(out),
            Control::ClipboardSet(text) => {
                let who = self.controller_name();
                out.push(Action::Notice(format!(
                    "{who} put text on your clipboard ({} characters)",
                    text.chars().count()
                )));
                return out.push(Action::SetClipboard(text));
            }
            Control::ClipboardGet => return self.clipboard_get(out),
            _ => {}
        }
        if self.windows_shared {
            return self.control_windows(control, out);
        }
        // The whole screen takes control only as the desktop's (D2) or as this CSR's computer
        // given to a customer (D4): an application's control alone, with no application shown,
        // reaches nothing.
        if !self.consent.allows(Activity::ControlDesktop)
            && !self.consent.allows(Activity::GiveControl)
        {
            return self.refuse("outside_chosen");
        }
        // D4: the CSR took control back; the customer's clicks reach nothing here.
        if self.csr_holds && self.consent.allows(Activity::GiveControl) {
            return self.refuse("csr_holds");
        }
        self.inject_mapped(control, out);
    }

    /// The pointer and keys onto the picture shown (the whole screen, or M4's other display).
    fn inject_mapped(&mut self, control: Control, out: &mut Vec<Action>) {
        let Some((picture, shown)) = self.picture else {
            return self.refuse("nothing_shown");
        };
        let map = |p: Point| {
            let scaled = (
                p.x * f64::from(picture.width),
                p.y * f64::from(picture.height),
            );
            picture_to_screen(scaled, picture, shown)
        };
        let inject = match control {
            Control::Move(p) => map(p).map(|(x, y)| Inject::Move(x, y)),
            Control::Press(p, button) | Control::Release(p, button) => {
                let pressed = matches!(control, Control::Press(..));
                if pressed {
                    self.held_buttons.insert(ButtonKey::of(button));
                } else {
                    self.held_buttons.remove(&ButtonKey::of(button));
                }
                map(p).map(|at| Inject::Button {
                    at,
                    button,
                    pressed,
                })
            }
            Control::Wheel { at, dx, dy } => map(at).map(|at| Inject::Wheel { at, dx, dy }),
            Control::Key {
                key,
                down: None,
                mods,
            } => Ok(Inject::Key(key, mods)),
            Control::Key {
                key,
                down: Some(pressed),
                ..
            } => {
                self.held_keys.retain(|k| *k != key);
                if pressed {
                    self.held_keys.push(key);
                }
                Ok(Inject::KeyState(key, pressed))
            }
            Control::Text(text) => Ok(Inject::Text(text)),
            Control::Combo(combo) => {
                let (key, mods) = combo.keys();
                Ok(Inject::Key(key, mods))
            }
            // Handled above.
            Control::ReleaseAll | Control::ClipboardSet(_) | Control::ClipboardGet => return,
        };
        match inject {
            Ok(i) => out.push(Action::Inject(i)),
            Err(_) => self.refuse("nothing_shown"),
        }
    }
}

/// Ids of pick questions asked without a consent question (above the consent record's own).
const PICK_IDS: u64 = 1 << 48;

/// The activities that show or control chosen windows (D6).
const APPLICATIONS: [Activity; 2] = [Activity::ViewApplication, Activity::ControlApplication];

fn application(activity: Activity) -> bool {
    APPLICATIONS.contains(&activity)
}

impl Session {
    /// D6: control inside the chosen windows only. A pointer message whose point falls in no
    /// window of the picture is refused (`outside_chosen`) and injects nothing; a press raises
    /// and focuses the window it lands in; keys and text go only while the focus is in a chosen
    /// window (the shell checks, as it is the one that can ask the display).
    fn control_windows(&mut self, control: Control, out: &mut Vec<Action>) {
        let Some(placement) = &self.placement else {
            return self.refuse("nothing_shown");
        };
        let at = |p: Point| match placement.to_screen((p.x, p.y)) {
            Ok(Some(hit)) => Some(hit),
            _ => None,
        };
        let inject = match control {
            Control::Move(p) => at(p).map(|(_, (x, y))| Inject::Move(x, y)),
            Control::Press(p, button) => at(p).map(|(window, at)| {
                out.push(Action::Inject(Inject::Focus(window)));
                self.held_buttons.insert(ButtonKey::of(button));
                Inject::Button {
                    at,
                    button,
                    pressed: true,
                }
            }),
            Control::Release(p, button) => {
                let held = self.held_buttons.remove(&ButtonKey::of(button));
                match at(p) {
                    Some((_, at)) => Some(Inject::Button {
                        at,
                        button,
                        pressed: false,
                    }),
                    // Dragged out of the window: the press is undone where the pointer is.
                    None if held => {
                        self.refuse("outside_chosen");
                        out.push(Action::Inject(Inject::ButtonUp(button)));
                        return;
                    }
                    None => None,
                }
            }
            Control::Wheel { at: p, dx, dy } => at(p).map(|(_, at)| Inject::Wheel { at, dx, dy }),
            Control::Key {
                key,
                down: Some(pressed),
                ..
            } => {
                self.held_keys.retain(|k| *k != key);
                if pressed {
                    self.held_keys.push(key);
                }
                Some(self.in_windows(Inject::KeyState(key, pressed)))
            }
            Control::Key {
                key,
                down: None,
                mods,
            } => Some(self.in_windows(Inject::Key(key, mods))),
            Control::Text(text) => Some(self.in_windows(Inject::Text(text))),
            Control::Combo(combo) => {
                let (key, mods) = combo.keys();
                Some(self.in_windows(Inject::Key(key, mods)))
            }
            Control::ReleaseAll => return self.release_held(out),
            // Answered before pointer and keys are placed (`control`).
            Control::ClipboardSet(_) | Control::ClipboardGet => return,
        };
        match inject {
            Some(i) => out.push(Action::Inject(i)),
            None => self.refuse("outside_chosen"),
        }
    }

    fn in_windows(&self, inject: Inject) -> Inject {
        Inject::InWindows(self.chosen.clone(), Box::new(inject))
    }
}

impl Session {
    fn controller_name(&self) -> String {
        self.controller
            .clone()
            .unwrap_or_else(|| "The support representative".into())
    }

    /// `clipboard_get`: never answered without the customer's yes; one question at a time.
    fn clipboard_get(&mut self, out: &mut Vec<Action>) {
        if self.clipboard_asked.is_some() || self.clipboard_reading {
            return self.refuse("clipboard_pending");
        }
        let q = ClipboardQuestion {
            id: self.next_clipboard_id,
            csr: self.controller_name(),
        };
        self.next_clipboard_id += 1;
        self.clipboard_asked = Some(q.clone());
        out.push(Action::AskClipboard(Some(q)));
    }

    fn clipboard_answer(&mut self, id: u64, send: bool, out: &mut Vec<Action>) {
        if self.clipboard_asked.as_ref().is_none_or(|q| q.id != id) {
            return;
        }
        self.clipboard_asked = None;
        out.push(Action::AskClipboard(None));
        if !self.consent.allows_control() {
            return;
        }
        if send {
            self.clipboard_reading = true;
            out.push(Action::ReadClipboard);
        } else {
            out.push(Action::Control(ClipboardReply::Declined.message()));
        }
    }

    /// The clipboard question shown now.
    pub fn clipboard_question(&self) -> Option<&ClipboardQuestion> {
        self.clipboard_asked.as_ref()
    }
}

impl Session {
    /// D4: this computer was asked to give a customer control, or gives it now.
    fn gives_control(&self) -> bool {
        self.requests.contains_key(&Activity::GiveControl)
            || self.consent.allows(Activity::GiveControl)
    }
}

impl Consent {
    /// Whether any control activity is allowed now.
    fn allows_control(&self) -> bool {
        Activity::ALL
            .iter()
            .any(|a| a.controls() && self.allows(*a))
    }
}

/// M4, log in as another user: the credentials the server relays are used only while the
/// customer's own yes to `login_as_user` stands here; the other user's display is then what is
/// shown and controlled, and the customer's desktop is behind a notice until it ends.
impl Session {
    fn login_as_user(&mut self, frame: &Value, out: &mut Vec<Action>) {
        let user = frame["user"].as_str().unwrap_or_default().to_owned();
        let password = frame["password"].as_str().unwrap_or_default();
        let refused = |code: &str| logon_result("failed", &user, Some(("code", code)));
        if !(self.running.contains(&Activity::LoginAsUser)
            && self.consent.allows(Activity::LoginAsUser))
        {
            out.push(Action::Notice(
                "the server relayed a sign-in as another user that you did not allow: nothing is done"
                    .into(),
            ));
            return out.push(refused("not_allowed"));
        }
        if self.logon != Logon::Idle {
            return out.push(refused("busy"));
        }
        if !crate::logon::proto::user_name_ok(&user) || password.is_empty() {
            return out.push(refused("bad_request"));
        }
        let csr = frame["by"]
            .as_str()
            .and_then(|b| self.names.get(b))
            .map_or("The support representative", String::as_str);
        out.push(Action::Notice(format!(
            "{csr} is signing in as {user} on a separate screen"
        )));
        self.logon = Logon::Starting { user: user.clone() };
        out.push(Action::StartLogon {
            user,
            password: Password(password.to_owned()),
        });
    }

    fn logon_event(&mut self, event: LogonEvent, out: &mut Vec<Action>) {
        match (std::mem::replace(&mut self.logon, Logon::Idle), event) {
            (Logon::Starting { user }, LogonEvent::Started) => {
                // What the CSR holds down is let go on the customer's display, before the input
                // goes to the other one; a point is mapped onto the other display's picture.
                self.release_held(out);
                self.picture = None;
                out.push(Action::ShowLogon);
                out.push(logon_result("started", &user, None));
                self.logon = Logon::Running { user };
            }
            (Logon::Starting { user }, LogonEvent::Refused(code)) => {
                out.push(logon_result("failed", &user, Some(("code", &code))));
            }
            (Logon::Running { user }, LogonEvent::Ended(reason)) => {
                self.leave_other_display(&user, &reason, out);
                out.push(Action::Notice(format!(
                    "{user} signed out; your desktop is shown again"
                )));
            }
            // Started after the end was asked here (Stop, the activity stopped): end it.
            (Logon::Idle, LogonEvent::Started) => out.push(Action::EndLogon),
            (state, _) => self.logon = state,
        }
    }

    /// Ends the other user's session from this side (the activity stopped, Stop, the session
    /// ended); nothing when none runs.
    fn end_logon(&mut self, reason: &str, out: &mut Vec<Action>) {
        match std::mem::replace(&mut self.logon, Logon::Idle) {
            Logon::Idle => {}
            Logon::Starting { user } => {
                out.push(logon_result("failed", &user, Some(("code", "ended"))));
            }
            Logon::Running { user } => self.leave_other_display(&user, reason, out),
        }
    }

    /// Back to the customer's display: what the CSR holds is let go on the other one first.
    fn leave_other_display(&mut self, user: &str, reason: &str, out: &mut Vec<Action>) {
        self.release_held(out);
        self.picture = None;
        out.push(Action::EndLogon);
        out.push(logon_result("ended", user, Some(("reason", reason))));
    }

    /// Control while the other user's session is shown: it goes there, never to the customer's
    /// desktop; the clipboard is not passed between the two users.
    fn control_logon(&mut self, control: Control, out: &mut Vec<Action>) {
        match control {
            Control::ReleaseAll => self.release_held(out),
            Control::ClipboardSet(_) | Control::ClipboardGet => self.refuse("signed_in_elsewhere"),
            other => self.inject_mapped(other, out),
        }
    }
}

/// M4: how a sign-in went, for the server (`code` when it failed, `reason` when it ended).
fn logon_result(state: &str, user: &str, detail: Option<(&str, &str)>) -> Action {
    let mut frame = json!({"type": "login_as_user_result", "state": state, "user": user});
    if let Some((key, value)) = detail {
        frame[key] = json!(value);
    }
    Action::Send(frame)
}

fn reply(request: u64, grant: bool, allow_all: bool) -> Value {
    json!({"type": "consent_reply", "request": request, "grant": grant, "allow_all": allow_all})
}

fn stop(activity: Activity) -> Value {
    json!({"type": "stop_activity", "activity": activity.name()})
}

/// The server's `bye` reasons, in words for the customer.
fn bye_words(reason: &str) -> String {
    match reason {
        "customer_left" => "the customer left the session, so their computer leaves too".into(),
        "session ended" => "the session has ended".into(),
        "removed" => "the support representative removed this computer from the session".into(),
        "replaced by a newer connection" => "another connection of this helper took over".into(),
        other => format!("the server closed the connection ({other})"),
    }
}

#[cfg(test)]
mod tests;
