//! SPEC M4: signing in as another user on the customer's computer goes only from the primary
//! CSR, while `login_as_user` runs with that customer and their helper said it can; names and
//! passwords are checked, attempts limited and one at a time; only the customer's computer
//! answers; and no record ever holds the password.

use super::*;
use crate::protocol::{LoginEnd, LoginFailure, Secret};
use crate::session::rules::login_as_user::{
    LOGIN_ANSWER_WAIT_MS, LOGIN_WINDOW_MS, MAX_LOGINS_PER_WINDOW,
};

const PASSWORD: &str = "hunter2-Секрет";

fn login(user: &str, password: &str) -> Command {
    Command::LoginAsUser {
        user: user.into(),
        password: Secret::new(password),
    }
}

fn result(state: &str, user: &str, code: Option<&str>, reason: Option<&str>) -> Command {
    Command::LoginAsUserResult {
        state: state.into(),
        user: user.into(),
        code: code.map(Into::into),
        reason: reason.map(Into::into),
    }
}

/// Dave with a computer that can sign in as another user, `login_as_user` allowed there.
fn signing_in() -> (World, ParticipantId, ParticipantId) {
    let (mut w, dave) = World::with_customer("Dave");
    let computer = w.attach_able_computer(dave, vec![Activity::LoginAsUser]);
    let r = w.request(Activity::LoginAsUser);
    w.cmd(computer, reply(r, true, false)).unwrap();
    assert!(w.running().contains(&(Activity::LoginAsUser, dave)));
    (w, dave, computer)
}

/// Every record as JSON and as Debug: what the journal, the report and any log could show.
fn written(journal: &[Record]) -> String {
    journal
        .iter()
        .map(|r| format!("{}\n{r:?}\n", serde_json::to_string(r).unwrap()))
        .collect()
}

#[test]
fn only_the_primary_signs_in_on_the_selected_customer_while_it_runs_with_a_helper_that_can() {
    // Nobody to sign in for.
    let mut w = World::new();
    assert_eq!(
        w.cmd(w.csr, login("bob", PASSWORD)),
        Err("no_customer_selected")
    );
    // Without Dave's yes (and without a helper that can, request_activity says so first).
    let (mut w, dave) = World::with_customer("Dave");
    assert_eq!(
        w.cmd(w.csr, ask_for(Activity::LoginAsUser)),
        Err("helper_required")
    );
    assert_eq!(
        w.cmd(w.csr, login("bob", PASSWORD)),
        Err("activity_not_running")
    );
    let computer = w.attach_able_computer(dave, vec![Activity::LoginAsUser]);
    let r = w.request(Activity::LoginAsUser);
    assert_eq!(
        w.cmd(w.csr, login("bob", PASSWORD)),
        Err("activity_not_running")
    );
    w.cmd(computer, reply(r, true, false)).unwrap();
    // Not an assistant, not the customer, not their computer.
    let alex = w.join(Role::Csr, "alex");
    for who in [alex, dave, computer] {
        assert_eq!(w.cmd(who, login("bob", PASSWORD)), Err("not_primary"));
    }
    // Running for Dave, but another customer is selected now.
    let erin = w.join(Role::Customer, "erin");
    w.cmd(w.csr, select(erin)).unwrap();
    assert!(w.running().contains(&(Activity::LoginAsUser, dave)));
    assert_eq!(
        w.cmd(w.csr, login("bob", PASSWORD)),
        Err("activity_not_running")
    );
    w.cmd(w.csr, select(dave)).unwrap();
    let events = w.cmd(w.csr, login("bob", PASSWORD)).unwrap();
    assert_eq!(
        events,
        vec![Event::LoginAsUserAttempted {
            customer: dave,
            computer,
            by: w.csr,
            user: "bob".into()
        }]
    );
    // Staff and Dave see the attempt; other customers and the computer do not (the computer
    // gets its own frame from the session actor, with the password).
    assert_eq!(events[0].audience(), Audience::StaffAnd(vec![dave]));
    assert_eq!(events[0].kind(), "login_as_user_attempted");
}

