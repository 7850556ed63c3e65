//! A customer's computer (Tandem Helper, issue 16): admitted with a pairing code, shown beside
//! its customer, never a customer itself, gone with its customer.

use super::*;

impl World {
    /// Pairs a computer with `customer` and connects it; answers its id.
    pub(super) fn attach_computer(&mut self, customer: ParticipantId) -> ParticipantId {
        let computer = ParticipantId::random();
        self.now += 1000;
        self.rules
            .admit_computer(self.now, customer, computer)
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
    for (who, refusal) in [
        (w.csr, Refusal::NotACustomer),
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
