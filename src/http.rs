//! The HTTP side of the server: the API's routes (one module per resource), its shared state
//! and who is calling; the participant WebSocket ([`ws`]) and the consoles' files ([`web`]).

pub mod accounts;
pub mod admin;
pub mod client_address;
pub mod computer;
pub mod computer_files;
pub mod dashboard_feed;
pub mod files;
pub mod helper;
pub mod queues;
pub mod recordings;
pub mod rejoin;
pub mod script_runs;
pub mod scripts;
pub mod sessions;
pub mod short_links;
pub mod softphone;
pub mod system_info;
pub mod upload_body;
pub mod web;
pub mod ws;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use tandem_actors::root::Directory;

use crate::auth::{Signer, Token};
use crate::config::Config;
use crate::mail::Mailer;
use crate::problem::Problem;
use crate::store::{AccountRole, Store, User};
use crate::throttle::Throttle;

/// Largest JSON body the API reads.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

pub struct Inner {
    pub config: Config,
    pub store: Store,
    pub signer: Signer,
    pub directory: Directory,
    pub mailer: Option<Mailer>,
    /// How far the MP4 exports under way are (SPEC R4).
    pub exports: crate::exporter::Exports,
    /// SIP passwords in use and softphone registrations (SPEC V5).
    pub sip_accounts: crate::sip::accounts::SipAccounts,
    pub metrics: PrometheusHandle,
    /// Bounds the memory and CPU that password checks take.
    pub hashing: crate::hashing::PasswordHashing,
    /// Failed password checks per account and address (sign-in waits after too many).
    pub login_throttle: Mutex<Throttle>,
    /// Failed password checks per account from anywhere (sign-in is slowed, never locked).
    pub account_failures: Mutex<Throttle>,
    /// Session numbers tried, over HTTP and SIP alike (src/throttle/session_numbers.rs).
    pub session_numbers: crate::throttle::session_numbers::SharedNumbers,
    /// Whose forwarded client address is believed ([`client_address`]).
    pub trusted_proxies: client_address::TrustedProxies,
    /// Closes an account's open WebSockets when it is disabled or signed out everywhere.
    pub revocations: crate::auth::Revocations,
    /// Bounds the e-mail the server sends (`[mail]` limits).
    pub mail_limits: crate::mail::MailLimits,
    /// Tandem Helper's pairing codes and download ([`helper`]).
    pub helper: helper::Helper,
    /// The room the uploads under way have reserved in their accounts' quotas.
    pub upload_room: recordings::upload::quota::UploadRoom,
    /// Files published to customers (SPEC F1).
    pub shared_files: Arc<crate::shared_files::SharedFiles>,
    /// Batches on their way to and from customers' computers (SPEC F2).
    pub file_batches: Arc<crate::file_batches::FileBatches>,
    /// The dashboards' live streams open now (issue 18).
    pub feeds: dashboard_feed::Feeds,
    /// Sign-in tokens signed out one by one (issue 18).
    pub signed_out: crate::signed_out::SignedOut,
}

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// A JSON body whose every rejection is a problem document.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(Problem))]
pub struct ApiJson<T>(pub T);

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// A signed-in account, from `Authorization: Bearer <token>`.
pub struct Caller(pub User);

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// Who calls with a participant token (`Authorization: Bearer`), as a page or a helper in a
/// session does; `what` says, in a refusal, what needs one.
pub struct ParticipantCaller {
    pub session: tandem_actors::ids::SessionId,
    pub participant: tandem_actors::ids::ParticipantId,
    pub role: tandem_actors::protocol::Role,
    pub account: Option<crate::auth::Holder>,
}

impl ParticipantCaller {
    pub fn from_headers(
        state: &AppState,
        headers: &HeaderMap,
        what: &str,
    ) -> Result<Self, Problem> {
        let token = bearer(headers).ok_or_else(|| {
            Problem::unauthorized(
                "unauthenticated",
                "send your participant token as Authorization: Bearer <token>",
            )
        })?;
        let Token::Participant {
            session,
            participant,
            role,
            account,
        } = state.signer.verify(token)?
        else {
            return Err(Problem::unauthorized(
                "wrong_token_kind",
                format!("{what} needs a participant token"),
            ));
        };
        Ok(Self {
            session,
            participant,
            role,
            account,
        })
    }
}

