//! D6: the customer picks the windows; nothing of an application is shown or controlled without
//! that pick, whatever the server says.

use super::*;
use crate::picture::tiles::lay_out;

const A: u64 = 0x20;
const B: u64 = 0x30;

fn window(id: u64, title: &str, rect: Rect) -> AppWindow {
    AppWindow {
        id,
        title: title.into(),
        pid: None,
        app: String::new(),
        rect,
    }
}

fn listed() -> Vec<AppWindow> {
    vec![
        window(A, "Invoice", Rect::new(100, 100, 400, 300)),
        window(B, "Bank", Rect::new(600, 100, 200, 100)),
    ]
}

/// The pick shown, after the window list came.
fn pick_of(actions: &[Action]) -> Option<(Question, Vec<AppWindow>)> {
    actions.iter().find_map(|a| match a {
        Action::Pick { question, windows } => Some((question.clone(), windows.clone())),
        _ => None,
    })
}

fn shares(actions: &[Action]) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::StartShare(_) | Action::ShareWindows(_)))
}

/// Carol asks to see applications; the helper lists the windows and shows the pick.
fn asked_to_view(s: &mut Session) -> Question {
    let a = requested(s, 3, "view_application");
    assert!(a.contains(&Action::ListWindows), "{a:?}");
    assert!(sent(&a).is_empty(), "asking sends nothing: {a:?}");
    assert_eq!(shown(&a), None, "no bare yes/no for an application");
    let (q, offered) = pick_of(&s.handle(Event::Windows(listed()))).expect("the pick is shown");
    assert_eq!(q.activity, Activity::ViewApplication);
    assert_eq!(offered, listed());
    q
}

/// Dave picks `windows`; the server starts viewing.
fn showing(s: &mut Session, windows: Vec<u64>) -> Vec<Action> {
    let q = asked_to_view(s);
    let a = s.handle(Event::Picked { id: q.id, windows });
    assert_eq!(
        sent(&a),
        vec![json!({"type": "consent_reply", "request": 3, "grant": true, "allow_all": false})]
    );
    started(s, "view_application")
}

#[test]
fn only_the_windows_the_customer_picked_are_shared() {
    let mut s = session();
    let a = showing(&mut s, vec![A]);
    assert_eq!(a, vec![Action::ShareWindows(vec![A])]);
    assert_eq!(s.chosen(), [A]);
    assert!(s.sharing());
}

#[test]
fn a_window_id_the_customer_did_not_pick_from_is_never_shown() {
    let mut s = session();
    let q = asked_to_view(&mut s);
    // An id that was not offered (the root, another user's window) counts for nothing: no
    // window picked is a no.
    let a = s.handle(Event::Picked {
        id: q.id,
        windows: vec![0x999],
    });
    assert_eq!(
        sent(&a),
        vec![json!({"type": "consent_reply", "request": 3, "grant": false, "allow_all": false})]
    );
    let a = started(&mut s, "view_application");
    assert!(!shares(&a), "{a:?}");
    assert!(s.chosen().is_empty());
}

#[test]
fn a_rogue_server_starting_view_application_without_the_pick_sends_nothing() {
    let mut s = session();
    let a = started(&mut s, "view_application");
    assert!(!shares(&a) && sent(&a).is_empty(), "{a:?}");
    // Asked, and a bare "yes" (no window picked): still nothing is shown.
    let q = asked_to_view(&mut s);
    let a = s.handle(Event::Answer {
        id: q.id,
        answer: Answer::Allow,
    });
    assert!(sent(&a).is_empty(), "{a:?}");
    assert!(matches!(a.as_slice(), [Action::Notice(_)]), "{a:?}");
    let a = started(&mut s, "view_application");
    assert!(!shares(&a), "{a:?}");
    assert!(!s.sharing());
    // A pick for another question id is not this one's.
    let a = s.handle(Event::Picked {
        id: q.id + 1,
        windows: vec![A],
    });
    assert!(a.is_empty() && s.chosen().is_empty(), "{a:?}");
}

#[test]
fn with_allow_all_the_windows_are_still_the_customers_pick() {
    let mut s = session();
    let q = shown(&requested(&mut s, 1, "view_desktop")).expect("asked");
    s.handle(Event::Answer {
        id: q.id,
        answer: Answer::AllowAll,
    });
    let a = requested(&mut s, 4, "view_application");
    assert_eq!(sent(&a)[0]["grant"], true, "the customer allowed all");
    assert!(a.contains(&Action::ListWindows));
    assert!(!shares(&started(&mut s, "view_application")));
    let (q, _) = pick_of(&s.handle(Event::Windows(listed()))).expect("the pick is shown");
    let a = s.handle(Event::Picked {
        id: q.id,
        windows: vec![B],
    });
    assert!(a.contains(&Action::ShareWindows(vec![B])), "{a:?}");
}

