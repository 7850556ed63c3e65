//! Tandem's supervision tree (SPEC SYS1) and the media workers it drives.
//!
//! ```text
//! Root
//! ├── SessionRegistry ── Session ── Participant
//! └── QueueRegistry ──── Queue
//! MediaPool ── MediaWorker (plain tokio tasks, not actors: sessions send them commands)
//! ```
//! Each actor's rules are a plain state machine in a `rules` module next to its shell and are
//! tested without the runtime; the shells only move messages and do IO. A session also runs its
//! [`recorder`]. What the actors need from outside (journal, accounts, recordings, media
//! notices) is in [`ports`]; the SPEC's limits in [`limits`]; the wire format in [`protocol`];
//! metrics in [`telemetry`]. See docs/architecture.md.

pub mod computer_files;
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
