//! What a [`Client`](super::Client) tells its owner: the things an encoder and a control loop act
//! on, drained with [`Client::poll_event`](super::Client::poll_event).

use std::collections::VecDeque;

use str0m::bwe::Bitrate;
use str0m::media::{KeyframeRequestKind, Mid};

/// At most this many events wait; past it the oldest go. An owner that polls after each input
/// never comes near it; one that never polls (the load generator) keeps bounded memory.
pub(super) const EVENTS_KEPT: usize = 1024;

#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// ICE and DTLS are up: media and data channels can flow.
    Connected,
    /// ICE or DTLS gave up; the connection is over.
    Failed,
    /// The server (for a receiver, or a recording) asks for a keyframe on our video track
    /// `mid`: the encoder should make the next frame one.
    KeyframeRequest {
        mid: Mid,
        kind: KeyframeRequestKind,
    },
    /// The send-side bandwidth estimate changed: what an encoder can spend in all.
    BitrateEstimate(Bitrate),
    /// A data channel opened (ours or the server's).
    ChannelOpen(String),
    ChannelMessage(ChannelMessage),
}

/// A message that arrived on a data channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelMessage {
    /// The label of the channel it came on (`control`, say).
    pub label: String,
    /// Whether the sender sent it as binary; otherwise it is meant as text.
    pub binary: bool,
    pub data: Vec<u8>,
}

impl ChannelMessage {
    /// The message as text, if it was sent as text and is UTF-8.
    pub fn text(&self) -> Option<&str> {
        if self.binary {
            return None;
        }
        std::str::from_utf8(&self.data).ok()
    }
}

/// The events not yet polled, the newest [`EVENTS_KEPT`].
#[derive(Debug, Default)]
pub(super) struct Events(VecDeque<ClientEvent>);

impl Events {
    pub(super) fn push(&mut self, event: ClientEvent) {
        if self.0.len() >= EVENTS_KEPT {
            self.0.pop_front();
        }
        self.0.push_back(event);
    }

    pub(super) fn pop(&mut self) -> Option<ClientEvent> {
        self.0.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unpolled_queue_keeps_only_the_newest_events() {
        let mut events = Events::default();
        for n in 0..EVENTS_KEPT + 10 {
            events.push(ClientEvent::ChannelOpen(n.to_string()));
        }
        assert_eq!(events.pop(), Some(ClientEvent::ChannelOpen("10".into())));
        assert_eq!(std::iter::from_fn(|| events.pop()).count(), EVENTS_KEPT - 1);
    }

    #[test]
    fn only_text_messages_read_as_text() {
        let text = ChannelMessage {
            label: "control".into(),
            binary: false,
            data: b"key:a".to_vec(),
        };
        assert_eq!(text.text(), Some("key:a"));
        let binary = ChannelMessage {
            binary: true,
            ..text.clone()
        };
        assert_eq!(binary.text(), None);
        let broken = ChannelMessage {
            data: vec![0xff, 0xfe],
            ..text
        };
        assert_eq!(broken.text(), None);
    }
}
