//! The endpoint as phones see it, with fabricated time and bytes: calls made to Tandem here,
//! REGISTER and digest in [`register`], ringing softphones in [`dialing`].

use super::*;

mod dialing;
mod register;

const PHONE: &str = "10.0.0.9:5062";

fn config() -> EndpointConfig {
    EndpointConfig {
        service_number: "100".into(),
        contact: "192.0.2.1:5060".parse().unwrap(),
        max_calls: 2,
        realm: "tandem.test".into(),
        algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
        require_auth: false,
        max_transactions: 100,
    }
}

fn endpoint_with(config: EndpointConfig) -> Endpoint {
    Endpoint::new(config, Instant::now(), SystemTime::now())
}

fn endpoint() -> Endpoint {
    endpoint_with(config())
}

fn peer() -> Peer {
    Peer::Udp(PHONE.parse().unwrap())
}

fn sdp_offer(direction: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\n\
         m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na={direction}\r\n"
    )
}

fn request(method: &str, branch: &str, to_tag: Option<&str>, cseq: u32, body: &str) -> Vec<u8> {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let ctype = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\r\n".into()
    };
    format!(
        "{method} sip:123456789@192.0.2.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {PHONE};branch=z9hG4bK{branch}\r\n\
         From: \"Dave\" <sip:dave@10.0.0.9>;tag=ph1\r\n\
         To: <sip:123456789@192.0.2.1>{to_tag}\r\n\
         Call-ID: call-1@10.0.0.9\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:dave@{PHONE}>\r\n\
         Max-Forwards: 70\r\n{ctype}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn sent(out: &[Output]) -> Vec<String> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(s) => Some(String::from_utf8_lossy(&s.bytes).into_owned()),
            _ => None,
        })
        .collect()
}

fn events(out: &[Output]) -> Vec<CallEvent> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn to_tag(response: &str) -> String {
    let to = response.lines().find(|l| l.starts_with("To:")).unwrap();
    to.split("tag=").nth(1).unwrap().trim().to_string()
}

/// An INVITE answered: the call's leg and our tag.
fn answered(e: &mut Endpoint, now: Instant) -> (LegId, String) {
    let out = e.receive(
        now,
        peer(),
        &request("INVITE", "i1", None, 1, &sdp_offer("sendrecv")),
    );
    assert!(sent(&out)[0].starts_with("SIP/2.0 100 Trying"));
    let [
        CallEvent::Incoming {
            leg,
            target,
            caller,
            account: None,
            offer,
            ..
        },
    ] = &events(&out)[..]
    else {
        panic!("{out:?}")
    };
    assert_eq!(*target, Target::Session("123456789".into()));
    assert_eq!(caller, "Dave");
    assert_eq!(
        offer.as_ref().unwrap().codec,
        tandem_media::voice_codec::VoiceCodec::Pcmu
    );
    let ok = sent(&e.answer(now, *leg, "192.0.2.1:7000".parse().unwrap()));
    assert!(ok[0].starts_with("SIP/2.0 200 OK"), "{}", ok[0]);
    assert!(ok[0].contains("m=audio 7000 RTP/AVP 0 101"), "{}", ok[0]);
    (*leg, to_tag(&ok[0]))
}

#[test]
fn a_call_is_answered_acknowledged_and_hung_up_by_the_phone() {
    let mut e = endpoint();
    let now = Instant::now();
    let (leg, tag) = answered(&mut e, now);
    // The 200 is repeated until the ACK...
    let again = sent(&e.handle_timeout(now + Duration::from_millis(600)));
    assert!(
        again.iter().any(|m| m.starts_with("SIP/2.0 200")),
        "{again:?}"
    );
    // ...and not after it.
    e.receive(now, peer(), &request("ACK", "a1", Some(&tag), 1, ""));
    assert!(sent(&e.handle_timeout(now + Duration::from_secs(3))).is_empty());
    assert_eq!(e.active_calls(), 1);
    let out = e.receive(now, peer(), &request("BYE", "b1", Some(&tag), 2, ""));
    assert!(sent(&out)[0].starts_with("SIP/2.0 200"));
    assert_eq!(
        events(&out),
        vec![CallEvent::Ended {
            leg,
            how: Ended::Bye
        }]
    );
    assert_eq!(e.active_calls(), 0);
    // A retransmitted BYE gets the same answer, and no second event.
    let out = e.receive(now, peer(), &request("BYE", "b1", Some(&tag), 2, ""));
    assert!(sent(&out)[0].starts_with("SIP/2.0 200"));
    assert!(events(&out).is_empty());
}

