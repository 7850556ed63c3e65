//! The session protocol: commands participants send, events the session emits.
//!
//! An [`Event`] is at once the journal record (persisted, replayed after a crash) and what the
//! WebSocket delivers, so what a participant sees and what the report says cannot drift apart.
//! docs/protocol.md describes the JSON form.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
pub use tandem_media::policy::TrackPurpose;

use crate::ids::{AccountId, FileId, ParticipantId, QueueId, SessionId, SessionNumber};
use crate::limits::ClientLimits;

/// Milliseconds since the Unix epoch. Wall-clock time, used only for records people read.
pub type UnixMillis = i64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Support staff: the primary CSR or an assistant (who is a CSR that is not primary).
    Csr,
    Customer,
}

/// A support activity with a customer. Those on the customer's computer each need that
/// customer's consent (SPEC S9); the CSR showing their own screen ([`Activity::is_showing`])
/// needs none, as it asks nothing of the customer's computer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    ViewDesktop,
    ControlDesktop,
    ViewApplication,
    ControlApplication,
    FileTransfer,
    Recording,
    SystemInfo,
    RunScript,
    Reboot,
    LoginAsUser,
    /// The primary CSR shows their own desktop to the selected customer, and so to everyone in
    /// the session (SPEC D3, D13). Giving control of it (D4) builds on this one.
    ShowDesktop,
    /// The primary CSR shows applications of theirs, several at once, one screen track each
    /// (SPEC D7, D13).
    ShowApplications,
    /// The primary CSR gives control of their own desktop to the selected customer through
    /// the CSR's own Tandem Helper (SPEC D4): asked in that helper's window, the helper's
    /// screen shown to everyone, the customer's input sent to it while the customer holds
    /// control ([`Event::ControlTaken`]).
    GiveControl,
}

impl Activity {
    /// Screen or application sharing: what selecting another customer ends (SPEC S6).
    pub fn is_sharing(self) -> bool {
        matches!(
            self,
            Self::ViewDesktop
                | Self::ControlDesktop
                | Self::ViewApplication
                | Self::ControlApplication
        )
    }

    /// The primary CSR shows their own screen (SPEC D3, D7): no consent (S9 asks it only for
    /// what is done on the customer's computer), and either side ends it (D5). Like sharing,
    /// selecting another customer ends it (S6).
    pub fn is_showing(self) -> bool {
        matches!(self, Self::ShowDesktop | Self::ShowApplications)
    }

    /// The CSR's own screen reaches the customers: shown from the browser (D3, D7) or from the
    /// CSR's Tandem Helper while they give control (D4). One at a time; selecting another
    /// customer ends it (S6).
    pub fn is_csr_screen(self) -> bool {
        self.is_showing() || self == Self::GiveControl
    }

    /// Control of the customer's mouse and keyboard: only Tandem Helper can do it (issue 16).
    pub fn is_control(self) -> bool {
        matches!(self, Self::ControlDesktop | Self::ControlApplication)
    }

    /// What a helper says it can do when it pairs: what only it does, and F2's file
    /// operations (file transfer itself runs without one, as F1).
    pub fn is_helper_ability(self) -> bool {
        self.needs_helper_ability() || self == Self::FileTransfer
    }

    /// Done on the customer's computer by Tandem Helper alone (issue 17): refused
    /// (`helper_required`) unless the customer's helper is attached and said it can, so that
    /// nothing is recorded as started that nothing could run.
    pub fn needs_helper_ability(self) -> bool {
        matches!(
            self,
            Self::SystemInfo | Self::RunScript | Self::Reboot | Self::LoginAsUser
        )
    }

