//! Drives the real helper window from a script, with a real consent record behind it: the
//! window's tests (helper/tests/window.rs) and anyone who wants to look at the window use it.
//!
//! Reads one JSON command a line on stdin, for example
//!   {"connected":{"server":"support.example.com","computer":"Dave's computer"}}
//!   {"ask":"control_desktop","csr":"Carol"}     the server asks on Carol's behalf
//!   {"ended":"control_desktop"}                 the activity ended elsewhere
//!   {"csrs":["Carol","Bob"]}  {"controlling":"Bob"}  {"controlling":""}
//!   {"connecting":"support.example.com"}  {"session_ended":"Carol ended the session"}
//! and prints on stdout, one JSON object a line, what the window did and what the helper would
//! tell the server:
//!   {"event":"answer","question":1,"answer":"allow"}  {"event":"stop"}  {"event":"close"}
//!   {"decision":{"activity":"control_desktop","allowed":true}}
//!   {"error":"..."} for a line it cannot use (and nothing changes).
//! End of input closes the window.
//!
//! cargo run -p tandem-helper --example window_demo

use std::io::BufRead;
use std::sync::mpsc;

use serde::Deserialize;
use serde_json::json;
use tandem_helper::consent::{Activity, Answer, Asked, Consent, Decision};
use tandem_helper::status::{Connection, State, View};
use tandem_helper::window::{self, UiEvent};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Command {
    ask: Option<String>,
    csr: Option<String>,
    ended: Option<String>,
    csrs: Option<Vec<String>>,
    /// A name, or "" for nobody.
    controlling: Option<String>,
    connecting: Option<String>,
    connected: Option<Connected>,
    session_ended: Option<String>,
    /// M4: the CSR is signed in as this user on a separate screen ("" for nobody).
    signed_in_as: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Connected {
    server: String,
    computer: String,
}

enum Input {
    Line(String),
    Ui(UiEvent),
    Eof,
}

struct Helper {
    connection: Connection,
    csrs: Vec<String>,
    consent: Consent,
    controlling: Option<String>,
    signed_in_as: Option<String>,
}

impl Helper {
    fn view(&self) -> View {
        View::of(State {
            connection: &self.connection,
            csrs: &self.csrs,
            consent: &self.consent,
            controlling: self.controlling.as_deref(),
            picking: tandem_helper::status::Picking::No,
            clipboard: None,
            given: None,
            signed_in_as: self.signed_in_as.as_deref(),
        })
    }

    fn command(&mut self, line: &str) -> Result<(), String> {
        let c: Command = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let activity = |name: &str| {
            Activity::from_name(name).ok_or_else(|| format!("unknown activity {name:?}"))
        };
        // Check everything before changing anything.
        let ask = c.ask.as_deref().map(activity).transpose()?;
        let ended = c.ended.as_deref().map(activity).transpose()?;
        if ask.is_some() && c.csr.is_none() {
            return Err("\"ask\" needs \"csr\"".into());
        }
        if let Some(s) = c.connecting {
            self.connection = Connection::Connecting { server: s };
        }
        if let Some(Connected { server, computer }) = c.connected {
            self.connection = Connection::Connected { server, computer };
        }
        if let Some(reason) = c.session_ended {
            self.connection = Connection::Ended { reason };
            decisions(&self.consent.stop());
        }
        if let Some(csrs) = c.csrs {
            self.csrs = csrs;
        }
        if let Some(user) = c.signed_in_as {
            self.signed_in_as = Some(user).filter(|u| !u.is_empty());
        }
        if let Some(name) = c.controlling {
            self.controlling = Some(name).filter(|n| !n.is_empty());
        }
        if let Some(a) = ended {
            self.consent.ended(a);
        }
        if let (Some(a), Some(csr)) = (ask, c.csr) {
            if !self.csrs.contains(&csr) {
                self.csrs.push(csr.clone());
            }
            if self.consent.request(a, &csr) == Asked::Allowed {
                decisions(&[Decision {
                    activity: a,
                    allowed: true,
                }]);
            }
        }
        Ok(())
    }

    /// Returns false when the window is gone.
    fn ui(&mut self, event: UiEvent) -> bool {
        match event {
            UiEvent::Answer { question, answer } => {
                let answer_name = match answer {
                    Answer::Allow => "allow",
                    Answer::AllowAll => "allow_all",
                    Answer::Deny => "deny",
                };
                out(json!({"event": "answer", "question": question, "answer": answer_name}));
                decisions(&self.consent.answer(question, answer));
                true
            }
            // This demo asks neither a pick nor the clipboard, nor gives control (tests/join
            // covers them).
            UiEvent::Picked { .. } | UiEvent::ClipboardAnswer { .. } | UiEvent::TakeControl => true,
            UiEvent::Stop => {
                out(json!({"event": "stop"}));
                decisions(&self.consent.stop());
                true
            }
            UiEvent::Join { server, code } => {
                out(json!({"event": "code", "code": code, "server": server}));
                true
            }
            UiEvent::Close => {
                out(json!({"event": "close"}));
                decisions(&self.consent.stop());
                false
            }
        }
    }
}

fn out(value: serde_json::Value) {
    println!("{value}");
}

fn decisions(ds: &[Decision]) {
    for d in ds {
        out(json!({"decision": {"activity": d.activity.name(), "allowed": d.allowed}}));
    }
}

fn main() -> std::process::ExitCode {
    let (views_tx, views_rx) = async_channel::unbounded();
    let (events_tx, events_rx) = async_channel::unbounded();
    let (input_tx, input) = mpsc::channel();

    let tx = input_tx.clone();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(Input::Line(line)).is_err() {
                return;
            }
        }
        let _ = tx.send(Input::Eof);
    });
    std::thread::spawn(move || {
        while let Ok(e) = events_rx.recv_blocking() {
            if input_tx.send(Input::Ui(e)).is_err() {
                return;
            }
        }
    });
    std::thread::spawn(move || {
        let mut helper = Helper {
            connection: Connection::Connecting {
                server: "support.example.com".into(),
            },
            csrs: Vec::new(),
            consent: Consent::new(),
            controlling: None,
            signed_in_as: None,
        };
        let _ = views_tx.send_blocking(helper.view());
        while let Ok(i) = input.recv() {
            let go_on = match i {
                Input::Line(l) if l.trim().is_empty() => true,
                Input::Line(l) => {
                    if let Err(e) = helper.command(&l) {
                        out(json!({ "error": e }));
                    }
                    true
                }
                Input::Ui(e) => helper.ui(e),
                Input::Eof => false,
            };
            if !go_on {
                break;
            }
            let _ = views_tx.send_blocking(helper.view());
        }
        // Dropping the sender closes the window.
    });

    match window::run(views_rx, events_tx) {
        e if e == gtk4::glib::ExitCode::SUCCESS => std::process::ExitCode::SUCCESS,
        _ => std::process::ExitCode::FAILURE,
    }
}
