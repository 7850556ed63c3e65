//! The customer's side of `join` in the helper's window (src/window.rs): the pairing code typed
//! there when the command line gave none (and the server's address when it named no server
//! either: the helper opened with no arguments), a refused try said in words with the entries
//! still there, then the session in the window; closing the window is Stop and leaving.
//!
//! GTK runs on the calling (main) thread; the connection runs on a thread of its own with a
//! single-threaded tokio runtime. They talk only through the window's two channels.

use tokio::sync::mpsc::unbounded_channel;

use super::{JoinError, Platform, UiEvent, UiUpdate, pairing};
use crate::status::{Connection, State, View};
use crate::window;

/// Shows the window, pairs (with `code`, or the code the customer types; at `server`, or the
/// server the customer types), runs the session, and returns when the window is closed and the
/// connection is over: why it ended, in words.
pub fn run(
    server: Option<&str>,
    code: Option<pairing::Credential>,
    platform: Platform,
) -> Result<String, JoinError> {
    let base = server.map(pairing::base_url).transpose()?;
    let (views_tx, views_rx) = async_channel::unbounded();
    let (events_tx, events_rx) = async_channel::unbounded();
    let core = std::thread::Builder::new()
        .name("session".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| JoinError::Connection(e.to_string()))?;
            let result = runtime.block_on(session(base, code, platform, &views_tx, events_rx));
            let reason = match &result {
                Ok(reason) => reason.clone(),
                Err(e) => e.to_string(),
            };
            // Why it ended stays in the window, with Close (the window stays until closed).
            show(&views_tx, Connection::Ended { reason });
            result
        })
        .map_err(|e| JoinError::Connection(e.to_string()))?;
    window::run(views_rx, events_tx);
    core.join()
        .unwrap_or_else(|_| Err(JoinError::Connection("the session thread failed".into())))
}

fn show(views: &async_channel::Sender<View>, connection: Connection) {
    let view = View::of(State {
        connection: &connection,
        csrs: &[],
        consent: &crate::consent::Consent::new(),
        controlling: None,
        picking: crate::status::Picking::No,
        clipboard: None,
        given: None,
        signed_in_as: None,
    });
    let _ = views.try_send(view);
}

async fn session(
    given: Option<reqwest::Url>,
    mut code: Option<pairing::Credential>,
    platform: Platform,
    views: &async_channel::Sender<View>,
    events: async_channel::Receiver<window::UiEvent>,
) -> Result<String, JoinError> {
    let named = given.as_ref().map(host);
    let closed = || Ok("you closed Tandem Helper".to_owned());
    let mut refused: Option<String> = None;
    let (base, paired) = loop {
        // The server and code to try: the command line's, or what the customer types.
        let (base, typed) = match (&given, code.take()) {
            (Some(base), Some(c)) => (base.clone(), c),
            _ => {
                show(
                    views,
                    Connection::NeedsCode {
                        server: named.clone(),
                        refused: refused.take(),
                    },
                );
                let Some((server, c)) = next_join(&events).await else {
                    return closed();
                };
                let c = pairing::Credential::Code(c);
                match (&given, server) {
                    (Some(base), _) => (base.clone(), c),
                    (None, Some(server)) => match pairing::base_url(&server) {
                        Ok(base) => (base, c),
                        Err(_) => {
                            refused = Some(format!(
                                "\"{server}\" is not a server's address: type it as the support page shows it, such as support.example.com"
                            ));
                            continue;
                        }
                    },
                    (None, None) => continue,
                }
            }
        };
        show(
            views,
            Connection::Connecting {
                server: host(&base),
            },
        );
        match pairing::redeem(&base, &typed).await {
            Ok(paired) => break (base, paired),
            // Said in the window, and the customer may type again.
            Err(e) => refused = Some(e.to_string()),
        }
    };

    let (ui_tx, ui_rx) = unbounded_channel();
    let (updates_tx, mut updates_rx) = unbounded_channel();
    let forward_views = views.clone();
    let updates = tokio::spawn(async move {
        while let Some(update) = updates_rx.recv().await {
            if let UiUpdate::View(view) = update {
                let _ = forward_views.try_send(view);
            }
        }
    });
    let answers = tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            let event = match event {
                window::UiEvent::Answer { question, answer } => UiEvent::Answer {
                    id: question,
                    answer,
                },
                window::UiEvent::Picked { question, windows } => UiEvent::Picked {
                    id: question,
                    windows,
                },
                window::UiEvent::ClipboardAnswer { question, send } => {
                    UiEvent::ClipboardAnswer { id: question, send }
                }
                window::UiEvent::Stop => UiEvent::Stop,
                window::UiEvent::TakeControl => UiEvent::TakeControl,
                window::UiEvent::Close => UiEvent::Leave,
                window::UiEvent::Join { .. } => continue,
            };
            if ui_tx.send(event).is_err() {
                return;
            }
        }
        // The window is gone without a Close (it cannot be shown): leave all the same.
        let _ = ui_tx.send(UiEvent::Leave);
    });
    let result = super::run_paired(&base, paired, platform, ui_rx, updates_tx).await;
    answers.abort();
    let _ = updates.await;
    result
}

/// The next server (when asked) and code typed in the window; None when the window was closed.
async fn next_join(
    events: &async_channel::Receiver<window::UiEvent>,
) -> Option<(Option<String>, String)> {
    while let Ok(event) = events.recv().await {
        match event {
            window::UiEvent::Join { server, code } => return Some((server, code)),
            window::UiEvent::Close => return None,
            _ => {}
        }
    }
    None
}

/// The server as the window names it.
fn host(base: &reqwest::Url) -> String {
    base.host_str().unwrap_or_default().to_owned()
}
