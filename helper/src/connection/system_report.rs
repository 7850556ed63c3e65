//! SPEC M1: reads the computer's system information off the session's loop and sends it to the
//! server over HTTP (`POST /api/sessions/{id}/system-info`, docs/protocol.md): it is larger
//! than a WebSocket frame may be.

use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;

use super::UiUpdate;
use crate::platform::Monitor;

pub async fn send(
    base: reqwest::Url,
    session: String,
    token: String,
    monitors: Arc<dyn Fn() -> Vec<Monitor> + Send + Sync>,
    ui: UnboundedSender<UiUpdate>,
    gathering: Arc<std::sync::atomic::AtomicBool>,
) {
    let gathered = tokio::task::spawn_blocking(move || crate::system_info::gather(&monitors()));
    let notice = match gathered.await {
        Ok(info) => match post(&base, &session, &token, info).await {
            Ok(()) => "this computer's information was sent to the support representative".into(),
            Err(why) => format!("this computer's information was not sent: {why}"),
        },
        Err(e) => format!("this computer's information could not be read: {e}"),
    };
    gathering.store(false, std::sync::atomic::Ordering::Release);
    let _ = ui.send(UiUpdate::Notice(notice));
}

async fn post(
    base: &reqwest::Url,
    session: &str,
    token: &str,
    info: serde_json::Value,
) -> Result<(), String> {
    let url = base
        .join(&format!("/api/sessions/{session}/system-info"))
        .map_err(|e| e.to_string())?;
    let response = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .json(&serde_json::json!({ "info": info }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if response.status().is_success() {
        return Ok(());
    }
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    Err(body["detail"]
        .as_str()
        .map_or_else(|| format!("the server answered {status}"), str::to_owned))
}
