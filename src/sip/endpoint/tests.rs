use super::register::AUTH_WINDOW;
use super::*;

const PHONE: &str = "10.0.0.9:5062";

fn config() -> EndpointConfig {
    EndpointConfig {
        service_number: "100".into(),
        contact: "192.0.2.1:5060".parse().unwrap(),
        max_calls: 2,
        realm: "tandem.test".into(),
        algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
        require_auth: false,
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

const PASSWORD: &str = "softphone secret 42";

fn accounts() -> Arc<AccountTable> {
    let dave = SipAccount {
        credential: crate::sip::digest::SipCredential::new("dave", "tandem.test", PASSWORD),
        id: tandem_actors::ids::AccountId::random(),
        display_name: "Dave Support".into(),
        email: "dave@example.com".into(),
        is_agent: false,
    };
    Arc::new([("dave".to_string(), dave)].into_iter().collect())
}

/// A REGISTER of `aor` from the phone, with `auth` as its Authorization when given.
fn register(branch: &str, cseq: u32, aor: &str, contact: &str, auth: Option<&str>) -> Vec<u8> {
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!(
        "REGISTER sip:192.0.2.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {PHONE};branch=z9hG4bK{branch}\r\n\
         From: <sip:{aor}@tandem.test>;tag=r1\r\n\
         To: <sip:{aor}@tandem.test>\r\n\
         Call-ID: reg-1@10.0.0.9\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: {contact}\r\n{auth}\
         Expires: 600\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// The challenges of a 401 (each WWW-Authenticate value).
fn challenges(response: &str) -> Vec<String> {
    assert!(response.starts_with("SIP/2.0 401"), "{response}");
    response
        .lines()
        .filter_map(|l| l.strip_prefix("WWW-Authenticate: "))
        .map(str::to_string)
        .collect()
}

fn answer(challenge: &str, method: &str, uri: &str, password: &str, nc: u32) -> String {
    crate::sip::digest::answer(challenge, method, uri, "dave", password, nc, "c0ffee").unwrap()
}

#[test]
fn register_is_challenged_then_bound_with_either_algorithm() {
    let mut e = endpoint();
    e.set_accounts(accounts());
    let now = Instant::now();
    let contact = "<sip:dave@10.0.0.9:5062>";
    let out = e.receive(now, peer(), &register("r1", 1, "dave", contact, None));
    let ch = challenges(&sent(&out)[0]);
    assert_eq!(ch.len(), 2);
    assert!(ch[0].contains("algorithm=SHA-256") && ch[0].contains("realm=\"tandem.test\""));
    assert!(ch[1].contains("algorithm=MD5") && ch[1].contains("qop=\"auth\""));
    assert!(e.registrations(now).is_empty());
    for (i, c) in ch.iter().enumerate() {
        let auth = answer(c, "REGISTER", "sip:192.0.2.1", PASSWORD, 1 + i as u32);
        let out = e.receive(
            now,
            peer(),
            &register(
                &format!("r2{i}"),
                2 + i as u32,
                "dave",
                contact,
                Some(&auth),
            ),
        );
        let ok = &sent(&out)[0];
        assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
        assert!(
            ok.contains("Contact: <sip:dave@10.0.0.9:5062>;expires=600"),
            "{ok}"
        );
    }
    let table = e.registrations(now);
    assert_eq!(table["dave"].len(), 1);
    assert_eq!(table["dave"][0].source, PHONE.parse().unwrap());
    // It expires on its own.
    e.handle_timeout(now + Duration::from_secs(601));
    assert!(e.registrations(now + Duration::from_secs(601)).is_empty());
}

#[test]
fn wrong_credentials_another_aor_and_guessing_are_refused() {
    let mut e = endpoint();
    e.set_accounts(accounts());
    let now = Instant::now();
    let contact = "<sip:dave@10.0.0.9:5062>";
    let out = e.receive(now, peer(), &register("w0", 1, "dave", contact, None));
    let ch = challenges(&sent(&out)[0]).remove(1);
    // Dave's credentials do not register somebody else.
    let auth = answer(&ch, "REGISTER", "sip:192.0.2.1", PASSWORD, 1);
    let out = e.receive(
        now,
        peer(),
        &register("w1", 2, "erin", contact, Some(&auth)),
    );
    assert!(sent(&out)[0].starts_with("SIP/2.0 403"), "{:?}", sent(&out));
    // The same answer again is a replay: asked again (stale), not refused or counted.
    let out = e.receive(
        now,
        peer(),
        &register("w2", 3, "dave", contact, Some(&auth)),
    );
    let again = challenges(&sent(&out)[0]);
    assert!(again[0].ends_with("stale=true"), "{again:?}");
    // Guesses at other accounts from this address: nine, then Dave's right password
    // from it, which does not wipe the address's count...
    for i in 0..9 {
        let bad = crate::sip::digest::answer(
            &ch,
            "REGISTER",
            "sip:192.0.2.1",
            &format!("user{i}"),
            "guess",
            1,
            "c",
        )
        .unwrap();
        let out = e.receive(
            now,
            peer(),
            &register(
                &format!("u{i}"),
                4,
                &format!("user{i}"),
                contact,
                Some(&bad),
            ),
        );
        assert!(sent(&out)[0].starts_with("SIP/2.0 403"), "{:?}", sent(&out));
    }
    let ch =
        challenges(&sent(&e.receive(now, peer(), &register("n0", 5, "dave", contact, None)))[0])
            .remove(1);
    let good = answer(&ch, "REGISTER", "sip:192.0.2.1", PASSWORD, 1);
    let out = e.receive(
        now,
        peer(),
        &register("n1", 6, "dave", contact, Some(&good)),
    );
    assert!(sent(&out)[0].starts_with("SIP/2.0 200"), "{:?}", sent(&out));
    // ...so one more guess is the tenth, and then the address is refused even with the
    // right password.
    let bad = answer(&ch, "REGISTER", "sip:192.0.2.1", "guess", 2);
    let out = e.receive(now, peer(), &register("n2", 7, "dave", contact, Some(&bad)));
    assert!(sent(&out)[0].starts_with("SIP/2.0 403"));
    let good = answer(&ch, "REGISTER", "sip:192.0.2.1", PASSWORD, 3);
    let out = e.receive(
        now,
        peer(),
        &register("n3", 8, "dave", contact, Some(&good)),
    );
    assert!(sent(&out)[0].starts_with("SIP/2.0 403"));
    assert!(sent(&out)[0].contains("Retry-After:"), "{}", sent(&out)[0]);
    // Guesses at Dave from many addresses hold his account back, even from a new one.
    let other = Peer::Udp("10.0.0.10:5062".parse().unwrap());
    let mut e = endpoint();
    e.set_accounts(accounts());
    for i in 0..10u8 {
        let from = Peer::Udp(SocketAddr::from(([203, 0, 113, i], 5060)));
        let out = e.receive(
            now,
            from,
            &register(&format!("m{i}"), 1, "dave", contact, None),
        );
        let ch = challenges(&sent(&out)[0]).remove(1);
        let bad = answer(&ch, "REGISTER", "sip:192.0.2.1", "guess", 1);
        let out = e.receive(
            now,
            from,
            &register(&format!("mm{i}"), 2, "dave", contact, Some(&bad)),
        );
        assert!(sent(&out)[0].starts_with("SIP/2.0 403"));
    }
    let ch =
        challenges(&sent(&e.receive(now, other, &register("o0", 1, "dave", contact, None)))[0])
            .remove(0);
    let auth = answer(&ch, "REGISTER", "sip:192.0.2.1", PASSWORD, 1);
    let out = e.receive(now, other, &register("o1", 2, "dave", contact, Some(&auth)));
    assert!(sent(&out)[0].contains("Retry-After:"), "{:?}", sent(&out));
    assert!(e.registrations(now).is_empty(), "nothing was bound");
    // Once the window has passed, Dave's phone registers.
    let later = now + AUTH_WINDOW;
    let ch =
        challenges(&sent(&e.receive(later, other, &register("o2", 3, "dave", contact, None)))[0])
            .remove(0);
    let auth = answer(&ch, "REGISTER", "sip:192.0.2.1", PASSWORD, 1);
    let out = e.receive(
        later,
        other,
        &register("o3", 4, "dave", contact, Some(&auth)),
    );
    assert!(sent(&out)[0].starts_with("SIP/2.0 200"), "{:?}", sent(&out));
    // A phone that kept a nonce from before a restart is asked again, not refused.
    let mut restarted = endpoint();
    restarted.set_accounts(accounts());
    let auth = answer(&ch, "REGISTER", "sip:192.0.2.1", PASSWORD, 2);
    let out = restarted.receive(
        later,
        other,
        &register("o4", 5, "dave", contact, Some(&auth)),
    );
    assert!(challenges(&sent(&out)[0])[0].ends_with("stale=true"));
    // A new SIP password drops the account's registrations.
    e.set_accounts(Arc::new(AccountTable::new()));
    assert!(e.registrations(now).is_empty());
}

#[test]
fn a_call_that_claims_an_account_must_prove_it_and_joins_as_it() {
    let mut e = endpoint();
    e.set_accounts(accounts());
    let now = Instant::now();
    // The test INVITE's From is sip:dave@...: challenged, and the 401 is acknowledged.
    let invite = request("INVITE", "i1", None, 1, &sdp_offer("sendrecv"));
    let out = e.receive(now, peer(), &invite);
    let ch = challenges(&sent(&out)[0]).remove(1);
    assert!(events(&out).is_empty());
    let ack = request("ACK", "i1", Some(&to_tag(&sent(&out)[0])), 1, "");
    assert!(e.receive(now, peer(), &ack).is_empty());
    assert_eq!(e.active_calls(), 0);
    let auth = answer(&ch, "INVITE", "sip:123456789@192.0.2.1", PASSWORD, 1);
    let invite = String::from_utf8(request("INVITE", "i2", None, 2, &sdp_offer("sendrecv")))
        .unwrap()
        .replace(
            "Max-Forwards: 70\r\n",
            &format!("Max-Forwards: 70\r\nAuthorization: {auth}\r\n"),
        );
    let out = e.receive(now, peer(), invite.as_bytes());
    let [
        CallEvent::Incoming {
            account: Some(a), ..
        },
    ] = &events(&out)[..]
    else {
        panic!("{out:?}")
    };
    assert_eq!(a.display_name, "Dave Support");
}

#[test]
fn require_auth_refuses_anonymous_callers() {
    let mut e = endpoint_with(EndpointConfig {
        require_auth: true,
        ..config()
    });
    let now = Instant::now();
    let invite = String::from_utf8(request("INVITE", "i1", None, 1, &sdp_offer("sendrecv")))
        .unwrap()
        .replace("sip:dave@10.0.0.9", "sip:+15550100@10.0.0.9");
    let out = e.receive(now, peer(), invite.as_bytes());
    assert_eq!(challenges(&sent(&out)[0]).len(), 2);
    assert!(events(&out).is_empty());
    // Without require_auth the same caller is let in as a guest.
    let mut open = endpoint();
    open.set_accounts(accounts());
    let out = open.receive(now, peer(), invite.as_bytes());
    assert!(matches!(
        &events(&out)[..],
        [CallEvent::Incoming { account: None, .. }]
    ));
}

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
