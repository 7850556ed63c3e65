//! A customer's computer (Tandem Helper, issue 16): admitted with a pairing code, shown beside
//! its customer, never a customer itself, gone with its customer.

use super::*;

impl World {
    /// Pairs a computer with `customer` and connects it; answers its id.
    pub(super) fn attach_computer(&mut self, customer: ParticipantId) -> ParticipantId {
        self.attach_able_computer(customer, Vec::new())
    }

    /// [`World::attach_computer`] for a helper that says it can do `abilities` (issue 17).
    pub(super) fn attach_able_computer(
        &mut self,
        customer: ParticipantId,
        abilities: Vec<Activity>,
    ) -> ParticipantId {
        let computer = ParticipantId::random();
        self.now += 1000;
        self.rules
            .admit_able_computer(self.now, customer, computer, abilities)
            .unwrap();
        let recs = self.rules.connect(self.now, computer).unwrap();
        self.journal.extend(recs);
        computer
    }
}

#[test]
fn a_computer_joins_beside_its_customer_under_their_name() {
    let (mut w, dave) = World::with_customer("Dave");
    let computer = w.attach_computer(dave);
    let tail: Vec<_> = w.journal[w.journal.len() - 2..]
        .iter()
        .map(|r| r.event.clone())
        .collect();
    let [
        Event::ParticipantJoined { participant },
        Event::ComputerAttached {
            computer: c,
            customer,
            ..
        },
    ] = &tail[..]
    else {
        panic!("expected the computer's join, got {tail:?}")
    };
    assert_eq!(
        (participant.id, participant.name.as_str(), participant.role),
        (computer, "Dave's computer", Role::Customer)
    );
    assert_eq!((*c, *customer), (computer, dave));
    assert_eq!(tail[1].audience(), Audience::Everyone);
    let view = w.rules.view(None, None);
    let shown = view["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == json!(computer))
        .unwrap()
        .clone();
    assert_eq!(shown["computer_of"], json!(dave));
    // It is not a customer: no slot, never selected.
    assert_eq!(w.rules.customer_count(), 1);
    assert_eq!(w.cmd(w.csr, select(computer)), Err("not_a_customer"));
    // The journal rebuilds the same.
    assert_eq!(w.restored().view(None, None), view);
}

#[test]
fn a_computer_takes_no_customer_slot() {
    let mut init = init();
    init.max_customers = 1;
    let mut w = World::with(init);
    let dave = w.join(Role::Customer, "Dave");
    w.attach_computer(dave);
    assert_eq!(w.rules.customer_count(), 1);
}

#[test]
fn a_second_computer_for_one_customer_is_refused() {
    let (mut w, dave) = World::with_customer("Dave");
    w.attach_computer(dave);
    assert_eq!(
        w.rules
            .admit_computer(w.now, dave, ParticipantId::random())
            .unwrap_err(),
        Refusal::ComputerAttached
    );
    // Nor may two wait at once.
    let (mut w, erin) = World::with_customer("Erin");
    w.rules
        .admit_computer(w.now, erin, ParticipantId::random())
        .unwrap();
    assert_eq!(
        w.rules
            .admit_computer(w.now, erin, ParticipantId::random())
            .unwrap_err(),
        Refusal::ComputerAttached
    );
}

#[test]
fn only_a_customer_present_gets_a_computer() {
    let (mut w, dave) = World::with_customer("Dave");
    let computer = w.attach_computer(dave);
    let someone = ParticipantId::random();
    // The primary CSR may pair their own (D4, tests/give_control.rs); an assistant may not.
    let bob = w.join(Role::Csr, "Bob");
    for (who, refusal) in [
        (bob, Refusal::NotPrimary),
        (computer, Refusal::NotACustomer),
        (someone, Refusal::UnknownParticipant),
    ] {
        assert_eq!(
            w.rules
                .admit_computer(w.now, who, ParticipantId::random())
                .unwrap_err(),
            refusal
        );
    }
    // A customer who left before their computer connected: it does not join.
    let erin = w.join(Role::Customer, "Erin");
    let waiting = ParticipantId::random();
    w.rules.admit_computer(w.now, erin, waiting).unwrap();
    w.cmd(erin, Command::Leave).unwrap();
    assert_eq!(
        w.rules.connect(w.now, waiting).unwrap_err(),
        Refusal::UnknownParticipant
    );
}

#[test]
fn the_computer_leaves_with_its_customer() {
    let (mut w, dave) = World::with_customer("Dave");
    let computer = w.attach_computer(dave);
    let events = w.cmd(dave, Command::Leave).unwrap();
    assert!(events.contains(&Event::ParticipantLeft {
        participant: computer,
        reason: LeaveReason::CustomerLeft,
    }));
    assert!(w.rules.participant(computer).is_none());
    assert_eq!(w.rules.computer_for(dave), None);
    // Removed or disconnected, the same.
    let erin = w.join(Role::Customer, "Erin");
    let computer = w.attach_computer(erin);
    let events = w.cmd(w.csr, Command::RemoveParticipant { participant: erin });
    assert!(events.unwrap().contains(&Event::ParticipantLeft {
        participant: computer,
        reason: LeaveReason::CustomerLeft,
    }));
    let fred = w.join(Role::Customer, "Fred");
    let computer = w.attach_computer(fred);
    let recs = w.rules.disconnected(w.now, fred);
    assert!(recs.iter().any(|r| r.event
        == Event::ParticipantLeft {
            participant: computer,
            reason: LeaveReason::CustomerLeft,
        }));
}

#[test]
fn the_customer_stays_when_their_computer_goes_and_may_pair_again() {
    let (mut w, dave) = World::with_customer("Dave");
    let computer = w.attach_computer(dave);
    w.now += 1000;
    w.journal.extend(w.rules.disconnected(w.now, computer));
    assert!(w.rules.participant(dave).is_some());
    assert_eq!(w.rules.view(None, None)["selected_customer"], json!(dave));
    let again = w.attach_computer(dave);
    assert_eq!(w.rules.computer_for(dave), Some(again));
}

#[test]
fn an_ended_session_admits_no_computer() {
    let (mut w, dave) = World::with_customer("Dave");
    w.attach_computer(dave);
    w.cmd(w.csr, end(true, None)).unwrap();
    assert_eq!(
        w.rules
            .admit_computer(w.now, dave, ParticipantId::random())
            .unwrap_err(),
        Refusal::SessionEnded
    );
}

// ---- consent through the helper (issue 16, items 4 and 9) ----

/// The consent request `events` holds, whole.
fn asked(events: &[Event]) -> Event {
    events
        .iter()
        .find(|e| matches!(e, Event::ConsentRequested { .. }))
        .unwrap_or_else(|| panic!("no consent request in {events:?}"))
        .clone()
}

fn request_of(e: &Event) -> u32 {
    match e {
        Event::ConsentRequested { request, .. } => *request,
        other => panic!("not a consent request: {other:?}"),
    }
}

#[test]
fn questions_about_the_computer_are_asked_in_its_helper_and_its_answer_counts() {
    let (mut w, dave) = World::with_customer("Dave");
    let computer = w.attach_computer(dave);
    let events = w.cmd(w.csr, ask_for(Activity::ViewDesktop)).unwrap();
    let e = asked(&events);
    let Event::ConsentRequested {
        request,
        computer: asked_of,
        helper_needed,
        ..
    } = e.clone()
    else {
        unreachable!()
    };
    assert_eq!((asked_of, helper_needed), (Some(computer), false));
    // The computer hears the question; so does the page (to say where it is).
    assert_eq!(e.audience(), Audience::StaffAnd(vec![dave, computer]));
    let page = w.rules.view(Some(Role::Customer), Some(dave));
    assert_eq!(page["pending_consents"][0]["computer"], json!(computer));
    let helper = w.rules.view(Some(Role::Customer), Some(computer));
    assert_eq!(helper["pending_consents"][0]["request"], json!(request));
    // The page cannot say yes for the helper.
    assert_eq!(
        w.cmd(dave, reply(request, true, false)),
        Err("consent_in_helper")
    );
    // The helper's yes is the customer's consent (S9), "allow all" included.
    let events = w.cmd(computer, reply(request, true, true)).unwrap();
    assert!(events.contains(&started(Activity::ViewDesktop, dave, false)));
    assert_eq!(w.rules.view(None, None)["allow_all"], json!([dave]));
    let events = w.cmd(w.csr, ask_for(Activity::ControlDesktop)).unwrap();
    assert_eq!(events, vec![started(Activity::ControlDesktop, dave, true)]);
    assert_eq!(w.restored().view(None, None), w.rules.view(None, None));
}

#[test]
fn the_page_may_still_refuse_and_stop_what_the_helper_allowed() {
    let (mut w, dave) = World::with_customer("Dave");
    let computer = w.attach_computer(dave);
    let r = w.request(Activity::ControlDesktop);
    let events = w.cmd(dave, reply(r, false, false)).unwrap();
    assert_eq!(
        events,
        vec![Event::ConsentAnswered {
            request: r,
            granted: false,
            allow_all: false,
            reason: None,
        }]
    );
    w.grant(computer, Activity::ControlDesktop);
    w.cmd(dave, stop(Activity::ControlDesktop)).unwrap();
    assert!(w.running().is_empty());
}

#[test]
fn the_helpers_stop_ends_what_runs_on_its_computer_and_nothing_else() {
    let (mut w, dave) = World::with_customer("Dave");
    let computer = w.attach_computer(dave);
    w.grant(computer, Activity::ViewDesktop);
    w.grant(computer, Activity::ControlDesktop);
    let events = w.cmd(computer, stop(Activity::ControlDesktop)).unwrap();
    assert_eq!(
        events,
        vec![Event::ActivityStopped {
            activity: Activity::ControlDesktop,
            customer: dave,
            cause: StopCause::Stopped,
        }]
    );
    w.cmd(computer, stop(Activity::ViewDesktop)).unwrap();
    assert!(w.running().is_empty());
    // Nothing runs now: the helper is told so, like the page would be.
    assert_eq!(
        w.cmd(computer, stop(Activity::ViewDesktop)),
        Err("activity_not_running")
    );
    assert_eq!(w.restored().view(None, None), w.rules.view(None, None));
}

#[test]
fn other_questions_stay_on_the_page() {
    let (mut w, dave) = World::with_customer("Dave");
    let computer = w.attach_computer(dave);
    let e = asked(&w.cmd(w.csr, ask_for(Activity::FileTransfer)).unwrap());
    assert!(matches!(
        e,
        Event::ConsentRequested {
            computer: None,
            helper_needed: false,
            ..
        }
    ));
    let r = request_of(&e);
    assert_eq!(
        w.cmd(computer, reply(r, true, false)),
        Err("unknown_consent_request")
    );
    w.cmd(dave, reply(r, true, false)).unwrap();
}

#[test]
fn without_a_computer_viewing_is_asked_on_the_page_and_control_waits_for_the_helper() {
    let (mut w, dave) = World::with_customer("Dave");
    let view = asked(&w.cmd(w.csr, ask_for(Activity::ViewDesktop)).unwrap());
    assert!(matches!(
        view,
        Event::ConsentRequested {
            computer: None,
            helper_needed: false,
            ..
        }
    ));
    // "Allow all" from the page does not start control: nothing could carry it out.
    w.cmd(dave, reply(request_of(&view), true, true)).unwrap();
    let control = asked(&w.cmd(w.csr, ask_for(Activity::ControlDesktop)).unwrap());
    assert!(matches!(
        control,
        Event::ConsentRequested {
            computer: None,
            helper_needed: true,
            ..
        }
    ));
    let r = request_of(&control);
    assert_eq!(w.cmd(dave, reply(r, true, false)), Err("helper_needed"));
    assert_eq!(w.rules.media_policy().control, None);
    // Tandem Helper attaches: the question moves to its window.
    let computer = ParticipantId::random();
    w.rules.admit_computer(w.now, dave, computer).unwrap();
    let events: Vec<Event> = w
        .rules
        .connect(w.now, computer)
        .unwrap()
        .into_iter()
        .map(|r| {
            w.journal.push(r.clone());
            r.event
        })
        .collect();
    assert!(events.contains(&Event::ConsentWithdrawn {
        request: r,
        cause: None
    }));
    // Dave allowed all on the page: the S9 record says so, and the helper keeps its own.
    assert!(events.contains(&started(Activity::ControlDesktop, dave, true)));
    assert_eq!(w.rules.media_policy().control, Some((w.csr, dave)));
    assert_eq!(w.restored().view(None, None), w.rules.view(None, None));
}

#[test]
fn a_waiting_control_question_moves_to_the_helper_that_attaches() {
    let (mut w, dave) = World::with_customer("Dave");
    let r = w.request(Activity::ControlApplication);
    let computer = w.attach_computer(dave);
    let tail: Vec<Event> = w
        .journal
        .iter()
        .rev()
        .take(2)
        .map(|r| r.event.clone())
        .collect();
    let Event::ConsentRequested {
        request: moved,
        activity: Activity::ControlApplication,
        computer: Some(c),
        helper_needed: false,
        ..
    } = tail[0]
    else {
        panic!("expected the question asked again in the helper, got {tail:?}")
    };
    assert_eq!(
        tail[1],
        Event::ConsentWithdrawn {
            request: r,
            cause: None
        }
    );
    assert_eq!(c, computer);
    w.cmd(computer, reply(moved, true, false)).unwrap();
    assert_eq!(w.running(), vec![(Activity::ControlApplication, dave)]);
}

#[test]
fn when_the_computer_goes_control_stops_and_its_questions_are_withdrawn() {
    let (mut w, dave) = World::with_customer("Dave");
    let computer = w.attach_computer(dave);
    w.grant(computer, Activity::ControlDesktop);
    let r = w.request(Activity::ViewApplication);
    w.now += 1000;
    let events: Vec<Event> = w
        .rules
        .disconnected(w.now, computer)
        .into_iter()
        .map(|r| r.event)
        .collect();
    assert!(events.contains(&Event::ConsentWithdrawn {
        request: r,
        cause: None
    }));
    assert!(events.contains(&stopped(
        Activity::ControlDesktop,
        dave,
        StopCause::ComputerLeft
    )));
    assert!(w.running().is_empty());
    assert_eq!(w.rules.media_policy().control, None);
}

/// Issue 17, no phantom activities: what only Tandem Helper can do is refused, and nothing is
/// asked or recorded, unless the customer's helper is attached and said it can; "allow all"
/// does not change that.
#[test]
fn what_only_a_helper_does_is_refused_without_one_that_can() {
    const HELPER_ONLY: [Activity; 4] = [
        Activity::SystemInfo,
        Activity::RunScript,
        Activity::Reboot,
        Activity::LoginAsUser,
    ];
    let (mut w, dave) = World::with_customer("Dave");
    let r = w.request(Activity::ViewDesktop);
    w.cmd(dave, reply(r, true, true)).unwrap();
    let before = w.journal.len();
    for activity in HELPER_ONLY {
        assert_eq!(w.cmd(w.csr, ask_for(activity)), Err("helper_required"));
    }
    // A helper that said nothing of them: still refused.
    let computer = w.attach_computer(dave);
    let attached = w.journal.len();
    assert!(attached > before);
    for activity in HELPER_ONLY {
        assert_eq!(w.cmd(w.csr, ask_for(activity)), Err("helper_required"));
    }
    assert_eq!(w.journal.len(), attached, "nothing recorded");
    assert_eq!(w.running(), vec![(Activity::ViewDesktop, dave)]);
    let view = w.rules.view(None, None);
    assert!(
        view["pending_consents"].as_array().unwrap().is_empty(),
        "{view}"
    );
    assert!(!w.rules.computer_can(dave, Activity::SystemInfo));
    let _ = computer;
}

#[test]
fn a_helper_that_can_is_asked_in_its_window_and_only_for_what_it_can() {
    let (mut w, dave) = World::with_customer("Dave");
    let computer = w.attach_able_computer(dave, vec![Activity::SystemInfo, Activity::ViewDesktop]);
    // Shown in the session view, for the console to offer only that.
    let view = w.rules.view(None, None);
    let shown = view["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == serde_json::json!(computer))
        .unwrap()
        .clone();
    assert_eq!(shown["can"], serde_json::json!(["system_info"]), "{shown}");
    let e = asked(&w.cmd(w.csr, ask_for(Activity::SystemInfo)).unwrap());
    assert!(
        matches!(e, Event::ConsentRequested { computer: Some(c), .. } if c == computer),
        "{e:?}"
    );
    assert_eq!(
        w.cmd(w.csr, ask_for(Activity::RunScript)),
        Err("helper_required")
    );
    // The journal keeps what the helper can: a restored session refuses and allows the same.
    let restored = w.restored();
    assert_eq!(restored.view(None, None), w.rules.view(None, None));
    assert!(restored.computer_can(dave, Activity::SystemInfo));
    assert!(!restored.computer_can(dave, Activity::RunScript));
}

/// M5: a computer says it restarts only while its customer allowed `reboot`; the session shows
/// it restarting until a computer of that customer is back.
#[test]
fn a_computer_restarts_only_with_its_customers_yes_and_is_back_when_it_attaches_again() {
    let (mut w, dave) = World::with_customer("Dave");
    w.cmd(w.csr, select(dave)).unwrap();
    let computer = w.attach_able_computer(dave, vec![Activity::Reboot]);
    assert_eq!(
        w.rules.restarting(w.now, computer).map_err(|r| r.code()),
        Err("activity_not_running")
    );
    let asked = w.request(Activity::Reboot);
    w.cmd(computer, reply(asked, true, false)).unwrap();
    assert_eq!(
        w.rules.restarting(w.now, dave).map_err(|r| r.code()),
        Err("not_a_computer")
    );
    let recs = w.rules.restarting(w.now, computer).unwrap();
    w.journal.extend(recs);
    assert!(w.rules.is_restarting(dave));
    assert_eq!(w.rules.view(None, None)["restarting"], json!([dave]));
    assert!(w.restored().is_restarting(dave));
    w.cmd(computer, Command::Leave).unwrap();
    assert!(
        w.rules.is_restarting(dave),
        "still restarting while the computer is away"
    );
    w.attach_able_computer(dave, vec![Activity::Reboot]);
    assert!(!w.rules.is_restarting(dave));
    assert!(!w.restored().is_restarting(dave));
}

/// Issue 17 (review): what only a helper does is asked in its window even after "allow all",
/// and stops when the helper leaves.
#[test]
fn helper_activities_are_asked_in_the_helper_after_allow_all_and_stop_when_it_leaves() {
    let (mut w, dave) = World::with_customer("Dave");
    w.cmd(w.csr, select(dave)).unwrap();
    let computer = w.attach_able_computer(dave, vec![Activity::SystemInfo]);
    let view = w.request(Activity::ViewDesktop);
    w.cmd(computer, reply(view, true, true)).unwrap();
    let asked = w.cmd(w.csr, ask_for(Activity::SystemInfo)).unwrap();
    let [
        Event::ConsentRequested {
            request,
            computer: Some(c),
            ..
        },
    ] = &asked[..]
    else {
        panic!("asked in the helper, not started: {asked:?}")
    };
    assert_eq!(*c, computer);
    w.cmd(computer, reply(*request, true, false)).unwrap();
    assert!(w.running().contains(&(Activity::SystemInfo, dave)));
    let left = w.cmd(computer, Command::Leave).unwrap();
    assert!(
        left.contains(&stopped(
            Activity::SystemInfo,
            dave,
            StopCause::ComputerLeft
        )),
        "{left:?}"
    );
}
