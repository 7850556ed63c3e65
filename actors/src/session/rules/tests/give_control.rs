//! The primary CSR gives control of their own desktop to the selected customer through their
//! own Tandem Helper (SPEC D4): asked in that helper only, the helper's screen shown, either
//! side takes the pointer, either side ends it (D5), and the CSR's computer leaves with them.

use super::*;
use crate::protocol::ControlHolder;

fn take() -> Command {
    Command::TakeControl
}

fn taken(customer: ParticipantId, by: ParticipantId, holder: ControlHolder) -> Event {
    Event::ControlTaken {
        customer,
        by,
        holder,
    }
}

/// Asks to give control and has Carol's computer allow it.
fn give(w: &mut World, dave: ParticipantId, mine: ParticipantId) {
    let r = w.request(Activity::GiveControl);
    let evs = w.cmd(mine, reply(r, true, false)).unwrap();
    assert_eq!(evs[1], started(Activity::GiveControl, dave, false));
}

#[test]
fn the_primary_pairs_their_own_computer_and_nobody_else_on_staff_does() {
    let (mut w, _dave) = World::with_customer("Dave");
    let asst = w.join(Role::Csr, "Bob");
    assert_eq!(
        w.rules
            .admit_computer(w.now, asst, ParticipantId::random())
            .map_err(|e| e.code()),
        Err("not_primary")
    );
    let mine = w.attach_computer(w.csr);
    assert_eq!(w.rules.computer_of(mine), Some(w.csr));
    assert_eq!(w.rules.participant(mine).unwrap().name, "carol's computer");
    assert_eq!(w.rules.customer_count(), 1, "a computer takes no slot");
    assert_eq!(
        w.rules
            .admit_computer(w.now, w.csr, ParticipantId::random())
            .map_err(|e| e.code()),
        Err("computer_attached")
    );
}

#[test]
fn giving_control_needs_the_csrs_helper_and_is_asked_only_there() {
    let (mut w, dave) = World::with_customer("Dave");
    assert_eq!(
        w.cmd(w.csr, ask_for(Activity::GiveControl)),
        Err("csr_helper_needed")
    );
    let mine = w.attach_computer(w.csr);
    assert_eq!(
        w.cmd(dave, ask_for(Activity::GiveControl)),
        Err("not_primary")
    );
    // Dave allowed all on his page: that starts nothing of Carol's.
    let r = w.request(Activity::ViewDesktop);
    w.cmd(dave, reply(r, true, true)).unwrap();
    let evs = w.cmd(w.csr, ask_for(Activity::GiveControl)).unwrap();
    let [
        Event::ConsentRequested {
            request,
            activity: Activity::GiveControl,
            customer,
            by,
            computer,
            helper_needed: false,
        },
    ] = evs[..]
    else {
        panic!("expected the question in Carol's helper, got {evs:?}")
    };
    assert_eq!((customer, by, computer), (dave, w.csr, Some(mine)));
    // Only Carol's helper answers; neither Dave nor Carol's console can.
    for who in [dave, w.csr] {
        assert_eq!(
            w.cmd(who, reply(request, true, false)),
            Err("unknown_consent_request")
        );
    }
    assert!(w.rules.given_control().is_none());
    let evs = w.cmd(mine, reply(request, true, false)).unwrap();
    assert_eq!(evs[1], started(Activity::GiveControl, dave, false));
    assert_eq!(w.rules.given_control(), Some((dave, mine)));
    assert_eq!(w.rules.control_holder(), Some(ControlHolder::Customer));
}

#[test]
fn either_side_takes_the_pointer_and_the_sfu_follows() {
    let (mut w, dave) = World::with_customer("Dave");
    let eve = w.join(Role::Customer, "Eve");
    let mine = w.attach_computer(w.csr);
    assert_eq!(w.cmd(dave, take()), Err("activity_not_running"));
    give(&mut w, dave, mine);
    let given = w.rules.media_policy().given.unwrap();
    assert_eq!((given.computer, given.customer), (mine, dave));
    assert!(given.customer_holds);
    assert_eq!(w.cmd(dave, take()), Err("already_in_control"));
    assert_eq!(w.cmd(eve, take()), Err("not_primary"));
    // Carol takes it back from her console...
    assert_eq!(
        w.cmd(w.csr, take()).unwrap(),
        vec![taken(dave, w.csr, ControlHolder::Csr)]
    );
    assert!(!w.rules.media_policy().given.unwrap().customer_holds);
    assert_eq!(w.cmd(mine, take()), Err("already_in_control"));
    // ...Dave clicks to take it again, and Carol takes it back from her helper.
    assert_eq!(
        w.cmd(dave, take()).unwrap(),
        vec![taken(dave, dave, ControlHolder::Customer)]
    );
    assert!(w.rules.media_policy().given.unwrap().customer_holds);
    w.cmd(mine, take()).unwrap();
    assert_eq!(w.rules.control_holder(), Some(ControlHolder::Csr));
    // The journal rebuilds who holds it.
    assert_eq!(w.restored().media_policy(), w.rules.media_policy());
    assert_eq!(w.restored().view(None, None), w.rules.view(None, None));
}

