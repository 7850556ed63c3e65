//! The helper's own record of what the customer allowed on this computer in this session
//! (issue 16 item 4; SPEC S9, D1, D2, D6). The server's rules decide what a CSR may ask; this
//! record decides what the helper does. It changes only by the customer's answers in the
//! helper's window and their Stop button, never by a message from the server, so a server that
//! is compromised or impersonated cannot start viewing or control on its own: at worst it can
//! ask, and the customer sees the question.
//!
//! A plain state machine: no IO, no clock. The window shows [`Consent::question`]; the shell
//! sends the customer's answers on to the server as the S9 consent.

use std::collections::{BTreeSet, VecDeque};

use crate::control::Control;

/// An activity on the computer the customer decides on. The names are the server's activity
/// names (docs/protocol.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Activity {
    ViewDesktop,
    ControlDesktop,
    ViewApplication,
    ControlApplication,
    /// SPEC D4, roles swapped: this is the CSR's own computer, and the CSR gives a customer
    /// control of it (the screen shown, the customer's pointer and keys injected). Asked here,
    /// of the CSR, exactly as a customer is asked.
    GiveControl,
    /// SPEC M1: read this computer's system information and send it to the session.
    SystemInfo,
    /// SPEC M3: run the scripts listed in the question, in that order, each only if its content
    /// is the one shown.
    RunScript,
    /// SPEC M5: restart the computer; the helper rejoins the session by itself afterwards.
    Reboot,
    /// SPEC M4: the CSR signs in as another user of this computer, on a display of its own,
    /// which they see and control instead of the customer's.
    LoginAsUser,
    /// SPEC F2: one operation on this computer's files (the question's detail says which).
    /// Asked of the customer for each, unless their screen is shared; not an activity of the
    /// server's, so not in [`Activity::ALL`].
    FileOp,
}

impl Activity {
    pub const ALL: &'static [Activity] = &[
        Activity::ViewDesktop,
        Activity::ControlDesktop,
        Activity::ViewApplication,
        Activity::ControlApplication,
        Activity::GiveControl,
        Activity::SystemInfo,
        Activity::RunScript,
        Activity::Reboot,
        Activity::LoginAsUser,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Activity::ViewDesktop => "view_desktop",
            Activity::ControlDesktop => "control_desktop",
            Activity::ViewApplication => "view_application",
            Activity::ControlApplication => "control_application",
            Activity::GiveControl => "give_control",
            Activity::SystemInfo => "system_info",
            Activity::RunScript => "run_script",
            Activity::Reboot => "reboot",
            Activity::LoginAsUser => "login_as_user",
            Activity::FileOp => "file_op",
        }
    }

    pub fn from_name(name: &str) -> Option<Activity> {
        Activity::ALL.iter().copied().find(|a| a.name() == name)
    }

    /// Asked every time, whatever was allowed before ("allow all" included): the customer must
    /// see what runs (M3), that the computer restarts (M5) and what is done with their files
    /// (F2; only sharing the whole screen lets file operations go unasked).
    pub fn always_asked(self) -> bool {
        matches!(
            self,
            Activity::RunScript | Activity::Reboot | Activity::FileOp | Activity::LoginAsUser
        )
    }

    /// Whether the activity moves the customer's pointer and presses their keys.
    pub fn controls(self) -> bool {
        matches!(
            self,
            Activity::ControlDesktop | Activity::ControlApplication | Activity::GiveControl
        )
    }

    /// What the helper's window asks, in words for a customer; for [`Activity::GiveControl`]
    /// `csr` is the other party, the customer to be given control.
    pub fn question(self, csr: &str) -> String {
        match self {
            Activity::ViewDesktop => format!("{csr} asks to see your screen."),
            Activity::ControlDesktop => {
                format!("{csr} asks to control your computer: to move your mouse and type.")
            }
            Activity::ViewApplication => {
                format!("{csr} asks to see the windows you choose, and nothing else.")
            }
            Activity::ControlApplication => {
                format!("{csr} asks to control the windows you share: to click and type in them.")
            }
            Activity::GiveControl => format!(
                "Give {csr} control of this computer? {csr} will see your screen and use your mouse and keyboard until you take control back or stop."
            ),
            Activity::SystemInfo => format!(
                "{csr} asks to read information about this computer: the system, processor, memory, disks, network, displays, running programs, services, installed software and environment settings."
            ),
            Activity::Reboot => format!(
                "{csr} asks to restart this computer. Save your work first: every program closes. Tandem Helper starts again by itself afterwards and rejoins this session."
            ),
            Activity::FileOp => format!("{csr} asks to do this with your files:"),
            Activity::LoginAsUser => format!(
                "{csr} asks to sign in to this computer as another user, with that user's password, on a separate screen. Your desktop is hidden behind a notice until they sign out, and your own session keeps running."
            ),
            Activity::RunScript => format!(
                "{csr} asks to run these scripts on this computer, in this order, as you, each in a folder of its own that is removed afterwards:"
            ),
        }
    }
}

