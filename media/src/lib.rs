//! Tandem's media plane, sans-IO (SPEC SYS2, SYS3, SYS5): WebRTC glue around str0m, SFU
//! forwarding, the voice mixer, the jitter buffer, and the ARF recording format.
//!
//! Nothing here owns a socket, spawns a task or reads a clock: every entry point takes `now`, and
//! callers drain `poll_*` until it returns a timeout (docs/architecture.md). The crate is empty
//! until the media-plane work lands; `actors` already depends on it so the import direction
//! `media <- actors <- src` is fixed from the start.
