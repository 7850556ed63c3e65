//! Tandem's media plane, sans-IO (SPEC SYS2, SYS3, SYS5).
//!
//! Nothing here owns a socket, spawns a task or reads a clock: every entry point takes `now`, and
//! callers drain `poll_*`/`handle_timeout` as the doc of each part says. Built so far: the voice
//! path's parts ([`jitter`], [`mix`], [`voice_mixer`]). The WebRTC endpoint (str0m), the
//! forwarder and the ARF recorder come next (docs/architecture.md).

pub mod jitter;
pub mod mix;
pub mod sfu;
pub mod tone;
pub mod voice_mixer;
