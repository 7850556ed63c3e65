//! Issue 18: the chat kept in the session view, for a page that reconnects and for people who
//! come later; each sees what they were told, no more.

use super::*;
use crate::session::rules::transcript::MAX_CHAT_KEPT;

fn texts(w: &World, role: Role, who: ParticipantId) -> Vec<String> {
    w.rules.view(Some(role), Some(who))["chat"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn each_sees_the_chat_they_were_told_and_it_survives_a_restart() {
    let (mut w, dave) = World::with_customer("Dave");
    w.cmd(dave, chat(None, "my printer is broken")).unwrap();
    w.cmd(dave, chat(Some(w.csr), "between us")).unwrap();
    // Erin, another customer, comes later; Alex, an assistant, too.
    let erin = w.join(Role::Customer, "Erin");
    let alex = w.join(Role::Csr, "Alex");
    w.cmd(w.csr, chat(None, "welcome, Erin")).unwrap();
    assert_eq!(
        texts(&w, Role::Csr, w.csr),
        ["my printer is broken", "between us", "welcome, Erin"]
    );
    assert_eq!(
        texts(&w, Role::Customer, dave),
        ["my printer is broken", "between us", "welcome, Erin"]
    );
    // The assistant sees what was said to everyone before he came, not the private line.
    assert_eq!(
        texts(&w, Role::Csr, alex),
        ["my printer is broken", "welcome, Erin"]
    );
    // A customer who came later sees only what was said since.
    assert_eq!(texts(&w, Role::Customer, erin), ["welcome, Erin"]);
    // Lines carry who, to whom, when, and their place in the journal.
    let line = &w.rules.view(Some(Role::Csr), Some(w.csr))["chat"][1];
    assert_eq!(line["from"], json!(dave));
    assert_eq!(line["to"], json!(w.csr));
    assert!(line["seq"].as_u64().is_some() && line["at"].as_u64().is_some());
    // Restored from the journal, the same.
    assert_eq!(
        w.restored().view(Some(Role::Csr), Some(w.csr)),
        w.rules.view(Some(Role::Csr), Some(w.csr))
    );
}

#[test]
fn the_kept_chat_is_bounded() {
    let (mut w, dave) = World::with_customer("Dave");
    for i in 0..MAX_CHAT_KEPT + 3 {
        w.cmd(dave, chat(None, format!("line {i}"))).unwrap();
    }
    let kept = texts(&w, Role::Csr, w.csr);
    assert_eq!(kept.len(), MAX_CHAT_KEPT);
    assert_eq!(kept[0], "line 3");
}