/// Dave shows A and B and allows control of them; the picture is laid out side by side.
fn controlled(s: &mut Session) {
    showing(s, vec![A, B]);
    s.handle(Event::Placed(lay_out(&[
        (A, Rect::new(100, 100, 400, 300)),
        (B, Rect::new(600, 100, 200, 100)),
    ])));
    let q = shown(&requested(s, 5, "control_application")).expect("a plain question now");
    assert_eq!(q.activity, Activity::ControlApplication);
    s.handle(Event::Answer {
        id: q.id,
        answer: Answer::Allow,
    });
    started(s, "control_application");
}

#[test]
fn control_reaches_only_the_chosen_windows_where_they_are_now() {
    let mut s = session();
    controlled(&mut s);
    // The picture is 600x300: A at (0, 0) 400x300, B at (400, 0) 200x100, black below B.
    let a = control(
        &mut s,
        json!({"t": "down", "at": [100.0 / 600.0, 50.0 / 300.0], "button": 0}),
    );
    assert_eq!(
        injected(&a),
        vec![
            Inject::Focus(A),
            Inject::Button {
                at: (200, 150),
                button: Button::Left,
                pressed: true
            }
        ]
    );
    control(
        &mut s,
        json!({"t": "up", "at": [100.0 / 600.0, 50.0 / 300.0], "button": 0}),
    );
    // Below B's tile: no window there, nothing injected, refused and counted.
    for t in ["down", "move"] {
        let a = control(
            &mut s,
            json!({"t": t, "at": [450.0 / 600.0, 200.0 / 300.0], "button": 0}),
        );
        assert!(injected(&a).is_empty(), "{a:?}");
    }
    assert_eq!(s.refused().get("outside_chosen"), Some(&2));
    // B moved: a point in B's tile follows it.
    s.handle(Event::Placed(lay_out(&[
        (A, Rect::new(100, 100, 400, 300)),
        (B, Rect::new(900, 500, 200, 100)),
    ])));
    let a = control(
        &mut s,
        json!({"t": "move", "at": [500.0 / 600.0, 50.0 / 300.0]}),
    );
    assert_eq!(injected(&a), vec![Inject::Move(1000, 550)]);
    // Keys go only where the focus is in a chosen window (the shell checks).
    let a = control(&mut s, json!({"t": "text", "text": "hi"}));
    assert_eq!(
        injected(&a),
        vec![Inject::InWindows(
            vec![A, B],
            Box::new(Inject::Text("hi".into()))
        )]
    );
}

#[test]
fn control_application_alone_never_reaches_the_whole_screen() {
    let mut s = session();
    let q = shown(&requested(&mut s, 1, "view_desktop")).expect("asked");
    s.handle(Event::Answer {
        id: q.id,
        answer: Answer::Allow,
    });
    started(&mut s, "view_desktop");
    s.handle(Event::Captured {
        picture: PictureSize {
            width: 1280,
            height: 800,
        },
        shown: Rect::new(0, 0, 1280, 800),
    });
    // A rogue server asks control of an application while the desktop is shown.
    let a = requested(&mut s, 2, "control_application");
    let (q, _) = pick_of(&s.handle(Event::Windows(listed()))).unwrap_or_else(|| panic!("{a:?}"));
    s.handle(Event::Picked {
        id: q.id,
        windows: vec![A],
    });
    started(&mut s, "control_application");
    // Now the chosen window is shown alone; until its placement is known nothing is injected.
    let a = control(&mut s, json!({"t": "down", "at": [0.5, 0.5], "button": 0}));
    assert!(injected(&a).is_empty(), "{a:?}");
}

#[test]
fn when_every_chosen_window_closes_the_share_ends_with_a_notice() {
    let mut s = session();
    showing(&mut s, vec![A]);
    s.handle(Event::Placed(lay_out(&[(
        A,
        Rect::new(100, 100, 400, 300),
    )])));
    let a = s.handle(Event::Placed(lay_out(&[])));
    assert!(a.contains(&Action::StopShare), "{a:?}");
    assert!(a.iter().any(|x| matches!(x, Action::Notice(_))));
    assert_eq!(
        sent(&a),
        vec![json!({"type": "stop_activity", "activity": "view_application"})]
    );
    assert!(!s.sharing() && s.chosen().is_empty());
    let a = control(&mut s, json!({"t": "down", "at": [0.5, 0.5], "button": 0}));
    assert!(injected(&a).is_empty());
}

#[test]
fn stop_forgets_the_pick() {
    let mut s = session();
    showing(&mut s, vec![A]);
    let a = s.handle(Event::Stop);
    assert!(a.contains(&Action::StopShare));
    assert!(s.chosen().is_empty());
    // Asked again: the customer picks again.
    assert!(requested(&mut s, 9, "view_application").contains(&Action::ListWindows));
}
