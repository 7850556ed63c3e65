//! The clipboard on a thread of its own: a read waits for the program that holds the clipboard
//! (up to its timeout), and the connection's loop must not wait with it. What to do comes from
//! the session machine ([`crate::session::Action::SetClipboard`], `ReadClipboard`); this only
//! moves the text.

use std::sync::mpsc::Receiver;

use tokio::sync::mpsc::UnboundedSender;

use crate::control::{ClipboardReply, MAX_CLIPBOARD_CHARS};
use crate::platform::{Clipboard, ClipboardLimits};

/// The bound a clipboard is opened with for `join`: the most a clipboard message carries.
pub fn limits() -> ClipboardLimits {
    ClipboardLimits {
        max_bytes: 4 * MAX_CLIPBOARD_CHARS,
        ..ClipboardLimits::default()
    }
}

pub enum ClipboardCommand {
    Set(String),
    Get,
}

pub enum ClipboardOut {
    /// What a `Get` read, as the answer for the CSR.
    Read(ClipboardReply),
    /// A `Set` failed, in words for the customer.
    SetFailed(String),
}

/// Runs until the connection drops its sender. The clipboard is dropped at the end, so text the
/// CSR put there is not left behind once the helper leaves.
pub fn run(
    mut clipboard: Box<dyn Clipboard + Send>,
    commands: Receiver<ClipboardCommand>,
    out: UnboundedSender<ClipboardOut>,
) {
    for command in commands {
        let sent = match command {
            ClipboardCommand::Set(text) => match clipboard.set_text(&text) {
                Ok(()) => continue,
                Err(e) => out.send(ClipboardOut::SetFailed(e.to_string())),
            },
            ClipboardCommand::Get => out.send(ClipboardOut::Read(ClipboardReply::of_read(
                clipboard.get_text(),
            ))),
        };
        if sent.is_err() {
            return;
        }
    }
}