/// A question shown in the helper's window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub id: u64,
    pub activity: Activity,
    /// The asking CSR's name, as the window shows it.
    pub csr: String,
    /// What the question is about in detail (M3: the scripts, one a line), shown below it.
    pub detail: Option<String>,
}

impl Question {
    /// The question as the window and the terminal show it.
    pub fn text(&self) -> String {
        let asked = self.activity.question(&self.csr);
        match &self.detail {
            Some(d) => format!("{asked}\n{d}"),
            None => asked,
        }
    }
}

/// The customer's answer to a [`Question`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Allow,
    /// Allow this and whatever else is asked for the rest of this session, until Stop.
    AllowAll,
    Deny,
}

/// What a request from the server leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    /// The customer already allowed it ("allow all" or an earlier yes still in force): tell the
    /// server at once.
    Allowed,
    /// Show this question (it is now [`Consent::question`], or waits behind the one shown).
    Ask(Question),
    /// The same activity is already asked about; nothing new to show.
    AlreadyAsked,
}

/// A decision the shell passes on to the server as the customer's S9 answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub activity: Activity,
    pub allowed: bool,
}

#[derive(Debug, Default)]
pub struct Consent {
    allowed: BTreeSet<Activity>,
    allow_all: bool,
    waiting: VecDeque<Question>,
    next_id: u64,
}

impl Consent {
    pub fn new() -> Self {
        Self::default()
    }

    /// The server asks on a CSR's behalf.
    pub fn request(&mut self, activity: Activity, csr: &str) -> Asked {
        self.request_detailed(activity, csr, None)
    }

    /// [`Consent::request`] with what it is about in detail.
    pub fn request_detailed(
        &mut self,
        activity: Activity,
        csr: &str,
        detail: Option<String>,
    ) -> Asked {
        if !activity.always_asked() && (self.allow_all || self.allowed.contains(&activity)) {
            self.allowed.insert(activity);
            return Asked::Allowed;
        }
        if self.waiting.iter().any(|q| q.activity == activity) {
            return Asked::AlreadyAsked;
        }
        self.next_id += 1;
        let q = Question {
            id: self.next_id,
            activity,
            csr: csr.to_owned(),
            detail,
        };
        self.waiting.push_back(q.clone());
        Asked::Ask(q)
    }

    /// Whether a question about `activity` waits for the customer's answer.
    pub fn question_waiting(&self, activity: Activity) -> bool {
        self.waiting.iter().any(|q| q.activity == activity)
    }

    /// The question the window shows now, if any.
    pub fn question(&self) -> Option<&Question> {
        self.waiting.front()
    }

    /// The customer answered question `id` in the window. Returns the decisions for the server:
    /// the answered one, and with "allow all" every question that was waiting behind it.
    /// An answer to a question no longer asked changes nothing.
    pub fn answer(&mut self, id: u64, answer: Answer) -> Vec<Decision> {
        let Some(i) = self.waiting.iter().position(|q| q.id == id) else {
            return Vec::new();
        };
        let asked = self.waiting.remove(i).expect("position is in range");
        let allowed = answer != Answer::Deny;
        if allowed {
            self.allowed.insert(asked.activity);
        }
        let mut decisions = vec![Decision {
            activity: asked.activity,
            allowed,
        }];
        if answer == Answer::AllowAll {
            self.allow_all = true;
            // What is always asked stays asked: the customer has not read it yet.
            let (kept, allowed): (VecDeque<Question>, VecDeque<Question>) = self
                .waiting
                .drain(..)
                .partition(|q| q.activity.always_asked());
            self.waiting = kept;
            for q in allowed {
                self.allowed.insert(q.activity);
                decisions.push(Decision {
                    activity: q.activity,
                    allowed: true,
                });
            }
        }
        decisions
    }

    /// The customer pressed Stop: viewing and control end at once, "allow all" is withdrawn and
    /// waiting questions are refused. Returns what the server must be told ended or was refused.
    pub fn stop(&mut self) -> Vec<Decision> {
        self.allow_all = false;
        let refused = self.waiting.drain(..).map(|q| q.activity);
        let ended = std::mem::take(&mut self.allowed).into_iter();
        ended
            .chain(refused)
            .map(|activity| Decision {
                activity,
                allowed: false,
            })
            .collect()
    }

