//! Tandem Helper's way in (issue 16, docs/helper.md "Getting the helper"): the customer's page
//! asks for a pairing code, the helper exchanges the code for its own participant token as that
//! customer's computer, and anyone may download the helper binary the server was built with.
//!
//! The rules of codes are in `tandem_actors::session::rules::pairing`; the tries are counted
//! like session numbers ([`SharedNumbers`]: per address and from everywhere, every try counted
//! before it is looked up).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tandem_actors::protocol::{Activity, Role};
use tandem_actors::session::SessionMsg;
use tandem_actors::session::rules::pairing::{Binding, CODE_SPACE, PairingError, Pairings};
use tandem_actors::session::unix_now;
use tandem_actors::session_registry::SessionHandle;
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

use super::client_address::ClientAddress;
use super::sessions::live_by_id;
use super::{ApiJson, AppState, ParticipantCaller, ask};
use crate::config::HelperConfig;
use crate::problem::Problem;
use crate::throttle::session_numbers::SharedNumbers;

/// Where the helper is downloaded from.
pub const DOWNLOAD_PATH: &str = "/download/tandem-helper";
/// Read size when streaming the binary out.
const CHUNK_BYTES: usize = 64 * 1024;

/// The server's pairing codes, their tries, and the helper binary's digest.
pub struct Helper {
    pairings: Mutex<Pairings>,
    /// M5: rejoin tickets of computers restarting.
    pub rejoins: crate::http::rejoin::Rejoins,
    tries: SharedNumbers,
    /// The binary's SHA-256, by the size and time of the file it was computed from.
    digest: Mutex<Option<(u64, Option<SystemTime>, String)>>,
}

