//! The rules of one support session, as a plain state machine.
//!
//! Commands are checked against the current state; an accepted command becomes one or more
//! [`Event`]s, and [`SessionRules::apply`] is the only place that changes state. The journal
//! stores those events, so [`SessionRules::restore`] rebuilds exactly the same state after a crash
//! or a restart. Nothing here does IO or reads a clock: time comes in as `now`.

pub mod computer_files;
pub mod consent_wait;
pub mod login_as_user;
pub mod pairing;
mod scripts;
pub mod transcript;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::json;
use tandem_media::policy::{Given, MediaPolicy};

use crate::ids::{FileId, ParticipantId};
use crate::limits::{
    MAX_CHAT_CHARS, MAX_FILE_NAME_BYTES, MAX_MICROPHONES, MAX_NOTES_CHARS, MAX_SHARED_FILES,
    MAX_TRANSFER_AGENTS, MAX_TRANSFER_MESSAGE_CHARS, MAX_VOLUME_PERCENT,
};
pub use crate::protocol::SessionInit;
use crate::protocol::{
    Activity, Command, ControlHolder, DisplayMode, EndReason, Event, LeaveReason, ParticipantInfo,
    Record, Role, StopCause, TransferTarget, UnixMillis,
};
use consent_wait::Answer;

/// Why a command was refused. Each has a stable code that clients and tests match on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    #[error("the session has ended")]
    SessionEnded,
    #[error("only the primary CSR can do this")]
    NotPrimary,
    #[error("only a CSR can do this")]
    NotStaff,
    #[error("no such participant in this session")]
    UnknownParticipant,
    #[error("that participant is not a customer")]
    NotACustomer,
    #[error("that participant is not an assistant CSR")]
    NotAnAssistant,
    #[error("select a customer first")]
    NoCustomerSelected,
    #[error("that activity is already running")]
    ActivityRunning,
    #[error("that activity is not running")]
    ActivityNotRunning,
    #[error("the customer has not answered the previous request for this activity yet")]
    ConsentPending,
    #[error("no such consent request is waiting for you")]
    UnknownConsentRequest,
    #[error("file transfer is not possible while a customer application is viewed or controlled")]
    FileTransferBlocked,
    #[error("stop file transfer before viewing or controlling an application")]
    FileTransferRunning,
    #[error("a voice call is already running")]
    VoiceCallActive,
    #[error("there is no voice call")]
    NoVoiceCall,
    #[error("already in the voice call")]
    AlreadyInVoiceCall,
    #[error("not in the voice call")]
    NotInVoiceCall,
    #[error("two participants already hold a microphone; take one back first")]
    MicrophoneLimit,
    #[error("you can speak already")]
    AlreadyHoldsMicrophone,
    #[error("that participant does not hold a microphone")]
    NotAMicrophoneHolder,
    #[error("only CSRs who are agents can transfer a session")]
    NotAnAgent,
    #[error("the transfer message is longer than {MAX_TRANSFER_MESSAGE_CHARS} characters")]
    TransferMessageTooLong,
    #[error("a transfer needs a queue or between 1 and {MAX_TRANSFER_AGENTS} agents")]
    InvalidTransferTarget,
    #[error("the session is waiting to be accepted from a transfer")]
    SessionWaiting,
    #[error("the session is not waiting for a transfer")]
    NotWaiting,
    #[error("chat messages are 1 to {MAX_CHAT_CHARS} characters")]
    BadChatText,
    #[error("quick phrases are not enabled")]
    QuickPhrasesDisabled,
    #[error("no such quick phrase")]
    UnknownQuickPhrase,
    #[error("notes are at most {MAX_NOTES_CHARS} characters")]
    NotesTooLong,
    #[error("ending the session needs confirmation")]
    ConfirmationRequired,
    #[error("the primary CSR cannot leave; end the session or hand control to an assistant")]
    PrimaryCannotLeave,
    #[error("this session already has its maximum of {0} customers")]
    CustomerLimit(usize),
    #[error("this CSR is already in the session")]
    AlreadyJoined,
    #[error("only the primary CSR and the selected customer may send video")]
    CameraNotAllowed,
    #[error("a customer's camera starts after the CSR's")]
    CsrCameraFirst,
    #[error("your camera is already on")]
    CameraAlreadyOn,
    #[error("your camera is not on")]
    CameraNotOn,
    #[error("a volume is 0 to {MAX_VOLUME_PERCENT} percent")]
    BadVolume,
    #[error("recording is automatic in this session; a CSR cannot stop it")]
    RecordingAutomatic,
    #[error("too many people joined this session in the last minute; try again in {0} s")]
    TooManyJoins(u64),
    #[error("the support representative removed you from this session")]
    Removed,
    #[error("the primary CSR cannot remove themselves; end the session instead")]
    CannotRemoveSelf,
    #[error("this customer's computer is already connected; stop Tandem Helper there first")]
    ComputerAttached,
    #[error("this question is in Tandem Helper's window; answer it there (you may refuse here)")]
    ConsentInHelper,
    #[error(
        "only Tandem Helper can let the CSR use your mouse and keyboard; run it first (you may refuse here)"
    )]
    HelperNeeded,
    #[error("you are already showing your screen; stop showing it first")]
    AlreadyShowing,
    #[error(
        "giving control of your desktop needs your own Tandem Helper; get a code and run it first"
    )]
    CsrHelperNeeded,
    #[error("you hold control already")]
    AlreadyInControl,
    #[error(
        "that is done on the customer's computer by Tandem Helper, and no helper that can do it is connected there"
    )]
    HelperRequired,
    #[error(
        "a file name is 1 to {MAX_FILE_NAME_BYTES} bytes, without slashes or control characters, and not . or .."
    )]
    BadFileName,
    #[error("this customer already has {MAX_SHARED_FILES} files; withdraw some first")]
    TooManyFiles,
    #[error("no such file is published in this session")]
    UnknownFile,
    #[error("only the customer's computer (Tandem Helper) sends what it read of itself")]
    NotAComputer,
    #[error("choose 1 to {} scripts", scripts::MAX_SCRIPTS_PER_RUN)]
    BadScriptList,
    #[error("that is not the next script of the run")]
    ScriptOutOfOrder,
    #[error("{0}")]
    BadFilesRequest(crate::computer_files::PathError),
    #[error("no such file operation is waiting for this computer")]
    UnknownFilesOp,
    #[error("the system information was not asked for (again) since it was last sent")]
    SystemInfoNotAsked,
    #[error(
        "{} file operations already wait for the customer's computer; wait for one to end",
        crate::computer_files::MAX_PENDING_OPS
    )]
    TooManyFilesOps,
    #[error(
        "a user name is 1 to {} letters, digits, dots, underscores or dashes (not first), a password 1 to {} bytes without NUL; a computer answers started, failed or ended",
        login_as_user::MAX_USER_CHARS,
        login_as_user::MAX_PASSWORD_BYTES
    )]
    BadLogin,
    #[error(
        "{max} sign-ins on this computer in the last minute; try again in {0} s",
        max = login_as_user::MAX_LOGINS_PER_WINDOW
    )]
    TooManyLogins(u64),
    #[error("the customer's computer has not answered the previous sign-in yet")]
    LoginPending,
}

impl Refusal {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::SessionEnded => "session_ended",
            Self::NotPrimary => "not_primary",
            Self::NotStaff => "not_staff",
            Self::UnknownParticipant => "unknown_participant",
            Self::NotACustomer => "not_a_customer",
            Self::NotAnAssistant => "not_an_assistant",
            Self::NoCustomerSelected => "no_customer_selected",
            Self::ActivityRunning => "activity_running",
            Self::ActivityNotRunning => "activity_not_running",
            Self::ConsentPending => "consent_pending",
            Self::UnknownConsentRequest => "unknown_consent_request",
            Self::FileTransferBlocked => "file_transfer_blocked",
            Self::FileTransferRunning => "file_transfer_running",
            Self::VoiceCallActive => "voice_call_active",
            Self::NoVoiceCall => "no_voice_call",
            Self::AlreadyInVoiceCall => "already_in_voice_call",
            Self::NotInVoiceCall => "not_in_voice_call",
            Self::MicrophoneLimit => "microphone_limit",
            Self::AlreadyHoldsMicrophone => "already_holds_microphone",
            Self::NotAMicrophoneHolder => "not_a_microphone_holder",
            Self::NotAnAgent => "not_an_agent",
            Self::TransferMessageTooLong => "transfer_message_too_long",
            Self::InvalidTransferTarget => "invalid_transfer_target",
            Self::SessionWaiting => "session_waiting",
            Self::NotWaiting => "not_waiting",
            Self::BadChatText => "bad_chat_text",
            Self::QuickPhrasesDisabled => "quick_phrases_disabled",
            Self::UnknownQuickPhrase => "unknown_quick_phrase",
            Self::NotesTooLong => "notes_too_long",
            Self::ConfirmationRequired => "confirmation_required",
            Self::PrimaryCannotLeave => "primary_cannot_leave",
            Self::CameraNotAllowed => "camera_not_allowed",
            Self::CsrCameraFirst => "csr_camera_first",
            Self::CameraAlreadyOn => "camera_already_on",
            Self::CameraNotOn => "camera_not_on",
            Self::BadVolume => "bad_volume",
            Self::CustomerLimit(_) => "customer_limit",
            Self::AlreadyJoined => "already_joined",
            Self::RecordingAutomatic => "recording_automatic",
            Self::TooManyJoins(_) => "too_many_joins",
            Self::Removed => "removed",
            Self::CannotRemoveSelf => "cannot_remove_self",
            Self::ComputerAttached => "computer_attached",
            Self::ConsentInHelper => "consent_in_helper",
            Self::HelperNeeded => "helper_needed",
            Self::AlreadyShowing => "already_showing",
            Self::CsrHelperNeeded => "csr_helper_needed",
            Self::AlreadyInControl => "already_in_control",
            Self::HelperRequired => "helper_required",
            Self::BadFileName => "bad_file_name",
            Self::TooManyFiles => "too_many_files",
            Self::UnknownFile => "unknown_file",
            Self::NotAComputer => "not_a_computer",
            Self::BadScriptList => "bad_script_list",
            Self::ScriptOutOfOrder => "script_out_of_order",
            Self::BadFilesRequest(e) => e.code(),
            Self::UnknownFilesOp => "unknown_files_op",
            Self::SystemInfoNotAsked => "system_info_not_asked",
            Self::TooManyFilesOps => "too_many_files_ops",
            Self::BadLogin => "bad_login",
            Self::TooManyLogins(_) => "too_many_logins",
            Self::LoginPending => "login_pending",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Active,
    /// Transferred to a queue or agents; no primary CSR until one accepts (SPEC S8).
    Waiting(TransferTarget),
    Ended,
}

#[derive(Clone, Debug)]
struct Member {
    info: ParticipantInfo,
    joined_at: UnixMillis,
}

