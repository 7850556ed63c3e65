//! What the helper's window says (issue 16 item 3), computed from the helper's state: a plain
//! view model with no toolkit in it, so every word the customer reads is decided here and
//! unit-tested, and the GTK shell (src/window.rs) only puts these strings on screen.
//!
//! The words are for a customer, not an engineer: who is connected, what they may do now, the
//! question waiting for an answer, and who is controlling the computer.

use crate::consent::{Activity, Consent, Question};
use crate::session::{ClipboardQuestion, Given};

/// The window's title, and the name the indicator's title starts from.
pub const TITLE: &str = "Tandem Helper";
/// M4: the title of the notice over the whole screen (AT-SPI finds it by this name).
pub const NOTICE_TITLE: &str = "Tandem Helper: signed in as another user";
/// The answers' button labels, which are also their accessible names.
pub const ALLOW: &str = "Allow";
pub const ALLOW_ALL: &str = "Allow everything this session";
pub const DENY: &str = "Deny";
pub const STOP: &str = "Stop";
/// Says what Stop does, beside the button.
pub const STOP_EXPLAINED: &str = "Stop ends viewing and control at once.";
/// The code entry's label, which is also its accessible name.
pub const CODE: &str = "Pairing code";
/// The server entry's label (shown when the command line named no server), also its name.
pub const SERVER: &str = "Support server";
pub const JOIN: &str = "Join";
/// The button that closes the window once the session is over.
pub const CLOSE: &str = "Close";
/// Says what closing the window does.
pub const CLOSE_EXPLAINED: &str = "Closing this window stops everything and leaves the session.";
/// D4: in the indicator while the customer given control holds it; also its accessible name.
pub const TAKE_BACK: &str = "Take control back";
/// The clipboard question's answers, which are also their accessible names.
pub const SEND: &str = "Send";
pub const DONT_SEND: &str = "Don't send";

/// D6: a window offered in the pick: its id, title and application.
pub type Offered = (u64, String, String);

/// D6: where the pick (which windows to show) stands; while it is asked, it takes the place of
/// the consent question it answers.
#[derive(Debug, Clone, Copy, Default)]
pub enum Picking<'a> {
    #[default]
    No,
    /// Asked; the windows open are being listed.
    Listing,
    /// Asked, with the windows offered.
    Shown(&'a Question, &'a [Offered]),
}

/// Where the helper's link to the server stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    /// Waiting for the customer to type the pairing code (and the server's address, when the
    /// command line named none: `server` is None); `refused` says why the last try was not
    /// taken (docs/helper.md's table), in the customer's words.
    NeedsCode {
        server: Option<String>,
        refused: Option<String>,
    },
    Connecting {
        server: String,
    },
    /// Attached to the session as `computer` (e.g. "Dave's computer").
    Connected {
        server: String,
        computer: String,
    },
    /// The connection dropped and is being made again (the session and what the customer
    /// allowed go on; Stop still works here).
    Reconnecting {
        server: String,
    },
    /// The session is over for this helper; `reason` is said to the customer as given.
    Ended {
        reason: String,
    },
}

/// The helper's state the window shows. The consent record is the helper's own
/// (src/consent.rs); the rest comes from the server.
#[derive(Debug, Clone, Copy)]
pub struct State<'a> {
    pub connection: &'a Connection,
    /// The CSRs in the session, the primary one (who asks and controls) first.
    pub csrs: &'a [String],
    pub consent: &'a Consent,
    /// The CSR whose input reaches this computer now, as the server says.
    pub controlling: Option<&'a str>,
    pub picking: Picking<'a>,
    /// The CSR asks for the copied text: shown beside any consent question.
    pub clipboard: Option<&'a ClipboardQuestion>,
    /// D4 (this is the CSR's own computer): control is given to a customer.
    pub given: Option<Given<'a>>,
    /// M4: the CSR is signed in as this user on a separate display.
    pub signed_in_as: Option<&'a str>,
}

/// A question with its answers, as the window shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuestionView {
    /// The question's id in the consent record; the window hands it back with the answer.
    pub id: u64,
    pub text: String,
}

