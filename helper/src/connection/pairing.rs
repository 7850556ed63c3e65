//! `POST /api/helper/join`: the pairing code for a participant token (docs/protocol.md, "Tandem
//! Helper: pairing and joining"). The server's problem codes become sentences a customer can act
//! on (docs/helper.md lists them with what to do).

use serde::Deserialize;

use super::JoinError;

/// What the server's join answer gives the helper.
#[derive(Debug, Clone)]
pub struct Paired {
    pub token: String,
    /// The computer's participant id.
    pub me: String,
    /// The customer it belongs to.
    pub customer: String,
    /// "Dave's computer".
    pub name: String,
    /// The session's id, for what is sent over HTTP (system information).
    pub session: String,
    /// M5: after a restart, the customer's token, to open their page again as them.
    pub customer_token: Option<String>,
}

#[derive(Deserialize)]
struct Answer {
    token: String,
    participant: Participant,
    /// A server from before system information said no session here; what needs it then
    /// fails with the server's refusal, not the pairing.
    #[serde(default)]
    session: Option<SessionRef>,
    #[serde(default)]
    customer_token: Option<String>,
}

#[derive(Deserialize)]
struct SessionRef {
    id: String,
}

/// What this helper can do of what only a helper does (issue 17): the server offers the CSR
/// these, and refuses the others with `helper_required`.
pub const ABILITIES: &[&str] = &["system_info", "run_script", "reboot", "file_transfer"];

/// What this helper can do here: [`ABILITIES`], and M4's `login_as_user` where the sign-in
/// service listens (the server then refuses it with `helper_required` elsewhere).
pub fn abilities() -> Vec<&'static str> {
    let mut can = ABILITIES.to_vec();
    if crate::logon::client::available(&crate::logon::client::socket()) {
        can.push("login_as_user");
    }
    can
}

#[derive(Deserialize)]
struct Participant {
    id: String,
    name: String,
    computer_of: String,
}

#[derive(Deserialize, Default)]
struct Problem {
    #[serde(default)]
    code: String,
    #[serde(default)]
    detail: String,
}

/// The server's base address: `https://host[:port]` (a scheme is added when missing; `http://`
/// only when typed, for a server on this network).
pub fn base_url(server: &str) -> Result<reqwest::Url, JoinError> {
    let with_scheme = if server.contains("://") {
        server.to_owned()
    } else {
        format!("https://{server}")
    };
    let url = reqwest::Url::parse(&with_scheme)
        .map_err(|e| JoinError::BadServer(format!("{server}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(JoinError::BadServer(format!(
            "{server}: give the server's address, such as https://support.example.com"
        )));
    }
    Ok(url)
}

/// How the helper gets into a session: the customer's pairing code, or (M5) the ticket it
/// kept when the computer restarted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Code(String),
    Rejoin(String),
}

/// Pairs with `code`, as typed (spaces and dashes are allowed; the server checks it).
pub async fn pair(base: &reqwest::Url, code: &str) -> Result<Paired, JoinError> {
    redeem(base, &Credential::Code(code.to_owned())).await
}

/// How long a rejoin waits for the server to be reachable after the restart.
const REJOIN_PATIENCE: std::time::Duration = std::time::Duration::from_secs(300);

/// Pairs with a code or comes back with a rejoin ticket. A rejoin tries again while the server
/// cannot be reached (the network comes up after the desktop), and forgets its ticket once the
/// server answered.
pub async fn redeem(base: &reqwest::Url, credential: &Credential) -> Result<Paired, JoinError> {
    if let Credential::Rejoin(_) = credential {
        let deadline = std::time::Instant::now() + REJOIN_PATIENCE;
        loop {
            match redeem_once(base, credential).await {
                Err(JoinError::Unreachable(_)) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                }
                result => {
                    super::restart::forget();
                    return result;
                }
            }
        }
    }
    redeem_once(base, credential).await
}

async fn redeem_once(base: &reqwest::Url, credential: &Credential) -> Result<Paired, JoinError> {
    let (path, body) = match credential {
        Credential::Code(code) => (
            "/api/helper/join",
            serde_json::json!({ "code": code, "can": abilities() }),
        ),
        Credential::Rejoin(ticket) => (
            "/api/helper/rejoin",
            serde_json::json!({ "ticket": ticket, "can": abilities() }),
        ),
    };
    let url = base
        .join(path)
        .map_err(|e| JoinError::BadServer(e.to_string()))?;
    let response = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .map_err(|e| JoinError::Unreachable(e.to_string()))?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = response
        .bytes()
        .await
        .map_err(|e| JoinError::Unreachable(e.to_string()))?;
    if status.is_success() {
        let a: Answer = serde_json::from_slice(&body)
            .map_err(|e| JoinError::BadAnswer(format!("the join answer: {e}")))?;
        return Ok(Paired {
            token: a.token,
            me: a.participant.id,
            customer: a.participant.computer_of,
            name: a.participant.name,
            session: a.session.map(|s| s.id).unwrap_or_default(),
            customer_token: a.customer_token,
        });
    }
    let problem: Problem = serde_json::from_slice(&body).unwrap_or_default();
    Err(JoinError::Refused {
        code: problem.code.clone(),
        words: refusal_words(&problem.code, &problem.detail, retry_after),
    })
}

/// What a refused pairing means for the customer.
pub fn refusal_words(code: &str, detail: &str, retry_after: Option<u64>) -> String {
    match code {
        "pairing_code_malformed" => "the code is not right: it has 8 digits; type it again from the page".into(),
        "pairing_code_unknown" => "the code is not right; type it again from the page".into(),
        "pairing_code_expired" => "the code has expired; ask for a new code on the page".into(),
        "pairing_code_used" => "the code was used already; use the code the page shows now".into(),
        "pairing_code_replaced" => "a newer code replaced this one; use the code the page shows now".into(),
        "customer_left" => "the customer this code was for has left the session".into(),
        "session_ended" => "the session has ended".into(),
        "computer_attached" => "this customer's computer is already connected; close the other helper, then ask for a new code".into(),
        "too_many_attempts" => match retry_after {
            Some(s) => format!("too many wrong codes; try again in {s} s"),
            None => "too many wrong codes; try again in a minute".into(),
        },
        _ if detail.is_empty() => format!("the server refused the code ({code})"),
        _ => format!("the server refused the code: {detail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pairing_refusal_reads_as_what_to_do() {
        assert!(refusal_words("pairing_code_expired", "", None).contains("new code"));
        assert!(refusal_words("pairing_code_used", "", None).contains("used already"));
        assert_eq!(
            refusal_words("too_many_attempts", "", Some(42)),
            "too many wrong codes; try again in 42 s"
        );
        assert!(refusal_words("teapot", "I am one", None).contains("I am one"));
    }

    #[test]
    fn the_server_address_gets_https_unless_told_otherwise() {
        assert_eq!(
            base_url("support.example.com").unwrap().as_str(),
            "https://support.example.com/"
        );
        assert_eq!(
            base_url("http://127.0.0.1:8080").unwrap().as_str(),
            "http://127.0.0.1:8080/"
        );
        assert!(base_url("ftp://x").is_err());
        assert!(base_url("https://").is_err());
    }
}