#[test]
fn media_is_confirmed_by_the_ack_and_stays_so() {
    let mut e = endpoint();
    let now = Instant::now();
    let out = e.receive(
        now,
        peer(),
        &request("INVITE", "i1", None, 1, &sdp_offer("sendrecv")),
    );
    let [CallEvent::Incoming { leg, offer, .. }] = &events(&out)[..] else {
        panic!("{out:?}")
    };
    let (leg, offer) = (*leg, offer.clone().unwrap());
    // Not yet: anyone can send an INVITE naming anyone's address.
    assert!(!offer.confirmed);
    assert_eq!(offer.signalling, Some("10.0.0.9".parse().unwrap()));
    let ok = sent(&e.answer(now, leg, "192.0.2.1:7000".parse().unwrap()));
    let tag = to_tag(&ok[0]);
    // Only the ACK, which needs our tag from the 200, confirms the dialog.
    let out = e.receive(now, peer(), &request("ACK", "a1", Some(&tag), 1, ""));
    assert_eq!(
        events(&out),
        vec![CallEvent::Media {
            leg,
            media: Negotiated {
                confirmed: true,
                ..offer
            }
        }]
    );
    // An ACK again changes nothing; a re-INVITE's media is of the confirmed dialog.
    let out = e.receive(now, peer(), &request("ACK", "a1", Some(&tag), 1, ""));
    assert!(events(&out).is_empty());
    let out = e.receive(
        now,
        peer(),
        &request("INVITE", "r1", Some(&tag), 2, &sdp_offer("sendrecv")),
    );
    let [CallEvent::Media { media, .. }] = &events(&out)[..] else {
        panic!("{out:?}")
    };
    assert!(media.confirmed);
    let out = e.receive(now, peer(), &request("ACK", "a2", Some(&tag), 2, ""));
    assert!(events(&out).is_empty(), "{out:?}");
}

#[test]
fn cancel_while_ringing_ends_the_invite_with_487() {
    let mut e = endpoint();
    let now = Instant::now();
    let out = e.receive(
        now,
        peer(),
        &request("INVITE", "i1", None, 1, &sdp_offer("sendrecv")),
    );
    let [CallEvent::Incoming { leg, .. }] = &events(&out)[..] else {
        panic!()
    };
    assert!(sent(&e.ring(now, *leg))[0].starts_with("SIP/2.0 180 Ringing"));
    let out = e.receive(now, peer(), &request("CANCEL", "i1", None, 1, ""));
    let s = sent(&out);
    assert!(
        s[0].starts_with("SIP/2.0 200") && s[0].contains("CANCEL"),
        "{s:?}"
    );
    assert!(s[1].starts_with("SIP/2.0 487"), "{s:?}");
    assert_eq!(
        events(&out),
        vec![CallEvent::Ended {
            leg: *leg,
            how: Ended::Cancelled
        }]
    );
    // Answering now does nothing.
    assert!(
        e.answer(now, *leg, "192.0.2.1:7000".parse().unwrap())
            .is_empty()
    );
    // A CANCEL for nothing: 481.
    let out = e.receive(now, peer(), &request("CANCEL", "zz", None, 1, ""));
    assert!(sent(&out)[0].starts_with("SIP/2.0 481"));
}

#[test]
fn a_reinvite_puts_the_call_on_hold_and_back() {
    let mut e = endpoint();
    let now = Instant::now();
    let (leg, tag) = answered(&mut e, now);
    e.receive(now, peer(), &request("ACK", "a1", Some(&tag), 1, ""));
    let out = e.receive(
        now,
        peer(),
        &request("INVITE", "r1", Some(&tag), 2, &sdp_offer("sendonly")),
    );
    let s = sent(&out);
    assert!(
        s[0].starts_with("SIP/2.0 200") && s[0].contains("a=recvonly"),
        "{s:?}"
    );
    let [CallEvent::Media { leg: l, media }] = &events(&out)[..] else {
        panic!("{out:?}")
    };
    assert_eq!(*l, leg);
    assert!(!media.send && media.receive);
    e.receive(now, peer(), &request("ACK", "a2", Some(&tag), 2, ""));
    let out = e.receive(
        now,
        peer(),
        &request("INVITE", "r2", Some(&tag), 3, &sdp_offer("sendrecv")),
    );
    let [CallEvent::Media { media, .. }] = &events(&out)[..] else {
        panic!()
    };
    assert!(media.send && media.receive);
}

#[test]
fn an_invite_without_offer_gets_ours_and_the_ack_answers_it() {
    let mut e = endpoint();
    let now = Instant::now();
    let out = e.receive(now, peer(), &request("INVITE", "i1", None, 1, ""));
    let [
        CallEvent::Incoming {
            leg, offer: None, ..
        },
    ] = &events(&out)[..]
    else {
        panic!("{out:?}")
    };
    let ok = sent(&e.answer(now, *leg, "192.0.2.1:7000".parse().unwrap()));
    assert!(
        ok[0].contains("m=audio 7000 RTP/AVP 96 9 0 8 101 102"),
        "{}",
        ok[0]
    );
    let tag = to_tag(&ok[0]);
    let out = e.receive(
        now,
        peer(),
        &request("ACK", "a1", Some(&tag), 1, &sdp_offer("sendrecv")),
    );
    let [CallEvent::Media { leg: l, media }] = &events(&out)[..] else {
        panic!("{out:?}")
    };
    assert_eq!(l, leg);
    assert_eq!(media.remote, "10.0.0.9:4000".parse().unwrap());
    assert_eq!(media.dtmf_payload_type, Some(101));
    assert!(media.confirmed, "the ACK confirms the dialog it answers in");
    // Acknowledged: the 200 is not repeated.
    assert!(sent(&e.handle_timeout(now + Duration::from_secs(2))).is_empty());
}

