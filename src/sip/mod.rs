//! The SIP endpoint (SPEC V5, SYS4): phones and softphones join a session's voice call.
//! Parsing is rsip's; the transaction and dialog layers Tandem needs as a user agent server
//! are [`transaction`] and [`endpoint`], sans-IO; [`server`] and [`leg`] do the IO.

pub mod accounts;
pub mod digest;
pub mod endpoint;
pub mod leg;
pub mod message;
pub mod prompt;
pub mod registrar;
pub mod sdp;
pub mod server;
pub mod transaction;

pub use server::SipServer;
