//! Phones waiting at the service prompt, keying in a session number, before their session is
//! known; where their key presses go.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use tokio::sync::mpsc;

use tandem_media::phone::counts::PhoneCounts;
use tandem_media::phone::lobby::LobbyEvent;

use super::Lobby;
use super::socket::MediaSocket;
use crate::telemetry;

pub(super) struct Waiting {
    pub(super) lobby: Lobby<u64>,
    pub(super) keys: HashMap<u64, mpsc::UnboundedSender<(u64, char)>>,
    /// What the phones here counted, as last reported.
    reported: PhoneCounts,
}

impl Waiting {
    pub(super) fn new(address: SocketAddr) -> Self {
        Self {
            lobby: Lobby::new(address),
            keys: HashMap::new(),
            reported: PhoneCounts::default(),
        }
    }

    /// Advances the prompt to `now`: sends what is due, passes key presses on, counts packets.
    pub(super) fn advance(&mut self, socket: &mut MediaSocket, now: Instant) {
        self.lobby.handle_timeout(now);
        while let Some(t) = self.lobby.poll_transmit() {
            socket.queue(t);
        }
        while let Some(e) = self.lobby.poll_event() {
            match e {
                LobbyEvent::Dtmf { leg, digit } => {
                    if let Some(keys) = self.keys.get(&leg) {
                        let _ = keys.send((leg, digit));
                    }
                }
                LobbyEvent::WrongAddress { leg, report } => {
                    telemetry::media::log_wrong_address(&format!("SIP call {leg}"), report);
                }
            }
        }
        let counts = self.lobby.counts();
        telemetry::media::phones_counted(&counts.since(&self.reported));
        self.reported = counts;
    }
}
