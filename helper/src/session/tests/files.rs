//! F2 in the helper's own record: each file operation is the customer's to allow, unless their
//! whole screen is shared; a cancel is never asked; the end of file transfer stops them all.

use super::*;

fn files(s: &mut Session, op: u64, request: Value) -> Vec<Action> {
    event(
        s,
        json!({"type": "computer_files_requested", "op": op, "customer": DAVE,
               "computer": ME, "by": CAROL, "request": request}),
    )
}

fn answer(s: &mut Session, id: u64, answer: Answer) -> Vec<Action> {
    s.handle(Event::Answer { id, answer })
}

#[test]
fn each_operation_is_asked_and_a_yes_covers_that_one_only() {
    let mut s = session();
    let a = files(&mut s, 1, json!({"op": "delete", "path": "Old"}));
    let q = shown(&a).expect("asked");
    assert_eq!(
        q.text(),
        "Carol asks to do this with your files:\ndelete \"Old\" and all it holds"
    );
    assert!(
        !a.iter().any(|a| matches!(a, Action::Files { .. })),
        "{a:?}"
    );
    // A second one while the first waits is refused, not queued behind the customer's back.
    let b = files(&mut s, 2, json!({"op": "list", "path": ""}));
    assert!(
        matches!(
            &b[..],
            [Action::FilesRefused {
                op: 2,
                by_customer: false,
                ..
            }]
        ),
        "{b:?}"
    );
    let yes = answer(&mut s, q.id, Answer::Allow);
    assert!(
        yes.contains(&Action::Files {
            op: 1,
            request: FilesRequest::Delete { path: "Old".into() }
        }),
        "{yes:?}"
    );
    assert!(
        sent(&yes).is_empty(),
        "no consent reply goes to the server: {yes:?}"
    );
    // The next is asked again, and a no is the customer's.
    let q = shown(&files(&mut s, 3, json!({"op": "list", "path": ""}))).expect("asked again");
    let no = answer(&mut s, q.id, Answer::Deny);
    assert!(
        matches!(
            &no[..],
            [
                Action::FilesRefused {
                    op: 3,
                    by_customer: true,
                    ..
                },
                ..
            ]
        ),
        "{no:?}"
    );
}

#[test]
fn escapes_are_refused_here_whatever_the_server_let_through() {
    let mut s = session();
    let a = files(&mut s, 1, json!({"op": "list", "path": "../../etc"}));
    assert!(
        matches!(
            &a[..],
            [Action::FilesRefused {
                op: 1,
                by_customer: false,
                ..
            }]
        ),
        "{a:?}"
    );
    let a = files(&mut s, 2, json!({"op": "format_disk"}));
    assert!(
        matches!(&a[..], [Action::FilesRefused { op: 2, .. }]),
        "{a:?}"
    );
    // Another customer's computer's operation is not ours.
    let other = event(
        &mut s,
        json!({"type": "computer_files_requested", "op": 3, "customer": "erin-1",
               "computer": "pc-2", "by": CAROL, "request": {"op": "list", "path": ""}}),
    );
    assert!(other.is_empty(), "{other:?}");
}

#[test]
fn while_the_screen_is_shared_operations_are_not_asked_and_the_end_stops_them() {
    let mut s = session();
    viewing_and_controlled(&mut s);
    let a = files(&mut s, 1, json!({"op": "send", "paths": ["a.txt"]}));
    assert!(
        matches!(&a[..], [Action::Files { op: 1, .. }]),
        "shared screen: not asked {a:?}"
    );
    let c = files(&mut s, 2, json!({"op": "cancel", "target": 1}));
    assert_eq!(
        c,
        vec![
            Action::CancelFiles(Some(1)),
            Action::Files {
                op: 2,
                request: FilesRequest::Cancel { target: 1 }
            }
        ]
    );
    let end = event(
        &mut s,
        json!({"type": "activity_stopped", "activity": "file_transfer", "customer": DAVE}),
    );
    assert!(end.contains(&Action::CancelFiles(None)), "{end:?}");
}

#[test]
fn stop_refuses_the_waiting_question_and_stops_transfers() {
    let mut s = session();
    let q = shown(&files(&mut s, 1, json!({"op": "list", "path": ""}))).expect("asked");
    let stop = s.handle(Event::Stop);
    assert!(stop.contains(&Action::CancelFiles(None)), "{stop:?}");
    assert!(
        stop.iter()
            .any(|a| matches!(a, Action::FilesRefused { op: 1, .. })),
        "{stop:?}"
    );
    assert!(
        answer(&mut s, q.id, Answer::Allow)
            .iter()
            .all(|a| !matches!(a, Action::Files { .. }))
    );
}

#[test]
fn allow_all_on_another_question_does_not_answer_a_file_operation_waiting_behind_it() {
    let mut s = session();
    let view = shown(&requested(&mut s, 1, "view_desktop")).expect("asked");
    files(&mut s, 5, json!({"op": "delete", "path": "Documents"}));
    let all = answer(&mut s, view.id, Answer::AllowAll);
    assert!(
        !all.iter().any(|a| matches!(a, Action::Files { .. })),
        "{all:?}"
    );
    let q = shown(&all).expect("the file question is shown next");
    assert!(q.text().contains("delete \"Documents\""), "{}", q.text());
    // And a later one is asked too, "allow all" notwithstanding.
    let yes = answer(&mut s, q.id, Answer::Allow);
    assert!(yes.iter().any(|a| matches!(a, Action::Files { op: 5, .. })));
    let later = files(&mut s, 6, json!({"op": "list", "path": ""}));
    assert!(shown(&later).is_some(), "{later:?}");
}

#[test]
fn a_cancel_withdraws_the_question_of_the_operation_it_cancels() {
    let mut s = session();
    let q = shown(&files(&mut s, 1, json!({"op": "list", "path": ""}))).expect("asked");
    let c = files(&mut s, 2, json!({"op": "cancel", "target": 1}));
    assert!(
        c.iter().any(|a| matches!(
            a,
            Action::FilesRefused {
                op: 1,
                by_customer: false,
                ..
            }
        )),
        "{c:?}"
    );
    assert!(c.contains(&Action::Show(None)), "{c:?}");
    assert!(
        answer(&mut s, q.id, Answer::Allow)
            .iter()
            .all(|a| !matches!(a, Action::Files { .. }))
    );
}
