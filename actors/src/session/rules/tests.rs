//! Unit tests of the session rules: no runtime, no sockets, fabricated time.

use super::*;
use crate::ids::QueueId;
use crate::protocol::Audience;

mod computer;
mod computer_files;
mod consent_wait;
mod files;
mod give_control;
mod login_as_user;
mod scripts;
mod showing;
mod transcript;
mod world;
use world::*;

#[test]
fn journal_sequence_numbers_are_dense_and_replay_rebuilds_the_same_state() {
    let (mut w, cust) = World::with_customer("dave");
    w.grant(cust, Activity::ViewDesktop);
    w.cmd(w.csr, Command::StartVoiceCall).unwrap();
    w.cmd(w.csr, notes("rebooted")).unwrap();

    for (i, rec) in w.journal.iter().enumerate() {
        assert_eq!(rec.seq, i as u64);
    }
    let restored = w.restored();
    assert_eq!(restored.view(None, None), w.rules.view(None, None));
    // And the restored machine continues the sequence.
    let mut restored = restored;
    let recs = restored.handle(w.now + 1, w.csr, chat(None, "hi")).unwrap();
    assert_eq!(recs[0].seq, w.journal.len() as u64);
}

#[test]
fn first_customer_is_selected_and_second_customer_joining_is_visible_to_all() {
    // S4: customers already present are told when another joins; S6: participants list.
    let (mut w, a) = World::with_customer("a");
    let b = w.join(Role::Customer, "b");
    let last = w.journal.last().unwrap();
    assert!(matches!(&last.event, Event::ParticipantJoined { participant } if participant.id == b));
    assert_eq!(last.event.audience(), Audience::Everyone);
    assert_eq!(w.rules.view(None, None)["selected_customer"], json!(a));
    assert_eq!(w.rules.customer_count(), 2);
}

