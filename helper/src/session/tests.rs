use super::*;

const ME: &str = "pc-1";
const DAVE: &str = "dave-1";
const CAROL: &str = "carol-1";

fn session() -> Session {
    let mut s = Session::new(Identity {
        me: ME.into(),
        customer: DAVE.into(),
    });
    let welcome = json!({"type": "welcome", "you": ME, "role": "customer", "session": {
        "participants": [{"id": CAROL, "name": "Carol"}, {"id": DAVE, "name": "Dave"},
                         {"id": ME, "name": "Dave's computer"}],
        "activities": [], "pending_consents": []}});
    assert_eq!(s.handle(Event::Server(welcome.to_string())), vec![]);
    s
}

fn event(s: &mut Session, e: Value) -> Vec<Action> {
    s.handle(Event::Server(
        json!({"type": "event", "seq": 1, "at": 0, "event": e}).to_string(),
    ))
}

fn requested(s: &mut Session, request: u64, activity: &str) -> Vec<Action> {
    event(
        s,
        json!({"type": "consent_requested", "request": request, "activity": activity,
               "customer": DAVE, "by": CAROL, "computer": ME}),
    )
}

fn started(s: &mut Session, activity: &str) -> Vec<Action> {
    event(
        s,
        json!({"type": "activity_started", "activity": activity, "customer": DAVE, "pre_approved": false}),
    )
}

fn control(s: &mut Session, json: Value) -> Vec<Action> {
    s.handle(Event::Channel {
        label: "control".into(),
        data: json.to_string().into_bytes(),
    })
}

fn shown(actions: &[Action]) -> Option<Question> {
    actions.iter().rev().find_map(|a| match a {
        Action::Show(q) => Some(q.clone()),
        _ => None,
    })?
}

fn sent(actions: &[Action]) -> Vec<Value> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(v) => Some(v.clone()),
            _ => None,
        })
        .collect()
}

fn injected(actions: &[Action]) -> Vec<Inject> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Inject(i) => Some(i.clone()),
            _ => None,
        })
        .collect()
}

/// Dave allows viewing and control in the helper; a 1000x500 picture of the screen at
/// (100, 50) is sent, scaled from 2000x1000.
fn viewing_and_controlled(s: &mut Session) {
    let q = shown(&requested(s, 1, "view_desktop")).expect("asked");
    assert_eq!(q.csr, "Carol");
    s.handle(Event::Answer {
        id: q.id,
        answer: Answer::Allow,
    });
    assert_eq!(
        started(s, "view_desktop"),
        vec![Action::StartShare(Source::Screen)]
    );
    s.handle(Event::Captured {
        picture: PictureSize {
            width: 1000,
            height: 500,
        },
        shown: Rect::new(100, 50, 2000, 1000),
    });
    let q = shown(&requested(s, 2, "control_desktop")).expect("asked");
    s.handle(Event::Answer {
        id: q.id,
        answer: Answer::Allow,
    });
    started(s, "control_desktop");
}

#[test]
fn the_customers_yes_in_the_helper_goes_to_the_server_and_starts_the_share() {
    let mut s = session();
    let a = requested(&mut s, 7, "view_desktop");
    let q = shown(&a).expect("the question is shown");
    assert_eq!(q.activity, Activity::ViewDesktop);
    assert!(sent(&a).is_empty(), "asking sends nothing: {a:?}");
    let a = s.handle(Event::Answer {
        id: q.id,
        answer: Answer::Allow,
    });
    assert_eq!(
        sent(&a),
        [json!({"type": "consent_reply", "request": 7, "grant": true, "allow_all": false})]
    );
    assert_eq!(shown(&a), None, "nothing more to ask");
    assert_eq!(
        started(&mut s, "view_desktop"),
        vec![Action::StartShare(Source::Screen)]
    );
    assert!(s.sharing());
}

#[test]
fn a_refusal_is_sent_and_starts_nothing() {
    let mut s = session();
    let q = shown(&requested(&mut s, 3, "view_desktop")).unwrap();
    let a = s.handle(Event::Answer {
        id: q.id,
        answer: Answer::Deny,
    });
    assert_eq!(
        sent(&a),
        [json!({"type": "consent_reply", "request": 3, "grant": false, "allow_all": false})]
    );
    let a = started(&mut s, "view_desktop");
    assert!(!a.contains(&Action::StartShare(Source::Screen)), "{a:?}");
}