#[test]
fn either_side_ends_it_and_a_new_start_gives_the_customer_the_pointer() {
    let (mut w, dave) = World::with_customer("Dave");
    let mine = w.attach_computer(w.csr);
    give(&mut w, dave, mine);
    w.cmd(w.csr, take()).unwrap();
    // D5: Dave ends it.
    assert_eq!(
        w.cmd(dave, stop(Activity::GiveControl)).unwrap(),
        vec![stopped(Activity::GiveControl, dave, StopCause::Stopped)]
    );
    assert_eq!(w.rules.media_policy().given, None);
    give(&mut w, dave, mine);
    assert_eq!(w.rules.control_holder(), Some(ControlHolder::Customer));
    // Carol's helper ends it (its Stop), as her console may.
    assert_eq!(
        w.cmd(mine, stop(Activity::GiveControl)).unwrap(),
        vec![stopped(Activity::GiveControl, dave, StopCause::Stopped)]
    );
    give(&mut w, dave, mine);
    w.cmd(w.csr, stop(Activity::GiveControl)).unwrap();
    assert!(w.running().is_empty());
}

#[test]
fn one_screen_of_the_csrs_at_a_time() {
    let (mut w, dave) = World::with_customer("Dave");
    let mine = w.attach_computer(w.csr);
    w.cmd(w.csr, ask_for(Activity::ShowDesktop)).unwrap();
    assert_eq!(
        w.cmd(w.csr, ask_for(Activity::GiveControl)),
        Err("already_showing")
    );
    w.cmd(w.csr, stop(Activity::ShowDesktop)).unwrap();
    give(&mut w, dave, mine);
    assert_eq!(
        w.cmd(w.csr, ask_for(Activity::ShowDesktop)),
        Err("already_showing")
    );
    // The browser's screen of the CSR is not passed on meanwhile: the helper's is.
    assert_eq!(w.rules.media_policy().showing, None);
}

#[test]
fn selecting_another_customer_the_csrs_helper_leaving_or_a_hand_over_ends_it() {
    let (mut w, dave) = World::with_customer("Dave");
    let eve = w.join(Role::Customer, "Eve");
    let mine = w.attach_computer(w.csr);
    give(&mut w, dave, mine);
    let evs = w.cmd(w.csr, select(eve)).unwrap();
    assert_eq!(
        evs[0],
        stopped(Activity::GiveControl, dave, StopCause::CustomerChanged)
    );
    // A question waiting in Carol's helper is withdrawn when her helper leaves.
    let r = w.request(Activity::GiveControl);
    let recs = w.rules.disconnected(w.now, mine);
    assert_eq!(
        recs[0].event,
        Event::ConsentWithdrawn {
            request: r,
            cause: None
        }
    );
    let mine = w.attach_computer(w.csr);
    let r = w.request(Activity::GiveControl);
    w.cmd(mine, reply(r, true, false)).unwrap();
    let recs = w.rules.disconnected(w.now, mine);
    assert_eq!(
        recs[0].event,
        stopped(Activity::GiveControl, eve, StopCause::ComputerLeft)
    );
    let mine = w.attach_computer(w.csr);
    give(&mut w, eve, mine);
    let bob = w.join(Role::Csr, "Bob");
    let evs = w.cmd(w.csr, hand(bob)).unwrap();
    assert!(evs.contains(&stopped(
        Activity::GiveControl,
        eve,
        StopCause::ControlHandedOver
    )));
    // Bob has no computer of his: nothing to give.
    assert_eq!(
        w.cmd(bob, ask_for(Activity::GiveControl)),
        Err("csr_helper_needed")
    );
}

#[test]
fn the_csrs_computer_leaves_with_them() {
    let (mut w, dave) = World::with_customer("Dave");
    let mine = w.attach_computer(w.csr);
    give(&mut w, dave, mine);
    let evs = w.cmd(w.csr, transfer(a_queue(), None)).unwrap();
    assert!(evs.contains(&Event::ParticipantLeft {
        participant: mine,
        reason: LeaveReason::CustomerLeft
    }));
    assert!(w.rules.participant(mine).is_none());
    assert!(w.running().is_empty());
}