impl ParticipantCaller {
    /// [`ParticipantCaller::from_headers`] for the session in the path: a staff token's account
    /// must still hold it (not disabled, not signed out everywhere).
    pub async fn in_session(
        state: &AppState,
        headers: &HeaderMap,
        path_session: &str,
        what: &str,
    ) -> Result<Self, Problem> {
        let caller = Self::from_headers(state, headers, what)?;
        if let Some(holder) = caller.account {
            let user = state
                .store
                .user_by_id(holder.account)
                .await?
                .ok_or_else(|| {
                    Problem::unauthorized("invalid_token", "the account no longer exists")
                })?;
            crate::auth::check_holder(&user, holder.generation)?;
        }
        if sessions::parse_session_id(path_session)? != caller.session {
            return Err(Problem::forbidden("your token is for another session"));
        }
        Ok(caller)
    }
}

impl Caller {
    pub async fn from_headers(state: &AppState, headers: &HeaderMap) -> Result<Self, Problem> {
        let token = bearer(headers).ok_or_else(|| {
            Problem::unauthorized(
                "unauthenticated",
                "sign in and send Authorization: Bearer <token>",
            )
        })?;
        let Token::Access {
            account,
            generation,
            ..
        } = state.signer.verify(token)?
        else {
            return Err(Problem::unauthorized(
                "wrong_token_kind",
                "this is not a sign-in token",
            ));
        };
        if state.signed_out.contains(token) {
            return Err(Problem::unauthorized(
                "signed_out",
                "this sign-in was signed out; sign in again",
            ));
        }
        // The account is read afresh so a deleted account or a changed role takes effect at once.
        let user = state.store.user_by_id(account).await?.ok_or_else(|| {
            Problem::unauthorized("invalid_token", "the account no longer exists")
        })?;
        crate::auth::check_holder(&user, generation)?;
        Ok(Caller(user))
    }

    pub fn require(&self, roles: &[AccountRole]) -> Result<&User, Problem> {
        if roles.contains(&self.0.role) {
            Ok(&self.0)
        } else {
            Err(Problem::forbidden(format!(
                "this needs the role {}",
                roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )))
        }
    }

    pub fn is_admin(&self) -> bool {
        self.0.role == AccountRole::Admin
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        Caller::from_headers(state, &parts.headers).await
    }
}

/// A name people give a thing (`what`: "recording", "script"...): trimmed, 1 to `max`
/// characters, without control characters; else 422 `invalid_name`.
pub fn checked_name<'a>(raw: &'a str, what: &str, max: usize) -> Result<&'a str, Problem> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > max || name.chars().any(char::is_control) {
        return Err(Problem::unprocessable(
            "invalid_name",
            format!("{what} names are 1 to {max} characters, without control characters"),
        ));
    }
    Ok(name)
}

/// Staff who support customers: CSRs and agents.
pub const SUPPORT_ROLES: &[AccountRole] = &[AccountRole::Csr, AccountRole::Agent];