    /// Viewing or controlling an application, during which file transfer is barred (SPEC F3).
    pub fn is_application_sharing(self) -> bool {
        matches!(self, Self::ViewApplication | Self::ControlApplication)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantInfo {
    pub id: ParticipantId,
    pub role: Role,
    pub name: String,
    /// Only staff see customers' e-mail addresses; see [`Event::for_role`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The account behind a CSR; customers have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountId>,
    /// Whether that account is an agent, which transfer requires (SPEC S8).
    #[serde(default)]
    pub is_agent: bool,
    /// A phone call (SIP, SPEC V5). A CSR's softphone joins beside the CSR's own console
    /// under the same account; it only talks and listens.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub phone: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TransferTarget {
    Queue { queue: QueueId },
    Agents { agents: Vec<AccountId> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    Left,
    Disconnected,
    Transferred,
    SessionEnded,
    Crashed,
    /// The primary CSR removed them (`participant_removed` says who).
    Removed,
    /// A customer's computer (Tandem Helper) leaves with its customer.
    CustomerLeft,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopCause {
    /// Someone pressed stop.
    Stopped,
    /// Another customer was selected (SPEC S6).
    CustomerChanged,
    /// Control went to another CSR (SPEC S7).
    ControlHandedOver,
    /// The customer left.
    CustomerLeft,
    /// The customer's computer (Tandem Helper) left: nothing is left to control (issue 16).
    ComputerLeft,
    Transferred,
    SessionEnded,
    /// The server could not go on with it (a recording whose disk did not keep up).
    Failed,
    /// It did all it was for (M3: the last script of a run finished).
    Finished,
}

/// M3: one script of a run, as the customer is asked about it and the helper checks it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptItem {
    /// The script's id in the library.
    pub script: String,
    pub name: String,
    /// Hex SHA-256 of the executable file the customer allows; the helper runs nothing else.
    pub sha256: String,
    pub size: u64,
    /// The input file's name, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// Hex SHA-256 of the input file: the helper checks it as it checks the script's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_sha256: Option<String>,
}

/// M3: how one script of a run ended on the customer's computer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptOutcome {
    /// The exit code; `None` when it did not run to an end (stopped, refused, killed).
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Stopped at the helper's time limit.
    #[serde(default)]
    pub timed_out: bool,
    /// Not run, and why (the content was not what the customer allowed, say).
    #[serde(default)]
    pub refused: Option<String>,
    /// What it printed (standard output, then standard error), as far as the helper keeps.
    #[serde(default)]
    pub output: String,
    /// More was printed than the helper keeps.
    #[serde(default)]
    pub truncated: bool,
    #[serde(default)]
    pub duration_ms: u64,
}

/// Who holds the pointer while the CSR gives control of their desktop (SPEC D4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlHolder {
    /// The customer's input reaches the CSR's computer.
    Customer,
    /// The CSR took control back: the customer's input goes nowhere.
    Csr,
}

/// How a customer's page sends a shared screen (SPEC D11): sharp text, or smooth motion.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisplayMode {
    /// Full resolution; the frame rate gives way when the network is short.
    #[default]
    Standard,
    /// Screen sampling for speed: the resolution gives way to keep the picture moving.
    Sampling,
}

/// M4: a password on its way to a customer's computer. Its `Debug` says `<hidden>`, it has no
/// `Display`, and it is never in an [`Event`], so nothing journals, records, reports or logs it.
/// It is written out once: in the `login_as_user` frame to that computer
/// ([`ServerMsg::LoginAsUser`]), which is why it serializes as the plain string.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The password itself, for the checks and the frame to the computer only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<hidden>")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// Reads a string; the error for anything else does not quote what was sent (serde's
        /// own would, for a number), as the answer to a bad frame shows the error.
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Secret;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a password (a string)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Secret, E> {
                Ok(Secret(v))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Secret, E> {
                Err(E::custom("a password is a string"))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Secret, E> {
                Err(E::custom("a password is a string"))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Secret, E> {
                Err(E::custom("a password is a string"))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Secret, E> {
                Err(E::custom("a password is a string"))
            }
            fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<Secret, E> {
                Err(E::custom("a password is a string"))
            }
        }
        // `any`, not `string`: serde's buffering for `ClientFrame`'s flatten would otherwise
        // answer a number with its own error, quoting it.
        deserializer.deserialize_any(Visitor)
    }
}

/// M4: why signing in as another user failed on the customer's computer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginFailure {
    /// The user name or password was not accepted.
    AuthFailed,
    /// That user may not be signed in there (root, a system account, the customer themself).
    NotAllowed,
    /// That user is signed in elsewhere already.
    Busy,
    /// Their session could not start.
    Failed,
}