#[test]
fn allow_all_answers_at_once_for_the_rest_of_the_session() {
    let mut s = session();
    let q = shown(&requested(&mut s, 1, "view_desktop")).unwrap();
    let a = s.handle(Event::Answer {
        id: q.id,
        answer: Answer::AllowAll,
    });
    assert_eq!(sent(&a)[0]["allow_all"], true);
    let a = requested(&mut s, 2, "control_desktop");
    assert_eq!(
        sent(&a),
        [json!({"type": "consent_reply", "request": 2, "grant": true, "allow_all": false})]
    );
}

#[test]
fn a_rogue_server_cannot_start_a_share_answer_for_the_customer_or_inject() {
    let mut s = session();
    // A share and control "started" that nobody asked the customer about.
    for activity in ["view_desktop", "control_desktop"] {
        let a = started(&mut s, activity);
        assert!(sent(&a).is_empty() && injected(&a).is_empty(), "{a:?}");
        assert!(!a.contains(&Action::StartShare(Source::Screen)), "{a:?}");
    }
    assert!(!s.sharing());
    s.handle(Event::Captured {
        picture: PictureSize {
            width: 100,
            height: 100,
        },
        shown: Rect::new(0, 0, 100, 100),
    });
    // Control messages: none is injected.
    for m in [
        json!({"t": "move", "at": [0.5, 0.5]}),
        json!({"t": "down", "at": [0.5, 0.5], "button": 0}),
        json!({"t": "text", "text": "rm -rf ~"}),
        json!({"t": "combo", "name": "ctrl_alt_del"}),
    ] {
        assert!(injected(&control(&mut s, m)).is_empty());
    }
    assert_eq!(s.refused()["not_allowed"], 4);
    // A question for another computer, or the server "answering" for the customer.
    let a = event(
        &mut s,
        json!({"type": "consent_requested", "request": 9, "activity": "control_desktop",
               "customer": DAVE, "by": CAROL, "computer": "someone-else"}),
    );
    assert!(a.is_empty(), "{a:?}");
    let q = shown(&requested(&mut s, 10, "control_desktop")).unwrap();
    let a = event(
        &mut s,
        json!({"type": "consent_answered", "request": 10, "granted": true}),
    );
    assert!(a.is_empty(), "{a:?}");
    started(&mut s, "control_desktop");
    assert!(injected(&control(&mut s, json!({"t": "text", "text": "x"}))).is_empty());
    assert_eq!(
        s.question().map(|q| q.id),
        Some(q.id),
        "still asked, not answered"
    );
}

#[test]
fn allowed_control_is_mapped_onto_the_shown_screen() {
    let mut s = session();
    viewing_and_controlled(&mut s);
    let a = control(&mut s, json!({"t": "down", "at": [0.25, 0.5], "button": 0}));
    assert_eq!(
        injected(&a),
        [Inject::Button {
            at: (100 + 500, 50 + 500),
            button: Button::Left,
            pressed: true
        }]
    );
    let a = control(&mut s, json!({"t": "text", "text": "hello"}));
    assert_eq!(injected(&a), [Inject::Text("hello".into())]);
    let a = control(&mut s, json!({"t": "move", "at": [2, 0]}));
    assert!(injected(&a).is_empty(), "out of range is refused");
    assert_eq!(s.refused()["control_out_of_range"], 1);
}

#[test]
fn stop_ends_the_share_releases_held_input_and_refuses_later_control() {
    let mut s = session();
    viewing_and_controlled(&mut s);
    control(&mut s, json!({"t": "down", "at": [0, 0], "button": 2}));
    control(
        &mut s,
        json!({"t": "key", "code": "ShiftLeft", "down": true}),
    );
    let a = s.handle(Event::Stop);
    let mut stops: Vec<Value> = sent(&a);
    stops.sort_by_key(|v| v["activity"].to_string());
    assert_eq!(
        stops,
        [
            json!({"type": "stop_activity", "activity": "control_desktop"}),
            json!({"type": "stop_activity", "activity": "view_desktop"}),
        ]
    );
    assert!(a.contains(&Action::StopShare));
    let released = injected(&a);
    assert_eq!(released.len(), 2, "{released:?}");
    assert!(released.iter().all(|i| matches!(
        i,
        Inject::KeyState(_, false) | Inject::Button { pressed: false, .. }
    )));
    // The server has not said control stopped yet: its relayed input is refused anyway.
    assert!(injected(&control(&mut s, json!({"t": "text", "text": "x"}))).is_empty());
    // Nor does its "started" restart anything.
    assert!(!started(&mut s, "view_desktop").contains(&Action::StartShare(Source::Screen)));
}