#[test]
fn without_a_helper_that_can_it_is_helper_required_even_if_the_journal_says_it_runs() {
    // Unreachable through commands (what needs a helper stops when it leaves), but the rule
    // itself checks: a journal from elsewhere must not make the server send a password to a
    // computer that never said it can.
    let (mut w, dave) = World::with_customer("Dave");
    w.attach_computer(dave);
    let mut journal = w.journal.clone();
    journal.push(Record {
        seq: journal.len() as u64,
        at: w.now,
        event: started(Activity::LoginAsUser, dave, false),
    });
    let mut rules = SessionRules::restore(w.rules.init().clone(), &journal);
    let refused = rules.handle(w.now + 1, w.csr, login("bob", PASSWORD));
    assert_eq!(refused.map_err(|r| r.code()), Err("helper_required"));
}

#[test]
fn user_names_and_passwords_are_checked() {
    let (mut w, _dave, computer) = signing_in();
    let long_name = "a".repeat(33);
    for user in [
        "",
        "-bob",
        "bo b",
        "bób",
        "bob/x",
        "bob\n",
        "$(id)",
        long_name.as_str(),
    ] {
        assert_eq!(
            w.cmd(w.csr, login(user, PASSWORD)),
            Err("bad_login"),
            "{user:?}"
        );
    }
    let long_password = "p".repeat(257);
    for password in ["", "a\0b", long_password.as_str()] {
        assert_eq!(w.cmd(w.csr, login("bob", password)), Err("bad_login"));
    }
    // The edges that pass; each answered so the next may go.
    let widest = "x".repeat(32);
    let longest = "é".repeat(128); // 256 bytes
    for (user, password) in [
        ("bob", PASSWORD),
        ("a.b_c-d", "p"),
        ("_svc", longest.as_str()),
        (".x9", "p q"),
        (widest.as_str(), "p"),
    ] {
        w.cmd(w.csr, login(user, password))
            .unwrap_or_else(|e| panic!("{user:?}: {e}"));
        w.cmd(computer, result("failed", user, Some("auth_failed"), None))
            .unwrap();
    }
}

#[test]
fn one_attempt_waits_for_its_answer_at_a_time() {
    let (mut w, dave, computer) = signing_in();
    w.cmd(w.csr, login("bob", PASSWORD)).unwrap();
    assert!(w.rules.login_pending(dave, w.now));
    assert_eq!(w.cmd(w.csr, login("bob", "other")), Err("login_pending"));
    // The answer frees it; so does a failure.
    let failed = w
        .cmd(computer, result("failed", "bob", Some("auth_failed"), None))
        .unwrap();
    assert_eq!(
        failed,
        vec![Event::LoginAsUserFailed {
            customer: dave,
            computer,
            user: "bob".into(),
            code: LoginFailure::AuthFailed
        }]
    );
    assert!(!w.rules.login_pending(dave, w.now));
    w.cmd(w.csr, login("bob", PASSWORD)).unwrap();
    let started = w
        .cmd(computer, result("started", "bob", None, None))
        .unwrap();
    assert_eq!(
        started,
        vec![Event::LoginAsUserStarted {
            customer: dave,
            computer,
            user: "bob".into()
        }]
    );
    w.cmd(w.csr, login("carl", PASSWORD)).unwrap();
    // A computer that never answers holds the next attempt back only for a while.
    assert_eq!(w.cmd(w.csr, login("carl", PASSWORD)), Err("login_pending"));
    w.now += LOGIN_ANSWER_WAIT_MS;
    w.cmd(w.csr, login("carl", PASSWORD)).unwrap();
    // What waits survives a restart (the journal has it).
    assert!(w.restored().login_pending(dave, w.now));
    // Stopping login_as_user leaves nothing waiting.
    w.cmd(w.csr, stop(Activity::LoginAsUser)).unwrap();
    assert!(!w.rules.login_pending(dave, w.now));
}