impl LoginFailure {
    /// The code as the computer sends it; `None` for one the server does not know.
    pub fn parse(code: &str) -> Option<Self> {
        Some(match code {
            "auth_failed" => Self::AuthFailed,
            "not_allowed" => Self::NotAllowed,
            "busy" => Self::Busy,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// M4: why the other user's session on the customer's computer ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginEnd {
    /// The user signed out there.
    LoggedOut,
    /// The helper ended it: `login_as_user` stopped (the CSR signed out, the customer's Stop,
    /// the end of the session).
    Ended,
    /// It broke off.
    Failed,
}

impl LoginEnd {
    /// The reason as the computer sends it; `None` for one the server does not know.
    pub fn parse(reason: &str) -> Option<Self> {
        Some(match reason {
            "logged_out" => Self::LoggedOut,
            "ended" => Self::Ended,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The primary CSR ended it (SPEC S12).
    EndedByCsr,
    /// The primary CSR's dashboard went away and did not come back in time (SPEC S12).
    PrimaryDisconnected,
    /// The server stopped while the session was live; found on the next start.
    Interrupted,
}

/// Everything that happens in a session. Persisted in order; replaying them rebuilds the state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    SessionCreated {
        number: SessionNumber,
        topic: String,
        host: AccountId,
    },
    ParticipantJoined {
        participant: ParticipantInfo,
    },
    ParticipantLeft {
        participant: ParticipantId,
        reason: LeaveReason,
    },
    /// The primary CSR removed this participant; `participant_left` follows. Their token no
    /// longer connects.
    ParticipantRemoved {
        participant: ParticipantId,
        by: ParticipantId,
    },
    CustomerSelected {
        customer: Option<ParticipantId>,
    },
    /// The participant that just joined is `customer`'s computer: their Tandem Helper, paired
    /// with a code (issue 16). It is shown beside its customer and leaves with them.
    ComputerAttached {
        computer: ParticipantId,
        customer: ParticipantId,
        /// What the helper said it can do of [`Activity::needs_helper_ability`]'s activities.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        abilities: Vec<Activity>,
    },
    Chat {
        from: ParticipantId,
        /// `None`: to everyone.
        to: Option<ParticipantId>,
        text: String,
    },
    ConsentRequested {
        request: u32,
        activity: Activity,
        customer: ParticipantId,
        by: ParticipantId,
        /// Issue 16: the question is asked in this computer's Tandem Helper window, and its
        /// answer counts as the customer's; the customer's page says so (and may still refuse).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        computer: Option<ParticipantId>,
        /// Issue 16: control needs Tandem Helper and the customer has none connected: their page
        /// offers it, and the question moves to the helper's window when it attaches.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        helper_needed: bool,
    },
    ConsentAnswered {
        request: u32,
        granted: bool,
        allow_all: bool,
        /// Issue 18: why a request was declined without the customer choosing to (their device
        /// cannot share a screen, or sharing failed), so the CSR is told in words.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<DeclineReason>,
    },
    /// A pending request that no longer applies (customer changed, control handed over...), or
    /// (issue 18) that its CSR cancelled or that waited too long for an answer (`cause`).
    ConsentWithdrawn {
        request: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cause: Option<WithdrawCause>,
    },
    ActivityStarted {
        activity: Activity,
        customer: ParticipantId,
        /// True when "allow all actions" made asking unnecessary.
        pre_approved: bool,
    },
    ActivityStopped {
        activity: Activity,
        customer: ParticipantId,
        cause: StopCause,
    },
    /// F1: the primary CSR published a file for `customer` to download. The file is the
    /// server's until file transfer with that customer ends.
    FilePublished {
        file: FileId,
        customer: ParticipantId,
        by: ParticipantId,
        name: String,
        size: u64,
        /// Hex SHA-256 of the content, so the download can be checked.
        sha256: String,
    },
    /// F1: the primary CSR took back one published file (the end of file transfer takes them
    /// all back without this event).
    FileWithdrawn {
        file: FileId,
        customer: ParticipantId,
    },
    /// M1: a customer's computer (Tandem Helper) read its system information, with the
    /// customer's OK, while `system_info` runs. Stored in the report as what the customer
    /// provided (RP2).
    SystemInfoProvided {
        customer: ParticipantId,
        computer: ParticipantId,
        info: serde_json::Value,
    },
    /// M1: the primary CSR asks the customer's computer to read its system information again.
    SystemInfoRequested {
        customer: ParticipantId,
        computer: ParticipantId,
        by: ParticipantId,
    },
    /// M3: the primary CSR proposes these scripts, in this order, for `customer`'s computer;
    /// the `consent_requested` for `run_script` with the same request number follows.
    ScriptsProposed {
        request: u32,
        customer: ParticipantId,
        computer: ParticipantId,
        by: ParticipantId,
        scripts: Vec<ScriptItem>,
    },
    /// M3: script `index` of run `request` ended on the customer's computer. Kept in the report
    /// as what the customer provided (RP2); its log is also said in chat.
    ScriptFinished {
        request: u32,
        customer: ParticipantId,
        computer: ParticipantId,
        index: u32,
        name: String,
        outcome: ScriptOutcome,
    },
    /// F2: the primary CSR `by` asks `customer`'s computer to do `request` on its files, as
    /// operation `op` (the computer asks the customer unless their screen is shared).
    ComputerFilesRequested {
        op: u32,
        customer: ParticipantId,
        computer: ParticipantId,
        by: ParticipantId,
        request: crate::computer_files::FilesRequest,
    },
    /// F2: how operation `op` ended on the computer: the status message for the CSR, and a
    /// listing or a batch to download.
    ComputerFilesDone {
        op: u32,
        customer: ParticipantId,
        computer: ParticipantId,
        by: ParticipantId,
        result: crate::computer_files::FilesResult,
    },
    /// M5: the customer's computer is restarting with their OK; its helper rejoins by itself
    /// afterwards (`computer_attached` for the same customer says it is back).
    ComputerRestarting {
        customer: ParticipantId,
        computer: ParticipantId,
    },
    /// M4: the primary CSR `by` asked `customer`'s computer to sign in as `user`. The password
    /// went to that computer alone, in memory, and is in no event.
    LoginAsUserAttempted {
        customer: ParticipantId,
        computer: ParticipantId,
        by: ParticipantId,
        user: String,
    },
    /// M4: the computer started `user`'s session: the CSR sees and controls it now.
    LoginAsUserStarted {
        customer: ParticipantId,
        computer: ParticipantId,
        user: String,
    },
    /// M4: signing in as `user` failed on the computer.
    LoginAsUserFailed {
        customer: ParticipantId,
        computer: ParticipantId,
        user: String,
        code: LoginFailure,
    },
    /// M4: `user`'s session on the computer ended; the customer's own screen is back.
    LoginAsUserEnded {
        customer: ParticipantId,
        computer: ParticipantId,
        user: String,
        reason: LoginEnd,
    },
    /// D4: `by` took control while `customer` is given control of the primary CSR's desktop;
    /// `holder` holds the pointer now. A start of `give_control` gives it to the customer.
    ControlTaken {
        customer: ParticipantId,
        by: ParticipantId,
        holder: ControlHolder,
    },
    VoiceCallStarted {
        by: ParticipantId,
    },
    VoiceCallEnded {
        by: Option<ParticipantId>,
    },
    VoiceJoined {
        participant: ParticipantId,
    },
    VoiceLeft {
        participant: ParticipantId,
    },
    /// A member of the call without a microphone asks the CSR to let them speak, or stops
    /// asking (issue 18). Cleared when they get a microphone or leave the call.
    SpeakAsked {
        participant: ParticipantId,
        asking: bool,
    },
    /// Who holds the (at most two) microphones now (SPEC V3).
    MicrophoneHolders {
        holders: Vec<ParticipantId>,
    },
    /// A participant's microphone volume in the call, in percent (SPEC V4).
    MicrophoneVolume {
        participant: ParticipantId,
        percent: u16,
    },
    /// The primary CSR chose how shared screens are sent (SPEC D11).
    DisplayMode {
        by: ParticipantId,
        mode: DisplayMode,
    },
    /// A participant started sending camera video (SPEC VI1, VI2).
    CameraStarted {
        participant: ParticipantId,
    },
    /// A participant's camera video stopped: they stopped it, or lost the right to send it (a
    /// new primary CSR or selected customer).
    CameraStopped {
        participant: ParticipantId,
    },
    ControlHanded {
        from: ParticipantId,
        to: ParticipantId,
    },
    NotesUpdated {
        by: ParticipantId,
        text: String,
    },
    SessionTransferred {
        by: ParticipantId,
        target: TransferTarget,
        message: Option<String>,
    },
    /// An agent took the transferred session and is now its primary CSR.
    TransferAccepted {
        primary: ParticipantId,
    },
    SessionEnded {
        by: Option<ParticipantId>,
        reason: EndReason,
    },
}

/// Issue 18: why a customer's page declined a request by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    /// The device cannot share its screen (phone and tablet browsers).
    CannotShare,
    /// The customer allowed it, but the browser could not start sharing (or they closed its
    /// picker).
    ShareFailed,
}

/// Issue 18: why a pending request was withdrawn, when it was not the session moving on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawCause {
    /// The CSR who asked (or the primary) cancelled it.
    Cancelled,
    /// Nobody answered in time.
    TimedOut,
}

/// Who an event is delivered to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Audience {
    Everyone,
    Staff,
    /// All staff and these participants (consent requests: the customer asked, their computer
    /// if the question is in its window, and every CSR).
    StaffAnd(Vec<ParticipantId>),
    /// These participants only (for private chat: sender and recipient).
    Only(Vec<ParticipantId>),
    /// Persisted, not delivered.
    Nobody,
}

impl Event {
    pub fn audience(&self) -> Audience {
        match self {
            Event::SessionCreated { .. } => Audience::Nobody,
            Event::Chat {
                from, to: Some(to), ..
            } => Audience::Only(vec![*from, *to]),
            Event::NotesUpdated { .. } => Audience::Staff,
            // Other customers need not know what is asked of one; staff all see it, as in the
            // session view.
            Event::ConsentRequested {
                customer, computer, ..
            } => Audience::StaffAnd(std::iter::once(*customer).chain(*computer).collect()),
            Event::FilePublished { customer, .. }
            | Event::FileWithdrawn { customer, .. }
            | Event::SystemInfoProvided { customer, .. } => Audience::StaffAnd(vec![*customer]),
            Event::SystemInfoRequested { computer, .. }
            | Event::ComputerFilesRequested { computer, .. } => Audience::StaffAnd(vec![*computer]),
            Event::ComputerFilesDone { customer, .. } => Audience::StaffAnd(vec![*customer]),
            Event::LoginAsUserAttempted { customer, .. }
            | Event::LoginAsUserStarted { customer, .. }
            | Event::LoginAsUserFailed { customer, .. }
            | Event::LoginAsUserEnded { customer, .. } => Audience::StaffAnd(vec![*customer]),
            Event::ScriptsProposed {
                customer, computer, ..
            }
            | Event::ScriptFinished {
                customer, computer, ..
            } => Audience::StaffAnd(vec![*customer, *computer]),
            _ => Audience::Everyone,
        }
    }

