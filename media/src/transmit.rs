//! A datagram for a media worker's socket: what the sans-IO parts (the SFU, the lobby) ask
//! their IO shell to send.

use std::net::SocketAddr;

/// A datagram to send from the worker's socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub contents: Vec<u8>,
}
