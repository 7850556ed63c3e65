//! What tests, benches, the load generator and the fuzz targets drive the media plane with. The
//! server does not ship it: it is built only with the cargo feature `testkit`, off by default.
//!
//! - [`client`]: a str0m WebRTC client that behaves as Tandem's page does. Sans-IO like the SFU,
//!   so it runs over memory here and over UDP in the load generator. It knows nothing of tests:
//!   it is the media endpoint the native helper is to take up.
//! - [`sim`]: an [`Sfu`](crate::sfu::Sfu) and clients on an in-memory wire under simulated
//!   time (1 ms steps, no latency, peers that vanish or stop answering offers), the same run
//!   every time.

pub mod client;
pub mod sim;