#[test]
fn an_unanswered_200_ends_the_call_with_bye() {
    let mut e = endpoint();
    let now = Instant::now();
    let (leg, _) = answered(&mut e, now);
    let mut all = Vec::new();
    for s in 1..=33 {
        all.extend(e.handle_timeout(now + Duration::from_secs(s)));
    }
    assert!(events(&all).contains(&CallEvent::Ended {
        leg,
        how: Ended::NoAck
    }));
    assert!(
        sent(&all).iter().any(|m| m.starts_with("BYE sip:dave@")),
        "{:?}",
        sent(&all)
    );
}

#[test]
fn out_of_dialog_requests_and_limits() {
    let mut e = endpoint();
    let now = Instant::now();
    let out = e.receive(now, peer(), &request("OPTIONS", "o1", None, 1, ""));
    assert!(sent(&out)[0].starts_with("SIP/2.0 200"));
    let out = e.receive(now, peer(), &request("BYE", "b9", Some("nope"), 1, ""));
    assert!(sent(&out)[0].starts_with("SIP/2.0 481"));
    let out = e.receive(now, peer(), &request("MESSAGE", "m1", None, 1, ""));
    assert!(sent(&out)[0].starts_with("SIP/2.0 405"));
    // An offer with nothing we can play: 488.
    let g729 = sdp_offer("sendrecv").replace("RTP/AVP 0 101", "RTP/AVP 18");
    let out = e.receive(now, peer(), &request("INVITE", "i7", None, 1, &g729));
    assert!(sent(&out)[0].starts_with("SIP/2.0 488"), "{:?}", sent(&out));
    // Past max_calls: 503.
    for i in 0..2 {
        let call = String::from_utf8(request("INVITE", &format!("c{i}"), None, 1, ""))
            .unwrap()
            .replace("call-1@", &format!("call-x{i}@"));
        e.receive(now, peer(), call.as_bytes());
    }
    let third = String::from_utf8(request("INVITE", "c9", None, 1, ""))
        .unwrap()
        .replace("call-1@", "call-x9@");
    let out = e.receive(now, peer(), third.as_bytes());
    assert!(sent(&out)[0].starts_with("SIP/2.0 503"), "{:?}", sent(&out));
}

#[test]
fn past_max_transactions_a_new_request_gets_503_and_a_call_keeps_its_connection() {
    let mut e = endpoint_with(EndpointConfig {
        max_transactions: 2,
        ..config()
    });
    let now = Instant::now();
    let (_, tag) = answered(&mut e, now);
    assert!(e.in_call(peer()));
    assert!(!e.in_call(Peer::Tcp(PHONE.parse().unwrap())));
    let out = e.receive(now, peer(), &request("OPTIONS", "o1", None, 1, ""));
    assert!(sent(&out)[0].starts_with("SIP/2.0 200"));
    // The INVITE's and the OPTIONS' transactions are open: the next request is refused.
    let out = e.receive(now, peer(), &request("OPTIONS", "o2", None, 2, ""));
    let refused = &sent(&out)[0];
    assert!(refused.starts_with("SIP/2.0 503"), "{refused}");
    assert!(refused.contains("Retry-After: 5"), "{refused}");
    assert!(e.take_tallies().contains(&Tally::TransactionsFull));
    // Its retransmission is refused again: nothing was kept.
    let out = e.receive(now, peer(), &request("OPTIONS", "o2", None, 2, ""));
    assert!(sent(&out)[0].starts_with("SIP/2.0 503"));
    // The call's ACK still gets through, and once the OPTIONS' transaction ends there is room.
    e.receive(now, peer(), &request("ACK", "a1", Some(&tag), 1, ""));
    e.handle_timeout(now + transaction::TIMEOUT);
    let later = now + transaction::TIMEOUT;
    let out = e.receive(later, peer(), &request("OPTIONS", "o3", None, 3, ""));
    assert!(sent(&out)[0].starts_with("SIP/2.0 200"), "{:?}", sent(&out));
    // The phone hangs up: the call no longer holds its connection.
    e.receive(later, peer(), &request("BYE", "b1", Some(&tag), 2, ""));
    assert!(!e.in_call(peer()));
}
