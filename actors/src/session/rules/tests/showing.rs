//! The CSR shows their own desktop or applications (SPEC D3, D7): started by the primary CSR
//! alone, with no consent (S9 asks it for the customer's computer only), one screen at a time,
//! ended by either side (D5), by selecting another customer (S6), by the customer leaving, a
//! hand-over (S7), a transfer (S8) and the end of the session.

use super::*;

#[test]
fn the_primary_shows_their_desktop_at_once_without_asking() {
    let (mut w, dave) = World::with_customer("dave");
    let evs = w.cmd(w.csr, ask_for(Activity::ShowDesktop)).unwrap();
    assert_eq!(evs, vec![started(Activity::ShowDesktop, dave, false)]);
    assert_eq!(
        evs.iter().map(Event::audience).collect::<Vec<_>>(),
        vec![Audience::Everyone]
    );
    assert!(
        w.rules.view(None, None)["pending_consents"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // D13: the CSR's screen goes out; no customer's does.
    let policy = w.rules.media_policy();
    assert_eq!(policy.showing, Some(w.csr));
    assert!(policy.screens.is_empty());
    // The journal rebuilds it.
    assert_eq!(w.restored().view(None, None), w.rules.view(None, None));
    assert_eq!(w.restored().media_policy(), policy);
}

#[test]
fn only_the_primary_shows_and_only_with_a_customer_selected() {
    let mut w = World::new();
    assert_eq!(
        w.cmd(w.csr, ask_for(Activity::ShowDesktop)),
        Err("no_customer_selected")
    );
    let dave = w.join(Role::Customer, "dave");
    let asst = w.join(Role::Csr, "assistant");
    for who in [dave, asst] {
        assert_eq!(
            w.cmd(who, ask_for(Activity::ShowApplications)),
            Err("not_primary")
        );
    }
    assert!(w.running().is_empty());
    assert_eq!(w.rules.media_policy().showing, None);
}

#[test]
fn one_screen_at_a_time_beside_what_the_csr_views() {
    let (mut w, dave) = World::with_customer("dave");
    w.cmd(w.csr, ask_for(Activity::ShowApplications)).unwrap();
    assert_eq!(
        w.cmd(w.csr, ask_for(Activity::ShowApplications)),
        Err("activity_running")
    );
    assert_eq!(
        w.cmd(w.csr, ask_for(Activity::ShowDesktop)),
        Err("already_showing")
    );
    // Showing neither stops the CSR viewing the customer nor bars file transfer (F3).
    let r = w.request(Activity::ViewDesktop);
    w.cmd(dave, reply(r, true, true)).unwrap();
    let evs = w.cmd(w.csr, ask_for(Activity::FileTransfer)).unwrap();
    assert_eq!(evs, vec![started(Activity::FileTransfer, dave, true)]);
    assert_eq!(
        w.running(),
        vec![
            (Activity::ViewDesktop, dave),
            (Activity::FileTransfer, dave),
            (Activity::ShowApplications, dave)
        ]
    );
    // With "allow all" given, showing still starts as what it is: not approved, not asked.
    w.cmd(w.csr, stop(Activity::ShowApplications)).unwrap();
    let evs = w.cmd(w.csr, ask_for(Activity::ShowDesktop)).unwrap();
    assert_eq!(evs, vec![started(Activity::ShowDesktop, dave, false)]);
}

#[test]
fn the_customer_stops_watching_and_the_csr_stops_showing() {
    // D5 from either side.
    let (mut w, dave) = World::with_customer("dave");
    let erin = w.join(Role::Customer, "erin");
    w.cmd(w.csr, ask_for(Activity::ShowDesktop)).unwrap();
    // Another customer sees it too (D13) but it is not theirs to end.
    assert_eq!(
        w.cmd(erin, stop(Activity::ShowDesktop)),
        Err("activity_not_running")
    );
    let evs = w.cmd(dave, stop(Activity::ShowDesktop)).unwrap();
    assert_eq!(
        evs,
        vec![stopped(Activity::ShowDesktop, dave, StopCause::Stopped)]
    );
    assert_eq!(w.rules.media_policy().showing, None);
    // And from the CSR's side; an assistant may not.
    let asst = w.join(Role::Csr, "assistant");
    w.cmd(w.csr, ask_for(Activity::ShowApplications)).unwrap();
    assert_eq!(
        w.cmd(asst, stop(Activity::ShowApplications)),
        Err("not_primary")
    );
    let evs = w.cmd(w.csr, stop(Activity::ShowApplications)).unwrap();
    assert_eq!(
        evs,
        vec![stopped(
            Activity::ShowApplications,
            dave,
            StopCause::Stopped
        )]
    );
    assert!(w.running().is_empty());
    assert_eq!(
        w.cmd(w.csr, stop(Activity::ShowApplications)),
        Err("activity_not_running")
    );
}

#[test]
fn the_customers_computer_does_not_end_the_csrs_showing() {
    // The helper's Stop ends what runs on its computer; the CSR's screen is not on it.
    let (mut w, dave) = World::with_customer("dave");
    let computer = w.attach_computer(dave);
    w.cmd(w.csr, ask_for(Activity::ShowDesktop)).unwrap();
    assert_eq!(w.rules.media_policy().showing, Some(w.csr));
    assert_eq!(
        w.cmd(computer, stop(Activity::ShowDesktop)),
        Err("activity_not_running")
    );
    // Its leaving does not either.
    let recs = w.rules.disconnected(w.now + 1, computer);
    assert!(
        recs.iter()
            .all(|r| !matches!(r.event, Event::ActivityStopped { .. }))
    );
    assert_eq!(w.running(), vec![(Activity::ShowDesktop, dave)]);
}

#[test]
fn selecting_another_customer_or_their_leaving_ends_showing() {
    // S6.
    let (mut w, dave) = World::with_customer("dave");
    let erin = w.join(Role::Customer, "erin");
    w.cmd(w.csr, ask_for(Activity::ShowDesktop)).unwrap();
    let evs = w.cmd(w.csr, select(erin)).unwrap();
    assert!(evs.contains(&stopped(
        Activity::ShowDesktop,
        dave,
        StopCause::CustomerChanged
    )));
    assert_eq!(w.rules.media_policy().showing, None);
    w.cmd(w.csr, ask_for(Activity::ShowApplications)).unwrap();
    let evs = w.cmd(erin, Command::Leave).unwrap();
    assert!(evs.contains(&stopped(
        Activity::ShowApplications,
        erin,
        StopCause::CustomerLeft
    )));
    assert!(w.running().is_empty());
    assert_eq!(w.rules.media_policy().showing, None);
}

#[test]
fn a_hand_over_a_transfer_or_the_end_stops_showing() {
    // S7: the new primary does not inherit the former's screen.
    let (mut w, dave) = World::with_customer("dave");
    let asst = w.join(Role::Csr, "assistant");
    w.cmd(w.csr, ask_for(Activity::ShowDesktop)).unwrap();
    let evs = w.cmd(w.csr, hand(asst)).unwrap();
    assert!(evs.contains(&stopped(
        Activity::ShowDesktop,
        dave,
        StopCause::ControlHandedOver
    )));
    assert_eq!(w.rules.media_policy().showing, None);
    w.cmd(asst, ask_for(Activity::ShowDesktop)).unwrap();
    assert_eq!(w.rules.media_policy().showing, Some(asst));
    // S8 (the host is the agent).
    w.cmd(asst, hand(w.csr)).unwrap();
    w.cmd(w.csr, ask_for(Activity::ShowDesktop)).unwrap();
    let evs = w.cmd(w.csr, transfer(a_queue(), None)).unwrap();
    assert!(evs.contains(&stopped(
        Activity::ShowDesktop,
        dave,
        StopCause::Transferred
    )));
    // S12: the primary's dashboard closing ends the session and the showing.
    let (mut w, dave) = World::with_customer("dave");
    w.cmd(w.csr, ask_for(Activity::ShowApplications)).unwrap();
    let recs = w.rules.disconnected(w.now + 1, w.csr);
    assert!(
        recs.iter()
            .any(|r| r.event == stopped(Activity::ShowApplications, dave, StopCause::SessionEnded))
    );
    assert_eq!(w.rules.media_policy().showing, None);
}