#[derive(Clone, Copy, Debug)]
struct PendingConsent {
    activity: Activity,
    customer: ParticipantId,
    by: ParticipantId,
    /// Asked in this computer's Tandem Helper window (issue 16).
    computer: Option<ParticipantId>,
    /// Waits for the customer's Tandem Helper (control without a computer).
    helper_needed: bool,
    /// When it was asked (issue 18: unanswered requests are withdrawn after a while).
    asked_at: UnixMillis,
}

#[derive(Clone, Debug)]
struct VoiceCall {
    started_by: ParticipantId,
    members: BTreeSet<ParticipantId>,
    /// At most two (SPEC V3), in the order they got it.
    microphones: Vec<ParticipantId>,
    /// Members without a microphone who asked to speak.
    asking: BTreeSet<ParticipantId>,
}

/// How long a customer's join waits for their WebSocket. The page connects at once; this only
/// covers a slow link or a retry. Past it the join is forgotten and the customer joins again.
pub const ADMISSION_TTL_MS: UnixMillis = 120_000;

/// The window of the per-session join rate limit.
const JOIN_WINDOW_MS: UnixMillis = 60_000;

/// Customers who joined over HTTP and have not connected their WebSocket yet, and when recent
/// joins were. Someone who joins and never connects holds no customer slot (issue 15: a
/// stranger with the session number could otherwise keep customers out); the slot is taken when
/// the WebSocket connects. Not journaled: a join that never connected is nothing to restore.
#[derive(Clone, Debug, Default)]
struct Admissions {
    waiting: BTreeMap<ParticipantId, (ParticipantInfo, UnixMillis)>,
    recent: VecDeque<UnixMillis>,
    /// Which of the waiting are a customer's computer, and whose.
    computers: BTreeMap<ParticipantId, ParticipantId>,
    /// What each waiting computer said it can do (issue 17).
    abilities: BTreeMap<ParticipantId, Vec<Activity>>,
}

impl Admissions {
    /// Forgets joins older than the rate window and admissions past [`ADMISSION_TTL_MS`].
    fn expire(&mut self, now: UnixMillis) {
        while self
            .recent
            .front()
            .is_some_and(|t| now.saturating_sub(*t) >= JOIN_WINDOW_MS)
        {
            self.recent.pop_front();
        }
        self.waiting
            .retain(|_, (_, at)| now.saturating_sub(*at) < ADMISSION_TTL_MS);
        let waiting = &self.waiting;
        self.computers.retain(|c, _| waiting.contains_key(c));
        self.abilities.retain(|c, _| waiting.contains_key(c));
    }

    /// `Err(seconds to wait)` when `per_minute` joins happened within the last minute.
    fn check_rate(&self, now: UnixMillis, per_minute: u32) -> Result<(), u64> {
        if self.recent.len() < per_minute as usize {
            return Ok(());
        }
        let oldest = self.recent.front().copied().unwrap_or(now);
        let wait = JOIN_WINDOW_MS.saturating_sub(now.saturating_sub(oldest));
        Err(u64::try_from(wait).map_or(1, |ms| ms.div_ceil(1000).max(1)))
    }
}

#[derive(Clone, Debug)]
pub struct SessionRules {
    init: SessionInit,
    next_seq: u64,
    status: Status,
    /// Present participants, in joining order.
    members: Vec<Member>,
    primary: Option<ParticipantId>,
    selected: Option<ParticipantId>,
    allow_all: BTreeSet<ParticipantId>,
    pending: BTreeMap<u32, PendingConsent>,
    next_request: u32,
    running: BTreeSet<(Activity, ParticipantId)>,
    voice: Option<VoiceCall>,
    /// Sending camera video (SPEC VI2: at most the primary CSR and the selected customer).
    cameras: BTreeSet<ParticipantId>,
    /// Microphone volumes other than 100 % (SPEC V4).
    volumes: BTreeMap<ParticipantId, u16>,
    display_mode: DisplayMode,
    notes: String,
    /// Customers asked to allow recording, or recorded, since they joined (SPEC R3: automatic
    /// recording asks each customer once).
    recording_asked: BTreeSet<ParticipantId>,
    admissions: Admissions,
    /// Participants the primary CSR removed: their tokens do not connect again.
    removed: BTreeSet<ParticipantId>,
    /// Computers (Tandem Helper) present, each with its owner: at most one per owner. The
    /// owner is a customer, or the primary CSR who gives control of their desktop (D4). A
    /// computer is a participant of role customer, so it sees what customers see, but it is not
    /// a customer: it takes no slot, is never selected, and leaves with its owner.
    computers: BTreeMap<ParticipantId, ParticipantId>,
    /// What each computer present said it can do of [`Activity::needs_helper_ability`]'s.
    abilities: BTreeMap<ParticipantId, BTreeSet<Activity>>,
    /// D4: the primary CSR took control back while giving control of their desktop.
    csr_holds: bool,
    /// F1: files published to customers, kept while file transfer with that customer runs.
    files: BTreeMap<FileId, SharedFile>,
    /// M1: the system information each customer's computer provided last, and when. Shared,
    /// as the rules are cloned before every change.
    system_info: BTreeMap<ParticipantId, (UnixMillis, std::sync::Arc<serde_json::Value>)>,
    /// M1: customers whose computer was asked for a reading (the start, a refresh) not sent
    /// yet: a computer sends one reading per asking, not as often as it likes.
    system_info_asked: BTreeSet<ParticipantId>,
    /// M3: the scripts proposed in each `run_script` consent request not answered yet.
    proposals: BTreeMap<u32, Vec<crate::protocol::ScriptItem>>,
    /// M3: the run allowed on each customer's computer while `run_script` runs there.
    script_runs: BTreeMap<ParticipantId, scripts::ScriptRun>,
    /// M5: customers whose computer is restarting, until it is back.
    restarting: BTreeSet<ParticipantId>,
    /// F2: operations sent to customers' computers and not answered yet.
    files_ops: BTreeMap<u32, computer_files::PendingOp>,
    next_files_op: u32,
    /// M4: signing in as another user on each customer's computer.
    logins: BTreeMap<ParticipantId, login_as_user::Logins>,
    /// Issue 18: what was said in chat, for pages that reconnect and people who come later.
    transcript: transcript::Transcript,
}

/// A file the primary CSR published to a customer (SPEC F1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedFile {
    pub customer: ParticipantId,
    pub by: ParticipantId,
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub at: UnixMillis,
}

/// A name a customer's computer can save a file under, as the CSR gave it: no path, no
/// control characters, not `.` or `..`, at most [`MAX_FILE_NAME_BYTES`].
pub fn check_file_name(name: &str) -> Result<(), Refusal> {
    let bad = name.is_empty()
        || name.len() > MAX_FILE_NAME_BYTES
        || name == "."
        || name == ".."
        || name.trim().is_empty()
        || name
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '\\');
    if bad {
        Err(Refusal::BadFileName)
    } else {
        Ok(())
    }
}

type Outcome = Result<Vec<Record>, Refusal>;

/// Who sent a command, for the commands whose rules depend on the sender's role.
#[derive(Clone, Copy)]
struct Sender {
    id: ParticipantId,
    role: Role,
}

impl SessionRules {
    /// A new session; the first record is `SessionCreated`.
    pub fn create(init: SessionInit, now: UnixMillis) -> (Self, Vec<Record>) {
        let mut rules = Self::empty(init);
        let mut out = Vec::new();
        let created = Event::SessionCreated {
            number: rules.init.number,
            topic: rules.init.topic.clone(),
            host: rules.init.host,
        };
        rules.emit(now, created, &mut out);
        (rules, out)
    }

    /// The state after `records` (the journal of this session, in order).
    pub fn restore(init: SessionInit, records: &[Record]) -> Self {
        let mut rules = Self::empty(init);
        for r in records {
            rules.apply(r.at, &r.event);
            rules.next_seq = rules.next_seq.max(r.seq + 1);
        }
        rules
    }

    fn empty(init: SessionInit) -> Self {
        Self {
            init,
            next_seq: 0,
            status: Status::Active,
            members: Vec::new(),
            primary: None,
            selected: None,
            allow_all: BTreeSet::new(),
            pending: BTreeMap::new(),
            next_request: 1,
            running: BTreeSet::new(),
            voice: None,
            cameras: BTreeSet::new(),
            volumes: BTreeMap::new(),
            display_mode: DisplayMode::default(),
            notes: String::new(),
            recording_asked: BTreeSet::new(),
            admissions: Admissions::default(),
            removed: BTreeSet::new(),
            computers: BTreeMap::new(),
            abilities: BTreeMap::new(),
            csr_holds: false,
            files: BTreeMap::new(),
            system_info: BTreeMap::new(),
            files_ops: BTreeMap::new(),
            next_files_op: 1,
            system_info_asked: BTreeSet::new(),
            proposals: BTreeMap::new(),
            script_runs: BTreeMap::new(),
            restarting: BTreeSet::new(),
            logins: BTreeMap::new(),
            transcript: transcript::Transcript::default(),
        }
    }

    // ---- getters ----

    pub fn init(&self) -> &SessionInit {
        &self.init
    }
    pub fn status(&self) -> &Status {
        &self.status
    }
    pub fn is_ended(&self) -> bool {
        self.status == Status::Ended
    }
    pub fn primary(&self) -> Option<ParticipantId> {
        self.primary
    }
    pub fn notes(&self) -> &str {
        &self.notes
    }
    pub fn participant(&self, id: ParticipantId) -> Option<&ParticipantInfo> {
        self.member(id).map(|m| &m.info)
    }
    pub fn participants(&self) -> impl Iterator<Item = &ParticipantInfo> {
        self.members.iter().map(|m| &m.info)
    }
    pub fn customer_count(&self) -> usize {
        self.members.iter().filter(|m| self.is_customer(m)).count()
    }
    /// A customer in person: of role customer, and not a customer's computer.
    fn is_customer(&self, m: &Member) -> bool {
        m.info.role == Role::Customer && !self.computers.contains_key(&m.info.id)
    }
    /// The customer whose computer `id` is, if it is one.
    pub fn computer_of(&self, id: ParticipantId) -> Option<ParticipantId> {
        self.computers.get(&id).copied()
    }
    /// The computer attached to `customer`, if any.
    pub fn computer_for(&self, customer: ParticipantId) -> Option<ParticipantId> {
        self.computers
            .iter()
            .find(|(_, c)| **c == customer)
            .map(|(computer, _)| *computer)
    }
    /// Whether `customer`'s computer is attached and said it can do `activity`.
    pub fn computer_can(&self, customer: ParticipantId, activity: Activity) -> bool {
        self.computer_for(customer)
            .and_then(|c| self.abilities.get(&c))
            .is_some_and(|can| can.contains(&activity))
    }
    /// Who is in the voice call, if there is one.
    pub fn voice_members(&self) -> Vec<ParticipantId> {
        self.voice
            .as_ref()
            .map_or_else(Vec::new, |v| v.members.iter().copied().collect())
    }

