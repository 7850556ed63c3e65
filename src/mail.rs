//! Invitations by e-mail (SPEC S4): a ready mailto: link always, and an SMTP sender when the
//! admin has configured one.

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{MailConfig, MailSecurity};

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
