//! The chat as it was said (issue 18), kept and bounded, so that a page that reconnects sees
//! what was said while it was away, and an assistant or an agent taking over sees what was said
//! before they came. Who sees a line is who was told it: a private line its two ends; a line to
//! everyone all staff, and a customer only if they were in the session when it was said.

use std::collections::VecDeque;

use super::*;

/// Lines kept per session (older ones are in the stored journal and the report).
pub const MAX_CHAT_KEPT: usize = 500;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatLine {
    pub seq: u64,
    pub at: UnixMillis,
    pub from: ParticipantId,
    pub to: Option<ParticipantId>,
    pub text: String,
}

#[derive(Clone, Debug, Default)]
pub struct Transcript {
    lines: VecDeque<ChatLine>,
}

impl Transcript {
    pub fn keep(&mut self, line: ChatLine) {
        if self.lines.len() == MAX_CHAT_KEPT {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    /// The lines `viewer` was told, oldest first. `joined_at`: when that customer joined.
    pub fn seen_by(
        &self,
        role: Option<Role>,
        viewer: Option<ParticipantId>,
        joined_at: Option<UnixMillis>,
    ) -> Vec<serde_json::Value> {
        self.lines
            .iter()
            .filter(|l| match l.to {
                Some(to) => viewer.is_some_and(|v| v == l.from || v == to),
                None => match role {
                    Some(Role::Customer) => joined_at.is_some_and(|j| l.at >= j),
                    _ => true,
                },
            })
            .map(|l| json!({"seq": l.seq, "at": l.at, "from": l.from, "to": l.to, "text": l.text}))
            .collect()
    }
}
