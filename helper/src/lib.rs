//! Tandem Helper: the native program on the customer's (or CSR's) computer that shares the screen
//! and takes a CSR's control, with the customer's consent kept by the helper itself (docs/helper.md).

pub mod consent;
pub mod control;
pub mod keys;
pub mod status;
pub mod window;
