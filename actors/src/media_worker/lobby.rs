//! Phones waiting at the service prompt, keying in a session number, before their session is
//! known; where their key presses go.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::Lobby;
use crate::telemetry;

pub(super) struct Waiting {
    pub(super) lobby: Lobby<u64>,
    pub(super) keys: HashMap<u64, mpsc::UnboundedSender<(u64, char)>>,
    /// RTP packets in and out as last counted.
    reported: (u64, u64),
}

impl Waiting {
    pub(super) fn new(address: SocketAddr) -> Self {
        Self {
            lobby: Lobby::new(address),
            keys: HashMap::new(),
            reported: (0, 0),
        }
    }

    /// Advances the prompt to `now`: sends what is due, passes key presses on, counts packets.
    pub(super) async fn advance(&mut self, socket: &UdpSocket, now: Instant) {
        self.lobby.handle_timeout(now);
        while let Some(t) = self.lobby.poll_transmit() {
            if let Err(e) = socket.send_to(&t.contents, t.destination).await {
                tracing::debug!(error = %e, "media send failed");
            }
        }
        while let Some(k) = self.lobby.poll_event() {
            if let Some(keys) = self.keys.get(&k.leg) {
                let _ = keys.send((k.leg, k.digit));
            }
        }
        let (lin, lout) = self.lobby.packets();
        telemetry::media::prompt_packets(lin - self.reported.0, lout - self.reported.1);
        self.reported = (lin, lout);
    }
}