/// D6: the pick, as the window shows it where the question goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickView {
    /// The question's id; the window hands it back with the windows ticked.
    pub id: u64,
    pub text: String,
    pub windows: Vec<Offered>,
}

/// Everything the window says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub status: String,
    /// Who is in the session with the customer, or None when nobody (yet).
    pub who: Option<String>,
    /// What they may do now, one line each; never empty while connected.
    pub allowed: Vec<String>,
    pub question: Option<QuestionView>,
    /// D6: the pick, in place of the question.
    pub pick: Option<PickView>,
    /// The clipboard question (answered Send or Don't send), beside the question.
    pub clipboard: Option<QuestionView>,
    /// The indicator's text while control is allowed ("Carol is controlling this computer").
    pub indicator: Option<String>,
    /// D4: the indicator offers "Take control back" (the customer given control holds it).
    pub take_back: bool,
    /// Whether Stop can be pressed: always while connected (it also withdraws "allow all").
    pub stop_enabled: bool,
    /// The code entry is shown, with why the last code was refused, if it was.
    pub code_entry: Option<Option<String>>,
    /// The server's address is typed too (above the code): the command line named none.
    pub server_entry: bool,
    /// The session is over: the window offers Close, and stays until the customer closes it.
    pub ended: bool,
    /// M4: the full-screen notice over the customer's desktop while the CSR works as another
    /// user on a display of its own (it offers Stop).
    pub notice: Option<String>,
}

/// Someone to name when the server has not said who: never an empty name.
const SOMEONE: &str = "The support person";

/// "Carol", "Carol and Bob", "Carol, Bob and Eve".
fn names(csrs: &[String]) -> Option<String> {
    match csrs {
        [] => None,
        [one] => Some(one.clone()),
        [rest @ .., last] => Some(format!("{} and {last}", rest.join(", "))),
    }
}

