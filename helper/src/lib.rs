//! Tandem Helper: the native program on the customer's (or CSR's) computer that shares the screen
//! and takes a CSR's control, with the customer's consent kept by the helper itself, behind
//! platform traits (see docs/helper.md).
#![deny(unsafe_code)]

pub mod combo;
#[cfg(feature = "desktop")]
pub mod connection;
pub mod consent;
pub mod control;
pub mod encode;
#[cfg(all(feature = "desktop", unix))]
pub mod file_ops;
pub mod file_paths;
pub mod key;
pub mod logon;
pub mod pace;
pub mod picture;
pub mod platform;
#[cfg(all(feature = "desktop", unix))]
pub mod script_runner;
pub mod session;
pub mod status;
#[cfg(feature = "desktop")]
pub mod system_info;
#[cfg(feature = "desktop")]
pub mod window;
