//! What tests, benches and the fuzz targets drive the media plane with. The server does not ship
//! it: it is built only with the cargo feature `testkit`, off by default.
//!
//! - [`sim`]: an [`Sfu`](crate::sfu::Sfu) and [`Client`](crate::client::Client)s on an in-memory
//!   wire under simulated time (1 ms steps, no latency, peers that vanish or stop answering
//!   offers), the same run every time.

pub mod sim;