#[test]
fn control_stopped_elsewhere_ends_injection_and_a_new_start_asks_again() {
    let mut s = session();
    viewing_and_controlled(&mut s);
    event(
        &mut s,
        json!({"type": "activity_stopped", "activity": "control_desktop", "customer": DAVE, "cause": "stopped"}),
    );
    assert!(injected(&control(&mut s, json!({"t": "text", "text": "x"}))).is_empty());
    assert!(s.sharing(), "viewing goes on");
    assert!(shown(&requested(&mut s, 5, "control_desktop")).is_some());
}

#[test]
fn bye_and_the_customer_leaving_end_the_share() {
    let mut s = session();
    viewing_and_controlled(&mut s);
    let a = s.handle(Event::Server(
        json!({"type": "bye", "reason": "customer_left"}).to_string(),
    ));
    assert!(a.contains(&Action::StopShare));
    assert!(matches!(a.last(), Some(Action::Leave(_))));
}

#[test]
fn a_bye_asking_to_reconnect_keeps_the_share_and_the_customers_answers() {
    let mut s = session();
    viewing_and_controlled(&mut s);
    let a = s.handle(Event::Server(
        json!({"type": "bye", "reason": "reconnect"}).to_string(),
    ));
    assert_eq!(a, [Action::Reconnect]);
    assert!(s.sharing(), "the screen is still shown");
    let click = control(&mut s, json!({"t": "text", "text": "x"}));
    assert!(!injected(&click).is_empty(), "control goes on");
}

#[test]
fn garbage_from_the_server_changes_nothing() {
    let mut s = session();
    for text in [
        "",
        "{",
        "[]",
        r#"{"type":"event","event":{"type":"consent_requested"}}"#,
    ] {
        assert!(s.handle(Event::Server(text.into())).is_empty(), "{text}");
    }
    let a = event(
        &mut s,
        json!({"type": "consent_requested", "request": "x", "activity": "view_desktop",
               "customer": DAVE, "by": CAROL, "computer": ME}),
    );
    assert!(a.is_empty());
}

mod apps;
mod clipboard;
mod files;
mod login_as;
/// D4, roles swapped: this is Carol's own computer; Carol gives Dave control of it.
fn carols_computer() -> Session {
    let mut s = Session::new(Identity {
        me: ME.into(),
        customer: CAROL.into(),
    });
    let welcome = json!({"type": "welcome", "you": ME, "role": "customer", "session": {
        "participants": [{"id": CAROL, "name": "Carol"}, {"id": DAVE, "name": "Dave"},
                         {"id": ME, "name": "Carol's computer"}],
        "activities": [], "pending_consents": []}});
    s.handle(Event::Server(welcome.to_string()));
    s
}

#[test]
fn the_csr_gives_control_in_their_own_helper_and_takes_it_back() {
    let mut s = carols_computer();
    let click = json!({"t": "down", "at": [0.25, 0.5], "button": 0});
    // A start the CSR did not allow here does nothing (a rogue server).
    event(
        &mut s,
        json!({"type": "activity_started", "activity": "give_control", "customer": DAVE, "pre_approved": false}),
    );
    assert!(!s.sharing());
    assert!(injected(&control(&mut s, click.clone())).is_empty());
    let q = shown(&requested(&mut s, 3, "give_control")).expect("asked of Carol");
    assert_eq!(q.activity, Activity::GiveControl);
    assert!(q.activity.question(&q.csr).starts_with("Give Dave control"));
    let a = s.handle(Event::Answer {
        id: q.id,
        answer: Answer::Allow,
    });
    assert_eq!(sent(&a)[0]["grant"], true);
    assert_eq!(
        started_for(&mut s, "give_control", DAVE),
        vec![Action::StartShare(Source::Screen)]
    );
    s.handle(Event::Captured {
        picture: PictureSize {
            width: 1000,
            height: 500,
        },
        shown: Rect::new(0, 0, 1000, 500),
    });
    assert_eq!(injected(&control(&mut s, click.clone())).len(), 1);
    // Carol takes control back (here or in her console): Dave's clicks inject nothing.
    assert_eq!(
        sent(&s.handle(Event::TakeControl)),
        [json!({"type": "take_control"})]
    );
    event(
        &mut s,
        json!({"type": "control_taken", "customer": DAVE, "by": CAROL, "holder": "csr"}),
    );
    assert!(injected(&control(&mut s, click.clone())).is_empty());
    assert_eq!(s.refused()["csr_holds"], 1);
    // Dave clicks to take it again.
    event(
        &mut s,
        json!({"type": "control_taken", "customer": DAVE, "by": DAVE, "holder": "customer"}),
    );
    assert_eq!(injected(&control(&mut s, click.clone())).len(), 1);
    // Dave ends it (D5): the share stops and nothing more is injected.
    let a = event(
        &mut s,
        json!({"type": "activity_stopped", "activity": "give_control", "customer": DAVE, "cause": "stopped"}),
    );
    assert!(a.contains(&Action::StopShare), "{a:?}");
    assert!(injected(&control(&mut s, click)).is_empty());
}