    /// The activity ended elsewhere (the CSR or the customer's page stopped it, or the session
    /// rules did): a new start asks again, unless the customer allowed all.
    pub fn ended(&mut self, activity: Activity) {
        self.allowed.remove(&activity);
        self.waiting.retain(|q| q.activity != activity);
    }

    /// Whether the helper may do `activity` now.
    pub fn allows(&self, activity: Activity) -> bool {
        self.allowed.contains(&activity)
    }

    /// Whether "allow all" is in force (the window says so).
    pub fn allows_all(&self) -> bool {
        self.allow_all
    }

    /// Whether this control message may be injected: only while the customer's own answer
    /// allows control. Releasing held keys and buttons is always allowed: it only undoes.
    pub fn admits(&self, control: &Control) -> bool {
        matches!(control, Control::ReleaseAll) || self.allowed.iter().any(|a| a.controls())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::Point;

    fn click() -> Control {
        Control::Press(Point { x: 0.5, y: 0.5 }, crate::control::Button::Left)
    }

    fn ask(c: &mut Consent, a: Activity) -> Question {
        match c.request(a, "Carol") {
            Asked::Ask(q) => q,
            other => panic!("{a:?}: {other:?}"),
        }
    }

    #[test]
    fn nothing_is_injected_until_the_customer_allows_control_in_the_window() {
        let mut c = Consent::new();
        assert!(!c.admits(&click()));
        let q = ask(&mut c, Activity::ControlDesktop);
        assert_eq!(c.question(), Some(&q));
        assert!(!c.admits(&click()), "asking is not allowing");
        let d = c.answer(q.id, Answer::Allow);
        assert_eq!(
            d,
            vec![Decision {
                activity: Activity::ControlDesktop,
                allowed: true
            }]
        );
        assert!(c.admits(&click()));
        assert_eq!(c.question(), None);
    }

    #[test]
    fn a_refusal_or_viewing_alone_never_admits_input() {
        let mut c = Consent::new();
        let view = ask(&mut c, Activity::ViewDesktop);
        let control = ask(&mut c, Activity::ControlDesktop);
        assert_eq!(
            c.question(),
            Some(&view),
            "one question at a time, in order"
        );
        c.answer(view.id, Answer::Allow);
        assert!(c.allows(Activity::ViewDesktop));
        assert!(!c.admits(&click()));
        let d = c.answer(control.id, Answer::Deny);
        assert_eq!(
            d,
            vec![Decision {
                activity: Activity::ControlDesktop,
                allowed: false
            }]
        );
        assert!(!c.admits(&click()));
        assert!(
            c.admits(&Control::ReleaseAll),
            "undoing held keys is always allowed"
        );
    }

    #[test]
    fn stop_ends_everything_at_once_including_allow_all() {
        let mut c = Consent::new();
        let q = ask(&mut c, Activity::ViewDesktop);
        let waiting = ask(&mut c, Activity::ControlApplication);
        let d = c.answer(q.id, Answer::AllowAll);
        assert_eq!(
            d.len(),
            2,
            "allow all answers the waiting question too: {d:?}"
        );
        assert!(c.allows(waiting.activity) && c.allows_all());
        assert_eq!(c.request(Activity::ControlDesktop, "Carol"), Asked::Allowed);
        let mut ended = c.stop();
        ended.sort_by_key(|d| d.activity);
        assert!(ended.iter().all(|d| !d.allowed));
        assert_eq!(ended.len(), 3);
        assert!(!c.admits(&click()) && !c.allows_all());
        assert!(matches!(
            c.request(Activity::ControlDesktop, "Carol"),
            Asked::Ask(_)
        ));
    }

    #[test]
    fn the_server_cannot_answer_for_the_customer_or_revive_an_ended_yes() {
        let mut c = Consent::new();
        let q = ask(&mut c, Activity::ControlDesktop);
        // A repeated or replayed request adds nothing and allows nothing.
        assert_eq!(
            c.request(Activity::ControlDesktop, "Mallory"),
            Asked::AlreadyAsked
        );
        assert!(
            c.answer(q.id + 1, Answer::Allow).is_empty(),
            "no such question"
        );
        assert!(!c.admits(&click()));
        c.answer(q.id, Answer::Allow);
        c.ended(Activity::ControlDesktop);
        assert!(
            !c.admits(&click()),
            "a stopped control is not resumed by the server"
        );
        assert!(matches!(
            c.request(Activity::ControlDesktop, "Carol"),
            Asked::Ask(_)
        ));
        assert!(
            c.answer(q.id, Answer::Allow).is_empty(),
            "an old answer is not reused"
        );
    }
}
