//! M4: signing in as another user, as the helper's session machine sees it.

use super::*;

fn login(user: &str, password: &str) -> Value {
    json!({"type": "login_as_user", "user": user, "password": password, "by": CAROL})
}

fn server(s: &mut Session, frame: Value) -> Vec<Action> {
    s.handle(Event::Server(frame.to_string()))
}

fn starts_logon(actions: &[Action]) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::StartLogon { .. }))
}

/// Dave allowed `login_as_user` here and the server started it.
fn allowed(s: &mut Session) {
    let q = shown(&requested(s, 5, "login_as_user")).expect("always asked");
    assert_eq!(q.activity, Activity::LoginAsUser);
    s.handle(Event::Answer {
        id: q.id,
        answer: Answer::Allow,
    });
    started(s, "login_as_user");
}

#[test]
fn credentials_the_customer_did_not_allow_start_nothing() {
    let mut s = session();
    // A rogue (or confused) server relays credentials with no yes, then with the activity
    // "started" but never asked here.
    let a = server(&mut s, login("bob", "pw"));
    assert!(!starts_logon(&a), "{a:?}");
    assert_eq!(sent(&a)[0]["code"], "not_allowed");
    started(&mut s, "login_as_user");
    let a = server(&mut s, login("bob", "pw"));
    assert!(!starts_logon(&a), "{a:?}");
    // "Allow all" does not cover it: it is asked all the same.
    let q = shown(&requested(&mut s, 1, "view_desktop")).unwrap();
    s.handle(Event::Answer {
        id: q.id,
        answer: Answer::AllowAll,
    });
    let a = requested(&mut s, 2, "login_as_user");
    assert!(shown(&a).is_some(), "asked despite allow all: {a:?}");
    assert!(sent(&a).is_empty());
}

#[test]
fn allowed_credentials_go_to_the_service_and_never_print() {
    let mut s = session();
    allowed(&mut s);
    for bad in [login("../x", "pw"), login("bob", "")] {
        let a = server(&mut s, bad);
        assert!(!starts_logon(&a));
        assert_eq!(sent(&a)[0]["code"], "bad_request");
    }
    let a = server(&mut s, login("bob", "hunter2"));
    let start = a
        .iter()
        .find(|a| matches!(a, Action::StartLogon { .. }))
        .expect("the service is asked");
    assert_eq!(
        start,
        &Action::StartLogon {
            user: "bob".into(),
            password: Password("hunter2".into())
        }
    );
    assert!(!format!("{a:?}").contains("hunter2"), "{a:?}");
    // One at a time.
    assert_eq!(sent(&server(&mut s, login("bob", "x")))[0]["code"], "busy");
    // Refused by the service: said to the server, and another try may go.
    let a = s.handle(Event::Logon(LogonEvent::Refused("auth_failed".into())));
    assert_eq!(
        sent(&a),
        [
            json!({"type": "login_as_user_result", "state": "failed", "user": "bob", "code": "auth_failed"})
        ]
    );
    assert!(starts_logon(&server(&mut s, login("bob", "right"))));
}

#[test]
fn while_signed_in_control_goes_to_that_display_and_the_clipboard_stays_out() {
    let mut s = session();
    allowed(&mut s);
    server(&mut s, login("bob", "pw"));
    let a = s.handle(Event::Logon(LogonEvent::Started));
    assert!(a.contains(&Action::ShowLogon), "{a:?}");
    assert_eq!(sent(&a)[0]["state"], "started");
    assert_eq!(s.signed_in(), Some("bob"));
    // Dave never allowed control of his desktop; Carol controls bob's display all the same.
    s.handle(Event::Captured {
        picture: PictureSize {
            width: 800,
            height: 600,
        },
        shown: Rect::new(0, 0, 800, 600),
    });
    let a = control(&mut s, json!({"t": "down", "at": [0.5, 0.5], "button": 0}));
    assert_eq!(
        injected(&a),
        [Inject::Button {
            at: (400, 300),
            button: Button::Left,
            pressed: true
        }]
    );
    let a = control(&mut s, json!({"t": "clipboard_get"}));
    assert!(a.is_empty(), "{a:?}");
    assert_eq!(s.refused()["signed_in_elsewhere"], 1);

    // The user signs out: back to Dave's desktop, the held button released there first.
    let a = s.handle(Event::Logon(LogonEvent::Ended("logged_out".into())));
    assert!(a.contains(&Action::EndLogon), "{a:?}");
    assert!(
        injected(&a)
            .iter()
            .any(|i| matches!(i, Inject::Button { pressed: false, .. })),
        "{a:?}"
    );
    assert_eq!(sent(&a)[0]["reason"], "logged_out");
    assert_eq!(s.signed_in(), None);
    // Control no longer reaches anything: Dave allowed none on his desktop.
    assert!(injected(&control(&mut s, json!({"t": "move", "at": [0.5, 0.5]}))).is_empty());
}

#[test]
fn stop_or_the_activity_ending_ends_the_other_users_session() {
    for end in ["stop", "activity_stopped", "session_ended"] {
        let mut s = session();
        allowed(&mut s);
        server(&mut s, login("bob", "pw"));
        s.handle(Event::Logon(LogonEvent::Started));
        let a = match end {
            "stop" => s.handle(Event::Stop),
            "activity_stopped" => event(
                &mut s,
                json!({"type": "activity_stopped", "activity": "login_as_user", "customer": DAVE}),
            ),
            _ => event(&mut s, json!({"type": "session_ended"})),
        };
        assert!(a.contains(&Action::EndLogon), "{end}: {a:?}");
        assert_eq!(s.signed_in(), None, "{end}");
    }
    // Ended while the service was still answering: a late "started" is ended at once.
    let mut s = session();
    allowed(&mut s);
    server(&mut s, login("bob", "pw"));
    s.handle(Event::Stop);
    let a = s.handle(Event::Logon(LogonEvent::Started));
    assert_eq!(a, vec![Action::EndLogon]);
    assert_eq!(s.signed_in(), None);
}