fn started_for(s: &mut Session, activity: &str, customer: &str) -> Vec<Action> {
    event(
        s,
        json!({"type": "activity_started", "activity": activity, "customer": customer, "pre_approved": false}),
    )
}

/// M1: the computer is read only after the customer's yes here, and read again on the CSR's
/// refresh only while that yes stands; a refresh for another computer reads nothing.
#[test]
fn system_information_is_read_only_after_the_customers_yes_here() {
    let mut s = session();
    let gathers = |a: &[Action]| a.iter().filter(|a| **a == Action::GatherSystemInfo).count();
    // A server that says it started without asking: nothing is read.
    assert_eq!(gathers(&started(&mut s, "system_info")), 0);
    let refresh =
        json!({"type": "system_info_requested", "customer": DAVE, "computer": ME, "by": CAROL});
    assert_eq!(gathers(&event(&mut s, refresh.clone())), 0);

    let q = shown(&requested(&mut s, 4, "system_info")).expect("asked");
    assert!(
        q.activity
            .question(&q.csr)
            .starts_with("Carol asks to read information about this computer")
    );
    s.handle(Event::Answer {
        id: q.id,
        answer: Answer::Allow,
    });
    assert_eq!(gathers(&started(&mut s, "system_info")), 1);
    assert_eq!(gathers(&event(&mut s, refresh.clone())), 1);
    let elsewhere = json!({"type": "system_info_requested", "customer": "erin-1", "computer": "pc-2", "by": CAROL});
    assert_eq!(gathers(&event(&mut s, elsewhere)), 0);
    // Stop in the helper: the yes is gone, a refresh reads nothing.
    s.handle(Event::Stop);
    assert_eq!(gathers(&event(&mut s, refresh)), 0);
}

/// M3, M5 (review): scripts and a restart are asked every time, "allow all" or not, and a
/// second list cannot replace the one the customer is reading.
#[test]
fn scripts_and_restarts_are_asked_every_time_and_the_list_shown_is_the_one_run() {
    let mut s = session();
    let proposed = |request: u64, name: &str| {
        json!({"type": "scripts_proposed", "request": request, "customer": DAVE, "computer": ME, "by": CAROL,
               "scripts": [{"script": "x", "name": name, "sha256": "ab".repeat(32), "size": 3}]})
    };
    // Dave allows everything on a first question.
    let q = shown(&requested(&mut s, 1, "view_desktop")).unwrap();
    s.handle(Event::Answer {
        id: q.id,
        answer: Answer::AllowAll,
    });
    event(&mut s, proposed(2, "first list"));
    let asked = requested(&mut s, 2, "run_script");
    let q = shown(&asked).expect("scripts are asked although Dave allowed all");
    assert!(q.text().contains("first list"), "{}", q.text());
    assert!(sent(&asked).is_empty(), "no answer went out for Dave");
    // A second list while the first is read: refused, the first stays.
    event(&mut s, proposed(3, "swapped list"));
    let second = requested(&mut s, 3, "run_script");
    assert_eq!(
        sent(&second),
        vec![json!({"type": "consent_reply", "request": 3, "grant": false, "allow_all": false})]
    );
    let out = s.handle(Event::Answer {
        id: q.id,
        answer: Answer::Allow,
    });
    assert_eq!(sent(&out)[0]["request"], 2);
    let run = started(&mut s, "run_script");
    assert!(
        matches!(&run[..], [Action::RunScripts { request: 2, scripts }] if scripts[0].name == "first list"),
        "{run:?}"
    );
    // The yes was for that run: the next one is asked again.
    event(&mut s, proposed(4, "another"));
    assert!(shown(&requested(&mut s, 4, "run_script")).is_some());
    // A restart is asked too, never started on "allow all".
    let restart = requested(&mut s, 5, "reboot");
    assert!(sent(&restart).is_empty(), "no yes went out for Dave");
    assert!(
        s.consent()
            .question_waiting(crate::consent::Activity::Reboot)
    );
}
