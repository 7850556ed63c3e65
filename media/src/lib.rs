//! Tandem's media plane, sans-IO (SPEC SYS2, SYS3, SYS5).
//!
//! Nothing here owns a socket, spawns a task or reads a clock: every entry point takes `now`, and
//! callers drain `poll_*`/`handle_timeout` as the doc of each part says. Built so far: the voice
//! path's parts ([`jitter`], [`mix`], [`voice_mixer`]), the rules of what may pass ([`policy`]),
//! and the WebRTC endpoint that forwards video and data channels and runs the mixer ([`sfu`]).
//! The ARF recorder comes next (docs/architecture.md).

pub mod client;
pub mod jitter;
pub mod lobby;
pub mod mix;
pub mod phone;
pub mod phone_rtcp;
pub mod policy;
pub mod sfu;
pub mod sim;
pub mod tone;
pub mod voice_codec;
pub mod voice_mixer;