#[test]
fn at_most_five_attempts_a_minute_per_customer() {
    let (mut w, dave, computer) = signing_in();
    let first = w.now + 1000;
    for _ in 0..MAX_LOGINS_PER_WINDOW {
        w.cmd(w.csr, login("bob", PASSWORD)).unwrap();
        w.cmd(computer, result("failed", "bob", Some("auth_failed"), None))
            .unwrap();
    }
    let refused = w.rules.handle(w.now, w.csr, login("bob", PASSWORD));
    let Err(Refusal::TooManyLogins(secs)) = refused else {
        panic!("{refused:?}")
    };
    // The oldest attempt leaves the window first.
    let wait = LOGIN_WINDOW_MS - (w.now - first);
    assert_eq!(secs, u64::try_from(wait).unwrap().div_ceil(1000));
    assert_eq!(
        Refusal::TooManyLogins(secs).code(),
        "too_many_logins",
        "{}",
        Refusal::TooManyLogins(secs)
    );
    // Stopping and asking again does not reset it; the restored session counts the same.
    w.cmd(w.csr, stop(Activity::LoginAsUser)).unwrap();
    let r = w.request(Activity::LoginAsUser);
    w.cmd(computer, reply(r, true, false)).unwrap();
    let refused = w.restored().handle(w.now, w.csr, login("bob", PASSWORD));
    assert!(
        matches!(refused, Err(Refusal::TooManyLogins(_))),
        "{refused:?}"
    );
    // Another customer's computer has its own count.
    let erin = w.join(Role::Customer, "Erin");
    let erins = w.attach_able_computer(erin, vec![Activity::LoginAsUser]);
    w.cmd(w.csr, select(erin)).unwrap();
    let r = w.request(Activity::LoginAsUser);
    w.cmd(erins, reply(r, true, false)).unwrap();
    w.cmd(w.csr, login("bob", PASSWORD)).unwrap();
    // A minute after the first, Dave's computer takes one again (selecting Erin did not stop
    // it there: S6 stops sharing only).
    w.cmd(w.csr, select(dave)).unwrap();
    assert!(w.running().contains(&(Activity::LoginAsUser, dave)));
    let refused = w
        .rules
        .handle(first + LOGIN_WINDOW_MS - 1, w.csr, login("bob", PASSWORD));
    assert_eq!(refused.map_err(|r| r.code()), Err("too_many_logins"));
    w.now = first + LOGIN_WINDOW_MS - 1000;
    w.cmd(w.csr, login("bob", PASSWORD)).unwrap();
}

#[test]
fn only_a_customers_computer_answers_and_only_in_known_words() {
    let (mut w, dave, computer) = signing_in();
    w.cmd(w.csr, login("bob", PASSWORD)).unwrap();
    let alex = w.join(Role::Csr, "alex");
    for who in [w.csr, alex, dave] {
        assert_eq!(
            w.cmd(who, result("started", "bob", None, None)),
            Err("not_a_computer")
        );
    }
    for bad in [
        result("logged_in", "bob", None, None),
        result("failed", "bob", Some("wrong_password"), None),
        result("ended", "bob", None, Some("crashed")),
        result("started", "bob x", None, None),
        result("started", "", None, None),
    ] {
        assert_eq!(w.cmd(computer, bad.clone()), Err("bad_login"), "{bad:?}");
    }
    assert!(w.rules.login_pending(dave, w.now));
    // Without a code or a reason: the plain one.
    let failed = w
        .cmd(computer, result("failed", "bob", None, None))
        .unwrap();
    assert!(matches!(
        failed[..],
        [Event::LoginAsUserFailed {
            code: LoginFailure::Failed,
            ..
        }]
    ));
    for (code, want) in [
        ("not_allowed", LoginFailure::NotAllowed),
        ("busy", LoginFailure::Busy),
    ] {
        let got = w
            .cmd(computer, result("failed", "bob", Some(code), None))
            .unwrap();
        assert!(
            matches!(&got[..], [Event::LoginAsUserFailed { code: c, .. }] if *c == want),
            "{got:?}"
        );
    }
    w.cmd(computer, result("started", "bob", None, None))
        .unwrap();
    let ended = w
        .cmd(computer, result("ended", "bob", None, Some("logged_out")))
        .unwrap();
    assert_eq!(
        ended,
        vec![Event::LoginAsUserEnded {
            customer: dave,
            computer,
            user: "bob".into(),
            reason: LoginEnd::LoggedOut
        }]
    );
    // Staff and Dave see how it went, as with F2's answers; kinds as documented.
    for e in [&failed[0], &ended[0]] {
        assert_eq!(e.audience(), Audience::StaffAnd(vec![dave]));
    }
    assert_eq!(failed[0].kind(), "login_as_user_failed");
    assert_eq!(ended[0].kind(), "login_as_user_ended");
    // The CSR's own computer (D4) is no customer's: it answers nothing of this.
    let (mut w, _dave) = World::with_customer("Dave");
    let mine = w.attach_computer(w.csr);
    assert_eq!(
        w.cmd(mine, result("started", "bob", None, None)),
        Err("not_a_computer")
    );
}

