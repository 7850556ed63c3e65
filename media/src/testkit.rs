//! What tests, benches and the fuzz targets drive the media plane with. The server does not ship
//! it: it is built only with the cargo feature `testkit`, off by default.
//!
//! - [`sim`]: an [`Sfu`](crate::sfu::Sfu) and [`Client`](crate::client::Client)s on an in-memory
//!   wire under simulated time (1 ms steps, no latency, peers that vanish or stop answering
//!   offers), the same run every time.
//! - [`phone_media`]: what is agreed with a plain G.711 phone, for tests of phones in calls.

pub mod sim;

use std::net::SocketAddr;

use crate::phone::PhoneMedia;
use crate::voice_codec::VoiceCodec;

/// A G.711 µ-law phone at `remote` (payload type 0, no DTMF), sending its RTCP from there too,
/// that sends and receives and has acknowledged the call.
pub fn phone_media(remote: SocketAddr) -> PhoneMedia {
    PhoneMedia {
        remote,
        rtcp: remote,
        codec: VoiceCodec::Pcmu,
        payload_type: 0,
        dtmf_payload_type: None,
        send: true,
        receive: true,
        confirmed: true,
        signalling: None,
    }
}
