//! SPEC M3: scripts are always asked for in the helper's window with the list, run in order,
//! and the last one ends the activity; the journal rebuilds the same.

use super::*;
use crate::protocol::{ScriptItem, ScriptOutcome};

fn item(name: &str) -> ScriptItem {
    ScriptItem {
        script: format!("id-{name}"),
        name: name.into(),
        sha256: "ab".repeat(32),
        size: 10,
        input: None,
        input_sha256: None,
    }
}

fn ok(output: &str) -> ScriptOutcome {
    ScriptOutcome {
        exit_code: Some(0),
        timed_out: false,
        refused: None,
        output: output.into(),
        truncated: false,
        duration_ms: 5,
    }
}

#[test]
fn scripts_are_asked_with_their_list_even_after_allow_all_and_finish_in_order() {
    let (mut w, dave) = World::with_customer("Dave");
    w.cmd(w.csr, select(dave)).unwrap();
    assert_eq!(
        w.rules
            .propose_scripts(w.now, w.csr, vec![item("a")])
            .map_err(|r| r.code()),
        Err("helper_required")
    );
    let computer = w.attach_able_computer(dave, vec![Activity::RunScript]);
    // The plain request is not how scripts are asked for.
    assert_eq!(
        w.cmd(w.csr, ask_for(Activity::RunScript)),
        Err("bad_script_list")
    );
    assert_eq!(
        w.rules
            .propose_scripts(w.now, w.csr, vec![])
            .map_err(|r| r.code()),
        Err("bad_script_list")
    );
    // Dave allowed everything earlier: scripts are asked all the same, with the list.
    let view = w.request(Activity::ViewDesktop);
    w.cmd(computer, reply(view, true, true)).unwrap();
    assert!(w.rules.view(None, None)["allow_all"][0] == json!(dave));
    let recs = w
        .rules
        .propose_scripts(w.now, w.csr, vec![item("second"), item("first")])
        .unwrap();
    let events: Vec<Event> = recs.iter().map(|r| r.event.clone()).collect();
    w.journal.extend(recs);
    let request = match &events[..] {
        [
            Event::ScriptsProposed {
                request,
                scripts,
                computer: c,
                ..
            },
            Event::ConsentRequested {
                request: asked,
                activity: Activity::RunScript,
                computer: Some(c2),
                ..
            },
        ] if request == asked && c == c2 && *c == computer => {
            assert_eq!(scripts[0].name, "second");
            *request
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(
        events[0].audience(),
        Audience::StaffAnd(vec![dave, computer])
    );
    w.cmd(computer, reply(request, true, false)).unwrap();
    assert!(w.running().contains(&(Activity::RunScript, dave)));
    // The computer fetches what was allowed; reports in order only.
    assert_eq!(
        w.rules.script_item(computer, request, 1).unwrap().name,
        "first"
    );
    assert_eq!(
        w.rules.script_item(dave, request, 0).map_err(|r| r.code()),
        Err("not_a_computer")
    );
    let finish = |w: &mut World, index| {
        w.rules
            .script_finished(w.now, computer, request, index, ok("done"))
            .map(|recs| {
                let evs: Vec<Event> = recs.iter().map(|r| r.event.clone()).collect();
                w.journal.extend(recs);
                evs
            })
            .map_err(|r| r.code())
    };
    assert_eq!(finish(&mut w, 1), Err("script_out_of_order"));
    let first = finish(&mut w, 0).unwrap();
    assert!(
        matches!(&first[1], Event::Chat { from, to: Some(to), text } if *from == computer && *to == w.csr && text.starts_with("Script \"second\" finished."))
    );
    assert!(w.running().contains(&(Activity::RunScript, dave)));
    assert_eq!(w.restored().view(None, None), w.rules.view(None, None));
    let last = finish(&mut w, 1).unwrap();
    assert_eq!(
        last.last(),
        Some(&stopped(Activity::RunScript, dave, StopCause::Finished))
    );
    assert!(!w.running().contains(&(Activity::RunScript, dave)));
    assert_eq!(finish(&mut w, 2), Err("activity_not_running"));
}