#[test]
fn customers_do_not_see_each_others_email() {
    let (mut w, a) = World::with_customer("a");
    let joined = w
        .journal
        .iter()
        .find(
            |r| matches!(&r.event, Event::ParticipantJoined { participant } if participant.id == a),
        )
        .unwrap()
        .event
        .clone();
    let joined = &joined;
    let Event::ParticipantJoined { participant } = &*joined.for_role(Role::Customer) else {
        panic!()
    };
    assert_eq!(participant.email, None);
    // Nor a CSR's account details.
    let csr_joined = &w.journal[1].event.clone();
    let Event::ParticipantJoined { participant } = &*csr_joined.for_role(Role::Customer) else {
        panic!()
    };
    assert_eq!(
        (participant.account, participant.email.as_deref()),
        (None, None)
    );
    // Consent requests go to the customer asked and to all staff, as the staff view shows them.
    let r = w.request(Activity::ViewDesktop);
    let asked = &w.journal.last().unwrap().event;
    assert!(matches!(asked, Event::ConsentRequested { request, .. } if *request == r));
    assert_eq!(asked.audience(), Audience::StaffAnd(vec![a]));
    assert_eq!(
        w.rules.view(None, None)["pending_consents"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let Event::ParticipantJoined { participant } = &*joined.for_role(Role::Csr) else {
        panic!()
    };
    assert!(participant.email.is_some());
    let view = w.rules.view(Some(Role::Customer), None);
    assert!(
        view["participants"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["email"].is_null())
    );
    assert!(view.get("notes").is_none());
}

#[test]
fn customer_limit_is_enforced() {
    let mut w = World::new();
    for n in ["a", "b", "c"] {
        w.join(Role::Customer, n);
    }
    let err = w
        .rules
        .join(w.now, person(Role::Customer, "d", false), false)
        .unwrap_err();
    assert_eq!(err, Refusal::CustomerLimit(3));
}

#[test]
fn consent_denied_then_granted_then_allow_all_skips_asking() {
    // S9.
    let (mut w, cust) = World::with_customer("dave");
    let r = w.request(Activity::ViewDesktop);
    assert_eq!(
        w.cmd(w.csr, ask_for(Activity::ViewDesktop)),
        Err("consent_pending")
    );
    let evs = w.cmd(cust, reply(r, false, true)).unwrap();
    assert_eq!(
        evs,
        vec![Event::ConsentAnswered {
            request: r,
            granted: false,
            allow_all: false,
            reason: None,
        }]
    );
    assert!(w.running().is_empty());

    let r2 = w.request(Activity::ViewDesktop);
    assert_ne!(r, r2);
    let evs = w.cmd(cust, reply(r2, true, true)).unwrap();
    assert!(evs.contains(&started(Activity::ViewDesktop, cust, false)));

    // Allow all: the next activity starts without a consent request.
    let evs = w.cmd(w.csr, ask_for(Activity::FileTransfer)).unwrap();
    assert_eq!(evs, vec![started(Activity::FileTransfer, cust, true)]);
}

#[test]
fn only_the_asked_customer_can_answer_and_only_the_primary_can_ask() {
    let (mut w, a) = World::with_customer("a");
    let b = w.join(Role::Customer, "b");
    let asst = w.join(Role::Csr, "assistant");
    assert_eq!(
        w.cmd(asst, ask_for(Activity::ViewDesktop)),
        Err("not_primary")
    );
    assert_eq!(w.cmd(a, ask_for(Activity::ViewDesktop)), Err("not_primary"));
    let r = w.request(Activity::ViewDesktop); // a is selected
    for wrong in [b, asst, w.csr] {
        assert_eq!(
            w.cmd(wrong, reply(r, true, false)),
            Err("unknown_consent_request")
        );
    }
    assert!(w.running().is_empty());
    let _ = a;
}

#[test]
fn file_transfer_is_barred_while_an_application_is_shared_but_not_while_desktop_is() {
    // F3.
    let (mut w, c) = World::with_customer("c");
    w.grant(c, Activity::ViewDesktop);
    w.grant(c, Activity::FileTransfer);
    assert_eq!(
        w.cmd(w.csr, ask_for(Activity::ViewApplication)),
        Err("file_transfer_running")
    );
    w.cmd(w.csr, stop(Activity::FileTransfer)).unwrap();
    w.grant(c, Activity::ViewApplication);
    assert_eq!(
        w.cmd(w.csr, ask_for(Activity::FileTransfer)),
        Err("file_transfer_blocked")
    );
}

#[test]
fn selecting_another_customer_ends_sharing_but_not_other_activities() {
    // S6.
    let (mut w, a) = World::with_customer("a");
    let b = w.join(Role::Customer, "b");
    w.grant(a, Activity::ViewDesktop);
    w.grant(a, Activity::FileTransfer);
    let pending = w.request(Activity::ControlDesktop);
    let evs = w.cmd(w.csr, select(b)).unwrap();
    assert!(evs.contains(&stopped(
        Activity::ViewDesktop,
        a,
        StopCause::CustomerChanged
    )));
    assert!(evs.contains(&Event::ConsentWithdrawn {
        request: pending,
        cause: None
    }));
    assert_eq!(w.running(), vec![(Activity::FileTransfer, a)]);
    // The withdrawn request can no longer be granted.
    assert_eq!(
        w.cmd(a, reply(pending, true, false)),
        Err("unknown_consent_request")
    );
    assert_eq!(w.cmd(w.csr, select(w.csr)), Err("not_a_customer"));
}

#[test]
fn chat_to_one_reaches_only_sender_and_recipient_and_bad_text_is_refused() {
    // S10.
    let (mut w, a) = World::with_customer("a");
    let evs = w.cmd(a, chat(Some(w.csr), "hello")).unwrap();
    assert_eq!(evs[0].audience(), Audience::Only(vec![a, w.csr]));
    let evs = w.cmd(a, chat(None, "all")).unwrap();
    assert_eq!(evs[0].audience(), Audience::Everyone);
    for text in ["", "   ", &"x".repeat(MAX_CHAT_CHARS + 1)] {
        assert_eq!(w.cmd(a, chat(None, text.to_string())), Err("bad_chat_text"));
    }
    // Exactly the limit, counted in characters not bytes, is fine.
    assert!(w.cmd(a, chat(None, "é".repeat(MAX_CHAT_CHARS))).is_ok());
    assert_eq!(
        w.cmd(a, chat(Some(ParticipantId::random()), "x")),
        Err("unknown_participant")
    );
}

#[test]
fn quick_phrases_are_for_csrs_and_only_when_enabled() {
    let (mut w, a) = World::with_customer("a");
    let evs = w.cmd(w.csr, phrase(None, 0)).unwrap();
    assert!(matches!(&evs[0], Event::Chat { text, .. } if text == "One moment please."));
    assert_eq!(w.cmd(w.csr, phrase(None, 1)), Err("unknown_quick_phrase"));
    assert_eq!(w.cmd(a, phrase(None, 0)), Err("not_staff"));
    let mut disabled = init();
    disabled.quick_phrases = None;
    let mut w = World::with(disabled);
    assert_eq!(w.cmd(w.csr, phrase(None, 0)), Err("quick_phrases_disabled"));
}

#[test]
fn at_most_two_microphones_and_only_the_primary_passes_them() {
    // V1, V2, V3.
    let (mut w, a) = World::with_customer("a");
    let b = w.join(Role::Customer, "b");
    assert_eq!(w.cmd(a, Command::StartVoiceCall), Err("not_primary"));
    w.cmd(w.csr, Command::StartVoiceCall).unwrap();
    assert_eq!(w.rules.microphone_holders(), &[w.csr]);
    assert_eq!(w.cmd(w.csr, pass(a)), Err("not_in_voice_call"));
    w.cmd(a, Command::JoinVoice).unwrap();
    w.cmd(b, Command::JoinVoice).unwrap();
    assert_eq!(w.cmd(a, pass(b)), Err("not_primary"));
    w.cmd(w.csr, pass(a)).unwrap();
    assert_eq!(w.rules.microphone_holders(), &[w.csr, a]);
    assert_eq!(w.cmd(w.csr, pass(b)), Err("microphone_limit"));
    w.cmd(w.csr, Command::TakeMicrophone { from: w.csr })
        .unwrap();
    w.cmd(w.csr, pass(b)).unwrap();
    assert_eq!(w.rules.microphone_holders(), &[a, b]);
    // Leaving the call gives the microphone back; rejoining does not restore it.
    w.cmd(a, Command::LeaveVoice).unwrap();
    assert_eq!(w.rules.microphone_holders(), &[b]);
    w.cmd(a, Command::JoinVoice).unwrap();
    assert_eq!(w.rules.microphone_holders(), &[b]);
    // The session goes on after the call ends.
    w.cmd(w.csr, Command::EndVoiceCall).unwrap();
    assert!(w.rules.microphone_holders().is_empty());
    assert!(!w.rules.is_ended());
    assert_eq!(w.cmd(a, Command::JoinVoice), Err("no_voice_call"));
}

#[test]
fn a_listener_asks_to_speak_and_the_ask_ends_with_the_microphone_or_leaving() {
    // Issue 18 item 5: the CSR sees who asks; the ask is in the view a reconnecting page gets.
    let (mut w, a) = World::with_customer("a");
    let ask = |asking| Command::AskToSpeak { asking };
    let asking = |w: &World| w.rules.view(None, None)["voice_call"]["asking"].clone();
    assert_eq!(w.cmd(a, ask(true)), Err("no_voice_call"));
    w.cmd(w.csr, Command::StartVoiceCall).unwrap();
    assert_eq!(w.cmd(a, ask(true)), Err("not_in_voice_call"));
    assert_eq!(w.cmd(w.csr, ask(true)), Err("already_holds_microphone"));
    w.cmd(a, Command::JoinVoice).unwrap();
    w.cmd(a, ask(true)).unwrap();
    assert!(matches!(
        w.journal.last().unwrap().event,
        Event::SpeakAsked { participant, asking: true } if participant == a
    ));
    assert_eq!(asking(&w), json!([a]));
    // Asking twice says nothing new; taking it back clears it.
    let before = w.journal.len();
    w.cmd(a, ask(true)).unwrap();
    assert_eq!(w.journal.len(), before);
    w.cmd(a, ask(false)).unwrap();
    assert_eq!(asking(&w), json!([]));
    // Given the microphone, the ask is answered.
    w.cmd(a, ask(true)).unwrap();
    w.cmd(w.csr, pass(a)).unwrap();
    assert_eq!(asking(&w), json!([]));
    assert_eq!(w.cmd(a, ask(true)), Err("already_holds_microphone"));
    // Leaving the call ends an ask too, and a replay rebuilds the same.
    w.cmd(w.csr, Command::TakeMicrophone { from: a }).unwrap();
    w.cmd(a, ask(true)).unwrap();
    assert_eq!(w.restored().view(None, None), w.rules.view(None, None));
    w.cmd(a, Command::LeaveVoice).unwrap();
    assert_eq!(asking(&w), json!([]));
}

#[test]
fn handing_control_stops_activities_keeps_voice_and_former_primary_cannot_end() {
    // S5, S7, S12.
    let (mut w, c) = World::with_customer("c");
    let asst = w.join(Role::Csr, "assistant");
    w.grant(c, Activity::ViewDesktop);
    let pending = w.request(Activity::Recording);
    w.cmd(w.csr, Command::StartVoiceCall).unwrap();
    assert_eq!(w.cmd(asst, end(true, None)), Err("not_primary"));
    assert_eq!(w.cmd(w.csr, hand(c)), Err("not_an_assistant"));

    let evs = w.cmd(w.csr, hand(asst)).unwrap();
    assert!(evs.contains(&Event::ConsentWithdrawn {
        request: pending,
        cause: None
    }));
    assert!(w.running().is_empty());
    assert_eq!(w.rules.primary(), Some(asst));
    assert_eq!(w.rules.microphone_holders(), &[w.csr], "voice call goes on");
    let former = w.csr;
    assert_eq!(w.cmd(former, end(true, None)), Err("not_primary"));
    assert_eq!(
        w.cmd(former, ask_for(Activity::ViewDesktop)),
        Err("not_primary")
    );
    // Handed back, the former primary may end it again.
    w.cmd(asst, hand(former)).unwrap();
    w.cmd(former, end(true, None)).unwrap();
    assert!(w.rules.is_ended());
}

#[test]
fn transfer_message_limit_is_345_characters_and_needs_an_agent() {
    // S8.
    let (mut w, c) = World::with_customer("c");
    let q = QueueId::random();
    let target = TransferTarget::Queue { queue: q };
    assert_eq!(
        w.cmd(w.csr, transfer(target.clone(), Some("m".repeat(346)))),
        Err("transfer_message_too_long")
    );
    assert_eq!(w.cmd(c, transfer(target.clone(), None)), Err("not_primary"));
    assert_eq!(
        w.cmd(
            w.csr,
            transfer(TransferTarget::Agents { agents: vec![] }, None)
        ),
        Err("invalid_transfer_target")
    );
    w.cmd(w.csr, Command::StartVoiceCall).unwrap();
    let evs = w
        .cmd(w.csr, transfer(target.clone(), Some("m".repeat(345))))
        .unwrap();
    assert!(evs.contains(&Event::VoiceCallEnded { by: Some(w.csr) }));
    assert!(evs.contains(&Event::ParticipantLeft {
        participant: w.csr,
        reason: LeaveReason::Transferred
    }));
    assert_eq!(w.rules.status(), &Status::Waiting(target));
    assert_eq!(w.rules.primary(), None);
    // The customer can still chat while waiting, but nobody can act as primary.
    w.cmd(c, chat(None, "still here")).unwrap();

    let agent = person(Role::Csr, "agent", true);
    let agent_id = agent.id;
    w.rules.accept_transfer(w.now, agent).unwrap();
    assert_eq!(w.rules.primary(), Some(agent_id));
    assert_eq!(w.rules.status(), &Status::Active);
}

#[test]
fn non_agent_csr_cannot_transfer() {
    let (mut rules, _) = SessionRules::create(init(), T0);
    let csr = person(Role::Csr, "x", false);
    let id = csr.id;
    rules.join(T0, csr, true).unwrap();
    let err = rules.handle(T0, id, transfer(a_queue(), None)).unwrap_err();
    assert_eq!(err, Refusal::NotAnAgent);
}

#[test]
fn only_primary_ends_with_confirmation_and_notes_are_kept() {
    // S11, S12.
    let (mut w, c) = World::with_customer("c");
    assert_eq!(w.cmd(c, end(true, None)), Err("not_primary"));
    assert_eq!(w.cmd(c, notes("x")), Err("not_staff"));
    assert_eq!(w.cmd(w.csr, end(false, None)), Err("confirmation_required"));
    assert_eq!(w.cmd(w.csr, Command::Leave), Err("primary_cannot_leave"));
    w.cmd(w.csr, notes("draft")).unwrap();
    w.cmd(w.csr, end(true, Some("final notes"))).unwrap();
    assert_eq!(w.rules.notes(), "final notes");
    assert!(w.rules.is_ended());
    assert_eq!(w.cmd(c, chat(None, "x")), Err("session_ended"));
    assert!(
        w.rules
            .join(w.now, person(Role::Customer, "late", false), false)
            .is_err()
    );
}

#[test]
fn customers_leave_freely_and_their_activities_stop() {
    let (mut w, a) = World::with_customer("a");
    let b = w.join(Role::Customer, "b");
    w.grant(a, Activity::ViewDesktop);
    let evs = w.cmd(a, Command::Leave).unwrap();
    assert!(evs.contains(&stopped(Activity::ViewDesktop, a, StopCause::CustomerLeft)));
    assert!(evs.contains(&Event::CustomerSelected { customer: Some(b) }));
    assert_eq!(w.cmd(a, Command::Leave), Err("unknown_participant"));
}

#[test]
fn customer_can_stop_an_activity_on_themselves_but_not_on_others() {
    let (mut w, a) = World::with_customer("a");
    let b = w.join(Role::Customer, "b");
    w.grant(a, Activity::ViewDesktop);
    assert_eq!(
        w.cmd(b, stop(Activity::ViewDesktop)),
        Err("activity_not_running")
    );
    w.cmd(a, stop(Activity::ViewDesktop)).unwrap();
    assert!(w.running().is_empty());
}

#[test]
fn primary_disconnecting_ends_the_session_others_just_leave() {
    let (mut w, a) = World::with_customer("a");
    let recs = w.rules.disconnected(w.now, a);
    assert!(matches!(
        recs.last().unwrap().event,
        Event::ParticipantLeft {
            reason: LeaveReason::Disconnected,
            ..
        } | Event::CustomerSelected { .. }
    ));
    assert!(!w.rules.is_ended());
    let recs = w.rules.disconnected(w.now, w.csr);
    assert_eq!(
        recs.last().unwrap().event,
        Event::SessionEnded {
            by: None,
            reason: EndReason::PrimaryDisconnected
        }
    );
}

#[test]
fn only_the_primary_csr_and_the_selected_customer_send_video_and_the_csr_first() {
    let (mut w, dave) = World::with_customer("dave");
    let erin = w.join(Role::Customer, "erin");
    let assistant = w.join(Role::Csr, "ann");
    // VI1: the customer's camera waits for the CSR's.
    assert_eq!(w.cmd(dave, Command::StartCamera), Err("csr_camera_first"));
    assert_eq!(
        w.cmd(w.csr, Command::StartCamera).unwrap(),
        [Event::CameraStarted { participant: w.csr }]
    );
    assert_eq!(w.cmd(w.csr, Command::StartCamera), Err("camera_already_on"));
    w.cmd(dave, Command::StartCamera).unwrap();
    // VI2: a third sender is refused, whoever it is.
    assert_eq!(w.cmd(erin, Command::StartCamera), Err("camera_not_allowed"));
    assert_eq!(
        w.cmd(assistant, Command::StartCamera),
        Err("camera_not_allowed")
    );
    let policy = w.rules.media_policy();
    assert_eq!(policy.cameras, [w.csr, dave].into());

    // Selecting Erin takes the right from Dave: his camera stops, and she may start hers.
    let events = w.cmd(w.csr, select(erin)).unwrap();
    assert!(events.contains(&Event::CameraStopped { participant: dave }));
    w.cmd(erin, Command::StartCamera).unwrap();
    // Handing control to the assistant stops the former primary's camera.
    let events = w.cmd(w.csr, hand(assistant)).unwrap();
    assert!(events.contains(&Event::CameraStopped { participant: w.csr }));
    // The new primary's camera is off, so the customer's stops too (VI1).
    assert!(events.contains(&Event::CameraStopped { participant: erin }));
    assert!(w.rules.media_policy().cameras.is_empty());
    w.cmd(assistant, Command::StartCamera).unwrap();
    w.cmd(erin, Command::StartCamera).unwrap();
    // The CSR stopping theirs stops the customer's.
    assert_eq!(
        w.cmd(assistant, Command::StopCamera).unwrap(),
        [
            Event::CameraStopped {
                participant: assistant
            },
            Event::CameraStopped { participant: erin }
        ]
    );
    assert_eq!(w.cmd(erin, Command::StopCamera), Err("camera_not_on"));
    // The journal replays to the same cameras.
    let replayed = w.restored();
    assert_eq!(replayed.media_policy(), w.rules.media_policy());
}

#[test]
fn the_media_policy_follows_sharing_and_control() {
    let (mut w, dave) = World::with_customer("dave");
    assert!(w.rules.media_policy().screens.is_empty());
    w.grant(dave, Activity::ViewDesktop);
    let policy = w.rules.media_policy();
    assert_eq!(
        policy.screens,
        [dave].into(),
        "D1: Dave's screen may be sent"
    );
    assert_eq!(policy.control, None);
    // D2 needs Tandem Helper (issue 16): the computer answers, and takes the input.
    let computer = w.attach_computer(dave);
    w.grant(computer, Activity::ControlDesktop);
    let policy = w.rules.media_policy();
    assert_eq!(policy.control, Some((w.csr, dave)), "D2");
    assert_eq!(policy.computers, [(computer, dave)].into());
    w.cmd(w.csr, stop(Activity::ControlDesktop)).unwrap();
    assert_eq!(w.rules.media_policy().control, None);
    // Dave leaves: his share is off the policy with him.
    w.cmd(dave, Command::Leave).unwrap();
    assert!(w.rules.media_policy().screens.is_empty());
}

#[test]
fn microphone_volume_is_ones_own_or_the_primarys_to_set() {
    let (mut w, dave) = World::with_customer("dave");
    let erin = w.join(Role::Customer, "erin");
    let set = |participant: Option<ParticipantId>, percent| Command::SetMicrophoneVolume {
        participant,
        percent,
    };
    assert_eq!(
        w.cmd(dave, set(None, 50)).unwrap(),
        [Event::MicrophoneVolume {
            participant: dave,
            percent: 50
        }]
    );
    // Setting the same volume again changes nothing.
    assert_eq!(w.cmd(dave, set(None, 50)).unwrap(), []);
    assert_eq!(w.cmd(dave, set(Some(erin), 10)), Err("not_primary"));
    assert_eq!(w.cmd(dave, set(None, 401)), Err("bad_volume"));
    w.cmd(w.csr, set(Some(erin), 200)).unwrap();
    assert_eq!(
        w.rules.media_policy().volumes,
        [(dave, 50), (erin, 200)].into()
    );
    // Back to 100 % is the default again; leaving forgets the volume.
    w.cmd(dave, set(None, 100)).unwrap();
    w.cmd(erin, Command::Leave).unwrap();
    assert!(w.rules.media_policy().volumes.is_empty());
    let replayed = w.restored();
    assert_eq!(replayed.media_policy(), w.rules.media_policy());
}

#[test]
fn the_primary_chooses_the_display_mode_and_it_survives_a_restart() {
    let (mut w, dave) = World::with_customer("dave");
    let assistant = w.join(Role::Csr, "ann");
    let sampling = || Command::SetDisplayMode {
        mode: DisplayMode::Sampling,
    };
    // D11: the primary CSR decides; nobody else may.
    assert_eq!(w.cmd(dave, sampling()), Err("not_primary"));
    assert_eq!(w.cmd(assistant, sampling()), Err("not_primary"));
    assert_eq!(w.rules.view(None, None)["display_mode"], "standard");
    assert_eq!(
        w.cmd(w.csr, sampling()).unwrap(),
        [Event::DisplayMode {
            by: w.csr,
            mode: DisplayMode::Sampling
        }]
    );
    // Choosing the mode in force says nothing.
    assert_eq!(w.cmd(w.csr, sampling()).unwrap(), []);
    assert_eq!(w.rules.view(None, None)["display_mode"], "sampling");
    let restored = w.restored();
    assert_eq!(restored.view(None, None)["display_mode"], "sampling");
}

#[test]
fn automatic_recording_asks_each_customer_on_joining_and_records_only_after_their_ok() {
    // R3 with S9: asked at once, recorded only once they agree.
    let mut w = automatic();
    assert_eq!(w.rules.view(None, None)["automatic_recording"], true);
    let dave = w.join(Role::Customer, "dave");
    let asked = w.recording_request(dave).expect("Dave is asked on joining");
    assert!(matches!(
        w.journal.last().map(|r| &r.event),
        Some(Event::ConsentRequested { activity: Activity::Recording, by, .. }) if *by == w.csr
    ));
    assert!(!w.rules.is_recording(), "nothing recorded before the OK");
    assert_eq!(
        w.cmd(w.csr, ask_for(Activity::Recording)),
        Err("consent_pending")
    );
    // Declined: nothing records; the CSR may ask again.
    w.answer(dave, asked, false);
    assert!(!w.rules.is_recording());
    let again = w.request(Activity::Recording);
    let evs = w.answer(dave, again, true);
    assert!(evs.contains(&started(Activity::Recording, dave, false)));
    assert!(w.rules.is_recording());
    assert!(w.rules.media_policy().recording);

    // A second customer is asked too; a customer present from before is not asked twice.
    let erin = w.join(Role::Customer, "erin");
    assert!(w.recording_request(erin).is_some());
    assert!(w.recording_request(dave).is_none());

    // Without the setting, joining asks nothing.
    let (plain, frank) = World::with_customer("frank");
    assert!(plain.recording_request(frank).is_none());
    assert_eq!(plain.rules.view(None, None)["automatic_recording"], false);
}

#[test]
fn csrs_cannot_stop_an_automatic_recording_but_the_customer_can() {
    let (mut w, dave) = World::automatic_with_customer("dave");
    let assistant = w.join(Role::Csr, "ann");
    w.agree_to_recording(dave);
    let stop_recording = || stop(Activity::Recording);
    assert_eq!(w.cmd(w.csr, stop_recording()), Err("recording_automatic"));
    assert_eq!(
        w.cmd(assistant, stop_recording()),
        Err("recording_automatic")
    );
    assert!(w.rules.is_recording());
    // Other activities stop as always.
    w.grant(dave, Activity::ViewDesktop);
    w.cmd(w.csr, stop(Activity::ViewDesktop)).unwrap();
    // S9: the customer withdraws their consent whenever they like.
    let evs = w.cmd(dave, stop_recording()).unwrap();
    assert_eq!(
        evs,
        [stopped(Activity::Recording, dave, StopCause::Stopped)]
    );
    assert!(!w.rules.is_recording());
    // With the setting off, the primary stops a recording as before.
    let (mut plain, frank) = World::with_customer("frank");
    plain.grant(frank, Activity::Recording);
    plain.cmd(plain.csr, stop_recording()).unwrap();
    assert!(!plain.rules.is_recording());
}

#[test]
fn an_automatic_recording_outlives_a_hand_over_but_not_the_end_of_the_session() {
    // S7 stops every activity on a hand-over; an automatic recording is the exception, since a
    // hand-over would otherwise be a way for CSRs to stop it (R3).
    let (mut w, dave) = World::automatic_with_customer("dave");
    let erin = w.join(Role::Customer, "erin");
    let assistant = w.join(Role::Csr, "ann");
    w.agree_to_recording(dave);
    w.grant(dave, Activity::ViewDesktop);
    let erins = w.recording_request(erin).unwrap();

    let evs = w.cmd(w.csr, hand(assistant)).unwrap();
    assert!(!evs.contains(&Event::ConsentWithdrawn {
        request: erins,
        cause: None
    }));
    assert_eq!(w.running(), [(Activity::Recording, dave)]);
    assert_eq!(
        w.recording_request(erin),
        Some(erins),
        "Erin's answer still counts"
    );
    w.answer(erin, erins, true);
    assert_eq!(w.running().len(), 2);
    // Restored from its journal, the session is the same.
    let restored = w.restored();
    assert_eq!(restored.view(None, None), w.rules.view(None, None));

    let evs = w.cmd(assistant, end(true, None)).unwrap();
    for customer in [dave, erin] {
        assert!(evs.contains(&stopped(
            Activity::Recording,
            customer,
            StopCause::SessionEnded
        )));
    }
    assert!(!w.rules.is_recording());
}

#[test]
fn an_automatic_recording_goes_on_through_a_transfer_and_late_customers_are_asked_by_the_agent() {
    let (mut w, dave) = World::automatic_with_customer("dave");
    w.agree_to_recording(dave);
    let target = a_queue();
    w.cmd(w.csr, transfer(target, None)).unwrap();
    assert!(w.rules.is_recording(), "the transfer did not stop it");
    // Nobody is in charge to ask Erin, who joins while the session waits.
    let erin = w.join(Role::Customer, "erin");
    assert!(w.recording_request(erin).is_none());
    let agent = person(Role::Csr, "bob", true);
    let bob = agent.id;
    let recs = w.rules.accept_transfer(w.now, agent).unwrap();
    w.journal.extend(recs);
    let erins = w
        .recording_request(erin)
        .expect("asked once an agent takes over");
    assert!(
        w.recording_request(dave).is_none(),
        "Dave is not asked again"
    );
    assert!(w.journal.iter().any(|r| matches!(
        r.event,
        Event::ConsentRequested { request, by, .. } if request == erins && by == bob
    )));
}

#[test]
fn a_csrs_phone_joins_beside_their_console_once_and_takes_no_control() {
    let mut w = World::new();
    let carol = w.rules.member(w.csr).unwrap().info.clone();
    // Carol's console is in; her softphone joins too, under her account (V5).
    let phone = ParticipantInfo {
        id: ParticipantId::random(),
        name: "carol (phone)".into(),
        phone: true,
        ..carol.clone()
    };
    let phone_id = phone.id;
    w.rules.join(w.now, phone.clone(), false).unwrap();
    // A second console or a second phone of hers is refused.
    let again = ParticipantInfo {
        id: ParticipantId::random(),
        ..phone
    };
    assert_eq!(
        w.rules.join(w.now, again, false).err().map(|e| e.code()),
        Some("already_joined")
    );
    let console = ParticipantInfo {
        id: ParticipantId::random(),
        ..carol
    };
    assert_eq!(
        w.rules.join(w.now, console, false).err().map(|e| e.code()),
        Some("already_joined")
    );
    // A phone cannot be handed control of the session.
    assert_eq!(w.cmd(w.csr, hand(phone_id)), Err("not_an_assistant"));
}

// ---- issue 15: slots, joins, removal ----

/// A session with room for one customer.
fn one_seat() -> World {
    World::with(SessionInit {
        max_customers: 1,
        ..init()
    })
}

#[test]
fn a_join_that_never_connects_holds_no_slot() {
    let mut w = one_seat();
    let stranger = person(Role::Customer, "stranger", false);
    w.rules.admit(w.now, stranger.clone(), 30).unwrap();
    assert_eq!(w.rules.customer_count(), 0);
    // A real customer joins and connects: they take the one slot.
    let dave = person(Role::Customer, "dave", false);
    w.rules.admit(w.now, dave.clone(), 30).unwrap();
    let recs = w.rules.connect(w.now, dave.id).unwrap();
    assert!(
        matches!(&recs[0].event, Event::ParticipantJoined { participant } if participant.id == dave.id)
    );
    assert_eq!(w.rules.customer_count(), 1);
    // The stranger connecting now is refused, and further joins are refused at once.
    assert_eq!(
        w.rules.connect(w.now, stranger.id),
        Err(Refusal::CustomerLimit(1))
    );
    let late = person(Role::Customer, "late", false);
    assert_eq!(
        w.rules.admit(w.now, late, 30),
        Err(Refusal::CustomerLimit(1))
    );
}

#[test]
fn an_admission_is_forgotten_after_its_time_and_unknown_ids_do_not_connect() {
    let mut w = World::new();
    let dave = person(Role::Customer, "dave", false);
    w.rules.admit(w.now, dave.clone(), 30).unwrap();
    assert_eq!(
        w.rules.connect(w.now + ADMISSION_TTL_MS, dave.id),
        Err(Refusal::UnknownParticipant)
    );
    assert_eq!(
        w.rules.connect(w.now, ParticipantId::random()),
        Err(Refusal::UnknownParticipant)
    );
    // Someone present reconnecting journals nothing.
    assert_eq!(w.rules.connect(w.now, w.csr), Ok(Vec::new()));
}

#[test]
fn joins_per_session_are_rate_limited_for_a_minute() {
    let mut w = World::new();
    for n in 0..3 {
        let p = person(Role::Customer, &format!("c{n}"), false);
        w.rules.admit(w.now + n * 1000, p, 3).unwrap();
    }
    let next = person(Role::Customer, "next", false);
    // The first join was 3 s ago: 57 s to wait.
    assert_eq!(
        w.rules.admit(w.now + 3000, next.clone(), 3),
        Err(Refusal::TooManyJoins(57))
    );
    assert_eq!(Refusal::TooManyJoins(57).code(), "too_many_joins");
    // A minute after the first, one more may join.
    w.rules.admit(w.now + 60_000, next, 3).unwrap();
    // CSRs do not join this way.
    let csr = person(Role::Csr, "alex", false);
    assert_eq!(
        w.rules.admit(w.now + 60_000, csr, 3),
        Err(Refusal::NotACustomer)
    );
}

#[test]
fn the_primary_removes_a_participant_who_cannot_connect_again() {
    let (mut w, dave) = World::with_customer("dave");
    let alex = w.join(Role::Csr, "alex");
    // Only the primary, and not themselves.
    assert_eq!(
        w.cmd(alex, Command::RemoveParticipant { participant: dave }),
        Err("not_primary")
    );
    assert_eq!(
        w.cmd(w.csr, Command::RemoveParticipant { participant: w.csr }),
        Err("cannot_remove_self")
    );
    assert_eq!(
        w.cmd(
            w.csr,
            Command::RemoveParticipant {
                participant: ParticipantId::random()
            }
        ),
        Err("unknown_participant")
    );
    let events = w
        .cmd(w.csr, Command::RemoveParticipant { participant: dave })
        .unwrap();
    assert_eq!(
        events[0],
        Event::ParticipantRemoved {
            participant: dave,
            by: w.csr
        }
    );
    assert!(events.contains(&Event::ParticipantLeft {
        participant: dave,
        reason: LeaveReason::Removed
    }));
    assert_eq!(w.rules.customer_count(), 0);
    assert_eq!(w.rules.connect(w.now, dave), Err(Refusal::Removed));
    // The journal remembers it across a restart.
    let restored = w.restored();
    assert!(restored.was_removed(dave));
    // An assistant may be removed too.
    w.cmd(w.csr, Command::RemoveParticipant { participant: alex })
        .unwrap();
    assert!(w.rules.participant(alex).is_none());
}

#[test]
fn the_message_for_the_next_agent_never_reaches_a_customer() {
    // S8, issue 18: the transfer's message is for the agents who take it over.
    let event = Event::SessionTransferred {
        by: ParticipantId::random(),
        target: a_queue(),
        message: Some("Frank has the logs".into()),
    };
    let for_customer = serde_json::to_string(&*event.for_role(Role::Customer)).unwrap();
    assert!(
        !for_customer.contains("Frank has the logs"),
        "{for_customer}"
    );
    assert!(for_customer.contains("session_transferred"));
    let for_staff = serde_json::to_string(&*event.for_role(Role::Csr)).unwrap();
    assert!(for_staff.contains("Frank has the logs"));
}