#[test]
fn the_view_says_who_the_csr_is_signed_in_as_until_it_ends_or_stops() {
    let (mut w, dave, computer) = signing_in();
    let erin = w.join(Role::Customer, "Erin");
    w.cmd(w.csr, login("bob", PASSWORD)).unwrap();
    assert_eq!(w.rules.view(None, None)["signed_in_as"], json!({}));
    w.cmd(computer, result("started", "bob", None, None))
        .unwrap();
    assert_eq!(w.rules.signed_in_as(dave), Some("bob"));
    let mine = json!({ dave.to_string(): "bob" });
    assert_eq!(w.rules.view(None, None)["signed_in_as"], mine);
    assert_eq!(
        w.rules.view(Some(Role::Customer), Some(dave))["signed_in_as"],
        mine
    );
    assert_eq!(
        w.rules.view(Some(Role::Customer), Some(erin))["signed_in_as"],
        json!({})
    );
    assert_eq!(w.restored().view(None, None), w.rules.view(None, None));
    // The user signed out there.
    w.cmd(computer, result("ended", "bob", None, Some("logged_out")))
        .unwrap();
    assert_eq!(w.rules.signed_in_as(dave), None);
    // Signed in again, then the CSR signs out (stops the activity): the helper ends that
    // session itself and says so afterwards, which is still taken.
    w.cmd(w.csr, login("bob", PASSWORD)).unwrap();
    w.cmd(computer, result("started", "bob", None, None))
        .unwrap();
    let events = w.cmd(w.csr, stop(Activity::LoginAsUser)).unwrap();
    assert_eq!(
        events,
        vec![stopped(Activity::LoginAsUser, dave, StopCause::Stopped)]
    );
    assert_eq!(w.rules.signed_in_as(dave), None);
    w.cmd(computer, result("ended", "bob", None, Some("ended")))
        .unwrap();
    // A late "started" after the stop names nobody as signed in.
    w.cmd(computer, result("started", "bob", None, None))
        .unwrap();
    assert_eq!(w.rules.signed_in_as(dave), None);
    assert_eq!(w.restored().view(None, None), w.rules.view(None, None));
    // The computer leaving stops it too.
    let r = w.request(Activity::LoginAsUser);
    w.cmd(computer, reply(r, true, false)).unwrap();
    w.cmd(w.csr, login("bob", PASSWORD)).unwrap();
    w.cmd(computer, result("started", "bob", None, None))
        .unwrap();
    let left = w.cmd(computer, Command::Leave).unwrap();
    assert!(left.contains(&stopped(
        Activity::LoginAsUser,
        dave,
        StopCause::ComputerLeft
    )));
    assert_eq!(w.rules.signed_in_as(dave), None);
    assert_eq!(
        w.cmd(w.csr, login("bob", PASSWORD)),
        Err("activity_not_running")
    );
}

