//! Tandem: a self-hosted remote support server. See README.md and docs/.

pub mod auth;
pub mod body_pace;
pub mod config;
pub mod exporter;
pub mod file_batches;
pub mod hashing;
pub mod http;
pub mod listener;
pub mod mail;
pub mod metrics;
pub mod open_files;
pub mod problem;
pub mod recordings;
pub mod server;
pub mod shared_files;
pub mod signed_out;
pub mod sip;
pub mod store;
pub mod throttle;
