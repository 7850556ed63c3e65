//! Invitations by e-mail (SPEC S4): a ready mailto: link always, and an SMTP sender when the
//! admin has configured one. What the server sends is bounded per sending account, per
//! recipient and in all within an hour ([`MailLimits`]), so a stolen or careless account cannot
//! use it to flood someone's inbox or get the server's address listed as a spammer.

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use tandem_actors::ids::AccountId;

use crate::config::{MailConfig, MailSecurity};
use crate::problem::Problem;
use crate::throttle::Throttle;

/// The window of the e-mail limits.
const MAIL_WINDOW: Duration = Duration::from_secs(3600);
/// Senders and recipients remembered at most (the oldest are forgotten past this).
const MAIL_KEYS: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid address {0:?}")]
    Address(String),
    #[error("mail server: {0}")]
    Smtp(String),
}

/// A mailto: link that opens the CSR's own mail program with the invitation filled in.
pub fn mailto_link(to: &str, subject: &str, body: &str) -> String {
    format!(
        "mailto:{}?subject={}&body={}",
        urlencoding::encode(to),
        urlencoding::encode(subject),
        urlencoding::encode(body)
    )
}

/// A plausible e-mail address: one @, something either side, no spaces or control characters,
/// at most 254 characters (RFC 5321's path limit).
pub fn looks_like_email(s: &str) -> bool {
    s.len() <= 254
        && s.parse::<Mailbox>().is_ok()
        && s.split('@').count() == 2
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// An e-mail refused for a limit: which one, and when the oldest e-mail counted against it
/// leaves the window.
#[derive(Debug, PartialEq, Eq)]
pub struct TooManyEmails {
    pub limit: &'static str,
    pub retry_after: Duration,
}

impl From<TooManyEmails> for Problem {
    fn from(e: TooManyEmails) -> Self {
        let secs = e.retry_after.as_secs().max(1);
        let whose = match e.limit {
            "sender" => "you have sent",
            "recipient" => "this address has been sent",
            _ => "this server has sent",
        };
        Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_emails",
            format!("{whose} as many e-mails as it may within an hour; try again in {secs} s"),
        )
        .with_retry_after(secs)
    }
}

/// The e-mails sent within the last hour, per sender, per recipient and in all.
pub struct MailLimits(Mutex<[Throttle; 3]>);

impl MailLimits {
    pub fn new(c: &MailConfig) -> Self {
        let t = |max| Throttle::new(max, MAIL_WINDOW, MAIL_KEYS);
        Self(Mutex::new([
            t(c.max_per_sender_per_hour),
            t(c.max_per_recipient_per_hour),
            // One key: never more than one to forget.
            t(c.max_per_hour),
        ]))
    }

    /// Counts one e-mail from `sender` to `to` if no limit is reached; refuses it (counting
    /// nothing) if one is. A failed send still counts: it was tried on the mail server.
    pub fn admit(&self, sender: AccountId, to: &str, now: Instant) -> Result<(), TooManyEmails> {
        let keys = [sender.to_string(), to.trim().to_lowercase(), String::new()];
        let names = ["sender", "recipient", "server"];
        let mut limits = self.0.lock().expect("mail limits lock poisoned");
        for ((limit, key), name) in limits.iter_mut().zip(&keys).zip(names) {
            if let Err(retry_after) = limit.check(key, now) {
                crate::metrics::mail_refused(name);
                return Err(TooManyEmails {
                    limit: name,
                    retry_after,
                });
            }
        }
        for (limit, key) in limits.iter_mut().zip(&keys) {
            limit.fail(key, now);
        }
        Ok(())
    }
}

#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    pub fn new(c: &MailConfig) -> Result<Self, MailError> {
        let from: Mailbox = c
            .from
            .parse()
            .map_err(|_| MailError::Address(c.from.clone()))?;
        let mut builder = match c.security {
            MailSecurity::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&c.smtp_host)
            }
            MailSecurity::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&c.smtp_host)
                    .map_err(|e| MailError::Smtp(e.to_string()))?
            }
            MailSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&c.smtp_host)
                .map_err(|e| MailError::Smtp(e.to_string()))?,
        }
        .port(c.smtp_port);
        if !c.username.is_empty() {
            builder = builder.credentials(Credentials::new(c.username.clone(), c.password.clone()));
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    pub async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), MailError> {
        let to: Mailbox = to.parse().map_err(|_| MailError::Address(to.into()))?;
        let msg = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .body(body.to_string())
            .map_err(|e| MailError::Smtp(e.to_string()))?;
        self.transport
            .send(msg)
            .await
            .map(|_| ())
            .map_err(|e| MailError::Smtp(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailto_links_are_encoded() {
        let l = mailto_link(
            "a@b.example",
            "Join & help",
            "Line 1\nhttps://x/join?invite=a.b",
        );
        assert_eq!(
            l,
            "mailto:a%40b.example?subject=Join%20%26%20help&body=Line%201%0Ahttps%3A%2F%2Fx%2Fjoin%3Finvite%3Da.b"
        );
    }

    fn limits(sender: usize, recipient: usize, all: usize) -> MailLimits {
        let mut c = crate::config::Config::load(None, Vec::new()).unwrap().mail;
        c.max_per_sender_per_hour = sender;
        c.max_per_recipient_per_hour = recipient;
        c.max_per_hour = all;
        MailLimits::new(&c)
    }

    #[test]
    fn mail_is_bounded_per_sender_per_recipient_and_in_all_for_an_hour() {
        let (a, b) = (AccountId::random(), AccountId::random());
        let t0 = Instant::now();
        let l = limits(2, 2, 5);
        assert!(l.admit(a, "x@example.com", t0).is_ok());
        assert!(l.admit(a, "y@example.com", t0).is_ok());
        let e = l.admit(a, "z@example.com", t0).unwrap_err();
        assert_eq!(e.limit, "sender");
        assert_eq!(e.retry_after, MAIL_WINDOW);
        // Another sender may still write, but not a third time to one address, in any case.
        assert!(l.admit(b, "X@Example.com ", t0).is_ok());
        assert_eq!(
            l.admit(b, "x@example.com", t0).unwrap_err().limit,
            "recipient"
        );
        // A refusal counted nothing: b has sent one e-mail.
        assert!(l.admit(b, "w@example.com", t0).is_ok());
        assert!(l.admit(AccountId::random(), "v@example.com", t0).is_ok());
        assert_eq!(
            l.admit(AccountId::random(), "u@example.com", t0)
                .unwrap_err()
                .limit,
            "server"
        );
        // An hour on, everything is allowed again.
        let later = t0 + MAIL_WINDOW;
        assert!(l.admit(a, "x@example.com", later).is_ok());
        let p = Problem::from(TooManyEmails {
            limit: "sender",
            retry_after: Duration::from_millis(1500),
        });
        assert_eq!(
            (p.status.as_u16(), p.code.as_str()),
            (429, "too_many_emails")
        );
        assert_eq!(p.retry_after, Some(1));
    }

    #[test]
    fn email_check() {
        assert!(looks_like_email("dave@example.com"));
        for bad in [
            "",
            "dave",
            "a@@b",
            "a b@c.d",
            "a@b@c",
            &format!("{}@x.y", "a".repeat(260)),
        ] {
            assert!(!looks_like_email(bad), "{bad}");
        }
    }
}
