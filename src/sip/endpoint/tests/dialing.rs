//! Ringing a registered softphone: answered, busy, silent, once at a time, through a closed
//! connection.

use super::register::{PASSWORD, accounts, answer, challenges, register};
use super::*;

/// Dave's softphone registered from [`PHONE`] as `sip:dave@10.0.0.9:5062`.
fn registered(e: &mut Endpoint, now: Instant) {
    e.set_accounts(accounts());
    let contact = "<sip:dave@10.0.0.9:5062>";
    let out = e.receive(now, peer(), &register("d0", 1, "dave", contact, None));
    let ch = challenges(&sent(&out)[0]).remove(1);
    let auth = answer(&ch, "REGISTER", "sip:192.0.2.1", PASSWORD, 1);
    let out = e.receive(
        now,
        peer(),
        &register("d1", 2, "dave", contact, Some(&auth)),
    );
    assert!(sent(&out)[0].starts_with("SIP/2.0 200"));
}

/// The phone's response to our `request`: its Via, From, Call-ID and CSeq, its To tagged.
fn reply_to(request: &str, code: u16, body: &str) -> Vec<u8> {
    let header = |name: &str| {
        request
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap()
            .to_string()
    };
    let ctype = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "SIP/2.0 {code} Whatever\r\n{}\r\n{}\r\n{};tag=ph2\r\n{}\r\n{}\r\n\
         Contact: <sip:dave@{PHONE}>\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
        header("Via:"),
        header("From:"),
        header("To:"),
        header("Call-ID:"),
        header("CSeq:"),
        body.len()
    )
    .into_bytes()
}

/// Ringing Dave's softphone into a session on 192.0.2.1:7000.
fn dave_dial() -> Dial {
    Dial {
        user: "dave".into(),
        local: "192.0.2.1:7000".parse().unwrap(),
        ring: Duration::from_secs(20),
    }
}