impl View {
    pub fn of(state: State<'_>) -> View {
        let connected = matches!(
            state.connection,
            Connection::Connected { .. } | Connection::Reconnecting { .. }
        );
        let status = match state.connection {
            Connection::NeedsCode {
                server: Some(server),
                ..
            } => format!(
                "Type the pairing code that the support page shows, then press Join. Server: {server}."
            ),
            Connection::NeedsCode { server: None, .. } => {
                "Type the support server's address and the pairing code that the support page shows, then press Join.".to_owned()
            }
            Connection::Connecting { server } => format!("Connecting to {server}…"),
            Connection::Reconnecting { server } => format!(
                "The connection to {server} was lost. Connecting again… What you allowed stays as it was, and Stop still works."
            ),
            Connection::Connected { server, computer } => {
                format!("Connected to {server} as {computer}.")
            }
            Connection::Ended { reason } => {
                format!("The session has ended: {reason}. Nobody can see or control this computer.")
            }
        };
        if !connected {
            return View {
                status,
                who: None,
                allowed: Vec::new(),
                question: None,
                pick: None,
                clipboard: None,
                indicator: None,
                take_back: false,
                stop_enabled: false,
                code_entry: match state.connection {
                    Connection::NeedsCode { refused, .. } => Some(refused.clone()),
                    _ => None,
                },
                server_entry: matches!(
                    state.connection,
                    Connection::NeedsCode { server: None, .. }
                ),
                ended: matches!(state.connection, Connection::Ended { .. }),
                notice: None,
            };
        }
        let group = names(state.csrs);
        let who = group.as_ref().map(|g| {
            if state.csrs.len() == 1 {
                format!("{g} is in the session with you.")
            } else {
                format!("{g} are in the session with you.")
            }
        });
        let primary = state
            .controlling
            .map(str::to_owned)
            .or_else(|| state.csrs.first().cloned())
            .unwrap_or_else(|| SOMEONE.to_owned());
        let consent = state.consent;
        let mut allowed = Vec::new();
        // Everyone in the session sees what is shared; only the primary CSR controls.
        let viewers = group.clone().unwrap_or_else(|| SOMEONE.to_owned());
        if consent.allows(Activity::ViewDesktop) {
            allowed.push(format!("{viewers} can see your screen."));
        } else if consent.allows(Activity::ViewApplication) {
            allowed.push(format!("{viewers} can see the windows you chose."));
        }
        let controls = consent.allows(Activity::ControlDesktop)
            || consent.allows(Activity::ControlApplication);
        if consent.allows(Activity::ControlDesktop) {
            allowed.push(format!("{primary} can control your mouse and keyboard."));
        } else if consent.allows(Activity::ControlApplication) {
            allowed.push(format!(
                "{primary} can control the windows you share with your mouse and keyboard."
            ));
        }
        if consent.allows(Activity::SystemInfo) {
            allowed.push(format!(
                "{primary} can read information about this computer (system, hardware, programs, settings)."
            ));
        }
        // D4: this is the CSR's own computer, given to a customer (the question named them).
        let given = state
            .given
            .filter(|_| consent.allows(Activity::GiveControl));
        if let Some(g) = given {
            allowed.push(if g.csr_holds {
                format!(
                    "You have control of this computer. {} sees your screen and takes control again by clicking it.",
                    g.to
                )
            } else {
                format!(
                    "{} sees your screen and controls your mouse and keyboard.",
                    g.to
                )
            });
        }
        let notice = state.signed_in_as.map(|user| {
            format!(
                "{primary} is signed in as {user} on a separate screen. Your desktop comes back when they sign out, or when you press Stop."
            )
        });
        if let Some(user) = state.signed_in_as {
            allowed.push(format!(
                "{primary} is signed in to this computer as {user}, on a separate screen."
            ));
        } else if consent.allows(Activity::LoginAsUser) {
            allowed.push(format!(
                "{primary} can sign in to this computer as another user, with their password."
            ));
        }
        if consent.allows_all() {
            allowed.push(
                "You allowed everything for this session: new requests start without asking, until you press Stop."
                    .to_owned(),
            );
        }
        if allowed.is_empty() {
            allowed.push("Nobody can see or control this computer.".to_owned());
        }
        // While a pick is asked, it is the question: the consent question it answers waits.
        let question = match state.picking {
            Picking::No => consent.question().map(|q: &Question| QuestionView {
                id: q.id,
                text: q.text(),
            }),
            Picking::Listing | Picking::Shown(..) => None,
        };
        let pick = match state.picking {
            Picking::Shown(q, windows) => Some(PickView {
                id: q.id,
                text: q.text(),
                windows: windows.to_vec(),
            }),
            Picking::No | Picking::Listing => None,
        };
        let clipboard = state.clipboard.map(|q| QuestionView {
            id: q.id,
            text: q.words(),
        });
        let indicator = match given {
            Some(g) if g.csr_holds => Some(format!(
                "You took control back: {} can take it by clicking your screen",
                g.to
            )),
            Some(g) => Some(format!("{} is controlling this computer", g.to)),
            None => controls.then(|| format!("{primary} is controlling this computer")),
        };
        View {
            status,
            who,
            allowed,
            question,
            pick,
            clipboard,
            indicator,
            take_back: given.is_some_and(|g| !g.csr_holds),
            notice,
            stop_enabled: true,
            code_entry: None,
            server_entry: false,
            ended: false,
        }
    }
}

/// The CSRs in the session, from the server's frames (the window says who is connected).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    /// (participant id, name), in the order they came: the session's creator first.
    csrs: Vec<(String, String)>,
}