    /// The copy of this event a participant of `role` may see: customers do not see e-mail
    /// addresses or account details, as in the session view.
    pub fn for_role(&self, role: Role) -> std::borrow::Cow<'_, Event> {
        match (self, role) {
            (Event::ParticipantJoined { participant }, Role::Customer) => {
                let mut p = participant.clone();
                p.email = None;
                p.account = None;
                p.is_agent = false;
                std::borrow::Cow::Owned(Event::ParticipantJoined { participant: p })
            }
            // Issue 18 (S8): the message is for the agents who take the session over, never for
            // the customer.
            (Event::SessionTransferred { by, target, .. }, Role::Customer) => {
                std::borrow::Cow::Owned(Event::SessionTransferred {
                    by: *by,
                    target: target.clone(),
                    message: None,
                })
            }
            _ => std::borrow::Cow::Borrowed(self),
        }
    }

    /// A short stable name, for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::SessionCreated { .. } => "session_created",
            Event::ParticipantJoined { .. } => "participant_joined",
            Event::ParticipantLeft { .. } => "participant_left",
            Event::ParticipantRemoved { .. } => "participant_removed",
            Event::CustomerSelected { .. } => "customer_selected",
            Event::ComputerAttached { .. } => "computer_attached",
            Event::Chat { .. } => "chat",
            Event::ConsentRequested { .. } => "consent_requested",
            Event::ConsentAnswered { .. } => "consent_answered",
            Event::ConsentWithdrawn { .. } => "consent_withdrawn",
            Event::ActivityStarted { .. } => "activity_started",
            Event::ActivityStopped { .. } => "activity_stopped",
            Event::FilePublished { .. } => "file_published",
            Event::FileWithdrawn { .. } => "file_withdrawn",
            Event::SystemInfoProvided { .. } => "system_info_provided",
            Event::SystemInfoRequested { .. } => "system_info_requested",
            Event::ScriptsProposed { .. } => "scripts_proposed",
            Event::ComputerRestarting { .. } => "computer_restarting",
            Event::LoginAsUserAttempted { .. } => "login_as_user_attempted",
            Event::LoginAsUserStarted { .. } => "login_as_user_started",
            Event::LoginAsUserFailed { .. } => "login_as_user_failed",
            Event::LoginAsUserEnded { .. } => "login_as_user_ended",
            Event::ComputerFilesRequested { .. } => "computer_files_requested",
            Event::ComputerFilesDone { .. } => "computer_files_done",
            Event::ScriptFinished { .. } => "script_finished",
            Event::ControlTaken { .. } => "control_taken",
            Event::VoiceCallStarted { .. } => "voice_call_started",
            Event::VoiceCallEnded { .. } => "voice_call_ended",
            Event::VoiceJoined { .. } => "voice_joined",
            Event::VoiceLeft { .. } => "voice_left",
            Event::SpeakAsked { .. } => "speak_asked",
            Event::MicrophoneHolders { .. } => "microphone_holders",
            Event::MicrophoneVolume { .. } => "microphone_volume",
            Event::DisplayMode { .. } => "display_mode",
            Event::CameraStarted { .. } => "camera_started",
            Event::CameraStopped { .. } => "camera_stopped",
            Event::ControlHanded { .. } => "control_handed",
            Event::NotesUpdated { .. } => "notes_updated",
            Event::SessionTransferred { .. } => "session_transferred",
            Event::TransferAccepted { .. } => "transfer_accepted",
            Event::SessionEnded { .. } => "session_ended",
        }
    }
}