pub fn router(state: AppState) -> Router {
    let api =
        Router::new()
            .route("/login", post(accounts::login))
            .route("/me", get(accounts::me))
            .route("/logout", post(accounts::logout))
            .route("/users", get(accounts::list).post(accounts::create))
            .route("/users/{id}", axum::routing::patch(accounts::update))
            .route("/users/{id}/revoke", post(accounts::revoke))
            .route(
                "/users/{id}/sip",
                get(softphone::get)
                    .put(softphone::put)
                    .delete(softphone::delete),
            )
            .route(
                "/settings",
                get(admin::get_settings).put(admin::put_settings),
            )
            .route("/sessions", get(sessions::list).post(sessions::create))
            .route("/sessions/{id}", get(sessions::get))
            .route("/sessions/{id}/report", get(sessions::report))
            .route("/sessions/{id}/invites", post(sessions::invite))
            .route("/sessions/{id}/softphone", post(softphone::call))
            .route("/sessions/{id}/files", post(files::publish))
            .route("/sessions/{id}/files/{file}", get(files::download))
            .route(
                "/sessions/{id}/computer-files",
                post(computer_files::request),
            )
            .route(
                "/sessions/{id}/computer-files/{op}",
                get(computer_files::progress)
                    .post(computer_files::done)
                    .layer(axum::extract::DefaultBodyLimit::max(
                        computer_files::MAX_RESULT_BYTES,
                    )),
            )
            .route(
                "/sessions/{id}/file-batches",
                post(computer_files::create).layer(axum::extract::DefaultBodyLimit::max(
                    computer_files::MAX_MANIFEST_BYTES,
                )),
            )
            .route(
                "/sessions/{id}/file-batches/{batch}",
                get(computer_files::status).delete(computer_files::remove),
            )
            .route(
                "/sessions/{id}/file-batches/{batch}/progress",
                get(computer_files::batch_progress),
            )
            .route(
                "/sessions/{id}/file-batches/{batch}/{index}",
                get(computer_files::download).put(computer_files::upload),
            )
            .route(
                "/sessions/{id}/system-info",
                post(system_info::provide)
                    .layer(axum::extract::DefaultBodyLimit::max(system_info::MAX_BYTES)),
            )
            .route("/join", post(sessions::join))
            .route("/assist", post(sessions::assist))
            .route("/helper/codes", post(helper::issue_code))
            .route("/helper/join", post(helper::join))
            .route("/helper/rejoin", post(rejoin::rejoin))
            .route("/sessions/{id}/rejoin-ticket", post(rejoin::ticket))
            .route("/helper/download", get(helper::download_info))
            .route("/sessions/{id}/script-runs", post(script_runs::propose))
            .route(
                "/sessions/{id}/script-runs/{request}/{index}",
                get(script_runs::fetch).post(script_runs::finished),
            )
            .route(
                "/scripts",
                get(scripts::list).post(scripts::create).layer(
                    axum::extract::DefaultBodyLimit::max(scripts::MAX_BODY_BYTES),
                ),
            )
            .route(
                "/scripts/{id}",
                get(scripts::get)
                    .patch(scripts::update)
                    .delete(scripts::delete)
                    .layer(axum::extract::DefaultBodyLimit::max(
                        scripts::MAX_BODY_BYTES,
                    )),
            )
            .route(
                "/script-categories",
                get(scripts::categories).post(scripts::create_category),
            )
            .route(
                "/script-categories/{id}",
                axum::routing::patch(scripts::rename_category).delete(scripts::delete_category),
            )
            .route("/queues", get(queues::list).post(queues::create))
            .route("/queues/{id}/next", post(queues::take_next))
            .route("/transfers", get(queues::offers))
            .route("/feed", get(dashboard_feed::feed))
            .route("/transfers/{session}/accept", post(queues::accept))
            .route(
                "/recordings",
                get(recordings::list).post(recordings::upload),
            )
            .route(
                "/recordings/{id}",
                get(recordings::get)
                    .patch(recordings::update)
                    .delete(recordings::delete),
            )
            .route("/recordings/{id}/links", post(recordings::link))
            .route("/recordings/{id}/email", post(recordings::email))
            .route("/recordings/{id}/mp4", get(recordings::mp4))
            .route("/recordings/{id}/download", get(recordings::download))
            .route("/recordings/{id}/arf", get(recordings::arf));
    Router::new()
        .merge(web::routes())
        .nest("/api", api)
        .route("/ws", get(ws::upgrade))
        .route(short_links::PATH, get(short_links::follow))
        .route(helper::DOWNLOAD_PATH, get(helper::download))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { Problem::not_found("not_found", "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method",
            )
        })
        .layer(axum::middleware::from_fn(nosniff))
        .layer(axum::middleware::from_fn(crate::metrics::track_http))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn metrics(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, Problem> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    metrics_access(&state.config.server.metrics_token, peer.ip(), authorization)?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    ))
}