impl Roster {
    /// Takes in one server frame; whether the roster changed.
    pub fn server(&mut self, frame: &serde_json::Value) -> bool {
        let before = self.csrs.clone();
        match frame["type"].as_str() {
            Some("welcome") => {
                self.csrs.clear();
                for p in frame["session"]["participants"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    self.joined(p);
                }
            }
            Some("event") => {
                let e = &frame["event"];
                match e["type"].as_str() {
                    Some("participant_joined") => self.joined(&e["participant"]),
                    Some("participant_left") => {
                        self.csrs.retain(|(id, _)| e["participant"] != id.as_str());
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        before != self.csrs
    }

    fn joined(&mut self, p: &serde_json::Value) {
        let (Some(id), Some(name)) = (p["id"].as_str(), p["name"].as_str()) else {
            return;
        };
        if p["role"] == "csr" && !self.csrs.iter().any(|(i, _)| i == id) {
            self.csrs.push((id.to_owned(), name.to_owned()));
        }
    }

    /// The CSRs' names, the first one first.
    pub fn names(&self) -> Vec<String> {
        self.csrs.iter().map(|(_, n)| n.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::{Answer, Asked};

    fn connected() -> Connection {
        Connection::Connected {
            server: "support.example.com".into(),
            computer: "Dave's computer".into(),
        }
    }

    fn view(connection: &Connection, csrs: &[&str], consent: &Consent) -> View {
        let csrs: Vec<String> = csrs.iter().map(|s| s.to_string()).collect();
        View::of(State {
            connection,
            csrs: &csrs,
            consent,
            controlling: None,
            picking: Picking::No,
            clipboard: None,
            given: None,
            signed_in_as: None,
        })
    }

    fn ask(c: &mut Consent, a: Activity) -> u64 {
        match c.request(a, "Carol") {
            Asked::Ask(q) => q.id,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn before_anything_is_allowed_the_window_says_nobody_can_see_or_control() {
        let c = Consent::new();
        let v = view(&connected(), &["Carol"], &c);
        assert_eq!(
            v.status,
            "Connected to support.example.com as Dave's computer."
        );
        assert_eq!(v.who.as_deref(), Some("Carol is in the session with you."));
        assert_eq!(v.allowed, ["Nobody can see or control this computer."]);
        assert_eq!(v.question, None);
        assert_eq!(v.indicator, None);
        assert!(v.stop_enabled, "Stop is always there while connected");
    }

    #[test]
    fn a_request_shows_the_question_with_the_csrs_name_one_at_a_time() {
        let mut c = Consent::new();
        let id = ask(&mut c, Activity::ControlDesktop);
        ask(&mut c, Activity::ViewDesktop);
        let v = view(&connected(), &["Carol"], &c);
        let q = v.question.expect("a question");
        assert_eq!(q.id, id);
        assert_eq!(
            q.text,
            "Carol asks to control your computer: to move your mouse and type."
        );
        assert_eq!(v.indicator, None, "asking is not controlling");
    }

    #[test]
    fn allowed_activities_are_said_plainly_and_control_shows_the_indicator() {
        let mut c = Consent::new();
        let view_id = ask(&mut c, Activity::ViewDesktop);
        c.answer(view_id, Answer::Allow);
        let v = view(&connected(), &["Carol", "Bob"], &c);
        assert_eq!(v.allowed, ["Carol and Bob can see your screen."]);
        assert_eq!(
            v.who.as_deref(),
            Some("Carol and Bob are in the session with you.")
        );
        assert_eq!(v.indicator, None);

        let control = ask(&mut c, Activity::ControlDesktop);
        c.answer(control, Answer::Allow);
        let v = view(&connected(), &["Carol", "Bob"], &c);
        assert_eq!(
            v.allowed,
            [
                "Carol and Bob can see your screen.",
                "Carol can control your mouse and keyboard."
            ]
        );
        assert_eq!(
            v.indicator.as_deref(),
            Some("Carol is controlling this computer")
        );
    }

    #[test]
    fn the_indicator_names_whoever_the_server_says_is_controlling() {
        let mut c = Consent::new();
        let id = ask(&mut c, Activity::ControlApplication);
        c.answer(id, Answer::Allow);
        let csrs = vec!["Carol".to_owned(), "Bob".to_owned()];
        let v = View::of(State {
            connection: &connected(),
            csrs: &csrs,
            consent: &c,
            controlling: Some("Bob"),
            picking: Picking::No,
            clipboard: None,
            given: None,
            signed_in_as: None,
        });
        assert_eq!(
            v.indicator.as_deref(),
            Some("Bob is controlling this computer")
        );
        assert_eq!(
            v.allowed,
            ["Bob can control the windows you share with your mouse and keyboard."]
        );
    }

    #[test]
    fn allow_all_is_said_until_stop_and_stop_clears_everything() {
        let mut c = Consent::new();
        let id = ask(&mut c, Activity::ViewApplication);
        c.answer(id, Answer::AllowAll);
        let v = view(&connected(), &["Carol"], &c);
        assert_eq!(v.allowed.len(), 2);
        assert!(v.allowed[0].starts_with("Carol can see the windows you chose"));
        assert!(v.allowed[1].contains("until you press Stop"));
        c.stop();
        let v = view(&connected(), &["Carol"], &c);
        assert_eq!(v.allowed, ["Nobody can see or control this computer."]);
        assert_eq!(v.indicator, None);
    }

    #[test]
    fn connecting_and_ended_offer_nothing_to_answer_and_no_stop() {
        let mut c = Consent::new();
        ask(&mut c, Activity::ControlDesktop);
        let connecting = Connection::Connecting {
            server: "support.example.com".into(),
        };
        let v = view(&connecting, &["Carol"], &c);
        assert_eq!(v.status, "Connecting to support.example.com…");
        assert_eq!((v.question, v.stop_enabled), (None, false));
        let ended = Connection::Ended {
            reason: "Carol ended the session".into(),
        };
        let v = view(&ended, &["Carol"], &c);
        assert_eq!(
            v.status,
            "The session has ended: Carol ended the session. Nobody can see or control this computer."
        );
        assert!(v.allowed.is_empty() && v.indicator.is_none());
    }

    #[test]
    fn while_reconnecting_what_was_allowed_is_still_said_and_stop_still_works() {
        let mut c = Consent::new();
        let id = ask(&mut c, Activity::ViewDesktop);
        c.answer(id, Answer::Allow);
        let reconnecting = Connection::Reconnecting {
            server: "support.example.com".into(),
        };
        let v = view(&reconnecting, &["Carol"], &c);
        assert!(
            v.status
                .starts_with("The connection to support.example.com was lost.")
        );
        assert_eq!(v.allowed, ["Carol can see your screen."]);
        assert!(v.stop_enabled && !v.ended && v.code_entry.is_none());
    }

    #[test]
    fn the_code_entry_says_why_a_code_was_refused_and_an_ended_session_offers_close() {
        let c = Consent::new();
        let needs = Connection::NeedsCode {
            server: Some("support.example.com".into()),
            refused: Some("the code is not right".into()),
        };
        let v = view(&needs, &[], &c);
        assert_eq!(v.code_entry, Some(Some("the code is not right".into())));
        assert!(!v.server_entry, "the command line named the server");
        assert!(v.status.ends_with("Server: support.example.com."));
        // Opened without a server (a double-click): its address is typed with the code.
        let unnamed = Connection::NeedsCode {
            server: None,
            refused: None,
        };
        let v = view(&unnamed, &[], &c);
        assert!(v.server_entry && v.code_entry == Some(None));
        assert!(v.status.starts_with("Type the support server's address"));
        assert!(!v.stop_enabled && !v.ended);
        let ended = Connection::Ended {
            reason: "the session has ended".into(),
        };
        let v = view(&ended, &[], &c);
        assert!(v.ended && v.code_entry.is_none());
        assert_eq!(view(&connected(), &[], &c).code_entry, None);
    }

    #[test]
    fn a_pick_takes_the_questions_place_and_the_clipboard_question_stands_beside_it() {
        let mut c = Consent::new();
        let id = ask(&mut c, Activity::ViewApplication);
        let question = c.question().cloned().expect("asked");
        let offered = vec![(7, "Invoice".to_owned(), "Editor".to_owned())];
        let clip = ClipboardQuestion {
            id: 3,
            csr: "Carol".into(),
        };
        let csrs = vec!["Carol".to_owned()];
        let conn = connected();
        let state = |picking| State {
            connection: &conn,
            csrs: &csrs,
            consent: &c,
            controlling: None,
            picking,
            clipboard: Some(&clip),
            given: None,
            signed_in_as: None,
        };
        let listing = View::of(state(Picking::Listing));
        assert_eq!((listing.question, listing.pick), (None, None));
        let v = View::of(state(Picking::Shown(&question, &offered)));
        assert_eq!(v.question, None, "the pick answers the question");
        assert_eq!(
            v.pick,
            Some(PickView {
                id,
                text: "Carol asks to see the windows you choose, and nothing else.".into(),
                windows: offered.clone(),
            })
        );
        assert_eq!(
            v.clipboard,
            Some(QuestionView {
                id: 3,
                text: "Carol asks for the text you copied: send it?".into()
            })
        );
        let v = View::of(state(Picking::No));
        assert_eq!(v.question.map(|q| q.id), Some(id));
        assert!(
            v.clipboard.is_some(),
            "beside, not instead of, the question"
        );
    }

    #[test]
    fn d4_the_csrs_own_computer_says_who_holds_control_and_offers_to_take_it_back() {
        let mut c = Consent::new();
        let csrs = vec!["Carol".to_owned()];
        let conn = connected();
        let given = |c: &Consent, csr_holds| {
            View::of(State {
                connection: &conn,
                csrs: &csrs,
                consent: c,
                controlling: None,
                picking: Picking::No,
                clipboard: None,
                given: Some(Given {
                    to: "Dave",
                    csr_holds,
                }),
                signed_in_as: None,
            })
        };
        // Asked, not yet allowed: nothing is given, nothing to take back.
        let id = match c.request(Activity::GiveControl, "Dave") {
            Asked::Ask(q) => q.id,
            other => panic!("{other:?}"),
        };
        let v = given(&c, false);
        assert_eq!(v.allowed, ["Nobody can see or control this computer."]);
        assert_eq!((v.indicator, v.take_back), (None, false));
        c.answer(id, Answer::Allow);
        let v = given(&c, false);
        assert_eq!(
            v.allowed,
            ["Dave sees your screen and controls your mouse and keyboard."]
        );
        assert_eq!(
            v.indicator.as_deref(),
            Some("Dave is controlling this computer")
        );
        assert!(v.take_back);
        let v = given(&c, true);
        assert_eq!(
            v.allowed,
            [
                "You have control of this computer. Dave sees your screen and takes control again by clicking it."
            ]
        );
        assert_eq!(
            v.indicator.as_deref(),
            Some("You took control back: Dave can take it by clicking your screen")
        );
        assert!(!v.take_back, "already taken back");
        c.stop();
        let v = given(&c, false);
        assert_eq!((v.indicator, v.take_back), (None, false));
    }

    #[test]
    fn the_roster_keeps_the_csrs_who_are_there() {
        let mut r = Roster::default();
        let welcome = serde_json::json!({"type": "welcome", "session": {"participants": [
            {"id": "c", "role": "csr", "name": "Carol"},
            {"id": "d", "role": "customer", "name": "Dave"}]}});
        assert!(r.server(&welcome));
        assert!(!r.server(&welcome), "nothing new");
        let joined = serde_json::json!({"type": "event", "event": {"type": "participant_joined",
            "participant": {"id": "b", "role": "csr", "name": "Bob"}}});
        assert!(r.server(&joined));
        assert_eq!(r.names(), ["Carol", "Bob"]);
        let left = serde_json::json!({"type": "event", "event": {"type": "participant_left", "participant": "c"}});
        assert!(r.server(&left));
        assert_eq!(r.names(), ["Bob"]);
    }

    #[test]
    fn without_a_name_from_the_server_the_window_still_names_someone() {
        let mut c = Consent::new();
        let id = ask(&mut c, Activity::ControlDesktop);
        c.answer(id, Answer::Allow);
        let v = view(&connected(), &[], &c);
        assert_eq!(v.who, None);
        assert_eq!(
            v.indicator.as_deref(),
            Some("The support person is controlling this computer")
        );
    }
}