/// What a session is created with; kept outside the journal because it comes from settings,
/// and journaled with the session (its row) so a restart restores it.
#[derive(Clone, Debug)]
pub struct SessionInit {
    pub id: SessionId,
    pub number: SessionNumber,
    pub topic: String,
    pub host: AccountId,
    /// Most customers present at once.
    pub max_customers: usize,
    /// Admin quick phrases; `None` when the admin has not enabled them for CSRs (SPEC S10).
    pub quick_phrases: Option<Vec<String>>,
    /// The admin turned on automatic recording (SPEC R3): each customer is asked to allow
    /// recording when they join, and no CSR can stop a recording once it runs.
    pub automatic_recording: bool,
}

/// One journal entry: an event with its place in the session and when it happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    pub at: UnixMillis,
    pub event: Event,
}

/// What a participant asks of the session over its WebSocket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    Chat {
        #[serde(default)]
        to: Option<ParticipantId>,
        #[serde(default)]
        text: Option<String>,
        /// Index into the admin's quick phrases instead of `text` (CSRs only).
        #[serde(default)]
        phrase: Option<usize>,
    },
    SelectCustomer {
        customer: ParticipantId,
    },
    RequestActivity {
        activity: Activity,
    },
    ConsentReply {
        request: u32,
        grant: bool,
        #[serde(default)]
        allow_all: bool,
        /// Issue 18: the page declined by itself, and why.
        #[serde(default)]
        reason: Option<DeclineReason>,
    },
    /// Issue 18: the CSR who asked (or the primary) takes back a request still unanswered.
    CancelRequest {
        request: u32,
    },
    StopActivity {
        activity: Activity,
    },
    StartVoiceCall,
    EndVoiceCall,
    JoinVoice,
    LeaveVoice,
    PassMicrophone {
        to: ParticipantId,
    },
    TakeMicrophone {
        from: ParticipantId,
    },
    /// A member of the call without a microphone asks to speak (`asking`, the default), or
    /// takes the ask back; the primary CSR decides (SPEC V3).
    AskToSpeak {
        #[serde(default = "asking_by_default")]
        asking: bool,
    },
    /// How loud a participant's microphone is in the call, 0 to 400 percent (SPEC V4): one's
    /// own, or (the primary CSR) anyone's. `participant` defaults to the sender.
    SetMicrophoneVolume {
        #[serde(default)]
        participant: Option<ParticipantId>,
        percent: u16,
    },
    /// How shared screens are sent (SPEC D11); the primary CSR decides.
    SetDisplayMode {
        mode: DisplayMode,
    },
    /// Start sending camera video: the primary CSR, then the selected customer (SPEC VI1, VI2).
    StartCamera,
    StopCamera,
    HandControl {
        to: ParticipantId,
    },
    Transfer {
        target: TransferTarget,
        #[serde(default)]
        message: Option<String>,
    },
    SetNotes {
        text: String,
    },
    EndSession {
        #[serde(default)]
        confirm: bool,
        /// The reviewed notes, stored with the session report (SPEC S11).
        #[serde(default)]
        notes: Option<String>,
    },
    Leave,
    /// D4: while the primary CSR gives control of their desktop, either side takes the pointer:
    /// the customer given control, the primary CSR, or the primary CSR's Tandem Helper.
    TakeControl,
    /// M1: the primary CSR asks the selected customer's computer to read its system information
    /// again, while `system_info` runs.
    RefreshSystemInfo,
    /// M4: the primary CSR signs in on the selected customer's computer as `user`, while
    /// `login_as_user` runs there. The password goes to that computer alone and is kept nowhere.
    LoginAsUser {
        user: String,
        password: Secret,
    },
    /// M4: from a customer's computer: how signing in as `user` went (`state` `started` or
    /// `failed`, with `code`), or that their session `ended` (with `reason`). Strings, so that
    /// what the server does not know is refused as `bad_login`.
    LoginAsUserResult {
        state: String,
        user: String,
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        reason: Option<String>,
    },
    /// F1: the primary CSR takes back a file published to a customer.
    WithdrawFile {
        file: FileId,
    },
    /// The primary CSR removes someone else from the session; they cannot connect again with
    /// the same token.
    RemoveParticipant {
        participant: ParticipantId,
    },
    /// An SDP offer for this participant's media connection (WebRTC); answered with
    /// `media_answer`. An offer on the same connection renegotiates it; one from a new
    /// connection replaces the old. `video` says what each video track (by mid) carries.
    MediaOffer {
        sdp: String,
        #[serde(default)]
        video: BTreeMap<String, TrackPurpose>,
    },
    /// The answer to the server's `media_offer` number `offer` (it adds or removes the video
    /// it sends).
    MediaAnswer {
        offer: u64,
        sdp: String,
    },
}

