//! REGISTER and digest: challenges, bindings, wrong passwords and guess limits, calls that
//! claim an account.

use super::super::register::AUTH_WINDOW;
use super::*;

pub(super) const PASSWORD: &str = "softphone secret 42";

pub(super) fn accounts() -> Arc<AccountTable> {
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
pub(super) fn register(
    branch: &str,
    cseq: u32,
    aor: &str,
    contact: &str,
    auth: Option<&str>,
) -> Vec<u8> {
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
pub(super) fn challenges(response: &str) -> Vec<String> {
    assert!(response.starts_with("SIP/2.0 401"), "{response}");
    response
        .lines()
        .filter_map(|l| l.strip_prefix("WWW-Authenticate: "))
        .map(str::to_string)
        .collect()
}

pub(super) fn answer(challenge: &str, method: &str, uri: &str, password: &str, nc: u32) -> String {
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
