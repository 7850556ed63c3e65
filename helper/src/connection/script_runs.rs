//! SPEC M3: the shell of a run the customer allowed. For each script in order: fetch its files
//! from the server, run it only if its SHA-256 is the one the customer was shown
//! ([`crate::script_runner`]), and report how it ended. A script changed on the server after
//! the customer's yes is not run, and the report says why.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::Digest as _;
use tokio::sync::mpsc::UnboundedSender;

use super::UiUpdate;
use crate::script_runner::{Limits, ScriptFiles, run};
use crate::session::ScriptItem;

/// `TANDEM_HELPER_SCRIPT_SECS`: the time limit of one script (default 10 minutes).
pub const TIME_LIMIT_ENV: &str = "TANDEM_HELPER_SCRIPT_SECS";
const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(600);
/// Largest answer taken for one script's files.
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;
/// Output kept per script (the server takes at most 64 KiB).
const OUTPUT_BYTES: usize = 64 * 1024;

pub fn limits() -> Limits {
    let time = std::env::var(TIME_LIMIT_ENV)
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .unwrap_or(DEFAULT_TIME_LIMIT);
    Limits {
        time,
        output: OUTPUT_BYTES,
    }
}

/// Where the server keeps script `index` of run `request`.
fn url(
    base: &reqwest::Url,
    session: &str,
    request: u64,
    index: usize,
) -> Result<reqwest::Url, String> {
    base.join(&format!(
        "/api/sessions/{session}/script-runs/{request}/{index}"
    ))
    .map_err(|e| e.to_string())
}

fn hex_sha256(bytes: &[u8]) -> String {
    crate::file_ops::hex(&sha2::Sha256::digest(bytes))
}

fn decoded(v: &Value) -> Result<(String, Vec<u8>), String> {
    let name = v["name"].as_str().ok_or("no file name")?.to_owned();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(v["content_base64"].as_str().unwrap_or_default())
        .map_err(|e| e.to_string())?;
    Ok((name, bytes))
}

/// The files of script `index`, if they are what the customer allowed; else why not.
async fn fetch(
    http: &reqwest::Client,
    target: reqwest::Url,
    token: &str,
    allowed: &ScriptItem,
) -> Result<Result<ScriptFiles, String>, String> {
    let mut res = http
        .get(target)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = res.status();
    // Two files of 1 MiB in base64 and their names: more is not a script the server keeps.
    let mut raw = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| e.to_string())? {
        raw.extend_from_slice(&chunk);
        if raw.len() > MAX_ANSWER_BYTES {
            return Ok(Err("the server sent more than a script can be".to_owned()));
        }
    }
    let body: Value = serde_json::from_slice(&raw).map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Ok(Err(body["detail"].as_str().map_or_else(
            || format!("the server answered {status}"),
            str::to_owned,
        )));
    }
    let (name, bytes) = decoded(&body["file"])?;
    let changed = || {
        Ok(Err(
            "its content changed after you allowed it, so it was not run".to_owned(),
        ))
    };
    if hex_sha256(&bytes) != allowed.sha256 {
        return changed();
    }
    let input = if body["input"].is_null() {
        None
    } else {
        Some(decoded(&body["input"])?)
    };
    // The input is part of what was allowed: there must be one exactly when one was shown.
    let input_digest = input.as_ref().map(|(_, b)| hex_sha256(b));
    if input_digest != allowed.input_sha256 {
        return changed();
    }
    Ok(Ok(ScriptFiles { name, bytes, input }))
}

pub async fn run_all(
    base: reqwest::Url,
    session: String,
    token: String,
    request: u64,
    scripts: Vec<ScriptItem>,
    ui: UnboundedSender<UiUpdate>,
    cancel: Arc<AtomicBool>,
) {
    let http = reqwest::Client::new();
    let limits = limits();
    let total = scripts.len();
    for (index, allowed) in scripts.iter().enumerate() {
        if cancel.load(Ordering::Relaxed) {
            let _ = ui.send(UiUpdate::Notice("the scripts were stopped".into()));
            return;
        }
        let say = |n: String| {
            let _ = ui.send(UiUpdate::Notice(n));
        };
        let Ok(target) = url(&base, &session, request, index) else {
            return;
        };
        say(format!(
            "running the script {} ({} of {total})",
            allowed.name,
            index + 1
        ));
        let outcome = match fetch(&http, target.clone(), &token, allowed).await {
            Ok(Ok(files)) => {
                let cancel = cancel.clone();
                match tokio::task::spawn_blocking(move || run(&files, limits, &cancel)).await {
                    Ok(Ok(ran)) => json!({
                        "exit_code": ran.exit_code, "timed_out": ran.timed_out,
                        "output": ran.output, "truncated": ran.truncated,
                        "duration_ms": ran.duration_ms,
                    }),
                    Ok(Err(e)) => json!({"refused": format!("it could not be started: {e}")}),
                    Err(e) => json!({"refused": format!("it could not be started: {e}")}),
                }
            }
            Ok(Err(why)) => json!({ "refused": why }),
            Err(e) => {
                say(format!(
                    "the script {} could not be fetched: {e}",
                    allowed.name
                ));
                json!({"refused": format!("it could not be fetched: {e}")})
            }
        };
        let sent = http
            .post(target)
            .bearer_auth(&token)
            .json(&outcome)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => say(format!(
                "the script {} ended; its log went to the support representative",
                allowed.name
            )),
            Ok(r) => {
                say(format!(
                    "the script {}'s log was refused: {}",
                    allowed.name,
                    r.status()
                ));
                return;
            }
            Err(e) => {
                say(format!(
                    "the script {}'s log was not sent: {e}",
                    allowed.name
                ));
                return;
            }
        }
    }
}
