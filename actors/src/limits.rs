//! The SPEC's limits, in one place. The session's rules enforce them; the pages learn the ones
//! they show from [`ClientLimits`] in the welcome frame rather than restating them.

use serde::{Deserialize, Serialize};

/// Most microphone holders at once (SPEC V3).
pub const MAX_MICROPHONES: usize = 2;
/// Loudest microphone volume, as a percentage of what the microphone sends (SPEC V4).
pub const MAX_VOLUME_PERCENT: u16 = 400;
/// Longest chat message, in characters (SPEC S10 sets no number; this keeps frames small).
pub const MAX_CHAT_CHARS: usize = 2_000;
/// Longest transfer message, in characters (SPEC S8).
pub const MAX_TRANSFER_MESSAGE_CHARS: usize = 345;
/// Longest session notes, in characters (SPEC S11).
pub const MAX_NOTES_CHARS: usize = 20_000;
/// Most agents one transfer may be offered to at once (SPEC S8 sets no number).
pub const MAX_TRANSFER_AGENTS: usize = 20;

/// Most files published to one customer at once (SPEC F1 sets no number).
pub const MAX_SHARED_FILES: usize = 20;
/// Longest name of a published file, in bytes of UTF-8 (what common file systems take).
pub const MAX_FILE_NAME_BYTES: usize = 255;

/// The limits a page needs for its forms, sent in every welcome frame (docs/protocol.md 5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientLimits {
    pub chat_chars: usize,
    pub transfer_message_chars: usize,
    pub notes_chars: usize,
    pub transfer_agents: usize,
    pub microphones: usize,
    pub volume_percent: u16,
    /// How long this participant may be away (its connection lost) before it counts as gone:
    /// for the primary CSR, before the session ends. Pages count it down while reconnecting.
    pub reconnect_grace_secs: u64,
}

impl Default for ClientLimits {
    fn default() -> Self {
        Self {
            chat_chars: MAX_CHAT_CHARS,
            transfer_message_chars: MAX_TRANSFER_MESSAGE_CHARS,
            notes_chars: MAX_NOTES_CHARS,
            transfer_agents: MAX_TRANSFER_AGENTS,
            microphones: MAX_MICROPHONES,
            volume_percent: MAX_VOLUME_PERCENT,
            reconnect_grace_secs: 0,
        }
    }
}
