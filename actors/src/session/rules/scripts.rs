//! SPEC M3: scripts from the library run on the customer's computer. The primary CSR proposes
//! several in an order; the customer is asked in Tandem Helper's window, always (an earlier
//! "allow all" does not cover content they have not seen); once allowed the helper runs each
//! and reports how it ended, in order; the last one ends the activity. Each log is said in chat
//! and kept in the report.

use super::*;
use crate::protocol::{ScriptItem, ScriptOutcome};

/// Most scripts one run proposes.
pub const MAX_SCRIPTS_PER_RUN: usize = 20;
/// Longest log said in chat; the report keeps all the helper sent.
const CHAT_LOG_CHARS: usize = MAX_CHAT_CHARS - 200;

/// The run allowed on a customer's computer.
#[derive(Clone, Debug)]
pub struct ScriptRun {
    pub request: u32,
    /// The CSR who proposed it: the logs are said to them in chat.
    pub by: ParticipantId,
    pub items: Vec<ScriptItem>,
    /// How many have finished.
    pub done: usize,
}

impl ScriptRun {
    pub fn new(request: u32, by: ParticipantId, items: Vec<ScriptItem>) -> Self {
        Self {
            request,
            by,
            items,
            done: 0,
        }
    }
}

/// What chat says of a finished script.
fn chat_text(name: &str, o: &ScriptOutcome) -> String {
    let how = match (&o.refused, o.timed_out, o.exit_code) {
        (Some(why), _, _) => {
            let why: String = why.chars().take(300).collect();
            format!("was not run: {why}")
        }
        (None, true, _) => "was stopped at the time limit".to_owned(),
        (None, false, Some(0)) => "finished".to_owned(),
        (None, false, Some(code)) => format!("failed with exit code {code}"),
        (None, false, None) => "ended without an exit code".to_owned(),
    };
    let mut text = format!("Script \"{name}\" {how}.");
    if !o.output.is_empty() {
        text.push('\n');
        let log: String = o.output.chars().take(CHAT_LOG_CHARS).collect();
        text.push_str(&log);
        if log.len() < o.output.len() || o.truncated {
            text.push_str("\n… (the whole log is in the session report)");
        }
    }
    text
}

impl SessionRules {
    /// The scripts the primary CSR `by` proposes for the selected customer's computer.
    pub fn propose_scripts(
        &mut self,
        now: UnixMillis,
        by: ParticipantId,
        scripts: Vec<ScriptItem>,
    ) -> Outcome {
        if self.is_ended() {
            return Err(Refusal::SessionEnded);
        }
        let activity = Activity::RunScript;
        let customer = self.askable(by, activity)?;
        if !self.computer_can(customer, activity) {
            return Err(Refusal::HelperRequired);
        }
        let computer = self.computer_for(customer).ok_or(Refusal::HelperRequired)?;
        if scripts.is_empty() || scripts.len() > MAX_SCRIPTS_PER_RUN {
            return Err(Refusal::BadScriptList);
        }
        let request = self.next_request;
        let mut out = Vec::new();
        let proposed = Event::ScriptsProposed {
            request,
            customer,
            computer,
            by,
            scripts,
        };
        self.emit(now, proposed, &mut out);
        let asked = Event::ConsentRequested {
            request,
            activity,
            customer,
            by,
            computer: Some(computer),
            helper_needed: false,
        };
        self.emit(now, asked, &mut out);
        Ok(out)
    }

    /// Script `index` of run `request`, for `computer` to fetch while the run is allowed.
    pub fn script_item(
        &self,
        computer: ParticipantId,
        request: u32,
        index: usize,
    ) -> Result<&ScriptItem, Refusal> {
        let customer = self.computer_of(computer).ok_or(Refusal::NotAComputer)?;
        let run = self
            .script_runs
            .get(&customer)
            .filter(|r| {
                r.request == request && self.running.contains(&(Activity::RunScript, customer))
            })
            .ok_or(Refusal::ActivityNotRunning)?;
        run.items.get(index).ok_or(Refusal::ScriptOutOfOrder)
    }

    /// `computer` reports how script `index` of run `request` ended; in order only.
    pub fn script_finished(
        &mut self,
        now: UnixMillis,
        computer: ParticipantId,
        request: u32,
        index: usize,
        outcome: ScriptOutcome,
    ) -> Outcome {
        if self.is_ended() {
            return Err(Refusal::SessionEnded);
        }
        let name = self.script_item(computer, request, index)?.name.clone();
        let customer = self.computer_of(computer).ok_or(Refusal::NotAComputer)?;
        let (done, total, by) = self
            .script_runs
            .get(&customer)
            .map_or((0, 0, None), |r| (r.done, r.items.len(), Some(r.by)));
        if index != done {
            return Err(Refusal::ScriptOutOfOrder);
        }
        let mut out = Vec::new();
        // Said to the CSR who ran it, not to the session: another customer has no business
        // reading this customer's computer's output (staff see `script_finished`).
        let chat = Event::Chat {
            from: computer,
            to: by,
            text: chat_text(&name, &outcome),
        };
        let finished = Event::ScriptFinished {
            request,
            customer,
            computer,
            index: u32::try_from(index).unwrap_or(u32::MAX),
            name,
            outcome,
        };
        self.emit(now, finished, &mut out);
        self.emit(now, chat, &mut out);
        if index + 1 == total {
            let stopped = Event::ActivityStopped {
                activity: Activity::RunScript,
                customer,
                cause: StopCause::Finished,
            };
            self.emit(now, stopped, &mut out);
        }
        Ok(out)
    }
}