fn asking_by_default() -> bool {
    true
}

impl Command {
    pub fn kind(&self) -> &'static str {
        match self {
            Command::Chat { .. } => "chat",
            Command::SelectCustomer { .. } => "select_customer",
            Command::RequestActivity { .. } => "request_activity",
            Command::ConsentReply { .. } => "consent_reply",
            Command::CancelRequest { .. } => "cancel_request",
            Command::StopActivity { .. } => "stop_activity",
            Command::WithdrawFile { .. } => "withdraw_file",
            Command::RefreshSystemInfo => "refresh_system_info",
            Command::LoginAsUser { .. } => "login_as_user",
            Command::LoginAsUserResult { .. } => "login_as_user_result",
            Command::StartVoiceCall => "start_voice_call",
            Command::EndVoiceCall => "end_voice_call",
            Command::JoinVoice => "join_voice",
            Command::LeaveVoice => "leave_voice",
            Command::PassMicrophone { .. } => "pass_microphone",
            Command::TakeMicrophone { .. } => "take_microphone",
            Command::AskToSpeak { .. } => "ask_to_speak",
            Command::HandControl { .. } => "hand_control",
            Command::Transfer { .. } => "transfer",
            Command::SetNotes { .. } => "set_notes",
            Command::EndSession { .. } => "end_session",
            Command::Leave => "leave",
            Command::TakeControl => "take_control",
            Command::RemoveParticipant { .. } => "remove_participant",
            Command::MediaOffer { .. } => "media_offer",
            Command::MediaAnswer { .. } => "media_answer",
            Command::SetMicrophoneVolume { .. } => "set_microphone_volume",
            Command::SetDisplayMode { .. } => "set_display_mode",
            Command::StartCamera => "start_camera",
            Command::StopCamera => "stop_camera",
        }
    }
}

