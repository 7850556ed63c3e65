//! Issue 18: no request leaves the CSR waiting for ever: it can be cancelled, it runs out of
//! time, and a page that cannot do it declines at once, saying why.

use super::*;
use crate::protocol::{DeclineReason, WithdrawCause};
use crate::session::rules::consent_wait::{HELPER_WAIT_MS, QUESTION_WAIT_MS};

fn declined(request: u32, reason: DeclineReason) -> Command {
    Command::ConsentReply {
        request,
        grant: false,
        allow_all: false,
        reason: Some(reason),
    }
}

#[test]
fn a_page_that_cannot_share_declines_at_once_and_says_why() {
    let (mut w, dave) = World::with_customer("Dave");
    let r = w.request(Activity::ViewDesktop);
    let evs = w
        .cmd(dave, declined(r, DeclineReason::CannotShare))
        .unwrap();
    assert_eq!(
        evs,
        [Event::ConsentAnswered {
            request: r,
            granted: false,
            allow_all: false,
            reason: Some(DeclineReason::CannotShare),
        }]
    );
    assert!(w.running().is_empty());
    // A reason never comes with a yes.
    let r = w.request(Activity::ViewDesktop);
    let evs = w
        .cmd(
            dave,
            Command::ConsentReply {
                request: r,
                grant: true,
                allow_all: false,
                reason: Some(DeclineReason::ShareFailed),
            },
        )
        .unwrap();
    assert!(matches!(
        evs[0],
        Event::ConsentAnswered {
            reason: None,
            granted: true,
            ..
        }
    ));
    // The wire form.
    let sent: Command = serde_json::from_value(
        json!({"type": "consent_reply", "request": 4, "grant": false, "reason": "cannot_share"}),
    )
    .unwrap();
    assert!(matches!(
        sent,
        Command::ConsentReply {
            reason: Some(DeclineReason::CannotShare),
            ..
        }
    ));
    assert_eq!(
        serde_json::to_value(Event::ConsentAnswered {
            request: 1,
            granted: false,
            allow_all: false,
            reason: Some(DeclineReason::ShareFailed)
        })
        .unwrap()["reason"],
        "share_failed"
    );
}

#[test]
fn the_csr_who_asked_or_the_primary_cancels_a_request_nobody_else() {
    let (mut w, dave) = World::with_customer("Dave");
    let r = w.request(Activity::ViewDesktop);
    let alex = w.join(Role::Csr, "Alex");
    assert_eq!(
        w.cmd(dave, Command::CancelRequest { request: r }),
        Err("not_staff")
    );
    assert_eq!(
        w.cmd(alex, Command::CancelRequest { request: r }),
        Err("not_primary")
    );
    let evs = w.cmd(w.csr, Command::CancelRequest { request: r }).unwrap();
    assert_eq!(
        evs,
        [Event::ConsentWithdrawn {
            request: r,
            cause: Some(WithdrawCause::Cancelled)
        }]
    );
    // Gone: answering or cancelling it again is refused.
    assert_eq!(
        w.cmd(w.csr, Command::CancelRequest { request: r }),
        Err("unknown_consent_request")
    );
    assert_eq!(
        w.cmd(dave, reply(r, true, false)),
        Err("unknown_consent_request")
    );
    assert_eq!(w.rules.view(None, None)["pending_consents"], json!([]));
    // Asked again, it is a new request.
    assert_ne!(w.request(Activity::ViewDesktop), r);
}

#[test]
fn unanswered_requests_run_out_of_time_and_only_those() {
    let (mut w, dave) = World::with_customer("Dave");
    let asked_at = w.now + 1000;
    let r = w.request(Activity::ViewDesktop);
    assert_eq!(
        w.rules.consent_deadline(),
        Some(asked_at + QUESTION_WAIT_MS)
    );
    assert!(
        w.rules
            .expire_consents(asked_at + QUESTION_WAIT_MS - 1)
            .is_empty()
    );
    let recs = w.rules.expire_consents(asked_at + QUESTION_WAIT_MS);
    assert_eq!(
        recs.iter().map(|r| r.event.clone()).collect::<Vec<_>>(),
        [Event::ConsentWithdrawn {
            request: r,
            cause: Some(WithdrawCause::TimedOut)
        }]
    );
    w.journal.extend(recs);
    assert_eq!(w.rules.consent_deadline(), None);
    assert_eq!(
        w.cmd(dave, reply(r, true, false)),
        Err("unknown_consent_request")
    );
    // Control waits for Tandem Helper longer: it must be downloaded and run first.
    let asked_at = w.now + 1000;
    w.request(Activity::ControlDesktop);
    assert_eq!(w.rules.consent_deadline(), Some(asked_at + HELPER_WAIT_MS));
    assert!(
        w.rules
            .expire_consents(asked_at + QUESTION_WAIT_MS)
            .is_empty()
    );
    // Restored from the journal, the same deadline.
    assert_eq!(w.restored().consent_deadline(), w.rules.consent_deadline());
}
