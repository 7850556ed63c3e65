//! End-to-end tests of the server: each starts a real server on loopback (HTTP, WebSocket, SIP
//! and media on real sockets, its own SQLite file) and drives it as clients would. One test
//! binary for all the tests that can share a process, since each binary links the whole server
//! (build time on two cores). Those that cannot are binaries of their own beside this folder:
//! media_lifecycle reads process-wide gauges, supervision installs its own log subscriber to
//! watch for panics, recording_sync measures audio against video, and the browser tests run
//! several Chromiums (a voice-level check misses its marks on two busy cores).
//! The browser scripts are in tests/e2e, the sipp scenarios in tests/sip, the harness in
//! tests/common.

#[path = "../common/mod.rs"]
mod common;

mod accounts;
mod arf_cli;
mod bad_input;
mod connections;
mod file_batches;
mod full_disk;
mod give_control;
mod guessing;
mod hardening;
mod helper_media;
mod helper_pairing;
mod interop;
mod login_as_user;
mod mail;
mod media;
mod metrics_lint;
mod recording;
mod recording_crash;
mod recordings_http;
mod restart;
mod scripts;
mod session_flow;
mod shared_files;
mod showing;
mod sip;
mod slots;