/// A client frame: a command with an optional number the reply echoes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientFrame {
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<u64>,
    #[serde(flatten)]
    pub command: Command,
}

/// What the server sends down a participant's WebSocket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// First frame after connecting: who you are and the session as it is now.
    Welcome {
        you: ParticipantId,
        role: Role,
        session: serde_json::Value,
        /// The limits the page's forms need, so it does not restate them.
        #[serde(default)]
        limits: ClientLimits,
    },
    Event {
        seq: u64,
        at: UnixMillis,
        event: Event,
    },
    /// The command with this `ref` was carried out.
    Ok {
        #[serde(rename = "ref")]
        reference: u64,
    },
    /// A command was refused, or a frame could not be read. Nothing changed.
    Error {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<u64>,
        code: String,
        detail: String,
    },
    /// The SDP answer to a `media_offer`.
    MediaAnswer {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<u64>,
        sdp: String,
        /// The server's own offers numbered up to this are void; ignore any still to come.
        void_offers: u64,
    },
    /// The server renegotiates this participant's media connection (video to receive was added
    /// or removed); answer with a `media_answer` command. A page with an offer of its own still
    /// unanswered ignores this: the server makes it again after answering the page.
    MediaOffer { offer: u64, sdp: String },
    /// The server dropped this participant's media connection (ICE or DTLS gave up, or the call
    /// failed on the server); a new `media_offer` from a new connection starts it again.
    MediaClosed { reason: String },
    /// M4: to a customer's computer alone: sign in as `user` for the primary CSR `by`. The only
    /// place a [`Secret`] is written out.
    LoginAsUser {
        user: String,
        password: Secret,
        by: ParticipantId,
    },
    /// The server closes this connection; `reason` says why (session ended, too slow...).
    Bye { reason: String },
    /// Someone's connection was lost (`away`; they have `grace_secs` to come back before they
    /// count as gone, and a primary CSR's absence then ends the session) or came back. Not an
    /// event: nothing in the session changed, and it is not kept in the journal.
    Presence {
        participant: ParticipantId,
        away: bool,
        grace_secs: u64,
    },
}