#[test]
fn the_password_is_in_no_record_refusal_or_debug_output() {
    let (mut w, dave, computer) = signing_in();
    // Refused attempts, with the password in them.
    let _ = w.cmd(w.csr, login("bad name", PASSWORD));
    let _ = w.cmd(dave, login("bob", PASSWORD));
    let with_nul = format!("{PASSWORD}\0");
    let refused = w
        .rules
        .handle(w.now, w.csr, login("bob", &with_nul))
        .unwrap_err();
    assert!(!refused.to_string().contains(PASSWORD), "{refused}");
    // Accepted ones, answered every way.
    w.cmd(w.csr, login("bob", PASSWORD)).unwrap();
    w.cmd(computer, result("failed", "bob", Some("auth_failed"), None))
        .unwrap();
    w.cmd(w.csr, login("bob", PASSWORD)).unwrap();
    let _ = w.cmd(w.csr, login("bob", PASSWORD)); // login_pending
    w.cmd(computer, result("started", "bob", None, None))
        .unwrap();
    w.cmd(computer, result("ended", "bob", None, Some("logged_out")))
        .unwrap();
    w.cmd(w.csr, end(true, Some("signed in as bob"))).unwrap();
    let all = written(&w.journal);
    assert!(all.contains("login_as_user_attempted"), "{all}");
    assert!(all.contains("\"user\":\"bob\""));
    assert!(!all.contains(PASSWORD), "the password is in the journal");
    assert!(!all.contains("hunter2"));
    // What the session shows anyone, restored or not.
    for rules in [&w.rules, &w.restored()] {
        let view = rules.view(None, None).to_string();
        assert!(!view.contains("hunter2"), "{view}");
    }
    // Debug (what a log or a panic message would print) hides it, in the command and the
    // secret alone; the frame to the computer alone writes it out.
    let cmd = login("bob", PASSWORD);
    let shown = format!("{cmd:?}");
    assert!(
        shown.contains("<hidden>") && !shown.contains("hunter2"),
        "{shown}"
    );
    let frame = crate::protocol::ServerMsg::LoginAsUser {
        user: "bob".into(),
        password: Secret::new(PASSWORD),
        by: w.csr,
    };
    assert!(!format!("{frame:?}").contains("hunter2"));
    let json = serde_json::to_value(&frame).unwrap();
    assert_eq!(
        json,
        json!({"type": "login_as_user", "user": "bob", "password": PASSWORD, "by": w.csr})
    );
}

#[test]
fn the_frames_read_as_documented() {
    let frame: crate::protocol::ClientFrame = serde_json::from_value(json!(
        {"type": "login_as_user", "user": "bob", "password": "secret", "ref": 7}
    ))
    .unwrap();
    assert_eq!(frame.reference, Some(7));
    assert_eq!(frame.command, login("bob", "secret"));
    let answer: Command = serde_json::from_value(json!(
        {"type": "login_as_user_result", "state": "failed", "user": "bob", "code": "busy", "reason": null}
    ))
    .unwrap();
    assert_eq!(answer, result("failed", "bob", Some("busy"), None));
    let answer: Command = serde_json::from_value(json!(
        {"type": "login_as_user_result", "state": "started", "user": "bob"}
    ))
    .unwrap();
    assert_eq!(answer, result("started", "bob", None, None));
    // A password that is not a string is refused without being quoted back.
    let err = serde_json::from_value::<crate::protocol::ClientFrame>(json!(
        {"type": "login_as_user", "user": "bob", "password": 918273645}
    ))
    .unwrap_err()
    .to_string();
    assert!(!err.contains("918273645"), "{err}");
    // The events as the report and the consoles read them.
    let (mut w, dave, computer) = signing_in();
    w.cmd(w.csr, login("bob", PASSWORD)).unwrap();
    let failed = w
        .cmd(computer, result("failed", "bob", Some("not_allowed"), None))
        .unwrap();
    assert_eq!(
        serde_json::to_value(&failed[0]).unwrap(),
        json!({"type": "login_as_user_failed", "customer": dave, "computer": computer,
               "user": "bob", "code": "not_allowed"})
    );
}

#[test]
fn while_signed_in_the_media_plane_passes_that_display_and_the_primarys_control() {
    let (mut w, dave, computer) = signing_in();
    // Allowed, but nobody signed in yet: Dave's desktop is neither shown nor controlled.
    let policy = w.rules.media_policy();
    assert!(!policy.screens.contains(&dave));
    assert_eq!(policy.control, None);
    w.cmd(w.csr, login("bob", PASSWORD)).unwrap();
    w.cmd(computer, result("started", "bob", None, None))
        .unwrap();
    let policy = w.rules.media_policy();
    assert!(policy.screens.contains(&dave));
    assert_eq!(policy.control, Some((w.csr, dave)));
    // Signed out: nothing of Dave's computer passes any more.
    w.cmd(computer, result("ended", "bob", None, Some("logged_out")))
        .unwrap();
    let policy = w.rules.media_policy();
    assert!(!policy.screens.contains(&dave));
    assert_eq!(policy.control, None);
}