impl Helper {
    pub fn new(config: &HelperConfig) -> Self {
        let ttl_ms = i64::try_from(config.code_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        Self {
            pairings: Mutex::new(Pairings::new(ttl_ms, config.max_codes)),
            rejoins: crate::http::rejoin::Rejoins::new(config.rejoin_ttl_secs),
            tries: SharedNumbers::new(config.wrong_codes_per_address, config.wrong_codes_total),
            digest: Mutex::new(None),
        }
    }

    fn pairings(&self) -> std::sync::MutexGuard<'_, Pairings> {
        // Each call changes the codes in whole steps: still consistent after a panic.
        self.pairings.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn pairing_problem(e: PairingError) -> Problem {
    let status = match e {
        PairingError::Malformed => StatusCode::UNPROCESSABLE_ENTITY,
        PairingError::Unknown => StatusCode::NOT_FOUND,
        PairingError::Expired | PairingError::Used | PairingError::Replaced => StatusCode::GONE,
        PairingError::Full => StatusCode::SERVICE_UNAVAILABLE,
    };
    let p = Problem::new(status, e.code(), e.to_string());
    if e == PairingError::Full {
        p.with_retry_after(60)
    } else {
        p
    }
}

/// `POST /api/helper/codes`: a customer present in a session asks for a pairing code for
/// themself, with their own participant token (`Authorization: Bearer`); so does the primary
/// CSR, for their own computer, to give control of their desktop (SPEC D4). A new code
/// replaces the one before.
pub async fn issue_code(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, Problem> {
    let ParticipantCaller {
        session,
        participant,
        role,
        account,
    } = ParticipantCaller::from_headers(&state, &headers, "a pairing code")?;
    let only_customers = || {
        Problem::new(
            StatusCode::FORBIDDEN,
            "not_a_customer",
            "only a customer in the session, or its primary CSR, can pair Tandem Helper, for themself",
        )
    };
    let staff = role == Role::Csr && account.is_some();
    if !staff && (role != Role::Customer || account.is_some()) {
        return Err(only_customers());
    }
    let handle = live(&state, session).await?;
    let view = ask(&handle.actor, |reply| SessionMsg::View {
        viewer: Some(participant),
        reply,
    })
    .await?;
    let me = view["participants"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["id"] == json!(participant)))
        .ok_or_else(|| {
            Problem::new(
                StatusCode::CONFLICT,
                "not_connected",
                "connect to the session first (your page does this when it opens)",
            )
        })?;
    if !me["computer_of"].is_null() {
        return Err(only_customers());
    }
    // D4: a CSR's computer is the primary's only (an assistant has nothing to give control of).
    if staff && view["primary"] != json!(participant) {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "not_primary",
            "only the primary CSR can pair Tandem Helper to give control of their desktop",
        ));
    }
    let binding = Binding {
        session,
        customer: participant,
    };
    let issued = state
        .helper
        .pairings()
        .issue(unix_now(), binding, || {
            use rand::RngExt;
            rand::rng().random_range(0..CODE_SPACE)
        })
        .map_err(pairing_problem)?;
    let code = issued.code.display();
    let server = state.config.server.public_url.trim_end_matches('/');
    Ok((
        StatusCode::CREATED,
        ApiJson(json!({
            "code": code,
            "expires_at": issued.expires_at,
            "expires_in_secs": state.config.helper.code_ttl_secs,
            "download": DOWNLOAD_PATH,
            "command": format!("tandem-helper join {server} {}", code.replace(' ', "")),
        })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinBody {
    code: String,
    /// What this helper can do of the activities only a helper does (issue 17: system
    /// information, scripts, reboot, signing in as another user); none said, none offered.
    #[serde(default)]
    can: Vec<Activity>,
}

/// `POST /api/helper/join`: Tandem Helper gives the code the customer typed and gets its own
/// participant token, as that customer's computer. Every try counts against the address
/// until it turns out right.
pub async fn join(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    ApiJson(body): ApiJson<JoinBody>,
) -> Result<impl IntoResponse, Problem> {
    let attempt = state.helper.tries.attempt(client).map_err(|refused| {
        crate::metrics::pairing_code_try(refused.label());
        let secs = refused.retry_after_secs();
        Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!("too many wrong pairing codes; try again in {secs} s"),
        )
        .with_retry_after(secs)
    })?;
    let redeemed = state.helper.pairings().redeem(unix_now(), &body.code);
    let binding = redeemed.map_err(|e| {
        crate::metrics::pairing_code_try("wrong");
        pairing_problem(e)
    })?;
    state.helper.tries.right(attempt);
    crate::metrics::pairing_code_try("right");
    let answer =
        super::computer::admit(&state, binding.session, binding.customer, body.can).await?;
    Ok((StatusCode::CREATED, ApiJson(answer)))
}

async fn live(
    state: &AppState,
    session: tandem_actors::ids::SessionId,
) -> Result<SessionHandle, Problem> {
    live_by_id(state, session)
        .await?
        .ok_or_else(|| Problem::new(StatusCode::GONE, "session_ended", "that session has ended"))
}

fn not_built(path: &Path) -> Problem {
    tracing::warn!(path = %path.display(), "no Tandem Helper binary to serve");
    Problem::not_found(
        "helper_not_built",
        "this server has no Tandem Helper to download; ask your support team",
    )
}

/// The helper binary to serve, and its size and time.
async fn binary(state: &AppState) -> Result<(PathBuf, std::fs::Metadata), Problem> {
    let path = state
        .config
        .helper
        .binary_path()
        .ok_or_else(|| not_built(Path::new("tandem-helper")))?;
    match tokio::fs::metadata(&path).await {
        Ok(m) if m.is_file() => Ok((path, m)),
        _ => Err(not_built(&path)),
    }
}

/// The binary's SHA-256 in hex, computed once per version of the file.
async fn sha256(
    state: &AppState,
    path: &Path,
    meta: &std::fs::Metadata,
) -> Result<String, Problem> {
    let key = (meta.len(), meta.modified().ok());
    if let Some((len, modified, hex)) = &*state
        .helper
        .digest
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        && (*len, *modified) == key
    {
        return Ok(hex.clone());
    }
    let path = path.to_path_buf();
    let hex = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        use std::io::Read as _;
        let mut file = std::fs::File::open(path)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0; CHUNK_BYTES];
        loop {
            match file.read(&mut buf)? {
                0 => break,
                n => hasher.update(&buf[..n]),
            }
        }
        Ok(hex::encode(hasher.finalize()))
    })
    .await
    .map_err(Problem::internal)?
    .map_err(Problem::internal)?;
    *state
        .helper
        .digest
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some((key.0, key.1, hex.clone()));
    Ok(hex)
}

/// `GET /api/helper/download`: what the page shows beside the download link.
pub async fn download_info(State(state): State<AppState>) -> Result<ApiJson<Value>, Problem> {
    let (path, meta) = binary(&state).await?;
    let sha256 = sha256(&state, &path, &meta).await?;
    Ok(ApiJson(json!({
        "url": DOWNLOAD_PATH,
        "filename": "tandem-helper",
        "bytes": meta.len(),
        "sha256": sha256,
    })))
}

/// `GET /download/tandem-helper`: the helper binary, to anyone. It holds no secret and is the
/// same for every customer (a customer holding a join has no account to sign in with); only
/// the one configured file is ever served, and the listener's connection limits bound the load.
pub async fn download(State(state): State<AppState>) -> Result<Response, Problem> {
    let (path, meta) = binary(&state).await?;
    let sha256 = sha256(&state, &path, &meta).await?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|_| not_built(&path))?;
    // The length announced is the length sent, even if the file is being replaced.
    let mut res = Response::new(Body::from_stream(ReaderStream::with_capacity(
        file.take(meta.len()),
        CHUNK_BYTES,
    )));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"tandem-helper\""),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.len()));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&sha256) {
        h.insert("x-tandem-sha256", v);
    }
    Ok(res)
}