/// Rings Dave, whose INVITE goes to `to`.
fn dial_via(e: &mut Endpoint, now: Instant, to: Peer) -> (LegId, String) {
    let (leg, out) = e.dial(now, dave_dial()).unwrap();
    let [Output::Send(s)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(s.peer, to, "rung where it registered from");
    (leg, String::from_utf8(s.bytes.clone()).unwrap())
}

fn dial(e: &mut Endpoint, now: Instant) -> (LegId, String) {
    dial_via(e, now, peer())
}

#[test]
fn a_registered_softphone_is_rung_answered_and_hangs_up() {
    let mut e = endpoint();
    let now = Instant::now();
    assert_eq!(
        e.dial(now, dave_dial()).err(),
        Some(DialError::NotRegistered)
    );
    registered(&mut e, now);
    let (leg, invite) = dial(&mut e, now);
    assert!(
        invite.starts_with("INVITE sip:dave@10.0.0.9:5062 SIP/2.0\r\n"),
        "{invite}"
    );
    assert!(
        invite.contains("m=audio 7000 RTP/AVP"),
        "our offer: {invite}"
    );
    // Repeated until the phone says something, then not.
    assert!(sent(&e.handle_timeout(now + Duration::from_millis(500)))[0].starts_with("INVITE"));
    assert!(
        e.receive(now, peer(), &reply_to(&invite, 180, ""))
            .is_empty()
    );
    assert!(sent(&e.handle_timeout(now + Duration::from_secs(3))).is_empty());
    let ok = reply_to(&invite, 200, &sdp_offer("sendrecv"));
    let out = e.receive(now, peer(), &ok);
    let ack = &sent(&out)[0];
    assert!(
        ack.starts_with(&format!("ACK sip:dave@{PHONE} SIP/2.0")),
        "{ack}"
    );
    assert!(
        ack.contains("CSeq: 1 ACK") && ack.contains("tag=ph2"),
        "{ack}"
    );
    let [CallEvent::Media { leg: l, media }] = &events(&out)[..] else {
        panic!("{out:?}")
    };
    assert_eq!(
        (*l, media.codec),
        (leg, tandem_media::voice_codec::VoiceCodec::Pcmu)
    );
    // Answered and acknowledged: the dialog is confirmed, so media may go (once the phone's
    // own RTP shows its address).
    assert!(media.confirmed);
    // The 200 again (our ACK was lost): the same ACK again, nothing new for the owner.
    let again = e.receive(now, peer(), &ok);
    assert_eq!(sent(&again), vec![ack.clone()]);
    assert!(events(&again).is_empty());
    // The phone hangs up: its BYE has our tag in To, its own in From.
    let from_tag = invite
        .split("tag=")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let bye = format!(
        "BYE sip:tandem@192.0.2.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {PHONE};branch=z9hG4bKbye1\r\n\
         From: <sip:dave@10.0.0.9:5062>;tag=ph2\r\nTo: \"Tandem\" <sip:tandem@192.0.2.1:5060>;tag={from_tag}\r\n\
         {}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
        invite.lines().find(|l| l.starts_with("Call-ID:")).unwrap()
    );
    let out = e.receive(now, peer(), bye.as_bytes());
    assert!(sent(&out)[0].starts_with("SIP/2.0 200"), "{:?}", sent(&out));
    assert_eq!(
        events(&out),
        vec![CallEvent::Ended {
            leg,
            how: Ended::Bye
        }]
    );
}

#[test]
fn a_busy_or_silent_softphone_ends_the_call_with_its_reason() {
    let mut e = endpoint();
    let now = Instant::now();
    registered(&mut e, now);
    // Busy: acknowledged in the INVITE's transaction (same branch).
    let (leg, invite) = dial(&mut e, now);
    let out = e.receive(now, peer(), &reply_to(&invite, 486, ""));
    let ack = &sent(&out)[0];
    let via = |m: &str| {
        m.lines()
            .find(|l| l.starts_with("Via:"))
            .unwrap()
            .to_string()
    };
    assert!(ack.starts_with("ACK ") && via(ack) == via(&invite), "{ack}");
    assert_eq!(
        events(&out),
        vec![CallEvent::Ended {
            leg,
            how: Ended::Declined(486)
        }]
    );

    // Rings until we give up: CANCEL, whose 200 is taken, then 487 for the INVITE.
    let (leg, invite) = dial(&mut e, now);
    e.receive(now, peer(), &reply_to(&invite, 180, ""));
    let out = e.handle_timeout(now + Duration::from_secs(20));
    let cancel = &sent(&out)[0];
    assert!(
        cancel.starts_with("CANCEL sip:dave@10.0.0.9:5062") && via(cancel) == via(&invite),
        "{cancel}"
    );
    assert!(cancel.contains("CSeq: 1 CANCEL"));
    assert!(
        e.receive(now, peer(), &reply_to(cancel, 200, ""))
            .is_empty()
    );
    let out = e.receive(now, peer(), &reply_to(&invite, 487, ""));
    assert!(sent(&out)[0].starts_with("ACK "));
    assert_eq!(
        events(&out),
        vec![CallEvent::Ended {
            leg,
            how: Ended::NoAnswer
        }]
    );

    // The 200 crosses our CANCEL: acknowledged, hung up, and reported as not answered.
    let (leg, invite) = dial(&mut e, now);
    e.receive(now, peer(), &reply_to(&invite, 180, ""));
    let out = e.handle_timeout(now + Duration::from_secs(20));
    assert!(sent(&out)[0].starts_with("CANCEL "));
    let out = e.receive(now, peer(), &reply_to(&invite, 200, &sdp_offer("sendrecv")));
    let sent_now = sent(&out);
    assert!(
        sent_now[0].starts_with("ACK ") && sent_now[1].starts_with("BYE "),
        "{sent_now:?}"
    );
    assert_eq!(
        events(&out),
        vec![CallEvent::Ended {
            leg,
            how: Ended::NoAnswer
        }]
    );

    // Nothing at all: the INVITE is repeated at 0.5, 1.5, 3.5, 7.5, 15.5 and 31.5 s
    // (timer A doubles without a cap), and given up after 32 s.
    let (leg, invite) = dial(&mut e, now);
    let mut all = Vec::new();
    for ms in (500..=33_000).step_by(500) {
        all.extend(e.handle_timeout(now + Duration::from_millis(ms)));
    }
    assert_eq!(
        sent(&all)
            .iter()
            .filter(|m| m.starts_with("INVITE"))
            .count(),
        6
    );
    assert_eq!(
        events(&all),
        vec![CallEvent::Ended {
            leg,
            how: Ended::Unreachable
        }]
    );
    assert_eq!(e.active_calls(), 0);
    // The phone answers after all (its responses were lost): acknowledged and hung up,
    // and the owner, told already, hears nothing more.
    let late = now + Duration::from_secs(35);
    let out = e.receive(
        late,
        peer(),
        &reply_to(&invite, 200, &sdp_offer("sendrecv")),
    );
    let sent_late = sent(&out);
    assert!(
        sent_late[0].starts_with("ACK ") && sent_late[1].starts_with("BYE "),
        "{sent_late:?}"
    );
    assert!(events(&out).is_empty(), "{out:?}");
    // A late refusal is acknowledged too, and not reported twice.
    let (leg, invite) = dial(&mut e, late);
    let out = e.handle_timeout(late + transaction::TIMEOUT);
    assert_eq!(events(&out).len(), 1);
    let out = e.receive(late, peer(), &reply_to(&invite, 486, ""));
    assert!(sent(&out)[0].starts_with("ACK "));
    assert!(events(&out).is_empty(), "{leg}: {out:?}");
}

#[test]
fn an_account_is_rung_once_at_a_time() {
    let mut e = endpoint();
    let now = Instant::now();
    registered(&mut e, now);
    let (leg, invite) = dial(&mut e, now);
    assert_eq!(
        e.dial(now, dave_dial()).err(),
        Some(DialError::AlreadyRinging)
    );
    // Once it is answered, another ring may start (say, into another session).
    let out = e.receive(now, peer(), &reply_to(&invite, 200, &sdp_offer("sendrecv")));
    assert!(matches!(&events(&out)[..], [CallEvent::Media { leg: l, .. }] if *l == leg));
    dial(&mut e, now);
}

#[test]
fn the_answers_contact_gets_the_ack_and_the_bye() {
    let mut e = endpoint();
    let now = Instant::now();
    registered(&mut e, now);
    let (leg, invite) = dial(&mut e, now);
    let ok = String::from_utf8(reply_to(&invite, 200, &sdp_offer("sendrecv")))
        .unwrap()
        .replace(
            &format!("Contact: <sip:dave@{PHONE}>"),
            "Contact: <sip:dave@10.0.0.9:5070>",
        );
    let out = e.receive(now, peer(), ok.as_bytes());
    let to_contact = Peer::Udp("10.0.0.9:5070".parse().unwrap());
    let [Output::Send(ack), ..] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(ack.peer, to_contact);
    assert!(String::from_utf8_lossy(&ack.bytes).starts_with("ACK sip:dave@10.0.0.9:5070 "));
    let out = e.hangup(now, leg);
    let [Output::Send(bye)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(bye.peer, to_contact);
}

#[test]
fn a_softphone_whose_connection_closed_is_forgotten_and_not_rung() {
    let mut e = endpoint();
    e.set_accounts(accounts());
    let now = Instant::now();
    let tcp = Peer::Tcp(PHONE.parse().unwrap());
    let contact = "<sip:dave@10.0.0.9:5062;transport=tcp>";
    let over_tcp = |m: Vec<u8>| {
        String::from_utf8(m)
            .unwrap()
            .replace("SIP/2.0/UDP", "SIP/2.0/TCP")
            .into_bytes()
    };
    let out = e.receive(
        now,
        tcp,
        &over_tcp(register("t0", 1, "dave", contact, None)),
    );
    let ch = challenges(&sent(&out)[0]).remove(1);
    let auth = answer(&ch, "REGISTER", "sip:192.0.2.1", PASSWORD, 1);
    let out = e.receive(
        now,
        tcp,
        &over_tcp(register("t1", 2, "dave", contact, Some(&auth))),
    );
    assert!(sent(&out)[0].starts_with("SIP/2.0 200"), "{:?}", sent(&out));
    // Rung over its connection, which closes while it rings: given up at once.
    let (leg, _) = dial_via(&mut e, now, tcp);
    let before = e.registrations_version();
    let out = e.connection_lost(now, tcp);
    assert_eq!(
        events(&out),
        vec![CallEvent::Ended {
            leg,
            how: Ended::Unreachable
        }]
    );
    assert_eq!(e.active_calls(), 0);
    // And it is no longer listed or rung.
    assert!(e.registrations(now).is_empty());
    assert_ne!(e.registrations_version(), before, "the change is published");
    assert_eq!(
        e.dial(now, dave_dial()).err(),
        Some(DialError::NotRegistered)
    );
}
