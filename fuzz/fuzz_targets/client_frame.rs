//! Any WebSocket text frame, parsed as the server parses it and, if it is a command, applied to
//! a live session by each kind of participant. Nothing may panic, and the rules must hold.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_actors::ids::{AccountId, ParticipantId, SessionId, SessionNumber};
use tandem_actors::protocol::{ClientFrame, ParticipantInfo, Role};
use tandem_actors::session::rules::{SessionInit, SessionRules};

fn person(role: Role) -> ParticipantInfo {
    ParticipantInfo {
        id: ParticipantId::random(),
        role,
        name: "p".into(),
        email: None,
        account: (role == Role::Csr).then(AccountId::random),
        is_agent: true,
        phone: false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // As src/http/ws.rs reads a frame: JSON first, then the command.
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    let Ok(frame) = serde_json::from_value::<ClientFrame>(value) else {
        return;
    };
    let init = SessionInit {
        id: SessionId::random(),
        number: SessionNumber::new(123_456_789).unwrap(),
        topic: "fuzz".into(),
        host: AccountId::random(),
        max_customers: 3,
        quick_phrases: Some(vec!["hello".into()]),
        // Both ways, chosen by the input: automatic recording changes which commands pass.
        automatic_recording: data.len() % 2 == 1,
    };
    let (mut rules, _) = SessionRules::create(init, 0);
    let csr = person(Role::Csr);
    let assistant = person(Role::Csr);
    let customer = person(Role::Customer);
    let ids = [csr.id, assistant.id, customer.id];
    rules.join(0, csr, true).unwrap();
    rules.join(0, assistant, false).unwrap();
    rules.join(0, customer, false).unwrap();
    for (t, from) in ids.into_iter().enumerate() {
        let _ = rules.handle(t as i64, from, frame.command.clone());
        assert!(rules.microphone_holders().len() <= 2);
    }
});
