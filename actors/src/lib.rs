//! Tandem's supervision tree (SPEC SYS1).
//!
//! ```text
//! Root
//! ├── SessionRegistry ── Session ── Participant
//! └── QueueRegistry ──── Queue
//! ```
//! Each actor's rules are a plain state machine in a `rules` module next to its shell and are
//! tested without the runtime; the shells only move messages and do IO. See
//! docs/architecture.md.

pub mod ids;
pub mod limits;
pub mod media_worker;
pub mod participant;
pub mod ports;
pub mod protocol;
pub mod queue;
pub mod queue_registry;
pub mod recorder;
pub mod root;
pub mod session;
pub mod session_registry;
pub mod supervision;
pub mod telemetry;