/// Who may read `/metrics`: with a token configured, whoever sends it as a bearer token;
/// without one, only this machine. The figures name no person, but they show how busy the
/// service is and which calls fail, which is not for anyone on the network.
fn metrics_access(
    token: &str,
    peer: std::net::IpAddr,
    authorization: Option<&str>,
) -> Result<(), Problem> {
    use subtle::ConstantTimeEq;
    if token.is_empty() {
        return if peer.to_canonical().is_loopback() {
            Ok(())
        } else {
            Err(Problem::new(
                StatusCode::FORBIDDEN,
                "metrics_local_only",
                "metrics are served to this machine only; set server.metrics_token to scrape from elsewhere",
            ))
        };
    }
    let given = authorization
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
        Ok(())
    } else {
        Err(Problem::unauthorized(
            "metrics_token_required",
            "send the metrics token as Authorization: Bearer",
        ))
    }
}

/// Counts a failure of `key` (a wrong password, an unknown number) for [`check_throttle`].
pub fn record_failure(throttle: &Mutex<Throttle>, key: &str) {
    throttle
        .lock()
        .expect("throttle lock poisoned")
        .fail(key, std::time::Instant::now());
}

/// Refuses with 429 while `key` has failed too often (`what` names the failures for people).
pub fn check_throttle(throttle: &Mutex<Throttle>, key: &str, what: &str) -> Result<(), Problem> {
    let verdict = throttle
        .lock()
        .expect("throttle lock poisoned")
        .check(key, std::time::Instant::now());
    verdict.map_err(|wait| {
        Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!("too many {what}; try again in {} s", wait.as_secs().max(1)),
        )
    })
}

/// Every answer says its type is the one it names (`X-Content-Type-Options: nosniff`), so no
/// browser reads an API document, a problem or a recording as a script or a page.
async fn nosniff(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut res = next.run(req).await;
    res.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        axum::http::HeaderValue::from_static("nosniff"),
    );
    res
}

/// An optional e-mail address from a request: blank means none; anything else must look like
/// an address.
pub fn optional_email(raw: Option<&str>) -> Result<Option<&str>, Problem> {
    let email = raw.map(str::trim).filter(|e| !e.is_empty());
    match email {
        Some(e) if !crate::mail::looks_like_email(e) => Err(Problem::unprocessable(
            "invalid_email",
            "that is not an e-mail address",
        )),
        _ => Ok(email),
    }
}

/// How long an HTTP handler waits for an actor to answer.
pub const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Asks an actor and waits for the answer, turning silence into a 503 problem.
pub async fn ask<M: ractor::Message, T: Send + 'static>(
    actor: &ractor::ActorRef<M>,
    msg: impl FnOnce(ractor::RpcReplyPort<T>) -> M,
) -> Result<T, Problem> {
    match actor.call(msg, Some(CALL_TIMEOUT)).await {
        Ok(ractor::rpc::CallResult::Success(v)) => Ok(v),
        _ => Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the server is busy with this session; try again",
        )),
    }
}

#[cfg(test)]
mod metrics_access_tests {
    use super::metrics_access;

    #[test]
    fn without_a_token_only_this_machine_reads_metrics() {
        for local in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            assert!(
                metrics_access("", local.parse().unwrap(), None).is_ok(),
                "{local}"
            );
        }
        for remote in ["192.0.2.7", "2001:db8::1", "::ffff:192.0.2.7"] {
            let e = metrics_access("", remote.parse().unwrap(), Some("Bearer x")).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.code.as_str()),
                (403, "metrics_local_only")
            );
        }
    }

    #[test]
    fn with_a_token_anyone_with_it_reads_metrics_and_nobody_without() {
        let token = "0123456789abcdef-scrape";
        let remote = "192.0.2.7".parse().unwrap();
        let local = "127.0.0.1".parse().unwrap();
        assert!(metrics_access(token, remote, Some(&format!("Bearer {token}"))).is_ok());
        for wrong in [None, Some("Bearer nope"), Some(token), Some("Basic abc")] {
            for peer in [remote, local] {
                let e = metrics_access(token, peer, wrong).unwrap_err();
                assert_eq!(
                    (e.status.as_u16(), e.code.as_str()),
                    (401, "metrics_token_required")
                );
            }
        }
    }
}
