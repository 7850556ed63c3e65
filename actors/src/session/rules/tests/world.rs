//! The tests' world: a session with its primary CSR, a journal, fabricated time, and the
//! commands, events and consents the tests use most, each in one line.

use super::*;
use crate::ids::{AccountId, QueueId, SessionId, SessionNumber};

pub(super) const T0: UnixMillis = 1_700_000_000_000;

pub(super) struct World {
    pub(super) rules: SessionRules,
    pub(super) csr: ParticipantId,
    pub(super) journal: Vec<Record>,
    pub(super) now: UnixMillis,
}

pub(super) fn init() -> SessionInit {
    SessionInit {
        id: SessionId::random(),
        number: SessionNumber::new(123_456_789).unwrap(),
        topic: "printer".into(),
        host: AccountId::random(),
        max_customers: 3,
        quick_phrases: Some(vec!["One moment please.".into()]),
        automatic_recording: false,
    }
}

pub(super) fn person(role: Role, name: &str, agent: bool) -> ParticipantInfo {
    ParticipantInfo {
        id: ParticipantId::random(),
        role,
        name: name.into(),
        email: Some(format!("{name}@example.com")),
        account: (role == Role::Csr).then(AccountId::random),
        is_agent: agent,
        phone: false,
    }
}

/// The commands the tests send most, built in one line.
pub(super) fn ask_for(activity: Activity) -> Command {
    Command::RequestActivity { activity }
}

pub(super) fn reply(request: u32, grant: bool, allow_all: bool) -> Command {
    Command::ConsentReply {
        request,
        grant,
        allow_all,
        reason: None,
    }
}

pub(super) fn stop(activity: Activity) -> Command {
    Command::StopActivity { activity }
}

pub(super) fn chat(to: Option<ParticipantId>, text: impl Into<String>) -> Command {
    Command::Chat {
        to,
        text: Some(text.into()),
        phrase: None,
    }
}

pub(super) fn phrase(to: Option<ParticipantId>, phrase: usize) -> Command {
    Command::Chat {
        to,
        text: None,
        phrase: Some(phrase),
    }
}

pub(super) fn notes(text: impl Into<String>) -> Command {
    Command::SetNotes { text: text.into() }
}

pub(super) fn end(confirm: bool, notes: Option<&str>) -> Command {
    Command::EndSession {
        confirm,
        notes: notes.map(Into::into),
    }
}

pub(super) fn hand(to: ParticipantId) -> Command {
    Command::HandControl { to }
}

pub(super) fn pass(to: ParticipantId) -> Command {
    Command::PassMicrophone { to }
}

pub(super) fn select(customer: ParticipantId) -> Command {
    Command::SelectCustomer { customer }
}

/// A queue the rules cannot check (the session actor does).
pub(super) fn a_queue() -> TransferTarget {
    TransferTarget::Queue {
        queue: QueueId::random(),
    }
}

pub(super) fn transfer(target: TransferTarget, message: Option<String>) -> Command {
    Command::Transfer { target, message }
}

/// The events the tests look for most.
pub(super) fn started(activity: Activity, customer: ParticipantId, pre_approved: bool) -> Event {
    Event::ActivityStarted {
        activity,
        customer,
        pre_approved,
    }
}

pub(super) fn stopped(activity: Activity, customer: ParticipantId, cause: StopCause) -> Event {
    Event::ActivityStopped {
        activity,
        customer,
        cause,
    }
}

impl World {
    pub(super) fn new() -> Self {
        Self::with(init())
    }

    pub(super) fn with(init: SessionInit) -> Self {
        let (mut rules, mut journal) = SessionRules::create(init, T0);
        let csr = person(Role::Csr, "carol", true);
        let id = csr.id;
        journal.extend(rules.join(T0, csr, true).unwrap());
        Self {
            rules,
            csr: id,
            journal,
            now: T0,
        }
    }

    /// A new session with its primary CSR and one customer, `name`.
    pub(super) fn with_customer(name: &str) -> (Self, ParticipantId) {
        let mut w = Self::new();
        let customer = w.join(Role::Customer, name);
        (w, customer)
    }

    pub(super) fn join(&mut self, role: Role, name: &str) -> ParticipantId {
        let p = person(role, name, false);
        let id = p.id;
        self.now += 1000;
        let recs = self.rules.join(self.now, p, false).unwrap();
        self.journal.extend(recs);
        id
    }

    pub(super) fn cmd(
        &mut self,
        from: ParticipantId,
        cmd: Command,
    ) -> Result<Vec<Event>, &'static str> {
        self.now += 1000;
        match self.rules.handle(self.now, from, cmd) {
            Ok(recs) => {
                let events = recs.iter().map(|r| r.event.clone()).collect();
                self.journal.extend(recs);
                Ok(events)
            }
            Err(e) => Err(e.code()),
        }
    }

    pub(super) fn request(&mut self, activity: Activity) -> u32 {
        match self
            .cmd(self.csr, Command::RequestActivity { activity })
            .unwrap()[..]
        {
            [Event::ConsentRequested { request, .. }] => request,
            ref other => panic!("expected a consent request, got {other:?}"),
        }
    }

    /// Asks the selected customer for `activity` and has `customer` grant it (not for all).
    pub(super) fn grant(&mut self, customer: ParticipantId, activity: Activity) {
        let r = self.request(activity);
        self.cmd(customer, reply(r, true, false)).unwrap();
    }

    /// The session as its journal rebuilds it.
    pub(super) fn restored(&self) -> SessionRules {
        SessionRules::restore(self.rules.init().clone(), &self.journal)
    }

    pub(super) fn running(&self) -> Vec<(Activity, ParticipantId)> {
        self.rules.running_activities().collect()
    }
}

pub(super) fn automatic() -> World {
    World::with(SessionInit {
        automatic_recording: true,
        ..init()
    })
}

impl World {
    /// The recording request waiting for `customer`'s answer, if any.
    pub(super) fn recording_request(&self, customer: ParticipantId) -> Option<u32> {
        self.rules.view(None, None)["pending_consents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["activity"] == "recording" && p["customer"] == customer.to_string())
            .map(|p| p["request"].as_u64().unwrap() as u32)
    }

    pub(super) fn answer(
        &mut self,
        customer: ParticipantId,
        request: u32,
        grant: bool,
    ) -> Vec<Event> {
        self.cmd(customer, reply(request, grant, false)).unwrap()
    }

    /// A session with automatic recording, and `customer` joined (and so asked).
    pub(super) fn automatic_with_customer(name: &str) -> (Self, ParticipantId) {
        let mut w = automatic();
        let customer = w.join(Role::Customer, name);
        (w, customer)
    }

    /// `customer` agrees to the recording they were asked for on joining.
    pub(super) fn agree_to_recording(&mut self, customer: ParticipantId) {
        let asked = self.recording_request(customer).unwrap();
        self.answer(customer, asked, true);
    }
}
