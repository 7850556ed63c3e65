//! Short invitation links (issue 18, item 9): a customer is read or sent `…/j/k7m2q9xa4t`
//! instead of a 350-character signed link. The code is 10 random characters of an alphabet
//! without look-alikes (50 bits: not guessable), kept in the store until the invitation it
//! stands for expires. Following it redirects to the long link, whose token is checked as
//! ever; an unknown or expired code lands on the join page, which says so and asks for the
//! session number instead.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::RngExt as _;

use super::AppState;
use crate::problem::Problem;

/// Digits and lower-case letters but i, l, o and u: nothing to misread when typed from a
/// phone call.
const ALPHABET: &[u8] = b"0123456789abcdefghjkmnpqrstvwxyz";
const CODE_CHARS: usize = 10;
pub const PATH: &str = "/j/{code}";

fn new_code() -> String {
    let mut rng = rand::rng();
    (0..CODE_CHARS)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A short link for `link` (one of this server's), valid until `expires_at` (Unix seconds).
/// It leads to the link's path on whatever address it was followed at.
pub async fn make(state: &AppState, link: &str, expires_at: u64) -> Result<String, Problem> {
    let base = state.config.server.public_url.trim_end_matches('/');
    let path = link.strip_prefix(base).unwrap_or(link);
    let code = new_code();
    state
        .store
        .put_short_link(&code, path, expires_at, crate::auth::unix_secs())
        .await?;
    Ok(format!("{base}/j/{code}"))
}

/// `GET /j/{code}`: on to the invitation it stands for.
pub async fn follow(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<Response, Problem> {
    let valid = code.len() == CODE_CHARS && code.bytes().all(|b| ALPHABET.contains(&b));
    let link = if valid {
        state
            .store
            .short_link(&code, crate::auth::unix_secs())
            .await?
    } else {
        None
    };
    let to = link.unwrap_or_else(|| "/join?link=expired".to_string());
    let mut res = StatusCode::SEE_OTHER.into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::LOCATION,
        HeaderValue::from_str(&to).map_err(Problem::internal)?,
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(res)
}
