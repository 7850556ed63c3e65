//! The SIP endpoint (SPEC V5, SYS4): phones and softphones join a session's voice call, and
//! Tandem rings a CSR's registered softphone into one.
//!
//! Sans-IO, with no tokio: [`message`] (parsing is rsip's, behind Tandem's framing and limits),
//! [`transaction`], [`endpoint`] (dialogs, REGISTER, dialling), [`digest`], [`registrar`] (the
//! account and binding tables), [`sdp`] and [`prompt`]. The IO: [`server`] owns the sockets
//! and the endpoint's task, [`leg`] is one call's task in a session, and [`accounts`] is the
//! handle the HTTP API shares with the endpoint (SIP passwords, registrations, dialling).
//! What the shell lets in is decided sans-IO too: [`connections`] (TCP connections: how many,
//! how long) and [`request_rate`] (messages a second from one address).

pub mod accounts;
pub mod config;
pub mod connections;
pub mod digest;
pub mod endpoint;
pub mod leg;
pub mod message;
pub mod prompt;
pub mod registrar;
pub mod request_rate;
pub mod sdp;
pub mod server;
pub mod transaction;

pub use config::SipConfig;
pub use server::SipServer;