    pub fn microphone_holders(&self) -> &[ParticipantId] {
        self.voice.as_ref().map_or(&[], |v| &v.microphones)
    }
    pub fn running_activities(&self) -> impl Iterator<Item = (Activity, ParticipantId)> + '_ {
        self.running.iter().copied()
    }

    /// What the media plane may pass on now: the voice call (V2, V3), camera video (VI2), the
    /// shares of customers whose sharing activity runs (D1, D6, D13), the primary CSR's screen
    /// while they show it (D3, D7, D13), who controls whom (D2),
    /// and which computers (Tandem Helper) act for which customer: the policy sends a customer's
    /// control input to their computer and takes the computer's share as theirs.
    pub fn media_policy(&self) -> MediaPolicy<ParticipantId> {
        // M4: while the CSR is signed in as another user of a customer's computer, that user's
        // separate display is what the computer shares, and the primary CSR controls it (the
        // customer allowed `login_as_user`, which is asked always; their desktop is not shown).
        let signed_in = |a: Activity, c: ParticipantId| {
            a == Activity::LoginAsUser && self.signed_in_as(c).is_some()
        };
        let control = self
            .running
            .iter()
            .find(|(a, c)| a.is_control() || signed_in(*a, *c))
            .and_then(|(_, customer)| self.primary.map(|p| (p, *customer)));
        MediaPolicy {
            voice_members: self.voice_members().into_iter().collect(),
            speakers: self.microphone_holders().iter().copied().collect(),
            cameras: self.cameras.clone(),
            volumes: self.volumes.clone(),
            screens: self
                .running
                .iter()
                .filter(|(a, c)| a.is_sharing() || signed_in(*a, *c))
                .map(|(_, c)| *c)
                .collect(),
            control,
            showing: self
                .primary
                .filter(|_| self.running.iter().any(|(a, _)| a.is_showing())),
            computers: self.computers.clone(),
            given: self.given_control().map(|(customer, computer)| Given {
                computer,
                customer,
                customer_holds: !self.csr_holds,
            }),
            recording: self.is_recording(),
        }
    }

    /// D4: the customer given control of the primary CSR's desktop, and the primary's computer
    /// that carries it, while `give_control` runs.
    pub fn given_control(&self) -> Option<(ParticipantId, ParticipantId)> {
        let customer = self
            .running
            .iter()
            .find(|(a, _)| *a == Activity::GiveControl)
            .map(|(_, c)| *c)?;
        Some((customer, self.computer_for(self.primary?)?))
    }

    /// D4: who holds the pointer while `give_control` runs.
    pub fn control_holder(&self) -> Option<ControlHolder> {
        self.given_control().map(|_| {
            if self.csr_holds {
                ControlHolder::Csr
            } else {
                ControlHolder::Customer
            }
        })
    }

    /// The recording activity runs: the customer agreed and nobody stopped it (SPEC S9, R1).
    /// The files published to customers (SPEC F1).
    pub fn shared_files(&self) -> &BTreeMap<FileId, SharedFile> {
        &self.files
    }

    /// F1: the primary CSR publishes `file` (already stored by the server) for `customer`,
    /// with whom file transfer must be running.
    pub fn publish_file(
        &mut self,
        now: UnixMillis,
        by: ParticipantId,
        file: FileId,
        shared: SharedFile,
    ) -> Outcome {
        if self.is_ended() {
            return Err(Refusal::SessionEnded);
        }
        if self.member(by).is_none() {
            return Err(Refusal::UnknownParticipant);
        }
        if self.primary != Some(by) {
            return Err(Refusal::NotPrimary);
        }
        check_file_name(&shared.name)?;
        if !self
            .running
            .contains(&(Activity::FileTransfer, shared.customer))
        {
            return Err(Refusal::ActivityNotRunning);
        }
        let held = self
            .files
            .values()
            .filter(|f| f.customer == shared.customer)
            .count();
        if held >= MAX_SHARED_FILES {
            return Err(Refusal::TooManyFiles);
        }
        let mut out = Vec::new();
        let event = Event::FilePublished {
            file,
            customer: shared.customer,
            by,
            name: shared.name,
            size: shared.size,
            sha256: shared.sha256,
        };
        self.emit(now, event, &mut out);
        Ok(out)
    }

    /// M1: `computer` sends the system information it read, while `system_info` runs on its
    /// customer (the helper read it only with the customer's OK in its own window).
    pub fn provide_system_info(
        &mut self,
        now: UnixMillis,
        computer: ParticipantId,
        info: serde_json::Value,
    ) -> Outcome {
        if self.is_ended() {
            return Err(Refusal::SessionEnded);
        }
        let customer = self.computer_of(computer).ok_or(Refusal::NotAComputer)?;
        if !self.running.contains(&(Activity::SystemInfo, customer)) {
            return Err(Refusal::ActivityNotRunning);
        }
        if !self.system_info_asked.contains(&customer) {
            return Err(Refusal::SystemInfoNotAsked);
        }
        let mut out = Vec::new();
        let event = Event::SystemInfoProvided {
            customer,
            computer,
            info,
        };
        self.emit(now, event, &mut out);
        Ok(out)
    }

    /// M5: `computer` restarts with its customer's OK (`reboot` runs on them); its helper
    /// rejoins afterwards with a ticket the server keeps.
    pub fn restarting(&mut self, now: UnixMillis, computer: ParticipantId) -> Outcome {
        if self.is_ended() {
            return Err(Refusal::SessionEnded);
        }
        let customer = self.computer_of(computer).ok_or(Refusal::NotAComputer)?;
        if !self.running.contains(&(Activity::Reboot, customer)) {
            return Err(Refusal::ActivityNotRunning);
        }
        let mut out = Vec::new();
        let event = Event::ComputerRestarting { customer, computer };
        self.emit(now, event, &mut out);
        Ok(out)
    }

    /// M5: whether `customer`'s computer said it is restarting and is not back yet.
    pub fn is_restarting(&self, customer: ParticipantId) -> bool {
        self.restarting.contains(&customer)
    }

    pub fn is_recording(&self) -> bool {
        self.running.iter().any(|(a, _)| *a == Activity::Recording)
    }

    /// SPEC VI2: only the primary CSR and the selected customer send video.
    fn may_send_camera(&self, who: ParticipantId) -> bool {
        self.primary == Some(who) || self.selected == Some(who)
    }

    fn member(&self, id: ParticipantId) -> Option<&Member> {
        self.members.iter().find(|m| m.info.id == id)
    }

    // ---- handle_* : check, then emit ----

    /// A participant joins. `as_primary` is for the host at creation only; agents taking a
    /// transferred session use [`Self::accept_transfer`].
    pub fn join(&mut self, now: UnixMillis, info: ParticipantInfo, as_primary: bool) -> Outcome {
        if self.is_ended() {
            return Err(Refusal::SessionEnded);
        }
        match info.role {
            Role::Customer => {
                if self.customer_count() >= self.init.max_customers {
                    return Err(Refusal::CustomerLimit(self.init.max_customers));
                }
            }
            Role::Csr => {
                // One console and one phone per account.
                if info.account.is_some()
                    && self
                        .members
                        .iter()
                        .any(|m| m.info.account == info.account && m.info.phone == info.phone)
                {
                    return Err(Refusal::AlreadyJoined);
                }
            }
        }
        if as_primary && (info.role != Role::Csr || info.phone || self.primary.is_some()) {
            return Err(Refusal::NotPrimary);
        }
        let mut out = Vec::new();
        let id = info.id;
        let role = info.role;
        self.emit(
            now,
            Event::ParticipantJoined { participant: info },
            &mut out,
        );
        if as_primary {
            // The journal says "this CSR is primary now" the same way for the host and for an
            // agent taking a transfer.
            self.emit(now, Event::TransferAccepted { primary: id }, &mut out);
        }
        if role == Role::Customer && self.selected.is_none() {
            self.emit(
                now,
                Event::CustomerSelected { customer: Some(id) },
                &mut out,
            );
        }
        if role == Role::Customer {
            self.ask_to_record(now, id, &mut out);
        }
        Ok(out)
    }

    /// A customer joins over HTTP: they may connect their WebSocket, which takes their slot
    /// ([`Self::connect`]). Nothing is journaled and no slot is held until then. At most
    /// `per_minute` joins a minute, so joining over and over cannot crowd the session.
    pub fn admit(
        &mut self,
        now: UnixMillis,
        info: ParticipantInfo,
        per_minute: u32,
    ) -> Result<(), Refusal> {
        if self.is_ended() {
            return Err(Refusal::SessionEnded);
        }
        if info.role != Role::Customer {
            return Err(Refusal::NotACustomer);
        }
        self.admissions.expire(now);
        self.admissions
            .check_rate(now, per_minute)
            .map_err(Refusal::TooManyJoins)?;
        // Already full of connected customers: say so now rather than at the WebSocket.
        if self.customer_count() >= self.init.max_customers {
            return Err(Refusal::CustomerLimit(self.init.max_customers));
        }
        self.admissions.recent.push_back(now);
        self.admissions.waiting.insert(info.id, (info, now));
        Ok(())
    }

    /// A participant's WebSocket connects. Someone present just reconnects (nothing to
    /// journal); an admitted customer joins now and takes a slot, if one is free. A refused
    /// customer stays admitted, so they can try again while their admission lasts.
    pub fn connect(&mut self, now: UnixMillis, id: ParticipantId) -> Outcome {
        if self.is_ended() {
            return Err(Refusal::SessionEnded);
        }
        if self.removed.contains(&id) {
            return Err(Refusal::Removed);
        }
        if self.member(id).is_some() {
            return Ok(Vec::new());
        }
        self.admissions.expire(now);
        let (info, _) = self
            .admissions
            .waiting
            .get(&id)
            .cloned()
            .ok_or(Refusal::UnknownParticipant)?;
        let out = match self.admissions.computers.get(&id).copied() {
            Some(customer) => {
                let abilities = self
                    .admissions
                    .abilities
                    .get(&id)
                    .cloned()
                    .unwrap_or_default();
                self.join_computer(now, info, customer, abilities)?
            }
            None => self.join(now, info, false)?,
        };
        self.admissions.waiting.remove(&id);
        self.admissions.computers.remove(&id);
        self.admissions.abilities.remove(&id);
        Ok(out)
    }

    /// A customer's Tandem Helper, paired with their code, may connect as their computer
    /// ([`Self::connect`]); answers its participant (named "<customer>'s computer"). At most one
    /// computer per customer: a second is refused while the first is there or waiting, so a
    /// code that leaked cannot push the customer's own helper off.
    pub fn admit_computer(
        &mut self,
        now: UnixMillis,
        customer: ParticipantId,
        computer: ParticipantId,
    ) -> Result<ParticipantInfo, Refusal> {
        self.admit_able_computer(now, customer, computer, Vec::new())
    }

    /// [`Self::admit_computer`] for a helper that says it can do `abilities` (those of them
    /// that need it, [`Activity::needs_helper_ability`]; others are ignored).
    pub fn admit_able_computer(
        &mut self,
        now: UnixMillis,
        customer: ParticipantId,
        computer: ParticipantId,
        abilities: Vec<Activity>,
    ) -> Result<ParticipantInfo, Refusal> {
        if self.is_ended() {
            return Err(Refusal::SessionEnded);
        }
        let m = self.member(customer).ok_or(Refusal::UnknownParticipant)?;
        self.may_own_computer(m)?;
        let name = format!("{}'s computer", m.info.name);
        self.admissions.expire(now);
        if self.computer_for(customer).is_some()
            || self.admissions.computers.values().any(|c| *c == customer)
        {
            return Err(Refusal::ComputerAttached);
        }
        let info = ParticipantInfo {
            id: computer,
            role: Role::Customer,
            name,
            email: None,
            account: None,
            is_agent: false,
            phone: false,
        };
        self.admissions
            .waiting
            .insert(computer, (info.clone(), now));
        self.admissions.computers.insert(computer, customer);
        let mut abilities: Vec<Activity> = abilities
            .into_iter()
            .filter(|a| a.is_helper_ability())
            .collect();
        abilities.sort();
        abilities.dedup();
        self.admissions.abilities.insert(computer, abilities);
        Ok(info)
    }

    /// A computer admitted by [`Self::admit_computer`] connects: it joins beside its customer,
    /// if they are still there and have no other computer.
    fn join_computer(
        &mut self,
        now: UnixMillis,
        info: ParticipantInfo,
        customer: ParticipantId,
        abilities: Vec<Activity>,
    ) -> Outcome {
        let m = self.member(customer).ok_or(Refusal::UnknownParticipant)?;
        self.may_own_computer(m)?;
        if self.computer_for(customer).is_some() {
            return Err(Refusal::ComputerAttached);
        }
        let mut out = Vec::new();
        let computer = info.id;
        self.emit(
            now,
            Event::ParticipantJoined { participant: info },
            &mut out,
        );
        self.emit(
            now,
            Event::ComputerAttached {
                computer,
                customer,
                abilities,
            },
            &mut out,
        );
        // Questions about the computer still open on the page (control waiting for the helper
        // above all) are asked again, now in the helper's window.
        let moved: Vec<(u32, PendingConsent)> = self
            .pending
            .iter()
            .filter(|(_, p)| p.customer == customer && p.activity.is_sharing())
            .map(|(r, p)| (*r, *p))
            .collect();
        for (request, p) in moved {
            self.emit(
                now,
                Event::ConsentWithdrawn {
                    request,
                    cause: None,
                },
                &mut out,
            );
            self.ask_or_start(now, p.activity, customer, p.by, &mut out);
        }
        Ok(out)
    }

    /// A customer pairs Tandem Helper for themself (issue 16); so does the primary CSR, to give
    /// control of their own desktop (D4). Nobody else has a computer in the session.
    fn may_own_computer(&self, m: &Member) -> Result<(), Refusal> {
        if self.is_customer(m) {
            return Ok(());
        }
        if m.info.role == Role::Csr && !m.info.phone {
            return self.require_primary(m.info.id);
        }
        Err(Refusal::NotACustomer)
    }

    /// Whether the primary CSR removed this participant.
    pub fn was_removed(&self, id: ParticipantId) -> bool {
        self.removed.contains(&id)
    }

    /// An agent takes a transferred session and becomes its primary CSR (SPEC S8). Whether this
    /// agent may take it (queue membership, named agents) is the queue's rule, checked before.
    pub fn accept_transfer(&mut self, now: UnixMillis, info: ParticipantInfo) -> Outcome {
        if self.is_ended() {
            return Err(Refusal::SessionEnded);
        }
        if !matches!(self.status, Status::Waiting(_)) {
            return Err(Refusal::NotWaiting);
        }
        if info.role != Role::Csr {
            return Err(Refusal::NotStaff);
        }
        let mut out = Vec::new();
        let id = info.id;
        if let Some(existing) = self
            .members
            .iter()
            .find(|m| info.account.is_some() && m.info.account == info.account)
        {
            // An assistant already present takes over without joining twice.
            let existing = existing.info.id;
            self.emit(now, Event::TransferAccepted { primary: existing }, &mut out);
        } else {
            self.emit(
                now,
                Event::ParticipantJoined { participant: info },
                &mut out,
            );
            self.emit(now, Event::TransferAccepted { primary: id }, &mut out);
        }
        // Customers who joined while nobody was in charge are asked now (SPEC R3).
        let customers: Vec<ParticipantId> = self
            .members
            .iter()
            .filter(|m| self.is_customer(m))
            .map(|m| m.info.id)
            .collect();
        for customer in customers {
            self.ask_to_record(now, customer, &mut out);
        }
        Ok(out)
    }

    /// A command from a present participant.
    pub fn handle(&mut self, now: UnixMillis, from: ParticipantId, cmd: Command) -> Outcome {
        if self.is_ended() {
            return Err(Refusal::SessionEnded);
        }
        let role = self
            .member(from)
            .ok_or(Refusal::UnknownParticipant)?
            .info
            .role;
        let sender = Sender { id: from, role };
        let mut out = Vec::new();
        // One method per command, named for it; each checks the command and emits its events.
        match cmd {
            Command::Chat { to, text, phrase } => {
                self.chat(now, sender, to, text, phrase, &mut out)?
            }
            Command::SelectCustomer { customer } => {
                self.select_customer(now, from, customer, &mut out)?
            }
            Command::RequestActivity { activity } => {
                self.request_activity(now, from, activity, &mut out)?
            }
            Command::ConsentReply {
                request,
                grant,
                allow_all,
                reason,
            } => {
                let answer = Answer {
                    grant,
                    allow_all,
                    reason,
                };
                self.consent_reply(now, from, request, answer, &mut out)?
            }
            Command::CancelRequest { request } => {
                self.cancel_request(now, from, request, &mut out)?
            }
            Command::StopActivity { activity } => {
                self.stop_activity(now, sender, activity, &mut out)?
            }
            Command::WithdrawFile { file } => self.withdraw_file(now, from, file, &mut out)?,
            Command::RefreshSystemInfo => self.refresh_system_info(now, from, &mut out)?,
            Command::LoginAsUser { user, password } => {
                self.login_as_user(now, from, user, &password, &mut out)?
            }
            Command::LoginAsUserResult {
                state,
                user,
                code,
                reason,
            } => {
                let result = login_as_user::LoginResult {
                    state,
                    user,
                    code,
                    reason,
                };
                self.login_as_user_result(now, from, result, &mut out)?
            }
            Command::StartVoiceCall => self.start_voice_call(now, from, &mut out)?,
            Command::EndVoiceCall => self.end_voice_call(now, from, &mut out)?,
            Command::JoinVoice => self.join_voice(now, from, &mut out)?,
            Command::AskToSpeak { asking } => self.ask_to_speak(now, from, asking, &mut out)?,
            Command::LeaveVoice => self.leave_voice(now, from, &mut out)?,
            Command::PassMicrophone { to } => self.pass_microphone(now, from, to, &mut out)?,
            Command::TakeMicrophone { from: holder } => {
                self.take_microphone(now, from, holder, &mut out)?
            }
            Command::HandControl { to } => self.hand_control(now, from, to, &mut out)?,
            Command::Transfer { target, message } => {
                self.transfer(now, from, target, message, &mut out)?
            }
            Command::SetNotes { text } => self.set_notes(now, sender, text, &mut out)?,
            Command::EndSession { confirm, notes } => {
                self.end_session(now, from, confirm, notes, &mut out)?
            }
            Command::SetMicrophoneVolume {
                participant,
                percent,
            } => self.set_microphone_volume(now, from, participant, percent, &mut out)?,
            Command::SetDisplayMode { mode } => self.set_display_mode(now, from, mode, &mut out)?,
            Command::StartCamera => self.start_camera(now, sender, &mut out)?,
            Command::StopCamera => self.stop_camera(now, from, &mut out)?,
            // Connecting media changes no rule state; the session hands the SDP to its media
            // worker, which applies the policy these rules give it.
            Command::MediaOffer { .. } | Command::MediaAnswer { .. } => {}
            Command::Leave => self.leave(now, from, &mut out)?,
            Command::TakeControl => self.take_control(now, from, &mut out)?,
            Command::RemoveParticipant { participant } => {
                self.remove_participant(now, from, participant, &mut out)?
            }
        }
        self.stop_cameras_without_right(now, &mut out);
        Ok(out)
    }

    /// A chat message, typed or one of the quick phrases (SPEC S10).
    fn chat(
        &mut self,
        now: UnixMillis,
        sender: Sender,
        to: Option<ParticipantId>,
        text: Option<String>,
        phrase: Option<usize>,
        out: &mut Vec<Record>,
    ) -> Result<(), Refusal> {
        let Sender {
            id: from,
            role: sender_role,
        } = sender;
        let text = match (text, phrase) {
            (_, Some(i)) => {
                if sender_role != Role::Csr {
                    return Err(Refusal::NotStaff);
                }
                let phrases = self
                    .init
                    .quick_phrases
                    .as_ref()
                    .ok_or(Refusal::QuickPhrasesDisabled)?;
                phrases.get(i).ok_or(Refusal::UnknownQuickPhrase)?.clone()
            }
            (Some(t), None) => t,
            (None, None) => return Err(Refusal::BadChatText),
        };
        let n = text.chars().count();
        if text.trim().is_empty() || n > MAX_CHAT_CHARS {
            return Err(Refusal::BadChatText);
        }
        if let Some(to) = to
            && (to == from || self.member(to).is_none())
        {
            return Err(Refusal::UnknownParticipant);
        }
        self.emit(now, Event::Chat { from, to, text }, out);
        Ok(())
    }

    /// The primary CSR picks which customer the support activities are for.
    fn select_customer(
        &mut self,
        now: UnixMillis,
        from: ParticipantId,
        customer: ParticipantId,
        out: &mut Vec<Record>,
    ) -> Result<(), Refusal> {
        self.require_primary(from)?;
        let m = self.member(customer).ok_or(Refusal::UnknownParticipant)?;
        if !self.is_customer(m) {
            return Err(Refusal::NotACustomer);
        }
        if self.selected != Some(customer) {
            if let Some(previous) = self.selected {
                self.stop_for_customer(now, previous, StopCause::CustomerChanged, out);
            }
            self.emit(
                now,
                Event::CustomerSelected {
                    customer: Some(customer),
                },
                out,
            );
        }
        Ok(())
    }

    /// The primary CSR asks for an activity with the selected customer: asked for consent, or
    /// started if it was given for all (SPEC S9, F3); showing the CSR's screen starts at once.
    fn request_activity(
        &mut self,
        now: UnixMillis,
        from: ParticipantId,
        activity: Activity,
        out: &mut Vec<Record>,
    ) -> Result<(), Refusal> {
        let customer = self.askable(from, activity)?;
        self.check_conflicts(activity, customer)?;
        if activity.needs_helper_ability() && !self.computer_can(customer, activity) {
            return Err(Refusal::HelperRequired);
        }
        // M3: scripts are asked for with the scripts to run ([`SessionRules::propose_scripts`]).
        if activity == Activity::RunScript {
            return Err(Refusal::BadScriptList);
        }
        if activity == Activity::GiveControl {
            // D4: asked in the primary's own Tandem Helper, which alone can let anyone use
            // their mouse and keyboard; nobody's "allow all" starts it.
            let computer = self.computer_for(from).ok_or(Refusal::CsrHelperNeeded)?;
            self.emit(
                now,
                Event::ConsentRequested {
                    request: self.next_request,
                    activity,
                    customer,
                    by: from,
                    computer: Some(computer),
                    helper_needed: false,
                },
                out,
            );
        } else if activity.is_showing() {
            // S9 asks consent for what is done on the customer's computer; showing the CSR's
            // own screen is not, so it starts at once.
            self.emit(
                now,
                Event::ActivityStarted {
                    activity,
                    customer,
                    pre_approved: false,
                },
                out,
            );
        } else {
            self.ask_or_start(now, activity, customer, from, out);
        }
        Ok(())
    }

    /// A customer answers a consent request.
    fn consent_reply(
        &mut self,
        now: UnixMillis,
        from: ParticipantId,
        request: u32,
        answer: Answer,
        out: &mut Vec<Record>,
    ) -> Result<(), Refusal> {
        let Answer {
            grant,
            allow_all,
            reason,
        } = answer;
        let pending = *self
            .pending
            .get(&request)
            .filter(|p| {
                // D4: the CSR's own question, answered in the CSR's helper only.
                (p.customer == from && p.activity != Activity::GiveControl)
                    || p.computer == Some(from)
            })
            .ok_or(Refusal::UnknownConsentRequest)?;
        // Issue 16: a question for the computer is answered in Tandem Helper's window, which
        // keeps its own record of what it allowed; the page may only refuse.
        if grant && from == pending.customer {
            if pending.computer.is_some() {
                return Err(Refusal::ConsentInHelper);
            }
            if pending.helper_needed {
                return Err(Refusal::HelperNeeded);
            }
        }
        self.emit(
            now,
            Event::ConsentAnswered {
                request,
                granted: grant,
                allow_all: grant && allow_all,
                reason: reason.filter(|_| !grant),
            },
            out,
        );
        // The state may have moved on while the customer was reading the dialog; a grant
        // that would now break F3 is recorded but starts nothing.
        if grant
            && self
                .check_conflicts(pending.activity, pending.customer)
                .is_ok()
        {
            self.emit(
                now,
                Event::ActivityStarted {
                    activity: pending.activity,
                    customer: pending.customer,
                    pre_approved: false,
                },
                out,
            );
        }
        Ok(())
    }

    /// M1: the primary CSR asks the selected customer's computer to read itself again.
    fn refresh_system_info(
        &mut self,
        now: UnixMillis,
        from: ParticipantId,
        out: &mut Vec<Record>,
    ) -> Result<(), Refusal> {
        if self.primary != Some(from) {
            return Err(Refusal::NotPrimary);
        }
        let customer = self.selected.ok_or(Refusal::NoCustomerSelected)?;
        if !self.running.contains(&(Activity::SystemInfo, customer)) {
            return Err(Refusal::ActivityNotRunning);
        }
        let computer = self.computer_for(customer).ok_or(Refusal::HelperRequired)?;
        let event = Event::SystemInfoRequested {
            customer,
            computer,
            by: from,
        };
        self.emit(now, event, out);
        Ok(())
    }

    /// F1: the primary CSR takes back one published file.
    fn withdraw_file(
        &mut self,
        now: UnixMillis,
        from: ParticipantId,
        file: FileId,
        out: &mut Vec<Record>,
    ) -> Result<(), Refusal> {
        if self.primary != Some(from) {
            return Err(Refusal::NotPrimary);
        }
        let customer = self.files.get(&file).ok_or(Refusal::UnknownFile)?.customer;
        self.emit(now, Event::FileWithdrawn { file, customer }, out);
        Ok(())
    }

    /// Stops an activity: the primary CSR stops it for every customer, a customer for themself.
    fn stop_activity(
        &mut self,
        now: UnixMillis,
        sender: Sender,
        activity: Activity,
        out: &mut Vec<Record>,
    ) -> Result<(), Refusal> {
        let Sender {
            id: from,
            role: sender_role,
        } = sender;
        // SPEC R3: only the customer (or the end of the session) stops it.
        if activity == Activity::Recording
            && self.init.automatic_recording
            && sender_role == Role::Csr
        {
            return Err(Refusal::RecordingAutomatic);
        }
        // D4, D5: the primary's Tandem Helper ends giving control of the primary's desktop.
        let is_primary = self.primary == Some(from)
            || (activity == Activity::GiveControl
                && self.primary.is_some()
                && self.computer_of(from) == self.primary);
        // The helper's Stop (issue 16) ends what runs on its customer's computer, as the
        // customer's own page may; other activities (recording) stay the person's.
        let stops_for = match self.computer_of(from) {
            Some(customer) if activity.is_sharing() => customer,
            _ => from,
        };
        let targets: Vec<ParticipantId> = self
            .running
            .iter()
            .filter(|(a, c)| *a == activity && (is_primary || *c == stops_for))
            .map(|(_, c)| *c)
            .collect();
        if targets.is_empty() {
            return if is_primary || sender_role == Role::Customer {
                Err(Refusal::ActivityNotRunning)
            } else {
                Err(Refusal::NotPrimary)
            };
        }
        for customer in targets {
            self.emit(
                now,
                Event::ActivityStopped {
                    activity,
                    customer,
                    cause: StopCause::Stopped,
                },
                out,
            );
        }
        Ok(())
    }

    /// D4: either side takes the pointer while the primary gives control of their desktop: the
    /// customer given control, or the primary (from the console or their Tandem Helper).
    fn take_control(
        &mut self,
        now: UnixMillis,
        from: ParticipantId,
        out: &mut Vec<Record>,
    ) -> Result<(), Refusal> {
        let (customer, computer) = self.given_control().ok_or(Refusal::ActivityNotRunning)?;
        let holder = if from == customer {
            ControlHolder::Customer
        } else if Some(from) == self.primary || from == computer {
            ControlHolder::Csr
        } else {
            return Err(Refusal::NotPrimary);
        };
        if self.control_holder() == Some(holder) {
            return Err(Refusal::AlreadyInControl);
        }
        self.emit(
            now,
            Event::ControlTaken {
                customer,
                by: from,
                holder,
            },
            out,
        );
        Ok(())
    }

    /// The primary CSR starts the voice call and holds its first microphone.
    fn start_voice_call(
        &mut self,
        now: UnixMillis,
        from: ParticipantId,
        out: &mut Vec<Record>,
    ) -> Result<(), Refusal> {
        self.require_primary(from)?;
        if self.voice.is_some() {
            return Err(Refusal::VoiceCallActive);
        }
        self.emit(now, Event::VoiceCallStarted { by: from }, out);
        self.emit(now, Event::VoiceJoined { participant: from }, out);
        self.emit(
            now,
            Event::MicrophoneHolders {
                holders: vec![from],
            },
            out,
        );
        Ok(())
    }

    /// The primary CSR ends the voice call.
    fn end_voice_call(
        &mut self,
        now: UnixMillis,
        from: ParticipantId,
        out: &mut Vec<Record>,
    ) -> Result<(), Refusal> {
        self.require_primary(from)?;
        if self.voice.is_none() {
            return Err(Refusal::NoVoiceCall);
        }
        self.emit(now, Event::VoiceCallEnded { by: Some(from) }, out);
        Ok(())
    }

    /// Someone joins the running voice call.
    fn join_voice(
        &mut self,
        now: UnixMillis,
        from: ParticipantId,
        out: &mut Vec<Record>,
    ) -> Result<(), Refusal> {
        let voice = self.voice.as_ref().ok_or(Refusal::NoVoiceCall)?;
        if voice.members.contains(&from) {
            return Err(Refusal::AlreadyInVoiceCall);
        }
        self.emit(now, Event::VoiceJoined { participant: from }, out);
        Ok(())
    }

    /// Someone leaves the voice call (the session stays).
    fn leave_voice(
        &mut self,
        now: UnixMillis,
        from: ParticipantId,
        out: &mut Vec<Record>,
    ) -> Result<(), Refusal> {
        let voice = self.voice.as_ref().ok_or(Refusal::NoVoiceCall)?;
        if !voice.members.contains(&from) {
            return Err(Refusal::NotInVoiceCall);
        }
        self.remove_from_voice(now, from, out);
        Ok(())
    }

    /// The primary CSR gives a member of the call a microphone (SPEC V3).
    fn pass_microphone(
        &mut self,
        now: UnixMillis,
        from: ParticipantId,
        to: ParticipantId,
        out: &mut Vec<Record>,
    ) -> Result<(), Refusal> {
        self.require_primary(from)?;
        let voice = self.voice.as_ref().ok_or(Refusal::NoVoiceCall)?;
        if !voice.members.contains(&to) {
            return Err(Refusal::NotInVoiceCall);
        }
        if !voice.microphones.contains(&to) {
            if voice.microphones.len() >= MAX_MICROPHONES {
                return Err(Refusal::MicrophoneLimit);
            }
            let mut holders = voice.microphones.clone();
            holders.push(to);
            self.emit(now, Event::MicrophoneHolders { holders }, out);
        }
        Ok(())
    }

    /// A member of the call without a microphone asks to speak, or takes the ask back.
    fn ask_to_speak(
        &mut self,
        now: UnixMillis,
        from: ParticipantId,
        asking: bool,
        out: &mut Vec<Record>,
    ) -> Result<(), Refusal> {
        let voice = self.voice.as_ref().ok_or(Refusal::NoVoiceCall)?;
        if !voice.members.contains(&from) {
            return Err(Refusal::NotInVoiceCall);
        }
        if asking && voice.microphones.contains(&from) {
            return Err(Refusal::AlreadyHoldsMicrophone);
        }
        if voice.asking.contains(&from) != asking {
            self.emit(
                now,
                Event::SpeakAsked {
                    participant: from,
                    asking,
                },
                out,
            );
        }
        Ok(())
    }

    /// The primary CSR takes a holder's microphone back.
    fn take_microphone(
        &mut self,
        now: UnixMillis,
        from: ParticipantId,
        holder: ParticipantId,
        out: &mut Vec<Record>,
    ) -> Result<(), Refusal> {
        self.require_primary(from)?;
        let voice = self.voice.as_ref().ok_or(Refusal::NoVoiceCall)?;
        if !voice.microphones.contains(&holder) {
            return Err(Refusal::NotAMicrophoneHolder);
        }
        let holders = voice
            .microphones
            .iter()
            .copied()
            .filter(|h| *h != holder)
            .collect();
        self.emit(now, Event::MicrophoneHolders { holders }, out);
        Ok(())
    }

    /// The primary CSR hands control of the session to an assistant (SPEC S7).
    fn hand_control(
        &mut self,
        now: UnixMillis,
        from: ParticipantId,
        to: ParticipantId,
        out: &mut Vec<Record>,
    ) -> Result<(), Refusal> {
        self.require_primary(from)?;
        let target = self.member(to).ok_or(Refusal::UnknownParticipant)?;
        if target.info.role != Role::Csr || target.info.phone || to == from {
            return Err(Refusal::NotAnAssistant);
        }
        // SPEC S7: every support activity stops; a running voice call goes on.
        self.stop_all(now, StopCause::ControlHandedOver, out);
        self.emit(now, Event::ControlHanded { from, to }, out);
        Ok(())
    }

    /// The primary CSR transfers the session to a queue or agents and leaves it (SPEC S8).
    fn transfer(
        &mut self,
        now: UnixMillis,
        from: ParticipantId,
        target: TransferTarget,
        message: Option<String>,
        out: &mut Vec<Record>,
    ) -> Result<(), Refusal> {
        self.require_primary(from)?;
        if !self.member(from).is_some_and(|m| m.info.is_agent) {
            return Err(Refusal::NotAnAgent);
        }
        if message
            .as_ref()
            .is_some_and(|m| m.chars().count() > MAX_TRANSFER_MESSAGE_CHARS)
        {
            return Err(Refusal::TransferMessageTooLong);
        }
        let mut target = target;
        if let TransferTarget::Agents { agents } = &mut target {
            agents.sort();
            agents.dedup();
            if agents.is_empty() || agents.len() > MAX_TRANSFER_AGENTS {
                return Err(Refusal::InvalidTransferTarget);
            }
        }
        self.stop_all(now, StopCause::Transferred, out);
        // SPEC S8: a voice call the transferring CSR started ends with their leaving.
        if self.voice.as_ref().is_some_and(|v| v.started_by == from) {
            self.emit(now, Event::VoiceCallEnded { by: Some(from) }, out);
        } else if self
            .voice
            .as_ref()
            .is_some_and(|v| v.members.contains(&from))
        {
            self.remove_from_voice(now, from, out);
        }
        if let Some(computer) = self.computer_for(from) {
            self.depart(now, computer, LeaveReason::CustomerLeft, out);
        }
        let message = message.filter(|m| !m.trim().is_empty());
        self.emit(
            now,
            Event::SessionTransferred {
                by: from,
                target,
                message,
            },
            out,
        );
        self.emit(
            now,
            Event::ParticipantLeft {
                participant: from,
                reason: LeaveReason::Transferred,
            },
            out,
        );
        Ok(())
    }

    /// Staff change the session's notes (SPEC S11).
    fn set_notes(
        &mut self,
        now: UnixMillis,
        sender: Sender,
        text: String,
        out: &mut Vec<Record>,
    ) -> Result<(), Refusal> {
        let Sender {
            id: from,
            role: sender_role,
        } = sender;
        if sender_role != Role::Csr {
            return Err(Refusal::NotStaff);
        }
        if text.chars().count() > MAX_NOTES_CHARS {
            return Err(Refusal::NotesTooLong);
        }
        if text != self.notes {
            self.emit(now, Event::NotesUpdated { by: from, text }, out);
        }
        Ok(())
    }

    /// The primary CSR ends the session, confirmed, with the last notes.
    fn end_session(
        &mut self,
        now: UnixMillis,
        from: ParticipantId,
        confirm: bool,
        notes: Option<String>,
        out: &mut Vec<Record>,
    ) -> Result<(), Refusal> {
        self.require_primary(from)?;
        if !confirm {
            return Err(Refusal::ConfirmationRequired);
        }
        if let Some(text) = notes {
            if text.chars().count() > MAX_NOTES_CHARS {
                return Err(Refusal::NotesTooLong);
            }
            if text != self.notes {
                self.emit(now, Event::NotesUpdated { by: from, text }, out);
            }
        }
        self.end(now, Some(from), EndReason::EndedByCsr, out);
        Ok(())
    }

    /// Sets one's own microphone volume, or (the primary CSR) anyone's (SPEC V4).
    fn set_microphone_volume(
        &mut self,
        now: UnixMillis,
        from: ParticipantId,
        participant: Option<ParticipantId>,
        percent: u16,
        out: &mut Vec<Record>,
    ) -> Result<(), Refusal> {
        let target = participant.unwrap_or(from);
        if target != from {
            self.require_primary(from)?;
        }
        if self.member(target).is_none() {
            return Err(Refusal::UnknownParticipant);
        }
        if percent > MAX_VOLUME_PERCENT {
            return Err(Refusal::BadVolume);
        }
        if self.volumes.get(&target).copied().unwrap_or(100) != percent {
            self.emit(
                now,
                Event::MicrophoneVolume {
                    participant: target,
                    percent,
                },
                out,
            );
        }
        Ok(())
    }

    /// The primary CSR changes how the session is shown.
    fn set_display_mode(
        &mut self,
        now: UnixMillis,
        from: ParticipantId,
        mode: DisplayMode,
        out: &mut Vec<Record>,
    ) -> Result<(), Refusal> {
        self.require_primary(from)?;
        if mode != self.display_mode {
            self.emit(now, Event::DisplayMode { by: from, mode }, out);
        }
        Ok(())
    }

    /// Someone allowed to send video starts their camera (SPEC VI1, VI2).
    fn start_camera(
        &mut self,
        now: UnixMillis,
        sender: Sender,
        out: &mut Vec<Record>,
    ) -> Result<(), Refusal> {
        let Sender {
            id: from,
            role: sender_role,
        } = sender;
        if self.cameras.contains(&from) {
            return Err(Refusal::CameraAlreadyOn);
        }
        if !self.may_send_camera(from) {
            return Err(Refusal::CameraNotAllowed);
        }
        // VI1: customers see video only after the CSR sends, and send only then too.
        if sender_role == Role::Customer && !self.primary.is_some_and(|p| self.cameras.contains(&p))
        {
            return Err(Refusal::CsrCameraFirst);
        }
        self.emit(now, Event::CameraStarted { participant: from }, out);
        Ok(())
    }

    /// Someone stops their camera.
    fn stop_camera(
        &mut self,
        now: UnixMillis,
        from: ParticipantId,
        out: &mut Vec<Record>,
    ) -> Result<(), Refusal> {
        if !self.cameras.contains(&from) {
            return Err(Refusal::CameraNotOn);
        }
        self.emit(now, Event::CameraStopped { participant: from }, out);
        Ok(())
    }

    /// Someone other than the primary CSR leaves the session.
    fn leave(
        &mut self,
        now: UnixMillis,
        from: ParticipantId,
        out: &mut Vec<Record>,
    ) -> Result<(), Refusal> {
        if self.primary == Some(from) {
            return Err(Refusal::PrimaryCannotLeave);
        }
        self.depart(now, from, LeaveReason::Left, out);
        Ok(())
    }

    /// The primary CSR removes someone (issue 15: a stranger holding a customer slot). They
    /// leave as if they had, and their token does not connect again.
    fn remove_participant(
        &mut self,
        now: UnixMillis,
        from: ParticipantId,
        who: ParticipantId,
        out: &mut Vec<Record>,
    ) -> Result<(), Refusal> {
        self.require_primary(from)?;
        if who == from {
            return Err(Refusal::CannotRemoveSelf);
        }
        if self.member(who).is_none() {
            return Err(Refusal::UnknownParticipant);
        }
        self.emit(
            now,
            Event::ParticipantRemoved {
                participant: who,
                by: from,
            },
            out,
        );
        self.depart(now, who, LeaveReason::Removed, out);
        Ok(())
    }

    /// A participant's connection went away for good. The primary CSR's going ends the session
    /// (SPEC S12: closing the dashboard ends it); anyone else just leaves.
    pub fn disconnected(&mut self, now: UnixMillis, who: ParticipantId) -> Vec<Record> {
        self.gone(now, who, LeaveReason::Disconnected)
    }

    /// The recording could not go on (SPEC R2: its disk did not keep up): it stops, and everyone
    /// is told why.
    pub fn recording_failed(&mut self, now: UnixMillis) -> Vec<Record> {
        let mut out = Vec::new();
        let running: Vec<ParticipantId> = self
            .running
            .iter()
            .filter(|(a, _)| *a == Activity::Recording)
            .map(|(_, c)| *c)
            .collect();
        for customer in running {
            self.emit(
                now,
                Event::ActivityStopped {
                    activity: Activity::Recording,
                    customer,
                    cause: StopCause::Failed,
                },
                &mut out,
            );
        }
        out
    }

    /// A participant whose actor could not be kept alive is removed.
    pub fn crashed(&mut self, now: UnixMillis, who: ParticipantId) -> Vec<Record> {
        self.gone(now, who, LeaveReason::Crashed)
    }

    /// Someone gone without leaving: the primary's going ends the session, anyone else departs.
    fn gone(&mut self, now: UnixMillis, who: ParticipantId, reason: LeaveReason) -> Vec<Record> {
        let mut out = Vec::new();
        if self.is_ended() || self.member(who).is_none() {
            return out;
        }
        if self.primary == Some(who) {
            self.end(now, None, EndReason::PrimaryDisconnected, &mut out);
        } else {
            self.depart(now, who, reason, &mut out);
            self.stop_cameras_without_right(now, &mut out);
        }
        out
    }

    /// Ends a session that was live when the server stopped.
    pub fn interrupt(&mut self, now: UnixMillis) -> Vec<Record> {
        let mut out = Vec::new();
        if !self.is_ended() {
            self.end(now, None, EndReason::Interrupted, &mut out);
        }
        out
    }

    /// The customer `from` (the primary CSR) may ask `activity` of now: the selected one, on
    /// whom it neither runs nor waits for an answer.
    fn askable(&self, from: ParticipantId, activity: Activity) -> Result<ParticipantId, Refusal> {
        self.require_primary(from)?;
        let customer = self.selected.ok_or(Refusal::NoCustomerSelected)?;
        if self.running.contains(&(activity, customer)) {
            return Err(Refusal::ActivityRunning);
        }
        if self
            .pending
            .values()
            .any(|p| p.activity == activity && p.customer == customer)
        {
            return Err(Refusal::ConsentPending);
        }
        Ok(customer)
    }

    fn require_primary(&self, who: ParticipantId) -> Result<(), Refusal> {
        if self.primary == Some(who) {
            return Ok(());
        }
        if matches!(self.status, Status::Waiting(_)) {
            return Err(Refusal::SessionWaiting);
        }
        Err(Refusal::NotPrimary)
    }

    /// SPEC F3: no file transfer while an application of that customer is viewed or controlled;
    /// and the CSR shows one screen at a time (D3 or D7).
    fn check_conflicts(&self, activity: Activity, customer: ParticipantId) -> Result<(), Refusal> {
        let running = |pred: fn(Activity) -> bool| {
            self.running.iter().any(|(a, c)| *c == customer && pred(*a))
        };
        if activity == Activity::FileTransfer && running(Activity::is_application_sharing) {
            return Err(Refusal::FileTransferBlocked);
        }
        if activity.is_application_sharing() && running(|a| a == Activity::FileTransfer) {
            return Err(Refusal::FileTransferRunning);
        }
        // One screen of the CSR's at a time: the desktop, or the applications picked.
        if activity.is_csr_screen() && self.running.iter().any(|(a, _)| a.is_csr_screen()) {
            return Err(Refusal::AlreadyShowing);
        }
        Ok(())
    }

    // ---- composite transitions ----

    /// Starts `activity` at once if the customer allowed all actions, else asks them (S9).
    /// Issue 16: an activity on the computer is asked in the window of the customer's Tandem
    /// Helper if one is attached; control without one waits for it (the page cannot move the
    /// mouse, so it must not promise to), and "allow all" cannot start it.
    fn ask_or_start(
        &mut self,
        now: UnixMillis,
        activity: Activity,
        customer: ParticipantId,
        by: ParticipantId,
        out: &mut Vec<Record>,
    ) {
        let computer = self
            .computer_for(customer)
            .filter(|_| activity.is_sharing() || activity.needs_helper_ability());
        let helper_needed = activity.is_control() && computer.is_none();
        // What only a helper does is asked in its window every time: the helper keeps its own
        // record of "allow all" and answers for itself (issue 17).
        let event = if self.allow_all.contains(&customer)
            && !helper_needed
            && !activity.needs_helper_ability()
        {
            Event::ActivityStarted {
                activity,
                customer,
                pre_approved: true,
            }
        } else {
            Event::ConsentRequested {
                request: self.next_request,
                activity,
                customer,
                by,
                computer,
                helper_needed,
            }
        };
        self.emit(now, event, out);
    }

    /// SPEC R3: with automatic recording, each customer is asked to allow recording once, on
    /// joining; one who joined while the session waited for a transfer is asked when an agent
    /// takes it. S9 holds: nothing is recorded until they agree.
    fn ask_to_record(&mut self, now: UnixMillis, customer: ParticipantId, out: &mut Vec<Record>) {
        if !self.init.automatic_recording || self.recording_asked.contains(&customer) {
            return;
        }
        let Some(by) = self.primary else { return };
        self.ask_or_start(now, Activity::Recording, customer, by, out);
    }

    /// A camera whose sender is no longer the primary CSR or the selected customer stops
    /// (SPEC VI2), as after a hand-over or a change of customer; so does a customer's camera
    /// once the primary CSR's is off (VI1: customers send video only while the CSR does).
    fn stop_cameras_without_right(&mut self, now: UnixMillis, out: &mut Vec<Record>) {
        let csr_sending = self.primary.is_some_and(|p| self.cameras.contains(&p));
        let stopped: Vec<_> = self
            .cameras
            .iter()
            .copied()
            .filter(|c| !self.may_send_camera(*c) || (Some(*c) != self.primary && !csr_sending))
            .collect();
        for participant in stopped {
            self.emit(now, Event::CameraStopped { participant }, out);
        }
    }

    fn remove_from_voice(&mut self, now: UnixMillis, who: ParticipantId, out: &mut Vec<Record>) {
        let Some(voice) = &self.voice else { return };
        if !voice.members.contains(&who) {
            return;
        }
        let held = voice.microphones.contains(&who);
        let holders: Vec<_> = voice
            .microphones
            .iter()
            .copied()
            .filter(|h| *h != who)
            .collect();
        self.emit(now, Event::VoiceLeft { participant: who }, out);
        if held {
            self.emit(now, Event::MicrophoneHolders { holders }, out);
        }
    }

    /// Stops sharing on, and withdraws sharing requests to, a customer no longer selected.
    fn stop_for_customer(
        &mut self,
        now: UnixMillis,
        customer: ParticipantId,
        cause: StopCause,
        out: &mut Vec<Record>,
    ) {
        let only_sharing = cause == StopCause::CustomerChanged;
        // SPEC S6: "every running sharing activity", the CSR showing their screen included.
        let sharing = |a: Activity| a.is_sharing() || a.is_csr_screen();
        self.withdraw_where(
            now,
            |p| p.customer == customer && (!only_sharing || sharing(p.activity)),
            out,
        );
        let running: Vec<_> = self
            .running
            .iter()
            .filter(|(a, c)| *c == customer && (!only_sharing || sharing(*a)))
            .copied()
            .collect();
        for (activity, customer) in running {
            self.emit(
                now,
                Event::ActivityStopped {
                    activity,
                    customer,
                    cause,
                },
                out,
            );
        }
    }

    /// Stops every activity and withdraws every request. An automatic recording (SPEC R3) and
    /// the request for it outlive a hand-over or a transfer, which would otherwise let a CSR
    /// stop it; the end of the session stops it too.
    fn stop_all(&mut self, now: UnixMillis, cause: StopCause, out: &mut Vec<Record>) {
        let keep = |a: Activity| {
            a == Activity::Recording
                && self.init.automatic_recording
                && cause != StopCause::SessionEnded
        };
        let requests: Vec<u32> = self
            .pending
            .iter()
            .filter(|(_, p)| !keep(p.activity))
            .map(|(r, _)| *r)
            .collect();
        let running: Vec<_> = self
            .running
            .iter()
            .filter(|(a, _)| !keep(*a))
            .copied()
            .collect();
        for request in requests {
            self.emit(
                now,
                Event::ConsentWithdrawn {
                    request,
                    cause: None,
                },
                out,
            );
        }
        for (activity, customer) in running {
            self.emit(
                now,
                Event::ActivityStopped {
                    activity,
                    customer,
                    cause,
                },
                out,
            );
        }
    }

    fn depart(
        &mut self,
        now: UnixMillis,
        who: ParticipantId,
        reason: LeaveReason,
        out: &mut Vec<Record>,
    ) {
        let Some(m) = self.member(who) else { return };
        if self.is_customer(m) {
            self.stop_for_customer(now, who, StopCause::CustomerLeft, out);
        } else if let Some(customer) = self.computer_of(who) {
            self.computer_gone(now, who, customer, out);
        }
        // A computer leaves with its owner, the customer's or the CSR's (D4).
        if let Some(computer) = self.computer_for(who) {
            self.depart(now, computer, LeaveReason::CustomerLeft, out);
        }
        self.remove_from_voice(now, who, out);
        self.emit(
            now,
            Event::ParticipantLeft {
                participant: who,
                reason,
            },
            out,
        );
        if self.selected == Some(who) {
            let next = self
                .members
                .iter()
                .find(|m| self.is_customer(m))
                .map(|m| m.info.id);
            self.emit(now, Event::CustomerSelected { customer: next }, out);
        }
    }

    /// Withdraws the pending requests `which` picks.
    fn withdraw_where(
        &mut self,
        now: UnixMillis,
        which: impl Fn(&PendingConsent) -> bool,
        out: &mut Vec<Record>,
    ) {
        let requests: Vec<u32> = self
            .pending
            .iter()
            .filter(|(_, p)| which(p))
            .map(|(r, _)| *r)
            .collect();
        for request in requests {
            self.emit(
                now,
                Event::ConsentWithdrawn {
                    request,
                    cause: None,
                },
                out,
            );
        }
    }

    /// A customer's computer left while they stay: questions in its window are withdrawn, and
    /// control of it stops (nothing is left to control). Viewing goes on only if the page
    /// shares: the CSR sees the share stop otherwise.
    fn computer_gone(
        &mut self,
        now: UnixMillis,
        computer: ParticipantId,
        customer: ParticipantId,
        out: &mut Vec<Record>,
    ) {
        self.withdraw_where(now, |p| p.computer == Some(computer), out);
        let owner = customer;
        // Control of the customer's computer, what only its helper does (issue 17), or (the
        // primary's computer, D4) giving control.
        let control: Vec<(Activity, ParticipantId)> = self
            .running
            .iter()
            .filter(|(a, c)| {
                (*c == owner && (a.is_control() || a.needs_helper_ability()))
                    || (*a == Activity::GiveControl && self.primary == Some(owner))
            })
            .copied()
            .collect();
        for (activity, customer) in control {
            self.emit(
                now,
                Event::ActivityStopped {
                    activity,
                    customer,
                    cause: StopCause::ComputerLeft,
                },
                out,
            );
        }
    }

    fn end(
        &mut self,
        now: UnixMillis,
        by: Option<ParticipantId>,
        reason: EndReason,
        out: &mut Vec<Record>,
    ) {
        self.stop_all(now, StopCause::SessionEnded, out);
        if self.voice.is_some() {
            self.emit(now, Event::VoiceCallEnded { by }, out);
        }
        self.emit(now, Event::SessionEnded { by, reason }, out);
    }

    // ---- the one mutator ----

    fn emit(&mut self, now: UnixMillis, event: Event, out: &mut Vec<Record>) {
        self.apply(now, &event);
        out.push(Record {
            seq: self.next_seq,
            at: now,
            event,
        });
        self.next_seq += 1;
    }

    /// Applies one event. Total: replaying a journal never fails, whatever it holds.
    fn apply(&mut self, at: UnixMillis, event: &Event) {
        match event {
            Event::SessionCreated { .. } => self.status = Status::Active,
            Event::ParticipantJoined { participant } => {
                self.members.retain(|m| m.info.id != participant.id);
                self.members.push(Member {
                    info: participant.clone(),
                    joined_at: at,
                });
            }
            Event::ParticipantLeft { participant, .. } => {
                let p = *participant;
                self.members.retain(|m| m.info.id != p);
                self.computers
                    .retain(|computer, customer| *computer != p && *customer != p);
                let computers = &self.computers;
                self.abilities.retain(|c, _| computers.contains_key(c));
                self.allow_all.remove(&p);
                if self.primary == Some(p) {
                    self.primary = None;
                }
                if let Some(v) = &mut self.voice {
                    v.members.remove(&p);
                    v.microphones.retain(|h| *h != p);
                }
                self.cameras.remove(&p);
                self.volumes.remove(&p);
                self.recording_asked.remove(&p);
                self.files.retain(|_, f| f.customer != p);
                self.system_info.remove(&p);
                self.system_info_asked.remove(&p);
                self.files_ops
                    .retain(|_, o| o.customer != p && o.computer != p && o.by != p);
                self.script_runs.remove(&p);
                self.restarting.remove(&p);
                self.logins.remove(&p);
            }
            Event::ParticipantRemoved { participant, .. } => {
                self.removed.insert(*participant);
            }
            Event::CustomerSelected { customer } => self.selected = *customer,
            Event::ComputerAttached {
                computer,
                customer,
                abilities,
            } => {
                self.computers.insert(*computer, *customer);
                self.abilities
                    .insert(*computer, abilities.iter().copied().collect());
                self.restarting.remove(customer);
            }
            Event::ComputerRestarting { customer, .. } => {
                self.restarting.insert(*customer);
            }
            Event::LoginAsUserAttempted { .. }
            | Event::LoginAsUserStarted { .. }
            | Event::LoginAsUserFailed { .. }
            | Event::LoginAsUserEnded { .. } => self.apply_login(at, event),
            Event::Chat { from, to, text } => self.transcript.keep(transcript::ChatLine {
                seq: self.next_seq,
                at,
                from: *from,
                to: *to,
                text: text.clone(),
            }),
            Event::ConsentRequested {
                request,
                activity,
                customer,
                by,
                computer,
                helper_needed,
            } => {
                self.pending.insert(
                    *request,
                    PendingConsent {
                        activity: *activity,
                        customer: *customer,
                        by: *by,
                        computer: *computer,
                        helper_needed: *helper_needed,
                        asked_at: at,
                    },
                );
                if *activity == Activity::Recording {
                    self.recording_asked.insert(*customer);
                }
                self.next_request = self.next_request.max(request.saturating_add(1));
            }
            Event::ConsentAnswered {
                request,
                granted,
                allow_all,
                ..
            } => {
                let proposed = self.proposals.remove(request);
                if let Some(p) = self.pending.remove(request) {
                    if *granted && *allow_all {
                        self.allow_all.insert(p.customer);
                    }
                    if let Some(items) = proposed.filter(|_| *granted) {
                        self.script_runs
                            .insert(p.customer, scripts::ScriptRun::new(*request, p.by, items));
                    }
                }
            }
            Event::ConsentWithdrawn { request, .. } => {
                self.pending.remove(request);
                self.proposals.remove(request);
            }
            Event::ActivityStarted {
                activity, customer, ..
            } => {
                if *activity == Activity::GiveControl {
                    self.csr_holds = false;
                }
                self.running.insert((*activity, *customer));
                if *activity == Activity::Recording {
                    self.recording_asked.insert(*customer);
                }
                if *activity == Activity::SystemInfo {
                    self.system_info_asked.insert(*customer);
                }
            }
            Event::ActivityStopped {
                activity, customer, ..
            } => {
                if *activity == Activity::GiveControl {
                    self.csr_holds = false;
                }
                if *activity == Activity::FileTransfer {
                    self.files.retain(|_, f| f.customer != *customer);
                    self.files_ops.retain(|_, o| o.customer != *customer);
                }
                if *activity == Activity::RunScript {
                    self.script_runs.remove(customer);
                }
                if *activity == Activity::SystemInfo {
                    self.system_info_asked.remove(customer);
                }
                if *activity == Activity::LoginAsUser {
                    self.login_stopped(*customer);
                }
                self.running.remove(&(*activity, *customer));
            }
            Event::FilePublished {
                file,
                customer,
                by,
                name,
                size,
                sha256,
            } => {
                self.files.insert(
                    *file,
                    SharedFile {
                        customer: *customer,
                        by: *by,
                        name: name.clone(),
                        size: *size,
                        sha256: sha256.clone(),
                        at,
                    },
                );
            }
            Event::FileWithdrawn { file, .. } => {
                self.files.remove(file);
            }
            Event::SystemInfoProvided { customer, info, .. } => {
                self.system_info_asked.remove(customer);
                self.system_info
                    .insert(*customer, (at, std::sync::Arc::new(info.clone())));
            }
            Event::SystemInfoRequested { customer, .. } => {
                self.system_info_asked.insert(*customer);
            }
            Event::ComputerFilesRequested {
                op,
                customer,
                computer,
                by,
                request,
            } => {
                self.next_files_op = self.next_files_op.max(op.saturating_add(1));
                let pending = computer_files::PendingOp {
                    customer: *customer,
                    computer: *computer,
                    by: *by,
                    kind: request.kind(),
                };
                self.files_ops.insert(*op, pending);
            }
            Event::ComputerFilesDone { op, .. } => {
                self.files_ops.remove(op);
            }
            Event::ScriptsProposed {
                request, scripts, ..
            } => {
                self.proposals.insert(*request, scripts.clone());
            }
            Event::ScriptFinished { customer, .. } => {
                if let Some(run) = self.script_runs.get_mut(customer) {
                    run.done += 1;
                }
            }
            Event::ControlTaken { holder, .. } => self.csr_holds = *holder == ControlHolder::Csr,
            Event::VoiceCallStarted { by } => {
                self.voice = Some(VoiceCall {
                    started_by: *by,
                    members: BTreeSet::new(),
                    microphones: Vec::new(),
                    asking: BTreeSet::new(),
                })
            }
            Event::VoiceCallEnded { .. } => self.voice = None,
            Event::VoiceJoined { participant } => {
                if let Some(v) = &mut self.voice {
                    v.members.insert(*participant);
                }
            }
            Event::VoiceLeft { participant } => {
                if let Some(v) = &mut self.voice {
                    v.members.remove(participant);
                    v.asking.remove(participant);
                }
            }
            Event::SpeakAsked {
                participant,
                asking,
            } => {
                if let Some(v) = &mut self.voice {
                    if *asking {
                        v.asking.insert(*participant);
                    } else {
                        v.asking.remove(participant);
                    }
                }
            }
            Event::MicrophoneHolders { holders } => {
                if let Some(v) = &mut self.voice {
                    v.microphones = holders.clone();
                    v.asking.retain(|p| !holders.contains(p));
                }
            }
            Event::MicrophoneVolume {
                participant,
                percent,
            } => {
                if *percent == 100 {
                    self.volumes.remove(participant);
                } else {
                    self.volumes.insert(*participant, *percent);
                }
            }
            Event::DisplayMode { mode, .. } => self.display_mode = *mode,
            Event::CameraStarted { participant } => {
                self.cameras.insert(*participant);
            }
            Event::CameraStopped { participant } => {
                self.cameras.remove(participant);
            }
            Event::ControlHanded { to, .. } => self.primary = Some(*to),
            Event::NotesUpdated { text, .. } => self.notes = text.clone(),
            Event::SessionTransferred { target, .. } => {
                self.status = Status::Waiting(target.clone());
                self.primary = None;
            }
            Event::TransferAccepted { primary } => {
                self.primary = Some(*primary);
                self.status = Status::Active;
            }
            Event::SessionEnded { .. } => {
                self.status = Status::Ended;
                self.pending.clear();
                self.running.clear();
                self.files.clear();
                self.proposals.clear();
                self.script_runs.clear();
                self.restarting.clear();
                let customers: Vec<ParticipantId> = self.logins.keys().copied().collect();
                for customer in customers {
                    self.login_stopped(customer);
                }
                self.voice = None;
                self.cameras.clear();
            }
        }
    }

    /// The session as `viewer` may see it, for the WebSocket welcome and the HTTP API.
    pub fn view(
        &self,
        viewer: Option<Role>,
        viewer_id: Option<ParticipantId>,
    ) -> serde_json::Value {
        let staff = viewer != Some(Role::Customer);
        let status = match &self.status {
            Status::Active => "active",
            Status::Waiting(_) => "waiting",
            Status::Ended => "ended",
        };
        let participants: Vec<_> = self
            .members
            .iter()
            .map(|m| {
                json!({
                    "id": m.info.id,
                    "role": m.info.role,
                    "name": m.info.name,
                    "email": if staff { m.info.email.clone() } else { None },
                    "account": if staff { m.info.account } else { None },
                    "primary": self.primary == Some(m.info.id),
                    "joined_at": m.joined_at,
                    "computer_of": self.computer_of(m.info.id),
                    "can": self.abilities.get(&m.info.id),
                })
            })
            .collect();
        let pending: Vec<_> = self
            .pending
            .iter()
            .filter(|(_, p)| staff || Some(p.customer) == viewer_id || (viewer_id.is_some() && p.computer == viewer_id))
            .map(|(r, p)| json!({"request": r, "activity": p.activity, "customer": p.customer, "by": p.by, "computer": p.computer, "helper_needed": p.helper_needed}))
            .collect();
        let activities: Vec<_> = self
            .running
            .iter()
            .map(|(a, c)| json!({"activity": a, "customer": c}))
            .collect();
        let files: Vec<_> = self
            .files
            .iter()
            .filter(|(_, f)| staff || Some(f.customer) == viewer_id)
            .map(|(id, f)| json!({"id": id, "customer": f.customer, "by": f.by, "name": f.name, "size": f.size, "sha256": f.sha256, "at": f.at}))
            .collect();
        let voice = self.voice.as_ref().map(|v| {
            json!({"started_by": v.started_by, "members": v.members, "microphone_holders": v.microphones, "asking": v.asking})
        });
        // M4: whose session the CSR is in on each customer's computer; a customer sees their own.
        let signed_in_as: serde_json::Map<String, serde_json::Value> = self
            .logins
            .keys()
            .filter(|c| staff || Some(**c) == viewer_id)
            .filter_map(|c| Some((c.to_string(), json!(self.signed_in_as(*c)?))))
            .collect();
        let mut view = json!({
            "id": self.init.id,
            "number": self.init.number,
            "topic": self.init.topic,
            "status": status,
            "primary": self.primary,
            "selected_customer": self.selected,
            "cameras": self.cameras,
            "display_mode": self.display_mode,
            "participants": participants,
            "activities": activities,
            "pending_consents": pending,
            "files": files,
            "allow_all": self.allow_all,
            "voice_call": voice,
            // SPEC V4: each participant's level in the call, where it is not 100 %.
            "volumes": self.volumes,
            "automatic_recording": self.init.automatic_recording,
            "control_holder": self.control_holder(),
            "restarting": self.restarting,
            "signed_in_as": signed_in_as,
            "chat": self.transcript.seen_by(
                viewer,
                viewer_id,
                viewer_id.and_then(|v| self.members.iter().find(|m| m.info.id == v)).map(|m| m.joined_at),
            ),
        });
        if staff {
            view["notes"] = json!(self.notes);
            view["quick_phrases"] = json!(self.init.quick_phrases);
            view["system_info"] = self
                .system_info
                .iter()
                .map(|(c, (at, info))| (c.to_string(), json!({"at": at, "info": **info})))
                .collect::<serde_json::Map<_, _>>()
                .into();
            if let Status::Waiting(target) = &self.status {
                view["transfer_target"] = json!(target);
            }
        }
        view
    }
}

#[cfg(test)]
mod tests;
